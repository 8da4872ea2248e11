//! The HTML report's soak sections (reports with `timelines`, i.e. `--duration`): per node and
//! network how much of the soak its paths were down and how often they flapped, a timeline of
//! the outage windows (and of the agents' absences, which are no outage: nothing was
//! measured), and the p99 latency per time bucket, where drift shows.
//!
//! A node's outage windows here are its client paths' windows (`paths[].outages`, each the
//! most recent 8 of that path) merged where they overlap; the `outage` findings apply the
//! coordinator's own merging rule (docs/report.md) and give the authoritative counts.
//!
//! A mesh soak's rows are (client node, responder node) pairs instead, as the live metrics'
//! `source_node` and `target_node` are: a node's windows merged over every responder would
//! make one broken pair its outage. Their outages are the report's
//! `mesh.networks[].cells[].outage` (the coordinator's rule; from `schema_version` 5), or in
//! an older report the pair's client paths' windows merged where they overlap.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::super::drift::{self, Buckets, NodeBuckets, span};
use super::super::stored::{StoredPath, StoredReport};
use super::super::text::latency;
use super::{esc, networks, node_label, node_names};

/// Width of the drawing area of a chart, px, and of the node labels to its left.
const PLOT_W: f64 = 860.0;
const LABEL_W: f64 = 120.0;
/// One row of the timeline, px.
const ROW_H: f64 = 26.0;
/// Line colours, one per node in turn (distinct in print and for the common colour
/// blindnesses: Okabe and Ito's palette).
const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
];

/// One merged outage window of a node on a network: run-clock ms, `to` `None` while down at the
/// end, the failure class most of its paths' windows had.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    from_ms: u64,
    to_ms: Option<u64>,
    class: Option<String>,
}

impl Window {
    fn end(&self, run_ms: u64) -> u64 {
        self.to_ms.unwrap_or(run_ms).max(self.from_ms)
    }
}

/// The windows of every path of `node` on `network`, merged where they overlap.
fn node_windows(r: &StoredReport, node: &str, network: &str) -> Vec<Window> {
    merged_windows(r, |p| p.source_node == node && p.network.key() == network)
}

/// The windows of the paths `only` selects, merged where they overlap.
fn merged_windows(r: &StoredReport, only: impl Fn(&StoredPath) -> bool) -> Vec<Window> {
    let run_ms = r.duration_ms;
    let mut all: Vec<&super::super::PathOutage> = r
        .paths
        .iter()
        .filter(|p| only(p))
        .flat_map(|p| &p.outages)
        .collect();
    all.sort_by_key(|o| o.from_ms);
    let mut merged: Vec<(Window, BTreeMap<String, usize>)> = Vec::new();
    for o in all {
        let end = o.to_ms.unwrap_or(run_ms).max(o.from_ms);
        match merged.last_mut() {
            Some((w, classes)) if o.from_ms <= w.end(run_ms) => {
                if o.to_ms.is_none() {
                    w.to_ms = None;
                } else if w.to_ms.is_some_and(|t| end > t) {
                    w.to_ms = Some(end);
                }
                if let Some(c) = &o.class {
                    *classes.entry(c.clone()).or_default() += 1;
                }
            }
            _ => merged.push((
                Window {
                    from_ms: o.from_ms,
                    to_ms: o.to_ms,
                    class: None,
                },
                o.class.iter().map(|c| (c.clone(), 1)).collect(),
            )),
        }
    }
    merged
        .into_iter()
        .map(|(mut w, classes)| {
            w.class = classes
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(class, _)| class);
            w
        })
        .collect()
}

/// The agents' absences on `node`: run-clock ms (`to` `None`: away at the end), pod.
fn agent_absences(r: &StoredReport, node: &str) -> Vec<(u64, Option<u64>, String)> {
    r.agent_outages
        .iter()
        .filter(|a| a["node"] == node)
        .flat_map(|a| {
            let pod = a["pod"].as_str().unwrap_or_default().to_string();
            a["windows"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |w| {
                    Some((w["from_ms"].as_u64()?, w["to_ms"].as_u64(), pod.clone()))
                })
        })
        .collect()
}

