//! The Kubernetes backend: a real cluster through kube-rs.
//!
//! * [`api_error`] — errors of the API as a person reads them (the message and code, once).
//! * [`error`] — the backend's one error type ([`Error`]).
//! * [`nad`] — the NetworkAttachmentDefinition custom resource (`k8s.cni.cncf.io/v1`).
//! * [`names`] — object names, labels and the owner reference every object of a run carries.
//! * [`objects`] — every object a run creates, built from the configuration and what the
//!   cluster said (pure: the same code renders `--dry-run -o yaml` and the real run).
//! * [`backend`] — the Scheduler of a run inside the cluster: creates objects, watches pods.
//! * [`checkpoint_store`] — a soak's checkpoint in ConfigMaps, for a replaced coordinator pod.
//! * [`client`] — connecting: kubeconfig and context, or in-cluster.
//! * [`cleanup`] — removing a run (foreground, never forced) and finding leftovers.
//! * [`diagnose`] — pod status and events turned into the run's facts.
//! * [`preflight`] — what is checked before anything is created: permissions, leftovers and
//!   live runs, service accounts, NADs, nodes.
//! * [`outside`] — `multinet run` outside the cluster: the coordinator Job, its log, its report.
//! * [`dry_run`] — `multinet run --backend kube --dry-run -o yaml`.

/// The image a run uses unless `--image` says otherwise.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/multinet/multinet:", env!("CARGO_PKG_VERSION"));

pub mod api_error;
pub mod backend;
pub mod checkpoint_store;
pub mod cleanup;
pub mod client;
pub mod diagnose;
pub mod dry_run;
pub mod error;
pub mod nad;
pub mod names;
pub mod objects;
pub mod outside;
pub mod preflight;

pub use error::{Error, Result};
