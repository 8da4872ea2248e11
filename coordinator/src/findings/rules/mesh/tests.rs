//! The mesh rules on synthetic matrices: 4 nodes, a responder and two OSD clients on each,
//! every node probing every node on both networks.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use multinet_proto::control::{AgentIdentity, ProbeResult, Role};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{FailureClass, Outcome, Payload, ProbeKind, Scheme};

use super::{CellState, MeshFacts, mesh_matrix};
use crate::findings::Severity;
use crate::findings::tests::{kinds, kinds_of};
use crate::findings::{AgentFact, AgentFate, Finding, FindingKind, RunFacts, evaluate};
use crate::matrix::PathMatrix;
use serde_json::{Value, json};

const NODES: [&str; 4] = ["n1", "n2", "n3", "n4"];
const ROUNDS: u64 = 20;

fn agent(pod: &str, node: &str, role: Role) -> AgentFact {
    AgentFact {
        identity: AgentIdentity {
            pod: pod.into(),
            node: node.into(),
            role,
            networks: vec![CephNetwork::Public, CephNetwork::Cluster],
        },
        fate: AgentFate::Reported,
        passed_at_ms: None,
        exit: None,
        addresses: Vec::new(),
        egress: None,
    }
}

/// The responder on node `i` (0-based) listens on 198.18.<net>.<100+i>, HTTP 8080, HTTPS 8443.
fn responder_addr(network: CephNetwork, i: usize, scheme: Scheme) -> SocketAddr {
    let net = match network {
        CephNetwork::Public => 0,
        CephNetwork::Cluster => 1,
    };
    let port = match scheme {
        Scheme::Http => 8080,
        Scheme::Https => 8443,
    };
    SocketAddr::from(([198, 18, net, 100 + i as u8], port))
}

/// A mesh run where `ok(from, to, network, kind)` decides every probe, with `peers` other
/// nodes per node (`None`: all).
fn mesh_run(
    peers: Option<&[(&str, &[&str])]>,
    ok: impl Fn(&str, &str, CephNetwork, ProbeKind) -> bool,
) -> (PathMatrix, RunFacts) {
    mesh_run_by_round(peers, |from, to, net, kind, _| ok(from, to, net, kind))
}

/// [`mesh_run`] with `ok(from, to, network, kind, round)`, a round a second.
fn mesh_run_by_round(
    peers: Option<&[(&str, &[&str])]>,
    ok: impl Fn(&str, &str, CephNetwork, ProbeKind, u64) -> bool,
) -> (PathMatrix, RunFacts) {
    mesh_run_recorded(peers, ok, |matrix, pod, node, results| {
        matrix.record(pod, node, results, 0);
    })
}

/// [`mesh_run_by_round`] with `record(matrix, client, node, results)` recording each
/// client path's results.
fn mesh_run_recorded(
    peers: Option<&[(&str, &[&str])]>,
    ok: impl Fn(&str, &str, CephNetwork, ProbeKind, u64) -> bool,
    record: impl FnMut(&mut PathMatrix, &str, &str, &[ProbeResult]),
) -> (PathMatrix, RunFacts) {
    mesh_run_rounds(ROUNDS, peers, ok, record)
}