/// The soak's sections' bodies: (availability and timeline, latency over time); `None` for a
/// report that is not a soak's.
pub(super) fn sections(r: &StoredReport) -> Option<(String, String)> {
    let (width_ms, buckets) = drift::node_buckets(r)?;
    // A stored report read from a file may say anything: no drift chart without a width.
    let width_ms = width_ms.max(1);
    let outages = if r.mesh.is_some() {
        pair_outages(r)
    } else {
        outages(r)
    };
    Some((outages, drift_charts(r, width_ms, &buckets)))
}

/// Per network: the table of availability and flaps, and the timeline of windows.
fn outages(r: &StoredReport) -> String {
    let run_ms = r.duration_ms.max(1);
    let mut out = String::from(
        "<p class=\"legend\">Per node and network over the whole soak: the share of probes that passed, the node's client paths' outage windows (merged where they overlap; the <code>outage</code> findings above apply the coordinator's merging rule and are the authoritative count), the time down, up→down flaps summed over its paths, and the time its agents were away, summed over them (not measured: no outage). On the timeline, red is a window, grey an agent away; hover for times and the failure class.</p>\n",
    );
    for network in networks(r) {
        let key = network.key();
        let _ = write!(
            out,
            "<h3>{}</h3>\n<table class=\"soak\" data-network=\"{}\"><tr><th>node</th><th>probes passed</th><th>outage windows</th><th>longest</th><th>down in all</th><th>flaps</th><th>agents away</th></tr>\n",
            esc(key),
            esc(key)
        );
        let mut rows = String::new();
        let nodes = node_names(r);
        for (i, node) in nodes.iter().enumerate() {
            let paths: Vec<_> = r
                .paths
                .iter()
                .filter(|p| &p.source_node == node && p.network == network)
                .collect();
            if paths.is_empty() {
                continue;
            }
            let (ok, sent) = paths
                .iter()
                .fold((0, 0), |(o, s), p| (o + p.ok, s + p.sent));
            let flaps: u64 = paths.iter().map(|p| p.flaps).sum();
            let windows = node_windows(r, node, key);
            let down: u64 = windows.iter().map(|w| w.end(run_ms) - w.from_ms).sum();
            let longest = windows.iter().map(|w| w.end(run_ms) - w.from_ms).max();
            let away = agent_absences(r, node);
            let away_ms: u64 = away
                .iter()
                .map(|(from, to, _)| to.unwrap_or(run_ms).saturating_sub(*from))
                .sum();
            let passed = passed_share(ok, sent);
            let _ = writeln!(
                out,
                "<tr data-node=\"{}\"><th>{}</th><td class=\"num\">{passed}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{flaps}</td><td class=\"num\">{}</td></tr>",
                esc(node),
                node_label(r, node),
                windows.len(),
                longest.map_or("-".into(), seconds),
                seconds(down),
                if away.is_empty() {
                    "-".into()
                } else {
                    format!("{} ({}×)", seconds(away_ms), away.len())
                },
            );
            rows.push_str(&timeline_row(
                r,
                i,
                Who { node, to: None },
                key,
                &windows,
                &away,
            ));
        }
        out.push_str("</table>\n");
        let height = ROW_H * nodes.len() as f64 + 24.0;
        let _ = write!(
            out,
            "<svg class=\"timeline\" data-network=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"outage windows on {}\">\n{rows}{}</svg>\n",
            esc(key),
            LABEL_W + PLOT_W + 20.0,
            LABEL_W + PLOT_W + 20.0,
            esc(key),
            axis(run_ms, ROW_H * nodes.len() as f64),
        );
    }
    out
}

