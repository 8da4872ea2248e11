//! The lab: an emulated multi-node cluster on this machine, nodes and pods as network
//! namespaces, the real CNI plugins run on real CNI configs, faults injected on purpose.
//!
//! * [`topology`] — the topology file: what the lab is made of (nodes, networks, underlay,
//!   faults, run configuration), read and checked without touching the system.
//! * [`build`] — building and removing a lab; the names it uses; adding pods.
//! * [`cni`] — running CNI plugins as the CNI specification says.
//! * [`faults`] — faults as nftables rules on the underlay switch.
//! * [`net`] — namespaces, links and addresses through `ip`; a socket inside a namespace.
//! * [`sandbox`] — pod namespaces that come and go, attached to NADs the API names.
//! * [`kubelet`] — the lab as a Kubernetes cluster's nodes (`lab up --kubeconfig`).
//!
//! Every address the lab hands out stays inside the lab's namespaces and inside the ranges
//! reserved for it (198.18.0.0/15, fd00::/8); the host namespace never gets a route to them.

pub mod build;
pub mod cni;
pub mod faults;
pub mod kubelet;
pub mod net;
pub mod sandbox;
pub mod topology;
