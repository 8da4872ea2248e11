use super::*;
use crate::yaml::parse_documents;

fn check(yaml: &str) -> NetworkCheck {
    check_manifest(&parse_documents(yaml).expect("test YAML parses"), None)
}

fn error_fields(c: &NetworkCheck) -> Vec<&str> {
    c.problems.errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn multus_short_selectors_give_rook_annotations() {
    let c = check(
        "apiVersion: ceph.rook.io/v1\nkind: CephCluster\nmetadata: {name: c, namespace: ceph}\n\
         spec:\n  network:\n    provider: multus\n    selectors:\n      public: public-net\n      \
         cluster: other/cluster-net@cluster\n    addressRanges:\n      public: [192.168.20.0/24]\n      \
         cluster: [\"fd00:10::/64\", 10.1.0.0/16]\n    dualStack: true\n",
    );
    assert!(c.problems.is_valid(), "{:?}", c.problems);
    assert_eq!(c.provider, Provider::Multus);
    assert_eq!(c.namespace, "ceph");
    assert_eq!(
        c.osd_annotation.as_deref(),
        Some(
            r#"[{"name":"public-net","namespace":"ceph"},{"name":"cluster-net","namespace":"other","interface":"cluster"}]"#
        )
    );
    assert_eq!(
        c.daemon_annotation.as_deref(),
        Some(r#"[{"name":"public-net","namespace":"ceph"}]"#)
    );
    assert_eq!(
        c.ceph.cluster_network.as_deref(),
        Some("fd00:10::/64, 10.1.0.0/16")
    );
    assert_eq!(
        c.ms_bind_flags,
        ["--ms-bind-ipv4=true", "--ms-bind-ipv6=true"]
    );
}

#[test]
fn first_ceph_cluster_wins_and_bare_network_documents_work() {
    let c = check(
        "kind: ConfigMap\n---\nkind: CephCluster\nspec: {network: {provider: host}}\n---\nkind: CephCluster\nspec: {network: {provider: multus}}\n",
    );
    assert_eq!(c.provider, Provider::Host);
    assert_eq!(c.namespace, DEFAULT_NAMESPACE);
    let bare = check_manifest(
        &parse_documents("network:\n  hostNetwork: true\n").expect("yaml"),
        Some("mine"),
    );
    assert_eq!(bare.provider, Provider::Host);
    assert_eq!(bare.namespace, "mine");
    assert_eq!(bare.source, "network");
}

#[test]
fn interfaces_alias_and_conflict() {
    let c = check("network:\n  provider: host\n  interfaces: {public: eth1, cluster: eth2}\n");
    assert!(c.problems.is_valid(), "{:?}", c.problems);
    assert_eq!(
        c.networks
            .cluster
            .as_ref()
            .and_then(|n| n.host_interface.as_deref()),
        Some("eth2")
    );
    let both = check(
        "network:\n  provider: host\n  interfaces: {public: eth1}\n  selectors: {public: eth1}\n",
    );
    assert_eq!(error_fields(&both), ["network.interfaces"]);
}

#[test]
fn legacy_host_network_only_with_empty_provider() {
    let c = check("network:\n  provider: multus\n  hostNetwork: true\n  selectors: {public: a}\n");
    assert_eq!(error_fields(&c), ["network.hostNetwork"]);
}

#[test]
fn unknown_selector_keys_warn() {
    let c = check("network:\n  provider: multus\n  selectors: {public: a, storage: b}\n");
    assert!(c.problems.is_valid());
    assert_eq!(
        c.problems
            .warnings
            .iter()
            .filter(|w| w.field == "network.selectors.storage")
            .count(),
        1
    );
}

#[test]
fn bad_inputs_name_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "network: {provider: calico}",
            "network.provider",
            "\"host\" or \"multus\"",
        ),
        (
            "network: {provider: multus}",
            "network.selectors",
            "at least one",
        ),
        (
            "network: {provider: multus, selectors: {public: 'multus%net'}}",
            "network.selectors.public",
            "DNS-1123",
        ),
        (
            "network: {provider: multus, selectors: {public: 'a,b'}}",
            "network.selectors.public",
            "exactly one",
        ),
        (
            "network: {provider: multus, selectors: {public: '[{\"name\": '}}",
            "network.selectors.public",
            "JSON",
        ),
        (
            "network: {provider: host, selectors: {public: 'eth 0'}}",
            "network.selectors.public",
            "interface",
        ),
        (
            "network: {provider: host, selectors: {public: ' eth1 '}}",
            "network.selectors.public",
            "whitespace",
        ),
        (
            "network: {provider: host, selectors: {public: averyveryverylongname}}",
            "network.selectors.public",
            "15",
        ),
        (
            "network: {addressRanges: {public: [10.0.0.0/8]}}",
            "network.addressRanges",
            "provider",
        ),
        (
            "network: {provider: multus, selectors: {public: a}, addressRanges: {cluster: [10.0.0.0/8]}}",
            "network.addressRanges.cluster",
            "`cluster` selector",
        ),
        (
            "network: {provider: host, addressRanges: {public: [123.123.123/24]}}",
            "network.addressRanges.public[0]",
            "not an IPv4 or IPv6",
        ),
        (
            "network: {provider: host, addressRanges: {public: [10.0.0.0/33]}}",
            "network.addressRanges.public[0]",
            "prefix",
        ),
        (
            "network: {provider: host, addressRanges: {public: 10.0.0.0/8}}",
            "network.addressRanges.public",
            "list",
        ),
        (
            "network: {ipFamily: IPv5}",
            "network.ipFamily",
            "\"IPv4\" or \"IPv6\"",
        ),
        (
            "network: {dualStack: yes-please}",
            "network.dualStack",
            "true or false",
        ),
        (
            "network: {hostNetwork: 1}",
            "network.hostNetwork",
            "true or false",
        ),
        (
            "network: {provider: multus, selectors: [a]}",
            "network.selectors",
            "mapping",
        ),
        (
            "network: {provider: multus, selectors: {public: a@x, cluster: b@x}}",
            "network.selectors",
            "share a name",
        ),
        (
            "network: {connections: {requireMsgr2: maybe}}",
            "network.connections.requireMsgr2",
            "true or false",
        ),
        ("network: 5", "network", "mapping"),
        ("kind: Deployment", "", "CephCluster"),
    ];
    for (yaml, field, needle) in cases {
        let c = check(yaml);
        let hit = c.problems.errors.iter().find(|e| e.field == *field);
        let Some(hit) = hit else {
            panic!(
                "{yaml}: expected an error at {field:?}, got {:?}",
                c.problems.errors
            );
        };
        assert!(
            hit.message.contains(needle),
            "{yaml}: {:?} lacks {needle:?}",
            hit.message
        );
    }
}

