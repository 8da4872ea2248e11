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

/// ANSI colours of the text report on a terminal.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn paint(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn verdict(self, v: Verdict, word: &str) -> String {
        match v {
            Verdict::Pass => self.paint("1;32", word),
            Verdict::Warn => self.paint("1;33", word),
            Verdict::Fail | Verdict::Error => self.paint("1;31", word),
        }
    }
}

/// Renders the report for people.
pub fn render(r: &StoredReport) -> String {
    render_with(r, super::Terminal::PLAIN)
}

/// [`render`] for `terminal`: in colour when it says (the verdict, each finding's severity,
/// and matrix cells where probes failed), the matrix cut into column groups that fit its
/// width when it has one.
pub fn render_with(r: &StoredReport, terminal: super::Terminal) -> String {
    let paint = Paint(terminal.colour);
    let mut out = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN (passed, with findings)",
        Verdict::Fail => "FAIL",
        // A run report is never made for a run that could not be carried out (that is an
        // `ErrorReport`); said plainly should one be.
        Verdict::Error => "ERROR",
    };
    let _ = writeln!(
        out,
        "multinet validation run {} — {}",
        r.run_id,
        paint.verdict(r.verdict, verdict)
    );
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
                if f.fails() {
                    paint.paint("1;31", &severity_label(&f.severity))
                } else {
                    paint.paint("1;33", &severity_label(&f.severity))
                },
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

    agent_outages(&mut out, r);
    coordinator_restarts(&mut out, r);
    matrix(&mut out, r, paint, terminal.width);
    mesh(&mut out, r, paint);
    super::drift::render(&mut out, r);
    out
}

/// The coordinator's restarts (`run --resume`), one line each.
fn coordinator_restarts(out: &mut String, r: &StoredReport) {
    if r.coordinator_restarts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\ncoordinator restarts (the agents went on probing; results acknowledged after the checkpoint are counted lost)"
    );
    let secs = |v: &serde_json::Value| v.as_u64().unwrap_or_default() as f64 / 1000.0;
    for c in &r.coordinator_restarts {
        let _ = writeln!(
            out,
            "  down after its checkpoint at {} ({:.1} s), resumed at {} ({:.1} s)",
            c["checkpoint_at"].as_str().unwrap_or("?"),
            secs(&c["checkpoint_ms"]),
            c["resumed_at"].as_str().unwrap_or("?"),
            secs(&c["resumed_ms"]),
        );
    }
}

