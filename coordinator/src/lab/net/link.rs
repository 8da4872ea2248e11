//! Links and addresses through netlink (`NETLINK_ROUTE`, the `rtnetlink` crate): what
//! `ip link` and `ip addr` did, without a process per step. A [`Links`] is a netlink socket
//! opened by a thread inside one namespace, so it sees and changes that namespace only; the
//! free functions each open one for a single step, [`in_namespace`] for several.
//!
//! Requests name links by name where the kernel accepts a name (`IFLA_IFNAME`); a master, a
//! macvlan's parent and an address need the link's index, looked up first.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, MacVlanMode};
use rtnetlink::{Handle, LinkBridge, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::{Error, NETNS_DIR, Result, namespace_error};

/// `ENODEV`: the kernel's answer for a link that is not there.
const ENODEV: i32 = 19;

/// `ENOENT`: the kernel's answer for a neighbour entry that is not there.
const ENOENT: i32 = 2;

/// A netlink session inside one network namespace.
#[derive(Debug)]
pub struct Links {
    /// The namespace's name, for errors.
    ns: String,
    /// Drives the connection's task while a request waits (a current-thread runtime: the
    /// session lives on the one thread that entered the namespace).
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

/// Runs `work` with a netlink session inside namespace `ns`, on a short-lived thread that
/// entered it (the caller's thread stays where it is).
///
/// # Errors
///
/// The namespace cannot be entered, the socket not be opened, or `work`'s error.
pub fn in_namespace<T: Send>(ns: &str, work: impl FnOnce(&Links) -> Result<T> + Send) -> Result<T> {
    super::on_thread_in(ns, || work(&Links::here(ns)?))
}

impl Links {
    /// A session in the calling thread's network namespace, which is called `ns` in errors.
    pub(super) fn here(ns: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(namespace_error(format!(
                "starting netlink for namespace {ns}"
            )))?;
        let (connection, handle, _) = {
            // The socket is made (and registered with the runtime's reactor) here, in this
            // thread's namespace.
            let _entered = runtime.enter();
            rtnetlink::new_connection().map_err(namespace_error(format!(
                "opening a netlink socket in namespace {ns}"
            )))?
        };
        runtime.spawn(connection);
        Ok(Self {
            ns: ns.to_string(),
            runtime,
            handle,
        })
    }

    fn failed(&self, what: String) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
        move |e| Error::Netlink {
            errno: match &e {
                rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
                _ => None,
            },
            said: e.to_string(),
            what: format!("{what} in namespace {}", self.ns),
        }
    }

    /// The index of link `name`, or `None` when the namespace has no such link.
    ///
    /// # Errors
    ///
    /// The kernel refused the lookup for another reason.
    pub fn find(&self, name: &str) -> Result<Option<u32>> {
        let found = self.runtime.block_on(
            self.handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute()
                .try_next(),
        );
        match found {
            Ok(message) => Ok(message.map(|m| m.header.index)),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == ENODEV => Ok(None),
            Err(e) => Err(self.failed(format!("looking up link {name}"))(e)),
        }
    }

    /// The index of link `name`, which must exist.
    ///
    /// # Errors
    ///
    /// [`Error::Netlink`] with `ENODEV` when it does not.
    pub fn index(&self, name: &str) -> Result<u32> {
        self.find(name)?.ok_or_else(|| Error::Netlink {
            what: format!("looking up link {name} in namespace {}", self.ns),
            said: "no such link".into(),
            errno: Some(ENODEV),
        })
    }

    fn set(&self, what: String, message: rtnetlink::packet_route::link::LinkMessage) -> Result<()> {
        self.runtime
            .block_on(self.handle.link().set(message).execute())
            .map_err(self.failed(what))
    }

    fn add(&self, what: String, message: rtnetlink::packet_route::link::LinkMessage) -> Result<()> {
        self.runtime
            .block_on(self.handle.link().add(message).execute())
            .map_err(self.failed(what))
    }

    /// `ip link set NAME down`.
    pub fn down(&self, name: &str) -> Result<()> {
        self.set(
            format!("setting {name} down"),
            LinkUnspec::new_with_name(name).down().build(),
        )
    }

    /// `ip link set NAME up`.
    pub fn up(&self, name: &str) -> Result<()> {
        self.set(
            format!("setting {name} up"),
            LinkUnspec::new_with_name(name).up().build(),
        )
    }

    /// `ip link set NAME mtu MTU`.
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        self.set(
            format!("setting {name}'s MTU to {mtu}"),
            LinkUnspec::new_with_name(name).mtu(mtu).build(),
        )
    }

    /// `ip link set NAME master MASTER` (a bridge port).
    pub fn set_master(&self, name: &str, master: &str) -> Result<()> {
        let index = self.index(master)?;
        self.set(
            format!("making {name} a port of {master}"),
            LinkUnspec::new_with_name(name).controller(index).build(),
        )
    }

    /// `ip link set NAME address MAC`; `mac` as `02:00:00:00:00:01`.
    pub fn set_mac(&self, name: &str, mac: &str) -> Result<()> {
        let bytes = parse_mac(mac).ok_or_else(|| Error::Netlink {
            what: format!("setting {name}'s address in namespace {}", self.ns),
            said: format!("{mac:?} is not a MAC address"),
            errno: None,
        })?;
        self.set(
            format!("setting {name}'s address to {mac}"),
            LinkUnspec::new_with_name(name).address(bytes).build(),
        )
    }

    /// `ip link add NAME type bridge` (down, as `ip` leaves it).
    pub fn add_bridge(&self, name: &str) -> Result<()> {
        self.add(
            format!("adding bridge {name}"),
            LinkBridge::new(name).down().build(),
        )
    }

    /// `ip link add link PARENT name NAME type macvlan mode bridge`.
    pub fn add_macvlan(&self, parent: &str, name: &str) -> Result<()> {
        let index = self.index(parent)?;
        self.add(
            format!("adding macvlan {name} on {parent}"),
            LinkMacVlan::new(name, index, MacVlanMode::Bridge).build(),
        )
    }

    /// A veth pair, `name` here and `peer` in namespace `peer_ns` (here when `None`), both
    /// with `mtu` when given, in one request (the peer goes to its namespace by a file
    /// descriptor of it). `name` is up; `peer` is up only when it stays here: the kernel
    /// cannot bring a peer up in the request that makes the pair (its other end is not there
    /// yet: `ENOTCONN`), so a peer in another namespace is for the caller to bring up there.
    pub fn add_veth(
        &self,
        name: &str,
        peer: &str,
        peer_ns: Option<&str>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let peer_file = match peer_ns {
            Some(ns) => {
                let path = format!("{NETNS_DIR}/{ns}");
                Some(File::open(&path).map_err(namespace_error(format!("opening {path}")))?)
            }
            None => None,
        };
        let mut peer_message = LinkUnspec::new_with_name(peer);
        if let Some(file) = &peer_file {
            peer_message = peer_message.setns_by_fd(file.as_raw_fd());
        }
        if let Some(mtu) = mtu {
            peer_message = peer_message.mtu(mtu);
        }
        let mut message = LinkMessageBuilder::<LinkVeth>::new(name, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message.build())))
            .up();
        if let Some(mtu) = mtu {
            message = message.mtu(mtu);
        }
        let there = peer_ns.map_or(String::new(), |ns| format!(" (peer {peer} in {ns})"));
        // `peer_file` lives until the request is answered: the kernel reads the descriptor.
        let result = self.add(format!("adding veth {name}{there}"), message.build());
        drop(peer_file);
        result?;
        if peer_ns.is_none() {
            self.up(peer)?;
        }
        Ok(())
    }

    /// `ip addr add ADDR/PREFIX dev NAME`; `replace` as `ip addr replace` (no error when the
    /// link has it already).
    pub fn add_address(&self, name: &str, addr: IpAddr, prefix: u8, replace: bool) -> Result<()> {
        let index = self.index(name)?;
        let mut request = self.handle.address().add(index, addr, prefix);
        if replace {
            request = request.replace();
        }
        self.runtime
            .block_on(request.execute())
            .map_err(self.failed(format!("adding address {addr}/{prefix} to {name}")))
    }

    /// `ip addr add ADDR/PREFIX dev NAME nodad`: no duplicate address detection (IPv6), so
    /// the address is usable at once, not tentative for a second or two — for addresses
    /// unique by construction.
    pub fn add_address_without_dad(&self, name: &str, addr: IpAddr, prefix: u8) -> Result<()> {
        use rtnetlink::packet_route::address::{
            AddressAttribute, AddressFlags, AddressHeaderFlags,
        };
        let index = self.index(name)?;
        let mut request = self.handle.address().add(index, addr, prefix);
        let message = request.message_mut();
        message.header.flags |= AddressHeaderFlags::Nodad;
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.runtime
            .block_on(request.execute())
            .map_err(self.failed(format!("adding address {addr}/{prefix} to {name}")))
    }

    /// `ip addr del ADDR/PREFIX dev NAME`; `false` when the link (or the address on it) was
    /// not there.
    ///
    /// # Errors
    ///
    /// The kernel refused the listing or the removal.
    pub fn delete_address(&self, name: &str, addr: IpAddr, prefix: u8) -> Result<bool> {
        let Some(index) = self.find(name)? else {
            return Ok(false);
        };
        let what = format!("removing address {addr}/{prefix} from {name}");
        let found: Vec<_> = self
            .runtime
            .block_on(
                self.handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .set_address_filter(addr)
                    .set_prefix_length_filter(prefix)
                    .execute()
                    .try_collect(),
            )
            .map_err(self.failed(what.clone()))?;
        let mut deleted = false;
        for message in found {
            self.runtime
                .block_on(self.handle.address().del(message).execute())
                .map_err(self.failed(what.clone()))?;
            deleted = true;
        }
        Ok(deleted)
    }

    /// `ip link del NAME`; `false` when there was no such link.
    pub fn delete(&self, name: &str) -> Result<bool> {
        let deleted = self.runtime.block_on(
            self.handle
                .link()
                .del_with_message(LinkUnspec::new_with_name(name).build())
                .execute(),
        );
        match deleted {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == ENODEV => Ok(false),
            Err(e) => Err(self.failed(format!("deleting link {name}"))(e)),
        }
    }
}

