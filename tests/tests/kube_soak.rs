//! A soak on the `kube` backend end to end on a real API server with the lab as the cluster's
//! nodes (see `kube_lab`): interim reports stored as it goes, and a coordinator that dies —
//! its container restarted by the Job, or its pod replaced — continuing the run with nothing
//! lost. Ignored unless asked for, like `kube_lab`; one at a time (`.config/nextest.toml`).

use std::time::Duration;

use multinet_tests::kube_e2e::{nothing_left, report, with_networks};
use multinet_tests::lab_cluster::{LabCluster, kubectl, kubectl_ok, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multinet-e2e");

fn interim_report(cluster: &LabCluster) -> Value {
    let mut interim = Value::Null;
    wait_for(
        "an interim report in the run's report ConfigMap",
        Duration::from_secs(120),
        || {
            let out = kubectl(&[
                "get",
                "configmaps",
                "-n",
                &cluster.namespace,
                "-l",
                "app.kubernetes.io/component=report",
                "-o",
                "json",
            ]);
            let Ok(list) = serde_json::from_slice::<Value>(&out.stdout) else {
                return false;
            };
            let found = list["items"].as_array().and_then(|items| {
                items.iter().find_map(|cm| {
                    (cm["data"]["in-progress"] == "true")
                        .then(|| cm["data"]["report.json"].as_str())
                        .flatten()
                        .and_then(|text| serde_json::from_str::<Value>(text).ok())
                })
            });
            match found {
                Some(report) => {
                    interim = report;
                    true
                }
                None => false,
            }
        },
    );
    interim
}

const SOAK: &[&str] = &[
    "--daemons-per-node",
    "1",
    "--timeout-minutes",
    "2",
    "-o",
    "json",
    "--duration",
    "30s",
    "--report-interval",
    "4s",
];

/// `multinet run` of a [`SOAK`] on `cluster`, its output piped for the test to read.
fn start_soak(cluster: &LabCluster) -> std::process::Child {
    cluster
        .run_command(&with_networks(SOAK))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("multinet runs")
}

/// A soak on the kube backend rewrites the run's stored report every `reportInterval`, marked
/// in progress, for the command outside to show should the coordinator Job die; the final
/// report replaces it.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_soak_stores_its_interim_report_while_it_runs_and_the_final_one_at_its_end() {
    let cluster = LabCluster::start(BIN, "ksoak", &["q1", "q2"], "nodes: [q1, q2]", &[]);
    let child = start_soak(&cluster);
    // While it soaks: the report ConfigMap holds an interim report, marked in progress.
    let interim = interim_report(&cluster);
    let out = child.wait_with_output().expect("multinet ends");
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(interim["in_progress"], true, "{interim:#}");
    assert_eq!(interim["run_id"], report["run_id"]);
    assert!(
        interim["duration_ms"].as_u64() < report["duration_ms"].as_u64(),
        "the interim report is of earlier: {} ms, the final one {} ms",
        interim["duration_ms"],
        report["duration_ms"]
    );
    // The final report replaced it: not in progress, the soak done.
    assert_eq!(report.get("in_progress"), None, "{report:#}");
    assert_eq!(report["verdict"], "pass", "{report:#}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        report["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .any(|s| s["name"] == "soak" && s["outcome"] == "done"),
        "{report:#}"
    );
    nothing_left(&cluster);
}

/// The checkpoint the coordinator of run `id` keeps in its pod's emptyDir (`/tmp`), as the
/// lab's kubelet lays the pod's volumes out on this machine, once one was written
/// `into_probing_ms` or more after probing began (within 60 s), with its path.
fn coordinator_checkpoint(
    cluster: &LabCluster,
    id: &str,
    into_probing_ms: u64,
) -> (std::path::PathBuf, Value) {
    let pods = std::path::PathBuf::from(format!("/run/multinet/{}/pods", cluster.lab));
    let mut found = None;
    wait_for(
        "the coordinator's checkpoint in its pod's emptyDir",
        Duration::from_secs(60),
        || {
            let Ok(entries) = std::fs::read_dir(&pods) else {
                return false;
            };
            for pod in entries.flatten() {
                let path = pod
                    .path()
                    .join(format!("volumes/tmp/multinet-{id}/checkpoint.json"));
                let read = std::fs::read(&path)
                    .ok()
                    .and_then(|t| serde_json::from_slice::<Value>(&t).ok());
                if let Some(c) = read
                    && let (Some(at), Some(began)) =
                        (c["written_ms"].as_u64(), c["probing_began_ms"].as_u64())
                    && at >= began + into_probing_ms
                {
                    found = Some((path, c));
                    return true;
                }
            }
            false
        },
    );
    found.expect("waited for")
}

