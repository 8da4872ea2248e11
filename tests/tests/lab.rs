//! The lab, as root: real namespaces, the real CNI plugins, faults the run must find. Each
//! test uses its own lab name, removes its lab also when it fails, and checks that nothing of
//! it is left (namespaces, state, processes). Where the lab cannot run (not root, no `ip`,
//! `nft` or CNI plugins) a test skips with a message, and fails instead under CI
//! (`CI=true`) or with `MULTINET_REQUIRE_LAB=1` ([`multinet_tests::require`]).

mod lab_support;

use std::process::Command;
use std::time::Duration;

use lab_support::*;
use multinet_tests::e2e::findings;
use multinet_tests::eventually::eventually;
use serde_json::Value;

#[test]
fn lab_up_status_down_leaves_nothing() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('u');
    let topology = lab.topology("nodes: 2\n");
    let up = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "up", "-f", &topology])
        .output()
        .expect("lab up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let mut expected = vec![
        format!("{}-ctl", lab.name),
        format!("{}-n1", lab.name),
        format!("{}-n2", lab.name),
        format!("{}-sw", lab.name),
    ];
    expected.sort();
    let mut got = namespaces_of(&lab.name);
    got.sort();
    assert_eq!(got, expected);
    // The host namespace has no route to a lab subnet.
    assert_no_lab_route();
    // `lab status` lists the lab, and `lab status NAME` says what it is made of.
    let (code, list) = lab_status(None);
    assert_eq!(code, Some(0));
    assert!(list.lines().any(|l| l == lab.name), "{list}");
    let (code, status) = lab_status(Some(&lab.name));
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(
        status.lines().next(),
        Some(format!("lab {}: 2 node(s), networks public, cluster", lab.name).as_str()),
        "{status}"
    );
    let listed = status
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("namespaces (4): "))
        .map(|names| {
            let mut names: Vec<String> = names.split(' ').map(str::to_string).collect();
            names.sort();
            names
        });
    assert_eq!(listed, Some(expected), "{status}");
    let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "down", &lab.name])
        .output()
        .expect("lab down");
    assert!(down.status.success());
    lab.assert_gone();
    // Gone from `lab status` too: not listed, and asking for it is an error.
    let (_, list) = lab_status(None);
    assert!(!list.lines().any(|l| l == lab.name), "{list}");
    let (code, status) = lab_status(Some(&lab.name));
    assert_ne!(code, Some(0), "status of a removed lab: {status}");
}

#[test]
fn default_topology_passes_with_no_finding_and_leaves_nothing() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('h');
    // The default topology (3 nodes, macvlan, Rook's converged 3 + 16), probing quickly.
    let (code, r) = run(&lab.topology("config:\n  probeInterval: 200ms\n"));
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["backend"], "lab");
    assert_eq!(r["validates_real_network"], true);
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["findings"], serde_json::json!([]), "{r:#}");
    assert_eq!(r["expected_clients"], 3 * 19);
    assert_eq!(r["started_clients"], 3 * 19);
    // No server_node given: the node type with most OSDs, its first node.
    assert_eq!(r["server_node"], "n1");
    let paths = r["paths"].as_array().expect("paths");
    assert!(!paths.is_empty());
    assert!(
        paths.iter().all(|p| p["ok"] == p["sent"]),
        "every path ok: {r:#}"
    );
    // Every probing agent said where its probes leave from: a client by its NAD interfaces,
    // a host checker by its shim, never by the control interface.
    for agent in r["agents"].as_array().expect("agents") {
        if agent["role"] == "server" {
            continue;
        }
        let routes = agent["egress"]["routes"].as_array().expect("egress routes");
        assert!(!routes.is_empty(), "{agent:#}");
        for route in routes {
            let expected = match agent["role"].as_str() {
                Some("host_check") => "shim0",
                _ => route["network"].as_str().expect("network"),
            };
            assert_eq!(route["interface"], expected, "{agent:#}");
        }
        assert_eq!(agent["egress"]["control_interface"], "ctl0", "{agent:#}");
    }
    lab.assert_gone();
}

