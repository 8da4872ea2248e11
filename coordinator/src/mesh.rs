//! Mesh runs (`run --mesh`, `mesh: true`): a responder on every node instead of the seed's one
//! server, and every node's clients and host checker probing the responders of their peers, so
//! that a run sees the node × node matrix of each network — the goldpinger view, on Multus
//! networks. A block between two nodes that are not the server's is invisible to the
//! single-server run (every client reaches the server) and shows here.
//!
//! Which responders a node probes is [`Targeting`]: every node's (`--mesh`), or its own and
//! K others chosen by rendezvous hashing (`--mesh-peers K`, [`rendezvous`]). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Listener;

/// The pod name of the responder on `node` in a mesh run (the single run's server is
/// `server`).
pub fn responder_pod(node: &str) -> String {
    format!("server-{node}")
}

/// Which responders the agents of each node probe.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targeting {
    /// Every agent probes the one server (the seed's run).
    #[default]
    Single,
    /// Each node's agents probe the responders on these nodes: their own node's first (when
    /// it has one), then their peers in order of choice.
    Mesh {
        /// Source node → responder nodes.
        peers: BTreeMap<String, Vec<String>>,
        /// Other nodes per node (`--mesh-peers`); `None`: every node.
        peers_per_node: Option<u32>,
    },
}

