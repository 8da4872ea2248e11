//! The run configuration: Rook's `ValidationTestConfig` keys plus multinet's own, with defaults.
//!
//! A file written for Rook's multus validation tester (`kubectl rook-ceph multus validation run
//! --config`) must work here unchanged, so the keys, their spelling and their rules are Rook's.
//! Unlike Rook, a partial file is fine: every key left out keeps its default. Reading and
//! checking collect every problem, each naming its field path (`nodeTypes.arbiter.osdsPerNode`).
//! This module owns the values and their rules; it reads no files and talks to no cluster.
//!
//! * [`duration`] — Go duration strings (`3m0s`) as [`GoDuration`].
//! * [`placement`] — Kubernetes' rule for which nodes a node type's placement takes
//!   (`nodeSelector`, tolerations against taints).
//! * `read` — YAML values into a [`RunConfig`], type errors and unknown-key warnings.
//! * `validate` — Rook's rules and multinet's own limits over a [`RunConfig`].
//! * [`sample`] — commented sample files for the three cluster layouts Rook describes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::field::Problems;
use crate::yaml::{self, SyntaxError};

pub mod duration;
pub mod placement;
mod read;
pub mod sample;
#[cfg(test)]
mod tests;
mod validate;

pub use validate::{
    PROBE_INTERVAL_MAX, PROBE_INTERVAL_MIN, check_probe_interval, check_report_interval,
};

pub use duration::GoDuration;
pub use placement::TaintView;
pub use read::socket_address;
pub use sample::{SampleKind, sample};

/// Node type used when a file has no `nodeTypes`: every node runs storage and everything else.
pub const CONVERGED_NODE_TYPE: &str = "shared-storage-and-worker-nodes";

/// Everything one validation run needs to know, as the user wrote it (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunConfig {
    /// Namespace for every test resource; bare NAD names are looked up here too.
    pub namespace: String,
    /// Service account for the test pods; empty leaves Kubernetes' `default`. Host checkers
    /// need host networking, which security policy usually grants per service account.
    pub service_account_name: String,
    /// NetworkAttachmentDefinition for Ceph's public network: `name` or `namespace/name`.
    pub public_network: String,
    /// NetworkAttachmentDefinition for Ceph's cluster (replication) network.
    pub cluster_network: String,
    /// How long each step of the run may take before it fails; also bounds cleanup.
    pub resource_timeout: GoDuration,
    /// Once the first client is ready, the rest must be ready within this window or the
    /// network is reported as flaky.
    pub flaky_threshold: GoDuration,
    /// Only check that hosts reach the public network; start no clients.
    pub host_check_only: bool,
    /// Rook's web-server image. Read so Rook's files load; multinet does not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx_image: Option<String>,
    /// Groups of nodes and the worst-case daemon count each must carry, by name.
    pub node_types: BTreeMap<String, NodeType>,
    /// Time between two probes of one client.
    pub probe_interval: GoDuration,
    /// How long one probe may take before it counts as failed (Rook's `timeoutSeconds`).
    pub probe_timeout: GoDuration,
    /// Consecutive successful probes before a client counts as ready (Rook's
    /// `successThreshold`).
    pub success_threshold: u32,
    /// Sizes of the probe payloads.
    pub payload_bytes: PayloadBytes,
    /// How long to keep probing once every client is ready; zero ends the run there.
    pub soak_duration: GoDuration,
    /// During a soak, how often the report (`--report FILE`, or the stored report in a
    /// cluster) is rewritten with what was measured so far; zero writes it at the end only.
    pub report_interval: GoDuration,
    /// Where the coordinator serves its live Prometheus metrics while the run lasts
    /// (`GET /metrics`); `None` serves none. Port 0 takes a free port (the run says which).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// A responder on every node instead of the one server, every node's clients probing
    /// the responders of their peers: the node × node view per network (`run --mesh`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mesh: bool,
    /// With `mesh`, how many responders on other nodes each node's clients probe, chosen by
    /// rendezvous hashing (`--mesh-peers K`); 0 probes every node. A node's own responder
    /// is probed besides.
    #[serde(skip_serializing_if = "is_zero")]
    pub mesh_peers: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One group of nodes and the daemons a node of the group may have to carry at worst.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeType {
    /// OSD-like clients per node: each attaches to the public and the cluster network.
    pub osds_per_node: u32,
    /// Other Ceph and CSI daemons per node: each attaches to the public network only.
    pub other_daemons_per_node: u32,
    /// Which nodes belong to this type.
    pub placement: Placement,
}

