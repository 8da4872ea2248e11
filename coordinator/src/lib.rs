//! # multinet-coordinator: the `multinet` command
//!
//! Validates the networks a storage cluster will live on: checks the network API (`spec
//! check`), run configurations (`config`), and runs validations (`run`): one server agent, the
//! worst-case number of client agents on every node, host checkers, all reporting over a QUIC
//! control plane; the coordinator turns what they report into findings.
//!
//! # Layout
//!
//! Data flows one way: [`cli`] → [`run`] → [`supervisor`] → backend.
//!
//! * [`cli`] — the command line: clap types turned into plain requests; the only place that
//!   prints errors. `main.rs` only calls it. [`exit`] — the exit codes and the one mapping
//!   from errors to them. [`signals`] — SIGINT/SIGTERM/SIGHUP.
//! * [`run`] — `multinet run` without clap: a `RunRequest` in, a `RunOutcome` or a typed
//!   error out; [`run::config`] is the one resolver of the run configuration.
//! * [`supervisor`] — the `RunSupervisor`: the run's stages and deadlines, plan, verdict.
//! * [`scheduler`] — the `Scheduler` trait backends implement; [`backend`] — the local and
//!   Kubernetes (`kube`, as the flag names it) backends; the lab's is [`lab::backend`].
//! * [`lab`] — the emulated lab: topology, build, CNI, faults, its backend, and serving as a
//!   cluster's nodes.
//! * [`input`] — reading user files, with errors that name the file.
//! * [`spec_check`], [`spec_report`] — `multinet spec check` and its text form;
//!   [`spec_live`] — its `--pods` / `--ippools` part, the live state of the networks;
//!   [`config_cmd`] — `multinet config sample` and `multinet config check`.
//! * [`pki`] — the run CA and certificates.
//! * [`control_plane`] — the QUIC endpoint and per-connection tasks (the bridge to the actors).
//! * [`roster`] — the `AgentRoster` actor: expected and connected agents, dedup by sequence,
//!   refusals. [`matrix_actor`] — the actor owning the [`matrix`] (per-path statistics).
//! * [`outage`] — the outage rule (when a node's paths are down), at the end and live.
//! * [`metrics`] — live Prometheus metrics of a run (`--metrics-addr`) and their HTTP
//!   endpoint.
//! * [`findings`] — matrix + facts → findings with evidence and suggestions.
//! * [`report`] — the report formats, rendering and writing; [`progress`] — live progress on
//!   stderr, and the log writer that keeps it intact.
//! * [`bench`] — `multinet bench ingest`.
//!
//! Everything pure (parsing, validation, arithmetic, the wire format) lives in
//! `multinet_proto`; the agent is `multinet_agent`.
//!
//! Errors: each module has its own `thiserror` enum (`run::Error`, `supervisor::Error`,
//! `control_plane::Error`, `pki::Error`, the backends' `Scheduler::Error`s —
//! `backend::local::Error`, `lab::backend::Error`, `backend::kube::Error` — and the lab's
//! `lab::build::Error`, `lab::kubelet::Error`, …), each variant with its cause as `source`;
//! `anyhow` only in [`cli`]. [`exit::code`] maps them to exit codes, [`exit::chain`] says one
//! with its causes on one line.
//!
//! Stopping: a run ends by itself (all passed, or a stage deadline); on SIGINT/SIGTERM
//! [`run`] drops the run and calls [`supervisor::RunSupervisor::cleanup`], which tells the
//! agents to stop, ends their processes and closes the endpoint. Agents whose coordinator is
//! gone exit after their grace period.

#![forbid(unsafe_code)]

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod cni_reason;
pub mod config_cmd;
pub mod control_plane;
pub mod exit;
pub mod findings;
pub mod input;
pub mod lab;
pub mod matrix;
pub mod matrix_actor;
pub mod mesh;
pub mod metrics;
pub mod outage;
pub mod output;
pub mod pki;
pub mod progress;
pub mod report;
pub mod roster;
pub mod run;
pub mod scheduler;
pub mod signals;
pub mod spec_check;
pub mod spec_live;
pub mod spec_report;
pub mod supervisor;
