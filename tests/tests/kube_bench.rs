//! `multinet bench network --backend kube` end to end on a real API server
//! (`tests/kube/control-plane up`) with the lab as the cluster's nodes: the bench's Job places
//! the server (every responder with `--mesh`), runs one client pod per path, one at a time,
//! reads their logs and stores the report, which the command outside prints; every metric is
//! there on every path, the references are said skipped, and nothing is left. Ignored unless
//! asked for: it needs root, the CNI plugins and a control plane (`MULTINET_E2E_CONTROL_PLANE`);
//! `.ci/run` runs it, one at a time with the other kube suites (`.config/nextest.toml`).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use multinet_tests::kube_e2e::{nothing_left, report};
use multinet_tests::lab_cluster::{LabCluster, kubeconfig, kubectl_ok, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multinet-e2e");

/// `multinet bench network --backend kube` in the cluster's namespace on its two networks,
/// short tests with 2 streams, a JSON report, and `extra`.
fn bench(cluster: &LabCluster, extra: &[&str]) -> Output {
    bench_command(cluster, "300ms", extra)
        .output()
        .expect("multinet bench network runs")
}

/// The command [`bench`] runs, with tests of `duration`.
fn bench_command(cluster: &LabCluster, duration: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["bench", "network", "--backend", "kube", "--kubeconfig"])
        .arg(kubeconfig())
        .args([
            "-n",
            &cluster.namespace,
            "--service-account",
            "multinet",
            "--public-network",
            "public-net",
            "--cluster-network",
            "cluster-net",
            "--duration",
            duration,
            "--streams",
            "2",
            "--max-time",
            "10m",
            "-o",
            "json",
        ])
        .args(extra);
    command
}