/// A mesh soak's table and timeline per network: a row per (client node, responder node)
/// pair that had an outage or a failed probe, its outages as the report's
/// `mesh.networks[].cells[].outage` has them (the coordinator's outage rule over the pair's
/// client paths, every window; a report of schema 4 or older, which has none, its clients'
/// path windows to the responder merged where they overlap). A node's windows merged over every responder would make one broken pair the
/// node's outage.
fn pair_outages(r: &StoredReport) -> String {
    let run_ms = r.duration_ms.max(1);
    let mut out = String::from(
        "<p class=\"legend\">A mesh soak: per network, a row per client node → responder node pair that had an outage or a failed probe, over the whole soak: the share of its clients' probes that passed, its outages by the coordinator's outage rule over its clients' paths to that responder (the JSON report's <code>mesh.networks[].cells[].outage</code>; a pair's <code>outage</code> finding leaves out the windows within its nodes' own outages, and the live metrics count a little differently: docs/report.md), the longest, the time down, up→down flaps summed over its paths, and the time the node's clients or the responder were away (not measured: no outage). On the timeline, red is an outage, grey an agent away; hover for times and the failure class.</p>\n",
    );
    // Host checkers' probes are in no cell (a cell is its clients').
    let host_checkers: Vec<&str> = r
        .agents
        .iter()
        .filter(|a| a["role"] == "host_check")
        .filter_map(|a| a["pod"].as_str())
        .collect();
    let Some(mesh) = &r.mesh else {
        return out;
    };
    for matrix in &mesh.networks {
        let key = matrix.network.key();
        let _ = write!(
            out,
            "<h3>{}</h3>\n<table class=\"soak\" data-network=\"{}\"><tr><th>client node → responder node</th><th>probes passed</th><th>outages</th><th>longest</th><th>down in all</th><th>flaps</th><th>agents away</th></tr>\n",
            esc(key),
            esc(key)
        );
        let mut rows = String::new();
        let mut shown = 0;
        let mut quiet = 0;
        for cell in &matrix.cells {
            let in_pair = |p: &StoredPath| {
                p.network == matrix.network
                    && p.source_node == cell.from
                    && p.target_node.as_deref() == Some(cell.to.as_str())
                    && !host_checkers.contains(&p.client.as_str())
            };
            let paths: Vec<&StoredPath> = r.paths.iter().filter(|p| in_pair(p)).collect();
            let (ok, sent) = paths
                .iter()
                .fold((0, 0), |(o, s), p| (o + p.ok, s + p.sent));
            if sent == 0 {
                continue;
            }
            // Schema 5 has each pair's outages by the coordinator's rule (none: no outage);
            // an older report only its paths' windows.
            let (count, longest, down, windows) = match &cell.outage {
                _ if r.schema_version < 5 => {
                    let windows = merged_windows(r, in_pair);
                    let lengths = windows.iter().map(|w| w.end(run_ms) - w.from_ms);
                    (windows.len(), lengths.clone().max(), lengths.sum(), windows)
                }
                None => (0, None, 0, Vec::new()),
                Some(o) => (
                    o.outages,
                    (o.outages > 0).then_some(o.longest_ms),
                    o.down_ms,
                    o.windows
                        .iter()
                        .map(|w| Window {
                            from_ms: w.from_ms,
                            to_ms: (!w.ongoing).then_some(w.to_ms),
                            class: w.class.clone(),
                        })
                        .collect(),
                ),
            };
            if count == 0 && windows.is_empty() && ok == sent {
                quiet += 1;
                continue;
            }
            let who = Who {
                node: &cell.from,
                to: Some(&cell.to),
            };
            let flaps: u64 = paths.iter().map(|p| p.flaps).sum();
            let mut away = agent_absences(r, &cell.from);
            away.retain(|(_, _, pod)| {
                !host_checkers.contains(&pod.as_str()) && !is_responder(r, pod)
            });
            away.extend(
                agent_absences(r, &cell.to)
                    .into_iter()
                    .filter(|(_, _, pod)| is_responder(r, pod)),
            );
            let away_ms: u64 = away
                .iter()
                .map(|(from, to, _)| to.unwrap_or(run_ms).saturating_sub(*from))
                .sum();
            let _ = writeln!(
                out,
                "<tr {}><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{count}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{flaps}</td><td class=\"num\">{}</td></tr>",
                who.attributes(),
                who.name(),
                passed_share(ok, sent),
                longest.map_or("-".into(), seconds),
                seconds(down),
                if away.is_empty() {
                    "-".into()
                } else {
                    format!("{} ({}×)", seconds(away_ms), away.len())
                },
            );
            rows.push_str(&timeline_row(r, shown, who, key, &windows, &away));
            shown += 1;
        }
        out.push_str("</table>\n");
        if quiet > 0 {
            let _ = writeln!(
                out,
                "<p class=\"legend\">The other {quiet} pair(s) probed on {} passed every probe.</p>",
                esc(key)
            );
        }
        if shown == 0 {
            continue;
        }
        let height = ROW_H * shown as f64 + 24.0;
        let _ = write!(
            out,
            "<svg class=\"timeline\" data-network=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"outage windows on {}\">\n{rows}{}</svg>\n",
            esc(key),
            LABEL_W + PLOT_W + 20.0,
            LABEL_W + PLOT_W + 20.0,
            esc(key),
            axis(run_ms, ROW_H * shown as f64),
        );
    }
    out
}

