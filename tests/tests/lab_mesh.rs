//! Mesh runs on the emulated lab (`run --mesh`, issue #14), as root: a responder on every node
//! and every node's clients probing every responder. A block between two nodes that are not
//! the server's is invisible to the single-server run (each of them reaches the server) and
//! is found and named by the mesh run; `--mesh-peers` probes fewer pairs and says which; in a
//! mesh soak, a cut between two nodes is the outage of each direction's pair. Each
//! test uses its own lab name, removes its lab also when it fails, and checks that nothing of
//! it is left. Skips where the lab cannot run, fails instead under CI
//! ([`multinet_tests::require`]).

mod lab_support;

use lab_support::*;
use multinet_tests::e2e::findings;
use serde_json::Value;

/// Four nodes, the server (of a single run) on n1, n2 and n3 blocked from each other on the
/// cluster network only.
const FOUR_NODES_N2_N3_BLOCKED: &str = "nodes: [n1, n2, n3, n4]\nserver_node: n1\nfaults:\n  - block: {network: cluster, from: n2, to: n3}\n";

/// A small worst case (one OSD and one other daemon per node) and probes that a loaded
/// machine's debug build answers in time: a mesh probes every responder from every client.
const MESH_CONFIG: &str = "config:\n  nodeTypes:\n    converged: {osdsPerNode: 1, otherDaemonsPerNode: 1}\n  probeInterval: 200ms\n  probeTimeout: 2s\n  resourceTimeout: 1m\n";

/// Whether report `r` passed, or passed with warnings only (a loaded machine may lose a
/// probe or ready its clients slowly): no finding fails it.
fn passed(r: &Value) -> bool {
    let fails = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["severity"] == "fail");
    !fails && (r["verdict"] == "pass" || r["verdict"] == "warn")
}

/// The mesh matrix of `network` in report `r`: (from, to) → state.
fn cells(r: &Value, network: &str) -> Vec<(String, String, String)> {
    r["mesh"]["networks"]
        .as_array()
        .expect("mesh networks")
        .iter()
        .find(|n| n["network"] == network)
        .expect("the network's matrix")["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("from"), s("to"), s("state"))
        })
        .collect()
}

/// (pairs probed, pairs) of `network` in report `r`.
fn pairs(r: &Value, network: &str) -> (u64, u64) {
    let n = r["mesh"]["networks"]
        .as_array()
        .expect("mesh networks")
        .iter()
        .find(|n| n["network"] == network)
        .expect("the network's matrix");
    (
        n["pairs_probed"].as_u64().unwrap_or_default(),
        n["pairs"].as_u64().unwrap_or_default(),
    )
}

