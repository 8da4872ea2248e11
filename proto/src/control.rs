//! Control-plane messages between agents and the coordinator, and their codec.
//!
//! An agent opens a QUIC connection, sends [`Hello`] (protocol version, run id, its identity, its
//! addresses) and
//! gets [`CoordinatorMessage::Welcome`] or a [`Refusal`] it can log. It then reports probe
//! results in [`ReportBatch`]es with its own sequence numbers; the coordinator acknowledges each
//! and drops duplicates, so a batch resent after a reconnect is counted once.
//!
//! [`codec`] frames the messages: a 4-byte big-endian length, then bincode. The length is
//! checked against [`codec::MAX_FRAME`] before anything is allocated, and every decode error is
//! a value.

pub mod codec;

use serde::{Deserialize, Serialize};

use crate::network::CephNetwork;
use crate::probe::{Outcome, ProbeKind};

/// The protocol version this build speaks; a peer with another is refused.
/// Version 2: [`Hello`] carries the agent's addresses. Version 3: agents report where their
/// probes leave from ([`AgentMessage::Egress`]). Version 4: [`Hello`] carries the wall-clock
/// time the agent's clock counts from, so the coordinator puts every agent's results on one
/// clock and tells a restarted agent from a reconnected one.
pub const PROTOCOL_VERSION: u16 = 4;

/// The QUIC ALPN protocol name of the control plane.
pub const ALPN: &[u8] = b"multinet/1";

/// The name in the coordinator's certificate; agents verify it against the run CA. (`.invalid`
/// never resolves: the name is only a label inside the run's own PKI.)
pub const COORDINATOR_NAME: &str = "coordinator.multinet.invalid";

/// The name in the server agent's HTTPS certificate; clients verify it against the run CA
/// whatever address they reach the server on.
pub const PROBE_SERVER_NAME: &str = "server.multinet.invalid";

/// Where the server agent listens on one network. (Socket addresses travel as address and
/// port: an IPv6 scope id does not, so listeners are never link-local addresses.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Listener {
    /// The network.
    pub network: CephNetwork,
    /// Plain HTTP.
    pub http: std::net::SocketAddr,
    /// HTTPS.
    pub https: std::net::SocketAddr,
}

/// What an agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The single web server (in a mesh run, one responder per node).
    Server,
    /// A client pod (an OSD client is on both networks, another daemon's on public only).
    Client,
    /// A host checker in a node's host network namespace.
    HostCheck,
}

/// Who an agent is: the one description of an agent that the coordinator's plan, its roster,
/// its findings and report, the agent's assignment and its Hello all share. (The field order is
/// the wire format: bincode encodes fields in order.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentIdentity {
    /// What it does.
    pub role: Role,
    /// The node it runs on.
    pub node: String,
    /// Its pod (or host checker) name, unique in the run.
    pub pod: String,
    /// The networks it tests: those it is attached to, and public for a host checker.
    pub networks: Vec<CephNetwork>,
}

impl AgentIdentity {
    /// The networks its pod attaches to, each with an address of its own: its networks,
    /// except for a host checker, which runs in its node's host network namespace and reaches
    /// the public network through the host's routing.
    pub fn attached_networks(&self) -> &[CephNetwork] {
        match self.role {
            Role::HostCheck => &[],
            Role::Server | Role::Client => &self.networks,
        }
    }
}

/// The first message on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the agent.
    pub protocol_version: u16,
    /// The run the agent belongs to.
    pub run_id: String,
    /// The agent.
    pub agent: AgentIdentity,
    /// The highest batch sequence number the agent has had acknowledged (0: none).
    pub last_acked: u64,
    /// The agent's own address on each network it is attached to (none for a host checker):
    /// the coordinator finds two agents holding one address (`duplicate_address`).
    pub addresses: Vec<crate::assignment::NetworkAddress>,
    /// The wall-clock time (Unix epoch, milliseconds, UTC) of the instant the agent's clock
    /// starts from: a result's [`ProbeResult::started_ms`] happened at
    /// `clock_epoch_unix_ms + started_ms`. Taken once when the agent process starts, so it is
    /// the same on every reconnection of one agent process and differs for a restarted one.
    pub clock_epoch_unix_ms: u64,
}

/// One probe result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The network probed.
    pub network: CephNetwork,
    /// The target address.
    pub target: std::net::SocketAddr,
    /// The probe kind.
    pub kind: ProbeKind,
    /// When it started, in milliseconds since the agent started.
    pub started_ms: u64,
    /// How long it took, in microseconds.
    pub latency_us: u32,
    /// What happened.
    pub outcome: Outcome,
}

