//! `spec check --pods` / `--ippools` input as YAML text: pods and whereabouts IPPools are read
//! and checked against each other without a panic, whatever the annotations and offsets say.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::field::Problems;
use multinet_proto::multus::ippool::{check_pools, read_ippools};
use multinet_proto::multus::pods::{check_pods, read_pods};
use multinet_proto::yaml::parse_documents;

fuzz_target!(|data: &str| {
    if let Ok(docs) = parse_documents(data) {
        let mut problems = Problems::default();
        // One stream read both ways: a fuzzed List may hold pods and pools alike.
        let pods = read_pods(&docs, &mut problems);
        let pools = read_ippools(&docs, &mut problems);
        let _ = check_pods(&pods, |_, _| true);
        let _ = check_pools(&pools, &pods);
    }
});
