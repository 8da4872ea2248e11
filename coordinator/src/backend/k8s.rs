//! The Kubernetes backend: a real cluster through kube-rs.
//!
//! * [`nad`] — the NetworkAttachmentDefinition custom resource (`k8s.cni.cncf.io/v1`).
//! * [`names`] — object names, labels and the owner reference every object of a run carries.
//! * [`objects`] — every object a run creates, built from the configuration and what the
//!   cluster said (pure: the same code renders `--dry-run -o yaml` and the real run).
//! * [`client`] — connecting: kubeconfig and context, or in-cluster.
//! * [`cleanup`] — removing a run (foreground, never forced) and finding leftovers.
//! * [`preflight`] — what is checked before anything is created.
//! * [`dry_run`] — `multinet run --backend kube --dry-run -o yaml`.

/// The image a run uses unless `--image` says otherwise.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/multinet/multinet:", env!("CARGO_PKG_VERSION"));

pub mod cleanup;
pub mod client;
pub mod dry_run;
pub mod nad;
pub mod names;
pub mod objects;
pub mod preflight;
