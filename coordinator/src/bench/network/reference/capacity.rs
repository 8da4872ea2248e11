//! A server's capacity: the requests a second it answers on one CPU of its own while a load
//! generator on the other CPUs keeps it busy — what "requests per second" of a web server
//! means when servers are compared. The load is wrk (Debian's package, the HTTP load generator
//! web servers are commonly compared with): [`CONNECTIONS`] kept-alive connections, one thread
//! per load CPU, `GET /payload?bytes=64` as every other load of the bench, for the test's
//! duration in whole seconds (wrk's `-d`). The bench's own load generator cannot do it: it
//! spends more CPU a request than the probe server (one thread, each answer checked and its
//! latency recorded), so on one CPU it left the server idle a third of the time and measured
//! itself (BENCHMARKS.md, "Capacity").
//!
//! The CPUs are split with `taskset` (util-linux): the last CPU this process may run on for
//! the servers, one at a time, the others for every load of the comparison.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::ANSWER_BYTES;
use super::super::process::run_bounded;
use super::super::site::exec_in;

/// The kept-alive connections wrk keeps open: enough that the server always has a request
/// to answer (both servers were busy 95–100 % of the time with 16, 64 and 256, BENCHMARKS.md).
pub const CONNECTIONS: u32 = 64;

/// The most wrk threads: each opens `CONNECTIONS / threads` connections (wrk refuses more
/// threads than connections), and one thread alone kept a server busy.
const MAX_THREADS: usize = 8;

/// Which CPUs the comparison's servers and loads run on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSplit {
    /// The servers' CPU.
    pub server: usize,
    /// The loads' CPUs.
    pub load: Vec<usize>,
}

impl CpuSplit {
    /// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`): the
    /// last for the servers, the others for the loads.
    ///
    /// # Errors
    ///
    /// The list cannot be read, or it has a single CPU (nothing to split).
    pub fn of_this_process() -> Result<Self, String> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| format!("/proc/self/status: {e}"))?;
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .ok_or("/proc/self/status has no Cpus_allowed_list")?;
        Self::of(list.trim())
    }

    /// The split of a CPU list in the kernel's format (`0-3,6`).
    fn of(list: &str) -> Result<Self, String> {
        let cpus = parse_cpu_list(list)?;
        match cpus.split_last() {
            Some((server, load)) if !load.is_empty() => Ok(Self {
                server: *server,
                load: load.to_vec(),
            }),
            _ => Err(format!(
                "this process may run on one CPU only ({list}): the server and its load cannot each have CPUs of their own"
            )),
        }
    }

    /// `taskset -c CPU` (util-linux) for a server's command line.
    pub fn server_prefix(&self, taskset: &Path) -> Vec<String> {
        vec![
            taskset.display().to_string(),
            "-c".into(),
            self.server.to_string(),
        ]
    }

    /// wrk's threads: one per load CPU, at most [`MAX_THREADS`], a power of two so that they
    /// share [`CONNECTIONS`] evenly.
    pub fn load_threads(&self) -> usize {
        let most = self.load.len().clamp(1, MAX_THREADS);
        1 << most.ilog2()
    }

    /// `taskset -c CPUS` for a load's command line.
    pub fn load_prefix(&self, taskset: &Path) -> Vec<String> {
        let list: Vec<String> = self.load.iter().map(usize::to_string).collect();
        vec![taskset.display().to_string(), "-c".into(), list.join(",")]
    }
}

/// A CPU list as the kernel writes it (`Cpus_allowed_list`, sysfs `cpulist`: ranges and single
/// CPUs, comma-separated) → the CPUs in order.
fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("CPU list {list:?} is not in the kernel's format (0-3,6)");
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let cpu: usize = part.parse().map_err(|_| bad())?;
                (cpu, cpu)
            }
        };
        if last < first {
            return Err(bad());
        }
        cpus.extend(first..=last);
    }
    if cpus.is_empty() {
        return Err(bad());
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// One server's capacity, as wrk counted it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Capacity {
    /// wrk's kept-alive connections.
    pub connections: u32,
    /// Answers received.
    pub requests: u64,
    /// wrk's own time of the test, seconds.
    pub seconds: f64,
    /// Requests a second (`requests / seconds`, wrk's `Requests/sec`).
    pub per_second: f64,
    /// Answers other than 2xx/3xx and socket errors (connect, read, write, timeout): wrk's
    /// counts, 0 when it prints none.
    pub errors: u64,
    /// Latency percentiles under that load, µs (wrk's `--latency`, rounded to its unit).
    pub latency_us: Option<CapacityLatency>,
    /// The server process's CPU time during the test, seconds (user and system): about the
    /// test's duration when the load kept it busy.
    pub server_cpu_seconds: Option<f64>,
}

