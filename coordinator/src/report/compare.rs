//! Two stored reports compared: what changed from BEFORE to AFTER (a switch's firmware, a CNI
//! upgrade, an MTU change), and whether it is a regression CI should stop on. Pure.
//!
//! Paths are compared per (network, client node, probe kind) — the cells of the matrix, summed
//! over the node's clients — because what identifies a single path (its client pod's name, the
//! server's port) differs from run to run. Findings are the same finding when kind, network and
//! nodes agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use multinet_proto::network::CephNetwork;
use multinet_proto::probe::ProbeKind;
use serde::Serialize;

use super::Verdict;
use super::stored::{StoredFinding, StoredReport};
use super::text::{kind_label, latency};

/// What counts as a real change rather than noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A success ratio that moved by more than this (0.01: one percentage point).
    pub ratio: f64,
    /// A p50 or p99 latency that grew (or shrank) by more than this factor …
    pub latency_factor: f64,
    /// … and by more than this many microseconds (small latencies jitter by large factors).
    pub latency_floor_us: u32,
    /// Cells with fewer probes than this on either side are not compared (too few to judge).
    pub min_probes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            ratio: 0.01,
            latency_factor: 1.5,
            latency_floor_us: 1_000,
            min_probes: 10,
        }
    }
}

/// The kinds of change that make a comparison a regression (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Regression {
    /// The verdict got worse (pass → warn → fail; anything → error).
    Verdict,
    /// A finding AFTER has that BEFORE had not.
    NewFinding,
    /// A cell's success ratio dropped beyond the threshold.
    Success,
    /// A cell's p50 or p99 latency grew beyond the threshold.
    Latency,
    /// Nodes or networks differ (a comparison of different clusters).
    Topology,
}

impl Regression {
    /// Its name, as the JSON output gives it (`new_finding`; `--fail-on` spells it
    /// `new-finding`).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// The regressions `--fail-on` takes by default: all but [`Regression::Topology`].
pub const DEFAULT_FAIL_ON: &[Regression] = &[
    Regression::Verdict,
    Regression::NewFinding,
    Regression::Success,
    Regression::Latency,
];

/// A finding, as a comparison names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRef {
    /// `findings[].kind`.
    pub kind: String,
    /// `fail` or `warn`.
    pub severity: String,
    /// The network, if any.
    pub network: Option<CephNetwork>,
    /// The nodes.
    pub nodes: Vec<String>,
    /// Its summary (AFTER's for a new finding, BEFORE's for one gone).
    pub summary: String,
}

impl From<&StoredFinding> for FindingRef {
    fn from(f: &StoredFinding) -> Self {
        Self {
            kind: f.kind.clone(),
            severity: f.severity.clone(),
            network: f.network,
            nodes: f.nodes.clone(),
            summary: f.summary.clone(),
        }
    }
}

/// One matrix cell: probes over one network from one node's clients, of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cell {
    /// Probes whose result arrived.
    pub sent: u64,
    /// Successes.
    pub ok: u64,
    /// The median of the clients' p50 latencies, µs.
    pub p50_us: Option<u32>,
    /// The worst of the clients' p99 latencies, µs.
    pub p99_us: Option<u32>,
}

impl Cell {
    fn ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.ok as f64 / self.sent as f64
        }
    }
}

/// A cell that changed beyond the thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellChange {
    /// The network.
    pub network: CephNetwork,
    /// The client node.
    pub node: String,
    /// The probe kind.
    pub kind: ProbeKind,
    /// BEFORE.
    pub before: Cell,
    /// AFTER.
    pub after: Cell,
    /// What moved: `success`, `p50`, `p99`.
    pub changed: Vec<&'static str>,
}

/// A count that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountChange {
    /// What is counted.
    pub what: &'static str,
    /// BEFORE's.
    pub before: String,
    /// AFTER's.
    pub after: String,
}

/// A compared report: its run id and verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRef {
    /// `run_id`.
    pub run_id: String,
    /// `verdict`.
    pub verdict: Verdict,
}

