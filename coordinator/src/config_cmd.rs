//! `multinet config sample` and `multinet config check`: the sample texts and the check's
//! report (the command line prints them).

use std::fmt::Write;
use std::path::Path;

use multinet_proto::config::{RunConfig, SampleKind, sample as render_sample};
use multinet_proto::field::Problems;
use serde::Serialize;

use crate::input::read_run_config;

/// What `config check` found. The JSON output is this structure.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The file checked.
    pub file: String,
    /// True when there is no error (warnings allowed).
    pub valid: bool,
    /// The configuration with defaults merged, when the file parsed.
    pub config: Option<RunConfig>,
    /// The node type the server goes to.
    pub server_node_type: Option<String>,
    /// Every problem, each naming its field.
    #[serde(flatten)]
    pub problems: Problems,
}

/// A sample configuration with Rook's numbers, commented.
pub fn sample(kind: SampleKind) -> String {
    render_sample(kind)
}

/// Checks a run configuration file (`-` is standard input): every problem is listed.
pub fn check(path: &Path) -> CheckReport {
    let file = path.display().to_string();
    let mut problems = Problems::default();
    let config = read_run_config(path, &mut problems).map(|(config, found)| {
        problems.absorb(found);
        config
    });
    CheckReport {
        valid: problems.is_valid(),
        server_node_type: config
            .as_ref()
            .and_then(RunConfig::server_node_type)
            .map(str::to_string),
        config,
        problems,
        file,
    }
}

/// The report for people.
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config check: {}", report.file);
    if let Some(c) = &report.config {
        let net = |n: &str| {
            if n.is_empty() {
                "(none)".to_string()
            } else {
                n.to_string()
            }
        };
        let _ = writeln!(out, "  namespace        {}", c.namespace);
        let _ = writeln!(out, "  public network   {}", net(&c.public_network));
        let _ = writeln!(out, "  cluster network  {}", net(&c.cluster_network));
        let _ = writeln!(
            out,
            "  timeouts         {} per stage, flaky after {}",
            c.resource_timeout, c.flaky_threshold
        );
        let _ = writeln!(
            out,
            "  probes           every {}, timeout {}, {} consecutive successes, payloads {} B and {} B",
            c.probe_interval,
            c.probe_timeout,
            c.success_threshold,
            c.payload_bytes.small,
            c.payload_bytes.large
        );
        if c.host_check_only {
            let _ = writeln!(out, "  host check only  yes");
        }
        let _ = writeln!(out, "  node types");
        for (name, t) in &c.node_types {
            let server = if report.server_node_type.as_deref() == Some(name.as_str()) {
                "  ← server"
            } else {
                ""
            };
            let selector: Vec<String> = t
                .placement
                .node_selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let selector = if selector.is_empty() {
                "all nodes".to_string()
            } else {
                selector.join(",")
            };
            let _ = writeln!(
                out,
                "    {name:<34} {} OSD + {} other clients per node, {selector}, {} toleration(s){server}",
                t.osds_per_node,
                t.other_daemons_per_node,
                t.placement.tolerations.len()
            );
        }
    }
    for (title, list) in [
        ("warnings", &report.problems.warnings),
        ("errors", &report.problems.errors),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n{title} ({})", list.len());
            for p in list {
                let _ = writeln!(out, "  - {p}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        if report.valid {
            "valid".to_string()
        } else {
            format!("INVALID: {} error(s)", report.problems.errors.len())
        }
    );
    out
}
