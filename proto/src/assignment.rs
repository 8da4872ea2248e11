//! What an agent is told when it starts: who it is, where the coordinator is, which addresses
//! are its own, and how to probe. Written by the coordinator's backend as a JSON file (local
//! and lab) or mounted from a Secret/ConfigMap (Kubernetes); read by `multinet-agent`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::control::AgentIdentity;
use crate::network::CephNetwork;

/// An agent's own address on one network: the server listens on it, a client binds its probes
/// to it (so they leave through that network's interface, never the default route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAddress {
    /// The network.
    pub network: CephNetwork,
    /// The address.
    pub addr: IpAddr,
}

/// PEM files of the run's PKI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The run CA certificate: the only trust anchor.
    pub ca: PathBuf,
    /// This agent's certificate (client auth for the control plane; for the server agent also
    /// server auth for HTTPS probes, name [`crate::control::PROBE_SERVER_NAME`]).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// How clients probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSettings {
    /// Time between probe rounds, in milliseconds.
    pub interval_ms: u64,
    /// Time limit of one probe, in milliseconds.
    pub timeout_ms: u64,
    /// Small response size, bytes.
    pub small_bytes: u32,
    /// Large response size, bytes.
    pub large_bytes: u32,
}

/// Everything an agent needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAssignment {
    /// The run.
    pub run_id: String,
    /// The coordinator's control-plane address (QUIC).
    pub coordinator: SocketAddr,
    /// Who the agent is.
    pub identity: AgentIdentity,
    /// The run's PKI files.
    pub tls: TlsFiles,
    /// The agent's own addresses, one per attached network (empty for a host checker, which
    /// uses the host's routing).
    pub addresses: Vec<NetworkAddress>,
    /// Probe settings.
    pub probe: ProbeSettings,
    /// How long the agent keeps trying to reach a coordinator that has gone, in milliseconds,
    /// before it exits by itself.
    pub grace_ms: u64,
    /// Largest number of results in one report batch.
    pub batch_max: usize,
    /// Largest number of unacknowledged batches kept for resending; past it the oldest are
    /// dropped and counted as lost in the next batch.
    pub unacked_max: usize,
}
