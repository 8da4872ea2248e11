//! The NetworkAttachmentDefinition custom resource, as Multus defines it. Only `spec.config`
//! matters: a CNI configuration or conflist as a JSON string, parsed by
//! [`multinet_proto::multus::nad`].

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `spec` of a NetworkAttachmentDefinition.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1",
    kind = "NetworkAttachmentDefinition",
    plural = "network-attachment-definitions",
    namespaced,
    schema = "disabled"
)]
pub struct NetworkAttachmentDefinitionSpec {
    /// The CNI configuration, JSON. Absent means the config lives on the nodes under the
    /// NAD's name (Multus' on-disk lookup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}
