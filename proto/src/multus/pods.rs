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
//! attach networks to them), and so are pods that have ended (`Succeeded`, `Failed`: their
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
use crate::field::{Field, Problems, type_name};

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

    /// True when the attachment checks apply: not host-network, not ended.
    pub fn is_attached_by_multus(&self) -> bool {
        !self.host_network && !matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
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
    if !doc.is_object() {
        problems.error(
            label,
            format!("expected a Pod mapping, found {}", type_name(doc)),
        );
        return None;
    }
    if let Some(api) = doc.get("apiVersion").and_then(Value::as_str)
        && api != "v1"
    {
        problems.error(
            format!("{label}.apiVersion"),
            format!("expected \"v1\" for a Pod, found {api:?}"),
        );
        return None;
    }
    let name_path = format!("{label}.metadata.name");
    let name = Field::new(
        &name_path,
        doc.pointer("/metadata/name").unwrap_or(&Value::Null),
    )
    .required_string(problems, "a Pod needs a name")?
    .to_string();
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
        .to_string();
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
