//! Workspace tests across crates: the Kubernetes backend against a scripted API server
//! (`tests/kube_*.rs`, with [`mock`] used by them). The local and lab end-to-end tests run
//! the `multinet` binary, which Cargo exposes (`CARGO_BIN_EXE_multinet`) only to the binary's
//! own package, so they live in `coordinator/tests/`.

pub mod mock;
