//! Before a Kubernetes run creates anything: the permissions the run needs (in its
//! namespace, each NAD's namespace, and cluster-wide), another run in the namespace (live or
//! left over), the service accounts the run's pods use, the selected NADs (present,
//! parseable, with room for the worst case), and the nodes of each node type (Ready, not
//! cordoned, in no two node types).
//!
//! Every problem names the object and the reason. Problems of the user's input (a NAD that
//! does not exist or does not parse, a `serviceAccountName` that names no ServiceAccount,
//! overlapping node types) are [`Problem::Invalid`] — exit 22; problems of the cluster
//! (missing permissions, the `multinet` ServiceAccount of deploy/rbac.yaml missing, another
//! run, no usable node) are [`Problem::Cluster`] — exit 1.
//!
//! * [`permissions`] — what a run needs, asked with SelfSubjectAccessReviews.
//! * [`leftovers`] — another run's owner: live or left over.
//! * [`nodes`] — the nodes of each node type.

mod leftovers;
mod nodes;
mod permissions;

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::ListParams;
use kube::{Api, Client};
use multinet_proto::capacity::{self, CapacityCheck, PerNodeClients};
use multinet_proto::config::RunConfig;
use multinet_proto::field::Problems;
use multinet_proto::multus::nad::{Nad, read_config};
use multinet_proto::multus::selection::NetworkSelection;
use multinet_proto::network::CephNetwork;

pub use leftovers::{OtherRun, check_leftovers, describe as describe_other_run, judge};
pub use nodes::place_nodes;
pub use permissions::{PERMISSIONS, Permission, Scope, Who, check_permissions};

use super::api_error::{ApiResultExt, KubeError};
use super::nad::NetworkAttachmentDefinition;
use super::objects::COORDINATOR_SERVICE_ACCOUNT;
use crate::scheduler::NodePlan;

/// One problem found before the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The user's input is wrong (exit 22).
    Invalid(String),
    /// The cluster is not ready for the run (exit 1).
    Cluster(String),
}

/// What the preflight learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preflight {
    /// The nodes the run uses, with their node types.
    pub nodes: Vec<NodePlan>,
    /// Nodes left out, with why (NotReady, unreachable, cordoned, under pressure).
    pub left_out: Vec<String>,
    /// The selected NADs, their configs summarised.
    pub nads: Vec<(CephNetwork, Nad)>,
    /// Each NAD's capacity against the worst case.
    pub capacity: Vec<CapacityCheck>,
    /// Warnings (capacity, node types without nodes).
    pub warnings: Vec<String>,
}

/// The ServiceAccounts the run's pods run as, in the run's namespace: the one the run
/// configuration names for the test pods (`serviceAccountName`; missing: the input names
/// nothing, exit 22, like a NAD that does not exist), and — when `who` is the command outside
/// the cluster — `multinet`, the coordinator Job's (missing: deploy/rbac.yaml was not
/// applied, exit 1, like a missing permission). Without them Kubernetes refuses the pods
/// (the ServiceAccount admission plugin), which a run would learn only from events later.
pub async fn check_service_accounts(
    client: &Client,
    config: &RunConfig,
    who: Who,
    problems: &mut Vec<Problem>,
) -> Result<(), KubeError> {
    let namespace = &config.namespace;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let test_pods = &config.service_account_name;
    if !test_pods.is_empty() && api.get_opt(test_pods).await.said()?.is_none() {
        problems.push(Problem::Invalid(format!(
            "serviceAccountName: ServiceAccount {namespace}/{test_pods} does not exist; the test pods run as it (host checkers need it allowed hostNetwork): create it (`kubectl -n {namespace} create serviceaccount {test_pods}`) or name an existing one with --service-account"
        )));
    }
    if who == Who::Cli
        && test_pods != COORDINATOR_SERVICE_ACCOUNT
        && api
            .get_opt(COORDINATOR_SERVICE_ACCOUNT)
            .await
            .said()?
            .is_none()
    {
        problems.push(Problem::Cluster(format!(
            "ServiceAccount {namespace}/{COORDINATOR_SERVICE_ACCOUNT} does not exist; the coordinator Job runs as it: create it with its permissions (`kubectl apply -f deploy/rbac.yaml`, in namespace {namespace})"
        )));
    }
    Ok(())
}

