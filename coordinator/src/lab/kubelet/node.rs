//! The lab's nodes as Kubernetes Node objects: registered with the topology's labels and
//! taints, their status (Ready, capacity, addresses, the kubelet endpoint) and Lease renewed
//! as a kubelet does, so the scheduler places pods on them and the node lifecycle controller
//! keeps them Ready.
//!
//! Rules followed (Kubernetes `pkg/kubelet/kubelet_node_status.go`, `registerWithAPIServer`,
//! `setNodeStatus`; `pkg/kubelet/nodelease`): the node registers itself, reports its status
//! every `nodeStatusUpdateFrequency` (10 s) and renews its Lease in `kube-node-lease` (duration
//! 40 s, the node lifecycle controller's default grace period) every 10 s.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::backend::kube::api_error::{KubeError, said};
use crate::lab::topology::LabNode;

/// Why a node could not be registered or its heartbeat not be sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused to create the Node.
    #[error("registering node {node}")]
    Register {
        /// The node.
        node: String,
        /// What the API server said.
        #[source]
        source: KubeError,
    },
    /// The Node exists, and could not be read.
    #[error("reading node {node}")]
    Read {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The Node exists, and its labels and taints could not be brought to the topology's.
    #[error("updating node {node}")]
    Update {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The Node's status could not be written.
    #[error("reporting node {node}'s status")]
    Status {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The Node's Lease could not be renewed or created.
    #[error("renewing node {node}'s Lease")]
    Lease {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How often status and Lease are renewed (the kubelet's defaults).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Lease duration the kubelet asks for (`nodeLeaseDurationSeconds`).
const LEASE_SECONDS: i32 = 40;

/// Who writes the node objects (field manager).
pub const MANAGER: &str = "multinet-lab";

/// What a node reports of itself.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// Where the API server reaches the node's kubelet endpoint (loopback).
    pub address: std::net::IpAddr,
    /// The kubelet endpoint's port.
    pub port: u16,
    /// False for a node emulating a kubelet that is not ready.
    pub ready: bool,
}

/// The Node object a lab node registers as.
pub fn node_object(node: &LabNode) -> Node {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([
        ("kubernetes.io/hostname".into(), node.name.clone()),
        ("kubernetes.io/os".into(), "linux".into()),
        (
            "kubernetes.io/arch".into(),
            std::env::consts::ARCH.replace("x86_64", "amd64"),
        ),
        ("multinet.io/lab-node".into(), "true".into()),
    ]);
    labels.extend(node.labels.clone());
    let taints: Vec<Taint> = node
        .taints
        .iter()
        .map(|t| Taint {
            key: t.key.clone(),
            value: (!t.value.is_empty()).then(|| t.value.clone()),
            effect: t.effect.name().to_string(),
            ..Taint::default()
        })
        .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then_some(taints),
            ..NodeSpec::default()
        }),
        ..Node::default()
    }
}

/// The node's status as a merge patch: conditions, capacity, addresses, kubelet endpoint.
pub fn status_patch(name: &str, facts: &NodeFacts, now: Timestamp) -> serde_json::Value {
    let ready = if facts.ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
               "message": "kubelet is posting ready status (multinet lab)"})
    } else {
        // What a kubelet says when its runtime's network is not ready (no CNI config yet).
        json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady",
               "message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:the lab runs this node as not ready (multinet lab up --not-ready)"})
    };
    let mut conditions = vec![ready];
    for (kind, reason) in [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
    ] {
        conditions.push(json!({"type": kind, "status": "False", "reason": reason}));
    }
    let stamp = now.to_string();
    for c in &mut conditions {
        c["lastHeartbeatTime"] = json!(stamp);
        c["lastTransitionTime"] = json!(stamp);
    }
    let resources =
        json!({"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"});
    json!({
        "status": {
            "conditions": conditions,
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": facts.address.to_string()},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": facts.port}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "multinet lab",
                "containerRuntimeVersion": "multinet-lab://1",
                "kubeletVersion": concat!("v0.0.0-multinet-lab-", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "", "operatingSystem": "linux",
                "architecture": std::env::consts::ARCH.replace("x86_64", "amd64"),
            },
        }
    })
}

/// Registers `node`: creates its Node object, or brings an existing one's labels and taints
/// to the topology's (a node re-registering after a restart, as a kubelet does).
pub async fn register(nodes: &Api<Node>, node: &LabNode) -> Result<Node> {
    let object = node_object(node);
    match nodes.create(&PostParams::default(), &object).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // The node exists (the lab served before): its labels and the topology's taints
            // are brought up to date; the taints Kubernetes itself keeps (`node.kubernetes.io/…`,
            // e.g. unreachable while nobody served it) stay for their controllers to lift.
            let existing = nodes.get(&node.name).await.map_err(|source| Error::Read {
                node: node.name.clone(),
                source,
            })?;
            let mut taints: Vec<Taint> = existing
                .spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.key.starts_with("node.kubernetes.io/"))
                .collect();
            taints.extend(
                object
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.clone())
                    .unwrap_or_default(),
            );
            let patch = json!({
                "metadata": {"labels": object.metadata.labels},
                "spec": {"taints": taints},
            });
            nodes
                .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| Error::Update {
                    node: node.name.clone(),
                    source,
                })
        }
        Err(e) => Err(Error::Register {
            node: node.name.clone(),
            source: said(e),
        }),
    }
}

/// Reports the node's status and renews its Lease once.
pub async fn heartbeat(
    nodes: &Api<Node>,
    leases: &Api<Lease>,
    node: &Node,
    facts: &NodeFacts,
) -> Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let now = Timestamp::now();
    nodes
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&status_patch(&name, facts, now)),
        )
        .await
        .map_err(|source| Error::Status {
            node: name.clone(),
            source,
        })?;
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: name.clone(),
                uid: node.metadata.uid.clone().unwrap_or_default(),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(name.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    };
    // Renewed with one request; created the first time (404).
    let patch = json!({"spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": MicroTime(now)}});
    let renewed = match leases
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 404 => leases
            .create(&PostParams::default(), &lease)
            .await
            .map(drop),
        other => other.map(drop),
    };
    renewed.map_err(|source| Error::Lease { node: name, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::Taint as LabTaint;
    use multinet_proto::config::TaintEffect;

    #[test]
    fn a_node_registers_with_the_topology_labels_and_taints_and_the_standard_labels() {
        let node = LabNode {
            name: "n2".into(),
            labels: BTreeMap::from([("role".to_string(), "storage".to_string())]),
            taints: vec![LabTaint {
                key: "storage".into(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
            }],
        };
        let object = node_object(&node);
        let labels = object.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("role").map(String::as_str), Some("storage"));
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("n2")
        );
        let taints = object.spec.and_then(|s| s.taints).unwrap_or_default();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "storage");
        assert_eq!(taints[0].effect, "NoSchedule");
        assert_eq!(taints[0].value, None);
    }

    #[test]
    fn status_says_ready_or_why_not_and_where_the_kubelet_endpoint_is() {
        let facts = NodeFacts {
            address: "127.0.0.1".parse().expect("address"),
            port: 41234,
            ready: false,
        };
        let patch = status_patch("n1", &facts, Timestamp::UNIX_EPOCH);
        let status = &patch["status"];
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["status"], "False");
        assert_eq!(status["conditions"][0]["reason"], "KubeletNotReady");
        assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 41234);
        assert_eq!(status["addresses"][0]["address"], "127.0.0.1");
        let ready = status_patch(
            "n1",
            &NodeFacts {
                ready: true,
                ..facts
            },
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(ready["status"]["conditions"][0]["status"], "True");
    }
}
