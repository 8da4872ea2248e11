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
//! must not read as its client node's outage. Per node and network, each (client node,
//! responder node) pair's outages are its clients' paths to that responder merged by the same
//! rule ([`PairOutages`]: what the live metrics count per `source_node` and `target_node`, and
//! the report's `mesh.networks[].cells[].outage`). A node's merged window is the node's own
//! `outage` only when it took down its pairs with every responder it probes, or, probing two
//! other nodes or more, with every other node's (the node, its uplink or NIC, was cut off —
//! the rule of the mesh's `node_unreachable`); the node's figures (count, longest,
//! availability) are of those windows alone. A pair's outages outside them are the pair's own
//! `outage` (`nodes` `[client node, responder node]`, `evidence.pair`), with the longest
//! window's scope among the pair's paths (`pair`: every path between the two) and the other
//! pairs down at the same time (both directions between two nodes: the path between them;
//! every other node toward one responder: that responder's side). A pair's outages within its
//! responder node's own are said under that node's outage (`evidence.explains`), as the path
//! findings are under the outage of the pair or node whose paths they are.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use serde_json::{Value, json};

use super::when::{self, NodePaths, Together};
use super::{add_explained, finding};
use crate::findings::{Finding, FindingKind, MeshFacts, RunFacts, Severity};
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

/// One (client node, responder node) pair's outages in a mesh soak: its clients' paths to
/// that responder, merged by the outage rule — what the live metrics count per
/// `source_node`/`target_node` ([`crate::metrics`]), on the run's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PairOutages {
    /// Its outages, sorted by start (a window still open at the end included).
    pub windows: Vec<Window>,
    /// The pair's first and last probe, ms since the run started.
    pub probed: (u64, u64),
}

impl PairOutages {
    /// Time down in all, ms.
    pub fn down_ms(&self) -> u64 {
        down_ms(&self.windows)
    }

    /// The longest outage, ms (0 without one).
    pub fn longest_ms(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.to_ms - w.from_ms)
            .max()
            .unwrap_or(0)
    }

    /// The share of the pair's probed time no outage covers, 0 to 1.
    pub fn availability(&self) -> f64 {
        availability(&self.windows, self.probed)
    }
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

/// A mesh node's outages on a network, split by what they cut it off from.
#[derive(Debug, Default)]
struct MeshSplit {
    /// Its merged windows that took down its paths to every responder it probes, or, when it
    /// probes two other nodes or more, to every other node's: the node (its uplink, its NIC)
    /// was cut off — its own `outage`.
    node: Vec<Window>,
    /// Per responder node it probes, that pair's outages, all of them.
    pairs: BTreeMap<String, PairOutages>,
}

impl MeshSplit {
    /// `node`'s split, from its client `paths` and its `merged` windows (every path's).
    fn of(
        rule: OutageRule,
        mesh: &MeshFacts,
        node: &str,
        paths: &NodePaths<'_>,
        merged: &[Window],
    ) -> Self {
        let responders: BTreeSet<&String> = paths
            .keys()
            .filter_map(|k| mesh.target_nodes.get(&k.target))
            .collect();
        let pairs: BTreeMap<String, PairOutages> = responders
            .into_iter()
            .map(|responder| {
                let pair = paths.only(|k| mesh.target_nodes.get(&k.target) == Some(responder));
                let outages = PairOutages {
                    windows: rule.outages(pair.windows(rule, |_| true)),
                    probed: pair.probed_span(),
                };
                (responder.clone(), outages)
            })
            .collect();
        let down = |responder: &String, w: &Window| {
            pairs
                .get(responder)
                .is_some_and(|p| p.windows.iter().any(|o| when::overlap(o, w)))
        };
        let cut_off = |w: &Window| {
            let measured: BTreeSet<&String> = paths
                .measured_targets(w)
                .iter()
                .filter_map(|t| mesh.target_nodes.get(t))
                .collect();
            let others: Vec<&&String> = measured.iter().filter(|r| ***r != node).collect();
            (!measured.is_empty() && measured.iter().all(|r| down(r, w)))
                || (others.len() >= 2 && others.iter().all(|r| down(r, w)))
        };
        Self {
            node: merged.iter().filter(|w| cut_off(w)).copied().collect(),
            pairs,
        }
    }