/// Whether `pod` is a server (a mesh's responder) by the report's `agents`.
fn is_responder(r: &StoredReport, pod: &str) -> bool {
    r.agents
        .iter()
        .any(|a| a["pod"] == pod && a["role"] == "server")
}

/// The share of `sent` that passed, truncated, not rounded: 99.996 % is no 100 %.
fn passed_share(ok: u64, sent: u64) -> String {
    if sent == 0 {
        "no probes".to_string()
    } else {
        let hundredths = u128::from(ok) * 10_000 / u128::from(sent);
        format!("{}.{:02}%", hundredths / 100, hundredths % 100)
    }
}

/// `12.3 s`.
fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn x_of(ms: u64, run_ms: u64) -> f64 {
    LABEL_W + PLOT_W * (ms.min(run_ms) as f64 / run_ms as f64)
}

/// Who a row of the soak's table and timeline is: a node (single server) or a pair (mesh).
#[derive(Debug, Clone, Copy)]
struct Who<'a> {
    /// The client node.
    node: &'a str,
    /// A mesh pair's responder node.
    to: Option<&'a str>,
}

impl Who<'_> {
    /// Its attributes: `data-node`, and a pair's `data-to-node`.
    fn attributes(&self) -> String {
        match self.to {
            None => format!("data-node=\"{}\"", esc(self.node)),
            Some(to) => format!(
                "data-node=\"{}\" data-to-node=\"{}\"",
                esc(self.node),
                esc(to)
            ),
        }
    }

    /// Its name in a tooltip: `n2`, `n2 → n3`.
    fn name(&self) -> String {
        match self.to {
            None => esc(self.node),
            Some(to) => format!("{} → {}", esc(self.node), esc(to)),
        }
    }

    /// Its label (HTML): the node's (★ the server's), or the pair's name.
    fn label(&self, r: &StoredReport) -> String {
        match self.to {
            None => node_label(r, self.node),
            Some(_) => self.name(),
        }
    }
}

/// One row of the timeline: its label, a baseline, its windows and its agents' time away
/// (each with a tooltip).
fn timeline_row(
    r: &StoredReport,
    row: usize,
    who: Who<'_>,
    network: &str,
    windows: &[Window],
    away: &[(u64, Option<u64>, String)],
) -> String {
    let run_ms = r.duration_ms.max(1);
    let y = ROW_H * row as f64;
    let mut out = format!(
        "<text x=\"4\" y=\"{:.1}\">{}</text><line x1=\"{LABEL_W}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d0d7de\"/>\n",
        y + 16.0,
        who.label(r),
        LABEL_W + PLOT_W,
        y + 12.0,
        y + 12.0
    );
    for w in windows {
        let (x1, x2) = (x_of(w.from_ms, run_ms), x_of(w.end(run_ms), run_ms));
        let _ = writeln!(
            out,
            "<rect class=\"outage\" {} data-network=\"{}\" data-from-ms=\"{}\" data-to-ms=\"{}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"#cf222e\"><title>{} on {}: down from {} to {} ({}){}</title></rect>",
            who.attributes(),
            esc(network),
            w.from_ms,
            w.to_ms.map_or("end".into(), |t| t.to_string()),
            y + 4.0,
            (x2 - x1).max(1.5),
            who.name(),
            esc(network),
            span_ms(w.from_ms),
            w.to_ms.map_or("the end (still down)".into(), span_ms),
            seconds(w.end(run_ms) - w.from_ms),
            w.class
                .as_ref()
                .map_or(String::new(), |c| format!(", mostly {}", esc(c))),
        );
    }
    for (from, to, pod) in away {
        let end = to.unwrap_or(run_ms);
        let (x1, x2) = (x_of(*from, run_ms), x_of(end, run_ms));
        let _ = writeln!(
            out,
            "<rect class=\"away\" {} x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" fill=\"#8c959f\"><title>agent {} away from {} to {}: not measured, no outage</title></rect>",
            who.attributes(),
            y + 17.0,
            (x2 - x1).max(1.5),
            esc(pod),
            span_ms(*from),
            to.map_or("the end".into(), span_ms),
        );
    }
    out
}

