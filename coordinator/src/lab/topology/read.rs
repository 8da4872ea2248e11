//! Reading a topology document: each section into its values, every problem at its field,
//! names checked against what the file defines. Defaults come from [`LabTopology::default`];
//! the rules about values (name patterns, the lab's address space, MTU bounds) are here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use multinet_proto::cidr::{Cidr, Family, from_u128, parse_ip, to_u128};
use multinet_proto::config::{GoDuration, TaintEffect, parse_run_config};
use multinet_proto::field::{Field, OwnedPath, Problems, type_name};
use multinet_proto::multus::nad::{NAD_KIND, read_nads};
use multinet_proto::network::CephNetwork;
use serde_json::{Map, Value, json};

use super::{
    ConfigSource, Fault, LabNetwork, LabNode, LabTopology, MAX_MTU, MAX_NAME_LEN,
    MAX_NODE_NAME_LEN, MAX_NODES, MIN_MTU, NodeRef, SAFE_V4, SAFE_V6, SUPPORTED_CNI, Taint,
    Underlay, default_range, numbered_nodes, prefixed,
};

const TOP_LEVEL_KEYS: [&str; 7] = [
    "name",
    "nodes",
    "networks",
    "underlay",
    "server_node",
    "faults",
    "config",
];

pub(super) fn read_topology(document: &Value, problems: &mut Problems) -> LabTopology {
    let mut topology = LabTopology::default();
    let Some(map) = Field::new("", document).mapping(problems) else {
        return topology;
    };
    for key in map.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            warn_unknown(&OwnedPath::child("", key), &TOP_LEVEL_KEYS, problems);
        }
    }
    let get = |key: &str| {
        (
            OwnedPath::child("", key),
            map.get(key).unwrap_or(&Value::Null),
        )
    };

    let (path, value) = get("name");
    if let Some(name) = path.at(value).scalar_string(problems) {
        if short_name(&name, MAX_NAME_LEN) {
            topology.name = name;
        } else {
            problems.error(
                path.as_str(),
                format!(
                    "{name:?} is not a lab name: 1 to {MAX_NAME_LEN} lowercase letters or digits \
                     (it prefixes every namespace and interface name, which Linux limits to 15 \
                     characters)"
                ),
            );
        }
    }

    let (path, value) = get("nodes");
    if let Some(nodes) = read_nodes(path.at(value), problems) {
        topology.nodes = nodes;
    }

    let (path, value) = get("networks");
    if let Some(networks) = read_networks(path.at(value), problems) {
        topology.networks = networks;
    }

    // A network written but wrong is still "defined" for the sections that name it, so one
    // mistake in a network is reported once, not again at every fault on that network.
    let written_networks = value.as_object().map(|networks| {
        CephNetwork::ALL
            .into_iter()
            .filter(|n| networks.contains_key(n.key()))
            .collect::<BTreeSet<_>>()
    });
    let known = Known {
        nodes: topology.nodes.iter().map(|n| n.name.clone()).collect(),
        networks: written_networks
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| topology.networks.keys().copied().collect()),
    };

    let (path, value) = get("underlay");
    topology.underlay = read_underlay(path.at(value), &known, problems);

    let (path, value) = get("server_node");
    if let Some(name) = path.at(value).scalar_string(problems) {
        topology.server_node = known.node(path.at(value), &name, problems);
    }

    let (path, value) = get("faults");
    topology.faults = read_faults(path.at(value), &known, problems);

    let (path, value) = get("config");
    topology.config = read_config_source(path.at(value), &topology, problems);
    topology
}

/// `[a-z0-9]{1,max}`.
fn short_name(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn warn_unknown(path: &OwnedPath, known: &[&str], problems: &mut Problems) {
    problems.warn(
        path.as_str(),
        format!(
            "unknown key, ignored; the keys read here are: {}",
            known.join(", ")
        ),
    );
}

/// Warns about every key of `map` not in `known`.
fn warn_unknown_keys(
    field: Field<'_, '_>,
    map: &Map<String, Value>,
    known: &[&str],
    problems: &mut Problems,
) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            warn_unknown(&field.child_path(key), known, problems);
        }
    }
}

fn get<'v>(map: &'v Map<String, Value>, key: &str) -> &'v Value {
    map.get(key).unwrap_or(&Value::Null)
}

