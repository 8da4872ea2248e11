//! The nodes of each node type, as Kubernetes would place the run's pods: labels against the
//! type's `nodeSelector`, taints against its `tolerations`. A node's state (NotReady,
//! unreachable, cordoned, under pressure) is not its node type: such a node is matched by its
//! labels and its other taints, then named and left out with the reason.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};
use multinet_proto::config::{Placement, RunConfig, TaintEffect, TaintView};

use super::Problem;
use crate::scheduler::NodePlan;

/// The taints Kubernetes puts on a node itself, for its state: the node lifecycle
/// controller's for its conditions (Kubernetes pkg/controller/nodelifecycle/
/// node_lifecycle_controller.go, `nodeConditionToTaintKeyStatusMap`: Ready False → not-ready,
/// Ready Unknown → unreachable, and the pressure and network conditions) and for
/// `spec.unschedulable` (`doNoScheduleTaintingPass`: unschedulable). Node types are matched
/// without them — a node's state is not its node type — and a node of a type that does not
/// tolerate them is left out, with the reason.
const STATE_TAINTS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "is NotReady"),
    (
        "node.kubernetes.io/unreachable",
        "is unreachable (its kubelet stopped reporting)",
    ),
    ("node.kubernetes.io/unschedulable", "is cordoned"),
    (
        "node.kubernetes.io/memory-pressure",
        "is under memory pressure",
    ),
    ("node.kubernetes.io/disk-pressure", "is under disk pressure"),
    ("node.kubernetes.io/pid-pressure", "is under PID pressure"),
    (
        "node.kubernetes.io/network-unavailable",
        "has its network unavailable",
    ),
];

/// Why a node of a node type cannot take the run's pods, from its state (whatever its
/// taints say: the controller may not have tainted it yet, or the type tolerates them).
fn unusable(node: &Node, taints: &[Taint], placement: &Placement) -> Option<String> {
    // Kubernetes' readiness: the Ready condition; Unknown (or none) when the node lifecycle
    // controller has not heard from the kubelet (it then taints the node unreachable).
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    match ready {
        Some("True") => {}
        Some("False") => return Some("is NotReady".into()),
        _ => {
            return Some(
                "is unreachable (its Ready condition is Unknown: the kubelet stopped reporting)"
                    .into(),
            );
        }
    }
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        return Some("is cordoned".into());
    }
    placement
        .first_untolerated(taints.iter().filter_map(taint_view).filter(state_taint))
        .and_then(|t| {
            STATE_TAINTS
                .iter()
                .find(|(key, _)| *key == t.key)
                .map(|(_, why)| format!("{why} (taint {}:{})", t.key, t.effect.name()))
        })
}

/// A Kubernetes taint as proto's placement rule sees it; `None` for an effect Kubernetes does
/// not define (its validation rejects one, so no real node has it): such a taint keeps no pod
/// away.
fn taint_view(taint: &Taint) -> Option<TaintView<'_>> {
    Some(TaintView {
        key: &taint.key,
        value: taint.value.as_deref().unwrap_or_default(),
        effect: TaintEffect::from_name(&taint.effect)?,
    })
}

/// Whether Kubernetes put the taint on the node for its state ([`STATE_TAINTS`]).
fn state_taint(taint: &TaintView<'_>) -> bool {
    STATE_TAINTS.iter().any(|(key, _)| *key == taint.key)
}

/// Whether a node belongs to a node type with this placement: its labels match the
/// `nodeSelector` and the placement tolerates its taints, other than those Kubernetes sets for
/// the node's state (proto's [`Placement::admits`]).
fn of_type(placement: &Placement, labels: &BTreeMap<String, String>, taints: &[Taint]) -> bool {
    let taints = taints.iter().filter_map(taint_view);
    placement.admits(labels, taints.filter(|t| !state_taint(t)))
}