/// `42.5 s` into the run.
fn span_ms(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Time ticks under a chart `top` px down: about 8, at round steps.
fn axis(run_ms: u64, top: f64) -> String {
    const STEPS: [u64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000, 14_400_000, 43_200_000,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| run_ms / s <= 8)
        // Beyond half a day: about 8 ticks of whatever width (a report file may say any
        // duration).
        .unwrap_or_else(|| run_ms.div_ceil(8).max(1));
    let mut out = String::new();
    let mut at = 0;
    while at <= run_ms {
        let x = x_of(at, run_ms);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"#57606a\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            top + 4.0,
            x - 8.0,
            top + 16.0,
            span(at)
        );
        match at.checked_add(step) {
            Some(next) => at = next,
            None => break,
        }
    }
    out
}

/// Per network: a line per node of the worst p99 per time bucket; buckets with failed probes
/// marked.
fn drift_charts(r: &StoredReport, width_ms: u64, buckets: &NodeBuckets) -> String {
    let mut out = format!(
        "<p class=\"legend\">p99 latency of the successful probes per time bucket of {} (the worst probe kind of each node), from the run's start; a red dot is a bucket with failed probes. A line that climbs is drift that whole-run percentiles hide.</p>\n",
        span(width_ms)
    );
    let height = 220.0;
    for network in networks(r) {
        let key = network.key();
        let rows: Vec<(usize, &String, &Buckets)> = node_names(r)
            .iter()
            .enumerate()
            .filter_map(|(i, node)| {
                buckets
                    .get_key_value(&(key.to_string(), node.clone()))
                    .map(|((_, n), b)| (i, n, b))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let count = rows
            .iter()
            .map(|(_, _, b)| b.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let top = rows
            .iter()
            .flat_map(|(_, _, b)| b.iter().filter_map(|x| x.2))
            .max()
            .unwrap_or(1)
            .max(1);
        let span_ms = width_ms.saturating_mul(count as u64).max(1);
        let x = |i: usize| {
            x_of(
                width_ms
                    .saturating_mul(i as u64)
                    .saturating_add(width_ms / 2),
                span_ms,
            )
        };
        let y = |us: u32| 10.0 + (height - 40.0) * (1.0 - f64::from(us) / f64::from(top));
        let _ = write!(
            out,
            "<h3>{}</h3>\n<svg class=\"drift\" data-network=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"p99 latency over time on {}\">\n<text x=\"4\" y=\"14\">{}</text><text x=\"4\" y=\"{:.1}\">0</text>\n",
            esc(key),
            esc(key),
            LABEL_W + PLOT_W + 20.0,
            LABEL_W + PLOT_W + 20.0,
            esc(key),
            esc(&latency(Some(top))),
            height - 30.0
        );
        for (i, node, b) in &rows {
            let colour = PALETTE[i % PALETTE.len()];
            let points: Vec<String> = b
                .iter()
                .enumerate()
                .filter_map(|(j, (_, _, p99))| p99.map(|p| format!("{:.1},{:.1}", x(j), y(p))))
                .collect();
            let _ = writeln!(
                out,
                "<polyline class=\"drift\" data-node=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></polyline>",
                esc(node),
                points.join(" "),
                esc(node)
            );
            for (j, (probes, ok, p99)) in b.iter().enumerate() {
                if ok < probes {
                    let _ = writeln!(
                        out,
                        "<circle class=\"failing\" data-node=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#cf222e\"><title>{} at {}: {} of {} probes failed</title></circle>",
                        esc(node),
                        x(j),
                        p99.map_or(height - 30.0, y),
                        esc(node),
                        span(width_ms.saturating_mul(j as u64)),
                        probes - ok,
                        probes
                    );
                }
            }
        }
        out.push_str(&axis(span_ms, height - 28.0));
        out.push_str("</svg>\n<p class=\"legend\">");
        for (i, node, _) in &rows {
            let _ = write!(
                out,
                "<span style=\"color:{}\">■</span> {} ",
                PALETTE[i % PALETTE.len()],
                esc(node)
            );
        }
        out.push_str("</p>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fixture() -> StoredReport {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/reports/lab-soak-outage.json"
        ));
        match super::super::super::stored::load(path).expect("the fixture reads") {
            super::super::super::stored::Stored::Run(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    /// The fixture: a 75 s lab soak, n2's cluster network blocked from 20 s for 15 s, n3's
    /// client agent killed at 40 s for 8 s.
    #[test]
    fn a_blocked_nodes_paths_merge_into_its_one_window_and_an_agent_away_is_no_window() {
        let r = fixture();
        let windows = node_windows(&r, "n2", "cluster");
        assert_eq!(windows.len(), 1, "{windows:?}");
        let w = &windows[0];
        // Its paths' windows began between the block and a probe round after it; all ended
        // about 35 s in, when the block was lifted.
        assert!((20_000..24_000).contains(&w.from_ms), "{w:?}");
        assert!(
            w.to_ms.is_some_and(|t| (35_000..36_500).contains(&t)),
            "{w:?}"
        );
        assert_eq!(w.class.as_deref(), Some("connect_timeout"));
        for (node, network) in [("n1", "cluster"), ("n3", "cluster"), ("n2", "public")] {
            assert_eq!(node_windows(&r, node, network), [], "{node} {network}");
        }
        let away = agent_absences(&r, "n3");
        assert_eq!(away.len(), 1, "{away:?}");
        assert_eq!(away[0].2, "client-n3-osd-0");
    }

    #[test]
    fn the_soak_sections_draw_each_window_each_absence_and_a_line_per_node() {
        let r = fixture();
        let (outages, drift) = sections(&r).expect("a soak");
        assert_eq!(outages.matches("<rect class=\"outage\"").count(), 1);
        assert!(
            outages.contains("<rect class=\"outage\" data-node=\"n2\" data-network=\"cluster\"")
        );
        assert_eq!(
            outages
                .matches("<rect class=\"away\" data-node=\"n3\"")
                .count(),
            2,
            "on both networks' timelines"
        );
        for network in ["public", "cluster"] {
            assert!(outages.contains(&format!(
                "<svg class=\"timeline\" data-network=\"{network}\""
            )));
            assert!(drift.contains(&format!("<svg class=\"drift\" data-network=\"{network}\"")));
            for node in ["n1", "n2", "n3"] {
                assert!(outages.contains(&format!("<tr data-node=\"{node}\">")));
            }
        }
        assert_eq!(
            drift.matches("<polyline class=\"drift\"").count(),
            6,
            "3 nodes × 2 networks"
        );
        // The block shows as failing buckets of n2 on the cluster network.
        assert!(drift.contains("<circle class=\"failing\" data-node=\"n2\""));
    }

    /// A report file may say anything: a zero or huge bucket width or duration draws
    /// something, never panics.
    #[test]
    fn odd_widths_and_durations_do_not_break_the_charts() {
        let mut r = fixture();
        for (width, duration) in [(0, 0), (u64::MAX, u64::MAX), (1, u64::MAX / 3)] {
            r.timelines.iter_mut().for_each(|t| t.bucket_ms = width);
            r.duration_ms = duration;
            let (outages, drift) = sections(&r).expect("a soak");
            assert!(outages.contains("<svg class=\"timeline\""));
            assert!(!drift.contains("NaN"), "{width} {duration}");
        }
    }

    /// A mesh soak's report: 3 nodes, the cluster network; n2 → n3 down 5 s to 12 s (both
    /// of n2's clients), n2's host checker down toward n3 from 30 s (no cell's), n3's
    /// responder away from 40 s to 42 s; every other pair passes.
    fn mesh_soak() -> StoredReport {
        let nodes = ["n1", "n2", "n3"];
        let kind = json!({"scheme": "http", "payload": "small", "connection": "fresh"});
        let mut paths = Vec::new();
        let mut cells = Vec::new();
        for from in nodes {
            for (i, to) in nodes.iter().enumerate() {
                let down = from == "n2" && *to == "n3";
                for client in [
                    format!("client-{from}-osd-0"),
                    format!("client-{from}-osd-1"),
                ] {
                    paths.push(json!({
                        "source_node": from, "client": client, "network": "cluster",
                        "target": format!("198.18.1.{}:8080", 100 + i), "target_node": to,
                        "kind": kind, "sent": 60, "ok": if down { 53 } else { 60 },
                        "flaps": u64::from(down),
                        "outages": if down {
                            json!([{"from_ms": 5_000, "to_ms": 12_000, "class": "connect_timeout"}])
                        } else {
                            json!([])
                        },
                    }));
                }
                cells.push(json!({
                    "from": from, "to": to, "state": if down { "degraded" } else { "pass" },
                    "clients": 2, "clients_passing": if down { 0 } else { 2 },
                    "probes_sent": 120, "probes_ok": if down { 106 } else { 120 }, "failures": {},
                    "outage": if down {
                        json!({"outages": 1, "longest_ms": 7_000, "down_ms": 7_000,
                               "availability": 0.8814,
                               "windows": [{"from_ms": 5_000, "to_ms": 12_000, "ongoing": false,
                                            "class": "connect_timeout"}]})
                    } else {
                        json!({"outages": 0, "longest_ms": 0, "down_ms": 0, "availability": 1.0,
                               "windows": []})
                    },
                }));
            }
        }
        paths.push(json!({
            "source_node": "n2", "client": "host-n2", "network": "cluster",
            "target": "198.18.1.102:8080", "target_node": "n3", "kind": kind, "sent": 60,
            "ok": 60, "outages": [{"from_ms": 30_000, "to_ms": 33_000}],
        }));
        serde_json::from_value(json!({
            "schema_version": 5, "verdict": "fail", "backend": "lab", "duration_ms": 60_000,
            "networks": ["cluster"],
            "nodes": nodes.iter().map(|n| json!({"name": n, "node_type": "converged", "server": *n == "n1"})).collect::<Vec<_>>(),
            "paths": paths,
            "timelines": [{
                "source_node": "n2", "network": "cluster", "target": "198.18.1.102:8080",
                "kind": kind, "bucket_ms": 10_000,
                "buckets": [{"probes": 10, "ok": 3, "latency_us": {"p99": 900}}],
            }],
            "agents": [
                {"pod": "server-n3", "node": "n3", "role": "server"},
                {"pod": "host-n2", "node": "n2", "role": "host_check"},
            ],
            "agent_outages": [{
                "pod": "server-n3", "node": "n3", "role": "server", "outages": 1,
                "away_ms": 2_000, "restarts": 0,
                "windows": [{"from_ms": 40_000, "to_ms": 42_000}],
            }],
            "mesh": {"peers_per_node": null, "networks": [{
                "network": "cluster", "from": nodes, "to": nodes, "pairs_probed": 9,
                "pairs": 9, "cells": cells,
            }]},
        }))
        .expect("a mesh soak report")
    }

    #[test]
    fn a_mesh_soak_shows_the_pair_that_was_down_not_its_client_node() {
        let r = mesh_soak();
        let (outages, _) = sections(&r).expect("a soak");
        assert!(
            outages.contains("<tr data-node=\"n2\" data-to-node=\"n3\"><th>n2 → n3</th><td class=\"num\">88.33%</td><td class=\"num\">1</td><td class=\"num\">7.0 s</td><td class=\"num\">7.0 s</td><td class=\"num\">2</td><td class=\"num\">2.0 s (1×)</td></tr>"),
            "{outages}"
        );
        assert!(
            !outages.contains("<tr data-node=\"n2\">"),
            "no node row: {outages}"
        );
        assert_eq!(outages.matches("<tr data-node=").count(), 1, "{outages}");
        assert!(
            outages.contains("The other 8 pair(s) probed on cluster passed every probe."),
            "{outages}"
        );
        // The cell's one outage; the host checker's window toward n3 is no cell's.
        assert_eq!(
            outages.matches("<rect class=\"outage\"").count(),
            1,
            "{outages}"
        );
        assert!(outages.contains("<rect class=\"outage\" data-node=\"n2\" data-to-node=\"n3\" data-network=\"cluster\" data-from-ms=\"5000\" data-to-ms=\"12000\""), "{outages}");
        assert!(outages.contains("<title>n2 → n3 on cluster: down from 5.0 s to 12.0 s (7.0 s), mostly connect_timeout</title>"), "{outages}");
        // The responder on n3 away: on its pair's row.
        assert!(
            outages.contains("<rect class=\"away\" data-node=\"n2\" data-to-node=\"n3\""),
            "{outages}"
        );
    }

    /// Must-fix 5 of the review: the fallback is for reports older than schema 5 (a schema 4
    /// mesh report has no cell outages), decided by `schema_version`.
    #[test]
    fn an_older_mesh_soak_report_shows_its_pairs_path_windows_merged() {
        let mut r = mesh_soak();
        r.schema_version = 4;
        let cells = &mut r.mesh.as_mut().expect("mesh").networks[0].cells;
        cells.iter_mut().for_each(|c| c.outage = None);
        // One client's window a little later than the other's: merged where they overlap.
        let later = r
            .paths
            .iter_mut()
            .find(|p| p.client == "client-n2-osd-1" && p.target_node.as_deref() == Some("n3"))
            .expect("the path");
        later.outages[0].from_ms = 5_400;
        later.outages[0].to_ms = Some(12_600);
        let (outages, _) = sections(&r).expect("a soak");
        assert!(
            outages.contains("<rect class=\"outage\" data-node=\"n2\" data-to-node=\"n3\" data-network=\"cluster\" data-from-ms=\"5000\" data-to-ms=\"12600\""),
            "{outages}"
        );
        assert_eq!(
            outages.matches("<rect class=\"outage\"").count(),
            1,
            "{outages}"
        );
        assert!(
            outages.contains("<td class=\"num\">7.6 s</td>"),
            "{outages}"
        );
    }

    /// Must-fix 5: a schema 5 report's pair without cell outages had none by the
    /// coordinator's rule (its paths' windows were loss, shorter than the shortest outage):
    /// no fallback to the path windows, which would draw them as outages.
    #[test]
    fn a_schema_5_cell_without_outages_is_not_read_from_its_path_windows() {
        let mut r = mesh_soak();
        let cells = &mut r.mesh.as_mut().expect("mesh").networks[0].cells;
        cells.iter_mut().for_each(|c| c.outage = None);
        let (outages, _) = sections(&r).expect("a soak");
        // n2 -> n3 still has its row (failed probes), with no outage drawn.
        assert!(
            outages.contains("<tr data-node=\"n2\" data-to-node=\"n3\"><th>n2 → n3</th><td class=\"num\">88.33%</td><td class=\"num\">0</td><td class=\"num\">-</td><td class=\"num\">0.0 s</td>"),
            "{outages}"
        );
        assert_eq!(
            outages.matches("<rect class=\"outage\"").count(),
            0,
            "{outages}"
        );
    }

    #[test]
    fn a_run_without_timelines_has_no_soak_section() {
        let mut r = fixture();
        r.timelines.clear();
        assert!(sections(&r).is_none());
    }
}
