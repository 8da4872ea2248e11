//! The backends behind [`crate::scheduler::Scheduler`].
//!
//! * [`local`] — agents as plain processes on loopback addresses. No root, no isolation: it
//!   validates no real network and says so.
//! * [`lab`] — the emulated lab: namespaces, real CNI plugins, faults. Needs root.
//! * [`k8s`] — a Kubernetes cluster, through kube-rs.
//! * [`agents`] — agent processes, shared by local and lab.

pub mod agents;
pub mod k8s;
pub mod lab;
pub mod local;
