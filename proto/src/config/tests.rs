//! Tests of reading and checking run configurations as a user writes them.

use super::*;
use crate::field::Problem;

fn parse(text: &str) -> (RunConfig, Problems) {
    parse_run_config(text).expect("test input is valid YAML")
}

fn errors(text: &str) -> Vec<Problem> {
    parse(text).1.errors
}

/// A complete file in Rook's format, as `rook multus validation config` would leave it after
/// a user's edits.
const ROOK_FULL: &str = r#"
namespace: storage
serviceAccountName: multus-tester
publicNetwork: public-net
clusterNetwork: kube-system/cluster-net
resourceTimeout: 1m0s
flakyThreshold: 45s
hostCheckOnly: true
nginxImage: quay.io/nginx/nginx-unprivileged:stable-alpine
nodeTypes:
  storage-nodes:
    osdsPerNode: 4
    otherDaemonsPerNode: 16
    placement:
      nodeSelector:
        storage-node: true
      tolerations:
        - {"key":"storage-node","value":"true"}
        - {"key":"maintenance","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}
  worker-nodes:
    osdsPerNode: 0
    otherDaemonsPerNode: 6
    placement:
      nodeSelector:
      tolerations:
"#;

#[test]
fn reads_every_rook_key() {
    let (config, problems) = parse(ROOK_FULL);
    assert!(problems.is_valid(), "{problems:?}");
    assert_eq!(config.namespace, "storage");
    assert_eq!(config.service_account_name, "multus-tester");
    assert_eq!(config.public_network, "public-net");
    assert_eq!(config.cluster_network, "kube-system/cluster-net");
    assert_eq!(config.resource_timeout, GoDuration::from_secs(60));
    assert_eq!(config.flaky_threshold, GoDuration::from_secs(45));
    assert!(config.host_check_only);
    assert_eq!(
        config.nginx_image.as_deref(),
        Some("quay.io/nginx/nginx-unprivileged:stable-alpine")
    );
    let storage = &config.node_types["storage-nodes"];
    assert_eq!(
        (storage.osds_per_node, storage.other_daemons_per_node),
        (4, 16)
    );
    assert_eq!(storage.placement.node_selector["storage-node"], "true");
    assert_eq!(
        storage.placement.tolerations,
        [
            Toleration {
                key: "storage-node".into(),
                value: "true".into(),
                ..Toleration::default()
            },
            Toleration {
                key: "maintenance".into(),
                operator: TolerationOperator::Exists,
                effect: Some(TaintEffect::NoExecute),
                toleration_seconds: Some(300),
                ..Toleration::default()
            },
        ]
    );
    assert_eq!(
        config.node_types["worker-nodes"],
        NodeType::with_counts(0, 6)
    );
    // The only remark is about the image multinet has no use for.
    assert_eq!(problems.warnings.len(), 1, "{problems:?}");
    assert_eq!(problems.warnings[0].field, "nginxImage");
    assert!(problems.warnings[0].message.contains("does not use"));
}

#[test]
fn partial_file_keeps_defaults() {
    let (config, problems) = parse("publicNetwork: public-net\nprobeInterval: 250ms\n");
    assert!(
        problems.errors.is_empty() && problems.warnings.is_empty(),
        "{problems:?}"
    );
    let expected = RunConfig {
        public_network: "public-net".into(),
        probe_interval: GoDuration::from_millis(250),
        ..RunConfig::default()
    };
    assert_eq!(config, expected);
    assert_eq!(config.namespace, "rook-ceph");
    assert_eq!(config.service_account_name, "rook-ceph-system");
    assert_eq!(config.resource_timeout.to_string(), "3m0s");
    assert_eq!(config.flaky_threshold.to_string(), "30s");
    assert_eq!(config.node_types, default_node_types());
    assert_eq!(
        config.payload_bytes,
        PayloadBytes {
            small: 64,
            large: 65_536
        }
    );
    assert_eq!(config.success_threshold, 12);
    assert_eq!(config.probe_timeout.to_string(), "4s");
    assert_eq!(config.soak_duration, GoDuration::ZERO);
}

#[test]
fn empty_file_lacks_only_a_network() {
    let (config, problems) = parse("");
    assert_eq!(config, RunConfig::default());
    assert_eq!(problems.errors.len(), 1, "{problems:?}");
    assert_eq!(problems.errors[0].field, "publicNetwork");
    assert!(problems.errors[0].message.contains("clusterNetwork"));
}

#[test]
fn node_types_default_only_when_absent() {
    let (config, _) = parse("publicNetwork: p\nnodeTypes:\n  storage:\n    osdsPerNode: 2\n");
    assert_eq!(config.node_types.len(), 1);
    assert_eq!(config.node_types["storage"], NodeType::with_counts(2, 0));
    let problems = errors("publicNetwork: p\nnodeTypes: {}\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "nodeTypes");
    assert!(problems[0].message.contains("osdsPerNode greater than 0"));
}

/// Rook's CI `stretch.yaml`: worker-nodes leaves osdsPerNode out, selector values unquoted.
#[test]
fn rooks_stretch_file_reads() {
    let text = r#"
namespace: stretch
publicNetwork: public-net
clusterNetwork: cluster-net
resourceTimeout: 1m0s
flakyThreshold: 30s
nginxImage: quay.io/nginx/nginx-unprivileged:stable-alpine
nodeTypes:
  arbiter-node:
    osdsPerNode: 0
    otherDaemonsPerNode: 1
    placement:
      nodeSelector:
        topology.kubernetes.io/zone: arbiter
      tolerations:
        - {"key":"node-role.kubernetes.io/control-plane","operator":"Exists"}
  storage-nodes:
    osdsPerNode: 2
    otherDaemonsPerNode: 3
    placement:
      nodeSelector:
        storage-node: true
      tolerations:
        - {"key":"storage-node","value":"true"}
  worker-nodes:
    otherDaemonsPerNode: 2
"#;
    let (config, problems) = parse(text);
    assert!(problems.is_valid(), "{problems:?}");
    assert_eq!(
        config.node_types["worker-nodes"],
        NodeType::with_counts(0, 2)
    );
    assert_eq!(config.server_node_type(), Some("storage-nodes"));
    assert_eq!(config.clients_per_node("storage-nodes"), (5, 2));
    assert_eq!(config.clients_per_node("arbiter-node"), (1, 0));
    assert_eq!(config.daemons_per_node_total(), 8);
}

#[test]
fn bad_inputs_name_their_field_and_what_was_expected() {
    // (input after `publicNetwork: p`, field of the error, words the message must contain)
    let cases: &[(&str, &str, &str)] = &[
        ("resourceTimeout: 180", "resourceTimeout", "\"3m0s\""),
        ("resourceTimeout: 30s", "resourceTimeout", "at least 1m0s"),
        (
            "resourceTimeout: 3 minutes",
            "resourceTimeout",
            "expected a Go duration",
        ),
        ("flakyThreshold: 2s", "flakyThreshold", "at least 5s"),
        (
            "flakyThreshold: [30s]",
            "flakyThreshold",
            "expected a Go duration string",
        ),
        ("namespace: \"\"", "namespace", "must be set"),
        ("namespace: Rook_Ceph", "namespace", "DNS-1123 label"),
        ("clusterNetwork: a/b/c", "clusterNetwork", "namespace/name"),
        (
            "clusterNetwork: ns/Bad_Name",
            "clusterNetwork",
            "DNS-1123 label",
        ),
        (
            "hostCheckOnly: yes please",
            "hostCheckOnly",
            "expected true or false",
        ),
        (
            "nodeTypes:\n  Storage_Nodes:\n    osdsPerNode: 3",
            "nodeTypes.Storage_Nodes",
            "RFC 1123",
        ),
        (
            "nodeTypes:\n  storage-nodes:\n    osdsPerNode: -1",
            "nodeTypes.storage-nodes.osdsPerNode",
            "whole number",
        ),
        (
            "nodeTypes:\n  storage-nodes:\n    osdsPerNode: three",
            "nodeTypes.storage-nodes.osdsPerNode",
            "whole number",
        ),
        (
            "nodeTypes:\n  w:\n    otherDaemonsPerNode: 6",
            "nodeTypes",
            "osdsPerNode greater than 0",
        ),
        (
            "nodeTypes:\n  arbiter:\n    osdsPerNode: 1\n    placement:\n      tolerations:\n        - {key: k, operator: exists}",
            "nodeTypes.arbiter.placement.tolerations[0].operator",
            "\"Exists\"",
        ),
        (
            "nodeTypes:\n  arbiter:\n    osdsPerNode: 1\n    placement:\n      tolerations:\n        - {key: k, operator: Exists, value: v}",
            "nodeTypes.arbiter.placement.tolerations[0].value",
            "must be empty",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      tolerations:\n        - {key: k, effect: NoEvict}",
            "nodeTypes.a.placement.tolerations[0].effect",
            "NoExecute",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      tolerations:\n        - {key: k, tolerationSeconds: 60}",
            "nodeTypes.a.placement.tolerations[0].tolerationSeconds",
            "NoExecute",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      tolerations:\n        - {value: v}",
            "nodeTypes.a.placement.tolerations[0].operator",
            "must be Exists",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      nodeSelector:\n        bad key: x",
            "nodeTypes.a.placement.nodeSelector.bad key",
            "label key",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      nodeSelector: [x]",
            "nodeTypes.a.placement.nodeSelector",
            "expected a mapping",
        ),
        ("probeInterval: 5ms", "probeInterval", "at least 10ms"),
        ("probeInterval: 2m", "probeInterval", "at most 1m0s"),
        ("probeTimeout: 0s", "probeTimeout", "more than 0s"),
        (
            "probeTimeout: 5m",
            "probeTimeout",
            "at most resourceTimeout (3m0s)",
        ),
        ("successThreshold: 0", "successThreshold", "at least 1"),
        (
            "payloadBytes: {small: 0}",
            "payloadBytes.small",
            "at least 1",
        ),
        (
            "payloadBytes: {large: 20000000}",
            "payloadBytes.large",
            "16 MiB",
        ),
        (
            "payloadBytes: {small: 9000, large: 1500}",
            "payloadBytes",
            "less than large",
        ),
        ("soakDuration: -1m", "soakDuration", "is negative"),
        ("reportInterval: 500ms", "reportInterval", "at least 1s"),
        ("reportInterval: -5m", "reportInterval", "is negative"),
        ("metricsAddr: localhost:9464", "metricsAddr", "ADDR:PORT"),
        ("metricsAddr: 127.0.0.1", "metricsAddr", "ADDR:PORT"),
        ("meshPeers: 3", "meshPeers", "set mesh: true"),
        ("mesh: yes please", "mesh", "expected true or false"),
        ("mesh: true\nmeshPeers: -1", "meshPeers", "whole number"),
        (
            "serviceAccountName: Tester!",
            "serviceAccountName",
            "RFC 1123",
        ),
    ];
    for (input, field, words) in cases {
        let found = errors(&format!("publicNetwork: p\n{input}\n"));
        assert!(
            found
                .iter()
                .any(|p| p.field == *field && p.message.contains(words)),
            "{input:?}: expected an error at {field} saying {words:?}, got {found:#?}"
        );
    }
}

#[test]
fn all_problems_are_collected() {
    let found =
        errors("namespace: \"\"\nresourceTimeout: 10s\nflakyThreshold: 1s\nnodeTypes: {}\n");
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    for field in [
        "namespace",
        "publicNetwork",
        "resourceTimeout",
        "flakyThreshold",
        "nodeTypes",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
}

#[test]
fn unknown_keys_warn_and_suggest() {
    let (config, problems) = parse(
        "publicNetwork: p\nflakeyThreshold: 10s\napiVersion: v1\n\
         nodeTypes:\n  s:\n    osdPerNode: 3\n    osdsPerNode: 1\n    placement:\n      affinity: {}\n",
    );
    assert!(problems.is_valid(), "{problems:?}");
    assert_eq!(config.flaky_threshold, GoDuration::from_secs(30));
    let warning = |field: &str| {
        problems
            .warnings
            .iter()
            .find(|p| p.field == field)
            .map(|p| p.message.clone())
            .unwrap_or_else(|| panic!("no warning at {field}: {problems:?}"))
    };
    assert!(warning("flakeyThreshold").contains("did you mean \"flakyThreshold\""));
    assert!(warning("apiVersion").contains("unknown key"));
    assert!(warning("nodeTypes.s.osdPerNode").contains("\"osdsPerNode\""));
    assert!(warning("nodeTypes.s.placement.affinity").contains("not supported"));
}

#[test]
fn non_mapping_document_is_an_error() {
    let found = errors("- namespace: x\n");
    assert!(
        found
            .iter()
            .any(|p| p.field.is_empty() && p.message.contains("expected a mapping"))
    );
    assert!(parse_run_config("a: [1, 2\n").is_err());
}

#[test]
fn doubtful_choices_warn() {
    let (_, problems) = parse("publicNetwork: rook-ceph/net\nclusterNetwork: net\n");
    assert!(problems.is_valid(), "{problems:?}");
    assert!(
        problems
            .warnings
            .iter()
            .any(|p| p.field == "clusterNetwork")
    );
    let (_, problems) = parse("clusterNetwork: net\nhostCheckOnly: true\n");
    assert!(problems.warnings.iter().any(|p| p.field == "hostCheckOnly"));
}

#[test]
fn serializes_with_rooks_key_names() {
    let json = serde_json::to_value(SampleKind::DedicatedStorageNodes.config()).expect("json");
    assert_eq!(json["resourceTimeout"], "3m0s");
    assert_eq!(json["serviceAccountName"], "rook-ceph-system");
    assert_eq!(json["probeTimeout"], "4s");
    assert_eq!(json["payloadBytes"]["large"], 65_536);
    assert!(json.get("nginxImage").is_none());
    let storage = &json["nodeTypes"]["storage-nodes"];
    assert_eq!(storage["osdsPerNode"], 3);
    assert_eq!(storage["placement"]["nodeSelector"]["storage-node"], "true");
    assert_eq!(
        storage["placement"]["tolerations"][0],
        serde_json::json!({"key": "storage-node", "operator": "Equal", "value": "true"})
    );
}

#[test]
fn a_bad_name_is_quoted_once_in_its_error() {
    for (text, field, quoted) in [
        (
            "nodeTypes:\n  Bad_Type:\n    osdsPerNode: 3",
            "nodeTypes.Bad_Type",
            "\"Bad_Type\"",
        ),
        ("namespace: Bad_NS", "namespace", "\"Bad_NS\""),
        (
            "serviceAccountName: Tester!",
            "serviceAccountName",
            "\"Tester!\"",
        ),
        (
            "clusterNetwork: ns/Bad_Name",
            "clusterNetwork",
            "\"Bad_Name\"",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      nodeSelector:\n        bad key: x",
            "nodeTypes.a.placement.nodeSelector.bad key",
            "\"bad key\"",
        ),
        (
            "nodeTypes:\n  a:\n    osdsPerNode: 1\n    placement:\n      tolerations:\n        - {key: 'k!', operator: Exists}",
            "nodeTypes.a.placement.tolerations[0].key",
            "\"k!\"",
        ),
    ] {
        let errors = errors(text);
        let error = errors
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("{text}: no error at {field}: {errors:?}"));
        assert_eq!(
            error.message.matches(quoted).count(),
            1,
            "{text}: {}",
            error.message
        );
    }
}

#[test]
fn the_metrics_address_is_an_ip_address_and_a_port() {
    let (config, problems) =
        parse_run_config("publicNetwork: p\nmetricsAddr: \"[::]:9464\"\n").expect("YAML");
    assert!(problems.errors.is_empty(), "{problems:?}");
    assert_eq!(
        config.metrics_addr,
        Some("[::]:9464".parse().expect("addr"))
    );
    let (config, _) = parse_run_config("publicNetwork: p\n").expect("YAML");
    assert_eq!(config.metrics_addr, None);
}

#[test]
fn a_mesh_reads_with_its_peer_count() {
    let (config, problems) = parse("publicNetwork: p\nmesh: true\nmeshPeers: 3\n");
    assert!(problems.errors.is_empty(), "{problems:?}");
    assert!(config.mesh);
    assert_eq!(config.mesh_peers, 3);
    let (config, _) = parse("publicNetwork: p\n");
    assert!(!config.mesh, "the seed's single server is the default");
    assert_eq!(config.mesh_peers, 0);
}
