//! Commented sample run configurations for the three cluster layouts Rook's tester describes.
//!
//! Each sample is rendered from the [`RunConfig`] its kind stands for, so the text and the
//! values cannot drift apart; tests read every sample back and compare.

use std::fmt;
use std::str::FromStr;

use super::{CONVERGED_NODE_TYPE, NodeType, Placement, RunConfig, Toleration, TolerationOperator};

/// Label and taint marking nodes reserved for storage daemons.
const STORAGE_NODE_LABEL: (&str, &str) = ("storage-node", "true");
/// Label marking the arbiter zone of a stretch cluster.
const ARBITER_ZONE_LABEL: (&str, &str) = ("topology.kubernetes.io/zone", "arbiter");
/// Taint key of control-plane nodes, where the arbiter often runs.
const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// The cluster layouts there are samples for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// Every node may run storage and everything else.
    Converged,
    /// Storage daemons on labelled, tainted nodes; workers carry only CSI plugins.
    DedicatedStorageNodes,
    /// Dedicated storage nodes plus an arbiter node holding the tie-breaking monitor.
    StretchCluster,
}

/// A sample name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sample {0:?}: expected one of converged, dedicated-storage-nodes, stretch-cluster"
)]
pub struct UnknownSampleKind(pub String);

impl SampleKind {
    /// Every kind, in the order they grow.
    pub const ALL: [SampleKind; 3] = [
        SampleKind::Converged,
        SampleKind::DedicatedStorageNodes,
        SampleKind::StretchCluster,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SampleKind::Converged => "converged",
            SampleKind::DedicatedStorageNodes => "dedicated-storage-nodes",
            SampleKind::StretchCluster => "stretch-cluster",
        }
    }

    /// The configuration this sample spells out.
    pub fn config(self) -> RunConfig {
        let mut config = RunConfig {
            public_network: "public-net".into(),
            cluster_network: "cluster-net".into(),
            ..RunConfig::default()
        };
        if self == SampleKind::Converged {
            return config;
        }
        let storage = NodeType {
            placement: Placement {
                node_selector: [label(STORAGE_NODE_LABEL)].into(),
                tolerations: vec![Toleration {
                    key: STORAGE_NODE_LABEL.0.into(),
                    value: STORAGE_NODE_LABEL.1.into(),
                    ..Toleration::default()
                }],
            },
            ..NodeType::with_counts(3, 16)
        };
        config.node_types = [
            ("storage-nodes".to_string(), storage),
            ("worker-nodes".to_string(), NodeType::with_counts(0, 6)),
        ]
        .into();
        if self == SampleKind::StretchCluster {
            let arbiter = NodeType {
                placement: Placement {
                    node_selector: [label(ARBITER_ZONE_LABEL)].into(),
                    tolerations: vec![Toleration {
                        key: CONTROL_PLANE_TAINT.into(),
                        operator: TolerationOperator::Exists,
                        ..Toleration::default()
                    }],
                },
                ..NodeType::with_counts(0, 10)
            };
            config.node_types.insert("arbiter-node".into(), arbiter);
        }
        config
    }

    fn summary(self) -> &'static str {
        match self {
            SampleKind::Converged => {
                "# Converged layout: every node may run OSDs, the other Ceph daemons, the CSI\n\
                 # drivers and ordinary workloads, so one node type covers them all.\n"
            }
            SampleKind::DedicatedStorageNodes => {
                "# Dedicated storage nodes: Ceph runs only on nodes labelled and tainted\n\
                 # storage-node=true (kubectl taint nodes NODE storage-node=true:NoSchedule);\n\
                 # the other nodes only mount storage through the CSI plugins. The taint keeps\n\
                 # worker-node test pods off the storage nodes; without it the two node types\n\
                 # overlap and the run fails.\n"
            }
            SampleKind::StretchCluster => {
                "# Stretch cluster: dedicated storage nodes in two data zones, plus an arbiter\n\
                 # node in a third zone (labelled topology.kubernetes.io/zone=arbiter, often a\n\
                 # control-plane node) that holds the tie-breaking monitor. Storage nodes are\n\
                 # labelled and tainted storage-node=true so worker-node pods stay off them.\n"
            }
        }
    }
}

fn label((key, value): (&str, &str)) -> (String, String) {
    (key.to_string(), value.to_string())
}

impl fmt::Display for SampleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SampleKind {
    type Err = UnknownSampleKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SampleKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| UnknownSampleKind(text.to_string()))
    }
}

