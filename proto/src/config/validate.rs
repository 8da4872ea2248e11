//! The rules a [`RunConfig`] must meet: Rook's, Kubernetes' naming rules, and multinet's limits.
//!
//! Every broken rule is recorded at its field path; nothing stops at the first. Messages say
//! what was expected, since the reader is someone editing a YAML file.

use std::time::Duration;

use super::{GoDuration, RunConfig, TolerationOperator};
use crate::field::{OwnedPath, Problems};
use crate::names::{dns1123_label, dns1123_subdomain};

/// Largest probe payload: bigger says nothing more about the network and costs memory.
const MAX_PAYLOAD_BYTES: u32 = 16 * 1024 * 1024;

impl RunConfig {
    /// Checks every rule and records each broken one (errors) and each doubtful choice
    /// (warnings) in `problems`. [`super::parse_run_config`] calls this already.
    pub fn validate(&self, problems: &mut Problems) {
        self.validate_names(problems);
        self.validate_timing(problems);
        if self.mesh_peers > 0 && !self.mesh {
            problems.error(
                "meshPeers",
                format!(
                    "applies to a mesh run only: set mesh: true, or remove meshPeers (found {})",
                    self.mesh_peers
                ),
            );
        }
        for (name, node_type) in &self.node_types {
            let path = OwnedPath::child("nodeTypes", name);
            if let Err(why) = dns1123_subdomain(name) {
                problems.error(path.as_str(), format!("node type name {why}"));
            }
            let placement = OwnedPath::child(path.as_str(), "placement");
            let selector = OwnedPath::child(placement.as_str(), "nodeSelector");
            for (key, value) in &node_type.placement.node_selector {
                let at = OwnedPath::child(selector.as_str(), key);
                if let Err(why) = qualified_name(key) {
                    problems.error(at.as_str(), format!("label key {key:?} {why}"));
                }
                if let Err(why) = label_value(value) {
                    problems.error(at.as_str(), format!("label value {value:?} {why}"));
                }
            }
            let tolerations = OwnedPath::child(placement.as_str(), "tolerations");
            for (index, toleration) in node_type.placement.tolerations.iter().enumerate() {
                let at = OwnedPath::index(tolerations.as_str(), index);
                toleration_rules(&at, toleration, problems);
            }
        }
        if self.server_node_type().is_none() {
            problems.error(
                "nodeTypes",
                "expected osdsPerNode greater than 0 in at least one node type: OSD clients are \
                 the only ones that test the cluster network, and the test server is placed on \
                 the node type with the most OSDs",
            );
        }
        let payload = self.payload_bytes;
        if payload.small < 1 {
            problems.error("payloadBytes.small", "must be at least 1 byte, found 0");
        }
        if payload.large > MAX_PAYLOAD_BYTES {
            problems.error(
                "payloadBytes.large",
                format!(
                    "must be at most {MAX_PAYLOAD_BYTES} (16 MiB), found {}",
                    payload.large
                ),
            );
        }
        if payload.small >= payload.large {
            problems.error(
                "payloadBytes",
                format!(
                    "small ({}) must be less than large ({}): the large probe exists to send more \
                     than one packet can hold",
                    payload.small, payload.large
                ),
            );
        }
        if self.success_threshold < 1 {
            problems.error("successThreshold", "must be at least 1, found 0");
        }
    }

    fn validate_names(&self, problems: &mut Problems) {
        if self.namespace.is_empty() {
            problems.error(
                "namespace",
                "must be set: the namespace where the test resources are created",
            );
        } else if let Err(why) = dns1123_label(&self.namespace) {
            problems.error("namespace", why);
        }
        if !self.service_account_name.is_empty()
            && let Err(why) = dns1123_subdomain(&self.service_account_name)
        {
            problems.error("serviceAccountName", why);
        }
        if self.public_network.is_empty() && self.cluster_network.is_empty() {
            problems.error(
                "publicNetwork",
                "expected at least one of publicNetwork and clusterNetwork to name a \
                 NetworkAttachmentDefinition (`name` or `namespace/name`)",
            );
        }
        for (key, value) in [
            ("publicNetwork", &self.public_network),
            ("clusterNetwork", &self.cluster_network),
        ] {
            if let Err(why) = network_name(value) {
                problems.error(key, why);
            }
        }
        let resolve = |name: &str| match name.split_once('/') {
            Some((namespace, name)) => (namespace.to_string(), name.to_string()),
            None => (self.namespace.clone(), name.to_string()),
        };
        if !self.public_network.is_empty()
            && resolve(&self.public_network) == resolve(&self.cluster_network)
        {
            problems.warn(
                "clusterNetwork",
                "names the same NetworkAttachmentDefinition as publicNetwork; Ceph gains nothing \
                 from a cluster network that is the public one (leave clusterNetwork empty)",
            );
        }
        if self.host_check_only && self.public_network.is_empty() {
            problems.warn(
                "hostCheckOnly",
                "the host check tests routes from hosts to the public network, and \
                 publicNetwork is not set, so there is nothing to check",
            );
        }
    }

