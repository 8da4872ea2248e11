//! Soak runs on the lab (issue #13), as root: a fault on a schedule found as one outage window
//! on exactly its paths, and a signal that ends a soak with its report. Each test uses its own
//! lab name, removes its lab also when it fails, and checks that nothing of it is left. Skips
//! where the lab cannot run, fails instead under CI ([`multinet_tests::require`]).

mod lab_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use lab_support::*;
use serde_json::Value;

const SOAK: &str = "config:\n  nodeTypes:\n    converged: {osdsPerNode: 1, otherDaemonsPerNode: 1}\n  probeInterval: 200ms\n  probeTimeout: 500ms\n  resourceTimeout: 1m\n";

/// Milliseconds of stage `name` in report `r`.
fn stage_ms(r: &Value, name: &str) -> u64 {
    r["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["duration_ms"].as_u64())
        .unwrap_or_else(|| panic!("stage {name}: {r:#}"))
}

#[test]
fn a_block_scheduled_in_a_soak_is_one_outage_window_on_exactly_its_paths() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('s');
    let topology = lab.topology(&format!(
        "server_node: n1\nfaults:\n  - block: {{network: cluster, from: n2, to: n1, at: 30s, for: 20s}}\n{SOAK}"
    ));
    let (code, r) = run_with(&topology, &["--duration", "60s"]);
    // Twenty seconds down is Ceph's osd_heartbeat_grace: a failing soak.
    assert_eq!(code, Some(1), "{r:#}");
    let findings = r["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "nothing else down: {r:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["network"], &f["nodes"]),
        (
            &Value::from("outage"),
            &Value::from("cluster"),
            &serde_json::json!(["n2"])
        ),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["outages"], 1, "{f:#}");
    let window = &f["evidence"]["windows"][0];
    let (from, to) = (
        window["from_ms"].as_u64().expect("from"),
        window["to_ms"].as_u64().expect("to"),
    );
    // Windows are on the run's clock (ms since the run started); probing begins after the
    // server and placement stages, and the block 30 s after that. The window begins then,
    // within two probe intervals and a probe timeout (one round of the probe kinds) — or up
    // to a probe timeout before, a probe already under way when the block came — and lasts
    // the scheduled 20 s within the same. Its UTC times are the run's start plus those.
    let slack = 2 * 200 + 500;
    let blocked_at = stage_ms(&r, "server") + stage_ms(&r, "place agents") + 30_000;
    assert!(
        (blocked_at - 500..=blocked_at + slack).contains(&from),
        "outage from {from} ms (the block at {blocked_at} ms): {f:#}"
    );
    assert!(
        r["started_at"].as_str().is_some_and(|s| s.ends_with('Z'))
            && window["from"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{f:#}"
    );
    // A block drops packets: probes time out (or find no neighbour), nothing is refused.
    assert!(
        ["connect_timeout", "read_timeout", "unreachable"]
            .contains(&window["class"].as_str().unwrap_or_default()),
        "{window:#}"
    );
    assert!(
        (to - from).abs_diff(20_000) <= slack,
        "outage of {} ms: {f:#}",
        to - from
    );
    // Exactly the blocked paths had outages: n2's clients on the cluster network.
    for p in r["paths"].as_array().expect("paths") {
        let blocked = p["source_node"] == "n2" && p["network"] == "cluster";
        let had = !p["outages"].as_array().expect("outages").is_empty();
        assert!(!had || blocked, "an outage off the blocked paths: {p:#}");
        if blocked
            && p["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("client-"))
        {
            assert!(had, "a blocked path without its outage: {p:#}");
        }
    }
    assert_eq!(
        stage_ms(&r, "soak") / 1000,
        (60_000 - stage_ms(&r, "probe")) / 1000
    );
    lab.assert_gone();
}

#[test]
fn sigint_ends_a_soak_until_stopped_with_its_report_and_a_clean_lab() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('i');
    let topology = lab.topology(SOAK);
    let mut child = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "--backend", "lab", "-o", "json", "--duration", "-f"])
        .arg(&topology)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("multinet runs");
    // Waits, with bounded patience, for the progress to say the soak is on.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut said = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("soak (until stopped)") => break,
            Ok(line) => said.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the soak never began: {said:#?}");
            }
        }
    }
    let sent = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("multinet ends");
    let r: Value = serde_json::from_slice(&out.stdout).expect("a report after SIGINT");
    // A normal end: the verdict's exit code, the soak stage stopped, nothing lost.
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["verdict"], "pass", "{r:#}");
    let soak = r["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == "soak")
        .cloned()
        .expect("a soak stage");
    assert_eq!(soak["outcome"], "stopped", "{r:#}");
    assert_eq!(r["results"]["lost"], 0);
    assert_eq!(r["results"]["unaccounted"], 0);
    lab.assert_gone();
}

