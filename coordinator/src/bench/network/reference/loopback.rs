//! The probe server against nginx on the server pod's loopback: the same request loads from
//! the same load generator (`multinet bench client`), and each server's capacity on a CPU of
//! its own ([`super::capacity`]), one server after the other.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_proto::assignment::TlsFiles;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt as _;

use super::super::process::run_json;
use super::super::site::exec_in;
use super::super::{ANSWER_BYTES, NetworkBenchRequest, TestResult};
use super::capacity::{self, CapacityComparison, CpuSplit};
use super::{START_PATIENCE, START_POLL, Tools};
use crate::run::{Notice, Say};

/// nginx's port on the loopback address of the comparison.
const NGINX_PORT: u16 = 18_080;

/// The probe server against nginx on one loopback address, with the same load.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoopbackComparison {
    /// The probe server's tests: request/response with `--streams` kept-alive connections,
    /// then a new connection per request.
    pub probe_server: Vec<TestResult>,
    /// nginx's, the same.
    pub nginx: Vec<TestResult>,
    /// Why nginx (or the probe server) was not measured.
    pub error: Option<String>,
    /// Each server's capacity on a CPU of its own (wrk). Absent from reports made before it
    /// was measured.
    #[serde(default)]
    pub capacity: Option<CapacityComparison>,
}

/// The rate per second of the test of `kind` among `tests`, when it was measured.
fn rate_of(tests: &[TestResult], kind: LoadKind) -> Option<f64> {
    tests
        .iter()
        .find(|t| t.kind == kind)
        .and_then(|t| t.outcome.as_ref())
        .and_then(|o| o.per_second)
}

impl LoopbackComparison {
    /// Its figures for the CSV, `(metric, value)`, those measured: each server's RR and CRR
    /// rates and capacity, per second, the share of the capacity test its server was busy (%:
    /// under 80 it is no capacity), and the probe server's over nginx's.
    pub fn csv_values(&self) -> Vec<(&'static str, f64)> {
        let rate = rate_of;
        let capacity = |side: fn(&CapacityComparison) -> Option<&capacity::Capacity>| {
            self.capacity.as_ref().and_then(side).map(|c| c.per_second)
        };
        // Whether the capacity is one: the server's CPU busy over the test, % (under 80, the
        // text report says it is not).
        let busy = |side: fn(&CapacityComparison) -> Option<&capacity::Capacity>| {
            let c = self.capacity.as_ref().and_then(side)?;
            Some(100.0 * c.busy_share()?)
        };
        let rr = LoadKind::RequestResponse;
        let crr = LoadKind::ConnectRequest;
        [
            ("probe_server_rr_per_s", rate(&self.probe_server, rr)),
            ("nginx_rr_per_s", rate(&self.nginx, rr)),
            ("rr_over_nginx", self.ratio(rr)),
            ("probe_server_crr_per_s", rate(&self.probe_server, crr)),
            ("nginx_crr_per_s", rate(&self.nginx, crr)),
            ("crr_over_nginx", self.ratio(crr)),
            (
                "probe_server_capacity_per_s",
                capacity(|c| c.probe_server.as_ref()),
            ),
            (
                "probe_server_capacity_busy_percent",
                busy(|c| c.probe_server.as_ref()),
            ),
            ("nginx_capacity_per_s", capacity(|c| c.nginx.as_ref())),
            ("nginx_capacity_busy_percent", busy(|c| c.nginx.as_ref())),
            (
                "capacity_over_nginx",
                self.capacity.as_ref().and_then(CapacityComparison::ratio),
            ),
        ]
        .into_iter()
        .filter_map(|(metric, value)| Some((metric, value?)))
        .collect()
    }

    /// The probe server's rate over nginx's for `kind`.
    pub fn ratio(&self, kind: LoadKind) -> Option<f64> {
        rate_of(&self.probe_server, kind)
            .zip(rate_of(&self.nginx, kind).filter(|r| *r > 0.0))
            .map(|(ours, theirs)| ours / theirs)
    }

