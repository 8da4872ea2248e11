//! The lab's topology file: which nodes, which networks and how they are built, the underlay
//! each node's uplinks sit on, the faults to inject and the run configuration.
//!
//! Reading is pure: text in, a [`LabTopology`] and every [`Problems`] found out, each problem
//! naming its field (`networks.public.subnet`, `faults[0].block.from`). Bad input is for the
//! caller to turn into exit code 22. This module creates no namespace, runs no plugin and reads
//! no other file (a `config:` path is kept for the caller to read).
//!
//! The lab name ends up in every namespace and interface name, which Linux limits to 15
//! characters; that is why it is at most 6 characters. Node names are Kubernetes node names
//! (DNS-1123 subdomains, up to 253 characters) so a lab can mirror a cluster; the lab builds a
//! node's namespaces and interfaces with a short id of its own ([`LabTopology::node_id`]).
//! Every subnet must lie in the ranges reserved for the lab (198.18.0.0/15, the benchmarking
//! range, and fd00::/8, unique local addresses), so a lab can never shadow a real network.
//! `deploy/examples/lab-topology.yaml` documents every key.
//!
//! This file holds the values and the rules other parts of the lab share ([`node_matches`],
//! the generated CNI configs, default ranges); `read` turns a document into them.

mod read;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use multinet_proto::cidr::{Cidr, Family, from_u128};
use multinet_proto::config::{GoDuration, Placement, RunConfig, TaintEffect, TaintView};
use multinet_proto::field::Problems;
use multinet_proto::network::CephNetwork;
use multinet_proto::yaml::{SyntaxError, parse_document};
use serde_json::{Map, Value, json};

/// Lab name when the file gives none.
pub const DEFAULT_NAME: &str = "mn";
/// Longest lab name: it prefixes every namespace and interface name.
pub const MAX_NAME_LEN: usize = 6;
/// Longest node name the lab builds its interface names with as it is; a longer one (or one
/// with other characters than lowercase letters and digits) gets a derived id
/// ([`LabTopology::node_id`]).
pub const MAX_NODE_ID_LEN: usize = 4;
/// Namespace suffixes of the lab itself (`<lab>-sw`, `<lab>-ctl`), never a node's id.
const RESERVED_IDS: [&str; 2] = ["sw", "ctl"];
/// Nodes when the file gives none.
pub const DEFAULT_NODE_COUNT: u32 = 3;
/// Most nodes one lab may have; beyond this a single machine measures itself, not a network.
pub const MAX_NODES: u32 = 64;
/// Smallest MTU accepted for a network or an uplink (the IPv4 minimum reassembly size).
pub const MIN_MTU: u32 = 576;
/// Largest MTU accepted for a network or an uplink (jumbo frames).
pub const MAX_MTU: u32 = 9000;
/// CNI plugins the lab can run (Debian's containernetworking-plugins).
pub const SUPPORTED_CNI: [&str; 4] = ["macvlan", "bridge", "host-device", "ipvlan"];
/// The CNI version the generated configs declare.
pub const CNI_VERSION: &str = "1.0.0";

/// IPv4 range every lab subnet must lie in: 198.18.0.0/15, reserved for benchmarking.
pub const SAFE_V4: Cidr = Cidr {
    addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)),
    prefix: 15,
};
/// IPv6 range every lab subnet must lie in: fd00::/8, unique local addresses.
pub const SAFE_V6: Cidr = Cidr {
    addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)),
    prefix: 8,
};

/// The lab's control network (agents ↔ coordinator, and in `lab up --kubeconfig` the pods'
/// network and the `kubernetes` Service): no topology network may overlap it, because a probe
/// to an address inside it would leave by the control interface instead of the network under
/// test (issue #12: a host checker without its route still reached the server that way).
pub const CONTROL_NETWORK: Cidr = Cidr {
    addr: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 0)),
    prefix: 16,
};

/// The whole lab as the topology file describes it, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct LabTopology {
    /// Short name, `[a-z0-9]{1,6}`: prefixes every namespace and interface of this lab, so two
    /// labs with different names run side by side.
    pub name: String,
    /// The nodes, in file order (the order the server placement rule walks).
    pub nodes: Vec<LabNode>,
    /// The Ceph networks the lab builds; at least one.
    pub networks: BTreeMap<CephNetwork, LabNetwork>,
    /// Per node and network uplink settings that differ from the default (full MTU, present).
    pub underlay: Vec<Underlay>,
    /// The node the test server must run on; `None` lets the placement rule choose.
    pub server_node: Option<String>,
    /// Faults to inject, in file order.
    pub faults: Vec<Fault>,
    /// Faults on a schedule (`at`, `for`), in file order: applied once probing has run for
    /// `at`, removed `for` later (soak runs, the lab as a chaos bench).
    pub scheduled: Vec<ScheduledFault>,
    /// Where the run configuration comes from.
    pub config: ConfigSource,
}

