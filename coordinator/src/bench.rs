//! `multinet bench ingest`: the control plane under load. This process is the coordinator
//! (PKI, roster and matrix actors, QUIC endpoint) on one thread — a current-thread runtime
//! that runs the actors and the endpoint alike; the report says how many threads the process
//! had. A child process (`multinet bench load`, [`load`]), on one thread too, opens the agent
//! connections, real QUIC with mutual TLS from the run CA, reports at a fixed rate, and cuts
//! some connections on purpose so that resends happen in every run.
//!
//! The bench passes only when every [`Check`] holds: every agent connected, every result
//! offered (`agents × rate × seconds`) was sent, acknowledged and recorded in the path
//! matrix, resends were counted as duplicates exactly as the load knows them to be, no
//! sequence has a gap, and the recorded rate is within 2 % of the offered one. It also
//! prints the coordinator's CPU time and RSS over the run.

pub mod load;
pub mod network;
pub mod soak;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::Actor;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;
use serde::Serialize;

use crate::control_plane::{ControlPlane, connection_limit_for};
use crate::matrix_actor::{MatrixActor, Recorded, Take, WithMetrics};
use crate::metrics::{PathMetrics, RunMetrics};
use crate::outage::OutageRule;
use crate::pki::RunPki;
use crate::roster::{AgentRoster, Expect, Snapshot};

/// What `multinet bench ingest` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestArgs {
    /// Agent connections (at least 1).
    pub agents: u32,
    /// Results per second per agent, sent as one batch per second (at least 1).
    pub rate: u32,
    /// Duration of the reporting phase, seconds (at least 1; connections are cut on purpose
    /// only from 8 s).
    pub seconds: u64,
    /// With the live metrics on, as `--metrics-addr` has them: the matrix actor updates them
    /// with every result, and each sample encodes the exposition as a scrape would.
    pub metrics: bool,
}

impl IngestArgs {
    /// Results the load offers: `agents × rate × seconds`.
    pub fn offered(&self) -> u64 {
        u64::from(self.agents) * u64::from(self.rate) * self.seconds
    }

    /// Connections the load cuts on purpose ([`load::Cut::of`]).
    pub fn planned_cuts(&self) -> u64 {
        (0..self.agents)
            .filter(|i| load::Cut::of(*i, self.seconds) != load::Cut::Never)
            .count() as u64
    }
}

/// One sample of the coordinator during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since reporting began.
    pub at_s: f64,
    /// Results the path matrix had recorded.
    pub recorded: u64,
    /// Coordinator RSS, KiB.
    pub rss_kib: u64,
    /// Coordinator CPU time so far (all its threads), seconds.
    pub cpu_s: f64,
    /// Threads of the coordinator process.
    pub threads: usize,
    /// With `--metrics`: how long encoding the exposition took (a scrape's work), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_ms: Option<f64>,
    /// With `--metrics`: the exposition's size, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_bytes: Option<usize>,
}

/// One condition the bench must meet, with what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What must hold.
    pub what: &'static str,
    /// Whether it held.
    pub held: bool,
    /// The figures behind it.
    pub measured: String,
}

