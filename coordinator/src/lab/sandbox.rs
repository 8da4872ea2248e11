//! Pod sandboxes for the lab as a Kubernetes cluster's nodes (see [`crate::lab::kubelet`]):
//! a pod namespace on the control network, which is the cluster's pod network, and the NAD
//! attachments Multus would make, from NetworkAttachmentDefinitions read from the API rather
//! than from the topology. Pods come and go while the lab is up; each is removed on its own.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::build::{self, Lab};
use super::cni::{self, Attachment, result_ips, result_mac};
use super::net::{self, netns_del};
use std::sync::PoisonError;

/// Why a pod sandbox could not be made, attached or removed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pod is bound to a node the lab does not have.
    #[error("node {node:?} is not a node of lab {lab}")]
    NotANode {
        /// The pod's node.
        node: String,
        /// The lab.
        lab: String,
    },
    /// The lab's part: the pod namespace, its record in the state, a NAD's config mapped.
    #[error(transparent)]
    Lab(#[from] build::Error),
    /// A namespace, route or link the kernel refused.
    #[error(transparent)]
    Net(#[from] net::Error),
    /// CNI ADD failed (the plugin's message, and its CNI error code in
    /// [`cni::Error::Plugin`]); the attachment was deleted again.
    #[error(transparent)]
    Add(#[from] cni::Error),
    /// CNI DEL failed for an attachment of a sandbox being removed (the first such failure;
    /// the rest of the sandbox was removed).
    #[error("CNI DEL")]
    Del(#[source] cni::Error),
    /// The control network would not take a service address.
    #[error("adding {address} to the control network")]
    ServiceAddress {
        /// The address.
        address: Ipv4Addr,
        /// Why.
        #[source]
        source: net::Error,
    },
    /// A service address could not be taken off the control network.
    #[error("removing {address} from the control network")]
    ServiceAddressRemoval {
        /// The address.
        address: Ipv4Addr,
        /// Why.
        #[source]
        source: net::Error,
    },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A pod's namespace on the pod network.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The node it is on.
    pub node: String,
    /// Its network namespace.
    pub ns: String,
    /// The control bridge's end of its pod-network veth.
    pub port: String,
    /// Its address on the pod network (`status.podIP`).
    pub pod_ip: Ipv4Addr,
}

/// What a CNI ADD gave an attachment.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Addresses, without prefix length.
    pub ips: Vec<std::net::IpAddr>,
    /// The interface's MAC address in the pod.
    pub mac: Option<String>,
}

impl Lab {
    /// Creates a pod namespace on `node` with its pod-network interface `eth0` (a veth on the
    /// control bridge, an address of the control network).
    pub fn add_sandbox(&mut self, node: &str) -> Result<Sandbox> {
        if self.topology.node(node).is_none() {
            return Err(Error::NotANode {
                node: node.to_string(),
                lab: self.topology.name.clone(),
            });
        }
        let sandbox = self.pod_namespace(node, "eth0")?;
        // A pod's default route is on its pod network. Here it leads into the control
        // namespace, which forwards nothing: traffic the NADs do not route stays in the lab.
        let gateway = super::build::COORDINATOR.to_string();
        if let Err(e) = net::ip_in(
            &sandbox.ns,
            &["route", "add", "default", "via", &gateway, "dev", "eth0"],
        ) {
            let _ = self.remove_sandbox(&sandbox);
            return Err(e.into());
        }
        Ok(sandbox)
    }

    /// Attaches `sandbox` to a NAD as Multus delegates it: `config_json` is the NAD's
    /// `spec.config` run as the lab runs every config (IPAM mapped, see `lab_ipam`), in the
    /// node's namespace where its master interface lives, interface `ifname` in the pod. The
    /// attachment is recorded first, so removing the sandbox (or `lab down` after a crash)
    /// releases its address; a failed ADD is deleted at once, as a runtime does. A config
    /// without a `name` gets the NAD's (`nad_name`), as Multus gives it (Multus
    /// `pkg/k8sclient`, `GetCNIConfigFromSpec`).
    pub fn attach(
        &mut self,
        sandbox: &Sandbox,
        ifname: &str,
        nad_name: &str,
        config_json: &str,
    ) -> Result<Attached> {
        let named = serde_json::from_str::<Value>(config_json)
            .ok()
            .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
            .filter(|n| !n.is_empty());
        let config = self.lab_cni_config(
            config_json,
            named.or_else(|| Some(nad_name.to_string())),
            &sandbox.node,
        )?;
        let attachment = Attachment {
            node_ns: self.node_namespace(&sandbox.node),
            pod_ns: sandbox.ns.clone(),
            container_id: sandbox.ns.clone(),
            ifname: ifname.to_string(),
            config,
        };
        self.record(|state| state.attachments.push(attachment.clone()))?;
        match attachment.add_result() {
            Ok(result) => Ok(Attached {
                ips: result_ips(&result),
                mac: result_mac(&result),
            }),
            Err(e) => {
                let _ = attachment.del();
                Err(e.into())
            }
        }
    }

    /// Removes a sandbox: CNI DEL for each of its attachments (in reverse), its pod-network
    /// veth, its namespace. Processes still in it are stopped first.
    pub fn remove_sandbox(&mut self, sandbox: &Sandbox) -> Result<()> {
        let mut first_error = None;
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for a in state
            .attachments
            .iter()
            .rev()
            .filter(|a| a.pod_ns == sandbox.ns)
        {
            if let Err(e) = a.del() {
                first_error.get_or_insert(e);
            }
        }
        state.attachments.retain(|a| a.pod_ns != sandbox.ns);
        net::netns_kill(&sandbox.ns)?;
        let _ = net::in_namespace(&Self::control_ns(&self.topology.name), |l| {
            let _ = l.delete(&sandbox.port);
            // The bridge keeps the pod's permanent entry when the port goes.
            l.delete_neighbour("ctl", std::net::IpAddr::V4(sandbox.pod_ip))
        });
        netns_del(&sandbox.ns)?;
        self.record(|state| state.pods.retain(|p| *p != sandbox.ns))?;
        first_error.map_or(Ok(()), |e| Err(Error::Del(e)))
    }

    /// The namespace of `node` itself (where hostNetwork pods run): `<lab>-<id>`
    /// ([`LabTopology::node_id`](crate::lab::topology::LabTopology::node_id)).
    pub fn node_namespace(&self, node: &str) -> String {
        Self::node_ns(&self.topology.name, &self.topology.node_id(node))
    }

    /// Where a pod's files live (its volumes, root filesystem, logs).
    pub fn pod_dir(&self, uid: &str) -> std::path::PathBuf {
        self.dir.join("pods").join(uid)
    }

    /// Gives the control network an address and returns the control namespace's name, for
    /// a service the lab forwards (the API server's `kubernetes` Service, a ClusterIP
    /// Service: [`crate::lab::kubelet::services`]). Pods reach it on their pod network; the
    /// host namespace gets no route to it.
    pub fn add_service_address(&self, addr: Ipv4Addr) -> Result<String> {
        let ctl = Self::control_ns(&self.topology.name);
        net::replace_address(&ctl, "ctl", std::net::IpAddr::V4(addr), 32).map_err(|source| {
            Error::ServiceAddress {
                address: addr,
                source,
            }
        })?;
        Ok(ctl)
    }

    /// Takes a service address off the control network again (nothing to do when it is not
    /// there).
    pub fn remove_service_address(&self, addr: Ipv4Addr) -> Result<()> {
        let ctl = Self::control_ns(&self.topology.name);
        net::delete_address(&ctl, "ctl", std::net::IpAddr::V4(addr), 32)
            .map(drop)
            .map_err(|source| Error::ServiceAddressRemoval {
                address: addr,
                source,
            })
    }
}