/// One emulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNode {
    /// The Kubernetes node name (a DNS-1123 subdomain), unique in the lab; reports and
    /// findings use it. Namespaces and interfaces use [`LabTopology::node_id`].
    pub name: String,
    /// Node labels, matched by node types' `nodeSelector`.
    pub labels: BTreeMap<String, String>,
    /// Node taints, which node types must tolerate.
    pub taints: Vec<Taint>,
}

/// A Kubernetes node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value; may be empty.
    pub value: String,
    /// What the taint does to pods that do not tolerate it.
    pub effect: TaintEffect,
}

impl Taint {
    /// The taint as proto's placement rule sees it.
    pub fn view(&self) -> TaintView<'_> {
        TaintView {
            key: &self.key,
            value: &self.value,
            effect: self.effect,
        }
    }
}

/// One lab network: the CNI config the lab runs for it and what the lab needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNetwork {
    /// The main plugin's type (`macvlan`, `bridge`, `host-device`, `ipvlan`).
    pub cni_type: String,
    /// The subnet pods get addresses from (the first IPAM range of a NAD).
    pub subnet: Cidr,
    /// First address the IPAM hands out; the addresses of the subnet below it are free for the
    /// lab's host shims.
    pub range_start: IpAddr,
    /// Last address the IPAM hands out.
    pub range_end: IpAddr,
    /// The CNI config JSON to run, exactly as a NAD's `spec.config` holds it.
    pub config_json: String,
    /// The interface MTU the config sets; `None` leaves the plugin's default.
    pub mtu: Option<u32>,
    /// Written as a NetworkAttachmentDefinition (run as written) rather than as the shorthand.
    pub from_nad: bool,
    /// `metadata.name` of the NAD, for matching the run configuration's network names.
    pub nad_name: Option<String>,
    /// The IPAM type. `whereabouts` is mapped onto host-local by the lab with the same ranges
    /// and one data directory for the lab; `host-local` runs with one data directory per node,
    /// as on a cluster's nodes.
    pub ipam_type: Option<String>,
}

/// Uplink settings of one node on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    /// The node.
    pub node: String,
    /// The network whose uplink this is.
    pub network: CephNetwork,
    /// The underlay's MTU at this node's switch port; lower than the network's MTU makes
    /// large packets vanish on this node.
    pub mtu: Option<u32>,
    /// The MTU of the node's master interface itself (the uplink macvlan and ipvlan attach
    /// to); `None`: the network's MTU (at least 1500). Below the NAD's `mtu` the plugin's ADD
    /// fails on this node (macvlan's `loadConf`: "invalid MTU …, must be [0, master MTU(…)]").
    pub master_mtu: Option<u32>,
    /// `false`: the node has no such uplink, so the CNI plugin finds no master interface.
    pub present: bool,
}

/// A fault with a time: `at` into the probing it is applied, `duration` (`for`) later it
/// is removed (`None`: it stays until the run ends); for a killed agent, `for` later it is
/// started again.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    /// The fault (a block, loss, link-down or MTU drop: on the switch's ports; or a killed
    /// agent).
    pub fault: Fault,
    /// When, counted from the start of probing.
    pub at: std::time::Duration,
    /// For how long.
    pub duration: Option<std::time::Duration>,
}

/// A node a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRef {
    /// `*`: every node.
    Any,
    /// One node, by name.
    Node(String),
}

