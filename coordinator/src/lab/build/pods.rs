//! Pods on a lab's nodes: a pod's namespace on the control network (also a sandbox's, see
//! [`crate::lab::sandbox`]), attaching a pod to its networks through the real CNI plugins (and
//! removing them), and the IPAM mapping that runs a NAD's config in the lab (host-local's data
//! directory; whereabouts as host-local over the same ranges).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::PoisonError;

use multinet_proto::assignment::NetworkAddress;
use multinet_proto::network::CephNetwork;
use serde_json::Value;

use super::{Error, Lab, Result};
use crate::lab::cni::Attachment;
use crate::lab::net::{self, netns_del};
use crate::lab::sandbox::Sandbox;

impl Lab {
    /// Adds a pod on `node` attached to `networks`; returns its namespace, control address
    /// and NAD addresses, or the first network it could not get an address on, with the CNI
    /// error. Pods of different nodes may be added from several threads at once: the state
    /// is locked only to record the pod (its namespace and attachments, before either is
    /// made), not while it is made.
    pub fn add_pod(&self, node: &str, networks: &[CephNetwork]) -> Result<PodNet> {
        let configs = networks
            .iter()
            .map(|network| Ok((*network, self.cni_config(*network, node)?)))
            .collect::<Result<Vec<_>>>()?;
        let attachments_of = |ns: &str| -> Vec<(CephNetwork, Attachment)> {
            configs
                .iter()
                .map(|(network, config)| {
                    (
                        *network,
                        Attachment {
                            node_ns: self.node_namespace(node),
                            pod_ns: ns.to_string(),
                            container_id: ns.to_string(),
                            ifname: network.key().to_string(),
                            config: config.clone(),
                        },
                    )
                })
                .collect()
        };
        // The attachments are recorded with the namespace, in one save: a DEL of an
        // attachment whose ADD never ran is what CNI allows, and teardown does it.
        let sandbox = self.pod_namespace_with(node, "ctl0", |ns| {
            attachments_of(ns).into_iter().map(|(_, a)| a).collect()
        })?;
        let (ns, control) = (sandbox.ns.clone(), sandbox.pod_ip);
        let mut addresses = Vec::new();
        for (network, attachment) in attachments_of(&ns) {
            match attachment.add() {
                Ok(ips) => match ips.first() {
                    Some(ip) => addresses.push(NetworkAddress {
                        network,
                        addr: *ip,
                        interface: Some(network.key().to_string()),
                    }),
                    None => {
                        return Ok(PodNet {
                            ns,
                            control,
                            addresses,
                            failed: Some((network, "the CNI result has no address".into())),
                        });
                    }
                },
                Err(e) => {
                    // Undo what the plugins before the failing one did (a conflist), as a
                    // runtime does; teardown deletes it again, which CNI allows.
                    let _ = attachment.del();
                    let mut reason = format!("on node {node}: {e:#}");
                    // The runtime knows the master: name it (and its MTU) where the plugin's
                    // words are about it (`cni_reason`).
                    if let Some(net) = self.topology.networks.get(&network)
                        && net.cni_type != "bridge"
                    {
                        let master = super::node_links(net, network).uplink;
                        let underlay = self
                            .topology
                            .underlay
                            .iter()
                            .find(|u| u.node == node && u.network == network);
                        reason = crate::cni_reason::annotate(
                            &reason,
                            &crate::cni_reason::Master {
                                name: &master,
                                node,
                                nad_mtu: net.mtu,
                                master_mtu: Some(super::naming::master_mtu(
                                    &self.topology,
                                    node,
                                    network,
                                )),
                                present: Some(underlay.is_none_or(|u| u.present)),
                            },
                        );
                    }
                    return Ok(PodNet {
                        ns,
                        control,
                        addresses,
                        failed: Some((network, reason)),
                    });
                }
            }
        }
        Ok(PodNet {
            ns,
            control,
            addresses,
            failed: None,
        })
    }

    /// A new pod namespace on `node` with its control-network interface `ifname` (a veth on
    /// the control bridge) and address; recorded before it is made, so `lab down` finds it.
    pub(in crate::lab) fn pod_namespace(&self, node: &str, ifname: &str) -> Result<Sandbox> {
        self.pod_namespace_with(node, ifname, |_| Vec::new())
    }

