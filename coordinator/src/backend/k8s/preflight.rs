//! Before a Kubernetes run creates anything: a previous run's leftovers, the permissions the
//! run needs, the selected NADs (present, parseable, with room for the worst case), and the
//! nodes of each node type (Ready, not cordoned, in no two node types).
//!
//! Every problem names the object and the reason. Problems of the user's input (a NAD that
//! does not exist or does not parse, overlapping node types) are [`Problem::Invalid`] — exit
//! 22; problems of the cluster (missing permissions, leftovers, no usable node) are
//! [`Problem::Cluster`] — exit 1.

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Taint};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use multinet_proto::capacity::{self, CapacityCheck, PerNodeClients};
use multinet_proto::config::{RunConfig, TolerationOperator};
use multinet_proto::field::Problems;
use multinet_proto::multus::nad::{Nad, read_config};
use multinet_proto::multus::selection::NetworkSelection;
use multinet_proto::network::CephNetwork;

use super::nad::NetworkAttachmentDefinition;
use super::names::{ALL_RUNS_SELECTOR, COMPONENT, RUN};
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
    /// Nodes left out, with why (NotReady, cordoned).
    pub left_out: Vec<String>,
    /// The selected NADs, their configs summarised.
    pub nads: Vec<(CephNetwork, Nad)>,
    /// Each NAD's capacity against the worst case.
    pub capacity: Vec<CapacityCheck>,
    /// Warnings (capacity, node types without nodes).
    pub warnings: Vec<String>,
}

/// Who needs a permission: the `multinet` command outside the cluster (owner, coordinator
/// Job, its log and report), the coordinator in the cluster, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// `multinet run` outside the cluster.
    Cli,
    /// The coordinator, in the cluster.
    Coordinator,
    /// Both.
    Both,
}

/// A permission a run needs: what deploy/rbac.yaml grants, rule for rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// API group ("" for core).
    pub group: &'static str,
    /// Resource (plural).
    pub resource: &'static str,
    /// Subresource, if any.
    pub subresource: &'static str,
    /// Verb.
    pub verb: &'static str,
    /// Namespaced (checked in the run's namespace) or cluster-wide.
    pub namespaced: bool,
    /// Who uses it.
    pub who: Who,
}

const fn perm(
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verb: &'static str,
    namespaced: bool,
    who: Who,
) -> Permission {
    Permission {
        group,
        resource,
        subresource,
        verb,
        namespaced,
        who,
    }
}

/// Every permission of a run (deploy/rbac.yaml grants exactly these; a test keeps them equal).
pub const PERMISSIONS: &[Permission] = &[
    perm("", "configmaps", "", "create", true, Who::Both),
    perm("", "configmaps", "", "get", true, Who::Both),
    perm("", "configmaps", "", "list", true, Who::Both),
    perm("", "configmaps", "", "delete", true, Who::Both),
    perm("", "configmaps", "finalizers", "update", true, Who::Both),
    perm("", "secrets", "", "create", true, Who::Coordinator),
    perm("", "pods", "", "create", true, Who::Coordinator),
    perm("", "pods", "", "delete", true, Who::Coordinator),
    perm("", "pods", "", "get", true, Who::Cli),
    perm("", "pods", "", "list", true, Who::Both),
    perm("", "pods", "", "watch", true, Who::Both),
    perm("", "pods", "log", "get", true, Who::Cli),
    perm("", "events", "", "list", true, Who::Both),
    perm("", "events", "", "watch", true, Who::Both),
    perm("apps", "daemonsets", "", "create", true, Who::Coordinator),
    perm("apps", "daemonsets", "", "delete", true, Who::Coordinator),
    perm("batch", "jobs", "", "create", true, Who::Cli),
    perm(
        "k8s.cni.cncf.io",
        "network-attachment-definitions",
        "",
        "get",
        true,
        Who::Both,
    ),
    perm("", "nodes", "", "list", false, Who::Both),
    perm(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
        "create",
        false,
        Who::Both,
    ),
];

impl Permission {
    /// How the missing permission reads, with the RBAC rule that grants it.
    pub fn describe(&self, namespace: &str) -> String {
        let resource = if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        let place = if self.namespaced {
            format!("in namespace {namespace}")
        } else {
            "cluster-wide".into()
        };
        format!(
            "missing permission: {} {resource} ({group}) {place}; add to the {}: {{apiGroups: [\"{}\"], resources: [\"{resource}\"], verbs: [\"{}\"]}} (deploy/rbac.yaml has every rule)",
            self.verb,
            if self.namespaced {
                "Role"
            } else {
                "ClusterRole"
            },
            self.group,
            self.verb
        )
    }
}

