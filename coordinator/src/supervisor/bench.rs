//! A bench's placement (`multinet bench network`): the run's plan and its server stage, and
//! nothing after them — the bench places its own client pods and runs its own load, one test
//! at a time, where a run would start probing clients.

use std::time::Instant;

use multinet_proto::control::{Listener, Role};
use multinet_proto::network::CephNetwork;

use super::decide::ServerStage;
use super::{RunSettings, RunSupervisor, TICK, backend};
use crate::control_plane::connection_limit_for;
use crate::roster::Snapshot;
use crate::scheduler::Scheduler;

/// Where the server of a bench listens, and the pods the run would place on each node.
#[derive(Debug, Clone)]
pub struct ServerPlaced {
    /// The server's node.
    pub server_node: String,
    /// The server's listeners, one per network.
    pub listeners: Vec<Listener>,
    /// Per node (in the backend's order), the networks its most attached client pod of the
    /// run's plan has (an OSD's: every network; another daemon's: public). Nodes without
    /// client pods are left out.
    pub client_networks: Vec<(String, Vec<CephNetwork>)>,
}

impl RunSupervisor {
    /// Plans the run as [`Self::run`] does and carries out its server stage only: the server
    /// agent placed and started by the backend, until it says where it listens. `None` when
    /// it did not (gone, or the stage deadline passed); the run's stages say which.
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
        let listeners = loop {
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            let now = Instant::now();
            match self.at(now).server_stage(&snap, now - since, deadline) {
                ServerStage::Waiting => tokio::time::sleep(TICK).await,
                ServerStage::Ready => {
                    break snap
                        .responders
                        .into_values()
                        .find(|r| r.node == self.server_node)
                        .map(|r| r.listeners);
                }
                ServerStage::Gone | ServerStage::Deadline => break None,
            }
        };
        self.stage_done("server", since, listeners.is_some());
        let Some(listeners) = listeners else {
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
            listeners,
            client_networks,
        }))
    }

    /// Why the server stage ended without a server: the exits the backend saw.
    pub fn exit_reasons(&self) -> impl Iterator<Item = (&String, &String)> {
        self.exit_reasons.iter()
    }
}