    /// [`Self::pod_namespace`], recording with it the `attachments` the caller will make in
    /// the namespace named (so one save covers both).
    fn pod_namespace_with(
        &self,
        node: &str,
        ifname: &str,
        attachments: impl FnOnce(&str) -> Vec<Attachment>,
    ) -> Result<Sandbox> {
        let name = self.topology.name.clone();
        let id = self.topology.node_id(node);
        let (j, ns) = self.record(|state| {
            let j = next_pod_number(state);
            let ns = format!("{name}-{id}-p{j}");
            state.pods.push(ns.clone());
            state.attachments.extend(attachments(&ns));
            (j, ns)
        })?;
        let port = format!("{id}p{j}");
        let pod_ip = super::control_addr(100 + j);
        let made = self.make_pod_namespace(&ns, &port, ifname, pod_ip);
        if let Err(e) = made {
            // Nothing half-made stays behind (the veth goes with the namespace).
            let _ = net::netns_kill(&ns);
            let _ = net::link_del(&Self::control_ns(&name), &port);
            let _ = netns_del(&ns);
            self.record(|state| {
                state.pods.retain(|p| *p != ns);
                state.attachments.retain(|a| a.pod_ns != ns);
            })?;
            return Err(e.into());
        }
        Ok(Sandbox {
            node: node.to_string(),
            ns,
            port,
            pod_ip,
        })
    }

    fn make_pod_namespace(
        &self,
        ns: &str,
        port: &str,
        ifname: &str,
        pod_ip: Ipv4Addr,
    ) -> net::Result<()> {
        // Duplicate address detection holds every IPv6 address tentative for a second, and
        // the CNI plugins wait it out; pods skip it. An address handed out twice (a host-local
        // NAD: one data directory per node) is found by the run itself (`duplicate_address`,
        // from the addresses each agent reports).
        let no_dad: &[(&str, &str)] = if self.has_ipv6() {
            &[("net/ipv6/conf/default/accept_dad", "0")]
        } else {
            &[]
        };
        net::netns_add_with(ns, no_dad)?;
        let ctl = Self::control_ns(&self.topology.name);
        // Both ends know each other's MAC for good: the control network is not under test,
        // and its permanent entries do not count against the kernel's machine-wide cap on
        // neighbour entries, which the networks under test need (`control_mac`).
        let mac = super::naming::control_mac(pod_ip);
        net::in_namespace(&ctl, |l| {
            l.add_veth(port, ifname, Some(ns), None)?;
            l.set_master(port, "ctl")?;
            l.add_permanent_neighbour("ctl", IpAddr::V4(pod_ip), &mac)
        })?;
        net::control_interface_answers_only_for_itself(ns, ifname)?;
        net::in_namespace(ns, |l| {
            l.set_mac(ifname, &mac)?;
            l.up(ifname)?;
            l.add_address(ifname, IpAddr::V4(pod_ip), 16, false)?;
            l.add_permanent_neighbour(
                ifname,
                IpAddr::V4(super::COORDINATOR),
                super::naming::CONTROL_BRIDGE_MAC,
            )
        })
    }

    /// Whether a network of the lab hands out IPv6 addresses.
    pub(in crate::lab) fn has_ipv6(&self) -> bool {
        self.topology.networks.values().any(|n| {
            multinet_proto::multus::nad::read_config(
                "lab",
                &n.config_json,
                &mut multinet_proto::field::Problems::default(),
            )
            .is_some_and(|c| {
                c.ipam
                    .ranges
                    .iter()
                    .any(|r| r.family == multinet_proto::cidr::Family::V6)
            })
        })
    }

    /// The network's CNI config with the lab's name, master interface and IPAM data dir, as
    /// it runs on `node`.
    fn cni_config(&self, network: CephNetwork, node: &str) -> Result<String> {
        let net = self
            .topology
            .networks
            .get(&network)
            .ok_or(Error::NoNetwork(network))?;
        self.lab_cni_config(
            &net.config_json,
            Some(format!("{}-{}", self.topology.name, network.key())),
            node,
        )
    }

