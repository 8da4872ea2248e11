//! JUnit XML for CI dashboards: one test case per (node, network); a case fails when a finding
//! names that node and network (or the node alone), carrying the findings' summaries.

use std::fmt::Write;

use super::{ErrorReport, StoredReport};

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Renders the report as JUnit XML.
pub fn render(r: &StoredReport) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut count = 0;
    for node in &r.nodes {
        for network in &r.networks {
            count += 1;
            let name = format!("{} {}", node.name, network.key());
            let hits: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.nodes.contains(&node.name) && f.network.is_none_or(|n| n == *network))
                .collect();
            let _ = write!(
                cases,
                "    <testcase classname=\"multinet.{}\" name=\"{}\">",
                escape(&r.backend),
                escape(&name)
            );
            if !hits.is_empty() {
                failures += 1;
                let message = hits
                    .iter()
                    .map(|f| f.summary.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let body = hits
                    .iter()
                    .map(|f| {
                        format!(
                            "{}\n{}",
                            f.summary,
                            f.suggestions
                                .iter()
                                .map(|s| format!("  - {s}"))
                                .collect::<Vec<_>>()
                                .join("\n")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n");
                let _ = write!(
                    cases,
                    "\n      <failure message=\"{}\">{}</failure>\n    ",
                    escape(&message),
                    escape(&body)
                );
            }
            let _ = writeln!(cases, "</testcase>");
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"multinet run {}\" tests=\"{count}\" failures=\"{failures}\" time=\"{:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        escape(&r.run_id),
        r.duration_ms as f64 / 1000.0
    )
}

/// A run that could not be carried out, as JUnit XML: one test case `run` in error.
pub fn render_error(r: &ErrorReport) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"multinet run\" tests=\"1\" failures=\"0\" errors=\"1\" time=\"{:.3}\">\n    <testcase classname=\"multinet.{}\" name=\"run\">\n      <error message=\"{}\"></error>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
        r.duration_ms as f64 / 1000.0,
        escape(&r.backend),
        escape(&r.error)
    )
}
