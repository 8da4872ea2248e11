//! NetworkAttachmentDefinition objects (`k8s.cni.cncf.io/v1`) and their CNI `spec.config`.
//!
//! `spec.config` is a JSON string holding either one CNI config or a conflist (`plugins`). The
//! first plugin creates the interface (its `type`, `master`, `mode`, `mtu` are what matter for
//! the network); a `tuning` plugin later in the chain that sets `mtu` has the last word on the
//! MTU; the IPAM is read from the first plugin that has one, with that plugin's
//! `runtimeConfig` and the config's `cniVersion`.

use serde::Serialize;
use serde_json::Value;

use super::ipam::{IpamReport, PluginContext, read_plugin_ipam};
use crate::field::{Field, Problems, type_name};

/// API group and version of NetworkAttachmentDefinitions.
pub const NAD_API_VERSION: &str = "k8s.cni.cncf.io/v1";
/// Their kind.
pub const NAD_KIND: &str = "NetworkAttachmentDefinition";
/// The annotation naming the device-plugin resource (SR-IOV VFs) a NAD's pods need.
pub const RESOURCE_NAME_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";

/// The `k8s.v1.cni.cncf.io/resourceName` annotation of a NAD object, when set.
pub fn resource_name(doc: &Value) -> Option<&str> {
    doc.pointer("/metadata/annotations")
        .and_then(|a| a.get(RESOURCE_NAME_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One NetworkAttachmentDefinition and what its config amounts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nad {
    /// `metadata.namespace` (or the default the caller gave).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The CNI config summary; `None` when `spec.config` is empty (Multus then looks for a
    /// config file of that name on each node) or did not parse.
    pub config: Option<CniSummary>,
}

impl Nad {
    /// `namespace/name`.
    pub fn namespaced_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The parts of a CNI config that decide how a network behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniSummary {
    /// `cniVersion`.
    pub cni_version: Option<String>,
    /// The main plugin's `type` (macvlan, ipvlan, bridge, host-device, …).
    pub plugin: String,
    /// Every plugin type in a conflist, in order (one entry for a single config).
    pub chain: Vec<String>,
    /// The parent interface: `master` (macvlan, ipvlan, vlan), `device` (host-device) or
    /// `bridge` (bridge).
    pub master: Option<String>,
    /// macvlan / ipvlan mode.
    pub mode: Option<String>,
    /// The interface's MTU, when set: the main plugin's `mtu`, or the one a later `tuning`
    /// plugin sets (it changes the interface after the main plugin made it).
    pub mtu: Option<u32>,
    /// The plugin type that set `mtu` when it is not the main plugin (`tuning`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu_set_by: Option<String>,
    /// The IPAM and its capacity.
    pub ipam: IpamReport,
}

const MACVLAN_MODES: &[&str] = &["bridge", "private", "vepa", "passthru", "source"];
const IPVLAN_MODES: &[&str] = &["l2", "l3", "l3s"];

/// Reads every NAD in a parsed YAML stream. Documents of other kinds are skipped with a warning.
/// Problems are filed under `NetworkAttachmentDefinition NS/NAME: <field>`.
pub fn read_nads(docs: &[Value], default_namespace: &str, problems: &mut Problems) -> Vec<Nad> {
    let mut nads = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let doc_label = format!("document {}", index + 1);
        if kind != NAD_KIND {
            problems.warn(
                doc_label,
                format!("skipped: kind {kind:?} is not {NAD_KIND}"),
            );
            continue;
        }
        if api != NAD_API_VERSION {
            problems.error(
                format!("{doc_label}.apiVersion"),
                format!("expected {NAD_API_VERSION:?} for a {NAD_KIND}, found {api:?}"),
            );
            continue;
        }
        let Some(name) = doc.pointer("/metadata/name").and_then(Value::as_str) else {
            problems.error(
                format!("{doc_label}.metadata.name"),
                "a NetworkAttachmentDefinition needs a name",
            );
            continue;
        };
        let namespace = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(default_namespace)
            .to_string();
        let prefix = format!("{NAD_KIND} {namespace}/{name}");
        let config = match doc.pointer("/spec/config") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => read_config(&prefix, s, problems),
            Some(other) => {
                problems.error(
                    format!("{prefix}: spec.config"),
                    format!(
                        "expected the CNI config as a JSON string, found {}",
                        type_name(other)
                    ),
                );
                None
            }
        };
        if config.is_none() && !problems.errors.iter().any(|e| e.field.starts_with(&prefix)) {
            problems.warn(
                format!("{prefix}: spec.config"),
                "empty: Multus looks for an on-disk CNI config of this name on each node; multinet cannot inspect it",
            );
        }
        if nads
            .iter()
            .any(|n: &Nad| n.namespace == namespace && n.name == name)
        {
            problems.error(
                format!("{prefix}: metadata.name"),
                "defined twice in this file",
            );
        }
        nads.push(Nad {
            namespace,
            name: name.to_string(),
            config,
        });
    }
    nads
}

/// Parses and summarises one `spec.config` string.
pub fn read_config(prefix: &str, text: &str, problems: &mut Problems) -> Option<CniSummary> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.error(
                format!("{prefix}: spec.config"),
                format!(
                    "is not valid JSON: line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            );
            return None;
        }
    };
    let mut local = Problems::default();
    let summary = summarise(&value, &mut local);
    problems.absorb_under(prefix, local);
    summary
}

fn summarise(value: &Value, problems: &mut Problems) -> Option<CniSummary> {
    let root = Field::new("spec.config", value);
    let map = root.mapping(problems)?;
    let cni_version = map
        .get("cniVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let plugins: Vec<(String, &Value)> = match map.get("plugins") {
        Some(list) => {
            let path = root.child_path("plugins");
            let items = path.at(list).list(problems)?;
            if items.is_empty() {
                problems.error(path.as_str(), "a conflist needs at least one plugin");
                return None;
            }
            items
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("spec.config.plugins[{i}]"), p))
                .collect()
        }
        None => vec![("spec.config".to_string(), value)],
    };
    let mut chain = Vec::new();
    for (path, plugin) in &plugins {
        let type_path = format!("{path}.type");
        match Field::new(&type_path, plugin.get("type").unwrap_or(&Value::Null)).string(problems) {
            Some(t) if !t.is_empty() => chain.push(t.to_string()),
            _ => problems.error(type_path, "every CNI plugin needs a `type`"),
        }
    }
    let (main_path, main) = plugins.first()?;
    let plugin = chain.first()?.clone();
    let master_key = match plugin.as_str() {
        "host-device" => "device",
        "bridge" => "bridge",
        _ => "master",
    };
    let master = main
        .get(master_key)
        .and_then(Value::as_str)
        .map(str::to_string);
    let mode = main.get("mode").and_then(Value::as_str).map(str::to_string);
    let allowed = match plugin.as_str() {
        "macvlan" => Some(MACVLAN_MODES),
        "ipvlan" => Some(IPVLAN_MODES),
        _ => None,
    };
    if let (Some(m), Some(allowed)) = (&mode, allowed)
        && !allowed.contains(&m.as_str())
    {
        problems.error(
            format!("{main_path}.mode"),
            format!(
                "{plugin} mode must be one of {}, found {m:?}",
                allowed.join(", ")
            ),
        );
    }
    let mut mtu = None;
    let mut mtu_set_by = None;
    for (i, (path, p)) in plugins.iter().enumerate() {
        // The main plugin's own `mtu`, then every `tuning` plugin after it in order.
        let sets_mtu = i == 0 || p.get("type").and_then(Value::as_str) == Some("tuning");
        let Some(value) = p.get("mtu").filter(|_| sets_mtu) else {
            continue;
        };
        let mtu_path = format!("{path}.mtu");
        let Some(m) = Field::new(&mtu_path, value).count(problems) else {
            continue;
        };
        if !(68..=65535).contains(&m) {
            problems.error(
                mtu_path,
                format!("an MTU must be from 68 to 65535, found {m}"),
            );
            continue;
        }
        mtu = Some(m);
        mtu_set_by = (i > 0).then(|| "tuning".to_string());
    }
    let (ipam_path, ipam_plugin) = plugins
        .iter()
        .find(|(_, p)| p.get("ipam").is_some_and(|i| !i.is_null()))
        .map(|(path, p)| (path.clone(), *p))
        .unwrap_or_else(|| (main_path.clone(), *main));
    let field_path = format!("{ipam_path}.ipam");
    let runtime_path = format!("{ipam_path}.runtimeConfig");
    let context = PluginContext {
        cni_version: cni_version.as_deref(),
        runtime_config: ipam_plugin
            .get("runtimeConfig")
            .filter(|r| r.is_object())
            .map(|r| Field::new(&runtime_path, r)),
    };
    let ipam = read_plugin_ipam(
        Field::new(&field_path, ipam_plugin.get("ipam").unwrap_or(&Value::Null)),
        context,
        problems,
    );
    Some(CniSummary {
        cni_version,
        plugin,
        chain,
        master,
        mode,
        mtu,
        mtu_set_by,
        ipam,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    const NADS: &str = r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: public-net, namespace: rook-ceph}
spec:
  config: '{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "mode": "bridge", "mtu": 9000,
            "ipam": {"type": "whereabouts", "range": "192.168.20.0/24", "routes": [{"dst": "192.168.29.0/24"}]}}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: cluster-net}
