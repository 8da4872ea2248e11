//! The references a bench measures in the same run, so its figures say how close they are to
//! what the path and a mature server can do: iperf3 (Debian's package) on the same path, its
//! server in the server pod's namespace and its client in the client pod's, bounded by the
//! test duration; and nginx (Debian's `nginx-light`, one worker, as the probe server has one
//! thread) against a probe server, both serving the same answer on the server pod's loopback,
//! loaded by the same load generator. On the local backend there is no namespace: both run on
//! loopback addresses of the run's own block. A tool that is missing is said in the report,
//! never skipped in silence.
//!
//! Every process is started bounded ([`super::process::run_bounded`]) or killed when its part ends
//! (`kill_on_drop`), and its scratch files live in the lab's state directory (removed with
//! the lab).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_proto::assignment::{NetworkAddress, TlsFiles};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt as _;

use super::process::{run_bounded, run_json};
use super::site::exec_in;
use super::{ANSWER_BYTES, NetworkBenchRequest, TestResult};
use crate::run::{Notice, Say};

/// The iperf3 port on the server's address (iperf3's default; the probe server's ports are
/// ephemeral, above it).
const IPERF3_PORT: u16 = 5201;
/// nginx's port on the loopback address of the comparison.
const NGINX_PORT: u16 = 18_080;
/// How long a reference server gets to start listening.
const START_PATIENCE: Duration = Duration::from_secs(5);
/// How often a starting server is tried meanwhile.
const START_POLL: Duration = Duration::from_millis(50);

/// One reference tool: where it is, or why it is not there.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tool {
    /// Its program.
    pub path: Option<PathBuf>,
    /// Why it cannot be used, with what installs it.
    pub missing: Option<String>,
}

/// The reference tools.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tools {
    /// iperf3.
    pub iperf3: Tool,
    /// nginx.
    pub nginx: Tool,
}

impl Tools {
    /// Looks for them in `PATH` and `/usr/sbin` (nginx's home on Debian).
    pub fn find() -> Self {
        Self {
            iperf3: Tool::find("iperf3", "apt-get install iperf3"),
            nginx: Tool::find("nginx", "apt-get install nginx-light"),
        }
    }

    /// One line: each tool found or missing.
    pub fn said(&self) -> String {
        let one = |name: &str, tool: &Tool| match (&tool.path, &tool.missing) {
            (Some(path), _) => format!("{name} {}", path.display()),
            (None, Some(why)) => format!("{name} MISSING ({why})"),
            (None, None) => format!("{name} not looked for"),
        };
        format!(
            "{}; {}",
            one("iperf3", &self.iperf3),
            one("nginx", &self.nginx)
        )
    }
}

impl Tool {
    fn find(program: &str, install: &str) -> Self {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        dirs.push("/usr/sbin".into());
        match dirs.iter().map(|d| d.join(program)).find(|p| p.is_file()) {
            Some(path) => Self {
                path: Some(path),
                missing: None,
            },
            None => Self {
                path: None,
                missing: Some(format!(
                    "{program} is not installed: `{install}`; no {program} reference measured"
                )),
            },
        }
    }
}

/// iperf3 on one path, one connection each way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Iperf3 {
    /// Client to server (iperf3's default direction), as its receiver counted, Gbit/s.
    pub upload_gbit_per_s: Option<f64>,
    /// Server to client (`-R`), as its receiver counted.
    pub download_gbit_per_s: Option<f64>,
    /// Why a direction was not measured (iperf3 missing, failed).
    pub error: Option<String>,
}

/// Measures one path with iperf3: its server (`-s -1`, one test) in `server_ns` on
/// `server_ip`, its client in `client_ns` from `client` (`None`: this machine's namespace,
/// the local backend), `duration` rounded up to whole seconds (iperf3's `-t`), each direction
/// in turn.
pub async fn iperf3_path(
    tools: &Tools,
    server_ns: Option<&str>,
    client_ns: Option<&str>,
    server_ip: IpAddr,
    client: &NetworkAddress,
    duration: Duration,
    say: Say<'_>,
) -> Iperf3 {
    let Some(program) = tools.iperf3.path.as_ref().map(|p| p.display().to_string()) else {
        return Iperf3 {
            error: tools.iperf3.missing.clone(),
            ..Iperf3::default()
        };
    };
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut result = Iperf3::default();
    let mut errors = Vec::new();
    for reverse in [false, true] {
        say(Notice::Info(format!(
            "iperf3 {} {}",
            if reverse { "download (-R)" } else { "upload" },
            client.addr
        )));
        match iperf3_once(
            &program, server_ns, client_ns, server_ip, client, seconds, reverse,
        )
        .await
        {
            Ok(gbit) if reverse => result.download_gbit_per_s = Some(gbit),
            Ok(gbit) => result.upload_gbit_per_s = Some(gbit),
            Err(why) => errors.push(format!("{}: {why}", if reverse { "-R" } else { "upload" })),
        }
    }
    if !errors.is_empty() {
        result.error = Some(errors.join("; "));
    }
    result
}

