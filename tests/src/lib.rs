//! Workspace tests of multinet, end to end (see README.md's layout): `tests/run_local.rs`
//! and `tests/run_in_process.rs` (the local backend: real agent processes, QUIC, TLS, HTTP),
//! `tests/lab.rs` (the lab, as root: namespaces, the real CNI plugins, faults),
//! `tests/kube_*.rs` (the Kubernetes backend against a scripted API server, [`mock`], and an
//! ignored suite against a real cluster). They run the `multinet-e2e` binary of this package,
//! which is `multinet`. [`eventually`] is how they wait for a condition: bounded polling, never
//! a fixed sleep. [`metrics`] scrapes and parses a run's live metrics. [`require`] decides what a test that cannot run here does: skip on a
//! developer's machine, fail under CI. [`resume`] is what the coordinator-restart tests share; [`temp`] a test's own directory.
//! [`echo`] is the responder the lab's Service tests run behind a Service (`e2e-echo`, a
//! command of the test binary only).

pub mod e2e;
pub mod echo;
pub mod eventually;
pub mod kube;
pub mod kube_e2e;
pub mod lab_cluster;
pub mod metrics;
pub mod mock;
pub mod require;
pub mod resume;
pub mod temp;
