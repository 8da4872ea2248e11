//! The host checkers' rule, `host_unreachable`: a host that cannot reach the server's public
//! address (unless its node's MTU black hole explains it).

use std::collections::BTreeMap;

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::Payload;
use serde_json::json;

use super::{GOOD_RATIO, Tally, finding, is_reporting};
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
        for (key, stats) in matrix.paths() {
            if key.client == a.identity.pod {
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
        let evidence = BTreeMap::from([
            ("host_checker".into(), json!(a.identity.pod)),
            (
                "small_probes".into(),
                json!({"sent": small.sent, "ok": small.ok}),
            ),
            (
                "large_probes".into(),
                json!({"sent": large.sent, "ok": large.ok}),
            ),
        ]);
        out.push(finding(
            FindingKind::HostUnreachable, Severity::Fail, Some(CephNetwork::Public), vec![a.identity.node.clone()],
            format!("the host checker on node {} cannot reach the server's public address", a.identity.node),
            evidence,
            &["the host needs a route to the public network's pod range (for macvlan: a macvlan shim interface with an address and a route)",
              "the public NAD needs a route back to the hosts' range (ipam routes)",
              "a firewall on the host may block the traffic"],
        ));
    }
}
