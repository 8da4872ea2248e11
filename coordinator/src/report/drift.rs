//! The text report's soak section: latency and failures over time per node and network, from
//! the report's `timelines` (a soak's time buckets). A row says where a node's p99 started,
//! how bad it got and when, and where it ended — drift that whole-run percentiles hide.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::StoredReport;
use super::text::latency;

/// One bucket of a node on a network: probes, successes, the worst p99 over probe kinds (µs).
pub(super) type Bucket = (u64, u64, Option<u32>);
/// A node's buckets on a network.
pub(super) type Buckets = Vec<Bucket>;
/// Every node's buckets, by (network key, node).
pub(super) type NodeBuckets = BTreeMap<(String, String), Buckets>;

/// The report's timelines per (network key, node), every probe kind and target of a node
/// together, with the buckets' width (ms); `None` without timelines (not a soak).
pub(super) fn node_buckets(r: &StoredReport) -> Option<(u64, NodeBuckets)> {
    let width_ms = r.timelines.first()?.bucket_ms;
    let mut rows = NodeBuckets::new();
    for t in &r.timelines {
        let row = rows
            .entry((t.network.key().to_string(), t.source_node.clone()))
            .or_default();
        if row.len() < t.buckets.len() {
            row.resize(t.buckets.len(), (0, 0, None));
        }
        for (slot, b) in row.iter_mut().zip(&t.buckets) {
            slot.0 += b.probes;
            slot.1 += b.ok;
            slot.2 = slot.2.max(b.latency_us.p99);
        }
    }
    Some((width_ms, rows))
}

/// Appends the section to `out` (nothing without timelines).
pub(super) fn render(out: &mut String, r: &StoredReport) {
    let Some((width_ms, rows)) = node_buckets(r) else {
        return;
    };
    let buckets = rows.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "\nover time: p99 latency (worst probe kind) per bucket of {} — first, worst (when), last; buckets with failed probes",
        span(width_ms)
    );
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>20} {:>9} {:>10}",
        "network", "first", "worst (at)", "last", "failing"
    );
    for ((network, node), row) in &rows {
        let with_probes: Vec<(usize, &Bucket)> =
            row.iter().enumerate().filter(|(_, b)| b.0 > 0).collect();
        let first = with_probes.first().and_then(|(_, b)| b.2);
        let last = with_probes.last().and_then(|(_, b)| b.2);
        let worst = with_probes
            .iter()
            .filter_map(|(i, b)| b.2.map(|p| (p, *i)))
            .max();
        let failing = with_probes.iter().filter(|(_, b)| b.1 < b.0).count();
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>20} {:>9} {:>10}",
            format!("  {network} {node}"),
            latency(first),
            worst.map_or("-".into(), |(p, i)| format!(
                "{} ({})",
                latency(Some(p)),
                span(i as u64 * width_ms)
            )),
            latency(last),
            format!("{failing}/{buckets}")
        );
    }
}

/// `90s`, `12m`, `2h05m`.
pub(super) fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_drift_and_its_failing_buckets_show() {
        let bucket = |probes: u64, ok: u64, p99: u32| serde_json::json!({"probes": probes, "ok": ok, "latency_us": {"p99": p99}});
        let timeline = |node: &str, scheme: &str, buckets: Vec<serde_json::Value>| {
            serde_json::json!({
                "source_node": node, "network": "public", "target": "198.18.0.1:8080",
                "kind": {"scheme": scheme, "payload": "small", "connection": "fresh"},
                "bucket_ms": 640_000, "buckets": buckets,
            })
        };
        let report: StoredReport = serde_json::from_value(serde_json::json!({
            "verdict": "warn", "backend": "lab",
            "timelines": [
                timeline("n1", "http", vec![bucket(64, 64, 900), bucket(64, 64, 1_000), bucket(64, 64, 900)]),
                timeline("n2", "http", vec![bucket(64, 64, 900), bucket(64, 40, 20_000), bucket(64, 64, 4_000)]),
                timeline("n2", "https", vec![bucket(64, 64, 1_800), bucket(64, 64, 2_000), bucket(0, 0, 0)]),
            ],
        }))
        .expect("a report");
        let mut out = String::new();
        render(&mut out, &report);
        assert!(out.contains("per bucket of 10m"), "{out}");
        let n1 = out.lines().find(|l| l.contains("public n1")).expect("n1");
        let n2 = out.lines().find(|l| l.contains("public n2")).expect("n2");
        // Worst probe kind per bucket; the worst bucket and when it began; failing buckets.
        assert!(n1.ends_with("0/3"), "{n1}");
        assert!(
            n2.contains(&format!("{} (10m)", latency(Some(20_000)))),
            "{n2}"
        );
        assert!(
            n2.contains(&latency(Some(1_800))),
            "first bucket's worst: {n2}"
        );
        assert!(n2.ends_with("1/3"), "{n2}");
        let mut none = String::new();
        render(
            &mut none,
            &StoredReport {
                timelines: Vec::new(),
                ..report
            },
        );
        assert!(none.is_empty());
    }

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(90_000), "90s");
        assert_eq!(span(640_000), "10m");
        assert_eq!(span(7_500_000), "2h05m");
    }
}
