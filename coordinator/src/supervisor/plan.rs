//! Which pods a run wants, where.

use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;

use super::{Error, Result, RunSettings, RunSupervisor};
use crate::mesh::Targeting;

impl RunSupervisor {
    /// Plans the pods: the server on the backend's chosen node, else the first node of the
    /// server's node type (in a mesh, a responder on every node instead:
    /// [`Self::plan_responders`]), then per node a host checker (when public is tested) and
    /// the node type's clients.
    pub(super) fn plan(
        &mut self,
        settings: &RunSettings,
        server_override: Option<String>,
    ) -> Result<()> {
        let config = &settings.config;
        let server_type = config.server_node_type().ok_or(Error::Placement(
            "no node type has OSDs, so there is nowhere to place the server",
        ))?;
        self.server_node = match server_override {
            Some(node) => {
                if !self.nodes.iter().any(|n| n.name == node) {
                    return Err(Error::ServerNodeUnused(node));
                }
                node
            }
            None => self
                .nodes
                .iter()
                .find(|n| n.node_type == server_type)
                .ok_or(Error::Placement(
                    "no node belongs to the server's node type",
                ))?
                .name
                .clone(),
        };
        let public = settings.networks.contains(&CephNetwork::Public);
        if config.mesh {
            self.plan_responders(settings);
            // The report's server is the responder on the server's node: a node the
            // topology names that runs no test pods has none, so the first responder's.
            if !self
                .plan
                .iter()
                .any(|p| p.role == Role::Server && p.node == self.server_node)
            {
                self.server_node = self
                    .plan
                    .iter()
                    .find(|p| p.role == Role::Server)
                    .ok_or(Error::Placement(
                        "no node runs test pods, so there is nowhere to place a responder",
                    ))?
                    .node
                    .clone();
            }
        } else {
            self.plan.push(AgentIdentity {
                pod: "server".into(),
                node: self.server_node.clone(),
                role: Role::Server,
                networks: settings.networks.clone(),
            });
        }
        for node in &self.nodes {
            if public {
                // A host checker tests the public network from the host's namespace: it
                // attaches to none (AgentIdentity::attached_networks).
                self.plan.push(AgentIdentity {
                    pod: format!("host-{}", node.name),
                    node: node.name.clone(),
                    role: Role::HostCheck,
                    networks: vec![CephNetwork::Public],
                });
            }
            if config.host_check_only {
                continue;
            }
            let Some(t) = config.node_types.get(&node.node_type) else {
                continue;
            };
            for i in 0..t.osds_per_node {
                self.plan.push(AgentIdentity {
                    pod: format!("client-{}-osd-{i}", node.name),
                    node: node.name.clone(),
                    role: Role::Client,
                    networks: settings.networks.clone(),
                });
            }
            if public {
                for i in 0..t.other_daemons_per_node {
                    self.plan.push(AgentIdentity {
                        pod: format!("client-{}-other-{i}", node.name),
                        node: node.name.clone(),
                        role: Role::Client,
                        networks: vec![CephNetwork::Public],
                    });
                }
            }
        }
        Ok(())
    }

    /// A mesh's responders (`server-<node>`), one on every node that runs test pods,
    /// attached to the networks its node's pods use ([`crate::mesh::responder_networks`]),
    /// and which of them each node's agents probe ([`Targeting::mesh`]).
    fn plan_responders(&mut self, settings: &RunSettings) {
        let mut responders = Vec::new();
        for node in &self.nodes {
            let Some(networks) = crate::mesh::responder_networks(
                &settings.config,
                &node.node_type,
                &settings.networks,
            ) else {
                continue;
            };
            responders.push((node.name.clone(), networks.clone()));
            self.plan.push(AgentIdentity {
                pod: crate::mesh::responder_pod(&node.name),
                node: node.name.clone(),
                role: Role::Server,
                networks,
            });
        }
        let nodes: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        self.targeting = Targeting::mesh(&nodes, &responders, settings.config.mesh_peers);
    }
}
