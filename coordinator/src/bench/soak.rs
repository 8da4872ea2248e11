//! `multinet bench soak`: a long soak, time-compressed. The run's real [`MatrixActor`] is fed
//! the results of `agents` clients probing every `interval` for `hours` of simulated time —
//! as batches from agents whose clocks started up to a minute apart, one node's paths down for
//! a minute every hour, random loss of `loss_per_mille` ‰ of the probes (1 % by default: every
//! path then holds its most recent outage windows, at their cap, within the first simulated
//! hours, so what is measured afterwards is the steady state), latency drifting up — as fast as
//! it takes them. Every
//! simulated hour the bench copies the matrix as an interim report does and measures the
//! process's RSS and the size of the report's growing parts (`paths`, `timelines`).
//!
//! Every fourth client is an OSD's, on the cluster network too (Rook's converged node type has
//! 3 OSDs among 19 daemons). With `metrics`, the matrix also updates the live Prometheus
//! metrics as a run serving them does, and each sample encodes them as a scrape would (time
//! and size).
//!
//! It passes when every result was recorded, memory stayed flat (the second half's largest RSS
//! within 10 % + 4 MiB of the first half's) and the report stayed bounded (the second half's
//! largest within 10 % of the first half's): nothing the coordinator keeps grows with a soak's
//! length.

use std::time::{Duration, Instant};

use actix::Actor;
use multinet_proto::control::ProbeResult;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{FailureClass, Outcome};
use serde::Serialize;

use crate::matrix_actor::{MatrixActor, Peek, Record, Recorded};

/// What `multinet bench soak` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoakArgs {
    /// Simulated clients (at least 1).
    pub agents: u32,
    /// Nodes they are spread over (at least 1).
    pub nodes: u32,
    /// Simulated hours (at least 2).
    pub hours: u64,
    /// Simulated probe interval.
    pub interval: Duration,
    /// Probes lost at random, per mille (0..=1000).
    pub loss_per_mille: u32,
    /// With the live metrics.
    pub metrics: bool,
}

/// One sample, at the end of a simulated hour.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSample {
    /// Simulated hours so far.
    pub hour: u64,
    /// Results recorded so far.
    pub recorded: u64,
    /// The process's resident memory, KiB.
    pub rss_kib: u64,
    /// `paths` and `timelines` of the report, as JSON, bytes.
    pub report_bytes: usize,
    /// Timeline buckets in the report (per node path) and their width, ms.
    pub buckets: usize,
    /// See `buckets`.
    pub bucket_ms: u64,
    /// Wall time so far, s.
    pub wall_s: f64,
    /// With metrics: one scrape's encoding time, ms, and size, bytes.
    pub scrape: Option<(f64, usize)>,
    /// The matrix as a soak's checkpoint holds it ([`crate::checkpoint`]): the time to
    /// serialize it and write it to a file (atomically, synced), ms, and its size, bytes.
    pub checkpoint: (f64, usize),
    /// The same, gzipped as a kube soak stores it in ConfigMaps
    /// ([`crate::backend::kube::checkpoint_store`]): the time to gzip it, ms, its size, bytes,
    /// and the ConfigMaps it takes.
    pub checkpoint_gzip: (f64, usize, usize),
}

/// What the bench measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Results fed to the matrix.
    pub produced: u64,
    /// Results it recorded.
    pub recorded: u64,
    /// One sample per simulated hour.
    pub samples: Vec<SoakSample>,
    /// Every result recorded.
    pub nothing_lost: bool,
    /// The second half's largest RSS within 10 % + 4 MiB of the first half's.
    pub memory_flat: bool,
    /// The second half's largest report within 10 % of the first half's.
    pub report_bounded: bool,
}

impl SoakReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.nothing_lost && self.memory_flat && self.report_bounded
    }
}

/// The run's clock starts here (Unix ms); agent `i` started `i mod 60` s later.
const RUN_EPOCH_UNIX_MS: u64 = 1_796_000_000_000;
/// Rounds per batch an agent sends.
const ROUNDS_PER_BATCH: u64 = 6;