    /// A NAD's CNI config as the lab runs it on `node`: `name` replaced when given, a
    /// `cniVersion` when it has none, and each plugin's IPAM mapped onto the lab's data
    /// directories (see [`lab_ipam`]).
    pub(in crate::lab) fn lab_cni_config(
        &self,
        config_json: &str,
        name: Option<String>,
        node: &str,
    ) -> Result<String> {
        let mut v: Value = serde_json::from_str(config_json).map_err(Error::CniConfigJson)?;
        let obj = v.as_object_mut().ok_or(Error::CniConfigObject)?;
        if let Some(name) = name {
            obj.insert("name".into(), Value::String(name));
        }
        obj.entry("cniVersion")
            .or_insert(Value::String("0.4.0".into()));
        let dirs = DataDirs {
            lab: self.dir.join("ipam").join("lab"),
            node: self
                .dir
                .join("ipam")
                .join("node")
                .join(self.topology.node_id(node)),
        };
        // A single plugin's config, or a conflist whose plugins each may have IPAM.
        let plugins: Vec<&mut serde_json::Map<String, Value>> =
            match obj.get_mut("plugins").and_then(Value::as_array_mut) {
                Some(list) => list.iter_mut().filter_map(Value::as_object_mut).collect(),
                None => vec![obj],
            };
        for plugin in plugins {
            if let Some(ipam) = plugin.get_mut("ipam").and_then(Value::as_object_mut) {
                lab_ipam(ipam, config_json, &dirs)?;
            }
        }
        Ok(v.to_string())
    }

    /// Removes the pods (CNI DEL for each attachment, nodes in parallel; their namespaces),
    /// leaving the lab.
    pub fn remove_pods(&mut self) -> Result<()> {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        del_all(&state.attachments);
        let ctl = Self::control_ns(&self.topology.name);
        let prefix = format!("{}-", self.topology.name);
        // Deleting the control-network ends now removes the pairs at once; a deleted
        // namespace's interfaces go away only when the kernel gets to it, and the next run
        // would find the port names taken.
        let ports: Vec<(String, Option<u32>)> = state
            .pods
            .iter()
            .filter_map(|pod| {
                // `<lab>-<id>-p<j>` has the port `<id>p<j>` (an id may hold a `-`).
                pod.strip_prefix(&prefix)
                    .and_then(|rest| rest.rsplit_once("-p"))
                    .map(|(id, j)| (format!("{id}p{j}"), j.parse().ok()))
            })
            .collect();
        let _ = net::in_namespace(&ctl, |l| {
            for (port, j) in &ports {
                let _ = l.delete(port);
                // The bridge keeps the pod's permanent entry when the port goes.
                if let Some(j) = j {
                    let _ = l.delete_neighbour("ctl", IpAddr::V4(super::control_addr(100 + j)));
                }
            }
            Ok(())
        });
        for pod in &state.pods {
            netns_del(pod)?;
        }
        state.attachments.clear();
        state.pods.clear();
        self.save()
    }
}

/// A number for a new pod, never handed out before in this lab.
pub(in crate::lab) fn next_pod_number(state: &mut super::LabState) -> u32 {
    let j = state.next_pod.max(state.pods.len() as u32);
    state.next_pod = j + 1;
    j
}

/// CNI DEL for every attachment: each node's in reverse order of their making, nodes in
/// parallel ([`super::nodes_at_once`] at a time; the plugins and host-local's lock allow it).
/// A failed DEL is left for the namespace's removal (the address it held stays in the lab's
/// data directory, removed with the lab).
pub(in crate::lab) fn del_all(attachments: &[Attachment]) {
    let reversed: Vec<&Attachment> = attachments.iter().rev().collect();
    super::per_node(
        &reversed,
        |a| a.node_ns.clone(),
        |node| {
            for a in node {
                let _ = a.del();
            }
        },
    );
}

/// A pod's networking.
#[derive(Debug, Clone)]
pub struct PodNet {
    /// Its namespace.
    pub ns: String,
    /// Its control-network address.
    pub control: Ipv4Addr,
    /// Its NAD addresses.
    pub addresses: Vec<NetworkAddress>,
    /// The network it could not get an address on, with the reason.
    pub failed: Option<(CephNetwork, String)>,
}

/// Where host-local keeps its allocations in the lab.
struct DataDirs {
    /// One for the whole lab: whereabouts run as host-local (whereabouts allocates
    /// cluster-wide, through the API server).
    lab: std::path::PathBuf,
    /// The node's own: host-local proper, which allocates from files on each node
    /// (`/var/lib/cni/networks` by default, plugins/ipam/host-local/backend/disk), so two
    /// nodes hand out the same addresses from one range — as on a cluster.
    node: std::path::PathBuf,
}

