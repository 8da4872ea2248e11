//! A lab's life: `up` (build the switch, control and node namespaces and their links, then
//! apply the faults), `open` (reopen from its saved state), `down` and `list`; the state file
//! written before each step so `lab down` works after a crash.

use std::net::{IpAddr, SocketAddr};

use multinet_proto::network::CephNetwork;

use super::naming::{
    CONTROL_BRIDGE_MAC, bridge, control_addr, control_mac, master_mtu, node_bridge_mac, node_links,
    shim_address,
};
use super::{COORDINATOR, Error, Lab, LabState, Result, STATE_ROOT};
use crate::lab::net::{self, netns_add, netns_del, netns_list, veth};
use crate::lab::topology::LabTopology;

impl Lab {
    /// The state, also after a thread panicked while it held the lock (what it recorded is
    /// still what must be undone).
    pub(in crate::lab) fn state(&self) -> std::sync::MutexGuard<'_, LabState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the state and saves it before anyone else can change it.
    pub(in crate::lab) fn record<T>(&self, change: impl FnOnce(&mut LabState) -> T) -> Result<T> {
        let mut state = self.state();
        let out = change(&mut state);
        self.write_state(&state)?;
        Ok(out)
    }

    pub(in crate::lab) fn save(&self) -> Result<()> {
        self.write_state(&self.state())
    }

    fn write_state(&self, state: &LabState) -> Result<()> {
        let path = self.dir.join("state.json");
        serde_json::to_vec_pretty(state)
            .map_err(std::io::Error::from)
            .and_then(|text| std::fs::write(&path, text))
            .map_err(|source| Error::SaveState { path, source })
    }