/// Every path of every network measured in full: its client's address, every test with its
/// outcome (bulk throughput above 0, request rates above 0 with percentiles in order) and the
/// server's CPU from `GET /cpu`; the references said skipped. The paths' (from, to) pairs.
fn every_metric_on_every_path(report: &Value, context: &str) -> Vec<(String, String, String)> {
    let setup = &report["setups"][0];
    assert!(setup["error"].is_null(), "{context}");
    let mut pairs = Vec::new();
    for network in setup["networks"].as_array().expect("networks") {
        let name = network["network"].as_str().unwrap_or_default();
        for path in network["paths"].as_array().expect("paths") {
            let at = format!("{name} {} → {}", path["from"], path["to"]);
            assert!(path["error"].is_null(), "{at}: {path:#}\n{context}");
            assert!(path["client_address"].is_string(), "{at}: {path:#}");
            let iperf3 = path["iperf3"]["error"].as_str().unwrap_or_default();
            assert!(iperf3.contains("not in multinet's image"), "{at}: {path:#}");
            let tests = path["tests"].as_array().expect("tests");
            let kinds: Vec<(String, u64)> = tests
                .iter()
                .map(|t| {
                    (
                        t["kind"].as_str().unwrap_or_default().to_string(),
                        t["streams"].as_u64().unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(
                kinds,
                [
                    ("download", 1),
                    ("download", 2),
                    ("upload", 1),
                    ("upload", 2),
                    ("request_response", 1),
                    ("connect_request", 1),
                    ("tls_handshake_request", 1)
                ]
                .map(|(k, s)| (k.to_string(), s)),
                "{at}"
            );
            for test in tests {
                let what = format!("{at} {}×{}", test["kind"], test["streams"]);
                assert!(test["failure"].is_null(), "{what}: {test:#}");
                let outcome = &test["outcome"];
                assert!(outcome["requests"].as_u64() > Some(0), "{what}: {test:#}");
                assert!(
                    test["server_cpu_seconds"]
                        .as_f64()
                        .is_some_and(|s| s >= 0.0),
                    "{what}: the server's CPU over GET /cpu: {test:#}"
                );
                assert!(outcome["cpu_seconds"].is_number(), "{what}: {test:#}");
                match test["kind"].as_str() {
                    Some("download" | "upload") => {
                        assert!(
                            outcome["gbit_per_s"].as_f64().is_some_and(|g| g > 0.0),
                            "{what}: {test:#}"
                        );
                        assert!(outcome["tcp_mss"].as_u64() > Some(0), "{what}: {test:#}");
                    }
                    _ => {
                        assert!(
                            outcome["per_second"].as_f64().is_some_and(|r| r > 0.0),
                            "{what}: {test:#}"
                        );
                        let l = &outcome["latency_us"];
                        let p: Vec<u64> = ["p50", "p90", "p99", "p999", "max"]
                            .iter()
                            .map(|k| l[k].as_u64().unwrap_or_else(|| panic!("{what}: {l}")))
                            .collect();
                        assert!(p.windows(2).all(|w| w[0] <= w[1]), "{what}: {l}");
                    }
                }
            }
            pairs.push((
                name.to_string(),
                path["from"].as_str().unwrap_or_default().to_string(),
                path["to"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    // The references and the loopback comparison: said skipped, never silently.
    for tool in ["iperf3", "nginx"] {
        let missing = report["references"][tool]["missing"]
            .as_str()
            .unwrap_or_default();
        assert!(
            missing.contains("not in multinet's image"),
            "{tool}: {report:#}"
        );
    }
    let loopback = setup["loopback"]["error"].as_str().unwrap_or_default();
    assert!(loopback.contains("not in multinet's image"), "{setup:#}");
    pairs
}

/// A bench on three nodes: every path (each node's client pod to the server's node, on both
/// networks) has every metric; it ends by itself and leaves nothing. Before it, flags of the
/// lab (`--nodes`) are refused with exit 22 and nothing created.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_bench_measures_every_path_and_leaves_nothing() {
    let cluster = LabCluster::start(
        BIN,
        "kbn1",
        &["kb1", "kb2", "kb3"],
        "nodes: [kb1, kb2, kb3]",
        &[],
    );

    let refused = bench(&cluster, &["--nodes", "2"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(22), "{said}");
    assert!(said.contains("--nodes"), "{said}");
    let made = kubectl_ok(&[
        "get",
        "pods,jobs,configmaps",
        "-n",
        &cluster.namespace,
        "-l",
        "app.kubernetes.io/part-of=multinet",
        "-o",
        "name",
    ]);
    assert!(made.trim().is_empty(), "refused, yet made: {made}");

    let out = bench(&cluster, &[]);
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{stderr}\nlab: {}", cluster.stderr());
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{context}");
    assert_eq!(report["kind"], "bench_network", "{context}");
    assert_eq!(report["backend"], "kube", "{context}");
    assert_eq!(report["validates_real_network"], true, "{context}");
    assert!(report["estimated_ms"].as_u64() > Some(0), "{context}");
    let pairs = every_metric_on_every_path(&report, &context);
    let server = report["setups"][0]["server_node"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ["kb1", "kb2", "kb3"].contains(&server.as_str()),
        "{report:#}"
    );
    // Every node's client to the one server, on each network.
    let mut expected = Vec::new();
    for network in ["public", "cluster"] {
        for node in ["kb1", "kb2", "kb3"] {
            expected.push((network.to_string(), node.to_string(), server.clone()));
        }
    }
    assert_eq!(pairs, expected, "{context}");
    nothing_left(&cluster);
}

/// `--mesh` on two nodes: a responder on each, each node's client pod to both responders on
/// both networks (8 paths), every metric on each, nothing left.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_mesh_bench_measures_every_pair() {
    let cluster = LabCluster::start(BIN, "kbn2", &["km1", "km2"], "nodes: [km1, km2]", &[]);
    let out = bench(&cluster, &["--mesh"]);
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{stderr}\nlab: {}", cluster.stderr());
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{context}");
    assert_eq!(report["backend"], "kube", "{context}");
    let mesh = &report["setups"][0]["mesh"];
    assert_eq!(
        mesh["responders"],
        serde_json::json!(["km1", "km2"]),
        "{report:#}"
    );
    let mut pairs = every_metric_on_every_path(&report, &context);
    pairs.sort();
    let mut expected = Vec::new();
    for network in ["cluster", "public"] {
        for from in ["km1", "km2"] {
            for to in ["km1", "km2"] {
                expected.push((network.to_string(), from.to_string(), to.to_string()));
            }
        }
    }
    assert_eq!(pairs, expected, "{context}");
    nothing_left(&cluster);
}

/// A client pod that never starts — node kf2 has no public master, so Multus' macvlan ADD fails
/// — gives its path the reason its events say (the NAD's master named), as the kube backend
/// diagnoses agents; the bench goes on: the cluster network's paths and kf1's are measured.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_client_pod_without_an_address_gives_its_path_the_sandbox_reason() {
    let cluster = LabCluster::start(
        BIN,
        "kbn3",
        &["kf1", "kf2"],
        "nodes: [kf1, kf2]\nunderlay:\n  - {node: kf2, network: public, present: false}",
        &[],
    );
    let out = bench(&cluster, &[]);
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("{report:#}\n{stderr}\nlab: {}", cluster.stderr());
    assert_eq!(out.status.code(), Some(0), "{context}");
    let setup = &report["setups"][0];
    assert_eq!(setup["server_node"], "kf1", "{context}");
    let mut measured = Vec::new();
    for network in setup["networks"].as_array().expect("networks") {
        for path in network["paths"].as_array().expect("paths") {
            let key = (
                network["network"].as_str().unwrap_or_default(),
                path["from"].as_str().unwrap_or_default(),
            );
            if key == ("public", "kf2") {
                let error = path["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains("no address on the public network") && error.contains("pub0"),
                    "{error}\n{context}"
                );
                assert!(
                    path["tests"].as_array().is_some_and(Vec::is_empty),
                    "{path:#}"
                );
            } else {
                assert!(path["error"].is_null(), "{key:?}: {path:#}");
                let tests = path["tests"].as_array().expect("tests");
                assert!(
                    tests.iter().all(|t| t["failure"].is_null()),
                    "{key:?}: {path:#}"
                );
                measured.push(key);
            }
        }
    }
    assert_eq!(
        measured,
        [("public", "kf1"), ("cluster", "kf1"), ("cluster", "kf2")],
        "{context}"
    );
    nothing_left(&cluster);
}

/// SIGINT while a client pod measures (5 s tests): the bench ends with 128 + 2 and removes the
/// run — its Job, server and client pod — by itself, no `multinet cleanup` needed.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_signal_mid_bench_removes_everything() {
    let cluster = LabCluster::start(BIN, "kbn4", &["ks1"], "nodes: [ks1]", &[]);
    let mut child = bench_command(&cluster, "5s", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("multinet bench network starts");
    wait_for(
        "a bench client pod running",
        Duration::from_secs(120),
        || {
            kubectl_ok(&[
                "get",
                "pods",
                "-n",
                &cluster.namespace,
                "-l",
                "app.kubernetes.io/component=bench-client",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ])
            .contains("Running")
        },
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut status = None;
    wait_for(
        "multinet bench network ends after SIGINT",
        Duration::from_secs(120),
        || {
            status = child.try_wait().expect("wait");
            status.is_some()
        },
    );
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{status:?}");
    nothing_left(&cluster);
}