/// How the nodes of a type are chosen. Affinities are left out on purpose (as in Rook): they
/// are too loose to pin an exact number of clients on each node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Labels a node must carry.
    pub node_selector: BTreeMap<String, String>,
    /// Taints the test pods tolerate.
    pub tolerations: Vec<Toleration>,
}

/// A Kubernetes pod toleration, with the fields `corev1.Toleration` has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Taint key; empty with `Exists` tolerates every taint.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// How `value` is compared.
    pub operator: TolerationOperator,
    /// Taint value, for `Equal`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Taint effect tolerated; `None` tolerates all effects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
    /// For `NoExecute`: how long the pod stays once tainted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// Kubernetes toleration operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum TolerationOperator {
    /// Key and value must match (the default when the operator is left out).
    #[default]
    Equal,
    /// The key must match; any value.
    Exists,
}

/// Kubernetes taint effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TaintEffect {
    /// New pods are not scheduled.
    NoSchedule,
    /// New pods are avoided when possible.
    PreferNoSchedule,
    /// Running pods are evicted.
    NoExecute,
}

/// Probe payload sizes: a small request shows reachability, a large one that full-sized
/// packets (and fragments) cross the network too, which catches MTU mismatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PayloadBytes {
    /// Bytes in a small probe.
    pub small: u32,
    /// Bytes in a large probe.
    pub large: u32,
}

impl Default for PayloadBytes {
    fn default() -> Self {
        Self {
            small: 64,
            large: 65_536,
        }
    }
}

impl NodeType {
    /// A node type with these counts and no placement (every schedulable node).
    pub fn with_counts(osds_per_node: u32, other_daemons_per_node: u32) -> Self {
        Self {
            osds_per_node,
            other_daemons_per_node,
            placement: Placement::default(),
        }
    }
}

impl Default for RunConfig {
    /// Rook's converged defaults (namespace `rook-ceph`, one node type with 3 OSDs and 16
    /// other daemons) and multinet's probe defaults. No network is set: the user must name one.
    fn default() -> Self {
        Self {
            namespace: "rook-ceph".into(),
            service_account_name: "rook-ceph-system".into(),
            public_network: String::new(),
            cluster_network: String::new(),
            resource_timeout: GoDuration::from_secs(180),
            flaky_threshold: GoDuration::from_secs(30),
            host_check_only: false,
            nginx_image: None,
            node_types: default_node_types(),
            probe_interval: GoDuration::from_secs(1),
            probe_timeout: GoDuration::from_secs(4),
            success_threshold: 12,
            payload_bytes: PayloadBytes::default(),
            soak_duration: GoDuration::ZERO,
            report_interval: GoDuration::from_secs(300),
            metrics_addr: None,
            mesh: false,
            mesh_peers: 0,
        }
    }
}

/// The node types of a file that has none.
pub(crate) fn default_node_types() -> BTreeMap<String, NodeType> {
    BTreeMap::from([(
        CONVERGED_NODE_TYPE.to_string(),
        NodeType::with_counts(3, 16),
    )])
}

impl RunConfig {
    /// The NAD selections of the public and cluster networks (`None` for a network not
    /// tested), each parsed as Multus parses one element of a selection, with the
    /// configuration's namespace for one without a namespace. Problems name the field
    /// (`publicNetwork`, `clusterNetwork`).
    pub fn network_selections(
        &self,
        problems: &mut Problems,
    ) -> (
        Option<crate::multus::selection::NetworkSelection>,
        Option<crate::multus::selection::NetworkSelection>,
    ) {
        let mut one = |field: &str, text: &str| {
            if text.is_empty() {
                return None;
            }
            match crate::multus::selection::parse_single_selection(text, &self.namespace) {
                Ok((selection, warnings)) => {
                    for w in warnings {
                        problems.warn(field, w);
                    }
                    Some(selection)
                }
                Err(e) => {
                    problems.error(field, format!("{text:?}: {}", e.0));
                    None
                }
            }
        };
        let public = one("publicNetwork", &self.public_network);
        let cluster = one("clusterNetwork", &self.cluster_network);
        (public, cluster)
    }

    /// The node type whose placement the test server takes: the one with the most OSDs, ties
    /// going to the most other daemons, then to the first name. The server needs both networks
    /// and should sit where the busiest storage daemons would, so no type without OSDs
    /// qualifies; `None` then.
    pub fn server_node_type(&self) -> Option<&str> {
        let mut best: Option<(&str, &NodeType)> = None;
        for (name, node_type) in &self.node_types {
            let key = (node_type.osds_per_node, node_type.other_daemons_per_node);
            let better =
                best.is_none_or(|(_, b)| key > (b.osds_per_node, b.other_daemons_per_node));
            if node_type.osds_per_node > 0 && better {
                best = Some((name, node_type));
            }
        }
        best.map(|(name, _)| name)
    }

