//! The `kube` backend end to end on a real API server (`tests/kube/control-plane up`) with the
//! lab as the cluster's nodes (`multinet lab up --kubeconfig`): `multinet run --backend kube`
//! from outside the cluster — preflight, the coordinator Job, its log streamed, its report
//! fetched, cleanup — as a user runs it. Ignored unless asked for: they need root, the CNI
//! plugins and a control plane (`MULTINET_E2E_CONTROL_PLANE`); `.ci/run` runs them. They run
//! one at a time (`.config/nextest.toml`): every lab's nodes are nodes of the one cluster.

use std::time::Duration;

use multinet_tests::e2e::findings;
use multinet_tests::kube_e2e::{SMALL, node_names, nothing_left, report, with_networks};
use multinet_tests::lab_cluster::{LabCluster, kubectl, kubectl_apply, kubectl_ok, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multinet-e2e");

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_run_in_flag_mode_on_three_nodes_passes_with_every_node_in_the_matrix() {
    let cluster = LabCluster::start(
        BIN,
        "kpass",
        &["k1", "k2", "k3"],
        "nodes: [k1, k2, k3]",
        &[],
    );
    let out = cluster.run(&with_networks(SMALL));
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
    assert_eq!(node_names(&report), ["k1", "k2", "k3"]);
    // The host-check DaemonSet places one pod per node (one node-field term per node).
    assert_eq!(report["host_checkers"]["passed"], 3, "{report:#}");
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
    // The coordinator's log was streamed through the API server from the lab's kubelet endpoint.
    assert!(stderr.contains("agents connected"), "{stderr}");
    nothing_left(&cluster);
}

/// Waits for a soak's interim report in the run's report ConfigMap (marked in progress).
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_run_with_node_types_from_a_config_file_places_each_type_on_its_nodes() {
    let cluster = LabCluster::start(
        BIN,
        "ktypes",
        &["s1", "s2", "w1"],
        "nodes:\n  - {name: s1, labels: {role: storage}}\n  - {name: s2, labels: {role: storage}}\n  - {name: w1, labels: {role: worker}, taints: [{key: dedicated, value: apps, effect: NoSchedule}]}",
        &[],
    );
    let config = cluster.scratch(
        "run.yaml",
        &format!("namespace: {}\npublicNetwork: public-net\nclusterNetwork: cluster-net\nserviceAccountName: multinet\nresourceTimeout: 2m\nnodeTypes:\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 1\n    placement:\n      nodeSelector: {{role: storage}}\n  worker:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 1\n    placement:\n      nodeSelector: {{role: worker}}\n      tolerations: [{{key: dedicated, operator: Equal, value: apps, effect: NoSchedule}}]\n",
            cluster.namespace
        ),
    );
    // The file names the namespace and service account: no -n, no --service-account.
    let out = std::process::Command::new(BIN)
        .args(["run", "--backend", "kube", "--kubeconfig"])
        .arg(multinet_tests::lab_cluster::kubeconfig())
        .args(["-c", config.to_str().expect("path"), "-o", "json"])
        .output()
        .expect("multinet runs");
    let report = report(&out);
    assert_eq!(
        report["verdict"],
        "pass",
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let types: Vec<(String, String)> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["node_type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("s1".to_string(), "storage".to_string()),
            ("s2".into(), "storage".into()),
            ("w1".into(), "worker".into())
        ]
    );
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_cordoned_and_a_not_ready_node_are_named_and_left_out() {
    let cluster = LabCluster::start(
        BIN,
        "kstate",
        &["c1", "c2", "c3", "c4"],
        "nodes: [c1, c2, c3, c4]",
        &["--not-ready", "c4"],
    );
    kubectl_ok(&["cordon", "c3"]);
    // The node lifecycle controller taints the NotReady node itself.
    wait_for("c4 tainted not-ready", Duration::from_secs(60), || {
        kubectl_ok(&["get", "node", "c4", "-o", "jsonpath={.spec.taints[*].key}"])
            .contains("node.kubernetes.io/not-ready")
    });
    let out = cluster.run(&with_networks(SMALL));
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(node_names(&report), ["c1", "c2"], "{stderr}");
    // Each said once: by the command, not again by the coordinator Job whose log it streams.
    let said = |needle: &str| stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(said("node c3 (node type"), 1, "{stderr}");
    assert_eq!(said("node c4 (node type"), 1, "{stderr}");
    assert!(
        stderr.contains("node c3") && stderr.contains("cordoned"),
        "{stderr}"
    );
    assert!(
        stderr.contains("node c4") && stderr.contains("NotReady"),
        "{stderr}"
    );
    assert_eq!(report["verdict"], "pass", "{report:#}\n{stderr}");
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_blocked_cluster_network_is_found_naming_the_node_and_network() {
    let cluster = LabCluster::start(
        BIN,
        "kblock",
        &["b1", "b2", "b3"],
        "nodes: [b1, b2, b3]\nfaults:\n  - block: {network: cluster, from: b3, to: b1}\n  - block: {network: cluster, from: b1, to: b3}",
        &[],
    );
    let out = cluster.run(&with_networks(&[
        "--daemons-per-node",
        "1",
        "--timeout-minutes",
        "1",
        "-o",
        "json",
    ]));
    let report = report(&out);
    assert_eq!(report["verdict"], "fail", "{report:#}");
    assert_eq!(out.status.code(), Some(1));
    let found = findings(&report);
    assert!(
        found
            .iter()
            .any(|(_, network, nodes)| network.as_deref() == Some("cluster")
                && nodes.contains(&"b3".to_string())),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(_, network, nodes)| network.as_deref() != Some("public")
                && !nodes.contains(&"b2".to_string())),
        "only b3's cluster network is blocked: {found:?}"
    );
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_nad_range_too_small_gives_address_unavailable_from_the_sandbox_event() {
    let cluster = LabCluster::start(
        BIN,
        "ktiny",
        &["t1", "t2", "t3"],
        "nodes: [t1, t2, t3]",
        &[],
    );
    // Two usable addresses (whereabouts excludes network and broadcast of a /30); the server
    // and three clients need four. The event is the lab's, as the kubelet writes it, read by
    // the coordinator through the real API server.
    kubectl_apply(
        &cluster.namespace,
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: tiny-net\nspec:\n  config: '{\"cniVersion\": \"0.3.1\", \"type\": \"macvlan\", \"master\": \"pub0\", \"mode\": \"bridge\", \"ipam\": {\"type\": \"whereabouts\", \"range\": \"198.18.36.0/30\"}}'\n",
    );
    let out = cluster.run(&[
        "--public-network",
        "tiny-net",
        "--daemons-per-node",
        "1",
        "--timeout-minutes",
        "1",
        "-o",
        "json",
    ]);
    let report = report(&out);
    assert_eq!(out.status.code(), Some(1));
    let unavailable: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "address_unavailable")
        .collect();
    assert!(!unavailable.is_empty(), "{report:#}");
    let text = unavailable[0].to_string();
    assert!(
        text.contains("FailedCreatePodSandBox") || text.contains("tiny-net"),
        "{text}"
    );
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_missing_master_and_a_master_mtu_below_the_nads_are_named_from_the_sandbox_events() {
    // Kubernetes node names, as a cluster has them. m3 has no public master; the cluster
    // master of worker-2 carries 1400 where the NAD asks 1500 (the lab's masters carry the
    // MTU of tests/kube/nads.yaml's networks, 1500, elsewhere). The plugins' errors reach the
    // coordinator as the kubelet's events, through the real API server; the backend names the
    // NAD's master in them.
    let long = "worker-2.example.com";
    let cluster = LabCluster::start(
        BIN,
        "kmas",
        &["m1", long, "m3"],
        &format!(
            "nodes: [m1, {long}, m3]\nunderlay:\n  - {{node: m3, network: public, present: false}}\n  - {{node: {long}, network: cluster, master_mtu: 1400}}"
        ),
        &[],
    );
    kubectl_apply(
        &cluster.namespace,
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: pub-net\nspec:\n  config: '{\"cniVersion\": \"0.3.1\", \"type\": \"macvlan\", \"master\": \"pub0\", \"mode\": \"bridge\", \"ipam\": {\"type\": \"whereabouts\", \"range\": \"198.18.36.0/24\"}}'\n---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: clu-net\nspec:\n  config: '{\"cniVersion\": \"0.3.1\", \"type\": \"macvlan\", \"master\": \"clu0\", \"mode\": \"bridge\", \"mtu\": 1500, \"ipam\": {\"type\": \"whereabouts\", \"range\": \"198.18.46.0/24\"}}'\n",
    );
    let out = cluster.run(&[
        "--public-network",
        "pub-net",
        "--cluster-network",
        "clu-net",
        "--daemons-per-node",
        "1",
        "--timeout-minutes",
        "1",
        "-o",
        "json",
    ]);
    let report = report(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let unavailable = |network: &str| -> Value {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["kind"] == "address_unavailable" && f["network"] == network)
            .cloned()
            .unwrap_or_else(|| panic!("address_unavailable on {network}: {report:#}"))
    };
    let public = unavailable("public");
    assert_eq!(public["nodes"], serde_json::json!(["m3"]), "{public:#}");
    assert_eq!(public["evidence"]["missing_master"], "pub0", "{public:#}");
    let cluster_finding = unavailable("cluster");
    assert_eq!(
        cluster_finding["nodes"],
        serde_json::json!([long]),
        "{cluster_finding:#}"
    );
    assert_eq!(
        (
            &cluster_finding["evidence"]["master"],
            &cluster_finding["evidence"]["nad_mtu"],
            &cluster_finding["evidence"]["master_mtu"]
        ),
        (&Value::from("clu0"), &Value::from(1500), &Value::from(1400)),
        "{cluster_finding:#}"
    );
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_missing_nad_exits_22_and_a_missing_permission_exits_69_naming_the_object() {
    let cluster = LabCluster::start(BIN, "kpre", &["p1"], "nodes: [p1]", &[]);
    let out = cluster.run(&["--public-network", "no-such-net", "-o", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "{stderr}");
    assert!(stderr.contains("no-such-net"), "{stderr}");
    let objects = kubectl_ok(&[
        "get",
        "configmaps,pods,jobs,secrets",
        "-n",
        &cluster.namespace,
        "-l",
        "app.kubernetes.io/part-of=multinet",
        "-o",
        "name",
    ]);
    assert!(objects.trim().is_empty(), "nothing created: {objects}");

    // A user with no permission: the ServiceAccount `nobody`'s token.
    kubectl_ok(&[
        "create",
        "serviceaccount",
        "nobody",
        "-n",
        &cluster.namespace,
    ]);
    let mut token = String::new();
    wait_for("nobody's token", Duration::from_secs(30), || {
        let secret = kubectl_ok(&[
            "get",
            "serviceaccount",
            "nobody",
            "-n",
            &cluster.namespace,
            "-o",
            "jsonpath={.secrets[0].name}",
        ]);
        if secret.trim().is_empty() {
            return false;
        }
        let data = kubectl_ok(&[
            "get",
            "secret",
            secret.trim(),
            "-n",
            &cluster.namespace,
            "-o",
            "jsonpath={.data.token}",
        ]);
        token = data.trim().to_string();
        !token.is_empty()
    });
    let token = decode_base64(&token);
    let admin =
        std::fs::read_to_string(multinet_tests::lab_cluster::kubeconfig()).expect("kubeconfig");
    let restricted = cluster.scratch("nobody.kubeconfig", &admin);
    let path = restricted.to_str().expect("path");
    kubectl_ok(&[
        "--kubeconfig",
        path,
        "config",
        "set-credentials",
        "nobody",
        &format!("--token={token}"),
    ]);
    let context = kubectl_ok(&["--kubeconfig", path, "config", "current-context"]);
    kubectl_ok(&[
        "--kubeconfig",
        path,
        "config",
        "set-context",
        context.trim(),
        "--user=nobody",
    ]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "kube",
            "--kubeconfig",
            path,
            "-n",
            &cluster.namespace,
        ])
        .args(with_networks(&["--service-account", "multinet"]))
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The cluster refused the run: it could not start (69), not a network that failed (1).
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("create") && stderr.contains("pods"),
        "names the verb and resource: {stderr}"
    );
    // Nothing was created.
    let objects = kubectl_ok(&[
        "get",
        "configmaps,pods,jobs",
        "-n",
        &cluster.namespace,
        "-l",
        "app.kubernetes.io/part-of=multinet",
        "-o",
        "name",
    ]);
    assert!(objects.trim().is_empty(), "{objects}");
}

fn decode_base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 token")
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn sigint_mid_run_then_cleanup_leaves_no_object_and_no_lab_pod() {
    let cluster = LabCluster::start(
        BIN,
        "kint",
        &["i1", "i2"],
        "nodes: [i1, i2]\nfaults:\n  - block: {network: cluster, from: i2, to: i1}",
        &[],
    );
    let mut child = cluster
        .run_command(&with_networks(&[
            "--daemons-per-node",
            "1",
            "--timeout-minutes",
            "3",
        ]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("multinet run starts");
    wait_for(
        "the run's client pods running",
        Duration::from_secs(120),
        || {
            let phases = kubectl_ok(&[
                "get",
                "pods",
                "-n",
                &cluster.namespace,
                "-l",
                "app.kubernetes.io/component=client",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]);
            phases
                .split_whitespace()
                .filter(|p| *p == "Running")
                .count()
                >= 2
        },
    );
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut status = None;
    wait_for(
        "multinet run ends after SIGINT",
        Duration::from_secs(120),
        || {
            status = child.try_wait().expect("wait");
            status.is_some()
        },
    );
    let cleanup = std::process::Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["cleanup", "--kubeconfig"])
        .arg(multinet_tests::lab_cluster::kubeconfig())
        .args(["-n", &cluster.namespace])
        .output()
        .expect("cleanup runs");
    assert!(
        cleanup.status.success(),
        "{}",
        String::from_utf8_lossy(&cleanup.stderr)
    );
    nothing_left(&cluster);
    let all = kubectl_ok(&[
        "get",
        "configmaps,jobs,pods,daemonsets",
        "-n",
        &cluster.namespace,
        "-o",
        "name",
    ]);
    assert!(!all.contains("multinet-"), "{all}");
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn the_dry_run_objects_are_accepted_by_the_api_server() {
    let cluster = LabCluster::start(BIN, "kdry", &["d1"], "nodes: [d1]", &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
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
            "--daemons-per-node",
            "2",
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
    let created = kubectl(&[
        "create",
        "--dry-run=server",
        "-n",
        &cluster.namespace,
        "-f",
        file.to_str().expect("path"),
    ]);
    assert!(
        created.status.success(),
        "{}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        String::from_utf8_lossy(&created.stdout).contains("daemonset.apps"),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn an_image_the_nodes_cannot_pull_is_named_with_the_pull_error() {
    let cluster = LabCluster::start(BIN, "kpull", &["u1"], "nodes: [u1]", &[]);
    let out = cluster.run(&with_networks(&[
        "--image",
        "registry.invalid/not-multinet:1",
        "--timeout-minutes",
        "1",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The coordinator's own pod cannot run: the run could not be carried out (69).
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("registry.invalid/not-multinet:1"),
        "the image is named: {stderr}"
    );
    assert!(
        stderr.contains("cannot pull image") && stderr.contains("ImagePullBackOff"),
        "the pull error is said as soon as the kubelet backs off: {stderr}"
    );
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_pod_runs_with_its_nad_and_is_stopped_on_deletion_and_when_the_lab_stops() {
    let mut cluster = LabCluster::start(BIN, "kpod", &["g1"], "nodes: [g1]", &[]);
    let ns = cluster.namespace.clone();
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n    k8s.v1.cni.cncf.io/networks: public-net\nspec:\n  nodeName: g1\n  serviceAccountName: multinet\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: main\n    image: {}\n    args: [bench, ingest, --agents, '1', --rate, '1', --seconds, '120']\n    volumeMounts: [{{name: tmp, mountPath: /tmp}}]\n  volumes: [{{name: tmp, emptyDir: {{}}}}]\n",
            multinet_coordinator::backend::kube::DEFAULT_IMAGE
        )
    };
    kubectl_apply(&ns, &pod("one"));
    kubectl_apply(&ns, &pod("two"));
    for name in ["one", "two"] {
        let out = kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=60s",
        ]);
        assert!(
            out.status.success(),
            "pod {name} Ready: {}\nlab: {}",
            String::from_utf8_lossy(&out.stderr),
            cluster.stderr()
        );
    }
    // Multus' network-status: the pod network and public-net on net1, with a whereabouts address.
    let status = kubectl_ok(&[
        "get",
        "pod",
        "one",
        "-n",
        &ns,
        "-o",
        "jsonpath={.metadata.annotations.k8s\\.v1\\.cni\\.cncf\\.io/network-status}",
    ]);
    let status: Value = serde_json::from_str(&status).expect("network-status is JSON");
    let public = &status.as_array().expect("a list")[1];
    assert_eq!(public["name"], format!("{ns}/public-net"), "{status:#}");
    assert_eq!(public["interface"], "net1");
    assert!(
        public["ips"][0]
            .as_str()
            .expect("ip")
            .starts_with("198.18.36."),
        "{status:#}"
    );
    assert_eq!(cluster.pod_namespaces().len(), 2);

    // Still the first start: the bench runs (it writes to its emptyDir /tmp).
    let restarts = kubectl_ok(&[
        "get",
        "pod",
        "one",
        "-n",
        &ns,
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(restarts, "0", "lab: {}", cluster.stderr());
    // Graceful deletion: the process is stopped, the sandbox removed, the deletion confirmed.
    // The container's process is PID 1 of its namespace and has no SIGTERM handler: it ignores
    // SIGTERM and is killed when the grace period (3 s here) ends, as in a real container.
    let started = std::time::Instant::now();
    kubectl_ok(&[
        "delete",
        "pod",
        "one",
        "-n",
        &ns,
        "--grace-period=3",
        "--wait=true",
        "--timeout=60s",
    ]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(20),
        "SIGTERM ignored by a PID 1 without a handler, SIGKILL when the grace period ends: {took:?}"
    );
    assert_eq!(
        cluster.pod_namespaces().len(),
        1,
        "one sandbox left: {:?}",
        cluster.pod_namespaces()
    );

    // The lab stops serving: its pods' processes and sandboxes go; the object stays.
    let status = cluster.stop().expect("lab up ended");
    assert!(status.success(), "{status:?}\n{}", cluster.stderr());
    assert!(
        cluster.pod_namespaces().is_empty(),
        "{:?}",
        cluster.pod_namespaces()
    );
    assert!(cluster.processes().is_empty(), "{:?}", cluster.processes());
    kubectl_ok(&["get", "pod", "two", "-n", &ns]);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_failing_container_is_restarted_or_not_per_its_restart_policy() {
    let cluster = LabCluster::start(BIN, "kfail", &["f1"], "nodes: [f1]", &[]);
    let ns = cluster.namespace.clone();
    let pod = |name: &str, policy: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: f1\n  serviceAccountName: multinet\n  restartPolicy: {policy}\n  containers:\n  - name: main\n    image: {}\n    args: [no-such-command]\n    terminationMessagePolicy: FallbackToLogsOnError\n",
            multinet_coordinator::backend::kube::DEFAULT_IMAGE
        )
    };
    kubectl_apply(&ns, &pod("once", "Never"));
    kubectl_apply(&ns, &pod("again", "OnFailure"));
    let field = |name: &str, path: &str| {
        kubectl_ok(&[
            "get",
            "pod",
            name,
            "-n",
            &ns,
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    // Never: the pod fails, its container's exit code and last log lines in its status.
    wait_for("pod once Failed", Duration::from_secs(60), || {
        field("once", "{.status.phase}") == "Failed"
    });
    assert_eq!(
        field(
            "once",
            "{.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "22"
    );
    let message = field(
        "once",
        "{.status.containerStatuses[0].state.terminated.message}",
    );
    assert!(
        message.contains("no-such-command"),
        "FallbackToLogsOnError: {message:?}"
    );
    assert_eq!(
        field("once", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
    // The log stays readable through the API server after the container ended.
    let logs = kubectl_ok(&["logs", "once", "-n", &ns]);
    assert!(logs.contains("no-such-command"), "{logs}");
    // OnFailure: restarted at once, then backing off; the previous run in lastState.
    wait_for(
        "pod again restarted and backing off",
        Duration::from_secs(60),
        || {
            field(
                "again",
                "{.status.containerStatuses[0].state.waiting.reason}",
            ) == "CrashLoopBackOff"
        },
    );
    assert_eq!(field("again", "{.status.phase}"), "Running");
    let restarts: u32 = field("again", "{.status.containerStatuses[0].restartCount}")
        .parse()
        .expect("a count");
    assert!(restarts >= 1, "{restarts}");
    assert_eq!(
        field(
            "again",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "22",
        "multinet's exit code for invalid input"
    );
    let previous = kubectl_ok(&["logs", "again", "-n", &ns, "--previous"]);
    assert!(previous.contains("no-such-command"), "{previous}");
}