#[test]
fn a_block_between_two_non_server_nodes_is_missed_by_the_single_run_and_named_by_the_mesh() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('z');
    let topology = lab.topology(&format!("{FOUR_NODES_N2_N3_BLOCKED}{MESH_CONFIG}"));

    // The seed's run: every client reaches the server on n1, so it passes.
    let (code, single) = run(&topology);
    assert!(matches!(code, Some(0 | 1)), "{single:#}");
    assert!(passed(&single), "{single:#}");
    assert!(single.get("mesh").is_none(), "{single:#}");
    lab.assert_gone();

    // The mesh run on the same topology finds the block and names both nodes.
    let (code, mesh) = run_with(&topology, &["--mesh"]);
    assert_eq!(code, Some(1), "{mesh:#}");
    // What fails it (a loaded machine may add a warning of lost probes).
    let failing: Vec<_> = findings(&mesh)
        .into_iter()
        .zip(mesh["findings"].as_array().expect("findings"))
        .filter(|(_, f)| f["severity"] == "fail")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        failing,
        [(
            "inter_node_blocked".to_string(),
            Some("cluster".to_string()),
            vec!["n2".to_string(), "n3".to_string()]
        )],
        "{mesh:#}"
    );
    assert!(mesh["mesh"]["peers_per_node"].is_null(), "{mesh:#}");
    for network in ["public", "cluster"] {
        assert_eq!(pairs(&mesh, network), (16, 16), "{mesh:#}");
        let cells = cells(&mesh, network);
        assert_eq!(cells.len(), 16, "4 x 4 on {network}: {cells:?}");
        for (from, to, state) in &cells {
            let blocked = network == "cluster"
                && matches!((from.as_str(), to.as_str()), ("n2", "n3") | ("n3", "n2"));
            assert_eq!(
                state == "fail",
                blocked,
                "{network} {from} -> {to}: {state}"
            );
            assert_ne!(state, "no_results", "{network} {from} -> {to}");
        }
    }
    // A responder on every node, and paths name the responder's node.
    let responders: Vec<&str> = mesh["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter(|a| a["role"] == "server")
        .filter_map(|a| a["pod"].as_str())
        .collect();
    assert_eq!(
        responders,
        ["server-n1", "server-n2", "server-n3", "server-n4"],
        "{mesh:#}"
    );
    let blocked_paths = mesh["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter(|p| p["network"] == "cluster" && p["source_node"] == "n2")
        .filter(|p| p["target_node"] == "n3")
        .count();
    assert!(blocked_paths > 0, "{mesh:#}");
    lab.assert_gone();
}

#[test]
fn mesh_peers_probes_own_node_and_k_others_and_says_which() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('j');
    let topology = lab.topology(&format!("nodes: [n1, n2, n3, n4]\n{MESH_CONFIG}"));
    let (code, r) = run_with(&topology, &["--mesh-peers", "1"]);
    assert!(matches!(code, Some(0 | 1)), "{r:#}");
    assert!(passed(&r), "{r:#}");
    assert_eq!(r["mesh"]["peers_per_node"], 1, "{r:#}");
    for network in ["public", "cluster"] {
        assert_eq!(pairs(&r, network), (8, 16), "own node and one other: {r:#}");
        let cells = cells(&r, network);
        let count = |state: &str| cells.iter().filter(|c| c.2 == state).count();
        let probed = count("pass") + count("degraded");
        assert_eq!((probed, count("not_probed")), (8, 8), "{cells:?}");
        for node in ["n1", "n2", "n3", "n4"] {
            assert!(
                cells
                    .iter()
                    .any(|(f, t, s)| f == node && t == node && s != "not_probed"),
                "{node} probes its own responder: {cells:?}"
            );
        }
    }
    lab.assert_gone();
}

/// A mesh run goes on when one responder is lost for good (its agent killed, as a crash
/// would): the others' clients pass on the responders that are left, the lost one is named
/// (`agent_lost`, not a network finding about its node), and the cells toward it say they
/// have no results rather than fail. (The single server's loss still ends a run, nothing
/// being left to probe: supervisor::decide's tests.)
#[test]
fn a_lost_responder_is_named_and_the_mesh_goes_on_without_it() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('q');
    // Killed 2 s after it started: connected long before (its stage takes well under a
    // second), and before any client can pass (12 successes 300 ms apart).
    let config = MESH_CONFIG.replace("probeInterval: 200ms", "probeInterval: 300ms");
    let topology = lab.topology(&format!("nodes: [n1, n2, n3]\nserver_node: n1\n{config}"));
    let (code, r) = run_with(&topology, &["--mesh", "--kill-agent", "server-n3@2"]);
    assert_eq!(code, Some(1), "{r:#}");
    let failing: Vec<_> = findings(&r)
        .into_iter()
        .zip(r["findings"].as_array().expect("findings"))
        .filter(|(_, f)| f["severity"] == "fail")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        failing,
        [("agent_lost".to_string(), None, vec!["n3".to_string()])],
        "{r:#}"
    );
    let probe = probe_stage(&r);
    assert_ne!(probe["outcome"], "server lost", "{r:#}");
    // Every client passed on what was left to probe.
    for agent in r["agents"].as_array().expect("agents") {
        if agent["role"] == "client" {
            assert!(!agent["passed_at_ms"].is_null(), "{agent:#}\n{r:#}");
        }
    }
    for network in ["public", "cluster"] {
        for (from, to, state) in cells(&r, network) {
            let expected = if to == "n3" { "no_results" } else { "pass" };
            assert_eq!(state, expected, "{network} {from} -> {to}\n{r:#}");
        }
    }
    lab.assert_gone();
}