    /// Its lines in the text report.
    pub fn text(&self) -> String {
        let mut out =
            String::from("probe server vs nginx (on loopback beside the server, same load):\n");
        // Not measured at all (the kube backend's image has no nginx): only why.
        if self.probe_server.is_empty() && self.nginx.is_empty() {
            if let Some(error) = &self.error {
                out.push_str(&format!("  ! {error}\n"));
            }
            return out;
        }
        let rate = |tests: &[TestResult], kind: LoadKind| {
            tests
                .iter()
                .find(|t| t.kind == kind)
                .map_or("-".to_string(), |t| match (&t.outcome, &t.failure) {
                    (Some(o), _) => format!(
                        "{:.0}/s ×{} p99 {}µs cpu {:.0}%",
                        o.per_second.unwrap_or(0.0),
                        t.streams,
                        o.latency_us.map_or("-".into(), |l| l.p99.to_string()),
                        t.server_cpu_seconds
                            .map_or(0.0, |c| 100.0 * c / o.seconds.max(1e-9))
                    ),
                    (None, Some(f)) => format!("failed: {f}"),
                    (None, None) => "-".into(),
                })
        };
        for (kind, label) in [
            (LoadKind::RequestResponse, "RR "),
            (LoadKind::ConnectRequest, "CRR"),
        ] {
            out.push_str(&format!(
                "  {label}  multinet {}  nginx {}  ratio {}\n",
                rate(&self.probe_server, kind),
                rate(&self.nginx, kind),
                self.ratio(kind).map_or("-".into(), |r| format!("{r:.2}×"))
            ));
        }
        if let Some(capacity) = &self.capacity {
            out.push_str(&capacity.text());
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("  ! {error}\n"));
        }
        out
    }
}

/// What the loopback comparison needs.
#[derive(Debug)]
pub struct Loopback<'a> {
    /// `multinet bench client` and `multinet bench serve` start with this (the program).
    pub program: &'a str,
    /// The server pod's namespace; `None`: this machine's (the local backend).
    pub ns: Option<&'a str>,
    /// The loopback address both servers listen on and the load comes from: the namespace's
    /// 127.0.0.1, or on the local backend one of the run's own block.
    pub address: IpAddr,
    /// Where scratch files go.
    pub dir: &'a Path,
    /// The probe server's identity (run CA, certificate naming the probe server).
    pub server_tls: &'a TlsFiles,
}

/// Where the comparison's processes run: with two CPUs or more (and `taskset`), each server
/// on a CPU of its own and every load on the others, so that neither takes the other's CPU
/// and the capacity can be measured; else wherever the kernel puts them.
struct Pinning<'a> {
    /// The split, and the `taskset` program; or why there is none.
    split: Result<(&'a Path, CpuSplit), String>,
}

impl<'a> Pinning<'a> {
    fn new(tools: &'a Tools) -> Self {
        let split = match tools.taskset.path.as_deref() {
            Some(taskset) => CpuSplit::of_this_process().map(|cpus| (taskset, cpus)),
            None => Err(tools.taskset.missing.clone().unwrap_or_default()),
        };
        Self { split }
    }

    fn server(&self) -> Vec<String> {
        self.split
            .as_ref()
            .map_or(Vec::new(), |(taskset, cpus)| cpus.server_prefix(taskset))
    }

    fn load(&self) -> Vec<String> {
        self.split
            .as_ref()
            .map_or(Vec::new(), |(taskset, cpus)| cpus.load_prefix(taskset))
    }
}

