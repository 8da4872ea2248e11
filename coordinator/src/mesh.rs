//! Mesh runs (`run --mesh`, `mesh: true`): a responder on every node instead of the seed's one
//! server, and every node's clients and host checker probing the responders of their peers, so
//! that a run sees the node × node matrix of each network — the goldpinger view, on Multus
//! networks. A block between two nodes that are not the server's is invisible to the
//! single-server run (every client reaches the server) and shows here.
//!
//! Which responders a node probes is [`Targeting`]: every node's (`--mesh`), or its own and
//! K others chosen by rendezvous hashing (`--mesh-peers K`, [`rendezvous`]). Pure: no I/O.

use std::collections::BTreeMap;

use multinet_proto::config::RunConfig;
use multinet_proto::control::Listener;
use multinet_proto::network::CephNetwork;

/// The pod name of the responder on `node` in a mesh run (the single run's server is
/// `server`).
pub fn responder_pod(node: &str) -> String {
    format!("server-{node}")
}

/// The networks the responder on a node of `node_type` is attached to, of the run's
/// `networks`, or `None` where the node gets no responder: an OSD node's responder is on
/// every network (OSDs use both), a node whose type has other daemons only (or any node of a
/// host-check-only run) gets one on public, when public is tested; a node with no test pods,
/// none. What a real run places ([`crate::supervisor::RunSupervisor`]'s plan) and what a
/// dry run draws.
pub fn responder_networks(
    config: &RunConfig,
    node_type: &str,
    networks: &[CephNetwork],
) -> Option<Vec<CephNetwork>> {
    let (osds, others) = config
        .node_types
        .get(node_type)
        .map_or((0, 0), |t| (t.osds_per_node, t.other_daemons_per_node));
    let public = networks.contains(&CephNetwork::Public);
    if osds > 0 && !config.host_check_only {
        Some(networks.to_vec())
    } else if public && (others > 0 || config.host_check_only) {
        Some(vec![CephNetwork::Public])
    } else {
        None
    }
}

/// Which responders the agents of each node probe.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targeting {
    /// Every agent probes the one server (the seed's run).
    #[default]
    Single,
    /// Per network, each node's agents probe the responders on these nodes: their own
    /// node's first (when it has one there), then their peers in order of choice.
    Mesh {
        /// Network → source node → responder nodes.
        peers: BTreeMap<CephNetwork, BTreeMap<String, Vec<String>>>,
        /// Other nodes per node (`--mesh-peers`); `None`: every node.
        peers_per_node: Option<u32>,
    },
}

impl Targeting {
    /// The mesh over `responders` (each node that has one, with the networks it is attached
    /// to) for the agents of `nodes`: on each network, each node probes its own responder
    /// and `peers_per_node` others (0: all) among the responders attached to that network —
    /// chosen per network, so a peer without the network never takes its place.
    pub fn mesh(
        nodes: &[String],
        responders: &[(String, Vec<CephNetwork>)],
        peers_per_node: u32,
    ) -> Self {
        let mut networks: Vec<CephNetwork> = responders
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        networks.sort_unstable();
        networks.dedup();
        let peers = networks
            .into_iter()
            .map(|network| {
                let on: Vec<String> = responders
                    .iter()
                    .filter(|(_, n)| n.contains(&network))
                    .map(|(node, _)| node.clone())
                    .collect();
                let by_node = nodes
                    .iter()
                    .map(|node| {
                        let others: Vec<String> =
                            on.iter().filter(|r| *r != node).cloned().collect();
                        let chosen = if peers_per_node == 0 {
                            others
                        } else {
                            rendezvous(node, &others, peers_per_node as usize)
                        };
                        let own = on.iter().find(|r| *r == node).cloned();
                        (node.clone(), own.into_iter().chain(chosen).collect())
                    })
                    .collect();
                (network, by_node)
            })
            .collect();
        Targeting::Mesh {
            peers,
            peers_per_node: (peers_per_node > 0).then_some(peers_per_node),
        }
    }

    /// Whether this is a mesh run.
    pub fn is_mesh(&self) -> bool {
        matches!(self, Targeting::Mesh { .. })
    }

