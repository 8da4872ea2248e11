//! The `kube` backend end to end on a real API server (`tests/kube/control-plane up`) with the
//! lab as the cluster's nodes (`multinet lab up --kubeconfig`): `multinet run --backend kube`
//! from outside the cluster — preflight, the coordinator Job, its log streamed, its report
//! fetched, cleanup — as a user runs it. Ignored unless asked for: they need root, the CNI
//! plugins and a control plane (`MULTINET_E2E_CONTROL_PLANE`); `.ci/run` runs them. They run
//! one at a time (`.config/nextest.toml`): every lab's nodes are nodes of the one cluster.

use multinet_tests::lab_cluster::{LabCluster, kubectl, kubectl_ok};
use serde_json::Value;

const IGNORE: &str =
    "needs root, the CNI plugins and a local control plane: see README (Kubernetes end to end)";

fn report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}): stdout {}\nstderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// No object of the run's is left in the namespace (the owner's garbage collection done).
fn nothing_left(cluster: &LabCluster) {
    multinet_tests::lab_cluster::wait_for(
        "the run's objects gone",
        std::time::Duration::from_secs(90),
        || {
            let out = kubectl_ok(&[
                "get",
                "pods,daemonsets,jobs,configmaps,secrets",
                "-n",
                &cluster.namespace,
                "-l",
                "app.kubernetes.io/part-of=multinet",
                "-o",
                "name",
            ]);
            out.trim().is_empty()
        },
    );
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README (Kubernetes end to end)"]
fn a_run_in_flag_mode_on_three_nodes_passes_with_every_node_in_the_matrix() {
    let _ = IGNORE;
    let cluster = LabCluster::start("kpass", &["k1", "k2", "k3"], "[k1, k2, k3]", &[]);
    let out = cluster.run(&[
        "--public-network",
        "public-net",
        "--cluster-network",
        "cluster-net",
        "--daemons-per-node",
        "1",
        "--timeout-minutes",
        "3",
        "-o",
        "json",
    ]);
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(report["backend"], "kube", "{stderr}");
    assert_eq!(
        report["verdict"],
        "pass",
        "{report:#}\n{stderr}\nlab: {}",
        cluster.stderr()
    );
    assert_eq!(out.status.code(), Some(0));
    let nodes: Vec<&str> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(nodes, ["k1", "k2", "k3"]);
    assert_eq!(
        report["host_checkers"]["passed"], 3,
        "one host checker per node (defect 1)"
    );
    // Every node probed both networks.
    for network in ["public", "cluster"] {
        for node in ["k1", "k2", "k3"] {
            let ok: u64 = report["paths"]
                .as_array()
                .expect("paths")
                .iter()
                .filter(|p| p["network"] == network && p["source_node"] == node)
                .filter_map(|p| p["ok"].as_u64())
                .sum();
            assert!(ok > 0, "{node} on {network}: no successful probe");
        }
    }
    nothing_left(&cluster);
    let _ = kubectl;
}
