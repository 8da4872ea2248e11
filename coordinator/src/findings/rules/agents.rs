//! The rules over the agents' own fates, before any path is judged: `server_unavailable`,
//! `agent_lost` (stopped reporting, or never connected), `address_unavailable` (pods without
//! an address on a network) and `scheduling` (pods not scheduled or started).

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use serde_json::{Value, json};

use super::finding;
use crate::findings::{AgentFact, AgentFate, Finding, FindingKind, RunFacts, Severity};

pub(super) fn server_unavailable(facts: &RunFacts, network: Option<CephNetwork>) -> Finding {
    let mut cause: Option<MasterCause> = None;
    // A mesh's `server` is the responder on the server's node, one of several.
    let who = if facts.mesh.is_some() {
        "the responder"
    } else {
        "the server"
    };
    let (summary, reason) = match (&facts.server.fate, network) {
        (_, Some(n)) => (
            format!(
                "{who} is not reachable on the {} network, not even from its own node {}",
                n.key(),
                facts.server_node
            ),
            Value::Null,
        ),
        (AgentFate::Lost { at_ms }, None) => (
            format!(
                "{who} agent on node {} stopped reporting {at_ms} ms into the run",
                facts.server_node
            ),
            Value::Null,
        ),
        (AgentFate::NoAddress { network, reason }, None) => {
            cause = master_cause(reason, &facts.server_node);
            (
                match &cause {
                    Some(c) => format!(
                        "{who} on node {} got no address on the {} network: {}",
                        facts.server_node,
                        network.key(),
                        c.said
                    ),
                    None => format!(
                        "{who} on node {} got no address on the {} network",
                        facts.server_node,
                        network.key()
                    ),
                },
                json!(reason),
            )
        }
        (AgentFate::NotStarted { reason } | AgentFate::Failed { reason }, None) => (
            format!("{who} on node {} did not start", facts.server_node),
            json!(reason),
        ),
        (_, None) => (
            format!("{who} on node {} never became ready", facts.server_node),
            Value::Null,
        ),
    };
    let general = [
        "without the server no path can be judged: look at the server pod's events and logs first",
        "check that the NADs give the server's node an address on every network (IPAM range, master interface present)",
    ];
    // A missing master or an MTU it cannot carry: that fix first.
    let suggestions: Vec<&str> = cause
        .as_ref()
        .map(|c| c.fix.as_str())
        .into_iter()
        .chain(general)
        .collect();
    let mut evidence: BTreeMap<String, Value> = BTreeMap::from([
        ("server".into(), json!(facts.server.identity.pod)),
        ("fate".into(), json!(facts.server.fate)),
        ("detail".into(), reason),
        ("exit".into(), json!(facts.server.exit)),
    ]);
    evidence.extend(cause.iter().flat_map(|c| c.evidence.clone()));
    finding(
        FindingKind::ServerUnavailable,
        Severity::Fail,
        network,
        vec![facts.server_node.clone()],
        summary,
        evidence.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        &suggestions,
    )
}

/// Adds how the agent's process ended, when the backend saw it.
fn with_exit(mut entry: Value, agent: &AgentFact) -> Value {
    if let (Some(exit), Some(map)) = (&agent.exit, entry.as_object_mut()) {
        map.insert("exit".into(), json!(exit));
    }
    entry
}

/// A failed ADD whose cause is the NAD's master, as [`crate::cni_reason::read`] reads it:
/// what to say, the fix to lead with, and the evidence (`missing_master`; or `master`,
/// `nad_mtu`, `master_mtu`). `nodes` names the nodes concerned.
struct MasterCause {
    said: String,
    fix: String,
    evidence: Vec<(String, Value)>,
}

