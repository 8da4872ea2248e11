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
    Run(Box<crate::run_cmd::RunArgs>),
    /// Remove what Kubernetes runs left behind (all of them, or one run), waiting until it is
    /// gone; never forced, so IPAM addresses are released.
    Cleanup(crate::kube_cmd::CleanupArgs),
    /// The emulated lab: build, inspect, remove.
    #[command(subcommand)]
    Lab(crate::lab_cmd::LabCommand),
    /// Benchmarks (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Run one agent (what the local and lab backends start, and the image's pods run;
    /// `multinet-agent` is the same, smaller).
    #[command(hide = true, disable_help_flag = true)]
    Agent {
        /// `--assignment FILE`, or `--kube --role R --name N --node NODE [--networks …]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
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
fn run_agent(args: Vec<String>) -> u8 {
    let args = match multinet_agent::pod::parse_args(args) {
        Ok(multinet_agent::pod::AgentArgs::Help) => {
            println!("{}", multinet_agent::pod::USAGE);
            return 0;
        }
        Ok(args) => args,
        Err(message) => {
            eprintln!("multinet agent: {message}");
            return 1;
        }
    };
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
    match multinet_agent::assignment_from(&args)
        .and_then(|a| runtime.block_on(multinet_agent::run_until_terminated(a)))
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
        Command::Cleanup(args) => crate::kube_cmd::cleanup(&args),
        Command::Agent { args } => run_agent(args),
        Command::Lab(command) => crate::lab_cmd::run(&command),
        Command::Bench(crate::bench::BenchCommand::Ingest(args)) => crate::bench::ingest(&args),
        Command::Bench(crate::bench::BenchCommand::Load(args)) => crate::bench::load::load(&args),
    };
    ExitCode::from(code)
}
