//! Workspace tests across crates. The Kubernetes backend's mock-API-server suites (issue #5)
//! go here. The local and lab end-to-end tests run the `multinet` binary, which Cargo exposes
//! (`CARGO_BIN_EXE_multinet`) only to the binary's own package, so they live in
//! `coordinator/tests/`.