    /// The outages of the pair toward `responder` that are not within one of the node's
    /// own: the pair's finding.
    fn pair_only(&self, responder: &str) -> Vec<Window> {
        self.pairs.get(responder).map_or(Vec::new(), |p| {
            p.windows
                .iter()
                .filter(|w| !self.node.iter().any(|n| when::overlap(n, w)))
                .copied()
                .collect()
        })
    }
}

/// The outages of every (client node, responder node) pair of `network` in a mesh soak;
/// empty outside one.
pub fn pair_outages(
    matrix: &PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
) -> BTreeMap<(String, String), PairOutages> {
    let (Some(min_ms), Some(mesh)) = (facts.soak_min_outage_ms, facts.mesh.as_ref()) else {
        return BTreeMap::new();
    };
    let rule = OutageRule { min_ms };
    client_paths(matrix, facts, network)
        .iter()
        .flat_map(|(node, paths)| {
            MeshSplit::of(rule, mesh, node, paths, &[])
                .pairs
                .into_iter()
                .map(|(responder, p)| ((node.clone(), responder), p))
        })
        .collect()
}

/// Which outage finding explains what, for moving the path findings under it: the nodes of
/// the outage finding that stands for a node's paths (its own `outage`) or for one pair's.
#[derive(Debug, Default)]
struct Causes {
    /// (network, node) with a node `outage`.
    nodes: BTreeSet<(CephNetwork, String)>,
    /// (network, client node, responder node) → the `nodes` of the outage finding that
    /// holds that pair's outages: the pair's own, or its responder node's.
    pairs: BTreeMap<(CephNetwork, String, String), Vec<String>>,
}