/// A double-quoted YAML string; the samples hold only plain ASCII text.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Why a node type of the samples has the counts it has.
fn node_type_comment(name: &str) -> &'static str {
    match name {
        CONVERGED_NODE_TYPE | "storage-nodes" => {
            "  # Worst case on one node: 3 OSDs, and 16 other daemons = mon, mgr, MDS, NFS,\n  \
             # RGW, rbd-mirror and cephfs-mirror (7), plus for each CSI driver (RBD, CephFS,\n  \
             # NFS) one provisioner and two node-plugin addresses, since a CSI plugin daemon\n  \
             # needs two (9). Raise osdsPerNode by one for each OSD beyond 3 that failures\n  \
             # could move onto one node.\n"
        }
        "worker-nodes" => {
            "  # Nodes that only consume storage run no Ceph daemons, just the CSI node\n  \
             # plugins: two addresses for each of the three drivers, 2 x 3 = 6.\n  \
             # osdsPerNode could be left out: a missing count is 0.\n"
        }
        "arbiter-node" => {
            "  # The arbiter runs one monitor, and at worst all 9 CSI provisioners and plugins\n  \
             # (3 per driver) if they are allowed there: 1 + 9 = 10.\n"
        }
        _ => "",
    }
}

fn render_node_type(out: &mut String, name: &str, node_type: &NodeType) {
    out.push_str(node_type_comment(name));
    out.push_str(&format!(
        "  {name}:\n    osdsPerNode: {}\n    otherDaemonsPerNode: {}\n    placement:\n",
        node_type.osds_per_node, node_type.other_daemons_per_node
    ));
    let selector = &node_type.placement.node_selector;
    if selector.is_empty() {
        out.push_str("      nodeSelector: {}\n");
    } else {
        out.push_str("      nodeSelector:\n");
        for (key, value) in selector {
            out.push_str(&format!("        {key}: {}\n", quote(value)));
        }
    }
    let tolerations = &node_type.placement.tolerations;
    if tolerations.is_empty() {
        out.push_str("      tolerations: []\n");
    } else {
        out.push_str("      tolerations:\n");
        for toleration in tolerations {
            let mut parts = vec![format!("key: {}", quote(&toleration.key))];
            match toleration.operator {
                TolerationOperator::Exists => parts.push("operator: Exists".into()),
                TolerationOperator::Equal => {
                    parts.push(format!("value: {}", quote(&toleration.value)))
                }
            }
            out.push_str(&format!("        - {{{}}}\n", parts.join(", ")));
        }
    }
}