/// A fault the lab injects, for a validation run to find.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Drop `network` traffic from `from`'s pods to `to`'s pods (one direction only).
    Block {
        /// The network blocked.
        network: CephNetwork,
        /// Source node.
        from: NodeRef,
        /// Destination node.
        to: NodeRef,
    },
    /// Drop `percent` of the packets on `node`'s uplink of `network`, at random.
    Loss {
        /// The network.
        network: CephNetwork,
        /// The node whose uplink loses packets.
        node: String,
        /// Share of packets lost, above 0 and at most 100.
        percent: f64,
    },
    /// Leave out the host shim and route that lets `node`'s host reach the public network.
    HostRouteMissing {
        /// The node.
        node: String,
    },
    /// `node`'s uplink on `network` loses its link: the switch port goes down, so the node's
    /// uplink has no carrier and every pod attached through it is cut off (a pulled cable, a
    /// switch port shut).
    LinkDown {
        /// The network.
        network: CephNetwork,
        /// The node.
        node: String,
    },
    /// The underlay's MTU at `node`'s switch port on `network` drops to `mtu`: larger packets
    /// vanish there, as on a switch port with that MTU (the `underlay` section's `mtu`, as a
    /// fault that can come and go).
    Mtu {
        /// The network.
        network: CephNetwork,
        /// The node.
        node: String,
        /// The port's MTU.
        mtu: u32,
    },
    /// Kill one client agent on `node` with SIGKILL (as a crash would) this long after the
    /// agents started (`after`) — or, on a schedule ([`ScheduledFault`]), `at` into the
    /// probing, started again with the same assignment `for` later (as a kubelet restarts a
    /// container; without `for` it stays dead).
    KillAgent {
        /// The node.
        node: String,
        /// Delay after the agents started (0 on a schedule: `at` says when).
        after: GoDuration,
    },
}

impl Fault {
    /// Whether the fault can be applied to a lab that is up and removed again (on the
    /// switch's ports: on a schedule, or by `multinet lab fault`); the others are made when
    /// the lab is built or the agents started.
    pub fn comes_and_goes(&self) -> bool {
        matches!(
            self,
            Fault::Block { .. } | Fault::Loss { .. } | Fault::LinkDown { .. } | Fault::Mtu { .. }
        )
    }
}

/// Where the run configuration comes from.
// One per topology: boxing the inline config would buy nothing but a clumsier match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Written in the topology file (already read and checked).
    Inline(RunConfig),
    /// A file to read, as written in the topology file (relative paths are the caller's to
    /// resolve, normally against the topology file's directory).
    Path(PathBuf),
    /// No configuration given: [`LabTopology::default_run_config`].
    Default,
}

impl Default for LabTopology {
    /// Three nodes `n1`..`n3`, public and cluster on macvlan with the default subnets, no
    /// faults, Rook's converged counts.
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_string(),
            nodes: numbered_nodes(DEFAULT_NODE_COUNT),
            networks: CephNetwork::ALL
                .into_iter()
                .map(|n| (n, LabNetwork::default_for(n)))
                .collect(),
            underlay: Vec::new(),
            server_node: None,
            faults: Vec::new(),
            scheduled: Vec::new(),
            config: ConfigSource::Default,
        }
    }
}

