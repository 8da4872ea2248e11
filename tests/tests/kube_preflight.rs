//! The Kubernetes preflight against a scripted API server: the exact requests of a healthy
//! preflight, and each failure it must name.

use multinet_coordinator::backend::k8s::preflight::{PERMISSIONS, Problem, Who, preflight};
use multinet_proto::config::{RunConfig, parse_run_config};
use multinet_proto::multus::selection::parse_single_selection;
use multinet_proto::network::CephNetwork;
use multinet_tests::mock::{Exchange, access, list, nad, node, serve};
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

fn nad_get(name: &str, config: &str) -> Exchange {
    Exchange::ok(
        "GET",
        format!("/apis/k8s.cni.cncf.io/v1/namespaces/{NS}/network-attachment-definitions/{name}"),
        nad(NS, name, config),
    )
}

fn nodes(items: Vec<serde_json::Value>) -> Exchange {
    Exchange::ok("GET", "/api/v1/nodes", list("v1", "Node", items))
}

#[tokio::test]
async fn a_healthy_preflight_asks_exactly_this_and_plans_the_ready_nodes() {
    let mut script = allowed_all();
    script.extend([
        owners_none(),
        nad_get("public-net", MACVLAN),
        nad_get(
            "cluster-net",
            &MACVLAN.replace("192.168.20.0/24", "192.168.30.0/24"),
        ),
        nodes(vec![
            node("w1", json!({}), json!([]), true, false),
            node("w2", json!({}), json!([]), true, false),
            node("w3", json!({}), json!([]), false, false),
            node("w4", json!({}), json!([]), true, true),
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
    let (found, problems) = preflight(&client, &c, &selections(&c), Who::Coordinator, None)
        .await
        .expect("preflight");
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
            "node w4 (node type all) is cordoned: left out"
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
    let (_, problems) = preflight(&client, &c, &selections(&c), Who::Coordinator, None)
        .await
        .expect("preflight");
    server.await.expect("mock").expect("only the reviews");
    assert_eq!(problems, vec![Problem::Cluster(refused.describe(NS))]);
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
                "labels": {"multinet.io/run": "0a1b2c3d4e", "app.kubernetes.io/part-of": "multinet", "app.kubernetes.io/component": "owner"}}})]),
        ),
        nad_get("public-net", MACVLAN),
        nad_get("cluster-net", MACVLAN),
        nodes(vec![node("w1", json!({}), json!([]), true, false)]),
    ]);
    let (client, server) = serve(script);
    let c = converged();
    let (_, problems) = preflight(&client, &c, &selections(&c), Who::Coordinator, None)
        .await
        .expect("preflight");
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
    let (_, problems) = preflight(&client, &c, &selections(&c), Who::Coordinator, None)
        .await
        .expect("preflight");
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
    let (found, problems) = preflight(&client, &c, &selections(&c), Who::Coordinator, None)
        .await
        .expect("preflight");
    server.await.expect("mock").expect("as scripted");
    assert_eq!(
        problems,
        vec![
            Problem::Invalid(
                "node types must not overlap: node s1 matches node type \"storage\" and node type \"workers\"".into()
            ),
            // s1 was storage's only node.
            Problem::Cluster(
                "node type \"storage\", where the server goes (most OSDs), has no Ready, schedulable node".into()
            ),
        ]
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
    let (found, problems) = preflight(&client, &c, &selections(&c), Who::Coordinator, None)
        .await
        .expect("preflight");
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
            let resource = if p.subresource.is_empty() {
                p.resource.to_string()
            } else {
                format!("{}/{}", p.resource, p.subresource)
            };
            let kind = if p.namespaced { "Role" } else { "ClusterRole" };
            format!("{kind} {}/{resource} {}", p.group, p.verb)
        })
        .collect();
    granted.sort();
    needed.sort();
    assert_eq!(granted, needed);
}
