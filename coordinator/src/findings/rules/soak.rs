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
//!
//! In a mesh soak every node's clients probe every node's responder, and one broken pair
//! must not read as its client node's outage: a node's own `outage` is the time every pair of
//! it was down at once, and each (client node, responder node) pair has its own outages and
//! finding ([`pairs`], [`cut_off`]).

mod cut_off;
mod pairs;

pub use pairs::{PairOutages, pair_outages};

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use serde_json::{Value, json};

use super::when::{self, NodePaths, Together};
use super::{add_explained, finding};
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

/// The client paths of `network` by node. A mesh's paths to a responder's old addresses or to
/// a lost responder are its own absence, not the network's outage: left out.
fn client_paths<'a>(
    matrix: &'a PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
) -> BTreeMap<String, NodePaths<'a>> {
    let clients: BTreeMap<&str, &str> = facts
        .agents
        .iter()
        .filter(|a| a.identity.role == Role::Client)
        .map(|a| (a.identity.pod.as_str(), a.identity.node.as_str()))
        .collect();
    when::by_node_where(
        matrix,
        network,
        |c| clients.get(c).map(|n| n.to_string()),
        |k| {
            facts
                .mesh
                .as_ref()
                .is_none_or(|m| m.target_nodes.contains_key(&k.target))
        },
    )
}

fn down_ms(windows: &[Window]) -> u64 {
    windows.iter().map(|w| w.to_ms - w.from_ms).sum()
}

/// The share of `(first, last)` (ms) that `windows` do not cover. By time, not by probe
/// count: a blocked probe waits out its timeout, so an outage has fewer probes than its
/// length deserves.
fn availability(windows: &[Window], (first, last): (u64, u64)) -> f64 {
    let down = down_ms(windows);
    let span = last.saturating_sub(first).max(down).max(1);
    1.0 - down as f64 / span as f64
}

/// `x` to 4 decimals, as availabilities are written.
fn ratio4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Which outage finding explains what, for moving the path findings under it: the nodes of
/// the outage finding that stands for a node's paths (its own `outage`) or for one pair's.
#[derive(Debug, Default)]
struct Causes {
    /// (network, node) with a node `outage` → its windows.
    nodes: BTreeMap<(CephNetwork, String), Vec<Window>>,
    /// (network, client node, responder node) → the outage finding that holds that pair's
    /// outages: the pair's own, or its responder node's.
    pairs: BTreeMap<(CephNetwork, String, String), PairCause>,
}

/// The outage finding that holds a mesh pair's outages.
#[derive(Debug)]
struct PairCause {
    /// Its `nodes`: `[client node, responder node]` for the pair's own finding,
    /// `[responder node]` for its responder node's outage.
    nodes: Vec<String>,
    /// The windows that finding tells of the pair (ms since the run started): a path finding
    /// goes under it only when its failures lie inside them.
    windows: Vec<Window>,
}

impl Causes {
    /// The `nodes` of the outage finding that explains path finding `f`, if one does: a
    /// node's outage explains that node's own findings (in a mesh, those its clients make
    /// first, and the block between it and another node); in a mesh a pair's explains a
    /// client node's finding when every responder it names is one of the node's pairs with
    /// an outage (the finding goes under the first responder's), and a block between two
    /// nodes.
    ///
    /// In a mesh (`mesh` its outage rule) a node's outage is the time every pair of it was down
    /// at once, often seconds, not the union of its pairs' windows: it explains a finding only
    /// when the finding's failures (its first to its last failed probe) lie inside the node's
    /// windows, parts outside shorter than the shortest outage ([`cut_off::explained`]) —
    /// a persistent MTU problem of one pair is not its client node's uplink blip. So does a
    /// pair's: its finding's windows must hold the path finding's failures.
    fn of(&self, f: &Finding, mesh: Option<OutageRule>) -> Option<Vec<String>> {
        if !matches!(
            f.kind,
            FindingKind::Flaky
                | FindingKind::NodeUnreachable
                | FindingKind::InterNodeBlocked
                | FindingKind::MtuBlackhole
                | FindingKind::TlsFailure
        ) {
            return None;
        }
        let network = f.network?;
        let first = f.nodes.first()?;
        let inside = |n: &String| {
            let Some(windows) = self.nodes.get(&(network, n.clone())) else {
                return false;
            };
            mesh.is_none_or(|rule| failed_within(f, windows, rule))
        };
        let node = |n: &String| inside(n).then(|| vec![n.clone()]);
        let pair = |from: &String, to: &String| {
            let cause = self.pairs.get(&(network, from.clone(), to.clone()))?;
            let rule = mesh?;
            failed_within(f, &cause.windows, rule).then(|| cause.nodes.clone())
        };
        if f.nodes.iter().all(|n| n == first)
            && let Some(cause) = node(first)
        {
            return Some(cause);
        }
        mesh?;
        match f.kind {
            // A pair's block; not the one naming every node.
            FindingKind::InterNodeBlocked => match f.nodes.as_slice() {
                [a, b] => node(a)
                    .or_else(|| node(b))
                    .or_else(|| pair(a, b))
                    .or_else(|| pair(b, a)),
                _ => None,
            },
            FindingKind::NodeUnreachable => None,
            // A client node's finding: it names the node, then responder nodes.
            _ => node(first).or_else(|| {
                let responders = f.evidence.get("responder_nodes")?.as_array()?;
                let causes: Option<Vec<Vec<String>>> = responders
                    .iter()
                    .map(|r| pair(first, &r.as_str()?.to_string()))
                    .collect();
                causes?.into_iter().next()
            }),
        }
    }

