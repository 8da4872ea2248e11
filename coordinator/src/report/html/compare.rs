//! `multinet report compare -o html`: what changed from one stored report to another as one
//! self-contained page (the run page's style; no script, nothing loaded from elsewhere) —
//! the headline, the regressions (and whether `--fail-on` fails on them), findings new and
//! gone, the matrix cells that got worse or better and the counts that differ.

use std::fmt::Write as _;

use super::super::compare::{CellChange, Comparison, FindingRef, Regression, cell_changes};
use super::super::text::kind_label;
use super::{STYLE, esc, verdict_word};

/// The comparison as one self-contained page; `fail_on` decides the headline.
pub fn render(c: &Comparison, fail_on: &[Regression]) -> String {
    let headline = c.headline(fail_on);
    let class = match headline {
        "REGRESSION" => "fail",
        "no change" => "pass",
        _ => "warn",
    };
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>multinet report compare {} → {} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>multinet report compare <code>{}</code> → <code>{}</code> <span id=\"headline\" class=\"verdict {class}\">{}</span></h1>\n</header>\n<main>\n",
        esc(&c.before.run_id),
        esc(&c.after.run_id),
        esc(headline),
        esc(&c.before.run_id),
        esc(&c.after.run_id),
        esc(headline),
    );
    let _ = write!(
        out,
        "<table class=\"facts\"><tr><th>verdict</th><td id=\"verdicts\"><span class=\"verdict {}\">{}</span> → <span class=\"verdict {}\">{}</span></td></tr>\n<tr><th>regressions</th><td id=\"regressions\">{}</td></tr>\n",
        verdict_word(c.before.verdict),
        verdict_word(c.before.verdict).to_uppercase(),
        verdict_word(c.after.verdict),
        verdict_word(c.after.verdict).to_uppercase(),
        if c.regressions.is_empty() {
            "none".to_string()
        } else {
            c.regressions
                .iter()
                .map(|r| {
                    if fail_on.contains(r) {
                        format!("<strong data-regression=\"{0}\">{0}</strong>", r.name())
                    } else {
                        format!(
                            "<span data-regression=\"{0}\">{0} (not failing: not in --fail-on)</span>",
                            r.name()
                        )
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for count in &c.counts {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{} → {}</td></tr>",
            esc(count.what),
            esc(&count.before),
            esc(&count.after)
        );
    }
    out.push_str("</table>\n");
    findings(&mut out, "new-findings", "Findings new", &c.new_findings);
    findings(&mut out, "gone-findings", "Findings gone", &c.gone_findings);
    cells(&mut out, "worse", "Worse", &c.worse);
    cells(&mut out, "better", "Better", &c.better);
    for (id, title, list) in [
        ("only-before", "Cells only before", &c.cells_only_before),
        ("only-after", "Cells only after", &c.cells_only_after),
    ] {
        if !list.is_empty() {
            let items: Vec<String> = list
                .iter()
                .map(|c| format!("<li>{}</li>", esc(c)))
                .collect();
            let _ = writeln!(
                out,
                "<section id=\"{id}\"><h2>{title} ({})</h2><ul>{}</ul></section>",
                list.len(),
                items.concat()
            );
        }
    }
    out.push_str(
        "</main>\n<footer class=\"legend\">a cell is a network × client node × probe kind; rendered by multinet ",
    );
    let _ = write!(
        out,
        "{}</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn findings(out: &mut String, id: &str, title: &str, list: &[FindingRef]) {
    let _ = writeln!(
        out,
        "<section id=\"{id}\"><h2>{title} ({})</h2>",
        list.len()
    );
    for f in list {
        let _ = writeln!(
            out,
            "<article class=\"finding {}\" data-kind=\"{}\"><h3><span class=\"kind\">{}</span>{}{} — {}</h3><p>{}</p></article>",
            if f.severity == "warn" { "warn" } else { "fail" },
            esc(&f.kind),
            esc(&f.kind),
            f.network
                .map(|n| format!(" [{}]", esc(n.key())))
                .unwrap_or_default(),
            if f.nodes.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&f.nodes.join(", ")))
            },
            esc(&f.severity),
            esc(&f.summary)
        );
    }
    out.push_str("</section>\n");
}

fn cells(out: &mut String, id: &str, title: &str, list: &[CellChange]) {
    let _ = writeln!(
        out,
        "<section id=\"{id}\"><h2>{title} ({})</h2>",
        list.len()
    );
    if !list.is_empty() {
        out.push_str(
            "<table><tr><th>network</th><th>node</th><th>probe kind</th><th>what moved</th></tr>\n",
        );
        for c in list {
            let _ = writeln!(
                out,
                "<tr class=\"cell-change\" data-network=\"{}\" data-node=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(c.network.key()),
                esc(&c.node),
                esc(c.network.key()),
                esc(&c.node),
                esc(&kind_label(&c.kind)),
                esc(&cell_changes(c).join("; "))
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::{DEFAULT_FAIL_ON, Thresholds, compare};
    use crate::report::stored::{Stored, StoredReport, parse};

    fn read(text: &str) -> StoredReport {
        match parse(text, std::path::Path::new("r.json")).expect("a report") {
            Stored::Run(r) => *r,
            Stored::Error(e) => panic!("{e:?}"),
        }
    }

    const PASS: &str = include_str!("../../../../tests/fixtures/reports/lab-pass.json");
    const FAIL: &str = include_str!("../../../../tests/fixtures/reports/lab-block-cluster.json");

    #[test]
    fn a_regression_names_its_new_finding_and_the_worse_cells() {
        let (before, after) = (read(PASS), read(FAIL));
        let c = compare(&before, &after, &Thresholds::default());
        let page = render(&c, DEFAULT_FAIL_ON);
        assert!(page.contains("<span id=\"headline\" class=\"verdict fail\">REGRESSION</span>"));
        assert!(page.contains("<strong data-regression=\"new_finding\">new_finding</strong>"));
        assert!(page.contains("<article class=\"finding fail\" data-kind=\"inter_node_blocked\">"));
        // n2 and n3 lost the cluster network: each of their cells there lost every probe.
        for node in ["n2", "n3"] {
            let row =
                format!("<tr class=\"cell-change\" data-network=\"cluster\" data-node=\"{node}\">");
            let rows: Vec<&str> = page.split(row.as_str()).skip(1).collect();
            assert!(!rows.is_empty(), "{node}");
            for r in rows {
                let r = r.split("</tr>").next().unwrap_or_default();
                assert!(r.contains("success 100.0% → 0.0%"), "{node}: {r}");
            }
        }
        for needle in ["<script", "http://", "https://", "<link"] {
            assert!(!page.contains(needle), "{needle}");
        }
    }

    #[test]
    fn the_same_report_twice_is_no_change() {
        let r = read(PASS);
        let page = render(&compare(&r, &r, &Thresholds::default()), DEFAULT_FAIL_ON);
        assert!(page.contains("<span id=\"headline\" class=\"verdict pass\">no change</span>"));
        assert!(page.contains("<td id=\"regressions\">none</td>"));
    }
}
