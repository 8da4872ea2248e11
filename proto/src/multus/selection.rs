//! The Network Attachment Selection Annotation (`k8s.v1.cni.cncf.io/networks`).
//!
//! Two forms exist. The short form is a comma-separated list of `[namespace/]name[@interface]`,
//! every part a DNS-1123 label, spaces around the parts trimmed (see [`parse_selections`]). The
//! JSON form is a list of selection elements; it is chosen whenever the text contains `[`, `{`
//! or `"`, exactly as Multus decides. Rook also accepts a single JSON object (legacy) and wraps
//! it in a list. A missing namespace means the pod's (for Rook: the cluster's) namespace; after
//! parsing every selection carries its namespace.
//!
//! Whatever the form, each selection is then held to one set of rules (`check_element`): a
//! selection one form accepts, the others accept too, so the short form rendered to the JSON
//! form always parses back.
//!
//! Rendering always produces the JSON form, which is what Rook puts on its pods.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cidr::{Cidr, parse_ip};
use crate::names::{dns1123_label, dns1123_subdomain, interface_name};

/// One requested attachment. Field order and names follow the Network Plumbing WG client's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkSelection {
    /// The NetworkAttachmentDefinition's name.
    pub name: String,
    /// Its namespace; always set once parsed (defaulted to the pod's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Requested static addresses (with or without prefix length).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// Requested MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Requested InfiniBand GUID.
    #[serde(
        default,
        rename = "infiniband-guid",
        skip_serializing_if = "Option::is_none"
    )]
    pub infiniband_guid: Option<String>,
    /// The interface name inside the pod; Multus picks `net1`, `net2`, … when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Port mappings, passed through to CNI as they are.
    #[serde(
        default,
        rename = "portMappings",
        skip_serializing_if = "Option::is_none"
    )]
    pub port_mappings: Option<Value>,
    /// Bandwidth limits, passed through to CNI as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Value>,
    /// Extra CNI args merged into the plugin's `args`.
    #[serde(default, rename = "cni-args", skip_serializing_if = "Option::is_none")]
    pub cni_args: Option<Map<String, Value>>,
    /// Gateways for a default route through this attachment.
    #[serde(
        default,
        rename = "default-route",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_route: Vec<String>,
    /// IPAMClaim to take addresses from.
    #[serde(
        default,
        rename = "ipam-claim-reference",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_claim_reference: Option<String>,
}

/// Keys a selection element may carry; anything else is ignored by Multus.
const KNOWN_KEYS: &[&str] = &[
    "name",
    "namespace",
    "ips",
    "mac",
    "infiniband-guid",
    "interface",
    "portMappings",
    "bandwidth",
    "cni-args",
    "default-route",
    "ipam-claim-reference",
];

/// Why a selection annotation did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectionError(pub String);

/// A parsed annotation: the selections plus anything worth a warning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedSelections {
    /// The selections in order.
    pub selections: Vec<NetworkSelection>,
    /// Accepted oddities (unknown keys Multus will ignore).
    pub warnings: Vec<String>,
}

impl NetworkSelection {
    /// `namespace/name`, the form Multus uses in `network-status`.
    pub fn namespaced_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for NetworkSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.namespaced_name())?;
        if let Some(iface) = &self.interface {
            write!(f, "@{iface}")?;
        }
        Ok(())
    }
}

/// True when Multus would read `text` as the JSON form.
pub fn is_json_form(text: &str) -> bool {
    text.contains(['[', '{', '"'])
}

/// Parses a selection annotation (either form); `default_namespace` fills missing namespaces.
pub fn parse_selections(
    text: &str,
    default_namespace: &str,
) -> Result<ParsedSelections, SelectionError> {
    let trimmed = text.trim();
    let mut parsed = if is_json_form(trimmed) {
        parse_json(trimmed)?
    } else {
        parse_short(trimmed)?
    };
    for selection in &mut parsed.selections {
        if selection.namespace.as_deref().is_none_or(str::is_empty) {
            selection.namespace = Some(default_namespace.to_string());
        }
    }
    Ok(parsed)
}

/// Parses a selector that must name exactly one network (Rook's rule for CephCluster selectors).
pub fn parse_single_selection(
    text: &str,
    default_namespace: &str,
) -> Result<(NetworkSelection, Vec<String>), SelectionError> {
    let parsed = parse_selections(text, default_namespace)?;
    let count = parsed.selections.len();
    let mut selections = parsed.selections;
    match (selections.pop(), count) {
        (Some(only), 1) => Ok((only, parsed.warnings)),
        (_, 0) => Err(SelectionError("selects no network".into())),
        (_, n) => Err(SelectionError(format!(
            "selects {n} networks; exactly one is supported here"
        ))),
    }
}