#[test]
fn two_labs_run_side_by_side() {
    if !lab_possible() {
        return;
    }
    let (a, b) = (LabGuard::new('a'), LabGuard::new('c'));
    let (ta, tb) = (a.topology(SMALL), b.topology(SMALL));
    let other = std::thread::spawn(move || run(&tb));
    let (code, r) = run(&ta);
    let (code_b, r_b) = other.join().expect("the other run");
    for (code, r) in [(code, &r), (code_b, &r_b)] {
        assert_eq!(code, Some(0), "{r:#}");
        assert_eq!(r["verdict"], "pass", "{r:#}");
    }
    a.assert_gone();
    b.assert_gone();
}

#[test]
fn blocked_cluster_to_the_server_node_is_inter_node_blocked() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('b');
    let (code, r) = run(&lab.topology(&format!(
        "server_node: n1\nfaults:\n  - block: {{network: cluster, from: '*', to: n1}}\n{SMALL}"
    )));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    assert_eq!(
        findings(&r),
        [(
            "inter_node_blocked".to_string(),
            Some("cluster".to_string()),
            vec!["n2".to_string(), "n3".to_string()]
        )]
    );
    lab.assert_gone();
}

#[test]
fn missing_host_route_is_host_unreachable() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('r');
    let (code, r) = run(&lab.topology(&format!(
        "faults:\n  - host-route-missing: {{node: n2}}\n{SMALL}"
    )));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    assert_eq!(
        findings(&r),
        [(
            "host_unreachable".to_string(),
            Some("public".to_string()),
            vec!["n2".to_string()]
        )]
    );
    lab.assert_gone();
}

#[test]
fn missing_cluster_uplink_is_address_unavailable_with_the_cni_error() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('m');
    let (code, r) = run(&lab.topology(&format!(
        "server_node: n1\nunderlay:\n  - {{node: n3, network: cluster, present: false}}\n{SMALL}"
    )));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let found = findings(&r);
    assert!(
        found.contains(&(
            "address_unavailable".to_string(),
            Some("cluster".to_string()),
            vec!["n3".to_string()]
        )),
        "{found:?}"
    );
    let f = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "address_unavailable")
        .expect("finding");
    assert!(
        f["evidence"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("on node n3") && e.contains("CNI ADD")),
        "{f:#}"
    );
    // The plugin said the master is missing: the finding names it and says so first.
    assert_eq!(f["evidence"]["missing_master"], "clu0", "{f:#}");
    assert!(
        f["suggestions"][0]
            .as_str()
            .is_some_and(|s| s.contains("\"clu0\"") && s.contains("n3")),
        "{f:#}"
    );
    lab.assert_gone();
}

#[test]
fn uplink_mtu_below_the_nads_is_an_mtu_blackhole() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('t');
    let topology = format!(
        "server_node: n1\nnetworks:\n  public: {{cni: macvlan, mtu: 1500}}\n  cluster: {{cni: macvlan, mtu: 1500}}\nunderlay:\n  - {{node: n2, network: public, mtu: 1280}}\n{SMALL}"
    );
    let (code, r) = run(&lab.topology(&topology));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let found = findings(&r);
    assert_eq!(
        found,
        [(
            "mtu_blackhole".to_string(),
            Some("public".to_string()),
            vec!["n2".to_string()]
        )],
        "{r:#}"
    );
    lab.assert_gone();
}

#[test]
fn lossy_uplink_is_flaky() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('l');
    let (code, r) = run(&lab.topology(&format!(
        "server_node: n1\nfaults:\n  - loss: {{network: public, node: n2, percent: 30}}\n{SMALL}"
    )));
    assert_eq!(code, Some(1), "warn or fail both exit 1");
    assert!(r["verdict"] == "warn" || r["verdict"] == "fail", "{r:#}");
    let found = findings(&r);
    assert!(
        found.iter().any(|(k, n, nodes)| k == "flaky"
            && n.as_deref() == Some("public")
            && nodes == &["n2".to_string()]),
        "{found:?}"
    );
    // The host checker on n2 gets through most of the time: flaky too, never "cannot reach".
    assert!(
        !found.iter().any(|(k, _, _)| k == "host_unreachable"),
        "{found:?}"
    );
    lab.assert_gone();
}

