//! The references a bench measures in the same run, so its figures say how close they are to
//! what the path and a mature server can do: iperf3 (Debian's package) on the same path, its
//! server in the server pod's namespace and its client in the client pod's, bounded by the
//! test duration; and nginx (Debian's `nginx-light`, one worker, as the probe server has one
//! thread) against a probe server, both serving the same answer on the server pod's loopback,
//! loaded by the same load generator, and each one's capacity on a CPU of its own under wrk's
//! load ([`loopback`], [`capacity`]). On the local backend there is no namespace: both run on
//! loopback addresses of the run's own block. A tool that is missing is said in the report,
//! never skipped in silence.
//!
//! Every process is started bounded ([`super::process::run_bounded`]) or killed when its part ends
//! (`kill_on_drop`), and its scratch files live in the lab's state directory (removed with
//! the lab).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use multinet_proto::assignment::{NetworkAddress, TlsFiles};
use serde::{Deserialize, Serialize};

use super::process::run_bounded;
use super::site::exec_in;
use crate::run::{Notice, Say};

mod capacity;
mod loopback;

pub use capacity::{Capacity, CapacityComparison, CapacityLatency, CpuSplit};
pub use loopback::{Loopback, LoopbackComparison, server_against_nginx};

/// The iperf3 port on the server's address (iperf3's default; the probe server's ports are
/// ephemeral, above it).
const IPERF3_PORT: u16 = 5201;
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
    /// wrk, the capacity's load. Absent from reports made before it was looked for.
    #[serde(default)]
    pub wrk: Tool,
    /// taskset (util-linux), which gives the comparison's servers and loads CPUs of their own.
    #[serde(default)]
    pub taskset: Tool,
    /// Why no reference was run at all (`--no-references`): the tools were not looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run: Option<String>,
}

impl Tools {
    /// Looks for them in `PATH` and `/usr/sbin` (nginx's home on Debian).
    pub fn find() -> Self {
        Self {
            iperf3: Tool::find(
                "iperf3",
                "apt-get install iperf3",
                "no iperf3 reference measured",
            ),
            nginx: Tool::find(
                "nginx",
                "apt-get install nginx-light",
                "no nginx reference measured",
            ),
            wrk: Tool::find("wrk", "apt-get install wrk", "no capacity measured"),
            taskset: Tool::find(
                "taskset",
                "apt-get install util-linux",
                "the comparison's servers and loads share the CPUs, and no capacity is measured",
            ),
            not_run: None,
        }
    }

    /// None looked for, and why (`--no-references`).
    pub fn not_run(why: &str) -> Self {
        Self {
            not_run: Some(why.to_string()),
            ..Self::default()
        }
    }

    /// One line: each tool found or missing, or why none was run.
    pub fn said(&self) -> String {
        if let Some(why) = &self.not_run {
            return format!("not run ({why})");
        }
        let one = |name: &str, tool: &Tool| match (&tool.path, &tool.missing) {
            (Some(path), _) => format!("{name} {}", path.display()),
            (None, Some(why)) => format!("{name} MISSING ({why})"),
            (None, None) => format!("{name} not looked for"),
        };
        format!(
            "{}; {}; {}; {}",
            one("iperf3", &self.iperf3),
            one("nginx", &self.nginx),
            one("wrk", &self.wrk),
            one("taskset", &self.taskset)
        )
    }
}

impl Tool {
    /// `program` in `PATH` or `/usr/sbin`; if missing, why: what installs it and what is
    /// not measured without it (`without`).
    fn find(program: &str, install: &str, without: &str) -> Self {
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
                    "{program} is not installed: `{install}`; {without}"
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
            "iperf3 {} ({} → {server_ip})",
            if reverse { "download, -R" } else { "upload" },
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