impl Links {
    /// `ip neigh replace ADDR lladdr MAC dev NAME nud permanent`: a neighbour entry the kernel
    /// never resolves, ages or garbage-collects. The kernel keeps one neighbour table per
    /// address family for all namespaces together, and its dynamic entries are capped
    /// machine-wide by `net.ipv4.neigh.default.gc_thresh3` (`net/core/neighbour.c`,
    /// `neigh_alloc`); permanent entries are exempt from that cap. The lab gives its control
    /// network permanent entries so that the cap is left to the networks under test.
    ///
    /// # Errors
    ///
    /// `mac` is not six hexadecimal bytes, the link is missing, or the kernel refused.
    pub fn add_permanent_neighbour(&self, name: &str, addr: IpAddr, mac: &str) -> Result<()> {
        let bytes = parse_mac(mac).ok_or_else(|| Error::Netlink {
            what: format!("adding neighbour {addr} on {name} in namespace {}", self.ns),
            said: format!("{mac} is not a MAC address"),
            errno: None,
        })?;
        let index = self.index(name)?;
        let request = self
            .handle
            .neighbours()
            .add(index, addr)
            .link_layer_address(&bytes)
            .replace();
        self.runtime
            .block_on(request.execute())
            .map_err(self.failed(format!("adding neighbour {addr} ({mac}) on {name}")))
    }

