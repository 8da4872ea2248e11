//! NAD `spec.config` strings (CNI configs, conflists, IPAM sections): never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::field::Problems;
use multinet_proto::multus::nad::read_config;

fuzz_target!(|data: &str| {
    let mut problems = Problems::default();
    let _ = read_config("NetworkAttachmentDefinition fuzz/fuzz", data, &mut problems);
});