/// Checks, one SelfSubjectAccessReview each, the permissions `who` uses.
pub async fn check_permissions(
    client: &Client,
    namespace: &str,
    who: Who,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<()> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for p in PERMISSIONS
        .iter()
        .filter(|p| p.who == who || p.who == Who::Both)
    {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(p.group.into()),
                    resource: Some(p.resource.into()),
                    subresource: (!p.subresource.is_empty()).then(|| p.subresource.into()),
                    verb: Some(p.verb.into()),
                    namespace: p.namespaced.then(|| namespace.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let answer = api.create(&PostParams::default(), &review).await?;
        if !answer.status.is_some_and(|s| s.allowed) {
            problems.push(Problem::Cluster(p.describe(namespace)));
        }
    }
    Ok(())
}

/// A previous run's owner still present in `namespace` (other than `own_run`'s: the
/// coordinator Job's run was created by the command that started it).
pub async fn check_leftovers(
    client: &Client,
    namespace: &str,
    own_run: Option<&str>,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let owners = api
        .list(&ListParams::default().labels(&format!("{ALL_RUNS_SELECTOR},{COMPONENT}=owner")))
        .await?;
    for cm in owners {
        let name = cm.metadata.name.unwrap_or_default();
        let run = cm
            .metadata
            .labels
            .and_then(|l| l.get(RUN).cloned())
            .unwrap_or_default();
        if own_run == Some(run.as_str()) {
            continue;
        }
        problems.push(Problem::Cluster(format!(
            "a previous run's objects are still present: ConfigMap {namespace}/{name} owns run {run}; remove them with `multinet cleanup -n {namespace} --run {run}`"
        )));
    }
    Ok(())
}

/// Fetches and reads the selected NADs.
pub async fn check_nads(
    client: &Client,
    selections: &[(CephNetwork, NetworkSelection)],
    problems: &mut Vec<Problem>,
) -> anyhow::Result<Vec<(CephNetwork, Nad)>> {
    let mut nads = Vec::new();
    for (network, s) in selections {
        let namespace = s.namespace.clone().unwrap_or_default();
        let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), &namespace);
        let Some(found) = api.get_opt(&s.name).await? else {
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

/// The IPAM capacity of each NAD against the worst case on `nodes`: the most demanding node
/// type's clients assumed on every node.
pub fn capacity_warnings(
    config: &RunConfig,
    nads: &[(CephNetwork, Nad)],
    nodes: usize,
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
    let checks = capacity::compare(&resolved, nodes as u32, per_node, &mut found);
    warnings.extend(found.warnings.iter().map(ToString::to_string));
    checks
}

/// The nodes of each node type; NotReady and cordoned nodes are left out (and said);
/// a node in two node types is an error naming both.
pub fn place_nodes(
    config: &RunConfig,
    nodes: &[Node],
    problems: &mut Vec<Problem>,
) -> (Vec<NodePlan>, Vec<String>) {
    let mut plans = Vec::new();
    let mut left_out = Vec::new();
    let mut per_type: BTreeMap<&str, usize> =
        config.node_types.keys().map(|t| (t.as_str(), 0)).collect();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let taints: &[Taint] = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[]);
        let types: Vec<&str> = config
            .node_types
            .iter()
            .filter(|(_, t)| {
                t.placement
                    .node_selector
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
                    && taints
                        .iter()
                        .filter(|taint| taint.effect == "NoSchedule" || taint.effect == "NoExecute")
                        .all(|taint| tolerated(&t.placement.tolerations, taint))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        let [only] = types[..] else {
            if let [a, b, ..] = types[..] {
                problems.push(Problem::Invalid(format!(
                    "node types must not overlap: node {name} matches node type {a:?} and node type {b:?}"
                )));
            }
            continue;
        };
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !ready {
            left_out.push(format!(
                "node {name} (node type {only}) is NotReady: left out"
            ));
            continue;
        }
        if cordoned {
            left_out.push(format!(
                "node {name} (node type {only}) is cordoned: left out"
            ));
            continue;
        }
        *per_type.entry(only).or_default() += 1;
        plans.push(NodePlan {
            name,
            node_type: only.to_string(),
        });
    }
    if let Some(server_type) = config.server_node_type()
        && per_type.get(server_type) == Some(&0)
    {
        problems.push(Problem::Cluster(format!(
            "node type {server_type:?}, where the server goes (most OSDs), has no Ready, schedulable node"
        )));
    }
    (plans, left_out)
}

/// Kubernetes' rule: a toleration tolerates a taint when the keys match (an empty key with
/// Exists matches every key), the value matches (Exists: any), and the effect matches (none:
/// every effect).
fn tolerated(tolerations: &[multinet_proto::config::Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let key =
            (t.key.is_empty() && t.operator == TolerationOperator::Exists) || t.key == taint.key;
        let value = t.operator == TolerationOperator::Exists
            || t.value == taint.value.clone().unwrap_or_default();
        let effect = t.effect.is_none_or(|e| format!("{e:?}") == taint.effect);
        key && value && effect
    })
}

/// Runs every check that needs the API; `who` says whose permissions to check; `own_run` is
/// the run being started, when its owner exists already.
pub async fn preflight(
    client: &Client,
    config: &RunConfig,
    selections: &[(CephNetwork, NetworkSelection)],
    who: Who,
    own_run: Option<&str>,
) -> anyhow::Result<(Preflight, Vec<Problem>)> {
    let namespace = &config.namespace;
    let mut problems = Vec::new();
    check_permissions(client, namespace, who, &mut problems).await?;
    if !problems.is_empty() {
        // Without them the other checks would only add "forbidden" noise.
        return Ok((Preflight::default(), problems));
    }
    check_leftovers(client, namespace, own_run, &mut problems).await?;
    let nads = check_nads(client, selections, &mut problems).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let all = nodes.list(&ListParams::default()).await?.items;
    let (plans, left_out) = place_nodes(config, &all, &mut problems);
    let mut warnings = Vec::new();
    let capacity = capacity_warnings(config, &nads, plans.len(), &mut warnings);
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