/// Starts a probe server and nginx on the loopback address of the comparison, one after the
/// other, and loads each with the same request/response and connection-rate tests, then with
/// wrk for its capacity ([`capacity`]).
pub async fn server_against_nginx(
    loopback: &Loopback<'_>,
    request: &NetworkBenchRequest,
    tools: &Tools,
    say: Say<'_>,
) -> LoopbackComparison {
    let mut comparison = LoopbackComparison::default();
    let mut errors = Vec::new();
    let pinning = Pinning::new(tools);
    let mut capacity = CapacityComparison {
        cpus: pinning.split.as_ref().ok().map(|(_, cpus)| cpus.clone()),
        ..CapacityComparison::default()
    };
    let mut capacity_errors = Vec::new();
    // The capacity's load: wrk on the load CPUs; or why it is not measured.
    let wrk = match (&pinning.split, tools.wrk.path.as_deref()) {
        (Ok((taskset, cpus)), Some(wrk)) => Some((wrk, *taskset, cpus)),
        (Err(why), _) => {
            capacity_errors.push(format!("not measured: {why}"));
            None
        }
        (Ok(_), None) => {
            capacity_errors.extend(tools.wrk.missing.clone());
            None
        }
    };
    let load = pinning.load();
    // One server, started at `target` as process `pid`: the bench's loads, then its capacity
    // under wrk (`None`: not measured, said above).
    let measure = |name: &'static str, target: SocketAddr, pid: Option<i32>| {
        let load = &load;
        async move {
            let tests = load_both(loopback, load, request, target, pid).await;
            let capacity = match wrk {
                Some((wrk, taskset, cpus)) => Some({
                    say(Notice::Info(format!(
                        "loopback: {name}: capacity under wrk ({} connections)",
                        capacity::CONNECTIONS
                    )));
                    capacity::measure(
                        wrk,
                        taskset,
                        loopback.ns,
                        cpus,
                        target,
                        request.duration,
                        pid,
                    )
                    .await
                }),
                None => None,
            };
            (tests, capacity)
        }
    };
    let whole_seconds = Duration::from_secs(request.duration.as_secs_f64().ceil().max(1.0) as u64);
    let limit = request.duration * 3 + whole_seconds + Duration::from_secs(30);
    say(Notice::Info("loopback: the probe server".into()));
    let mut serve_argv = exec_in(loopback.ns);
    serve_argv.extend(pinning.server());
    serve_argv.extend([
        loopback.program.to_string(),
        "bench".into(),
        "serve".into(),
        "--address".into(),
        loopback.address.to_string(),
        "--for-ms".into(),
        limit.as_millis().to_string(),
        "--ca".into(),
        loopback.server_tls.ca.display().to_string(),
        "--cert".into(),
        loopback.server_tls.cert.display().to_string(),
        "--key".into(),
        loopback.server_tls.key.display().to_string(),
    ]);
    match start_probe_server(&serve_argv).await {
        Ok((child, http)) => {
            let (tests, measured) = measure("the probe server", http, pid_of(&child)).await;
            comparison.probe_server = tests;
            capacity.probe_server = kept(measured, "the probe server", &mut capacity_errors);
            drop(child);
        }
        Err(why) => errors.push(format!("the probe server on loopback: {why}")),
    }
    let nginx = tools.nginx.path.as_ref();
    if nginx.is_none() {
        errors.extend(tools.nginx.missing.clone());
        capacity_errors.push("nginx not measured: it is not installed".into());
    }
    if let Some(nginx) = nginx {
        say(Notice::Info("loopback: nginx".into()));
        match start_nginx(nginx, loopback, &pinning).await {
            Ok(child) => {
                let target = SocketAddr::new(loopback.address, NGINX_PORT);
                let (tests, measured) = measure("nginx", target, pid_of(&child)).await;
                comparison.nginx = tests;
                capacity.nginx = kept(measured, "nginx", &mut capacity_errors);
                drop(child);
            }
            Err(why) => errors.push(format!("nginx: {why}")),
        }
    }
    let _ = std::fs::remove_dir_all(nginx_dir(loopback.dir));
    if !errors.is_empty() {
        comparison.error = Some(errors.join("; "));
    }
    if !capacity_errors.is_empty() {
        capacity.error = Some(capacity_errors.join("; "));
    }
    comparison.capacity = Some(capacity);
    comparison
}

