//! `duplicate_address`: two agents holding the same address on one network. Each agent says its
//! addresses when it connects (the backend's, where it never did), so the run sees what the
//! IPAM plugin handed out. Two pods with one address on one L2 segment answer each other's
//! ARP/NDP at random: probes reach the wrong pod or none, and Ceph daemons behind such
//! addresses would lose their peers the same way. The usual causes are `host-local` on a
//! network shared by several nodes (each node allocates from the same range on its own:
//! containernetworking/plugins `plugins/ipam/host-local/backend/disk` keeps its leases in
//! `/var/lib/cni/networks/<name>` on the node), whereabouts reservations that leaked or two NADs whose ranges
//! overlap, and `static` IPAM.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use multinet_proto::network::CephNetwork;
use serde_json::json;

use super::{explain, finding};
use crate::findings::{Finding, FindingKind, RunFacts, Severity};

/// One finding per (network, address) held by more than one agent.
pub(super) fn duplicate_addresses(facts: &RunFacts, out: &mut Vec<Finding>) {
    let mut holders: BTreeMap<(CephNetwork, IpAddr), Vec<(&str, &str)>> = BTreeMap::new();
    for fact in std::iter::once(&facts.server).chain(&facts.agents) {
        for a in &fact.addresses {
            holders
                .entry((a.network, a.addr))
                .or_default()
                .push((fact.identity.pod.as_str(), fact.identity.node.as_str()));
        }
    }
    for ((network, addr), pods) in holders {
        if pods.len() < 2 {
            continue;
        }
        let nodes: BTreeSet<&str> = pods.iter().map(|(_, node)| *node).collect();
        let named: Vec<String> = pods
            .iter()
            .map(|(pod, node)| format!("{pod} (node {node})"))
            .collect();
        let summary = match named.as_slice() {
            [a, b] => format!(
                "pods {a} and {b} both hold {addr} on the {} network",
                network.key()
            ),
            _ => format!(
                "{} pods hold {addr} on the {} network: {}",
                named.len(),
                network.key(),
                named.join(", ")
            ),
        };
        let suggestions = duplicate_address_suggestions(nodes.len() > 1);
        out.push(finding(
            FindingKind::DuplicateAddress,
            Severity::Fail,
            Some(network),
            nodes.iter().map(|n| n.to_string()).collect(),
            summary,
            BTreeMap::from([
                ("address".into(), json!(addr)),
                (
                    "pods".into(),
                    json!(
                        pods.iter()
                            .map(|(pod, node)| json!({"pod": pod, "node": node}))
                            .collect::<Vec<_>>()
                    ),
                ),
            ]),
            suggestions,
        ));
    }
}

/// Path findings on a network where addresses are held twice are explained by that: probes
/// to or from a duplicated address reach whichever pod answered ARP/NDP last, so a path
/// failing (or flapping) there says nothing of its own. Each `node_unreachable`,
/// `inter_node_blocked`, `flaky`, `mtu_blackhole` or `host_unreachable` finding on the
/// network whose nodes all hold a duplicated address (or every one, when the server's address
/// is duplicated) moves into the first `duplicate_address` finding's `evidence.explains`; the
/// verdict counts the cause.
pub(super) fn duplicates_explain(facts: &RunFacts, out: &mut Vec<Finding>) {
    let explicable = |k: FindingKind| {
        matches!(
            k,
            FindingKind::NodeUnreachable
                | FindingKind::InterNodeBlocked
                | FindingKind::Flaky
                | FindingKind::MtuBlackhole
                | FindingKind::HostUnreachable
        )
    };
    let networks: BTreeSet<CephNetwork> = out
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateAddress)
        .filter_map(|f| f.network)
        .collect();
    for network in networks {
        let duplicated: BTreeSet<IpAddr> = out
            .iter()
            .filter(|f| f.kind == FindingKind::DuplicateAddress && f.network == Some(network))
            .filter_map(|f| f.evidence.get("address")?.as_str()?.parse().ok())
            .collect();
        let server_hit = facts
            .server
            .addresses
            .iter()
            .any(|a| a.network == network && duplicated.contains(&a.addr));
        let nodes_hit: BTreeSet<&str> = facts
            .agents
            .iter()
            .filter(|a| {
                a.addresses
                    .iter()
                    .any(|x| x.network == network && duplicated.contains(&x.addr))
            })
            .map(|a| a.identity.node.as_str())
            .collect();
        explain(
            out,
            |f| f.kind == FindingKind::DuplicateAddress && f.network == Some(network),
            |f| {
                explicable(f.kind)
                    && f.network == Some(network)
                    && (server_hit || f.nodes.iter().all(|n| nodes_hit.contains(n.as_str())))
            },
        );
    }
}

/// What to check when two pods hold one address: `across_nodes` when the holders are on more
/// than one node (host-local's per-node leases are the usual cause), else on one node. Shared
/// by the run's finding and `spec check --pods`.
pub(crate) fn duplicate_address_suggestions(across_nodes: bool) -> &'static [&'static str] {
    if across_nodes {
        &[
            "host-local allocates on each node on its own: on a network that spans nodes, use whereabouts (one cluster-wide pool) or give each node a range of its own",
            "with whereabouts: look for reservations of pods that no longer exist in its IPPool objects (`kubectl get ippools.whereabouts.cni.cncf.io -A -o yaml`), and for two NADs whose ranges overlap",
            "with static IPAM: every pod of a Ceph network needs an address of its own, which Rook does not set; use whereabouts",
        ]
    } else {
        &[
            "two pods of one node with one address: two NADs on this network with overlapping ranges, or static IPAM handing out one address to every pod",
            "with whereabouts: look for leaked reservations in its IPPool objects",
        ]
    }
}