    /// `ip neigh del ADDR dev NAME`; `false` when there was no such entry (or link).
    ///
    /// # Errors
    ///
    /// The kernel refused for another reason.
    pub fn delete_neighbour(&self, name: &str, addr: IpAddr) -> Result<bool> {
        use rtnetlink::packet_route::AddressFamily;
        use rtnetlink::packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourMessage,
        };
        let Some(index) = self.find(name)? else {
            return Ok(false);
        };
        let mut message = NeighbourMessage::default();
        message.header.ifindex = index;
        let (family, destination) = match addr {
            IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
        };
        message.header.family = family;
        message
            .attributes
            .push(NeighbourAttribute::Destination(destination));
        match self
            .runtime
            .block_on(self.handle.neighbours().del(message).execute())
        {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == ENOENT => Ok(false),
            Err(e) => Err(self.failed(format!("deleting neighbour {addr} on {name}"))(
                e,
            )),
        }
    }
}

/// `02:00:00:00:00:01` as bytes.
fn parse_mac(mac: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
        .collect::<Option<_>>()?;
    (bytes.len() == 6).then_some(bytes)
}

/// A veth pair with one end in each namespace, both up, both with `mtu` when given.
pub fn veth(ns_a: &str, name_a: &str, ns_b: &str, name_b: &str, mtu: Option<u32>) -> Result<()> {
    let elsewhere = (ns_b != ns_a).then_some(ns_b);
    in_namespace(ns_a, |l| l.add_veth(name_a, name_b, elsewhere, mtu))?;
    match elsewhere {
        Some(ns_b) => link_up(ns_b, name_b),
        None => Ok(()),
    }
}