impl Capacity {
    /// The share (0–1) of the test its server was busy: CPU time over the test's time.
    pub fn busy_share(&self) -> Option<f64> {
        self.server_cpu_seconds.map(|s| s / self.seconds.max(1e-9))
    }
}

/// wrk's latency percentiles, µs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct CapacityLatency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Loads the server at `target` with wrk on the load CPUs, in `ns` (`None`: this machine's),
/// for `duration` rounded up to whole seconds; bounded by that and 15 s. The server's CPU
/// time is read around it (`server_pid`).
///
/// # Errors
///
/// wrk cannot be started, fails, or prints no rate.
pub async fn measure(
    wrk: &Path,
    taskset: &Path,
    ns: Option<&str>,
    cpus: &CpuSplit,
    target: SocketAddr,
    duration: Duration,
    server_pid: Option<i32>,
) -> Result<Capacity, String> {
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let mut argv = exec_in(ns);
    argv.extend(cpus.load_prefix(taskset));
    argv.extend([
        wrk.display().to_string(),
        format!("--threads={}", cpus.load_threads()),
        format!("--connections={CONNECTIONS}"),
        format!("--duration={seconds}s"),
        "--latency".into(),
        format!("http://{target}/payload?bytes={ANSWER_BYTES}"),
    ]);
    let cpu = || server_pid.and_then(|p| multinet_agent::load::cpu_seconds(Some(p)));
    let before = cpu();
    let output = run_bounded(&argv, Duration::from_secs(seconds + 15)).await?;
    let after = cpu();
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk exited with {}: {} {}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let mut capacity = parse_wrk(&text)?;
    capacity.connections = CONNECTIONS;
    capacity.server_cpu_seconds = before.zip(after).map(|(b, a)| a - b);
    Ok(capacity)
}

/// wrk 4's report (`src/wrk.c`, `print_stats` and the summary after it) → its counts.
fn parse_wrk(text: &str) -> Result<Capacity, String> {
    let missing = |what: &str| format!("wrk's output has no {what}: {}", text.trim());
    let mut capacity = Capacity::default();
    let mut latency = CapacityLatency::default();
    let mut percentiles = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            capacity.per_second = rate.trim().parse().map_err(|_| missing("rate"))?;
        } else if let Some((count, rest)) = line.split_once(" requests in ") {
            capacity.requests = count.trim().parse().map_err(|_| missing("count"))?;
            let elapsed = rest.split(',').next().unwrap_or_default();
            capacity.seconds = duration_us(elapsed).ok_or_else(|| missing("time"))? / 1e6;
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            capacity.errors += n.trim().parse::<u64>().map_err(|_| missing("count"))?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // `connect 0, read 0, write 0, timeout 0`
            for part in errors.split(',') {
                let n = part
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok());
                capacity.errors += n.ok_or_else(|| missing("socket error counts"))?;
            }
        } else if let Some((percent, value)) = line.split_once('%')
            && !percent.is_empty()
            && percent.bytes().all(|b| b.is_ascii_digit())
        {
            // `50%  143.00us`; a value of 9 characters leaves one space (`99% 1000.00ms`).
            let slot = match percent {
                "50" => &mut latency.p50,
                "90" => &mut latency.p90,
                "99" => &mut latency.p99,
                _ => continue,
            };
            *slot = duration_us(value.trim()).ok_or_else(|| missing("latency"))?;
            percentiles += 1;
        }
    }
    if capacity.seconds <= 0.0 {
        return Err(missing("count of requests"));
    }
    if capacity.requests == 0 {
        return Err(format!(
            "no answer in {:.1}s ({} error(s)): {}",
            capacity.seconds,
            capacity.errors,
            text.trim()
        ));
    }
    if capacity.per_second <= 0.0 {
        return Err(missing("rate"));
    }
    capacity.latency_us = (percentiles == 3).then_some(latency);
    Ok(capacity)
}

/// wrk's times (`143.00us`, `1.03ms`, `2.00s`, `1.00m`; `src/units.c`) → µs.
fn duration_us(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// The probe server's capacity and nginx's, on the same CPUs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CapacityComparison {
    /// The CPUs: the servers' and the load's.
    pub cpus: Option<CpuSplit>,
    /// The probe server's.
    pub probe_server: Option<Capacity>,
    /// nginx's.
    pub nginx: Option<Capacity>,
    /// Why a side was not measured (wrk or taskset missing, one CPU, wrk failed).
    pub error: Option<String>,
}