/// The nodes of each node type: a node belongs to a node type when its labels match the
/// type's `nodeSelector` and the type tolerates its taints (other than those Kubernetes sets
/// for the node's state). A node in two node types is an error naming both; a node of a type
/// that is NotReady, unreachable, cordoned or under pressure is left out, and said.
pub fn place_nodes(
    config: &RunConfig,
    nodes: &[Node],
    problems: &mut Vec<Problem>,
) -> (Vec<NodePlan>, Vec<String>) {
    let mut plans = Vec::new();
    let mut left_out = Vec::new();
    let mut per_type: BTreeMap<&str, usize> =
        config.node_types.keys().map(|t| (t.as_str(), 0)).collect();
    // Node types with a node that also matched another: their count says nothing then.
    let mut overlapped: Vec<&str> = Vec::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let taints: &[Taint] = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[]);
        let types: Vec<&str> = config
            .node_types
            .iter()
            .filter(|(_, t)| of_type(&t.placement, &labels, taints))
            .map(|(name, _)| name.as_str())
            .collect();
        let [only] = types[..] else {
            if let [a, b, ..] = types[..] {
                problems.push(Problem::Invalid(format!(
                    "node types must not overlap: node {name} matches node type {a:?} and node type {b:?}"
                )));
                overlapped.extend(&types);
            }
            continue;
        };
        let placement = &config.node_types[only].placement;
        if let Some(why) = unusable(node, taints, placement) {
            left_out.push(format!("node {name} (node type {only}) {why}: left out"));
            continue;
        }
        *per_type.entry(only).or_default() += 1;
        plans.push(NodePlan {
            name,
            node_type: only.to_string(),
        });
    }
    // A node type whose nodes overlap another's has its problem named already.
    if let Some(server_type) = config.server_node_type()
        && per_type.get(server_type) == Some(&0)
        && !overlapped.contains(&server_type)
    {
        problems.push(Problem::Cluster(format!(
            "node type {server_type:?}, where the server goes (most OSDs), has no Ready, schedulable node"
        )));
    }
    (plans, left_out)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Node;
    use multinet_proto::config::parse_run_config;
    use serde_json::json;

    use super::*;

    fn node(name: &str, ready: &str, cordoned: bool, taints: serde_json::Value) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"storage": "true"}},
            "spec": {"unschedulable": cordoned, "taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}),
        )
        .expect("node")
    }

    fn config(text: &str) -> RunConfig {
        let (c, problems) = parse_run_config(text).expect("yaml");
        assert!(problems.is_valid(), "{problems:?}");
        c
    }

    /// A node type whose every node is cordoned has no node: said, with each node named — the
    /// `node.kubernetes.io/unschedulable` taint Kubernetes puts on a cordoned node
    /// (pkg/controller/nodelifecycle/node_lifecycle_controller.go, doNoScheduleTaintingPass)
    /// does not hide it.
    #[test]
    fn a_node_type_of_cordoned_nodes_names_them_and_has_no_node() {
        let c = config(
            "publicNetwork: p\nnodeTypes:\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 0\n    placement:\n      nodeSelector: {storage: \"true\"}\n",
        );
        let cordoned = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]);
        let mut problems = Vec::new();
        let (plans, left_out) = place_nodes(
            &c,
            &[
                node("s1", "True", true, cordoned.clone()),
                node("s2", "True", true, cordoned),
            ],
            &mut problems,
        );
        assert!(plans.is_empty());
        assert_eq!(
            left_out,
            [
                "node s1 (node type storage) is cordoned: left out",
                "node s2 (node type storage) is cordoned: left out"
            ]
        );
        assert_eq!(
            problems,
            [Problem::Cluster(
                "node type \"storage\", where the server goes (most OSDs), has no Ready, schedulable node".into()
            )]
        );
    }

    /// A node type that tolerates every taint still leaves a NotReady node out.
    #[test]
    fn a_type_that_tolerates_everything_still_leaves_a_not_ready_node_out() {
        let c = config(
            "publicNetwork: p\nnodeTypes:\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 0\n    placement:\n      tolerations:\n        - {operator: Exists}\n",
        );
        let not_ready = json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]);
        let mut problems = Vec::new();
        let (plans, left_out) = place_nodes(
            &c,
            &[
                node("s1", "False", false, not_ready),
                node("s2", "True", false, json!([])),
            ],
            &mut problems,
        );
        assert_eq!(plans.len(), 1);
        assert_eq!(
            left_out,
            ["node s1 (node type storage) is NotReady: left out"]
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    mod lab_and_cluster_agree {
        //! The lab backend places its nodes with `lab::topology::node_matches`; a lab node
        //! registered with an API server (the lab's kubelet, `node_object`) is placed by this
        //! preflight. Both go through proto's rule, each over its own conversion: this says the
        //! two conversions give the same taints, so both places give the same answer.

        use multinet_proto::config::{Placement, TaintEffect, Toleration, TolerationOperator};
        use proptest::prelude::*;

        use super::super::{of_type, taint_view};
        use crate::lab::kubelet::node::node_object;
        use crate::lab::topology::{LabNode, Taint as LabTaint, node_matches};

        fn word() -> impl Strategy<Value = String> {
            prop_oneof![Just(""), Just("a"), Just("b"), Just("example.com/c")]
                .prop_map(String::from)
        }

        fn effect() -> impl Strategy<Value = TaintEffect> {
            prop_oneof![
                Just(TaintEffect::NoSchedule),
                Just(TaintEffect::PreferNoSchedule),
                Just(TaintEffect::NoExecute),
            ]
        }

        /// Lab nodes as the topology reader makes them: taint keys are never empty. Keys are
        /// never one of the state taints, which the preflight sets aside on purpose.
        fn lab_node() -> impl Strategy<Value = LabNode> {
            (
                prop::collection::btree_map(word(), word(), 0..3),
                prop::collection::vec(
                    (
                        word().prop_filter("a taint has a key", |k| !k.is_empty()),
                        word(),
                        effect(),
                    ),
                    0..4,
                ),
            )
                .prop_map(|(labels, taints)| LabNode {
                    name: "n1".into(),
                    labels,
                    taints: taints
                        .into_iter()
                        .map(|(key, value, effect)| LabTaint { key, value, effect })
                        .collect(),
                })
        }

        /// Any placement, tolerations Kubernetes' validation would reject included.
        fn placement() -> impl Strategy<Value = Placement> {
            let toleration = (word(), any::<bool>(), word(), prop::option::of(effect())).prop_map(
                |(key, exists, value, effect)| Toleration {
                    key,
                    operator: if exists {
                        TolerationOperator::Exists
                    } else {
                        TolerationOperator::Equal
                    },
                    value,
                    effect,
                    toleration_seconds: None,
                },
            );
            (
                prop::collection::btree_map(word(), word(), 0..2),
                prop::collection::vec(toleration, 0..3),
            )
                .prop_map(|(node_selector, tolerations)| Placement {
                    node_selector,
                    tolerations,
                })
        }

        proptest! {
            #[test]
            fn a_lab_node_is_placed_alike_by_the_lab_and_by_the_preflight(
                node in lab_node(),
                placement in placement(),
            ) {
                let object = node_object(&node);
                let taints = object.spec.and_then(|s| s.taints).unwrap_or_default();
                let via_cluster: Vec<_> = taints.iter().map(taint_view).collect();
                let via_lab: Vec<_> = node.taints.iter().map(|t| Some(t.view())).collect();
                prop_assert_eq!(via_cluster, via_lab);
                // The registered node carries the standard labels too; the selectors here
                // never name them, so the answer is the lab node's labels' answer.
                let labels = object.metadata.labels.unwrap_or_default();
                prop_assert_eq!(
                    of_type(&placement, &labels, &taints),
                    node_matches(&node, &placement)
                );
            }
        }
    }
}