#[test]
fn killed_agent_is_agent_lost_not_a_network_finding() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('k');
    let (code, r) = run(&lab.topology(&format!(
        "server_node: n1\nfaults:\n  - kill-agent: {{node: n2, after: 300ms}}\n{SMALL}"
    )));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    assert_eq!(
        findings(&r),
        [("agent_lost".to_string(), None, vec!["n2".to_string()])]
    );
    lab.assert_gone();
}

#[test]
fn public_range_smaller_than_the_worst_case_is_address_unavailable() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('s');
    let topology = format!(
        "networks:\n  public: {{cni: macvlan, subnet: 198.18.0.0/20, range_start: 198.18.1.1, range_end: 198.18.1.6}}\n  cluster: {{cni: macvlan}}\n{SMALL}"
    );
    let (code, r) = run(&lab.topology(&topology));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let f = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "address_unavailable")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["network"], "public");
    // 3 nodes × 3 clients + the server = 10 want a public address; the range has 6.
    assert_eq!(f["evidence"]["expected"], 10);
    assert_eq!(f["evidence"]["got"], 6);
    lab.assert_gone();
}

#[test]
fn sigkill_then_lab_down_leaves_nothing() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('x');
    let (mut child, agents) = slow_run_with_agents(&lab);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !namespaces_of(&lab.name).is_empty(),
        "the killed run could not clean up"
    );
    let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "down", &lab.name])
        .output()
        .expect("lab down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    // `lab down` stops the processes in the lab's namespaces before it removes them.
    let left: Vec<u32> = agents.iter().copied().filter(alive).collect();
    for pid in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    lab.assert_gone();
    assert_eq!(
        left,
        Vec::<u32>::new(),
        "agents still running after lab down"
    );
}

#[test]
fn sigkill_then_a_new_lab_up_clears_the_stale_lab() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('y');
    let (mut child, agents) = slow_run_with_agents(&lab);
    let _ = child.kill();
    let _ = child.wait();
    let stale_pods = namespaces_of(&lab.name).len();
    assert!(
        stale_pods > 4,
        "the killed run left its pods ({stale_pods} namespaces)"
    );
    let topology = lab.topology("nodes: 2\n");
    let up = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "up", "-f", &topology])
        .output()
        .expect("lab up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(
        !agents.iter().any(alive),
        "the stale lab's agents are stopped"
    );
    // Only the new lab's namespaces: control, switch, two nodes.
    assert_eq!(namespaces_of(&lab.name).len(), 4);
    assert_eq!(ipam_allocations(&lab.name), Vec::<String>::new());
    let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "down", &lab.name])
        .output()
        .expect("lab down");
    assert!(down.status.success());
    lab.assert_gone();
}

fn alive(pid: &u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Starts a run on a small lab that probes slowly (so there is time to act on it) and waits
/// until its 13 agents (10 pods, 3 host checkers) run; returns the run and the agents' pids.
fn slow_run_with_agents(lab: &LabGuard) -> (std::process::Child, Vec<u32>) {
    let topology = lab.topology(&SMALL.replace("probeInterval: 100ms", "probeInterval: 1s"));
    let child = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "lab",
            "-q",
            "-f",
            &topology,
            "--agent-grace-seconds",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("multinet runs");
    let agents = eventually(Duration::from_secs(30), "the run's 13 agents", || {
        let agents = children_of(child.id());
        if agents.len() >= 13 {
            Ok(agents)
        } else {
            Err(agents)
        }
    });
    assert_eq!(agents.len(), 13, "the run started its agents");
    (child, agents)
}

/// Agent processes started by `pid` (its children running `--assignment`).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (ppid == pid && String::from_utf8_lossy(&cmdline).contains("--assignment"))
                .then_some(child)
        })
        .collect()
}

#[test]
fn public_blocked_from_one_node_is_node_unreachable() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('n');
    let (code, r) = run(&lab.topology(&format!(
        "server_node: n1\nfaults:\n  - block: {{network: public, from: n3, to: '*'}}\n{SMALL}"
    )));
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let found = findings(&r);
    assert!(
        found.contains(&(
            "node_unreachable".to_string(),
            Some("public".to_string()),
            vec!["n3".to_string()]
        )),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(k, _, nodes)| nodes == &["n3".to_string()]
                && (k == "node_unreachable" || k == "host_unreachable")),
        "{found:?}"
    );
    lab.assert_gone();
}