/// What changed from BEFORE to AFTER.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// BEFORE's run.
    pub before: RunRef,
    /// AFTER's run.
    pub after: RunRef,
    /// Findings AFTER has and BEFORE had not.
    pub new_findings: Vec<FindingRef>,
    /// Findings BEFORE had and AFTER has not.
    pub gone_findings: Vec<FindingRef>,
    /// Cells that got worse.
    pub worse: Vec<CellChange>,
    /// Cells that got better.
    pub better: Vec<CellChange>,
    /// Cells one report has and the other has not, as `network node kind`.
    pub cells_only_before: Vec<String>,
    /// See `cells_only_before`.
    pub cells_only_after: Vec<String>,
    /// Nodes, networks, clients, host checkers that differ.
    pub counts: Vec<CountChange>,
    /// The kinds of regression found (whatever `--fail-on` says).
    pub regressions: Vec<Regression>,
}

impl Comparison {
    /// Whether a regression of a kind in `fail_on` was found: exit 1.
    pub fn fails(&self, fail_on: &[Regression]) -> bool {
        self.regressions.iter().any(|r| fail_on.contains(r))
    }

    /// The comparison in three words: `REGRESSION` (of a kind in `fail_on`), `no change`, or
    /// `changed, no regression`.
    pub fn headline(&self, fail_on: &[Regression]) -> &'static str {
        if self.fails(fail_on) {
            "REGRESSION"
        } else if self.unchanged() {
            "no change"
        } else {
            "changed, no regression"
        }
    }

    /// Whether nothing changed beyond the thresholds.
    pub fn unchanged(&self) -> bool {
        self.before.verdict == self.after.verdict
            && self.new_findings.is_empty()
            && self.gone_findings.is_empty()
            && self.worse.is_empty()
            && self.better.is_empty()
            && self.cells_only_before.is_empty()
            && self.cells_only_after.is_empty()
            && self.counts.is_empty()
    }
}

fn severity_rank(v: Verdict) -> u8 {
    match v {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
        Verdict::Error => 3,
    }
}

type CellKey = (CephNetwork, String, ProbeKind);

fn cells(r: &StoredReport) -> BTreeMap<CellKey, Cell> {
    let mut p50s: BTreeMap<CellKey, Vec<u32>> = BTreeMap::new();
    let mut cells: BTreeMap<CellKey, Cell> = BTreeMap::new();
    for p in &r.paths {
        let key = (p.network, p.source_node.clone(), p.kind);
        let cell = cells.entry(key.clone()).or_default();
        cell.sent += p.sent;
        cell.ok += p.ok;
        cell.p99_us = cell.p99_us.max(p.latency_us.p99);
        if let Some(p50) = p.latency_us.p50 {
            p50s.entry(key).or_default().push(p50);
        }
    }
    for (key, mut values) in p50s {
        values.sort_unstable();
        if let Some(cell) = cells.get_mut(&key) {
            cell.p50_us = values.get(values.len() / 2).copied();
        }
    }
    cells
}

fn finding_key(f: &StoredFinding) -> (String, Option<CephNetwork>, Vec<String>) {
    (f.kind.clone(), f.network, f.nodes.clone())
}

/// How latency moved: +1 worse, -1 better, 0 within the thresholds (or unknown).
fn latency_moved(before: Option<u32>, after: Option<u32>, t: &Thresholds) -> i8 {
    let (Some(b), Some(a)) = (before, after) else {
        return 0;
    };
    let (b, a) = (f64::from(b.max(1)), f64::from(a.max(1)));
    let floor = f64::from(t.latency_floor_us);
    if a > b * t.latency_factor && a - b > floor {
        1
    } else if b > a * t.latency_factor && b - a > floor {
        -1
    } else {
        0
    }
}