/// A mesh soak with n2 and n3 cut off from each other on the cluster network for a while (a
/// block scheduled 6 s into probing, for 8 s): the outage is the pair's, in both directions —
/// no node's, since n2 and n3 each reach every other responder meanwhile — and the matrix's
/// cells have the same outages, every other pair none.
#[test]
fn a_cut_between_two_nodes_in_a_mesh_soak_is_each_directions_pair_outage() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('8');
    let topology = lab.topology(&format!(
        "nodes: [n1, n2, n3, n4]\nserver_node: n1\nfaults:\n  - block: {{network: cluster, from: n2, to: n3, at: 6s, for: 8s}}\n{MESH_CONFIG}"
    ));
    let (code, r) = run_with(&topology, &["--mesh", "--duration", "25s"]);
    assert_eq!(code, Some(1), "{r:#}");
    let outages: Vec<&Value> = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "outage")
        .collect();
    let named: Vec<(&Value, &Value)> = outages
        .iter()
        .map(|f| (&f["network"], &f["nodes"]))
        .collect();
    assert_eq!(
        named,
        [
            (&Value::from("cluster"), &serde_json::json!(["n2", "n3"])),
            (&Value::from("cluster"), &serde_json::json!(["n3", "n2"])),
        ],
        "one outage per direction, none of a node: {r:#}"
    );
    // A probe under way when the block came waits out its timeout; the window ends within a
    // probe round of the block's end.
    let slack = 2 * 200 + 2_000;
    for f in &outages {
        let (from, to) = (&f["nodes"][0], &f["nodes"][1]);
        assert_eq!(
            f["evidence"]["pair"],
            serde_json::json!({"from": from, "to": to})
        );
        assert_eq!(f["evidence"]["outages"], 1, "{f:#}");
        let longest = f["evidence"]["longest_ms"].as_u64().expect("longest_ms");
        assert!(longest.abs_diff(8_000) <= slack, "{longest} ms: {f:#}");
        assert_eq!(
            f["evidence"]["together_with"][0],
            format!(
                "{} -> {}",
                to.as_str().unwrap_or_default(),
                from.as_str().unwrap_or_default()
            ),
            "{f:#}"
        );
        assert!(
            f["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!(
                    "{} → {} on cluster: 1 outage, longest",
                    from.as_str().unwrap_or_default(),
                    to.as_str().unwrap_or_default()
                ))),
            "{f:#}"
        );
    }
    let cluster = r["mesh"]["networks"]
        .as_array()
        .expect("mesh networks")
        .iter()
        .find(|n| n["network"] == "cluster")
        .expect("the cluster matrix");
    for c in cluster["cells"].as_array().expect("cells") {
        let cut = matches!(
            (c["from"].as_str(), c["to"].as_str()),
            (Some("n2"), Some("n3")) | (Some("n3"), Some("n2"))
        );
        assert_eq!(
            c["outage"]["outages"],
            u64::from(cut),
            "{} -> {}: {c:#}",
            c["from"],
            c["to"]
        );
    }
    lab.assert_gone();
}