/// Fetches and reads the selected NADs.
pub async fn check_nads(
    client: &Client,
    selections: &[(CephNetwork, NetworkSelection)],
    problems: &mut Vec<Problem>,
) -> Result<Vec<(CephNetwork, Nad)>, KubeError> {
    let mut nads = Vec::new();
    for (network, s) in selections {
        let namespace = s.namespace.clone().unwrap_or_default();
        let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), &namespace);
        let Some(found) = api.get_opt(&s.name).await.said()? else {
            problems.push(Problem::Invalid(format!(
                "{}Network: NetworkAttachmentDefinition {namespace}/{} does not exist",
                network.key(),
                s.name
            )));
            continue;
        };
        let label = format!("NetworkAttachmentDefinition {namespace}/{}", s.name);
        let config = match found.spec.config.as_deref().map(str::trim) {
            None | Some("") => {
                // Multus then reads a file of that name on each node; nothing to check here.
                None
            }
            Some(text) => {
                let mut found = Problems::default();
                let summary = read_config(&label, text, &mut found);
                for e in &found.errors {
                    problems.push(Problem::Invalid(e.to_string()));
                }
                summary
            }
        };
        nads.push((
            *network,
            Nad {
                namespace,
                name: s.name.clone(),
                config,
            },
        ));
    }
    Ok(nads)
}

/// What the cluster's NADs must hold addresses for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A validation run: its clients on every node.
    Run,
    /// `bench network`: one client pod at a time ([`BENCH_CLIENTS_AT_ONCE`] counted).
    Bench,
}

/// A bench's client pods holding addresses at once, at worst: the one measuring and the one
/// before it, deleted without waiting for its sandbox to release its addresses
/// ([`crate::backend::kube::KubeBackend::run_bench_client`]).
pub const BENCH_CLIENTS_AT_ONCE: u32 = 2;

/// The IPAM capacity of each NAD against the worst case on `nodes`: for a run, the most
/// demanding node type's clients assumed on every node, for a bench
/// [`BENCH_CLIENTS_AT_ONCE`] client pods; and the single server's addresses — in a mesh, a
/// responder's on every node.
pub fn capacity_warnings(
    config: &RunConfig,
    nads: &[(CephNetwork, Nad)],
    nodes: usize,
    purpose: Purpose,
    warnings: &mut Vec<String>,
) -> Vec<CapacityCheck> {
    let per_node = config
        .node_types
        .keys()
        .map(|t| config.clients_per_node(t))
        .fold(
            PerNodeClients {
                public: 0,
                cluster: 0,
            },
            |acc, (public, cluster)| PerNodeClients {
                public: acc.public.max(public),
                cluster: acc.cluster.max(cluster),
            },
        );
    let resolved: Vec<(CephNetwork, &Nad)> = nads.iter().map(|(n, nad)| (*n, nad)).collect();
    let mut found = Problems::default();
    let servers = if config.mesh {
        capacity::Servers::PerNode
    } else {
        capacity::Servers::Single
    };
    let clients = match purpose {
        Purpose::Run => capacity::Clients::PerNode(per_node),
        Purpose::Bench => capacity::Clients::AtOnce(BENCH_CLIENTS_AT_ONCE),
    };
    let checks = capacity::compare(&resolved, nodes as u32, clients, servers, &mut found);
    warnings.extend(found.warnings.iter().map(ToString::to_string));
    checks
}

/// Runs every check that needs the API; `who` says whose permissions to check; `own_run` is
/// the run being started, when its owner exists already; `purpose` whose addresses the NADs
/// must hold.
pub async fn preflight(
    client: &Client,
    config: &RunConfig,
    selections: &[(CephNetwork, NetworkSelection)],
    who: Who,
    own_run: Option<&str>,
    purpose: Purpose,
) -> Result<(Preflight, Vec<Problem>), KubeError> {
    let namespace = &config.namespace;
    let mut problems = Vec::new();
    let mut nad_namespaces: Vec<String> = selections
        .iter()
        .filter_map(|(_, s)| s.namespace.clone())
        .collect();
    nad_namespaces.sort();
    nad_namespaces.dedup();
    check_permissions(client, namespace, &nad_namespaces, who, &mut problems).await?;
    if !problems.is_empty() {
        // Without them the other checks would only add "forbidden" noise.
        return Ok((Preflight::default(), problems));
    }
    check_leftovers(client, namespace, own_run, &mut problems).await?;
    check_service_accounts(client, config, who, &mut problems).await?;
    let nads = check_nads(client, selections, &mut problems).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let all = nodes.list(&ListParams::default()).await.said()?.items;
    let (plans, left_out) = place_nodes(config, &all, &mut problems);
    let mut warnings = Vec::new();
    let capacity = capacity_warnings(config, &nads, plans.len(), purpose, &mut warnings);
    Ok((
        Preflight {
            nodes: plans,
            left_out,
            nads,
            capacity,
            warnings,
        },
        problems,
    ))
}
