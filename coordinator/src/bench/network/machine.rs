//! How busy this machine was just before a bench: other work competes with the tests for the
//! CPUs (on a 2-vCPU lab the figures swing with it: BENCHMARKS.md), so the report says it.

use std::time::Duration;

/// At this share of all CPUs busy or more before the bench, the text report warns that the
/// figures may be low and spread: one busy process of two CPUs' worth is 50 %.
pub const BUSY_WARNING: f64 = 0.25;

/// Busy and total time of the `cpu` line (all CPUs) of `/proc/stat`, in clock ticks (proc(5)):
/// busy is user + nice + system + irq + softirq + steal, total adds idle and iowait (guest time
/// is within user already).
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// The share (0–1) of all CPUs busy between two `/proc/stat` texts; `None` when either cannot
/// be read or no time passed.
fn busy_between(before: &str, after: &str) -> Option<f64> {
    let (busy0, total0) = cpu_times(before)?;
    let (busy1, total1) = cpu_times(after)?;
    let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
    Some(busy1.saturating_sub(busy0) as f64 / total as f64)
}

/// The share (0–1) of all this machine's CPUs busy over `window` (blocks that long), from
/// `/proc/stat`; `None` where it cannot be read.
pub fn busy_share(window: Duration) -> Option<f64> {
    let before = std::fs::read_to_string("/proc/stat").ok()?;
    std::thread::sleep(window);
    let after = std::fs::read_to_string("/proc/stat").ok()?;
    busy_between(&before, &after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_share_counts_every_cpu_state_but_idle_and_iowait() {
        // Two CPUs over 1 s at 100 ticks a second: 200 ticks, of which 50 user, 10 system,
        // 5 softirq and 5 steal busy, 120 idle and 10 iowait.
        let before = "cpu  1000 0 500 8000 100 0 50 20 0 0\ncpu0 500 0 250 4000 50 0 25 10 0 0\n";
        let after = "cpu  1050 0 510 8120 110 0 55 25 0 0\ncpu0 525 0 255 4060 55 0 27 12 0 0\n";
        let share = busy_between(before, after).expect("read");
        assert!((share - 70.0 / 200.0).abs() < 1e-9, "{share}");
        assert_eq!(busy_between(before, before), None, "no time passed");
        assert_eq!(busy_between("intr 1 2\n", after), None);
        assert_eq!(cpu_times("cpu  1 2 3\n"), None, "too few fields");
        let live = busy_share(Duration::from_millis(50)).expect("/proc/stat reads");
        assert!((0.0..=1.0).contains(&live), "{live}");
    }
}