/// [`mesh_run_recorded`] over `rounds` rounds (a round a second, from 0 s).
pub(super) fn mesh_run_rounds(
    rounds: u64,
    peers: Option<&[(&str, &[&str])]>,
    ok: impl Fn(&str, &str, CephNetwork, ProbeKind, u64) -> bool,
    mut record: impl FnMut(&mut PathMatrix, &str, &str, &[ProbeResult]),
) -> (PathMatrix, RunFacts) {
    let networks = [CephNetwork::Public, CephNetwork::Cluster];
    let by_node: BTreeMap<String, Vec<String>> = match peers {
        None => NODES
            .iter()
            .map(|n| (n.to_string(), NODES.iter().map(|t| t.to_string()).collect()))
            .collect(),
        Some(list) => list
            .iter()
            .map(|(n, to)| (n.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect(),
    };
    let peers: BTreeMap<CephNetwork, BTreeMap<String, Vec<String>>> =
        networks.iter().map(|n| (*n, by_node.clone())).collect();
    let mut target_nodes = BTreeMap::new();
    for (i, node) in NODES.iter().enumerate() {
        for network in networks {
            for scheme in [Scheme::Http, Scheme::Https] {
                target_nodes.insert(responder_addr(network, i, scheme), node.to_string());
            }
        }
    }
    let mut agents: Vec<AgentFact> = NODES[1..]
        .iter()
        .map(|n| agent(&crate::mesh::responder_pod(n), n, Role::Server))
        .collect();
    let mut matrix = PathMatrix::default();
    for node in NODES {
        for c in 0..2 {
            let pod = format!("client-{node}-osd-{c}");
            agents.push(agent(&pod, node, Role::Client));
            for network in networks {
                for (i, to) in NODES.iter().enumerate() {
                    if !by_node.get(node).is_some_and(|p| p.iter().any(|p| p == to)) {
                        continue;
                    }
                    let results: Vec<ProbeResult> = (0..rounds)
                        .flat_map(|round| kinds().into_iter().map(move |kind| (round, kind)))
                        .map(|(round, kind)| ProbeResult {
                            network,
                            target: responder_addr(network, i, kind.scheme),
                            kind,
                            started_ms: round * 1000,
                            latency_us: 500,
                            outcome: if ok(node, to, network, kind, round) {
                                Outcome::Ok
                            } else {
                                Outcome::Failed(FailureClass::ConnectTimeout)
                            },
                        })
                        .collect();
                    record(&mut matrix, &pod, node, &results);
                }
            }
        }
    }
    let facts = RunFacts {
        networks: networks.to_vec(),
        server_node: "n1".into(),
        nodes: NODES.iter().map(|n| n.to_string()).collect(),
        server: agent(&crate::mesh::responder_pod("n1"), "n1", Role::Server),
        agents,
        success_threshold: 12,
        flaky_threshold_ms: 30_000,
        control_network_isolated: true,
        soak_min_outage_ms: None,
        started_unix_ms: 1_796_000_000_000,
        agent_outages: Vec::new(),
        mesh: Some(MeshFacts {
            all_target_nodes: target_nodes.clone(),
            target_nodes,
            peers,
            peers_per_node: None,
        }),
        stranded: Default::default(),
    };
    (matrix, facts)
}

/// A host checker on `node` (public only) with `rounds` rounds a second against every
/// responder, its probes to `unreachable`'s failing.
fn add_host_checker(
    matrix: &mut PathMatrix,
    facts: &mut RunFacts,
    node: &str,
    rounds: u64,
    unreachable: &str,
) {
    let pod = format!("host-{node}");
    facts.agents.push(AgentFact {
        identity: AgentIdentity {
            pod: pod.clone(),
            node: node.into(),
            role: Role::HostCheck,
            networks: vec![CephNetwork::Public],
        },
        ..agent(&pod, node, Role::HostCheck)
    });
    for (i, to) in NODES.iter().enumerate() {
        let results: Vec<ProbeResult> = (0..rounds)
            .flat_map(|round| kinds().into_iter().map(move |kind| (round, kind)))
            .map(|(round, kind)| ProbeResult {
                network: CephNetwork::Public,
                target: responder_addr(CephNetwork::Public, i, kind.scheme),
                kind,
                started_ms: round * 1000,
                latency_us: 500,
                outcome: if *to == unreachable {
                    Outcome::Failed(FailureClass::ConnectTimeout)
                } else {
                    Outcome::Ok
                },
            })
            .collect();
        matrix.record(&pod, node, &results, 0);
    }
}

pub(super) fn between(from: &str, to: &str, a: &str, b: &str) -> bool {
    (from == a && to == b) || (from == b && to == a)
}

#[test]
fn a_healthy_mesh_has_no_finding_and_a_4x4_matrix_per_network() {
    let (matrix, facts) = mesh_run(None, |_, _, _, _| true);
    assert_eq!(evaluate(&matrix, &facts), Vec::new());
    let networks = mesh_matrix(&matrix, &facts);
    assert_eq!(networks.len(), 2);
    for n in networks {
        assert_eq!((n.from.len(), n.to.len(), n.cells.len()), (4, 4, 16));
        assert!(n.cells.iter().all(|c| c.state == CellState::Pass
            && c.clients == 2
            && c.clients_passing == 2
            && c.probes_sent == 2 * ROUNDS * 8
            && c.probes_ok == c.probes_sent));
    }
}

#[test]
fn a_block_between_two_nodes_that_are_not_the_servers_is_named_with_both() {
    // What a single-server run on n1 cannot see: n2 and n3 each reach n1 and n4.
    let (matrix, facts) = mesh_run(None, |from, to, net, _| {
        !(net == CephNetwork::Cluster && between(from, to, "n2", "n3"))
    });
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::InterNodeBlocked,
            Some(CephNetwork::Cluster),
            vec!["n2".to_string(), "n3".to_string()]
        )],
        "{found:#?}"
    );
    assert!(
        found[0].summary.contains("between nodes n2 and n3"),
        "{}",
        found[0].summary
    );
    assert!(found[0].evidence.contains_key("n2 -> n3"));
    assert!(found[0].evidence.contains_key("n3 -> n2"));
    let cluster = &mesh_matrix(&matrix, &facts)[1];
    let state = |f: &str, t: &str| {
        cluster
            .cells
            .iter()
            .find(|c| c.from == f && c.to == t)
            .map(|c| c.state)
    };
    assert_eq!(state("n2", "n3"), Some(CellState::Fail));
    assert_eq!(state("n3", "n2"), Some(CellState::Fail));
    assert_eq!(state("n2", "n4"), Some(CellState::Pass));
}

