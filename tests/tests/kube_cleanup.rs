//! `multinet cleanup` against a scripted API server: the owner is deleted in the foreground,
//! never forced, and waited for.

use std::time::Duration;

use multinet_coordinator::backend::kube::cleanup::cleanup_runs;
use multinet_tests::mock::{Exchange, list, serve};
use serde_json::json;

const NS: &str = "rook-ceph";

fn owner(run: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": format!("multinet-{run}"), "namespace": NS, "uid": "u-1",
                        "labels": {"app.kubernetes.io/part-of": "multinet",
                                   "app.kubernetes.io/component": "owner",
                                   "multinet.io/run": run}}})
}

fn owner_path(run: &str) -> String {
    format!("/api/v1/namespaces/{NS}/configmaps/multinet-{run}")
}

#[tokio::test]
async fn each_leftover_run_is_deleted_in_the_foreground_and_waited_for() {
    let (client, server) = serve(vec![
        Exchange::ok(
            "GET",
            format!("/api/v1/namespaces/{NS}/configmaps"),
            list("v1", "ConfigMap", vec![owner("0a1b2c3d4e")]),
        )
        .with_query(
            "labelSelector=app.kubernetes.io/part-of=multinet,app.kubernetes.io/component=owner",
        ),
        // The delete answers with the owner, now marked for deletion.
        Exchange::ok("DELETE", owner_path("0a1b2c3d4e"), owner("0a1b2c3d4e")),
        // Still there while the garbage collector removes its pods first …
        Exchange::ok("GET", owner_path("0a1b2c3d4e"), owner("0a1b2c3d4e")),
        // … then gone.
        Exchange::not_found("GET", owner_path("0a1b2c3d4e")),
    ]);
    let lines = cleanup_runs(&client, NS, None, Duration::from_secs(30))
        .await
        .expect("cleanup");
    let seen = server.await.expect("mock").expect("as scripted");
    assert_eq!(
        lines,
        [
            "run 0a1b2c3d4e: removed (ConfigMap rook-ceph/multinet-0a1b2c3d4e and every object it owned)"
        ]
    );
    let delete = seen[1].body.as_ref().expect("delete options");
    assert_eq!(delete["propagationPolicy"], "Foreground");
    assert!(
        delete.get("gracePeriodSeconds").is_none(),
        "never forced: the default grace period lets CNI DEL release addresses: {delete}"
    );
}

#[tokio::test]
async fn one_run_by_id_and_nothing_to_do() {
    let (client, server) = serve(vec![
        Exchange::ok(
            "GET",
            format!("/api/v1/namespaces/{NS}/configmaps"),
            list("v1", "ConfigMap", vec![]),
        )
        .with_query("multinet.io/run=0a1b2c3d4e"),
    ]);
    let lines = cleanup_runs(&client, NS, Some("0a1b2c3d4e"), Duration::from_secs(30))
        .await
        .expect("cleanup");
    server.await.expect("mock").expect("as scripted");
    assert_eq!(
        lines,
        ["no objects of run 0a1b2c3d4e in namespace rook-ceph"]
    );
}

#[tokio::test]
async fn objects_that_outlive_the_timeout_are_reported() {
    let (client, server) = serve(vec![
        Exchange::ok(
            "GET",
            format!("/api/v1/namespaces/{NS}/configmaps"),
            list("v1", "ConfigMap", vec![owner("0a1b2c3d4e")]),
        ),
        Exchange::ok("DELETE", owner_path("0a1b2c3d4e"), owner("0a1b2c3d4e")),
        Exchange::ok("GET", owner_path("0a1b2c3d4e"), owner("0a1b2c3d4e")),
        Exchange::ok("GET", owner_path("0a1b2c3d4e"), owner("0a1b2c3d4e")),
    ]);
    let e = cleanup_runs(&client, NS, None, Duration::from_millis(400))
        .await
        .expect_err("timed out");
    server.await.expect("mock").expect("as scripted");
    assert!(
        e.to_string().contains("ConfigMap rook-ceph/multinet-0a1b2c3d4e and the objects it owns were not gone within 400ms"),
        "{e}"
    );
    // What to look at, not the command that finishes it: the caller gives that, once.
    assert!(!e.to_string().contains("multinet cleanup"), "{e}");
}

#[tokio::test]
async fn the_coordinator_job_of_an_outside_run_asks_its_agents_to_go_and_never_fails_on_it() {
    use multinet_coordinator::backend::kube::backend::OwnerRole;
    use multinet_coordinator::pki::RunPki;
    use multinet_coordinator::scheduler::Scheduler;
    use multinet_proto::control::{AgentIdentity, Role};
    use multinet_proto::network::CephNetwork;
    let base = format!("/api/v1/namespaces/{NS}");
    let created = |kind: &str, name: &str| json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": NS}});
    let (client, server) = serve(vec![
        Exchange::ok("POST", format!("{base}/secrets"), created("Secret", "s")),
        Exchange::ok(
            "POST",
            format!("{base}/configmaps"),
            created("ConfigMap", "c"),
        ),
        Exchange::ok(
            "POST",
            format!("{base}/pods"),
            created("Pod", "multinet-0a1b2c3d4e-w1-osd-0"),
        ),
        Exchange::ok(
            "POST",
            format!("/apis/apps/v1/namespaces/{NS}/daemonsets"),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "multinet-0a1b2c3d4e-host-all"},
                   "spec": {"selector": {}, "template": {}}}),
        ),
        // Cleanup: the pod (a refusal is only said), then the DaemonSet; never the owner.
        Exchange::forbidden(
            "DELETE",
            format!("{base}/pods/multinet-0a1b2c3d4e-w1-osd-0"),
            "pods is forbidden: cannot delete",
        ),
        Exchange::ok(
            "DELETE",
            format!("/apis/apps/v1/namespaces/{NS}/daemonsets/multinet-0a1b2c3d4e-host-all"),
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
    ]);
    let (config, _) = multinet_proto::config::parse_run_config(
        "publicNetwork: public-net\nnodeTypes:\n  all: {osdsPerNode: 1, otherDaemonsPerNode: 0}\n",
    )
    .expect("config");
    let mut backend = multinet_tests::kube::backend(
        client,
        config,
        (None, None),
        OwnerRole::Outside,
        &[("w1", "all")],
    );
    let pki = RunPki::new("0a1b2c3d4e").expect("pki");
    let run_dir = std::env::temp_dir();
    let env = multinet_tests::kube::agent_env(&pki, &run_dir);
    for (pod, role) in [
        ("client-w1-osd-0", Role::Client),
        ("host-w1", Role::HostCheck),
    ] {
        backend
            .start(
                &AgentIdentity {
                    pod: pod.into(),
                    node: "w1".into(),
                    role,
                    networks: vec![CephNetwork::Public],
                },
                &env,
            )
            .await
            .expect("start");
    }
    // The command outside the cluster removes the owner (and the report with it) once it has
    // the report; the Job's coordinator only stops what would go on running or holding
    // addresses without it, and a refusal to delete does not fail the run.
    backend.cleanup().await.expect("cleanup");
    drop(backend);
    let seen = server
        .await
        .expect("mock")
        .expect("every request as scripted");
    assert_eq!(seen.len(), 6);
    assert!(
        seen[4..].iter().all(|s| s
            .body
            .as_ref()
            .is_none_or(|b| b["gracePeriodSeconds"].is_null())),
        "never forced: {seen:?}"
    );
}