/// Compares BEFORE with AFTER.
pub fn compare(before: &StoredReport, after: &StoredReport, t: &Thresholds) -> Comparison {
    let mut regressions = BTreeSet::new();
    if severity_rank(after.verdict) > severity_rank(before.verdict) {
        regressions.insert(Regression::Verdict);
    }
    let before_findings: Vec<_> = before.findings.iter().map(finding_key).collect();
    let after_findings: Vec<_> = after.findings.iter().map(finding_key).collect();
    let new_findings: Vec<FindingRef> = after
        .findings
        .iter()
        .filter(|f| !before_findings.contains(&finding_key(f)))
        .map(FindingRef::from)
        .collect();
    let gone_findings: Vec<FindingRef> = before
        .findings
        .iter()
        .filter(|f| !after_findings.contains(&finding_key(f)))
        .map(FindingRef::from)
        .collect();
    if !new_findings.is_empty() {
        regressions.insert(Regression::NewFinding);
    }

    let (cells_before, cells_after) = (cells(before), cells(after));
    let (mut worse, mut better) = (Vec::new(), Vec::new());
    for (key, b) in &cells_before {
        let Some(a) = cells_after.get(key) else {
            continue;
        };
        if b.sent < t.min_probes || a.sent < t.min_probes {
            continue;
        }
        let mut got_worse = Vec::new();
        let mut got_better = Vec::new();
        let delta = a.ratio() - b.ratio();
        if delta < -t.ratio {
            got_worse.push("success");
            regressions.insert(Regression::Success);
        } else if delta > t.ratio {
            got_better.push("success");
        }
        for (name, bl, al) in [("p50", b.p50_us, a.p50_us), ("p99", b.p99_us, a.p99_us)] {
            match latency_moved(bl, al, t) {
                1 => {
                    got_worse.push(name);
                    regressions.insert(Regression::Latency);
                }
                -1 => got_better.push(name),
                _ => {}
            }
        }
        let change = |changed| CellChange {
            network: key.0,
            node: key.1.clone(),
            kind: key.2,
            before: *b,
            after: *a,
            changed,
        };
        if !got_worse.is_empty() {
            worse.push(change(got_worse));
        } else if !got_better.is_empty() {
            better.push(change(got_better));
        }
    }
    // Cells that fail first, then slower ones (each in network, node, kind order).
    worse.sort_by_key(|c: &CellChange| !c.changed.contains(&"success"));
    let name = |k: &CellKey| format!("{} {} {}", k.0.key(), k.1, kind_label(&k.2));
    let cells_only_before: Vec<String> = cells_before
        .keys()
        .filter(|k| !cells_after.contains_key(*k))
        .map(name)
        .collect();
    let cells_only_after: Vec<String> = cells_after
        .keys()
        .filter(|k| !cells_before.contains_key(*k))
        .map(name)
        .collect();

    let mut counts = Vec::new();
    let mut count = |what: &'static str, b: String, a: String, topology: bool| {
        if b != a {
            if topology {
                regressions.insert(Regression::Topology);
            }
            counts.push(CountChange {
                what,
                before: b,
                after: a,
            });
        }
    };
    let node_names = |r: &StoredReport| {
        r.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let networks = |r: &StoredReport| {
        r.networks
            .iter()
            .map(|n| n.key())
            .collect::<Vec<_>>()
            .join(", ")
    };
    count(
        "nodes",
        format!("{} ({})", before.nodes.len(), node_names(before)),
        format!("{} ({})", after.nodes.len(), node_names(after)),
        true,
    );
    count("networks", networks(before), networks(after), true);
    count(
        "expected clients",
        before.expected_clients.to_string(),
        after.expected_clients.to_string(),
        true,
    );
    count(
        "host checkers",
        before.host_checkers.expected.to_string(),
        after.host_checkers.expected.to_string(),
        true,
    );
    count(
        "passed clients",
        before.passed_clients.to_string(),
        after.passed_clients.to_string(),
        false,
    );
    count(
        "backend",
        before.backend.clone(),
        after.backend.clone(),
        false,
    );

    Comparison {
        before: RunRef {
            run_id: before.run_id.clone(),
            verdict: before.verdict,
        },
        after: RunRef {
            run_id: after.run_id.clone(),
            verdict: after.verdict,
        },
        new_findings,
        gone_findings,
        worse,
        better,
        cells_only_before,
        cells_only_after,
        counts,
        regressions: regressions.into_iter().collect(),
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
    }
}

