//! The `nodes` section: a count or a list of nodes, each with its labels and taints.

use std::collections::BTreeMap;

use multinet_proto::config::TaintEffect;
use multinet_proto::field::{Field, OwnedPath, Problems, type_name};
use serde_json::Value;

use super::{get, warn_unknown_keys};
use crate::lab::topology::{LabNode, MAX_NODES, Taint, numbered_nodes};

pub(super) fn read_nodes(field: Field<'_, '_>, problems: &mut Problems) -> Option<Vec<LabNode>> {
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
    if let Err(why) = multinet_proto::names::dns1123_subdomain(name) {
        problems.error(
            name_path.as_str(),
            format!("not a Kubernetes node name: {why}"),
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