const NADS: &str = r#"apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: public-net, namespace: rook-ceph}
spec:
  config: '{"cniVersion": "0.4.0", "name": "public-net", "plugins": [{"type": "macvlan", "master": "eth1", "mode": "bridge", "ipam": {"type": "whereabouts", "range": "198.18.32.0/24", "exclude": ["198.18.32.0/28"]}}, {"type": "tuning"}]}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: cluster-net, namespace: rook-ceph}
spec:
  config: '{"cniVersion": "0.3.1", "type": "bridge", "bridge": "br-ceph", "ipam": {"type": "whereabouts", "range": "fd00:20::/64", "range_start": "fd00:20::1:1", "range_end": "fd00:20::1:ff"}}'
"#;

#[test]
fn users_nads_run_as_written_conflist_whereabouts_bridge_and_ipv6() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('w');
    let nads = lab.dir.join("nads.yaml");
    std::fs::write(&nads, NADS).expect("write NADs");
    let topology = lab.topology(SMALL);
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "lab",
            "-o",
            "json",
            "-f",
            &topology,
            "--nads",
            nads.to_str().expect("path"),
        ])
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("whereabouts IPAM runs as host-local"),
        "the mapping is said: {stderr}"
    );
    let r: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["verdict"], "pass");
    // whereabouts' exclude carried over: the server, first to get an address, got .16.
    let public_target = r["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .find(|p| p["network"] == "public")
        .expect("a public path");
    assert!(
        public_target["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("198.18.32.16:")),
        "{public_target:#}"
    );
    // The cluster network is IPv6 on the bridge plugin: its targets are IPv6 addresses.
    let cluster_target = r["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .find(|p| p["network"] == "cluster")
        .expect("a cluster path");
    assert!(
        cluster_target["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("[fd00:20::")),
        "{cluster_target:#}"
    );
    lab.assert_gone();
}

#[test]
fn sigterm_during_a_lab_run_leaves_nothing() {
    signal_during_a_lab_run_leaves_nothing('g', "-TERM", 143);
}

#[test]
fn sigint_during_a_lab_run_leaves_nothing() {
    signal_during_a_lab_run_leaves_nothing('i', "-INT", 130);
}

fn signal_during_a_lab_run_leaves_nothing(letter: char, signal: &str, code: i32) {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new(letter);
    let (mut child, agents) = slow_run_with_agents(&lab);
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("run ends");
    assert_eq!(exit.code(), Some(code));
    lab.assert_gone();
    assert!(!agents.iter().any(alive), "agents left after {signal}");
}

/// Whether this kernel can make an ipvlan link, asked the way the lab's preflight does not:
/// in a scratch namespace of the test's own (removed on drop), on a bridge.
fn kernel_has_ipvlan() -> bool {
    struct Scratch(String);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let ip = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let scratch = Scratch(format!("mntest_ipvlan-{}", std::process::id()));
    assert!(ip(&["netns", "add", &scratch.0]), "scratch namespace");
    ip(&["-n", &scratch.0, "link", "add", "b0", "type", "bridge"])
        && ip(&[
            "-n", &scratch.0, "link", "add", "link", "b0", "name", "v0", "type", "ipvlan",
        ])
}

/// Both branches of the preflight's kernel check on this machine: where the kernel has
/// ipvlan, a lab with an ipvlan network is built; where it lacks it, the lab says so before
/// anything is created. (The lacking branch on any kernel: the unit test of
/// `missing_link_kinds`.)
#[test]
fn an_ipvlan_lab_is_built_where_the_kernel_has_ipvlan_and_refused_before_anything_where_not() {
    if !lab_possible() {
        return;
    }
    let has_ipvlan = kernel_has_ipvlan();
    let lab = LabGuard::new('v');
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "lab",
            "up",
            "-f",
            &lab.topology("networks:\n  public: {cni: ipvlan}\n"),
        ])
        .output()
        .expect("lab up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if has_ipvlan {
        assert!(out.status.success(), "this kernel has ipvlan: {stderr}");
        assert_eq!(
            namespaces_of(&lab.name).len(),
            3 + 2,
            "switch, control, 3 nodes"
        );
        let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
            .args(["lab", "down", &lab.name])
            .output()
            .expect("lab down");
        assert!(down.status.success());
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(
                "ipvlan links (used by the public network(s)), which this kernel does not provide"
            ),
            "{stderr}"
        );
    }
    lab.assert_gone();
}

#[test]
fn runs_on_a_lab_that_is_up_leave_it_as_it_was() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('p');
    let topology = lab.topology(&format!("nodes: 2\n{SMALL}"));
    let up = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "up", "-f", &topology])
        .output()
        .expect("lab up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let before = namespaces_of(&lab.name);
    let control_mac = || {
        let out = Command::new("ip")
            .args([
                "-n",
                &format!("{}-ctl", lab.name),
                "-br",
                "link",
                "show",
                "ctl",
            ])
            .output()
            .expect("ip link");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    // Pods come and go on the control bridge; its address must not follow them, or the
    // nodes' host checkers keep talking to a MAC that is gone.
    assert_eq!(control_mac(), "02:6d:6e:00:00:01");
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
            .args(["run", "--lab", &lab.name, "-q", "-o", "json"])
            .output()
            .expect("multinet runs");
        let r: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(r["verdict"], "pass", "{r:#}");
        assert_eq!(
            namespaces_of(&lab.name),
            before,
            "the run's pods are gone, the lab stays"
        );
        // CNI DEL ran for every attachment: host-local holds no address any more.
        assert_eq!(ipam_allocations(&lab.name), Vec::<String>::new());
        assert_eq!(control_mac(), "02:6d:6e:00:00:01");
    }
    let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "down", &lab.name])
        .output()
        .expect("lab down");
    assert!(down.status.success());
    lab.assert_gone();
}

