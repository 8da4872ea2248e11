//! `wrong_egress`: probes that left by another interface than the network's. Each agent looks
//! up, the way its probes are made, which interface and source address the kernel picks for
//! the server's address on every network it probes, and says so
//! ([`multinet_proto::control::AgentMessage::Egress`]). A client's probes must leave by its
//! NAD interface on that network; a host checker's must not leave by the interface its control
//! plane uses where that network carries nothing else (the lab's control network). Such probes
//! test another path than the one under test (issue #12: a host without its route to the
//! public network reached the server over the lab's control network and passed), so they are
//! not counted: the other rules leave those agents out of that network's verdicts.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::{Egress, Role};
use multinet_proto::network::CephNetwork;
use serde_json::json;

use super::{finding, is_reporting};
use crate::findings::{AgentFact, Finding, FindingKind, RunFacts, Severity};

/// One agent's probes on one network, gone by the wrong interface.
struct Wrong<'a> {
    fact: &'a AgentFact,
    route: &'a Egress,
    /// What the interface should have been (a client's NAD interface), or which it must not
    /// be (a host checker's control interface).
    rule: Rule<'a>,
}

enum Rule<'a> {
    Expected(&'a str),
    NotControl(&'a str),
}

fn wrong(facts: &RunFacts) -> Vec<Wrong<'_>> {
    let mut out = Vec::new();
    for fact in facts.agents.iter().filter(|a| is_reporting(a)) {
        let Some(report) = &fact.egress else {
            continue;
        };
        for route in &report.routes {
            // Loopback stays on the machine (the local backend): there is no other path.
            let (Some(interface), Some(source)) = (&route.interface, route.source) else {
                continue;
            };
            if source.is_loopback() {
                continue;
            }
            let rule = match fact.identity.role {
                Role::Client => fact
                    .addresses
                    .iter()
                    .find(|a| a.network == route.network)
                    .and_then(|a| a.interface.as_deref())
                    .filter(|expected| expected != interface)
                    .map(Rule::Expected),
                Role::HostCheck if facts.control_network_isolated => report
                    .control_interface
                    .as_deref()
                    .filter(|control| control == interface)
                    .map(Rule::NotControl),
                Role::HostCheck | Role::Server => None,
            };
            if let Some(rule) = rule {
                out.push(Wrong { fact, route, rule });
            }
        }
    }
    out
}

/// The agents (pod, network) whose probes are not counted.
pub(super) fn uncounted(facts: &RunFacts) -> BTreeSet<(String, CephNetwork)> {
    wrong(facts)
        .into_iter()
        .map(|w| (w.fact.identity.pod.clone(), w.route.network))
        .collect()
}

/// One finding per (network, node) whose agents' probes left by a wrong interface.
pub(super) fn wrong_egress(facts: &RunFacts, out: &mut Vec<Finding>) {
    let mut by_place: BTreeMap<(CephNetwork, &str), Vec<Wrong<'_>>> = BTreeMap::new();
    for w in wrong(facts) {
        by_place
            .entry((w.route.network, w.fact.identity.node.as_str()))
            .or_default()
            .push(w);
    }
    for ((network, node), wrongs) in by_place {
        let described: Vec<String> = wrongs
            .iter()
            .map(|w| {
                let left = w.route.interface.as_deref().unwrap_or("?");
                match w.rule {
                    Rule::Expected(expected) => {
                        format!("{} by {left}, not {expected}", w.fact.identity.pod)
                    }
                    Rule::NotControl(_) => {
                        format!("{} by {left}, its control interface", w.fact.identity.pod)
                    }
                }
            })
            .collect();
        let agents: Vec<_> = wrongs
            .iter()
            .map(|w| {
                let mut entry = json!({
                    "pod": w.fact.identity.pod,
                    "role": w.fact.identity.role,
                    "target": w.route.target,
                    "interface": w.route.interface,
                    "source": w.route.source,
                });
                match w.rule {
                    Rule::Expected(expected) => entry["expected_interface"] = json!(expected),
                    Rule::NotControl(control) => entry["control_interface"] = json!(control),
                }
                entry
            })
            .collect();
        let host = wrongs
            .iter()
            .any(|w| w.fact.identity.role == Role::HostCheck);
        let mut suggestions = vec![
            "a route on the node (or in the pod) sends traffic for this network's range by another interface: `ip route get <target>` there shows which; remove the overlapping route or narrow it",
        ];
        if host {
            suggestions.push("the host must reach the public network by that network's own interface (a macvlan shim on the public uplink, or the NIC on that network), not by the network the cluster's control traffic uses");
        } else {
            suggestions.push("binding probes to the NAD interface may have been refused (kernels before 5.7 want CAP_NET_RAW for SO_BINDTODEVICE): the agent's log says so");
        }
        out.push(finding(
            FindingKind::WrongEgress,
            Severity::Fail,
            Some(network),
            vec![node.to_string()],
            format!(
                "probes on the {} network from node {node} left by another interface than the network's, so they were not counted: {}",
                network.key(),
                described.join("; ")
            ),
            BTreeMap::from([("agents".into(), json!(agents))]),
            &suggestions,
        ));
    }
}
