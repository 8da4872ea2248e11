//! The seed's API for a storage cluster's networks: a CephCluster's `spec.network`.
//!
//! [`check_manifest`] finds the network section in a stream of YAML documents (a CephCluster, or
//! a bare document whose top-level key is `network:`), validates it by Rook's rules with every
//! problem named by field path, and derives what pods and Ceph need: the Multus annotation for
//! OSDs (public then cluster) and for other daemons (public only), host interfaces, Ceph's
//! `public_network` / `cluster_network`, and the messenger bind flags.
//!
//! Pure: the caller reads files and renders the [`NetworkCheck`].

mod derive;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cidr::Cidr;
use crate::field::{Field, OwnedPath, Problems};
use crate::multus::selection::{NetworkSelection, parse_single_selection};
use crate::names::interface_name;

pub use derive::{CephNetworks, bind_flags};

/// The namespace Rook uses when nothing else names one.
pub const DEFAULT_NAMESPACE: &str = "rook-ceph";

/// How daemons are networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// `""`: the cluster's default pod network.
    Default,
    /// `host`: the host's network namespace (also legacy `hostNetwork: true`).
    Host,
    /// `multus`: extra interfaces through Network Attachment Definitions.
    Multus,
}

/// Ceph's two networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CephNetwork {
    /// Clients, mons, CSI: every daemon is on it.
    Public,
    /// OSD replication and recovery: only OSDs are on it.
    Cluster,
}

impl CephNetwork {
    /// Both, public first.
    pub const ALL: [CephNetwork; 2] = [CephNetwork::Public, CephNetwork::Cluster];

    /// The selector key.
    pub fn key(self) -> &'static str {
        match self {
            CephNetwork::Public => "public",
            CephNetwork::Cluster => "cluster",
        }
    }
}

/// The `ipFamily` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IpFamily {
    /// Ceph binds IPv4.
    IPv4,
    /// Ceph binds IPv6.
    IPv6,
}

/// What one of Ceph's networks is attached through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkChoice {
    /// The selector exactly as written.
    pub selector: String,
    /// The parsed Multus selection (provider multus). In JSON, `namespace`, `name` and
    /// `interface` are always present (`interface` null when Multus picks the name).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "selection_view"
    )]
    pub selection: Option<NetworkSelection>,
    /// The host interface name (provider host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_interface: Option<String>,
}

fn selection_view<S: serde::Serializer>(
    selection: &Option<NetworkSelection>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut view = serde_json::to_value(selection).map_err(serde::ser::Error::custom)?;
    if let Some(map) = view.as_object_mut() {
        map.entry("interface").or_insert(Value::Null);
    }
    view.serialize(serializer)
}

/// Ceph's networks, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Networks {
    /// The public network, when selected.
    pub public: Option<NetworkChoice>,
    /// The cluster network, when selected.
    pub cluster: Option<NetworkChoice>,
}

impl Networks {
    /// The choice for `network`.
    pub fn get(&self, network: CephNetwork) -> Option<&NetworkChoice> {
        match network {
            CephNetwork::Public => self.public.as_ref(),
            CephNetwork::Cluster => self.cluster.as_ref(),
        }
    }

    fn slot(&mut self, network: CephNetwork) -> &mut Option<NetworkChoice> {
        match network {
            CephNetwork::Public => &mut self.public,
            CephNetwork::Cluster => &mut self.cluster,
        }
    }
}

/// Everything `spec check` reports about a network section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkCheck {
    /// Where the section was found (`spec.network` or `network`).
    pub source: String,
    /// The cluster namespace selections default to.
    pub namespace: String,
    /// The effective provider (legacy `hostNetwork: true` reads as `host`).
    pub provider: Provider,
    /// Ceph's networks.
    pub networks: Networks,
    /// `k8s.v1.cni.cncf.io/networks` of an OSD pod (public then cluster); multus only.
    pub osd_annotation: Option<String>,
    /// `k8s.v1.cni.cncf.io/networks` of any other daemon (public only); multus only.
    pub daemon_annotation: Option<String>,
    /// Ceph's `public_network` / `cluster_network`.
    pub ceph: CephNetworks,
    /// `--ms-bind-ipv4` / `--ms-bind-ipv6` daemon flags from ipFamily / dualStack.
    pub ms_bind_flags: Vec<String>,
    /// The `ipFamily` setting, when given.
    pub ip_family: Option<IpFamily>,
    /// The `dualStack` setting.
    pub dual_stack: bool,
    /// Address ranges per network, parsed.
    #[serde(skip)]
    pub address_ranges: AddressRanges,
    /// Errors and warnings, by field.
    #[serde(flatten)]
    pub problems: Problems,
}

/// `addressRanges`, parsed (unparsable entries left out and reported).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRanges {
    /// Ranges of the public network, as written.
    pub public: Vec<Cidr>,
    /// Ranges of the cluster network, as written.
    pub cluster: Vec<Cidr>,
}

