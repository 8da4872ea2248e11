//! The lab: an emulated multi-node cluster on this machine, nodes and pods as network
//! namespaces, the real CNI plugins run on real CNI configs, faults injected on purpose.
//!
//! * [`topology`] — the topology file: what the lab is made of (nodes, networks, underlay,
//!   faults, run configuration), read and checked without touching the system.
//! * [`build`] — building and removing a lab; the names it uses; adding pods.
//! * [`cni`] — running CNI plugins as the CNI specification says.
//! * [`faults`] — faults as nftables rules on the underlay switch.
//! * [`net`] — the only contact with the kernel: namespaces, links and addresses (netlink), a
//!   socket or sysctl inside a namespace.
//! * [`sandbox`] — pod namespaces that come and go, attached to NADs the API names.
//! * [`kubelet`] — the lab as a Kubernetes cluster's nodes (`lab up --kubeconfig`).
//! * [`load`] — a topology as the user gives it (file, `--nads`, `--name`), checked.
//! * [`backend`] — the lab as a run's backend (a [`crate::scheduler::Scheduler`]).
//!
//! Every address the lab hands out stays inside the lab's namespaces and inside the ranges
//! reserved for it (198.18.0.0/15, fd00::/8); the host namespace never gets a route to them.

pub mod backend;
pub mod build;
pub mod cni;
pub mod faults;
pub mod kubelet;
pub mod live_faults;
pub mod load;
pub mod neighbours;
pub mod net;
pub mod sandbox;
pub mod topology;

/// Whether the lab can run here: root and the CNI plugins.
///
/// # Errors
///
/// What is missing, said so that a user can fix it.
pub fn available() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("the lab needs root".into());
    }
    if !std::path::Path::new(cni::CNI_PATH).join("macvlan").exists() {
        return Err(format!(
            "the lab needs the CNI plugins in {} (apt-get install containernetworking-plugins)",
            cni::CNI_PATH
        ));
    }
    Ok(())
}
