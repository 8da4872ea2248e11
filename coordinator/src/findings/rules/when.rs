//! When paths failed, and which failed together: the times behind a soak's network findings
//! (`outage`, `flaky`, `node_unreachable`, `inter_node_blocked`, `mtu_blackhole`,
//! `tls_failure`). Pure reading of the matrix: each client path keeps its first and last failed
//! probe and its most recent failure windows ([`crate::matrix::PathStats`]); a node's windows
//! on a network are its paths' merged by [`OutageRule::merge`] (the probe kinds are probed one
//! after another, so one failure shows on each kind up to a round apart).
//!
//! Each merged window gets a [`Scope`]: which of the node's paths it took down. There is one
//! server, so every path of a node leads to the server's node; what tells causes apart is which
//! clients and probe kinds failed together, among the paths measured during the window:
//!
//! - `node uplink`: every path (every client, every probe kind) — the node's uplink, its switch
//!   port, or the way between it and the server's node;
//! - `large probes`: every large probe and no small one — packets above some size dropped
//!   (an MTU below the NAD's somewhere on the path);
//! - `https probes`: every HTTPS probe and no HTTP one — TLS-sized packets or a middlebox;
//! - `one client` / `some clients`: every path of some of the node's clients while the others
//!   passed — what follows pods (a MAC address limit on macvlan, a duplicated address);
//! - `one path` / `some paths`: anything else;
//! - `pair` (a mesh pair's outage, its paths being one node's to one responder): every path
//!   between the two — what `node uplink` is among the node's paths.
//!
//! Outage windows of several nodes on one network that overlap in time are *together*
//! ([`Together`]): every node but the server's points at the server's side (its node's uplink or
//! switch port) or the switch, every node at the server or the switch.
//!
//! Where the rule comes from: the lab's topology ([`crate::lab::topology`]) is the model of the
//! network — every pod of a node on a network is a macvlan/ipvlan child of the NAD's master
//! interface, one uplink to one switch port, so that uplink's failure takes every client of the
//! node and every probe kind at once, and the server's does so for every other node; the
//! server's own node's pods reach it through the master's bridge without the switch, unless
//! the master itself loses its carrier. What fails by packet size (`large probes`) or protocol
//! (`https probes`) is what the `mtu_blackhole` and `tls_failure` rules ([`super::network`])
//! read from the whole run's figures, here per window.

use std::collections::{BTreeMap, BTreeSet};

use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Payload, Scheme};
use serde_json::{Value, json};

use crate::findings::{Finding, RunFacts, utc};
use crate::matrix::{PathKey, PathMatrix, PathStats};
use crate::outage::{OutageRule, Window};

/// Windows kept in a finding's evidence: the longest and the most recent ones.
pub(super) const WINDOWS_SHOWN: usize = 5;
/// Clients named in a window's evidence.
const CLIENTS_SHOWN: usize = 10;

/// What the `clock` evidence key says.
pub(super) const CLOCK: &str = "from and to: UTC; _ms: ms since the run started (its started_at)";

/// One node's client paths on one network.
#[derive(Debug, Default)]
pub(super) struct NodePaths<'a> {
    paths: Vec<(&'a PathKey, &'a PathStats)>,
}

/// The client paths of `network`, by node: `node_of(client)` names a client's node, `None`
/// leaves the client out; only the paths `keep` selects (a mesh's: those to responders that
/// listen there now and still report).
pub(super) fn by_node_where<'a>(
    matrix: &'a PathMatrix,
    network: CephNetwork,
    node_of: impl Fn(&str) -> Option<String>,
    keep: impl Fn(&PathKey) -> bool,
) -> BTreeMap<String, NodePaths<'a>> {
    let mut out: BTreeMap<String, NodePaths<'a>> = BTreeMap::new();
    for (key, stats) in matrix.paths() {
        if key.network != network || !keep(key) {
            continue;
        }
        if let Some(node) = node_of(&key.client) {
            out.entry(node).or_default().paths.push((key, stats));
        }
    }
    out
}

