//! Building and removing a lab. Names derive from the lab's name, so a lab can be found and
//! removed after a crash:
//!
//! | what | name |
//! |---|---|
//! | switch namespace (one bridge per network: `br-pub`, `br-clu`) | `<lab>-sw` |
//! | control namespace (bridge `ctl`, coordinator at 198.19.0.1/16) | `<lab>-ctl` |
//! | node namespace (uplinks `pub0`/`clu0`, control `ctl0`, public shim `shim0`) | `<lab>-<id>` |
//! | pod namespace (NAD interfaces `public`/`cluster`, control `ctl0`) | `<lab>-<id>-p<j>` |
//! | a node's switch ports, its control port, a pod's control port | `<id>-pub`, `<id>-c`, `<id>p<j>` |
//!
//! `<id>` is the node's short id ([`LabTopology::node_id`]): its name when that is 1 to 4
//! lowercase letters and digits, else `n-<position>`.
//! | state (attachments for CNI DEL, host-local IPAM data) | `/run/multinet/<lab>/` |
//!
//! Every address lives inside the lab's namespaces; the host namespace gets no interface and no
//! route. The control network (198.19.0.0/16,
//! [`CONTROL_NETWORK`](crate::lab::topology::CONTROL_NETWORK)) carries only agent ↔ coordinator
//! traffic and no fault touches it; no topology range overlaps it, and every control interface
//! answers ARP only for its own address, so no probe leaves by it.
//!
//! The files: `naming` (the names and addresses above), `lifecycle` (up, open, down, list and
//! the state file), `pods` (pod namespaces, attaching pods through the CNI plugins, the IPAM
//! mapping) and `kernel` (what the machine must provide, checked before anything is built).
//! Their failures are one [`Error`].

mod kernel;
mod lifecycle;
mod naming;
mod pods;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use multinet_proto::network::CephNetwork;
use serde::{Deserialize, Serialize};

use super::cni::Attachment;
use super::topology::LabTopology;
use super::{faults, net};

/// Why a lab could not be built, opened, changed or removed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace, link, address or socket the kernel refused (what was being done, where,
    /// and what the kernel or the tool said).
    #[error(transparent)]
    Net(#[from] net::Error),
    /// Not root: namespaces, links and the CNI plugins need it.
    #[error("the lab needs root (network namespaces, links, CNI plugins)")]
    NotRoot,
    /// What the topology needs and this machine lacks, all of it, each with how to get it.
    #[error("the lab cannot be built here; missing: {}", .0.join("; "))]
    Missing(Vec<String>),
    /// The lab's state directory could not be made.
    #[error("creating {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The topology could not be kept in the state directory (for `--lab NAME` runs).
    #[error("saving the topology")]
    SaveTopology {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file (what `lab down` undoes) could not be written.
    #[error("writing the lab state")]
    SaveState {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `lab NAME` names no lab that is up: it has no state file.
    #[error("lab {name:?} is not up (no {})", dir.display())]
    NotUp {
        /// The lab's name.
        name: String,
        /// Its state directory.
        dir: PathBuf,
        /// Why the state file could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not one this version writes.
    #[error("the lab state is damaged: `multinet lab down` it and build it again")]
    StateDamaged {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The topology kept in the state directory could not be read.
    #[error("reading the lab's topology")]
    ReadTopology {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The topology kept in the state directory is not YAML any more.
    #[error("the lab's topology")]
    TopologySyntax(#[source] multinet_proto::yaml::SyntaxError),
    /// The topology kept in the state directory no longer passes the checks (a newer
    /// version's rules).
    #[error("the lab's topology is not valid any more")]
    TopologyInvalid,
    /// The faults could not be applied.
    #[error(transparent)]
    Faults(#[from] faults::Error),
    /// The lab's state directory could not be removed.
    #[error("removing {}", path.display())]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pod asks for a network the lab does not have.
    #[error("the {} network is not in the topology", .0.key())]
    NoNetwork(CephNetwork),
    /// A network's CNI config is not JSON.
    #[error("the network's CNI config is not JSON")]
    CniConfigJson(#[source] serde_json::Error),
    /// A network's CNI config is not a JSON object.
    #[error("the CNI config is not an object")]
    CniConfigObject,
    /// A network's whereabouts IPAM cannot be read (for its mapping onto host-local).
    #[error("the network's whereabouts IPAM does not parse")]
    Whereabouts,
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(super) use naming::control_addr;
pub use naming::{NodeLinks, node_links};
pub use pods::{PodNet, host_local_set};

/// Where lab state lives (tmpfs: gone after a reboot, like the namespaces).
pub const STATE_ROOT: &str = "/run/multinet";

/// The coordinator's address on the control network.
pub const COORDINATOR: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);

/// What must be undone: written before each step, so `lab down` works after a crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabState {
    /// Lab name.
    pub name: String,
    /// Attachments made (CNI DEL releases their addresses).
    pub attachments: Vec<Attachment>,
    /// Pods created.
    pub pods: Vec<String>,
    /// The number the next pod gets (its namespace name and control address): pods of the
    /// lab as a cluster's nodes come and go, and a number is never handed out twice.
    #[serde(default)]
    pub next_pod: u32,
}

/// A lab that is up. Pods of different nodes are added and removed from several threads at
/// once (`&self`): the state is behind its own lock, taken only to change it and write it out,
/// never across the slow steps (namespaces, CNI plugins).
#[derive(Debug)]
pub struct Lab {
    /// Its topology.
    pub topology: LabTopology,
    /// What must be undone, as saved in `state.json`; changed and saved under the lock, so the
    /// file always holds every change made so far.
    pub(super) state: std::sync::Mutex<LabState>,
    pub(super) dir: PathBuf,
}

/// How many nodes the lab works on at once (placing pods, CNI DEL at teardown): twice the
/// cores, as most of the work waits on processes (CNI plugins) and the kernel; at least 2, at
/// most 16.
pub fn nodes_at_once() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .clamp(2, 16)
}

/// Runs `work` on each group of `items` (grouped by `key`, in the order each group first
/// appears), at most [`nodes_at_once`] groups at a time, one thread per group at work; each
/// group's items in their order. Returns what `work` returned, one per group in that order.
pub(in crate::lab) fn per_node<T: Sync, K: PartialEq + Sync, R: Send>(
    items: &[T],
    key: impl Fn(&T) -> K,
    work: impl Fn(&[&T]) -> R + Sync,
) -> Vec<R> {
    let mut groups: Vec<(K, Vec<&T>)> = Vec::new();
    for item in items {
        let k = key(item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<R>>> =
        std::sync::Mutex::new((0..groups.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..nodes_at_once().min(groups.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, members)) = groups.get(i) else {
                        break;
                    };
                    let r = work(members);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect()
}