fn master_cause(reason: &str, nodes: &str) -> Option<MasterCause> {
    let said = crate::cni_reason::read(reason);
    match said {
        crate::cni_reason::Said {
            master: Some(master),
            missing: true,
            ..
        } => Some(MasterCause {
            said: format!("the master interface {master:?} is missing on node(s) {nodes}"),
            fix: format!(
                "create the NAD's master interface {master:?} on node(s) {nodes}, or point the NAD's `master` at the interface these nodes have on this network"
            ),
            evidence: vec![("missing_master".into(), json!(master))],
        }),
        crate::cni_reason::Said {
            master,
            nad_mtu: Some(nad_mtu),
            master_mtu,
            ..
        } => {
            let master = master.unwrap_or_else(|| "(the NAD's master)".into());
            let theirs = master_mtu.map_or(String::new(), |m| format!(" {m}"));
            Some(MasterCause {
                said: format!(
                    "the NAD's MTU {nad_mtu} is above the MTU{theirs} of the master interface {master:?} on node(s) {nodes}"
                ),
                fix: format!(
                    "raise the MTU of {master:?} on node(s) {nodes} to at least {nad_mtu} (and the switch ports behind it), or lower the NAD's `mtu` to{theirs} or less on every node: a macvlan or ipvlan interface cannot be larger than its master"
                ),
                evidence: vec![
                    ("master".into(), json!(master)),
                    ("nad_mtu".into(), json!(nad_mtu)),
                    ("master_mtu".into(), json!(master_mtu)),
                ],
            })
        }
        _ => None,
    }
}