/// The live metrics during a scheduled block (`--metrics-addr`, scraped on loopback): the
/// blocked paths' `multinet_path_up` is 0 during the window and every other path's 1, and
/// afterwards 1 again with the outage counted once, about as long as the block.
#[test]
fn live_metrics_show_the_blocked_paths_down_during_the_window_and_up_after() {
    use multinet_tests::eventually::within;
    use multinet_tests::metrics::{MetricsRun, Sample};
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('m');
    let topology = lab.topology(&format!(
        "server_node: n1\nfaults:\n  - block: {{network: cluster, from: n2, to: n1, at: 15s, for: 12s}}\n{SOAK}"
    ));
    let run = MetricsRun::start(
        env!("CARGO_BIN_EXE_multinet-e2e"),
        &[
            "run",
            "--backend",
            "lab",
            "-q",
            "-o",
            "json",
            "--duration",
            "40s",
            "-f",
            &topology,
        ],
        Duration::from_secs(60),
    );
    let blocked = [("network", "cluster"), ("source_node", "n2")];
    let value = |samples: &[Sample], name: &str, labels: &[(&str, &str)]| {
        let found: Vec<f64> = samples
            .iter()
            .filter(|s| s.name == name && s.has(labels))
            .map(|s| s.value)
            .collect();
        match found[..] {
            [v] => Some(v),
            _ => None,
        }
    };
    let scrape_until = |what: &str, patience: Duration, up: f64| {
        within(patience, Duration::from_millis(250), || {
            let samples = run.samples()?;
            match value(&samples, "multinet_path_up", &blocked) {
                Some(v) if v == up => Ok(samples),
                other => Err(format!("path_up {other:?}")),
            }
        })
        .unwrap_or_else(|last| panic!("{what}: last seen {last}; {:#?}", run.said))
    };
    let during = scrape_until("n2's cluster paths down", Duration::from_secs(90), 0.0);
    let paths: Vec<&Sample> = during
        .iter()
        .filter(|s| s.name == "multinet_path_up")
        .collect();
    // 3 nodes, public and cluster: every node's paths to the server's node n1.
    assert_eq!(paths.len(), 6, "{paths:#?}");
    for p in &paths {
        assert_eq!(p.labels["target_node"], "n1", "{p:?}");
        let expected = if p.has(&blocked) { 0.0 } else { 1.0 };
        assert_eq!(
            p.value, expected,
            "only the blocked paths are down: {paths:#?}"
        );
    }
    assert_eq!(
        value(&during, "multinet_run_stage", &[("stage", "soak")]),
        Some(1.0)
    );
    let after = scrape_until("n2's cluster paths up again", Duration::from_secs(40), 1.0);
    assert_eq!(
        value(&after, "multinet_outages_total", &blocked),
        Some(1.0),
        "one outage"
    );
    // As long as the block, within two probe intervals and a probe timeout (one round).
    let seconds = value(&after, "multinet_outage_seconds_total", &blocked).expect("seconds");
    assert!((seconds - 12.0).abs() <= 0.9, "an outage of {seconds} s");
    for s in after.iter().filter(|s| s.name == "multinet_outages_total") {
        assert_eq!(s.value, f64::from(u8::from(s.has(&blocked))), "{s:?}");
    }
    let out = run.wait(Duration::from_secs(90));
    let r: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    lab.assert_gone();
}