/// The agents that were away (agent outages, not the network's), one line each with its
/// windows: `pod (role) on node: N time(s), S s away, R restart(s); from–to s (how), …`.
fn agent_outages(out: &mut String, r: &StoredReport) {
    if r.agent_outages.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "
agent outages (away from the run, not measured; not network outages)"
    );
    let secs = |v: &serde_json::Value| v.as_u64().unwrap_or_default() as f64 / 1000.0;
    for a in &r.agent_outages {
        let windows: Vec<String> = a["windows"]
            .as_array()
            .map(|ws| {
                ws.iter()
                    .map(|w| {
                        let how = if w["ongoing"].as_bool().unwrap_or(false) {
                            "to the end"
                        } else {
                            w["returned"].as_str().unwrap_or("back")
                        };
                        format!(
                            "{:.1}–{:.1} s ({how})",
                            secs(&w["from_ms"]),
                            secs(&w["to_ms"])
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} ({}) on {}: {} time(s), {:.1} s away, {} restart(s); {}",
            a["pod"].as_str().unwrap_or("?"),
            a["role"].as_str().unwrap_or("?"),
            a["node"].as_str().unwrap_or("?"),
            a["outages"].as_u64().unwrap_or_default(),
            secs(&a["away_ms"]),
            a["restarts"].as_u64().unwrap_or_default(),
            windows.join(", ")
        );
    }
}

/// ok, sent, worst p99 of a matrix cell.
type Cell = (u64, u64, Option<u32>);

/// One table per network: a row per node (the server's node marked), a column per probe
/// kind, each cell `ok/sent` and the p99 latency, summed over the node's clients and host
/// checker.
fn matrix(out: &mut String, r: &StoredReport, paint: Paint, width: Option<usize>) {
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
    // The first column fits the longest node name; on a terminal, as many kind columns as
    // its width holds go on a line, the rest in further groups under it.
    let first = r
        .nodes
        .iter()
        .map(|n| n.name.chars().count() + 3)
        .chain(r.networks.iter().map(|n| n.key().len()))
        .max()
        .unwrap_or(0)
        .max(10);
    let text = |found: Option<&Cell>| match found {
        Some((ok, sent, p99)) => format!("{ok}/{sent} {}", latency(*p99)),
        None => "-".into(),
    };
    // Every column as wide as the widest cell or kind label.
    let column = cells
        .values()
        .map(|c| text(Some(c)).chars().count())
        .chain(kinds.iter().map(|k| kind_label(k).len()))
        .max()
        .unwrap_or(0)
        .max(MIN_KIND_COLUMN);
    let per_line = width.map_or(kinds.len(), |w| {
        (w.saturating_sub(first) / (column + 1)).max(1)
    });
    for network in &r.networks {
        for group in kinds.chunks(per_line) {
            let _ = write!(out, "{:<first$}", network.key());
            for k in group {
                let _ = write!(out, " {:>column$}", kind_label(k));
            }
            let _ = writeln!(out);
            for n in &r.nodes {
                let _ = write!(
                    out,
                    "{:<first$}",
                    format!("  {}{}", n.name, if n.server { "*" } else { "" })
                );
                for k in group {
                    let found =
                        cells.get(&(network.key().to_string(), n.name.clone(), kind_label(k)));
                    // Padded first: the colour's escape codes take no columns.
                    let cell = format!("{:>column$}", text(found));
                    let cell = match found {
                        Some((ok, sent, _)) if ok < sent => paint.paint("31", &cell),
                        _ => cell,
                    };
                    let _ = write!(out, " {cell}");
                }
                let _ = writeln!(out);
            }
        }
    }
}

/// A mesh run's node × node matrix per network: a row per client node, a column per
/// responder node, each cell `ok/sent` of the probes (`-` not probed, `?` probed without a
/// result), failing cells marked `!`.
fn mesh(out: &mut String, r: &StoredReport, paint: Paint) {
    use crate::findings::CellState;
    let Some(mesh) = &r.mesh else {
        return;
    };
    let _ = writeln!(
        out,
        "\nmesh: ok/sent per client node (rows) and responder node (columns){} (- not probed, ? no result, ! failing)",
        mesh.peers_per_node
            .map_or(String::new(), |k| format!(", {k} other node(s) per node"))
    );
    for network in &mesh.networks {
        let _ = writeln!(
            out,
            "{}: {} of {} node pairs probed",
            network.network.key(),
            network.pairs_probed,
            network.pairs
        );
        let text = |c: &crate::findings::CellReport| match c.state {
            CellState::NotProbed => "-".to_string(),
            CellState::NoResults => "?".to_string(),
            CellState::Pass => format!("{}/{}", c.probes_ok, c.probes_sent),
            CellState::Degraded | CellState::Fail => {
                format!("!{}/{}", c.probes_ok, c.probes_sent)
            }
        };
        let first = network
            .from
            .iter()
            .map(|n| n.chars().count() + 2)
            .chain([network.network.key().len()])
            .max()
            .unwrap_or(0);
        let column = network
            .cells
            .iter()
            .map(|c| text(c).chars().count())
            .chain(network.to.iter().map(|n| n.chars().count()))
            .max()
            .unwrap_or(0);
        let _ = write!(out, "{:<first$}", network.network.key());
        for to in &network.to {
            let _ = write!(out, " {to:>column$}");
        }
        let _ = writeln!(out);
        for from in &network.from {
            let _ = write!(out, "{:<first$}", format!("  {from}"));
            for to in &network.to {
                let cell = network
                    .cells
                    .iter()
                    .find(|c| c.from == *from && c.to == *to);
                let shown = format!("{:>column$}", cell.map_or("-".to_string(), text));
                let shown = match cell.map(|c| c.state) {
                    Some(CellState::Fail | CellState::Degraded) => paint.paint("31", &shown),
                    _ => shown,
                };
                let _ = write!(out, " {shown}");
            }
            let _ = writeln!(out);
        }
        pair_outages(out, network);
    }
}

/// A mesh soak's outages of a network per (client node, responder node) pair, as its cells
/// have them (`mesh.networks[].cells[].outage`: the soak's outage rule over the pair's client
/// paths, every window), one line per pair that had one:
/// `n2 → n3: 1 outage, longest 7.0 s, down 7.0 s, availability 88.14%; 5.0–12.0 s (class)`.
fn pair_outages(out: &mut String, network: &crate::findings::MeshNetwork) {
    let down: Vec<(&crate::findings::CellReport, &crate::findings::CellOutage)> = network
        .cells
        .iter()
        .filter_map(|c| c.outage.as_ref().map(|o| (c, o)))
        .filter(|(_, o)| o.outages > 0)
        .collect();
    if down.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  outages in the soak, per client node → responder node (the soak's outage rule; windows: seconds into the run)"
    );
    let secs = |ms: u64| ms as f64 / 1000.0;
    for (c, o) in down {
        let windows: Vec<String> = o
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{:.1}–{}{}",
                    secs(w.from_ms),
                    if w.ongoing {
                        "the end".to_string()
                    } else {
                        format!("{:.1} s", secs(w.to_ms))
                    },
                    w.class
                        .as_ref()
                        .map_or(String::new(), |class| format!(" ({class})"))
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "    {} → {}: {} outage{}, longest {:.1} s, down {:.1} s, availability {:.2}%; {}",
            c.from,
            c.to,
            o.outages,
            if o.outages == 1 { "" } else { "s" },
            secs(o.longest_ms),
            secs(o.down_ms),
            o.availability * 100.0,
            windows.join(", ")
        );
    }
}

/// The least width of a probe kind's column in the matrix.
const MIN_KIND_COLUMN: usize = 14;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stored::{Stored, parse};

    const FAIL: &str = include_str!("../../../tests/fixtures/reports/lab-block-cluster.json");

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('\x1b') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('m').expect("an escape ends with m");
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn colour_marks_the_verdict_severities_and_failing_cells_and_nothing_else() {
        let Stored::Run(r) = parse(FAIL, std::path::Path::new("r.json")).expect("read") else {
            panic!("a run report");
        };
        let plain = render(&r);
        let coloured = render_with(
            &r,
            crate::report::Terminal {
                colour: true,
                width: None,
            },
        );
        assert!(!plain.contains('\x1b'));
        assert_eq!(
            strip_ansi(&coloured),
            plain,
            "colour changes nothing but colour"
        );
        assert!(coloured.contains("— \x1b[1;31mFAIL\x1b[0m\n"));
        assert!(coloured.contains(" 1. \x1b[1;31mFail\x1b[0m inter_node_blocked"));
        // n2's cluster cells failed, its public ones did not.
        let n2_rows: Vec<&str> = coloured
            .lines()
            .filter(|l| l.starts_with("  n2 "))
            .collect();
        assert_eq!(n2_rows.len(), 2);
        assert!(!n2_rows[0].contains('\x1b'), "{}", n2_rows[0]);
        assert_eq!(n2_rows[1].matches("\x1b[31m").count(), 8, "{}", n2_rows[1]);
    }

    /// On a terminal the matrix is cut into groups of probe-kind columns that fit its width:
    /// every line fits, every cell is still there, and the node column fits long names.
    #[test]
    fn the_matrix_fits_the_terminals_width_and_keeps_every_cell() {
        let Stored::Run(mut r) = parse(FAIL, std::path::Path::new("r.json")).expect("read") else {
            panic!("a run report");
        };
        let matrix = |text: &str| -> Vec<String> {
            text.lines()
                .skip_while(|l| !l.starts_with("matrix:"))
                .skip(2)
                .take_while(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        let cells = |lines: &[String]| lines.iter().map(|l| l.matches('/').count()).sum::<usize>();
        let wide = matrix(&render(&r));
        // 2 networks × (a header and 3 nodes); 8 kinds on one line.
        assert_eq!(wide.len(), 8, "{wide:#?}");
        for width in [80, 100, 60] {
            let narrow = matrix(&render_with(
                &r,
                crate::report::Terminal {
                    colour: false,
                    width: Some(width),
                },
            ));
            assert!(
                narrow.iter().all(|l| l.chars().count() <= width),
                "{width}: {narrow:#?}"
            );
            assert!(narrow.len() > wide.len(), "{width}: cut into groups");
            assert_eq!(cells(&narrow), cells(&wide), "{width}: every cell");
        }
        // A Kubernetes node name longer than the column still lines the cells up.
        let long = "storage-a.example.com";
        r.nodes[1].name = long.into();
        let lines = matrix(&render(&r));
        let row = lines.iter().find(|l| l.contains(long)).expect("its row");
        let header = &lines[0];
        assert_eq!(
            row.chars().count(),
            header.chars().count(),
            "{row}\n{header}"
        );
    }

    #[test]
    fn agent_outages_show_apart_from_the_findings_one_line_per_agent() {
        let Stored::Run(mut r) = parse(FAIL, std::path::Path::new("r.json")).expect("read") else {
            panic!("a run report");
        };
        assert!(!render(&r).contains("agent outages"), "none, no section");
        r.agent_outages = vec![serde_json::json!({
            "pod": "client-n2-osd-0", "node": "n2", "role": "client", "outages": 2,
            "away_ms": 10_500, "restarts": 1,
            "windows": [
                {"from_ms": 10_200, "to_ms": 20_200, "duration_ms": 10_000, "ongoing": false, "returned": "restarted"},
                {"from_ms": 29_000, "to_ms": 29_500, "duration_ms": 500, "ongoing": true, "returned": null}
            ]
        })];
        let text = render(&r);
        assert!(
            text.contains("\nagent outages (away from the run, not measured; not network outages)\n  client-n2-osd-0 (client) on n2: 2 time(s), 10.5 s away, 1 restart(s); 10.2–20.2 s (restarted), 29.0–29.5 s (to the end)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_mesh_run_shows_its_node_by_node_matrix_with_the_blocked_pair_marked() {
        const MESH: &str = include_str!("../../../tests/fixtures/reports/lab-mesh-block.json");
        let Stored::Run(r) = parse(MESH, std::path::Path::new("r.json")).expect("read") else {
            panic!("a run report");
        };
        let text = render(&r);
        let at = text.find("\nmesh: ").expect("a mesh section");
        let lines: Vec<&str> = text[at + 1..].lines().collect();
        assert!(
            lines[1].contains("public: 16 of 16 node pairs probed"),
            "{}",
            lines[0]
        );
        // public, its 4 rows, cluster, its 4 rows.
        let cluster = lines
            .iter()
            .position(|l| l.starts_with("cluster "))
            .expect("cluster");
        let row = |node: &str| -> Vec<&str> {
            lines[cluster + 1..cluster + 5]
                .iter()
                .find(|l| l.trim_start().starts_with(node))
                .expect("a row")
                .split_whitespace()
                .skip(1)
                .collect()
        };
        let failing = |cells: Vec<&str>| -> Vec<usize> {
            cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.starts_with('!'))
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(failing(row("n2")), [2], "n2 -> n3 only: {text}");
        assert_eq!(failing(row("n3")), [1], "n3 -> n2 only: {text}");
        assert_eq!(failing(row("n1")), Vec::<usize>::new());
        assert_eq!(failing(row("n4")), Vec::<usize>::new());
        assert!(!text.contains("outages in the soak"), "not a soak: {text}");
    }

    #[test]
    fn a_mesh_soak_says_each_pairs_outages_under_its_networks_matrix() {
        const MESH: &str = include_str!("../../../tests/fixtures/reports/lab-mesh-block.json");
        let Stored::Run(mut r) = parse(MESH, std::path::Path::new("r.json")).expect("read") else {
            panic!("a run report");
        };
        let cluster = r
            .mesh
            .as_mut()
            .expect("mesh")
            .networks
            .iter_mut()
            .find(|n| n.network == multinet_proto::network::CephNetwork::Cluster)
            .expect("cluster");
        for c in &mut cluster.cells {
            let down = c.from == "n2" && c.to == "n3";
            c.outage = Some(crate::findings::CellOutage {
                outages: usize::from(down) * 2,
                longest_ms: if down { 7_000 } else { 0 },
                down_ms: if down { 9_500 } else { 0 },
                availability: if down { 0.8814 } else { 1.0 },
                windows: if down {
                    vec![
                        crate::findings::CellWindow {
                            from_ms: 5_000,
                            to_ms: 12_000,
                            ongoing: false,
                            class: Some("connect_timeout".into()),
                        },
                        crate::findings::CellWindow {
                            from_ms: 57_500,
                            to_ms: 60_000,
                            ongoing: true,
                            class: None,
                        },
                    ]
                } else {
                    Vec::new()
                },
            });
        }
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("  outages in the soak"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            lines[at - 5].starts_with("cluster "),
            "under the cluster matrix: {text}"
        );
        assert_eq!(
            lines[at + 1],
            "    n2 → n3: 2 outages, longest 7.0 s, down 9.5 s, availability 88.14%; 5.0–12.0 s (connect_timeout), 57.5–the end"
        );
        assert!(
            lines.get(at + 2).is_none_or(|l| !l.starts_with("    n")),
            "one pair had outages: {text}"
        );
        assert_eq!(text.matches("outages in the soak").count(), 1, "{text}");
    }
}