#[test]
fn one_direction_blocked_is_said_with_its_direction() {
    let (matrix, facts) = mesh_run(None, |from, to, net, _| {
        !(net == CephNetwork::Public && from == "n4" && to == "n2")
    });
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::InterNodeBlocked,
            Some(CephNetwork::Public),
            vec!["n2".to_string(), "n4".to_string()]
        )]
    );
    assert!(
        found[0]
            .summary
            .contains("clients on node n4 do not reach the responder on node n2"),
        "{}",
        found[0].summary
    );
}

#[test]
fn a_node_cut_off_from_the_others_is_one_finding_not_six() {
    let (matrix, facts) = mesh_run(None, |from, to, net, _| {
        !(net == CephNetwork::Public && from != to && (from == "n3" || to == "n3"))
    });
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::NodeUnreachable,
            Some(CephNetwork::Public),
            vec!["n3".to_string()]
        )],
        "{found:#?}"
    );
    assert!(
        found[0].summary.contains("node n3 is cut off"),
        "{}",
        found[0].summary
    );
}

#[test]
fn a_node_whose_clients_reach_nothing_and_a_responder_nobody_reaches() {
    let (matrix, facts) = mesh_run(None, |from, _, net, _| {
        !(net == CephNetwork::Cluster && from == "n2")
    });
    assert_eq!(
        kinds_of(&evaluate(&matrix, &facts)),
        [(
            FindingKind::NodeUnreachable,
            Some(CephNetwork::Cluster),
            vec!["n2".to_string()]
        )]
    );
    let (matrix, facts) = mesh_run(None, |_, to, net, _| {
        !(net == CephNetwork::Cluster && to == "n4")
    });
    assert_eq!(
        kinds_of(&evaluate(&matrix, &facts)),
        [(
            FindingKind::ServerUnavailable,
            Some(CephNetwork::Cluster),
            vec!["n4".to_string()]
        )]
    );
}

#[test]
fn large_probes_failing_between_two_nodes_is_an_mtu_black_hole_naming_both() {
    let (matrix, facts) = mesh_run(None, |from, to, net, kind| {
        !(net == CephNetwork::Cluster
            && from == "n3"
            && to == "n4"
            && kind.payload == Payload::Large)
    });
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::MtuBlackhole,
            Some(CephNetwork::Cluster),
            vec!["n3".to_string(), "n4".to_string()]
        )],
        "{found:#?}"
    );
}

