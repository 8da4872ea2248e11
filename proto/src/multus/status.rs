//! The `k8s.v1.cni.cncf.io/network-status` annotation, as Multus really writes it.
//!
//! Multus writes a JSON list with one entry per attachment, the cluster default network
//! included. Entries for NADs are named `namespace/name`; `ips` carry no prefix length; the
//! default-route gateways are under `gateway` (the spec's `default-route` is read too); `mtu`
//! may be present; the default network's entry may lack `interface`. Older Multus also wrote the
//! deprecated `networks-status` key. An entry without addresses is an ordinary value here: the
//! caller decides what that means (usually an IPAM problem), nothing panics.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LEGACY_NETWORKS_STATUS_ANNOTATION, NETWORK_STATUS_ANNOTATION};
use crate::cidr::{Cidr, parse_ip};

/// One attachment as Multus reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// `namespace/nad` for NAD attachments; the CNI config name for the default network.
    pub name: String,
    /// Interface inside the pod; may be absent for the default network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Addresses, as Multus writes them (normally without prefix length).
    #[serde(default)]
    pub ips: Vec<String>,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Interface MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// True for the cluster's default network.
    #[serde(default)]
    pub default: bool,
    /// Default-route gateways (Multus's key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
    /// Default-route gateways (the spec's key).
    #[serde(
        default,
        rename = "default-route",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_route: Vec<String>,
    /// DNS settings, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
    /// Device information (SR-IOV etc.), passed through.
    #[serde(
        default,
        rename = "device-info",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_info: Option<Value>,
}

/// Why an annotation could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// Neither key is present.
    #[error(
        "the pod has no {NETWORK_STATUS_ANNOTATION} annotation yet (Multus writes it once the pod's networks are attached)"
    )]
    Missing,
    /// The value is not a list of status entries.
    #[error("{NETWORK_STATUS_ANNOTATION} is not a list of network status entries: {0}")]
    Malformed(String),
}

impl NetworkStatus {
    /// The addresses that parse, with or without a prefix length. Unparsable ones are skipped.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.ips
            .iter()
            .filter_map(|ip| parse_ip(ip).or_else(|| ip.parse::<Cidr>().ok().map(|c| c.addr)))
            .collect()
    }

    /// Whether this entry is the attachment of NAD `namespace/name`. A bare `name` in the entry
    /// is read as being in `default_namespace`.
    pub fn is_attachment_of(&self, namespace: &str, name: &str, default_namespace: &str) -> bool {
        match self.name.split_once('/') {
            Some((ns, n)) => ns == namespace && n == name,
            None => default_namespace == namespace && self.name == name,
        }
    }
}

/// Parses the annotation's value.
pub fn parse_network_status(text: &str) -> Result<Vec<NetworkStatus>, StatusError> {
    serde_json::from_str(text).map_err(|e| StatusError::Malformed(e.to_string()))
}

/// Reads a pod's status from its annotations, preferring the current key over the deprecated one.
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<NetworkStatus>, StatusError> {
    annotations
        .get(NETWORK_STATUS_ANNOTATION)
        .or_else(|| annotations.get(LEGACY_NETWORKS_STATUS_ANNOTATION))
        .ok_or(StatusError::Missing)
        .and_then(|text| parse_network_status(text))
}

/// The entry for the attachment on `interface`, if any.
pub fn find_by_interface<'a>(
    entries: &'a [NetworkStatus],
    interface: &str,
) -> Option<&'a NetworkStatus> {
    entries
        .iter()
        .find(|e| e.interface.as_deref() == Some(interface))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // As Multus writes it: pretty-printed, default entry without interface, ips without prefix.
    const STATUS: &str = r#"[{
    "name": "k8s-pod-network",
    "ips": ["10.244.1.7"],
    "default": true,
    "dns": {}
},{
    "name": "rook-ceph/public-net",
    "interface": "net1",
    "ips": ["192.168.20.5", "fd00::5"],
    "mac": "2a:00:00:00:00:01",
    "mtu": 1500,
    "dns": {},
    "gateway": ["192.168.20.1"]
},{
    "name": "rook-ceph/cluster-net",
    "interface": "net2",
    "mac": "2a:00:00:00:00:02",
    "dns": {}
}]"#;

    #[test]
    fn reads_what_multus_writes() {
        let entries = parse_network_status(STATUS).expect("valid");
        assert_eq!(entries.len(), 3);
        assert!(entries[0].default && entries[0].interface.is_none());
        let public = find_by_interface(&entries, "net1").expect("public");
        assert!(public.is_attachment_of("rook-ceph", "public-net", "x"));
        assert_eq!(public.addresses().len(), 2);
        assert_eq!(public.mtu, Some(1500));
        assert_eq!(public.gateway, ["192.168.20.1"]);
        let cluster = find_by_interface(&entries, "net2").expect("cluster");
        assert!(
            cluster.addresses().is_empty(),
            "no IPs is a value, not a panic"
        );
    }

    #[test]
    fn legacy_key_and_missing_annotation() {
        let mut annotations = BTreeMap::new();
        assert_eq!(from_annotations(&annotations), Err(StatusError::Missing));
        annotations.insert(
            LEGACY_NETWORKS_STATUS_ANNOTATION.to_string(),
            STATUS.to_string(),
        );
        assert_eq!(from_annotations(&annotations).expect("legacy").len(), 3);
        annotations.insert(NETWORK_STATUS_ANNOTATION.to_string(), "[]".to_string());
        assert!(
            from_annotations(&annotations)
                .expect("current wins")
                .is_empty()
        );
        assert!(matches!(
            parse_network_status("{\"name\": 1}"),
            Err(StatusError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,120}") {
            if let Ok(entries) = parse_network_status(&text) {
                for e in entries { let _ = e.addresses(); }
            }
        }
    }
}
