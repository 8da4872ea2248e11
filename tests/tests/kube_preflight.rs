//! The Kubernetes preflight against a scripted API server: the exact requests of a healthy
//! preflight, and each failure it must name.

use multinet_coordinator::backend::kube::preflight::{
    PERMISSIONS, Problem, Purpose, Scope, Who, preflight,
};
use multinet_proto::config::{RunConfig, parse_run_config};
use multinet_proto::multus::selection::parse_single_selection;
use multinet_proto::network::CephNetwork;
use multinet_tests::mock::{Exchange, access, list, nad, node, node_in_state, serve};
use serde_json::json;

const NS: &str = "rook-ceph";
const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
const MACVLAN: &str = r#"{"cniVersion":"0.3.1","type":"macvlan","master":"eth1","mode":"bridge","ipam":{"type":"whereabouts","range":"192.168.20.0/24"}}"#;

fn coordinator_permissions() -> usize {
    PERMISSIONS.iter().filter(|p| p.who != Who::Cli).count()
}

fn allowed_all() -> Vec<Exchange> {
    (0..coordinator_permissions())
        .map(|_| Exchange::ok("POST", SSAR, access(true)))
        .collect()
}

fn config(text: &str) -> RunConfig {
    let (c, problems) = parse_run_config(text).expect("yaml");
    assert!(problems.is_valid(), "{problems:?}");
    c
}

fn converged() -> RunConfig {
    config(
        "publicNetwork: public-net\nclusterNetwork: cluster-net\nnodeTypes:\n  all:\n    osdsPerNode: 3\n    otherDaemonsPerNode: 16\n",
    )
}

/// The run's preflight of `c` (its selections, no run of its own yet) as `who`.
async fn run_preflight(
    client: &kube::Client,
    c: &RunConfig,
    who: Who,
) -> (
    multinet_coordinator::backend::kube::preflight::Preflight,
    Vec<Problem>,
) {
    preflight(client, c, &selections(c), who, None, Purpose::Run)
        .await
        .expect("preflight")
}

fn selections(
    c: &RunConfig,
) -> Vec<(
    CephNetwork,
    multinet_proto::multus::selection::NetworkSelection,
)> {
    let mut out = Vec::new();
    for (n, text) in [
        (CephNetwork::Public, &c.public_network),
        (CephNetwork::Cluster, &c.cluster_network),
    ] {
        if !text.is_empty() {
            out.push((
                n,
                parse_single_selection(text, &c.namespace)
                    .expect("selection")
                    .0,
            ));
        }
    }
    out
}

fn owners_none() -> Exchange {
    Exchange::ok(
        "GET",
        format!("/api/v1/namespaces/{NS}/configmaps"),
        list("v1", "ConfigMap", vec![]),
    )
    .with_query(
        "labelSelector=app.kubernetes.io/part-of=multinet,app.kubernetes.io/component=owner",
    )
}

/// The test pods' ServiceAccount (the configuration's `serviceAccountName`), present.
fn service_account(name: &str) -> Exchange {
    Exchange::ok(
        "GET",
        format!("/api/v1/namespaces/{NS}/serviceaccounts/{name}"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NS}}),
    )
}

fn nad_get(name: &str, config: &str) -> Exchange {
    Exchange::ok(
        "GET",
        format!("/apis/k8s.cni.cncf.io/v1/namespaces/{NS}/network-attachment-definitions/{name}"),
        nad(NS, name, config),
    )
}

/// The taints the node lifecycle controller puts on a node whose Ready condition is False
/// (`not-ready`) or Unknown (`unreachable`): NoSchedule and NoExecute.
fn not_ready_taints(key: &str) -> serde_json::Value {
    json!([
        {"key": format!("node.kubernetes.io/{key}"), "effect": "NoSchedule"},
        {"key": format!("node.kubernetes.io/{key}"), "effect": "NoExecute", "timeAdded": "2026-11-29T04:00:00Z"}
    ])
}

fn nodes(items: Vec<serde_json::Value>) -> Exchange {
    Exchange::ok("GET", "/api/v1/nodes", list("v1", "Node", items))
}

