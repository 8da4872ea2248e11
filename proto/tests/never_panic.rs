//! Arbitrary input into every text parser of `proto`: errors are values, nothing panics.

use multinet_proto::config::parse_run_config;
use multinet_proto::field::Problems;
use multinet_proto::multus::nad::{read_config, read_nads};
use multinet_proto::network::check_manifest;
use multinet_proto::yaml::parse_documents;
use proptest::prelude::*;

/// Text built from YAML/JSON punctuation and the keys the parsers look for, so that the
/// generated documents often get past the syntax check and into the field walkers.
fn structured_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "network",
        "provider",
        "multus",
        "host",
        "selectors",
        "interfaces",
        "public",
        "cluster",
        "addressRanges",
        "hostNetwork",
        "ipFamily",
        "dualStack",
        "kind",
        "CephCluster",
        "spec",
        "metadata",
        "namespace",
        "nodeTypes",
        "osdsPerNode",
        "resourceTimeout",
        "3m0s",
        "type",
        "plugins",
        "ipam",
        "whereabouts",
        "host-local",
        "range",
        "ranges",
        "subnet",
        "exclude",
        "10.0.0.0/8",
        "fd00::/64",
        "true",
        "null",
        "-1",
        "1e309",
        ":",
        ": ",
        "\n",
        "\n  ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\"",
        "'",
        "/",
        "@",
        "&a",
        "*a",
        "---\n",
        "!!str",
        "#",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn spec_check_never_panics(text in prop_oneof![structured_text(), "\\PC{0,200}"]) {
        if let Ok(docs) = parse_documents(&text) {
            let _ = check_manifest(&docs, Some("ns"));
            let mut problems = Problems::default();
            let _ = read_nads(&docs, "ns", &mut problems);
        }
    }

    #[test]
    fn run_config_never_panics(text in prop_oneof![structured_text(), "\\PC{0,200}"]) {
        let _ = parse_run_config(&text);
    }

    #[test]
    fn nad_config_never_panics(text in prop_oneof![structured_text(), "\\PC{0,200}"]) {
        let mut problems = Problems::default();
        let _ = read_config("NetworkAttachmentDefinition ns/n", &text, &mut problems);
    }
}