/// The short form as the network-attachment-definition-client's `ParseNetworkAnnotation` /
/// `parsePodNetworkObjectText` read it (`pkg/utils/net-attach-def.go`): items split at `,` and
/// trimmed; each split at `/` (at most one: "failed at '/'") and its rest at `@` (at most one:
/// "failed at '@'"), every part trimmed; an empty namespace means the default one, an empty
/// interface none. Each non-empty part must match the DNS-1123 label pattern
/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`. What the item selects is then held to the same rules as a
/// JSON element ([`check_element`]), so both forms accept the same selections.
fn parse_short(text: &str) -> Result<ParsedSelections, SelectionError> {
    if text.is_empty() {
        return Ok(ParsedSelections::default());
    }
    let items: Vec<&str> = text.split(',').collect();
    let several = items.len() > 1;
    let mut selections = Vec::new();
    for (index, raw) in items.into_iter().enumerate() {
        let item = raw.trim();
        let fail = |msg: String| {
            SelectionError(if several {
                format!("item {} ({item:?}): {msg}", index + 1)
            } else {
                format!("{item:?}: {msg}")
            })
        };
        // Names the part only when it is not the whole item, so no name is said twice.
        let part = |kind: &str, value: &str| {
            if value == item {
                kind.to_string()
            } else {
                format!("{kind} {value:?}")
            }
        };
        let slashes: Vec<&str> = item.split('/').collect();
        let (namespace, rest) = match slashes.as_slice() {
            [rest] => (None, *rest),
            [ns, rest] => (Some(ns.trim()).filter(|ns| !ns.is_empty()), *rest),
            _ => {
                return Err(fail(format!(
                    "has {} '/' where at most one may separate namespace and name (Multus: \
                     \"failed at '/'\")",
                    slashes.len() - 1
                )));
            }
        };
        let ats: Vec<&str> = rest.split('@').collect();
        let (name, interface) = match ats.as_slice() {
            [name] => (name.trim(), None),
            [name, iface] => (name.trim(), Some(iface.trim()).filter(|i| !i.is_empty())),
            _ => {
                return Err(fail(format!(
                    "has {} '@' after the namespace where at most one may name the interface \
                     (Multus: \"failed at '@'\")",
                    ats.len() - 1
                )));
            }
        };
        if let Some(ns) = namespace {
            label_chars(ns).map_err(|e| fail(format!("{} {e}", part("the namespace", ns))))?;
        }
        if !name.is_empty() {
            label_chars(name)
                .map_err(|e| fail(format!("{} {e}", part("the network name", name))))?;
        }
        if let Some(iface) = interface {
            label_chars(iface).map_err(|e| {
                fail(format!(
                    "{} {e}; the JSON form's \"interface\" takes other names",
                    part("the interface", iface)
                ))
            })?;
        }
        let selection = NetworkSelection {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
            interface: interface.map(str::to_string),
            ..NetworkSelection::default()
        };
        check_element(&selection).map_err(|e| fail(e.to_string()))?;
        selections.push(selection);
    }
    Ok(ParsedSelections {
        selections,
        warnings: Vec::new(),
    })
}

/// The short form's pattern for every part: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` (no length limit).
fn label_chars(text: &str) -> Result<(), String> {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = text.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.iter().all(|b| alnum(*b) || *b == b'-')
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1]);
    if ok {
        Ok(())
    } else {
        Err(
            "must be lowercase letters, digits and '-', starting and ending with a letter or \
             digit (the short form's DNS-1123 label pattern)"
                .into(),
        )
    }
}

fn parse_json(text: &str) -> Result<ParsedSelections, SelectionError> {
    // Rook's legacy form: one JSON object rather than a list.
    let value: Value = serde_json::from_str(text)
        .map_err(|e| SelectionError(format!("is not valid JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(SelectionError(format!(
                "JSON form must be a list of selection objects, found {}",
                crate::field::type_name(&other)
            )));
        }
    };
    let mut parsed = ParsedSelections::default();
    for (index, item) in items.into_iter().enumerate() {
        let at = |msg: String| SelectionError(format!("element {}: {msg}", index + 1));
        let Value::Object(map) = &item else {
            return Err(at(format!(
                "expected an object, found {}",
                crate::field::type_name(&item)
            )));
        };
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN_KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            parsed.warnings.push(format!(
                "element {}: unknown key(s) {} are ignored by Multus",
                index + 1,
                unknown.join(", ")
            ));
        }
        let selection: NetworkSelection =
            serde_json::from_value(item).map_err(|e| at(e.to_string()))?;
        check_element(&selection).map_err(|e| at(e.to_string()))?;
        parsed.selections.push(selection);
    }
    Ok(parsed)
}

