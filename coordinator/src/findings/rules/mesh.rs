//! The rules over one network of a mesh run ([`crate::mesh`]): the client paths summed per
//! cell (client node → responder node), then, in this order, each cell explained once:
//!
//! 0. `server_unavailable` naming every responder's node — nothing gets through anywhere, not
//!    even within a node;
//! 1. `server_unavailable` — a responder no node reaches, not even its own node's clients;
//! 2. `node_unreachable` — a node whose clients reach no responder at all (its own
//!    included), or, with two other nodes or more, a node cut off from every other node:
//!    its clients reach no other node's responder, or no other node's clients reach its
//!    responder (its own node's cell passing);
//! 3. `inter_node_blocked` — what is left broken between two nodes, said once per pair of
//!    nodes with both directions in its evidence: the block a single-server run cannot see
//!    when neither node is the server's;
//! 4. per client node, over its cells left: `mtu_blackhole`, `tls_failure`, `flaky`, as the
//!    single-server rules say them ([`super::network`]), naming the responder nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Payload, Scheme};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{BAD_RATIO, FLAKY_RATIO, GOOD_RATIO, NodeNet, finding, is_reporting, when};
use crate::findings::{Finding, FindingKind, RunFacts, Severity};
use crate::matrix::{PathKey, PathMatrix};

/// What a mesh run's findings and report read besides the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshFacts {
    /// The responder node of every target address (HTTP and HTTPS) the responders listen on
    /// now, and only of responders still reporting: what the verdict reads. Paths to a
    /// responder's addresses before it restarted (it listens on new ports) or to a responder
    /// that stopped reporting are its own story (`agent_outages`, `agent_lost`), not the
    /// network's.
    pub target_nodes: BTreeMap<SocketAddr, String>,
    /// Every address a responder listened on in the run, with its node: what paths are
    /// labelled with (`paths[].target_node`) and a soak's outage names.
    pub all_target_nodes: BTreeMap<SocketAddr, String>,
    /// Network → client node → the responder nodes its agents probe there
    /// ([`crate::mesh::Targeting`]).
    pub peers: BTreeMap<CephNetwork, BTreeMap<String, Vec<String>>>,
    /// Other nodes per node (`--mesh-peers`); `None`: every node.
    pub peers_per_node: Option<u32>,
}

/// A network's node × node matrix: (client node, responder node) → the client paths from
/// one node to the other's responder, summed.
type Cells = BTreeMap<(String, String), NodeNet>;

/// How a cell stands, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    /// Every client passed.
    Pass,
    /// Some probes or clients failed.
    Degraded,
    /// No client passed and fewer than one probe in five succeeded.
    Fail,
    /// The pair is probed but no result came (its clients were lost or never started).
    NoResults,
    /// The pair is not among the ones probed (`--mesh-peers`).
    NotProbed,
}

/// One cell as the report's `mesh.networks[].cells[]` have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    /// The clients' node.
    pub from: String,
    /// The responder's node.
    pub to: String,
    /// How it stands.
    pub state: CellState,
    /// Clients of `from` on the network that reported on `to`.
    pub clients: usize,
    /// Of them, those with the success threshold on every path to `to`.
    pub clients_passing: usize,
    /// Probes sent and answered.
    pub probes_sent: u64,
    /// Probes that succeeded.
    pub probes_ok: u64,
    /// Failures by class.
    pub failures: BTreeMap<String, u64>,
    /// In a soak, the pair's outages by the soak's outage rule (schema 5; absent outside a
    /// soak and for a pair without results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<CellOutage>,
}

