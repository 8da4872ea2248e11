//! Faults on a lab that is up, as root: `multinet lab fault add | list | remove` between runs
//! on the same lab (a pulled cable on one node's cluster uplink is found by the next run, and
//! is gone after `remove`), and input the lab cannot apply refused with exit 22. The lab is
//! removed also when the test fails, and nothing of it is left. Skips where the lab cannot
//! run, fails instead under CI ([`multinet_tests::require`]).

mod lab_support;

use std::process::{Command, Output};

use lab_support::*;
use multinet_tests::e2e::findings;
use serde_json::Value;

/// Short timings, so a failing run ends early: a client is judged after 5 s of failing.
const QUICK: &str = "config:\n  nodeTypes:\n    converged: {osdsPerNode: 2, otherDaemonsPerNode: 1}\n  probeInterval: 100ms\n  probeTimeout: 500ms\n  flakyThreshold: 5s\n  resourceTimeout: 1m\n";

fn multinet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(args)
        .output()
        .expect("multinet runs")
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_on(lab: &str) -> (Option<i32>, Value) {
    let out = multinet(&["run", "--backend", "lab", "--lab", lab, "-q", "-o", "json"]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON report ({e}); {}", said(&out)));
    (out.status.code(), report)
}

#[test]
fn a_link_down_added_to_a_lab_that_is_up_is_found_by_the_next_run_and_gone_after_remove() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('f');
    let topology = lab.topology(QUICK);
    let up = multinet(&["lab", "up", "-f", &topology]);
    assert!(up.status.success(), "{}", said(&up));
    let name = lab.name.as_str();

    // What the lab cannot apply is refused, naming the field, and nothing is applied.
    for (fault, field) in [
        (
            "link-down: {network: cluster, node: n9}",
            "fault.link-down.node",
        ),
        ("host-route-missing: {node: n1}", "fault"),
        (
            "block: {network: cluster, from: n1, to: n2, for: 10s}",
            "fault.block.for",
        ),
        ("cut: {node: n1}", "fault.cut"),
    ] {
        let out = multinet(&["lab", "fault", "add", name, fault]);
        assert_eq!(out.status.code(), Some(22), "{fault}: {}", said(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(field),
            "{fault}: {}",
            said(&out)
        );
    }
    let out = multinet(&["lab", "fault", "remove", name, "7"]);
    assert_eq!(out.status.code(), Some(22), "{}", said(&out));
    let out = multinet(&["lab", "fault", "list", name]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        said(&out)
    );

    // n2's cluster uplink loses its link: the switch port is down.
    let out = multinet(&[
        "lab",
        "fault",
        "add",
        name,
        "link-down: {network: cluster, node: n2}",
    ]);
    assert!(out.status.success(), "{}", said(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id, "0", "{}", said(&out));
    let port = Command::new("ip")
        .args(["-n", &format!("{name}-sw"), "-o", "link", "show", "n2-clu"])
        .output()
        .expect("ip runs");
    let port = String::from_utf8_lossy(&port.stdout).into_owned();
    let flags = port.split(['<', '>']).nth(1).unwrap_or_default();
    assert!(!flags.split(',').any(|f| f == "UP"), "{port}");
    let out = multinet(&["lab", "fault", "list", name]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.starts_with("0\t") && listed.contains("link-down: {network: cluster, node: n2}"),
        "{}",
        said(&out)
    );

    // The next run finds exactly that: n2 cut off on the cluster network.
    let (code, report) = run_on(name);
    assert_eq!(code, Some(1), "{report:#}");
    let failing: Vec<_> = findings(&report)
        .into_iter()
        .filter(|(kind, _, _)| kind == "node_unreachable")
        .collect();
    assert_eq!(
        failing,
        vec![(
            "node_unreachable".to_string(),
            Some("cluster".to_string()),
            vec!["n2".to_string()]
        )],
        "{:#}",
        report["findings"]
    );

    // Removed, the network is as it was, and the next run passes.
    let out = multinet(&["lab", "fault", "remove", name, &id]);
    assert!(out.status.success(), "{}", said(&out));
    let out = multinet(&["lab", "fault", "list", name]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        said(&out)
    );
    let (code, report) = run_on(name);
    assert_eq!(code, Some(0), "{:#}", report["findings"]);

    let down = multinet(&["lab", "down", name]);
    assert!(down.status.success(), "{}", said(&down));
    lab.assert_gone();
}