impl NodePaths<'_> {
    /// The target addresses whose paths had a failure window overlapping `w` (a mesh run's
    /// outage says which responders it cut the node off from).
    pub(super) fn targets_down(&self, w: &Window) -> BTreeSet<std::net::SocketAddr> {
        self.paths
            .iter()
            .filter(|(_, stats)| {
                path_windows(stats).any(|p| p.from_ms <= w.to_ms && w.from_ms <= p.to_ms)
            })
            .map(|(key, _)| key.target)
            .collect()
    }
}

/// A path's failure windows on the run's clock; one still open ends at the path's last probe.
fn path_windows(stats: &PathStats) -> impl Iterator<Item = Window> + '_ {
    let last = stats.last_ms.unwrap_or_default();
    stats.recent_outages.iter().map(move |o| Window {
        from_ms: o.from_ms,
        to_ms: o.to_ms.unwrap_or(last).max(o.from_ms),
        ongoing: o.to_ms.is_none(),
        failures: o.failures,
    })
}

impl<'a> NodePaths<'a> {
    /// The paths of `clients` on `network` (one node's, for [`Self::scope`] to mean the node).
    pub fn of(matrix: &'a PathMatrix, network: CephNetwork, clients: &BTreeSet<String>) -> Self {
        Self {
            paths: matrix
                .paths()
                .into_iter()
                .filter(|(k, _)| k.network == network && clients.contains(&k.client))
                .collect(),
        }
    }

    /// The failure windows of the paths `only` selects, merged by `rule` (none left out: a
    /// short one is loss, still a time the paths failed).
    pub fn windows(&self, rule: OutageRule, only: impl Fn(&PathKey) -> bool) -> Vec<Window> {
        rule.merge(
            self.paths
                .iter()
                .filter(|(k, _)| only(k))
                .flat_map(|(_, s)| path_windows(s))
                .collect(),
        )
    }

    /// The first and the last failed probe of the paths `only` selects, ms since the run
    /// started; `None` when none failed.
    pub fn failed_span(&self, only: impl Fn(&PathKey) -> bool) -> Option<(u64, u64)> {
        let selected = self.paths.iter().filter(|(k, _)| only(k));
        let first = selected
            .clone()
            .filter_map(|(_, s)| s.first_failed_ms)
            .min()?;
        let last = selected.filter_map(|(_, s)| s.last_failed_ms).max()?;
        Some((first, last))
    }

