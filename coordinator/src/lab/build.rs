//! Building and removing a lab. Names derive from the lab's name, so a lab can be found and
//! removed after a crash:
//!
//! | what | name |
//! |---|---|
//! | switch namespace (one bridge per network: `br-pub`, `br-clu`) | `<lab>-sw` |
//! | control namespace (bridge `ctl`, coordinator at 198.19.0.1/16) | `<lab>-ctl` |
//! | node namespace (uplinks `pub0`/`clu0`, control `ctl0`, public shim `shim0`) | `<lab>-<node>` |
//! | pod namespace (NAD interfaces `public`/`cluster`, control `ctl0`) | `<lab>-<node>-p<j>` |
//! | state (attachments for CNI DEL, host-local IPAM data) | `/run/multinet/<lab>/` |
//!
//! Every address lives inside the lab's namespaces; the host namespace gets no interface and no
//! route. The control network (198.19.0.0/16) carries only agent ↔ coordinator traffic and no
//! fault touches it.
//!
//! The files: `naming` (the names and addresses above), `lifecycle` (up, open, down, list and
//! the state file), `pods` (attaching pods through the CNI plugins, the IPAM mapping) and
//! `kernel` (what the machine must provide, checked before anything is built).

mod kernel;
mod lifecycle;
mod naming;
mod pods;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cni::Attachment;
use super::topology::LabTopology;

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

/// A lab that is up.
#[derive(Debug)]
pub struct Lab {
    /// Its topology.
    pub topology: LabTopology,
    pub(super) state: LabState,
    pub(super) dir: PathBuf,
}