    /// The responder nodes the agents of `node` probe on `network`; `None` in a
    /// single-server run (they probe the server, wherever it is).
    pub fn peers_of(&self, network: CephNetwork, node: &str) -> Option<&[String]> {
        match self {
            Targeting::Single => None,
            Targeting::Mesh { peers, .. } => Some(
                peers
                    .get(&network)
                    .and_then(|p| p.get(node))
                    .map_or(&[], Vec::as_slice),
            ),
        }
    }

    /// Whether the agents of `node` probe the responder on `responder_node` on `network`: in a
    /// single-server run every agent probes the server; in a mesh, when it is one of
    /// [`Self::peers_of`].
    pub fn probes(&self, network: CephNetwork, node: &str, responder_node: &str) -> bool {
        self.peers_of(network, node)
            .is_none_or(|peers| peers.iter().any(|p| p == responder_node))
    }

    /// The listeners an agent on `node` is told to probe, given the ready responders (pod →
    /// its node and listeners): in a single-server run every responder's (there is one); in
    /// a mesh, per network, its peers' listeners on that network in [`Self::peers_of`]'s
    /// order.
    pub fn targets(&self, node: &str, ready: &BTreeMap<String, Responder>) -> Vec<Listener> {
        match self {
            Targeting::Single => ready
                .values()
                .flat_map(|r| r.listeners.iter().copied())
                .collect(),
            Targeting::Mesh { peers, .. } => peers
                .iter()
                .flat_map(|(network, by_node)| {
                    by_node
                        .get(node)
                        .into_iter()
                        .flatten()
                        .flat_map(|peer| ready.values().filter(move |r| r.node == *peer))
                        .flat_map(|r| r.listeners.iter().copied())
                        .filter(move |l| l.network == *network)
                })
                .collect(),
        }
    }

    /// The directed node pairs (source, responder node) probed on `network`; empty in a
    /// single-server run.
    pub fn covered(&self, network: CephNetwork) -> std::collections::BTreeSet<(String, String)> {
        match self {
            Targeting::Single => Default::default(),
            Targeting::Mesh { peers, .. } => peers
                .get(&network)
                .into_iter()
                .flatten()
                .flat_map(|(from, to)| to.iter().map(move |t| (from.clone(), t.clone())))
                .collect(),
        }
    }

    /// The networks a mesh has responders on (none in a single-server run).
    pub fn networks(&self) -> Vec<CephNetwork> {
        match self {
            Targeting::Single => Vec::new(),
            Targeting::Mesh { peers, .. } => peers.keys().copied().collect(),
        }
    }

    /// The addresses an agent on `node` was told to probe on `network` ([`Self::targets`]'s
    /// listeners there, HTTP and HTTPS apart), sorted.
    pub fn target_addresses(
        &self,
        node: &str,
        network: CephNetwork,
        ready: &BTreeMap<String, Responder>,
    ) -> Vec<std::net::SocketAddr> {
        let mut addresses: Vec<std::net::SocketAddr> = self
            .targets(node, ready)
            .iter()
            .filter(|l| l.network == network)
            .flat_map(|l| [l.http, l.https])
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses
    }
}

/// A responder that said where it listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Responder {
    /// Its node.
    pub node: String,
    /// Its listeners, one per network it is attached to.
    pub listeners: Vec<Listener>,
}

/// The responder node of every target address (HTTP and HTTPS) of `responders`.
pub fn target_nodes<'a>(
    responders: impl IntoIterator<Item = &'a Responder>,
) -> BTreeMap<std::net::SocketAddr, String> {
    responders
        .into_iter()
        .flat_map(|r| {
            r.listeners
                .iter()
                .flat_map(|l| [(l.http, r.node.clone()), (l.https, r.node.clone())])
        })
        .collect()
}

/// The `k` of `candidates` that `source` probes, by rendezvous (highest random weight)
/// hashing: each candidate's weight is the first 8 bytes of SHA-256(`source` NUL
/// `candidate`), highest first. A node's choice depends only on its own name and its
/// candidates, so a node joining or leaving changes at most one choice of each other node
/// (Thaler and Ravishankar, "Using name-based mappings to increase hit rates", 1998).
pub fn rendezvous(source: &str, candidates: &[String], k: usize) -> Vec<String> {
    let mut weighted: Vec<(u64, &String)> =
        candidates.iter().map(|c| (weight(source, c), c)).collect();
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    weighted
        .into_iter()
        .take(k)
        .map(|(_, c)| c.clone())
        .collect()
}

