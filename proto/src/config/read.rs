//! Reading a run-configuration document into a [`RunConfig`]: types, enums, unknown keys.
//!
//! Every key is optional and keeps its default when absent or null. A value of the wrong type
//! is an error at its path and leaves the default in place, so later rules still see a
//! complete config. Rules about values (ranges, names) are not checked here but in `validate`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    GoDuration, NodeType, PayloadBytes, Placement, RunConfig, TaintEffect, Toleration,
    TolerationOperator, default_node_types,
};
use crate::field::{Field, OwnedPath, Problems, type_name};

/// Top-level keys, Rook's first, for typo suggestions.
const TOP_LEVEL_KEYS: [&str; 18] = [
    "namespace",
    "serviceAccountName",
    "publicNetwork",
    "clusterNetwork",
    "resourceTimeout",
    "flakyThreshold",
    "hostCheckOnly",
    "nginxImage",
    "nodeTypes",
    "probeInterval",
    "probeTimeout",
    "successThreshold",
    "payloadBytes",
    "soakDuration",
    "reportInterval",
    "metricsAddr",
    "mesh",
    "meshPeers",
];

/// Reads the whole document; `Null` (an empty file) is all defaults.
pub(super) fn read_run_config(document: &Value, problems: &mut Problems) -> RunConfig {
    let mut config = RunConfig::default();
    let Some(map) = Field::new("", document).mapping(problems) else {
        return config;
    };
    for (key, value) in map {
        let path = OwnedPath::child("", key);
        let field = path.at(value);
        match key.as_str() {
            "namespace" => keep(&mut config.namespace, field.scalar_string(problems)),
            "serviceAccountName" => {
                keep(
                    &mut config.service_account_name,
                    field.scalar_string(problems),
                );
            }
            "publicNetwork" => keep(&mut config.public_network, field.scalar_string(problems)),
            "clusterNetwork" => keep(&mut config.cluster_network, field.scalar_string(problems)),
            "resourceTimeout" => keep(&mut config.resource_timeout, duration(field, problems)),
            "flakyThreshold" => keep(&mut config.flaky_threshold, duration(field, problems)),
            "hostCheckOnly" => keep(&mut config.host_check_only, field.boolean(problems)),
            "nginxImage" => {
                config.nginx_image = field.scalar_string(problems);
                if config.nginx_image.is_some() {
                    problems.warn(
                        field.path(),
                        "multinet does not use nginxImage (its own agents answer the probes); \
                         the key is accepted so that Rook's config files load unchanged",
                    );
                }
            }
            // Null counts as absent here too, so `nodeTypes:` alone keeps the default.
            "nodeTypes" if !value.is_null() => {
                config.node_types = node_types(field, problems).unwrap_or_else(default_node_types);
            }
            "nodeTypes" => {}
            "probeInterval" => keep(&mut config.probe_interval, duration(field, problems)),
            "probeTimeout" => keep(&mut config.probe_timeout, duration(field, problems)),
            "successThreshold" => keep(&mut config.success_threshold, field.count(problems)),
            "payloadBytes" => {
                if let Some(payload) = payload_bytes(field, problems) {
                    config.payload_bytes = payload;
                }
            }
            "soakDuration" => keep(&mut config.soak_duration, duration(field, problems)),
            "reportInterval" => keep(&mut config.report_interval, duration(field, problems)),
            "metricsAddr" => match field.scalar_string(problems).map(|t| socket_address(&t)) {
                Some(Ok(addr)) => config.metrics_addr = Some(addr),
                Some(Err(why)) => problems.error(field.path(), why),
                None => {}
            },
            "mesh" => keep(&mut config.mesh, field.boolean(problems)),
            "meshPeers" => keep(&mut config.mesh_peers, field.count(problems)),
            _ => warn_unknown(key, field, &TOP_LEVEL_KEYS, problems),
        }
    }
    config
}

