//! `multinet config sample` and `multinet config check`.

use std::fmt::Write;
use std::path::Path;

use clap::ValueEnum;
use multinet_proto::config::{RunConfig, SampleKind, parse_run_config, sample as render_sample};
use multinet_proto::field::Problems;
use serde::Serialize;

use crate::cli::{EXIT_INVALID, Output};
use crate::input::read_text_or_report;

/// The sample shapes, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SampleName {
    /// Every node runs storage and other daemons (Rook's default: 3 OSDs + 16 others per node).
    Converged,
    /// Storage nodes (3 + 16) apart from worker nodes (0 + 6).
    DedicatedStorageNodes,
    /// Dedicated storage nodes plus an arbiter node (0 + 10) for a stretch cluster.
    StretchCluster,
}

/// Prints a sample; returns the exit code.
pub fn sample(name: SampleName) -> u8 {
    let kind = match name {
        SampleName::Converged => SampleKind::Converged,
        SampleName::DedicatedStorageNodes => SampleKind::DedicatedStorageNodes,
        SampleName::StretchCluster => SampleKind::StretchCluster,
    };
    print!("{}", render_sample(kind));
    0
}

#[derive(Debug, Serialize)]
struct CheckReport<'a> {
    file: String,
    valid: bool,
    /// The configuration with defaults merged, when the file parsed.
    config: Option<&'a RunConfig>,
    /// The node type the server goes to.
    server_node_type: Option<&'a str>,
    #[serde(flatten)]
    problems: &'a Problems,
}

/// Checks a file; returns the exit code.
pub fn check(path: &Path, output: Output) -> u8 {
    let file = path.display().to_string();
    let mut problems = Problems::default();
    let config =
        read_text_or_report(path, &mut problems).and_then(|text| match parse_run_config(&text) {
            Ok((config, found)) => {
                problems.absorb(found);
                Some(config)
            }
            Err(e) => {
                problems.error(file.clone(), format!("not valid YAML: {e}"));
                None
            }
        });
    let report = CheckReport {
        valid: problems.is_valid(),
        server_node_type: config.as_ref().and_then(RunConfig::server_node_type),
        config: config.as_ref(),
        problems: &problems,
        file,
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Output::Text => print!("{}", render(&report)),
    }
    if report.valid { 0 } else { EXIT_INVALID }
}

fn render(report: &CheckReport<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config check: {}", report.file);
    if let Some(c) = report.config {
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
            let server = if report.server_node_type == Some(name.as_str()) {
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
