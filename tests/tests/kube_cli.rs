//! `multinet run --backend kube` and `multinet cleanup` from the command line, without a
//! cluster (dry run, input errors), and — marked `#[ignore]` — a full validation against the
//! cluster `MULTINET_E2E_KUBECONFIG` names (see README).

use std::process::Command;

use serde_json::Value;

/// The binary with no Kubernetes configuration in reach (whatever the developer's machine has).
fn multinet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"));
    c.env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", std::env::temp_dir().join("multinet-no-home"));
    c
}

#[test]
fn a_dry_run_needs_no_cluster_and_prints_every_object() {
    let out = multinet()
        .args([
            "run",
            "--dry-run",
            "-o",
            "yaml",
            "--public-network",
            "public-net",
            "--cluster-network",
            "cluster-net",
            "--daemons-per-node",
            "2",
        ])
        .output()
        .expect("multinet runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let docs = multinet_proto::yaml::parse_documents(&text).expect("YAML stream");
    let kinds: Vec<String> = docs
        .iter()
        .filter_map(|d| d.get("kind").and_then(Value::as_str).map(String::from))
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Job",
            "Secret",
            "ConfigMap",
            "Pod",
            "DaemonSet",
            "Pod",
            "Pod",
            "ConfigMap"
        ],
        "owner, coordinator Job, TLS, agent settings, server, host checkers, 2 clients, report"
    );
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["labels"]["app.kubernetes.io/part-of"], "multinet",
            "{doc}"
        );
    }
}

/// `--mesh-peers K` on the command line reaches the coordinator Job: the configuration it
/// reads (the owner's `config.yaml`) says `mesh: true` and `meshPeers: K`, and the dry run
/// draws a responder on each placeholder node instead of the one server.
#[test]
fn a_mesh_on_the_command_line_reaches_the_jobs_configuration() {
    let out = multinet()
        .args([
            "run",
            "--dry-run",
            "-o",
            "yaml",
            "--public-network",
            "public-net",
            "--mesh-peers",
            "2",
        ])
        .output()
        .expect("multinet runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let docs = multinet_proto::yaml::parse_documents(&text).expect("YAML stream");
    let owner = docs
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["labels"]["app.kubernetes.io/component"] == "owner"
        })
        .expect("the owner");
    let (config, problems) = multinet_proto::config::parse_run_config(
        owner["data"]["config.yaml"].as_str().expect("config.yaml"),
    )
    .expect("YAML");
    assert!(problems.is_valid(), "{problems:?}");
    assert!(config.mesh && config.mesh_peers == 2, "{config:?}");
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("the Job");
    let args = job["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("/etc/multinet/config/config.yaml"), "{args}");
    let servers: Vec<&str> = docs
        .iter()
        .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "server")
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        servers,
        [
            "multinet-dryrun0000-shared-storage-and-worker-nodes-node-1-server",
            "multinet-dryrun0000-shared-storage-and-worker-nodes-node-2-server"
        ],
        "{text}"
    );
}

/// `meshPeers` without `mesh` in a configuration file is refused before anything is made:
/// exit 22, naming the field.
#[test]
fn mesh_peers_without_a_mesh_exits_22_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("multinet-kube-cli-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let file = dir.join("run.yaml");
    std::fs::write(&file, "publicNetwork: public-net\nmeshPeers: 2\n").expect("config");
    let out = multinet()
        .args(["run", "--backend", "kube", "--dry-run", "-o", "yaml", "-c"])
        .arg(&file)
        .output()
        .expect("multinet runs");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "{err}");
    assert!(err.contains("meshPeers"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn kubernetes_input_errors_exit_22_naming_the_field() {
    let out = multinet()
        .args(["run", "--backend", "kube", "--public-network", "Not/A/Nad!"])
        .output()
        .expect("multinet runs");
    assert_eq!(out.status.code(), Some(22));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("publicNetwork"), "{err}");
    let out = multinet()
        .args(["run", "--backend", "local", "--dry-run", "-o", "yaml"])
        .output()
        .expect("multinet runs");
    assert_eq!(out.status.code(), Some(22));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend kube"));
}

#[test]
fn without_a_cluster_run_and_cleanup_say_how_to_give_one() {
    // A run that cannot reach its backend cannot be carried out (69, verdict `error`);
    // cleanup has no verdict and fails as Rook's does (1).
    for (args, code) in [
        (&["run", "--backend", "kube", "-q"][..], 69),
        (&["cleanup"][..], 1),
    ] {
        let out = multinet().args(args).output().expect("multinet runs");
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("give --kubeconfig, set KUBECONFIG"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A whole validation on a real cluster: `MULTINET_E2E_KUBECONFIG` (required),
/// `MULTINET_E2E_PUBLIC` / `MULTINET_E2E_CLUSTER` (NAD names, default public-net /
/// cluster-net), `MULTINET_E2E_IMAGE` (default: the release image), `MULTINET_E2E_NAMESPACE`
/// (default rook-ceph). The RBAC of deploy/rbac.yaml must be applied.
#[test]
#[ignore = "needs a cluster: set MULTINET_E2E_KUBECONFIG and run with --run-ignored only"]
fn full_validation_on_a_real_cluster() {
    let Ok(kubeconfig) = std::env::var("MULTINET_E2E_KUBECONFIG") else {
        panic!("set MULTINET_E2E_KUBECONFIG to the cluster's kubeconfig");
    };
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let namespace = var("MULTINET_E2E_NAMESPACE", "rook-ceph");
    let mut args = vec![
        "run".to_string(),
        "--backend".into(),
        "kube".into(),
        "--kubeconfig".into(),
        kubeconfig.clone(),
        "-n".into(),
        namespace.clone(),
        "--public-network".into(),
        var("MULTINET_E2E_PUBLIC", "public-net"),
        "--cluster-network".into(),
        var("MULTINET_E2E_CLUSTER", "cluster-net"),
        "--daemons-per-node".into(),
        "2".into(),
        "--timeout-minutes".into(),
        "5".into(),
        "-o".into(),
        "json".into(),
    ];
    if let Ok(image) = std::env::var("MULTINET_E2E_IMAGE") {
        args.extend(["--image".into(), image]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(&args)
        .output()
        .expect("multinet runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["backend"], "kube");
    assert_eq!(report["verdict"], "pass", "{report:#}");
    // Nothing is left behind.
    let cleanup = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["cleanup", "--kubeconfig", &kubeconfig, "-n", &namespace])
        .output()
        .expect("cleanup runs");
    assert!(
        String::from_utf8_lossy(&cleanup.stdout).contains("no multinet run left"),
        "{}",
        String::from_utf8_lossy(&cleanup.stdout)
    );
}
