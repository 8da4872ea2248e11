//! `outage`: in a soak, the times a node's paths on a network were down. Each client path
//! keeps its recent outage windows (first failed probe to the next success, the agent's
//! clock); a node's windows on a network are those of its clients' paths merged — the probe
//! kinds are probed one after another, so one outage shows on each kind a little apart — and
//! a window shorter than two probe intervals and a probe timeout (one failed probe's) is loss,
//! left to the `flaky` rule. The rule is [`crate::outage`]'s, which the live metrics apply
//! too.
//!
//! Severity, from what Ceph does with a network that goes away: an outage of
//! `osd_heartbeat_grace` (20 s by default, ceph `src/common/options/global.yaml.in`) or more
//! gets OSDs reported down by their peers and data re-peered — fail; so does availability
//! below 99 % over the soak (the share of the time from the node's first probe to its last
//! that no window covers). A shorter outage is a warning (Ceph rides it out, clients stall).
//! The path findings of the same node and network (`flaky`, `node_unreachable`,
//! `inter_node_blocked`, `mtu_blackhole`, `tls_failure`) are what the outage made of the whole
//! run's figures: they move into the outage's `evidence.explains`.
//!
//! Which paths went down together ([`super::when`]): each window says its scope among the
//! node's paths (`node uplink`: every path at once; `large probes`: an MTU drop; one client …)
//! and the other nodes whose outage windows on the network overlap it (`together_with`);
//! the summary and the first suggestion follow the longest window's.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use serde_json::{Value, json};

use super::when::{self, NodePaths, Together};
use super::{explain, finding};
use crate::findings::{Finding, FindingKind, RunFacts, Severity};
use crate::matrix::PathMatrix;
use crate::outage::{OutageRule, Window};

/// Ceph's `osd_heartbeat_grace` default: an OSD unheard this long is reported down.
pub const OSD_HEARTBEAT_GRACE_MS: u64 = 20_000;
/// Availability below this (per node and network, over the soak) fails the run.
pub const MIN_AVAILABILITY: f64 = 0.99;

/// An outage's weight: fail from `osd_heartbeat_grace` on, or below [`MIN_AVAILABILITY`].
fn severity(longest_ms: u64, availability: f64) -> Severity {
    if longest_ms >= OSD_HEARTBEAT_GRACE_MS || availability < MIN_AVAILABILITY {
        Severity::Fail
    } else {
        Severity::Warn
    }
}

pub(super) fn soak_outages(matrix: &PathMatrix, facts: &RunFacts, out: &mut Vec<Finding>) {
    let Some(min_ms) = facts.soak_min_outage_ms else {
        return;
    };
    let rule = OutageRule { min_ms };
    let clients: BTreeMap<&str, &str> = facts
        .agents
        .iter()
        .filter(|a| a.identity.role == Role::Client)
        .map(|a| (a.identity.pod.as_str(), a.identity.node.as_str()))
        .collect();
    let mut outages: Vec<(CephNetwork, String)> = Vec::new();
    for network in &facts.networks {
        // A mesh's paths to a responder's old addresses or to a lost responder are its own
        // absence, not the network's outage.
        let by_node = when::by_node_where(
            matrix,
            *network,
            |c| clients.get(c).map(|n| n.to_string()),
            |k| {
                facts
                    .mesh
                    .as_ref()
                    .is_none_or(|m| m.target_nodes.contains_key(&k.target))
            },
        );
        // Kinds are probed one after another, each waiting out the probe timeout when
        // blocked: one outage starts on each kind up to a round apart.
        let merged: BTreeMap<String, Vec<Window>> = by_node
            .iter()
            .map(|(node, paths)| (node.clone(), rule.outages(paths.windows(rule, |_| true))))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let all_nodes: BTreeSet<String> = by_node.keys().cloned().collect();
        // A mesh has no server at every path's far end.
        let server = if facts.mesh.is_some() {
            ""
        } else {
            facts.server_node.as_str()
        };
        for (node, windows) in &merged {
            let together = |w: &Window| when::together(node, w, &merged, &all_nodes, server);
            out.push(outage(
                facts,
                rule,
                *network,
                node,
                &by_node[node],
                windows,
                together,
            ));
            outages.push((*network, node.clone()));
        }
    }
    // The path findings the outages explain: the node's own; in a mesh also those whose
    // first node is the outage's (a client node's findings name it first, then responder
    // nodes) and the blocks between it and another node.
    let mesh = facts.mesh.is_some();
    for (network, node) in outages {
        explain(
            out,
            |f| {
                f.kind == FindingKind::Outage
                    && f.network == Some(network)
                    && f.nodes == [node.as_str()]
            },
            |f| {
                matches!(
                    f.kind,
                    FindingKind::Flaky
                        | FindingKind::NodeUnreachable
                        | FindingKind::InterNodeBlocked
                        | FindingKind::MtuBlackhole
                        | FindingKind::TlsFailure
                ) && f.network == Some(network)
                    && (f.nodes.iter().all(|n| *n == node)
                        || mesh
                            && match f.kind {
                                // A pair's block; not the one naming every node.
                                FindingKind::InterNodeBlocked => {
                                    f.nodes.len() == 2 && f.nodes.contains(&node)
                                }
                                FindingKind::NodeUnreachable => false,
                                _ => f.nodes.first() == Some(&node),
                            })
            },
        );
    }
}

