//! The HTML report: one self-contained page (inline CSS and SVG; no scripts, fonts, images or
//! styles from anywhere else, so it opens offline and prints) for people who would rather look
//! than read the text matrix.
//!
//! The page is a list of [`Section`]s — verdict and run facts, findings, for a soak its outage
//! timeline, availability and latency over time ([`soak`]), a node × target heatmap per
//! network, the node × probe-kind matrix, latency distributions — each with an anchor in the
//! page's table of contents; a mode that adds to the report (a bench's metrics) adds a section
//! to [`sections`]. Every string that comes from
//! the report (node, pod and NAD names, CNI error messages, evidence) goes through [`esc`].

use std::collections::BTreeMap;
use std::fmt::Write;

use multinet_proto::network::CephNetwork;
use multinet_proto::probe::ProbeKind;
use serde_json::Value;

use super::stored::{StoredPath, StoredReport};

pub mod compare;
mod soak;
use super::text::{kind_label, latency};
use super::{ErrorReport, Verdict};

/// `s` made safe as HTML text and as a quoted attribute value.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One part of the page: its anchor, its heading, its body (HTML).
struct Section {
    id: &'static str,
    title: String,
    body: String,
}

const STYLE: &str = r#"
:root { --pass: #1a7f37; --warn: #9a6700; --fail: #cf222e; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem; color: #1f2328; }
h1 { font-size: 1.5rem; margin: .2rem 0; }
h2 { font-size: 1.2rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 1.6rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
nav a { margin-right: 1rem; }
.verdict { display: inline-block; padding: .2rem .8rem; border-radius: 4px; color: #fff; font-weight: 700; letter-spacing: .05em; }
.verdict.pass { background: var(--pass); } .verdict.warn { background: var(--warn); }
.verdict.fail, .verdict.error { background: var(--fail); }
.note { border-left: 4px solid var(--warn); padding: .3rem .8rem; background: #fff8c5; }
table { border-collapse: collapse; margin: .3rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.facts th { width: 14rem; }
.finding { border: 1px solid var(--line); border-left: 6px solid var(--fail); border-radius: 4px; padding: .5rem .9rem; margin: .6rem 0; break-inside: avoid; }
.finding.warn { border-left-color: var(--warn); }
.finding h3 { margin: .1rem 0 .3rem; }
.finding .kind { font-family: ui-monospace, monospace; }
.finding dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .4rem 0; }
.finding dt { color: var(--muted); }
.finding dd { margin: 0; font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; }
.finding ul { margin: .3rem 0; }
.cell { text-align: center; font-variant-numeric: tabular-nums; min-width: 7rem; }
.cell small { display: block; color: inherit; opacity: .85; }
.legend { color: var(--muted); font-size: 12px; }
.chart { display: inline-block; vertical-align: top; margin-right: 1.5rem; break-inside: avoid; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
section { break-inside: auto; }
@media print { nav { display: none; } body { max-width: none; padding: 0; } .finding, table, svg { break-inside: avoid; } }
"#;

/// Renders the report as one self-contained HTML page.
pub fn render(r: &StoredReport) -> String {
    let sections = sections(r);
    let verdict = verdict_word(r.verdict);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>multinet run {} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>multinet validation run <code>{}</code> <span id=\"verdict\" class=\"verdict {}\">{}</span></h1>\n",
        esc(&r.run_id),
        verdict.to_uppercase(),
        esc(&r.run_id),
        verdict,
        verdict.to_uppercase(),
    );
    if !r.validates_real_network {
        let _ = writeln!(
            out,
            "<p class=\"note\">The {} backend runs agents on loopback addresses of one machine: this run validates no real network.</p>",
            esc(&r.backend)
        );
    }
    out.push_str("<nav>");
    for s in &sections {
        let _ = write!(out, "<a href=\"#{}\">{}</a>", s.id, esc(&s.title));
    }
    out.push_str("</nav>\n</header>\n<main>\n");
    for s in &sections {
        let _ = write!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n",
            s.id,
            esc(&s.title),
            s.body
        );
    }
    let _ = write!(
        out,
        "</main>\n<footer class=\"legend\">schema_version {} · rendered by multinet {}</footer>\n</body>\n</html>\n",
        r.schema_version,
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// A run that could not be carried out, as a page: verdict `error` and why.
pub fn render_error(r: &ErrorReport) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>multinet run — ERROR</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>multinet validation run <span id=\"verdict\" class=\"verdict error\">ERROR</span></h1>\n<p>The run could not be carried out; nothing is known of the network.</p>\n<table class=\"facts\"><tr><th>backend</th><td>{}</td></tr><tr><th>error</th><td id=\"error\">{}</td></tr><tr><th>duration</th><td>{}</td></tr></table>\n</body>\n</html>\n",
        esc(&r.backend),
        esc(&r.error),
        seconds(r.duration_ms)
    )
}

/// The page's sections, in order: a soak's right after the findings. Bench sections go here
/// when their reports have them.
fn sections(r: &StoredReport) -> Vec<Section> {
    let mut sections = vec![
        Section {
            id: "run",
            title: "Run".into(),
            body: facts(r),
        },
        Section {
            id: "findings",
            title: format!("Findings ({})", r.findings.len()),
            body: findings(r),
        },
    ];
    if let Some((outages, drift)) = soak::sections(r) {
        sections.push(Section {
            id: "soak",
            title: "Soak: outages and availability".into(),
            body: outages,
        });
        sections.push(Section {
            id: "drift",
            title: "Latency over time".into(),
            body: drift,
        });
    }
    if !r.paths.is_empty() {
        sections.push(Section {
            id: "heatmap",
            title: if r.mesh.is_some() {
                "Nodes × responder nodes (mesh)".into()
            } else {
                "Nodes × targets".into()
            },
            body: heatmaps(r),
        });
        sections.push(Section {
            id: "matrix",
            title: "Nodes × probe kinds".into(),
            body: matrix(r),
        });
        sections.push(Section {
            id: "latency",
            title: "Latency distributions".into(),
            body: distributions(r),
        });
    }
    sections
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn facts(r: &StoredReport) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("backend", esc(&r.backend)),
        ("run id", format!("<code>{}</code>", esc(&r.run_id))),
        (
            "networks",
            esc(&r
                .networks
                .iter()
                .map(|n| n.key())
                .collect::<Vec<_>>()
                .join(", ")),
        ),
        (
            "nodes",
            r.nodes
                .iter()
                .map(|n| {
                    format!(
                        "{}{} <span class=\"legend\">({})</span>",
                        esc(&n.name),
                        if n.server { " ★ server" } else { "" },
                        esc(&n.node_type)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
        ),
        (
            "clients",
            format!(
                "{} expected, {} started, {} passed",
                r.expected_clients, r.started_clients, r.passed_clients
            ),
        ),
        (
            "host checkers",
            format!(
                "{} expected, {} passed",
                r.host_checkers.expected, r.host_checkers.passed
            ),
        ),
        (
            "agents connected",
            format!("{}/{}", r.connected_agents, r.expected_agents),
        ),
        (
            "results",
            format!(
                "{} produced, {} recorded, {} reported lost, {} unaccounted, {} duplicate batch(es) ignored",
                r.results.produced,
                r.results.recorded,
                r.results.lost,
                r.results.unaccounted,
                r.results.duplicate_batches
            ),
        ),
        (
            "refused connections",
            if r.refused_connections.is_empty() {
                "none".into()
            } else {
                esc(&r
                    .refused_connections
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", "))
            },
        ),
    ];
    let stages = r
        .stages
        .iter()
        .map(|s| {
            format!(
                "{} {}{}",
                esc(&s.name),
                seconds(s.duration_ms),
                if s.outcome == "done" {
                    String::new()
                } else {
                    format!(" ({})", esc(&s.outcome))
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    rows.push((
        "stages",
        format!("{stages} — total {}", seconds(r.duration_ms)),
    ));
    let mut out = String::from("<table class=\"facts\">\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    out.push_str("</table>\n");
    out
}

fn findings(r: &StoredReport) -> String {
    if r.findings.is_empty() {
        return "<p id=\"no-findings\">None: every path passed.</p>\n".into();
    }
    let mut out = String::new();
    for f in &r.findings {
        let severity = if f.fails() { "fail" } else { "warn" };
        let _ = write!(
            out,
            "<article class=\"finding {severity}\" data-kind=\"{}\">\n<h3><span class=\"kind\">{}</span>{} — {}</h3>\n<p>{}</p>\n",
            esc(&f.kind),
            esc(&f.kind),
            f.network
                .map(|n| format!(" [{}]", n.key()))
                .unwrap_or_default(),
            severity,
            esc(&f.summary),
        );
        let _ = write!(out, "<dl>");
        if !f.nodes.is_empty() {
            let _ = write!(out, "<dt>nodes</dt><dd>{}</dd>", esc(&f.nodes.join(", ")));
        }
        for (k, v) in &f.evidence {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&shown));
        }
        out.push_str("</dl>\n");
        if !f.suggestions.is_empty() {
            out.push_str("<p><strong>What to check</strong></p>\n<ul>\n");
            for s in &f.suggestions {
                let _ = writeln!(out, "<li>{}</li>", esc(s));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</article>\n");
    }
    out
}

/// ok, sent, worst p99 (µs) of some paths summed.
#[derive(Default, Clone, Copy)]
struct Sum {
    ok: u64,
    sent: u64,
    p99: Option<u32>,
}

impl Sum {
    fn add(&mut self, p: &StoredPath) {
        self.ok += p.ok;
        self.sent += p.sent;
        self.p99 = self.p99.max(p.latency_us.p99);
    }

    fn ratio(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.ok as f64 / self.sent as f64)
    }

    /// A table cell coloured by success ratio (green 1.0 … red 0), `ok/sent` and p99 in it,
    /// the same in its tooltip; `attrs` name what it is for the page's readers and tests.
    fn cell(&self, attrs: &str, what: &str) -> String {
        let Some(ratio) = self.ratio() else {
            return format!("<td class=\"cell\" {attrs}>no probes</td>");
        };
        // Hue 0 (red) to 120 (green); anything short of all is at most amber.
        let hue = if self.ok == self.sent {
            120.0
        } else {
            ratio * 45.0
        };
        let p99 = latency(self.p99);
        format!(
            "<td class=\"cell\" {attrs} data-ratio=\"{ratio:.4}\" style=\"background:hsl({hue:.0},70%,{}%)\" title=\"{}: {}/{} ok ({:.1}%), p99 {}\">{:.1}%<small>{}/{} · p99 {}</small></td>",
            if self.ok == self.sent { 85 } else { 75 },
            esc(what),
            self.ok,
            self.sent,
            ratio * 100.0,
            esc(&p99),
            ratio * 100.0,
            self.ok,
            self.sent,
            esc(&p99),
        )
    }
}

fn node_label(r: &StoredReport, name: &str) -> String {
    let server = r.nodes.iter().any(|n| n.name == name && n.server);
    format!("{}{}", esc(name), if server { " ★" } else { "" })
}

/// The nodes in the report's order, then any node only the paths name.
fn node_names(r: &StoredReport) -> Vec<String> {
    let mut names: Vec<String> = r.nodes.iter().map(|n| n.name.clone()).collect();
    for p in &r.paths {
        if !names.contains(&p.source_node) {
            names.push(p.source_node.clone());
        }
    }
    names
}

fn networks(r: &StoredReport) -> Vec<CephNetwork> {
    let mut networks = r.networks.clone();
    for p in &r.paths {
        if !networks.contains(&p.network) {
            networks.push(p.network);
        }
    }
    networks
}

fn heatmaps(r: &StoredReport) -> String {
    let mut out = String::from(if r.mesh.is_some() {
        "<p class=\"legend\">A mesh run: per network, a row per client node, a column per responder node: the share of probes that succeeded over every client, host checker and probe kind, ok/sent and the worst p99 latency; an empty cell is a pair not probed.</p>\n"
    } else {
        "<p class=\"legend\">Per network, a row per client node (★ the server's node), a column per server address: the share of probes that succeeded over every client and probe kind, ok/sent and the worst p99 latency.</p>\n"
    });
    for network in networks(r) {
        let mut targets: Vec<&str> = Vec::new();
        let mut sums: BTreeMap<(&str, &str), Sum> = BTreeMap::new();
        for p in r.paths.iter().filter(|p| p.network == network) {
            // A mesh's column is the responder's node; the single server's, its address.
            let target = p.target_node.as_deref().unwrap_or(&p.target);
            if !targets.contains(&target) {
                targets.push(target);
            }
            sums.entry((&p.source_node, target)).or_default().add(p);
        }
        if r.mesh.is_some() {
            let order = node_names(r);
            targets.sort_by_key(|t| order.iter().position(|n| n == t));
        }
        if targets.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<h3>{0}</h3>\n<table class=\"heatmap\" data-network=\"{0}\">\n<tr><th>node \\ target</th>",
            network.key()
        );
        for t in &targets {
            let _ = write!(out, "<th>{}</th>", esc(t));
        }
        out.push_str("</tr>\n");
        for node in node_names(r) {
            let _ = write!(out, "<tr><th>{}</th>", node_label(r, &node));
            for t in &targets {
                let sum = sums.get(&(node.as_str(), *t)).copied().unwrap_or_default();
                let attrs = format!(
                    "data-node=\"{}\" data-network=\"{}\" data-target=\"{}\"",
                    esc(&node),
                    network.key(),
                    esc(t)
                );
                out.push_str(&sum.cell(&attrs, &format!("{node} → {t} on {}", network.key())));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out
}

fn kinds(r: &StoredReport) -> Vec<ProbeKind> {
    let mut kinds: Vec<ProbeKind> = r.paths.iter().map(|p| p.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn matrix(r: &StoredReport) -> String {
    let kinds = kinds(r);
    let mut out = String::from(
        "<p class=\"legend\">ok/sent and p99 latency per node and probe kind, summed over the node's clients and host checker (/ka kept-alive connection, +L large payload).</p>\n",
    );
    for network in networks(r) {
        let mut sums: BTreeMap<(&str, ProbeKind), Sum> = BTreeMap::new();
        for p in r.paths.iter().filter(|p| p.network == network) {
            sums.entry((&p.source_node, p.kind)).or_default().add(p);
        }
        if sums.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<h3>{0}</h3>\n<table class=\"matrix\" data-network=\"{0}\">\n<tr><th>node</th>",
            network.key()
        );
        for k in &kinds {
            let _ = write!(out, "<th>{}</th>", esc(&kind_label(k)));
        }
        out.push_str("</tr>\n");
        for node in node_names(r) {
            let _ = write!(out, "<tr><th>{}</th>", node_label(r, &node));
            for k in &kinds {
                let sum = sums.get(&(node.as_str(), *k)).copied().unwrap_or_default();
                let attrs = format!(
                    "data-node=\"{}\" data-network=\"{}\" data-kind=\"{}\"",
                    esc(&node),
                    network.key(),
                    esc(&kind_label(k))
                );
                let what = format!("{node} {} on {}", kind_label(k), network.key());
                out.push_str(&sum.cell(&attrs, &what));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out
}

/// Per network and probe kind, an SVG chart: a row per node, a bar from the lowest p50 to the
/// highest p99 of its clients' paths, ticks at the median p50 and the worst p90 and p99, a dot
/// at the largest latency; on a logarithmic axis shared by the whole page.
fn distributions(r: &StoredReport) -> String {
    let all: Vec<u32> = r
        .paths
        .iter()
        .flat_map(|p| [p.latency_us.p50, p.latency_us.max])
        .flatten()
        .filter(|us| *us > 0)
        .collect();
    let (Some(&lo), Some(&hi)) = (all.iter().min(), all.iter().max()) else {
        return "<p>No successful probe: no latency to show.</p>\n".into();
    };
    let lo = f64::from(lo).log10().floor();
    let hi = f64::from(hi).log10().ceil().max(lo + 1.0);
    let (left, width, row) = (90.0, 400.0, 18.0);
    let x = |us: u32| {
        left + (f64::from(us.max(1)).log10() - lo).clamp(0.0, hi - lo) / (hi - lo) * width
    };
    let mut out = String::from(
        "<p class=\"legend\">Latency of successful probes per node: the bar runs from the lowest median to the highest p99 of the node's paths; ticks at the median p50, the worst p90 and p99; the dot is the largest. Logarithmic axis.</p>\n",
    );
    let nodes = node_names(r);
    for network in networks(r) {
        for kind in kinds(r) {
            let paths: Vec<&StoredPath> = r
                .paths
                .iter()
                .filter(|p| p.network == network && p.kind == kind)
                .collect();
            if paths.is_empty() {
                continue;
            }
            let rows: Vec<&String> = nodes
                .iter()
                .filter(|n| paths.iter().any(|p| &p.source_node == *n))
                .collect();
            let height = row * rows.len() as f64 + 28.0;
            let _ = write!(
                out,
                "<div class=\"chart\"><h3>{} {}</h3>\n<svg class=\"distribution\" data-network=\"{}\" data-kind=\"{}\" width=\"{:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {:.0} {height:.0}\" role=\"img\">\n",
                network.key(),
                esc(&kind_label(&kind)),
                network.key(),
                esc(&kind_label(&kind)),
                left + width + 20.0,
                left + width + 20.0
            );
            let axis_y = row * rows.len() as f64 + 4.0;
            let mut decade = lo;
            while decade <= hi {
                let us = 10f64.powf(decade) as u32;
                let xd = x(us);
                let _ = writeln!(
                    out,
                    "<line x1=\"{xd:.1}\" y1=\"0\" x2=\"{xd:.1}\" y2=\"{axis_y:.1}\" stroke=\"#d0d7de\"/><text x=\"{xd:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    axis_y + 14.0,
                    esc(&latency(Some(us)))
                );
                decade += 1.0;
            }
            for (i, node) in rows.iter().enumerate() {
                let mine: Vec<&&StoredPath> =
                    paths.iter().filter(|p| &p.source_node == *node).collect();
                let y = row * i as f64 + row / 2.0;
                let _ = write!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                    left - 6.0,
                    y + 4.0,
                    esc(node)
                );
                let mut p50s: Vec<u32> = mine.iter().filter_map(|p| p.latency_us.p50).collect();
                p50s.sort_unstable();
                let worst =
                    |f: fn(&StoredPath) -> Option<u32>| mine.iter().filter_map(|p| f(p)).max();
                let (Some(&low), Some(p99)) = (p50s.first(), worst(|p| p.latency_us.p99)) else {
                    let _ = writeln!(
                        out,
                        "<text x=\"{left:.1}\" y=\"{:.1}\" fill=\"#cf222e\">no successful probe</text>",
                        y + 4.0
                    );
                    continue;
                };
                let median = p50s[p50s.len() / 2];
                let p90 = worst(|p| p.latency_us.p90).unwrap_or(p99);
                let max = worst(|p| p.latency_us.max).unwrap_or(p99);
                let title = format!(
                    "{}: p50 {} (median of {} path(s)), p90 {}, p99 {}, max {}",
                    node,
                    latency(Some(median)),
                    mine.len(),
                    latency(Some(p90)),
                    latency(Some(p99)),
                    latency(Some(max))
                );
                let _ = write!(
                    out,
                    "<g><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#9ecbff\"/>",
                    esc(&title),
                    x(low),
                    y - 4.0,
                    (x(p99) - x(low)).max(1.0)
                );
                for (us, colour) in [(median, "#0969da"), (p90, "#9a6700"), (p99, "#cf222e")] {
                    let _ = write!(
                        out,
                        "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                        x(us),
                        y - 6.0,
                        y + 6.0
                    );
                }
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#1f2328\"/></g>",
                    x(max)
                );
            }
            out.push_str("</svg></div>\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stored::{Stored, parse};

    const FAIL: &str = include_str!("../../../tests/fixtures/reports/lab-block-cluster.json");

    fn read(text: &str) -> StoredReport {
        match parse(text, std::path::Path::new("r.json")).expect("a report") {
            Stored::Run(r) => *r,
            Stored::Error(e) => panic!("an error report: {e:?}"),
        }
    }

    #[test]
    fn every_string_from_the_report_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        // A node name, a summary and evidence (as a CNI message would be) with markup in them.
        let hostile = r#"n2<script>alert(\"x\")</script>"#;
        let text = FAIL.replace("\"n2\"", &format!("\"{hostile}\"")).replace(
            "on the cluster network, clients",
            "on the cluster network <img src=x onerror=alert(1)>, clients",
        );
        let page = render(&read(&text));
        assert!(!page.contains("<script"), "a script got through");
        assert!(!page.contains("<img"), "an element got through");
        assert!(page.contains("n2&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let page = render(&read(FAIL));
        for needle in [
            "http://", "https://", "<script", "<link", "@import", "url(", "<img",
        ] {
            assert!(!page.contains(needle), "the page has {needle}");
        }
        for id in ["run", "findings", "heatmap", "matrix", "latency"] {
            assert!(
                page.contains(&format!("<section id=\"{id}\">")),
                "no section {id}"
            );
        }
    }

    #[test]
    fn an_error_report_is_a_page_saying_why() {
        let page = render_error(&ErrorReport::new("lab", "missing <macvlan>".into(), 12));
        assert!(page.contains("class=\"verdict error\">ERROR<"));
        assert!(page.contains("missing &lt;macvlan&gt;"));
    }
}
