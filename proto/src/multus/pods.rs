//! Live pods as `kubectl get pods -o yaml` prints them: what each pod asked Multus for (the
//! `k8s.v1.cni.cncf.io/networks` annotation) against what Multus reports it attached (the
//! `k8s.v1.cni.cncf.io/network-status` annotation), and addresses two pods hold on one network.
//!
//! The input is a `List` (or `PodList`) with `items`, bare `Pod` documents, or both, as parsed
//! YAML values. Each selection is parsed by [`super::selection::parse_selections`] (short form,
//! JSON list and Rook's legacy JSON object), each status by [`super::status`]. The matching of
//! selections to status entries follows Multus: an entry is named `namespace/name` of the NAD
//! (`pkg/types/conf.go` / `pkg/netutils` of k8snetworkplumbingwg/multus-cni write it), and an
//! interface not named in the selection is picked by Multus (`net1`, `net2`, …), so an entry is
//! matched by NAD name, and by interface only when the selection names one.
//!
//! Pods with `spec.hostNetwork: true` are left out of the attachment checks (Multus does not
//! attach networks to them), and so are pods not scheduled yet (no sandbox exists for Multus to
//! attach to) and pods that have ended (`Succeeded`, `Failed`: their
//! sandbox and its addresses are gone). Every pod listed counts as existing, for the IPPool
//! checks in [`super::ippool`].
//!
//! This module reads no files and never panics on bad input: every problem is filed under
//! `Pod NAMESPACE/NAME: FIELD`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::selection::{NetworkSelection, parse_selections};
use super::status::{NetworkStatus, parse_network_status};
use super::{LEGACY_NETWORKS_STATUS_ANNOTATION, NETWORK_STATUS_ANNOTATION, NETWORKS_ANNOTATION};
use crate::field::{Field, Problems};

/// One pod, as far as its secondary networks go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LivePod {
    /// `metadata.namespace` (`default` when absent, as `kubectl apply` would place it).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.nodeName`; absent while the pod is not scheduled.
    pub node: Option<String>,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: Option<String>,
    /// `spec.hostNetwork`: Multus attaches nothing to such pods.
    pub host_network: bool,
    /// The selections of its `k8s.v1.cni.cncf.io/networks` annotation, namespaces filled in.
    pub requested: Vec<NetworkSelection>,
    /// Its `network-status` entries; `None` when the annotation is absent (Multus has not
    /// attached the networks, or the pod has none).
    pub status: Option<Vec<NetworkStatus>>,
}

impl LivePod {
    /// `namespace/name`, the pod reference whereabouts stores (`podref`).
    pub fn pod_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// `namespace/name (node NODE)` for messages.
    pub fn described(&self) -> String {
        format!(
            "{} (node {})",
            self.pod_ref(),
            self.node.as_deref().unwrap_or("not scheduled")
        )
    }

