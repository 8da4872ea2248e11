//! Names and labels of a run's objects, and the owner reference they all carry.
//!
//! Every object is named `multinet-<run>-…` and labelled `app.kubernetes.io/part-of=multinet`
//! and `multinet.io/run=<run>`, so `kubectl get all -l multinet.io/run=<run>` shows a run and
//! `multinet cleanup` finds leftovers. One owner object, a ConfigMap, owns everything else:
//! deleting it with foreground propagation removes the run.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// `app.kubernetes.io/part-of`.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// Its value on every object multinet creates.
pub const PART_OF_VALUE: &str = "multinet";
/// The run label.
pub const RUN: &str = "multinet.io/run";
/// `app.kubernetes.io/component`: owner, coordinator, report, tls, agents, server (a mesh's
/// responders too), client, host-check, bench-client (`bench network`'s client pods); for a soak's coordinator: control (its Service), coordinator-tls, checkpoint.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// The node type a pod belongs to.
pub const NODE_TYPE: &str = "multinet.io/node-type";
/// Which client of its node a pod is (`osd-3`, `other-0`).
pub const CLIENT: &str = "multinet.io/client";
/// The selector for every object of every run (`multinet cleanup` without `--run`).
pub const ALL_RUNS_SELECTOR: &str = "app.kubernetes.io/part-of=multinet";

/// Node type names go into a label value (at most 63 characters) and into object names.
pub const NODE_TYPE_NAME_MAX: usize = 63;

/// The names of one run's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNames {
    /// The run id (10 lowercase hex digits).
    pub run: String,
}

impl RunNames {
    /// Names for run `run`.
    pub fn new(run: &str) -> Self {
        Self {
            run: run.to_string(),
        }
    }

    fn name(&self, suffix: &str) -> String {
        if suffix.is_empty() {
            format!("multinet-{}", self.run)
        } else {
            format!("multinet-{}-{suffix}", self.run)
        }
    }

    /// The owner ConfigMap.
    pub fn owner(&self) -> String {
        self.name("")
    }
    /// The Secret with the run's TLS material.
    pub fn tls(&self) -> String {
        self.name("tls")
    }
    /// The ConfigMap agents read their run settings from.
    pub fn agents(&self) -> String {
        self.name("agents")
    }
    /// The ConfigMap the coordinator stores the final report in.
    pub fn report(&self) -> String {
        self.name("report")
    }
    /// The coordinator Job (when `multinet run` starts outside the cluster).
    pub fn coordinator(&self) -> String {
        self.name("coordinator")
    }
    /// A soak's Service in front of the coordinator's control plane (UDP): the address the
    /// agents dial, which a replacement of the coordinator's pod keeps.
    pub fn control(&self) -> String {
        self.name("control")
    }
    /// A soak's Secret with the coordinator's TLS identity, for a replacement of its pod.
    pub fn coordinator_tls(&self) -> String {
        self.name("coordinator-tls")
    }
    /// A soak's checkpoint index ConfigMap: which parts hold the current checkpoint.
    pub fn checkpoint(&self) -> String {
        self.name("checkpoint")
    }
    /// Part `index` of the checkpoint in `slot` (0 or 1: generations alternate between them,
    /// so the current one is never overwritten while the next is written).
    pub fn checkpoint_part(&self, slot: u8, index: usize) -> String {
        self.name(&format!(
            "checkpoint-{}{index}",
            if slot == 0 { 'a' } else { 'b' }
        ))
    }
    /// The server pod (the single-server run's one server).
    pub fn server(&self) -> String {
        self.name("server")
    }
    /// A mesh run's responder pod on `node` (agent `server-<node>`,
    /// [`crate::mesh::responder_pod`]): `multinet-<run>-<node>-server`, named after its node
    /// like the clients, so `kubectl get pods` lists a node's pods together. The `-server`
    /// suffix keeps it apart from every client pod (theirs end in `-osd-<i>` or
    /// `-other-<i>`) whatever the node names, and from the single server
    /// ([`Self::server`]). A node name that would take it beyond 253 characters is shortened
    /// as [`Self::client`] does.
    pub fn responder(&self, node: &str) -> String {
        let name = self.name(&format!("{node}-server"));
        if name.len() <= 253 {
            return name;
        }
        self.name(&format!(
            "{}-server",
            multinet_proto::names::bounded_label(node, 40)
        ))
    }
    /// `multinet bench network`'s client pod of its `index`th path (from 1): one at a time,
    /// each deleted once its log is read.
    pub fn bench_client(&self, index: usize) -> String {
        self.name(&format!("bench-{index}"))
    }
    /// A client pod: `index` is `osd-3` or `other-0`. Named after its node so that
    /// `kubectl get pods` reads like the report; a node name that would take the pod's name
    /// beyond 253 characters (a DNS-1123 subdomain's limit) is shortened to a label with a
    /// hash of it ([`multinet_proto::names::bounded_label`]).
    pub fn client(&self, node: &str, index: &str) -> String {
        let name = self.name(&format!("{node}-{index}"));
        if name.len() <= 253 {
            return name;
        }
        self.name(&format!(
            "{}-{index}",
            multinet_proto::names::bounded_label(node, 40)
        ))
    }
    /// The host checkers' DaemonSet of a node type.
    pub fn host_check(&self, node_type: &str) -> String {
        self.name(&format!("host-{node_type}"))
    }