/// An `ADDR:PORT` to listen on: an IP address (IPv6 in brackets) and a port; no host names,
/// so what is bound is what was written.
pub fn socket_address(text: &str) -> Result<std::net::SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "expected ADDR:PORT with an IP address, such as \"0.0.0.0:9464\", \"127.0.0.1:0\" or \"[::]:9464\"; found {text:?}"
        )
    })
}

/// Replaces `slot` with what was read, if anything was.
fn keep<T>(slot: &mut T, read: Option<T>) {
    if let Some(value) = read {
        *slot = value;
    }
}

/// A Go duration string. A bare number is the commonest mistake (Rook's CLI flags take whole
/// minutes and seconds), so its message shows the written form.
fn duration(field: Field<'_, '_>, problems: &mut Problems) -> Option<GoDuration> {
    match field.value() {
        Value::Null => None,
        Value::String(text) => match GoDuration::parse(text) {
            Ok(duration) => Some(duration),
            Err(why) => {
                problems.error(
                    field.path(),
                    format!("expected a Go duration such as \"3m0s\", \"90s\" or \"500ms\": {why}"),
                );
                None
            }
        },
        Value::Number(n) => {
            problems.error(
                field.path(),
                format!(
                    "expected a Go duration string with a unit, such as \"3m0s\" or \"90s\"; \
                     found the bare number {n} (write e.g. \"{n}s\" for seconds)"
                ),
            );
            None
        }
        other => {
            problems.error(
                field.path(),
                format!(
                    "expected a Go duration string such as \"3m0s\", found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// Warns about a key nobody reads, suggesting the known key it most likely misspells.
fn warn_unknown(key: &str, field: Field<'_, '_>, known: &[&str], problems: &mut Problems) {
    let lowered = key.to_lowercase();
    // Short keys tolerate one slip, longer ones two, so `foo` does not "mean" `key`.
    let guess = known
        .iter()
        .map(|k| (edit_distance(&lowered, &k.to_lowercase()), *k))
        .filter(|(distance, k)| *distance <= if k.len() < 6 { 1 } else { 2 })
        .min();
    let message = match guess {
        Some((_, k)) => format!("unknown key, ignored; did you mean {k:?}?"),
        None => format!(
            "unknown key, ignored; the keys read here are: {}",
            known.join(", ")
        ),
    };
    problems.warn(field.path(), message);
}

/// Levenshtein distance over characters; the inputs are short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// `nodeTypes`: name → node type. Entries that fail to read are left out (their errors stay).
fn node_types(field: Field<'_, '_>, problems: &mut Problems) -> Option<BTreeMap<String, NodeType>> {
    let map = field.mapping(problems)?;
    let mut types = BTreeMap::new();
    for (name, value) in map {
        let path = field.child_path(name);
        if let Some(node_type) = node_type(path.at(value), problems) {
            types.insert(name.clone(), node_type);
        }
    }
    Some(types)
}

fn node_type(field: Field<'_, '_>, problems: &mut Problems) -> Option<NodeType> {
    // A count left out is 0, as in Rook: a worker type may omit osdsPerNode.
    let mut node_type = NodeType::default();
    for (key, value) in field.mapping(problems)? {
        let path = field.child_path(key);
        let child = path.at(value);
        match key.as_str() {
            "osdsPerNode" => keep(&mut node_type.osds_per_node, child.count(problems)),
            "otherDaemonsPerNode" => {
                keep(&mut node_type.other_daemons_per_node, child.count(problems));
            }
            "placement" => keep(&mut node_type.placement, placement(child, problems)),
            _ => warn_unknown(
                key,
                child,
                &["osdsPerNode", "otherDaemonsPerNode", "placement"],
                problems,
            ),
        }
    }
    Some(node_type)
}

fn placement(field: Field<'_, '_>, problems: &mut Problems) -> Option<Placement> {
    let mut placement = Placement::default();
    for (key, value) in field.mapping(problems)? {
        let path = field.child_path(key);
        let child = path.at(value);
        match key.as_str() {
            "nodeSelector" => {
                if let Some(map) = child.mapping(problems) {
                    placement.node_selector = node_selector(child, map, problems);
                }
            }
            "tolerations" => {
                for (index, item) in child.list(problems).unwrap_or_default().iter().enumerate() {
                    let item_path = OwnedPath::index(child.path(), index);
                    if let Some(toleration) = toleration(item_path.at(item), problems) {
                        placement.tolerations.push(toleration);
                    }
                }
            }
            "affinity" | "nodeAffinity" | "podAffinity" | "podAntiAffinity" => problems.warn(
                child.path(),
                "affinities are not supported and are ignored: they cannot pin an exact number \
                 of clients on every node; use nodeSelector and tolerations",
            ),
            _ => warn_unknown(key, child, &["nodeSelector", "tolerations"], problems),
        }
    }
    Some(placement)
}

/// Label selector values are text; unquoted `true` or `3` are taken as written, as
/// Kubernetes tooling does for `map[string]string`. A null value is the empty string.
fn node_selector(
    field: Field<'_, '_>,
    map: &Map<String, Value>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut selector = BTreeMap::new();
    for (key, value) in map {
        let path = field.child_path(key);
        if value.is_null() {
            selector.insert(key.clone(), String::new());
        } else if let Some(text) = path.at(value).scalar_string(problems) {
            selector.insert(key.clone(), text);
        }
    }
    selector
}

fn toleration(field: Field<'_, '_>, problems: &mut Problems) -> Option<Toleration> {
    let mut toleration = Toleration::default();
    for (key, value) in field.mapping(problems)? {
        let path = field.child_path(key);
        let child = path.at(value);
        match key.as_str() {
            "key" => keep(&mut toleration.key, child.scalar_string(problems)),
            "value" => keep(&mut toleration.value, child.scalar_string(problems)),
            "operator" => match child.string(problems) {
                None | Some("" | "Equal") => toleration.operator = TolerationOperator::Equal,
                Some("Exists") => toleration.operator = TolerationOperator::Exists,
                Some(other) => problems.error(
                    child.path(),
                    format!("expected \"Equal\" or \"Exists\" (case matters), found {other:?}"),
                ),
            },
            "effect" => match child.string(problems) {
                None | Some("") => toleration.effect = None,
                Some(name) if TaintEffect::from_name(name).is_some() => {
                    toleration.effect = TaintEffect::from_name(name);
                }
                Some(other) => problems.error(
                    child.path(),
                    format!(
                        "expected \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\" or empty \
                         (all effects), found {other:?}"
                    ),
                ),
            },
            "tolerationSeconds" => match value {
                Value::Null => {}
                Value::Number(n) if n.as_i64().is_some() => {
                    toleration.toleration_seconds = n.as_i64()
                }
                other => problems.error(
                    child.path(),
                    format!(
                        "expected a whole number of seconds, found {}",
                        describe(other)
                    ),
                ),
            },
            _ => warn_unknown(
                key,
                child,
                &["key", "operator", "value", "effect", "tolerationSeconds"],
                problems,
            ),
        }
    }
    Some(toleration)
}

/// A value for a message: numbers shown as written, other things by type.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_string(),
    }
}

fn payload_bytes(field: Field<'_, '_>, problems: &mut Problems) -> Option<PayloadBytes> {
    let mut payload = PayloadBytes::default();
    for (key, value) in field.mapping(problems)? {
        let path = field.child_path(key);
        let child = path.at(value);
        match key.as_str() {
            "small" => keep(&mut payload.small, child.count(problems)),
            "large" => keep(&mut payload.large, child.count(problems)),
            _ => warn_unknown(key, child, &["small", "large"], problems),
        }
    }
    Some(payload)
}