impl CapacityComparison {
    /// The probe server's rate over nginx's.
    pub fn ratio(&self) -> Option<f64> {
        let ours = self.probe_server.as_ref()?.per_second;
        let theirs = self.nginx.as_ref()?.per_second;
        (theirs > 0.0).then(|| ours / theirs)
    }

    /// Its lines in the text report: the CPUs and the ratio, then each server's rate, p99
    /// latency and CPU busy on a line of its own; a server busy less than [`BUSY_ENOUGH`] of
    /// the test (as printed, rounded to a %) is said not to have been measured at its
    /// capacity; the error, if any.
    pub fn text(&self) -> String {
        let busy = Capacity::busy_share;
        let side = |name: &str, c: &Option<Capacity>| {
            let figures = c.as_ref().map_or("-".to_string(), |c| {
                format!(
                    "{:.0}/s p99 {} cpu {}{}",
                    c.per_second,
                    c.latency_us
                        .map_or("-".into(), |l| format!("{:.0}µs", l.p99)),
                    busy(c).map_or("-".into(), |b| format!("{:.0}%", 100.0 * b)),
                    if c.errors > 0 {
                        format!(" errors {}", c.errors)
                    } else {
                        String::new()
                    }
                )
            });
            format!("    {name:<8} {figures}\n")
        };
        let mut out = String::new();
        if self.probe_server.is_some() || self.nginx.is_some() {
            let cpus = self.cpus.as_ref().map_or(String::new(), |c| {
                let load: Vec<String> = c.load.iter().map(usize::to_string).collect();
                format!(
                    " (server CPU {}, wrk ×{CONNECTIONS} on {})",
                    c.server,
                    load.join(",")
                )
            });
            out.push_str(&format!(
                "  capacity{cpus}: ratio {}\n",
                self.ratio().map_or("-".into(), |r| format!("{r:.2}×"))
            ));
            out.push_str(&side("multinet", &self.probe_server));
            out.push_str(&side("nginx", &self.nginx));
            for (name, c) in [("multinet", &self.probe_server), ("nginx", &self.nginx)] {
                if let Some(b) = c.as_ref().and_then(busy)
                    && (100.0 * b).round() < 100.0 * BUSY_ENOUGH
                {
                    out.push_str(&format!(
                        "  ! capacity: the {name} server was busy {:.0}% of the test (under {:.0}%): \
                         wrk's load, or other work on this machine, held it back; this is not its \
                         capacity, and the ratio compares no capacities\n",
                        100.0 * b,
                        100.0 * BUSY_ENOUGH
                    ));
                }
            }
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("  ! capacity: {error}\n"));
        }
        out
    }
}

/// The share of the test a server must be busy (CPU time over the test's time) for its rate
/// to be its capacity: under wrk's 64 connections both servers were busy 95–100 % of the time
/// on a CPU of their own (BENCHMARKS.md); well under that, something else limited the rate.
pub const BUSY_ENOUGH: f64 = 0.8;

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.1's report as Debian's package prints it against nginx (taken from a run).
    const REPORT: &str = "Running 1s test @ http://127.0.0.7:18081/payload?bytes=64
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   206.11us  206.70us   3.68ms   94.96%
    Req/Sec   205.58k    15.29k  222.21k    60.00%
  Latency Distribution
     50%  143.00us
     75%  234.00us
     90%  320.00us
     99%    1.03ms
  203931 requests in 1.00s, 43.95MB read