/// An MTU within [`MIN_MTU`]..=[`MAX_MTU`]. Null gives `None`.
fn read_mtu(field: Field<'_, '_>, problems: &mut Problems) -> Option<u32> {
    let mtu = field.count(problems)?;
    if (MIN_MTU..=MAX_MTU).contains(&mtu) {
        Some(mtu)
    } else {
        problems.error(
            field.path(),
            format!("an MTU must be from {MIN_MTU} to {MAX_MTU}, found {mtu}"),
        );
        None
    }
}

// ---- nodes ----

fn read_nodes(field: Field<'_, '_>, problems: &mut Problems) -> Option<Vec<LabNode>> {
    match field.value() {
        Value::Null => None,
        Value::Number(_) => {
            let count = field.count(problems)?;
            if (1..=MAX_NODES).contains(&count) {
                Some(numbered_nodes(count))
            } else {
                problems.error(
                    field.path(),
                    format!("a lab has from 1 to {MAX_NODES} nodes, found {count}"),
                );
                None
            }
        }
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_NODES as usize {
                problems.error(
                    field.path(),
                    format!(
                        "a lab has from 1 to {MAX_NODES} nodes, found {}",
                        items.len()
                    ),
                );
            }
            let mut nodes: Vec<LabNode> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let path = OwnedPath::index(field.path(), index);
                let Some((node, name_path)) = read_node(path.at(item), problems) else {
                    continue;
                };
                if nodes.iter().any(|n| n.name == node.name) {
                    problems.error(
                        name_path.as_str(),
                        format!("node {:?} is defined twice", node.name),
                    );
                    continue;
                }
                nodes.push(node);
            }
            (!nodes.is_empty()).then_some(nodes)
        }
        other => {
            problems.error(
                field.path(),
                format!(
                    "expected a node count or a list of nodes, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// One node and the path of its name (the item itself for the bare-string form).
fn read_node(field: Field<'_, '_>, problems: &mut Problems) -> Option<(LabNode, OwnedPath)> {
    // A bare string is a node without labels or taints.
    let (name_path, name_value, map) = match field.value() {
        Value::String(_) => (OwnedPath::child("", field.path()), field.value(), None),
        _ => {
            let map = field.mapping(problems)?;
            warn_unknown_keys(field, map, &["name", "labels", "taints"], problems);
            (field.child_path("name"), get(map, "name"), Some(map))
        }
    };
    let name = name_path
        .at(name_value)
        .required_string(problems, "every node needs a name")?;
    if !short_name(name, MAX_NODE_NAME_LEN) {
        problems.error(
            name_path.as_str(),
            format!(
                "{name:?} is not a node name: 1 to {MAX_NODE_NAME_LEN} lowercase letters or \
                 digits (it goes into interface names, which Linux limits to 15 characters)"
            ),
        );
        return None;
    }
    let mut node = LabNode {
        name: name.to_string(),
        labels: BTreeMap::new(),
        taints: Vec::new(),
    };
    let Some(map) = map else {
        return Some((node, name_path));
    };
    let labels_path = field.child_path("labels");
    let labels = labels_path.at(get(map, "labels"));
    for (key, value) in labels.mapping(problems).into_iter().flatten() {
        let path = labels.child_path(key);
        if key.is_empty() {
            problems.error(path.as_str(), "a label key must not be empty");
            continue;
        }
        let text = if value.is_null() {
            Some(String::new())
        } else {
            path.at(value).scalar_string(problems)
        };
        if let Some(text) = text {
            node.labels.insert(key.clone(), text);
        }
    }
    let taints_path = field.child_path("taints");
    let taints = taints_path.at(get(map, "taints"));
    for (index, item) in taints.list(problems).unwrap_or_default().iter().enumerate() {
        let path = OwnedPath::index(taints.path(), index);
        if let Some(taint) = read_taint(path.at(item), problems) {
            node.taints.push(taint);
        }
    }
    Some((node, name_path))
}

fn read_taint(field: Field<'_, '_>, problems: &mut Problems) -> Option<Taint> {
    let map = field.mapping(problems)?;
    warn_unknown_keys(field, map, &["key", "value", "effect"], problems);
    let key_path = field.child_path("key");
    let key = key_path
        .at(get(map, "key"))
        .required_string(problems, "every taint needs a key");
    if key == Some("") {
        problems.error(key_path.as_str(), "a taint key must not be empty");
    }
    let value = field
        .child_path("value")
        .at(get(map, "value"))
        .scalar_string(problems)
        .unwrap_or_default();
    let effect_path = field.child_path("effect");
    let effect = match effect_path.at(get(map, "effect")).required_string(
        problems,
        "every taint needs an effect: NoSchedule, PreferNoSchedule or NoExecute",
    )? {
        "NoSchedule" => TaintEffect::NoSchedule,
        "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
        "NoExecute" => TaintEffect::NoExecute,
        other => {
            problems.error(
                effect_path.as_str(),
                format!(
                    "expected \"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\" (case \
                     matters), found {other:?}"
                ),
            );
            return None;
        }
    };
    Some(Taint {
        key: key.filter(|k| !k.is_empty())?.to_string(),
        value,
        effect,
    })
}

// ---- networks ----

fn read_networks(
    field: Field<'_, '_>,
    problems: &mut Problems,
) -> Option<BTreeMap<CephNetwork, LabNetwork>> {
    if field.value().is_null() {
        return None;
    }
    let map = field.mapping(problems)?;
    let mut networks = BTreeMap::new();
    // Every range of each network, for the overlap check (a NAD may have several).
    let mut ranges: Vec<(CephNetwork, Cidr)> = Vec::new();
    for (key, value) in map {
        let path = field.child_path(key);
        let network = match key.as_str() {
            "public" => CephNetwork::Public,
            "cluster" => CephNetwork::Cluster,
            _ => {
                problems.error(
                    path.as_str(),
                    "unknown network: the lab builds Ceph's `public` and `cluster` networks",
                );
                continue;
            }
        };
        let read = if is_nad(value) {
            read_nad_network(path.at(value), problems)
        } else {
            read_shorthand(network, path.at(value), problems).map(|n| {
                let subnet = n.subnet;
                (n, vec![subnet])
            })
        };
        if let Some((lab, cidrs)) = read {
            ranges.extend(cidrs.into_iter().map(|c| (network, c)));
            networks.insert(network, lab);
        }
    }
    let public: Vec<Cidr> = ranges_of(&ranges, CephNetwork::Public);
    for cluster in ranges_of(&ranges, CephNetwork::Cluster) {
        if let Some(public) = public.iter().find(|p| overlaps(p, &cluster)) {
            problems.error(
                "networks.cluster.subnet",
                format!(
                    "{} overlaps the public network's {}: pods could not tell the networks apart",
                    cluster.network(),
                    public.network()
                ),
            );
        }
    }
    if map.is_empty() {
        problems.error(
            field.path(),
            "expected at least one of `public` and `cluster` (leave `networks` out for both \
             with their defaults)",
        );
    }
    (!networks.is_empty()).then_some(networks)
}

fn ranges_of(ranges: &[(CephNetwork, Cidr)], network: CephNetwork) -> Vec<Cidr> {
    ranges
        .iter()
        .filter(|(n, _)| *n == network)
        .map(|(_, c)| *c)
        .collect()
}

/// A mapping that looks like a Kubernetes object rather than the shorthand.
fn is_nad(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        ["kind", "apiVersion", "metadata", "spec"]
            .iter()
            .any(|k| m.contains_key(*k))
    })
}

fn contains(outer: &Cidr, inner: &Cidr) -> bool {
    outer.family() == inner.family()
        && outer.first() <= inner.first()
        && inner.last() <= outer.last()
}

fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.family() == b.family() && a.first() <= b.last() && b.first() <= a.last()
}

