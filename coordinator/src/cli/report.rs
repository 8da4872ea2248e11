//! `multinet report show`: a stored JSON report rendered again, in any format.
//! `multinet report compare`: two stored reports, what changed, exit 1 on a regression.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::exit;
use crate::report::compare::{self, Regression, Thresholds};
use crate::report::{self, Format, Stored, StoredReport};

/// `multinet report …`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Render a stored JSON report (`multinet run -o json`) again, in any format; reports of
    /// older multinet versions too (docs/report.md). Exit 0 when shown, 22 when the file is no
    /// report.
    Show {
        /// The JSON report.
        #[arg(value_name = "REPORT.json")]
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = ShowOutput::Text)]
        output: ShowOutput,
    },
    /// Compare two stored JSON reports: findings new and gone, matrix cells (network, node,
    /// probe kind) worse or better beyond the noise thresholds, counts that differ. Exit 0 no
    /// regression, 1 a regression of a kind --fail-on names, 22 a file that is no run report.
    Compare {
        /// The report before the change.
        #[arg(value_name = "BEFORE.json")]
        before: PathBuf,
        /// The report after it.
        #[arg(value_name = "AFTER.json")]
        after: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = CompareOutput::Text)]
        output: CompareOutput,
        /// The kinds of regression that exit 1, comma-separated [default: verdict,
        /// new-finding, success, latency].
        #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS")]
        fail_on: Vec<FailOn>,
        /// A success ratio must drop by more than this fraction to count (0.01: one
        /// percentage point).
        #[arg(long, default_value_t = 0.01, value_name = "FRACTION")]
        success_threshold: f64,
        /// A p50 or p99 latency must grow by more than this factor to count …
        #[arg(long, default_value_t = 1.5, value_name = "FACTOR")]
        latency_factor: f64,
        /// … and by more than this many milliseconds.
        #[arg(long, default_value_t = 1.0, value_name = "MS")]
        latency_floor_ms: f64,
    },
}

/// What `report compare` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareOutput {
    /// For people in a terminal.
    Text,
    /// For programs.
    Json,
    /// One self-contained page.
    Html,
}

/// A kind of regression, as `--fail-on` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// The verdict got worse.
    Verdict,
    /// A finding that was not there before.
    NewFinding,
    /// A cell's success ratio dropped.
    Success,
    /// A cell's p50 or p99 latency grew.
    Latency,
    /// Nodes, networks, clients or host checkers differ.
    Topology,
}

impl From<FailOn> for Regression {
    fn from(f: FailOn) -> Self {
        match f {
            FailOn::Verdict => Regression::Verdict,
            FailOn::NewFinding => Regression::NewFinding,
            FailOn::Success => Regression::Success,
            FailOn::Latency => Regression::Latency,
            FailOn::Topology => Regression::Topology,
        }
    }
}

/// A stored run report from `path`, or the error to print and its exit code.
fn run_report(path: &std::path::Path) -> Result<StoredReport, (String, u8)> {
    match report::stored::load(path) {
        Ok(Stored::Run(r)) => {
            if let Some(w) = Stored::Run(r.clone()).newer_schema_warning(path) {
                eprintln!("multinet report compare: warning: {w}");
            }
            Ok(*r)
        }
        Ok(Stored::Error(e)) => Err((
            format!(
                "{}: the report of a run that could not be carried out (verdict error: {}); nothing to compare",
                path.display(),
                e.error
            ),
            exit::INVALID,
        )),
        Err(e) => Err((exit::chain(&e), exit::code(&e))),
    }
}

/// Formats `report show` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowOutput {
    /// For people.
    Text,
    /// For programs: the report in today's schema.
    Json,
    /// JUnit XML for CI dashboards.
    Junit,
    /// One self-contained HTML page.
    Html,
}

impl From<ShowOutput> for Format {
    fn from(output: ShowOutput) -> Self {
        match output {
            ShowOutput::Text => Format::Text,
            ShowOutput::Json => Format::Json,
            ShowOutput::Junit => Format::Junit,
            ShowOutput::Html => Format::Html,
        }
    }
}

/// Runs a `report` subcommand; the exit code.
pub fn run(command: ReportCommand) -> u8 {
    match command {
        ReportCommand::Show { file, output } => match report::stored::load(&file) {
            Ok(stored) => {
                if let Some(warning) = stored.newer_schema_warning(&file) {
                    eprintln!("multinet report show: warning: {warning}");
                }
                crate::out!(
                    "{}",
                    stored.render_styled(output.into(), super::terminal_on_stdout())
                );
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("multinet report show: {}", exit::chain(&e));
                exit::code(&e)
            }
        },
        ReportCommand::Compare {
            before,
            after,
            output,
            fail_on,
            success_threshold,
            latency_factor,
            latency_floor_ms,
        } => {
            let (before, after) = match (run_report(&before), run_report(&after)) {
                (Ok(b), Ok(a)) => (b, a),
                (b, a) => {
                    let mut code = exit::SUCCESS;
                    for (why, c) in [b.err(), a.err()].into_iter().flatten() {
                        eprintln!("multinet report compare: {why}");
                        code = code.max(c);
                    }
                    return code;
                }
            };
            if !(0.0..=1.0).contains(&success_threshold)
                || latency_factor < 1.0
                || !latency_floor_ms.is_finite()
                || latency_floor_ms < 0.0
            {
                eprintln!(
                    "multinet report compare: --success-threshold must lie in 0..=1, --latency-factor be at least 1, --latency-floor-ms at least 0"
                );
                return exit::INVALID;
            }
            let thresholds = Thresholds {
                ratio: success_threshold,
                latency_factor,
                latency_floor_us: (latency_floor_ms * 1000.0) as u32,
                ..Thresholds::default()
            };
            let fail_on: Vec<Regression> = if fail_on.is_empty() {
                compare::DEFAULT_FAIL_ON.to_vec()
            } else {
                fail_on.into_iter().map(Regression::from).collect()
            };
            let comparison = compare::compare(&before, &after, &thresholds);
            match output {
                CompareOutput::Text => {
                    crate::out!("{}", compare::render_text(&comparison, &fail_on))
                }
                CompareOutput::Html => {
                    crate::out!("{}", compare::render_html(&comparison, &fail_on))
                }
                CompareOutput::Json => crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&comparison).unwrap_or_default()
                ),
            }
            if comparison.fails(&fail_on) {
                exit::FAILURE
            } else {
                exit::SUCCESS
            }
        }
    }
}
