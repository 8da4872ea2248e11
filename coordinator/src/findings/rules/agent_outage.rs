//! `agent_outage`: the times an agent was away from the run — its connection to
//! the coordinator gone (lost, process killed, pod gone) until it said Hello again, as the
//! same process (a reconnect) or a new one (a restart), or until the end. Told apart from the
//! network's `outage`: an agent away reports nothing, so none of its paths failed — they were
//! not measured, and neither their outages nor their availability count that time. When the
//! server agent is away, every path is unmeasured for that time (its probes fail because
//! nobody answers, which is no network outage either; the soak ends once the server has been
//! away for the supervisor's patience).
//!
//! What counts: a restart (a new process: the old one crashed or was killed), in any run; and
//! in a soak also an absence still open at the end, or one as long as the soak's shortest
//! network outage (two probe intervals and a probe timeout). Shorter reconnects (a control
//! connection that dropped and came straight back), and outside a soak every absence without
//! a restart (an agent away to the end there is `agent_lost`), are in the report's
//! `agent_outages` and not a finding. Severity warn: the network was not found at fault; an
//! agent that never came back is also `agent_lost`.

use std::collections::BTreeMap;

use multinet_proto::control::Role;
use serde_json::json;

use super::finding;
use crate::findings::{AgentOutages, Finding, FindingKind, RunFacts, Severity};
use crate::roster::absences::Return;

/// Windows kept in a finding's evidence (the report's `agent_outages` has them all kept).
const WINDOWS_SHOWN: usize = 5;

/// Whether an agent's absences make a finding: a restart always; in a soak whose shortest
/// outage is `min_ms` (`soak_min_ms`), also an absence open at the end or that long.
fn worth_a_finding(agent: &AgentOutages, soak_min_ms: Option<u64>) -> bool {
    agent.absences.restarts > 0
        || soak_min_ms.is_some_and(|min_ms| {
            agent
                .windows()
                .iter()
                .any(|w| w.duration_ms >= min_ms || w.ongoing)
        })
}

