//! Faults added to a lab that is up and removed again, by hand or from a chaos script
//! (`multinet lab fault add | remove | list`): any fault that can come and go
//! ([`Fault::comes_and_goes`]: block, loss, link-down, mtu), written as in a topology's
//! `faults` list and read against the lab's own nodes and networks. Each gets a number and an
//! nftables table of its own (`multinet_live<N>`), so it comes and goes without touching the
//! topology's faults or the others; what is applied is kept in the lab's state directory
//! (`live-faults.json`), so `list` and `remove` work from any later process, and `lab down`
//! removes it all with the lab.

use std::path::PathBuf;

use multinet_proto::field::Problems;
use serde::{Deserialize, Serialize};

use super::build::Lab;
use super::faults;
use super::topology::{Fault, parse_fault};

/// One fault applied by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveFault {
    /// Its number in this lab (never reused while the lab is up).
    pub id: u32,
    /// The fault as written (YAML or JSON of one `faults` entry).
    pub fault: String,
    /// When it was applied, UTC, RFC 3339.
    pub since: String,
}

/// What the state file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    next: u32,
    faults: Vec<LiveFault>,
}

/// Why a live fault could not be added, listed or removed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The fault as written is not one the lab can apply (exit 22; every problem at its path).
    #[error("invalid fault: {}", .0.errors_line())]
    Invalid(Problems),
    /// The fault is not YAML.
    #[error("invalid fault: {0}")]
    Syntax(String),
    /// No fault of that number is applied.
    #[error("lab {lab} has no live fault {id} (`multinet lab fault list {lab}` shows them)")]
    NoSuchFault {
        /// The lab.
        lab: String,
        /// The number asked for.
        id: u32,
    },
    /// The state file could not be read or written.
    #[error("{what} {}", path.display())]
    State {
        /// Reading or writing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kernel or `nft` refused the fault (what was applied of it is undone).
    #[error(transparent)]
    Apply(#[from] faults::Error),
}

impl Error {
    /// Whether the input is at fault (exit 22) rather than the machine.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_) | Error::Syntax(_) | Error::NoSuchFault { .. }
        )
    }
}

/// The nftables table of live fault `id`.
fn table_name(id: u32) -> String {
    format!("multinet_live{id}")
}

impl Lab {
    fn live_state_path(&self) -> PathBuf {
        self.state_dir_path().join("live-faults.json")
    }

    fn live_state(&self) -> Result<State, Error> {
        let path = self.live_state_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
                what: "reading",
                path,
                source: e.into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(Error::State {
                what: "reading",
                path,
                source,
            }),
        }
    }

    fn save_live_state(&self, state: &State) -> Result<(), Error> {
        let path = self.live_state_path();
        let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::from);
        text.and_then(|t| std::fs::write(&path, t))
            .map_err(|source| Error::State {
                what: "writing",
                path,
                source,
            })
    }

    /// Reads `text` as one fault against this lab; the faults that cannot come and go are
    /// refused.
    fn read_live_fault(&self, text: &str) -> Result<Fault, Error> {
        let (fault, problems) =
            parse_fault(&self.topology, text).map_err(|e| Error::Syntax(e.to_string()))?;
        let fault = fault.ok_or(Error::Invalid(problems))?;
        if !fault.comes_and_goes() {
            let mut problems = Problems::default();
            problems.error(
                "fault",
                "only block, loss, link-down and mtu faults can be added to a lab that is up \
                 (host-route-missing is made when the lab is built, kill-agent by a run)",
            );
            return Err(Error::Invalid(problems));
        }
        Ok(fault)
    }

    /// The faults applied by hand, oldest first.
    ///
    /// # Errors
    ///
    /// The state file cannot be read.
    pub fn live_faults(&self) -> Result<Vec<LiveFault>, Error> {
        Ok(self.live_state()?.faults)
    }

    /// Applies the fault written in `text` now and records it.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`]/[`Error::Syntax`] for a fault this lab cannot apply (nothing is
    /// changed); the kernel or `nft` refused it (what was applied of it is undone).
    pub fn add_live_fault(&self, text: &str) -> Result<LiveFault, Error> {
        let fault = self.read_live_fault(text)?;
        let mut state = self.live_state()?;
        let id = state.next;
        let sw = Lab::switch_ns(&self.topology.name);
        let file = self.state_dir_path().join(format!("live{id}.nft"));
        if let Err(e) = faults::apply_fault(&self.topology, &fault, &table_name(id), &sw, &file) {
            let _ = faults::remove_fault(&self.topology, &fault, &table_name(id), &sw);
            return Err(e.into());
        }
        let live = LiveFault {
            id,
            fault: text.trim().to_string(),
            since: k8s_openapi::jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        };
        state.next = id + 1;
        state.faults.push(live.clone());
        self.save_live_state(&state)?;
        Ok(live)
    }

    /// Removes live fault `id` (the network as it was before it).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchFault`]; the kernel or `nft` refused (the fault stays recorded, so the
    /// removal can be tried again).
    pub fn remove_live_fault(&self, id: u32) -> Result<LiveFault, Error> {
        let mut state = self.live_state()?;
        let Some(at) = state.faults.iter().position(|f| f.id == id) else {
            return Err(Error::NoSuchFault {
                lab: self.topology.name.clone(),
                id,
            });
        };
        let fault = self.read_live_fault(&state.faults[at].fault)?;
        let sw = Lab::switch_ns(&self.topology.name);
        faults::remove_fault(&self.topology, &fault, &table_name(id), &sw)?;
        let removed = state.faults.remove(at);
        self.save_live_state(&state)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::{LabTopology, parse_fault};
    use multinet_proto::network::CephNetwork;

    fn read(text: &str) -> (Option<Fault>, Problems) {
        parse_fault(&LabTopology::default(), text).expect("YAML")
    }

    #[test]
    fn a_fault_is_read_against_the_labs_nodes_and_networks() {
        assert_eq!(
            read("link-down: {network: cluster, node: n2}").0,
            Some(Fault::LinkDown {
                network: CephNetwork::Cluster,
                node: "n2".into()
            })
        );
        assert_eq!(
            read(r#"{"mtu": {"network": "public", "node": "n1", "mtu": 1400}}"#).0,
            Some(Fault::Mtu {
                network: CephNetwork::Public,
                node: "n1".into(),
                mtu: 1400
            })
        );
        let (fault, problems) = read("block: {network: cluster, from: n9, to: n1}");
        assert_eq!(fault, None);
        assert!(
            problems.errors_line().contains("fault.block.from")
                && problems.errors_line().contains("no node is called \"n9\""),
            "{}",
            problems.errors_line()
        );
        let (fault, problems) = read("block: {network: public, from: n1, to: n2, for: 20s}");
        assert_eq!(fault, None);
        assert!(
            problems.errors_line().contains("fault.block.for")
                && problems.errors_line().contains("lasts until it is removed"),
            "{}",
            problems.errors_line()
        );
        let (fault, problems) = read("mtu: {network: public, node: n1}");
        assert_eq!(fault, None);
        assert!(
            problems.errors_line().contains("fault.mtu.mtu"),
            "{}",
            problems.errors_line()
        );
    }
}