/// A soak's outages of one (client node, responder node) pair on a network: its clients' paths
/// to that responder merged by the outage rule of the `outage` finding ([`crate::outage`]),
/// every window (those within node outages too), on the run's clock. The live
/// `multinet_outages_total` and `multinet_outage_seconds_total` of that `source_node` and
/// `target_node` apply the same rule as results arrive; README's "Live metrics" says where
/// their figures differ (host checkers, 8 windows kept per path, when a window counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellOutage {
    /// Outages in the soak.
    pub outages: usize,
    /// The longest, ms (0 without one).
    pub longest_ms: u64,
    /// Time down in all, ms.
    pub down_ms: u64,
    /// The share of the pair's probed time (first probe to last) no outage covers, 0 to 1,
    /// to 4 decimals.
    pub availability: f64,
    /// The longest 5 and the most recent 5, by start.
    pub windows: Vec<CellWindow>,
}

/// One outage of a [`CellOutage`], ms since the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellWindow {
    /// The first failed probe.
    pub from_ms: u64,
    /// The probe that succeeded again, or the last failed one while `ongoing`.
    pub to_ms: u64,
    /// Still down at the end of the run.
    #[serde(default)]
    pub ongoing: bool,
    /// The failure class most of its failed probes had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

impl From<&super::soak::PairOutages> for CellOutage {
    fn from(p: &super::soak::PairOutages) -> Self {
        Self {
            outages: p.windows.len(),
            longest_ms: p.longest_ms(),
            down_ms: p.down_ms(),
            availability: (p.availability() * 10_000.0).round() / 10_000.0,
            windows: when::shown(&p.windows)
                .iter()
                .map(|w| CellWindow {
                    from_ms: w.from_ms,
                    to_ms: w.to_ms,
                    ongoing: w.ongoing,
                    class: w.failures.dominant().map(|c| c.to_string()),
                })
                .collect(),
        }
    }
}

/// One network of a mesh run as the report has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshNetwork {
    /// The network.
    pub network: CephNetwork,
    /// Client nodes (rows), in the run's order.
    pub from: Vec<String>,
    /// Responder nodes (columns), in the run's order.
    pub to: Vec<String>,
    /// Of the `from` × `to` pairs, those probed (a node's own included).
    #[serde(default)]
    pub pairs_probed: usize,
    /// `from` × `to`.
    #[serde(default)]
    pub pairs: usize,
    /// Row by row, a cell per column.
    pub cells: Vec<CellReport>,
}

/// The cells of `network`: (client node, responder node) → sums, over the reporting agents
/// of `role` attached to it whose egress was right (clients; host checkers where a
/// host-check-only run has no client).
fn cells(
    matrix: &PathMatrix,
    facts: &RunFacts,
    mesh: &MeshFacts,
    network: CephNetwork,
    role: Role,
) -> Cells {
    let uncounted = super::egress::uncounted(facts);
    let clients: BTreeSet<&str> = facts
        .agents
        .iter()
        .filter(|a| {
            a.identity.role == role
                && a.identity.networks.contains(&network)
                && is_reporting(a)
                && !uncounted.contains(&(a.identity.pod.clone(), network))
        })
        .map(|a| a.identity.pod.as_str())
        .collect();
    // Paths to a responder that stopped reporting are its own failure (`agent_lost`,
    // `server_unavailable`), not the network's: its cells have no results.
    let responding: BTreeSet<&String> = std::iter::once(&facts.server)
        .chain(&facts.agents)
        .filter(|a| a.identity.role == Role::Server && is_reporting(a))
        .map(|a| &a.identity.node)
        .collect();
    let mut out = Cells::new();
    // Per cell and client: whether every path has the success threshold.
    let mut passes: BTreeMap<(String, String, String), bool> = BTreeMap::new();
    for (key, stats) in matrix.paths() {
        if key.network != network || !clients.contains(key.client.as_str()) {
            continue;
        }
        let Some(to) = mesh.target_nodes.get(&key.target) else {
            continue;
        };
        if !responding.contains(to) {
            continue;
        }
        let cell = (key.node.clone(), to.clone());
        let ok = stats.consecutive_ok >= facts.success_threshold;
        passes
            .entry((cell.0.clone(), cell.1.clone(), key.client.clone()))
            .and_modify(|p| *p &= ok)
            .or_insert(ok);
        let n = out.entry(cell).or_default();
        n.clients.insert(key.client.clone());
        n.add_path(key, stats);
    }
    for ((from, to, _), ok) in passes {
        if ok && let Some(c) = out.get_mut(&(from, to)) {
            c.passing += 1;
        }
    }
    out
}

