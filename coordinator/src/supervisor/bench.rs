//! A bench's placement (`multinet bench network`): the run's plan and its server stage, and
//! nothing after them — the bench places its own client pods and runs its own load, one test
//! at a time, where a run would start probing clients. In a mesh configuration (`mesh: true`)
//! the server stage is a mesh run's: a responder on every node that runs test pods, all of
//! them started and waited for.

use std::collections::BTreeMap;
use std::time::Instant;

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;

use super::decide::ServerStage;
use super::{RunSettings, RunSupervisor, TICK, backend};
use crate::control_plane::connection_limit_for;
use crate::mesh::{Responder, Targeting};
use crate::roster::Snapshot;
use crate::scheduler::Scheduler;

/// Where the server of a bench listens (in a mesh, every node's responder), and the pods the
/// run would place on each node.
#[derive(Debug, Clone)]
pub struct ServerPlaced {
    /// The server's node (in a mesh, the node a single run would have put the server on).
    pub server_node: String,
    /// Every server that said where it listens and is still there, by pod: the one server
    /// (`server`), or in a mesh every node's responder (`server-<node>`,
    /// [`crate::mesh::responder_pod`]), each with its node and listeners.
    pub responders: BTreeMap<String, Responder>,
    /// A mesh's responders that are gone (a mesh goes on without them), by node: what became
    /// of each, said for the paths to it.
    pub gone: BTreeMap<String, String>,
    /// Which responders each node's clients go to: [`Targeting::Single`] for the one server,
    /// else the mesh's pairs exactly as a mesh run has them (`--mesh-peers`).
    pub targeting: Targeting,
    /// Per node (in the backend's order), the networks its most attached client pod of the
    /// run's plan has (an OSD's: every network; another daemon's: public). Nodes without
    /// client pods are left out.
    pub client_networks: Vec<(String, Vec<CephNetwork>)>,
}

impl RunSupervisor {
    /// Plans the run as [`Self::run`] does and carries out its server stage only: the server
    /// agent (in a mesh, every responder) placed and started by the backend, until each says
    /// where it listens. `None` when one did not (gone, or the stage deadline passed); the
    /// run's stages say which.
    pub async fn place_server_only<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
    ) -> super::Result<Option<ServerPlaced>> {
        let deadline = settings.stage_deadline();
        self.nodes = scheduler.nodes(&settings.config).await.map_err(backend)?;
        self.plan(settings, scheduler.server_node())?;
        let server: Vec<_> = self
            .plan
            .iter()
            .filter(|p| p.role == Role::Server)
            .cloned()
            .collect();
        self.control
            .set_connection_limit(connection_limit_for(server.len()));
        let since = Instant::now();
        self.start_pods(scheduler, settings, &server).await?;
        let ready = loop {
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            let now = Instant::now();
            match self.at(now).server_stage(&snap, now - since, deadline) {
                ServerStage::Waiting => tokio::time::sleep(TICK).await,
                ServerStage::Ready => {
                    let at = self.at(now);
                    let gone: BTreeMap<String, String> = snap
                        .agents
                        .iter()
                        .filter(|a| a.expected.role == Role::Server && at.is_gone(a))
                        .map(|a| {
                            let exit = self.exit_reasons.get(&a.expected.pod);
                            (a.expected.node.clone(), gone_why(&at.fate(a), exit))
                        })
                        .collect();
                    let responders = at.responders_here(&snap);
                    break (!responders.is_empty()).then_some((responders, gone));
                }
                ServerStage::Gone | ServerStage::Deadline => break None,
            }
        };
        self.stage_done("server", since, ready.is_some());
        let Some((responders, gone)) = ready else {
            return Ok(None);
        };
        let client_networks = self
            .nodes
            .iter()
            .filter_map(|node| {
                self.plan
                    .iter()
                    .filter(|p| p.role == Role::Client && p.node == node.name)
                    .map(|p| p.networks.clone())
                    .max_by_key(Vec::len)
                    .map(|networks| (node.name.clone(), networks))
            })
            .collect();
        Ok(Some(ServerPlaced {
            server_node: self.server_node.clone(),
            responders,
            gone,
            targeting: self.targeting.clone(),
            client_networks,
        }))
    }

    /// Why the server stage ended without a server: the exits the backend saw.
    ///
    /// (See also [`gone_why`], what a responder gone in a mesh's server stage is said as.)
    pub fn exit_reasons(&self) -> impl Iterator<Item = (&String, &String)> {
        self.exit_reasons.iter()
    }
}

/// What became of a server agent that is gone, in words for the paths that could not be
/// measured to it; `exit` is how the backend saw its process or pod end.
fn gone_why(fate: &crate::findings::AgentFate, exit: Option<&String>) -> String {
    use crate::findings::AgentFate;
    let what = match fate {
        AgentFate::Reported | AgentFate::Lost { .. } => "it stopped reporting".to_string(),
        AgentFate::NeverConnected => "it never connected".to_string(),
        AgentFate::NoAddress { network, reason } => {
            format!(
                "it got no address on the {} network: {reason}",
                network.key()
            )
        }
        AgentFate::NotStarted { reason } => format!("it was not started: {reason}"),
        AgentFate::Failed { reason } => format!("it failed: {reason}"),
    };
    match exit {
        Some(exit) => format!("{what} ({exit})"),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::AgentFate;
    use multinet_proto::network::CephNetwork;

    #[test]
    fn a_gone_responder_is_said_with_its_fate_and_its_exit() {
        let no_address = AgentFate::NoAddress {
            network: CephNetwork::Cluster,
            reason: "range exhausted".into(),
        };
        assert_eq!(
            gone_why(&no_address, None),
            "it got no address on the cluster network: range exhausted"
        );
        let exit = "killed by signal 9".to_string();
        assert_eq!(
            gone_why(&AgentFate::Lost { at_ms: 2_000 }, Some(&exit)),
            "it stopped reporting (killed by signal 9)"
        );
        assert_eq!(
            gone_why(&AgentFate::NeverConnected, None),
            "it never connected"
        );
    }
}