#[test]
fn bind_flags_follow_rook() {
    assert!(bind_flags(None, false).is_empty());
    assert_eq!(
        bind_flags(Some(IpFamily::IPv6), false),
        ["--ms-bind-ipv4=false", "--ms-bind-ipv6=true"]
    );
    assert_eq!(
        bind_flags(Some(IpFamily::IPv4), false),
        ["--ms-bind-ipv4=true", "--ms-bind-ipv6=false"]
    );
}

/// Selectors as Rook reads them, row by row: rook `pkg/apis/ceph.rook.io/v1/network.go`
/// `GetNetworkSelection` (empty means no selection, a legacy `{…}` object is wrapped in a list,
/// `nadutils.ParseNetworkAnnotation` parses, exactly one selection) and `ValidateNetworkSpec`
/// (multus needs a selector), over the network-attachment-definition-client's parser (spaces
/// around the parts of the short form trimmed, at most one '/' and one '@').
#[test]
fn selectors_as_rook_reads_them() {
    let ok = [
        ("' public-net '", "rook-ceph/public-net", None),
        ("' other / pub @ net1 '", "other/pub", Some("net1")),
        (
            "'{\"name\": \"pub\", \"interface\": \"public\"}'",
            "rook-ceph/pub",
            Some("public"),
        ),
        (
            "'[{\"name\": \"pub\", \"namespace\": \"ns\"}]'",
            "ns/pub",
            None,
        ),
    ];
    for (selector, nad, interface) in ok {
        let c = check(&format!(
            "network: {{provider: multus, selectors: {{public: {selector}}}}}\n"
        ));
        assert!(c.problems.is_valid(), "{selector}: {:?}", c.problems.errors);
        let selection = c
            .networks
            .public
            .as_ref()
            .and_then(|n| n.selection.as_ref())
            .expect("a selection");
        assert_eq!(selection.namespaced_name(), nad, "{selector}");
        assert_eq!(selection.interface.as_deref(), interface, "{selector}");
    }
    let bad = [
        ("'a/b/c'", "has 2 '/'"),
        ("'a@b@c'", "has 2 '@'"),
        ("'a, b'", "selects 2 networks"),
        ("''", "provider multus needs at least one network selector"),
    ];
    for (selector, want) in bad {
        let c = check(&format!(
            "network: {{provider: multus, selectors: {{public: {selector}}}}}\n"
        ));
        assert!(
            c.problems.errors.iter().any(|e| e.message.contains(want)),
            "{selector}: expected {want:?} in {:?}",
            c.problems.errors
        );
    }
}

/// README: every problem is listed. An entry that does not parse is its own error, and the
/// rules about where ranges may be given still hold for it.
#[test]
fn an_unparsable_range_does_not_hide_where_ranges_may_be_given() {
    let c = check(
        "network: {provider: multus, selectors: {public: a}, addressRanges: {cluster: [10.1.0/24]}}",
    );
    assert_eq!(
        error_fields(&c),
        [
            "network.addressRanges.cluster[0]",
            "network.addressRanges.cluster"
        ],
        "{:?}",
        c.problems
    );
    let c = check("network: {addressRanges: {public: [not-a-cidr]}}");
    assert_eq!(
        error_fields(&c),
        ["network.addressRanges.public[0]", "network.addressRanges"],
        "{:?}",
        c.problems
    );
}