    /// `part-of`, `run` and `component` labels.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PART_OF.to_string(), PART_OF_VALUE.to_string()),
            (RUN.to_string(), self.run.clone()),
            (COMPONENT.to_string(), component.to_string()),
        ])
    }

    /// The selector for this run's objects.
    pub fn selector(&self) -> String {
        format!("{PART_OF}={PART_OF_VALUE},{RUN}={}", self.run)
    }

    /// Metadata of an object of this run: name, namespace, labels, and the owner reference
    /// (none on the owner itself).
    pub fn meta(
        &self,
        name: String,
        namespace: &str,
        component: &str,
        owner: Option<&Owner>,
    ) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            labels: Some(self.labels(component)),
            owner_references: owner.map(|o| vec![o.reference()]),
            ..ObjectMeta::default()
        }
    }
}

/// The owner ConfigMap as other objects refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its name.
    pub name: String,
    /// Its uid; in a dry run, a placeholder (the owner does not exist yet).
    pub uid: String,
}

impl Owner {
    /// The placeholder uid of a dry run.
    pub const DRY_RUN_UID: &'static str = "00000000-0000-0000-0000-000000000000";

    /// The reference: `blockOwnerDeletion` so foreground deletion of the owner waits for the
    /// pods (and their IPAM release) before the owner is gone.
    pub fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            block_owner_deletion: Some(true),
            controller: Some(true),
        }
    }
}

/// The rule the Kubernetes backend adds to the run configuration's: node type names become
/// label values of the run's pods, so at most [`NODE_TYPE_NAME_MAX`] characters each;
/// problems name `nodeTypes.<name>`.
pub fn check_node_type_names(
    config: &multinet_proto::config::RunConfig,
    problems: &mut multinet_proto::field::Problems,
) {
    for name in config.node_types.keys() {
        if name.len() > NODE_TYPE_NAME_MAX {
            problems.error(
                format!("nodeTypes.{name}"),
                format!(
                    "the Kubernetes backend labels pods with their node type: expected at most {NODE_TYPE_NAME_MAX} characters"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_run_and_fit_kubernetes_limits() {
        let n = RunNames::new("0123456789");
        assert_eq!(n.owner(), "multinet-0123456789");
        assert_eq!(
            n.client("worker-1", "osd-2"),
            "multinet-0123456789-worker-1-osd-2"
        );
        assert_eq!(n.host_check("storage"), "multinet-0123456789-host-storage");
        assert_eq!(
            n.selector(),
            "app.kubernetes.io/part-of=multinet,multinet.io/run=0123456789"
        );
        // A node name of 253 characters still gives a pod name Kubernetes accepts.
        let long = format!("{}.example.com", "storage-a".repeat(26));
        let pod = n.client(&long, "other-15");
        assert!(
            multinet_proto::names::dns1123_subdomain(&pod).is_ok(),
            "{pod}"
        );
        assert_ne!(
            pod,
            n.client(&long.replace("example", "exemple"), "other-15")
        );
        // A responder is named after its node, and bounded the same way.
        assert_eq!(
            n.responder("worker-1"),
            "multinet-0123456789-worker-1-server"
        );
        let responder = n.responder(&long);
        assert!(
            multinet_proto::names::dns1123_subdomain(&responder).is_ok(),
            "{responder}"
        );
        assert!(responder.ends_with("-server"), "{responder}");
        assert_ne!(responder, n.responder(&long.replace("example", "exemple")));
        // No node name gives a responder a client's or the single server's name: a node
        // named like another node's client still ends in -server.
        assert_ne!(n.responder("worker-1-osd-0"), n.client("worker-1", "osd-0"));
        assert_ne!(n.responder("w"), n.server());
        // Rook's default node type fits.
        let rook = n.host_check(multinet_proto::config::CONVERGED_NODE_TYPE);
        assert!(rook.len() + 6 <= 63, "{rook}");
    }
}
