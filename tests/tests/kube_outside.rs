//! `multinet run` from outside the cluster against a fake API server: the coordinator Job is
//! created, its pod awaited, its log followed (and reopened where it stopped when the stream
//! ends early), its report fetched; a Job whose pod cannot be created is an error naming why.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use multinet_coordinator::backend::kube::names::{Owner, RunNames};
use multinet_coordinator::backend::kube::objects::KubeRun;
use multinet_coordinator::backend::kube::outside::{JobBounds, run_job};
use multinet_coordinator::report::Format as RunOutput;
use multinet_proto::config::RunConfig;
use multinet_tests::mock::{Answer, list, serve_routes};
use serde_json::{Value, json};

const NS: &str = "rook-ceph";
const RUN: &str = "0a1b2c3d4e";
const POD: &str = "multinet-0a1b2c3d4e-coordinator-x7k2p";
const REPORT: &str = "multinet validation run 0a1b2c3d4e — FAIL\n";
/// Generous: these flows start their pod at once.
const BOUNDS: JobBounds = JobBounds {
    start: Duration::from_secs(20),
    total: Duration::from_secs(20),
    status_every: Duration::from_secs(5),
};

fn kube_run(config: &RunConfig) -> KubeRun<'_> {
    let names = RunNames::new(RUN);
    KubeRun {
        owner: Owner {
            name: names.owner(),
            uid: "owner-uid".into(),
        },
        names,
        namespace: NS.into(),
        image: "ghcr.io/multinet/multinet:test".into(),
        config,
        public: None,
        cluster: None,
    }
}

fn pod(state: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": POD, "namespace": NS, "resourceVersion": "7"},
           "status": {"phase": "Running",
                      "containerStatuses": [{"name": "coordinator", "ready": true, "restartCount": 0,
                                             "image": "i", "imageID": "", "state": state}]}})
}

/// Answers the flow's requests; `logs` are the bodies of successive log requests, and the pod
/// is terminated once the last one was served. `events` are the Job's and its pod's (each
/// list asks by kind); `waiting`, when given, is the pod's status: it never runs.
fn fake(
    logs: Vec<&'static str>,
    events: Vec<Value>,
    waiting: Option<Value>,
) -> impl FnMut(&str, &str, Option<&Value>) -> Answer {
    let mut served_logs = 0;
    move |method, uri, body| {
        let path = uri.split('?').next().unwrap_or_default();
        let base = format!("/api/v1/namespaces/{NS}");
        match (method, path) {
            ("POST", p) if p == format!("/apis/batch/v1/namespaces/{NS}/jobs") => {
                Answer::json(body.cloned().unwrap_or_default())
            }
            ("GET", _) if uri.contains("watch=true") => Answer::Hold,
            ("GET", p) if p == format!("{base}/pods") => {
                assert!(
                    uri.contains("app.kubernetes.io/component=coordinator"),
                    "{uri}"
                );
                let items = match &waiting {
                    Some(status) => vec![json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": POD, "namespace": NS, "resourceVersion": "7"},
                        "spec": {"nodeName": "w1", "containers": [{"name": "coordinator"}]},
                        "status": status})],
                    None if events.is_empty() => vec![pod(json!({"running": {}}))],
                    None => Vec::new(),
                };
                Answer::json(list("v1", "Pod", items))
            }
            ("GET", p) if p == format!("{base}/events") => {
                let of_kind: Vec<Value> = events
                    .iter()
                    .filter(|e| {
                        let kind = e["involvedObject"]["kind"].as_str().unwrap_or_default();
                        uri.contains(&format!("involvedObject.kind={kind}"))
                    })
                    .cloned()
                    .collect();
                Answer::json(list("v1", "Event", of_kind))
            }
            ("GET", p) if p == format!("{base}/pods/{POD}/log") => {
                // Followed while the container runs; read once more, to its end, after.
                assert!(uri.contains("timestamps=true"), "{uri}");
                assert_eq!(
                    uri.contains("follow=true"),
                    served_logs < logs.len(),
                    "{uri}"
                );
                assert_eq!(uri.contains("sinceTime="), served_logs > 0, "{uri}");
                let body = logs.get(served_logs).copied().unwrap_or_default();
                served_logs += 1;
                Answer::Body(200, body.as_bytes().to_vec())
            }
            ("GET", p) if p == format!("{base}/pods/{POD}") => {
                let state = if served_logs >= logs.len() {
                    json!({"terminated": {"exitCode": 1, "reason": "Error"}})
                } else {
                    json!({"running": {}})
                };
                Answer::json(pod(state))
            }
            ("GET", p) if p == format!("{base}/configmaps/multinet-{RUN}-report") => {
                Answer::json(json!({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": format!("multinet-{RUN}-report")},
                                    "data": {"report.txt": REPORT, "exit-code": "1"}}))
            }
            _ => Answer::Body(
                404,
                br#"{"kind":"Status","code":404,"message":"not scripted"}"#.to_vec(),
            ),
        }
    }
}

