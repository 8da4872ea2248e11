//! Kubernetes' rule for whether a node type's [`Placement`] takes a node: its `nodeSelector`
//! against the node's labels, its tolerations against the node's taints. Every caller that
//! decides which nodes a node type has (the lab, the Kubernetes preflight) goes through here,
//! over a [`TaintView`] it converts its own taint type into; nothing here knows where the node
//! came from.
//!
//! The rule is Kubernetes' own:
//!
//! * one toleration against one taint: k8s.io/api `core/v1/toleration.go`,
//!   `(*Toleration).ToleratesTaint` — [`Toleration::tolerates`];
//! * any toleration against one taint: k8s.io/component-helpers `scheduling/corev1/helpers.go`,
//!   `TolerationsTolerateTaint` — [`Placement::tolerates`];
//! * the first taint no toleration tolerates, among those that keep pods away:
//!   `FindMatchingUntoleratedTaint` with the inclusion filter the scheduler's TaintToleration
//!   plugin passes (kubernetes `pkg/scheduler/framework/plugins/tainttoleration`, `Filter`:
//!   `NoSchedule` and `NoExecute`) — [`Placement::first_untolerated`];
//! * `nodeSelector`: every entry equals a node label (component-helpers
//!   `scheduling/corev1/nodeaffinity`, `RequiredNodeAffinity.Match`, a `labels.SelectorFromSet`
//!   over the pod's `nodeSelector`) — [`Placement::selects`].

use std::collections::BTreeMap;

use super::{Placement, TaintEffect, Toleration, TolerationOperator};

/// A node taint as the placement rule sees it: what both the lab topology's taints and
/// Kubernetes' `corev1.Taint` turn into. An absent value is the empty value, as in Kubernetes
/// (`Taint.Value` is a plain string there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaintView<'a> {
    /// Taint key; never empty on a real node (Kubernetes' validation and the lab's reader both
    /// reject an empty one).
    pub key: &'a str,
    /// Taint value; empty when the taint has none.
    pub value: &'a str,
    /// What the taint does to pods that do not tolerate it.
    pub effect: TaintEffect,
}

impl TaintEffect {
    /// The effect as Kubernetes spells it (`NoSchedule`, `PreferNoSchedule`, `NoExecute`).
    pub fn name(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }

    /// The effect Kubernetes spells `name` (case matters); `None` for any other text.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }

    /// Whether a taint with this effect keeps untolerating pods off the node: `NoSchedule`
    /// and `NoExecute` do; `PreferNoSchedule` only discourages, so it never excludes a node
    /// (the scheduler's TaintToleration `Filter` looks at the first two only).
    pub fn keeps_pods_away(self) -> bool {
        matches!(self, TaintEffect::NoSchedule | TaintEffect::NoExecute)
    }
}

impl Toleration {
    /// Whether this toleration tolerates `taint` (Kubernetes' `ToleratesTaint`):
    ///
    /// 1. a toleration without an effect matches every effect, otherwise the effects are equal;
    /// 2. `Exists` matches every value, `Equal` needs the values equal;
    /// 3. an empty key with `Exists` matches every key; otherwise the keys are equal.
    ///
    /// One case is narrower than `ToleratesTaint`: an empty key with `Equal`. Kubernetes'
    /// validation rejects that toleration ("operator must be Exists when `key` is empty"), and
    /// so does the run configuration's; `ToleratesTaint` would let it match every key, here it
    /// matches only an empty key, which no real taint has. Both rules this one replaced read
    /// it that way.
    pub fn tolerates(&self, taint: &TaintView<'_>) -> bool {
        if self.effect.is_some_and(|effect| effect != taint.effect) {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => self.key.is_empty() || self.key == taint.key,
            TolerationOperator::Equal => self.key == taint.key && self.value == taint.value,
        }
    }
}

impl Placement {
    /// Whether a node with these labels carries every `nodeSelector` entry, value and all.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }

    /// Whether any of the tolerations tolerates `taint` (Kubernetes'
    /// `TolerationsTolerateTaint`).
    pub fn tolerates(&self, taint: &TaintView<'_>) -> bool {
        self.tolerations.iter().any(|t| t.tolerates(taint))
    }