/// The node × node matrix of every network, for the report.
pub fn mesh_matrix(matrix: &PathMatrix, facts: &RunFacts) -> Vec<MeshNetwork> {
    let Some(mesh) = &facts.mesh else {
        return Vec::new();
    };
    facts
        .networks
        .iter()
        .filter_map(|&network| {
            let attached = |role: Role| -> BTreeSet<&String> {
                std::iter::once(&facts.server)
                    .chain(&facts.agents)
                    .filter(|a| a.identity.role == role && a.identity.networks.contains(&network))
                    .map(|a| &a.identity.node)
                    .collect()
            };
            let responders = attached(Role::Server);
            if responders.is_empty() {
                return None;
            }
            // Clients' cells; a host-check-only run's host checkers'.
            let mut role = Role::Client;
            let mut sources = attached(role);
            if sources.is_empty() {
                role = Role::HostCheck;
                sources = attached(role);
            }
            let cells = cells(matrix, facts, mesh, network, role);
            let outages = super::soak::pair_outages(matrix, facts, network);
            let from: Vec<String> = facts
                .nodes
                .iter()
                .filter(|n| sources.contains(n))
                .cloned()
                .collect();
            let to: Vec<String> = facts
                .nodes
                .iter()
                .filter(|n| responders.contains(n))
                .cloned()
                .collect();
            let mut rows = Vec::new();
            let mut pairs_probed = 0;
            for f in &from {
                for t in &to {
                    let probed = mesh
                        .peers
                        .get(&network)
                        .and_then(|p| p.get(f))
                        .is_some_and(|p| p.contains(t));
                    pairs_probed += usize::from(probed);
                    let cell = cells.get(&(f.clone(), t.clone()));
                    let state = match cell {
                        None if probed => CellState::NoResults,
                        None => CellState::NotProbed,
                        Some(c) if c.broken() => CellState::Fail,
                        Some(c) if c.healthy() => CellState::Pass,
                        Some(_) => CellState::Degraded,
                    };
                    rows.push(CellReport {
                        from: f.clone(),
                        to: t.clone(),
                        state,
                        clients: cell.map_or(0, |c| c.clients.len()),
                        clients_passing: cell.map_or(0, |c| c.passing),
                        probes_sent: cell.map_or(0, |c| c.all.sent),
                        probes_ok: cell.map_or(0, |c| c.all.ok),
                        failures: cell.map(|c| c.failures.clone()).unwrap_or_default(),
                        outage: cell
                            .and(outages.get(&(f.clone(), t.clone())))
                            .map(CellOutage::from),
                    });
                }
            }
            Some(MeshNetwork {
                network,
                pairs: from.len() * to.len(),
                pairs_probed,
                from,
                to,
                cells: rows,
            })
        })
        .collect()
}

/// The paths of a finding about `cells_of` (client node, responder node), whose failure
/// times it tells: its clients' paths to those cells' responders only.
fn in_cells<'a>(
    target_nodes: &'a BTreeMap<SocketAddr, String>,
    cells_of: &'a BTreeSet<(String, String)>,
) -> impl Fn(&PathKey) -> bool + Copy + 'a {
    move |k: &PathKey| {
        target_nodes
            .get(&k.target)
            .is_some_and(|to| cells_of.contains(&(k.node.clone(), to.clone())))
    }
}

/// A finding's kind, summary, suggestions and the paths its time is told of.
type Judged = (
    FindingKind,
    String,
    &'static [&'static str],
    fn(&PathKey) -> bool,
);