#[tokio::test]
async fn a_healthy_preflight_asks_exactly_this_and_plans_the_ready_nodes() {
    let mut script = allowed_all();
    script.extend([
        owners_none(),
        service_account("rook-ceph-system"),
        nad_get("public-net", MACVLAN),
        nad_get(
            "cluster-net",
            &MACVLAN.replace("192.168.20.0/24", "192.168.30.0/24"),
        ),
        nodes(vec![
            node("w1", json!({}), json!([]), true, false),
            node("w2", json!({}), json!([]), true, false),
            // As a real API server shows them: Kubernetes taints NotReady, unreachable and
            // cordoned nodes itself (pkg/controller/nodelifecycle/node_lifecycle_controller.go:
            // nodeConditionToTaintKeyStatusMap and doNoScheduleTaintingPass for NoSchedule,
            // NotReadyTaintTemplate / UnreachableTaintTemplate for NoExecute). Those taints
            // are the node's state, not its node type: each node is named and left out.
            node("w3", json!({}), not_ready_taints("not-ready"), false, false),
            node(
                "w4",
                json!({}),
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
                true,
                true,
            ),
            node_in_state(
                "w5",
                json!({}),
                not_ready_taints("unreachable"),
                "Unknown",
                false,
            ),
            // Tainted by the controller before its condition is seen: still said.
            node(
                "w6",
                json!({}),
                json!([{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]),
                true,
                false,
            ),
            node(
                "cp",
                json!({}),
                json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                true,
                false,
            ),
        ]),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (found, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    let seen = server
        .await
        .expect("mock")
        .expect("every request as scripted");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        found
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["w1", "w2"],
        "the tainted control plane is in no node type"
    );
    assert_eq!(
        found.left_out,
        [
            "node w3 (node type all) is NotReady: left out",
            "node w4 (node type all) is cordoned: left out",
            "node w5 (node type all) is unreachable (its Ready condition is Unknown: the kubelet stopped reporting): left out",
            "node w6 (node type all) is under disk pressure (taint node.kubernetes.io/disk-pressure:NoSchedule): left out"
        ]
    );
    assert_eq!(found.nads.len(), 2);
    assert_eq!(
        found.nads[0].1.config.as_ref().map(|c| c.plugin.as_str()),
        Some("macvlan")
    );
    // Each access review asks about one verb of one resource in the run's namespace.
    let first = seen[0].body.as_ref().expect("review body");
    assert_eq!(
        first["spec"]["resourceAttributes"],
        json!({"group": "", "resource": "configmaps", "verb": "create", "namespace": NS})
    );
    let reviewed: Vec<String> = seen[..coordinator_permissions()]
        .iter()
        .map(|s| {
            let a = &s.body.as_ref().expect("body")["spec"]["resourceAttributes"];
            format!(
                "{} {}",
                a["verb"].as_str().unwrap_or("?"),
                a["resource"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert!(
        reviewed.contains(&"create pods".to_string()),
        "{reviewed:?}"
    );
    assert!(
        !reviewed.contains(&"create jobs".to_string()),
        "the CLI's, not the coordinator's: {reviewed:?}"
    );
    // 2 nodes × (3 + 16) + 1 = 39 public addresses: the /24 fits; no warning.
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
    assert_eq!(found.capacity[0].demand, 39);
}

#[tokio::test]
async fn a_missing_permission_is_named_with_its_rule_and_nothing_else_is_asked() {
    let mut script = allowed_all();
    // The fifth permission the coordinator needs is refused.
    let refused = PERMISSIONS
        .iter()
        .filter(|p| p.who != Who::Cli)
        .nth(4)
        .expect("five permissions");
    script[4] = Exchange::ok("POST", SSAR, access(false));
    let (client, server) = serve(script);
    let c = converged();
    let (_, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    server.await.expect("mock").expect("only the reviews");
    assert_eq!(problems, vec![Problem::Cluster(refused.describe(NS, NS))]);
    let Problem::Cluster(text) = &problems[0] else {
        unreachable!()
    };
    assert!(
        text.starts_with(&format!(
            "missing permission: {} {}",
            refused.verb, refused.resource
        )),
        "{text}"
    );
    assert!(text.contains("in namespace rook-ceph"), "{text}");
    assert!(
        text.contains(&format!("verbs: [\"{}\"]", refused.verb)),
        "{text}"
    );
}

#[tokio::test]
async fn a_previous_run_is_named_with_the_cleanup_command() {
    let mut script = allowed_all();
    script.extend([
        Exchange::ok(
            "GET",
            format!("/api/v1/namespaces/{NS}/configmaps"),
            list("v1", "ConfigMap", vec![json!({"metadata": {"name": "multinet-0a1b2c3d4e", "namespace": NS,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"multinet.io/run": "0a1b2c3d4e", "app.kubernetes.io/part-of": "multinet", "app.kubernetes.io/component": "owner"}}})]),
        ),
        // No coordinator Job, and older than any run lasts: left over.
        Exchange::not_found(
            "GET",
            format!("/apis/batch/v1/namespaces/{NS}/jobs/multinet-0a1b2c3d4e-coordinator"),
        ),
        service_account("rook-ceph-system"),
        nad_get("public-net", MACVLAN),
        nad_get("cluster-net", MACVLAN),
        nodes(vec![node("w1", json!({}), json!([]), true, false)]),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (_, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    server.await.expect("mock").expect("as scripted");
    assert_eq!(
        problems,
        vec![Problem::Cluster(
            "a previous run's objects are still present: ConfigMap rook-ceph/multinet-0a1b2c3d4e owns run 0a1b2c3d4e; remove them with `multinet cleanup -n rook-ceph --run 0a1b2c3d4e`".into()
        )]
    );
}

#[tokio::test]
async fn missing_and_unparseable_nads_are_invalid_input_naming_them() {
    let mut script = allowed_all();
    script.extend([
        owners_none(),
        service_account("rook-ceph-system"),
        Exchange::not_found(
            "GET",
            format!(
                "/apis/k8s.cni.cncf.io/v1/namespaces/{NS}/network-attachment-definitions/public-net"
            ),
        ),
        nad_get("cluster-net", "{\"type\": \"macvlan\", \"ipam\": "),
        nodes(vec![node("w1", json!({}), json!([]), true, false)]),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (_, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    server.await.expect("mock").expect("as scripted");
    assert_eq!(
        problems[0],
        Problem::Invalid(
            "publicNetwork: NetworkAttachmentDefinition rook-ceph/public-net does not exist".into()
        )
    );
    let Problem::Invalid(text) = &problems[1] else {
        panic!("{problems:?}")
    };
    assert!(
        text.starts_with("NetworkAttachmentDefinition rook-ceph/cluster-net: spec.config"),
        "{text}"
    );
}

#[tokio::test]
async fn overlapping_node_types_name_both_and_the_node() {
    let c = config(
        "publicNetwork: public-net\nnodeTypes:\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 0\n    placement:\n      nodeSelector: {storage: \"true\"}\n  workers:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 2\n    placement:\n      tolerations:\n        - {key: dedicated, operator: Equal, value: ceph, effect: NoSchedule}\n",
    );
    let mut script = allowed_all();
    script.extend([
        owners_none(),
        service_account("rook-ceph-system"),
        nad_get("public-net", MACVLAN),
        nodes(vec![
            node("s1", json!({"storage": "true"}), json!([]), true, false),
            // Tolerated by workers only: no overlap.
            node(
                "d1",
                json!({}),
                json!([{"key": "dedicated", "value": "ceph", "effect": "NoSchedule"}]),
                true,
                false,
            ),
            // A PreferNoSchedule taint does not keep pods away.
            node(
                "p1",
                json!({}),
                json!([{"key": "soft", "effect": "PreferNoSchedule"}]),
                true,
                false,
            ),
        ]),
    ]);
    let (client, server) = serve(script);
    let (found, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    server.await.expect("mock").expect("as scripted");
    // s1 was storage's only node: the overlap is the problem, not a missing node.
    assert_eq!(
        problems,
        vec![Problem::Invalid(
            "node types must not overlap: node s1 matches node type \"storage\" and node type \"workers\"".into()
        )]
    );
    assert_eq!(
        found
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.node_type.as_str()))
            .collect::<Vec<_>>(),
        [("d1", "workers"), ("p1", "workers")]
    );
}

#[tokio::test]
async fn a_range_too_small_for_the_worst_case_warns_with_the_arithmetic() {
    let mut script = allowed_all();
    script.extend([
        owners_none(),
        service_account("rook-ceph-system"),
        nad_get("public-net", &MACVLAN.replace("/24", "/27")),
        nad_get("cluster-net", MACVLAN),
        nodes(
            (1..=3)
                .map(|i| node(&format!("w{i}"), json!({}), json!([]), true, false))
                .collect(),
        ),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (found, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    server.await.expect("mock").expect("as scripted");
    assert!(problems.is_empty(), "{problems:?}");
    let public = &found.capacity[0];
    assert_eq!(
        (public.demand, public.fits),
        (58, Some(false)),
        "{public:?}"
    );
    assert!(
        found
            .warnings
            .iter()
            .any(|w| w.contains("rook-ceph/public-net") && w.contains("58")),
        "{:?}",
        found.warnings
    );
}

#[test]
fn rbac_yaml_grants_exactly_the_permissions_a_run_checks() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml"))
        .expect("deploy/rbac.yaml");
    let docs = multinet_proto::yaml::parse_documents(&text).expect("YAML");
    let mut granted = Vec::new();
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        for rule in doc["rules"].as_array().expect("rules") {
            for group in rule["apiGroups"].as_array().expect("apiGroups") {
                for resource in rule["resources"].as_array().expect("resources") {
                    for verb in rule["verbs"].as_array().expect("verbs") {
                        granted.push(format!(
                            "{kind} {}/{} {}",
                            group.as_str().unwrap_or_default(),
                            resource.as_str().unwrap_or_default(),
                            verb.as_str().unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }
    let mut needed: Vec<String> = PERMISSIONS
        .iter()
        .map(|p| {
            let resource = p.rbac_resource();
            // The NADs' permission: deploy/rbac.yaml grants it in the run's namespace.
            let kind = if p.scope == Scope::Cluster {
                "ClusterRole"
            } else {
                "Role"
            };
            format!("{kind} {}/{resource} {}", p.group, p.verb)
        })
        .collect();
    granted.sort();
    needed.sort();
    assert_eq!(granted, needed);
}

fn cli_permissions() -> usize {
    PERMISSIONS
        .iter()
        .filter(|p| p.who != Who::Coordinator)
        .count()
}

#[tokio::test]
async fn a_nad_in_another_namespace_needs_its_permission_there() {
    let c = config(
        "publicNetwork: nets/public-net\nclusterNetwork: cluster-net\nnodeTypes:\n  all:\n    osdsPerNode: 3\n    otherDaemonsPerNode: 16\n",
    );
    // The NADs' permission is asked in each NAD's namespace (nets, then rook-ceph): one
    // review more than with both NADs in the run's namespace.
    let coordinator: Vec<_> = PERMISSIONS.iter().filter(|p| p.who != Who::Cli).collect();
    let at = coordinator
        .iter()
        .position(|p| p.scope == Scope::Nads)
        .expect("the NADs' permission");
    let mut script: Vec<Exchange> = (0..=coordinator.len())
        .map(|_| Exchange::ok("POST", SSAR, access(true)))
        .collect();
    script[at] = Exchange::ok("POST", SSAR, access(false));
    let (client, server) = serve(script);
    let (_, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    let seen = server.await.expect("mock").expect("only the reviews");
    let asked: Vec<&serde_json::Value> = seen[at..at + 2]
        .iter()
        .map(|s| &s.body.as_ref().expect("review")["spec"]["resourceAttributes"])
        .collect();
    assert_eq!(
        asked,
        [
            &json!({"group": "k8s.cni.cncf.io", "resource": "network-attachment-definitions", "verb": "get", "namespace": "nets"}),
            &json!({"group": "k8s.cni.cncf.io", "resource": "network-attachment-definitions", "verb": "get", "namespace": NS}),
        ]
    );
    assert_eq!(
        problems,
        vec![Problem::Cluster(coordinator[at].describe("nets", NS))]
    );
    let Problem::Cluster(text) = &problems[0] else {
        unreachable!()
    };
    assert!(
        text.starts_with(
            "missing permission: get network-attachment-definitions (k8s.cni.cncf.io) in namespace nets"
        ) && text.contains("a Role in namespace nets")
            && text.contains("RoleBinding"),
        "{text}"
    );
}

#[tokio::test]
async fn missing_service_accounts_are_named_with_how_to_create_them() {
    let mut script: Vec<Exchange> = (0..cli_permissions())
        .map(|_| Exchange::ok("POST", SSAR, access(true)))
        .collect();
    script.extend([
        owners_none(),
        Exchange::not_found(
            "GET",
            format!("/api/v1/namespaces/{NS}/serviceaccounts/rook-ceph-system"),
        ),
        Exchange::not_found(
            "GET",
            format!("/api/v1/namespaces/{NS}/serviceaccounts/multinet"),
        ),
        nad_get("public-net", MACVLAN),
        nad_get("cluster-net", MACVLAN),
        nodes(vec![node("w1", json!({}), json!([]), true, false)]),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (_, problems) = run_preflight(&client, &c, Who::Cli).await;
    server.await.expect("mock").expect("as scripted");
    assert_eq!(
        problems,
        vec![
            // Named by the run configuration: the input names nothing (exit 22).
            Problem::Invalid(
                "serviceAccountName: ServiceAccount rook-ceph/rook-ceph-system does not exist; the test pods run as it (host checkers need it allowed hostNetwork): create it (`kubectl -n rook-ceph create serviceaccount rook-ceph-system`) or name an existing one with --service-account".into()
            ),
            // deploy/rbac.yaml's, not applied: the cluster is not ready (exit 1).
            Problem::Cluster(
                "ServiceAccount rook-ceph/multinet does not exist; the coordinator Job runs as it: create it with its permissions (`kubectl apply -f deploy/rbac.yaml`, in namespace rook-ceph)".into()
            ),
        ]
    );
}

#[tokio::test]
async fn a_live_run_is_said_to_be_in_progress_and_never_to_be_cleaned_up() {
    let mut script = allowed_all();
    script.extend([
        Exchange::ok(
            "GET",
            format!("/api/v1/namespaces/{NS}/configmaps"),
            list("v1", "ConfigMap", vec![json!({"metadata": {"name": "multinet-5f5f5f5f5f", "namespace": NS,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"multinet.io/run": "5f5f5f5f5f", "app.kubernetes.io/part-of": "multinet", "app.kubernetes.io/component": "owner"}}})]),
        ),
        // Its coordinator Job has a pod running (k8s.io/api/batch/v1 JobStatus.active).
        Exchange::ok(
            "GET",
            format!("/apis/batch/v1/namespaces/{NS}/jobs/multinet-5f5f5f5f5f-coordinator"),
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"name": "multinet-5f5f5f5f5f-coordinator", "namespace": NS},
                   "status": {"active": 1, "startTime": "2026-01-01T00:00:01Z"}}),
        ),
        service_account("rook-ceph-system"),
        nad_get("public-net", MACVLAN),
        nad_get("cluster-net", MACVLAN),
        nodes(vec![node("w1", json!({}), json!([]), true, false)]),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (_, problems) = run_preflight(&client, &c, Who::Coordinator).await;
    server.await.expect("mock").expect("as scripted");
    assert_eq!(
        problems,
        vec![Problem::Cluster(
            "run 5f5f5f5f5f is in progress in namespace rook-ceph (its coordinator Job rook-ceph/multinet-5f5f5f5f5f-coordinator is active); two runs in one namespace would compete for its nodes and addresses: wait for it to end (it removes its objects then; `kubectl -n rook-ceph logs -f job/multinet-5f5f5f5f5f-coordinator` follows it), or start this run in another namespace".into()
        )]
    );
}
