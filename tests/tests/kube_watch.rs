//! The in-cluster scheduler learning what becomes of its pods from watches, against a fake
//! API server: a sandbox failure that persists becomes no address on the network its message
//! names; an agent container that restarted is gone; events are asked for by kind.

use std::time::Duration;

use multinet_coordinator::backend::kube::backend::OwnerRole;
use multinet_coordinator::scheduler::{PodStatus, Scheduler};
use multinet_proto::config::RunConfig;
use multinet_proto::multus::selection::parse_single_selection;
use multinet_proto::network::CephNetwork;
use multinet_tests::eventually::eventually_async;
use multinet_tests::mock::{Answer, list, serve_routes};
use serde_json::{Value, json};

const NS: &str = "rook-ceph";
const SANDBOX: &str = "Failed to create pod sandbox: plugin type=\"multus\" failed (add): [rook-ceph/multinet-0a1b2c3d4e-w2-osd-0/abc:cluster-net]: error adding container to network \"cluster-net\": Could not allocate IP in range";

fn pod(name: &str, agent: &str, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": NS,
                        "annotations": {"multinet.io/agent": agent},
                        "labels": {"multinet.io/run": "0a1b2c3d4e", "app.kubernetes.io/component": "client"}},
           "spec": {"nodeName": "w2", "containers": [{"name": "agent"}]},
           "status": status})
}

fn event(object: &str, reason: &str, message: &str, count: i32) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
           "metadata": {"name": format!("{object}.{count}"), "namespace": NS},
           "involvedObject": {"kind": "Pod", "name": object},
           "reason": reason, "message": message, "count": count})
}

#[tokio::test]
async fn pod_facts_come_from_the_pod_and_event_watches() {
    let (client, server) = serve_routes(|method, uri, _| {
        let path = uri.split('?').next().unwrap_or_default();
        match (method, path) {
            ("GET", _) if uri.contains("watch=true") => Answer::Hold,
            ("GET", "/api/v1/namespaces/rook-ceph/pods") => {
                assert!(
                    uri.contains("multinet.io/run=0a1b2c3d4e")
                        && uri
                            .contains("app.kubernetes.io/component in (server,client,host-check)"),
                    "only the run's agent pods: {uri}"
                );
                Answer::json(list(
                    "v1",
                    "Pod",
                    vec![
                        pod(
                            "multinet-0a1b2c3d4e-w2-osd-0",
                            "client-w2-osd-0",
                            json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0,
                               "image": "i", "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                        ),
                        pod(
                            "multinet-0a1b2c3d4e-w2-other-0",
                            "client-w2-other-0",
                            json!({"phase": "Running", "containerStatuses": [{"name": "agent", "ready": true, "restartCount": 1,
                               "image": "i", "imageID": "", "state": {"running": {}},
                               "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                        ),
                    ],
                ))
            }
            ("GET", "/api/v1/namespaces/rook-ceph/events")
                if uri.contains("involvedObject.kind=DaemonSet") =>
            {
                Answer::json(list("v1", "Event", Vec::new()))
            }
            // Only asked for by kind (a 404 below otherwise, and no fact would come).
            ("GET", "/api/v1/namespaces/rook-ceph/events")
                if uri.contains("involvedObject.kind=Pod") =>
            {
                Answer::json(list(
                    "v1",
                    "Event",
                    vec![
                        event(
                            "multinet-0a1b2c3d4e-w2-osd-0",
                            "FailedCreatePodSandBox",
                            SANDBOX,
                            3,
                        ),
                        // Another run's pod of the same name pattern: not ours.
                        event(
                            "multinet-ffffffffff-w2-other-0",
                            "FailedCreatePodSandBox",
                            SANDBOX,
                            9,
                        ),
                    ],
                ))
            }
            _ => Answer::Body(404, br#"{"kind":"Status","code":404}"#.to_vec()),
        }
    });
    let sel = |t: &str| Some(parse_single_selection(t, NS).expect("selection").0);
    let mut backend = multinet_tests::kube::backend(
        client,
        RunConfig::default(),
        (sel("public-net"), sel("cluster-net")),
        OwnerRole::Outside,
        &[("w2", "all")],
    );
    backend.watch();
    // The watches fill their stores as the lists arrive: ask until they have (bounded). Each
    // answer is told once, so what came is kept across the looks.
    let mut facts = Vec::new();
    let mut exited = Vec::new();
    eventually_async(
        Duration::from_secs(5),
        "a pod's fact and an exited container",
        async || {
            facts.extend(backend.facts().await);
            exited.extend(backend.exited().await);
            if !facts.is_empty() && !exited.is_empty() {
                Ok(())
            } else {
                Err((facts.clone(), exited.clone()))
            }
        },
    )
    .await;
    assert_eq!(
        facts,
        vec![(
            "client-w2-osd-0".to_string(),
            PodStatus::NoAddress {
                network: CephNetwork::Cluster,
                reason: SANDBOX.into()
            }
        )]
    );
    assert_eq!(exited.len(), 1, "{exited:?}");
    assert_eq!(exited[0].0, "client-w2-other-0");
    assert!(
        exited[0]
            .1
            .contains("restarted 1 time(s): exit code 137 (OOMKilled)"),
        "{exited:?}"
    );
    // Told once: asking again adds nothing.
    assert!(backend.facts().await.is_empty());
    assert!(backend.exited().await.is_empty());
    backend.cleanup().await.expect("cleanup");
    drop(backend);
    server.await.expect("fake API server");
}
