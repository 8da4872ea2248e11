//! The agent's reading of what Kubernetes mounts into its pod: `run.json` (the ConfigMap) and
//! `network-status` (Multus' annotation through the downward API). Input: one byte choosing
//! the networks (bit 0 public, bit 1 cluster), then `run.json`'s bytes, a NUL, the annotation.
//! Reading never panics, and an assignment it makes gives an address on exactly the networks
//! asked for, each of which a pod with those addresses on interfaces named after their
//! networks passes the kernel check with.
#![no_main]
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use multinet_agent::pod::{PodArgs, check_interfaces, read_mounted};
use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mut networks = Vec::new();
    if choice & 1 != 0 {
        networks.push(CephNetwork::Public);
    }
    if choice & 2 != 0 {
        networks.push(CephNetwork::Cluster);
    }
    let (run_json, status) = match rest.iter().position(|b| *b == 0) {
        Some(nul) => (&rest[..nul], &rest[nul + 1..]),
        None => (rest, &[][..]),
    };
    // The downward-API file is read as text: invalid UTF-8 never reaches the parser.
    let Ok(status) = std::str::from_utf8(status) else {
        return;
    };
    let args = PodArgs {
        role: Role::Client,
        name: "client-n1-osd-0".into(),
        node: "n1".into(),
        networks: networks.clone(),
        run_dir: PathBuf::from("/etc/multinet/run"),
        tls_dir: PathBuf::from("/etc/multinet/tls"),
        pod_dir: PathBuf::from("/etc/multinet/pod"),
    };
    let Ok(assignment) = read_mounted(&args, run_json, status) else {
        return;
    };
    let given: Vec<CephNetwork> = assignment.addresses.iter().map(|a| a.network).collect();
    assert_eq!(given, networks);
    let interfaces: Vec<(String, std::net::IpAddr)> = assignment
        .addresses
        .iter()
        .map(|a| (a.network.key().to_string(), a.addr))
        .collect();
    check_interfaces(&assignment.addresses, &interfaces).expect("its own addresses pass");
});
