//! What the Kubernetes end-to-end tests (`kube_lab`, `kube_soak`, `kube_mesh`) share: the report a run
//! printed, the run's arguments, and the check that a run left nothing behind.

use std::time::Duration;

use serde_json::Value;

use crate::lab_cluster::{LabCluster, kubectl_ok, wait_for};

/// The JSON report `multinet run -o json` printed.
pub fn report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}): stdout {}\nstderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The report's node names, in its order.
pub fn node_names(report: &Value) -> Vec<String> {
    report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect()
}

/// No object of a run is left in the namespace (the real garbage collector removed what the
/// owner owned), and no pod of the lab keeps a sandbox.
pub fn nothing_left(cluster: &LabCluster) {
    wait_for("the run's objects gone", Duration::from_secs(90), || {
        let out = kubectl_ok(&[
            "get",
            "pods,daemonsets,jobs,configmaps,secrets,services",
            "-n",
            &cluster.namespace,
            "-l",
            "app.kubernetes.io/part-of=multinet",
            "-o",
            "name",
        ]);
        out.trim().is_empty()
    });
    wait_for(
        "the lab's pod sandboxes gone",
        Duration::from_secs(60),
        || cluster.pod_namespaces().is_empty(),
    );
}

/// A small run: one daemon per node, a two-minute bound, a JSON report.
pub const SMALL: &[&str] = &[
    "--daemons-per-node",
    "1",
    "--timeout-minutes",
    "2",
    "-o",
    "json",
];

/// `extra` after the lab's public and cluster networks (`public-net`, `cluster-net`).
pub fn with_networks<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--public-network",
        "public-net",
        "--cluster-network",
        "cluster-net",
    ];
    args.extend_from_slice(extra);
    args
}
