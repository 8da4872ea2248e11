//! The Kubernetes scheduler creating a run's objects, against a scripted API server: the
//! exact requests, in order, and what they carry.

use multinet_coordinator::backend::kube::backend::OwnerRole;
use multinet_coordinator::pki::RunPki;
use multinet_coordinator::scheduler::{PodStatus, Scheduler};
use multinet_proto::config::parse_run_config;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::multus::selection::parse_single_selection;
use multinet_proto::network::CephNetwork;
use multinet_tests::kube::{self, RUN};
use multinet_tests::mock::{Exchange, serve};
use serde_json::json;

const NS: &str = "rook-ceph";
const REFUSAL: &str = "pods \"multinet-0a1b2c3d4e-w2-osd-0\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=20, limited: pods=20";

fn created(kind: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": NS, "uid": "u"}})
}

#[tokio::test]
async fn placing_a_run_creates_these_objects_in_this_order() {
    let (config, problems) = parse_run_config(
        "publicNetwork: public-net\nclusterNetwork: cluster-net\nnodeTypes:\n  all:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 1\n",
    )
    .expect("yaml");
    assert!(problems.is_valid());
    let base = format!("/api/v1/namespaces/{NS}");
    let (client, server) = serve(vec![
        Exchange::ok(
            "POST",
            format!("{base}/secrets"),
            created("Secret", "multinet-0a1b2c3d4e-tls"),
        ),
        Exchange::ok(
            "POST",
            format!("{base}/configmaps"),
            created("ConfigMap", "multinet-0a1b2c3d4e-agents"),
        ),
        Exchange::ok(
            "POST",
            format!("{base}/pods"),
            created("Pod", "multinet-0a1b2c3d4e-server"),
        ),
        Exchange::ok(
            "POST",
            format!("/apis/apps/v1/namespaces/{NS}/daemonsets"),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "multinet-0a1b2c3d4e-host-all"},
                   "spec": {"selector": {}, "template": {}}}),
        ),
        Exchange::ok(
            "POST",
            format!("{base}/pods"),
            created("Pod", "multinet-0a1b2c3d4e-w1-osd-0"),
        ),
        Exchange::ok(
            "POST",
            format!("{base}/pods"),
            created("Pod", "multinet-0a1b2c3d4e-w1-other-0"),
        ),
        Exchange::forbidden("POST", format!("{base}/pods"), REFUSAL),
    ]);
    let sel = |t: &str| Some(parse_single_selection(t, NS).expect("selection").0);
    let mut backend = kube::backend(
        client,
        config,
        (sel("public-net"), sel("cluster-net")),
        OwnerRole::Ours,
        &[("w1", "all"), ("w2", "all")],
    );
    let pki = RunPki::new(RUN).expect("pki");
    let run_dir = std::env::temp_dir();
    let env = kube::agent_env(&pki, &run_dir);
    let both = vec![CephNetwork::Public, CephNetwork::Cluster];
    let plans = [
        AgentIdentity {
            pod: "server".into(),
            node: "w1".into(),
            role: Role::Server,
            networks: both.clone(),
        },
        AgentIdentity {
            pod: "host-w1".into(),
            node: "w1".into(),
            role: Role::HostCheck,
            networks: vec![],
        },
        AgentIdentity {
            pod: "host-w2".into(),
            node: "w2".into(),
            role: Role::HostCheck,
            networks: vec![],
        },
        AgentIdentity {
            pod: "client-w1-osd-0".into(),
            node: "w1".into(),
            role: Role::Client,
            networks: both.clone(),
        },
        AgentIdentity {
            pod: "client-w1-other-0".into(),
            node: "w1".into(),
            role: Role::Client,
            networks: vec![CephNetwork::Public],
        },
    ];
    for plan in &plans {
        let status = backend.start(plan, &env).await.expect("start");
        assert_eq!(status, PodStatus::Started(Vec::new()), "{}", plan.pod);
    }
    // A pod the API server refuses is that pod's fate, with the refusal; the run goes on.
    let refused = AgentIdentity {
        pod: "client-w2-osd-0".into(),
        node: "w2".into(),
        role: Role::Client,
        networks: both.clone(),
    };
    assert_eq!(
        backend.start(&refused, &env).await.expect("start"),
        PodStatus::NotStarted {
            reason: format!("the API server refused pod multinet-0a1b2c3d4e-w2-osd-0: {REFUSAL}")
        }
    );
    drop(backend);
    let seen = server
        .await
        .expect("mock")
        .expect("every request as scripted");

    // The Secret carries the run CA and one agent certificate, as base64 PEM.
    let secret = seen[0].body.as_ref().expect("secret");
    assert_eq!(secret["metadata"]["name"], "multinet-0a1b2c3d4e-tls");
    assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "owner-uid");
    assert!(
        secret["data"]["ca.crt"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    // The agents' settings point at this pod's IP.
    let settings = seen[1].body.as_ref().expect("configmap");
    let run_json: serde_json::Value =
        serde_json::from_str(settings["data"]["run.json"].as_str().expect("run.json"))
            .expect("json");
    assert_eq!(run_json["coordinator"], "10.244.0.9:7443");
    assert_eq!(run_json["run_id"], RUN);
    // The server is pinned to its node by name, asks Multus for both networks on named
    // interfaces, and says which agent it runs.
    let server_pod = seen[2].body.as_ref().expect("server");
    let on_nodes = |spec: &serde_json::Value| {
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0]
            .clone()
    };
    assert_eq!(
        on_nodes(&server_pod["spec"]),
        json!({"key": "metadata.name", "operator": "In", "values": ["w1"]})
    );
    assert_eq!(
        server_pod["metadata"]["annotations"]["multinet.io/agent"],
        "server"
    );
    assert_eq!(
        server_pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
        r#"[{"name":"public-net","namespace":"rook-ceph","interface":"public"},{"name":"cluster-net","namespace":"rook-ceph","interface":"cluster"}]"#
    );
    assert_eq!(server_pod["spec"]["restartPolicy"], "Never");
    // One host-check DaemonSet for the node type, whatever the number of its nodes, kept to
    // the run's nodes of that type: one term per node (terms are ORed), as the API server
    // allows exactly one value in a node field selector (Kubernetes
    // pkg/apis/core/validation/validation.go, validateNodeFieldSelectorRequirement: "must be
    // only one value when `operator` is 'In' or 'NotIn' for node field selector").
    let ds = seen[3].body.as_ref().expect("daemonset");
    assert_eq!(ds["spec"]["template"]["spec"]["hostNetwork"], true);
    assert_eq!(
        ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"],
        json!([
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["w1"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["w2"]}]}
        ])
    );
    // Clients: an OSD client on both networks, another daemon's on public only.
    let osd = seen[4].body.as_ref().expect("osd client");
    assert_eq!(osd["metadata"]["name"], "multinet-0a1b2c3d4e-w1-osd-0");
    assert_eq!(
        osd["metadata"]["annotations"]["multinet.io/agent"],
        "client-w1-osd-0"
    );
    let other = seen[5].body.as_ref().expect("other client");
    assert_eq!(
        other["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
        r#"[{"name":"public-net","namespace":"rook-ceph","interface":"public"}]"#
    );
    assert_eq!(seen.len(), 7);
}