    /// OSDs per node summed over node types.
    pub fn osds_per_node_total(&self) -> u32 {
        self.node_types
            .values()
            .fold(0, |sum, t| sum.saturating_add(t.osds_per_node))
    }

    /// Other daemons per node summed over node types.
    pub fn other_daemons_per_node_total(&self) -> u32 {
        self.node_types
            .values()
            .fold(0, |sum, t| sum.saturating_add(t.other_daemons_per_node))
    }

    /// All daemons per node summed over node types (Rook's `TotalDaemonsPerNode`, 19 by
    /// default).
    pub fn daemons_per_node_total(&self) -> u32 {
        self.osds_per_node_total()
            .saturating_add(self.other_daemons_per_node_total())
    }

    /// Clients one node of `node_type` runs, as `(public, cluster)` attachment counts. Every
    /// client attaches to the public network when there is one (OSDs and others alike); only
    /// OSD clients attach to the cluster network. An unknown node type runs none.
    pub fn clients_per_node(&self, node_type: &str) -> (u32, u32) {
        let Some(t) = self.node_types.get(node_type) else {
            return (0, 0);
        };
        let public = if self.public_network.is_empty() {
            0
        } else {
            t.osds_per_node.saturating_add(t.other_daemons_per_node)
        };
        let cluster = if self.cluster_network.is_empty() {
            0
        } else {
            t.osds_per_node
        };
        (public, cluster)
    }
}

/// Reads a run configuration file's text. Missing keys keep their defaults; the returned
/// problems hold every type error, every rule broken ([`RunConfig::validate`]) and warnings
/// such as unknown keys. The config holds whatever did read, defaults elsewhere, so it is only
/// fit to run when `problems.is_valid()`. Only malformed YAML fails outright.
pub fn parse_run_config(text: &str) -> Result<(RunConfig, Problems), SyntaxError> {
    let document = yaml::parse_document(text)?;
    let mut problems = Problems::default();
    let config = read::read_run_config(&document, &mut problems);
    config.validate(&mut problems);
    Ok((config, problems))
}

#[cfg(test)]
mod node_type_tests {
    use super::*;

    fn with_types(types: &[(&str, u32, u32)]) -> RunConfig {
        RunConfig {
            node_types: types
                .iter()
                .map(|(name, osds, others)| {
                    (name.to_string(), NodeType::with_counts(*osds, *others))
                })
                .collect(),
            ..RunConfig::default()
        }
    }

    #[test]
    fn server_goes_where_the_most_osds_are() {
        assert_eq!(with_types(&[]).server_node_type(), None);
        assert_eq!(
            RunConfig::default().server_node_type(),
            Some(CONVERGED_NODE_TYPE)
        );
        assert_eq!(with_types(&[("worker", 0, 6)]).server_node_type(), None);
        assert_eq!(
            with_types(&[("worker", 0, 6), ("osd", 3, 0)]).server_node_type(),
            Some("osd")
        );
        assert_eq!(
            with_types(&[("converged", 3, 10), ("osd", 3, 0)]).server_node_type(),
            Some("converged")
        );
        assert_eq!(
            with_types(&[("b", 3, 10), ("a", 3, 10), ("c", 2, 99)]).server_node_type(),
            Some("a")
        );
        let mut problems = Problems::default();
        RunConfig {
            public_network: "p".into(),
            ..with_types(&[("worker", 0, 6)])
        }
        .validate(&mut problems);
        assert_eq!(problems.errors.len(), 1, "{problems:?}");
        assert_eq!(problems.errors[0].field, "nodeTypes");
    }

    #[test]
    fn clients_per_node_follow_the_networks() {
        let mut config = with_types(&[("storage", 3, 16)]);
        config.public_network = "public".into();
        config.cluster_network = "cluster".into();
        assert_eq!(config.clients_per_node("storage"), (19, 3));
        assert_eq!(config.clients_per_node("missing"), (0, 0));
        config.cluster_network.clear();
        assert_eq!(config.clients_per_node("storage"), (19, 0));
        config.cluster_network = "cluster".into();
        config.public_network.clear();
        assert_eq!(config.clients_per_node("storage"), (0, 3));
        assert_eq!(config.osds_per_node_total(), 3);
        assert_eq!(config.other_daemons_per_node_total(), 16);
    }
}