fn finding_line(out: &mut String, sign: char, f: &FindingRef) {
    let _ = writeln!(
        out,
        "  {sign} {} {}{}{}: {}",
        f.severity,
        f.kind,
        f.network
            .map(|n| format!(" [{}]", n.key()))
            .unwrap_or_default(),
        if f.nodes.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.nodes.join(", "))
        },
        f.summary
    );
}

/// What moved in a changed cell, one phrase per measure (`success 100.0% → 0.0% (…)`).
pub(super) fn cell_changes(c: &CellChange) -> Vec<String> {
    let mut parts = Vec::new();
    for what in &c.changed {
        parts.push(match *what {
            "success" => format!(
                "success {:.1}% → {:.1}% ({}/{} → {}/{})",
                c.before.ratio() * 100.0,
                c.after.ratio() * 100.0,
                c.before.ok,
                c.before.sent,
                c.after.ok,
                c.after.sent
            ),
            "p50" => latency_change("p50", c.before.p50_us, c.after.p50_us),
            _ => latency_change("p99", c.before.p99_us, c.after.p99_us),
        });
    }
    parts
}

fn cell_line(out: &mut String, c: &CellChange) {
    let parts = cell_changes(c);
    let _ = writeln!(
        out,
        "  {} {} {}: {}",
        c.network.key(),
        c.node,
        kind_label(&c.kind),
        parts.join("; ")
    );
}

fn latency_change(name: &str, before: Option<u32>, after: Option<u32>) -> String {
    let factor = match (before, after) {
        (Some(b), Some(a)) if b > 0 => format!(" (×{:.1})", f64::from(a) / f64::from(b)),
        _ => String::new(),
    };
    format!("{name} {} → {}{factor}", latency(before), latency(after))
}

/// The comparison as one self-contained HTML page; `fail_on` decides the headline.
pub fn render_html(c: &Comparison, fail_on: &[Regression]) -> String {
    super::html::compare::render(c, fail_on)
}

