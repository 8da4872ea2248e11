//! The Multus / Network Plumbing WG formats: what pods ask for, what Multus reports back, and
//! what a NetworkAttachmentDefinition configures.
//!
//! * [`selection`] — the `k8s.v1.cni.cncf.io/networks` selection annotation (short and JSON).
//! * [`status`] — the `k8s.v1.cni.cncf.io/network-status` annotation as Multus writes it.
//! * [`nad`] — NetworkAttachmentDefinition objects and their CNI `spec.config`.
//! * [`pods`] — live pods: requested networks against `network-status`, duplicate addresses.
//! * [`ippool`] — whereabouts IPPool objects: leaked reservations, free addresses, overlaps.
//! * [`ipam`] — IPAM sections (whereabouts, host-local, static, dhcp) and their capacity.

pub mod ipam;
pub mod ippool;
pub mod nad;
pub mod pods;
pub mod selection;
pub mod status;

/// Annotation a pod carries to ask Multus for extra networks.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// Annotation Multus writes with the attachments it made.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";
/// The deprecated spelling older Multus versions also wrote.
pub const LEGACY_NETWORKS_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks-status";

/// The namespace and name of a live object read from `kubectl get -o yaml` (`doc` at `label`),
/// after checking it is a mapping of `api_version` (when it says one); `kind_phrase` names
/// the kind with its article (`a Pod`, `an IPPool`). The namespace defaults to `default`, as
/// the API server's does. `None` with the problem recorded when the object cannot be read.
pub(crate) fn live_object_name(
    label: &str,
    doc: &serde_json::Value,
    api_version: &str,
    kind_phrase: &str,
    problems: &mut crate::field::Problems,
) -> Option<(String, String)> {
    use serde_json::Value;
    if !doc.is_object() {
        problems.error(
            label,
            format!(
                "expected {} mapping, found {}",
                kind_phrase,
                crate::field::type_name(doc)
            ),
        );
        return None;
    }
    if let Some(api) = doc.get("apiVersion").and_then(Value::as_str)
        && api != api_version
    {
        problems.error(
            format!("{label}.apiVersion"),
            format!("expected {api_version:?} for {kind_phrase}, found {api:?}"),
        );
        return None;
    }
    let name_path = format!("{label}.metadata.name");
    let name = crate::field::Field::new(
        &name_path,
        doc.pointer("/metadata/name").unwrap_or(&Value::Null),
    )
    .required_string(problems, &format!("{kind_phrase} needs a name"))?
    .to_string();
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
        .to_string();
    Some((namespace, name))
}