async fn outside(
    logs: Vec<&'static str>,
    events: Vec<Value>,
    waiting: Option<Value>,
    bounds: JobBounds,
) -> (
    multinet_coordinator::backend::kube::Result<
        multinet_coordinator::backend::kube::outside::JobOutcome,
    >,
    Vec<String>,
    Vec<multinet_tests::mock::Seen>,
) {
    let (client, server) = serve_routes(fake(logs, events, waiting));
    let config = RunConfig::default();
    let run = kube_run(&config);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let outcome = run_job(
        &client,
        &run,
        run.coordinator_job(vec!["-o".into(), "text".into()]),
        bounds,
        &mut move |line| sink.lock().expect("lines").push(line.to_string()),
    )
    .await;
    drop(client);
    let seen = server.await.expect("fake API server");
    let lines = lines.lock().expect("lines").clone();
    (outcome, lines, seen)
}

#[tokio::test]
async fn the_job_runs_its_log_streams_and_its_report_comes_back() {
    let (outcome, lines, seen) = outside(
        vec!["2026-11-29T05:00:00.000000001Z probe: agents connected 61/61\n2026-11-29T05:00:03.5Z multinet: report stored\n"],
        Vec::new(),
        None,
        BOUNDS,
    )
    .await;
    let outcome = outcome.expect("the run's outcome");
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(outcome.report(RunOutput::Text).expect("text"), REPORT);
    assert_eq!(
        lines[1..],
        ["probe: agents connected 61/61", "multinet: report stored"]
    );
    // The Job: the run's coordinator, told its run id, owned by the run.
    let job = seen
        .iter()
        .find(|s| s.method == "POST")
        .and_then(|s| s.body.as_ref())
        .expect("the Job was created");
    let args = &job["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .expect("args")
            .contains(&json!("--in-cluster-run")),
        "{args}"
    );
    assert!(
        args.as_array().expect("args").contains(&json!(RUN)),
        "{args}"
    );
    assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "owner-uid");
}

#[tokio::test]
async fn a_log_stream_that_ends_early_is_reopened_where_it_stopped() {
    let (outcome, lines, seen) = outside(
        vec![
            "2026-11-29T05:00:01Z one\n2026-11-29T05:00:02Z two\n",
            // The reopened stream starts at the last second seen: `two` again, then more.
            "2026-11-29T05:00:02Z two\n2026-11-29T05:00:05Z three\n",
        ],
        Vec::new(),
        None,
        BOUNDS,
    )
    .await;
    outcome.expect("the run's outcome");
    assert_eq!(lines[1..], ["one", "two", "three"], "each line once");
    // Two followed streams, then, the container ended, one read to the log's end.
    assert_eq!(
        seen.iter().filter(|s| s.uri.contains("/log")).count(),
        3,
        "{seen:#?}"
    );
}

#[tokio::test]
async fn a_job_whose_pod_cannot_be_created_says_why() {
    let event = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e1", "namespace": NS},
        "involvedObject": {"kind": "Job", "name": format!("multinet-{RUN}-coordinator")},
        "reason": "FailedCreate",
        "count": 3,
        "message": "Error creating: pods \"multinet-0a1b2c3d4e-coordinator-\" is forbidden: error looking up service account rook-ceph/multinet: serviceaccount \"multinet\" not found"});
    let (outcome, _, _) = outside(Vec::new(), vec![event], None, BOUNDS).await;
    let error = multinet_coordinator::exit::chain(&outcome.expect_err("no pod, no run"));
    assert!(
        error.contains("cannot create the pod of Job multinet-0a1b2c3d4e-coordinator")
            && error.contains("serviceaccount \"multinet\" not found"),
        "{error}"
    );
}

#[tokio::test]
async fn a_job_whose_pod_never_starts_says_what_it_waits_on_once_and_gives_up_at_its_bound() {
    // Scheduled, its container never created: a volume that cannot be mounted.
    let waiting = json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "coordinator", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                               "state": {"waiting": {"reason": "ContainerCreating"}}}]});
    let mount = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e2", "namespace": NS},
        "involvedObject": {"kind": "Pod", "name": POD},
        "reason": "FailedMount", "count": 4,
        "lastTimestamp": "2026-11-29T05:00:00Z",
        "message": "MountVolume.SetUp failed for volume \"config\" : configmap \"multinet-0a1b2c3d4e\" not found"});
    let bounds = JobBounds {
        start: Duration::from_millis(1500),
        total: Duration::from_secs(20),
        status_every: Duration::from_millis(200),
    };
    let (outcome, lines, _) = outside(Vec::new(), vec![mount], Some(waiting), bounds).await;
    let state = "pod multinet-0a1b2c3d4e-coordinator-x7k2p Pending, on node w1, container coordinator ContainerCreating, latest event FailedMount: MountVolume.SetUp failed for volume \"config\" : configmap \"multinet-0a1b2c3d4e\" not found";
    // Said while it waits, and only when it changed: once here.
    assert_eq!(
        lines[1..],
        [format!(
            "multinet: the coordinator Job multinet-0a1b2c3d4e-coordinator waits: {state}"
        )]
    );
    let error = multinet_coordinator::exit::chain(&outcome.expect_err("it never ran"));
    assert_eq!(
        error,
        format!(
            "the coordinator Job rook-ceph/multinet-0a1b2c3d4e-coordinator did not start its pod within 1.5s (the run's resourceTimeout); it was waiting: {state}"
        )
    );
}
