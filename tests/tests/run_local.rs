//! `multinet run --backend local` end to end: the real binary, real agent processes, real QUIC
//! with mutual TLS, real HTTP(S) probes on loopback. Each test checks that no process of its
//! run is left.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use multinet_tests::e2e::{findings, processes_mentioning};
use multinet_tests::eventually::{POLL, eventually, within};
use multinet_tests::temp::TempDir;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `multinet run` with JSON output; returns the exit code and the report.
fn run(args: &[&str]) -> (Option<i32>, Value) {
    let deadline: &[&str] = if args.contains(&"-c") {
        &[]
    } else {
        &["--timeout-minutes", "1"]
    };
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "--backend", "local", "-q", "-o", "json"])
        .args(deadline)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("multinet runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let run_id = report["run_id"].as_str().expect("run id");
    assert_eq!(
        processes_mentioning(&format!("multinet-{run_id}")),
        Vec::<String>::new(),
        "agents left running"
    );
    assert!(
        !std::env::temp_dir()
            .join(format!("multinet-{run_id}"))
            .exists(),
        "run directory left behind"
    );
    (out.status.code(), report)
}

fn kinds(report: &Value) -> Vec<(String, Vec<String>)> {
    findings(report)
        .into_iter()
        .map(|(kind, _, nodes)| (kind, nodes))
        .collect()
}

#[test]
fn healthy_run_with_rooks_converged_counts_passes() {
    let dir = TempDir::new("healthy");
    let sample = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["config", "sample", "converged"])
        .output()
        .expect("sample");
    let config = dir.0.join("converged.yaml");
    std::fs::write(&config, sample.stdout).expect("write config");
    let (code, r) = run(&[
        "--nodes",
        "3",
        "-c",
        config.to_str().expect("path"),
        "--probe-interval",
        "100ms",
    ]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["backend"], "local");
    assert_eq!(r["validates_real_network"], false);
    assert_eq!(r["expected_clients"], 3 * 19);
    assert_eq!(r["started_clients"], 3 * 19);
    assert_eq!(r["passed_clients"], 3 * 19);
    assert_eq!(r["expected_agents"], 1 + 3 + 3 * 19);
    assert_eq!(r["connected_agents"], r["expected_agents"]);
    let paths = r["paths"].as_array().expect("paths");
    // OSD clients probe 8 kinds on 2 networks, others and host checkers 8 on public.
    assert_eq!(paths.len(), 3 * (3 * 16 + 16 * 8 + 8));
    assert!(
        paths
            .iter()
            .all(|p| p["ok"] == p["sent"] && p["sent"].as_u64() > Some(0)),
        "a path failed"
    );
    assert_eq!(r["results"]["lost"], 0);
    assert_eq!(r["results"]["unaccounted"], 0);
    assert_eq!(r["results"]["produced"], r["results"]["recorded"]);
    assert!(r["findings"].as_array().expect("findings").is_empty());
    // Every agent but the host checkers said its address on each of its networks, each its own.
    let mut held = std::collections::BTreeSet::new();
    for agent in r["agents"].as_array().expect("agents") {
        let addresses = agent["addresses"].as_array().expect("addresses");
        let networks = agent["networks"].as_array().expect("networks");
        if agent["role"] == "host_check" {
            assert!(addresses.is_empty(), "{agent}");
            continue;
        }
        assert_eq!(addresses.len(), networks.len(), "{agent}");
        for a in addresses {
            let key = (a["network"].to_string(), a["addr"].to_string());
            assert!(held.insert(key), "{a} held twice");
        }
    }
}

