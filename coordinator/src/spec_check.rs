//! `multinet spec check`: reads the manifest, the NADs and the run configuration, and puts
//! together what `multinet_proto` says about them.

use std::path::{Path, PathBuf};

use multinet_proto::capacity::{
    CapacityCheck, PerNodeClients, check_ranges_cover, compare, resolve,
};
use multinet_proto::config::{RunConfig, parse_run_config};
use multinet_proto::field::Problems;
use multinet_proto::multus::nad::{CniSummary, Nad, read_nads};
use multinet_proto::network::{CephNetwork, NetworkCheck, check_manifest};
use serde::Serialize;

use crate::input::{read_documents, read_text_or_report};

/// Everything `spec check` reports. The JSON output is this structure.
#[derive(Debug, Serialize)]
pub struct SpecReport {
    /// The manifest checked.
    pub file: String,
    /// True when there is no error (warnings allowed).
    pub valid: bool,
    /// The network section and what it turns into (`provider`, `networks`, annotations, …).
    #[serde(flatten)]
    pub network: NetworkCheck,
    /// The NADs read with `--nads`, each with what its config amounts to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nads: Option<Vec<NadReport>>,
    /// Capacity against the worst case (`--nodes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityReport>,
}

/// One NAD in the report.
#[derive(Debug, Serialize)]
pub struct NadReport {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Which of Ceph's networks select it.
    pub selected_by: Vec<CephNetwork>,
    /// Pods that can get addresses from it; `null` when unknown.
    pub capacity: Option<u64>,
    /// The CNI config summary; `null` when `spec.config` is empty or invalid.
    pub config: Option<CniSummary>,
}

/// The worst-case demand and how each NAD meets it.
#[derive(Debug, Serialize)]
pub struct CapacityReport {
    /// Nodes assumed.
    pub nodes: u32,
    /// Clients per node assumed.
    pub clients_per_node: PerNodeClients,
    /// Where those counts come from.
    pub counts_from: String,
    /// One entry per selected NAD.
    pub checks: Vec<CapacityCheck>,
}

/// What `spec check` is asked to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecCheckRequest {
    /// A CephCluster manifest (the first CephCluster of a stream) or a `network:` document;
    /// `-` is standard input.
    pub file: PathBuf,
    /// NetworkAttachmentDefinition manifests every selection must resolve to.
    pub nads: Option<PathBuf>,
    /// Compare each NAD's capacity with the worst case on this many nodes.
    pub nodes: Option<u32>,
    /// The run configuration giving the clients per node (default: Rook's converged 3 + 16).
    pub config: Option<PathBuf>,
    /// Namespace for selections without one, when the manifest names none.
    pub namespace: Option<String>,
}

/// Builds the report (no output).
pub fn build(args: &SpecCheckRequest) -> SpecReport {
    let file = args.file.display().to_string();
    let mut problems = Problems::default();
    let docs = read_documents(&args.file, &mut problems).unwrap_or_default();
    let mut network = check_manifest(&docs, args.namespace.as_deref());
    if !problems.is_valid() {
        // The manifest did not read: report only that, not "no CephCluster found".
        network.problems = Problems::default();
    }
    problems.absorb(std::mem::take(&mut network.problems));

    let nads_label = args.nads.as_ref().map(|p| p.display().to_string());
    let nads: Vec<Nad> = match (&args.nads, &nads_label) {
        (Some(path), Some(label)) => {
            let mut nad_problems = Problems::default();
            let nads = read_documents(path, &mut problems)
                .map(|docs| read_nads(&docs, &network.namespace, &mut nad_problems))
                .unwrap_or_default();
            problems.absorb_under(label, nad_problems);
            nads
        }
        _ => Vec::new(),
    };
    let resolved = match &nads_label {
        Some(label) => resolve(&network, &nads, label, &mut problems),
        None => Vec::new(),
    };
    check_ranges_cover(&network, &resolved, &mut problems);
    let nads_report = nads_label.is_some().then(|| {
        nads.iter()
            .map(|nad| NadReport {
                selected_by: resolved
                    .iter()
                    .filter(|(_, n)| n.namespaced_name() == nad.namespaced_name())
                    .map(|(net, _)| *net)
                    .collect(),
                capacity: nad.config.as_ref().and_then(|c| c.ipam.capacity),
                namespace: nad.namespace.clone(),
                name: nad.name.clone(),
                config: nad.config.clone(),
            })
            .collect()
    });

    let run_config = args
        .config
        .as_deref()
        .and_then(|p| read_run_config(p, &mut problems));
    // Counts from a run configuration that has errors would be made up: compare nothing then.
    let counts_known = args.config.is_none() || run_config.is_some();
    let capacity = args.nodes.filter(|_| counts_known).map(|nodes| {
        let (clients_per_node, counts_from) =
            per_node_clients(run_config.as_ref(), args.config.as_deref());
        if args.nads.is_none() {
            problems.warn(
                "--nodes",
                "capacity can only be compared with --nads; nothing was compared",
            );
        } else if resolved.is_empty() {
            problems.warn(
                "--nodes",
                "no network selects a NetworkAttachmentDefinition (the provider is not multus): \
                 nothing to compare",
            );
        }
        let checks = compare(&resolved, nodes, clients_per_node, &mut problems);
        CapacityReport {
            nodes,
            clients_per_node,
            counts_from,
            checks,
        }
    });

    network.problems = problems;
    SpecReport {
        file,
        valid: network.problems.is_valid(),
        network,
        nads: nads_report,
        capacity,
    }
}

fn read_run_config(path: &Path, problems: &mut Problems) -> Option<RunConfig> {
    let label = path.display().to_string();
    let text = read_text_or_report(path, problems)?;
    match parse_run_config(&text) {
        Ok((config, found)) => {
            let valid = found.is_valid();
            problems.absorb_under(&label, found);
            valid.then_some(config)
        }
        Err(e) => {
            problems.error(label, format!("not valid YAML: {e}"));
            None
        }
    }
}

/// The most demanding node type's clients per node: with several node types, every node is
/// assumed to be of that type, which bounds the demand from above.
fn per_node_clients(config: Option<&RunConfig>, path: Option<&Path>) -> (PerNodeClients, String) {
    let default = RunConfig::default();
    let config = config.unwrap_or(&default);
    let mut best: Option<(&str, PerNodeClients)> = None;
    for (name, t) in &config.node_types {
        let counts = PerNodeClients {
            public: t.osds_per_node + t.other_daemons_per_node,
            cluster: t.osds_per_node,
        };
        if best.is_none_or(|(_, b)| counts.public + counts.cluster > b.public + b.cluster) {
            best = Some((name, counts));
        }
    }
    let (name, counts) = best.unwrap_or((
        "none",
        PerNodeClients {
            public: 0,
            cluster: 0,
        },
    ));
    let source = match path {
        Some(p) => format!("node type {name:?} of {}", p.display()),
        None => format!("Rook's converged default, node type {name:?}"),
    };
    let source = if config.node_types.len() > 1 {
        format!("{source}, the most demanding, assumed on every node")
    } else {
        source
    };
    (counts, source)
}