#[test]
fn pairs_not_probed_are_shown_as_such() {
    let peers: [(&str, &[&str]); 4] = [
        ("n1", &["n1", "n2"]),
        ("n2", &["n2", "n3"]),
        ("n3", &["n3", "n4"]),
        ("n4", &["n4", "n1"]),
    ];
    let (matrix, mut facts) = mesh_run(Some(&peers), |_, _, _, _| true);
    facts.mesh.as_mut().expect("mesh").peers_per_node = Some(1);
    assert_eq!(evaluate(&matrix, &facts), Vec::new());
    let public = &mesh_matrix(&matrix, &facts)[0];
    let probed = public
        .cells
        .iter()
        .filter(|c| c.state == CellState::Pass)
        .count();
    let not = public
        .cells
        .iter()
        .filter(|c| c.state == CellState::NotProbed)
        .count();
    assert_eq!((probed, not), (8, 8));
}

/// The `outage` findings of `found`, by their nodes (`n2` a node's, `n2,n3` a pair's).
pub(super) fn outages_of(found: &[Finding]) -> BTreeMap<String, &Finding> {
    found
        .iter()
        .filter(|f| f.kind == FindingKind::Outage)
        .map(|f| (f.nodes.join(","), f))
        .collect()
}

/// The kinds and nodes of a finding's `evidence.explains`.
pub(super) fn explained(f: &Finding) -> Vec<(String, Vec<String>)> {
    f.evidence
        .get("explains")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            let nodes = e["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            (e["kind"].as_str().unwrap_or_default().to_string(), nodes)
        })
        .collect()
}

#[test]
fn a_soak_outage_between_two_nodes_is_the_pairs_not_either_nodes() {
    // n2 and n3 cut off from each other on cluster for rounds 5 to 11 (7 s); each reaches
    // n1, n4 and its own node's responder throughout.
    let (matrix, mut facts) = mesh_run_by_round(None, |from, to, net, _, round| {
        !(net == CephNetwork::Cluster && between(from, to, "n2", "n3") && (5..12).contains(&round))
    });
    facts.soak_min_outage_ms = Some(1_500);
    let found = evaluate(&matrix, &facts);
    let outages = outages_of(&found);
    assert_eq!(
        outages.keys().collect::<Vec<_>>(),
        ["n2,n3", "n3,n2"],
        "a finding per direction, none of a node: {found:#?}"
    );
    assert_eq!(
        found.len(),
        2,
        "the flaky paths are what the outages made: {found:#?}"
    );
    for (from, to) in [("n2", "n3"), ("n3", "n2")] {
        let f = outages[&format!("{from},{to}")];
        assert_eq!(f.network, Some(CephNetwork::Cluster));
        assert_eq!(f.evidence["pair"], json!({"from": from, "to": to}));
        assert_eq!(f.evidence["responder_nodes"], json!([to]));
        // From the first failed probe (round 5) to the next success (round 12), of the
        // 19 s from the pair's first probe to its last.
        assert_eq!(
            (
                &f.evidence["outages"],
                &f.evidence["longest_ms"],
                &f.evidence["availability"]
            ),
            (&json!(1), &json!(7_000), &json!(0.6316)),
            "{f:#?}"
        );
        assert_eq!(f.severity, Severity::Fail, "availability below 99 %");
        let w = &f.evidence["windows"][0];
        assert_eq!(
            (&w["from_ms"], &w["to_ms"], &w["class"]),
            (&json!(5_000), &json!(12_000), &json!("connect_timeout"))
        );
        // Both clients of the node, 8 probe kinds each, to that one responder.
        assert_eq!(
            (&w["scope"], &w["paths_down"], &w["paths"]),
            (&json!("pair"), &json!(16), &json!(16)),
            "{w:#}"
        );
        assert_eq!(f.evidence["scope"], json!("pair"));
        let reverse = format!("{to} -> {from}");
        assert_eq!(f.evidence["together_with"], json!([reverse]));
        assert_eq!(w["together_with"][0]["pair"], json!(reverse));
        assert!(!f.evidence.contains_key("per_responder"), "{f:#?}");
        assert!(
            f.summary.starts_with(&format!(
                "{from} → {to} on cluster: 1 outage, longest 7.0 s, availability 63.16% — "
            )),
            "{}",
            f.summary
        );
        let others = if from == "n2" {
            "n1, n2 and n4"
        } else {
            "n1, n3 and n4"
        };
        for words in [
            format!("node {from}'s clients lost the responder on node {to}"),
            "on every path between the two at once".to_string(),
            format!("while they reached the responders on {others}"),
            format!("both directions between {from} and {to}"),
        ] {
            assert!(f.summary.contains(&words), "{words}: {}", f.summary);
        }
        assert!(!f.summary.contains("server"), "{}", f.summary);
        assert!(
            f.suggestions[0].contains(&format!("between {from} and {to}")),
            "{:?}",
            f.suggestions
        );
    }
    // The flaky cells n2 -> n3 and n3 -> n2 are under their pair's outage.
    let under: Vec<(String, Vec<String>)> = outages.values().flat_map(|f| explained(f)).collect();
    assert!(
        under.contains(&("flaky".to_string(), vec!["n2".into(), "n3".into()]))
            && under.contains(&("flaky".to_string(), vec!["n3".into(), "n2".into()])),
        "{under:?}"
    );
}

