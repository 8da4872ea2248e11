//! `multinet spec check`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::Output;
use crate::exit;
use multinet_proto::field::Problem;

use crate::spec_check::{LiveOnlyRequest, SpecCheckRequest, build, build_live_only};

/// `multinet spec …`
#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Validate a CephCluster's spec.network (or a bare `network:` document) and show what it
    /// turns into: Multus annotations, host interfaces, Ceph's public/cluster networks; with
    /// --nads, what each selected NAD's plugin and IPAM will hand out. With --pods (and
    /// --ippools), the live state: requested networks a pod does not have, addresses two pods
    /// hold on one network, leaked whereabouts reservations, overlapping pools, and the
    /// addresses free now against the worst case.
    ///
    /// Exit codes: 0 valid and will work; 1 valid but will not work as configured (the worst
    /// case does not fit a NAD's capacity or the addresses free now, a NAD hands out no
    /// address or none of the family Ceph binds, an IPAM the plugin cannot allocate from, a
    /// pod without a requested network or its address, an address held twice); 22 invalid
    /// (listed as errors).
    Check(SpecCheckArgs),
}

/// Arguments of `multinet spec check`.
#[derive(Debug, Args)]
pub struct SpecCheckArgs {
    /// CephCluster manifest (multi-document YAML allowed; the first CephCluster wins) or a
    /// document whose top-level key is `network:`. `-` reads standard input. May be left out
    /// with --pods or --ippools: only the live state is checked then.
    #[arg(required_unless_present_any = ["pods", "ippools"])]
    pub file: Option<PathBuf>,
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
    /// Live pods, as `kubectl get pods -A -o yaml` prints them (a List, or a stream of Pod
    /// documents; `-` reads standard input): each pod's requested networks against its
    /// `k8s.v1.cni.cncf.io/network-status`.
    #[arg(long, value_name = "PODS.yaml")]
    pub pods: Option<PathBuf>,
    /// whereabouts IPPools, as `kubectl get ippools.whereabouts.cni.cncf.io -A -o yaml` prints
    /// them: leaked reservations (with --pods), overlapping pools, addresses free now (against
    /// the worst case with a manifest, --nads and --nodes).
    #[arg(long, value_name = "POOLS.yaml")]
    pub ippools: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Runs a `spec` subcommand; the exit code: 22 when the spec is invalid, 1 when it is valid
/// but will not work as configured, else 0.
pub fn run(command: SpecCommand) -> u8 {
    let SpecCommand::Check(args) = command;
    let from_stdin = [
        &args.file,
        &args.nads,
        &args.config,
        &args.pods,
        &args.ippools,
    ]
    .into_iter()
    .filter(|p| p.as_deref() == Some(Path::new("-")))
    .count();
    if from_stdin > 1 {
        eprintln!("error: only one input can be read from standard input (`-`)");
        return exit::INVALID;
    }
    let Some(file) = args.file else {
        let report = build_live_only(&LiveOnlyRequest {
            pods: args.pods,
            ippools: args.ippools,
            nads: args.nads,
            nodes: args.nodes,
            config: args.config,
            namespace: args.namespace,
        });
        match args.output {
            Output::Json => crate::outln!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            ),
            Output::Text => crate::out!("{}", crate::spec_report::render_live_only(&report)),
        }
        return exit_code(report.valid, &report.will_not_work);
    };
    let report = build(&SpecCheckRequest {
        file,
        nads: args.nads,
        nodes: args.nodes,
        config: args.config,
        namespace: args.namespace,
        pods: args.pods,
        ippools: args.ippools,
    });
    match args.output {
        Output::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Output::Text => crate::out!("{}", crate::spec_report::render(&report)),
    }
    exit_code(report.valid, &report.will_not_work)
}

fn exit_code(valid: bool, will_not_work: &[Problem]) -> u8 {
    if !valid {
        exit::INVALID
    } else if !will_not_work.is_empty() {
        exit::FAILURE
    } else {
        exit::SUCCESS
    }
}