/// A started server's process id, for its CPU time.
fn pid_of(child: &tokio::process::Child) -> Option<i32> {
    child.id().and_then(|p| i32::try_from(p).ok())
}

/// A server's capacity when it was measured; why not, under the server's `name`, in `errors`.
fn kept<T>(measured: Option<Result<T, String>>, name: &str, errors: &mut Vec<String>) -> Option<T> {
    match measured? {
        Ok(capacity) => Some(capacity),
        Err(why) => {
            errors.push(format!("{name}: {why}"));
            None
        }
    }
}

/// `multinet bench serve` started; its HTTP listener once it says it.
async fn start_probe_server(
    argv: &[String],
) -> Result<(tokio::process::Child, SocketAddr), String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no standard output")?;
    // Read only if it ends at once (why: `taskset` refused, the address is taken); let go
    // once it runs, so that nothing it says later can fill a pipe nobody reads.
    let stderr = child.stderr.take();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(START_PATIENCE, lines.next_line()).await {
        Err(_) => return Err("it did not say where it listens within 5 s".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => {
            return Err(format!(
                "it ended without saying where it listens: {}",
                said_before_ending(stderr).await
            ));
        }
    };
    drop(stderr);
    let listeners: Vec<multinet_proto::control::Listener> =
        serde_json::from_str(&line).map_err(|e| format!("its listeners ({e}): {line}"))?;
    let http = listeners.first().ok_or("it listens nowhere")?.http;
    Ok((child, http))
}

/// What a process that ended said on its standard error (at most 2 KiB, within a second).
async fn said_before_ending(stderr: Option<tokio::process::ChildStderr>) -> String {
    use tokio::io::AsyncReadExt as _;
    let Some(stderr) = stderr else {
        return String::new();
    };
    let mut text = Vec::new();
    let mut bounded = stderr.take(2048);
    let _ = tokio::time::timeout(Duration::from_secs(1), bounded.read_to_end(&mut text)).await;
    String::from_utf8_lossy(&text).trim().to_string()
}

fn nginx_dir(dir: &Path) -> PathBuf {
    dir.join("bench-nginx")
}