/// The value of the sample `name{labels}` in exposition `text`.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

/// Where the two agree: clients only (no host checker), fewer than 8 windows per path, every
/// window closed and longer than the shortest outage (README's "Live metrics" says where they
/// differ).
#[test]
fn a_mesh_soaks_cells_have_each_pairs_outages_as_the_live_metrics_count_them() {
    use crate::metrics::{PathMetrics, RunMetrics};
    use crate::outage::OutageRule;

    let run = RunMetrics::new();
    let mut live = PathMetrics::new(run.clone(), OutageRule { min_ms: 1_500 }, "n1".into());
    let targets: std::collections::HashMap<SocketAddr, String> = NODES
        .iter()
        .enumerate()
        .flat_map(|(i, node)| {
            [CephNetwork::Public, CephNetwork::Cluster]
                .into_iter()
                .flat_map(move |network| {
                    [Scheme::Http, Scheme::Https]
                        .map(|scheme| (responder_addr(network, i, scheme), node.to_string()))
                })
        })
        .collect();
    live.set_target_nodes(targets);
    // n2 and n3 cut off from each other on cluster for rounds 5 to 11; n1's probes to n4 on
    // public lose one round (loss, no outage).
    let (matrix, mut facts) = mesh_run_recorded(
        None,
        |from, to, net, _, round| {
            let cut = net == CephNetwork::Cluster
                && between(from, to, "n2", "n3")
                && (5..12).contains(&round);
            let lost = net == CephNetwork::Public && from == "n1" && to == "n4" && round == 9;
            !(cut || lost)
        },
        |matrix, pod, node, results| {
            matrix.record_with(pod, node, results, 0, |r, _| {
                live.result(pod, node, r);
            });
        },
    );
    facts.soak_min_outage_ms = Some(1_500);
    let text = run.encode();
    let networks = mesh_matrix(&matrix, &facts);
    for n in &networks {
        for c in &n.cells {
            let outage = c
                .outage
                .as_ref()
                .unwrap_or_else(|| panic!("{} -> {}: no outage figures", c.from, c.to));
            let labels = format!(
                r#"network="{}",source_node="{}",target_node="{}""#,
                n.network.key(),
                c.from,
                c.to
            );
            assert_eq!(
                (outage.outages as f64, outage.down_ms as f64 / 1000.0),
                (
                    sample(&text, "multinet_outages_total", &labels),
                    sample(&text, "multinet_outage_seconds_total", &labels)
                ),
                "{labels}: {outage:?}"
            );
        }
    }
    let cell = |network: usize, from: &str, to: &str| {
        networks[network]
            .cells
            .iter()
            .find(|c| c.from == from && c.to == to)
            .and_then(|c| c.outage.clone())
            .expect("the cell's outages")
    };
    assert_eq!(
        cell(1, "n2", "n3"),
        super::CellOutage {
            outages: 1,
            longest_ms: 7_000,
            down_ms: 7_000,
            availability: 0.6316,
            windows: vec![super::CellWindow {
                from_ms: 5_000,
                to_ms: 12_000,
                ongoing: false,
                class: Some("connect_timeout".into()),
            }],
        }
    );
    for (network, from, to) in [(1, "n2", "n1"), (0, "n2", "n3"), (0, "n1", "n4")] {
        let c = cell(network, from, to);
        assert_eq!(
            (c.outages, c.down_ms, c.availability, c.windows.len()),
            (0, 0, 1.0, 0),
            "{from} -> {to}"
        );
    }
    // Outside a soak the cells have no outage figures.
    facts.soak_min_outage_ms = None;
    assert!(
        mesh_matrix(&matrix, &facts)
            .iter()
            .all(|n| n.cells.iter().all(|c| c.outage.is_none()))
    );
}