/// The `outage` finding of `node` on `network`: its `merged` outage windows (sorted, not
/// empty) among its client `paths`, each with its scope and the other nodes down
/// `together` with it.
fn outage(
    facts: &RunFacts,
    rule: OutageRule,
    network: CephNetwork,
    node: &str,
    paths: &NodePaths<'_>,
    merged: &[Window],
    together: impl Fn(&Window) -> Option<Together>,
) -> Finding {
    let (first, last) = paths.probed_span();
    // By time, not by probe count: a blocked probe waits out its timeout, so an outage
    // has fewer probes than its length deserves.
    let down: u64 = merged.iter().map(|w| w.to_ms - w.from_ms).sum();
    let span = last.saturating_sub(first).max(down).max(1);
    let availability = 1.0 - down as f64 / span as f64;
    let longest_w = when::longest(merged).unwrap_or(merged[0]);
    let longest = longest_w.to_ms - longest_w.from_ms;
    let severity = severity(longest, availability);
    let secs = |ms: u64| ms as f64 / 1000.0;
    let utc = |ms| crate::findings::utc(facts.started_unix_ms, ms);
    let class = |w: &Window| w.failures.dominant().map(|c| c.to_string());
    let scope = paths.scope(&longest_w);
    let with = together(&longest_w);
    let server = if facts.mesh.is_some() {
        ""
    } else {
        facts.server_node.as_str()
    };
    // A mesh's outage says which responders' nodes the longest window cut the node off from.
    let responder_nodes: Option<BTreeSet<String>> = facts.mesh.as_ref().map(|mesh| {
        paths
            .targets_down(&longest_w)
            .iter()
            .filter_map(|t| mesh.all_target_nodes.get(t).cloned())
            .collect()
    });
    // ... and, per responder node it probes, that pair's own outages and availability: the
    // node's windows merge every responder's, one pair's outage lowers the node's figure.
    let per_responder: Option<Vec<Value>> = facts.mesh.as_ref().map(|mesh| {
        let responders: BTreeSet<&String> = paths
            .keys()
            .filter_map(|k| mesh.target_nodes.get(&k.target))
            .collect();
        responders
            .into_iter()
            .map(|responder| {
                let to = |k: &crate::matrix::PathKey| {
                    mesh.target_nodes.get(&k.target) == Some(responder)
                };
                let windows = rule.outages(paths.windows(rule, to));
                let down: u64 = windows.iter().map(|w| w.to_ms - w.from_ms).sum();
                let longest = windows.iter().map(|w| w.to_ms - w.from_ms).max();
                let availability = 1.0 - down as f64 / span.max(down).max(1) as f64;
                json!({
                    "node": responder,
                    "outages": windows.len(),
                    "longest_ms": longest.unwrap_or(0),
                    "availability": (availability * 10_000.0).round() / 10_000.0,
                })
            })
            .collect()
    });
    let toward = responder_nodes.as_ref().map_or(String::new(), |nodes| {
        format!(
            " (to the responders on {})",
            nodes.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    });
    let summary = format!(
        "during the soak the {} network from node {node} was down {} time(s), the longest for {:.1} s (from {} to {}, {:.1} s to {:.1} s into the run, mostly {}{}) {}{toward}{}; availability {:.2}%",
        network.key(),
        merged.len(),
        secs(longest),
        utc(longest_w.from_ms),
        utc(longest_w.to_ms),
        secs(longest_w.from_ms),
        secs(longest_w.to_ms),
        class(&longest_w).unwrap_or_else(|| "unknown".into()),
        if longest_w.ongoing {
            ", still down at the end"
        } else {
            ""
        },
        scope.kind.words(),
        with.as_ref().map_or(String::new(), |t| format!(
            "; {}",
            t.words(facts.started_unix_ms, server)
        )),
        availability * 100.0
    );
    let windows: Vec<Value> = when::shown(merged)
        .iter()
        .map(|w| {
            when::window_json(
                w,
                facts.started_unix_ms,
                Some(&paths.scope(w)),
                together(w).as_ref(),
            )
        })
        .collect();
    let together_with: BTreeSet<String> = merged
        .iter()
        .filter_map(&together)
        .flat_map(|t| t.with.into_iter().map(|(n, _)| n))
        .collect();
    let mut suggestions: Vec<String> = Vec::new();
    if let Some(t) = &with {
        suggestions.push(t.suggestion(server));
    } else {
        suggestions.push(scope.kind.suggestion().to_string());
    }
    suggestions.push("Ceph reports OSDs down after osd_heartbeat_grace (20 s): outages that long re-peer placement groups; shorter ones stall client I/O".into());
    let mut f = finding(
        FindingKind::Outage,
        severity,
        Some(network),
        vec![node.to_string()],
        summary,
        BTreeMap::from([
            ("outages".into(), json!(merged.len())),
            ("longest_ms".into(), json!(longest)),
            (
                "availability".into(),
                json!((availability * 10_000.0).round() / 10_000.0),
            ),
            ("flaps".into(), json!(paths.flaps())),
            ("windows".into(), json!(windows)),
            ("scope".into(), json!(scope.kind.key())),
            ("together_with".into(), json!(together_with)),
            ("clock".into(), json!(when::CLOCK)),
            ("responder_nodes".into(), json!(responder_nodes)),
            ("per_responder".into(), json!(per_responder)),
        ])
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect(),
        &[],
    );
    f.suggestions = suggestions;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_cephs_heartbeat_grace_and_the_availability_floor() {
        assert_eq!(severity(19_999, 0.999), Severity::Warn);
        assert_eq!(severity(20_000, 0.999), Severity::Fail);
        assert_eq!(severity(1_000, 0.989), Severity::Fail);
        assert_eq!(severity(1_000, 0.99), Severity::Warn);
    }
}
