//! The rules, one function per kind. Per (node, network) the client paths are summed, and a
//! node is *healthy* on a network when all its clients pass there, *broken* when none passes
//! and fewer than one probe in five succeeds, and *degraded* otherwise. Agents that were lost
//! are left out of network verdicts: their silence is their own failure (`agent_lost`).

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Payload, Scheme};
use serde_json::{Value, json};

use super::{AgentFact, AgentFate, Finding, FindingKind, RunFacts, Severity};
use crate::matrix::{Outage, PathMatrix};

const BROKEN_RATIO: f64 = 0.2;
const GOOD_RATIO: f64 = 0.9;
const BAD_RATIO: f64 = 0.5;
const FLAKY_RATIO: f64 = 0.98;

#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    ok: u64,
}

impl Tally {
    fn add(&mut self, sent: u64, ok: u64) {
        self.sent += sent;
        self.ok += ok;
    }
    fn ratio(&self) -> f64 {
        if self.sent == 0 {
            1.0
        } else {
            self.ok as f64 / self.sent as f64
        }
    }
}

/// The client paths of one node on one network, summed.
#[derive(Debug, Default)]
struct NodeNet {
    clients: BTreeSet<String>,
    passing: usize,
    all: Tally,
    small: Tally,
    large: Tally,
    http: Tally,
    https: Tally,
    flaps: u64,
    outages: Vec<Outage>,
    failures: BTreeMap<String, u64>,
}

