//! The lab: an emulated multi-node cluster on this machine, nodes and pods as network
//! namespaces, the real CNI plugins run on real CNI configs, faults injected on purpose.
//!
//! * [`topology`] — the topology file: what the lab is made of (nodes, networks, underlay,
//!   faults, run configuration), read and checked without touching the system.
//!
//! Every address the lab hands out stays inside the lab's namespaces and inside the ranges
//! reserved for it (198.18.0.0/15, fd00::/8); the host namespace never gets a route to them.

pub mod topology;
