//! `multinet config sample | check`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use multinet_proto::config::SampleKind;

use super::Output;
use crate::config_cmd;
use crate::exit;

/// `multinet config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented sample configuration with Rook's numbers.
    Sample {
        /// Which cluster shape.
        #[arg(value_enum)]
        kind: SampleName,
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

/// Runs a `config` subcommand; the exit code (22 for an invalid file).
pub fn run(command: ConfigCommand) -> u8 {
    match command {
        ConfigCommand::Sample { kind } => {
            crate::out!(
                "{}",
                config_cmd::sample(match kind {
                    SampleName::Converged => SampleKind::Converged,
                    SampleName::DedicatedStorageNodes => SampleKind::DedicatedStorageNodes,
                    SampleName::StretchCluster => SampleKind::StretchCluster,
                })
            );
            exit::SUCCESS
        }
        ConfigCommand::Check { file, output } => {
            let report = config_cmd::check(&file);
            match output {
                Output::Json => crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                Output::Text => crate::out!("{}", config_cmd::render(&report)),
            }
            if report.valid {
                exit::SUCCESS
            } else {
                exit::INVALID
            }
        }
    }
}