pub(super) fn agent_outages(facts: &RunFacts, out: &mut Vec<Finding>) {
    for agent in facts
        .agent_outages
        .iter()
        .filter(|a| worth_a_finding(a, facts.soak_min_outage_ms))
    {
        let id = &agent.identity;
        let windows = agent.windows();
        let Some(longest) = windows.iter().max_by_key(|w| w.duration_ms).copied() else {
            continue;
        };
        let secs = |ms: u64| ms as f64 / 1000.0;
        let how = match (longest.ongoing, longest.returned) {
            (false, Some(Return::Restarted)) => "came back restarted (a new process)",
            (false, Some(Return::Reconnected)) => "came back reconnected (the same process)",
            _ => "still away at the end",
        };
        let unmeasured = if id.role == Role::Server {
            "every path was unmeasured meanwhile (nobody answered its probes): not a network outage"
        } else {
            "its paths were not measured meanwhile: not a network outage"
        };
        let summary = format!(
            "the {} agent {} on node {} was away from the run {} time(s), {:.1} s in all, the longest from {:.1} s to {:.1} s into the run ({:.1} s, {how}); {} restart(s); {unmeasured}",
            role_name(id.role),
            id.pod,
            id.node,
            agent.absences.count,
            secs(agent.away_ms()),
            secs(longest.from_ms),
            secs(longest.to_ms),
            secs(longest.duration_ms),
            agent.absences.restarts,
        );
        let mut shown = windows.clone();
        shown.sort_by_key(|w| std::cmp::Reverse(w.duration_ms));
        shown.truncate(WINDOWS_SHOWN);
        shown.sort_by_key(|w| w.from_ms);
        out.push(finding(
            FindingKind::AgentOutage,
            Severity::Warn,
            None,
            vec![id.node.clone()],
            summary,
            BTreeMap::from([
                ("pod".into(), json!(id.pod)),
                ("role".into(), json!(id.role)),
                ("outages".into(), json!(agent.absences.count)),
                ("away_ms".into(), json!(agent.away_ms())),
                ("restarts".into(), json!(agent.absences.restarts)),
                ("windows".into(), json!(shown)),
                (
                    "clock".into(),
                    json!("ms since the run started (the coordinator's clock)"),
                ),
            ]),
            &[
                "an agent that restarted crashed or was killed: look at its pod's events (OOMKilled, evicted, liveness) and its previous logs (kubectl logs --previous)",
                "an agent away without a restart lost its control connection: check the pod network between the agent and the coordinator, not the storage networks",
            ],
        ));
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
        Role::HostCheck => "host checker",
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::control::AgentIdentity;
    use multinet_proto::network::CephNetwork;

    use super::*;
    use crate::roster::absences::Absences;

    fn agent(role: Role, absences: Absences) -> AgentOutages {
        AgentOutages {
            identity: AgentIdentity {
                role,
                node: "n2".into(),
                pod: "client-n2-0".into(),
                networks: vec![CephNetwork::Public],
            },
            absences,
            end_ms: 60_000,
        }
    }

    fn away(spans: &[(u64, Option<u64>, Return)]) -> Absences {
        let mut a = Absences::default();
        for (from, to, how) in spans {
            a.left(*from);
            if let Some(to) = to {
                a.returned(*to, *how);
            }
        }
        a
    }

    fn run(agents: Vec<AgentOutages>, soak: Option<u64>) -> Vec<Finding> {
        let facts = RunFacts {
            networks: vec![CephNetwork::Public],
            server_node: "n1".into(),
            nodes: vec!["n1".into(), "n2".into()],
            server: crate::findings::AgentFact {
                identity: AgentIdentity {
                    role: Role::Server,
                    node: "n1".into(),
                    pod: "server".into(),
                    networks: vec![CephNetwork::Public],
                },
                fate: crate::findings::AgentFate::Reported,
                passed_at_ms: None,
                exit: None,
                addresses: Vec::new(),
                egress: None,
            },
            agents: Vec::new(),
            success_threshold: 12,
            flaky_threshold_ms: 15_000,
            control_network_isolated: true,
            soak_min_outage_ms: soak,
            started_unix_ms: 1_796_000_000_000,
            agent_outages: agents,
            mesh: None,
            stranded: Default::default(),
        };
        let mut out = Vec::new();
        agent_outages(&facts, &mut out);
        out
    }

    #[test]
    fn a_restart_is_an_agent_outage_with_its_window() {
        let found = run(
            vec![agent(
                Role::Client,
                away(&[(10_200, Some(21_700), Return::Restarted)]),
            )],
            Some(4_400),
        );
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(
            (f.kind, f.severity, f.nodes.clone()),
            (FindingKind::AgentOutage, Severity::Warn, vec!["n2".into()])
        );
        assert!(f.summary.contains("client-n2-0"), "{}", f.summary);
        assert!(f.summary.contains("came back restarted"), "{}", f.summary);
        assert!(f.summary.contains("not a network outage"), "{}", f.summary);
        assert_eq!(f.evidence["restarts"], json!(1));
        assert_eq!(
            f.evidence["windows"],
            json!([{"from_ms": 10_200, "to_ms": 21_700, "duration_ms": 11_500, "ongoing": false, "returned": "restarted"}])
        );
    }

    #[test]
    fn an_agent_away_to_the_end_and_the_server_away_say_what_was_unmeasured() {
        let found = run(
            vec![
                agent(Role::Client, away(&[(30_000, None, Return::Reconnected)])),
                agent(
                    Role::Server,
                    away(&[(5_000, Some(10_000), Return::Reconnected)]),
                ),
            ],
            Some(4_400),
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].summary.contains("still away at the end"));
        assert_eq!(found[0].evidence["away_ms"], json!(30_000));
        assert!(found[1].summary.contains("every path was unmeasured"));
    }

    #[test]
    fn short_reconnects_make_no_finding_and_outside_a_soak_only_restarts_do() {
        let blip = || away(&[(5_000, Some(5_300), Return::Reconnected)]);
        assert!(run(vec![agent(Role::Client, blip())], Some(4_400)).is_empty());
        let long = || away(&[(5_000, Some(15_000), Return::Reconnected)]);
        assert_eq!(run(vec![agent(Role::Client, long())], Some(4_400)).len(), 1);
        assert!(run(vec![agent(Role::Client, long())], None).is_empty());
        let restart = away(&[(5_000, Some(15_000), Return::Restarted)]);
        assert_eq!(run(vec![agent(Role::Client, restart)], None).len(), 1);
    }
}