#[test]
fn a_node_cut_off_from_every_responder_in_a_soak_is_the_nodes_outage() {
    // n2's uplink on cluster down for rounds 5 to 11: nothing crosses between n2 and any
    // other node; within n2 the network works.
    let (matrix, mut facts) = mesh_run_by_round(None, |from, to, net, _, round| {
        !(net == CephNetwork::Cluster
            && from != to
            && (from == "n2" || to == "n2")
            && (5..12).contains(&round))
    });
    facts.soak_min_outage_ms = Some(1_500);
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::Outage,
            Some(CephNetwork::Cluster),
            vec!["n2".to_string()]
        )],
        "{found:#?}"
    );
    let f = &found[0];
    assert!(!f.evidence.contains_key("pair"), "{f:#?}");
    assert_eq!(
        (
            &f.evidence["outages"],
            &f.evidence["longest_ms"],
            &f.evidence["availability"]
        ),
        (&json!(1), &json!(7_000), &json!(0.6316)),
        "{f:#?}"
    );
    assert_eq!(f.evidence["responder_nodes"], json!(["n1", "n3", "n4"]));
    // Its own responder stayed reachable; every other pair of it was down.
    let per: BTreeMap<&str, (&Value, &Value)> = f.evidence["per_responder"]
        .as_array()
        .expect("per_responder")
        .iter()
        .map(|r| {
            (
                r["node"].as_str().unwrap_or_default(),
                (&r["outages"], &r["availability"]),
            )
        })
        .collect();
    assert_eq!(
        per,
        BTreeMap::from([
            ("n1", (&json!(1), &json!(0.6316))),
            ("n2", (&json!(0), &json!(1.0))),
            ("n3", (&json!(1), &json!(0.6316))),
            ("n4", (&json!(1), &json!(0.6316))),
        ])
    );
    // The other nodes' pairs toward n2 were down with it: under its outage, not findings
    // of their own.
    let under = explained(f);
    for from in ["n1", "n3", "n4"] {
        assert!(
            under.contains(&("outage".to_string(), vec![from.into(), "n2".into()])),
            "{from} -> n2: {under:?}"
        );
    }
}

