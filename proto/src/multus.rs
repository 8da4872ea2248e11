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