/// nginx on the loopback address of the comparison, one worker, in the foreground, with
/// keep-alive unbounded in requests (the probe server's is too); started once it answers.
///
/// It answers as Rook's tester's web server does: from its configuration, a `return 200`
/// directive (Rook's `server.conf`: `location / { default_type text/plain; return 200
/// "$remote_addr\n"; }`, rook-multus-validation.md §2.5), no file read. The bench's requests
/// are `GET /payload?bytes=N` with an answer of exactly [`ANSWER_BYTES`] checked by the load
/// generator, so `/payload` returns that many bytes the same way (a line of `x`); `/` is
/// Rook's line itself. An earlier comparison served `/payload` from a file (`alias`), which
/// costs nginx four system calls a request Rook's server never makes.
async fn start_nginx(
    program: &Path,
    loopback: &Loopback<'_>,
    pinning: &Pinning<'_>,
) -> Result<tokio::process::Child, String> {
    let dir = nginx_dir(loopback.dir);
    let temp = dir.join("tmp");
    std::fs::create_dir_all(&temp).map_err(|e| format!("{}: {e}", temp.display()))?;
    let answer = format!("{}\\n", "x".repeat(ANSWER_BYTES.saturating_sub(1) as usize));
    let d = dir.display();
    let listen = SocketAddr::new(loopback.address, NGINX_PORT);
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  \
         fastcgi_temp_path {d}/tmp;\n  keepalive_requests 100000000;\n  server {{\n    \
         listen {listen};\n    location / {{ default_type text/plain; return 200 \"$remote_addr\\n\"; }}\n    \
         location = /payload {{ default_type application/octet-stream; return 200 \"{answer}\"; }}\n  \
         }}\n}}\n"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).map_err(|e| format!("{}: {e}", conf.display()))?;
    let mut argv = exec_in(loopback.ns);
    argv.extend(pinning.server());
    argv.extend([
        program.display().to_string(),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        format!("{d}/error.log"),
    ]);
    let (first, args) = argv.split_first().ok_or("empty command")?;
    let mut child = tokio::process::Command::new(first)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    // Started once it answers: a short request/response test until one passes.
    let started = tokio::time::Instant::now();
    let target = listen;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            let said = said_before_ending(child.stderr.take()).await;
            return Err(format!("it exited with {status}: {} {said}", log.trim()));
        }
        let probe: Result<LoadOutcome, String> = run_json(
            &client_argv(
                loopback,
                &pinning.load(),
                LoadKind::RequestResponse,
                1,
                target,
                Duration::from_millis(50),
            ),
            Duration::from_secs(10),
        )
        .await;
        if probe.is_ok_and(|o| o.requests > 0) {
            return Ok(child);
        }
        if started.elapsed() >= START_PATIENCE {
            return Err("it did not answer within 5 s".into());
        }
        tokio::time::sleep(START_POLL).await;
    }
}

/// `multinet bench client` in the loopback's namespace, from its address.
fn client_argv(
    loopback: &Loopback<'_>,
    pin: &[String],
    kind: LoadKind,
    streams: u32,
    target: SocketAddr,
    duration: Duration,
) -> Vec<String> {
    let mut argv = exec_in(loopback.ns);
    argv.extend(pin.iter().cloned());
    argv.extend([
        loopback.program.to_string(),
        "bench".into(),
        "client".into(),
        "--kind".into(),
        kind.name().into(),
        "--target".into(),
        target.to_string(),
        "--source".into(),
        loopback.address.to_string(),
        "--streams".into(),
        streams.to_string(),
        "--duration-ms".into(),
        duration.as_millis().to_string(),
        "--answer-bytes".into(),
        ANSWER_BYTES.to_string(),
    ]);
    argv
}

/// Request/response with `--streams` kept-alive connections, then a new connection per
/// request, against `target`, each load run with `pin` before it (`taskset -c CPUS`, or
/// nothing); the server process's CPU read around each.
async fn load_both(
    loopback: &Loopback<'_>,
    pin: &[String],
    request: &NetworkBenchRequest,
    target: SocketAddr,
    server_pid: Option<i32>,
) -> Vec<TestResult> {
    let mut tests = Vec::new();
    for (kind, streams) in [
        (LoadKind::RequestResponse, request.streams),
        (LoadKind::ConnectRequest, 1),
    ] {
        let cpu = || server_pid.and_then(|p| multinet_agent::load::cpu_seconds(Some(p)));
        let before = cpu();
        let ran: Result<LoadOutcome, String> = run_json(
            &client_argv(loopback, pin, kind, streams, target, request.duration),
            request.duration + super::super::TEST_PATIENCE,
        )
        .await;
        let server_cpu_seconds = before.zip(cpu()).map(|(b, a)| a - b);
        tests.push(match ran {
            Ok(outcome) => TestResult {
                kind,
                streams,
                outcome: Some(outcome),
                server_cpu_seconds,
                failure: None,
            },
            Err(failure) => TestResult {
                kind,
                streams,
                outcome: None,
                server_cpu_seconds,
                failure: Some(failure),
            },
        });
    }
    tests
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not measured at all (the kube backend's image has no nginx): the text says only why,
    /// with no rows of dashes.
    #[test]
    fn a_comparison_not_measured_says_only_why() {
        let skipped = LoopbackComparison {
            error: Some("nginx is not in the image".into()),
            ..LoopbackComparison::default()
        };
        let text = skipped.text();
        assert!(text.contains("  ! nginx is not in the image"), "{text}");
        assert!(!text.contains("RR ") && !text.contains("CRR"), "{text}");
        assert_eq!(skipped.ratio(LoadKind::ConnectRequest), None);
    }
}