/// The findings' kinds of report `r`.
fn kinds(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `produced = recorded + lost + unaccounted`, whatever became of the agents.
fn assert_accounted(r: &Value) {
    let n = |k: &str| {
        r["results"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {r:#}"))
    };
    assert_eq!(
        n("produced"),
        n("recorded") + n("lost") + n("unaccounted"),
        "{:#}",
        r["results"]
    );
    assert!(n("recorded") > 0, "{r:#}");
}

/// The one agent outage of report `r`: it is n2's client's, and no other agent was away.
fn the_agent_outage(r: &Value) -> &Value {
    let outages = r["agent_outages"]
        .as_array()
        .unwrap_or_else(|| panic!("no agent_outages: {r:#}"));
    assert_eq!(outages.len(), 1, "only the killed agent was away: {r:#}");
    let o = &outages[0];
    assert_eq!(
        (&o["node"], &o["role"]),
        (&Value::from("n2"), &Value::from("client")),
        "{o:#}"
    );
    o
}

/// An agent killed 10 s into a soak and started again 10 s later (as a kubelet restarts a
/// container): an agent outage of that pod, ended by a restart, near the schedule; no
/// network outage on any path (its paths were not measured, not down); the restarted agent's
/// results are recorded (numbering from 1 again) and every result is accounted for.
#[test]
fn an_agent_killed_and_restarted_in_a_soak_is_an_agent_outage_not_a_network_one() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('a');
    let topology = lab.topology(&format!(
        "server_node: n1\nfaults:\n  - kill-agent: {{node: n2, at: 10s, for: 10s}}\n{SOAK}"
    ));
    let (code, r) = run_with(&topology, &["--duration", "30s"]);
    assert_eq!(kinds(&r), ["agent_outage"], "{r:#}");
    // A warning, and a warning exits 1.
    assert_eq!(
        (code, &r["verdict"]),
        (Some(1), &Value::from("warn")),
        "{r:#}"
    );
    let o = the_agent_outage(&r);
    assert_eq!(
        (&o["outages"], &o["restarts"]),
        (&Value::from(1), &Value::from(1)),
        "{o:#}"
    );
    let w = &o["windows"][0];
    assert_eq!(
        (&w["ongoing"], &w["returned"]),
        (&Value::from(false), &Value::from("restarted")),
        "{w:#}"
    );
    // Killed 10 s into the probing (seen at the supervisor's next look, within 100 ms), back
    // once the new process, started 10 s after the kill, said Hello: loose bounds for a
    // loaded machine.
    let probing_began = stage_ms(&r, "server") + stage_ms(&r, "place agents");
    let from = w["from_ms"].as_u64().expect("from");
    let duration = w["duration_ms"].as_u64().expect("duration");
    assert!(
        (probing_began + 10_000..=probing_began + 12_000).contains(&from),
        "away from {from} ms, probing from {probing_began} ms: {o:#}"
    );
    assert!(
        (9_000..=14_000).contains(&duration),
        "away {duration} ms: {o:#}"
    );
    let f = &r["findings"][0];
    assert_eq!(
        (&f["severity"], &f["nodes"]),
        (&Value::from("warn"), &serde_json::json!(["n2"])),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["pod"], o["pod"], "{f:#}");
    // Every path is fine: no outage window, and the restarted agent's paths have results of
    // the new process (more than before the kill could have given them alone is not
    // checked; that they pass is).
    for p in r["paths"].as_array().expect("paths") {
        assert!(
            p["outages"].as_array().expect("outages").is_empty(),
            "{p:#}"
        );
    }
    for a in r["agents"].as_array().expect("agents") {
        assert_eq!(a["fate"]["state"], "reported", "{a:#}");
    }
    assert_eq!(r["results"]["duplicate_batches"], 0, "{:#}", r["results"]);
    assert_eq!(r["results"]["sequence_gaps"], 0, "{:#}", r["results"]);
    assert_accounted(&r);
    lab.assert_gone();
}

/// An agent killed in a soak and not started again: an agent outage lasting to the end (and
/// the agent lost), still no network outage.
#[test]
fn an_agent_killed_for_good_in_a_soak_is_away_to_the_end() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('d');
    let topology = lab.topology(&format!(
        "server_node: n1\nfaults:\n  - kill-agent: {{node: n2, at: 8s}}\n{SOAK}"
    ));
    let (code, r) = run_with(&topology, &["--duration", "15s"]);
    let mut found = kinds(&r);
    found.sort();
    assert_eq!(found, ["agent_lost", "agent_outage"], "{r:#}");
    assert_eq!(code, Some(1), "an agent lost fails the run: {r:#}");
    let o = the_agent_outage(&r);
    assert_eq!(
        (&o["outages"], &o["restarts"]),
        (&Value::from(1), &Value::from(0)),
        "{o:#}"
    );
    let w = &o["windows"][0];
    assert_eq!(
        (&w["ongoing"], &w["returned"]),
        (&Value::from(true), &Value::Null),
        "{w:#}"
    );
    let probing_began = stage_ms(&r, "server") + stage_ms(&r, "place agents");
    let (from, to) = (
        w["from_ms"].as_u64().expect("from"),
        w["to_ms"].as_u64().expect("to"),
    );
    assert!(
        (probing_began + 8_000..=probing_began + 10_000).contains(&from),
        "away from {from} ms, probing from {probing_began} ms: {o:#}"
    );
    // To the end: the soak's 15 s of probing, and the stop.
    assert!(to >= probing_began + 15_000, "away until {to} ms: {o:#}");
    for p in r["paths"].as_array().expect("paths") {
        assert!(
            p["outages"].as_array().expect("outages").is_empty(),
            "{p:#}"
        );
    }
    assert_accounted(&r);
    lab.assert_gone();
}

/// The outage findings of report `r` that are there, and the only finding: `outage` on
/// `network` from `node`; returns it and its one window (`evidence.windows[0]`).
fn the_one_outage<'a>(r: &'a Value, network: &str, node: &str) -> (&'a Value, &'a Value) {
    let findings = r["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "nothing else down: {r:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["network"], &f["nodes"]),
        (
            &Value::from("outage"),
            &Value::from(network),
            &serde_json::json!([node])
        ),
        "{f:#}"
    );
    assert_eq!(f["evidence"]["outages"], 1, "{f:#}");
    (f, &f["evidence"]["windows"][0])
}