#[test]
fn server_killed_mid_run_is_server_unavailable() {
    let (code, r) = run(&[
        "--nodes",
        "2",
        "--daemons-per-node",
        "2",
        "--probe-interval",
        "250ms",
        "--kill-agent",
        "server@1",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail");
    assert_eq!(
        kinds(&r),
        [("server_unavailable".to_string(), vec!["n1".to_string()])]
    );
}

#[test]
fn client_killed_is_agent_lost_not_a_network_finding() {
    let (code, r) = run(&[
        "--nodes",
        "3",
        "--daemons-per-node",
        "2",
        "--probe-interval",
        "250ms",
        "--kill-agent",
        "n2@1",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(r["verdict"], "fail");
    assert_eq!(
        kinds(&r),
        [("agent_lost".to_string(), vec!["n2".to_string()])]
    );
    assert_eq!(r["passed_clients"], 5);
}

/// Runs `multinet ARGS` where anything it starts leaves a trace: agents are a script that
/// records each start (`MULTINET_AGENT_BIN`), and `TMPDIR` (where a local run makes its
/// directory) is a fresh directory. Returns the exit code, stderr, the agent starts recorded
/// and what was left in `TMPDIR`; the lab's default namespaces (`mn-…`) must be as before.
fn run_watched(args: &[&str]) -> (Option<i32>, String, String, Vec<PathBuf>) {
    let dir = TempDir::new(&format!("refused-{}", args.len()));
    let tmp = dir.0.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let starts = dir.0.join("agent-starts");
    let agent = dir.0.join("agent");
    std::fs::write(
        &agent,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", starts.display()),
    )
    .expect("agent script");
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let lab_before = multinet_tests::e2e::lab_namespaces("mn");
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(args)
        .env("MULTINET_AGENT_BIN", &agent)
        .env("TMPDIR", &tmp)
        .current_dir(workspace_root())
        .output()
        .expect("multinet runs");
    assert_eq!(
        multinet_tests::e2e::lab_namespaces("mn"),
        lab_before,
        "a lab was built"
    );
    let left = std::fs::read_dir(&tmp)
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read_to_string(&starts).unwrap_or_default(),
        left,
    )
}

#[test]
fn invalid_input_exits_22_and_starts_nothing() {
    let dir = TempDir::new("invalid-config");
    let config = dir.0.join("bad.yaml");
    std::fs::write(&config, "probeInterval: 1ns\nnamespace: Bad_NS\n").expect("config");
    let config = config.display().to_string();
    let unwritable = dir.0.join("no-such-dir").join("report.json");
    let unwritable = unwritable.display().to_string();
    let cases: [(&[&str], &[&str]); 4] = [
        (
            // A report that could never be written is refused before the run, not after it.
            &["run", "--backend", "local", "--report", &unwritable],
            &["--report", &unwritable, "No such file or directory"],
        ),
        (
            &["run", "--backend", "local", "--probe-interval", "1ns"],
            &["--probe-interval"],
        ),
        (
            // Every problem of a configuration file, each with its file and field.
            &["run", "--backend", "local", "-c", &config],
            &[&config, "probeInterval", "namespace"],
        ),
        (
            // -c conflicts with --public-network, as in Rook (no backend given: as root with
            // the plugins the lab would be chosen).
            &[
                "run",
                "-c",
                "deploy/examples/nads.yaml",
                "--public-network",
                "x",
            ],
            &["--public-network"],
        ),
    ];
    for (args, named) in cases {
        let (code, stderr, starts, left) = run_watched(args);
        assert_eq!(code, Some(22), "{args:?}: {stderr}");
        for name in named {
            assert!(stderr.contains(name), "{args:?} names {name}: {stderr}");
        }
        assert_eq!(starts, "", "{args:?} started agents");
        assert_eq!(left, Vec::<PathBuf>::new(), "{args:?} left files");
    }
    // The trap works: a valid run starts its agents through the script (which exits at once,
    // so the run fails; the deadline is what ends it).
    let (code, stderr, starts, _) = run_watched(&[
        "run",
        "--backend",
        "local",
        "-q",
        "--nodes",
        "1",
        "--daemons-per-node",
        "1",
        "--host-check-only",
        "--timeout-minutes",
        "1",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(starts.contains("--assignment"), "{starts}");
}

#[test]
fn junit_has_a_case_per_node_and_network() {
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "local",
            "-q",
            "-o",
            "junit",
            "--nodes",
            "2",
            "--daemons-per-node",
            "1",
            "--probe-interval",
            "100ms",
        ])
        .output()
        .expect("multinet runs");
    assert_eq!(out.status.code(), Some(0));
    let xml = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(xml.matches("<testcase ").count(), 2 * 2, "{xml}");
    for node in ["n1", "n2"] {
        for network in ["public", "cluster"] {
            assert_eq!(
                xml.matches(&format!("name=\"{node} {network}\"")).count(),
                1,
                "one case for {node} {network}: {xml}"
            );
        }
    }
    assert!(xml.contains("failures=\"0\""), "{xml}");
    let run_id = xml
        .split("<testsuite name=\"multinet run ")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the suite names the run");
    assert_eq!(
        processes_mentioning(&format!("multinet-{run_id}")),
        Vec::<String>::new(),
        "agents left running"
    );
}

/// Direct children of `pid` with their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            out.push((child, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// A `multinet run` that takes a while (so there is time to signal it), killed on drop.
struct LongRun(std::process::Child);

impl LongRun {
    fn start() -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
            .args([
                "run",
                "--backend",
                "local",
                "-q",
                "--nodes",
                "2",
                "--daemons-per-node",
                "2",
                "--probe-interval",
                "1s",
                "--agent-grace-seconds",
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("multinet runs");
        Self(child)
    }

    /// Waits until all agents (1 server + 2 host checkers + 4 clients) are running.
    fn agents(&self) -> Vec<(u32, String)> {
        eventually(Duration::from_secs(10), "the 7 agents to start", || {
            let agents: Vec<_> = children(self.0.id())
                .into_iter()
                .filter(|(_, c)| c.contains("--assignment"))
                .collect();
            if agents.len() == 7 {
                Ok(agents)
            } else {
                Err(agents)
            }
        })
    }
}

impl Drop for LongRun {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_dir_of(agents: &[(u32, String)]) -> PathBuf {
    let arg = agents[0]
        .1
        .split_whitespace()
        .find(|a| a.ends_with(".assignment.json"))
        .expect("assignment path");
    Path::new(arg).parent().expect("run dir").to_path_buf()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn sigterm_stops_the_run_and_leaves_nothing() {
    for (sig, code) in [("TERM", 143), ("INT", 130)] {
        let mut run = LongRun::start();
        let agents = run.agents();
        let dir = run_dir_of(&agents);
        assert!(dir.exists());
        signal(run.0.id(), sig);
        let status = run.0.wait().expect("run ends");
        assert_eq!(status.code(), Some(code), "SIG{sig}");
        assert!(
            agents.iter().all(|(pid, _)| !alive(*pid)),
            "agents left after SIG{sig}"
        );
        assert!(!dir.exists(), "run directory left after SIG{sig}");
    }
}

#[test]
fn agents_exit_by_themselves_when_the_coordinator_is_killed() {
    let mut run = LongRun::start();
    let agents = run.agents();
    let dir = run_dir_of(&agents);
    signal(run.0.id(), "KILL");
    let _ = run.0.wait();
    // Grace is 2 s; allow for reconnect backoff and scheduling.
    let left = within(Duration::from_secs(10), POLL, || {
        let left: Vec<_> = agents.iter().filter(|(pid, _)| alive(*pid)).collect();
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .err()
    .unwrap_or_default();
    // A killed coordinator cannot remove its directory; the test does.
    let _ = std::fs::remove_dir_all(&dir);
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(
        left.is_empty(),
        "agents still running 10 s after the coordinator died: {left:?}"
    );
}

#[test]
fn host_check_only_runs_host_checkers_only() {
    let (code, r) = run(&[
        "--nodes",
        "2",
        "--host-check-only",
        "--probe-interval",
        "100ms",
    ]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["expected_clients"], 0);
    assert_eq!(r["started_clients"], 0);
    assert_eq!(r["host_checkers"]["expected"], 2);
    assert_eq!(r["host_checkers"]["passed"], 2);
    // The server and the host checkers connected; every path is a host checker's.
    assert_eq!(r["expected_agents"], 1 + 2);
    assert_eq!(r["connected_agents"], 1 + 2);
    let paths = r["paths"].as_array().expect("paths");
    assert!(!paths.is_empty(), "{r:#}");
    assert!(
        paths
            .iter()
            .all(|p| p["client"].as_str().is_some_and(|c| c.starts_with("host-"))),
        "{r:#}"
    );
}

/// `--metrics-addr` on the local backend: scraped once while the run soaks, every family is
/// there, labels are the bounded set (no client or pod), one `multinet_path_up` per node and
/// network, all up; after the run the endpoint is gone.
#[test]
fn live_metrics_are_served_while_the_run_lasts_with_bounded_labels() {
    use multinet_tests::metrics::MetricsRun;
    let run = MetricsRun::start(
        env!("CARGO_BIN_EXE_multinet-e2e"),
        &[
            "run",
            "--backend",
            "local",
            "-q",
            "-o",
            "json",
            "--timeout-minutes",
            "1",
            "--daemons-per-node",
            "2",
            "--probe-interval",
            "200ms",
            "--duration",
            "6s",
        ],
        Duration::from_secs(30),
    );
    let samples = eventually(Duration::from_secs(60), "the soak in the metrics", || {
        let samples = run.samples()?;
        let soaking = samples.iter().any(|s| {
            s.name == "multinet_run_stage" && s.has(&[("stage", "soak")]) && s.value == 1.0
        });
        if soaking {
            Ok(samples)
        } else {
            Err(format!("{} samples, not soaking yet", samples.len()))
        }
    });
    let named = |name: &'static str| samples.iter().filter(move |s| s.name == name);
    for family in [
        "multinet_probes_total",
        "multinet_probe_latency_seconds_bucket",
        "multinet_probe_latency_seconds_count",
        "multinet_path_up",
        "multinet_outages_total",
        "multinet_outage_seconds_total",
        "multinet_agents_connected",
        "multinet_agents_expected",
        "multinet_results_lost_total",
        "multinet_results_recorded_total",
        "multinet_run_elapsed_seconds",
    ] {
        assert!(named(family).count() > 0, "{family}: {samples:#?}");
    }
    let allowed = [
        "network",
        "source_node",
        "target_node",
        "kind",
        "result",
        "le",
        "stage",
    ];
    for s in &samples {
        assert!(
            s.labels.keys().all(|k| allowed.contains(&k.as_str())),
            "a label beyond the bounded set: {s:?}"
        );
    }
    let up: Vec<_> = named("multinet_path_up").collect();
    assert_eq!(up.len(), 3 * 2, "one per node and network: {up:#?}");
    assert!(up.iter().all(|s| s.value == 1.0), "{up:#?}");
    let targets: std::collections::BTreeSet<&str> = up
        .iter()
        .map(|s| s.labels["target_node"].as_str())
        .collect();
    assert_eq!(targets.len(), 1, "one server: {targets:?}");
    // Per node and probe kind, not per client: 2 clients a node share their series.
    let ok_series = named("multinet_probes_total")
        .filter(|s| s.has(&[("result", "ok")]))
        .count();
    assert_eq!(ok_series, 3 * 2 * 8, "node x network x kind");
    let one = |name: &'static str| named(name).map(|s| s.value).next().expect(name);
    assert_eq!(
        one("multinet_agents_connected"),
        one("multinet_agents_expected")
    );
    assert!(one("multinet_results_recorded_total") > 0.0);
    let recorded_then = one("multinet_results_recorded_total");
    let addr = run.addr;
    let out = run.wait(Duration::from_secs(90));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert!(report["results"]["recorded"].as_f64().expect("recorded") >= recorded_then);
    assert!(
        multinet_tests::metrics::scrape(addr).is_err(),
        "the endpoint outlived the run"
    );
    let run_id = report["run_id"].as_str().expect("run id");
    assert_eq!(
        processes_mentioning(&format!("multinet-{run_id}")),
        Vec::<String>::new(),
        "agents left running"
    );
}

/// A metrics address that is taken refuses the run before anything starts: exit 69 (the run
/// could not be carried out), the address named, no agent started.
#[test]
fn a_taken_metrics_address_refuses_the_run_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "--backend", "local", "-q", "-o", "json"])
        .args(["--metrics-addr", &addr])
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("serving metrics: cannot listen on {addr}")),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the error report");
    assert_eq!(report["verdict"], "error", "{report:#}");
    assert!(
        report.get("agents").is_none() && report.get("run_id").is_none(),
        "nothing ran: {report:#}"
    );
}