impl LabTopology {
    /// The run configuration of a file without `config`: Rook's defaults (one converged node
    /// type with 3 OSDs and 16 other daemons per node) on the lab's networks.
    pub fn default_run_config(&self) -> RunConfig {
        let mut config = RunConfig::default();
        if self.networks.contains_key(&CephNetwork::Public) {
            config.public_network = CephNetwork::Public.key().to_string();
        }
        if self.networks.contains_key(&CephNetwork::Cluster) {
            config.cluster_network = CephNetwork::Cluster.key().to_string();
        }
        config
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The short id the lab builds node `name`'s namespace (`<lab>-<id>`), pod namespaces
    /// (`<lab>-<id>-p<j>`) and switch and control ports (`<id>-pub`, `<id>-c`, `<id>p<j>`)
    /// with: the name itself when it is 1 to [`MAX_NODE_ID_LEN`] lowercase letters and digits
    /// (and not `sw` or `ctl`, the lab's own namespaces), else `n-<position>` (1-based, in file
    /// order). A derived id holds a `-`, which a kept name cannot, so ids are unique; at most 4
    /// characters (64 nodes), so `<id>p<j>` fits Linux's 15-character interface names.
    /// A name not in the lab is returned as it is.
    pub fn node_id(&self, name: &str) -> String {
        let kept = (1..=MAX_NODE_ID_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !RESERVED_IDS.contains(&name);
        match self.nodes.iter().position(|n| n.name == name) {
            Some(position) if !kept => format!("n-{}", position + 1),
            _ => name.to_string(),
        }
    }

    /// Checks a run configuration against the lab: the networks it names must be the lab's
    /// (by network key or NAD name; the namespace part is not compared, the lab has one), and
    /// a node type whose placement selects no lab node gets a warning. Fields are reported
    /// under `prefix` (`config` for an inline configuration, the file name for another).
    pub fn check_run_config(&self, config: &RunConfig, prefix: &str, problems: &mut Problems) {
        let at = |field: &str| prefixed(prefix, field);
        for (network, field, name) in [
            (CephNetwork::Public, "publicNetwork", &config.public_network),
            (
                CephNetwork::Cluster,
                "clusterNetwork",
                &config.cluster_network,
            ),
        ] {
            if name.is_empty() {
                continue;
            }
            match self.networks.get(&network) {
                None => problems.error(
                    at(field),
                    format!(
                        "names {name:?}, but the lab has no {} network (add `networks.{}` or \
                         leave {field} empty)",
                        network.key(),
                        network.key()
                    ),
                ),
                Some(lab) if !lab.answers_to(network, name) => problems.error(
                    at(field),
                    format!(
                        "names {name:?}, which is not the lab's {} network: write {:?}{}",
                        network.key(),
                        network.key(),
                        lab.nad_name
                            .as_ref()
                            .map(|n| format!(" or {n:?}"))
                            .unwrap_or_default()
                    ),
                ),
                Some(_) => {}
            }
        }
        for (type_name, node_type) in &config.node_types {
            if !self
                .nodes
                .iter()
                .any(|n| node_matches(n, &node_type.placement))
            {
                problems.warn(
                    at(&format!("nodeTypes.{type_name}.placement")),
                    "selects no node of the lab (check the nodes' labels and taints); this node \
                     type runs no clients",
                );
            }
        }
    }
}

impl LabNetwork {
    /// The shorthand network with every default: macvlan, the network's default subnet and
    /// range, the plugin's MTU.
    pub fn default_for(network: CephNetwork) -> Self {
        let (subnet, start, end) = match network {
            CephNetwork::Public => (
                Cidr {
                    addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)),
                    prefix: 20,
                },
                Ipv4Addr::new(198, 18, 1, 1),
                Ipv4Addr::new(198, 18, 15, 254),
            ),
            CephNetwork::Cluster => (
                Cidr {
                    addr: IpAddr::V4(Ipv4Addr::new(198, 18, 16, 0)),
                    prefix: 20,
                },
                Ipv4Addr::new(198, 18, 17, 1),
                Ipv4Addr::new(198, 18, 31, 254),
            ),
        };
        Self::shorthand(
            network,
            "macvlan",
            subnet,
            IpAddr::V4(start),
            IpAddr::V4(end),
            None,
        )
    }

    /// A network from the shorthand's parts, its CNI config generated.
    pub fn shorthand(
        network: CephNetwork,
        cni_type: &str,
        subnet: Cidr,
        range_start: IpAddr,
        range_end: IpAddr,
        mtu: Option<u32>,
    ) -> Self {
        let mut lab = Self {
            cni_type: cni_type.to_string(),
            subnet: subnet.network(),
            range_start,
            range_end,
            config_json: String::new(),
            mtu,
            from_nad: false,
            nad_name: None,
            ipam_type: Some("whereabouts".to_string()),
        };
        lab.config_json = lab.cni_config(network);
        lab
    }

    /// The CNI config to run for `network`. A NAD's config is returned as written. The
    /// shorthand's is generated: whereabouts IPAM over the subnet from `range_start` to
    /// `range_end` (cluster-wide, as Rook's documentation uses it; host-local would hand out
    /// the same addresses on every node), and the master interface the lab creates in every
    /// node (`pub0` / `clu0`, or the bridge `br-pub` / `br-clu`). The lab runs whereabouts as
    /// host-local over the same range with one data directory for the lab.
    pub fn cni_config(&self, network: CephNetwork) -> String {
        if self.from_nad {
            return self.config_json.clone();
        }
        let master = master_interface(network);
        let mut config = Map::new();
        config.insert("cniVersion".into(), json!(CNI_VERSION));
        config.insert("name".into(), json!(network.key()));
        config.insert("type".into(), json!(self.cni_type));
        match self.cni_type.as_str() {
            "bridge" => {
                config.insert("bridge".into(), json!(bridge_name(network)));
                // The lab's bridges are switches, not routers: no address on the node side.
                config.insert("isGateway".into(), json!(false));
            }
            "host-device" => {
                config.insert("device".into(), json!(master));
            }
            "ipvlan" => {
                config.insert("master".into(), json!(master));
                config.insert("mode".into(), json!("l2"));
            }
            _ => {
                config.insert("master".into(), json!(master));
                config.insert("mode".into(), json!("bridge"));
            }
        }
        if let Some(mtu) = self.mtu
            && self.cni_type != "host-device"
        {
            config.insert("mtu".into(), json!(mtu));
        }
        config.insert(
            "ipam".into(),
            json!({
                "type": "whereabouts",
                "range": self.subnet.network().to_string(),
                "range_start": self.range_start.to_string(),
                "range_end": self.range_end.to_string(),
            }),
        );
        Value::Object(config).to_string()
    }

