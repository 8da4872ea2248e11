//! A mesh run (`multinet run --backend kube --mesh`) end to end on a real API server
//! (`tests/kube/control-plane up`) with the lab as the cluster's nodes: a responder pod on
//! every node, every node's clients probing every node's responder, and the block a
//! single-server run cannot see — between two nodes neither of which is the server's — found
//! and drawn in the report's node × node matrix. Ignored unless asked for: it needs root, the
//! CNI plugins and a control plane (`MULTINET_E2E_CONTROL_PLANE`); `.ci/run` runs it, one at
//! a time with the other kube suites (`.config/nextest.toml`).

use multinet_tests::e2e::findings;
use multinet_tests::kube_e2e::{node_names, nothing_left, report, with_networks};
use multinet_tests::lab_cluster::LabCluster;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multinet-e2e");

/// The states of a network's cells in the report's `mesh`, as (from, to, state), row by row.
fn cells(report: &Value, network: &str) -> Vec<(String, String, String)> {
    let matrix = report["mesh"]["networks"]
        .as_array()
        .expect("mesh.networks")
        .iter()
        .find(|n| n["network"] == network)
        .unwrap_or_else(|| panic!("mesh.networks has no {network}: {:#}", report["mesh"]));
    matrix["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_string();
            (text("from"), text("to"), text("state"))
        })
        .collect()
}

/// m1 takes the server (the first node of the node type with OSDs); the cluster network is
/// blocked both ways between m2 and m3. Every node reaches the server's node, so a
/// single-server run would pass; the mesh fails with one `inter_node_blocked` naming m2 and
/// m3, and its matrix has exactly those two cells failing.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_mesh_finds_the_block_between_two_nodes_that_are_not_the_servers() {
    let cluster = LabCluster::start(
        BIN,
        "kmesh",
        &["m1", "m2", "m3"],
        "nodes: [m1, m2, m3]\nfaults:\n  - block: {network: cluster, from: m2, to: m3}\n  - block: {network: cluster, from: m3, to: m2}",
        &[],
    );
    let out = cluster.run(&with_networks(&[
        "--mesh",
        "--daemons-per-node",
        "1",
        "--timeout-minutes",
        "1",
        "-o",
        "json",
    ]));
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{report:#}\n{stderr}\nlab: {}", cluster.stderr());
    assert_eq!(report["backend"], "kube", "{context}");
    assert_eq!(report["verdict"], "fail", "{context}");
    assert_eq!(out.status.code(), Some(1), "{context}");
    assert_eq!(node_names(&report), ["m1", "m2", "m3"], "{context}");
    // The single server's node is still named: the block is between the two others.
    let server: Vec<&str> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["server"] == true)
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(server, ["m1"], "{context}");

    let found = findings(&report);
    let blocked: Vec<&(String, Option<String>, Vec<String>)> = found
        .iter()
        .filter(|(kind, _, _)| kind == "inter_node_blocked")
        .collect();
    assert_eq!(
        blocked.len(),
        1,
        "one block, said once: {found:?}\n{context}"
    );
    let (_, network, nodes) = blocked[0];
    assert_eq!(network.as_deref(), Some("cluster"), "{found:?}");
    let mut nodes = nodes.clone();
    nodes.sort();
    assert_eq!(nodes, ["m2", "m3"], "{found:?}");

    // Every network's matrix: every node a row and a column (a responder on each node, each
    // node's clients probing all of them), only m2 ↔ m3 on cluster failing.
    assert!(report["mesh"]["peers_per_node"].is_null(), "{context}");
    for network in ["public", "cluster"] {
        let cells = cells(&report, network);
        assert_eq!(cells.len(), 9, "{network}: {cells:?}");
        for (from, to, state) in &cells {
            let blocked = network == "cluster"
                && matches!((from.as_str(), to.as_str()), ("m2", "m3") | ("m3", "m2"));
            let expected = if blocked { "fail" } else { "pass" };
            assert_eq!(state, expected, "{network} {from} → {to}: {cells:?}");
        }
    }
    // The responders' paths say which node answered.
    let targets: std::collections::BTreeSet<&str> = report["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter_map(|p| p["target_node"].as_str())
        .collect();
    assert_eq!(
        targets.into_iter().collect::<Vec<_>>(),
        ["m1", "m2", "m3"],
        "{context}"
    );
    nothing_left(&cluster);
}