/// The network safety rule: lab subnets stay in the ranges reserved for it.
fn check_safe(path: &str, subnet: &Cidr, problems: &mut Problems) -> bool {
    let safe = match subnet.family() {
        Family::V4 => SAFE_V4,
        Family::V6 => SAFE_V6,
    };
    if contains(&safe, subnet) {
        return true;
    }
    problems.error(
        path,
        format!(
            "{} is outside the lab's address space: lab subnets must lie in {SAFE_V4} (IPv4) \
             or {SAFE_V6} (IPv6), so a lab never shadows a real network",
            subnet.network()
        ),
    );
    false
}

const SHORTHAND_KEYS: [&str; 5] = ["cni", "subnet", "range_start", "range_end", "mtu"];

fn read_shorthand(
    network: CephNetwork,
    field: Field<'_, '_>,
    problems: &mut Problems,
) -> Option<LabNetwork> {
    let map = field.mapping(problems)?;
    warn_unknown_keys(field, map, &SHORTHAND_KEYS, problems);
    let defaults = LabNetwork::default_for(network);
    let errors_before = problems.errors.len();

    let cni_path = field.child_path("cni");
    let cni = cni_path
        .at(get(map, "cni"))
        .string(problems)
        .unwrap_or(&defaults.cni_type);
    if !SUPPORTED_CNI.contains(&cni) {
        problems.error(
            cni_path.as_str(),
            format!("the lab runs {}; found {cni:?}", SUPPORTED_CNI.join(", ")),
        );
    }

    let subnet_path = field.child_path("subnet");
    let subnet_given = !get(map, "subnet").is_null();
    let subnet = match subnet_path.at(get(map, "subnet")).string(problems) {
        None => Some(defaults.subnet),
        Some(text) => match text.parse::<Cidr>() {
            Ok(cidr) if check_safe(subnet_path.as_str(), &cidr, problems) => Some(cidr),
            Ok(_) => None,
            Err(why) => {
                problems.error(subnet_path.as_str(), why.to_string());
                None
            }
        },
    };

    let range = match subnet {
        Some(subnet) if subnet_given => default_range(&subnet).or_else(|| {
            if get(map, "range_start").is_null() || get(map, "range_end").is_null() {
                problems.error(
                    subnet_path.as_str(),
                    format!(
                        "{} is too small for a default range; give range_start and range_end",
                        subnet.network()
                    ),
                );
            }
            Some((subnet.addr, subnet.addr))
        }),
        Some(_) => Some((defaults.range_start, defaults.range_end)),
        None => None,
    };
    let start =
        read_range_end(field, "range_start", subnet, problems).or(range.map(|(start, _)| start));
    let end = read_range_end(field, "range_end", subnet, problems).or(range.map(|(_, end)| end));
    if let (Some(start), Some(end)) = (start, end)
        && Family::of(start) == Family::of(end)
        && to_u128(start) > to_u128(end)
    {
        problems.error(
            field.child_path("range_start").as_str(),
            format!("the range starts at {start}, after its end {end}"),
        );
    }

    let mtu = read_mtu(field.child_path("mtu").at(get(map, "mtu")), problems);
    if mtu.is_some() && cni == "host-device" {
        problems.warn(
            field.child_path("mtu").as_str(),
            "host-device moves the node's interface into the pod as it is and sets no MTU; \
             set the uplink's MTU under `underlay` instead",
        );
    }

    if problems.errors.len() > errors_before {
        return None;
    }
    Some(LabNetwork::shorthand(
        network, cni, subnet?, start?, end?, mtu,
    ))
}