/// A commented YAML run configuration for `kind`. It reads back without errors; its network
/// names are examples (`public-net`, `cluster-net`) for the user to replace.
pub fn sample(kind: SampleKind) -> String {
    let c = kind.config();
    let mut out = format!(
        "# multinet run configuration: {kind}\n#\n{summary}#\n\
# The keys namespace .. nodeTypes mean what they mean in Rook's multus validation test, so a\n\
# file written for that test works here as it is. Every key may be left out; it then takes\n\
# the value shown here.\n\n\
# Namespace where the test pods are created and where bare network names are looked up.\n\
# Use the namespace the Rook cluster will live in, so its policies apply to the test too.\n\
namespace: {namespace}\n\n\
# Service account the test pods run as. The host check uses host networking, which security\n\
# policies (OpenShift SCCs, Pod Security admission) usually allow only for chosen accounts.\n\
# Empty leaves the namespace's default account.\n\
serviceAccountName: {service_account}\n\n\
# The NetworkAttachmentDefinitions Ceph will use: `name` (in the namespace above) or\n\
# `namespace/name`. At least one is needed. REPLACE these example names with yours, and set\n\
# clusterNetwork to \"\" if OSD replication will share the public network.\n\
publicNetwork: {public}\n\
clusterNetwork: {cluster}\n\n\
# Time each step may take (starting pods, getting addresses, becoming ready) before the run\n\
# fails; also the wait for cleanup. At least 1m0s; allow more on big clusters or slow pulls.\n\
resourceTimeout: {resource_timeout}\n\n\
# Once the first client is ready, all others must follow within this window. Stragglers mean\n\
# a flaky or overloaded network, worth fixing before Ceph depends on it. At least 5s.\n\
flakyThreshold: {flaky}\n\n\
# true: only check that every host reaches the public network (needed when Ceph CSI runs on\n\
# the host network) and start no clients. Light enough for a cluster already in use.\n\
hostCheckOnly: {host_check_only}\n\n\
# Groups of nodes, each with the most daemons a node of the group may have to carry when\n\
# failures push daemons together. Each count becomes that many test clients per node:\n\
# osdsPerNode clients attach to both networks like OSDs, otherDaemonsPerNode clients to the\n\
# public network only. Too small an address range or a per-port MAC limit shows up here,\n\
# not months later. placement picks the nodes with nodeSelector and tolerations (no\n\
# affinities); no node may belong to two types. The test server runs on the type with the\n\
# most OSDs.\n\
nodeTypes:\n",
        summary = kind.summary(),
        namespace = c.namespace,
        service_account = c.service_account_name,
        public = c.public_network,
        cluster = c.cluster_network,
        resource_timeout = quote(&c.resource_timeout.to_string()),
        flaky = quote(&c.flaky_threshold.to_string()),
        host_check_only = c.host_check_only,
    );
    for (name, node_type) in &c.node_types {
        render_node_type(&mut out, name, node_type);
    }
    out.push_str(&format!(
        "\n# multinet's own keys.\n\n\
# Time between two probes of one client, from 10ms to 1m0s.\n\
probeInterval: {interval}\n\n\
# A probe not answered within this time fails, as Rook's readiness probe does after 4s.\n\
# More than 0s and at most resourceTimeout.\n\
probeTimeout: {timeout}\n\n\
# Consecutive successful probes a client needs to count as ready; one lucky packet is not\n\
# enough. 12 is Rook's readiness successThreshold.\n\
successThreshold: {threshold}\n\n\
# Probe sizes: the small one shows reachability, the large one (more than an MTU, so it is\n\
# fragmented or segmented) shows that full-sized packets cross too, catching MTU mismatches.\n\
# small at least 1, large at most 16777216 (16 MiB), small below large.\n\
payloadBytes:\n  small: {small}\n  large: {large}\n\n\
# Once every client is ready, keep probing this long to catch intermittent loss.\n\
# 0s ends the run as soon as all clients are ready.\n\
soakDuration: {soak}\n\n\
# During a soak, rewrite the report (--report FILE; the stored report in a cluster) this often,\n\
# so a crash loses at most this much. 0s writes it at the end only.\n\
reportInterval: {report_interval}\n\n\
# Serve live Prometheus metrics at http://ADDR:PORT/metrics while the run lasts (an IP\n\
# address and a port; --metrics-addr overrides it). In a cluster, bind every address:\n\
# metricsAddr: 0.0.0.0:9464\n\n\
# A responder on every node instead of the one server: every node's clients probe every\n\
# node's responder, and the report has a node x node matrix per network (the goldpinger view).\n\
# meshPeers K probes K other nodes per node (chosen by rendezvous hashing; 0: every node).\n\
mesh: {mesh}\n\
meshPeers: {mesh_peers}\n",
        interval = quote(&c.probe_interval.to_string()),
        timeout = quote(&c.probe_timeout.to_string()),
        threshold = c.success_threshold,
        small = c.payload_bytes.small,
        large = c.payload_bytes.large,
        soak = quote(&c.soak_duration.to_string()),
        report_interval = quote(&c.report_interval.to_string()),
        mesh = c.mesh,
        mesh_peers = c.mesh_peers,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_run_config;

    #[test]
    fn every_sample_reads_back_as_its_config_and_passes() {
        for kind in SampleKind::ALL {
            let text = sample(kind);
            let (config, problems) = parse_run_config(&text).expect("sample is valid YAML");
            assert!(
                problems.errors.is_empty() && problems.warnings.is_empty(),
                "{kind}: {problems:?}\n{text}"
            );
            assert_eq!(config, kind.config(), "{kind}\n{text}");
        }
    }

    #[test]
    fn samples_carry_rooks_numbers() {
        let converged = SampleKind::Converged.config();
        assert_eq!(converged.daemons_per_node_total(), 19);
        assert_eq!(converged.server_node_type(), Some(CONVERGED_NODE_TYPE));
        let stretch = SampleKind::StretchCluster.config();
        let counts: Vec<(&str, u32, u32)> = stretch
            .node_types
            .iter()
            .map(|(n, t)| (n.as_str(), t.osds_per_node, t.other_daemons_per_node))
            .collect();
        assert_eq!(
            counts,
            [
                ("arbiter-node", 0, 10),
                ("storage-nodes", 3, 16),
                ("worker-nodes", 0, 6)
            ]
        );
        assert_eq!(stretch.server_node_type(), Some("storage-nodes"));
        let text = sample(SampleKind::StretchCluster);
        assert!(
            text.contains("topology.kubernetes.io/zone: \"arbiter\""),
            "{text}"
        );
        assert!(
            text.contains("- {key: \"node-role.kubernetes.io/control-plane\", operator: Exists}")
        );
    }

    #[test]
    fn kinds_parse_by_name() {
        for kind in SampleKind::ALL {
            assert_eq!(kind.name().parse::<SampleKind>(), Ok(kind));
        }
        let err = "stretch".parse::<SampleKind>().expect_err("not a kind");
        assert!(
            err.to_string()
                .contains("converged, dedicated-storage-nodes, stretch-cluster"),
            "{err}"
        );
    }
}