/// Where an agent's probes on one network leave from: the kernel's route lookup for the
/// target, made the way the probes are made (bound to the network's interface where the
/// agent has one, otherwise by the host's routing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Egress {
    /// The network probed.
    pub network: CephNetwork,
    /// The target looked up (the server's listener address on that network).
    pub target: std::net::IpAddr,
    /// The interface holding the source address the kernel chose (`None`: no route to the
    /// target, or no interface of the agent's namespace holds that address).
    pub interface: Option<String>,
    /// The source address the kernel chose (`None`: no route to the target).
    pub source: Option<std::net::IpAddr>,
}

/// Where an agent's probes leave from ([`AgentMessage::Egress`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressReport {
    /// One per network probed.
    pub routes: Vec<Egress>,
    /// The interface the agent's control plane leaves by (the same lookup, for the
    /// coordinator's address): a host checker's public probes must not leave by it where the
    /// control network carries nothing else (the lab's).
    pub control_interface: Option<String>,
}

/// Results an agent reports together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportBatch {
    /// Per-agent sequence number, from 1, without gaps.
    pub seq: u64,
    /// The results.
    pub results: Vec<ProbeResult>,
    /// Results the agent produced but had to drop since its previous batch (its resend buffer
    /// was full): counted as lost in the report, never silently missing.
    pub dropped: u64,
    /// Results the agent has produced since it started, up to and including this batch
    /// (cumulative): the coordinator checks recorded + dropped against it, so a result lost
    /// anywhere shows up as a difference.
    pub produced: u64,
}

/// Agent → coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMessage {
    /// Introduces the agent; first on every connection.
    Hello(Hello),
    /// Probe results.
    Report(ReportBatch),
    /// The agent is alive (sent when there is nothing else to send).
    Heartbeat,
    /// The server agent listens on these addresses (sent once, after Welcome).
    ServerReady {
        /// One entry per network the server is on.
        listeners: Vec<Listener>,
    },
    /// The agent could not set itself up (bind failed, address missing): the reason, for the
    /// report. The agent exits after sending it.
    Failed {
        /// What went wrong, in words.
        reason: String,
    },
    /// Where the agent's probes leave from, one entry per network it probes (sent after
    /// every Targets; protocol version 3). The coordinator does not count a network whose
    /// probes leave by another interface than the network's (`wrong_egress`).
    Egress(EgressReport),
}

/// Why the coordinator refused an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The agent speaks another protocol version.
    #[error("protocol version {agent} is not the coordinator's {coordinator}")]
    ProtocolVersion {
        /// The agent's.
        agent: u16,
        /// The coordinator's.
        coordinator: u16,
    },
    /// The agent belongs to another run.
    #[error("run id {agent:?} is not this run's")]
    RunId {
        /// The agent's.
        agent: String,
    },
    /// The agent is not one the coordinator placed.
    #[error("unknown agent {pod:?} on node {node:?}")]
    UnknownAgent {
        /// Its pod.
        pod: String,
        /// Its node.
        node: String,
    },
    /// The first message was not a Hello.
    #[error("the first message must be Hello")]
    NoHello,
}

/// Coordinator → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordinatorMessage {
    /// The agent is accepted.
    Welcome,
    /// Where to probe (to clients and host checkers, once the server is ready; again after a
    /// reconnect, and when a mesh responder it probes changes).
    Targets {
        /// The server's listeners, one per network; in a mesh run, those of every responder
        /// the agent probes (its own node's first).
        listeners: Vec<Listener>,
    },
    /// The agent is refused; the connection closes.
    Refused(Refusal),
    /// Batches up to and including `seq` are recorded.
    Ack {
        /// The highest sequence number recorded.
        seq: u64,
    },
    /// The run is over: stop probing and exit.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(role: Role, networks: Vec<CephNetwork>) -> AgentIdentity {
        AgentIdentity {
            role,
            node: "n1".into(),
            pod: "p".into(),
            networks,
        }
    }

    #[test]
    fn a_host_checker_attaches_to_no_network() {
        let both = vec![CephNetwork::Public, CephNetwork::Cluster];
        assert_eq!(
            identity(Role::Server, both.clone()).attached_networks(),
            both
        );
        assert_eq!(
            identity(Role::Client, vec![CephNetwork::Public]).attached_networks(),
            [CephNetwork::Public]
        );
        assert_eq!(
            identity(Role::HostCheck, vec![CephNetwork::Public]).attached_networks(),
            []
        );
    }
}
