//! The network-status annotation: never panics, entries without IPs included.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::multus::status::parse_network_status;

fuzz_target!(|data: &str| {
    if let Ok(entries) = parse_network_status(data) {
        for entry in entries {
            let _ = entry.addresses();
        }
    }
});