pub(super) fn agent_failures(facts: &RunFacts, out: &mut Vec<Finding>) {
    let mut lost: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut never_connected: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut no_address: BTreeMap<CephNetwork, (BTreeSet<String>, Vec<String>, usize)> =
        BTreeMap::new();
    let mut not_started: Vec<&AgentFact> = Vec::new();
    // A server or responder not reporting has its own finding, which explains the pods not
    // started for it.
    let servers_reporting = std::iter::once(&facts.server)
        .chain(
            facts
                .agents
                .iter()
                .filter(|a| a.identity.role == Role::Server),
        )
        .all(|a| a.fate == AgentFate::Reported);
    for a in &facts.agents {
        match &a.fate {
            AgentFate::Reported => {}
            AgentFate::Lost { at_ms } => lost.entry(&a.identity.node).or_default().push(with_exit(
                json!({"agent": a.identity.pod, "lost_at_ms": at_ms}),
                a,
            )),
            AgentFate::NeverConnected => {
                never_connected
                    .entry(&a.identity.node)
                    .or_default()
                    .push(with_exit(
                        json!({"agent": a.identity.pod, "never_connected": true}),
                        a,
                    ))
            }
            AgentFate::Failed { reason } => lost
                .entry(&a.identity.node)
                .or_default()
                .push(json!({"agent": a.identity.pod, "failed": reason})),
            AgentFate::NoAddress { network, reason } => {
                let e = no_address.entry(*network).or_default();
                e.0.insert(a.identity.node.clone());
                if !e.1.contains(reason) && e.1.len() < 5 {
                    e.1.push(reason.clone());
                }
                e.2 += 1;
            }
            AgentFate::NotStarted { reason }
                if !servers_reporting && reason == crate::findings::NOT_STARTED_FOR_THE_SERVER => {}
            AgentFate::NotStarted { .. } => not_started.push(a),
        }
    }
    for (node, agents) in lost {
        out.push(finding(
            FindingKind::AgentLost, Severity::Fail, None, vec![node.to_string()],
            format!("{} agent(s) on node {node} stopped reporting; their paths are not judged", agents.len()),
            BTreeMap::from([("agents".into(), json!(agents))]),
            &["this is the agent's own failure, not a network verdict: look at the pod's logs, restarts and OOM kills",
              "the control plane uses the default pod network: check that it works on this node"],
        ));
    }
    // Never connected: its process started (a backend that could tell it never started says
    // so as not started), but never reached the coordinator — nothing was lost.
    for (node, agents) in never_connected {
        out.push(finding(
            FindingKind::AgentLost, Severity::Fail, None, vec![node.to_string()],
            format!("{} agent(s) on node {node} never connected to the coordinator; their paths are not judged", agents.len()),
            BTreeMap::from([("agents".into(), json!(agents))]),
            &["the agent started but did not reach the coordinator: its log says why (for a pod, `kubectl logs`; `exit` here when it ended)",
              "the control plane uses the default pod network: check that pods on this node reach the coordinator's pod (a NetworkPolicy, the node's CNI)"],
        ));
    }
    for (network, (nodes, reasons, count)) in no_address {
        let expected = facts
            .agents
            .iter()
            // Clients, and a mesh's other responders.
            .filter(|a| {
                a.identity.role != Role::HostCheck && a.identity.networks.contains(&network)
            })
            .count()
            + usize::from(facts.server.identity.networks.contains(&network));
        let mut evidence = BTreeMap::from([
            ("without_address".into(), json!(count)),
            ("expected".into(), json!(expected)),
            ("got".into(), json!(expected - count)),
            ("errors".into(), json!(reasons)),
        ]);
        let general = [
            "the IPAM range may be too small for the worst case: `multinet spec check --nads ... --nodes N` shows the arithmetic",
            "the NAD's master interface may be missing on these nodes",
            "check the pods' events and the Multus logs for the CNI error",
        ];
        // The plugin's words about the master (completed by the runtime, `cni_reason`): a
        // missing master or an MTU it cannot carry is the cause, said first and by name.
        let nodes_named = nodes.iter().cloned().collect::<Vec<_>>().join(", ");
        let (summary, suggestions) =
            match reasons.iter().find_map(|r| master_cause(r, &nodes_named)) {
                Some(cause) => {
                    evidence.extend(cause.evidence);
                    (
                        format!(
                            "{count} of {expected} pods got no address on the {} network: {}",
                            network.key(),
                            cause.said
                        ),
                        std::iter::once(cause.fix)
                            .chain([general[2].to_string()])
                            .collect::<Vec<_>>(),
                    )
                }
                None => (
                    format!(
                        "{count} of {expected} pods got no address on the {} network",
                        network.key()
                    ),
                    general.iter().map(|s| s.to_string()).collect(),
                ),
            };
        let suggestions: Vec<&str> = suggestions.iter().map(String::as_str).collect();
        out.push(finding(
            FindingKind::AddressUnavailable,
            Severity::Fail,
            Some(network),
            nodes.into_iter().collect(),
            summary,
            evidence,
            &suggestions,
        ));
    }
    if !not_started.is_empty() {
        let nodes: BTreeSet<String> = not_started
            .iter()
            .map(|a| a.identity.node.clone())
            .collect();
        let reasons: Vec<Value> = not_started
            .iter()
            .take(10)
            .map(|a| match &a.fate {
                AgentFate::NotStarted { reason } => {
                    json!({"agent": a.identity.pod, "reason": reason})
                }
                _ => Value::Null,
            })
            .collect();
        let said = |part: &str| {
            not_started.iter().any(
                |a| matches!(&a.fate, AgentFate::NotStarted { reason } if reason.contains(part)),
            )
        };
        // Advice for the reasons there are; the placement advice when none is more specific.
        let mut advice: Vec<&str> = Vec::new();
        if said("cannot pull image") {
            advice.push("the image cannot be pulled: check its name and tag, that the nodes reach its registry, and the pull secret");
        }
        if said("refused") || said("cannot create its pods") {
            advice.push("the API server refused pods: check the namespace's Pod Security level (host checkers need hostNetwork), quotas, and admission policies");
        }
        if said("never started") {
            advice.push("a pod that never started waited on what its reason says: a volume that cannot be mounted, a sandbox the CNI plugin does not create, a node that stopped reporting; `kubectl describe pod` shows its events");
        }
        if advice.is_empty() || said("unschedulable") {
            advice.push("check node selectors and tolerations of the node types, that node types do not overlap, and the nodes' free resources");
        }
        out.push(finding(
            FindingKind::Scheduling,
            Severity::Fail,
            None,
            nodes.into_iter().collect(),
            format!(
                "{} pod(s) could not be scheduled or started",
                not_started.len()
            ),
            BTreeMap::from([("pods".into(), json!(reasons))]),
            &advice,
        ));
    }
}