/// `window`'s start and end on the run's clock, checked against a fault scheduled `at_ms`
/// into the probing for `for_ms`: it begins within two probe intervals and a probe timeout
/// (one round of the probe kinds) of the schedule — or up to a probe timeout before, a probe
/// already under way when the fault came — and lasts the schedule within the same, or up
/// to a probe timeout longer: its start may be that early while its end is as late as the
/// slack allows (a probe sent just before the fault went fails a timeout later).
fn assert_on_schedule(r: &Value, f: &Value, window: &Value, at_ms: u64, for_ms: u64) {
    let slack = 2 * 200 + 500;
    let (from, to) = (
        window["from_ms"].as_u64().expect("from"),
        window["to_ms"].as_u64().expect("to"),
    );
    let fault_at = stage_ms(r, "server") + stage_ms(r, "place agents") + at_ms;
    assert!(
        (fault_at - 500..=fault_at + slack).contains(&from),
        "outage from {from} ms (the fault at {fault_at} ms): {f:#}"
    );
    assert!(
        (for_ms.saturating_sub(slack)..=for_ms + slack + 500).contains(&(to - from)),
        "outage of {} ms (the fault's {for_ms} ms): {f:#}",
        to - from
    );
    assert!(
        window["from"].as_str().is_some_and(|s| s.ends_with('Z'))
            && window["to"].as_str().is_some_and(|s| s.ends_with('Z')),
        "UTC times: {window:#}"
    );
}

