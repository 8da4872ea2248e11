//! The lab as a cluster has it (issue #12), as root: nodes with real Kubernetes node names, a
//! master interface whose MTU is below the NAD's, and a host-local NAD on a network shared by
//! nodes (each node allocating on its own). Each test uses its own lab name, removes its lab
//! also when it fails, and checks that nothing of it is left (namespaces, state, processes,
//! IPAM files). Skips where the lab cannot run, fails instead under CI
//! ([`multinet_tests::require`]).

mod lab_support;

use lab_support::*;
use multinet_tests::e2e::findings;
use serde_json::Value;
use std::process::Command;

/// The findings of `kind` in report `r`.
fn of_kind<'a>(r: &'a Value, kind: &str) -> Vec<&'a Value> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

#[test]
fn nodes_with_kubernetes_names_are_built_and_reported_by_their_names() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('k');
    // 246 characters: a DNS-1123 subdomain far beyond any interface name.
    let long = format!("{}.example.com", "storage-a".repeat(26));
    let topology = lab.topology(&format!(
        "nodes: [worker-1, {long:?}, n3]\nserver_node: worker-1\nfaults:\n  - block: {{network: cluster, from: {long:?}, to: worker-1}}\n{SMALL}"
    ));
    let (code, r) = run(&topology);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(
        findings(&r),
        [(
            "node_unreachable".to_string(),
            Some("cluster".to_string()),
            vec![long.clone()]
        )],
        "{r:#}"
    );
    // Agents and paths carry the user's names, not the lab's short ids.
    let nodes: std::collections::BTreeSet<&str> = r["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["node"].as_str())
        .collect();
    assert_eq!(
        nodes,
        ["n3", long.as_str(), "worker-1"].into_iter().collect(),
        "{r:#}"
    );
    lab.assert_gone();
}

#[test]
fn a_master_mtu_below_the_nads_is_address_unavailable_naming_master_and_both_mtus() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('q');
    let topology = lab.topology(&format!(
        "nodes: [n1, worker-2.example.com, n3]\nnetworks:\n  public: {{cni: macvlan, mtu: 9000}}\n  cluster: {{cni: macvlan, mtu: 9000}}\nserver_node: n1\nunderlay:\n  - {{node: worker-2.example.com, network: public, master_mtu: 1500}}\n{SMALL}"
    ));
    let (code, r) = run(&topology);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(
        findings(&r),
        [(
            "address_unavailable".to_string(),
            Some("public".to_string()),
            vec!["worker-2.example.com".to_string()]
        )],
        "{r:#}"
    );
    let f = of_kind(&r, "address_unavailable")[0];
    assert_eq!(
        (
            &f["evidence"]["master"],
            &f["evidence"]["nad_mtu"],
            &f["evidence"]["master_mtu"]
        ),
        (&Value::from("pub0"), &Value::from(9000), &Value::from(1500)),
        "{f:#}"
    );
    // The plugin's own words are kept as evidence.
    assert!(
        f["evidence"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("invalid MTU 9000")),
        "{f:#}"
    );
    assert!(
        f["suggestions"][0]
            .as_str()
            .is_some_and(|s| s.contains("\"pub0\"") && s.contains("worker-2.example.com")),
        "{f:#}"
    );
    lab.assert_gone();
}

#[test]
fn host_local_on_a_shared_network_hands_out_addresses_twice_and_the_run_finds_it() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('h');
    // host-local keeps its leases on each node: every node hands out the range's first
    // addresses again.
    let nad = r#"{"cniVersion": "0.4.0", "type": "macvlan", "master": "pub0", "mode": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.40.0/24", "rangeStart": "198.18.40.20", "rangeEnd": "198.18.40.200"}]]}}"#;
    let topology = lab.topology(&format!(
        "networks:\n  public:\n    apiVersion: k8s.cni.cncf.io/v1\n    kind: NetworkAttachmentDefinition\n    metadata: {{name: public-net}}\n    spec:\n      config: '{nad}'\n  cluster: {{cni: macvlan}}\nserver_node: n1\n{SMALL}"
    ));
    let (code, r) = run(&topology);
    assert_eq!(code, Some(1), "{r:#}");
    let duplicates = of_kind(&r, "duplicate_address");
    assert!(!duplicates.is_empty(), "{r:#}");
    // The server got the range's first address on n1; the first client on every other node
    // got it too.
    let first = duplicates
        .iter()
        .find(|f| f["evidence"]["address"] == "198.18.40.20")
        .unwrap_or_else(|| panic!("198.18.40.20 held twice: {r:#}"));
    assert_eq!(first["network"], "public");
    assert_eq!(first["nodes"], serde_json::json!(["n1", "n2", "n3"]));
    let holders: Vec<&str> = first["evidence"]["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .filter_map(|p| p["pod"].as_str())
        .collect();
    assert!(holders.contains(&"server"), "{first:#}");
    // What failed on the public network because of it is said under the duplicate, not as
    // findings of its own.
    for f in r["findings"].as_array().expect("findings") {
        assert!(
            f["network"] != "public" || f["kind"] == "duplicate_address",
            "{f:#}"
        );
    }
    // The cluster network (whereabouts: one allocator for the lab) has no duplicate.
    assert!(duplicates.iter().all(|f| f["network"] == "public"));
    // No lease left on any node (CNI DEL ran for every attachment), nor the lab.
    lab.assert_gone();
}

#[test]
fn a_run_the_kernels_neighbour_table_cannot_hold_is_refused_before_its_clients_with_exit_69() {
    if !lab_possible() {
        return;
    }
    // One kernel keeps the neighbour (ARP) entries of every namespace, capped by gc_thresh3
    // machine-wide; a lab run past it would lose packets and fail paths that work. Two nodes
    // with enough clients that the run needs twice the cap (whatever this machine's is) plus
    // 500: refused before a client is placed, with the sysctl named.
    let limit: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
        .expect("gc_thresh3")
        .trim()
        .parse()
        .expect("a number");
    let clients = (limit / 4 + 64).to_string();
    let lab = LabGuard::new('g');
    let topology = lab.topology(
        "nodes: 2\nnetworks:\n  public: {cni: macvlan, subnet: 198.18.0.0/17}\n  cluster: {cni: macvlan, subnet: 198.18.128.0/17}\n",
    );
    let report = lab.dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "--backend", "lab", "-q", "-f", &topology])
        .args(["--daemons-per-node", &clients, "-o", "json", "--report"])
        .arg(&report)
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    assert_eq!(r["verdict"], "error", "{r:#}");
    let reason = r["error"].as_str().expect("error");
    for part in [
        "neighbour entries",
        "net.ipv4.neigh.default.gc_thresh3",
        &format!("allows {limit}"),
    ] {
        assert!(reason.contains(part), "{part:?} not in {reason}");
    }
    assert_eq!(
        r["counts"]["agents_started"].as_u64().unwrap_or(0),
        0,
        "{r:#}"
    );
    lab.assert_gone();
}