    /// Moves the path findings of `out` that an outage finding explains under it
    /// ([`Self::of`]), each with its severity; in a mesh (`mesh` its outage rule) one that
    /// weighs more than that outage stays where it is, its weight in the verdict.
    fn explain(&self, out: &mut Vec<Finding>, mesh: Option<OutageRule>) {
        let mut moved: Vec<(Vec<String>, Finding)> = Vec::new();
        let mut kept: Vec<Finding> = Vec::new();
        for f in std::mem::take(out) {
            match self.of(&f, mesh) {
                Some(cause) => moved.push((cause, f)),
                None => kept.push(f),
            }
        }
        *out = kept;
        for (cause, f) in moved {
            let holder = out.iter_mut().find(|c| {
                c.kind == FindingKind::Outage
                    && c.network == f.network
                    && c.nodes == cause
                    && (mesh.is_none() || f.severity <= c.severity)
            });
            match holder {
                Some(c) => add_explained(
                    c,
                    json!({"kind": f.kind, "nodes": f.nodes, "severity": f.severity, "summary": f.summary}),
                ),
                None => out.push(f),
            }
        }
    }
}

pub(super) fn soak_outages(matrix: &PathMatrix, facts: &RunFacts, out: &mut Vec<Finding>) {
    let Some(min_ms) = facts.soak_min_outage_ms else {
        return;
    };
    let rule = OutageRule { min_ms };
    let mut causes = Causes::default();
    for network in &facts.networks {
        let network = *network;
        let by_node = client_paths(matrix, facts, network);
        if facts.mesh.is_some() {
            pairs::mesh_outages(facts, rule, network, &by_node, &mut causes, out);
            continue;
        }
        // Kinds are probed one after another, each waiting out the probe timeout when
        // blocked: one outage starts on each kind up to a round apart.
        let merged: BTreeMap<String, Vec<Window>> = by_node
            .iter()
            .map(|(node, paths)| (node.clone(), rule.outages(paths.windows(rule, |_| true))))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let all_nodes: BTreeSet<String> = by_node.keys().cloned().collect();
        for (node, windows) in &merged {
            let together =
                |w: &Window| when::together(node, w, &merged, &all_nodes, &facts.server_node);
            let paths = &by_node[node];
            out.push(outage(facts, network, node, paths, windows, together, None));
            causes
                .nodes
                .insert((network, node.clone()), windows.clone());
        }
    }
    causes.explain(out, facts.mesh.is_some().then_some(rule));
}

/// Whether path finding `f`'s failures — its first to its last failed probe (`evidence`
/// `first_failure_ms`, `last_failure_ms`) — lie inside `windows` ([`cut_off::explained`]);
/// not without them.
fn failed_within(f: &Finding, windows: &[Window], rule: OutageRule) -> bool {
    let at = |key: &str| f.evidence.get(key).and_then(Value::as_u64);
    let (Some(first), Some(last)) = (at("first_failure_ms"), at("last_failure_ms")) else {
        return false;
    };
    let failed = Window {
        from_ms: first,
        // A probe's time, not a point: one failed probe inside a window is inside it.
        to_ms: last.max(first) + 1,
        ongoing: false,
        failures: Default::default(),
    };
    cut_off::explained(&failed, windows, rule)
}

/// Every outage finding's last suggestion.
pub(super) const HEARTBEAT_SUGGESTION: &str = "Ceph reports OSDs down after osd_heartbeat_grace (20 s): outages that long re-peer placement groups; shorter ones stall client I/O";

/// The `outage` finding of `node` on `network`: its `merged` outage windows (sorted, not
/// empty; in a mesh, those that cut it off from every responder) among its client `paths`,
/// each with its scope and the other nodes down `together` with it; in a mesh, each pair's
/// own figures (`per_responder`).
fn outage(
    facts: &RunFacts,
    network: CephNetwork,
    node: &str,
    paths: &NodePaths<'_>,
    merged: &[Window],
    together: impl Fn(&Window) -> Option<Together>,
    per_responder: Option<Vec<Value>>,
) -> Finding {
    let availability = availability(merged, paths.probed_span());
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
    suggestions.push(HEARTBEAT_SUGGESTION.into());
    let mut f = finding(
        FindingKind::Outage,
        severity,
        Some(network),
        vec![node.to_string()],
        summary,
        BTreeMap::from([
            ("outages".into(), json!(merged.len())),
            ("longest_ms".into(), json!(longest)),
            ("availability".into(), json!(ratio4(availability))),
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
