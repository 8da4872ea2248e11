//! Building and removing a lab. Names derive from the lab's name, so a lab can be found and
//! removed after a crash:
//!
//! | what | name |
//! |---|---|
//! | switch namespace (one bridge per network: `br-pub`, `br-clu`) | `<lab>-sw` |
//! | control namespace (bridge `ctl`, coordinator at 198.19.0.1/16) | `<lab>-ctl` |
//! | node namespace (uplinks `pub0`/`clu0`, control `ctl0`, public shim `shim0`) | `<lab>-<node>` |
//! | pod namespace (NAD interfaces `public`/`cluster`, control `ctl0`) | `<lab>-<node>-p<j>` |
//! | state (attachments for CNI DEL, host-local IPAM data) | `/run/multinet/<lab>/` |
//!
//! Every address lives inside the lab's namespaces; the host namespace gets no interface and no
//! route. The control network (198.19.0.0/16) carries only agent ↔ coordinator traffic and no
//! fault touches it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::network::CephNetwork;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::{Attachment, CNI_PATH};
use super::net::{self, ip_in, netns_add, netns_del, netns_list, veth};
use super::topology::{LabNetwork, LabTopology};

/// Where lab state lives (tmpfs: gone after a reboot, like the namespaces).
pub const STATE_ROOT: &str = "/run/multinet";

/// The coordinator's address on the control network.
pub const COORDINATOR: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);

/// What must be undone: written before each step, so `lab down` works after a crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LabState {
    /// Lab name.
    pub name: String,
    /// Attachments made (CNI DEL releases their addresses).
    pub attachments: Vec<Attachment>,
    /// Pods created.
    pub pods: Vec<String>,
    /// The number the next pod gets (its namespace name and control address): pods of the
    /// lab as a cluster's nodes come and go, and a number is never handed out twice.
    #[serde(default)]
    pub next_pod: u32,
}

/// A lab that is up.
#[derive(Debug)]
pub struct Lab {
    /// Its topology.
    pub topology: LabTopology,
    pub(super) state: LabState,
    pub(super) dir: PathBuf,
}

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

fn bridge(network: CephNetwork) -> &'static str {
    match network {
        CephNetwork::Public => "br-pub",
        CephNetwork::Cluster => "br-clu",
    }
}

fn port_suffix(network: CephNetwork) -> &'static str {
    match network {
        CephNetwork::Public => "pub",
        CephNetwork::Cluster => "clu",
    }
}

/// The control bridge's address (locally administered, unicast).
const CONTROL_BRIDGE_MAC: &str = "02:6d:6e:00:00:01";