/// `start_all` creates the pods of a stage several at a time; whatever order the API server
/// answers in, each pod gets its own outcome, and a refusal stays that one pod's fate.
#[tokio::test]
async fn starting_a_stage_at_once_gives_each_pod_its_own_outcome() {
    use multinet_tests::mock::{Answer, serve_routes};
    let (config, problems) = parse_run_config(
        "publicNetwork: public-net\nnodeTypes:\n  all:\n    osdsPerNode: 2\n    otherDaemonsPerNode: 0\n",
    )
    .expect("yaml");
    assert!(problems.is_valid());
    let refused_pod = "multinet-0a1b2c3d4e-w2-osd-1";
    let (client, server) = serve_routes(move |method, uri, body| {
        let name = body
            .and_then(|b| b["metadata"]["name"].as_str())
            .unwrap_or_default()
            .to_string();
        if method == "POST" && name == refused_pod {
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "Forbidden", "code": 403, "message": REFUSAL});
            return Answer::Body(403, serde_json::to_vec(&status).unwrap_or_default());
        }
        let kind = if uri.contains("/daemonsets") {
            return Answer::json(
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                       "spec": {"selector": {}, "template": {}}}),
            );
        } else if uri.contains("/secrets") {
            "Secret"
        } else if uri.contains("/configmaps") {
            "ConfigMap"
        } else {
            "Pod"
        };
        Answer::json(created(kind, &name))
    });
    let sel = |t: &str| Some(parse_single_selection(t, NS).expect("selection").0);
    let mut backend = kube::backend(
        client,
        config,
        (sel("public-net"), None),
        OwnerRole::Ours,
        &[("w1", "all"), ("w2", "all")],
    );
    let pki = RunPki::new(RUN).expect("pki");
    let run_dir = std::env::temp_dir();
    let env = kube::agent_env(&pki, &run_dir);
    let mut plans = Vec::new();
    for node in ["w1", "w2"] {
        plans.push(AgentIdentity {
            pod: format!("host-{node}"),
            node: node.into(),
            role: Role::HostCheck,
            networks: vec![],
        });
        for i in 0..2 {
            plans.push(AgentIdentity {
                pod: format!("client-{node}-osd-{i}"),
                node: node.into(),
                role: Role::Client,
                networks: vec![CephNetwork::Public],
            });
        }
    }
    let statuses = backend.start_all(&plans, &env).await.expect("start_all");
    assert_eq!(statuses.len(), plans.len());
    for (plan, status) in plans.iter().zip(&statuses) {
        if plan.pod == "client-w2-osd-1" {
            assert_eq!(
                *status,
                PodStatus::NotStarted {
                    reason: format!("the API server refused pod {refused_pod}: {REFUSAL}")
                },
            );
        } else {
            assert_eq!(*status, PodStatus::Started(Vec::new()), "{}", plan.pod);
        }
    }
    drop(backend);
    let seen = server.await.expect("mock");
    let mut pods: Vec<String> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.uri.contains("/pods"))
        .filter_map(|s| {
            s.body.as_ref()?["metadata"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    pods.sort();
    assert_eq!(
        pods,
        [
            "multinet-0a1b2c3d4e-w1-osd-0",
            "multinet-0a1b2c3d4e-w1-osd-1",
            "multinet-0a1b2c3d4e-w2-osd-0",
            refused_pod,
        ],
        "each client pod created once"
    );
    // The shared objects come first, once: the pods' volumes name them.
    let posts: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| s.uri.as_str())
        .collect();
    assert!(
        posts[0].contains("/secrets") && posts[1].contains("/configmaps"),
        "{posts:?}"
    );
    assert_eq!(posts.iter().filter(|u| u.contains("/secrets")).count(), 1);
}

/// A mesh run's responders: one pod per identity `server-<node>`, named after its node
/// (bounded for a long node name), running that agent on the networks the supervisor gave it,
/// asking Multus for those, pinned to its node; and a server name that is neither the single
/// server's nor its node's responder is refused before anything is created.
#[tokio::test]
async fn a_mesh_creates_one_responder_pod_per_node_as_its_identity_says() {
    use multinet_tests::mock::{Answer, serve_routes};
    let (config, problems) = parse_run_config(
        "publicNetwork: public-net\nclusterNetwork: cluster-net\nmesh: true\nnodeTypes:\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 0\n    placement:\n      nodeSelector: {role: storage}\n  arbiter:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 1\n    placement:\n      nodeSelector: {role: arbiter}\n",
    )
    .expect("yaml");
    assert!(problems.is_valid(), "{problems:?}");
    let (client, server) = serve_routes(move |_, uri, body| {
        let name = body
            .and_then(|b| b["metadata"]["name"].as_str())
            .unwrap_or_default()
            .to_string();
        let kind = if uri.contains("/secrets") {
            "Secret"
        } else if uri.contains("/configmaps") {
            "ConfigMap"
        } else {
            "Pod"
        };
        Answer::json(created(kind, &name))
    });
    let long = format!("{}.example.com", "storage-a".repeat(26));
    let sel = |t: &str| Some(parse_single_selection(t, NS).expect("selection").0);
    let mut backend = kube::backend(
        client,
        config,
        (sel("public-net"), sel("cluster-net")),
        OwnerRole::Ours,
        &[("w1", "storage"), (&long, "storage"), ("a1", "arbiter")],
    );
    let pki = RunPki::new(RUN).expect("pki");
    let run_dir = std::env::temp_dir();
    let env = kube::agent_env(&pki, &run_dir);
    let both = vec![CephNetwork::Public, CephNetwork::Cluster];
    let responder = |node: &str, networks: &[CephNetwork]| AgentIdentity {
        pod: format!("server-{node}"),
        node: node.into(),
        role: Role::Server,
        networks: networks.to_vec(),
    };
    // Not the responder of its node: refused by name, nothing created.
    let stray = AgentIdentity {
        pod: "server-w2".into(),
        ..responder("w1", &both)
    };
    let refused = backend
        .start_all(std::slice::from_ref(&stray), &env)
        .await
        .expect_err("a server named after another node");
    assert_eq!(
        refused.to_string(),
        "unexpected server name server-w2 on node w1: expected server or server-w1"
    );
    let plans = [
        responder("w1", &both),
        responder(&long, &both),
        responder("a1", &[CephNetwork::Public]),
    ];
    let statuses = backend.start_all(&plans, &env).await.expect("start_all");
    assert!(
        statuses
            .iter()
            .all(|s| *s == PodStatus::Started(Vec::new())),
        "{statuses:?}"
    );
    drop(backend);
    let seen = server.await.expect("mock");
    let pods: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.uri.contains("/pods"))
        .filter_map(|s| s.body.as_ref())
        .collect();
    assert_eq!(pods.len(), 3, "one pod per responder, the stray none");
    let by_agent = |agent: &str| {
        pods.iter()
            .find(|p| p["metadata"]["annotations"]["multinet.io/agent"] == agent)
            .unwrap_or_else(|| panic!("a pod of agent {agent}"))
    };
    let args = |pod: &serde_json::Value| -> Vec<String> {
        pod["spec"]["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    };
    let pinned = |pod: &serde_json::Value| {
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"]
            .clone()
    };
    let w1 = by_agent("server-w1");
    assert_eq!(w1["metadata"]["name"], "multinet-0a1b2c3d4e-w1-server");
    assert_eq!(
        args(w1)[4..],
        [
            "--name",
            "server-w1",
            "--node",
            "$(NODE_NAME)",
            "--networks",
            "public,cluster"
        ]
    );
    assert_eq!(
        w1["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
        r#"[{"name":"public-net","namespace":"rook-ceph","interface":"public"},{"name":"cluster-net","namespace":"rook-ceph","interface":"cluster"}]"#
    );
    assert_eq!(
        pinned(w1),
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["w1"]}]}])
    );
    assert_eq!(w1["spec"]["nodeSelector"], json!({"role": "storage"}));
    assert_eq!(
        w1["metadata"]["labels"]["app.kubernetes.io/component"],
        "server"
    );
    let a1 = by_agent("server-a1");
    assert_eq!(a1["metadata"]["name"], "multinet-0a1b2c3d4e-a1-server");
    assert_eq!(args(a1)[8..], ["--networks", "public"]);
    assert_eq!(
        a1["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
        r#"[{"name":"public-net","namespace":"rook-ceph","interface":"public"}]"#
    );
    assert_eq!(a1["spec"]["nodeSelector"], json!({"role": "arbiter"}));
    assert_eq!(a1["metadata"]["labels"]["multinet.io/node-type"], "arbiter");
    // A 253-character node: a pod name Kubernetes takes, the node and agent named in full.
    let agent = format!("server-{long}");
    let far = by_agent(&agent);
    let name = far["metadata"]["name"].as_str().expect("name");
    assert!(
        name.len() <= 253
            && name.ends_with("-server")
            && multinet_proto::names::dns1123_subdomain(name).is_ok(),
        "{name}"
    );
    assert_eq!(args(far)[5], agent);
    assert_eq!(
        pinned(far),
        json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [long]}]}])
    );
}