/// Signals the coordinator process of run `id` (`SIG` as `kill` names it): the coordinator
/// Job's container is a process of the lab's node on this machine.
fn signal_coordinator(id: &str, signal: &str) {
    let sent = std::process::Command::new("pkill")
        .args([&format!("-{signal}"), "-f", &format!("in-cluster-run {id}")])
        .status()
        .expect("pkill");
    assert!(
        sent.success(),
        "SIG{signal} to the coordinator process of run {id}"
    );
}

/// The report of a soak whose coordinator was restarted or replaced once, resuming from a
/// checkpoint written `checkpoint_at_least` ms into the run or later, after checking what
/// every such run must show: exit 0, a final pass, one `coordinator_restarts[]` entry, nothing
/// lost (a batch is acknowledged only once a checkpoint holds it), no finding, and the stages
/// of a resumed soak. Returns the report and the command's standard error.
fn resumed_once_with_nothing_lost(
    out: &std::process::Output,
    checkpoint_at_least: u64,
) -> (Value, String) {
    let report = report(out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(report["verdict"], "pass", "{report:#}\n{stderr}");
    assert_eq!(report.get("in_progress"), None, "{report:#}");
    let restarts = report["coordinator_restarts"].as_array().expect("restarts");
    assert_eq!(restarts.len(), 1, "{report:#}");
    assert!(
        restarts[0]["checkpoint_ms"]
            .as_u64()
            .expect("checkpoint_ms")
            >= checkpoint_at_least,
        "resumed from the checkpoint seen or a later one: {restarts:#?}"
    );
    let results = &report["results"];
    let n = |k: &str| results[k].as_u64().expect(k);
    assert_eq!((n("unaccounted"), n("lost")), (0, 0), "{results:#}");
    assert_eq!(n("produced"), n("recorded"), "{results:#}");
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    let stages: Vec<&str> = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        stages.contains(&"coordinator restart") && stages.contains(&"soak (resumed)"),
        "{stages:?}"
    );
    (report, stderr)
}

/// A kube soak whose coordinator dies (SIGKILL, as the OOM killer would) mid-soak: the Job
/// restarts its container in the same pod, the new process resumes from the checkpoint in the
/// pod's emptyDir, the agents reconnect to the same address and resend what was not
/// checkpointed; the run completes with nothing lost and the report tells the restart.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_soak_whose_coordinator_dies_is_restarted_by_its_job_and_loses_nothing() {
    let cluster = LabCluster::start(BIN, "kres", &["r1", "r2"], "nodes: [r1, r2]", &[]);
    let child = start_soak(&cluster);
    let interim = interim_report(&cluster);
    let id = interim["run_id"].as_str().expect("run id").to_string();
    let (_, checkpointed) = coordinator_checkpoint(&cluster, &id, 4_000);
    signal_coordinator(&id, "KILL");
    let out = child.wait_with_output().expect("multinet ends");
    let written_ms = checkpointed["written_ms"].as_u64().expect("written_ms");
    let (report, stderr) = resumed_once_with_nothing_lost(&out, written_ms);
    assert!(
        stderr.contains("the coordinator restarted; resuming"),
        "{stderr}"
    );
    let recorded_then = checkpointed["matrix"]["recorded"]
        .as_u64()
        .expect("recorded");
    let recorded = report["results"]["recorded"].as_u64().expect("recorded");
    assert!(recorded > recorded_then, "{:#}", report["results"]);
    assert!(report.get("agent_outages").is_none(), "{report:#}");
    nothing_left(&cluster);
}

/// A kube soak whose coordinator dies and cannot be continued (its checkpoint gone, in the
/// pod's emptyDir and in the API): the restarted coordinator leaves the last interim report as
/// the run's; the command outside shows it and exits 69 (the run was not carried out to its
/// end), and still removes the run.
#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_soak_whose_coordinator_dies_without_its_checkpoint_shows_its_last_interim_report_and_exits_69()
 {
    let cluster = LabCluster::start(BIN, "kdies", &["d1", "d2"], "nodes: [d1, d2]", &[]);
    let child = start_soak(&cluster);
    let interim = interim_report(&cluster);
    let id = interim["run_id"].as_str().expect("run id").to_string();
    let (checkpoint, _) = coordinator_checkpoint(&cluster, &id, 0);
    // Stopped first, so that it writes no checkpoint between the removals and its death; the
    // checkpoint's copy in the API goes too (its index: without it there is none).
    signal_coordinator(&id, "STOP");
    std::fs::remove_file(&checkpoint).expect("the checkpoint removed");
    kubectl_ok(&[
        "delete",
        "configmap",
        "-n",
        &cluster.namespace,
        &format!("multinet-{id}-checkpoint"),
    ]);
    signal_coordinator(&id, "KILL");
    let out = child.wait_with_output().expect("multinet ends");
    let report = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert_eq!(report["in_progress"], true, "{report:#}");
    assert_eq!(report["run_id"], id.as_str());
    assert!(
        stderr.contains("cannot be continued: the run's directory")
            && stderr.contains("holds no checkpoint"),
        "{stderr}"
    );
    assert!(stderr.contains("before its final report"), "{stderr}");
    nothing_left(&cluster);
}