/// The outcome.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    /// Connections asked for.
    pub agents: u32,
    /// Agents the load saw welcomed.
    pub connected: usize,
    /// Agents the coordinator's roster saw connect.
    pub roster_connected: usize,
    /// Results offered: agents × rate × seconds.
    pub offered: u64,
    /// Results the load wrote at least once.
    pub sent: u64,
    /// Results acknowledged to the load.
    pub acked: u64,
    /// Results the path matrix holds (the sum of its paths' counts).
    pub recorded: u64,
    /// Of those, successes (the load sends successes only).
    pub recorded_ok: u64,
    /// Connections the load is to cut on purpose ([`load::Cut::of`]).
    pub planned_cuts: u64,
    /// Connections it did cut.
    pub cuts: u64,
    /// Connections made again (planned cuts and lost connections).
    pub reconnects: u64,
    /// Batches resent that the coordinator had acknowledged: each must be a duplicate.
    pub resent_known_duplicates: u64,
    /// Batches resent whose acknowledgement had not arrived: each may be a duplicate.
    pub resent_uncertain: u64,
    /// Batches the roster received twice and ignored.
    pub duplicate_batches: u64,
    /// Batches missing from sequences.
    pub sequence_gaps: u64,
    /// Connection attempts of the load that failed and were retried, by reason.
    pub retried: std::collections::BTreeMap<String, u64>,
    /// Connections the load lost and made again, by reason.
    pub lost: std::collections::BTreeMap<String, u64>,
    /// Load agents that gave up, by reason.
    pub failed: std::collections::BTreeMap<String, u64>,
    /// Peers the roster refused, by reason.
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Connections refused over the control plane's limit.
    pub refused_over_capacity: u64,
    /// Packets the kernel dropped at the coordinator's and at the load's socket (receive
    /// buffer full; `None`: not readable).
    pub socket_drops: (Option<u64>, Option<u64>),
    /// Receive buffers of the coordinator's and the load's socket, bytes as the kernel
    /// reports them.
    pub receive_buffers: (usize, usize),
    /// Seconds from the load's start until every agent had connected (or the ramp gave up),
    /// and the coordinator's CPU seconds in that time: what the handshakes cost.
    pub ramp: (f64, f64),
    /// Results per second the load offers (agents × rate).
    pub offered_per_s: f64,
    /// Recorded results per second over the steady window of the reporting phase.
    pub results_per_s: f64,
    /// Coordinator CPU seconds per wall second over the steady window (1.0 = one core busy).
    pub cpu_cores: f64,
    /// The most threads the coordinator process had at a sample.
    pub threads: usize,
    /// Peak coordinator RSS, KiB.
    pub rss_peak_kib: u64,
    /// What the bench requires, and whether it held.
    pub checks: Vec<Check>,
    /// Samples every second.
    pub samples: Vec<Sample>,
}

impl IngestReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.held)
    }
}