    /// True when the attachment checks apply: scheduled (no sandbox, so no Multus, before),
    /// not host-network, not ended.
    pub fn is_attached_by_multus(&self) -> bool {
        self.node.is_some()
            && !self.host_network
            && !matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    /// Every address its `network-status` lists on secondary networks (the default network's
    /// entry left out, as whereabouts' reconciler leaves it out).
    pub fn secondary_addresses(&self) -> BTreeSet<IpAddr> {
        self.status
            .iter()
            .flatten()
            .filter(|e| !e.default)
            .flat_map(NetworkStatus::addresses)
            .collect()
    }
}

/// Reads every pod of a parsed YAML stream: `List`/`PodList` documents (their `items`) and bare
/// `Pod` documents. Other kinds are skipped with a warning; a pod without a name, or with an
/// annotation that does not parse, is an error naming the pod and the field.
pub fn read_pods(docs: &[Value], problems: &mut Problems) -> Vec<LivePod> {
    let mut pods = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let label = format!("document {}", index + 1);
        match doc.get("kind").and_then(Value::as_str) {
            Some("List" | "PodList") => {
                let path = format!("{label}.items");
                let items = Field::new(&path, doc.get("items").unwrap_or(&Value::Null));
                for (i, item) in items.list(problems).unwrap_or_default().iter().enumerate() {
                    let item_label = format!("{path}[{i}]");
                    match item.get("kind").and_then(Value::as_str) {
                        // `kubectl get -o yaml` writes the kind on every item; a PodList from the
                        // API leaves it out.
                        Some("Pod") | None => {
                            if let Some(pod) = read_pod(&item_label, item, problems) {
                                pods.push(pod);
                            }
                        }
                        Some(other) => {
                            problems.warn(item_label, format!("skipped: kind {other:?} is not Pod"))
                        }
                    }
                }
            }
            Some("Pod") => {
                if let Some(pod) = read_pod(&label, doc, problems) {
                    pods.push(pod);
                }
            }
            other => problems.warn(
                label,
                format!(
                    "skipped: kind {:?} is neither Pod nor a List of pods",
                    other.unwrap_or("")
                ),
            ),
        }
    }
    let mut seen = BTreeSet::new();
    for pod in &pods {
        if !seen.insert(pod.pod_ref()) {
            problems.error(
                format!("Pod {}: metadata.name", pod.pod_ref()),
                "listed twice (two lists of the same pods? pass one `kubectl get pods -A -o yaml`)",
            );
        }
    }
    pods
}

fn read_pod(label: &str, doc: &Value, problems: &mut Problems) -> Option<LivePod> {
    let (namespace, name) = super::live_object_name(label, doc, "v1", "a Pod", problems)?;
    let prefix = format!("Pod {namespace}/{name}");
    let mut local = Problems::default();
    let node = Field::new(
        "spec.nodeName",
        doc.pointer("/spec/nodeName").unwrap_or(&Value::Null),
    )
    .string(&mut local)
    .filter(|n| !n.is_empty())
    .map(str::to_string);
    let phase = Field::new(
        "status.phase",
        doc.pointer("/status/phase").unwrap_or(&Value::Null),
    )
    .string(&mut local)
    .map(str::to_string);
    let host_network = Field::new(
        "spec.hostNetwork",
        doc.pointer("/spec/hostNetwork").unwrap_or(&Value::Null),
    )
    .boolean(&mut local)
    .unwrap_or(false);
    let annotations = Field::new(
        "metadata.annotations",
        doc.pointer("/metadata/annotations").unwrap_or(&Value::Null),
    )
    .mapping(&mut local);
    let annotation = |key: &str, local: &mut Problems| {
        let path = format!("metadata.annotations[{key:?}]");
        annotations
            .and_then(|a| a.get(key))
            .and_then(|v| Field::new(&path, v).string(local))
            .map(|s| (path, s))
    };
    let mut requested = Vec::new();
    if let Some((path, text)) = annotation(NETWORKS_ANNOTATION, &mut local) {
        match parse_selections(text, &namespace) {
            Ok(parsed) => {
                for w in parsed.warnings {
                    local.warn(path.as_str(), w);
                }
                requested = parsed.selections;
            }
            Err(e) => local.error(
                path,
                format!("{e} (Multus cannot create this pod's sandbox with it)"),
            ),
        }
    }
    let status_key = [NETWORK_STATUS_ANNOTATION, LEGACY_NETWORKS_STATUS_ANNOTATION]
        .into_iter()
        .find_map(|key| annotation(key, &mut local));
    let status = match status_key {
        None => None,
        Some((path, text)) => match parse_network_status(text) {
            Ok(entries) => Some(entries),
            Err(e) => {
                local.error(path, e.to_string());
                None
            }
        },
    };
    problems.absorb_under(&prefix, local);
    Some(LivePod {
        namespace,
        name,
        node,
        phase,
        host_network,
        requested,
        status,
    })
}

/// What is wrong with one requested attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentProblemKind {
    /// The pod has no `network-status` annotation at all: Multus attached nothing.
    NoStatus,
    /// `network-status` has no entry for the requested NAD (on the requested interface).
    InterfaceMissing,
    /// The entry is there, without an address, though the NAD's IPAM hands addresses out.
    NoAddress,
}

