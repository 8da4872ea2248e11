//! The rules over one network's client paths, node by node: `inter_node_blocked` (only the
//! server's node passes), `node_unreachable` (one node's clients all fail), and for the nodes
//! left `mtu_blackhole` (large probes fail), `tls_failure` (HTTPS fails) and `flaky` (lossy
//! paths, or clients that never passed while their node's others did). In a soak each also says
//! when its paths failed and, for one node's, which of them failed together ([`super::when`]).

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Payload, Scheme};
use serde_json::{Value, json};

use super::agents::server_unavailable;
use super::when;
use super::{BAD_RATIO, FLAKY_RATIO, GOOD_RATIO, NodeNet, Tally, finding};
use crate::findings::{Finding, FindingKind, RunFacts, Severity};
use crate::matrix::{PathKey, PathMatrix};

pub(super) fn network_rules(
    matrix: &PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
    by_node: &BTreeMap<String, NodeNet>,
    out: &mut Vec<Finding>,
) {
    let net = network.key();
    let server_side = by_node.get(&facts.server_node);
    let others: Vec<(&String, &NodeNet)> = by_node
        .iter()
        .filter(|(n, _)| **n != facts.server_node)
        .collect();
    let broken_others: Vec<&String> = others
        .iter()
        .filter(|(_, t)| t.broken())
        .map(|(n, _)| *n)
        .collect();
    let server_side_works = server_side.is_some_and(|t| t.passing > 0 && !t.broken());
    let mut explained: BTreeSet<&String> = BTreeSet::new();

    if server_side.is_some_and(NodeNet::broken)
        && !others.is_empty()
        && others.iter().all(|(_, t)| t.broken())
    {
        out.push(server_unavailable(facts, Some(network)));
        return;
    }
    if server_side_works && !others.is_empty() && broken_others.len() == others.len() {
        let mut evidence = BTreeMap::new();
        evidence.insert("server_node".into(), json!(facts.server_node));
        for (node, t) in by_node {
            evidence.insert(format!("node {node}"), json!(t.evidence()));
        }
        out.push(finding(
            FindingKind::InterNodeBlocked, Severity::Fail, Some(network), broken_others.iter().map(|n| n.to_string()).collect(),
            format!("on the {net} network, clients on the server's node {} pass but clients on every other node fail", facts.server_node),
            evidence,
            &["traffic between nodes on this network is blocked: check firewalls and security policies (nftables/iptables on the hosts, cloud security groups) for the NAD's subnet",
              "macvlan/ipvlan: the switch ports must accept frames for the pods' MAC addresses (promiscuous mode, MAC limits, port security)",
              "check that the NAD's master interface is the same, up and cabled to the same L2 segment on every node"],
        ));
        let clients: BTreeSet<String> = broken_others
            .iter()
            .filter_map(|n| by_node.get(*n))
            .flat_map(|t| t.clients.iter().cloned())
            .collect();
        when::timed(out, matrix, facts, network, &clients, |_| true, false);
        explained.extend(broken_others.iter().copied());
    } else {
        for (node, t) in by_node {
            let other_ok = by_node.iter().any(|(n, x)| n != node && x.passing > 0);
            if t.broken() && other_ok {
                out.push(finding(
                    FindingKind::NodeUnreachable, Severity::Fail, Some(network), vec![node.clone()],
                    format!("on the {net} network, no client on node {node} reaches the server while other nodes' clients do"),
                    t.evidence(),
                    &["check this node's uplink for the network: link state, VLAN, cabling, the NAD's master interface name",
                      "check firewall rules on this node for the network's subnet",
                      "macvlan: the node's NIC or switch port may limit the number of MAC addresses"],
                ));
                when::timed(out, matrix, facts, network, &t.clients, |_| true, true);
                explained.insert(node);
            }
        }
    }
    for (node, t) in by_node {
        if explained.contains(node) || t.healthy() && t.flaps == 0 && t.all.ratio() >= FLAKY_RATIO {
            continue;
        }
        if t.small.ratio() >= GOOD_RATIO && t.large.sent > 0 && t.large.ratio() <= BAD_RATIO {
            let mut ev = t.evidence();
            ev.insert(
                "small_probes".into(),
                json!({"sent": t.small.sent, "ok": t.small.ok}),
            );
            ev.insert(
                "large_probes".into(),
                json!({"sent": t.large.sent, "ok": t.large.ok}),
            );
            out.push(finding(
                FindingKind::MtuBlackhole, Severity::Fail, Some(network), vec![node.clone()],
                format!("on the {net} network, small probes from node {node} pass but large ones fail: packets above some size are dropped"),
                ev,
                &["compare the NAD's mtu with the MTU of the master interface and of every switch port on the path; the underlay must carry the NAD's MTU",
                  "if jumbo frames are intended, enable them end to end (NICs, bonds, VLAN interfaces, switches)",
                  "ICMP 'fragmentation needed' must not be filtered, or path MTU discovery cannot help"],
            ));
            let large = |k: &PathKey| k.kind.payload == Payload::Large;
            when::timed(out, matrix, facts, network, &t.clients, large, true);
        } else if t.http.ratio() >= GOOD_RATIO && t.https.sent > 0 && t.https.ratio() <= BAD_RATIO {
            let mut ev = t.evidence();
            ev.insert(
                "http_probes".into(),
                json!({"sent": t.http.sent, "ok": t.http.ok}),
            );
            ev.insert(
                "https_probes".into(),
                json!({"sent": t.https.sent, "ok": t.https.ok}),
            );
            out.push(finding(
                FindingKind::TlsFailure, Severity::Fail, Some(network), vec![node.clone()],
                format!("on the {net} network, HTTP from node {node} passes but HTTPS fails"),
                ev,
                &["something on the path interferes with TLS (a proxy, DPI or a middlebox rewriting traffic)",
                  "check for MTU problems that only the larger TLS handshake hits"],
            ));
            let https = |k: &PathKey| k.kind.scheme == Scheme::Https;
            when::timed(out, matrix, facts, network, &t.clients, https, true);
        } else if t.all.sent > 0 && (t.all.ratio() < FLAKY_RATIO || t.flaps >= 2) {
            let mut ev = t.evidence();
            ev.insert("flaps".into(), json!(t.flaps));
            ev.insert(
                "outages_ms".into(),
                json!(
                    t.outages
                        .iter()
                        .map(crate::report::PathOutage::from)
                        .collect::<Vec<_>>()
                ),
            );
            let severity = if t.healthy() {
                Severity::Warn
            } else {
                Severity::Fail
            };
            out.push(finding(
                FindingKind::Flaky, severity, Some(network), vec![node.clone()],
                format!("on the {net} network, probes from node {node} succeed {:.1}% of the time with {} flap(s)", t.all.ratio() * 100.0, t.flaps),
                ev,
                &["the network may be lossy or congested: check interface error and drop counters on this node and its switch port",
                  "a production Ceph cluster needs a stable network even if this test passes: repeat with a soak run"],
            ));
            when::timed(out, matrix, facts, network, &t.clients, |_| true, true);
        } else if !t.healthy() {
            // The node as a whole looks fine, but some of its clients never passed: their
            // paths, not the node's, are what fails.
            let lagging = lagging_clients(matrix, facts, network, t);
            let mut ev = t.evidence();
            ev.insert("clients_not_passing".into(), json!(lagging));
            out.push(finding(
                FindingKind::Flaky, Severity::Fail, Some(network), vec![node.clone()],
                format!("on the {net} network, {} of {} client(s) on node {node} never reached {} consecutive successes on every probe kind, while the node's other probes pass", t.clients.len() - t.passing, t.clients.len(), facts.success_threshold),
                ev,
                &["a failure that follows particular pods, not the node: the switch port or NIC may limit the number of MAC addresses (macvlan), or two pods got the same address",
                  "the failing probe kinds and their failure classes in the evidence say which connections fail: large probes point at MTU, HTTPS at TLS-sized packets",
                  "repeat with a soak run to see whether the same pods keep failing"],
            ));
            when::timed(out, matrix, facts, network, &t.clients, |_| true, true);
        }
    }
}

/// The clients of `t` that did not pass on `network`, each with its probes and failures (at
/// most 10).
fn lagging_clients(
    matrix: &PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
    t: &NodeNet,
) -> Vec<Value> {
    t.clients
        .iter()
        .filter(|c| !matrix.client_passes(c, network, facts.success_threshold))
        .take(10)
        .map(|client| {
            let mut all = Tally::default();
            let mut failing_kinds = Vec::new();
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            for (key, stats) in matrix.paths() {
                if key.network != network || key.client != *client {
                    continue;
                }
                all.add(stats.sent, stats.ok);
                if stats.ok < stats.sent && !failing_kinds.contains(&key.kind) {
                    failing_kinds.push(key.kind);
                }
                for (class, count) in &stats.failures {
                    *failures.entry(class.to_string()).or_default() += count;
                }
            }
            json!({"client": client, "probes_sent": all.sent, "probes_ok": all.ok,
                   "failing_kinds": failing_kinds, "failures": failures})
        })
        .collect()
}