    fn validate_timing(&self, problems: &mut Problems) {
        let at_least = |problems: &mut Problems, key: &str, value: GoDuration, min: GoDuration| {
            if value < min {
                problems.error(key, format!("must be at least {min}, found {value}"));
            }
        };
        if self.resource_timeout < GoDuration::from_secs(60) {
            problems.error(
                "resourceTimeout",
                format!(
                    "must be at least 1m0s (2m0s or more is recommended), found {}",
                    self.resource_timeout
                ),
            );
        }
        at_least(
            problems,
            "flakyThreshold",
            self.flaky_threshold,
            GoDuration::from_secs(5),
        );
        if let Err(why) = check_probe_interval(self.probe_interval) {
            problems.error("probeInterval", why);
        }
        if let Err(why) = check_report_interval(self.report_interval) {
            problems.error("reportInterval", why);
        }
        if self.probe_timeout.as_std() == Duration::ZERO {
            problems.error("probeTimeout", "must be more than 0s, found 0s");
        } else if self.probe_timeout > self.resource_timeout {
            problems.error(
                "probeTimeout",
                format!(
                    "must be at most resourceTimeout ({}), found {}",
                    self.resource_timeout, self.probe_timeout
                ),
            );
        }
    }
}

/// Kubernetes' own toleration rules, checked here so a bad one fails before any pod is made.
fn toleration_rules(at: &OwnedPath, toleration: &super::Toleration, problems: &mut Problems) {
    let field = |name: &str| OwnedPath::child(at.as_str(), name);
    if toleration.key.is_empty() {
        if toleration.operator != TolerationOperator::Exists {
            problems.error(
                field("operator").as_str(),
                "must be Exists when key is empty (an empty key with Exists tolerates every taint)",
            );
        }
    } else if let Err(why) = qualified_name(&toleration.key) {
        problems.error(field("key").as_str(), format!("{:?} {why}", toleration.key));
    }
    match toleration.operator {
        TolerationOperator::Exists if !toleration.value.is_empty() => problems.error(
            field("value").as_str(),
            format!(
                "must be empty when operator is Exists, found {:?}",
                toleration.value
            ),
        ),
        TolerationOperator::Equal => {
            if let Err(why) = label_value(&toleration.value) {
                problems.error(
                    field("value").as_str(),
                    format!("{:?} {why}", toleration.value),
                );
            }
        }
        TolerationOperator::Exists => {}
    }
    if toleration.toleration_seconds.is_some()
        && toleration.effect != Some(super::TaintEffect::NoExecute)
    {
        problems.error(
            field("tolerationSeconds").as_str(),
            "may only be set when effect is NoExecute",
        );
    }
}

/// `name` or `namespace/name` of a NetworkAttachmentDefinition; empty means "not used".
fn network_name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() > 2 {
        return Err(format!(
            "{text:?} is not a NetworkAttachmentDefinition name: expected `name` or \
             `namespace/name`"
        ));
    }
    for part in parts {
        dns1123_label(part).map_err(|why| format!("{text:?}: {why}"))?;
    }
    Ok(())
}

/// The name part of a label key, and a label value: up to 63 of `[A-Za-z0-9-_.]`,
/// alphanumeric at both ends.
fn label_name_shape(text: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    text.len() <= 63
        && text.starts_with(alnum)
        && text.ends_with(alnum)
        && text
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A label or taint key: `name` or `prefix/name`, the prefix a DNS subdomain.
fn qualified_name(text: &str) -> Result<(), String> {
    let (prefix, name) = match text.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    let prefix_ok = prefix.is_none_or(|p| dns1123_subdomain(p).is_ok());
    (prefix_ok && label_name_shape(name))
        .then_some(())
        .ok_or_else(|| {
            "must be a Kubernetes label key: `name` or `prefix/name`, where name is at most 63 \
         characters of letters, digits, '-', '_' and '.' starting and ending with a letter or \
         digit, and prefix is a DNS subdomain"
                .to_string()
        })
}

/// A label value (also a taint value): empty, or shaped like a label name.
fn label_value(text: &str) -> Result<(), String> {
    (text.is_empty() || label_name_shape(text))
        .then_some(())
        .ok_or_else(|| {
            "must be a Kubernetes label value: empty, or at most 63 characters of letters, \
             digits, '-', '_' and '.' starting and ending with a letter or digit"
                .to_string()
        })
}

/// The shortest probe interval: below it, rounds of the worst case's clients would flood the
/// server (and the report's rates mean nothing).
pub const PROBE_INTERVAL_MIN: GoDuration = GoDuration::from_millis(10);
/// The longest probe interval: beyond it, a run's first pass takes longer than its stage.
pub const PROBE_INTERVAL_MAX: GoDuration = GoDuration::from_secs(60);

/// Whether `interval` is a soak's report interval: 0 (the report at the end only) or at least
/// 1 s — the one rule, for `reportInterval` and `--report-interval` alike.
///
/// # Errors
///
/// What is expected and what was found.
pub fn check_report_interval(interval: GoDuration) -> Result<(), String> {
    if interval != GoDuration::ZERO && interval < GoDuration::from_secs(1) {
        return Err(format!(
            "must be 0s (the report is written at the end only) or at least 1s, found {interval}"
        ));
    }
    Ok(())
}

/// Whether `interval` lies in [`PROBE_INTERVAL_MIN`]..=[`PROBE_INTERVAL_MAX`] — the one rule,
/// for the configuration's `probeInterval` and the `--probe-interval` flag alike.
///
/// # Errors
///
/// What is expected and what was found, e.g. `must be at least 10ms, found 5ms`.
pub fn check_probe_interval(interval: GoDuration) -> Result<(), String> {
    if interval < PROBE_INTERVAL_MIN {
        Err(format!(
            "must be at least {PROBE_INTERVAL_MIN}, found {interval}"
        ))
    } else if interval > PROBE_INTERVAL_MAX {
        Err(format!(
            "must be at most {PROBE_INTERVAL_MAX}, found {interval}"
        ))
    } else {
        Ok(())
    }
}
