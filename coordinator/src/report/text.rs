//! The text report: verdict, findings with evidence and suggestions, and the matrix — a row per
//! node, a column per network × probe kind, each cell `ok/sent` and p99 latency.

use std::collections::BTreeMap;
use std::fmt::Write;

use multinet_proto::probe::{Connection, Payload, ProbeKind, Scheme};

use super::{StoredReport, Verdict};

pub(super) fn kind_label(k: &ProbeKind) -> String {
    format!(
        "{}{}{}",
        match k.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        },
        match k.payload {
            Payload::Small => "",
            Payload::Large => "+L",
        },
        match k.connection {
            Connection::Fresh => "",
            Connection::KeptAlive => "/ka",
        },
    )
}

pub(super) fn latency(us: Option<u32>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1_000 => format!("{us}µs"),
        Some(us) if us < 1_000_000 => format!("{:.1}ms", f64::from(us) / 1000.0),
        Some(us) => format!("{:.1}s", f64::from(us) / 1e6),
    }
}

/// A severity as the text report shows it: `Fail`, `Warn`.
fn severity_label(severity: &str) -> String {
    let mut chars = severity.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Renders the report for people.
pub fn render(r: &StoredReport) -> String {
    let mut out = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN (passed, with findings)",
        Verdict::Fail => "FAIL",
        // A run report is never made for a run that could not be carried out (that is an
        // `ErrorReport`); said plainly should one be.
        Verdict::Error => "ERROR",
    };
    let _ = writeln!(out, "multinet validation run {} — {verdict}", r.run_id);
    let _ = writeln!(out, "backend: {}", r.backend);
    if !r.validates_real_network {
        let _ = writeln!(
            out,
            "  NOTE: the {} backend runs agents on loopback addresses of this machine; it validates no real network.",
            r.backend
        );
    }
    let _ = writeln!(
        out,
        "clients: {} expected, {} started, {} passed; host checkers: {} expected, {} passed; agents connected {}/{}",
        r.expected_clients,
        r.started_clients,
        r.passed_clients,
        r.host_checkers.expected,
        r.host_checkers.passed,
        r.connected_agents,
        r.expected_agents
    );
    let _ = writeln!(
        out,
        "results: {} produced, {} recorded, {} reported lost, {} unaccounted, {} duplicate batch(es) ignored; refused connections: {}",
        r.results.produced,
        r.results.recorded,
        r.results.lost,
        r.results.unaccounted,
        r.results.duplicate_batches,
        if r.refused_connections.is_empty() {
            "none".to_string()
        } else {
            r.refused_connections
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let stages: Vec<String> = r
        .stages
        .iter()
        .map(|s| {
            format!(
                "{} {:.1}s{}",
                s.name,
                s.duration_ms as f64 / 1000.0,
                if s.outcome == "done" {
                    String::new()
                } else {
                    format!(" ({})", s.outcome)
                }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "stages: {} — total {:.1}s",
        stages.join(", "),
        r.duration_ms as f64 / 1000.0
    );

    if r.findings.is_empty() {
        let _ = writeln!(out, "\nfindings: none");
    } else {
        let _ = writeln!(out, "\nfindings ({})", r.findings.len());
        for (i, f) in r.findings.iter().enumerate() {
            let net = f
                .network
                .map_or(String::new(), |n| format!(" [{}]", n.key()));
            let _ = writeln!(
                out,
                "{:>2}. {} {}{net}: {}",
                i + 1,
                severity_label(&f.severity),
                f.kind,
                f.summary
            );
            if !f.nodes.is_empty() {
                let _ = writeln!(out, "    nodes: {}", f.nodes.join(", "));
            }
            for (k, v) in &f.evidence {
                let _ = writeln!(out, "    {k}: {v}");
            }
            for s in &f.suggestions {
                let _ = writeln!(out, "    → {s}");
            }
        }
    }

    matrix(&mut out, r);
    out
}

/// ok, sent, worst p99 of a matrix cell.
type Cell = (u64, u64, Option<u32>);

/// One table per network: a row per node (the server's node marked), a column per probe
/// kind, each cell `ok/sent` and the p99 latency, summed over the node's clients and host
/// checker.
fn matrix(out: &mut String, r: &StoredReport) {
    let mut cells: BTreeMap<(String, String, String), Cell> = BTreeMap::new();
    let mut kinds: Vec<ProbeKind> = Vec::new();
    for p in &r.paths {
        if !kinds.contains(&p.kind) {
            kinds.push(p.kind);
        }
        let cell = cells
            .entry((
                p.network.key().to_string(),
                p.source_node.clone(),
                kind_label(&p.kind),
            ))
            .or_insert((0, 0, None));
        cell.0 += p.ok;
        cell.1 += p.sent;
        cell.2 = cell.2.max(p.latency_us.p99);
    }
    if kinds.is_empty() {
        return;
    }
    kinds.sort();
    let types: Vec<String> = r
        .nodes
        .iter()
        .map(|n| {
            format!(
                "{}{} ({})",
                n.name,
                if n.server { "*" } else { "" },
                n.node_type
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nmatrix: ok/sent and p99 latency per node and probe kind (* the server's node; /ka kept-alive, +L large)"
    );
    let _ = writeln!(out, "nodes: {}", types.join(", "));
    for network in &r.networks {
        let _ = write!(out, "{:<10}", network.key());
        for k in &kinds {
            let _ = write!(out, " {:>14}", kind_label(k));
        }
        let _ = writeln!(out);
        for n in &r.nodes {
            let _ = write!(
                out,
                "{:<10}",
                format!("  {}{}", n.name, if n.server { "*" } else { "" })
            );
            for k in &kinds {
                let cell =
                    match cells.get(&(network.key().to_string(), n.name.clone(), kind_label(k))) {
                        Some((ok, sent, p99)) => format!("{ok}/{sent} {}", latency(*p99)),
                        None => "-".into(),
                    };
                let _ = write!(out, " {cell:>14}");
            }
            let _ = writeln!(out);
        }
    }
}
