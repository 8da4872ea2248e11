//! `multinet bench network` on the lab, as root: real namespaces, the real CNI plugins, the
//! probe server and load generator over the NAD interfaces. Each test uses its own lab name,
//! removes its lab also when it fails ([`LabGuard`]), and checks that nothing of it is left;
//! the bench itself must end within its budget. Where the lab cannot run the test skips with
//! a message (fails under CI, [`multinet_tests::require`]).

mod lab_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_support::*;
use multinet_tests::e2e::processes_mentioning;
use serde_json::Value;

/// Runs `multinet bench network` with `args`, its output in files under `dir`; killed and
/// failed when it takes longer than `budget`. Exit code, stdout, stderr.
fn bench(dir: &Path, args: &[&str], budget: Duration) -> (Option<i32>, String, String) {
    bench_with(
        Command::new(env!("CARGO_BIN_EXE_multinet-e2e")),
        dir,
        args,
        budget,
    )
}

/// [`bench`] with the program started by `command` (as another user, with another
/// environment).
fn bench_with(
    mut command: Command,
    dir: &Path,
    args: &[&str],
    budget: Duration,
) -> (Option<i32>, String, String) {
    let out_path = dir.join("bench.out");
    let err_path = dir.join("bench.err");
    let mut child = command
        .args(["bench", "network"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("multinet runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > budget {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the bench did not end within {budget:?}; stderr: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status.code(),
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

/// The JSON report of a bench.
fn report(code: Option<i32>, stdout: &str, stderr: &str) -> Value {
    assert_eq!(code, Some(0), "stderr: {stderr}\nstdout: {stdout}");
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("JSON ({e}): {stderr}"))
}

/// The test of `kind` with `streams` connections on a path, its outcome.
fn outcome<'a>(path: &'a Value, kind: &str, streams: u64) -> &'a Value {
    let tests = path["tests"].as_array().expect("tests");
    let test = tests
        .iter()
        .find(|t| t["kind"] == kind && t["streams"] == streams)
        .unwrap_or_else(|| panic!("no {kind} ×{streams}: {path:#}"));
    assert_eq!(test["failure"], Value::Null, "{test:#}");
    &test["outcome"]
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// The path from `from` on `network` of a setup.
fn path<'a>(setup: &'a Value, network: &str, from: &str) -> &'a Value {
    setup["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .find(|n| n["network"] == network)
        .and_then(|n| n["paths"].as_array())
        .and_then(|p| p.iter().find(|p| p["from"] == from))
        .unwrap_or_else(|| panic!("no {network} path from {from}: {setup:#}"))
}

/// Nothing of the bench is left: the lab (namespaces, state, processes) and the reference
/// tools' processes.
fn assert_nothing_left(lab: &LabGuard) {
    lab.assert_gone();
    assert_no_tool_left();
}

/// No test client, loopback probe server, iperf3 server, bench nginx or wrk runs.
fn assert_no_tool_left() {
    for tool in [
        "iperf3 -s",
        "bench client",
        "bench serve",
        "bench-nginx",
        "wrk --threads",
    ] {
        assert_eq!(
            processes_mentioning(tool),
            Vec::<String>::new(),
            "{tool} left"
        );
    }
}

/// The loopback comparison of report `r`'s `setup`, when nginx is here: every load of both
/// servers answered as the load generator expects (nginx's answer from its `return`); and
/// with wrk, taskset and two CPUs, both servers' capacity measured with the servers on the
/// last CPU and wrk on the others, every answer a 2xx, the server's CPU time read, wrk's
/// percentiles in order. Without them the capacity says why it was not measured.
fn assert_loopback_comparison(r: &Value, setup: &Value) {
    if !r["references"]["nginx"]["path"].is_string() {
        return;
    }
    let loopback = &setup["loopback"];
    assert_eq!(loopback["error"], Value::Null, "{loopback:#}");
    for side in ["probe_server", "nginx"] {
        for t in loopback[side].as_array().expect("tests") {
            assert!(num(&t["outcome"]["per_second"]) > 0.0, "{side}: {t:#}");
            assert_eq!(t["outcome"]["errors"], 0, "{side}: {t:#}");
        }
    }
    let capacity = &loopback["capacity"];
    let tools_here = ["wrk", "taskset"]
        .iter()
        .all(|t| r["references"][t]["path"].is_string());
    if !(tools_here && allowed_cpus() >= 2) {
        assert!(capacity["error"].is_string(), "{capacity:#}");
        return;
    }
    assert_eq!(capacity["error"], Value::Null, "{capacity:#}");
    let load = capacity["cpus"]["load"].as_array().expect("load CPUs");
    assert_eq!(load.len(), allowed_cpus() - 1, "{capacity:#}");
    assert!(!load.contains(&capacity["cpus"]["server"]), "{capacity:#}");
    for side in ["probe_server", "nginx"] {
        let c = &capacity[side];
        assert_eq!(c["connections"], 64, "{side}: {c:#}");
        assert!(num(&c["per_second"]) > 0.0, "{side}: {c:#}");
        assert!(
            num(&c["requests"]) > 0.0 && num(&c["seconds"]) >= 1.0,
            "{side}: {c:#}"
        );
        assert_eq!(c["errors"], 0, "{side}: {c:#}");
        assert!(num(&c["server_cpu_seconds"]) > 0.0, "{side}: {c:#}");
        let l = &c["latency_us"];
        assert!(
            0.0 < num(&l["p50"])
                && num(&l["p50"]) <= num(&l["p90"])
                && num(&l["p90"]) <= num(&l["p99"]),
            "{side}: {l:#}"
        );
    }
}

/// How many CPUs this process may run on (`Cpus_allowed_list`, as the bench reads it).
fn allowed_cpus() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    list.trim()
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>().expect("a CPU") - a.parse::<usize>().expect("a CPU") + 1
            }
            None => 1,
        })
        .sum()
}