impl AddressRanges {
    /// The ranges of `network`.
    pub fn get(&self, network: CephNetwork) -> &[Cidr] {
        match network {
            CephNetwork::Public => &self.public,
            CephNetwork::Cluster => &self.cluster,
        }
    }
}

const NETWORK_KEYS: &[&str] = &[
    "provider",
    "selectors",
    "interfaces",
    "addressRanges",
    "connections",
    "hostNetwork",
    "ipFamily",
    "dualStack",
    "multiClusterService",
];

/// Finds and checks the network section in `docs` (a YAML stream already parsed).
///
/// The first CephCluster wins; otherwise the first document with a top-level `network:` key.
/// `namespace_flag` is used when the manifest names no namespace; then [`DEFAULT_NAMESPACE`].
pub fn check_manifest(docs: &[Value], namespace_flag: Option<&str>) -> NetworkCheck {
    let is_ceph_cluster = |d: &&Value| d.get("kind").and_then(Value::as_str) == Some("CephCluster");
    if let Some(cluster) = docs.iter().find(is_ceph_cluster) {
        let namespace = cluster
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .or(namespace_flag)
            .unwrap_or(DEFAULT_NAMESPACE);
        let network = cluster.pointer("/spec/network").unwrap_or(&Value::Null);
        return check_network(Field::new("spec.network", network), namespace);
    }
    let namespace = namespace_flag.unwrap_or(DEFAULT_NAMESPACE);
    if let Some(doc) = docs.iter().find(|d| d.get("network").is_some()) {
        return check_network(Field::new("network", &doc["network"]), namespace);
    }
    let mut check = check_network(Field::new("network", &Value::Null), namespace);
    check.problems.error(
        "",
        "found no CephCluster (kind: CephCluster) and no document with a top-level `network:` key",
    );
    check
}

/// Checks one network section at `field` (a mapping or null).
pub fn check_network(field: Field<'_, '_>, namespace: &str) -> NetworkCheck {
    let mut problems = Problems::default();
    let mut check = NetworkCheck {
        source: field.path().to_string(),
        namespace: namespace.to_string(),
        provider: Provider::Default,
        networks: Networks::default(),
        osd_annotation: None,
        daemon_annotation: None,
        ceph: CephNetworks::default(),
        ms_bind_flags: Vec::new(),
        ip_family: None,
        dual_stack: false,
        address_ranges: AddressRanges::default(),
        problems: Problems::default(),
    };
    let Some(map) = field.mapping(&mut problems) else {
        check.problems = problems;
        return check;
    };
    for key in map.keys().filter(|k| !NETWORK_KEYS.contains(&k.as_str())) {
        problems.warn(
            field.child_path(key).as_str(),
            "unknown key; Rook ignores it (check its spelling)",
        );
    }
    let get = |key: &str| map.get(key).unwrap_or(&Value::Null);

    let provider_path = field.child_path("provider");
    let written = provider_path.at(get("provider")).string(&mut problems);
    let host_path = field.child_path("hostNetwork");
    let host_network = host_path
        .at(get("hostNetwork"))
        .boolean(&mut problems)
        .unwrap_or(false);
    check.provider = match written.unwrap_or("") {
        "" if host_network => Provider::Host,
        "" => Provider::Default,
        "host" => Provider::Host,
        "multus" => Provider::Multus,
        other => {
            problems.error(
                provider_path.as_str(),
                format!("must be \"\", \"host\" or \"multus\", found {other:?}"),
            );
            Provider::Default
        }
    };
    if host_network && !written.unwrap_or("").is_empty() {
        problems.error(
            host_path.as_str(),
            format!(
                "the legacy hostNetwork setting is only valid with provider \"\" (it then means \
                 provider host), not with provider {:?}",
                written.unwrap_or("")
            ),
        );
    }

    read_selectors(field, map, &mut check, &mut problems);
    let ranges_given = read_address_ranges(field, get("addressRanges"), &mut check, &mut problems);

    let family_path = field.child_path("ipFamily");
    check.ip_family = match family_path.at(get("ipFamily")).string(&mut problems) {
        None | Some("") => None,
        Some("IPv4") => Some(IpFamily::IPv4),
        Some("IPv6") => Some(IpFamily::IPv6),
        Some(other) => {
            problems.error(
                family_path.as_str(),
                format!("must be \"IPv4\" or \"IPv6\", found {other:?}"),
            );
            None
        }
    };
    check.dual_stack = field
        .child_path("dualStack")
        .at(get("dualStack"))
        .boolean(&mut problems)
        .unwrap_or(false);
    read_connections(field, get("connections"), &mut problems);

    derive::derive_outputs(field, &mut check, &ranges_given, &mut problems);
    check.problems = problems;
    check
}