/// The mesh rules of one network (the module's documentation).
pub(super) fn mesh_rules(
    matrix: &PathMatrix,
    facts: &RunFacts,
    mesh: &MeshFacts,
    network: CephNetwork,
    out: &mut Vec<Finding>,
) {
    let net = network.key();
    let cells = cells(matrix, facts, mesh, network, Role::Client);
    let broken = |f: &str, t: &str| {
        cells
            .get(&(f.to_string(), t.to_string()))
            .is_some_and(|c| c.broken())
    };
    let measured: BTreeSet<(&String, &String)> = cells.keys().map(|(f, t)| (f, t)).collect();
    let sources: BTreeSet<&String> = measured.iter().map(|(f, _)| *f).collect();
    let targets: BTreeSet<&String> = measured.iter().map(|(_, t)| *t).collect();
    let mut explained: BTreeSet<(String, String)> = BTreeSet::new();
    let cell_evidence = |f: &str, t: &str| -> Value {
        cells
            .get(&(f.to_string(), t.to_string()))
            .map_or(Value::Null, |c| json!(c.evidence()))
    };
    let anything_passes = cells.values().any(|c| c.passing > 0);

    // 0. Nothing gets through anywhere, not even within a node: the network itself.
    if !cells.is_empty() && cells.values().all(|c| c.broken()) {
        let mut evidence: BTreeMap<String, Value> = BTreeMap::new();
        for (f, t) in &measured {
            evidence.insert(format!("{f} -> {t}"), cell_evidence(f, t));
        }
        out.push(finding(
            FindingKind::ServerUnavailable, Severity::Fail, Some(network),
            targets.iter().map(|t| t.to_string()).collect(),
            format!("on the {net} network, no client reaches any responder, not even on its own node: the network carries nothing on any node"),
            evidence,
            &["check the NAD itself: its plugin, master interface and IPAM range are what every pod on this network gets",
              "look at a responder pod's events and logs: it said where it listens, but nothing gets through to it"],
        ));
        return;
    }

    // 1. A responder no node reaches.
    for t in &targets {
        let from: Vec<&&String> = sources
            .iter()
            .filter(|f| measured.contains(&(**f, *t)))
            .collect();
        if from.is_empty() || !from.iter().all(|f| broken(f, t)) || !anything_passes {
            continue;
        }
        let mut evidence = BTreeMap::from([("responder_node".to_string(), json!(t))]);
        for f in &from {
            evidence.insert(format!("from {f}"), cell_evidence(f, t));
        }
        out.push(finding(
            FindingKind::ServerUnavailable, Severity::Fail, Some(network), vec![t.to_string()],
            format!("on the {net} network, no client reaches the responder on node {t}, not even its own node's, while other responders are reached"),
            evidence,
            &["look at the responder pod's events and logs on this node: it said where it listens, but nothing gets through to it",
              "check this node's attachment for the network: the NAD's master interface, its link state and the host's firewall for the NAD's subnet"],
        ));
        for f in from {
            explained.insert((f.to_string(), t.to_string()));
        }
    }

    let target_nodes = &mesh.target_nodes;
    // In a soak, the finding last pushed tells when its clients' paths to `cells_of` failed.
    let time_cells = |out: &mut Vec<Finding>, cells_of: &[(String, String)], scoped: bool| {
        let clients: BTreeSet<String> = cells_of
            .iter()
            .filter_map(|c| cells.get(c))
            .flat_map(|c| c.clients.iter().cloned())
            .collect();
        let only: BTreeSet<(String, String)> = cells_of.iter().cloned().collect();
        let paths = in_cells(target_nodes, &only);
        when::timed(out, matrix, facts, network, &clients, paths, scoped);
    };

    // 1b. Nothing crosses between nodes: every cell between two nodes broken, within the
    // nodes the network works (a VLAN not trunked between the switch ports, the masters'
    // links down on the switch side).
    let crossing: Vec<(String, String)> = measured
        .iter()
        .filter(|(f, t)| f != t)
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .filter(|c| !explained.contains(c))
        .collect();
    let within_works = measured.iter().any(|(f, t)| f == t && !broken(f, t));
    let crossing_nodes: BTreeSet<&String> = crossing.iter().flat_map(|(f, t)| [f, t]).collect();
    if crossing_nodes.len() >= 3 && within_works && crossing.iter().all(|(f, t)| broken(f, t)) {
        let mut evidence: BTreeMap<String, Value> = BTreeMap::new();
        for (f, t) in &measured {
            evidence.insert(format!("{f} -> {t}"), cell_evidence(f, t));
        }
        out.push(finding(
            FindingKind::InterNodeBlocked, Severity::Fail, Some(network),
            crossing_nodes.iter().map(|n| n.to_string()).collect(),
            format!("on the {net} network, no traffic crosses between nodes: every node's clients reach their own node's responder and no other"),
            evidence,
            &["the nodes' ports are not on one L2 segment for this network: check the VLAN on every switch port and trunk between the switches",
              "check that the NAD's master interface is the same, up and cabled on every node (a master whose link is down on the switch side still passes traffic within the node)",
              "macvlan/ipvlan: the switch ports must accept frames for the pods' MAC addresses (port security, MAC limits)"],
        ));
        time_cells(out, &crossing, false);
        explained.extend(crossing);
    }

    // 2. A node whose clients reach nothing, or a node cut off from the others; decided for
    // every node from the cells left before any of them is explained, so the order of the
    // nodes changes nothing.
    let before = explained.clone();
    // (node, summary, its cells, whether others' clients fail toward it)
    type CutOff = (String, String, Vec<(String, String)>, bool);
    let mut cut_off: Vec<CutOff> = Vec::new();
    for node in facts.nodes.iter() {
        let explained = &before;
        let row: Vec<&&String> = targets
            .iter()
            .filter(|t| measured.contains(&(node, **t)))
            .filter(|t| !explained.contains(&(node.clone(), t.to_string())))
            .collect();
        let others_out: Vec<&&String> = row.iter().copied().filter(|t| **t != node).collect();
        let others_in: Vec<&&String> = sources
            .iter()
            .filter(|f| **f != node && measured.contains(&(**f, node)))
            .filter(|f| !explained.contains(&(f.to_string(), node.clone())))
            .collect();
        let all_out_broken = !row.is_empty() && row.iter().all(|t| broken(node, t));
        let own_passes = measured.contains(&(node, node)) && !broken(node, node);
        let out_cut = others_out.len() >= 2 && others_out.iter().all(|t| broken(node, t));
        let in_cut = others_in.len() >= 2 && others_in.iter().all(|f| broken(f, node));
        let (summary, cells_of): (String, Vec<(String, String)>) = if all_out_broken
            && anything_passes
            && !own_passes
        {
            (
                format!(
                    "on the {net} network, no client on node {node} reaches any responder, not even its own node's, while other nodes' clients do"
                ),
                row.iter().map(|t| (node.clone(), t.to_string())).collect(),
            )
        } else if own_passes && (out_cut || in_cut) {
            let mut which = Vec::new();
            if out_cut {
                which.extend(others_out.iter().map(|t| (node.clone(), t.to_string())));
            }
            if in_cut {
                which.extend(others_in.iter().map(|f| (f.to_string(), node.clone())));
            }
            let how = match (out_cut, in_cut) {
                (true, true) => {
                    "its clients reach no other node's responder and no other node's clients reach its responder"
                }
                (true, false) => {
                    "its clients reach no other node's responder, though other nodes' clients reach its own"
                }
                _ => {
                    "no other node's clients reach its responder, though its clients reach other nodes"
                }
            };
            (
                format!(
                    "on the {net} network, node {node} is cut off from the other nodes: {how}; within the node the network works"
                ),
                which,
            )
        } else {
            continue;
        };
        cut_off.push((node.clone(), summary, cells_of, in_cut));
    }
    for (node, summary, cells_of, in_cut) in cut_off {
        let mut evidence: BTreeMap<String, Value> = BTreeMap::new();
        for (f, t) in &cells_of {
            evidence.insert(format!("{f} -> {t}"), cell_evidence(f, t));
        }
        out.push(finding(
            FindingKind::NodeUnreachable, Severity::Fail, Some(network), vec![node.clone()],
            summary,
            evidence,
            &["check this node's uplink for the network: link state, VLAN, cabling, the NAD's master interface name",
              "check firewall rules on this node for the network's subnet (both directions: traffic to and from the other nodes' pods)",
              "macvlan: the node's NIC or switch port may limit the number of MAC addresses"],
        ));
        // Other nodes' clients too when nothing reaches the node: not one node's paths.
        time_cells(out, &cells_of, !in_cut);
        explained.extend(cells_of);
    }

    // 3. Blocks between two nodes, once per pair.
    let mut pairs: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for (f, t) in &measured {
        let cell = (f.to_string(), t.to_string());
        if f != t && broken(f, t) && !explained.contains(&cell) {
            let pair = if f < t {
                (f.to_string(), t.to_string())
            } else {
                (t.to_string(), f.to_string())
            };
            pairs.entry(pair).or_default().push(cell);
        }
    }
    for ((a, b), directions) in pairs {
        let both = directions.len() == 2;
        let mut evidence: BTreeMap<String, Value> = BTreeMap::new();
        for (f, t) in &directions {
            evidence.insert(format!("{f} -> {t}"), cell_evidence(f, t));
        }
        for (f, t) in [(&a, &b), (&b, &a)] {
            if !directions.contains(&(f.clone(), t.clone())) && measured.contains(&(f, t)) {
                evidence.insert(format!("{f} -> {t}"), cell_evidence(f, t));
            }
        }
        let (f, t) = &directions[0];
        // Said only when true: each node has a working cell with a third node.
        let reaches_third = |x: &String| {
            measured.iter().any(|&(p, q)| {
                let third = |n: &String| *n != a && *n != b;
                (p == x && third(q) || q == x && third(p)) && !broken(p, q)
            })
        };
        let elsewhere = if reaches_third(&a) && reaches_third(&b) {
            if both {
                ", while both reach other nodes"
            } else {
                ", while both nodes reach other nodes"
            }
        } else {
            ""
        };
        let summary = if both {
            format!(
                "on the {net} network, traffic between nodes {a} and {b} is blocked: neither node's clients reach the other's responder{elsewhere}"
            )
        } else {
            format!(
                "on the {net} network, clients on node {f} do not reach the responder on node {t}{elsewhere}"
            )
        };
        let mut suggestions = vec![
            "traffic between these two nodes on this network is blocked: check firewall rules and security policies naming these hosts or their pods' addresses (nftables/iptables on both hosts, cloud security groups, switch ACLs)",
            "check the switch path between the two nodes' ports: VLAN membership of both ports, MAC learning limits or port security on either",
        ];
        if a != facts.server_node && b != facts.server_node {
            suggestions.push("a single-server run does not see this: neither node is the server's");
        }
        out.push(finding(
            FindingKind::InterNodeBlocked,
            Severity::Fail,
            Some(network),
            vec![a.clone(), b.clone()],
            summary,
            evidence,
            &suggestions,
        ));
        time_cells(out, &directions, false);
        explained.extend(directions);
    }

    // 4. Per client node, what is left.
    for f in &sources {
        let left: Vec<&String> = targets
            .iter()
            .copied()
            .filter(|t| {
                measured.contains(&(*f, *t)) && !explained.contains(&(f.to_string(), t.to_string()))
            })
            .collect();
        let mut sum = NodeNet::default();
        let mut targets_failing: Vec<&String> = Vec::new();
        let mut all_healthy = true;
        for t in &left {
            let Some(c) = cells.get(&(f.to_string(), t.to_string())) else {
                continue;
            };
            // As the single-server rules judge a node ([`super::network`]); only the cells
            // that fail are summed, so a failing one is not drowned by the node's others.
            // (A cell that passes without a flap and loses no more than the flaky ratio is
            // not lossy either.)
            let lossy = c.all.sent > 0 && (c.all.ratio() < FLAKY_RATIO || c.flaps >= 2);
            if !lossy && c.healthy() {
                continue;
            }
            targets_failing.push(t);
            all_healthy &= c.healthy();
            sum.absorb(c);
        }
        if targets_failing.is_empty() {
            continue;
        }
        let mut ev = sum.evidence();
        ev.insert("responder_nodes".into(), json!(targets_failing));
        let toward = targets_failing
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let clients = sum.clients.clone();
        let (kind, summary, suggestions, only): Judged = if sum.small.ratio() >= GOOD_RATIO
            && sum.large.sent > 0
            && sum.large.ratio() <= BAD_RATIO
        {
            ev.insert(
                "small_probes".into(),
                json!({"sent": sum.small.sent, "ok": sum.small.ok}),
            );
            ev.insert(
                "large_probes".into(),
                json!({"sent": sum.large.sent, "ok": sum.large.ok}),
            );
            (
                FindingKind::MtuBlackhole,
                format!(
                    "on the {net} network, small probes from node {f} to the responders on {toward} pass but large ones fail: packets above some size are dropped"
                ),
                &[
                    "compare the NAD's mtu with the MTU of the master interfaces and of every switch port between these nodes; the underlay must carry the NAD's MTU",
                    "ICMP 'fragmentation needed' must not be filtered, or path MTU discovery cannot help",
                ],
                |k| k.kind.payload == Payload::Large,
            )
        } else if sum.http.ratio() >= GOOD_RATIO
            && sum.https.sent > 0
            && sum.https.ratio() <= BAD_RATIO
        {
            ev.insert(
                "http_probes".into(),
                json!({"sent": sum.http.sent, "ok": sum.http.ok}),
            );
            ev.insert(
                "https_probes".into(),
                json!({"sent": sum.https.sent, "ok": sum.https.ok}),
            );
            (
                FindingKind::TlsFailure,
                format!(
                    "on the {net} network, HTTP from node {f} to the responders on {toward} passes but HTTPS fails"
                ),
                &[
                    "something on the path interferes with TLS (a proxy, DPI or a middlebox rewriting traffic)",
                    "check for MTU problems that only the larger TLS handshake hits",
                ],
                |k| k.kind.scheme == Scheme::Https,
            )
        } else {
            ev.insert("flaps".into(), json!(sum.flaps));
            let how = if sum.all.ratio() < FLAKY_RATIO || sum.flaps >= 2 {
                format!(
                    "succeed {:.1}% of the time with {} flap(s)",
                    sum.all.ratio() * 100.0,
                    sum.flaps
                )
            } else {
                format!(
                    "pass, but not every client reached {} consecutive successes on every path",
                    facts.success_threshold
                )
            };
            (
                FindingKind::Flaky,
                format!(
                    "on the {net} network, probes from node {f} to the responders on {toward} {how}"
                ),
                &[
                    "the network may be lossy or congested: check interface error and drop counters on these nodes and their switch ports",
                    "a production Ceph cluster needs a stable network even if this test passes: repeat with a soak run",
                ],
                |_| true,
            )
        };
        let severity = if kind == FindingKind::Flaky && all_healthy {
            Severity::Warn
        } else {
            Severity::Fail
        };
        let mut nodes = vec![f.to_string()];
        nodes.extend(
            targets_failing
                .iter()
                .filter(|t| **t != *f)
                .map(|t| t.to_string()),
        );
        out.push(finding(
            kind,
            severity,
            Some(network),
            nodes,
            summary,
            ev,
            suggestions,
        ));
        let failing: BTreeSet<(String, String)> = targets_failing
            .iter()
            .map(|t| (f.to_string(), t.to_string()))
            .collect();
        let cells_only = in_cells(target_nodes, &failing);
        when::timed(
            out,
            matrix,
            facts,
            network,
            &clients,
            move |k: &PathKey| only(k) && cells_only(k),
            true,
        );
    }
}

#[cfg(test)]
mod soak_tests;
#[cfg(test)]
mod tests;