#[test]
fn without_backend_or_kubeconfig_root_gets_the_lab_and_others_the_local_backend() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('d');
    let home = lab.dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    // As root with the CNI plugins, no Kubernetes configuration anywhere: the lab.
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "-q", "-o", "json", "-f", &lab.topology(SMALL)])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", &home)
        .output()
        .expect("multinet runs");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["backend"], "lab", "{r:#}");
    assert_eq!(r["verdict"], "pass", "{r:#}");
    lab.assert_gone();
    // Another user: the local backend, with a notice saying why and how to get the lab.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "-o",
            "json",
            "--nodes",
            "2",
            "--daemons-per-node",
            "1",
            "--probe-interval",
            "100ms",
        ])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", "/nonexistent")
        .current_dir("/")
        .output()
        .expect("setpriv runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("using the local backend") && stderr.contains("run as root"),
        "{stderr}"
    );
    let r: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {stderr}"));
    assert_eq!(r["backend"], "local", "{r:#}");
    assert_eq!(r["verdict"], "pass", "{r:#}");
}

#[test]
fn ipv6_public_network_with_the_hosts_shim_passes() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('6');
    let (code, r) = run(&lab.topology(&format!(
        "networks:\n  public: {{cni: macvlan, subnet: 'fd00:18::/64'}}\n  cluster: {{cni: bridge, subnet: 'fd00:19::/64'}}\n{SMALL}"
    )));
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["verdict"], "pass", "{r:#}");
    let paths = r["paths"].as_array().expect("paths");
    assert!(
        paths.iter().all(|p| p["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("[fd00:1"))),
        "every target is IPv6: {r:#}"
    );
    // The host checkers reached the server over the IPv6 shim.
    assert!(
        paths.iter().any(
            |p| p["client"].as_str().is_some_and(|c| c.starts_with("host-"))
                && p["ok"] == p["sent"]
        ),
        "{r:#}"
    );
    lab.assert_gone();
}

#[test]
fn host_device_gives_its_one_device_to_one_pod_per_node() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('e');
    // One OSD client per node on the cluster network, which is host-device: on the server's
    // node the server and the client both want the node's one device.
    let (code, r) = run(&lab.topology(
        "server_node: n1\nnetworks:\n  public: {cni: macvlan}\n  cluster: {cni: host-device}\nconfig:\n  nodeTypes:\n    converged: {osdsPerNode: 1, otherDaemonsPerNode: 0}\n  probeInterval: 100ms\n  probeTimeout: 500ms\n  resourceTimeout: 1m\n",
    ));
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let f = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "address_unavailable")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["network"], "cluster");
    assert_eq!(f["nodes"], serde_json::json!(["n1"]));
    // 3 clients + the server want the cluster network; n1's device went to one of two.
    assert_eq!(f["evidence"]["expected"], 4);
    assert_eq!(f["evidence"]["got"], 3);
    lab.assert_gone();
}