impl Causes {
    /// The `nodes` of the outage finding that explains path finding `f`, if one does: a
    /// node's outage explains that node's own findings (in a mesh, those its clients make
    /// first, and the block between it and another node); in a mesh a pair's explains a
    /// client node's finding when every responder it names is one of the node's pairs with
    /// an outage, and a block between two nodes.
    fn of(&self, f: &Finding, mesh: bool) -> Option<Vec<String>> {
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
        let node = |n: &String| {
            self.nodes
                .contains(&(network, n.clone()))
                .then(|| vec![n.clone()])
        };
        let pair = |from: &String, to: &String| {
            self.pairs
                .get(&(network, from.clone(), to.clone()))
                .cloned()
        };
        if f.nodes.iter().all(|n| n == first)
            && let Some(cause) = node(first)
        {
            return Some(cause);
        }
        if !mesh {
            return None;
        }
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
    /// ([`Self::of`]).
    fn explain(&self, out: &mut Vec<Finding>, mesh: bool) {
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
                c.kind == FindingKind::Outage && c.network == f.network && c.nodes == cause
            });
            match holder {
                Some(c) => add_explained(
                    c,
                    json!({"kind": f.kind, "nodes": f.nodes, "summary": f.summary}),
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
        // Kinds are probed one after another, each waiting out the probe timeout when
        // blocked: one outage starts on each kind up to a round apart.
        let merged: BTreeMap<String, Vec<Window>> = by_node
            .iter()
            .map(|(node, paths)| (node.clone(), rule.outages(paths.windows(rule, |_| true))))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        if facts.mesh.is_some() {
            mesh_outages(facts, rule, network, &by_node, &merged, &mut causes, out);
            continue;
        }
        let all_nodes: BTreeSet<String> = by_node.keys().cloned().collect();
        for (node, windows) in &merged {
            let together =
                |w: &Window| when::together(node, w, &merged, &all_nodes, &facts.server_node);
            let paths = &by_node[node];
            out.push(outage(facts, network, node, paths, windows, together, None));
            causes.nodes.insert((network, node.clone()));
        }
    }
    causes.explain(out, facts.mesh.is_some());
}

/// The outages of `network` in a mesh soak ([`soak_outages`]): each node's that cut it off
/// from every responder, then each pair's outside them, from the nodes' client paths
/// `by_node` and their `merged` windows; what holds each pair's outages goes to `causes`.
fn mesh_outages(
    facts: &RunFacts,
    rule: OutageRule,
    network: CephNetwork,
    by_node: &BTreeMap<String, NodePaths<'_>>,
    merged: &BTreeMap<String, Vec<Window>>,
    causes: &mut Causes,
    out: &mut Vec<Finding>,
) {
    let Some(mesh) = &facts.mesh else {
        return;
    };
    let all_nodes: BTreeSet<String> = by_node.keys().cloned().collect();
    // A mesh: a node's outage is what cut it off from every responder; what cut it off
    // from some is each pair's.
    let splits: BTreeMap<&String, MeshSplit> = by_node
        .iter()
        .map(|(node, paths)| {
            let windows = merged.get(node).map_or(&[][..], Vec::as_slice);
            (node, MeshSplit::of(rule, mesh, node, paths, windows))
        })
        .collect();
    let cut_off: BTreeMap<String, Vec<Window>> = splits
        .iter()
        .filter(|(_, s)| !s.node.is_empty())
        .map(|(n, s)| (n.to_string(), s.node.clone()))
        .collect();
    for (node, windows) in &cut_off {
        // No node is every path's far end in a mesh: no server to name.
        let together = |w: &Window| when::together(node, w, &cut_off, &all_nodes, "");
        let per_responder: Vec<Value> = splits[node]
            .pairs
            .iter()
            .map(|(responder, p)| {
                json!({
                    "node": responder,
                    "outages": p.windows.len(),
                    "longest_ms": p.longest_ms(),
                    "availability": ratio4(p.availability()),
                })
            })
            .collect();
        out.push(outage(
            facts,
            network,
            node,
            &by_node[node],
            windows,
            together,
            Some(per_responder),
        ));
        causes.nodes.insert((network, node.clone()));
    }
    // Each pair's outages outside its client node's own: those within its responder
    // node's own are that node's (it was cut off, the pair with it), the others the
    // pair's finding.
    let within = |w: &Window, node: &String| {
        cut_off
            .get(node)
            .is_some_and(|own| own.iter().any(|o| when::overlap(o, w)))
    };
    let mut pair_windows: BTreeMap<(String, String), Vec<Window>> = BTreeMap::new();
    let mut responders_own: BTreeMap<(String, String), Vec<Window>> = BTreeMap::new();
    for (node, split) in &splits {
        for responder in split.pairs.keys() {
            let (theirs, left): (Vec<Window>, Vec<Window>) = split
                .pair_only(responder)
                .into_iter()
                .partition(|w| responder != *node && within(w, responder));
            let pair = (node.to_string(), responder.clone());
            if !left.is_empty() {
                pair_windows.insert(pair.clone(), left);
            }
            if !theirs.is_empty() {
                responders_own.insert(pair, theirs);
            }
        }
    }
    // The client nodes that probe each responder node.
    let mut probed_by: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for (node, split) in &splits {
        for responder in split.pairs.keys() {
            probed_by.entry(responder).or_default().insert(node);
        }
    }
    let pairs: BTreeSet<&(String, String)> =
        pair_windows.keys().chain(responders_own.keys()).collect();
    for key @ (from, to) in pairs {
        let split = &splits[from];
        let pair_paths = by_node[from].only(|k| mesh.target_nodes.get(&k.target) == Some(to));
        let others_to: BTreeSet<&String> = probed_by
            .get(to)
            .map(|f| {
                f.iter()
                    .copied()
                    .filter(|n| *n != from && *n != to)
                    .collect()
            })
            .unwrap_or_default();
        let together = |w: &Window| pair_together(from, to, w, &pair_windows, &others_to);
        // The responders the node's clients reached during `w`.
        let reached = |w: &Window| -> Vec<String> {
            by_node[from]
                .measured_targets(w)
                .iter()
                .filter_map(|t| mesh.target_nodes.get(t))
                .filter(|r| {
                    *r != to
                        && !split
                            .pairs
                            .get(*r)
                            .is_some_and(|p| p.windows.iter().any(|o| when::overlap(o, w)))
                })
                .cloned()
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect()
        };
        let probed = split.pairs.get(to).map_or((0, 0), |p| p.probed);
        let pair = |windows| Pair {
            from,
            to,
            paths: &pair_paths,
            windows,
            probed,
        };
        if let Some(windows) = pair_windows.get(key) {
            let f = pair_outage(facts, network, &pair(windows), reached, together);
            causes
                .pairs
                .insert((network, from.clone(), to.clone()), f.nodes.clone());
            out.push(f);
            continue;
        }
        // Only while its responder node was cut off: said under that node's outage.
        let windows = &responders_own[key];
        let f = pair_outage(facts, network, &pair(windows), reached, |_| None);
        let Some(cause) = out.iter_mut().find(|c| {
            c.kind == FindingKind::Outage && c.network == Some(network) && c.nodes == [to.as_str()]
        }) else {
            continue;
        };
        add_explained(
            cause,
            json!({"kind": f.kind, "nodes": f.nodes, "summary": f.summary}),
        );
        causes
            .pairs
            .insert((network, from.clone(), to.clone()), vec![to.clone()]);
    }
}

/// One pair's outages, what its finding is made of.
struct Pair<'p, 'a> {
    /// The client node.
    from: &'p String,
    /// The responder's node.
    to: &'p String,
    /// The client node's paths to that responder.
    paths: &'p NodePaths<'a>,
    /// The pair's outages outside the client node's own (sorted, not empty).
    windows: &'p [Window],
    /// The pair's first and last probe, ms since the run started.
    probed: (u64, u64),
}

/// Other pairs down at the same time as one pair's window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PairTogether {
    /// The other pairs, each with its overlapping window (the first if several), by name.
    with: Vec<((String, String), Window)>,
    /// The same two nodes the other way round is among them.
    reverse: bool,
    /// Every other client node (two or more) that probes the responder lost it too.
    every_other_to_responder: bool,
}

