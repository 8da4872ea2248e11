//! The lab's contact with the kernel: network namespaces, links and addresses through the `ip`
//! tool, and a UDP socket bound inside a namespace (for the coordinator's control plane).
//! Every command's failure carries the command line and what the tool said.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};

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
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn in_namespace(what: String) -> impl FnOnce(std::io::Error) -> Error {
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

/// Named network namespaces (`ip netns list`).
pub fn netns_list() -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|source| Error::Spawn {
            program: "ip".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// Creates a namespace with its loopback up.
pub fn netns_add(name: &str) -> Result<()> {
    ip(&["netns", "add", name])?;
    ip_in(name, &["link", "set", "lo", "up"])
}

/// Stops every process in namespace `ns` (`ip netns pids`): SIGTERM, up to a second to go,
/// then SIGKILL. Agents of a crashed run must not outlive their lab.
pub fn netns_kill(ns: &str) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pids = || -> Vec<Pid> {
        Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .map(Pid::from_raw)
                    .collect()
            })
            .unwrap_or_default()
    };
    let found = pids();
    if found.is_empty() {
        return Ok(());
    }
    for pid in &found {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline && !pids().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in pids() {
        let _ = kill(pid, Signal::SIGKILL);
    }
    Ok(())
}

/// Deletes a namespace (its interfaces go with it); a missing one is not an error.
pub fn netns_del(name: &str) -> Result<()> {
    if netns_list()?.iter().any(|n| n == name) {
        ip(&["netns", "del", name])?;
    }
    Ok(())
}

/// A veth pair with one end in each namespace, both up.
pub fn veth(ns_a: &str, name_a: &str, ns_b: &str, name_b: &str, mtu: Option<u32>) -> Result<()> {
    ip(&[
        "link", "add", "name", name_a, "netns", ns_a, "type", "veth", "peer", "name", name_b,
        "netns", ns_b,
    ])?;
    for (ns, name) in [(ns_a, name_a), (ns_b, name_b)] {
        if let Some(mtu) = mtu {
            ip_in(ns, &["link", "set", name, "mtu", &mtu.to_string()])?;
        }
        ip_in(ns, &["link", "set", name, "up"])?;
    }
    Ok(())
}

/// Listens on TCP `addr` inside namespace `ns` (as [`udp_socket_in`]: the socket stays in
/// the namespace, the caller's thread does not).
pub fn tcp_listener_in(ns: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<std::net::TcpListener> {
                let file = File::open(&path).map_err(in_namespace(format!("opening {path}")))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
                    .map_err(in_namespace(format!("entering namespace {ns}")))?;
                std::net::TcpListener::bind(addr).map_err(in_namespace(format!(
                    "listening on {addr} in namespace {ns}"
                )))
            })
            .join()
            .map_err(|_| Error::Panicked)?
    })
}

/// Writes `value` to the sysctl `key` (`net/ipv4/conf/ctl0/arp_ignore`, a path under
/// `/proc/sys`) of namespace `ns`. A short-lived thread enters the namespace: `/proc/sys/net`
/// shows the network namespace of the thread that opens it. No process is spawned, so this
/// costs little per pod.
pub fn sysctl_in(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                let file = File::open(&path).map_err(in_namespace(format!("opening {path}")))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
                    .map_err(in_namespace(format!("entering namespace {ns}")))?;
                std::fs::write(format!("/proc/sys/{key}"), value).map_err(in_namespace(format!(
                    "setting {key} to {value} in namespace {ns}"
                )))
            })
            .join()
            .map_err(|_| Error::Panicked)?
    })
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
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<UdpSocket> {
                let file = File::open(&path).map_err(in_namespace(format!("opening {path}")))?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
                    .map_err(in_namespace(format!("entering namespace {ns}")))?;
                UdpSocket::bind(addr)
                    .map_err(in_namespace(format!("binding {addr} in namespace {ns}")))
            })
            .join()
            .map_err(|_| Error::Panicked)?
    })
}
