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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAddress {
    /// The network.
    pub network: CephNetwork,
    /// The address.
    pub addr: IpAddr,
    /// The pod's interface that holds it: probes on this network leave through it
    /// (`SO_BINDTODEVICE`), never by another route. `None` where the address has no interface
    /// of its own (the local backend's loopback addresses). Always written (`null` for none):
    /// the control plane's bincode frames carry this type, and bincode cannot skip a field.
    #[serde(default)]
    pub interface: Option<String>,
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

/// What every agent pod of a Kubernetes run shares, mounted from a ConfigMap (`run.json`).
/// Each pod adds who it is (its arguments) and its addresses (Multus' network-status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRunSettings {
    /// The run.
    pub run_id: String,
    /// The coordinator's control-plane address, `IP:PORT` (a dry run, before the coordinator
    /// has an address, shows where it goes).
    pub coordinator: String,
    /// Probe settings.
    pub probe: ProbeSettings,
    /// See [`AgentAssignment::grace_ms`].
    pub grace_ms: u64,
    /// See [`AgentAssignment::batch_max`].
    pub batch_max: usize,
    /// See [`AgentAssignment::unacked_max`].
    pub unacked_max: usize,
}

/// Why a pod's assignment could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodAssignmentError {
    /// `coordinator` is not an address.
    #[error("run settings: coordinator {0:?} is not an IP:PORT address")]
    Coordinator(String),
    /// Multus attached nothing on the network's interface.
    #[error(
        "network-status has no attachment on interface {interface:?} (the {} network); attached: {attached}", .network.key()
    )]
    NotAttached {
        /// The network.
        network: CephNetwork,
        /// The interface the pod asked for.
        interface: String,
        /// What network-status lists, for the reader.
        attached: String,
    },
    /// The attachment has no address: IPAM gave none.
    #[error(
        "the {} network's attachment {name:?} on interface {interface:?} has no IP address (IPAM gave none)", .network.key()
    )]
    NoAddress {
        /// The network.
        network: CephNetwork,
        /// The NAD as network-status names it.
        name: String,
        /// The interface.
        interface: String,
    },
}

impl PodRunSettings {
    /// The assignment of one pod: its identity, the mounted TLS files, and one address per
    /// network from the network-status entries (attachment on the interface named after the
    /// network: the run's pods ask Multus for `public` and `cluster` explicitly). A host
    /// checker has no networks and needs no entries.
    pub fn assignment(
        &self,
        identity: AgentIdentity,
        tls: TlsFiles,
        status: &[crate::multus::status::NetworkStatus],
    ) -> Result<AgentAssignment, PodAssignmentError> {
        let coordinator = self
            .coordinator
            .parse()
            .map_err(|_| PodAssignmentError::Coordinator(self.coordinator.clone()))?;
        let mut addresses = Vec::new();
        for network in &identity.networks {
            let interface = network.key();
            let entry =
                crate::multus::status::find_by_interface(status, interface).ok_or_else(|| {
                    PodAssignmentError::NotAttached {
                        network: *network,
                        interface: interface.to_string(),
                        attached: if status.is_empty() {
                            "nothing".into()
                        } else {
                            status
                                .iter()
                                .map(|s| {
                                    format!(
                                        "{} on {}",
                                        s.name,
                                        s.interface.as_deref().unwrap_or("?")
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                    }
                })?;
            let addr = entry.addresses().first().copied().ok_or_else(|| {
                PodAssignmentError::NoAddress {
                    network: *network,
                    name: entry.name.clone(),
                    interface: interface.to_string(),
                }
            })?;
            addresses.push(NetworkAddress {
                network: *network,
                addr,
                interface: Some(interface.to_string()),
            });
        }
        Ok(AgentAssignment {
            run_id: self.run_id.clone(),
            coordinator,
            identity,
            tls,
            addresses,
            probe: self.probe,
            grace_ms: self.grace_ms,
            batch_max: self.batch_max,
            unacked_max: self.unacked_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Role;
    use crate::multus::status::parse_network_status;

    fn settings() -> PodRunSettings {
        PodRunSettings {
            run_id: "0123456789".into(),
            coordinator: "10.244.0.9:7443".into(),
            probe: ProbeSettings {
                interval_ms: 1000,
                timeout_ms: 4000,
                small_bytes: 64,
                large_bytes: 9000,
            },
            grace_ms: 30_000,
            batch_max: 256,
            unacked_max: 1024,
        }
    }

    fn identity(networks: Vec<CephNetwork>) -> AgentIdentity {
        AgentIdentity {
            role: Role::Client,
            node: "worker-1".into(),
            pod: "client-worker-1-osd-0".into(),
            networks,
        }
    }

    fn tls() -> TlsFiles {
        TlsFiles {
            ca: "/etc/multinet/tls/ca.crt".into(),
            cert: "/etc/multinet/tls/agent.crt".into(),
            key: "/etc/multinet/tls/agent.key".into(),
        }
    }

    const STATUS: &str = r#"[
      {"name": "k8s-pod-network", "ips": ["10.244.1.7"], "default": true},
      {"name": "rook-ceph/public-net", "interface": "public", "ips": ["192.168.20.21", "fd00::21"]},
      {"name": "rook-ceph/cluster-net", "interface": "cluster", "ips": []}
    ]"#;

    #[test]
    fn addresses_come_from_the_network_interfaces() {
        let status = parse_network_status(STATUS).expect("status parses");
        let a = settings()
            .assignment(identity(vec![CephNetwork::Public]), tls(), &status)
            .expect("assignment");
        assert_eq!(
            a.addresses,
            vec![NetworkAddress {
                network: CephNetwork::Public,
                addr: "192.168.20.21".parse().expect("ip"),
                interface: Some("public".into()),
            }]
        );
        assert_eq!(a.coordinator, "10.244.0.9:7443".parse().expect("addr"));
    }

    #[test]
    fn an_attachment_without_ips_is_named() {
        let status = parse_network_status(STATUS).expect("status parses");
        let e = settings()
            .assignment(
                identity(vec![CephNetwork::Public, CephNetwork::Cluster]),
                tls(),
                &status,
            )
            .expect_err("no cluster address");
        assert_eq!(
            e.to_string(),
            "the cluster network's attachment \"rook-ceph/cluster-net\" on interface \"cluster\" has no IP address (IPAM gave none)"
        );
    }

    #[test]
    fn a_missing_attachment_lists_what_is_attached() {
        let status = parse_network_status(&STATUS.replace("\"cluster\"", "\"net2\""))
            .expect("status parses");
        let e = settings()
            .assignment(identity(vec![CephNetwork::Cluster]), tls(), &status)
            .expect_err("not attached");
        assert!(
            e.to_string().contains(
                "no attachment on interface \"cluster\" (the cluster network); attached: k8s-pod-network on ?, rook-ceph/public-net on public, rook-ceph/cluster-net on net2"
            ),
            "{e}"
        );
        let e = settings()
            .assignment(identity(vec![CephNetwork::Cluster]), tls(), &[])
            .expect_err("nothing");
        assert!(e.to_string().ends_with("attached: nothing"), "{e}");
    }

    #[test]
    fn a_bad_coordinator_address_is_named() {
        let mut s = settings();
        s.coordinator = "COORDINATOR_POD_IP:7443".into();
        let e = s
            .assignment(identity(vec![]), tls(), &[])
            .expect_err("placeholder");
        assert!(e.to_string().contains("COORDINATOR_POD_IP:7443"), "{e}");
    }
}
