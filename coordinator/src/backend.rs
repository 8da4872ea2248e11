//! The backends behind [`crate::scheduler::Scheduler`].
//!
//! * [`local`] — agents as plain processes on loopback addresses. No root, no isolation: it
//!   validates no real network and says so.
//! * [`kube`] — a Kubernetes cluster, through kube-rs (`--backend kube`).
//! * [`agents`] — agent processes, shared by local and the lab.
//!
//! The lab's backend lives with the lab: [`crate::lab::backend`].

pub mod agents;
pub mod kube;
pub mod local;