impl NodeNet {
    fn broken(&self) -> bool {
        self.passing == 0 && self.all.sent > 0 && self.all.ratio() < BROKEN_RATIO
    }
    fn healthy(&self) -> bool {
        !self.clients.is_empty() && self.passing == self.clients.len()
    }
    fn evidence(&self) -> BTreeMap<String, Value> {
        BTreeMap::from([
            ("clients".into(), json!(self.clients.len())),
            ("clients_passing".into(), json!(self.passing)),
            ("probes_sent".into(), json!(self.all.sent)),
            ("probes_ok".into(), json!(self.all.ok)),
            ("success_ratio".into(), json!(round(self.all.ratio()))),
            ("failures".into(), json!(self.failures)),
        ])
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn is_reporting(fact: &AgentFact) -> bool {
    matches!(fact.fate, AgentFate::Reported)
}

/// Applies every rule.
pub fn derive(matrix: &PathMatrix, facts: &RunFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    agent_failures(facts, &mut out);
    if !is_reporting(&facts.server) {
        out.push(server_unavailable(facts, None));
        return out;
    }
    for network in &facts.networks {
        let by_node = tally(matrix, facts, *network);
        network_rules(matrix, facts, *network, &by_node, &mut out);
    }
    host_checks(matrix, facts, &mut out);
    rook_flaky_rule(facts, &mut out);
    out
}

fn tally(matrix: &PathMatrix, facts: &RunFacts, network: CephNetwork) -> BTreeMap<String, NodeNet> {
    let mut by_node: BTreeMap<String, NodeNet> = BTreeMap::new();
    let clients: BTreeMap<&str, &AgentFact> = facts
        .agents
        .iter()
        .filter(|a| a.role == Role::Client && a.networks.contains(&network) && is_reporting(a))
        .map(|a| (a.pod.as_str(), a))
        .collect();
    for fact in clients.values() {
        let entry = by_node.entry(fact.node.clone()).or_default();
        entry.clients.insert(fact.pod.clone());
        if matrix.client_passes(&fact.pod, network, facts.success_threshold) {
            entry.passing += 1;
        }
    }
    for (key, stats) in matrix.paths() {
        if key.network != network || !clients.contains_key(key.client.as_str()) {
            continue;
        }
        let n = by_node.entry(key.node.clone()).or_default();
        n.all.add(stats.sent, stats.ok);
        match key.kind.payload {
            Payload::Small => n.small.add(stats.sent, stats.ok),
            Payload::Large => n.large.add(stats.sent, stats.ok),
        }
        match key.kind.scheme {
            Scheme::Http => n.http.add(stats.sent, stats.ok),
            Scheme::Https => n.https.add(stats.sent, stats.ok),
        }
        n.flaps += stats.flaps;
        for (class, count) in &stats.failures {
            *n.failures.entry(class.to_string()).or_default() += count;
        }
        for o in &stats.recent_outages {
            if n.outages.len() < 8 {
                n.outages.push(*o);
            }
        }
    }
    by_node
}

fn finding(
    kind: FindingKind,
    severity: Severity,
    network: Option<CephNetwork>,
    nodes: Vec<String>,
    summary: String,
    evidence: BTreeMap<String, Value>,
    suggestions: &[&str],
) -> Finding {
    Finding {
        kind,
        severity,
        network,
        nodes,
        summary,
        evidence,
        suggestions: suggestions.iter().map(|s| s.to_string()).collect(),
    }
}

fn network_rules(
    matrix: &PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
    by_node: &BTreeMap<String, NodeNet>,
    out: &mut Vec<Finding>,
) {
    let net = network.key();
    let server_side = by_node.get(&facts.server_node);
    let others: Vec<(&String, &NodeNet)> = by_node
        .iter()
        .filter(|(n, _)| **n != facts.server_node)
        .collect();
    let broken_others: Vec<&String> = others
        .iter()
        .filter(|(_, t)| t.broken())
        .map(|(n, _)| *n)
        .collect();
    let server_side_works = server_side.is_some_and(|t| t.passing > 0 && !t.broken());
    let mut explained: BTreeSet<&String> = BTreeSet::new();

    if server_side.is_some_and(NodeNet::broken)
        && !others.is_empty()
        && others.iter().all(|(_, t)| t.broken())
    {
        out.push(server_unavailable(facts, Some(network)));
        return;
    }
    if server_side_works && !others.is_empty() && broken_others.len() == others.len() {
        let mut evidence = BTreeMap::new();
        evidence.insert("server_node".into(), json!(facts.server_node));
        for (node, t) in by_node {
            evidence.insert(format!("node {node}"), json!(t.evidence()));
        }
        out.push(finding(
            FindingKind::InterNodeBlocked, Severity::Fail, Some(network), broken_others.iter().map(|n| n.to_string()).collect(),
            format!("on the {net} network, clients on the server's node {} pass but clients on every other node fail", facts.server_node),
            evidence,
            &["traffic between nodes on this network is blocked: check firewalls and security policies (nftables/iptables on the hosts, cloud security groups) for the NAD's subnet",
              "macvlan/ipvlan: the switch ports must accept frames for the pods' MAC addresses (promiscuous mode, MAC limits, port security)",
              "check that the NAD's master interface is the same, up and cabled to the same L2 segment on every node"],
        ));
        explained.extend(broken_others.iter().copied());
    } else {
        for (node, t) in by_node {
            let other_ok = by_node.iter().any(|(n, x)| n != node && x.passing > 0);
            if t.broken() && other_ok {
                out.push(finding(
                    FindingKind::NodeUnreachable, Severity::Fail, Some(network), vec![node.clone()],
                    format!("on the {net} network, no client on node {node} reaches the server while other nodes' clients do"),
                    t.evidence(),
                    &["check this node's uplink for the network: link state, VLAN, cabling, the NAD's master interface name",
                      "check firewall rules on this node for the network's subnet",
                      "macvlan: the node's NIC or switch port may limit the number of MAC addresses"],
                ));
                explained.insert(node);
            }
        }
    }
    for (node, t) in by_node {
        if explained.contains(node) || t.healthy() && t.flaps == 0 && t.all.ratio() >= FLAKY_RATIO {
            continue;
        }
        if t.small.ratio() >= GOOD_RATIO && t.large.sent > 0 && t.large.ratio() <= BAD_RATIO {
            let mut ev = t.evidence();
            ev.insert(
                "small_probes".into(),
                json!({"sent": t.small.sent, "ok": t.small.ok}),
            );
            ev.insert(
                "large_probes".into(),
                json!({"sent": t.large.sent, "ok": t.large.ok}),
            );
            out.push(finding(
                FindingKind::MtuBlackhole, Severity::Fail, Some(network), vec![node.clone()],
                format!("on the {net} network, small probes from node {node} pass but large ones fail: packets above some size are dropped"),
                ev,
                &["compare the NAD's mtu with the MTU of the master interface and of every switch port on the path; the underlay must carry the NAD's MTU",
                  "if jumbo frames are intended, enable them end to end (NICs, bonds, VLAN interfaces, switches)",
                  "ICMP 'fragmentation needed' must not be filtered, or path MTU discovery cannot help"],
            ));
        } else if t.http.ratio() >= GOOD_RATIO && t.https.sent > 0 && t.https.ratio() <= BAD_RATIO {
            let mut ev = t.evidence();
            ev.insert(
                "http_probes".into(),
                json!({"sent": t.http.sent, "ok": t.http.ok}),
            );
            ev.insert(
                "https_probes".into(),
                json!({"sent": t.https.sent, "ok": t.https.ok}),
            );
            out.push(finding(
                FindingKind::TlsFailure, Severity::Fail, Some(network), vec![node.clone()],
                format!("on the {net} network, HTTP from node {node} passes but HTTPS fails"),
                ev,
                &["something on the path interferes with TLS (a proxy, DPI or a middlebox rewriting traffic)",
                  "check for MTU problems that only the larger TLS handshake hits"],
            ));
        } else if t.all.sent > 0 && (t.all.ratio() < FLAKY_RATIO || t.flaps >= 2) {
            let mut ev = t.evidence();
            ev.insert("flaps".into(), json!(t.flaps));
            ev.insert("outages_ms".into(), json!(t.outages));
            let severity = if t.healthy() {
                Severity::Warn
            } else {
                Severity::Fail
            };
            out.push(finding(
                FindingKind::Flaky, severity, Some(network), vec![node.clone()],
                format!("on the {net} network, probes from node {node} succeed {:.1}% of the time with {} flap(s)", t.all.ratio() * 100.0, t.flaps),
                ev,
                &["the network may be lossy or congested: check interface error and drop counters on this node and its switch port",
                  "a production Ceph cluster needs a stable network even if this test passes: repeat with a soak run"],
            ));
        } else if !t.healthy() {
            // The node as a whole looks fine, but some of its clients never passed: their
            // paths, not the node's, are what fails.
            let lagging = lagging_clients(matrix, facts, network, t);
            let mut ev = t.evidence();
            ev.insert("clients_not_passing".into(), json!(lagging));
            out.push(finding(
                FindingKind::Flaky, Severity::Fail, Some(network), vec![node.clone()],
                format!("on the {net} network, {} of {} client(s) on node {node} never reached {} consecutive successes on every probe kind, while the node's other probes pass", t.clients.len() - t.passing, t.clients.len(), facts.success_threshold),
                ev,
                &["a failure that follows particular pods, not the node: the switch port or NIC may limit the number of MAC addresses (macvlan), or two pods got the same address",
                  "the failing probe kinds and their failure classes in the evidence say which connections fail: large probes point at MTU, HTTPS at TLS-sized packets",
                  "repeat with a soak run to see whether the same pods keep failing"],
            ));
        }
    }
}

/// The clients of `t` that did not pass on `network`, each with its probes and failures (at
/// most 10).
fn lagging_clients(
    matrix: &PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
    t: &NodeNet,
) -> Vec<Value> {
    t.clients
        .iter()
        .filter(|c| !matrix.client_passes(c, network, facts.success_threshold))
        .take(10)
        .map(|client| {
            let mut all = Tally::default();
            let mut failing_kinds = Vec::new();
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            for (key, stats) in matrix.paths() {
                if key.network != network || key.client != *client {
                    continue;
                }
                all.add(stats.sent, stats.ok);
                if stats.ok < stats.sent && !failing_kinds.contains(&key.kind) {
                    failing_kinds.push(key.kind);
                }
                for (class, count) in &stats.failures {
                    *failures.entry(class.to_string()).or_default() += count;
                }
            }
            json!({"client": client, "probes_sent": all.sent, "probes_ok": all.ok,
                   "failing_kinds": failing_kinds, "failures": failures})
        })
        .collect()
}

fn server_unavailable(facts: &RunFacts, network: Option<CephNetwork>) -> Finding {
    let (summary, reason) = match (&facts.server.fate, network) {
        (_, Some(n)) => (
            format!(
                "the server is not reachable on the {} network, not even from its own node {}",
                n.key(),
                facts.server_node
            ),
            Value::Null,
        ),
        (AgentFate::Lost { at_ms }, None) => (
            format!(
                "the server agent on node {} stopped reporting {at_ms} ms into the run",
                facts.server_node
            ),
            Value::Null,
        ),
        (AgentFate::NoAddress { network, reason }, None) => (
            format!("the server got no address on the {} network", network.key()),
            json!(reason),
        ),
        (AgentFate::NotStarted { reason } | AgentFate::Failed { reason }, None) => (
            format!("the server on node {} did not start", facts.server_node),
            json!(reason),
        ),
        (_, None) => (
            format!(
                "the server on node {} never became ready",
                facts.server_node
            ),
            Value::Null,
        ),
    };
    finding(
        FindingKind::ServerUnavailable,
        Severity::Fail,
        network,
        vec![facts.server_node.clone()],
        summary,
        BTreeMap::from([
            ("server".into(), json!(facts.server.pod)),
            ("fate".into(), json!(facts.server.fate)),
            ("detail".into(), reason),
            ("exit".into(), json!(facts.server.exit)),
        ])
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect(),
        &[
            "without the server no path can be judged: look at the server pod's events and logs first",
            "check that the NADs give the server's node an address on every network (IPAM range, master interface present)",
        ],
    )
}

/// Adds how the agent's process ended, when the backend saw it.
fn with_exit(mut entry: Value, agent: &AgentFact) -> Value {
    if let (Some(exit), Some(map)) = (&agent.exit, entry.as_object_mut()) {
        map.insert("exit".into(), json!(exit));
    }
    entry
}

fn agent_failures(facts: &RunFacts, out: &mut Vec<Finding>) {
    let mut lost: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut never_connected: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut no_address: BTreeMap<CephNetwork, (BTreeSet<String>, Vec<String>, usize)> =
        BTreeMap::new();
    let mut not_started: Vec<&AgentFact> = Vec::new();
    for a in &facts.agents {
        match &a.fate {
            AgentFate::Reported => {}
            AgentFate::Lost { at_ms } => lost
                .entry(&a.node)
                .or_default()
                .push(with_exit(json!({"agent": a.pod, "lost_at_ms": at_ms}), a)),
            AgentFate::NeverConnected => never_connected.entry(&a.node).or_default().push(
                with_exit(json!({"agent": a.pod, "never_connected": true}), a),
            ),
            AgentFate::Failed { reason } => lost
                .entry(&a.node)
                .or_default()
                .push(json!({"agent": a.pod, "failed": reason})),
            AgentFate::NoAddress { network, reason } => {
                let e = no_address.entry(*network).or_default();
                e.0.insert(a.node.clone());
                if !e.1.contains(reason) && e.1.len() < 5 {
                    e.1.push(reason.clone());
                }
                e.2 += 1;
            }
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
            .filter(|a| a.role == Role::Client && a.networks.contains(&network))
            .count()
            + usize::from(facts.server.networks.contains(&network));
        out.push(finding(
            FindingKind::AddressUnavailable, Severity::Fail, Some(network), nodes.into_iter().collect(),
            format!("{count} of {expected} pods got no address on the {} network", network.key()),
            BTreeMap::from([("without_address".into(), json!(count)), ("expected".into(), json!(expected)), ("got".into(), json!(expected - count)), ("errors".into(), json!(reasons))]),
            &["the IPAM range may be too small for the worst case: `multinet spec check --nads ... --nodes N` shows the arithmetic",
              "the NAD's master interface may be missing on these nodes",
              "check the pods' events and the Multus logs for the CNI error"],
        ));
    }
    if !not_started.is_empty() {
        let nodes: BTreeSet<String> = not_started.iter().map(|a| a.node.clone()).collect();
        let reasons: Vec<Value> = not_started
            .iter()
            .take(10)
            .map(|a| match &a.fate {
                AgentFate::NotStarted { reason } => json!({"agent": a.pod, "reason": reason}),
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

fn host_checks(matrix: &PathMatrix, facts: &RunFacts, out: &mut Vec<Finding>) {
    for a in facts
        .agents
        .iter()
        .filter(|a| a.role == Role::HostCheck && is_reporting(a) && a.passed_at_ms.is_none())
    {
        let (mut small, mut large) = (Tally::default(), Tally::default());
        for (key, stats) in matrix.paths() {
            if key.client == a.pod {
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
                .any(|f| f.kind == FindingKind::MtuBlackhole && f.nodes.contains(&a.node));
        if mtu_explained {
            continue;
        }
        let evidence = BTreeMap::from([
            ("host_checker".into(), json!(a.pod)),
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
            FindingKind::HostUnreachable, Severity::Fail, Some(CephNetwork::Public), vec![a.node.clone()],
            format!("the host checker on node {} cannot reach the server's public address", a.node),
            evidence,
            &["the host needs a route to the public network's pod range (for macvlan: a macvlan shim interface with an address and a route)",
              "the public NAD needs a route back to the hosts' range (ipam routes)",
              "a firewall on the host may block the traffic"],
        ));
    }
}

/// Rook's rule: every client must pass within the flaky threshold of the first one.
fn rook_flaky_rule(facts: &RunFacts, out: &mut Vec<Finding>) {
    let times: Vec<(u64, &AgentFact)> = facts
        .agents
        .iter()
        .filter(|a| a.role == Role::Client)
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
        .map(|(_, a)| a.node.clone())
        .collect();
    out.push(finding(
        FindingKind::Flaky, Severity::Warn, None, late.into_iter().collect(),
        format!("clients became ready over {} ms, more than the flaky threshold of {} ms", last - first, facts.flaky_threshold_ms),
        BTreeMap::from([("first_ready_ms".into(), json!(first)), ("last_ready_ms".into(), json!(last)), ("threshold_ms".into(), json!(facts.flaky_threshold_ms))]),
        &["the underlying network may be flaky or not have the bandwidth for a production Ceph cluster",
          "on very large clusters or slow networks, raise flakyThreshold and run again"],
    ));
}
