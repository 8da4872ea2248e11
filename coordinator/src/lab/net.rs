//! The lab's contact with the kernel, and the only module of the lab that has any: network
//! namespaces ([`netns`]: made, listed, emptied of processes and removed without a process),
//! links, addresses and MTUs through netlink ([`link`]: one netlink socket inside the
//! namespace, no `ip` process), sysctls and sockets inside a namespace, and `ip`/`nft` for the
//! few steps netlink does not cover here (routes of a kubelet's sandbox, nftables). Every
//! failure says what was being done, where, and what the kernel or the tool said.
//!
//! A namespace is entered by a short-lived thread (`setns` changes only the calling thread):
//! what that thread opens — a netlink socket, a UDP socket, `/proc/sys/net` — stays in the
//! namespace, the caller's thread does not move. So every function here may run on many
//! threads at once (the lab places pods of different nodes concurrently).

mod link;
mod netns;

pub use link::{
    Links, add_address, add_bridge, add_macvlan, delete_address, has_link, in_namespace, link_del,
    link_up, replace_address, set_mac, set_master, set_mtu, veth,
};
pub use netns::{netns_add, netns_add_with, netns_del, netns_kill, netns_kill_all, netns_list};

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};

/// Where the named network namespaces live (as `ip netns` keeps them).
pub const NETNS_DIR: &str = "/run/netns";

/// Why the lab's contact with the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool could not be run at all.
    #[error("running {program} (is it installed?)")]
    Spawn {
        /// The tool.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("`{command}` failed: {said}")]
    Failed {
        /// The command line.
        command: String,
        /// What the tool said on stderr.
        said: String,
    },
    /// A namespace could not be entered, or a socket not be made in it.
    #[error("{what}")]
    Namespace {
        /// What was being done (`entering namespace lab1-ctl`).
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The thread that entered a namespace panicked.
    #[error("the namespace thread panicked")]
    Panicked,
    /// The kernel refused a netlink request (a link, an address).
    #[error("{what}: {said}")]
    Netlink {
        /// What was being done (`adding address 198.19.0.101/16 to ctl0 in namespace mn-n1-p0`).
        what: String,
        /// What the kernel said.
        said: String,
        /// The errno the kernel answered with, when it answered with one (`ENODEV` for a
        /// missing link).
        errno: Option<i32>,
    },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn namespace_error(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Namespace { what, source }
}

/// Whether `name` can be a Linux interface name the lab creates (1–15 characters of letters,
/// digits, `-`, `_`, `.`).
pub fn usable_link_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != ".."
}

/// Runs `ip ARGS`; the error names the command and the tool's message.
pub fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

/// Runs `ip -n NS ARGS`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Runs `program ARGS`, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Failed {
            command: format!("{program} {}", args.join(" ")),
            said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Runs `work` on a short-lived thread inside namespace `ns` and returns what it returns;
/// the caller's thread stays where it is. What `work` opens (sockets, `/proc/sys/net`) belongs
/// to `ns`.
///
/// # Errors
///
/// The namespace cannot be opened or entered (it does not exist), `work`'s own error, or
/// [`Error::Panicked`].
pub fn on_thread_in<T: Send>(ns: &str, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let path = format!("{NETNS_DIR}/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<T> {
                let file = File::open(&path).map_err(namespace_error(format!("opening {path}")))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
                    .map_err(namespace_error(format!("entering namespace {ns}")))?;
                work()
            })
            .join()
            .map_err(|_| Error::Panicked)?
    })
}

/// Listens on TCP `addr` inside namespace `ns` (as [`udp_socket_in`]: the socket stays in
/// the namespace, the caller's thread does not).
pub fn tcp_listener_in(ns: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    on_thread_in(ns, || {
        std::net::TcpListener::bind(addr).map_err(namespace_error(format!(
            "listening on {addr} in namespace {ns}"
        )))
    })
}

/// A TCP socket (IPv4, not yet bound or connected) inside namespace `ns`, to connect from
/// there (as [`udp_socket_in`]: the socket stays in the namespace, the caller's thread does
/// not). Making it needs no runtime; connecting it does.
pub fn tcp_socket_in(ns: &str) -> Result<tokio::net::TcpSocket> {
    on_thread_in(ns, || {
        tokio::net::TcpSocket::new_v4().map_err(namespace_error(format!(
            "making a TCP socket in namespace {ns}"
        )))
    })
}

/// Writes `value` to the sysctl `key` (`net/ipv4/conf/ctl0/arp_ignore`, a path under
/// `/proc/sys`) of namespace `ns`. A short-lived thread enters the namespace: `/proc/sys/net`
/// shows the network namespace of the thread that opens it. No process is spawned, so this
/// costs little per pod.
pub fn sysctl_in(ns: &str, key: &str, value: &str) -> Result<()> {
    on_thread_in(ns, || write_sysctl(ns, key, value))
}

/// Writes sysctl `key` as this thread sees it (its network namespace, named `ns` for errors).
fn write_sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value).map_err(namespace_error(format!(
        "setting {key} to {value} in namespace {ns}"
    )))
}

/// Makes `ifname` in namespace `ns` answer ARP only for the addresses it holds itself
/// (`arp_ignore` 1; Linux's default 0 answers for any address of the namespace on any
/// interface). The lab's control interfaces get it: otherwise a pod answers ARP for its
/// public address on the control network, and a probe with a route into the control network
/// reaches it there, not over the network under test (issue #12).
pub fn control_interface_answers_only_for_itself(ns: &str, ifname: &str) -> Result<()> {
    sysctl_in(ns, &format!("net/ipv4/conf/{ifname}/arp_ignore"), "1")
}

/// Binds a UDP socket to `addr` inside namespace `ns`. A short-lived thread enters the
/// namespace (setns affects only the calling thread); the socket stays in it.
pub fn udp_socket_in(ns: &str, addr: SocketAddr) -> Result<UdpSocket> {
    on_thread_in(ns, || {
        UdpSocket::bind(addr).map_err(namespace_error(format!("binding {addr} in namespace {ns}")))
    })
}