/// The pairs of `pairs` (client node, responder node → their outages) other than
/// `from → to` whose windows overlap `w`, and what they have in common with it;
/// `others_to` are the other client nodes that probe `to`. `None` when none overlaps.
fn pair_together(
    from: &String,
    to: &String,
    w: &Window,
    pairs: &BTreeMap<(String, String), Vec<Window>>,
    others_to: &BTreeSet<&String>,
) -> Option<PairTogether> {
    let with: Vec<((String, String), Window)> = pairs
        .iter()
        .filter(|((f, t), _)| !(f == from && t == to))
        .filter_map(|(p, ws)| {
            ws.iter()
                .find(|o| when::overlap(o, w))
                .map(|o| (p.clone(), *o))
        })
        .collect();
    if with.is_empty() {
        return None;
    }
    let reverse = from != to && with.iter().any(|((f, t), _)| f == to && t == from);
    let every_other_to_responder = others_to.len() >= 2
        && others_to
            .iter()
            .all(|o| with.iter().any(|((f, t), _)| f == *o && t == to));
    Some(PairTogether {
        with,
        reverse,
        every_other_to_responder,
    })
}

impl PairTogether {
    /// The other pairs, `a → b`.
    fn names(&self) -> Vec<String> {
        self.with
            .iter()
            .map(|((f, t), _)| format!("{f} → {t}"))
            .collect()
    }

    /// One sentence: which pairs were down at the same time and what that points at.
    fn words(&self, from: &str, to: &str) -> String {
        let who = when::and_list(&self.names());
        if self.every_other_to_responder {
            format!(
                "{who} were down at the same time — every other node lost the responder on {to}: {to}'s side (its uplink, switch port or firewall for traffic to it)"
            )
        } else if self.reverse && self.with.len() == 1 {
            format!(
                "{who} was down at the same time — both directions between {from} and {to}: the path between the two nodes"
            )
        } else if self.with.len() == 1 {
            format!("{who} was down at the same time: something the two pairs share")
        } else {
            format!("{who} were down at the same time: something those pairs share")
        }
    }

    /// What to check.
    fn suggestion(&self, from: &str, to: &str) -> String {
        if self.every_other_to_responder {
            format!(
                "every other node lost the responder on {to} at the same time: check node {to}'s uplink and switch port for the network and its firewall for traffic to its pods, for the window's time"
            )
        } else if self.reverse && self.with.len() == 1 {
            format!(
                "both directions between {from} and {to} went down while each reached other nodes: check what lies between the two only — firewall rules or ACLs naming them or their pods' addresses, the switch path between their ports — for the window's time"
            )
        } else {
            format!(
                "{} went down together with {from} → {to}: check what they share (a switch, a VLAN, an inter-switch link, a firewall rule) for the window's time",
                when::and_list(&self.names())
            )
        }
    }
}

