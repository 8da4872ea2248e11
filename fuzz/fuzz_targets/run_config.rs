//! Run configurations: parsing and validating never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::config::parse_run_config;

fuzz_target!(|data: &str| {
    let _ = parse_run_config(data);
});