/// Runs the bench; prints one line per sample on stderr and the report as JSON on stdout; the
/// exit code (0 passed, 1 not).
pub fn soak(args: &SoakArgs) -> u8 {
    let system = actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::single_threaded().unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    });
    match system.block_on(run(args)) {
        Ok(report) => {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            eprintln!(
                "multinet bench soak: {} — {} results over {} simulated hours, RSS {} → {} MiB, report {} → {} KiB",
                if report.passed() { "passed" } else { "FAILED" },
                report.recorded,
                args.hours,
                report.samples.first().map_or(0, |s| s.rss_kib / 1024),
                report.samples.last().map_or(0, |s| s.rss_kib / 1024),
                report.samples.first().map_or(0, |s| s.report_bytes / 1024),
                report.samples.last().map_or(0, |s| s.report_bytes / 1024),
            );
            u8::from(!report.passed())
        }
        Err(e) => {
            eprintln!("multinet bench soak: {e:#}");
            1
        }
    }
}

async fn run(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    anyhow::ensure!(
        args.agents >= 1 && args.nodes >= 1,
        "--agents and --nodes must be at least 1"
    );
    anyhow::ensure!(args.hours >= 2, "--hours must be at least 2");
    anyhow::ensure!(
        args.loss_per_mille <= 1_000,
        "--loss-per-mille must be at most 1000"
    );
    let interval_ms = u64::try_from(args.interval.as_millis())?;
    anyhow::ensure!(interval_ms >= 10, "--interval must be at least 10ms");
    let matrix = MatrixActor::new(RUN_EPOCH_UNIX_MS).start();
    let metrics = args.metrics.then(crate::metrics::RunMetrics::new);
    if let Some(metrics) = &metrics {
        let rule = crate::outage::OutageRule::new(args.interval, Duration::from_secs(4));
        let paths = crate::metrics::PathMetrics::new(metrics.clone(), rule, "server".into());
        matrix.send(crate::matrix_actor::WithMetrics(paths)).await?;
    }
    // The agents' own round: every probe kind, in their order.
    let kinds = multinet_agent::prober::ROUND;
    let target = std::net::SocketAddr::from(([198, 18, 0, 1], 8080));
    let rounds_per_hour = 3_600_000 / interval_ms;
    // Where each sample's checkpoint goes; removed when the bench ends, however it ends.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "multinet-bench-soak-checkpoint-{}.json",
        std::process::id()
    )));
    let checkpoint_file = scratch.0.clone();
    let started = Instant::now();
    let mut produced = 0u64;
    let mut samples = Vec::new();
    let mut round = 0u64;
    for hour in 1..=args.hours {
        let down_node = hour % u64::from(args.nodes);
        let hour_end = hour * rounds_per_hour;
        while round < hour_end {
            let last = (round + ROUNDS_PER_BATCH).min(hour_end);
            for agent in 0..args.agents {
                let node = u64::from(agent % args.nodes);
                let offset_ms = u64::from(agent % 60) * 1_000;
                // Every node's first client of each four is an OSD's.
                let networks: &[CephNetwork] = if (agent / args.nodes).is_multiple_of(4) {
                    &[CephNetwork::Public, CephNetwork::Cluster]
                } else {
                    &[CephNetwork::Public]
                };
                let mut results =
                    Vec::with_capacity(((last - round) as usize) * kinds.len() * networks.len());
                for (r, network) in
                    (round..last).flat_map(|r| networks.iter().map(move |n| (r, *n)))
                {
                    let at_ms = r * interval_ms;
                    let Some(agent_ms) = at_ms.checked_sub(offset_ms) else {
                        continue;
                    };
                    // One node's paths down for the first minute of each hour; rare loss.
                    let in_hour_ms = at_ms % 3_600_000;
                    let down = node == down_node && in_hour_ms < 60_000;
                    for (k, kind) in kinds.iter().enumerate() {
                        let lossy = (u64::from(agent) * 7_919 + r * 104_729 + k as u64 * 31)
                            % 1_000
                            < u64::from(args.loss_per_mille);
                        results.push(ProbeResult {
                            network,
                            target,
                            kind: *kind,
                            started_ms: agent_ms,
                            latency_us: 300 + (at_ms / 3_600_000) as u32 * 20 + (r % 7) as u32 * 10,
                            outcome: if down || lossy {
                                Outcome::Failed(FailureClass::ConnectTimeout)
                            } else {
                                Outcome::Ok
                            },
                        });
                    }
                }
                produced += results.len() as u64;
                matrix.do_send(Record {
                    client: format!("client-{agent}"),
                    node: format!("n{node}"),
                    results,
                    dropped: 0,
                    clock_epoch_unix_ms: RUN_EPOCH_UNIX_MS + offset_ms,
                });
            }
            round = last;
            // Let the actor keep up (a mailbox is unbounded): wait for it every batch round.
            matrix.send(Recorded).await?;
        }
        let copy = matrix.send(Peek).await?;
        let paths = crate::report::paths(&copy, None);
        let timelines = crate::report::timelines(&copy);
        let report_bytes =
            serde_json::to_vec(&paths)?.len() + serde_json::to_vec(&timelines)?.len();
        let (buckets, bucket_ms) = timelines
            .first()
            .map_or((0, 0), |t| (t.buckets.len(), t.bucket_ms));
        let checkpoint = {
            let began = Instant::now();
            let text = serde_json::to_string(&copy.to_state())?;
            crate::report::write_atomically(&checkpoint_file, &text)?;
            (began.elapsed().as_secs_f64() * 1000.0, text.len(), text)
        };
        let checkpoint_gzip = {
            use std::io::Write as _;
            let began = Instant::now();
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(checkpoint.2.as_bytes())?;
            let gzipped = encoder.finish()?.len();
            let parts = gzipped.div_ceil(crate::backend::kube::objects::CHECKPOINT_PART_BYTES);
            (began.elapsed().as_secs_f64() * 1000.0, gzipped, parts)
        };
        let checkpoint = (checkpoint.0, checkpoint.1);
        drop((copy, paths, timelines));
        let scrape = metrics.as_ref().map(|m| {
            let began = Instant::now();
            let size = m.encode().len();
            (began.elapsed().as_secs_f64() * 1000.0, size)
        });
        let sample = SoakSample {
            scrape,
            checkpoint,
            checkpoint_gzip,
            hour,
            recorded: matrix.send(Recorded).await?,
            rss_kib: super::rss_kib(),
            report_bytes,
            buckets,
            bucket_ms,
            wall_s: started.elapsed().as_secs_f64(),
        };
        eprintln!(
            "hour {:>3}: {:>12} results, RSS {:>6} MiB, report {:>7} KiB, {} buckets of {} s, checkpoint matrix {} KiB in {:.0} ms (gzipped {} KiB in {:.0} ms: {} ConfigMaps), {:.1} s{}",
            sample.hour,
            sample.recorded,
            sample.rss_kib / 1024,
            sample.report_bytes / 1024,
            sample.buckets,
            sample.bucket_ms / 1000,
            sample.checkpoint.1 / 1024,
            sample.checkpoint.0,
            sample.checkpoint_gzip.1 / 1024,
            sample.checkpoint_gzip.0,
            sample.checkpoint_gzip.2,
            sample.wall_s,
            sample.scrape.map_or(String::new(), |(ms, bytes)| format!(
                ", scrape {} KiB in {ms:.1} ms",
                bytes / 1024
            ))
        );
        samples.push(sample);
    }
    let recorded = matrix.send(Recorded).await?;
    let half = samples.len() / 2;
    let max_of = |s: &[SoakSample], f: fn(&SoakSample) -> u64| s.iter().map(f).max().unwrap_or(0);
    let (rss_first, rss_second) = (
        max_of(&samples[..half], |s| s.rss_kib),
        max_of(&samples[half..], |s| s.rss_kib),
    );
    let (report_first, report_second) = (
        max_of(&samples[..half], |s| s.report_bytes as u64),
        max_of(&samples[half..], |s| s.report_bytes as u64),
    );
    Ok(SoakReport {
        produced,
        recorded,
        nothing_lost: recorded == produced,
        memory_flat: rss_second * 10 <= rss_first * 11 + 40 * 1024,
        report_bounded: report_second * 10 <= report_first * 11,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulated_result_is_recorded_and_sampled_each_hour() {
        let args = SoakArgs {
            agents: 12,
            nodes: 3,
            hours: 3,
            interval: Duration::from_secs(60),
            loss_per_mille: 10,
            metrics: true,
        };
        let system = actix_rt::System::new();
        let report = system.block_on(run(&args)).expect("bench runs");
        // 12 agents × 60 rounds an hour × 3 hours × 8 kinds, the 3 OSD clients (0, 1, 2) on
        // both networks, less the rounds before each agent's clock started (agent i starts
        // i s late: its first round at 0 s is skipped).
        let rounds = 60 * 3;
        let skipped = (11 + 2) * 8;
        assert_eq!(report.produced, (12 + 3) * rounds * 8 - skipped);
        assert!(report.nothing_lost, "{report:?}");
        assert_eq!(
            report.samples.iter().map(|s| s.hour).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(
            report
                .samples
                .iter()
                .all(|s| s.report_bytes > 0 && s.buckets > 0)
        );
        assert!(
            report
                .samples
                .iter()
                .all(|s| s.scrape.is_some_and(|(_, b)| b > 0)),
            "{report:?}"
        );
    }
}