/// The `outage` finding of one mesh pair (`from → to`): its outages outside the client
/// node's own, the longest's scope among the pair's paths, the responders the node
/// `reached` meanwhile, and the other pairs down `together` with it.
fn pair_outage(
    facts: &RunFacts,
    network: CephNetwork,
    pair: &Pair<'_, '_>,
    reached: impl Fn(&Window) -> Vec<String>,
    together: impl Fn(&Window) -> Option<PairTogether>,
) -> Finding {
    let Pair {
        from,
        to,
        paths,
        windows,
        probed,
    } = *pair;
    let availability = availability(windows, probed);
    let longest_w = when::longest(windows).unwrap_or(windows[0]);
    let longest = longest_w.to_ms - longest_w.from_ms;
    let severity = severity(longest, availability);
    let secs = |ms: u64| ms as f64 / 1000.0;
    let utc = |ms| crate::findings::utc(facts.started_unix_ms, ms);
    let scope = |w: &Window| {
        let mut s = paths.scope(w);
        s.kind = s.kind.of_pair();
        s
    };
    let longest_scope = scope(&longest_w);
    let with = together(&longest_w);
    let reached_then = reached(&longest_w);
    let summary = format!(
        "{from} → {to} on {}: {} outage{}, longest {:.1} s, availability {:.2}% — during the soak node {from}'s clients lost the responder on node {to} from {} to {} ({:.1} s to {:.1} s into the run, mostly {}{}) {}{}{}",
        network.key(),
        windows.len(),
        if windows.len() == 1 { "" } else { "s" },
        secs(longest),
        availability * 100.0,
        utc(longest_w.from_ms),
        utc(longest_w.to_ms),
        secs(longest_w.from_ms),
        secs(longest_w.to_ms),
        longest_w
            .failures
            .dominant()
            .map_or_else(|| "unknown".to_string(), |c| c.to_string()),
        if longest_w.ongoing {
            ", still down at the end"
        } else {
            ""
        },
        longest_scope.kind.words(),
        if reached_then.is_empty() {
            String::new()
        } else {
            format!(
                ", while they reached the responders on {}",
                when::and_list(&reached_then)
            )
        },
        with.as_ref()
            .map_or(String::new(), |t| format!("; {}", t.words(from, to))),
    );
    let pair_name = |(f, t): &(String, String)| format!("{f} -> {t}");
    let shown: Vec<Value> = when::shown(windows)
        .iter()
        .map(|w| {
            let mut v = when::window_json(w, facts.started_unix_ms, Some(&scope(w)), None);
            if let Some(t) = together(w) {
                v["together_with"] = json!(
                    t.with
                        .iter()
                        .map(|(p, o)| json!({
                            "pair": pair_name(p),
                            "from": utc(o.from_ms),
                            "to": utc(o.to_ms),
                            "from_ms": o.from_ms,
                            "to_ms": o.to_ms,
                        }))
                        .collect::<Vec<_>>()
                );
            }
            v
        })
        .collect();
    let together_with: BTreeSet<String> = windows
        .iter()
        .filter_map(&together)
        .flat_map(|t| t.with.into_iter().map(|(p, _)| pair_name(&p)))
        .collect();
    let mut f = finding(
        FindingKind::Outage,
        severity,
        Some(network),
        vec![from.clone(), to.clone()],
        summary,
        BTreeMap::from([
            ("pair".into(), json!({"from": from, "to": to})),
            ("outages".into(), json!(windows.len())),
            ("longest_ms".into(), json!(longest)),
            ("availability".into(), json!(ratio4(availability))),
            ("flaps".into(), json!(paths.flaps())),
            ("windows".into(), json!(shown)),
            ("scope".into(), json!(longest_scope.kind.key())),
            ("together_with".into(), json!(together_with)),
            ("clock".into(), json!(when::CLOCK)),
            ("responder_nodes".into(), json!([to])),
        ]),
        &[],
    );
    f.suggestions = vec![
        with.as_ref().map_or_else(
            || longest_scope.kind.suggestion().to_string(),
            |t| t.suggestion(from, to),
        ),
        HEARTBEAT_SUGGESTION.into(),
    ];
    f
}

/// Every outage finding's last suggestion.
const HEARTBEAT_SUGGESTION: &str = "Ceph reports OSDs down after osd_heartbeat_grace (20 s): outages that long re-peer placement groups; shorter ones stall client I/O";

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
