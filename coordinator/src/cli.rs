//! The command line: arguments, dispatch and exit codes.
//!
//! Exit codes are Rook's: 0 success, 1 failure (of a run, later), 22 invalid input (EINVAL),
//! with nothing created.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{config_cmd, spec_check};

/// Exit code for invalid input, as Rook's tester uses it (EINVAL).
pub const EXIT_INVALID: u8 = 22;

/// multinet validates the networks a storage cluster will live on.
#[derive(Debug, Parser)]
#[command(name = "multinet", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The CephCluster network API: check a spec.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// Validation run configurations (Rook's ValidationTestConfig, extended).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a validation: one server, the worst-case clients on every node, host checkers;
    /// report which paths fail and why.
    Run(crate::run_cmd::RunArgs),
    /// The emulated lab: build, inspect, remove.
    #[command(subcommand)]
    Lab(crate::lab_cmd::LabCommand),
    /// Benchmarks (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Run one agent (what the local backend starts; `multinet-agent` is the same, smaller).
    #[command(hide = true)]
    Agent {
        /// The assignment file the coordinator wrote.
        #[arg(long)]
        assignment: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SpecCommand {
    /// Validate a CephCluster's spec.network (or a bare `network:` document) and show what it
    /// turns into: Multus annotations, host interfaces, Ceph's public/cluster networks.
    Check(SpecCheckArgs),
}

/// Arguments of `multinet spec check`.
#[derive(Debug, Args)]
pub struct SpecCheckArgs {
    /// CephCluster manifest (multi-document YAML allowed; the first CephCluster wins) or a
    /// document whose top-level key is `network:`. `-` reads standard input.
    pub file: PathBuf,
    /// NetworkAttachmentDefinition manifests: every selection must resolve to one of them.
    #[arg(long, value_name = "NADS.yaml")]
    pub nads: Option<PathBuf>,
    /// Compare each NAD's address capacity with the worst case on this many nodes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub nodes: Option<u32>,
    /// Run configuration giving the clients per node (default: Rook's converged 3 + 16).
    #[arg(short = 'c', long = "config", value_name = "RUNCONFIG")]
    pub config: Option<PathBuf>,
    /// Namespace for selections without one, when the manifest names none [default: rook-ceph].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented sample configuration with Rook's numbers.
    Sample {
        /// Which cluster shape.
        #[arg(value_enum)]
        kind: config_cmd::SampleName,
    },
    /// Check a configuration file; every problem is listed.
    Check {
        /// The file (`-` reads standard input).
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Runs one agent on a single-threaded runtime, as `multinet-agent` does.
fn run_agent(path: &std::path::Path) -> u8 {
    multinet_agent::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("multinet agent: cannot start the runtime: {e}");
            return 1;
        }
    };
    match multinet_agent::read_assignment(path)
        .and_then(|a| runtime.block_on(multinet_agent::run(a)))
    {
        Ok(reason) => reason.code(),
        Err(e) => {
            eprintln!("multinet agent: {e:#}");
            1
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_INVALID)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let code = match cli.command {
        Command::Spec(SpecCommand::Check(args)) => spec_check::run(&args),
        Command::Config(ConfigCommand::Sample { kind }) => config_cmd::sample(kind),
        Command::Config(ConfigCommand::Check { file, output }) => config_cmd::check(&file, output),
        Command::Run(args) => crate::run_cmd::run(&args),
        Command::Agent { assignment } => run_agent(&assignment),
        Command::Lab(command) => crate::lab_cmd::run(&command),
        Command::Bench(crate::bench::BenchCommand::Ingest(args)) => crate::bench::ingest(&args),
        Command::Bench(crate::bench::BenchCommand::Load(args)) => crate::bench::load::load(&args),
    };
    ExitCode::from(code)
}