spec:
  config: '{"cniVersion": "1.0.0", "name": "cluster-net", "plugins": [{"type": "bridge", "bridge": "br-ceph", "ipam": {"type": "host-local", "subnet": "fd00:10::/120"}}, {"type": "tuning"}]}'
---
kind: ConfigMap
"#;

    #[test]
    fn reads_single_configs_and_conflists() {
        let mut p = Problems::default();
        let nads = read_nads(&parse_documents(NADS).expect("yaml"), "default-ns", &mut p);
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(
            p.warnings.len(),
            1,
            "the ConfigMap is skipped with a warning"
        );
        assert_eq!(nads.len(), 2);
        let public = nads[0].config.as_ref().expect("config");
        assert_eq!(
            (public.plugin.as_str(), public.master.as_deref(), public.mtu),
            ("macvlan", Some("eth1"), Some(9000))
        );
        assert_eq!(public.ipam.capacity, Some(254));
        assert_eq!(nads[1].namespaced_name(), "default-ns/cluster-net");
        let cluster = nads[1].config.as_ref().expect("config");
        assert_eq!(cluster.chain, ["bridge", "tuning"]);
        assert_eq!(cluster.master.as_deref(), Some("br-ceph"));
        assert_eq!(cluster.ipam.capacity, Some(255 - 1));
    }

    #[test]
    fn bad_configs_name_object_and_field() {
        let cases = [
            (
                r#"{"type": "macvlan", "mode": "fast", "ipam": {"type": "dhcp"}}"#,
                "spec.config.mode",
            ),
            (r#"{"type": "macvlan", "mtu": 20}"#, "spec.config.mtu"),
            (r#"{"type": "macvlan", "mtu": "big"}"#, "spec.config.mtu"),
            (r#"{"master": "eth0"}"#, "spec.config.type"),
            (r#"{"plugins": []}"#, "spec.config.plugins"),
            (
                r#"{"plugins": [{"type": "macvlan"}, {}]}"#,
                "spec.config.plugins[1].type",
            ),
            (
                r#"{"type": "macvlan", "ipam": {"type": "whereabouts", "range": "10.0.0.0/33"}}"#,
                "spec.config.ipam.range",
            ),
            (r#"{"type": "macvlan",, }"#, "spec.config"),
            (r#"[1, 2]"#, "spec.config"),
        ];
        for (config, field) in cases {
            let mut p = Problems::default();
            read_config("NetworkAttachmentDefinition ns/n", config, &mut p);
            let want = format!("NetworkAttachmentDefinition ns/n: {field}");
            assert!(
                p.errors.iter().any(|e| e.field == want),
                "{config}: expected {want}, got {:?}",
                p.errors
            );
        }
    }

    #[test]
    fn wrong_api_version_and_missing_name() {
        let mut p = Problems::default();
        let docs = parse_documents("apiVersion: v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: a}\n---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {}\n").expect("yaml");
        read_nads(&docs, "ns", &mut p);
        let fields: Vec<_> = p.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["document 1.apiVersion", "document 2.metadata.name"]
        );
    }
}