/// A requested network a pod does not have as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentProblem {
    /// What is wrong.
    pub kind: AttachmentProblemKind,
    /// `namespace/name` of the pod.
    pub pod: String,
    /// Its node, when scheduled.
    pub node: Option<String>,
    /// Its `status.phase`, when known.
    pub phase: Option<String>,
    /// The requested NADs (`namespace/name[@interface]`): one, or every one for `no_status`.
    pub networks: Vec<String>,
    /// What is wrong and what to look at, the pod left unsaid (see [`Self::pod_described`]).
    pub message: String,
}

impl AttachmentProblem {
    /// `namespace/name (node NODE, PHASE)`.
    pub fn pod_described(&self) -> String {
        format!(
            "{} (node {}, {})",
            self.pod,
            self.node.as_deref().unwrap_or("not scheduled"),
            self.phase.as_deref().unwrap_or("phase unknown")
        )
    }
}

/// One address held by more than one pod on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateAddress {
    /// The NAD, `namespace/name`, as `network-status` names it.
    pub network: String,
    /// The address.
    pub address: IpAddr,
    /// Every pod holding it, with its node.
    pub pods: Vec<PodOnNode>,
}

/// A pod and its node, for evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodOnNode {
    /// `namespace/name`.
    pub pod: String,
    /// `spec.nodeName`, when scheduled.
    pub node: Option<String>,
}

impl DuplicateAddress {
    /// The distinct nodes of the holders (unscheduled pods left out).
    pub fn nodes(&self) -> BTreeSet<&str> {
        self.pods.iter().filter_map(|p| p.node.as_deref()).collect()
    }

    /// One sentence naming the address, the network, every pod and its node.
    pub fn summary(&self) -> String {
        let named: Vec<String> = self
            .pods
            .iter()
            .map(|p| {
                format!(
                    "{} (node {})",
                    p.pod,
                    p.node.as_deref().unwrap_or("not scheduled")
                )
            })
            .collect();
        match named.as_slice() {
            [a, b] => format!(
                "pods {a} and {b} both hold {} on network {}",
                self.address, self.network
            ),
            _ => format!(
                "{} pods hold {} on network {}: {}",
                named.len(),
                self.address,
                self.network,
                named.join(", ")
            ),
        }
    }
}

/// The pods' attachments checked against what they asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodCheck {
    /// Requested networks a pod does not have (no status, no entry, no address).
    pub attachments: Vec<AttachmentProblem>,
    /// Addresses held by two or more pods on one network.
    pub duplicates: Vec<DuplicateAddress>,
}