fn read_selectors(
    field: Field<'_, '_>,
    map: &serde_json::Map<String, Value>,
    check: &mut NetworkCheck,
    problems: &mut Problems,
) {
    // The seed calls them `interfaces`; Rook calls them `selectors`. Either, not both.
    let (key, value) = match (map.get("selectors"), map.get("interfaces")) {
        (Some(_), Some(_)) => {
            problems.error(
                field.child_path("interfaces").as_str(),
                "`interfaces` is an alias of `selectors`; give one of them, not both",
            );
            ("selectors", &map["selectors"])
        }
        (Some(v), None) => ("selectors", v),
        (None, Some(v)) => ("interfaces", v),
        (None, None) => ("selectors", &Value::Null),
    };
    let path = field.child_path(key);
    let selectors_field = path.at(value);
    let Some(selectors) = selectors_field.mapping(problems) else {
        return;
    };
    for (name, raw) in selectors {
        let entry_path = selectors_field.child_path(name);
        let Some(text) = entry_path.at(raw).scalar_string(problems) else {
            continue;
        };
        let network = match name.as_str() {
            "public" => CephNetwork::Public,
            "cluster" => CephNetwork::Cluster,
            _ => {
                problems.warn(
                    entry_path.as_str(),
                    "only `public` and `cluster` select networks; Rook accepts and ignores other keys",
                );
                continue;
            }
        };
        if text.trim().is_empty() {
            continue; // Rook reads an empty selector as no selection.
        }
        let mut choice = NetworkChoice {
            selector: text.clone(),
            selection: None,
            host_interface: None,
        };
        match check.provider {
            Provider::Multus => match parse_single_selection(&text, &check.namespace) {
                Ok((selection, warnings)) => {
                    for w in warnings {
                        problems.warn(entry_path.as_str(), w);
                    }
                    choice.selection = Some(selection);
                }
                Err(e) => problems.error(
                    entry_path.as_str(),
                    format!(
                        "{e}; expected [namespace/]name[@interface] or a JSON list with one \
                         selection element"
                    ),
                ),
            },
            // An interface name is taken as written: " eth1 " names no interface.
            Provider::Host => match interface_name(&text) {
                Ok(()) => choice.host_interface = Some(text.clone()),
                Err(e) => problems.error(
                    entry_path.as_str(),
                    format!("with provider host a selector is a host interface name: {e}"),
                ),
            },
            Provider::Default => problems.warn(
                entry_path.as_str(),
                "ignored: selectors take effect only with provider host or multus",
            ),
        }
        *check.networks.slot(network) = Some(choice);
    }
    if check.provider == Provider::Multus
        && check.networks.public.is_none()
        && check.networks.cluster.is_none()
        && problems
            .errors
            .iter()
            .all(|e| !e.field.starts_with(path.as_str()))
    {
        problems.error(
            path.as_str(),
            "provider multus needs at least one network selector: `public`, `cluster` or both",
        );
    }
}

/// Reads `addressRanges` into `check` (entries that do not parse are errors, left out);
/// returns the networks with at least one entry as written.
fn read_address_ranges(
    field: Field<'_, '_>,
    value: &Value,
    check: &mut NetworkCheck,
    problems: &mut Problems,
) -> Vec<CephNetwork> {
    let mut given = Vec::new();
    let path = field.child_path("addressRanges");
    let ranges_field = path.at(value);
    let Some(map) = ranges_field.mapping(problems) else {
        return given;
    };
    for key in map.keys().filter(|k| *k != "public" && *k != "cluster") {
        problems.warn(
            ranges_field.child_path(key).as_str(),
            "only `public` and `cluster` address ranges exist; this key is ignored",
        );
    }
    for network in CephNetwork::ALL {
        let list_path = ranges_field.child_path(network.key());
        let Some(items) = list_path
            .at(map.get(network.key()).unwrap_or(&Value::Null))
            .list(problems)
        else {
            continue;
        };
        if !items.is_empty() {
            given.push(network);
        }
        let target = match network {
            CephNetwork::Public => &mut check.address_ranges.public,
            CephNetwork::Cluster => &mut check.address_ranges.cluster,
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = OwnedPath::index(list_path.as_str(), i);
            let Some(text) = item_path.at(item).string(problems) else {
                problems.error(
                    item_path.as_str(),
                    "expected a CIDR such as 192.168.20.0/24",
                );
                continue;
            };
            match text.trim().parse::<Cidr>() {
                Ok(cidr) => target.push(cidr),
                Err(e) => problems.error(item_path.as_str(), e.to_string()),
            }
        }
    }
    given
}

fn read_connections(field: Field<'_, '_>, value: &Value, problems: &mut Problems) {
    let path = field.child_path("connections");
    let connections = path.at(value);
    let Some(map) = connections.mapping(problems) else {
        return;
    };
    for (key, v) in map {
        let child = connections.child_path(key);
        match key.as_str() {
            "requireMsgr2" => {
                child.at(v).boolean(problems);
            }
            "encryption" | "compression" => {
                let inner = child.at(v);
                if let Some(m) = inner.mapping(problems)
                    && let Some(enabled) = m.get("enabled")
                {
                    inner.child_path("enabled").at(enabled).boolean(problems);
                }
            }
            _ => problems.warn(child.as_str(), "unknown key; Rook ignores it"),
        }
    }
}

#[cfg(test)]
mod tests;