/// Every metric of a path: both bulk directions with 1 and `streams` connections
/// (throughput, CPU, MSS, and a path MTU in `mtu`), request/response, new connections and TLS
/// handshakes with their percentiles in order, the server's CPU for every test, iperf3 when
/// `iperf3_here`. Returns the rates of RR, CRR and TLS.
fn assert_every_metric(
    p: &Value,
    streams: u64,
    mtu: std::ops::RangeInclusive<u64>,
    iperf3_here: bool,
) -> [f64; 3] {
    assert_eq!(p["error"], Value::Null, "{p:#}");
    for (kind, n) in [
        ("download", 1),
        ("download", streams),
        ("upload", 1),
        ("upload", streams),
    ] {
        let o = outcome(p, kind, n);
        assert!(num(&o["gbit_per_s"]) > 0.0, "{kind} ×{n}: {o:#}");
        assert_eq!(o["errors"], 0, "{kind} ×{n}: {o:#}");
        assert!(num(&o["cpu_seconds"]) >= 0.0, "{o:#}");
        assert!(num(&o["tcp_mss"]) > 500.0, "{o:#}");
        let path_mtu = o["path_mtu"].as_u64().unwrap_or(0);
        assert!(mtu.contains(&path_mtu), "path MTU in {mtu:?}: {o:#}");
    }
    let mut rates = [0.0; 3];
    for (i, kind) in [
        "request_response",
        "connect_request",
        "tls_handshake_request",
    ]
    .iter()
    .enumerate()
    {
        let o = outcome(p, kind, 1);
        assert_eq!(o["errors"], 0, "{kind}: {o:#}");
        let l = &o["latency_us"];
        let order: Vec<f64> = ["p50", "p90", "p99", "p999", "max"]
            .iter()
            .map(|k| num(&l[*k]))
            .collect();
        assert!(order[0] > 0.0, "{kind}: {l:#}");
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{kind}: {l:#}");
        rates[i] = num(&o["per_second"]);
        assert!(rates[i] > 0.0, "{kind}: {o:#}");
    }
    let tests = p["tests"].as_array().expect("tests");
    assert!(
        tests
            .iter()
            .all(|t| t["server_cpu_seconds"].as_f64().is_some()),
        "the server agent's CPU for every test: {p:#}"
    );
    if iperf3_here {
        let i = &p["iperf3"];
        assert_eq!(i["error"], Value::Null, "{i:#}");
        assert!(num(&i["upload_gbit_per_s"]) > 0.0, "{i:#}");
        assert!(num(&i["download_gbit_per_s"]) > 0.0, "{i:#}");
    }
    rates
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A new connection per request is slower than a kept-alive one, a TLS handshake on top of it
/// slower still — over a network's paths (their medians): on a shared machine one path's
/// kept-alive test may catch another process's time slices (4 ms each) and fall below.
fn assert_rates_ordered(rates: &[[f64; 3]], what: &str) {
    let [rr, crr, tls] = [0, 1, 2].map(|i| median(rates.iter().map(|r| r[i]).collect()));
    assert!(crr < rr, "{what}: CRR {crr} < RR {rr} (medians): {rates:?}");
    assert!(
        tls < crr,
        "{what}: TLS {tls} < CRR {crr} (medians): {rates:?}"
    );
}

/// The (from, to) of every path of every network of a setup, per network.
fn pairs_of(setup: &Value) -> Vec<(String, BTreeSet<(String, String)>)> {
    setup["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .map(|n| {
            let pairs = n["paths"]
                .as_array()
                .expect("paths")
                .iter()
                .map(|p| {
                    (
                        p["from"].as_str().expect("from").to_string(),
                        p["to"].as_str().expect("to").to_string(),
                    )
                })
                .collect();
            (n["network"].as_str().expect("network").to_string(), pairs)
        })
        .collect()
}

#[test]
fn a_bench_on_the_default_lab_gives_every_metric_for_every_path_and_leaves_nothing() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('b');
    // The default topology (3 nodes, public and cluster on macvlan), under the test's name.
    let topology = lab.topology("");
    let started = Instant::now();
    let (code, out, err) = bench(
        &lab.dir,
        &[
            "-f",
            &topology,
            "--duration",
            "1s",
            "--streams",
            "3",
            "-o",
            "json",
        ],
        Duration::from_secs(300),
    );
    let took = started.elapsed();
    let r = report(code, &out, &err);
    assert_eq!(r["kind"], "bench_network");
    assert_eq!(
        (r["duration_ms"].as_u64(), r["streams"].as_u64()),
        (Some(1000), Some(3))
    );
    let setups = r["setups"].as_array().expect("setups");
    assert_eq!(setups.len(), 1);
    let setup = &setups[0];
    assert_eq!(setup["server_node"], "n1");
    let networks = setup["networks"].as_array().expect("networks");
    let names: Vec<&str> = networks
        .iter()
        .filter_map(|n| n["network"].as_str())
        .collect();
    assert_eq!(names, ["public", "cluster"]);
    let iperf3_here = r["references"]["iperf3"]["path"].is_string();
    for network in networks {
        assert_eq!(network["cni"], "macvlan");
        let paths = network["paths"].as_array().expect("paths");
        let froms: Vec<&str> = paths.iter().filter_map(|p| p["from"].as_str()).collect();
        assert_eq!(froms, ["n1", "n2", "n3"], "{network:#}");
        let mut network_rates = Vec::new();
        for p in paths {
            assert_eq!(p["to"], "n1");
            assert_eq!(p["error"], Value::Null, "{p:#}");
            for (kind, streams) in [
                ("download", 1),
                ("download", 3),
                ("upload", 1),
                ("upload", 3),
            ] {
                let o = outcome(p, kind, streams);
                assert!(num(&o["gbit_per_s"]) > 0.0, "{kind} ×{streams}: {o:#}");
                assert_eq!(o["errors"], 0, "{kind} ×{streams}: {o:#}");
                assert!(num(&o["cpu_seconds"]) >= 0.0, "{o:#}");
                assert!(num(&o["tcp_mss"]) > 500.0, "{o:#}");
                // The lab's default MTU.
                assert_eq!(o["path_mtu"], 1500, "{o:#}");
            }
            let mut rates = Vec::new();
            for kind in [
                "request_response",
                "connect_request",
                "tls_handshake_request",
            ] {
                let o = outcome(p, kind, 1);
                assert_eq!(o["errors"], 0, "{kind}: {o:#}");
                let l = &o["latency_us"];
                let order: Vec<f64> = ["p50", "p90", "p99", "p999", "max"]
                    .iter()
                    .map(|k| num(&l[*k]))
                    .collect();
                assert!(order[0] > 0.0, "{kind}: {l:#}");
                assert!(order.windows(2).all(|w| w[0] <= w[1]), "{kind}: {l:#}");
                rates.push(num(&o["per_second"]));
            }
            // A new connection per request is slower than a kept-alive one, on every path
            // (several times: the gap is far above a shared machine's noise); a TLS handshake
            // on top of it is no faster than a new connection over the network's paths (the
            // medians, below): the two are a few percent apart on this lab's debug build, and
            // one path's connection test caught beside other tests' load once fell to 585/s
            // with its TLS test at 737/s.
            assert!(rates[1] < rates[0], "CRR {} < RR {}", rates[1], rates[0]);
            assert!(rates[2] < rates[0], "TLS {} < RR {}", rates[2], rates[0]);
            network_rates.push([rates[0], rates[1], rates[2]]);
            let test = p["tests"].as_array().expect("tests");
            assert!(
                test.iter()
                    .all(|t| t["server_cpu_seconds"].as_f64().is_some()),
                "the server agent's CPU for every test: {p:#}"
            );
            if iperf3_here {
                let i = &p["iperf3"];
                assert_eq!(i["error"], Value::Null, "{i:#}");
                assert!(num(&i["upload_gbit_per_s"]) > 0.0, "{i:#}");
                assert!(num(&i["download_gbit_per_s"]) > 0.0, "{i:#}");
                // Plausible against the reference: multinet's one-connection transfer and
                // iperf3's one TCP stream cross the same path one after the other, so they
                // meet the same ceiling and either may be ahead by a shared machine's noise
                // (BENCHMARKS.md: 0.83–1.17 on a quiet release build, 0.70–1.68 on a debug
                // build beside other load); a factor of 3 either way is a miscount or a
                // transfer that stalls, not noise.
                for (kind, reference) in [
                    ("download", "download_gbit_per_s"),
                    ("upload", "upload_gbit_per_s"),
                ] {
                    let ratio = num(&outcome(p, kind, 1)["gbit_per_s"]) / num(&i[reference]);
                    assert!(
                        (1.0 / 3.0..=3.0).contains(&ratio),
                        "{kind} ×1 over iperf3's on {} → {}: {ratio:.2}; {p:#}",
                        p["from"],
                        p["to"]
                    );
                }
            }
        }
        let [crr, tls] = [1, 2].map(|i| median(network_rates.iter().map(|r| r[i]).collect()));
        assert!(
            tls < crr * 1.25,
            "TLS {tls} within a quarter above CRR {crr} at most (medians): {network_rates:?}"
        );
    }
    assert_loopback_comparison(&r, setup);
    // 6 paths × 7 tests of 1 s, the references and two labs' worth of placing: far below
    // the budget; each test ended by itself.
    assert!(took < Duration::from_secs(300), "{took:?}");
    assert_nothing_left(&lab);
}