/// What `run --dry-run --mesh` prints — a responder pod per placeholder node — is what the API
/// server takes (`kubectl create --dry-run=server`): names, affinities and annotations valid.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_meshs_dry_run_objects_are_accepted_by_the_api_server() {
    let cluster = LabCluster::start(BIN, "kmdry", &["md1"], "nodes: [md1]", &[]);
    let out = std::process::Command::new(BIN)
        .args([
            "run",
            "--backend",
            "kube",
            "--dry-run",
            "-o",
            "yaml",
            "-n",
            &cluster.namespace,
        ])
        .args(with_networks(&[
            "--mesh",
            "--daemons-per-node",
            "1",
            "--service-account",
            "multinet",
        ]))
        .output()
        .expect("multinet runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = cluster.scratch("dry-run.yaml", &String::from_utf8_lossy(&out.stdout));
    let created = multinet_tests::lab_cluster::kubectl(&[
        "create",
        "--dry-run=server",
        "-n",
        &cluster.namespace,
        "-f",
        file.to_str().expect("path"),
    ]);
    let said = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&created.stderr)
    );
    for node in 1..=2 {
        let pod = format!(
            "pod/multinet-dryrun0000-shared-storage-and-worker-nodes-node-{node}-server created"
        );
        assert!(said.contains(&pod), "{said}");
    }
}

/// Node types from a configuration file, the mesh and its peer count in it (what the
/// coordinator Job reads from the owner's `config.yaml`): the storage nodes' responders are on
/// both networks, the worker's (other daemons only) on public alone; with `meshPeers: 1` each
/// node probes its own responder and one other's.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_mesh_from_a_config_file_attaches_each_responder_to_its_nodes_networks() {
    let cluster = LabCluster::start(
        BIN,
        "kmtyp",
        &["ms1", "ms2", "mw1"],
        "nodes:\n  - {name: ms1, labels: {role: storage}}\n  - {name: ms2, labels: {role: storage}}\n  - {name: mw1, labels: {role: worker}}",
        &[],
    );
    let config = cluster.scratch(
        "run.yaml",
        &format!("namespace: {}\npublicNetwork: public-net\nclusterNetwork: cluster-net\nserviceAccountName: multinet\nresourceTimeout: 2m\nmesh: true\nmeshPeers: 1\nnodeTypes:\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 0\n    placement:\n      nodeSelector: {{role: storage}}\n  worker:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 1\n    placement:\n      nodeSelector: {{role: worker}}\n",
            cluster.namespace
        ),
    );
    let out = std::process::Command::new(BIN)
        .args(["run", "--backend", "kube", "--kubeconfig"])
        .arg(multinet_tests::lab_cluster::kubeconfig())
        .args(["-c", config.to_str().expect("path"), "-o", "json"])
        .output()
        .expect("multinet runs");
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{report:#}\n{stderr}\nlab: {}", cluster.stderr());
    assert_eq!(report["verdict"], "pass", "{context}");
    assert_eq!(out.status.code(), Some(0), "{context}");
    assert!(
        report["findings"].as_array().is_some_and(Vec::is_empty),
        "{context}"
    );
    assert_eq!(report["mesh"]["peers_per_node"], 1, "{context}");
    // Peers are chosen per network among its responders. On public each of the 3 nodes
    // probes its own responder and one other's, of 3 × 3 pairs; on cluster the two storage
    // nodes (the worker has nothing there) probe each other whatever they chose on public.
    let pairs = |network: &str| -> (u64, u64) {
        let n = report["mesh"]["networks"]
            .as_array()
            .expect("networks")
            .iter()
            .find(|n| n["network"] == network)
            .expect("the network");
        (
            n["pairs_probed"].as_u64().unwrap_or_default(),
            n["pairs"].as_u64().unwrap_or_default(),
        )
    };
    assert_eq!(pairs("public"), (6, 9), "{context}");
    assert_eq!(pairs("cluster"), (4, 4), "{context}");
    for (from, to) in [("ms1", "ms2"), ("ms2", "ms1")] {
        assert!(
            cells(&report, "cluster").contains(&(from.into(), to.into(), "pass".into())),
            "cluster {from} -> {to}: {context}"
        );
    }
    // Who answered on which network: the worker's responder on public only (the storage
    // nodes' clients that probe it do so on public alone), every storage node's on both.
    let answered = |network: &str| -> std::collections::BTreeSet<String> {
        report["paths"]
            .as_array()
            .expect("paths")
            .iter()
            .filter(|p| p["network"] == network && p["ok"].as_u64().unwrap_or(0) > 0)
            .filter_map(|p| p["target_node"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        answered("cluster").into_iter().collect::<Vec<_>>(),
        ["ms1", "ms2"],
        "{context}"
    );
    assert!(answered("public").contains("mw1"), "{context}");
    // Every node reaches its own responder on its networks.
    for (network, node) in [
        ("public", "ms1"),
        ("public", "ms2"),
        ("public", "mw1"),
        ("cluster", "ms1"),
        ("cluster", "ms2"),
    ] {
        let own = cells(&report, network)
            .into_iter()
            .find(|(from, to, _)| from == node && to == node)
            .map(|(_, _, state)| state);
        assert_eq!(own.as_deref(), Some("pass"), "{network} {node}: {context}");
    }
    nothing_left(&cluster);
}