/// Run `id`'s checkpoint stored in the API once its generation is `at_least` (within 60 s):
/// when it was written, ms into the run.
fn stored_checkpoint(cluster: &LabCluster, id: &str, at_least: u64) -> u64 {
    let mut written_ms = 0;
    wait_for(
        "the coordinator's checkpoint stored in the API",
        Duration::from_secs(60),
        || {
            let out = kubectl(&[
                "get",
                "configmap",
                "-n",
                &cluster.namespace,
                &format!("multinet-{id}-checkpoint"),
                "-o",
                "json",
            ]);
            let Ok(index) = serde_json::from_slice::<Value>(&out.stdout) else {
                return false;
            };
            let field = |k: &str| {
                index["data"][k]
                    .as_str()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            written_ms = field("written-ms").unwrap_or(0);
            field("generation").is_some_and(|g| g >= at_least)
        },
    );
    written_ms
}

/// A kube soak whose coordinator's pod goes mid-soak — `force`-deleted (as when its node is
/// lost: no SIGTERM, its emptyDir gone) or evicted by `kubectl drain` of its node (the Eviction
/// API: SIGTERM while the run and its Job go on; the node cordoned, so the replacement runs on
/// the other node) — continues in the pod the Job replaces it with: the new pod, at another
/// address, resumes from the checkpoint stored in the API with the TLS identity from its
/// Secret; the agents reach it through the run's Service and resend what no stored checkpoint
/// held. The command outside follows the new pod's log; the run completes with nothing lost.
fn a_soak_whose_coordinator_pod_is_deleted_continues_in_the_new_pod(lab: &str, force: bool) {
    let nodes = [format!("{lab}1"), format!("{lab}2")];
    let cluster = LabCluster::start(
        BIN,
        lab,
        &[&nodes[0], &nodes[1]],
        &format!("nodes: [{}, {}]", nodes[0], nodes[1]),
        &[],
    );
    let child = start_soak(&cluster);
    let interim = interim_report(&cluster);
    let id = interim["run_id"].as_str().expect("run id").to_string();
    let stored_at = stored_checkpoint(&cluster, &id, 2);
    let selector = format!("app.kubernetes.io/component=coordinator,multinet.io/run={id}");
    let old_pod = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &cluster.namespace,
        "-l",
        &selector,
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let old_pod = old_pod.trim();
    if force {
        kubectl_ok(&[
            "delete",
            "pod",
            "-n",
            &cluster.namespace,
            old_pod,
            "--force",
            "--grace-period=0",
        ]);
    } else {
        let node = kubectl_ok(&[
            "get",
            "pod",
            "-n",
            &cluster.namespace,
            old_pod,
            "-o",
            "jsonpath={.spec.nodeName}",
        ]);
        kubectl_ok(&[
            "drain",
            node.trim(),
            "--pod-selector",
            &selector,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=120s",
        ]);
    }
    let out = child.wait_with_output().expect("multinet ends");
    let (_, stderr) = resumed_once_with_nothing_lost(&out, stored_at);
    if !force {
        assert!(
            stderr.contains("SIGTERM: run")
                && stderr.contains("leaving the run to the pod that replaces this one"),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("replaces the coordinator's pod {old_pod}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "resuming from ConfigMap {}/multinet-{id}-checkpoint (generation",
            cluster.namespace
        )),
        "{stderr}"
    );
    nothing_left(&cluster);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_soak_whose_coordinator_pod_is_force_deleted_continues_in_the_new_pod_and_loses_nothing() {
    a_soak_whose_coordinator_pod_is_deleted_continues_in_the_new_pod("kfd", true);
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_kube_soak_whose_coordinator_pod_is_evicted_hands_the_run_over_to_the_new_pod() {
    a_soak_whose_coordinator_pod_is_deleted_continues_in_the_new_pod("kev", false);
}