/// The conditions of a passing bench, from what was measured.
pub fn checks(r: &IngestReport) -> Vec<Check> {
    let check = |what, held, measured: String| Check {
        what,
        held,
        measured,
    };
    vec![
        check(
            "every agent connected",
            r.connected == r.agents as usize
                && r.roster_connected == r.agents as usize
                && r.failed.is_empty(),
            format!(
                "{} of {} welcomed (roster: {}); {} gave up",
                r.connected,
                r.agents,
                r.roster_connected,
                r.failed.values().sum::<u64>()
            ),
        ),
        check(
            "every offered result sent, acknowledged and recorded once",
            r.sent == r.offered
                && r.acked == r.offered
                && r.recorded == r.offered
                && r.recorded_ok == r.recorded,
            format!(
                "offered {}, sent {}, acknowledged {}, recorded {} ({} ok)",
                r.offered, r.sent, r.acked, r.recorded, r.recorded_ok
            ),
        ),
        check(
            "connections were cut and made again",
            r.cuts == r.planned_cuts && r.reconnects >= r.cuts,
            format!(
                "{} cuts of {} planned, {} reconnects",
                r.cuts, r.planned_cuts, r.reconnects
            ),
        ),
        check(
            "every resend of a recorded batch counted as a duplicate, no other",
            r.resent_known_duplicates <= r.duplicate_batches
                && r.duplicate_batches <= r.resent_known_duplicates + r.resent_uncertain,
            format!(
                "{} duplicate batches; resent {} known duplicates and {} uncertain",
                r.duplicate_batches, r.resent_known_duplicates, r.resent_uncertain
            ),
        ),
        check(
            "no sequence gap",
            r.sequence_gaps == 0,
            format!("{} gaps", r.sequence_gaps),
        ),
        check(
            "the recorded rate is within 2 % of the offered one",
            r.results_per_s >= 0.98 * r.offered_per_s,
            format!(
                "{:.0} results/s recorded of {:.0} offered",
                r.results_per_s, r.offered_per_s
            ),
        ),
    ]
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

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// The inode of `socket` (from its `/proc/self/fd` link), to find it in `/proc/net/udp`.
fn socket_inode(socket: &std::net::UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd as _;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Datagrams the kernel dropped at the UDP socket with inode `inode` (the `drops` column of
/// `/proc/net/udp` and `udp6`; `udp(7)`).
fn socket_drops(inode: u64) -> Option<u64> {
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .find(|f| f.get(9).and_then(|i| i.parse::<u64>().ok()) == Some(inode))
        .and_then(|f| f.get(12)?.parse().ok())
}

/// Runs the benchmark; returns the exit code (1 when a [`Check`] failed).
pub fn ingest(args: &IngestArgs) -> u8 {
    multinet_agent::install_crypto_provider();
    let system = actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::single_threaded().unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    });
    match system.block_on(run_ingest(args)) {
        Ok(report) => {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            for (why, count) in &report.failed {
                eprintln!("multinet bench ingest: {count} load agent(s) gave up: {why}");
            }
            for c in report.checks.iter().filter(|c| !c.held) {
                eprintln!("multinet bench ingest: FAILED: {}: {}", c.what, c.measured);
            }
            eprintln!(
                "multinet bench ingest: {} — {:.0} results/s recorded of {} offered, {:.2} core(s), {} thread(s), peak RSS {} MiB",
                if report.passed() { "passed" } else { "FAILED" },
                report.results_per_s,
                report.offered_per_s,
                report.cpu_cores,
                report.threads,
                report.rss_peak_kib / 1024
            );
            u8::from(!report.passed())
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
    let metrics = args.metrics.then(RunMetrics::new);
    if let Some(metrics) = &metrics {
        // The default probe settings' rule (1 s interval, 4 s timeout); the load reports
        // successes only, so it never fires.
        let rule = OutageRule::new(Duration::from_secs(1), Duration::from_secs(4));
        let paths = PathMetrics::new(metrics.clone(), rule, "server-node".into());
        matrix.send(WithMetrics(paths)).await?;
    }
    let roster = AgentRoster::new(run_id.clone(), matrix.clone()).start();
    let expected = (0..args.agents)
        .map(|i| AgentIdentity {
            pod: format!("bench-{i}"),
            node: format!("n{}", i % 10),
            role: Role::Client,
            networks: vec![CephNetwork::Public],
        })
        .collect();
    roster.send(Expect(expected)).await?;
    let socket = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
    let inode = socket_inode(&socket);
    let control = ControlPlane::start(&pki, socket, roster.clone())?;
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

    // Wait for the connections (the load retries for load::GRACE), then sample while the
    // load reports.
    let ramp_start = (Instant::now(), cpu_s());
    let ramp_deadline = ramp_start.0 + load::GRACE + Duration::from_secs(30);
    let mut child = child;
    loop {
        let snap = roster.send(Snapshot).await?;
        if snap.agents.iter().filter(|a| a.ever_connected).count() == args.agents as usize
            || Instant::now() > ramp_deadline
            || child.try_wait()?.is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let start = Instant::now();
    let cpu0 = cpu_s();
    let ramp = (
        start.duration_since(ramp_start.0).as_secs_f64(),
        cpu0 - ramp_start.1,
    );
    let mut samples = Vec::new();
    loop {
        let scrape = metrics.as_ref().map(|m| {
            let began = Instant::now();
            let size = m.encode().len();
            (began.elapsed().as_secs_f64() * 1000.0, size)
        });
        samples.push(Sample {
            at_s: start.elapsed().as_secs_f64(),
            recorded: matrix.send(Recorded).await?,
            rss_kib: rss_kib(),
            cpu_s: cpu_s() - cpu0,
            threads: threads(),
            scrape_ms: scrape.map(|s| s.0),
            scrape_bytes: scrape.map(|s| s.1),
        });
        if child.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let output = child.wait_with_output().await?;
    anyhow::ensure!(
        output.status.success(),
        "the load process failed ({})",
        output.status
    );
    let load: load::LoadReport = serde_json::from_slice(&output.stdout)
        .map_err(|e| anyhow::anyhow!("the load process reported nothing usable: {e}"))?;
    let snap = roster.send(Snapshot).await?;
    let coordinator_drops = inode.and_then(socket_drops);
    control.close().await;
    let paths = matrix.send(Take).await?;
    let (recorded, recorded_ok) = paths
        .paths()
        .iter()
        .fold((0, 0), |(sent, ok), (_, s)| (sent + s.sent, ok + s.ok));
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
    let mut report = IngestReport {
        agents: args.agents,
        connected: load.welcomed,
        roster_connected: snap.agents.iter().filter(|a| a.ever_connected).count(),
        offered: args.offered(),
        sent: load.sent,
        acked: load.acked,
        recorded,
        recorded_ok,
        planned_cuts: args.planned_cuts(),
        cuts: load.planned_cuts,
        reconnects: load.reconnects,
        resent_known_duplicates: load.resent_known_duplicates,
        resent_uncertain: load.resent_uncertain,
        duplicate_batches: snap.duplicate_batches,
        sequence_gaps: snap.sequence_gaps,
        retried: load.retried,
        lost: load.lost,
        failed: load.failed,
        refused: snap.refused,
        refused_over_capacity: control.refused_over_capacity(),
        socket_drops: (coordinator_drops, load.socket_drops),
        receive_buffers: (control.receive_buffer(), load.receive_buffer),
        ramp,
        offered_per_s: f64::from(args.agents) * f64::from(args.rate),
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
        threads: samples.iter().map(|s| s.threads).max().unwrap_or(0),
        rss_peak_kib: samples
            .iter()
            .map(|s| s.rss_kib)
            .max()
            .unwrap_or(0)
            .max(rss_kib()),
        checks: Vec::new(),
        samples,
    };
    report.checks = checks(&report);
    Ok(report)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of a run where everything offered arrived, with 20 known and 10 uncertain
    /// resends of which 25 were duplicates.
    fn kept_up() -> IngestReport {
        let args = IngestArgs {
            agents: 100,
            rate: 10,
            seconds: 20,
            metrics: false,
        };
        IngestReport {
            agents: args.agents,
            connected: 100,
            roster_connected: 100,
            offered: args.offered(),
            sent: 20_000,
            acked: 20_000,
            recorded: 20_000,
            recorded_ok: 20_000,
            planned_cuts: args.planned_cuts(),
            cuts: 20,
            reconnects: 20,
            resent_known_duplicates: 20,
            resent_uncertain: 10,
            duplicate_batches: 25,
            sequence_gaps: 0,
            retried: Default::default(),
            lost: Default::default(),
            failed: Default::default(),
            refused: Default::default(),
            refused_over_capacity: 0,
            socket_drops: (Some(0), Some(0)),
            receive_buffers: (0, 0),
            ramp: (1.0, 0.5),
            offered_per_s: 1000.0,
            results_per_s: 990.0,
            cpu_cores: 0.1,
            threads: 1,
            rss_peak_kib: 0,
            checks: Vec::new(),
            samples: Vec::new(),
        }
    }

    fn failed(report: &IngestReport) -> Vec<&'static str> {
        checks(report)
            .into_iter()
            .filter(|c| !c.held)
            .map(|c| c.what)
            .collect()
    }

    #[test]
    fn a_run_that_got_everything_passes() {
        let report = kept_up();
        assert_eq!(report.offered, 100 * 10 * 20);
        assert_eq!(report.planned_cuts, 20, "agents 0, 5, 10, … 95");
        assert_eq!(failed(&report), Vec::<&str>::new());
    }

    #[test]
    fn results_the_load_did_not_send_fail_even_when_all_it_sent_was_recorded() {
        let mut report = kept_up();
        report.sent = 19_990;
        report.acked = 19_990;
        report.recorded = 19_990;
        report.recorded_ok = 19_990;
        assert_eq!(
            failed(&report),
            ["every offered result sent, acknowledged and recorded once"]
        );
    }

    #[test]
    fn an_agent_that_gave_up_fails_the_bench() {
        let mut report = kept_up();
        report.failed.insert("no connection within 30s".into(), 1);
        assert_eq!(failed(&report), ["every agent connected"]);
    }

    #[test]
    fn unacknowledged_or_doubly_recorded_results_fail() {
        let mut report = kept_up();
        report.acked = 19_990;
        assert_eq!(
            failed(&report),
            ["every offered result sent, acknowledged and recorded once"]
        );
        let mut report = kept_up();
        report.recorded = 20_010;
        assert_eq!(
            failed(&report),
            ["every offered result sent, acknowledged and recorded once"]
        );
    }

    #[test]
    fn duplicates_outside_what_was_resent_fail() {
        for duplicates in [19, 31] {
            let mut report = kept_up();
            report.duplicate_batches = duplicates;
            assert_eq!(
                failed(&report),
                ["every resend of a recorded batch counted as a duplicate, no other"],
                "{duplicates}"
            );
        }
    }

    #[test]
    fn a_gap_missing_cuts_or_a_slow_rate_fail() {
        let mut report = kept_up();
        report.sequence_gaps = 1;
        assert_eq!(failed(&report), ["no sequence gap"]);
        let mut report = kept_up();
        report.cuts = 19;
        assert_eq!(failed(&report), ["connections were cut and made again"]);
        let mut report = kept_up();
        report.results_per_s = 979.0;
        assert_eq!(
            failed(&report),
            ["the recorded rate is within 2 % of the offered one"]
        );
    }
}