#[test]
fn sigterm_while_pods_are_placed_leaves_nothing() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('q');
    // The default topology's 58 pods take a couple of seconds to place: the signal arrives
    // while a pod is being attached on the lab's blocking thread.
    let topology = lab.topology("config:\n  probeInterval: 200ms\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "--backend", "lab", "-q", "-f", &topology])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("multinet runs");
    let placed = eventually(Duration::from_secs(30), "5 agents placed", || {
        let placed = children_of(child.id()).len();
        if placed >= 5 { Ok(placed) } else { Err(placed) }
    });
    assert!(
        (5..61).contains(&placed),
        "caught during placement ({placed} agents)"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("run ends");
    assert_eq!(exit.code(), Some(143));
    lab.assert_gone();
}

/// whereabouts hands out every address of its range but the subnet's own and broadcast ones
/// (a /30 gives two); the lab runs it as host-local, which by itself keeps the subnet's first
/// address as a gateway. The mapped range set, run through the real host-local plugin, gives
/// exactly whereabouts' addresses.
#[test]
fn whereabouts_mapped_to_host_local_hands_out_every_address_whereabouts_would() {
    if !lab_possible() {
        return;
    }
    use multinet_proto::cidr::Family;
    use multinet_proto::multus::ipam::RangeReport;
    let range = RangeReport {
        cidr: "198.18.99.0/30".into(),
        family: Family::V4,
        first: Some("198.18.99.1".into()),
        last: Some("198.18.99.2".into()),
        usable: 2,
    };
    let set = multinet_coordinator::lab::build::host_local_set(&range, &[]);
    let data = std::env::temp_dir().join(format!("multinet-hl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let config = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "whereabouts-capacity",
        "ipam": {"type": "host-local", "dataDir": data, "ranges": [set]},
    });
    let add = |id: &str| -> Option<String> {
        use std::io::Write;
        let mut child = Command::new("/usr/lib/cni/host-local")
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", "/proc/self/ns/net")
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("host-local runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(config.to_string().as_bytes())
            .expect("config written");
        let out = child.wait_with_output().expect("host-local ends");
        let result: Value = serde_json::from_slice(&out.stdout).ok()?;
        result["ips"][0]["address"].as_str().map(str::to_string)
    };
    let got: Vec<Option<String>> = ["a", "b", "c"].iter().map(|id| add(id)).collect();
    let _ = std::fs::remove_dir_all(&data);
    assert_eq!(
        got,
        [
            Some("198.18.99.1/30".to_string()),
            Some("198.18.99.2/30".to_string()),
            None
        ]
    );
}

/// Rook's default deadline (3 minutes per stage) and its smallest flaky threshold (5 s), probing
/// quickly: the early verdict must come long before the deadline.
const EARLY: &str = "config:\n  nodeTypes:\n    converged: {osdsPerNode: 2, otherDaemonsPerNode: 1}\n  probeInterval: 100ms\n  probeTimeout: 500ms\n  resourceTimeout: 3m\n  flakyThreshold: 5s\n";

#[test]
fn a_failing_run_ends_as_soon_as_its_verdict_is_certain_not_at_the_deadline() {
    if !lab_possible() {
        return;
    }
    let cases = [
        (
            'f',
            "server_node: n1\nfaults:\n  - block: {network: cluster, from: '*', to: n1}\n",
            ("inter_node_blocked", "cluster", vec!["n2", "n3"]),
        ),
        (
            '2',
            "server_node: n1\nfaults:\n  - block: {network: cluster, from: n1, to: '*'}\n",
            ("inter_node_blocked", "cluster", vec!["n2", "n3"]),
        ),
        (
            '3',
            "server_node: n1\nnetworks:\n  public: {cni: macvlan, mtu: 1500}\n  cluster: {cni: macvlan, mtu: 1500}\nunderlay:\n  - {node: n2, network: public, mtu: 1280}\n",
            ("mtu_blackhole", "public", vec!["n2"]),
        ),
        (
            'j',
            "faults:\n  - host-route-missing: {node: n2}\n",
            ("host_unreachable", "public", vec!["n2"]),
        ),
    ];
    for (letter, fault, (kind, network, nodes)) in cases {
        let lab = LabGuard::new(letter);
        let (code, r) = run(&lab.topology(&format!("{fault}{EARLY}")));
        assert_eq!(code, Some(1), "{fault}");
        assert_eq!(r["verdict"], "fail", "{fault}: {r:#}");
        assert_eq!(
            findings(&r),
            [(
                kind.to_string(),
                Some(network.to_string()),
                nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>()
            )],
            "{fault}"
        );
        let probe = r["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "probe"))
            .unwrap_or_else(|| panic!("{fault}: no probe stage: {r:#}"));
        assert_eq!(probe["outcome"], "decided", "{fault}: {probe}");
        // The bound is the feature: the flaky threshold (5 s) after the first pass, plus the
        // evidence, plus a loaded machine's slack — a third of the 180 s deadline at most.
        let ms = probe["duration_ms"].as_u64().expect("duration_ms");
        assert!(ms < 60_000, "{fault}: the verdict took {ms} ms");
        lab.assert_gone();
    }
}

const MISSING_PLUGIN_NAD: &str = r#"apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: public-net, namespace: rook-ceph}
spec:
  config: '{"cniVersion": "0.4.0", "name": "public-net", "plugins": [{"type": "macvlan", "master": "eth1", "ipam": {"type": "host-local", "subnet": "198.18.40.0/24"}}, {"type": "multinet-no-such-plugin"}]}'
"#;

#[test]
fn a_lab_that_cannot_be_built_still_writes_its_report_with_verdict_error_and_exit_69() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('o');
    let topology = lab.topology("");
    let nads = lab.dir.join("nads.yaml");
    std::fs::write(&nads, MISSING_PLUGIN_NAD).expect("write NADs");
    for (format, file) in [("json", "report.json"), ("junit", "report.xml")] {
        let report = lab.dir.join(file);
        let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
            .args(["run", "--backend", "lab", "-q", "-f", &topology, "--nads"])
            .arg(&nads)
            .args(["-o", format, "--report"])
            .arg(&report)
            .output()
            .expect("multinet runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Not 1: automation tells a run that could not start from a network that failed.
        assert_eq!(out.status.code(), Some(69), "{stderr}");
        assert!(stderr.contains("multinet-no-such-plugin"), "{stderr}");
        let written = std::fs::read_to_string(&report).expect("the report is written");
        if format == "json" {
            let r: Value = serde_json::from_str(&written).expect("JSON report");
            assert_eq!(r["verdict"], "error", "{r:#}");
            assert_eq!(r["backend"], "lab", "{r:#}");
            let reason = r["error"].as_str().expect("error");
            assert!(
                reason.starts_with("building the lab: ")
                    && reason.contains("/usr/lib/cni/multinet-no-such-plugin"),
                "{reason}"
            );
        } else {
            assert!(
                written.contains(r#"errors="1""#)
                    && written.contains("<error message=\"building the lab: ")
                    && written.contains("multinet-no-such-plugin"),
                "{written}"
            );
        }
        // The preflight refused before anything was made.
        lab.assert_gone();
    }
}

#[test]
fn a_network_inside_the_control_network_is_refused_before_anything_is_created() {
    if !lab_possible() {
        return;
    }
    // Issue #12's repro: with the public subnet in 198.19.0.0/16 (the control network) and n3's
    // host route missing, the run passed, its host checker reaching the server over the control
    // network. Such a topology is now refused.
    let lab = LabGuard::new('4');
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "lab",
            "-q",
            "-o",
            "json",
            "-f",
            &lab.topology(&format!(
                "nodes: 3\nnetworks:\n  public: {{cni: macvlan, subnet: 198.19.36.0/24}}\n  cluster: {{cni: macvlan, subnet: 198.19.46.0/24}}\nfaults:\n  - host-route-missing: {{node: n3}}\n{SMALL}"
            )),
        ])
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "{stderr}");
    for range in ["198.19.36.0/24", "198.19.46.0/24", "198.19.0.0/16"] {
        assert!(stderr.contains(range), "{range} not named: {stderr}");
    }
    lab.assert_gone();
}

/// The first IPv4 address on `dev` in namespace `ns`.
fn address_in(ns: &str, dev: &str) -> std::net::IpAddr {
    let out = Command::new("ip")
        .args(["-n", ns, "-4", "-o", "addr", "show", "dev", dev])
        .output()
        .expect("ip addr");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 address on {dev} in {ns}: {text}"))
}

#[test]
fn the_control_network_answers_arp_only_for_its_own_addresses() {
    use multinet_coordinator::lab::net::{sysctl_in, udp_socket_in};
    use std::net::{Ipv4Addr, SocketAddr};
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('5');
    let up = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "up", "-f", &lab.topology("nodes: 2\n")])
        .output()
        .expect("lab up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let (n1, n2) = (format!("{}-n1", lab.name), format!("{}-n2", lab.name));
    // n2's public address (its host shim), and on n1 a route to it into the control network:
    // an overlapping route, as a node may have one.
    let public = address_in(&n2, "shim0");
    let added = Command::new("ip")
        .args([
            "-n",
            &n1,
            "route",
            "add",
            &format!("{public}/32"),
            "dev",
            "ctl0",
        ])
        .output()
        .expect("ip route");
    assert!(added.status.success(), "{added:?}");
    let receiver = udp_socket_in(&n2, SocketAddr::new(public, 0)).expect("receiver");
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let target = receiver.local_addr().expect("bound");
    let sender = udp_socket_in(&n1, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).expect("sender");
    let arrives = || {
        let _ = sender.send_to(b"escape?", target);
        receiver.recv_from(&mut [0u8; 16]).is_ok()
    };
    // n2's control interface does not answer ARP for its public address: nothing gets through
    // by the control network (three tries, each 300 ms, cover the kernel's ARP retries).
    assert!(
        !(0..3).any(|_| arrives()),
        "a datagram to n2's public address went over the control network"
    );
    // The same with Linux's default (answer for any address on any interface): it gets
    // through, so the setting above is what the kernel honours.
    sysctl_in(&n2, "net/ipv4/conf/ctl0/arp_ignore", "0").expect("sysctl");
    eventually(
        Duration::from_secs(10),
        "the escape with arp_ignore 0",
        || arrives().then_some(()).ok_or("nothing arrived"),
    );
    drop((sender, receiver));
    let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "down", &lab.name])
        .output()
        .expect("lab down");
    assert!(down.status.success());
    lab.assert_gone();
}