    /// Whether a run configuration's network name (`name` or `namespace/name`) means this
    /// network: the network's key, or the NAD's name.
    pub fn answers_to(&self, network: CephNetwork, name: &str) -> bool {
        let bare = name.rsplit('/').next().unwrap_or(name);
        bare == network.key() || self.nad_name.as_deref() == Some(bare)
    }
}

/// The master interface the lab creates in every node for `network` (the node's uplink).
pub fn master_interface(network: CephNetwork) -> &'static str {
    match network {
        CephNetwork::Public => "pub0",
        CephNetwork::Cluster => "clu0",
    }
}

/// The bridge a `bridge` shorthand network attaches pods to in every node.
pub fn bridge_name(network: CephNetwork) -> &'static str {
    match network {
        CephNetwork::Public => "br-pub",
        CephNetwork::Cluster => "br-clu",
    }
}

/// Kubernetes' scheduling rule for one node (proto's [`Placement::admits`]): every
/// `nodeSelector` entry equals a label, and every taint that keeps pods away (`NoSchedule`,
/// `NoExecute`) is tolerated. `PreferNoSchedule` taints only discourage, so they never exclude
/// a node.
pub fn node_matches(node: &LabNode, placement: &Placement) -> bool {
    placement.admits(&node.labels, node.taints.iter().map(Taint::view))
}

/// Reads a topology file's text. Keys left out keep their defaults (an empty text is the
/// default topology). The problems hold every error and warning, each at its field; the
/// topology holds what did read and is only fit to build when `problems.is_valid()`. Only
/// malformed YAML fails outright.
pub fn parse_topology(text: &str) -> Result<(LabTopology, Problems), SyntaxError> {
    let document = parse_document(text)?;
    let mut problems = Problems::default();
    let topology = read::read_topology(&document, &mut problems);
    Ok((topology, problems))
}

/// One fault written as in a topology's `faults` list (`{block: {network: cluster, from: n1,
/// to: n2}}`), read against `topology`'s nodes and networks, for a lab that is up
/// (`multinet lab fault add`). Problems are at the path `fault`.
///
/// # Errors
///
/// The text is not YAML.
pub fn parse_fault(
    topology: &LabTopology,
    text: &str,
) -> Result<(Option<Fault>, Problems), SyntaxError> {
    let document = parse_document(text)?;
    let mut problems = Problems::default();
    let fault = read::read_one_fault(&document, topology, &mut problems);
    Ok((fault, problems))
}

/// The range the shorthand hands out when the file gives none. IPv4: the first sixteenth of
/// the subnet is left for host shims, the range runs from there to the address before the
/// broadcast (198.18.0.0/20 gives 198.18.1.1–198.18.15.254). IPv6 subnets of /96 or larger:
/// `::1:1`–`::1:ffff` of the subnet (65 535 addresses); smaller ones: the sixteenth rule up to
/// the last address. `None` when the subnet is too small for that (longer than /30 or /126).
pub fn default_range(subnet: &Cidr) -> Option<(IpAddr, IpAddr)> {
    let family = subnet.family();
    let first = subnet.first();
    let (start, end) = match family {
        Family::V4 if subnet.prefix <= 30 => (
            first + subnet.size() / 16 + 1,
            subnet.last().checked_sub(1)?,
        ),
        Family::V6 if subnet.prefix <= 96 => {
            (first.checked_add(0x1_0001)?, first.checked_add(0x1_ffff)?)
        }
        Family::V6 if subnet.prefix <= 126 => (first + subnet.size() / 16 + 1, subnet.last()),
        _ => return None,
    };
    Some((from_u128(family, start), from_u128(family, end)))
}

/// `n1` .. `nN`, without labels or taints.
fn numbered_nodes(count: u32) -> Vec<LabNode> {
    (1..=count)
        .map(|i| LabNode {
            name: format!("n{i}"),
            labels: BTreeMap::new(),
            taints: Vec::new(),
        })
        .collect()
}

/// `prefix.field`; either part may be empty (the top of a document, the whole sub-document).
fn prefixed(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{field}"),
    }
}