#[test]
fn a_lossy_path_and_an_mtu_limited_path_show_in_the_bench() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('d');
    // n2's public uplink drops 5 % of the packets; n3's cluster uplink carries 1280-byte
    // frames while the network's pods send 1500 (large packets vanish, as on a switch port
    // with a smaller MTU). n1 is the server's node.
    let topology = lab.topology(
        "underlay:\n  - {node: n3, network: cluster, mtu: 1280}\nfaults:\n  - loss: {network: public, node: n2, percent: 5}\n",
    );
    // 2 s per test: a lost SYN is sent again after 1 s (the kernel's initial RTO), and a
    // test's connect is bounded by its deadline — with 1 s the lossy path's one kept-alive
    // connection was sometimes never made, leaving its RR test without a single request.
    let (code, out, err) = bench(
        &lab.dir,
        &[
            "-f",
            &topology,
            "--duration",
            "2s",
            "--streams",
            "2",
            "--no-references",
            "-o",
            "json",
        ],
        Duration::from_secs(300),
    );
    let r = report(code, &out, &err);
    let setup = &r["setups"][0];
    let down = |network: &str, from: &str| {
        num(&outcome(path(setup, network, from), "download", 1)["gbit_per_s"])
    };
    let p99 = |network: &str, from: &str| {
        num(&outcome(path(setup, network, from), "request_response", 1)["latency_us"]["p99"])
    };
    // Loss: less throughput and a longer tail than the healthy path of the same network.
    let (lossy, healthy) = (down("public", "n2"), down("public", "n3"));
    assert!(
        lossy < 0.5 * healthy,
        "public download: lossy n2 {lossy} Gbit/s, healthy n3 {healthy}"
    );
    let (lossy_p99, healthy_p99) = (p99("public", "n2"), p99("public", "n3"));
    assert!(
        lossy_p99 > 2.0 * healthy_p99,
        "public RR p99: lossy n2 {lossy_p99} µs, healthy n3 {healthy_p99}"
    );
    // MTU: full-size segments vanish, so bulk transfers (nearly) stop, while small requests
    // still pass.
    let (limited, healthy) = (down("cluster", "n3"), down("cluster", "n2"));
    assert!(
        limited < 0.1 * healthy,
        "cluster download: MTU-limited n3 {limited} Gbit/s, healthy n2 {healthy}"
    );
    let rr = outcome(path(setup, "cluster", "n3"), "request_response", 1);
    assert!(num(&rr["per_second"]) > 0.0, "small requests pass: {rr:#}");
    // The text report says the same.
    let (code, text, err) = bench(
        &lab.dir,
        &[
            "-f",
            &topology,
            "--duration",
            "200ms",
            "--streams",
            "1",
            "--no-references",
            "-q",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("public (macvlan)") && text.contains("n2 → n1"),
        "{text}"
    );
    assert_nothing_left(&lab);
}

