//! The names and addresses a lab derives from its own name and its nodes' numbers:
//! namespaces, node interfaces and bridges, switch ports, fixed bridge MACs, control-network
//! and shim addresses. Pure: nothing here touches the system.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use multinet_proto::network::CephNetwork;
use serde_json::Value;

use super::{Lab, STATE_ROOT};
use crate::lab::topology::{LabNetwork, LabTopology};

/// The node's interfaces for a network, named as its CNI config names them so that the
/// config runs as written: the uplink is the config's `master` (macvlan, ipvlan) or `device`
/// (host-device); the bridge plugin's `bridge` is a node bridge the uplink joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLinks {
    /// The node's uplink to the network's switch.
    pub uplink: String,
    /// The node bridge of the bridge plugin.
    pub bridge: Option<String>,
}

const RESERVED_LINKS: &[&str] = &["lo", "ctl0", "shim0"];

/// The node interfaces `net`'s CNI config expects (defaults `pub0`/`clu0`, `br-pub`/`br-clu`).
pub fn node_links(net: &LabNetwork, network: CephNetwork) -> NodeLinks {
    let (default_uplink, default_bridge) = match network {
        CephNetwork::Public => ("pub0", "br-pub"),
        CephNetwork::Cluster => ("clu0", "br-clu"),
    };
    let config: Value = serde_json::from_str(&net.config_json).unwrap_or(Value::Null);
    let main = config
        .get("plugins")
        .and_then(|p| p.get(0))
        .unwrap_or(&config);
    let named = |key: &str| {
        main.get(key)
            .and_then(Value::as_str)
            .filter(|n| crate::lab::net::usable_link_name(n) && !RESERVED_LINKS.contains(n))
            .map(str::to_string)
    };
    match net.cni_type.as_str() {
        "bridge" => NodeLinks {
            uplink: default_uplink.into(),
            bridge: Some(named("bridge").unwrap_or_else(|| default_bridge.into())),
        },
        "host-device" => NodeLinks {
            uplink: named("device").unwrap_or_else(|| default_uplink.into()),
            bridge: None,
        },
        _ => NodeLinks {
            uplink: named("master").unwrap_or_else(|| default_uplink.into()),
            bridge: None,
        },
    }
}

/// The MTU of `node`'s master interface (uplink) on `network`: the topology's `master_mtu`,
/// else the network's MTU, at least 1500 (a macvlan cannot exceed its master's MTU).
pub(super) fn master_mtu(topology: &LabTopology, node: &str, network: CephNetwork) -> u32 {
    let nad_mtu = topology
        .networks
        .get(&network)
        .and_then(|n| n.mtu)
        .unwrap_or(1500)
        .max(1500);
    topology
        .underlay
        .iter()
        .find(|u| u.node == node && u.network == network)
        .and_then(|u| u.master_mtu)
        .unwrap_or(nad_mtu)
}

pub(super) fn bridge(network: CephNetwork) -> &'static str {
    match network {
        CephNetwork::Public => "br-pub",
        CephNetwork::Cluster => "br-clu",
    }
}

/// The control bridge's address (locally administered, unicast).
pub(super) const CONTROL_BRIDGE_MAC: &str = "02:6d:6e:00:00:01";

/// A node bridge's address: locally administered, unique per node and network in a lab.
pub(super) fn node_bridge_mac(node: u32, network: CephNetwork) -> String {
    let net = match network {
        CephNetwork::Public => 1,
        CephNetwork::Cluster => 2,
    };
    format!(
        "02:6d:6e:{net:02x}:{:02x}:{:02x}",
        (node >> 8) & 0xff,
        node & 0xff
    )
}

/// The MAC address of the control interface that holds `addr` (a node's or a pod's `ctl0`):
/// locally administered, `02:6d:63` and the address's last three bytes, so unique wherever
/// the address is. Known in advance, so the lab gives both ends of each control link a
/// permanent neighbour entry (see [`crate::lab::net::Links::add_permanent_neighbour`]).
pub(super) fn control_mac(addr: Ipv4Addr) -> String {
    let [_, b, c, d] = addr.octets();
    format!("02:6d:63:{b:02x}:{c:02x}:{d:02x}")
}

/// The i-th address of the control network after the coordinator's (1-based).
pub(in crate::lab) fn control_addr(i: u32) -> Ipv4Addr {
    let n = i + 1;
    Ipv4Addr::new(198, 19, (n / 250) as u8, (n % 250 + 1) as u8)
}

impl Lab {
    /// `<lab>-sw`.
    pub fn switch_ns(name: &str) -> String {
        format!("{name}-sw")
    }
    /// `<lab>-ctl`.
    pub fn control_ns(name: &str) -> String {
        format!("{name}-ctl")
    }
    /// `<lab>-<id>`, `id` a node's [`LabTopology::node_id`](crate::lab::topology::LabTopology::node_id).
    pub fn node_ns(name: &str, id: &str) -> String {
        format!("{name}-{id}")
    }

    pub(super) fn state_dir(name: &str) -> PathBuf {
        PathBuf::from(STATE_ROOT).join(name)
    }

    /// The lab's state directory.
    pub fn state_dir_path(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// Node `i`'s shim address: in the public subnet and outside the pods' IPAM range — below it
/// when there is room, else from the top of the subnet (IPAM hands out from the bottom).
pub(super) fn shim_address(net: &LabNetwork, i: u32) -> IpAddr {
    use multinet_proto::cidr::{from_u128, to_u128};
    let family = net.subnet.family();
    let (start, end) = (to_u128(net.range_start), to_u128(net.range_end));
    let low = net.subnet.first() + 10 + u128::from(i);
    if low < start || low > end {
        return from_u128(family, low);
    }
    // The last address of an IPv4 subnet is its broadcast address.
    let top =
        net.subnet.last() - u128::from(family == multinet_proto::cidr::Family::V4) - u128::from(i);
    from_u128(family, top)
}