/// `range_start` or `range_end`: an address of the subnet's family inside it.
fn read_range_end(
    field: Field<'_, '_>,
    key: &str,
    subnet: Option<Cidr>,
    problems: &mut Problems,
) -> Option<IpAddr> {
    let map = field.value().as_object()?;
    let path = field.child_path(key);
    let text = path.at(get(map, key)).string(problems)?;
    let Some(addr) = parse_ip(text) else {
        problems.error(
            path.as_str(),
            format!("{text:?} is not an IPv4 or IPv6 address"),
        );
        return None;
    };
    if let Some(subnet) = subnet
        && !subnet.contains(addr)
    {
        problems.error(
            path.as_str(),
            format!("{addr} is outside the subnet {}", subnet.network()),
        );
        return None;
    }
    Some(addr)
}

/// A NetworkAttachmentDefinition written in place of the shorthand. Its problems are filed
/// under the network's path (`networks.public.spec.config.mode`).
fn read_nad_network(
    field: Field<'_, '_>,
    problems: &mut Problems,
) -> Option<(LabNetwork, Vec<Cidr>)> {
    let value = field.value();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != NAD_KIND {
        problems.error(
            field.child_path("kind").as_str(),
            format!(
                "expected {NAD_KIND:?} (or the shorthand `{{cni, subnet, range_start, range_end, \
                 mtu}}` without Kubernetes keys), found {kind:?}"
            ),
        );
        return None;
    }
    let mut local = Problems::default();
    let nad = read_nads(std::slice::from_ref(value), "", &mut local)
        .into_iter()
        .next();
    let valid = local.is_valid();
    for mut problem in local.errors {
        problem.field = rehome(&problem.field, field.path());
        problems.errors.push(problem);
    }
    for mut problem in local.warnings {
        problem.field = rehome(&problem.field, field.path());
        problems.warnings.push(problem);
    }
    let nad = nad?;
    let config_path = field.child_path("spec").as_str().to_string() + ".config";
    let Some(summary) = nad.config else {
        if valid {
            problems.error(
                config_path,
                "the lab runs the CNI config as written, so a NAD here needs one in spec.config",
            );
        }
        return None;
    };
    let config_json = value
        .pointer("/spec/config")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !SUPPORTED_CNI.contains(&summary.plugin.as_str()) {
        problems.error(
            format!("{config_path}.type"),
            format!(
                "the lab runs {}; found {:?}",
                SUPPORTED_CNI.join(", "),
                summary.plugin
            ),
        );
    }
    let ipam_path = format!("{config_path}.ipam");
    let mut cidrs = Vec::new();
    for range in &summary.ipam.ranges {
        match range.cidr.parse::<Cidr>() {
            Ok(cidr) => {
                if check_safe(&ipam_path, &cidr, problems) {
                    cidrs.push(cidr);
                }
            }
            Err(why) => problems.error(ipam_path.as_str(), why.to_string()),
        }
    }
    if summary.ipam.ranges.is_empty() {
        problems.error(
            ipam_path,
            format!(
                "the lab needs an IPAM with an address range (host-local or whereabouts); found \
                 {}",
                summary.ipam.ipam_type.as_deref().unwrap_or("none")
            ),
        );
        return None;
    }
    if !valid {
        return None;
    }
    let subnet = *cidrs.first()?;
    let first = summary.ipam.ranges.first()?;
    let bound = |text: &Option<String>, fallback: u128| {
        text.as_deref()
            .and_then(parse_ip)
            .unwrap_or_else(|| from_u128(subnet.family(), fallback))
    };
    Some((
        LabNetwork {
            cni_type: summary.plugin,
            subnet,
            range_start: bound(&first.first, subnet.first()),
            range_end: bound(&first.last, subnet.last()),
            config_json,
            mtu: summary.mtu,
            from_nad: true,
            nad_name: Some(nad.name),
            ipam_type: summary.ipam.ipam_type,
        },
        cidrs,
    ))
}