impl Targeting {
    /// The mesh over `responders` (the nodes that have a responder) for the agents of
    /// `nodes`: each node probes its own responder and `peers_per_node` others (0: all).
    pub fn mesh(nodes: &[String], responders: &[String], peers_per_node: u32) -> Self {
        let peers = nodes
            .iter()
            .map(|node| {
                let others: Vec<String> =
                    responders.iter().filter(|r| *r != node).cloned().collect();
                let chosen = if peers_per_node == 0 {
                    others
                } else {
                    rendezvous(node, &others, peers_per_node as usize)
                };
                let own = responders.iter().find(|r| *r == node).cloned();
                (node.clone(), own.into_iter().chain(chosen).collect())
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

    /// The responder nodes the agents of `node` probe; `None` in a single-server run (they
    /// probe the server, wherever it is).
    pub fn peers_of(&self, node: &str) -> Option<&[String]> {
        match self {
            Targeting::Single => None,
            Targeting::Mesh { peers, .. } => Some(peers.get(node).map_or(&[], Vec::as_slice)),
        }
    }

    /// The listeners an agent on `node` is told to probe, given the ready responders (pod →
    /// its node and listeners): in a single-server run every responder's (there is one); in
    /// a mesh its peers', in [`Self::peers_of`]'s order.
    pub fn targets(&self, node: &str, ready: &BTreeMap<String, Responder>) -> Vec<Listener> {
        match self.peers_of(node) {
            None => ready
                .values()
                .flat_map(|r| r.listeners.iter().copied())
                .collect(),
            Some(peers) => peers
                .iter()
                .flat_map(|peer| ready.values().filter(move |r| r.node == *peer))
                .flat_map(|r| r.listeners.iter().copied())
                .collect(),
        }
    }

    /// The directed node pairs (source, responder node) the run probes; empty in a
    /// single-server run.
    pub fn covered(&self) -> BTreeSet<(String, String)> {
        match self {
            Targeting::Single => BTreeSet::new(),
            Targeting::Mesh { peers, .. } => peers
                .iter()
                .flat_map(|(from, to)| to.iter().map(move |t| (from.clone(), t.clone())))
                .collect(),
        }
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
pub fn target_nodes(
    responders: &BTreeMap<String, Responder>,
) -> BTreeMap<std::net::SocketAddr, String> {
    responders
        .values()
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
    use multinet_proto::network::CephNetwork;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn a_full_mesh_probes_every_node_own_first() {
        let nodes = names(4);
        let t = Targeting::mesh(&nodes, &nodes, 0);
        assert_eq!(
            t.peers_of("node-3").expect("mesh"),
            ["node-3", "node-1", "node-2", "node-4"]
        );
        assert_eq!(t.covered().len(), 16, "4 x 4 directed pairs");
        assert!(Targeting::Single.peers_of("node-3").is_none());
    }

    #[test]
    fn k_peers_are_k_other_nodes_and_stable_as_nodes_come_and_go() {
        let nodes = names(40);
        let t = Targeting::mesh(&nodes, &nodes, 3);
        for node in &nodes {
            let peers = t.peers_of(node).expect("mesh");
            assert_eq!(peers.len(), 4, "own and 3 others: {peers:?}");
            assert_eq!(&peers[0], node);
            assert_eq!(
                peers.iter().collect::<BTreeSet<_>>().len(),
                4,
                "no node twice"
            );
        }
        // One node more: each node's choice changes by at most that node.
        let mut more = nodes.clone();
        more.push("node-41".into());
        let t2 = Targeting::mesh(&more, &more, 3);
        // One node less: only the nodes that had chosen it choose again, one new each.
        let fewer: Vec<String> = nodes.iter().filter(|n| *n != "node-7").cloned().collect();
        let t3 = Targeting::mesh(&fewer, &fewer, 3);
        for node in fewer.iter().filter(|n| *n != "node-41") {
            let before: BTreeSet<&String> = t.peers_of(node).expect("mesh").iter().collect();
            let after: BTreeSet<&String> = t2.peers_of(node).expect("mesh").iter().collect();
            let gone: Vec<_> = before.difference(&after).collect();
            assert!(
                gone.is_empty() || after.contains(&"node-41".to_string()) && gone.len() == 1,
                "{node}: {before:?} → {after:?}"
            );
            let after: BTreeSet<&String> = t3.peers_of(node).expect("mesh").iter().collect();
            let kept = before.intersection(&after).count();
            let lost_node_7 = before.contains(&"node-7".to_string());
            assert_eq!(kept, if lost_node_7 { 3 } else { 4 }, "{node}");
        }
    }

    #[test]
    fn peers_spread_over_the_nodes() {
        // Every node is chosen by some others, and none by far more than its share.
        let nodes = names(64);
        let t = Targeting::mesh(&nodes, &nodes, 4);
        let mut chosen: BTreeMap<String, usize> = BTreeMap::new();
        for (from, to) in t.covered() {
            if from != to {
                *chosen.entry(to).or_default() += 1;
            }
        }
        assert_eq!(chosen.values().sum::<usize>(), 64 * 4);
        let max = chosen.values().max().copied().unwrap_or(0);
        assert!(max <= 12, "a node chosen {max} times (mean 4): {chosen:?}");
    }

    #[test]
    fn the_weights_are_sha256s() {
        // SHA-256("a\0b") = 59b271ae1bbcb1d3... (printf 'a\0b' | sha256sum)
        assert_eq!(weight("a", "b"), 0x59b2_71ae_1bbc_b1d3);
    }

    #[test]
    fn targets_are_the_peers_listeners_in_order() {
        let nodes = names(3);
        let t = Targeting::mesh(&nodes, &nodes[..2], 0);
        let listener = |port: u16| Listener {
            network: CephNetwork::Public,
            http: std::net::SocketAddr::from(([198, 18, 0, 1], port)),
            https: std::net::SocketAddr::from(([198, 18, 0, 1], port + 1)),
        };
        let ready = BTreeMap::from([
            (
                responder_pod("node-2"),
                Responder {
                    node: "node-2".into(),
                    listeners: vec![listener(20)],
                },
            ),
            (
                responder_pod("node-1"),
                Responder {
                    node: "node-1".into(),
                    listeners: vec![listener(10)],
                },
            ),
        ]);
        let ports = |node: &str| -> Vec<u16> {
            t.targets(node, &ready)
                .iter()
                .map(|l| l.http.port())
                .collect()
        };
        assert_eq!(ports("node-2"), [20, 10], "own responder first");
        assert_eq!(
            ports("node-3"),
            [10, 20],
            "a node without a responder probes the others"
        );
        assert_eq!(Targeting::Single.targets("node-3", &ready).len(), 2);
    }
}