#[test]
fn a_host_route_into_the_control_network_is_wrong_egress_not_a_pass() {
    if !lab_possible() {
        return;
    }
    // A node whose only route to the public network goes into the control network, as a
    // host with overlapping routes may have: its host checker's probes would test the control
    // network, not the public one. They are not counted, and the run says why it fails.
    let lab = LabGuard::new('7');
    let topology = lab.topology(&format!(
        "nodes: 2\nserver_node: n1\nfaults:\n  - host-route-missing: {{node: n2}}\n{SMALL}"
    ));
    let up = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "up", "-f", &topology])
        .output()
        .expect("lab up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let added = Command::new("ip")
        .args([
            "-n",
            &format!("{}-n2", lab.name),
            "route",
            "add",
            "198.18.0.0/20",
            "dev",
            "ctl0",
        ])
        .output()
        .expect("ip route");
    assert!(added.status.success(), "{added:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "--lab", &lab.name, "-q", "-o", "json"])
        .output()
        .expect("multinet runs");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    assert_eq!(r["verdict"], "fail", "{r:#}");
    let found = findings(&r);
    assert!(
        found.contains(&(
            "wrong_egress".to_string(),
            Some("public".to_string()),
            vec!["n2".to_string()]
        )),
        "{found:?}"
    );
    // Not counted: the host checker is not also said to be unreachable.
    assert!(
        !found.iter().any(|(kind, _, _)| kind == "host_unreachable"),
        "{found:?}"
    );
    let f = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "wrong_egress")
        .expect("finding");
    assert_eq!(f["evidence"]["agents"][0]["interface"], "ctl0", "{f:#}");
    let down = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "down", &lab.name])
        .output()
        .expect("lab down");
    assert!(down.status.success());
    lab.assert_gone();
}
