//! The rules, one function per kind. Per (node, network) the client paths are summed, and a
//! node is *healthy* on a network when all its clients pass there, *broken* when none passes
//! and fewer than one probe in five succeeds, and *degraded* otherwise. Agents that were lost
//! are left out of network verdicts: their silence is their own failure (`agent_lost`).
//!
//! This file holds the per-node sums and [`derive`], which applies the rules in order; the rules
//! live by family: `agents` (the agents' and the server's fates), `addresses` (two agents
//! with one address), `egress` (probes that left by another interface than the network's; they
//! are not counted by the other rules), `network` (one network's
//! paths, node by node), `not_validated` (a mesh's networks left without a responder to
//! probe), `host` (host checkers) and `readiness` (Rook's flaky threshold). Each
//! finding's suggestions stay beside the rule that makes it: one kind is made in several
//! situations (`flaky` three ways, `agent_lost` two), each with its own advice.

mod addresses;
pub(crate) use addresses::duplicate_address_suggestions;
mod agent_outage;
mod agents;
mod egress;
mod host;
mod mesh;
mod network;
mod not_validated;
mod readiness;
mod soak;
mod when;

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Payload, Scheme};
use serde_json::{Value, json};

use super::{AgentFact, AgentFate, Finding, FindingKind, RunFacts, Severity};
use crate::matrix::{Outage, PathMatrix};
use addresses::{duplicate_addresses, duplicates_explain};
use agent_outage::agent_outages;
use agents::{agent_failures, server_unavailable};
use egress::wrong_egress;
use host::host_checks;
pub use mesh::{
    CellOutage, CellReport, CellState, CellWindow, MeshFacts, MeshNetwork, mesh_matrix,
};
use network::network_rules;
use readiness::rook_flaky_rule;
use soak::soak_outages;

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
    /// Adds one client path's figures (its client is counted apart, as it passes or not).
    fn add_path(&mut self, key: &crate::matrix::PathKey, stats: &crate::matrix::PathStats) {
        self.all.add(stats.sent, stats.ok);
        match key.kind.payload {
            Payload::Small => self.small.add(stats.sent, stats.ok),
            Payload::Large => self.large.add(stats.sent, stats.ok),
        }
        match key.kind.scheme {
            Scheme::Http => self.http.add(stats.sent, stats.ok),
            Scheme::Https => self.https.add(stats.sent, stats.ok),
        }
        self.flaps += stats.flaps;
        for (class, count) in &stats.failures {
            *self.failures.entry(class.to_string()).or_default() += count;
        }
        for o in &stats.recent_outages {
            if self.outages.len() < 8 {
                self.outages.push(*o);
            }
        }
    }
    /// Adds another sum's clients and probe figures (not its passing count or outages).
    fn absorb(&mut self, other: &NodeNet) {
        self.clients.extend(other.clients.iter().cloned());
        for (mine, theirs) in [
            (&mut self.all, &other.all),
            (&mut self.small, &other.small),
            (&mut self.large, &other.large),
            (&mut self.http, &other.http),
            (&mut self.https, &other.https),
        ] {
            mine.add(theirs.sent, theirs.ok);
        }
        self.flaps += other.flaps;
        for (class, n) in &other.failures {
            *self.failures.entry(class.clone()).or_default() += n;
        }
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
    agent_outages(facts, &mut out);
    duplicate_addresses(facts, &mut out);
    wrong_egress(facts, &mut out);
    if !is_reporting(&facts.server) {
        out.push(server_unavailable(facts, None));
        // A mesh goes on with the responders that reported (the others' cells have no
        // results); the single server's loss leaves nothing to judge.
        let other_responders = facts
            .agents
            .iter()
            .any(|a| a.identity.role == Role::Server && is_reporting(a));
        if facts.mesh.is_none() || !other_responders {
            return out;
        }
    }
    for network in &facts.networks {
        match &facts.mesh {
            Some(mesh) => mesh::mesh_rules(matrix, facts, mesh, *network, &mut out),
            None => {
                let by_node = tally(matrix, facts, *network);
                network_rules(matrix, facts, *network, &by_node, &mut out);
            }
        }
    }
    if let Some(mesh) = &facts.mesh {
        not_validated::not_validated(facts, mesh, &mut out);
    }
    host_checks(matrix, facts, &mut out);
    rook_flaky_rule(facts, &mut out);
    duplicates_explain(facts, &mut out);
    soak_outages(matrix, facts, &mut out);
    out
}

fn tally(matrix: &PathMatrix, facts: &RunFacts, network: CephNetwork) -> BTreeMap<String, NodeNet> {
    let mut by_node: BTreeMap<String, NodeNet> = BTreeMap::new();
    let uncounted = egress::uncounted(facts);
    let clients: BTreeMap<&str, &AgentFact> = facts
        .agents
        .iter()
        .filter(|a| {
            a.identity.role == Role::Client
                && a.identity.networks.contains(&network)
                && is_reporting(a)
                && !uncounted.contains(&(a.identity.pod.clone(), network))
        })
        .map(|a| (a.identity.pod.as_str(), a))
        .collect();
    for fact in clients.values() {
        let entry = by_node.entry(fact.identity.node.clone()).or_default();
        entry.clients.insert(fact.identity.pod.clone());
        if matrix.client_passes(&fact.identity.pod, network, facts.success_threshold) {
            entry.passing += 1;
        }
    }
    for (key, stats) in matrix.paths() {
        if key.network != network || !clients.contains_key(key.client.as_str()) {
            continue;
        }
        by_node
            .entry(key.node.clone())
            .or_default()
            .add_path(key, stats);
    }
    by_node
}

/// Adds `entry` to `cause`'s `evidence.explains`: what the cause explains, said under it
/// rather than as findings of their own.
fn add_explained(cause: &mut Finding, entry: Value) {
    if let Some(list) = cause
        .evidence
        .entry("explains".into())
        .or_insert_with(|| json!([]))
        .as_array_mut()
    {
        list.push(entry);
    }
}

/// Moves the findings `explained` selects out of `out` into the `evidence.explains` (kind,
/// nodes, summary) of the first finding `cause` selects; nothing moves without a cause. The
/// two selections must not overlap.
fn explain(
    out: &mut Vec<Finding>,
    cause: impl Fn(&Finding) -> bool,
    explained: impl Fn(&Finding) -> bool,
) {
    if !out.iter().any(&cause) {
        return;
    }
    let (moved, kept): (Vec<Finding>, Vec<Finding>) =
        std::mem::take(out).into_iter().partition(|f| explained(f));
    *out = kept;
    if let Some(c) = out.iter_mut().find(|f| cause(f)) {
        for f in moved {
            add_explained(
                c,
                json!({"kind": f.kind, "nodes": f.nodes, "summary": f.summary}),
            );
        }
    }
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