/// One plugin's IPAM as the lab runs it: host-local gets the node's data directory; whereabouts
/// (no whereabouts daemon here) becomes host-local with the same ranges, whose one data
/// directory for the whole lab keeps addresses unique across nodes. `config_json` is the NAD's
/// config as written (for the whereabouts ranges).
fn lab_ipam(
    ipam: &mut serde_json::Map<String, Value>,
    config_json: &str,
    dirs: &DataDirs,
) -> Result<()> {
    let dir = |d: &std::path::Path| Value::String(d.display().to_string());
    match ipam.get("type").and_then(Value::as_str) {
        Some("host-local") => {
            ipam.insert("dataDir".into(), dir(&dirs.node));
        }
        Some("whereabouts") => {
            let summary = multinet_proto::multus::nad::read_config(
                "lab",
                config_json,
                &mut multinet_proto::field::Problems::default(),
            )
            .ok_or(Error::Whereabouts)?;
            // Excludes: the top-level list belongs to `range`, each ipRanges entry has its
            // own; in the order read_config reports the ranges.
            let mut excludes: Vec<Vec<String>> = Vec::new();
            let strings = |v: Option<&Value>| -> Vec<String> {
                v.and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            if ipam.get("range").is_some() {
                excludes.push(strings(ipam.get("exclude")));
            }
            for entry in ipam
                .get("ipRanges")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                excludes.push(strings(entry.get("exclude")));
            }
            let ranges: Vec<Value> = summary
                .ipam
                .ranges
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    host_local_set(r, excludes.get(i).map(Vec::as_slice).unwrap_or_default())
                })
                .collect();
            let routes = ipam.get("routes").cloned();
            ipam.clear();
            ipam.insert("type".into(), Value::String("host-local".into()));
            ipam.insert("ranges".into(), Value::Array(ranges));
            ipam.insert("dataDir".into(), dir(&dirs.lab));
            if let Some(routes) = routes {
                ipam.insert("routes".into(), routes);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A host-local range set for a whereabouts range: the same first and last address, split
/// around the excluded CIDRs (host-local has no exclusions, but a set may hold several ranges).
pub fn host_local_set(
    range: &multinet_proto::multus::ipam::RangeReport,
    excludes: &[String],
) -> Value {
    use multinet_proto::cidr::{Cidr, from_u128, parse_ip, to_u128};
    let (Some(first), Some(last)) = (
        range.first.as_deref().and_then(parse_ip),
        range.last.as_deref().and_then(parse_ip),
    ) else {
        return serde_json::json!([{"subnet": range.cidr}]);
    };
    let family = range.family;
    let network = range
        .cidr
        .parse::<Cidr>()
        .map_or(to_u128(first), |c| c.first());
    let mut cuts: Vec<(u128, u128)> = excludes
        .iter()
        .filter_map(|e| {
            e.parse::<Cidr>().ok().or_else(|| {
                parse_ip(e).map(|ip| Cidr {
                    addr: ip,
                    prefix: multinet_proto::cidr::Family::of(ip).bits(),
                })
            })
        })
        .filter(|c| c.family() == family)
        .map(|c| (c.first(), c.last()))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = to_u128(first);
    let end = to_u128(last);
    for (a, b) in cuts {
        if b < start || a > end {
            continue;
        }
        if a > start {
            pieces.push((start, a - 1));
        }
        start = start.max(b.saturating_add(1));
    }
    if start <= end {
        pieces.push((start, end));
    }
    Value::Array(
        pieces
            .into_iter()
            .map(|(a, b)| {
                // host-local takes the subnet's first address as the gateway when none is
                // given and never hands it out (plugins/ipam/host-local/backend/allocator,
                // `Range.Canonicalize`); whereabouts hands it out. The subnet's own address,
                // which neither allocates, keeps the capacity whereabouts has.
                serde_json::json!({"subnet": range.cidr, "rangeStart": from_u128(family, a).to_string(), "rangeEnd": from_u128(family, b).to_string(), "gateway": from_u128(family, network).to_string()})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use multinet_proto::cidr::Family;
    use multinet_proto::multus::ipam::RangeReport;

    #[test]
    fn whereabouts_excludes_split_the_host_local_range() {
        let range = RangeReport {
            cidr: "198.18.32.0/24".into(),
            family: Family::V4,
            first: Some("198.18.32.1".into()),
            last: Some("198.18.32.254".into()),
            usable: 254,
        };
        let set = host_local_set(
            &range,
            &[
                "198.18.32.0/28".into(),
                "198.18.32.100".into(),
                "fd00::/64".into(),
            ],
        );
        assert_eq!(
            set,
            serde_json::json!([
                {"subnet": "198.18.32.0/24", "rangeStart": "198.18.32.16", "rangeEnd": "198.18.32.99", "gateway": "198.18.32.0"},
                {"subnet": "198.18.32.0/24", "rangeStart": "198.18.32.101", "rangeEnd": "198.18.32.254", "gateway": "198.18.32.0"},
            ])
        );
    }
}