/// Moves a problem `read_nads` filed (`document 1.apiVersion`,
/// `NetworkAttachmentDefinition ns/name: spec.config.mode`) under the network's path.
fn rehome(field: &str, base: &str) -> String {
    if let Some(rest) = field.strip_prefix("document 1.") {
        return format!("{base}.{rest}");
    }
    match field.split_once(": ") {
        Some((object, rest)) if object.starts_with(NAD_KIND) => format!("{base}.{rest}"),
        _ => prefixed(base, field),
    }
}

// ---- references to nodes and networks ----

/// What the file defines, for checking the names other sections use.
struct Known {
    nodes: BTreeSet<String>,
    networks: BTreeSet<CephNetwork>,
}

impl Known {
    /// A defined node's name.
    fn node(&self, field: Field<'_, '_>, name: &str, problems: &mut Problems) -> Option<String> {
        if self.nodes.contains(name) {
            Some(name.to_string())
        } else {
            problems.error(
                field.path(),
                format!(
                    "no node is called {name:?}; the nodes are {}",
                    self.nodes.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
            None
        }
    }

    /// A required node name at `key` of `map`.
    fn node_at(
        &self,
        field: Field<'_, '_>,
        map: &Map<String, Value>,
        key: &str,
        problems: &mut Problems,
    ) -> Option<String> {
        let path = field.child_path(key);
        let name = path
            .at(get(map, key))
            .required_string(problems, "expected a node name")?;
        self.node(path.at(get(map, key)), name, problems)
    }

    /// A node name or `*` at `key` of `map`.
    fn node_or_any(
        &self,
        field: Field<'_, '_>,
        map: &Map<String, Value>,
        key: &str,
        problems: &mut Problems,
    ) -> Option<NodeRef> {
        if get(map, key).as_str() == Some("*") {
            return Some(NodeRef::Any);
        }
        self.node_at(field, map, key, problems).map(NodeRef::Node)
    }

    /// A defined network's key at `key` of `map`.
    fn network_at(
        &self,
        field: Field<'_, '_>,
        map: &Map<String, Value>,
        key: &str,
        problems: &mut Problems,
    ) -> Option<CephNetwork> {
        let path = field.child_path(key);
        let name = path
            .at(get(map, key))
            .required_string(problems, "expected `public` or `cluster`")?;
        let network = match name {
            "public" => CephNetwork::Public,
            "cluster" => CephNetwork::Cluster,
            other => {
                problems.error(
                    path.as_str(),
                    format!("expected `public` or `cluster`, found {other:?}"),
                );
                return None;
            }
        };
        if self.networks.contains(&network) {
            Some(network)
        } else {
            problems.error(
                path.as_str(),
                format!("the lab has no {name} network (see `networks`)"),
            );
            None
        }
    }
}

// ---- underlay ----

fn read_underlay(field: Field<'_, '_>, known: &Known, problems: &mut Problems) -> Vec<Underlay> {
    let mut underlay: Vec<Underlay> = Vec::new();
    for (index, item) in field.list(problems).unwrap_or_default().iter().enumerate() {
        let path = OwnedPath::index(field.path(), index);
        let item_field = path.at(item);
        let Some(map) = item_field.mapping(problems) else {
            continue;
        };
        warn_unknown_keys(
            item_field,
            map,
            &["node", "network", "mtu", "present"],
            problems,
        );
        let node = known.node_at(item_field, map, "node", problems);
        let network = known.network_at(item_field, map, "network", problems);
        let mtu = read_mtu(item_field.child_path("mtu").at(get(map, "mtu")), problems);
        let present = item_field
            .child_path("present")
            .at(get(map, "present"))
            .boolean(problems)
            .unwrap_or(true);
        let (Some(node), Some(network)) = (node, network) else {
            continue;
        };
        if underlay
            .iter()
            .any(|u| u.node == node && u.network == network)
        {
            problems.error(
                path.as_str(),
                format!(
                    "node {node:?} already has an entry for the {} network",
                    network.key()
                ),
            );
            continue;
        }
        underlay.push(Underlay {
            node,
            network,
            mtu,
            present,
        });
    }
    underlay
}

// ---- faults ----

const FAULT_KINDS: [&str; 4] = ["block", "loss", "host-route-missing", "kill-agent"];

fn read_faults(field: Field<'_, '_>, known: &Known, problems: &mut Problems) -> Vec<Fault> {
    let mut faults = Vec::new();
    for (index, item) in field.list(problems).unwrap_or_default().iter().enumerate() {
        let path = OwnedPath::index(field.path(), index);
        if let Some(fault) = read_fault(path.at(item), known, problems) {
            faults.push(fault);
        }
    }
    faults
}

fn read_fault(field: Field<'_, '_>, known: &Known, problems: &mut Problems) -> Option<Fault> {
    let map = field.mapping(problems)?;
    let mut entries = map.iter();
    let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
        problems.error(
            field.path(),
            format!(
                "a fault is a mapping with exactly one key, one of {}",
                FAULT_KINDS.join(", ")
            ),
        );
        return None;
    };
    let path = field.child_path(kind);
    let body_field = path.at(body);
    if !FAULT_KINDS.contains(&kind.as_str()) {
        problems.error(
            path.as_str(),
            format!("unknown fault; the lab injects {}", FAULT_KINDS.join(", ")),
        );
        return None;
    }
    let body = body_field.mapping(problems)?;
    match kind.as_str() {
        "block" => {
            warn_unknown_keys(body_field, body, &["network", "from", "to"], problems);
            let network = known.network_at(body_field, body, "network", problems);
            let from = known.node_or_any(body_field, body, "from", problems);
            let to = known.node_or_any(body_field, body, "to", problems);
            let (network, from, to) = (network?, from?, to?);
            if let (NodeRef::Node(a), NodeRef::Node(b)) = (&from, &to)
                && a == b
            {
                problems.warn(
                    path.as_str(),
                    format!(
                        "traffic between pods of node {a:?} does not cross the underlay, so \
                         this block has no effect"
                    ),
                );
            }
            Some(Fault::Block { network, from, to })
        }
        "loss" => {
            warn_unknown_keys(body_field, body, &["network", "node", "percent"], problems);
            let network = known.network_at(body_field, body, "network", problems);
            let node = known.node_at(body_field, body, "node", problems);
            let percent = read_percent(
                body_field.child_path("percent").at(get(body, "percent")),
                problems,
            );
            Some(Fault::Loss {
                network: network?,
                node: node?,
                percent: percent?,
            })
        }
        "host-route-missing" => {
            warn_unknown_keys(body_field, body, &["node"], problems);
            let node = known.node_at(body_field, body, "node", problems)?;
            if !known.networks.contains(&CephNetwork::Public) {
                problems.error(
                    path.as_str(),
                    "hosts reach the public network through the route this fault leaves out, \
                     and the lab has no public network",
                );
                return None;
            }
            Some(Fault::HostRouteMissing { node })
        }
        _ => {
            warn_unknown_keys(body_field, body, &["node", "after"], problems);
            let node = known.node_at(body_field, body, "node", problems);
            let after = read_after(
                body_field.child_path("after").at(get(body, "after")),
                problems,
            );
            Some(Fault::KillAgent {
                node: node?,
                after: after?,
            })
        }
    }
}

fn read_percent(field: Field<'_, '_>, problems: &mut Problems) -> Option<f64> {
    match field.value() {
        Value::Number(n) => match n.as_f64() {
            Some(p) if p > 0.0 && p <= 100.0 => Some(p),
            _ => {
                problems.error(
                    field.path(),
                    format!("a loss percentage must be above 0 and at most 100, found {n}"),
                );
                None
            }
        },
        Value::Null => {
            problems.error(
                field.path(),
                "expected the share of packets lost, in percent",
            );
            None
        }
        other => {
            problems.error(
                field.path(),
                format!(
                    "expected a number of percent such as 30, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

fn read_after(field: Field<'_, '_>, problems: &mut Problems) -> Option<GoDuration> {
    if let Value::Number(n) = field.value() {
        problems.error(
            field.path(),
            format!("expected a Go duration with a unit; found the bare number {n} (write e.g. \"{n}s\")"),
        );
        return None;
    }
    let text = field.required_string(
        problems,
        "expected how long after the agents start to kill them, as a Go duration such as \"10s\"",
    )?;
    match GoDuration::parse(text) {
        Ok(after) => Some(after),
        Err(why) => {
            problems.error(
                field.path(),
                format!("expected a Go duration such as \"10s\" or \"1m30s\": {why}"),
            );
            None
        }
    }
}

// ---- config ----

fn read_config_source(
    field: Field<'_, '_>,
    topology: &LabTopology,
    problems: &mut Problems,
) -> ConfigSource {
    match field.value() {
        Value::Null => ConfigSource::Default,
        Value::String(path) if path.trim().is_empty() => {
            problems.error(
                field.path(),
                "expected the run configuration's file path or the configuration itself",
            );
            ConfigSource::Default
        }
        Value::String(path) => ConfigSource::Path(PathBuf::from(path)),
        Value::Object(map) => {
            let mut map = map.clone();
            // Left out, the networks are the lab's own, so a config only needs what differs.
            for (network, key) in [
                (CephNetwork::Public, "publicNetwork"),
                (CephNetwork::Cluster, "clusterNetwork"),
            ] {
                if topology.networks.contains_key(&network) && !map.contains_key(key) {
                    map.insert(key.to_string(), json!(network.key()));
                }
            }
            // JSON is YAML, so the sub-document goes through the same reader as a file.
            let text = Value::Object(map).to_string();
            match parse_run_config(&text) {
                Ok((config, local)) => {
                    for mut problem in local.errors {
                        problem.field = prefixed(field.path(), &problem.field);
                        problems.errors.push(problem);
                    }
                    for mut problem in local.warnings {
                        problem.field = prefixed(field.path(), &problem.field);
                        problems.warnings.push(problem);
                    }
                    topology.check_run_config(&config, field.path(), problems);
                    ConfigSource::Inline(config)
                }
                Err(why) => {
                    problems.error(field.path(), why.to_string());
                    ConfigSource::Default
                }
            }
        }
        other => {
            problems.error(
                field.path(),
                format!(
                    "expected a mapping (the run configuration) or a string (its file path), \
                     found {}",
                    type_name(other)
                ),
            );
            ConfigSource::Default
        }
    }
}
