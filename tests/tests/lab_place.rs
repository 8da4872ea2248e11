//! Placing pods on a lab's nodes in parallel (`Scheduler::start_all` of the lab backend), as
//! root, with the real CNI plugins: pods of different nodes are placed at once and each gets
//! its own addresses; removing them leaves no IPAM file and no port; and when a placement
//! fails midway the run's cleanup still leaves nothing (namespaces, links, state, IPAM files,
//! processes). The agents are `true`: placement is under test, not probing. The lab's name
//! is unique to this process; the lab is removed also when the test fails. Where the lab
//! cannot run the test skips, or fails under CI ([`multinet_tests::require`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use multinet_coordinator::lab::backend::{Keep, LabBackend};
use multinet_coordinator::lab::build::Lab;
use multinet_coordinator::lab::net;
use multinet_coordinator::lab::topology::parse_topology;
use multinet_coordinator::pki::RunPki;
use multinet_coordinator::scheduler::{AgentEnv, PodStatus, Scheduler};
use multinet_proto::assignment::ProbeSettings;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;
use serde_json::Value;

/// The lab and the run directory of this test, removed when it ends however it ends.
struct Guard {
    lab: String,
    run_dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Lab::down(&self.lab);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn lab_namespaces(lab: &str) -> Vec<String> {
    multinet_tests::e2e::lab_namespaces(lab)
}

fn state(lab: &str) -> Value {
    let text = std::fs::read(Path::new("/run/multinet").join(lab).join("state.json"))
        .expect("the lab's state");
    serde_json::from_slice(&text).expect("state JSON")
}

/// The files of host-local's data directories that hold an address (one per address handed
/// out, named after it; `last_reserved_ip.*` and `lock` are its bookkeeping), under the lab's
/// `ipam/` (the lab's `lab/` and each node's `node/<id>/`), as `<network>/<address>`.
fn ipam_address_files(lab: &str) -> Vec<String> {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && name.parse::<std::net::IpAddr>().is_ok()
            {
                let network = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                found.push(format!("{network}/{name}"));
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new("/run/multinet").join(lab).join("ipam"),
        &mut found,
    );
    found
}

/// Links of namespace `ns` (`ip -o link show`), by name.
fn links_in(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// `count` clients on each of `nodes`, on both networks.
fn clients(nodes: &[&str], count: usize) -> Vec<AgentIdentity> {
    nodes
        .iter()
        .flat_map(|node| {
            (0..count).map(move |i| AgentIdentity {
                pod: format!("client-{node}-osd-{i}"),
                node: node.to_string(),
                role: Role::Client,
                networks: vec![CephNetwork::Public, CephNetwork::Cluster],
            })
        })
        .collect()
}

fn env<'a>(run_id: &'a str, pki: &'a RunPki, run_dir: &'a PathBuf) -> AgentEnv<'a> {
    AgentEnv {
        run_id,
        coordinator: "198.19.0.1:7443".parse().expect("addr"),
        probe: ProbeSettings {
            interval_ms: 1000,
            timeout_ms: 4000,
            small_bytes: 64,
            large_bytes: 65536,
        },
        grace_ms: 1000,
        pki,
        run_dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_several_nodes_are_placed_at_once_and_a_failure_midway_leaves_nothing() {
    if !multinet_tests::require::lab() {
        return;
    }
    let guard = Guard {
        lab: format!("q{:05}", std::process::id() % 100_000),
        run_dir: std::env::temp_dir().join(format!("multinet-test-place-{}", std::process::id())),
    };
    let lab_name = guard.lab.clone();
    std::fs::create_dir_all(&guard.run_dir).expect("run dir");
    let source = format!("name: {lab_name}\nnodes: 3\n");
    let (topology, problems) = parse_topology(&source).expect("topology");
    assert!(problems.is_valid(), "{problems:?}");
    // The source is kept with the lab: reopening it (step 2) reads it.
    let lab = tokio::task::spawn_blocking(move || Lab::up(topology, &source))
        .await
        .expect("join")
        .expect("lab up");
    let pki = RunPki::new("0123456789").expect("pki");
    let run_env = env("0123456789", &pki, &guard.run_dir);
    let nodes = ["n1", "n2", "n3"];

    // 1. Four clients on each of three nodes: every one placed, each with its own addresses.
    let mut backend = LabBackend::new(lab, vec!["true".into()], Vec::new(), Keep::Lab);
    let pods = clients(&nodes, 4);
    let statuses = backend.start_all(&pods, &run_env).await.expect("placed");
    let mut addresses = BTreeSet::new();
    for (pod, status) in pods.iter().zip(&statuses) {
        let PodStatus::Started(addrs) = status else {
            panic!("{} was not placed: {status:?}", pod.pod);
        };
        assert_eq!(addrs.len(), 2, "{}: an address per network", pod.pod);
        for a in addrs {
            assert!(addresses.insert(a.addr), "{} handed out twice", a.addr);
        }
    }
    // The lab recorded the pods in the order it began them: nodes were at work together, so
    // their pods are interleaved, not one node's after another's.
    let recorded: Vec<String> = state(&lab_name)["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    assert_eq!(recorded.len(), pods.len());
    let node_of = |ns: &str| {
        nodes
            .iter()
            .find(|n| ns.starts_with(&format!("{lab_name}-{n}-")))
            .copied()
    };
    let runs = recorded
        .windows(2)
        .filter(|w| node_of(&w[0]) != node_of(&w[1]))
        .count();
    assert!(
        runs > nodes.len() - 1,
        "pods were placed one node after another: {recorded:?}"
    );
    assert_eq!(
        ipam_address_files(&lab_name).len(),
        2 * pods.len(),
        "an IPAM file per address"
    );
    // Removing the pods (the run's cleanup when the lab was up before it) releases every
    // address and removes every pod namespace and control port.
    backend.cleanup().await.expect("pods removed");
    assert_eq!(ipam_address_files(&lab_name), Vec::<String>::new());
    let pod_namespaces: Vec<String> = lab_namespaces(&lab_name)
        .into_iter()
        .filter(|ns| ns.contains("-p"))
        .collect();
    assert_eq!(pod_namespaces, Vec::<String>::new(), "pod namespaces left");
    let pod_ports: Vec<String> = links_in(&format!("{lab_name}-ctl"))
        .into_iter()
        .filter(|l| nodes.iter().any(|n| l.starts_with(&format!("{n}p"))))
        .collect();
    assert_eq!(
        pod_ports,
        Vec::<String>::new(),
        "control ports of pods left"
    );

    // 2. A placement that fails midway: n2's pod namespaces numbered from 14 on exist
    // already (the next pods get 12, 13, …), so at least one of n2's five pods cannot be
    // made while other pods are placed or being placed. The run ends with the error, and
    // its cleanup removes the lab with everything in it.
    let lab = tokio::task::spawn_blocking({
        let name = lab_name.clone();
        move || Lab::open(&name)
    })
    .await
    .expect("join")
    .expect("lab reopened");
    for j in 14..40 {
        net::netns_add(&format!("{lab_name}-n2-p{j}")).expect("a namespace in the way");
    }
    let mut backend = LabBackend::new(lab, vec!["true".into()], Vec::new(), Keep::Nothing);
    let pods = clients(&nodes, 5);
    let error = backend
        .start_all(&pods, &run_env)
        .await
        .expect_err("n2's placement fails");
    assert!(
        error.to_string().contains(&format!("{lab_name}-n2-p")),
        "the error names the namespace: {error}"
    );
    let placed = state(&lab_name)["pods"].as_array().map_or(0, Vec::len);
    assert!(placed >= 1, "other pods were placed before the failure");
    backend.cleanup().await.expect("cleanup");
    assert_eq!(
        lab_namespaces(&lab_name),
        Vec::<String>::new(),
        "namespaces left"
    );
    assert!(
        !Path::new("/run/multinet").join(&lab_name).exists(),
        "lab state (IPAM files) left"
    );
    assert_eq!(
        multinet_tests::e2e::processes_mentioning(&guard.run_dir.display().to_string()),
        Vec::<String>::new(),
        "agent processes left"
    );
    let host_links = links_in_host();
    assert!(
        host_links.iter().all(|l| !l.starts_with(&lab_name)),
        "links of the lab in the host namespace: {host_links:?}"
    );
}

fn links_in_host() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect()
}
