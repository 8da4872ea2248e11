//! What Multus does for a pod, done by the lab: the `k8s.v1.cni.cncf.io/networks` selection
//! resolved against the NetworkAttachmentDefinitions in the API, each delegated to its CNI
//! config (run through the real plugins by [`Lab::attach`](crate::lab::build::Lab)), and the
//! `k8s.v1.cni.cncf.io/network-status` annotation written as Multus writes it.
//!
//! Rules followed (Multus `pkg/k8sclient/k8sclient.go`, `GetPodNetwork` / `parsePodNetworkAnnotation`;
//! `pkg/multus/multus.go`, `CmdAdd`; `pkg/netutils` status): a selection without a namespace
//! is in the pod's namespace; an interface not requested is `net<N>`, N counting the
//! selections from 1; a NAD that is missing or has no config fails the sandbox; the error
//! message names the pod and the NAD as Multus does
//! (`[ns/pod/uid:nad]: error adding container to network "nad": <plugin error>`), and the
//! kubelet wraps it into `FailedCreatePodSandBox`.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use multinet_proto::multus::selection::{NetworkSelection, parse_selections};
use multinet_proto::multus::status::NetworkStatus;
use multinet_proto::multus::{NETWORK_STATUS_ANNOTATION, NETWORKS_ANNOTATION};

use super::Kubelet;
use crate::backend::kube::api_error::{KubeError, said};
use crate::backend::kube::nad::NetworkAttachmentDefinition;
use crate::lab::sandbox::Sandbox;

/// Why `network-status` could not be written on a pod (the other steps fail in Multus' own
/// words, as text: see [`delegates`] and [`attach_all`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statuses could not be encoded as JSON.
    #[error("encoding {NETWORK_STATUS_ANNOTATION}")]
    Encode(#[source] serde_json::Error),
    /// The API server refused the annotation.
    #[error("writing {NETWORK_STATUS_ANNOTATION}")]
    Write(#[source] KubeError),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The name the pod network has in `network-status` (the cluster's default network).
pub const POD_NETWORK: &str = "multinet-lab-pod-network";

/// One NAD the pod asks for, resolved.
#[derive(Debug, Clone)]
pub struct Delegate {
    /// `namespace/name`.
    pub key: String,
    /// The NAD's name.
    pub name: String,
    /// Interface in the pod.
    pub ifname: String,
    /// `spec.config`.
    pub config: String,
    /// The MTU the config gives its interface, as Multus reports it in `network-status`.
    pub mtu: Option<u32>,
}

/// The pod's selections, resolved against the API. An error is the sandbox's failure, in
/// Multus' words.
pub async fn delegates(kubelet: &Kubelet, pod: &Pod) -> Result<Vec<Delegate>, String> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let Some(text) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NETWORKS_ANNOTATION))
    else {
        return Ok(Vec::new());
    };
    let selections = parse_selections(text, &namespace)
        .map_err(|e| format!("Multus: parsing the pod's {NETWORKS_ANNOTATION} annotation: {e}"))?
        .selections;
    let mut out = Vec::new();
    for (i, selection) in selections.iter().enumerate() {
        out.push(resolve(kubelet, pod, selection, i).await?);
    }
    Ok(out)
}

async fn resolve(
    kubelet: &Kubelet,
    pod: &Pod,
    selection: &NetworkSelection,
    index: usize,
) -> Result<Delegate, String> {
    let ns = selection.namespace.clone().unwrap_or_default();
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(kubelet.client.clone(), &ns);
    let key = format!("{ns}/{}", selection.name);
    let pod_ref = pod_ref(pod);
    let nad = api.get(&selection.name).await.map_err(|e| {
        format!(
            "Multus: [{pod_ref}]: error getting pod network {key}: cannot find a network-attachment-definition ({}) in namespace ({ns}): {}",
            selection.name,
            said(e)
        )
    })?;
    let config = nad.spec.config.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        format!(
            "Multus: [{pod_ref}]: network-attachment-definition {key} has no spec.config (a config on the node's disk is not something the lab has)"
        )
    })?;
    let mtu = multinet_proto::multus::nad::read_config(
        &key,
        &config,
        &mut multinet_proto::field::Problems::default(),
    )
    .and_then(|c| c.mtu);
    Ok(Delegate {
        key,
        name: selection.name.clone(),
        ifname: selection
            .interface
            .clone()
            .unwrap_or_else(|| format!("net{}", index + 1)),
        mtu,
        config,
    })
}

/// `namespace/pod/uid` as Multus names a pod in its errors.
pub fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}/{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Attaches the sandbox to each delegate in order; the statuses for `network-status`, or the
/// first failure in Multus' words (the sandbox is then removed by the caller, and retried).
pub async fn attach_all(
    kubelet: &Kubelet,
    pod: &Pod,
    sandbox: &Sandbox,
    delegates: &[Delegate],
) -> Result<Vec<NetworkStatus>, String> {
    let mut statuses = vec![NetworkStatus {
        name: POD_NETWORK.into(),
        interface: Some("eth0".into()),
        ips: vec![sandbox.pod_ip.to_string()],
        default: true,
        dns: Some(serde_json::json!({})),
        ..NetworkStatus::default()
    }];
    for d in delegates {
        let (sb, ifname, name, config) = (
            sandbox.clone(),
            d.ifname.clone(),
            d.name.clone(),
            d.config.clone(),
        );
        let attached = kubelet
            .with_lab(move |lab| lab.attach(&sb, &ifname, &name, &config))
            .await
            .map_err(|e| {
                format!(
                    "plugin type=\"multus\" name=\"multus-cni-network\" failed (add): [{}:{}]: error adding container to network \"{}\": {}",
                    pod_ref(pod),
                    d.name,
                    d.name,
                    multinet_agent::chain(&e)
                )
            })?;
        statuses.push(NetworkStatus {
            name: d.key.clone(),
            interface: Some(d.ifname.clone()),
            ips: attached.ips.iter().map(ToString::to_string).collect(),
            mac: attached.mac,
            mtu: d.mtu,
            dns: Some(serde_json::json!({})),
            ..NetworkStatus::default()
        });
    }
    Ok(statuses)
}

/// Writes `network-status` on the pod (a merge patch of the annotation, as Multus does).
pub async fn write_status(kubelet: &Kubelet, pod: &Pod, statuses: &[NetworkStatus]) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(
        kubelet.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let text = serde_json::to_string_pretty(statuses).map_err(Error::Encode)?;
    let patch = serde_json::json!({"metadata": {"annotations": {NETWORK_STATUS_ANNOTATION: text}}});
    api.patch(
        pod.metadata.name.as_deref().unwrap_or_default(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .map_err(|e| Error::Write(said(e)))?;
    Ok(())
}