/// Checks every pod Multus attaches: each requested NAD must have its `network-status` entry
/// (on the requested interface, when one is named) with an address, unless `expects_address`
/// (`namespace`, `name` of the NAD) says its IPAM hands out none; and no address may be held by
/// two pods on one NAD.
pub fn check_pods(pods: &[LivePod], expects_address: impl Fn(&str, &str) -> bool) -> PodCheck {
    let mut check = PodCheck::default();
    let mut holders: BTreeMap<(String, IpAddr), Vec<PodOnNode>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| p.is_attached_by_multus()) {
        let problem = |kind, networks: Vec<String>, message: String| AttachmentProblem {
            kind,
            pod: pod.pod_ref(),
            node: pod.node.clone(),
            phase: pod.phase.clone(),
            networks,
            message,
        };
        let Some(entries) = &pod.status else {
            if !pod.requested.is_empty() {
                let networks: Vec<String> = pod.requested.iter().map(ToString::to_string).collect();
                check.attachments.push(problem(
                    AttachmentProblemKind::NoStatus,
                    networks.clone(),
                    format!(
                        "requested {} but has no {NETWORK_STATUS_ANNOTATION} annotation: Multus \
                         attached none of them (the pod's FailedCreatePodSandBox events carry \
                         the CNI plugin's error)",
                        networks.join(", ")
                    ),
                ));
            }
            continue;
        };
        let mut used = vec![false; entries.len()];
        for selection in &pod.requested {
            let namespace = selection.namespace.as_deref().unwrap_or(&pod.namespace);
            let found = entries.iter().enumerate().position(|(j, e)| {
                !used[j]
                    && !e.default
                    && e.is_attachment_of(namespace, &selection.name, &pod.namespace)
                    && selection
                        .interface
                        .as_deref()
                        .is_none_or(|i| e.interface.as_deref() == Some(i))
            });
            let Some(j) = found else {
                let instead = selection
                    .interface
                    .as_deref()
                    .and_then(|i| super::status::find_by_interface(entries, i))
                    .map(|e| {
                        format!(
                            "; interface {} carries {} instead",
                            e.interface.as_deref().unwrap_or("?"),
                            e.name
                        )
                    })
                    .unwrap_or_default();
                check.attachments.push(problem(
                    AttachmentProblemKind::InterfaceMissing,
                    vec![selection.to_string()],
                    format!(
                        "requested {selection} but its {NETWORK_STATUS_ANNOTATION} has no such \
                         attachment{instead} (Multus lists every attachment it made)"
                    ),
                ));
                continue;
            };
            used[j] = true;
            let entry = &entries[j];
            if entry.addresses().is_empty() && expects_address(namespace, &selection.name) {
                check.attachments.push(problem(
                    AttachmentProblemKind::NoAddress,
                    vec![selection.to_string()],
                    format!(
                        "has {selection} on {} without an address: the IPAM handed out none \
                         (range exhausted, or the IPAM section is missing)",
                        entry.interface.as_deref().unwrap_or("an unnamed interface")
                    ),
                ));
            }
        }
        let mut held: BTreeSet<(String, IpAddr)> = BTreeSet::new();
        for entry in entries.iter().filter(|e| !e.default) {
            let network = if entry.name.contains('/') {
                entry.name.clone()
            } else {
                format!("{}/{}", pod.namespace, entry.name)
            };
            for address in entry.addresses() {
                held.insert((network.clone(), address));
            }
        }
        for key in held {
            holders.entry(key).or_default().push(PodOnNode {
                pod: pod.pod_ref(),
                node: pod.node.clone(),
            });
        }
    }
    for ((network, address), pods) in holders {
        if pods.len() > 1 {
            check.duplicates.push(DuplicateAddress {
                network,
                address,
                pods,
            });
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;
    use proptest::prelude::*;

    // The examples are written from the real formats; their headers cite the sources.
    const HEALTHY: &str = include_str!("../../../deploy/examples/live/pods-healthy.yaml");
    const BROKEN: &str = include_str!("../../../deploy/examples/live/pods-broken.yaml");

    fn read(text: &str) -> (Vec<LivePod>, Problems) {
        let docs = parse_documents(text).expect("valid YAML");
        let mut problems = Problems::default();
        let pods = read_pods(&docs, &mut problems);
        (pods, problems)
    }

    /// A pod in namespace `ns` on `node`, with the annotations given (`None`: absent).
    fn pod(name: &str, node: &str, networks: Option<&str>, status: Option<&str>) -> String {
        let mut annotations = serde_json::Map::new();
        if let Some(n) = networks {
            annotations.insert(NETWORKS_ANNOTATION.into(), n.into());
        }
        if let Some(s) = status {
            annotations.insert(NETWORK_STATUS_ANNOTATION.into(), s.into());
        }
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "rook-ceph", "annotations": annotations},
            "spec": {"nodeName": node},
            "status": {"phase": "Running"},
        })
        .to_string()
    }

    fn entry(name: &str, interface: &str, ips: &[&str]) -> String {
        serde_json::json!({"name": name, "interface": interface, "ips": ips}).to_string()
    }

    fn status(entries: &[String]) -> String {
        let default = r#"{"name":"k8s-pod-network","ips":["10.244.1.7"],"default":true}"#;
        format!("[{default},{}]", entries.join(","))
    }

    #[test]
    fn healthy_example_has_nothing_to_report_and_reads_all_three_forms() {
        let (pods, problems) = read(HEALTHY);
        assert_eq!(problems, Problems::default());
        assert_eq!(pods.len(), 6);
        // Rook's JSON list, the short form, the legacy single object.
        let requested = |name: &str| {
            pods.iter()
                .find(|p| p.name.starts_with(name))
                .map(|p| {
                    p.requested
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                })
                .expect("pod listed")
        };
        assert_eq!(
            requested("rook-ceph-osd-0"),
            ["rook-ceph/public-net", "rook-ceph/cluster-net"]
        );
        assert_eq!(requested("rook-ceph-mon-a"), ["rook-ceph/public-net"]);
        assert_eq!(
            requested("rook-ceph-mgr-a"),
            ["rook-ceph/public-net@public"]
        );
        // hostNetwork and the finished job are not checked.
        assert_eq!(pods.iter().filter(|p| p.is_attached_by_multus()).count(), 4);
        assert_eq!(check_pods(&pods, |_, _| true), PodCheck::default());
    }

    #[test]
    fn broken_example_names_every_problem() {
        let (pods, problems) = read(BROKEN);
        assert!(problems.is_valid(), "{problems:?}");
        let check = check_pods(&pods, |_, _| true);
        let found: Vec<(AttachmentProblemKind, &str, Vec<String>)> = check
            .attachments
            .iter()
            .map(|a| (a.kind, a.pod.as_str(), a.networks.clone()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    AttachmentProblemKind::NoStatus,
                    "rook-ceph/rook-ceph-mon-b-6b8f7c5d9-m4n2x",
                    vec!["rook-ceph/public-net".to_string()]
                ),
                (
                    AttachmentProblemKind::InterfaceMissing,
                    "rook-ceph/rook-ceph-osd-2-5d7b9c8f6-z7r3t",
                    vec!["rook-ceph/cluster-net".to_string()]
                ),
                (
                    AttachmentProblemKind::NoAddress,
                    "rook-ceph/rook-ceph-mgr-a-84b5c7d9f-9tq6p",
                    vec!["rook-ceph/public-net".to_string()]
                ),
            ]
        );
        assert_eq!(check.duplicates.len(), 1);
        let dup = &check.duplicates[0];
        assert_eq!(dup.network, "rook-ceph/cluster-net");
        assert_eq!(dup.address.to_string(), "192.168.30.2");
        assert_eq!(
            dup.nodes().into_iter().collect::<Vec<_>>(),
            ["worker-a", "worker-b"]
        );
        assert_eq!(
            dup.summary(),
            "pods rook-ceph/rook-ceph-osd-0-6d5f8b7c9-x2x7k (node worker-a) and \
             rook-ceph/rook-ceph-osd-1-7f9c6d8b5-q8w4z (node worker-b) both hold 192.168.30.2 \
             on network rook-ceph/cluster-net"
        );
    }

    // Matching requested networks to network-status entries as Multus names them
    // (multus-cni docs/how-to-use.md: entries `namespace/name`, interfaces net1, net2, … unless
    // the selection names one).
    #[test]
    fn attachment_rules() {
        let no_ipam = |_: &str, name: &str| name != "no-ipam";
        type Expected = &'static [(AttachmentProblemKind, &'static str)];
        let cases: &[(&str, String, Expected)] = &[
            (
                "interface named in the selection but another NAD on it",
                pod(
                    "p",
                    "n1",
                    Some("public-net@net1"),
                    Some(&status(&[entry(
                        "rook-ceph/cluster-net",
                        "net1",
                        &["192.168.30.2"],
                    )])),
                ),
                &[(
                    AttachmentProblemKind::InterfaceMissing,
                    "interface net1 carries rook-ceph/cluster-net instead",
                )],
            ),
            (
                "one NAD asked for twice, attached once",
                pod(
                    "p",
                    "n1",
                    Some("public-net@a,public-net@b"),
                    Some(&status(&[entry(
                        "rook-ceph/public-net",
                        "a",
                        &["192.168.20.2"],
                    )])),
                ),
                &[(
                    AttachmentProblemKind::InterfaceMissing,
                    "requested rook-ceph/public-net@b",
                )],
            ),
            (
                "a bare entry name is the pod's namespace",
                pod(
                    "p",
                    "n1",
                    Some("public-net"),
                    Some(&status(&[entry("public-net", "net1", &["192.168.20.2"])])),
                ),
                &[],
            ),
            (
                "an entry of another namespace is not the one asked for",
                pod(
                    "p",
                    "n1",
                    Some("public-net"),
                    Some(&status(&[entry(
                        "other/public-net",
                        "net1",
                        &["192.168.20.2"],
                    )])),
                ),
                &[(
                    AttachmentProblemKind::InterfaceMissing,
                    "requested rook-ceph/public-net",
                )],
            ),
            (
                "a NAD without IPAM hands out no address: none expected",
                pod(
                    "p",
                    "n1",
                    Some("no-ipam"),
                    Some(&status(&[entry("rook-ceph/no-ipam", "net1", &[])])),
                ),
                &[],
            ),
            (
                "an address with a prefix length counts",
                pod(
                    "p",
                    "n1",
                    Some("public-net"),
                    Some(&status(&[entry(
                        "rook-ceph/public-net",
                        "net1",
                        &["192.168.20.2/24"],
                    )])),
                ),
                &[],
            ),
            (
                "no annotation asked for nothing",
                pod("p", "n1", None, None),
                &[],
            ),
        ];
        for (what, doc, expected) in cases {
            let (pods, problems) = read(doc);
            assert!(problems.is_valid(), "{what}: {problems:?}");
            let check = check_pods(&pods, no_ipam);
            let found: Vec<(AttachmentProblemKind, &str)> = check
                .attachments
                .iter()
                .map(|a| (a.kind, a.message.as_str()))
                .collect();
            assert_eq!(found.len(), expected.len(), "{what}: {found:?}");
            for ((kind, message), (want_kind, want_text)) in found.iter().zip(expected.iter()) {
                assert_eq!(kind, want_kind, "{what}");
                assert!(message.contains(want_text), "{what}: {message}");
            }
        }
    }

    #[test]
    fn duplicate_rules() {
        let public = |ip: &str| status(&[entry("rook-ceph/public-net", "net1", &[ip])]);
        let two = |a: String, b: String| format!("{{\"kind\":\"List\",\"items\":[{a},{b}]}}");
        let cases: &[(&str, String, usize)] = &[
            (
                "two pods, two nodes, one address",
                two(
                    pod("a", "n1", Some("public-net"), Some(&public("192.168.20.2"))),
                    pod("b", "n2", Some("public-net"), Some(&public("192.168.20.2"))),
                ),
                1,
            ),
            (
                "one address on two different NADs is not a duplicate",
                two(
                    pod("a", "n1", Some("public-net"), Some(&public("192.168.20.2"))),
                    pod(
                        "b",
                        "n2",
                        Some("cluster-net"),
                        Some(&status(&[entry(
                            "rook-ceph/cluster-net",
                            "net1",
                            &["192.168.20.2"],
                        )])),
                    ),
                ),
                0,
            ),
            (
                "one pod holding one address on two interfaces is one holder",
                pod(
                    "a",
                    "n1",
                    Some("public-net@x,public-net@y"),
                    Some(&status(&[
                        entry("rook-ceph/public-net", "x", &["192.168.20.2"]),
                        entry("rook-ceph/public-net", "y", &["192.168.20.2"]),
                    ])),
                ),
                0,
            ),
            (
                "the default network's addresses are not compared",
                two(
                    pod("a", "n1", Some("public-net"), Some(&public("192.168.20.2"))),
                    pod("b", "n2", Some("public-net"), Some(&public("192.168.20.3"))),
                ),
                0,
            ),
        ];
        for (what, doc, expected) in cases {
            let (pods, problems) = read(doc);
            assert!(problems.is_valid(), "{what}: {problems:?}");
            assert_eq!(
                check_pods(&pods, |_, _| true).duplicates.len(),
                *expected,
                "{what}"
            );
        }
    }

    #[test]
    fn pods_that_multus_does_not_attach_are_left_out() {
        let mut host = serde_json::from_str::<Value>(&pod("h", "n1", Some("public-net"), None))
            .expect("pod JSON");
        host["spec"]["hostNetwork"] = true.into();
        let mut done = serde_json::from_str::<Value>(&pod("d", "n1", Some("public-net"), None))
            .expect("pod JSON");
        done["status"]["phase"] = "Succeeded".into();
        let mut unscheduled =
            serde_json::from_str::<Value>(&pod("u", "n1", Some("public-net"), None))
                .expect("pod JSON");
        unscheduled["spec"] = serde_json::json!({});
        unscheduled["status"]["phase"] = "Pending".into();
        let (pods, _) = read(&format!(
            "{{\"kind\":\"List\",\"items\":[{host},{done},{unscheduled}]}}"
        ));
        assert_eq!(pods.len(), 3);
        assert_eq!(check_pods(&pods, |_, _| true), PodCheck::default());
    }

    // Bad or partial objects: an error naming the document or pod and the field, never a panic.
    #[test]
    fn bad_objects_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "no name",
                "apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n",
                "document 1.metadata.name: a Pod needs a name",
            ),
            (
                "a selection Multus refuses",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    k8s.v1.cni.cncf.io/networks: a/b/c\n",
                "Pod default/p: metadata.annotations[\"k8s.v1.cni.cncf.io/networks\"]: \"a/b/c\": has 2 '/'",
            ),
            (
                "network-status that is not a list",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns\n  annotations:\n    k8s.v1.cni.cncf.io/network-status: '{\"name\": 1}'\n",
                "Pod ns/p: metadata.annotations[\"k8s.v1.cni.cncf.io/network-status\"]: k8s.v1.cni.cncf.io/network-status is not a list",
            ),
            (
                "annotations that are a list",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: [a]\n",
                "Pod default/p: metadata.annotations: expected a mapping, found a list",
            ),
            (
                "a node name that is not a string",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: [a]}\n",
                "Pod default/p: spec.nodeName: expected a string, found a list",
            ),
            (
                "the wrong apiVersion",
                "apiVersion: apps/v1\nkind: Pod\nmetadata: {name: p}\n",
                "document 1.apiVersion: expected \"v1\" for a Pod, found \"apps/v1\"",
            ),
            (
                "items that are not a list",
                "apiVersion: v1\nkind: List\nitems: {a: 1}\n",
                "document 1.items: expected a list, found a mapping",
            ),
            (
                "an item that is not a mapping",
                "apiVersion: v1\nkind: List\nitems: [3]\n",
                "document 1.items[0]: expected a Pod mapping, found a number",
            ),
            (
                "one pod twice",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
                "Pod default/p: metadata.name: listed twice",
            ),
        ];
        for (what, text, expected) in cases {
            let (_, problems) = read(text);
            let errors: Vec<String> = problems.errors.iter().map(ToString::to_string).collect();
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{what}: expected {expected:?} among {errors:?}"
            );
        }
        let (pods, problems) = read("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
        assert!(pods.is_empty() && problems.is_valid());
        assert_eq!(
            problems.warnings[0].to_string(),
            "document 1: skipped: kind \"Service\" is neither Pod nor a List of pods"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_documents_never_panic(text in "\\PC{0,200}") {
            if let Ok(docs) = parse_documents(&text) {
                let mut problems = Problems::default();
                let pods = read_pods(&docs, &mut problems);
                let _ = check_pods(&pods, |_, _| true);
            }
        }

        #[test]
        fn arbitrary_annotations_never_panic(networks in "\\PC{0,60}", status in "\\PC{0,80}") {
            let doc = pod("p", "n", Some(&networks), Some(&status));
            let docs = parse_documents(&doc).expect("JSON is YAML");
            let mut problems = Problems::default();
            let pods = read_pods(&docs, &mut problems);
            let _ = check_pods(&pods, |_, _| true);
        }
    }
}