/// A node bridge's address: locally administered, unique per node and network in a lab.
fn node_bridge_mac(node: u32, network: CephNetwork) -> String {
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

/// The i-th address of the control network after the coordinator's (1-based).
pub(super) fn control_addr(i: u32) -> Ipv4Addr {
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
    /// `<lab>-<node>`.
    pub fn node_ns(name: &str, node: &str) -> String {
        format!("{name}-{node}")
    }

    fn state_dir(name: &str) -> PathBuf {
        PathBuf::from(STATE_ROOT).join(name)
    }

    /// The lab's state directory.
    pub fn state_dir_path(&self) -> PathBuf {
        self.dir.clone()
    }

    pub(super) fn save(&self) -> anyhow::Result<()> {
        std::fs::write(
            self.dir.join("state.json"),
            serde_json::to_vec_pretty(&self.state)?,
        )
        .context("writing the lab state")
    }

    /// Checks what the topology needs before anything is created: root, `ip` and `nft`, every
    /// CNI plugin its configs name (each plugin of a conflist, and host-local for the IPAM),
    /// and the kernel's link types. Names everything missing at once.
    pub fn preflight(topology: &LabTopology) -> anyhow::Result<()> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            });
        anyhow::ensure!(
            uid.as_deref() == Some("0"),
            "the lab needs root (network namespaces, links, CNI plugins)"
        );
        let mut missing: Vec<String> = Vec::new();
        if net::run("ip", &["-V"]).is_err() {
            missing.push("iproute2's `ip` (`apt-get install iproute2`)".into());
        }
        // Faults and an underlay MTU below the NAD's are nftables rules in the switch namespace.
        if !super::faults::ruleset(topology).is_empty() && net::run("nft", &["--version"]).is_err()
        {
            missing.push("nftables' `nft` (`apt-get install nftables`)".into());
        }
        let mut plugins: BTreeSet<String> = BTreeSet::from(["host-local".to_string()]);
        let mut kinds: BTreeSet<&str> = BTreeSet::from(["veth", "bridge"]);
        for n in topology.networks.values() {
            plugins.extend(plugin_types(&n.config_json));
            plugins.insert(n.cni_type.clone());
            if let Some(kind) = link_kind(&n.cni_type) {
                kinds.insert(kind);
            }
        }
        if topology.networks.contains_key(&CephNetwork::Public) {
            kinds.insert("macvlan"); // the hosts' shim onto the public network
        }
        for plugin in &plugins {
            let path = PathBuf::from(CNI_PATH).join(plugin);
            if !path.exists() {
                missing.push(format!(
                    "the CNI plugin {} (`apt-get install containernetworking-plugins`)",
                    path.display()
                ));
            }
        }
        let users = |kind: &str| -> String {
            let nets: Vec<&str> = topology
                .networks
                .iter()
                .filter(|(_, n)| link_kind(&n.cni_type) == Some(kind))
                .map(|(k, _)| k.key())
                .collect();
            match (kind, nets.is_empty()) {
                ("macvlan", true) => "the hosts' public-network shim".into(),
                (_, true) => "the lab's switches and links".into(),
                _ => format!("the {} network(s)", nets.join(" and ")),
            }
        };
        for kind in kinds {
            if !kernel_has(kind) {
                missing.push(format!(
                    "{kind} links (used by {}), which this kernel does not provide",
                    users(kind)
                ));
            }
        }
        anyhow::ensure!(
            missing.is_empty(),
            "the lab cannot be built here; missing: {}",
            missing.join("; ")
        );
        Ok(())
    }

    /// Builds the lab (removing a stale one of the same name first). `source` is the topology
    /// file's text (empty for the default topology), kept so the lab can be reopened.
    pub fn up(topology: LabTopology, source: &str) -> anyhow::Result<Self> {
        Self::preflight(&topology)?;
        let name = topology.name.clone();
        Self::down(&name)?;
        let dir = Self::state_dir(&name);
        std::fs::create_dir_all(dir.join("ipam"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("topology.yaml"), source).context("saving the topology")?;
        let lab = Self {
            state: LabState {
                name: name.clone(),
                ..LabState::default()
            },
            topology,
            dir,
        };
        lab.save()?;
        if let Err(e) = lab.build() {
            let _ = Self::down(&name);
            return Err(e);
        }
        Ok(lab)
    }

    /// What the lab does differently from a cluster, for the user to know.
    pub fn notices(topology: &LabTopology) -> Vec<String> {
        topology
            .networks
            .iter()
            .filter(|(_, n)| n.ipam_type.as_deref() == Some("whereabouts"))
            .map(|(network, _)| format!("the {} network's whereabouts IPAM runs as host-local with the same ranges (one data directory for the lab keeps addresses unique across nodes)", network.key()))
            .collect()
    }

    /// Reopens a lab that is up (built by `lab up`), to run on it.
    pub fn open(name: &str) -> anyhow::Result<Self> {
        let dir = Self::state_dir(name);
        let state: LabState = serde_json::from_slice(
            &std::fs::read(dir.join("state.json"))
                .with_context(|| format!("lab {name:?} is not up (no {})", dir.display()))?,
        )
        .context("the lab state is damaged: `multinet lab down` it and build it again")?;
        let source = std::fs::read_to_string(dir.join("topology.yaml"))
            .context("reading the lab's topology")?;
        let topology = if source.trim().is_empty() {
            LabTopology::default()
        } else {
            let (topology, problems) = super::topology::parse_topology(&source)
                .map_err(|e| anyhow::anyhow!("the lab's topology: {e}"))?;
            anyhow::ensure!(
                problems.is_valid(),
                "the lab's topology is not valid any more"
            );
            topology
        };
        Ok(Self {
            topology,
            state,
            dir,
        })
    }

    fn build(&self) -> anyhow::Result<()> {
        let name = &self.topology.name;
        let (sw, ctl) = (Self::switch_ns(name), Self::control_ns(name));
        netns_add(&sw)?;
        netns_add(&ctl)?;
        ip_in(&ctl, &["link", "add", "ctl", "type", "bridge"])?;
        // A bridge without an address of its own takes its lowest port's, so adding or
        // removing pods would change the coordinator's MAC under the nodes' ARP caches (and
        // their host checkers would talk to a MAC nobody has). A fixed address never moves.
        ip_in(&ctl, &["link", "set", "ctl", "address", CONTROL_BRIDGE_MAC])?;
        ip_in(&ctl, &["link", "set", "ctl", "up"])?;
        ip_in(
            &ctl,
            &["addr", "add", &format!("{COORDINATOR}/16"), "dev", "ctl"],
        )?;
        for network in self.topology.networks.keys() {
            ip_in(&sw, &["link", "add", bridge(*network), "type", "bridge"])?;
            ip_in(&sw, &["link", "set", bridge(*network), "up"])?;
        }
        for (i, node) in self.topology.nodes.iter().enumerate() {
            let ns = Self::node_ns(name, &node.name);
            netns_add(&ns)?;
            let port = format!("{}-c", node.name);
            veth(&ns, "ctl0", &ctl, &port, None)?;
            ip_in(&ctl, &["link", "set", &port, "master", "ctl"])?;
            ip_in(
                &ns,
                &[
                    "addr",
                    "add",
                    &format!("{}/16", control_addr(i as u32 + 1)),
                    "dev",
                    "ctl0",
                ],
            )?;
            for (network, net) in &self.topology.networks {
                let underlay = self
                    .topology
                    .underlay
                    .iter()
                    .find(|u| u.node == node.name && u.network == *network);
                if underlay.is_some_and(|u| !u.present) {
                    continue; // the fault: no master interface on this node
                }
                let port = format!("{}-{}", node.name, port_suffix(*network));
                // The node's uplink carries the NAD's MTU (a macvlan cannot exceed its master);
                // the switch port has the underlay's, lower when the topology says so, and the
                // fault rules make it bind (see `faults`).
                let nad_mtu = net.mtu.unwrap_or(1500).max(1500);
                let links = node_links(net, *network);
                veth(&ns, &links.uplink, &sw, &port, Some(nad_mtu))?;
                if let Some(mtu) = underlay.and_then(|u| u.mtu) {
                    ip_in(&sw, &["link", "set", &port, "mtu", &mtu.to_string()])?;
                }
                ip_in(&sw, &["link", "set", &port, "master", bridge(*network)])?;
                if let Some(node_bridge) = &links.bridge {
                    // The bridge plugin attaches pods to this node bridge; the uplink joins it.
                    ip_in(&ns, &["link", "add", "name", node_bridge, "type", "bridge"])?;
                    // Fixed, as the control bridge's: a gateway address the bridge plugin
                    // puts on it must not change MAC as pods come and go.
                    let mac = node_bridge_mac(i as u32, *network);
                    ip_in(&ns, &["link", "set", node_bridge, "address", &mac])?;
                    ip_in(&ns, &["link", "set", node_bridge, "up"])?;
                    ip_in(&ns, &["link", "set", &links.uplink, "master", node_bridge])?;
                }
            }
            if self.topology.networks.contains_key(&CephNetwork::Public)
                && !super::faults::host_route_missing(&self.topology, &node.name)
            {
                self.add_shim(&ns, i as u32)?;
            }
        }
        super::faults::apply(&self.topology, &sw, &self.dir)
    }

    /// The host's way onto the public network, as Rook's documentation asks: a macvlan shim
    /// on the public uplink with an address in the public subnet, outside the pods' range.
    fn add_shim(&self, ns: &str, i: u32) -> anyhow::Result<()> {
        let Some(net) = self.topology.networks.get(&CephNetwork::Public) else {
            return Ok(());
        };
        let links = node_links(net, CephNetwork::Public);
        let parent = links.bridge.as_deref().unwrap_or(&links.uplink);
        if !netns_has_link(ns, parent) {
            return Ok(());
        }
        ip_in(
            ns,
            &[
                "link", "add", "link", parent, "name", "shim0", "type", "macvlan", "mode", "bridge",
            ],
        )?;
        let host = shim_address(net, i);
        ip_in(
            ns,
            &[
                "addr",
                "add",
                &format!("{host}/{}", net.subnet.prefix),
                "dev",
                "shim0",
            ],
        )?;
        ip_in(ns, &["link", "set", "shim0", "up"])
    }

    /// Adds a pod on `node` attached to `networks`; returns its namespace, control address
    /// and NAD addresses, or the first network it could not get an address on, with the CNI
    /// error.
    pub fn add_pod(&mut self, node: &str, networks: &[CephNetwork]) -> anyhow::Result<PodNet> {
        let name = self.topology.name.clone();
        let sandbox = self.pod_namespace(node, "ctl0")?;
        let (ns, control) = (sandbox.ns, sandbox.pod_ip);
        let mut addresses = Vec::new();
        for network in networks {
            let attachment = Attachment {
                node_ns: Self::node_ns(&name, node),
                pod_ns: ns.clone(),
                container_id: ns.clone(),
                ifname: network.key().to_string(),
                config: self.cni_config(*network)?,
            };
            self.state.attachments.push(attachment.clone());
            self.save()?;
            match attachment.add() {
                Ok(ips) => match ips.first() {
                    Some(ip) => addresses.push(NetworkAddress {
                        network: *network,
                        addr: *ip,
                        interface: Some(network.key().to_string()),
                    }),
                    None => {
                        return Ok(PodNet {
                            ns,
                            control,
                            addresses,
                            failed: Some((*network, "the CNI result has no address".into())),
                        });
                    }
                },
                Err(e) => {
                    // Undo what the plugins before the failing one did (a conflist), as a
                    // runtime does; teardown deletes it again, which CNI allows.
                    let _ = attachment.del();
                    return Ok(PodNet {
                        ns,
                        control,
                        addresses,
                        failed: Some((*network, format!("on node {node}: {e:#}"))),
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

    /// A number for a new pod, never handed out before in this lab.
    pub(super) fn next_pod_number(&mut self) -> u32 {
        let j = self.state.next_pod.max(self.state.pods.len() as u32);
        self.state.next_pod = j + 1;
        j
    }

    /// Whether a network of the lab hands out IPv6 addresses.
    pub(super) fn has_ipv6(&self) -> bool {
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

    /// The network's CNI config with the lab's name, master interface and IPAM data dir.
    fn cni_config(&self, network: CephNetwork) -> anyhow::Result<String> {
        let net = self
            .topology
            .networks
            .get(&network)
            .context("the network is not in the topology")?;
        self.lab_cni_config(
            &net.config_json,
            Some(format!("{}-{}", self.topology.name, network.key())),
        )
    }

    /// A NAD's CNI config as the lab runs it: `name` replaced when given, a `cniVersion` when
    /// it has none, and each plugin's IPAM mapped onto the lab's data directory (see
    /// [`lab_ipam`]).
    pub(super) fn lab_cni_config(
        &self,
        config_json: &str,
        name: Option<String>,
    ) -> anyhow::Result<String> {
        let mut v: Value =
            serde_json::from_str(config_json).context("the network's CNI config is not JSON")?;
        let obj = v
            .as_object_mut()
            .context("the CNI config is not an object")?;
        if let Some(name) = name {
            obj.insert("name".into(), Value::String(name));
        }
        obj.entry("cniVersion")
            .or_insert(Value::String("0.4.0".into()));
        let data_dir = Value::String(self.dir.join("ipam").display().to_string());
        // A single plugin's config, or a conflist whose plugins each may have IPAM.
        let plugins: Vec<&mut serde_json::Map<String, Value>> =
            match obj.get_mut("plugins").and_then(Value::as_array_mut) {
                Some(list) => list.iter_mut().filter_map(Value::as_object_mut).collect(),
                None => vec![obj],
            };
        for plugin in plugins {
            if let Some(ipam) = plugin.get_mut("ipam").and_then(Value::as_object_mut) {
                lab_ipam(ipam, config_json, data_dir.clone())?;
            }
        }
        Ok(serde_json::to_string(&v)?)
    }

    /// A UDP socket for the coordinator's control plane, inside the control namespace.
    pub fn control_socket(&self) -> anyhow::Result<std::net::UdpSocket> {
        net::udp_socket_in(
            &Self::control_ns(&self.topology.name),
            SocketAddr::new(IpAddr::V4(COORDINATOR), 0),
        )
    }

    /// Removes the pods (CNI DEL for each attachment, their namespaces), leaving the lab.
    pub fn remove_pods(&mut self) -> anyhow::Result<()> {
        for a in self.state.attachments.iter().rev() {
            let _ = a.del();
        }
        let ctl = Self::control_ns(&self.topology.name);
        let prefix = format!("{}-", self.topology.name);
        for pod in &self.state.pods {
            // Deleting the control-network end now removes the pair at once; a deleted
            // namespace's interfaces go away only when the kernel gets to it, and the next run
            // would find the port name taken.
            if let Some(port) = pod
                .strip_prefix(&prefix)
                .map(|rest| rest.replace("-p", "p"))
            {
                let _ = ip_in(&ctl, &["link", "del", &port]);
            }
            netns_del(pod)?;
        }
        self.state.attachments.clear();
        self.state.pods.clear();
        self.save()
    }

    /// Removes lab `name`: CNI DEL for every attachment (releasing IPAM addresses), every
    /// namespace of the lab, and its state. Nothing of it is an error to be missing.
    pub fn down(name: &str) -> anyhow::Result<()> {
        let dir = Self::state_dir(name);
        if let Ok(text) = std::fs::read(dir.join("state.json"))
            && let Ok(state) = serde_json::from_slice::<LabState>(&text)
        {
            for a in state.attachments.iter().rev() {
                let _ = a.del();
            }
        }
        let prefix = format!("{name}-");
        let mut namespaces: Vec<String> = netns_list()?
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        // Pods first (deepest names), then nodes, then switch and control; the processes in
        // them (agents of a run that was killed) go first.
        namespaces.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for ns in &namespaces {
            net::netns_kill(ns)?;
        }
        for ns in namespaces {
            netns_del(&ns)?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        Ok(())
    }

    /// Names of the labs that exist (namespaces or state).
    pub fn list() -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = netns_list()?
            .into_iter()
            .filter_map(|n| n.strip_suffix("-ctl").map(str::to_string))
            .collect();
        if let Ok(entries) = std::fs::read_dir(STATE_ROOT) {
            for e in entries.flatten() {
                if let Some(n) = e.file_name().to_str() {
                    names.push(n.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
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

/// One plugin's IPAM as the lab runs it: host-local gets the lab's data directory; whereabouts
/// (no whereabouts daemon here) becomes host-local with the same ranges, whose one data
/// directory for the whole lab keeps addresses unique across nodes. `config_json` is the NAD's
/// config as written (for the whereabouts ranges).
fn lab_ipam(
    ipam: &mut serde_json::Map<String, Value>,
    config_json: &str,
    data_dir: Value,
) -> anyhow::Result<()> {
    match ipam.get("type").and_then(Value::as_str) {
        Some("host-local") => {
            ipam.insert("dataDir".into(), data_dir);
        }
        Some("whereabouts") => {
            let summary = multinet_proto::multus::nad::read_config(
                "lab",
                config_json,
                &mut multinet_proto::field::Problems::default(),
            )
            .context("the network's whereabouts IPAM does not parse")?;
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
            ipam.insert("dataDir".into(), data_dir);
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

/// Node `i`'s shim address: in the public subnet and outside the pods' IPAM range — below it
/// when there is room, else from the top of the subnet (IPAM hands out from the bottom).
fn shim_address(net: &LabNetwork, i: u32) -> IpAddr {
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

fn netns_has_link(ns: &str, link: &str) -> bool {
    ip_in(ns, &["link", "show", link]).is_ok()
}

/// The link type a CNI plugin creates on its master, if the kernel must provide one.
fn link_kind(cni_type: &str) -> Option<&'static str> {
    match cni_type {
        "macvlan" => Some("macvlan"),
        "ipvlan" => Some("ipvlan"),
        "bridge" => Some("bridge"),
        _ => None,
    }
}

/// The plugin types a CNI config runs: its `type`, or each plugin's in a conflist.
fn plugin_types(config_json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(config_json) else {
        return Vec::new();
    };
    let of = |p: &Value| p.get("type").and_then(Value::as_str).map(str::to_string);
    match v.get("plugins").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(of).collect(),
        None => of(&v).into_iter().collect(),
    }
}

/// Whether the kernel can make links of `kind` (tries it in a scratch namespace).
fn kernel_has(kind: &str) -> bool {
    // `_` is never in a lab name, so no lab's `<name>-` prefix covers this namespace.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ns = format!(
        "mn_probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    if netns_add(&ns).is_err() {
        return false;
    }
    let ok = match kind {
        "veth" => ip_in(
            &ns,
            &[
                "link", "add", "name", "vx0", "type", "veth", "peer", "name", "vx1",
            ],
        )
        .is_ok(),
        "macvlan" | "ipvlan" => {
            ip_in(&ns, &["link", "add", "name", "br0", "type", "bridge"]).is_ok()
                && ip_in(
                    &ns,
                    &["link", "add", "link", "br0", "name", "x0", "type", kind],
                )
                .is_ok()
        }
        other => ip_in(&ns, &["link", "add", "name", "x0", "type", other]).is_ok(),
    };
    let _ = netns_del(&ns);
    ok
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