Requests/sec: 203220.74
Transfer/sec:     43.80MB
";

    #[test]
    fn wrks_report_gives_its_rate_count_time_and_percentiles() {
        let c = parse_wrk(REPORT).expect("parsed");
        assert_eq!(c.requests, 203_931);
        assert!((c.seconds - 1.0).abs() < 1e-9);
        assert!((c.per_second - 203_220.74).abs() < 1e-6);
        assert_eq!(c.errors, 0);
        let l = c.latency_us.expect("percentiles");
        assert!((l.p50 - 143.0).abs() < 1e-9 && (l.p90 - 320.0).abs() < 1e-9);
        assert!((l.p99 - 1030.0).abs() < 1e-9, "{l:?}");
    }

    #[test]
    fn wrks_error_counts_are_added_up() {
        let report = REPORT.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 7\n  Socket errors: connect 1, read 2, write 3, timeout 4\nRequests/sec",
        );
        assert_eq!(parse_wrk(&report).expect("parsed").errors, 17);
    }

    #[test]
    fn a_report_without_a_count_is_refused() {
        let e =
            parse_wrk("unable to connect to 127.0.0.7:1 Connection refused").expect_err("no count");
        assert!(e.contains("no count of requests"), "{e}");
    }

    /// A value of nine characters leaves one space after the percent sign (wrk's
    /// `print_units` pads to 10); no answer at all is an error with wrk's counts, not 0/s.
    #[test]
    fn a_long_percentile_is_read_and_no_answer_is_an_error() {
        let report = REPORT.replace("99%    1.03ms", "99% 1000.00ms");
        let l = parse_wrk(&report)
            .expect("parsed")
            .latency_us
            .expect("percentiles");
        assert!((l.p99 - 1e6).abs() < 1e-6, "{l:?}");
        let none = "Running 1s test @ http://127.0.0.7:1/payload?bytes=64
  1 threads and 64 connections
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 64, read 0, write 0, timeout 0
Requests/sec:      0.00
";
        let e = parse_wrk(none).expect_err("no answer");
        assert!(e.starts_with("no answer in 1.0s (64 error(s))"), "{e}");
    }

    #[test]
    fn wrks_units_are_microseconds_milliseconds_seconds_and_minutes() {
        assert_eq!(duration_us("143.00us"), Some(143.0));
        assert_eq!(duration_us("1.03ms"), Some(1030.0));
        assert_eq!(duration_us("2.00s"), Some(2e6));
        assert_eq!(duration_us("1.00m"), Some(60e6));
        assert_eq!(duration_us("12"), None);
        assert_eq!(duration_us("3.0xs"), None);
    }

    #[test]
    fn the_comparison_says_both_rates_their_cpu_and_the_ratio_or_why_not() {
        let side = |per_second: f64, cpu: f64| Capacity {
            connections: CONNECTIONS,
            requests: (per_second * 2.0) as u64,
            seconds: 2.0,
            per_second,
            errors: 0,
            latency_us: Some(CapacityLatency {
                p50: 300.0,
                p90: 400.0,
                p99: 950.0,
            }),
            server_cpu_seconds: Some(cpu),
        };
        let both = CapacityComparison {
            cpus: Some(CpuSplit {
                server: 1,
                load: vec![0],
            }),
            probe_server: Some(side(210_000.0, 2.0)),
            nginx: Some(side(200_000.0, 1.9)),
            error: None,
        };
        assert!((both.ratio().expect("both measured") - 1.05).abs() < 1e-9);
        assert_eq!(
            both.text(),
            "  capacity (server CPU 1, wrk ×64 on 0): ratio 1.05×\n    \
             multinet 210000/s p99 950µs cpu 100%\n    \
             nginx    200000/s p99 950µs cpu 95%\n"
        );
        // A server far from busy was not measured at its capacity: said.
        let held_back = CapacityComparison {
            nginx: Some(side(200_000.0, 0.8)),
            ..both.clone()
        };
        assert_eq!(
            held_back.text().lines().nth(3),
            Some(
                "  ! capacity: the nginx server was busy 40% of the test (under 80%): wrk's load, \
                 or other work on this machine, held it back; this is not its capacity, and the \
                 ratio compares no capacities"
            )
        );
        assert_eq!(both.text().lines().count(), 3);
        assert!(both.text().lines().all(|l| l.chars().count() < 80));
        let alone = CapacityComparison {
            error: Some("wrk is not installed".into()),
            ..CapacityComparison::default()
        };
        assert_eq!(alone.ratio(), None);
        assert_eq!(alone.text(), "  ! capacity: wrk is not installed\n");
    }

    #[test]
    fn the_last_allowed_cpu_serves_and_the_others_load() {
        assert_eq!(
            CpuSplit::of("0-1").expect("split"),
            CpuSplit {
                server: 1,
                load: vec![0]
            }
        );
        assert_eq!(
            CpuSplit::of("0,2-4,8").expect("split"),
            CpuSplit {
                server: 8,
                load: vec![0, 2, 3, 4]
            }
        );
        let e = CpuSplit::of("3").expect_err("one CPU");
        assert!(e.contains("one CPU only"), "{e}");
        for bad in ["", "a", "4-2", "1-"] {
            assert!(CpuSplit::of(bad).is_err(), "{bad:?}");
        }
        let threads = |list: &str| CpuSplit::of(list).expect("split").load_threads();
        assert_eq!(
            [
                threads("0-1"),
                threads("0-2"),
                threads("0-3"),
                threads("0-4")
            ],
            [1, 2, 2, 4]
        );
        assert_eq!(
            threads("0-99"),
            8,
            "at most 8, and never more than the connections"
        );
        let split = CpuSplit::of("0-2").expect("split");
        let taskset = Path::new("/usr/bin/taskset");
        assert_eq!(
            split.server_prefix(taskset),
            ["/usr/bin/taskset", "-c", "2"]
        );
        assert_eq!(
            split.load_prefix(taskset),
            ["/usr/bin/taskset", "-c", "0,1"]
        );
    }
}