    /// The paths' keys.
    pub fn keys(&self) -> impl Iterator<Item = &PathKey> + '_ {
        self.paths.iter().map(|(k, _)| *k)
    }

    /// The paths `keep` selects (in a mesh, a node's paths to one responder: a pair's).
    pub fn only(&self, keep: impl Fn(&PathKey) -> bool) -> NodePaths<'a> {
        NodePaths {
            paths: self
                .paths
                .iter()
                .filter(|(k, _)| keep(k))
                .copied()
                .collect(),
        }
    }

    /// The target addresses of the paths measured during `w` (a probe before its end and one
    /// after its start).
    pub fn measured_targets(&self, w: &Window) -> BTreeSet<std::net::SocketAddr> {
        self.paths
            .iter()
            .filter(|(_, s)| {
                s.first_ms.is_some_and(|f| f <= w.to_ms)
                    && s.last_ms.is_some_and(|l| l >= w.from_ms)
            })
            .map(|(k, _)| k.target)
            .collect()
    }

    /// The first and the last probe of every path, ms since the run started.
    pub fn probed_span(&self) -> (u64, u64) {
        let first = self.paths.iter().filter_map(|(_, s)| s.first_ms).min();
        let last = self.paths.iter().filter_map(|(_, s)| s.last_ms).max();
        (first.unwrap_or_default(), last.unwrap_or_default())
    }

    /// Up→down transitions of every path.
    pub fn flaps(&self) -> u64 {
        self.paths.iter().map(|(_, s)| s.flaps).sum()
    }

    /// Which of these paths window `w` took down, among those measured during it.
    pub fn scope(&self, w: &Window) -> Scope {
        let measured: Vec<(&PathKey, bool)> = self
            .paths
            .iter()
            .filter(|(_, s)| {
                s.first_ms.is_some_and(|f| f <= w.to_ms)
                    && s.last_ms.is_some_and(|l| l >= w.from_ms)
            })
            .map(|(k, s)| {
                let down = path_windows(s).any(|p| p.from_ms <= w.to_ms && w.from_ms <= p.to_ms);
                (*k, down)
            })
            .collect();
        let down = |pick: &dyn Fn(&PathKey) -> bool| -> bool {
            let picked = measured.iter().filter(|(k, _)| pick(k)).count();
            picked > 0 && picked < measured.len() && measured.iter().all(|(k, d)| *d == pick(k))
        };
        let clients: BTreeSet<&str> = measured.iter().map(|(k, _)| k.client.as_str()).collect();
        let clients_down: BTreeSet<&str> = measured
            .iter()
            .filter(|(_, d)| *d)
            .map(|(k, _)| k.client.as_str())
            .collect();
        // Every path of each client that has one down, and not every client.
        let whole_clients = measured
            .iter()
            .all(|(k, d)| *d == clients_down.contains(k.client.as_str()))
            && clients_down.len() < clients.len();
        let paths_down = measured.iter().filter(|(_, d)| *d).count();
        let kind = if paths_down > 0 && paths_down == measured.len() {
            ScopeKind::NodeUplink
        } else if down(&|k| k.kind.payload == Payload::Large) {
            ScopeKind::LargeProbes
        } else if down(&|k| k.kind.scheme == Scheme::Https) {
            ScopeKind::HttpsProbes
        } else if whole_clients && clients_down.len() == 1 {
            ScopeKind::OneClient
        } else if whole_clients && clients_down.len() > 1 {
            ScopeKind::SomeClients
        } else if paths_down == 1 {
            ScopeKind::OnePath
        } else {
            ScopeKind::SomePaths
        };
        Scope {
            kind,
            paths_down,
            paths: measured.len(),
            clients_down: clients_down.into_iter().map(str::to_string).collect(),
        }
    }
}

/// Whether windows `a` and `b` overlap in time.
pub(super) fn overlap(a: &Window, b: &Window) -> bool {
    a.from_ms <= b.to_ms && b.from_ms <= a.to_ms
}

/// Which of a node's paths on a network a window took down (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scope {
    /// What the paths down have in common.
    pub kind: ScopeKind,
    /// Paths with a failure in the window.
    pub paths_down: usize,
    /// Paths of the node measured during the window (a probe before its end and one after
    /// its start).
    pub paths: usize,
    /// The clients with a path down, sorted.
    pub clients_down: Vec<String>,
}

/// The kinds of [`Scope`], as the evidence's `scope` says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScopeKind {
    /// Every path of the node.
    NodeUplink,
    /// Every large probe, no small one.
    LargeProbes,
    /// Every HTTPS probe, no HTTP one.
    HttpsProbes,
    /// Every path of one client, the node's other clients up.
    OneClient,
    /// Every path of some clients, the node's other clients up.
    SomeClients,
    /// One path.
    OnePath,
    /// Some paths, none of the above.
    SomePaths,
    /// In a mesh, every path from a node to one responder, the node's other responders
    /// reached: what [`ScopeKind::NodeUplink`] is among one pair's paths.
    Pair,
}

impl ScopeKind {
    /// This scope among one pair's paths: every path of the pair is [`Self::Pair`].
    pub fn of_pair(self) -> Self {
        match self {
            Self::NodeUplink => Self::Pair,
            other => other,
        }
    }