/// `ip -n NS link set NAME up`.
pub fn link_up(ns: &str, name: &str) -> Result<()> {
    in_namespace(ns, |l| l.up(name))
}

/// `ip -n NS link set NAME mtu MTU`.
pub fn set_mtu(ns: &str, name: &str, mtu: u32) -> Result<()> {
    in_namespace(ns, |l| l.set_mtu(name, mtu))
}

/// `ip -n NS link set NAME master MASTER`.
pub fn set_master(ns: &str, name: &str, master: &str) -> Result<()> {
    in_namespace(ns, |l| l.set_master(name, master))
}

/// `ip -n NS link set NAME address MAC`.
pub fn set_mac(ns: &str, name: &str, mac: &str) -> Result<()> {
    in_namespace(ns, |l| l.set_mac(name, mac))
}

/// `ip -n NS link add NAME type bridge`.
pub fn add_bridge(ns: &str, name: &str) -> Result<()> {
    in_namespace(ns, |l| l.add_bridge(name))
}

/// `ip -n NS link add link PARENT name NAME type macvlan mode bridge`.
pub fn add_macvlan(ns: &str, parent: &str, name: &str) -> Result<()> {
    in_namespace(ns, |l| l.add_macvlan(parent, name))
}

/// `ip -n NS addr add ADDR/PREFIX dev NAME`.
pub fn add_address(ns: &str, name: &str, addr: IpAddr, prefix: u8) -> Result<()> {
    in_namespace(ns, |l| l.add_address(name, addr, prefix, false))
}

/// `ip -n NS addr replace ADDR/PREFIX dev NAME`.
pub fn replace_address(ns: &str, name: &str, addr: IpAddr, prefix: u8) -> Result<()> {
    in_namespace(ns, |l| l.add_address(name, addr, prefix, true))
}

/// `ip -n NS addr del ADDR/PREFIX dev NAME`; `false` when it was not there.
pub fn delete_address(ns: &str, name: &str, addr: IpAddr, prefix: u8) -> Result<bool> {
    in_namespace(ns, |l| l.delete_address(name, addr, prefix))
}

/// `ip -n NS link del NAME`; `false` when there was no such link.
pub fn link_del(ns: &str, name: &str) -> Result<bool> {
    in_namespace(ns, |l| l.delete(name))
}

/// Whether namespace `ns` has link `name`.
pub fn has_link(ns: &str, name: &str) -> Result<bool> {
    in_namespace(ns, |l| Ok(l.find(name)?.is_some()))
}

#[cfg(test)]
mod tests {
    use super::parse_mac;

    #[test]
    fn mac_addresses_parse_as_ip_writes_them() {
        assert_eq!(
            parse_mac("02:4d:4e:00:0a:ff"),
            Some(vec![0x02, 0x4d, 0x4e, 0x00, 0x0a, 0xff])
        );
        assert_eq!(parse_mac("02:4d:4e:00:0a"), None);
        assert_eq!(parse_mac("02:4d:4e:00:0a:fff"), None);
        assert_eq!(parse_mac("02:4d:4e:00:0a:g0"), None);
    }
}
