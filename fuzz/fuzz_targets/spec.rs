//! CephCluster manifests as YAML text: parsing and checking never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::network::check_manifest;
use multinet_proto::yaml::parse_documents;

fuzz_target!(|data: &str| {
    if let Ok(docs) = parse_documents(data) {
        let _ = check_manifest(&docs, Some("fuzz"));
    }
});