#[test]
fn two_topologies_are_benchmarked_side_by_side_in_two_columns() {
    if !lab_possible() {
        return;
    }
    let first = LabGuard::new('m');
    let second = LabGuard::new('g');
    let macvlan = first.topology("nodes: 2\n");
    // The second setup: both networks on the bridge plugin.
    let bridge_path = second.dir.join("bridge.yaml");
    std::fs::write(
        &bridge_path,
        format!(
            "name: {}\nnodes: 2\nnetworks:\n  public: {{cni: bridge}}\n  cluster: {{cni: bridge}}\n",
            second.name
        ),
    )
    .expect("topology");
    let bridge = bridge_path.display().to_string();
    let (code, csv, err) = bench(
        &first.dir,
        &[
            "-f",
            &macvlan,
            "-f",
            &bridge,
            "--duration",
            "200ms",
            "--streams",
            "2",
            "--no-references",
            "-o",
            "csv",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{err}");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("setup,network,cni,from,to,metric,value"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for (setup, cni) in [("topology", "macvlan"), ("bridge", "bridge")] {
        for network in ["public", "cluster"] {
            for from in ["n1", "n2"] {
                let value = rows
                    .iter()
                    .find(|r| r[..6] == [setup, network, cni, from, "n1", "download_1_gbit_per_s"])
                    .unwrap_or_else(|| panic!("{setup} {network} {from}: {csv}"));
                assert!(value[6].parse::<f64>().is_ok_and(|v| v > 0.0), "{value:?}");
            }
        }
    }
    // The text report: a table per metric with a column per setup.
    let (code, text, err) = bench(
        &first.dir,
        &[
            "-f",
            &macvlan,
            "-f",
            &bridge,
            "--duration",
            "200ms",
            "--streams",
            "1",
            "--no-references",
            "-q",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{err}");
    let side = text
        .split("setups side by side\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let mut lines = side.lines();
    assert_eq!(lines.next(), Some("download_1_gbit_per_s"));
    let heading: Vec<&str> = lines.next().expect("heading").split_whitespace().collect();
    assert_eq!(heading, ["network", "path", "topology", "bridge"]);
    for _ in 0..4 {
        let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
        assert_eq!(row.len(), 6, "two values a row: {row:?}");
        assert!(
            row[4..]
                .iter()
                .all(|v| v.parse::<f64>().is_ok_and(|v| v > 0.0)),
            "{row:?}"
        );
    }
    assert_nothing_left(&first);
    assert_nothing_left(&second);
}

#[test]
fn a_bad_topology_is_refused_with_exit_22_naming_the_file_before_anything_is_built() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('x');
    let good = lab.topology("");
    let bad = lab.dir.join("bad.yaml");
    std::fs::write(&bad, format!("name: {}\nnodes: lots\n", lab.name)).expect("write");
    let bad = bad.display().to_string();
    let (code, _, err) = bench(
        &lab.dir,
        &["-f", &good, "-f", &bad, "--duration", "1s"],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(22), "{err}");
    assert!(err.contains("bad.yaml") && err.contains("nodes"), "{err}");
    let (code, _, err) = bench(&lab.dir, &["--duration", "5ms"], Duration::from_secs(60));
    assert_eq!(code, Some(22), "{err}");
    assert!(err.contains("--duration"), "{err}");
    // A report that could never be written: refused before the bench, not after it.
    let unwritable = lab.dir.join("no-such-dir").join("bench.json");
    let (code, out, err) = bench(
        &lab.dir,
        &["-f", &good, "--report", &unwritable.display().to_string()],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(22), "{err}");
    assert!(
        err.contains("--report") && err.contains(&unwritable.display().to_string()),
        "{err}"
    );
    assert_eq!(out, "");
    assert_nothing_left(&lab);
}

#[test]
fn a_mesh_bench_gives_every_metric_for_every_ordered_pair_within_its_estimate() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('h');
    // The default topology (3 nodes, public and cluster on macvlan): 3 × 3 pairs per network.
    let topology = lab.topology("");
    let started = Instant::now();
    let (code, out, err) = bench(
        &lab.dir,
        &[
            "-f",
            &topology,
            "--mesh",
            "--duration",
            "300ms",
            "--streams",
            "2",
            "-o",
            "json",
        ],
        Duration::from_secs(400),
    );
    let took = started.elapsed();
    let r = report(code, &out, &err);
    // Said before anything was built.
    assert!(
        err.contains("18 path(s) × 7 test(s) × 0.3s"),
        "the estimate: {err}"
    );
    let setup = &r["setups"][0];
    let nodes = ["n1", "n2", "n3"];
    let every: BTreeSet<(String, String)> = nodes
        .iter()
        .flat_map(|f| nodes.iter().map(move |t| (f.to_string(), t.to_string())))
        .collect();
    let mesh = &setup["mesh"];
    assert_eq!(mesh["peers_per_node"], Value::Null, "{mesh:#}");
    assert_eq!(mesh["responders"], serde_json::json!(nodes), "{mesh:#}");
    let covered: BTreeSet<(String, String)> =
        serde_json::from_value(mesh["pairs"].clone()).expect("pairs");
    assert_eq!(covered, every);
    let per_network = pairs_of(setup);
    assert_eq!(per_network.len(), 2);
    for (network, pairs) in &per_network {
        assert_eq!(pairs, &every, "{network}");
    }
    let iperf3_here = r["references"]["iperf3"]["path"].is_string();
    for network in setup["networks"].as_array().expect("networks") {
        let paths = network["paths"].as_array().expect("paths");
        assert_eq!(paths.len(), 9, "one path per ordered pair: {network:#}");
        let rates: Vec<[f64; 3]> = paths
            .iter()
            .map(|p| assert_every_metric(p, 2, 1500..=1500, iperf3_here))
            .collect();
        assert_rates_ordered(&rates, network["network"].as_str().unwrap_or("?"));
        // Each path's server is the responder on its `to` node: its address differs by node.
        let servers: BTreeSet<&str> = paths
            .iter()
            .filter_map(|p| p["server_address"].as_str())
            .collect();
        assert_eq!(servers.len(), 3, "three responders: {servers:?}");
    }
    // Within the estimate said up front (it counts the tests, the references and building),
    // with some room for a loaded machine.
    let estimated = Duration::from_millis(r["estimated_ms"].as_u64().expect("estimate"));
    assert!(
        took < estimated + estimated / 2,
        "took {took:?}, estimated {estimated:?}"
    );
    assert_nothing_left(&lab);
}

#[test]
fn a_mesh_bench_with_k_peers_measures_the_pairs_a_mesh_run_probes() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('k');
    let topology = lab.topology("nodes: 4\n");
    let (code, out, err) = bench(
        &lab.dir,
        &[
            "-f",
            &topology,
            "--mesh-peers",
            "1",
            "--duration",
            "200ms",
            "--streams",
            "1",
            "--no-references",
            "-o",
            "json",
        ],
        Duration::from_secs(300),
    );
    let r = report(code, &out, &err);
    let setup = &r["setups"][0];
    // The pairs of `run --mesh-peers 1` on the same nodes: each node's own responder and one
    // peer's, by rendezvous hashing.
    let nodes: Vec<String> = (1..=4).map(|i| format!("n{i}")).collect();
    use multinet_proto::network::CephNetwork;
    let both: Vec<(String, Vec<CephNetwork>)> = nodes
        .iter()
        .map(|n| (n.clone(), vec![CephNetwork::Public, CephNetwork::Cluster]))
        .collect();
    let expected =
        multinet_coordinator::mesh::Targeting::mesh(&nodes, &both, 1).covered(CephNetwork::Public);
    assert_eq!(expected.len(), 8);
    assert_eq!(setup["mesh"]["peers_per_node"], 1);
    for (network, pairs) in pairs_of(setup) {
        assert_eq!(pairs, expected, "{network}");
    }
    for network in setup["networks"].as_array().expect("networks") {
        let rates: Vec<[f64; 3]> = network["paths"]
            .as_array()
            .expect("paths")
            .iter()
            .map(|p| assert_every_metric(p, 1, 1500..=1500, false))
            .collect();
        assert_rates_ordered(&rates, network["network"].as_str().unwrap_or("?"));
    }
    assert_nothing_left(&lab);
}

#[test]
fn a_mesh_bench_longer_than_max_time_is_refused_with_exit_22_before_anything_is_built() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('t');
    let topology = lab.topology("");
    let started = Instant::now();
    let (code, out, err) = bench(
        &lab.dir,
        &["-f", &topology, "--mesh", "--duration", "1m"],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(22), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("--max-time 60m") && err.contains("18 path(s) × 7 test(s) × 60.0s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // Raised, the same estimate passes the check; a bad value is refused naming the flag.
    let (code, _, err) = bench(
        &lab.dir,
        &["-f", &topology, "--mesh", "--max-time", "soon"],
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(22), "{err}");
    assert!(err.contains("--max-time"), "{err}");
    assert_nothing_left(&lab);
}

#[test]
fn a_local_bench_on_two_nodes_gives_every_metric_without_root_and_says_it_validates_no_network() {
    // No lab: processes on loopback addresses. As root, the bench runs as nobody, to show
    // that it needs no privilege; its temporary directory (run directory, agents' files, the
    // nginx scratch) is the test's own, so what it leaves can be found.
    let dir =
        std::env::temp_dir().join(format!("multinet-test-local-bench-{}", std::process::id()));
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("temp dir");
    struct RemoveDir(std::path::PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _remove = RemoveDir(dir.clone());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut command = if root {
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&dir)
            .status()
            .expect("chown runs");
        assert!(chown.success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_multinet-e2e"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
    };
    command.env("TMPDIR", &tmp);
    // The report to a file, its format from the file's name (no -o).
    let report_file = dir.join("local-bench.json");
    let (code, out, err) = bench_with(
        command,
        &dir,
        &[
            "--backend",
            "local",
            "--nodes",
            "2",
            "--duration",
            "300ms",
            "--streams",
            "2",
            "--report",
            report_file.to_str().expect("a UTF-8 path"),
        ],
        Duration::from_secs(240),
    );
    assert_eq!(
        out, "",
        "the report goes to the file, not to stdout; stderr: {err}"
    );
    let written = std::fs::read_to_string(&report_file).unwrap_or_default();
    let r = report(code, &written, &err);
    assert_eq!(r["backend"], "local");
    assert_eq!(r["validates_real_network"], false);
    let setup = &r["setups"][0];
    assert_eq!(setup["server_node"], "n1");
    assert_eq!(setup["mesh"], Value::Null);
    let iperf3_here = r["references"]["iperf3"]["path"].is_string();
    let networks = setup["networks"].as_array().expect("networks");
    assert_eq!(networks.len(), 2, "{setup:#}");
    for network in networks {
        assert_eq!(network["cni"], "loopback");
        let paths = network["paths"].as_array().expect("paths");
        let froms: Vec<&str> = paths.iter().filter_map(|p| p["from"].as_str()).collect();
        assert_eq!(froms, ["n1", "n2"], "{network:#}");
        let mut rates = Vec::new();
        for p in paths {
            assert_eq!(p["to"], "n1");
            // Every address is a loopback one of the run's block.
            for end in ["client_address", "server_address"] {
                let address: std::net::IpAddr =
                    p[end].as_str().expect("address").parse().expect("IP");
                assert!(address.is_loopback(), "{end}: {address}");
            }
            // Loopback: lo's MTU (64 KiB), nothing like a NIC's.
            rates.push(assert_every_metric(p, 2, 1501..=65_536, iperf3_here));
        }
        assert_rates_ordered(&rates, network["network"].as_str().unwrap_or("?"));
    }
    assert_loopback_comparison(&r, setup);
    // Nothing left: no process of it (the agents' command lines name files under its
    // temporary directory), no run directory.
    assert_eq!(
        processes_mentioning(&tmp.display().to_string()),
        Vec::<String>::new(),
        "processes of the bench left"
    );
    assert_no_tool_left();
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("temp dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(left.is_empty(), "left in its temporary directory: {left:?}");
}
