//! The `local` backend: simulated nodes, each network a block of loopback addresses (one
//! address per pod per network), one agent process per pod. Linux routes all of 127.0.0.0/8
//! to `lo`, so every pod gets its own source address without root. It validates no real
//! network; the report says so.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::time::Instant;

use multinet_proto::assignment::NetworkAddress;
use multinet_proto::config::RunConfig;
use multinet_proto::control::AgentIdentity;
use multinet_proto::network::CephNetwork;

use super::agents::{AgentProcesses, KillAgent};
use crate::scheduler::{AgentEnv, NodePlan, PodStatus, Scheduler};

/// Why the local backend could not do what the run asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control plane's loopback socket could not be bound.
    #[error("binding the control plane's socket on 127.0.0.1")]
    Socket(#[source] std::io::Error),
    /// The run configuration names no node type, so no node can be made.
    #[error("the run configuration has no node types")]
    NoNodeTypes,
    /// An agent's files could not be written.
    #[error(transparent)]
    Agent(#[from] super::agents::Error),
}

/// The backend.
#[derive(Debug)]
pub struct LocalBackend {
    nodes: u32,
    /// Second octet of this run's loopback block (random, so runs side by side rarely meet).
    block: u8,
    next_host: BTreeMap<CephNetwork, u32>,
    agents: AgentProcesses,
    /// A resumed run's control port, bound again (`None`: any free one).
    control_port: Option<u16>,
}

impl LocalBackend {
    /// `nodes` simulated nodes; agents are started with `agent_command` + `--assignment FILE`,
    /// and `kills` applied to them (`--kill-agent`).
    pub fn new(nodes: u32, agent_command: Vec<String>, kills: Vec<KillAgent>) -> Self {
        let block =
            2 + (std::process::id() as u8 ^ (Instant::now().elapsed().subsec_nanos() as u8)) % 250;
        Self {
            nodes,
            block,
            next_host: BTreeMap::new(),
            agents: AgentProcesses::new(agent_command, kills),
            control_port: None,
        }
    }

    /// Continues a run whose coordinator died: `agents` adopted, the control plane bound on
    /// `control_port` of 127.0.0.1 again.
    pub fn resume(agents: AgentProcesses, control_port: u16) -> Self {
        Self {
            nodes: 0,
            block: 0,
            next_host: BTreeMap::new(),
            agents,
            control_port: Some(control_port),
        }
    }

    /// Addresses for a pod without an agent (a bench's client, `multinet bench network
    /// --backend local`): one new loopback address per network of `networks`, from this
    /// run's block as an agent's pod gets them.
    pub fn pod_addresses(&mut self, networks: &[CephNetwork]) -> Vec<NetworkAddress> {
        networks
            .iter()
            .map(|n| NetworkAddress {
                network: *n,
                addr: self.address(*n),
                interface: None,
            })
            .collect()
    }

    /// The pid of pod `pod`'s agent process, while it runs.
    pub fn agent_pid(&self, pod: &str) -> Option<i32> {
        self.agents.pid(pod)
    }

    fn address(&mut self, network: CephNetwork) -> IpAddr {
        let k: u32 = match network {
            CephNetwork::Public => 0,
            CephNetwork::Cluster => 1,
        };
        let i = self.next_host.entry(network).or_insert(0);
        let host = *i;
        *i += 1;
        IpAddr::V4(Ipv4Addr::new(
            127,
            self.block,
            (k * 100 + host / 250 + 1) as u8,
            (host % 250 + 1) as u8,
        ))
    }
}

impl Scheduler for LocalBackend {
    type Error = Error;

    fn backend(&self) -> &'static str {
        "local"
    }

    fn validates_real_network(&self) -> bool {
        false
    }

    fn control_socket(&self) -> Result<UdpSocket, Error> {
        UdpSocket::bind(("127.0.0.1", self.control_port.unwrap_or(0))).map_err(Error::Socket)
    }

    fn checkpoint(&self) -> Option<crate::checkpoint::BackendState> {
        Some(crate::checkpoint::BackendState::Local {
            agents: self.agents.records(),
        })
    }

    async fn nodes(&mut self, config: &RunConfig) -> Result<Vec<NodePlan>, Error> {
        // No labels exist here: nodes take the node types in turn, in name order.
        let types: Vec<&String> = config.node_types.keys().collect();
        if types.is_empty() {
            return Err(Error::NoNodeTypes);
        }
        Ok((1..=self.nodes)
            .map(|i| NodePlan {
                name: format!("n{i}"),
                node_type: types[(i as usize - 1) % types.len()].clone(),
            })
            .collect())
    }

    async fn start(&mut self, pod: &AgentIdentity, env: &AgentEnv<'_>) -> Result<PodStatus, Error> {
        let addresses = self.pod_addresses(pod.attached_networks());
        Ok(match self.agents.start(pod, env, addresses.clone(), &[])? {
            Ok(()) => PodStatus::Started(addresses),
            Err(reason) => PodStatus::NotStarted { reason },
        })
    }

    async fn exited(&mut self) -> Vec<(String, String)> {
        self.agents.exited()
    }

    async fn cleanup(&mut self) -> Result<(), Error> {
        self.agents.stop_all().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_loopback_per_network() {
        let mut b = LocalBackend::new(3, vec!["true".into()], Vec::new());
        let mut a: Vec<IpAddr> = (0..600).map(|_| b.address(CephNetwork::Public)).collect();
        a.extend((0..600).map(|_| b.address(CephNetwork::Cluster)));
        let unique: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        assert!(a.iter().all(IpAddr::is_loopback));
    }
}