#[test]
fn a_soak_with_a_node_cut_off_and_later_one_pair_cut_gives_each_its_finding() {
    // n2 cut off from every other node on cluster for rounds 2 to 4 (its uplink), then
    // n2 -> n3 alone for rounds 10 to 15 (a one-way block: n3 still reaches n2).
    let (matrix, mut facts) = mesh_run_by_round(None, |from, to, net, _, round| {
        let uplink = from != to && (from == "n2" || to == "n2") && (2..5).contains(&round);
        let pair = from == "n2" && to == "n3" && (10..16).contains(&round);
        !(net == CephNetwork::Cluster && (uplink || pair))
    });
    facts.soak_min_outage_ms = Some(1_500);
    let found = evaluate(&matrix, &facts);
    let outages = outages_of(&found);
    assert_eq!(
        outages.keys().collect::<Vec<_>>(),
        ["n2", "n2,n3"],
        "{found:#?}"
    );
    // The node's outage is its uplink's window alone: the pair's later one does not lower
    // its availability.
    let node = outages["n2"];
    assert_eq!(
        (&node.evidence["outages"], &node.evidence["longest_ms"]),
        (&json!(1), &json!(3_000)),
        "{node:#?}"
    );
    assert_eq!(node.evidence["windows"][0]["from_ms"], json!(2_000));
    assert_eq!(node.evidence["availability"], json!(0.8421));
    // The pair's outage is the one outside the node's: 10 s to 16 s, nothing together.
    let pair = outages["n2,n3"];
    assert_eq!(
        (
            &pair.evidence["outages"],
            &pair.evidence["longest_ms"],
            &pair.evidence["windows"][0]["from_ms"]
        ),
        (&json!(1), &json!(6_000), &json!(10_000)),
        "{pair:#?}"
    );
    assert_eq!(pair.evidence["together_with"], json!([]));
    // Its availability counts the node's window too: 9 s down of 19 s (not 6 s).
    assert_eq!(
        (&pair.evidence["availability"], &pair.evidence["down_ms"]),
        (&json!(0.5263), &json!(9_000)),
        "{pair:#?}"
    );
    assert!(
        pair.summary
            .starts_with("n2 → n3 on cluster: 1 outage, longest 6.0 s"),
        "{}",
        pair.summary
    );
    assert!(
        pair.suggestions[0].contains("firewall"),
        "{:?}",
        pair.suggestions
    );
    // n3 -> n2 was down only while n2 was cut off: n2's.
    assert!(
        explained(node).contains(&("outage".to_string(), vec!["n3".into(), "n2".into()])),
        "{node:#?}"
    );
}

#[test]
fn pairs_toward_one_responder_down_together_point_at_its_side() {
    // Nobody but n3's own clients reaches n3's responder for rounds 5 to 11, while n3's
    // clients reach every node: the way into n3, not n3's uplink as a whole.
    let (matrix, mut facts) = mesh_run_by_round(None, |from, to, net, _, round| {
        !(net == CephNetwork::Public && to == "n3" && from != "n3" && (5..12).contains(&round))
    });
    facts.soak_min_outage_ms = Some(1_500);
    let found = evaluate(&matrix, &facts);
    let outages = outages_of(&found);
    assert_eq!(
        outages.keys().collect::<Vec<_>>(),
        ["n1,n3", "n2,n3", "n4,n3"],
        "{found:#?}"
    );
    let f = outages["n1,n3"];
    assert_eq!(f.evidence["together_with"], json!(["n2 -> n3", "n4 -> n3"]));
    assert!(
        f.summary
            .contains("every other node lost the responder on n3: n3's side"),
        "{}",
        f.summary
    );
    assert!(f.suggestions[0].contains("node n3"), "{:?}", f.suggestions);
}

#[test]
fn a_network_that_carries_nothing_anywhere_is_one_finding() {
    let (matrix, facts) = mesh_run(None, |_, _, net, _| net != CephNetwork::Public);
    assert_eq!(
        kinds_of(&evaluate(&matrix, &facts)),
        [(
            FindingKind::ServerUnavailable,
            Some(CephNetwork::Public),
            NODES.iter().map(|n| n.to_string()).collect()
        )]
    );
}

#[test]
fn no_traffic_between_any_nodes_is_one_finding_naming_them_all() {
    // A VLAN not trunked: within each node the network works, between nodes nothing.
    let (matrix, facts) = mesh_run(None, |from, to, net, _| {
        net != CephNetwork::Cluster || from == to
    });
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::InterNodeBlocked,
            Some(CephNetwork::Cluster),
            NODES.iter().map(|n| n.to_string()).collect()
        )],
        "{found:#?}"
    );
    assert!(
        found[0]
            .summary
            .contains("no traffic crosses between nodes")
    );
}

#[test]
fn two_nodes_cut_off_from_each_other_make_no_claim_about_others() {
    let peers: [(&str, &[&str]); 2] = [("n1", &["n1", "n2"]), ("n2", &["n2", "n1"])];
    let (matrix, facts) = mesh_run(Some(&peers), |from, to, _, _| from == to);
    let found = evaluate(&matrix, &facts);
    let blocked: Vec<&Finding> = found
        .iter()
        .filter(|f| f.kind == FindingKind::InterNodeBlocked)
        .collect();
    assert_eq!(blocked.len(), 2, "one per network: {found:#?}");
    for f in blocked {
        assert_eq!(f.nodes, ["n1", "n2"]);
        assert!(!f.summary.contains("other nodes"), "{}", f.summary);
        assert!(
            !f.suggestions.iter().any(|s| s.contains("single-server")),
            "n1 is the server's node: {:?}",
            f.suggestions
        );
    }
}