/// n2's cluster uplink down 15 s into a soak for 10 s (its switch port down): one outage
/// window on n2's cluster paths, on schedule, every path of the node down together (scope
/// `node uplink`, no other node with it); no other path had an outage, and every result is
/// accounted for.
#[test]
fn a_link_down_scheduled_in_a_soak_is_one_outage_of_that_nodes_uplink() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('l');
    let topology = lab.topology(&format!(
        "server_node: n1\nfaults:\n  - link-down: {{network: cluster, node: n2, at: 15s, for: 10s}}\n{SOAK}"
    ));
    let (code, r) = run_with(&topology, &["--duration", "35s"]);
    // 10 s down of about 35 s is below the 99 % availability floor: a failing soak.
    assert_eq!(code, Some(1), "{r:#}");
    let (f, window) = the_one_outage(&r, "cluster", "n2");
    assert_on_schedule(&r, f, window, 15_000, 10_000);
    assert_eq!(
        (&window["scope"], &window["paths_down"]),
        (&Value::from("node uplink"), &window["paths"]),
        "every path of n2 down together: {window:#}"
    );
    assert_eq!(
        f["evidence"]["together_with"],
        serde_json::json!([]),
        "{f:#}"
    );
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("on every path of the node"), "{summary}");
    for p in r["paths"].as_array().expect("paths") {
        let cut = p["source_node"] == "n2" && p["network"] == "cluster";
        let had = !p["outages"].as_array().expect("outages").is_empty();
        assert_eq!(had, cut, "outages on exactly n2's cluster paths: {p:#}");
    }
    assert_accounted(&r);
    lab.assert_gone();
}

/// The MTU of n2's cluster switch port drops to 1280 10 s into a soak for 15 s: n2's large
/// cluster probes fail for that time and its small ones pass — one outage window of scope
/// `large probes`, on schedule, which explains what the whole run's figures made of it
/// (`mtu_blackhole` or `flaky`); nothing else down, every result accounted for.
#[test]
fn an_mtu_drop_scheduled_in_a_soak_is_an_outage_of_large_probes_only() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('u');
    let topology = lab.topology(&format!(
        "server_node: n1\nfaults:\n  - mtu: {{network: cluster, node: n2, mtu: 1280, at: 10s, for: 15s}}\n{SOAK}"
    ));
    let (code, r) = run_with(&topology, &["--duration", "35s"]);
    assert_eq!(code, Some(1), "{r:#}");
    let (f, window) = the_one_outage(&r, "cluster", "n2");
    assert_on_schedule(&r, f, window, 10_000, 15_000);
    // Half of the probe kinds are large: half of n2's cluster paths.
    assert_eq!(window["scope"], "large probes", "{window:#}");
    assert_eq!(
        window["paths_down"].as_u64().map(|n| n * 2),
        window["paths"].as_u64(),
        "{window:#}"
    );
    let summary = f["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("on large probes only"), "{summary}");
    for e in f["evidence"]["explains"].as_array().into_iter().flatten() {
        assert!(
            ["mtu_blackhole", "flaky"].contains(&e["kind"].as_str().unwrap_or_default()),
            "{e:#}"
        );
    }
    for p in r["paths"].as_array().expect("paths") {
        let dropped = p["source_node"] == "n2"
            && p["network"] == "cluster"
            && p["kind"]["payload"] == "large";
        let outages = p["outages"].as_array().expect("outages");
        assert_eq!(
            !outages.is_empty(),
            dropped,
            "outages on exactly n2's large cluster probes: {p:#}"
        );
        if dropped {
            // Packets above the MTU vanish: a timeout or a cut-off body, never a refusal.
            let class = outages[0]["class"].as_str().unwrap_or_default();
            assert!(
                ["read_timeout", "connect_timeout", "short_body", "io"].contains(&class),
                "{p:#}"
            );
        }
    }
    assert_accounted(&r);
    lab.assert_gone();
}
