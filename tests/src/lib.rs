//! End-to-end tests of multinet's binaries across crates: a whole validation run on the local
//! backend, the lab and the Kubernetes mock (issues #3–#5). The command-line tests of what exists
//! today live beside the binary, in `coordinator/tests/`.