async fn iperf3_once(
    program: &str,
    server_ns: Option<&str>,
    client_ns: Option<&str>,
    server_ip: IpAddr,
    client: &NetworkAddress,
    seconds: u64,
    reverse: bool,
) -> Result<f64, String> {
    let mut server_argv = exec_in(server_ns);
    server_argv.extend([
        program.to_string(),
        "-s".into(),
        "-1".into(),
        "-B".into(),
        server_ip.to_string(),
        "-p".into(),
        IPERF3_PORT.to_string(),
    ]);
    let (server_program, server_args) = server_argv.split_first().ok_or("empty command")?;
    // Killed when this function returns, whatever the way (kill_on_drop); a one-off server
    // ends by itself after its test anyway.
    let mut server = tokio::process::Command::new(server_program)
        .args(server_args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the iperf3 server: {e}"))?;
    let mut client_argv = exec_in(client_ns);
    client_argv.extend([
        program.to_string(),
        "-c".into(),
        server_ip.to_string(),
        "-p".into(),
        IPERF3_PORT.to_string(),
        "-B".into(),
        client.addr.to_string(),
        "-t".into(),
        seconds.to_string(),
        "-J".into(),
    ]);
    if let Some(device) = &client.interface {
        client_argv.extend(["--bind-dev".to_string(), device.clone()]);
    }
    if reverse {
        client_argv.push("-R".into());
    }
    let limit = Duration::from_secs(seconds) + Duration::from_secs(15);
    let started = tokio::time::Instant::now();
    // The server may not listen yet: a refused connect is tried again, boundedly.
    let report = loop {
        let output = run_bounded(&client_argv, limit).await?;
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("iperf3's -J output is no JSON ({e})"))?;
        match json["error"].as_str() {
            Some(error) if error.contains("refused") && started.elapsed() < START_PATIENCE => {
                tokio::time::sleep(START_POLL).await;
            }
            Some(error) => return Err(format!("iperf3: {error}")),
            None => break json,
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), server.wait()).await;
    let bits = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("iperf3's report has no end.sum_received.bits_per_second")?;
    Ok(bits / 1e9)
}

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
}

impl LoopbackComparison {
    /// The probe server's rate over nginx's for `kind`.
    pub fn ratio(&self, kind: LoadKind) -> Option<f64> {
        let rate = |tests: &[TestResult]| {
            tests
                .iter()
                .find(|t| t.kind == kind)
                .and_then(|t| t.outcome.as_ref())
                .and_then(|o| o.per_second)
        };
        rate(&self.probe_server)
            .zip(rate(&self.nginx).filter(|r| *r > 0.0))
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

/// Starts a probe server and nginx on the loopback address of the comparison, one after the
/// other, and loads each with the same request/response and connection-rate tests.
pub async fn server_against_nginx(
    loopback: &Loopback<'_>,
    request: &NetworkBenchRequest,
    tools: &Tools,
    say: Say<'_>,
) -> LoopbackComparison {
    let mut comparison = LoopbackComparison::default();
    let limit = request.duration * 3 + Duration::from_secs(30);
    say(Notice::Info("loopback: the probe server".into()));
    let mut serve_argv = exec_in(loopback.ns);
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
            let pid = child.id().and_then(|p| i32::try_from(p).ok());
            comparison.probe_server = load_both(loopback, request, http, pid).await;
            drop(child);
        }
        Err(why) => comparison.error = Some(format!("the probe server on loopback: {why}")),
    }
    let Some(nginx) = tools.nginx.path.as_ref() else {
        comparison.error = tools.nginx.missing.clone();
        return comparison;
    };
    say(Notice::Info("loopback: nginx".into()));
    match start_nginx(nginx, loopback).await {
        Ok(child) => {
            let pid = child.id().and_then(|p| i32::try_from(p).ok());
            let target = SocketAddr::new(loopback.address, NGINX_PORT);
            comparison.nginx = load_both(loopback, request, target, pid).await;
            drop(child);
        }
        Err(why) => comparison.error = Some(format!("nginx: {why}")),
    }
    let _ = std::fs::remove_dir_all(nginx_dir(loopback.dir));
    comparison
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
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no standard output")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(START_PATIENCE, lines.next_line())
        .await
        .map_err(|_| "it did not say where it listens within 5 s".to_string())?
        .map_err(|e| e.to_string())?
        .ok_or("it ended without saying where it listens")?;
    let listeners: Vec<multinet_proto::control::Listener> =
        serde_json::from_str(&line).map_err(|e| format!("its listeners ({e}): {line}"))?;
    let http = listeners.first().ok_or("it listens nowhere")?.http;
    Ok((child, http))
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
            return Err(format!("it exited with {status}: {}", log.trim()));
        }
        let probe: Result<LoadOutcome, String> = run_json(
            &client_argv(
                loopback,
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
    kind: LoadKind,
    streams: u32,
    target: SocketAddr,
    duration: Duration,
) -> Vec<String> {
    let mut argv = exec_in(loopback.ns);
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
/// request, against `target`; the server process's CPU read around each.
async fn load_both(
    loopback: &Loopback<'_>,
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
            &client_argv(loopback, kind, streams, target, request.duration),
            request.duration + super::TEST_PATIENCE,
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

/// `multinet bench serve`: a probe server on `address` (port 0), its listeners said as one
/// JSON line on standard output, serving until `serve_for` passes or SIGTERM/SIGINT.
///
/// # Errors
///
/// The TLS files cannot be used, or the address cannot be listened on.
pub fn serve(address: IpAddr, tls: &TlsFiles, serve_for: Duration) -> Result<(), String> {
    multinet_agent::install_crypto_provider();
    let runtime = multinet_agent::entry::single_threaded().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let config = multinet_agent::tls::RunTls::load(tls)
            .and_then(|t| t.probe_server_config())
            .map_err(|e| multinet_agent::chain(&e))?;
        let addresses = [NetworkAddress {
            network: multinet_proto::network::CephNetwork::Public,
            addr: address,
            interface: None,
        }];
        let server = multinet_agent::server::ProbeServer::bind(&addresses, config)
            .await
            .map_err(|e| multinet_agent::chain(&e))?;
        let line = serde_json::to_string(server.listeners()).map_err(|e| e.to_string())?;
        println!("{line}");
        tokio::select! {
            () = tokio::time::sleep(serve_for) => {}
            _ = crate::signals::shutdown_signal() => {}
        }
        server.shutdown().await;
        Ok(())
    })
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
