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
//! `inter_node_blocked`) are what the outage made of the whole run's figures: they move into
//! the outage's `evidence.explains`.

use std::collections::BTreeMap;

use multinet_proto::control::Role;
use serde_json::json;

use super::{explain, finding};
use crate::findings::{Finding, FindingKind, RunFacts, Severity};
use crate::matrix::PathMatrix;
use crate::outage::{OutageRule, Window};

/// Ceph's `osd_heartbeat_grace` default: an OSD unheard this long is reported down.
pub const OSD_HEARTBEAT_GRACE_MS: u64 = 20_000;
/// Availability below this (per node and network, over the soak) fails the run.
pub const MIN_AVAILABILITY: f64 = 0.99;
/// Windows kept in a finding's evidence: the longest and the most recent ones.
const WINDOWS_SHOWN: usize = 5;

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
    let clients: BTreeMap<&str, &str> = facts
        .agents
        .iter()
        .filter(|a| a.identity.role == Role::Client)
        .map(|a| (a.identity.pod.as_str(), a.identity.node.as_str()))
        .collect();
    // (network, node) → (windows, first and last probe, flaps)
    let mut by_node: BTreeMap<_, (Vec<Window>, (u64, u64), u64)> = BTreeMap::new();
    for (key, stats) in matrix.paths() {
        let Some(node) = clients.get(key.client.as_str()) else {
            continue;
        };
        let e = by_node
            .entry((key.network, *node))
            .or_insert_with(|| (Vec::new(), (u64::MAX, 0), 0));
        let last = stats.last_ms.unwrap_or_default();
        e.1.0 = e.1.0.min(stats.first_ms.unwrap_or(last));
        e.1.1 = e.1.1.max(last);
        e.2 += stats.flaps;
        e.0.extend(stats.recent_outages.iter().map(|o| Window {
            from_ms: o.from_ms,
            to_ms: o.to_ms.unwrap_or(last).max(o.from_ms),
            ongoing: o.to_ms.is_none(),
            failures: o.failures,
        }));
    }
    let mut outages: Vec<(multinet_proto::network::CephNetwork, String)> = Vec::new();
    for ((network, node), (windows, (first, last), flaps)) in by_node {
        // Kinds are probed one after another, each waiting out the probe timeout when
        // blocked: one outage starts on each kind up to a round apart.
        let merged: Vec<Window> = OutageRule { min_ms }.outages(windows);
        if merged.is_empty() {
            continue;
        }
        // By time, not by probe count: a blocked probe waits out its timeout, so an outage
        // has fewer probes than its length deserves.
        let down: u64 = merged.iter().map(|w| w.to_ms - w.from_ms).sum();
        let span = last.saturating_sub(first).max(down).max(1);
        let availability = 1.0 - down as f64 / span as f64;
        let longest = merged
            .iter()
            .map(|w| w.to_ms - w.from_ms)
            .max()
            .unwrap_or(0);
        let severity = severity(longest, availability);
        let mut shown: Vec<Window> = merged.clone();
        shown.sort_by_key(|w| std::cmp::Reverse(w.to_ms - w.from_ms));
        shown.truncate(WINDOWS_SHOWN);
        for w in merged.iter().rev().take(WINDOWS_SHOWN) {
            if !shown.contains(w) {
                shown.push(*w);
            }
        }
        shown.sort_by_key(|w| w.from_ms);
        let secs = |ms: u64| ms as f64 / 1000.0;
        let longest_w = merged
            .iter()
            .max_by_key(|w| w.to_ms - w.from_ms)
            .copied()
            .unwrap_or(merged[0]);
        let utc = |ms| crate::findings::utc(facts.started_unix_ms, ms);
        let class = |w: &Window| w.failures.dominant().map(|c| c.to_string());
        let summary = format!(
            "during the soak the {} network from node {node} was down {} time(s), the longest for {:.1} s (from {} to {}, {:.1} s to {:.1} s into the run, mostly {}{}); availability {:.2}%",
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
            availability * 100.0
        );
        out.push(finding(
            FindingKind::Outage,
            severity,
            Some(network),
            vec![node.to_string()],
            summary,
            BTreeMap::from([
                ("outages".into(), json!(merged.len())),
                ("longest_ms".into(), json!(longest)),
                ("availability".into(), json!((availability * 10_000.0).round() / 10_000.0)),
                ("flaps".into(), json!(flaps)),
                (
                    "windows".into(),
                    json!(shown.iter().map(|w| json!({
                        "from": utc(w.from_ms),
                        "to": utc(w.to_ms),
                        "from_ms": w.from_ms,
                        "to_ms": w.to_ms,
                        "duration_ms": w.to_ms - w.from_ms,
                        "ongoing": w.ongoing,
                        "failed_probes": w.failures.total(),
                        "class": class(w),
                    })).collect::<Vec<_>>()),
                ),
                ("clock".into(), json!("from and to: UTC; _ms: ms since the run started (its started_at)")),
            ]),
            &[
                "an outage that every client of the node shares is the node's uplink, its switch port or the switch: check their logs and counters for the window's time",
                "Ceph reports OSDs down after osd_heartbeat_grace (20 s): outages that long re-peer placement groups; shorter ones stall client I/O",
            ],
        ));
        outages.push((network, node.to_string()));
    }
    // The path findings the outages explain.
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
                ) && f.network == Some(network)
                    && f.nodes.iter().all(|n| *n == node)
            },
        );
    }
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
