//! # multinet-coordinator: the `multinet` command
//!
//! Validates the networks a storage cluster will live on. Today it checks the network API
//! (`spec check`) and run configurations (`config`); the validation run itself (agents, QUIC
//! control plane, findings) lands on top of this crate.
//!
//! # Layout
//!
//! * [`cli`] — the command line: arguments, dispatch, exit codes. `main.rs` only calls it.
//! * [`input`] — reading user files into documents, with errors that name the file.
//! * [`spec_check`] — `multinet spec check`: the CephCluster network section, NADs, capacity.
//! * [`spec_report`] — how a spec check is shown to people.
//! * [`config_cmd`] — `multinet config sample` and `multinet config check`.
//!
//! Everything that is pure (parsing, validation, arithmetic) lives in `multinet_proto`; this
//! crate reads files, picks output formats and sets exit codes.

#![forbid(unsafe_code)]

pub mod backend;
pub mod bench;
pub mod cli;
pub mod config_cmd;
pub mod control_plane;
pub mod findings;
pub mod input;
pub mod matrix;
pub mod matrix_actor;
pub mod pki;
pub mod progress;
pub mod report;
pub mod roster;
pub mod run_cmd;
pub mod scheduler;
pub mod spec_check;
pub mod spec_report;
pub mod supervisor;
