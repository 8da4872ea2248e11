//! The backends behind [`crate::scheduler::Scheduler`].
//!
//! * [`local`] — agents as plain processes on loopback addresses. No root, no isolation: it
//!   validates no real network and says so.
//! * [`lab`] — the emulated lab: namespaces, real CNI plugins, faults. Needs root.
//! * [`agents`] — agent processes, shared by both.

pub mod agents;
pub mod lab;
pub mod local;