    /// The first of `taints` that keeps pods away ([`TaintEffect::keeps_pods_away`]) and that
    /// no toleration tolerates (Kubernetes' `FindMatchingUntoleratedTaint` with the scheduler's
    /// filter); `None` when the placement tolerates them all.
    pub fn first_untolerated<'t>(
        &self,
        taints: impl IntoIterator<Item = TaintView<'t>>,
    ) -> Option<TaintView<'t>> {
        taints
            .into_iter()
            .filter(|taint| taint.effect.keeps_pods_away())
            .find(|taint| !self.tolerates(taint))
    }

    /// Kubernetes' scheduling rule for one node: the `nodeSelector` selects its labels and no
    /// taint that keeps pods away goes untolerated.
    pub fn admits<'t>(
        &self,
        labels: &BTreeMap<String, String>,
        taints: impl IntoIterator<Item = TaintView<'t>>,
    ) -> bool {
        self.selects(labels) && self.first_untolerated(taints).is_none()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use TaintEffect::*;
    use TolerationOperator::*;

    fn toleration(
        key: &str,
        operator: TolerationOperator,
        value: &str,
        effect: Option<TaintEffect>,
    ) -> Toleration {
        Toleration {
            key: key.into(),
            operator,
            value: value.into(),
            effect,
            toleration_seconds: None,
        }
    }

    fn taint<'a>(key: &'a str, value: &'a str, effect: TaintEffect) -> TaintView<'a> {
        TaintView { key, value, effect }
    }

    /// The cases of Kubernetes' own table test for `ToleratesTaint` (k8s.io/api core/v1
    /// toleration_test.go, `TestTolerationToleratesTaint`, the Equal and Exists ones).
    #[test]
    fn kubernetes_table_for_tolerates_taint() {
        let cases = [
            // Same key and effect, Exists, taint without a value.
            (
                toleration("foo", Exists, "", Some(NoSchedule)),
                taint("foo", "", NoSchedule),
                true,
            ),
            // Same key and effect, Exists, taint with a value.
            (
                toleration("foo", Exists, "", Some(NoSchedule)),
                taint("foo", "bar", NoSchedule),
                true,
            ),
            // Same effect, empty key with Exists: every taint.
            (
                toleration("", Exists, "", Some(NoSchedule)),
                taint("foo", "bar", NoSchedule),
                true,
            ),
            // Same key, effect and value, Equal.
            (
                toleration("foo", Equal, "bar", Some(NoSchedule)),
                taint("foo", "bar", NoSchedule),
                true,
            ),
            // Same key and effect, other value, Equal.
            (
                toleration("foo", Equal, "value1", Some(NoSchedule)),
                taint("foo", "value2", NoSchedule),
                false,
            ),
            // Same key and value, other effect, Equal.
            (
                toleration("foo", Equal, "bar", Some(NoSchedule)),
                taint("foo", "bar", NoExecute),
                false,
            ),
        ];
        for (t, taint, expected) in cases {
            assert_eq!(t.tolerates(&taint), expected, "{t:?} against {taint:?}");
        }
    }

    /// `ToleratesTaint`'s three rules one by one (k8s.io/api core/v1 toleration.go).
    #[test]
    fn one_toleration_against_one_taint_follows_tolerates_taint() {
        let dedicated = taint("dedicated", "storage", NoSchedule);
        let cases = [
            // Rule 1: no effect matches every effect; a set effect must be equal.
            (toleration("dedicated", Equal, "storage", None), true),
            (
                toleration("dedicated", Equal, "storage", Some(NoSchedule)),
                true,
            ),
            (
                toleration("dedicated", Equal, "storage", Some(NoExecute)),
                false,
            ),
            (
                toleration("dedicated", Exists, "", Some(PreferNoSchedule)),
                false,
            ),
            // Rule 2: Exists matches every value; Equal needs the value.
            (toleration("dedicated", Exists, "", None), true),
            (toleration("dedicated", Equal, "apps", None), false),
            (toleration("dedicated", Equal, "", None), false),
            // Rule 3: an empty key with Exists matches every key; a set key must be equal.
            (toleration("", Exists, "", None), true),
            (toleration("", Exists, "", Some(NoSchedule)), true),
            (toleration("", Exists, "", Some(NoExecute)), false),
            (toleration("other", Exists, "", None), false),
            (toleration("other", Equal, "storage", None), false),
            // Invalid (Kubernetes requires Exists with an empty key): matches no real taint.
            (toleration("", Equal, "storage", None), false),
        ];
        for (t, expected) in cases {
            assert_eq!(
                t.tolerates(&dedicated),
                expected,
                "{t:?} against {dedicated:?}"
            );
        }
        // An absent taint value is the empty value: Equal with an empty value matches it.
        let bare = taint("gpu", "", NoExecute);
        assert!(toleration("gpu", Equal, "", None).tolerates(&bare));
        assert!(!toleration("gpu", Equal, "x", None).tolerates(&bare));
    }

    /// `TolerationsTolerateTaint`: any one toleration is enough; none tolerates nothing.
    #[test]
    fn any_toleration_of_a_placement_is_enough() {
        let placement = |tolerations| Placement {
            node_selector: BTreeMap::new(),
            tolerations,
        };
        let t = taint("a", "1", NoSchedule);
        assert!(!placement(vec![]).tolerates(&t));
        assert!(!placement(vec![toleration("b", Exists, "", None)]).tolerates(&t));
        assert!(
            placement(vec![
                toleration("b", Exists, "", None),
                toleration("a", Equal, "1", None)
            ])
            .tolerates(&t)
        );
    }

    /// `FindMatchingUntoleratedTaint` with the scheduler's filter: PreferNoSchedule never
    /// counts, every other taint needs its own toleration, and the first untolerated is named.
    #[test]
    fn the_first_untolerated_hard_taint_is_named() {
        let placement = Placement {
            node_selector: BTreeMap::new(),
            tolerations: vec![toleration("a", Exists, "", None)],
        };
        let taints = [
            taint("soft", "", PreferNoSchedule),
            taint("a", "", NoSchedule),
            taint("b", "", NoExecute),
            taint("c", "", NoSchedule),
        ];
        assert_eq!(
            placement.first_untolerated(taints),
            Some(taint("b", "", NoExecute))
        );
        assert_eq!(
            placement.first_untolerated(taints[..2].iter().copied()),
            None
        );
        assert!(placement.admits(&BTreeMap::new(), taints[..2].iter().copied()));
        assert!(!placement.admits(&BTreeMap::new(), taints));
    }

    /// `nodeSelector`: every entry must be a label with that value; extra labels are fine; an
    /// empty selector selects every node.
    #[test]
    fn node_selector_needs_every_entry() {
        let labels: BTreeMap<String, String> = [("role", "storage"), ("zone", "a"), ("gpu", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let selecting = |entries: &[(&str, &str)]| Placement {
            node_selector: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            tolerations: vec![],
        };
        assert!(selecting(&[]).selects(&labels));
        assert!(selecting(&[("role", "storage")]).selects(&labels));
        assert!(selecting(&[("role", "storage"), ("gpu", "")]).selects(&labels));
        assert!(!selecting(&[("role", "storage"), ("zone", "b")]).selects(&labels));
        assert!(!selecting(&[("disk", "")]).selects(&labels));
        assert!(!selecting(&[("role", "")]).selects(&labels));
    }

    #[test]
    fn effect_names_are_kubernetes_spelling() {
        for effect in [NoSchedule, PreferNoSchedule, NoExecute] {
            assert_eq!(TaintEffect::from_name(effect.name()), Some(effect));
            assert_eq!(effect.name(), format!("{effect:?}"));
        }
        assert_eq!(TaintEffect::from_name("noschedule"), None);
        assert_eq!(TaintEffect::from_name(""), None);
    }

    fn any_effect() -> impl Strategy<Value = TaintEffect> {
        prop_oneof![Just(NoSchedule), Just(PreferNoSchedule), Just(NoExecute)]
    }

    /// Tolerations as Kubernetes' validation admits them (an empty key only with Exists, no
    /// value with Exists), over a small alphabet so matches happen.
    fn valid_toleration() -> impl Strategy<Value = Toleration> {
        (
            prop_oneof![Just(""), Just("a"), Just("b")],
            any::<bool>(),
            prop_oneof![Just(""), Just("x"), Just("y")],
            proptest::option::of(any_effect()),
        )
            .prop_map(|(key, exists, value, effect)| {
                if key.is_empty() || exists {
                    toleration(key, Exists, "", effect)
                } else {
                    toleration(key, Equal, value, effect)
                }
            })
    }

    proptest! {
        /// On every toleration Kubernetes' validation admits and every taint with a key, the
        /// rule is `ToleratesTaint` word for word.
        #[test]
        fn valid_tolerations_follow_tolerates_taint(
            t in valid_toleration(),
            key in prop_oneof![Just("a"), Just("b")],
            value in prop_oneof![Just(""), Just("x"), Just("y")],
            effect in any_effect(),
        ) {
            let taint = TaintView { key, value, effect };
            let tolerates_taint = (t.effect.is_none() || t.effect == Some(effect))
                && (t.key.is_empty() || t.key == key)
                && match t.operator {
                    Equal => t.value == value,
                    Exists => true,
                };
            prop_assert_eq!(t.tolerates(&taint), tolerates_taint);
        }
    }
}
