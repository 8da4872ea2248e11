//! # multinet-proto: the shared vocabulary
//!
//! Everything the coordinator and the agents must agree on, as plain values: pure code, no
//! sockets, no files, no Kubernetes client. That keeps all of it testable with property tests
//! and fuzzing.
//!
//! # Layout
//!
//! * [`field`] — field paths and the errors/warnings found at them; the walker every parser uses.
//! * [`yaml`] — YAML/JSON text into values, syntax errors with line and column.
//! * [`capacity`] — selections resolved to NADs; IPAM capacity against the worst case.
//! * [`spec_fit`] — what the selected NADs mean for Ceph; valid-and-works vs. will-not-work.
//! * [`cidr`] — CIDRs and address arithmetic (IPv4 and IPv6 alike).
//! * [`names`] — Kubernetes and Linux naming rules.
//! * [`probe`] — probe kinds, outcomes and failure classes.
//! * [`assignment`] — what an agent is told when it starts.
//! * [`control`] — control-plane messages and their length-prefixed bincode codec.
//! * [`network`] — the CephCluster network API: validation and what it turns into.
//! * [`multus`] — the Multus formats: selection and status annotations, NADs, IPAM capacity;
//!   live pods and whereabouts IPPools as `kubectl` prints them.
//! * [`config`] — the run configuration: Rook's `ValidationTestConfig` keys plus multinet's
//!   probe settings, defaults, validation, Go durations and commented samples.

#![forbid(unsafe_code)]

pub mod assignment;
pub mod capacity;
pub mod cidr;
pub mod config;
pub mod control;
pub mod field;
pub mod multus;
pub mod names;
pub mod network;
pub mod probe;
pub mod spec_fit;
pub mod yaml;
