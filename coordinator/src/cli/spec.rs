//! `multinet spec check`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Output;
use crate::exit;
use crate::spec_check::{SpecCheckRequest, build};

/// `multinet spec …`
#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Validate a CephCluster's spec.network (or a bare `network:` document) and show what it
    /// turns into: Multus annotations, host interfaces, Ceph's public/cluster networks; with
    /// --nads, what each selected NAD's plugin and IPAM will hand out.
    ///
    /// Exit codes: 0 valid and will work; 1 valid but will not work as configured (the worst
    /// case does not fit a NAD's capacity, a NAD hands out no address or none of the family
    /// Ceph binds, an IPAM the plugin cannot allocate from); 22 invalid (listed as errors).
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

/// Runs a `spec` subcommand; the exit code: 22 when the spec is invalid, 1 when it is valid
/// but will not work as configured, else 0.
pub fn run(command: SpecCommand) -> u8 {
    let SpecCommand::Check(args) = command;
    let report = build(&SpecCheckRequest {
        file: args.file,
        nads: args.nads,
        nodes: args.nodes,
        config: args.config,
        namespace: args.namespace,
    });
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Output::Text => print!("{}", crate::spec_report::render(&report)),
    }
    if !report.valid {
        exit::INVALID
    } else if !report.will_not_work.is_empty() {
        exit::FAILURE
    } else {
        exit::SUCCESS
    }
}
