//! Reading a topology document: each section into its values, every problem at its field,
//! names checked against what the file defines. Defaults come from [`LabTopology::default`];
//! the rules about values (name patterns, the lab's address space, MTU bounds) are here.
//!
//! This file reads the top level, the references between sections ([`Known`]) and `config`;
//! `nodes`, `networks` and `faults` (with `underlay`) read their sections.

mod faults;
mod networks;
mod nodes;

use std::collections::BTreeSet;
use std::path::PathBuf;

use multinet_proto::config::parse_run_config;
use multinet_proto::field::{Field, OwnedPath, Problems, type_name};
use multinet_proto::network::CephNetwork;
use serde_json::{Map, Value, json};

use super::{ConfigSource, Fault, LabTopology, MAX_MTU, MAX_NAME_LEN, MIN_MTU, NodeRef, prefixed};
use faults::{read_faults, read_underlay};
use networks::read_networks;
use nodes::read_nodes;

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
    (topology.faults, topology.scheduled) = read_faults(path.at(value), &known, problems);

    let (path, value) = get("config");
    topology.config = read_config_source(path.at(value), &topology, problems);
    topology
}

/// One fault (`document`) against `topology`'s nodes and networks, at the path `fault`;
/// `None` when anything in it is an error.
pub(super) fn read_one_fault(
    document: &Value,
    topology: &LabTopology,
    problems: &mut Problems,
) -> Option<Fault> {
    let known = Known {
        nodes: topology.nodes.iter().map(|n| n.name.clone()).collect(),
        networks: topology.networks.keys().copied().collect(),
    };
    let fault = faults::read_fault(Field::new("fault", document), &known, problems)?;
    // Applied now, kept until removed: a schedule has nothing to count from.
    let (kind, body) = document.as_object()?.iter().next()?;
    for key in ["at", "for"] {
        if body.get(key).is_some() {
            problems.error(
                format!("fault.{kind}.{key}"),
                "a fault added to a lab that is up begins now and lasts until it is removed \
                 (`multinet lab fault remove`); `at` and `for` belong to a topology's faults, \
                 counted from the start of a run's probing",
            );
        }
    }
    problems.is_valid().then_some(fault)
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