    /// The evidence's `scope` value.
    pub fn key(self) -> &'static str {
        match self {
            Self::NodeUplink => "node uplink",
            Self::LargeProbes => "large probes",
            Self::HttpsProbes => "https probes",
            Self::OneClient => "one client",
            Self::SomeClients => "some clients",
            Self::OnePath => "one path",
            Self::SomePaths => "some paths",
            Self::Pair => "pair",
        }
    }

    /// Which paths, as a summary says it.
    pub fn words(self) -> &'static str {
        match self {
            Self::NodeUplink => "on every path of the node at once",
            Self::LargeProbes => "on large probes only, small ones passed",
            Self::HttpsProbes => "on HTTPS probes only, HTTP passed",
            Self::OneClient => "on one client's paths only, the node's other clients passed",
            Self::SomeClients => "on some clients' paths only, the node's other clients passed",
            Self::OnePath => "on one path only",
            Self::SomePaths => "on some of the node's paths",
            Self::Pair => "on every path between the two at once (every client, every probe kind)",
        }
    }

    /// What to check, for a window of this scope.
    pub fn suggestion(self) -> &'static str {
        match self {
            Self::NodeUplink => {
                "every path of the node went down at once: its uplink for the network (link state, carrier, NIC, bond), its switch port or the way to the server's node; check their logs and counters for the window's time"
            }
            Self::LargeProbes => {
                "only large probes failed: packets above some size were dropped for that time; compare the MTU of the NAD, the master interface and every switch port on the path, and look for an MTU change then"
            }
            Self::HttpsProbes => {
                "only HTTPS failed: something on the path interfered with TLS (a proxy, DPI, a middlebox) or dropped TLS-sized packets for that time"
            }
            Self::OneClient | Self::SomeClients => {
                "only some of the node's clients went down, not the node: what follows pods — the switch port's or NIC's MAC address limit (macvlan), two pods with one address"
            }
            Self::OnePath | Self::SomePaths => {
                "only some paths went down: their probe kinds and failure classes in paths[] say which connections failed"
            }
            Self::Pair => {
                "every path from the node to that responder went down at once while the node reached its other responders: what lies between the two nodes only — firewall rules or ACLs naming them or their pods' addresses (nftables/iptables on both hosts, security groups), the switch path between their ports (VLAN membership, MAC limits) — for the window's time"
            }
        }
    }
}

/// Nodes whose windows on a network overlap one node's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Together {
    /// The other nodes, each with its overlapping window (the first if several), by name.
    pub with: Vec<(String, Window)>,
    /// Every node down, this one included, sorted.
    pub nodes: Vec<String>,
    /// From the earliest start to the latest end of those windows.
    pub from_ms: u64,
    /// See `from_ms`.
    pub to_ms: u64,
    /// Whether they are every node with clients on the network.
    pub every_node: bool,
    /// Whether they are every such node but the server's.
    pub all_but_server: bool,
}

/// The windows of `others` (by node, `node`'s own left out) that overlap `w`, and what the
/// nodes down together are among `all_nodes` (the nodes with client paths on the network);
/// `None` when no other node's window overlaps. `server_node` is empty in a mesh run (no
/// node is every path's far end).
pub(super) fn together(
    node: &str,
    w: &Window,
    others: &BTreeMap<String, Vec<Window>>,
    all_nodes: &BTreeSet<String>,
    server_node: &str,
) -> Option<Together> {
    let with: Vec<(String, Window)> = others
        .iter()
        .filter(|(n, _)| n.as_str() != node)
        .filter_map(|(n, ws)| {
            ws.iter()
                .find(|o| o.from_ms <= w.to_ms && w.from_ms <= o.to_ms)
                .map(|o| (n.clone(), *o))
        })
        .collect();
    if with.is_empty() {
        return None;
    }
    let nodes: BTreeSet<String> = with
        .iter()
        .map(|(n, _)| n.clone())
        .chain(std::iter::once(node.to_string()))
        .collect();
    let but_server: BTreeSet<String> = all_nodes
        .iter()
        .filter(|n| n.as_str() != server_node)
        .cloned()
        .collect();
    Some(Together {
        from_ms: with
            .iter()
            .map(|(_, o)| o.from_ms)
            .fold(w.from_ms, u64::min),
        to_ms: with.iter().map(|(_, o)| o.to_ms).fold(w.to_ms, u64::max),
        every_node: nodes == *all_nodes,
        all_but_server: all_nodes.contains(server_node) && nodes == but_server,
        with,
        nodes: nodes.into_iter().collect(),
    })
}

