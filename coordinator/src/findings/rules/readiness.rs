//! Rook's readiness rule, a `flaky` warning: every client must pass within the flaky threshold
//! of the first one.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use serde_json::json;

use super::finding;
use crate::findings::{AgentFact, Finding, FindingKind, RunFacts, Severity};

/// Rook's rule: every client must pass within the flaky threshold of the first one.
pub(super) fn rook_flaky_rule(facts: &RunFacts, out: &mut Vec<Finding>) {
    let times: Vec<(u64, &AgentFact)> = facts
        .agents
        .iter()
        .filter(|a| a.identity.role == Role::Client)
        .filter_map(|a| a.passed_at_ms.map(|t| (t, a)))
        .collect();
    let (Some(first), Some(last)) = (
        times.iter().map(|t| t.0).min(),
        times.iter().map(|t| t.0).max(),
    ) else {
        return;
    };
    if last - first <= facts.flaky_threshold_ms {
        return;
    }
    let late: BTreeSet<String> = times
        .iter()
        .filter(|(t, _)| t - first > facts.flaky_threshold_ms)
        .map(|(_, a)| a.identity.node.clone())
        .collect();
    out.push(finding(
        FindingKind::Flaky, Severity::Warn, None, late.into_iter().collect(),
        format!("clients became ready over {} ms, more than the flaky threshold of {} ms", last - first, facts.flaky_threshold_ms),
        BTreeMap::from([("first_ready_ms".into(), json!(first)), ("last_ready_ms".into(), json!(last)), ("threshold_ms".into(), json!(facts.flaky_threshold_ms))]),
        &["the underlying network may be flaky or not have the bandwidth for a production Ceph cluster",
          "on very large clusters or slow networks, raise flakyThreshold and run again"],
    ));
}
