//! The host checkers' rule, `host_unreachable`: a host that cannot reach the server's public
//! address. Said once per cause: where the node's MTU black hole explains it, nothing more is
//! said; where the node's clients are cut off on the public network too (`node_unreachable`,
//! `inter_node_blocked` naming the node), the host checker's failure is attached to that
//! finding (`evidence.explains`); a host that gets through only sometimes is `flaky`, not
//! unreachable — and where the node's clients are `flaky` on the public network too (loss on
//! the node's uplink, which the host and its pods share), it is attached to their finding, which
//! then fails the run as the host checker's failure did. In a soak a host checker's own finding
//! says when its probes failed ([`super::when::timed`]).

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::Payload;
use serde_json::json;

use super::{GOOD_RATIO, Tally, add_explained, finding, is_reporting, when};
use crate::findings::{Finding, FindingKind, RunFacts, Severity};
use crate::matrix::PathMatrix;

pub(super) fn host_checks(matrix: &PathMatrix, facts: &RunFacts, out: &mut Vec<Finding>) {
    // A host checker whose probes left by the wrong interface is `wrong_egress`, not counted.
    let uncounted = super::egress::uncounted(facts);
    for a in facts.agents.iter().filter(|a| {
        a.identity.role == Role::HostCheck
            && is_reporting(a)
            && a.passed_at_ms.is_none()
            && !uncounted.contains(&(a.identity.pod.clone(), CephNetwork::Public))
    }) {
        let (mut small, mut large) = (Tally::default(), Tally::default());
        // A mesh's host checker probes several responders: per responder node, its probes.
        let mut per_responder: BTreeMap<String, Tally> = BTreeMap::new();
        for (key, stats) in matrix.paths() {
            if key.client == a.identity.pod {
                if let Some(mesh) = &facts.mesh {
                    // Only responders that listen there now and still report.
                    let Some(node) = mesh.target_nodes.get(&key.target) else {
                        continue;
                    };
                    per_responder
                        .entry(node.clone())
                        .or_default()
                        .add(stats.sent, stats.ok);
                }
                match key.kind.payload {
                    Payload::Small => small.add(stats.sent, stats.ok),
                    Payload::Large => large.add(stats.sent, stats.ok),
                }
            }
        }
        // The host reaches the server but large packets vanish: the node's MTU black hole,
        // reported for its clients already, not a missing route.
        let mtu_explained = small.sent > 0
            && small.ratio() >= GOOD_RATIO
            && out
                .iter()
                .any(|f| f.kind == FindingKind::MtuBlackhole && f.nodes.contains(&a.identity.node));
        if mtu_explained {
            continue;
        }
        let (sent, mut ok) = (small.sent + large.sent, small.ok + large.ok);
        // In a mesh, responders it never once reached make it unreachable (naming them),
        // however well the others answer; otherwise those that failed at all are named.
        let never: BTreeSet<String> = per_responder
            .iter()
            .filter(|(_, t)| t.sent > 0 && t.ok == 0)
            .map(|(n, _)| n.clone())
            .collect();
        let failing_to: BTreeSet<String> = if never.is_empty() {
            per_responder
                .iter()
                .filter(|(_, t)| t.ok < t.sent)
                .map(|(n, _)| n.clone())
                .collect()
        } else {
            ok = 0;
            never
        };
        if facts.mesh.is_some() && failing_to.is_empty() {
            // Every responder it probes now answers it: nothing to say of the network.
            continue;
        }
        let host_evidence = json!({
            "kind": if ok > 0 { "flaky" } else { "host_unreachable" },
            "host_checker": a.identity.pod,
            "small_probes": {"sent": small.sent, "ok": small.ok},
            "large_probes": {"sent": large.sent, "ok": large.ok},
        });
        let node = &a.identity.node;
        // A mesh's finding explains the host checker's when it is about the responders the
        // host failed to reach (and, for a block, about the host's node too).
        let covers = |f: &Finding| failing_to.iter().all(|t| f.nodes.contains(t));
        if let Some(cause) = out.iter_mut().find(|f| {
            if facts.mesh.is_some() {
                let explains = match f.kind {
                    FindingKind::NodeUnreachable => f.nodes == [node.clone()] || covers(f),
                    FindingKind::InterNodeBlocked => f.nodes.contains(node) && covers(f),
                    FindingKind::ServerUnavailable => covers(f),
                    FindingKind::Flaky => {
                        ok > 0
                            && f.evidence.contains_key("clients")
                            && f.nodes.first() == Some(node)
                    }
                    _ => false,
                };
                return explains && f.network == Some(CephNetwork::Public);
            }
            let explains = match f.kind {
                FindingKind::NodeUnreachable | FindingKind::InterNodeBlocked => true,
                // Lossy clients explain a lossy host, not a host that never gets through
                // (a missing host route is a cause of its own).
                FindingKind::Flaky => ok > 0 && f.evidence.contains_key("clients"),
                _ => false,
            };
            explains && f.network == Some(CephNetwork::Public) && f.nodes.contains(&a.identity.node)
        }) {
            add_explained(cause, host_evidence);
            // The host checker did not pass: the cause now fails the run for it.
            cause.severity = Severity::Fail;
            continue;
        }
        let target = if facts.mesh.is_some() {
            format!(
                "the public addresses of the responders on {}",
                failing_to.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        } else {
            "the server's public address".to_string()
        };
        let failing_to = (!failing_to.is_empty()).then(|| json!(failing_to));
        if ok > 0 {
            out.push(finding(
                FindingKind::Flaky, Severity::Fail, Some(CephNetwork::Public), vec![a.identity.node.clone()],
                format!("the host checker on node {} reaches {target} only sometimes: {ok} of {sent} probes passed", a.identity.node),
                BTreeMap::from([
                    ("host_checker".into(), json!(a.identity.pod)),
                    ("small_probes".into(), json!({"sent": small.sent, "ok": small.ok})),
                    ("large_probes".into(), json!({"sent": large.sent, "ok": large.ok})),
                    ("responder_nodes".into(), failing_to.clone().unwrap_or_default()),
                ]).into_iter().filter(|(_, v)| !v.is_null()).collect(),
                &["the host's path to the public network loses packets: check error and drop counters on the node's public interface (or shim) and its switch port",
                  "a host route that exists but flaps (a routing daemon, DHCP renewing the shim's address)"],
            ));
            timed(out, matrix, facts, &a.identity.pod);
            continue;
        }
        let evidence = BTreeMap::from([
            ("responder_nodes".into(), failing_to.unwrap_or_default()),
            ("host_checker".into(), json!(a.identity.pod)),
            (
                "small_probes".into(),
                json!({"sent": small.sent, "ok": small.ok}),
            ),
            (
                "large_probes".into(),
                json!({"sent": large.sent, "ok": large.ok}),
            ),
        ])
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
        out.push(finding(
            FindingKind::HostUnreachable, Severity::Fail, Some(CephNetwork::Public), vec![a.identity.node.clone()],
            format!("the host checker on node {} cannot reach {target}", a.identity.node),
            evidence,
            &["the host needs a route to the public network's pod range (for macvlan: a macvlan shim interface with an address and a route)",
              "the public NAD needs a route back to the hosts' range (ipam routes)",
              "a firewall on the host may block the traffic"],
        ));
        timed(out, matrix, facts, &a.identity.pod);
    }
}

/// In a soak, when host checker `pod`'s probes failed, for the finding last pushed to `out`
/// ([`when::timed`]; its paths are one host's, so no scope among a node's paths).
fn timed(out: &mut [Finding], matrix: &PathMatrix, facts: &RunFacts, pod: &str) {
    let pods = BTreeSet::from([pod.to_string()]);
    when::timed(
        out,
        matrix,
        facts,
        CephNetwork::Public,
        &pods,
        |_| true,
        false,
    );
}