impl Together {
    /// One sentence: who was down together, when, and what that points at.
    pub fn words(&self, started_unix_ms: u64, server_node: &str) -> String {
        let who = and_list(&self.nodes);
        let when = format!(
            "from {} to {}",
            utc(started_unix_ms, self.from_ms),
            utc(started_unix_ms, self.to_ms)
        );
        if self.every_node && server_node.is_empty() {
            format!(
                "{who} — every node — were down together {when}: the switch or something every node shares"
            )
        } else if self.every_node {
            format!(
                "{who} — every node — were down together {when}: the server (its node {server_node}'s uplink or switch port) or the switch"
            )
        } else if self.all_but_server {
            format!(
                "{who} — every node but the server's node {server_node} — were down together {when}: the server's side (its node's uplink or switch port) or the switch"
            )
        } else if server_node.is_empty() {
            format!(
                "{who} were down together {when}: something they share (a switch, a VLAN) or the path between them"
            )
        } else {
            format!(
                "{who} were down together {when}: something they share (a switch, a VLAN) or the server's side for them"
            )
        }
    }

    /// What to check.
    pub fn suggestion(&self, server_node: &str) -> String {
        if (self.every_node || self.all_but_server) && !server_node.is_empty() {
            format!(
                "{} went down together: check the server's node {server_node} (its uplink and switch port for the network) and the switch, for the window's time",
                and_list(&self.nodes)
            )
        } else {
            format!(
                "{} went down together: check what they share (their switch, a VLAN, an inter-switch link) for the window's time",
                and_list(&self.nodes)
            )
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(super) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The windows to show of `merged` (sorted by start): the longest and the most recent
/// [`WINDOWS_SHOWN`], by start.
pub(super) fn shown(merged: &[Window]) -> Vec<Window> {
    let mut shown: Vec<Window> = merged.to_vec();
    shown.sort_by_key(|w| std::cmp::Reverse(w.to_ms - w.from_ms));
    shown.truncate(WINDOWS_SHOWN);
    for w in merged.iter().rev().take(WINDOWS_SHOWN) {
        if !shown.contains(w) {
            shown.push(*w);
        }
    }
    shown.sort_by_key(|w| w.from_ms);
    shown
}

/// The longest of `merged` (the first of equals).
pub(super) fn longest(merged: &[Window]) -> Option<Window> {
    merged.iter().copied().reduce(|a, b| {
        if b.to_ms - b.from_ms > a.to_ms - a.from_ms {
            b
        } else {
            a
        }
    })
}

/// A window as evidence: `from`/`to` (UTC), `from_ms`/`to_ms` (the run's clock),
/// `duration_ms`, `ongoing`, `failed_probes`, `class` (the dominant failure class), and when
/// known its `scope` (`scope`, `paths_down`, `paths`, `clients_down`) and the nodes down
/// `together_with` it (`[{node, from, to, from_ms, to_ms}]`).
pub(super) fn window_json(
    w: &Window,
    started_unix_ms: u64,
    scope: Option<&Scope>,
    together: Option<&Together>,
) -> Value {
    let utc = |ms| utc(started_unix_ms, ms);
    let mut v = json!({
        "from": utc(w.from_ms),
        "to": utc(w.to_ms),
        "from_ms": w.from_ms,
        "to_ms": w.to_ms,
        "duration_ms": w.to_ms - w.from_ms,
        "ongoing": w.ongoing,
        "failed_probes": w.failures.total(),
        "class": w.failures.dominant().map(|c| c.to_string()),
    });
    if let Some(s) = scope {
        v["scope"] = json!(s.kind.key());
        v["paths_down"] = json!(s.paths_down);
        v["paths"] = json!(s.paths);
        v["clients_down"] = json!(
            s.clients_down
                .iter()
                .take(CLIENTS_SHOWN)
                .collect::<Vec<_>>()
        );
    }
    if let Some(t) = together {
        v["together_with"] = json!(
            t.with
                .iter()
                .map(|(n, o)| json!({
                    "node": n,
                    "from": utc(o.from_ms),
                    "to": utc(o.to_ms),
                    "from_ms": o.from_ms,
                    "to_ms": o.to_ms,
                }))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// When some paths failed, for a soak's path finding ([`failure_time`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FailureTime {
    /// Evidence keys to add.
    pub evidence: BTreeMap<String, Value>,
    /// What to add to the summary, beginning with `; `.
    pub phrase: String,
    /// The longest window's scope, when asked for.
    pub scope: Option<ScopeKind>,
}

/// When the paths `only` selects failed, for a soak's path finding (not the `outage`
/// finding, which has its own): evidence `first_failure`/`last_failure` (UTC) with their
/// `_ms`, `failure_window_count`, `failure_windows` (the longest and most recent, each with
/// its scope when `scoped`: `paths` is one node's), `scope` (the longest window's, when
/// `scoped`) and `clock`, and a phrase for the summary. `None` when none of them failed.
pub(super) fn failure_time(
    paths: &NodePaths<'_>,
    only: impl Fn(&PathKey) -> bool + Copy,
    rule: OutageRule,
    started_unix_ms: u64,
    scoped: bool,
) -> Option<FailureTime> {
    let (first, last) = paths.failed_span(only)?;
    let merged = paths.windows(rule, only);
    let utc = |ms| utc(started_unix_ms, ms);
    let secs = |ms: u64| ms as f64 / 1000.0;
    let mut evidence = BTreeMap::from([
        ("first_failure".to_string(), json!(utc(first))),
        ("last_failure".to_string(), json!(utc(last))),
        ("first_failure_ms".to_string(), json!(first)),
        ("last_failure_ms".to_string(), json!(last)),
        ("failure_window_count".to_string(), json!(merged.len())),
        (
            "failure_windows".to_string(),
            json!(
                shown(&merged)
                    .iter()
                    .map(|w| {
                        let scope = scoped.then(|| paths.scope(w));
                        window_json(w, started_unix_ms, scope.as_ref(), None)
                    })
                    .collect::<Vec<_>>()
            ),
        ),
        ("clock".to_string(), json!(CLOCK)),
    ]);
    let mut phrase = format!(
        "; failed probes from {} to {} ({:.1} s to {:.1} s into the run)",
        utc(first),
        utc(last),
        secs(first),
        secs(last)
    );
    let mut scope = None;
    if let Some(l) = longest(&merged) {
        phrase.push_str(&format!(
            " in {} window(s), the longest {:.1} s from {}",
            merged.len(),
            secs(l.to_ms - l.from_ms),
            utc(l.from_ms)
        ));
        if scoped {
            let kind = paths.scope(&l).kind;
            phrase.push(' ');
            phrase.push_str(kind.words());
            evidence.insert("scope".into(), json!(kind.key()));
            scope = Some(kind);
        }
    }
    Some(FailureTime {
        evidence,
        phrase,
        scope,
    })
}

/// In a soak, gives the finding last pushed to `out` its time: when the paths of `clients` on
/// `network` that `only` selects failed ([`failure_time`]), in its evidence and at the
/// end of its summary. With `scoped` (the clients of one node), each window's scope too, and
/// when the longest took down every path of the node, every large or every HTTPS probe, the
/// suggestion that scope makes comes first. Nothing outside a soak (a run that ends once its
/// clients pass has no time worth telling).
pub(super) fn timed(
    out: &mut [Finding],
    matrix: &PathMatrix,
    facts: &RunFacts,
    network: CephNetwork,
    clients: &BTreeSet<String>,
    only: impl Fn(&PathKey) -> bool + Copy,
    scoped: bool,
) {
    let (Some(min_ms), Some(f)) = (facts.soak_min_outage_ms, out.last_mut()) else {
        return;
    };
    let paths = NodePaths::of(matrix, network, clients);
    let rule = OutageRule { min_ms };
    let Some(time) = failure_time(&paths, only, rule, facts.started_unix_ms, scoped) else {
        return;
    };
    f.summary.push_str(&time.phrase);
    f.evidence.extend(time.evidence);
    if let Some(scope @ (ScopeKind::NodeUplink | ScopeKind::LargeProbes | ScopeKind::HttpsProbes)) =
        time.scope
    {
        f.suggestions.insert(0, scope.suggestion().to_string());
    }
}