/// The probe stage of report `r`.
fn probe_stage(r: &Value) -> &Value {
    r["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == "probe")
        .unwrap_or_else(|| panic!("no probe stage: {r:#}"))
}

/// The nodes of the stranding tests but `node`.
fn other_nodes(node: &str) -> Vec<String> {
    ["n1", "n2", "n3"]
        .into_iter()
        .filter(|o| *o != node)
        .map(String::from)
        .collect()
}

/// The stranding tests' lab: three nodes, `--mesh-peers 1` probes (300 ms apart) and a 5 s
/// `flakyThreshold`; the topology's path, n1's peer, and the third node — the server's
/// (the mesh's `server`, whose loss would be `server_unavailable`), whose responder stays.
fn stranding_lab(lab: &LabGuard) -> (String, String, &'static str) {
    let peer = multinet_coordinator::mesh::rendezvous("n1", &other_nodes("n1"), 1).remove(0);
    let third = if peer == "n2" { "n3" } else { "n2" };
    let config = MESH_CONFIG.replace("probeInterval: 200ms", "probeInterval: 300ms")
        + "  flakyThreshold: 5s\n";
    let topology = lab.topology(&format!(
        "nodes: [n1, n2, n3]\nserver_node: {third}\n{config}"
    ));
    (topology, peer, third)
}

/// A mesh whose node loses every responder it probes does not wait out `resourceTimeout`
/// for it: `--mesh-peers 1` on three nodes, the responders on n1 and on n1's peer killed for
/// good 2 s in. n1's clients have nothing left to pass on: once both have been gone for
/// `flakyThreshold` (5 s) they are stranded, the probe stage ends `decided` long before its
/// minute, they are not passed, and the report says the networks were not validated from
/// n1 (and from its peer, when the peer's own peer is n1) beside the two `agent_lost`. The
/// third node's clients pass on its own responder.
#[test]
fn a_node_whose_every_responder_is_lost_is_not_validated_and_not_waited_for() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('7');
    let (topology, peer, third) = stranding_lab(&lab);
    let mut stranded = vec!["n1".to_string()];
    if multinet_coordinator::mesh::rendezvous(&peer, &other_nodes(&peer), 1)[0] == "n1" {
        stranded.push(peer.clone());
    }
    let kill_peer = format!("server-{peer}@2");
    let (code, r) = run_with(
        &topology,
        &[
            "--mesh-peers",
            "1",
            "--kill-agent",
            "server-n1@2",
            "--kill-agent",
            &kill_peer,
        ],
    );
    assert_eq!(code, Some(1), "{r:#}");
    let probe = probe_stage(&r);
    assert_eq!(probe["outcome"], "decided", "{r:#}");
    assert!(
        probe["duration_ms"].as_u64().expect("duration") < 40_000,
        "stranded agents are not waited for: {probe:#}"
    );
    let mut failing: Vec<(String, Option<String>, Vec<String>)> = findings(&r)
        .into_iter()
        .zip(r["findings"].as_array().expect("findings"))
        .filter(|(_, f)| f["severity"] == "fail")
        .map(|(k, _)| k)
        .collect();
    failing.sort();
    let mut lost = ["n1".to_string(), peer.clone()];
    lost.sort();
    let mut expected: Vec<(String, Option<String>, Vec<String>)> = lost
        .iter()
        .map(|n| ("agent_lost".to_string(), None, vec![n.clone()]))
        .collect();
    for network in ["cluster", "public"] {
        expected.push((
            "not_validated".to_string(),
            Some(network.to_string()),
            stranded.clone(),
        ));
    }
    expected.sort();
    assert_eq!(failing, expected, "{r:#}");
    for agent in r["agents"].as_array().expect("agents") {
        if agent["role"] != "client" {
            continue;
        }
        let node = agent["node"].as_str().unwrap_or_default();
        assert_eq!(
            agent["passed_at_ms"].is_null(),
            stranded.iter().any(|s| s == node),
            "{agent:#}\n{r:#}"
        );
        if node == third {
            assert!(!agent["passed_at_ms"].is_null(), "{agent:#}");
        }
    }
    lab.assert_gone();
}

/// The stranded agents' pass is kept when a soak follows (review of the stranding rule): the
/// same three nodes and `--mesh-peers 1`, the two responders killed 2 s in and started again
/// 12 s later (a kubelet restart slower than `flakyThreshold`, 5 s). The probe stage ends
/// `decided` with n1's clients stranded; in the 30 s soak their responders come back, they
/// pass, and the report counts them passed: no `not_validated`, nothing failing.
#[test]
fn stranded_agents_whose_responders_come_back_in_the_soak_pass_there() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('6');
    let (topology, peer, _) = stranding_lab(&lab);
    let kill_peer = format!("server-{peer}@2+12");
    let (code, r) = run_with(
        &topology,
        &[
            "--mesh-peers",
            "1",
            "--kill-agent",
            "server-n1@2+12",
            "--kill-agent",
            &kill_peer,
            "--duration",
            "30s",
        ],
    );
    let probe = probe_stage(&r);
    assert_eq!(
        probe["outcome"], "decided",
        "stranded, not waited for: {r:#}"
    );
    assert!(passed(&r), "{r:#}");
    assert!(matches!(code, Some(0 | 1)), "{r:#}");
    assert!(
        findings(&r)
            .iter()
            .all(|(kind, _, _)| kind != "not_validated"),
        "{r:#}"
    );
    for agent in r["agents"].as_array().expect("agents") {
        if agent["role"] == "client" {
            assert!(!agent["passed_at_ms"].is_null(), "{agent:#}\n{r:#}");
        }
    }
    lab.assert_gone();
}