    /// Builds the lab (removing a stale one of the same name first). `source` is the topology
    /// file's text (empty for the default topology), kept so the lab can be reopened.
    pub fn up(topology: LabTopology, source: &str) -> Result<Self> {
        Self::preflight(&topology)?;
        let name = topology.name.clone();
        Self::down(&name)?;
        let dir = Self::state_dir(&name);
        std::fs::create_dir_all(dir.join("ipam")).map_err(|source| Error::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let saved = dir.join("topology.yaml");
        std::fs::write(&saved, source).map_err(|source| Error::SaveTopology {
            path: saved,
            source,
        })?;
        let lab = Self {
            state: std::sync::Mutex::new(LabState {
                name: name.clone(),
                ..LabState::default()
            }),
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

    /// What the lab does differently from a cluster, for the user to know: a NAD's whereabouts
    /// IPAM runs as host-local (the generated configs' whereabouts too, but that is the lab's
    /// own choice, not the user's, and not said).
    pub fn notices(topology: &LabTopology) -> Vec<String> {
        topology
            .networks
            .iter()
            .filter(|(_, n)| n.from_nad && n.ipam_type.as_deref() == Some("whereabouts"))
            .map(|(network, _)| format!("the {} network's whereabouts IPAM runs as host-local with the same ranges (one data directory for the lab keeps addresses unique across nodes)", network.key()))
            .collect()
    }

    /// Reopens a lab that is up (built by `lab up`), to run on it.
    pub fn open(name: &str) -> Result<Self> {
        let dir = Self::state_dir(name);
        let state_file = dir.join("state.json");
        let text = std::fs::read(&state_file).map_err(|source| Error::NotUp {
            name: name.to_string(),
            dir: dir.clone(),
            source,
        })?;
        let state: LabState =
            serde_json::from_slice(&text).map_err(|source| Error::StateDamaged {
                path: state_file,
                source,
            })?;
        let topology_file = dir.join("topology.yaml");
        let source =
            std::fs::read_to_string(&topology_file).map_err(|source| Error::ReadTopology {
                path: topology_file,
                source,
            })?;
        let topology = if source.trim().is_empty() {
            LabTopology::default()
        } else {
            let (topology, problems) =
                crate::lab::topology::parse_topology(&source).map_err(Error::TopologySyntax)?;
            if !problems.is_valid() {
                return Err(Error::TopologyInvalid);
            }
            topology
        };
        Ok(Self {
            topology,
            state: std::sync::Mutex::new(state),
            dir,
        })
    }

    fn build(&self) -> Result<()> {
        let name = &self.topology.name;
        let (sw, ctl) = (Self::switch_ns(name), Self::control_ns(name));
        netns_add(&sw)?;
        netns_add(&ctl)?;
        net::in_namespace(&ctl, |l| {
            l.add_bridge("ctl")?;
            // A bridge without an address of its own takes its lowest port's, so adding or
            // removing pods would change the coordinator's MAC under the nodes' ARP caches
            // (and their host checkers would talk to a MAC nobody has). A fixed address never
            // moves.
            l.set_mac("ctl", CONTROL_BRIDGE_MAC)?;
            l.up("ctl")?;
            l.add_address("ctl", IpAddr::V4(COORDINATOR), 16, false)
        })?;
        net::in_namespace(&sw, |l| {
            for network in self.topology.networks.keys() {
                l.add_bridge(bridge(*network))?;
                l.up(bridge(*network))?;
            }
            Ok(())
        })?;
        for (i, node) in self.topology.nodes.iter().enumerate() {
            let id = self.topology.node_id(&node.name);
            let ns = Self::node_ns(name, &id);
            netns_add(&ns)?;
            let port = format!("{id}-c");
            veth(&ns, "ctl0", &ctl, &port, None)?;
            net::control_interface_answers_only_for_itself(&ns, "ctl0")?;
            let addr = control_addr(i as u32 + 1);
            // Permanent neighbour entries at both ends, as for pods (`control_mac`).
            let mac = control_mac(addr);
            net::in_namespace(&ctl, |l| {
                l.set_master(&port, "ctl")?;
                l.add_permanent_neighbour("ctl", IpAddr::V4(addr), &mac)
            })?;
            net::in_namespace(&ns, |l| {
                l.set_mac("ctl0", &mac)?;
                l.add_address("ctl0", IpAddr::V4(addr), 16, false)?;
                l.add_permanent_neighbour("ctl0", IpAddr::V4(COORDINATOR), CONTROL_BRIDGE_MAC)
            })?;
            for (network, net) in &self.topology.networks {
                let underlay = self
                    .topology
                    .underlay
                    .iter()
                    .find(|u| u.node == node.name && u.network == *network);
                if underlay.is_some_and(|u| !u.present) {
                    continue; // the fault: no master interface on this node
                }
                let port = crate::lab::faults::switch_port(&self.topology, &node.name, *network);
                // The node's uplink carries the NAD's MTU (a macvlan cannot exceed its master)
                // unless the topology gives the master an MTU of its own (`master_mtu`: below
                // the NAD's, the plugin refuses the pod's interface); the switch port has the
                // underlay's, lower when the topology says so, and the fault rules make it bind
                // (see `faults`).
                let master_mtu = master_mtu(&self.topology, &node.name, *network);
                let links = node_links(net, *network);
                veth(&ns, &links.uplink, &sw, &port, Some(master_mtu))?;
                net::in_namespace(&sw, |l| {
                    if let Some(mtu) = underlay.and_then(|u| u.mtu) {
                        l.set_mtu(&port, mtu)?;
                    }
                    l.set_master(&port, bridge(*network))
                })?;
                if let Some(node_bridge) = &links.bridge {
                    net::in_namespace(&ns, |l| {
                        // The bridge plugin attaches pods to this node bridge; the uplink
                        // joins it.
                        l.add_bridge(node_bridge)?;
                        // Fixed, as the control bridge's: a gateway address the bridge plugin
                        // puts on it must not change MAC as pods come and go.
                        l.set_mac(node_bridge, &node_bridge_mac(i as u32, *network))?;
                        l.up(node_bridge)?;
                        l.set_master(&links.uplink, node_bridge)
                    })?;
                }
            }
            if self.topology.networks.contains_key(&CephNetwork::Public)
                && !crate::lab::faults::host_route_missing(&self.topology, &node.name)
            {
                self.add_shim(&ns, i as u32)?;
            }
        }
        Ok(crate::lab::faults::apply(&self.topology, &sw, &self.dir)?)
    }

    /// The host's way onto the public network, as Rook's documentation asks: a macvlan shim
    /// on the public uplink with an address in the public subnet, outside the pods' range.
    fn add_shim(&self, ns: &str, i: u32) -> Result<()> {
        let Some(net) = self.topology.networks.get(&CephNetwork::Public) else {
            return Ok(());
        };
        let links = node_links(net, CephNetwork::Public);
        let parent = links.bridge.as_deref().unwrap_or(&links.uplink);
        let host = shim_address(net, i);
        let cidr_prefix = net.subnet.prefix;
        Ok(net::in_namespace(ns, |l| {
            if l.find(parent)?.is_none() {
                return Ok(());
            }
            l.add_macvlan(parent, "shim0")?;
            if host.is_ipv6() {
                // Unique by construction (below the pods' range): no duplicate address
                // detection, which would hold the address tentative — and the host without its
                // route to the public network — for the first second or two of the run.
                l.add_address_without_dad("shim0", host, cidr_prefix)?;
            } else {
                l.add_address("shim0", host, cidr_prefix, false)?;
            }
            l.up("shim0")
        })?)
    }

    /// A UDP socket for the coordinator's control plane, inside the control namespace, on
    /// `port` (0: any free one; a resumed run binds its first coordinator's again).
    pub fn control_socket(&self, port: u16) -> Result<std::net::UdpSocket> {
        Ok(net::udp_socket_in(
            &Self::control_ns(&self.topology.name),
            SocketAddr::new(IpAddr::V4(COORDINATOR), port),
        )?)
    }

    /// Removes lab `name`: CNI DEL for every attachment (releasing IPAM addresses), every
    /// namespace of the lab, and its state. Nothing of it is an error to be missing.
    pub fn down(name: &str) -> Result<()> {
        let dir = Self::state_dir(name);
        if let Ok(text) = std::fs::read(dir.join("state.json"))
            && let Ok(state) = serde_json::from_slice::<LabState>(&text)
        {
            // What a DEL would undo goes with the namespaces and the state directory, except
            // for plugins that keep state elsewhere (`Attachment::contained_in_lab`): only
            // theirs run. The CNI DELs were most of a large lab's teardown.
            let elsewhere: Vec<_> = state
                .attachments
                .into_iter()
                .filter(|a| !a.contained_in_lab())
                .collect();
            super::pods::del_all(&elsewhere);
        }
        let prefix = format!("{name}-");
        let mut namespaces: Vec<String> = netns_list()?
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        // Pods first (deepest names), then nodes, then switch and control; the processes in
        // them (agents of a run that was killed) go first, all told at once. Removing a
        // namespace is an unmount: the kernel frees its links afterwards, on its own time.
        namespaces.sort_by_key(|n| std::cmp::Reverse(n.len()));
        net::netns_kill_all(&namespaces)?;
        for ns in namespaces {
            netns_del(&ns)?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|source| Error::RemoveDir { path: dir, source })?;
        }
        Ok(())
    }

    /// Names of the labs that exist (namespaces or state).
    pub fn list() -> Result<Vec<String>> {
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
