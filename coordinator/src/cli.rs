//! The command line: clap types, turned into plain requests for the modules below; the only
//! place that prints errors and decides exit codes (through [`crate::exit`]).
//!
//! * [`spec`] — `multinet spec check`. [`config`] — `multinet config sample | check`.
//! * [`run`] — `multinet run`. [`cleanup`] — `multinet cleanup`.
//! * [`lab`] — `multinet lab up | status | down`. [`bench`] — `multinet bench …`.
//! * [`report`] — `multinet report show | compare`: stored reports.
//!
//! Diagnostics go through `tracing` to stderr (`-v`, `--log-level`, or `RUST_LOG`), written
//! around the progress line; what a command says to its user (notices, warnings about the
//! input, errors) is printed here; the report goes to stdout.

pub mod bench;
pub mod cleanup;
pub mod config;
pub mod lab;
pub mod report;
pub mod run;
pub mod spec;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;

/// multinet validates the networks a storage cluster will live on.
#[derive(Debug, Parser)]
#[command(name = "multinet", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    logging: Logging,
    #[command(subcommand)]
    command: Command,
}

/// How much is logged on stderr.
#[derive(Debug, Args)]
struct Logging {
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (`RUST_LOG` also works).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// The diagnostics' level or a `RUST_LOG`-style filter, e.g. `debug` or
    /// `multinet_coordinator::control_plane=trace` [default: warnings, and multinet's own
    /// notices at info].
    #[arg(long, value_name = "FILTER", global = true, conflicts_with = "verbose")]
    log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The CephCluster network API: check a spec.
    #[command(subcommand)]
    Spec(spec::SpecCommand),
    /// Validation run configurations (Rook's ValidationTestConfig, extended).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Run a validation: one server, the worst-case clients on every node, host checkers;
    /// report which paths fail and why.
    Run(Box<run::RunArgs>),
    /// Remove what Kubernetes runs left behind (all of them, or one run), waiting until it is
    /// gone; never forced, so IPAM addresses are released.
    Cleanup(cleanup::CleanupArgs),
    /// The emulated lab: build, inspect, remove.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Stored reports: show one again in any format, compare two.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Benchmarks (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run one agent (what the local and lab backends start, and the image's pods run;
    /// `multinet-agent` is the same, smaller).
    #[command(hide = true, disable_help_flag = true)]
    Agent {
        /// `--assignment FILE`, or `--kube --role R --name N --node NODE [--networks …]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Report format of the checking commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// How a text report on standard output is styled: when it is a terminal, in colour unless
/// `NO_COLOR` is set to a non-empty value (no-color.org), and its tables cut to the
/// terminal's width; plain otherwise (piped, redirected).
pub fn terminal_on_stdout() -> crate::report::Terminal {
    let stdout = std::io::stdout();
    if !std::io::IsTerminal::is_terminal(&stdout) {
        return crate::report::Terminal::PLAIN;
    }
    crate::report::Terminal {
        colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        width: terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0)),
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::INVALID)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(&cli.logging);
    let code = match cli.command {
        Command::Spec(command) => spec::run(command),
        Command::Config(command) => config::run(command),
        Command::Run(args) => run::run(&args),
        Command::Cleanup(args) => cleanup::run(&args),
        Command::Agent { args } => multinet_agent::entry::main("multinet agent", args),
        Command::Lab(command) => lab::run(command),
        Command::Bench(command) => bench::run(command),
        Command::Report(command) => report::run(command),
    };
    ExitCode::from(code)
}

/// Diagnostics to stderr, around the progress line: `--log-level`, else `-v`, else
/// `RUST_LOG`, else warnings and multinet's own notices.
fn init_logging(logging: &Logging) {
    let filter = match (&logging.log_level, logging.verbose) {
        (Some(filter), _) => Some(filter.as_str()),
        (None, 0) => None,
        (None, 1) => Some("info"),
        (None, 2) => Some("debug"),
        (None, _) => Some("trace"),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if let Err(e) =
        multinet_agent::entry::init_logging(filter, crate::progress::LogWriter::default, ansi)
    {
        eprintln!("multinet: log filter {e}; logging warnings and multinet's notices only");
    }
}
