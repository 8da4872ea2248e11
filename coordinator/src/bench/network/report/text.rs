//! The text report (per setup and network, the [`MetricGroup`] tables of its paths; with several
//! setups, one table per metric with a column per setup) and the CSV in long form.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::machine::BUSY_WARNING;
use super::{METRICS, MetricGroup, NetworkBenchReport, NetworkResult, PathResult};

/// `from → to`.
fn path_label(path: &PathResult) -> String {
    format!("{} → {}", path.from, path.to)
}

/// A table: left column, then right-aligned columns as wide as their widest cell, each line
/// indented by two spaces. With a `width` (a terminal's columns) a table wider than that is cut
/// into column groups one under the other, each led by the left column again, so every cell
/// stays on screen; a left column and one more wider than `width` still make a group.
fn table(out: &mut String, headings: &[String], rows: &[Vec<String>], width: Option<usize>) {
    let columns = headings.len();
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    // Each column takes two spaces before it.
    let span = |i: usize| 2 + widths[i];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    // No group yet (`usize::MAX`): the first column opens one, whatever the width.
    let mut used = usize::MAX;
    for i in 1..columns {
        let fits = width.is_none_or(|w| used.saturating_add(span(i)) <= w);
        match groups.last_mut() {
            Some(group) if fits => {
                group.push(i);
                used += span(i);
            }
            _ => {
                groups.push(vec![i]);
                used = span(0) + span(i);
            }
        }
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    let line = |cells: &[String], group: &[usize]| {
        let mut text = String::from("  ");
        let first = cells.first().map_or("", String::as_str);
        text.push_str(first);
        text.push_str(&" ".repeat(widths[0].saturating_sub(first.chars().count())));
        for &i in group {
            let cell = cells.get(i).map_or("", String::as_str);
            text.push_str("  ");
            text.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            text.push_str(cell);
        }
        text.trim_end().to_string()
    };
    for group in &groups {
        let _ = writeln!(out, "{}", line(headings, group));
        for row in rows {
            let _ = writeln!(out, "{}", line(row, group));
        }
    }
}

/// Said under a table: tests that failed or counted errors, paths not measured.
fn notes(network: &NetworkResult, out: &mut String) {
    for path in &network.paths {
        let label = format!("{} {}", network.network, path_label(path));
        if let Some(error) = &path.error {
            let _ = writeln!(out, "  ! {label}: {error}");
        }
        for test in &path.tests {
            let what = format!("{label} {} ×{}", test.kind.name(), test.streams);
            if let Some(failure) = &test.failure {
                let _ = writeln!(out, "  ! {what}: {failure}");
            } else if let Some(o) = &test.outcome
                && o.errors > 0
            {
                let _ = writeln!(
                    out,
                    "  ! {what}: {} error(s), {} request(s) answered; first: {}",
                    o.errors,
                    o.requests,
                    o.first_error.as_deref().unwrap_or("-")
                );
            }
        }
        if let Some(iperf3) = &path.iperf3
            && let Some(error) = &iperf3.error
        {
            let _ = writeln!(out, "  ! {label} iperf3: {error}");
        }
    }
}

impl NetworkBenchReport {
    /// The text report, its tables as wide as they are: [`Self::text_fitting`] without a
    /// width.
    pub fn text(&self) -> String {
        self.text_fitting(None)
    }

    /// The text report: a heading, then per setup and network three tables of its paths
    /// ([`MetricGroup`]: throughput; request rates and latency; CPU, MSS and path MTU), each
    /// row a path `from → to`, each cell a value or `-` (not measured), with the failures and
    /// errors said under them; with several setups, one table per metric with a column per
    /// setup. `width`: a terminal's columns — a table wider than that is cut into column
    /// groups, each led by the path again (as `run`'s matrix); `None` (a file, a pipe):
    /// tables as wide as they are.
    pub fn text_fitting(&self, width: Option<usize>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "multinet bench network — {} setup(s), {:.1}s per test, {} stream(s) in the parallel tests, {} B answers",
            self.setups.len(),
            self.duration_ms as f64 / 1000.0,
            self.streams,
            self.answer_bytes
        );
        let _ = writeln!(out, "references: {}", self.references.said());
        if !self.validates_real_network {
            let _ = writeln!(
                out,
                "NOTE: the {} backend runs the agents and the load on loopback addresses of this machine; it validates no real network (the figures are this machine's loopback).",
                self.backend
            );
        }
        if let Some(busy) = self.machine_busy_before_percent
            && busy >= 100.0 * BUSY_WARNING
        {
            let _ = writeln!(
                out,
                "NOTE: this machine's CPUs were {busy:.0}% busy in the second before the bench began: other work competes with the tests, so the figures may be lower and spread more than on a quiet machine."
            );
        }
        if self.estimated_ms > 0 {
            // As the estimate was said before the bench began (`12m30s`).
            let minutes = |ms: u64| super::super::estimate::minutes(Duration::from_millis(ms));
            let _ = writeln!(
                out,
                "estimated before it began: about {} (meant as an upper bound); the bench took {}",
                minutes(self.estimated_ms),
                minutes(self.elapsed_ms)
            );
        }
        for setup in &self.setups {
            let place = if setup.lab.is_empty() {
                format!("{} backend", self.backend)
            } else {
                format!("lab {}", setup.lab)
            };
            // A setup whose lab was never built has no server yet: nothing to say of it.
            let server = match &setup.mesh {
                Some(mesh) => format!(", responders on {}", mesh.responders.join(", ")),
                None if setup.server_node.is_empty() => String::new(),
                None => format!(", server on {}", setup.server_node),
            };
            let _ = writeln!(
                out,
                "\nsetup {} ({}): {place}{server}",
                setup.name, setup.source
            );
            if let Some(mesh) = &setup.mesh {
                out.push_str(&mesh.text());
            }
            if let Some(error) = &setup.error {
                let _ = writeln!(out, "  ERROR: {error}");
            }
            for warning in &setup.warnings {
                let _ = writeln!(out, "  warning: {warning}");
            }
            for network in &setup.networks {
                let _ = writeln!(
                    out,
                    "{} ({}{})",
                    network.network,
                    network.cni,
                    network.mtu.map_or(String::new(), |m| format!(", MTU {m}"))
                );
                for group in MetricGroup::ALL {
                    let _ = writeln!(out, "  {}", group.title());
                    let mut headings = vec!["path".to_string()];
                    headings.extend(group.metrics().iter().map(|m| m.heading(self.streams)));
                    let rows: Vec<Vec<String>> = network
                        .paths
                        .iter()
                        .map(|path| {
                            let mut row = vec![path_label(path)];
                            row.extend(
                                group
                                    .metrics()
                                    .iter()
                                    .map(|m| m.cell(m.of(path, self.streams))),
                            );
                            row
                        })
                        .collect();
                    table(&mut out, &headings, &rows, width);
                }
                notes(network, &mut out);
            }
            if let Some(loopback) = &setup.loopback {
                out.push_str(&loopback.text());
            }
        }
        if self.setups.len() > 1 {
            out.push_str(&self.side_by_side(width));
        }
        out
    }

    /// One table per metric: rows network and path, a column per setup (cut to `width` as
    /// [`Self::text_fitting`]'s).
    fn side_by_side(&self, width: Option<usize>) -> String {
        let mut out = String::from("\nsetups side by side\n");
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for setup in &self.setups {
            for network in &setup.networks {
                for path in &network.paths {
                    let key = (network.network.clone(), path.from.clone(), path.to.clone());
                    if !rows.contains(&key) {
                        rows.push(key);
                    }
                }
            }
        }
        for metric in METRICS {
            let _ = writeln!(out, "{}", metric.key());
            let mut headings = vec!["network path".to_string()];
            headings.extend(self.setups.iter().map(|s| s.name.clone()));
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|(network, from, to)| {
                    let mut row = vec![format!("{network} {from} → {to}")];
                    for setup in &self.setups {
                        let value = setup
                            .networks
                            .iter()
                            .find(|n| &n.network == network)
                            .and_then(|n| n.paths.iter().find(|p| &p.from == from && &p.to == to))
                            .and_then(|p| metric.of(p, self.streams));
                        row.push(metric.cell(value));
                    }
                    row
                })
                .collect();
            table(&mut out, &headings, &cells, width);
        }
        out
    }

    /// CSV in long form: `setup,network,cni,from,to,metric,value`, one value a line; after a
    /// setup's paths, its probe server against nginx as network `loopback` (`cni` empty, `from`
    /// and `to` the server's node, where the comparison ran).
    pub fn csv(&self) -> String {
        let mut out = String::from("setup,network,cni,from,to,metric,value\n");
        let field = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        for setup in &self.setups {
            for network in &setup.networks {
                for path in &network.paths {
                    for metric in METRICS {
                        if let Some(value) = metric.of(path, self.streams) {
                            let _ = writeln!(
                                out,
                                "{},{},{},{},{},{},{value}",
                                field(&setup.name),
                                field(&network.network),
                                field(&network.cni),
                                field(&path.from),
                                field(&path.to),
                                metric.key()
                            );
                        }
                    }
                }
            }
            if let Some(loopback) = &setup.loopback {
                for (metric, value) in loopback.csv_values() {
                    let node = field(&setup.server_node);
                    let _ = writeln!(
                        out,
                        "{},loopback,,{node},{node},{metric},{value}",
                        field(&setup.name)
                    );
                }
            }
        }
        out
    }
}
