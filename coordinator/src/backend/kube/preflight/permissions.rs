//! The permissions a run needs, and asking the API server for each (one
//! SelfSubjectAccessReview per verb, resource and namespace) before anything is created.
//! deploy/rbac.yaml grants exactly [`PERMISSIONS`] (a test keeps them equal).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

use super::Problem;
use crate::backend::kube::api_error::{ApiResultExt, KubeError};

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

/// Where a permission is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In the run's namespace (deploy/rbac.yaml's Role).
    Run,
    /// In the namespace of each selected NAD: a NAD may live in another namespace than the
    /// run's, and reading it needs the permission there (deploy/rbac.yaml's Role covers the
    /// run's namespace; another needs a Role and RoleBinding of its own).
    Nads,
    /// Cluster-wide (deploy/rbac.yaml's ClusterRole).
    Cluster,
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
    /// Where it is checked.
    pub scope: Scope,
    /// Who uses it.
    pub who: Who,
}

const fn perm(
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verb: &'static str,
    scope: Scope,
    who: Who,
) -> Permission {
    Permission {
        group,
        resource,
        subresource,
        verb,
        scope,
        who,
    }
}

/// Every permission of a run (deploy/rbac.yaml grants exactly these; a test keeps them equal).
pub const PERMISSIONS: &[Permission] = &[
    perm("", "configmaps", "", "create", Scope::Run, Who::Both),
    perm("", "configmaps", "", "get", Scope::Run, Who::Both),
    perm("", "configmaps", "", "list", Scope::Run, Who::Both),
    perm("", "configmaps", "", "delete", Scope::Run, Who::Both),
    // A soak's coordinator rewrites its stored report every reportInterval.
    perm("", "configmaps", "", "update", Scope::Run, Who::Coordinator),
    perm(
        "",
        "configmaps",
        "finalizers",
        "update",
        Scope::Run,
        Who::Both,
    ),
    perm("", "secrets", "", "create", Scope::Run, Who::Coordinator),
    // A soak's Service in front of the coordinator: made with the Job, read by the
    // coordinator for the address its agents dial.
    perm("", "services", "", "create", Scope::Run, Who::Cli),
    perm("", "services", "", "get", Scope::Run, Who::Coordinator),
    perm("", "serviceaccounts", "", "get", Scope::Run, Who::Both),
    perm("", "pods", "", "create", Scope::Run, Who::Coordinator),
    perm("", "pods", "", "delete", Scope::Run, Who::Coordinator),
    perm("", "pods", "", "get", Scope::Run, Who::Cli),
    perm("", "pods", "", "list", Scope::Run, Who::Both),
    perm("", "pods", "", "watch", Scope::Run, Who::Both),
    perm("", "pods", "log", "get", Scope::Run, Who::Cli),
    perm("", "events", "", "list", Scope::Run, Who::Both),
    perm("", "events", "", "watch", Scope::Run, Who::Both),
    perm(
        "apps",
        "daemonsets",
        "",
        "create",
        Scope::Run,
        Who::Coordinator,
    ),
    perm(
        "apps",
        "daemonsets",
        "",
        "delete",
        Scope::Run,
        Who::Coordinator,
    ),
    perm("batch", "jobs", "", "create", Scope::Run, Who::Cli),
    perm("batch", "jobs", "", "get", Scope::Run, Who::Both),
    perm(
        "k8s.cni.cncf.io",
        "network-attachment-definitions",
        "",
        "get",
        Scope::Nads,
        Who::Both,
    ),
    perm("", "nodes", "", "list", Scope::Cluster, Who::Both),
    perm(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "",
        "create",
        Scope::Cluster,
        Who::Both,
    ),
];

impl Permission {
    /// The resource as RBAC names it (`pods/log`).
    pub fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// How the missing permission reads when it is missing in `namespace` (ignored for a
    /// cluster-wide one) of a run in `run_namespace`, with the RBAC rule that grants it.
    pub fn describe(&self, namespace: &str, run_namespace: &str) -> String {
        let resource = self.rbac_resource();
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        let rule = format!(
            "{{apiGroups: [\"{}\"], resources: [\"{resource}\"], verbs: [\"{}\"]}}",
            self.group, self.verb
        );
        let missing = format!("missing permission: {} {resource} ({group})", self.verb);
        match self.scope {
            Scope::Cluster => format!(
                "{missing} cluster-wide; add to the ClusterRole: {rule} (deploy/rbac.yaml has every rule)"
            ),
            _ if namespace == run_namespace => format!(
                "{missing} in namespace {namespace}; add to the Role: {rule} (deploy/rbac.yaml has every rule)"
            ),
            _ => format!(
                "{missing} in namespace {namespace}, where a selected NetworkAttachmentDefinition is; deploy/rbac.yaml's Role grants it in {run_namespace} only: add a Role in namespace {namespace} with {rule} and a RoleBinding there to the same subjects as deploy/rbac.yaml's RoleBinding"
            ),
        }
    }
}

/// Checks, one SelfSubjectAccessReview each, the permissions `who` uses: in the run's
/// namespace, in each of `nad_namespaces` (the selected NADs'), or cluster-wide.
pub async fn check_permissions(
    client: &Client,
    namespace: &str,
    nad_namespaces: &[String],
    who: Who,
    problems: &mut Vec<Problem>,
) -> Result<(), KubeError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for p in PERMISSIONS
        .iter()
        .filter(|p| p.who == who || p.who == Who::Both)
    {
        let places: Vec<Option<&str>> = match p.scope {
            Scope::Run => vec![Some(namespace)],
            Scope::Nads => nad_namespaces.iter().map(|n| Some(n.as_str())).collect(),
            Scope::Cluster => vec![None],
        };
        for place in places {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(p.group.into()),
                        resource: Some(p.resource.into()),
                        subresource: (!p.subresource.is_empty()).then(|| p.subresource.into()),
                        verb: Some(p.verb.into()),
                        namespace: place.map(String::from),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api.create(&PostParams::default(), &review).await.said()?;
            if !answer.status.is_some_and(|s| s.allowed) {
                problems.push(Problem::Cluster(
                    p.describe(place.unwrap_or(namespace), namespace),
                ));
            }
        }
    }
    Ok(())
}
