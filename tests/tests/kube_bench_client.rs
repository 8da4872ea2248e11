//! `bench network`'s client pod on the kube backend against a fake API server: one path's pod
//! created, watched to `Succeeded`, its log read through `pods/log` (container `client`) and
//! the pod deleted; a pod that cannot be scheduled is given up on with the reason its status
//! says, and deleted too. No cluster needed.

use std::time::Duration;

use multinet_coordinator::backend::kube::backend::{KubeBackend, KubeBackendSpec, OwnerRole};
use multinet_coordinator::backend::kube::names::{Owner, RunNames};
use multinet_coordinator::scheduler::NodePlan;
use multinet_proto::config::RunConfig;
use multinet_proto::network::CephNetwork;
use multinet_tests::mock::{Answer, list, serve_routes};
use serde_json::{Value, json};

const NS: &str = "rook-ceph";
const RUN: &str = "0a1b2c3d4e";
const POD: &str = "multinet-0a1b2c3d4e-bench-1";
const LOG: &str = "{\"client_address\":\"198.18.36.7\"}\n{\"kind\":\"download\"}\n";

/// The pod as the API server gives it back: `status`.
fn pod(status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": POD, "namespace": NS, "resourceVersion": "9"},
           "spec": {"nodeName": "w1", "restartPolicy": "Never",
                    "containers": [{"name": "client"}]},
           "status": status})
}

/// Runs one client pod against a fake API server whose pod has `status`; what came of it and
/// the requests made (method, path).
async fn one_path(status: Value) -> (Result<String, String>, Vec<(String, String)>, Value) {
    let created = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let keep = created.clone();
    let (client, server) = serve_routes(move |method, uri, body| {
        let path = uri.split('?').next().unwrap_or_default();
        let pods = format!("/api/v1/namespaces/{NS}/pods");
        match (method, path) {
            ("POST", p) if p == pods => {
                *keep.lock().expect("created") = body.cloned().unwrap_or_default();
                Answer::json(body.cloned().unwrap_or_default())
            }
            ("GET", _) if uri.contains("watch=true") => Answer::Hold,
            ("GET", p) if p == pods => {
                assert!(uri.contains(&format!("metadata.name={POD}")), "{uri}");
                Answer::json(list("v1", "Pod", vec![pod(status.clone())]))
            }
            ("GET", p) if p == format!("{pods}/{POD}/log") => {
                assert!(uri.contains("container=client"), "{uri}");
                Answer::Body(200, LOG.as_bytes().to_vec())
            }
            ("GET", p) if p == format!("{pods}/{POD}") => Answer::json(pod(status.clone())),
            ("DELETE", p) if p == format!("{pods}/{POD}") => Answer::json(pod(status.clone())),
            _ => Answer::Body(
                404,
                br#"{"kind":"Status","code":404,"message":"not scripted"}"#.to_vec(),
            ),
        }
    });
    let config = RunConfig {
        resource_timeout: multinet_proto::config::GoDuration::from_secs(2),
        ..RunConfig::default()
    };
    let names = RunNames::new(RUN);
    let mut backend = KubeBackend::new(KubeBackendSpec {
        client,
        run_id: RUN.into(),
        config,
        image: "ghcr.io/multinet/multinet:test".into(),
        public: None,
        cluster: None,
        owner: Owner {
            name: names.owner(),
            uid: "owner-uid".into(),
        },
        owner_role: OwnerRole::Outside,
        pod_ip: "10.0.0.9".parse().expect("ip"),
        nodes: vec![NodePlan {
            name: "w1".into(),
            node_type: "storage".into(),
        }],
        nads: Vec::new(),
        resumable: false,
    });
    let ran = backend
        .run_bench_client(
            "w1",
            CephNetwork::Public,
            vec!["bench".into(), "client".into()],
            Duration::from_secs(3),
        )
        .await
        .map(|r| {
            assert_eq!(r.pod, POD);
            assert_eq!(r.failed, None);
            r.log
        });
    drop(backend);
    let seen = server.await.expect("fake API server");
    let requests = seen
        .into_iter()
        .filter(|s| !s.uri.contains("watch=true"))
        .map(|s| {
            (
                s.method,
                s.uri.split('?').next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let created = created.lock().expect("created").clone();
    (ran, requests, created)
}

#[tokio::test]
async fn a_client_pod_is_created_watched_to_its_end_its_log_read_and_deleted() {
    let (ran, requests, created) = one_path(json!({"phase": "Succeeded"})).await;
    assert_eq!(ran.as_deref(), Ok(LOG));
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    let log = format!("{pods}/{POD}/log");
    let this = format!("{pods}/{POD}");
    assert_eq!(
        requests,
        [
            ("POST".to_string(), pods.clone()),
            ("GET".to_string(), pods),
            ("GET".to_string(), log),
            ("DELETE".to_string(), this),
        ],
    );
    // What was created: the run's client pod, pinned, never restarted, bounded.
    assert_eq!(created["metadata"]["name"], POD);
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/component"],
        "bench-client"
    );
    assert_eq!(created["spec"]["restartPolicy"], "Never");
    assert_eq!(created["spec"]["activeDeadlineSeconds"], 3);
    assert_eq!(created["spec"]["containers"][0]["name"], "client");
}

#[tokio::test]
async fn a_client_pod_that_cannot_be_scheduled_gives_the_reason_and_is_deleted() {
    let (ran, requests, _) = one_path(json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu."}]
    }))
    .await;
    let error = ran.expect_err("never runs");
    assert!(
        error.contains("is unschedulable") && error.contains("Insufficient cpu"),
        "{error}"
    );
    assert_eq!(
        requests.last().map(|(m, p)| (m.as_str(), p.as_str())),
        Some((
            "DELETE",
            format!("/api/v1/namespaces/{NS}/pods/{POD}").as_str()
        )),
        "{requests:?}"
    );
}