/// A selection element that breaks one of [`check_element`]'s rules: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ElementError {
    /// The element's JSON key (`name`, `namespace`, `interface`, `ips`, …).
    field: &'static str,
    /// What is wrong and, where Multus would accept it, that it is multinet's rule and why.
    message: String,
}

impl fmt::Display for ElementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The rules for one selection element, whatever form it was written in (short, JSON list,
/// legacy object), so that every form accepts the same selections and a short-form selection
/// rendered to the JSON form parses back. Multus and the network-attachment-definition-client
/// do not check names, namespaces or interfaces against Kubernetes' or Linux's limits; multinet
/// does, because an element that breaks them only fails later, when the pod is created:
///
/// * `name`: required, a DNS-1123 subdomain (at most 253 characters) — the only names a
///   NetworkAttachmentDefinition can have;
/// * `namespace`: empty (the default one) or a DNS-1123 label (at most 63) — the only names a
///   namespace can have;
/// * `interface`: a Linux interface name (1–15 bytes, no '/', ':' or whitespace) — the kernel
///   refuses any other;
/// * `ips`: addresses or CIDRs; `mac`: six hex octets; `default-route`: addresses;
///   `ipam-claim-reference` not together with `ips`.
fn check_element(selection: &NetworkSelection) -> Result<(), ElementError> {
    let err = |field: &'static str, message: String| ElementError { field, message };
    if selection.name.is_empty() {
        return Err(err(
            "name",
            "is empty (multinet's rule: Multus would look for a NetworkAttachmentDefinition \
             with an empty name and fail the pod)"
                .into(),
        ));
    }
    dns1123_subdomain(&selection.name).map_err(|e| {
        err(
            "name",
            format!(
                "{e} (multinet's rule: NetworkAttachmentDefinition names are DNS-1123 \
                 subdomains, so none has this name)"
            ),
        )
    })?;
    if let Some(ns) = selection.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        dns1123_label(ns).map_err(|e| {
            err(
                "namespace",
                format!(
                    "{e} (multinet's rule: Kubernetes namespace names are DNS-1123 labels, so \
                     no such namespace can exist)"
                ),
            )
        })?;
    }
    if let Some(iface) = &selection.interface {
        interface_name(iface).map_err(|e| {
            err(
                "interface",
                format!("{e} (multinet's rule: the pod's interface could not be made)"),
            )
        })?;
    }
    for ip in &selection.ips {
        if parse_ip(ip).is_none() && ip.parse::<Cidr>().is_err() {
            return Err(err("ips", format!("{ip:?} is not an IP address or CIDR")));
        }
    }
    if let Some(mac) = &selection.mac
        && !is_mac(mac)
    {
        return Err(err(
            "mac",
            format!("{mac:?} is not a MAC address such as 02:00:00:00:00:01"),
        ));
    }
    for gw in &selection.default_route {
        if parse_ip(gw).is_none() {
            return Err(err("default-route", format!("{gw:?} is not an IP address")));
        }
    }
    if selection.ipam_claim_reference.is_some() && !selection.ips.is_empty() {
        return Err(err(
            "ipam-claim-reference",
            "cannot be combined with \"ips\"".into(),
        ));
    }
    Ok(())
}

fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The annotation value for `selections`, in JSON form; empty when there is none (Rook leaves
/// the annotation empty then).
pub fn render_annotation(selections: &[NetworkSelection]) -> String {
    if selections.is_empty() {
        return String::new();
    }
    // Serializing plain strings, vectors and maps cannot fail.
    serde_json::to_string(selections).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_form() {
        let p = parse_selections("macvlan@net1, other/pub", "rook-ceph").expect("valid");
        assert_eq!(p.selections.len(), 2);
        assert_eq!(p.selections[0].to_string(), "rook-ceph/macvlan@net1");
        assert_eq!(p.selections[1].namespaced_name(), "other/pub");
        assert_eq!(p.selections[1].interface, None);
    }

    /// The short form, row by row, as k8snetworkplumbingwg/network-attachment-definition-client
    /// `pkg/utils/net-attach-def.go` `ParseNetworkAnnotation` / `parsePodNetworkObjectText`
    /// read it: items and parts trimmed, at most one '/' and one '@', an empty namespace or
    /// interface meaning none, every part on the DNS-1123 label pattern.
    #[test]
    fn short_form_table() {
        let ok: &[(&str, &[&str])] = &[
            (" ns / pub @ net1 ", &["ns/pub@net1"]),
            ("pub@net1,  other/clu ", &["default/pub@net1", "other/clu"]),
            ("/pub", &["default/pub"]),
            ("pub@", &["default/pub"]),
            // The client's pattern has no length limit; 70 is within a subdomain's 253.
            (&"n".repeat(70), &[]),
        ];
        for (text, want) in ok {
            let parsed = parse_selections(text, "default").expect(text);
            let got: Vec<String> = parsed.selections.iter().map(ToString::to_string).collect();
            if !want.is_empty() {
                assert_eq!(&got, want, "{text:?}");
            }
        }
        let bad: &[(&str, &str)] = &[
            ("root@a/root@b/root@c", "has 2 '/'"),
            ("ns/a@b@c", "has 2 '@'"),
            ("Upper", "the network name must be"),
            ("ns/Bad_Name", "the network name \"Bad_Name\" must be"),
            ("Bad/pub", "the namespace \"Bad\" must be"),
            ("pub@Net1", "the interface \"Net1\" must be"),
            ("pub@this-is-far-too-long", "at most 15"),
            ("a,,b", "item 2 (\"\"): name: is empty (multinet's rule"),
        ];
        for (text, want) in bad {
            let err = parse_selections(text, "default").expect_err(text).0;
            assert!(err.contains(want), "{text:?}: {err}");
            // No name said twice: the item is quoted once, a part only when it differs.
            if !text.contains(',') {
                let quoted = format!("{text:?}");
                assert_eq!(err.matches(&quoted).count(), 1, "{text:?}: {err}");
            }
        }
    }

    /// Each rule of `check_element` in each form it can be written in: the short form, the JSON
    /// list and the legacy single object. Rows whose rule a form cannot express (the short form
    /// has no `ips`) leave it out; where the short form's own pattern refuses first, its row
    /// says so. Found by fuzzing (`annotation` target): the short form let a 36-character
    /// interface through that the JSON form refused.
    #[test]
    fn every_rule_in_every_form() {
        let long_name = "n".repeat(254);
        let long_ns = "s".repeat(64);
        let long_iface = "i".repeat(16);
        let json = |element: &str| format!("[{element}]");
        // (rule, short form or "", JSON element, what every form's message holds)
        let rows: Vec<(&str, String, String, &str)> = vec![
            (
                "name is required",
                "ns/@net1".into(),
                r#"{"name":""}"#.into(),
                "name: is empty (multinet's rule",
            ),
            (
                "name at most 253 characters",
                long_name.clone(),
                format!(r#"{{"name":"{long_name}"}}"#),
                "name: \"nnnnnnnnnnnnnnnnnnnn\"… is 254 characters long; at most 253",
            ),
            (
                "namespace at most 63 characters",
                format!("{long_ns}/pub"),
                format!(r#"{{"name":"pub","namespace":"{long_ns}"}}"#),
                "is 64 characters long; at most 63 are allowed (multinet's rule: Kubernetes namespace",
            ),
            (
                "interface at most 15 bytes",
                format!("pub@{long_iface}"),
                format!(r#"{{"name":"pub","interface":"{long_iface}"}}"#),
                "interface: interface name \"iiiiiiiiiiiiiiii\" is 16 bytes long; Linux allows at \
                 most 15 (multinet's rule: the pod's interface could not be made)",
            ),
            (
                "the fuzzer's finding",
                "1@ll1lzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzl,l".into(),
                r#"{"name":"1","interface":"ll1lzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzl"},{"name":"l"}"#
                    .into(),
                "is 36 bytes long; Linux allows at most 15",
            ),
            (
                "interface without '/'",
                String::new(),
                r#"{"name":"pub","interface":"a/b"}"#.into(),
                "interface: interface name \"a/b\" contains '/'",
            ),
            (
                "name a subdomain",
                String::new(),
                r#"{"name":"Pub_Net"}"#.into(),
                "name: \"Pub_Net\" is not a DNS-1123 (RFC 1123) subdomain",
            ),
            (
                "namespace a label",
                String::new(),
                r#"{"name":"pub","namespace":"a.b"}"#.into(),
                "namespace: \"a.b\" is not a DNS-1123 label",
            ),
            (
                "ips are addresses",
                String::new(),
                r#"{"name":"pub","ips":["198.18.0.300"]}"#.into(),
                "ips: \"198.18.0.300\" is not an IP address or CIDR",
            ),
            (
                "mac is six octets",
                String::new(),
                r#"{"name":"pub","mac":"02:00:00:00:00"}"#.into(),
                "mac: \"02:00:00:00:00\" is not a MAC address",
            ),
            (
                "default-route holds addresses",
                String::new(),
                r#"{"name":"pub","default-route":["198.18.0.0/24"]}"#.into(),
                "default-route: \"198.18.0.0/24\" is not an IP address",
            ),
            (
                "a claim or ips",
                String::new(),
                r#"{"name":"pub","ips":["198.18.0.5"],"ipam-claim-reference":"c"}"#.into(),
                "ipam-claim-reference: cannot be combined with \"ips\"",
            ),
        ];
        for (rule, short, element, want) in rows {
            let mut forms = vec![("JSON list", json(&element))];
            // The legacy object holds one element only.
            if !element.contains("},{") {
                forms.push(("legacy object", element.clone()));
            }
            if !short.is_empty() {
                forms.push(("short form", short));
            }
            for (form, text) in forms {
                let err = parse_selections(&text, "default")
                    .expect_err(&format!("{rule}, {form}: {text}"))
                    .0;
                assert!(err.contains(want), "{rule}, {form}: {err}");
            }
        }
        // The short form's own pattern (the client's rule) refuses before the shared rules.
        for (short, want) in [
            ("Pub_Net", "the network name must be"),
            ("A.b/pub", "the namespace \"A.b\" must be"),
            ("pub@Net1", "the interface \"Net1\" must be"),
        ] {
            let err = parse_selections(short, "default").expect_err(short).0;
            assert!(err.contains(want), "{short}: {err}");
            assert!(
                err.contains("the short form's DNS-1123 label pattern"),
                "{err}"
            );
        }
    }

    /// Pass-through values are written back as they were read. Found by fuzzing (`annotation`
    /// target): an integer too large for u64 was read as a float one step off the closest, so
    /// rendering and reading it again gave another number.
    #[test]
    fn pass_through_numbers_survive_rendering() {
        let text = r#"[{"name":"pub","portMappings":[{"hostPort":3333333333333333331333333333333133333380}],"bandwidth":{"ingressRate":0.1,"egressRate":1.7976931348623157e308}}]"#;
        let parsed = parse_selections(text, "ns").expect("valid").selections;
        let port = &parsed[0].port_mappings.as_ref().expect("portMappings")[0]["hostPort"];
        assert_eq!(
            port.as_f64(),
            Some(3333333333333333331333333333333133333380.0),
            "read as the closest f64"
        );
        let again = parse_selections(&render_annotation(&parsed), "ns").expect("rendered");
        assert_eq!(again.selections, parsed);
    }

    #[test]
    fn json_and_legacy_forms() {
        let list = r#"[{"name":"pub","namespace":"ns","interface":"public","ips":["198.18.0.5/24"],"unknown":1}]"#;
        let p = parse_selections(list, "rook-ceph").expect("valid");
        assert_eq!(p.selections[0].to_string(), "ns/pub@public");
        assert_eq!(p.warnings.len(), 1);
        let legacy = parse_single_selection(r#"{"name": "pub"}"#, "rook-ceph").expect("valid");
        assert_eq!(legacy.0.namespaced_name(), "rook-ceph/pub");
    }

    #[test]
    fn rook_style_annotation_rendering() {
        let a = parse_single_selection("ns/macvlan@net1", "x")
            .expect("valid")
            .0;
        let b = parse_single_selection("ns/macvlan@net2", "x")
            .expect("valid")
            .0;
        assert_eq!(
            render_annotation(&[a, b]),
            r#"[{"name":"macvlan","namespace":"ns","interface":"net1"},{"name":"macvlan","namespace":"ns","interface":"net2"}]"#
        );
        assert_eq!(render_annotation(&[]), "");
    }

    #[test]
    fn invalid_inputs() {
        for bad in [
            "multus%net",
            r#"[{"name": "#,
            "a/b/c",
            "a@b@c",
            "Upper",
            "a,,b",
            "ns/",
            r#"[{"namespace":"x"}]"#,
            r#"[{"name":"a","mac":"zz"}]"#,
            r#"[{"name":"a","ips":["300.1.1.1"]}]"#,
            r#"[{"name":"a","interface":"this-is-far-too-long"}]"#,
            r#""just a string""#,
            "[1]",
        ] {
            assert!(parse_selections(bad, "ns").is_err(), "{bad} should fail");
        }
        assert!(parse_single_selection("a,b", "ns").is_err());
        assert!(parse_single_selection("", "ns").is_err());
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?"
    }

    fn selection() -> impl Strategy<Value = NetworkSelection> {
        (
            label(),
            label(),
            proptest::option::of("[a-z][a-z0-9_]{0,14}"),
            proptest::collection::vec(
                (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("198.18.{a}.{b}")),
                0..3,
            ),
            proptest::option::of("02:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}"),
            passthrough(),
        )
            .prop_map(
                |(
                    name,
                    ns,
                    interface,
                    ips,
                    mac,
                    (cni_args, gateways, ports, bandwidth, guid, claim),
                )| {
                    // Multus takes a claim's addresses or `ips`, never both.
                    let claim = claim.filter(|_| ips.is_empty());
                    NetworkSelection {
                        name,
                        namespace: Some(ns),
                        interface,
                        ips,
                        mac,
                        infiniband_guid: guid,
                        port_mappings: ports,
                        bandwidth,
                        cni_args,
                        default_route: gateways,
                        ipam_claim_reference: claim,
                    }
                },
            )
    }

    /// The fields Multus passes on to CNI as they are: `cni-args`, `default-route`,
    /// `portMappings`, `bandwidth`, `infiniband-guid`, `ipam-claim-reference`.
    #[allow(clippy::type_complexity)]
    fn passthrough() -> impl Strategy<
        Value = (
            Option<Map<String, Value>>,
            Vec<String>,
            Option<Value>,
            Option<Value>,
            Option<String>,
            Option<String>,
        ),
    > {
        (
            proptest::option::of(
                proptest::collection::btree_map("[a-zA-Z]{1,8}", "[ -~]{0,8}", 0..3).prop_map(
                    |m| {
                        m.into_iter()
                            .map(|(k, v)| (k, Value::String(v)))
                            .collect::<Map<String, Value>>()
                    },
                ),
            ),
            proptest::collection::vec((0u8..=255).prop_map(|a| format!("198.18.0.{a}")), 0..2),
            proptest::option::of((1u16..=65535).prop_map(|p| {
                serde_json::json!([{"hostPort": p, "containerPort": p, "protocol": "tcp"}])
            })),
            proptest::option::of((1u32..=1_000_000).prop_map(|r| {
                serde_json::json!({"ingressRate": r, "ingressBurst": r, "egressRate": r, "egressBurst": r})
            })),
            proptest::option::of("[0-9a-f]{2}(:[0-9a-f]{2}){7}"),
            proptest::option::of(label()),
        )
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(selections in proptest::collection::vec(selection(), 1..4)) {
            let text = render_annotation(&selections);
            let parsed = parse_selections(&text, "unused").expect("rendered annotation parses");
            prop_assert_eq!(parsed.selections, selections);
        }

        /// One set of rules whatever the form: a short-form item and the same selection as a
        /// JSON element are accepted or refused together, and accepted they are equal. The
        /// lengths straddle every limit (name 253, namespace 63, interface 15).
        #[test]
        fn short_and_json_forms_agree(
            name in "[a-z0-9]{1,2}|[a-z0-9]{250,256}",
            ns in proptest::option::of("[a-z0-9]{1,2}|[a-z0-9]{60,66}"),
            iface in proptest::option::of("[a-z0-9]{1,3}|[a-z0-9]{13,18}"),
        ) {
            let mut short = name.clone();
            if let Some(ns) = &ns {
                short = format!("{ns}/{short}");
            }
            if let Some(iface) = &iface {
                short = format!("{short}@{iface}");
            }
            let element = NetworkSelection {
                name,
                namespace: ns,
                interface: iface,
                ..NetworkSelection::default()
            };
            let from_short = parse_selections(&short, "default");
            let from_json = parse_selections(&render_annotation(&[element]), "default");
            prop_assert_eq!(from_short.is_ok(), from_json.is_ok(), "{:?} / {:?}", from_short, from_json);
            if let (Ok(a), Ok(b)) = (from_short, from_json) {
                prop_assert_eq!(a.selections, b.selections);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = parse_selections(&text, "ns");
        }
    }
}