#[test]
fn a_lost_responder_is_its_own_failure_not_the_networks() {
    let (matrix, mut facts) = mesh_run(None, |_, to, _, _| to != "n4");
    let n4 = facts
        .agents
        .iter_mut()
        .find(|a| a.identity.pod == crate::mesh::responder_pod("n4"))
        .expect("n4's responder");
    n4.fate = AgentFate::Lost { at_ms: 3_000 };
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(FindingKind::AgentLost, None, vec!["n4".to_string()])],
        "{found:#?}"
    );
    let cluster = &mesh_matrix(&matrix, &facts)[1];
    assert!(
        cluster
            .cells
            .iter()
            .filter(|c| c.to == "n4")
            .all(|c| c.state == CellState::NoResults),
        "{cluster:?}"
    );
}

#[test]
fn a_host_checker_that_never_reaches_one_responder_is_unreachable_naming_it() {
    let (mut matrix, mut facts) = mesh_run(None, |_, _, _, _| true);
    // Its host reaches every responder's public address but n4's.
    add_host_checker(&mut matrix, &mut facts, "n2", ROUNDS, "n4");
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::HostUnreachable,
            Some(CephNetwork::Public),
            vec!["n2".to_string()]
        )],
        "{found:#?}"
    );
    assert!(
        found[0].summary.contains("the responders on n4"),
        "{}",
        found[0].summary
    );
    assert_eq!(
        found[0].evidence["responder_nodes"],
        serde_json::json!(["n4"])
    );
}

#[test]
fn a_restarted_responders_old_addresses_are_not_the_networks_failure() {
    // n3's responder restarted: it listens on new ports, and every client's paths to its
    // old addresses failed while it was down and were never probed again.
    let (mut matrix, mut facts) = mesh_run(None, |_, _, _, _| true);
    let old = |scheme: Scheme| {
        let mut a = responder_addr(CephNetwork::Public, 2, scheme);
        a.set_port(a.port() + 1000);
        a
    };
    let clients: Vec<(String, String)> = facts
        .agents
        .iter()
        .filter(|a| a.identity.role == Role::Client)
        .map(|a| (a.identity.pod.clone(), a.identity.node.clone()))
        .collect();
    for (pod, node) in &clients {
        let results: Vec<ProbeResult> = kinds()
            .into_iter()
            .map(|kind| ProbeResult {
                network: CephNetwork::Public,
                target: old(kind.scheme),
                kind,
                started_ms: 500,
                latency_us: 500,
                outcome: Outcome::Failed(FailureClass::ConnectRefused),
            })
            .collect();
        matrix.record(pod, node, &results, 0);
    }
    let mesh = facts.mesh.as_mut().expect("mesh");
    for scheme in [Scheme::Http, Scheme::Https] {
        mesh.all_target_nodes.insert(old(scheme), "n3".into());
    }
    facts.soak_min_outage_ms = Some(1_500);
    assert_eq!(evaluate(&matrix, &facts), Vec::new());
    assert!(
        mesh_matrix(&matrix, &facts)
            .iter()
            .all(|n| n.cells.iter().all(|c| c.state == CellState::Pass))
    );
}

#[test]
fn a_responder_nobody_reaches_explains_the_host_checkers_failing_to_it() {
    let (mut matrix, mut facts) = mesh_run(None, |_, to, net, _| {
        !(net == CephNetwork::Public && to == "n4")
    });
    add_host_checker(&mut matrix, &mut facts, "n1", 1, "n4");
    let found = evaluate(&matrix, &facts);
    assert_eq!(
        kinds_of(&found),
        [(
            FindingKind::ServerUnavailable,
            Some(CephNetwork::Public),
            vec!["n4".to_string()]
        )],
        "{found:#?}"
    );
    assert!(found[0].evidence.contains_key("explains"), "{found:#?}");
}
