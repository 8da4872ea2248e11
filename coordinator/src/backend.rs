//! The backends behind [`crate::scheduler::Scheduler`].
//!
//! * [`local`] — agents as plain processes on loopback addresses. No root, no isolation: it
//!   validates no real network and says so.

pub mod agents;
pub mod local;