fn weight(source: &str, candidate: &str) -> u64 {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(source.as_bytes());
    ctx.update(&[0]);
    ctx.update(candidate.as_bytes());
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const BOTH: [CephNetwork; 2] = [CephNetwork::Public, CephNetwork::Cluster];

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node-{i}")).collect()
    }

    /// Every node a responder on both networks.
    fn on_both(nodes: &[String]) -> Vec<(String, Vec<CephNetwork>)> {
        nodes.iter().map(|n| (n.clone(), BOTH.to_vec())).collect()
    }

    #[test]
    fn a_full_mesh_probes_every_node_own_first() {
        let nodes = names(4);
        let t = Targeting::mesh(&nodes, &on_both(&nodes), 0);
        assert_eq!(
            t.peers_of(CephNetwork::Cluster, "node-3").expect("mesh"),
            ["node-3", "node-1", "node-2", "node-4"]
        );
        assert_eq!(t.covered(CephNetwork::Public).len(), 16, "4 x 4 pairs");
        assert!(
            Targeting::Single
                .peers_of(CephNetwork::Public, "node-3")
                .is_none()
        );
    }

    #[test]
    fn k_peers_are_k_other_nodes_and_stable_as_nodes_come_and_go() {
        let nodes = names(40);
        let t = Targeting::mesh(&nodes, &on_both(&nodes), 3);
        let peers = |t: &Targeting, node: &str| -> BTreeSet<String> {
            t.peers_of(CephNetwork::Public, node)
                .expect("mesh")
                .iter()
                .cloned()
                .collect()
        };
        for node in &nodes {
            let list = t.peers_of(CephNetwork::Public, node).expect("mesh");
            assert_eq!(list.len(), 4, "own and 3 others: {list:?}");
            assert_eq!(&list[0], node);
            assert_eq!(peers(&t, node).len(), 4, "no node twice");
            // The same choice on both networks when both have the same responders.
            assert_eq!(t.peers_of(CephNetwork::Cluster, node), Some(list));
        }
        // One node more: each node's choice changes by at most that node.
        let mut more = nodes.clone();
        more.push("node-41".into());
        let t2 = Targeting::mesh(&more, &on_both(&more), 3);
        // One node less: only the nodes that had chosen it choose again, one new each.
        let fewer: Vec<String> = nodes.iter().filter(|n| *n != "node-7").cloned().collect();
        let t3 = Targeting::mesh(&fewer, &on_both(&fewer), 3);
        for node in &fewer {
            let before = peers(&t, node);
            let after = peers(&t2, node);
            let gone: Vec<_> = before.difference(&after).collect();
            assert!(
                gone.is_empty() || after.contains("node-41") && gone.len() == 1,
                "{node}: {before:?} → {after:?}"
            );
            let after = peers(&t3, node);
            let kept = before.intersection(&after).count();
            let lost_node_7 = before.contains("node-7");
            assert_eq!(kept, if lost_node_7 { 3 } else { 4 }, "{node}");
        }
    }

    #[test]
    fn peers_spread_over_the_nodes() {
        // Every node is chosen by some others, and none by far more than its share.
        let nodes = names(64);
        let t = Targeting::mesh(&nodes, &on_both(&nodes), 4);
        let mut chosen: BTreeMap<String, usize> = BTreeMap::new();
        for (from, to) in t.covered(CephNetwork::Public) {
            if from != to {
                *chosen.entry(to).or_default() += 1;
            }
        }
        assert_eq!(chosen.values().sum::<usize>(), 64 * 4);
        let max = chosen.values().max().copied().unwrap_or(0);
        assert!(max <= 12, "a node chosen {max} times (mean 4): {chosen:?}");
    }

    #[test]
    fn peers_are_chosen_per_network_among_its_responders() {
        // Two storage nodes on both networks, a worker on public only: with one peer each,
        // the storage nodes still probe each other on cluster whatever they chose on public.
        let nodes: Vec<String> = ["s1", "s2", "w1"].map(String::from).to_vec();
        let responders = vec![
            ("s1".to_string(), BOTH.to_vec()),
            ("s2".to_string(), BOTH.to_vec()),
            ("w1".to_string(), vec![CephNetwork::Public]),
        ];
        let t = Targeting::mesh(&nodes, &responders, 1);
        assert_eq!(
            t.peers_of(CephNetwork::Cluster, "s1").expect("mesh"),
            ["s1", "s2"]
        );
        assert_eq!(
            t.peers_of(CephNetwork::Cluster, "s2").expect("mesh"),
            ["s2", "s1"]
        );
        assert_eq!(
            t.peers_of(CephNetwork::Cluster, "w1").expect("mesh").len(),
            1,
            "no own responder on cluster, one peer"
        );
        assert_eq!(
            t.peers_of(CephNetwork::Public, "w1").expect("mesh").len(),
            2
        );
    }

    #[test]
    fn the_weights_are_sha256s() {
        // SHA-256("a\0b") = 59b271ae1bbcb1d3... (printf 'a\0b' | sha256sum)
        assert_eq!(weight("a", "b"), 0x59b2_71ae_1bbc_b1d3);
    }

    #[test]
    fn targets_are_the_peers_listeners_on_each_network_in_order() {
        let nodes = names(3);
        let responders = vec![
            ("node-1".to_string(), BOTH.to_vec()),
            ("node-2".to_string(), vec![CephNetwork::Public]),
        ];
        let t = Targeting::mesh(&nodes, &responders, 0);
        let listener = |network: CephNetwork, port: u16| Listener {
            network,
            http: std::net::SocketAddr::from(([198, 18, 0, 1], port)),
            https: std::net::SocketAddr::from(([198, 18, 0, 1], port + 1)),
        };
        let ready = BTreeMap::from([
            (
                responder_pod("node-2"),
                Responder {
                    node: "node-2".into(),
                    listeners: vec![listener(CephNetwork::Public, 20)],
                },
            ),
            (
                responder_pod("node-1"),
                Responder {
                    node: "node-1".into(),
                    listeners: vec![
                        listener(CephNetwork::Public, 10),
                        listener(CephNetwork::Cluster, 30),
                    ],
                },
            ),
        ]);
        let ports = |node: &str| -> Vec<u16> {
            t.targets(node, &ready)
                .iter()
                .map(|l| l.http.port())
                .collect()
        };
        assert_eq!(
            ports("node-2"),
            [20, 10, 30],
            "own responder first, per network"
        );
        assert_eq!(ports("node-3"), [10, 20, 30]);
        assert_eq!(Targeting::Single.targets("node-3", &ready).len(), 3);
        // Whom a node probes: node-2's responder is on public only.
        assert!(t.probes(CephNetwork::Public, "node-3", "node-2"));
        assert!(!t.probes(CephNetwork::Cluster, "node-3", "node-2"));
        assert!(t.probes(CephNetwork::Cluster, "node-3", "node-1"));
        // The single server is everyone's.
        assert!(Targeting::Single.probes(CephNetwork::Cluster, "node-3", "node-1"));
    }

    #[test]
    fn responder_networks_follow_the_nodes_pods() {
        let c = RunConfig {
            node_types: BTreeMap::from([
                (
                    "storage".to_string(),
                    multinet_proto::config::NodeType::with_counts(2, 1),
                ),
                (
                    "arbiter".to_string(),
                    multinet_proto::config::NodeType::with_counts(0, 3),
                ),
                (
                    "idle".to_string(),
                    multinet_proto::config::NodeType::with_counts(0, 0),
                ),
            ]),
            ..RunConfig::default()
        };
        assert_eq!(
            responder_networks(&c, "storage", &BOTH),
            Some(BOTH.to_vec())
        );
        assert_eq!(
            responder_networks(&c, "arbiter", &BOTH),
            Some(vec![CephNetwork::Public])
        );
        assert_eq!(responder_networks(&c, "idle", &BOTH), None);
        assert_eq!(
            responder_networks(&c, "arbiter", &[CephNetwork::Cluster]),
            None
        );
        let checks_only = RunConfig {
            host_check_only: true,
            ..c.clone()
        };
        for node_type in ["storage", "arbiter", "idle"] {
            assert_eq!(
                responder_networks(&checks_only, node_type, &BOTH),
                Some(vec![CephNetwork::Public]),
                "{node_type}"
            );
        }
    }
}
