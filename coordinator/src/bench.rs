//! `multinet bench ingest`: the control plane under load. This process is the coordinator
//! (PKI, roster and matrix actors, QUIC endpoint) on a one-thread runtime — one core; a child
//! process (`multinet bench load`, [`load`]) opens the agent connections, real QUIC with
//! mutual TLS from the run CA, and reports at a fixed rate. At the end the results the load
//! sent are compared with those recorded, and the coordinator's CPU time and RSS over the run
//! are printed.

pub mod load;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::Actor;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;
use serde::Serialize;

use crate::control_plane::{ControlPlane, connection_limit_for};
use crate::matrix_actor::MatrixActor;
use crate::pki::RunPki;
use crate::roster::{AgentRoster, Expect, Snapshot};

/// What `multinet bench ingest` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestArgs {
    /// Agent connections.
    pub agents: u32,
    /// Results per second per agent (sent as one batch per second).
    pub rate: u32,
    /// Duration of the reporting phase, seconds.
    pub seconds: u64,
}

/// One sample of the coordinator during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since reporting began.
    pub at_s: f64,
    /// Results recorded so far.
    pub recorded: u64,
    /// Coordinator RSS, KiB.
    pub rss_kib: u64,
    /// Coordinator CPU time so far, seconds.
    pub cpu_s: f64,
}

/// The outcome.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    /// Connections asked for.
    pub agents: u32,
    /// Connections that were welcomed.
    pub connected: usize,
    /// Results the load sent.
    pub sent: u64,
    /// Results the coordinator recorded.
    pub recorded: u64,
    /// Batches received twice and ignored.
    pub duplicate_batches: u64,
    /// Batches missing from sequences.
    pub sequence_gaps: u64,
    /// Results per second the load offers (agents × rate).
    pub offered_per_s: f64,
    /// Recorded results per second over the steady window of the reporting phase.
    pub results_per_s: f64,
    /// Coordinator CPU seconds per wall second over the reporting phase (1.0 = one core busy).
    pub cpu_cores: f64,
    /// Peak coordinator RSS, KiB.
    pub rss_peak_kib: u64,
    /// Samples every second.
    pub samples: Vec<Sample>,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_s() -> f64 {
    // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Runs the benchmark; returns the exit code.
pub fn ingest(args: &IngestArgs) -> u8 {
    multinet_agent::install_crypto_provider();
    let system = actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::multi_threaded(1).unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    });
    match system.block_on(run_ingest(args)) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            // The coordinator keeps up when it records what is offered (within 2 %: the
            // window's samples are a second apart) without losing or doubling anything.
            let kept_up = report.results_per_s >= 0.98 * report.offered_per_s;
            let ok = report.sent == report.recorded
                && report.duplicate_batches == 0
                && report.connected == args.agents as usize
                && kept_up;
            eprintln!(
                "multinet bench ingest: {} results/s recorded of {} offered ({}), {:.2} core(s), peak RSS {} MiB",
                report.results_per_s.round(),
                report.offered_per_s,
                if kept_up { "kept up" } else { "FELL BEHIND" },
                report.cpu_cores,
                report.rss_peak_kib / 1024
            );
            u8::from(!ok)
        }
        Err(e) => {
            eprintln!("multinet bench ingest: {e:#}");
            1
        }
    }
}

async fn run_ingest(args: &IngestArgs) -> anyhow::Result<IngestReport> {
    let run_id = format!("bench-{}", std::process::id());
    let dir: PathBuf = std::env::temp_dir().join(format!("multinet-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveOnDrop(dir.clone());
    let pki = RunPki::new(&run_id)?;
    let files = pki.write_agent_files(&dir, "bench-load", false)?;
    let matrix = MatrixActor::default().start();
    let roster = AgentRoster::new(run_id.clone(), matrix).start();
    let expected = (0..args.agents)
        .map(|i| AgentIdentity {
            pod: format!("bench-{i}"),
            node: format!("n{}", i % 10),
            role: Role::Client,
            networks: vec![CephNetwork::Public],
        })
        .collect();
    roster.send(Expect(expected)).await?;
    let control = ControlPlane::start(
        &pki,
        std::net::UdpSocket::bind(("127.0.0.1", 0))?,
        roster.clone(),
    )?;
    control.set_connection_limit(connection_limit_for(args.agents as usize));
    let exe = std::env::current_exe()?;
    let child = tokio::process::Command::new(exe)
        .args([
            "bench",
            "load",
            "--addr",
            &control.local_addr()?.to_string(),
            "--run-id",
            &run_id,
        ])
        .args([
            "--ca",
            &files.ca.display().to_string(),
            "--cert",
            &files.cert.display().to_string(),
            "--key",
            &files.key.display().to_string(),
        ])
        .args([
            "--agents",
            &args.agents.to_string(),
            "--rate",
            &args.rate.to_string(),
            "--seconds",
            &args.seconds.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;

    // Wait for the connections, then sample while the load reports.
    let ramp_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let snap = roster.send(Snapshot).await?;
        if snap.agents.iter().filter(|a| a.connected).count() == args.agents as usize
            || Instant::now() > ramp_deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Sample every second until the load process is done.
    let start = Instant::now();
    let cpu0 = cpu_s();
    let mut samples = Vec::new();
    let mut child = child;
    loop {
        let snap = roster.send(Snapshot).await?;
        samples.push(Sample {
            at_s: start.elapsed().as_secs_f64(),
            recorded: snap.agents.iter().map(|a| a.recorded).sum(),
            rss_kib: rss_kib(),
            cpu_s: cpu_s() - cpu0,
        });
        if child.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let output = child.wait_with_output().await?;
    let load: load::LoadReport = serde_json::from_slice(&output.stdout)
        .map_err(|e| anyhow::anyhow!("the load process reported nothing usable: {e}"))?;
    for (why, count) in &load.failed {
        eprintln!("multinet bench ingest: {count} load connection(s) failed: {why}");
    }
    let snap = roster.send(Snapshot).await?;
    control.close().await;
    let recorded: u64 = snap.agents.iter().map(|a| a.recorded).sum();
    // The steady window: between the first and the last sample taken while results were
    // still arriving (neither edge of the reporting phase, where a one-second sample would
    // hold part of a second's results, is in it).
    let arriving: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.recorded > 0 && s.recorded < recorded)
        .collect();
    let (a, b) = match (arriving.first(), arriving.last()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (&samples[0], &samples[samples.len() - 1]),
    };
    let window = b.at_s - a.at_s;
    Ok(IngestReport {
        offered_per_s: f64::from(args.agents) * f64::from(args.rate),
        agents: args.agents,
        connected: load.welcomed,
        sent: load.sent,
        recorded,
        duplicate_batches: snap.duplicate_batches,
        sequence_gaps: snap.sequence_gaps,
        results_per_s: if window > 0.0 {
            (b.recorded - a.recorded) as f64 / window
        } else {
            0.0
        },
        cpu_cores: if window > 0.0 {
            (b.cpu_s - a.cpu_s) / window
        } else {
            0.0
        },
        rss_peak_kib: samples
            .iter()
            .map(|s| s.rss_kib)
            .max()
            .unwrap_or(0)
            .max(rss_kib()),
        samples,
    })
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
