//! `not_validated`: in a mesh, a network left unvalidated from a node because every responder
//! its agents probe there was gone at the end — they had nothing to pass on
//! (`supervisor::decide`, stranded agents). The responders' own findings (`agent_lost`,
//! `address_unavailable`, `scheduling`) say why they are gone; this one says what their
//! absence left unknown: whether those nodes reach the others on that network.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use serde_json::{Value, json};

use super::{finding, is_reporting};
use crate::findings::{AgentFact, Finding, FindingKind, MeshFacts, RunFacts, Severity};

/// One `not_validated` finding per network where a node's clients or host checker, still
/// reporting at the end and not passed, had every responder their node probes there gone
/// (`mesh.peers`; a responder is gone when it did not report to the end). `nodes` are those
/// nodes; `evidence.nodes` has, per node, the responder nodes it probes there and its agents
/// left without a pass.
pub(super) fn not_validated(facts: &RunFacts, mesh: &MeshFacts, out: &mut Vec<Finding>) {
    let responders: Vec<&AgentFact> = std::iter::once(&facts.server)
        .chain(facts.agents.iter())
        .filter(|a| a.identity.role == Role::Server)
        .collect();
    // A responder node is gone on a network when it has responders there and none reported
    // to the end.
    let gone = |node: &str, network: CephNetwork| {
        let mut on = responders
            .iter()
            .filter(|r| r.identity.node == node && r.identity.networks.contains(&network))
            .peekable();
        on.peek().is_some() && on.all(|r| !is_reporting(r))
    };
    for (network, by_node) in &mesh.peers {
        let mut stranded: BTreeMap<&str, (&[String], Vec<&str>)> = BTreeMap::new();
        for agent in facts.agents.iter().filter(|a| {
            a.identity.role != Role::Server
                && a.identity.networks.contains(network)
                && a.passed_at_ms.is_none()
                && is_reporting(a)
        }) {
            let node = agent.identity.node.as_str();
            let Some(peers) = by_node.get(node).filter(|p| !p.is_empty()) else {
                continue;
            };
            if peers.iter().all(|p| gone(p, *network)) {
                stranded
                    .entry(node)
                    .or_insert_with(|| (peers.as_slice(), Vec::new()))
                    .1
                    .push(agent.identity.pod.as_str());
            }
        }
        if stranded.is_empty() {
            continue;
        }
        let nodes: Vec<String> = stranded.keys().map(|n| n.to_string()).collect();
        let all_responders: BTreeSet<&String> = stranded
            .values()
            .flat_map(|(peers, _)| peers.iter())
            .collect();
        let evidence: BTreeMap<String, Value> = stranded
            .iter()
            .map(|(node, (peers, agents))| {
                (
                    node.to_string(),
                    json!({"responder_nodes": peers, "agents": agents}),
                )
            })
            .collect();
        out.push(finding(
            FindingKind::NotValidated,
            Severity::Fail,
            Some(*network),
            nodes.clone(),
            format!(
                "the {} network was not validated from node(s) {}: every responder they probe there (on {}) was gone, so their agents had nothing to pass on",
                network.key(),
                nodes.join(", "),
                all_responders
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            BTreeMap::from([("nodes".into(), json!(evidence))]),
            &[
                "the responders' own findings (agent_lost, address_unavailable, scheduling) say why they are gone",
                "until they run, nothing says whether these nodes reach the others on this network: run again once they do (with --mesh-peers K, a larger K gives each node more responders to lose)",
            ],
        ));
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::control::AgentIdentity;

    use super::*;
    use crate::findings::AgentFate;

    fn agent(pod: &str, node: &str, role: Role, fate: AgentFate, passed: bool) -> AgentFact {
        AgentFact {
            identity: AgentIdentity {
                role,
                node: node.into(),
                pod: pod.into(),
                networks: vec![CephNetwork::Public, CephNetwork::Cluster],
            },
            fate,
            passed_at_ms: passed.then_some(1_000),
            exit: None,
            addresses: Vec::new(),
            egress: None,
        }
    }

    fn facts(agents: Vec<AgentFact>, peers: &[(&str, &[&str])]) -> (RunFacts, MeshFacts) {
        let by_node: BTreeMap<String, Vec<String>> = peers
            .iter()
            .map(|(n, p)| (n.to_string(), p.iter().map(|p| p.to_string()).collect()))
            .collect();
        let mesh = MeshFacts {
            target_nodes: BTreeMap::new(),
            all_target_nodes: BTreeMap::new(),
            peers: [CephNetwork::Public, CephNetwork::Cluster]
                .into_iter()
                .map(|n| (n, by_node.clone()))
                .collect(),
            peers_per_node: Some(1),
        };
        let both = vec![CephNetwork::Public, CephNetwork::Cluster];
        let facts = RunFacts {
            networks: both,
            server_node: "n1".into(),
            nodes: peers.iter().map(|(n, _)| n.to_string()).collect(),
            server: agent("server-n1", "n1", Role::Server, AgentFate::Reported, false),
            agents,
            success_threshold: 12,
            flaky_threshold_ms: 30_000,
            control_network_isolated: true,
            soak_min_outage_ms: None,
            started_unix_ms: 1_796_000_000_000,
            agent_outages: Vec::new(),
            mesh: Some(mesh.clone()),
        };
        (facts, mesh)
    }

    const LOST: AgentFate = AgentFate::Lost { at_ms: 2_000 };

    /// `--mesh-peers 1` on three nodes: n1 probes n1 and n2, n2 probes n2 and n1, n3 probes n3
    /// and n1. The responders on n1 and n2 lost: n1's and n2's clients had nothing left (not
    /// passed), n3's passed on its own. One finding per network naming n1 and n2.
    #[test]
    fn a_node_whose_every_responder_is_gone_is_not_validated_on_that_network() {
        let agents = vec![
            agent("server-n2", "n2", Role::Server, LOST, false),
            agent("server-n3", "n3", Role::Server, AgentFate::Reported, false),
            agent("c-n1", "n1", Role::Client, AgentFate::Reported, false),
            agent("c-n2", "n2", Role::Client, AgentFate::Reported, false),
            agent("c-n3", "n3", Role::Client, AgentFate::Reported, true),
        ];
        let (mut facts, mesh) = facts(
            agents,
            &[
                ("n1", &["n1", "n2"]),
                ("n2", &["n2", "n1"]),
                ("n3", &["n3", "n1"]),
            ],
        );
        facts.server = agent("server-n1", "n1", Role::Server, LOST, false);
        let mut out = Vec::new();
        not_validated(&facts, &mesh, &mut out);
        assert_eq!(out.len(), 2, "{out:#?}");
        for f in &out {
            assert_eq!(f.kind, FindingKind::NotValidated);
            assert_eq!(f.severity, Severity::Fail);
            assert_eq!(f.nodes, ["n1", "n2"]);
            assert_eq!(
                f.evidence["nodes"]["n1"],
                json!({"responder_nodes": ["n1", "n2"], "agents": ["c-n1"]})
            );
            assert!(f.summary.contains("(on n1, n2)"), "{}", f.summary);
        }
        // A responder back by the end (reporting): validated, or not passed for a reason of
        // the paths' own — no `not_validated`.
        facts.server.fate = AgentFate::Reported;
        let mut out = Vec::new();
        not_validated(&facts, &mesh, &mut out);
        assert!(out.is_empty(), "{out:#?}");
    }

    /// An agent that passed before its responders went, or that is itself gone, leaves
    /// nothing unvalidated by this rule (its own `agent_lost` says the second).
    #[test]
    fn passed_or_gone_agents_are_not_stranded() {
        let agents = vec![
            agent("server-n2", "n2", Role::Server, LOST, false),
            agent("c-n1", "n1", Role::Client, AgentFate::Reported, true),
            agent("c-n2", "n2", Role::Client, LOST, false),
        ];
        let (mut facts, mesh) = facts(agents, &[("n1", &["n1", "n2"]), ("n2", &["n2", "n1"])]);
        facts.server = agent("server-n1", "n1", Role::Server, LOST, false);
        let mut out = Vec::new();
        not_validated(&facts, &mesh, &mut out);
        assert!(out.is_empty(), "{out:#?}");
    }
}
