//! `multinet spec check`: reads the manifest, the NADs and the run configuration, and puts
//! together what `multinet_proto` says about them.

use std::path::{Path, PathBuf};

use multinet_proto::capacity::{
    CapacityCheck, Clients, PerNodeClients, Servers, check_ranges_cover, compare, resolve,
};
use multinet_proto::config::{RunConfig, parse_run_config};
use multinet_proto::field::{Problem, Problems};
use multinet_proto::multus::nad::{CniSummary, Nad, read_nads, resource_name};
use multinet_proto::network::{CephNetwork, NetworkCheck, check_manifest};
use multinet_proto::spec_fit::{Fit, check_selected_nads};
use serde::Serialize;

use crate::input::{read_documents, read_text_or_report};
use crate::spec_live::{LiveInputs, LiveOnlyReport, LiveReport};

/// Everything `spec check` reports. The JSON output is this structure.
#[derive(Debug, Serialize)]
pub struct SpecReport {
    /// The manifest checked.
    pub file: String,
    /// True when there is no error (warnings allowed).
    pub valid: bool,
    /// Why the spec, valid or not, will not work as configured (a NAD too small for the worst
    /// case, a family Ceph will not bind, an IPAM that hands out nothing): `spec check` exits 1
    /// for a valid spec with any of these. Left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub will_not_work: Vec<Problem>,
    /// The network section and what it turns into (`provider`, `networks`, annotations, …).
    #[serde(flatten)]
    pub network: NetworkCheck,
    /// The NADs read with `--nads`, each with what its config amounts to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nads: Option<Vec<NadReport>>,
    /// Capacity against the worst case (`--nodes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityReport>,
    /// The live state (`--pods`, `--ippools`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReport>,
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
    /// Its `k8s.v1.cni.cncf.io/resourceName` annotation (SR-IOV device-plugin resource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
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
    /// Live pods (`kubectl get pods -A -o yaml`) to check against what they requested.
    pub pods: Option<PathBuf>,
    /// whereabouts IPPools (`kubectl get ippools.whereabouts.cni.cncf.io -A -o yaml`).
    pub ippools: Option<PathBuf>,
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
    let nad_docs = match &args.nads {
        Some(path) => read_documents(path, &mut problems).unwrap_or_default(),
        None => Vec::new(),
    };
    let nads: Vec<Nad> = match &nads_label {
        Some(label) => {
            let mut nad_problems = Problems::default();
            let nads = read_nads(&nad_docs, &network.namespace, &mut nad_problems);
            problems.absorb_under(label, nad_problems);
            nads
        }
        None => Vec::new(),
    };
    let resource_of = |nad: &Nad| {
        nad_docs
            .iter()
            .find(|d| {
                d.pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    == Some(nad.name.as_str())
                    && d.pointer("/metadata/namespace")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or(&network.namespace)
                        == nad.namespace
            })
            .and_then(resource_name)
            .map(str::to_string)
    };
    let resolved = match &nads_label {
        Some(label) => resolve(&network, &nads, label, &mut problems),
        None => Vec::new(),
    };
    let mut fit = Fit::default();
    check_ranges_cover(&network, &resolved, &mut fit);
    check_selected_nads(&network, &resolved, resource_of, &mut problems, &mut fit);
    let nads_report = nads_label.is_some().then(|| {
        nads.iter()
            .map(|nad| NadReport {
                selected_by: resolved
                    .iter()
                    .filter(|(_, n)| n.namespaced_name() == nad.namespaced_name())
                    .map(|(net, _)| *net)
                    .collect(),
                capacity: nad.config.as_ref().and_then(|c| c.ipam.capacity),
                resource_name: resource_of(nad),
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
        // A mesh run's responders take an address on every node.
        let servers = if run_config.as_ref().is_some_and(|c| c.mesh) {
            Servers::PerNode
        } else {
            Servers::Single
        };
        // A shortfall will not work: it goes to `fit`, not among the warnings.
        let checks = compare(
            &resolved,
            nodes,
            Clients::PerNode(clients_per_node),
            servers,
            &mut Problems::default(),
        );
        for shortfall in checks.iter().filter_map(CapacityCheck::shortfall) {
            fit.fails(shortfall.field, shortfall.message);
        }
        CapacityReport {
            nodes,
            clients_per_node,
            counts_from,
            checks,
        }
    });

    let live = (args.pods.is_some() || args.ippools.is_some()).then(|| {
        crate::spec_live::check(
            LiveInputs {
                pods: args.pods.as_deref(),
                ippools: args.ippools.as_deref(),
                nads: &nads,
                capacity: capacity.as_ref().map(|c| c.checks.as_slice()),
                nodes_given: args.nodes.is_some(),
            },
            &mut problems,
            &mut fit,
        )
    });

    network.problems = problems;
    SpecReport {
        file,
        valid: network.problems.is_valid(),
        will_not_work: fit.will_not_work,
        network,
        nads: nads_report,
        capacity,
        live,
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

/// What `spec check` without a manifest is asked: only the live state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveOnlyRequest {
    /// Live pods (`kubectl get pods -A -o yaml`), `-` for standard input.
    pub pods: Option<PathBuf>,
    /// whereabouts IPPools.
    pub ippools: Option<PathBuf>,
    /// NADs, to know which carry no IPAM (their attachments have no address by design).
    pub nads: Option<PathBuf>,
    /// `--nodes` (without a manifest nothing can be compared: said as a warning).
    pub nodes: Option<u32>,
    /// `-c` (without a manifest there is no worst case to count: said as a warning).
    pub config: Option<PathBuf>,
    /// Namespace for NADs without one [default: rook-ceph].
    pub namespace: Option<String>,
}

/// Builds the report of `spec check --pods/--ippools` without a manifest (no output).
pub fn build_live_only(args: &LiveOnlyRequest) -> LiveOnlyReport {
    let mut problems = Problems::default();
    let mut fit = Fit::default();
    let nads = match &args.nads {
        Some(path) => {
            let docs = read_documents(path, &mut problems).unwrap_or_default();
            let namespace = args
                .namespace
                .as_deref()
                .unwrap_or(multinet_proto::network::DEFAULT_NAMESPACE);
            let mut found = Problems::default();
            let nads = read_nads(&docs, namespace, &mut found);
            problems.absorb_under(&path.display().to_string(), found);
            nads
        }
        None => Vec::new(),
    };
    let live = crate::spec_live::check(
        LiveInputs {
            pods: args.pods.as_deref(),
            ippools: args.ippools.as_deref(),
            nads: &nads,
            capacity: None,
            nodes_given: args.nodes.is_some(),
        },
        &mut problems,
        &mut fit,
    );
    // With --ippools, `check` says why --nodes compared nothing.
    if args.nodes.is_some() && args.ippools.is_none() {
        problems.warn(
            "--nodes",
            "the worst case is compared with the addresses free now only with the CephCluster \
             manifest, --nads and --ippools; nothing was compared",
        );
    }
    if let Some(config) = &args.config {
        problems.warn(
            "--config",
            format!(
                "{} was not read: without the CephCluster manifest there is no worst case to count",
                config.display()
            ),
        );
    }
    LiveOnlyReport {
        valid: problems.is_valid(),
        will_not_work: fit.will_not_work,
        live,
        problems,
    }
}