/// The comparison for people; `fail_on` decides the headline.
pub fn render_text(c: &Comparison, fail_on: &[Regression]) -> String {
    let mut out = String::new();
    let headline = c.headline(fail_on);
    let _ = writeln!(
        out,
        "multinet report compare: {} ({}) → {} ({}) — {headline}",
        c.before.run_id,
        verdict_name(c.before.verdict),
        c.after.run_id,
        verdict_name(c.after.verdict)
    );
    if !c.regressions.is_empty() {
        let names: Vec<String> = c
            .regressions
            .iter()
            .map(|r| {
                let name = r.name();
                if fail_on.contains(r) {
                    name
                } else {
                    format!("{name} (not failing: not in --fail-on)")
                }
            })
            .collect();
        let _ = writeln!(out, "regressions: {}", names.join(", "));
    }
    if c.before.verdict != c.after.verdict {
        let _ = writeln!(
            out,
            "verdict: {} → {}",
            verdict_name(c.before.verdict),
            verdict_name(c.after.verdict)
        );
    }
    let _ = writeln!(out, "findings new ({})", c.new_findings.len());
    for f in &c.new_findings {
        finding_line(&mut out, '+', f);
    }
    let _ = writeln!(out, "findings gone ({})", c.gone_findings.len());
    for f in &c.gone_findings {
        finding_line(&mut out, '-', f);
    }
    let _ = writeln!(out, "worse ({}): network, node, probe kind", c.worse.len());
    for w in &c.worse {
        cell_line(&mut out, w);
    }
    let _ = writeln!(out, "better ({})", c.better.len());
    for b in &c.better {
        cell_line(&mut out, b);
    }
    if !c.cells_only_before.is_empty() {
        let _ = writeln!(out, "only before: {}", c.cells_only_before.join(", "));
    }
    if !c.cells_only_after.is_empty() {
        let _ = writeln!(out, "only after: {}", c.cells_only_after.join(", "));
    }
    for count in &c.counts {
        let _ = writeln!(out, "{}: {} → {}", count.what, count.before, count.after);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stored::{Stored, parse};

    const PASS: &str = include_str!("../../../tests/fixtures/reports/lab-pass.json");
    const FAIL: &str = include_str!("../../../tests/fixtures/reports/lab-block-cluster.json");

    fn read(text: &str) -> StoredReport {
        match parse(text, std::path::Path::new("r.json")).expect("a report") {
            Stored::Run(r) => *r,
            Stored::Error(e) => panic!("an error report: {e:?}"),
        }
    }

    #[test]
    fn a_report_compared_with_itself_has_no_change() {
        let r = read(FAIL);
        let c = compare(&r, &r, &Thresholds::default());
        assert!(c.unchanged(), "{c:?}");
        assert!(!c.fails(DEFAULT_FAIL_ON));
        assert!(render_text(&c, DEFAULT_FAIL_ON).contains("— no change"));
    }

    #[test]
    fn a_blocked_network_is_a_new_finding_and_worse_cells() {
        let c = compare(&read(PASS), &read(FAIL), &Thresholds::default());
        assert!(c.fails(DEFAULT_FAIL_ON));
        assert_eq!(c.new_findings.len(), 1);
        assert_eq!(c.new_findings[0].kind, "inter_node_blocked");
        assert_eq!(c.new_findings[0].nodes, ["n2", "n3"]);
        assert!(c.regressions.contains(&Regression::Verdict));
        assert!(c.regressions.contains(&Regression::Success));
        let failing: BTreeSet<(&str, &str)> = c
            .worse
            .iter()
            .filter(|w| w.changed.contains(&"success"))
            .map(|w| (w.network.key(), w.node.as_str()))
            .collect();
        assert_eq!(
            failing,
            BTreeSet::from([("cluster", "n2"), ("cluster", "n3")])
        );
        let text = render_text(&c, DEFAULT_FAIL_ON);
        assert!(text.contains("— REGRESSION"), "{text}");
        assert!(
            text.contains("  + fail inter_node_blocked [cluster] (n2, n3): "),
            "{text}"
        );
        assert!(
            text.contains("cluster n2 http: success 100.0% → 0.0%"),
            "{text}"
        );
        // And back: the finding is gone, the cells better, no regression.
        let back = compare(&read(FAIL), &read(PASS), &Thresholds::default());
        assert_eq!(back.gone_findings.len(), 1);
        assert!(back.new_findings.is_empty());
        assert!(!back.regressions.contains(&Regression::Success));
        assert!(!back.regressions.contains(&Regression::Verdict));
    }

    #[test]
    fn a_path_twice_as_slow_is_named_and_a_regression() {
        let before = read(PASS);
        let mut after = before.clone();
        for p in after
            .paths
            .iter_mut()
            .filter(|p| p.source_node == "n2" && p.network == CephNetwork::Public)
            .filter(|p| kind_label(&p.kind) == "http")
        {
            for us in [&mut p.latency_us.p50, &mut p.latency_us.p99] {
                *us = us.map(|us| us * 2);
            }
        }
        let c = compare(&before, &after, &Thresholds::default());
        assert_eq!(c.regressions, [Regression::Latency]);
        assert_eq!(c.worse.len(), 1, "{:?}", c.worse);
        assert_eq!(
            (
                c.worse[0].network,
                c.worse[0].node.as_str(),
                c.worse[0].changed.clone()
            ),
            (CephNetwork::Public, "n2", vec!["p50", "p99"])
        );
        assert!(c.fails(DEFAULT_FAIL_ON));
        assert!(!c.fails(&[Regression::NewFinding, Regression::Success]));
        let text = render_text(&c, DEFAULT_FAIL_ON);
        assert!(text.contains("public n2 http: p50 "), "{text}");
        assert!(text.contains("(×2.0)"), "{text}");
    }

    #[test]
    fn latency_within_the_noise_is_no_change() {
        let t = Thresholds::default();
        assert_eq!(
            latency_moved(Some(100), Some(900), &t),
            0,
            "under the floor"
        );
        assert_eq!(
            latency_moved(Some(10_000), Some(14_000), &t),
            0,
            "under the factor"
        );
        assert_eq!(latency_moved(Some(10_000), Some(16_000), &t), 1);
        assert_eq!(latency_moved(Some(16_000), Some(10_000), &t), -1);
        assert_eq!(latency_moved(None, Some(16_000), &t), 0);
    }
}
