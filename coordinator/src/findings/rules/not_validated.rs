//! `not_validated`: in a mesh, a network left unvalidated from a node because every responder
//! its agents probe there was gone — for `flakyThreshold` when the probe stage ended, so they
//! were *stranded* (`supervisor::decide`) — and they never passed since. The responders' own
//! findings (`agent_lost`, `address_unavailable`) say why they were gone; this one says what
//! their absence left unknown: whether those nodes reach the others on that network.

use std::collections::BTreeMap;

use multinet_proto::control::Role;
use serde_json::{Value, json};

use super::{finding, is_reporting};
use crate::findings::{Finding, FindingKind, MeshFacts, RunFacts, Severity};

/// One `not_validated` finding per network where some node's clients or host checker,
/// stranded on it when the probe stage ended (`facts.stranded`), never passed and were still
/// reporting at the end (an agent that stopped is its own `agent_lost`). `nodes` are those
/// nodes; `evidence.nodes` has, per node, the responder nodes it probes there
/// (`mesh.peers`) and its agents left without a pass.
pub(super) fn not_validated(facts: &RunFacts, mesh: &MeshFacts, out: &mut Vec<Finding>) {
    for (network, by_node) in &mesh.peers {
        let mut stranded: BTreeMap<&str, (&[String], Vec<&str>)> = BTreeMap::new();
        for agent in facts.agents.iter().filter(|a| {
            a.identity.role != Role::Server
                && a.passed_at_ms.is_none()
                && is_reporting(a)
                && facts
                    .stranded
                    .get(&a.identity.pod)
                    .is_some_and(|on| on.contains(network))
        }) {
            let node = agent.identity.node.as_str();
            let peers = by_node.get(node).map_or(&[][..], Vec::as_slice);
            stranded
                .entry(node)
                .or_insert_with(|| (peers, Vec::new()))
                .1
                .push(agent.identity.pod.as_str());
        }
        if stranded.is_empty() {
            continue;
        }
        let nodes: Vec<String> = stranded.keys().map(|n| n.to_string()).collect();
        let mut responders: Vec<&str> = stranded
            .values()
            .flat_map(|(peers, _)| peers.iter().map(String::as_str))
            .collect();
        responders.sort_unstable();
        responders.dedup();
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
                "the {} network was not validated from node(s) {}: every responder they probe there (on {}) had been gone for the flaky threshold ({} s) when the probe stage ended, and their agents never passed",
                network.key(),
                nodes.join(", "),
                responders.join(", "),
                facts.flaky_threshold_ms / 1000,
            ),
            BTreeMap::from([("nodes".into(), json!(evidence))]),
            &[
                "the responders' own findings (agent_lost, address_unavailable, agent_outage) and their fates in the report's agents say why they were gone",
                "until they run, nothing says whether these nodes reach the others on this network: run again once they do (with --mesh-peers K, a larger K gives each node more responders to lose)",
            ],
        ));
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::control::AgentIdentity;
    use multinet_proto::network::CephNetwork;

    use super::*;
    use crate::findings::{AgentFact, AgentFate};

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

    /// `--mesh-peers 1` on three nodes: n1 probes n1 and n2, n2 probes n2 and n1, n3 probes
    /// n3 and n1; the responders on n1 and n2 lost. `stranded`: what the supervisor recorded.
    fn facts(agents: Vec<AgentFact>, stranded: &[(&str, &[CephNetwork])]) -> (RunFacts, MeshFacts) {
        let by_node: BTreeMap<String, Vec<String>> = [
            ("n1", ["n1", "n2"]),
            ("n2", ["n2", "n1"]),
            ("n3", ["n3", "n1"]),
        ]
        .into_iter()
        .map(|(n, p)| (n.to_string(), p.iter().map(|p| p.to_string()).collect()))
        .collect();
        let both = vec![CephNetwork::Public, CephNetwork::Cluster];
        let mesh = MeshFacts {
            target_nodes: BTreeMap::new(),
            all_target_nodes: BTreeMap::new(),
            peers: both.iter().map(|n| (*n, by_node.clone())).collect(),
            peers_per_node: Some(1),
        };
        let lost = AgentFate::Lost { at_ms: 2_000 };
        let mut agents = agents;
        agents.push(agent("server-n2", "n2", Role::Server, lost.clone(), false));
        let facts = RunFacts {
            networks: both,
            server_node: "n3".into(),
            nodes: vec!["n1".into(), "n2".into(), "n3".into()],
            server: agent("server-n3", "n3", Role::Server, AgentFate::Reported, false),
            agents,
            success_threshold: 12,
            flaky_threshold_ms: 30_000,
            control_network_isolated: true,
            soak_min_outage_ms: None,
            started_unix_ms: 1_796_000_000_000,
            agent_outages: Vec::new(),
            mesh: Some(mesh.clone()),
            stranded: stranded
                .iter()
                .map(|(pod, on)| (pod.to_string(), on.to_vec()))
                .collect(),
        };
        (facts, mesh)
    }

    const BOTH: &[CephNetwork] = &[CephNetwork::Public, CephNetwork::Cluster];

    /// n1's and n2's clients stranded on both networks and never passed; n3's passed on its
    /// own responder. One finding per network naming n1 and n2, their responders and agents.
    #[test]
    fn stranded_agents_that_never_passed_leave_their_networks_not_validated() {
        let agents = vec![
            agent(
                "server-n1",
                "n1",
                Role::Server,
                AgentFate::Lost { at_ms: 2_000 },
                false,
            ),
            agent("c-n1", "n1", Role::Client, AgentFate::Reported, false),
            agent("c-n2", "n2", Role::Client, AgentFate::Reported, false),
            agent("c-n3", "n3", Role::Client, AgentFate::Reported, true),
        ];
        let (facts, mesh) = facts(agents, &[("c-n1", BOTH), ("c-n2", BOTH)]);
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
        // Stranded on public only: the cluster network is not said.
        let (facts, mesh) = facts_public_only();
        let mut out = Vec::new();
        not_validated(&facts, &mesh, &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].network, Some(CephNetwork::Public));
    }

    fn facts_public_only() -> (RunFacts, MeshFacts) {
        let agents = vec![agent(
            "c-n1",
            "n1",
            Role::Client,
            AgentFate::Reported,
            false,
        )];
        facts(agents, &[("c-n1", &[CephNetwork::Public])])
    }

    /// Review of the stranding rule: the finding is the supervisor's record, not the fates
    /// at the end. An agent whose paths failed for real while its responders were here, and
    /// whose responders were lost before the end but not stranded it (less than the grace),
    /// is not said unvalidated; a stranded agent that passed in the soak after its
    /// responders came back is not either; nor one that stopped reporting itself.
    #[test]
    fn only_stranded_agents_still_without_a_pass_and_reporting_are_said() {
        let agents = vec![
            agent("c-n1", "n1", Role::Client, AgentFate::Reported, false),
            agent("c-n2", "n2", Role::Client, AgentFate::Reported, true),
            agent(
                "c-n3",
                "n3",
                Role::Client,
                AgentFate::Lost { at_ms: 9_000 },
                false,
            ),
        ];
        let (facts, mesh) = facts(agents, &[("c-n2", BOTH), ("c-n3", BOTH)]);
        let mut out = Vec::new();
        not_validated(&facts, &mesh, &mut out);
        assert!(out.is_empty(), "{out:#?}");
    }
}
