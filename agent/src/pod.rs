//! The agent in a Kubernetes pod: its assignment is made from what is mounted into the pod —
//! the run settings (ConfigMap `run.json`), the run's TLS material (Secret), and Multus'
//! `network-status` annotation (downward API file) — plus its arguments (role, name, node,
//! networks). The addresses network-status names are checked against the kernel's interfaces
//! before any probe: a pod whose annotation and interfaces disagree says so and exits.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multinet_proto::assignment::{
    AgentAssignment, NetworkAddress, PodAssignmentError, PodRunSettings, TlsFiles,
};
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::multus::status::{StatusError, parse_network_status};
use multinet_proto::network::CephNetwork;

/// Why a pod's assignment could not be made from what is mounted into it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mounted file cannot be read (`run.json`, `network-status`).
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `run.json` is not the run settings the coordinator writes.
    #[error("{} is not valid run settings", path.display())]
    RunSettings {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The `network-status` file stayed empty: Multus never annotated the pod.
    #[error(
        "{} stayed empty for {}s: Multus wrote no network-status annotation on this pod",
        path.display(),
        waited.as_secs()
    )]
    StatusEmpty {
        /// The downward-API file.
        path: PathBuf,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The `network-status` file is not Multus' annotation.
    #[error("{}", path.display())]
    Status {
        /// The downward-API file.
        path: PathBuf,
        /// Why.
        #[source]
        source: StatusError,
    },
    /// The settings and the annotation do not make an assignment (no address on a network).
    #[error(transparent)]
    Assignment(#[from] PodAssignmentError),
    /// The annotation gives a network an address, but the pod has no interface of its name.
    #[error(
        "network-status gives the {network} network {address}, but this pod has no interface named {network:?}"
    )]
    NoInterface {
        /// The network, as its interface is named (`public`, `cluster`).
        network: &'static str,
        /// The address the annotation gives.
        address: IpAddr,
    },
    /// The interface of a network does not hold the address the annotation gives.
    #[error(
        "network-status gives the {network} network {address}, but interface {network:?} has {}",
        list(.found)
    )]
    WrongAddress {
        /// The network, as its interface is named.
        network: &'static str,
        /// The address the annotation gives.
        address: IpAddr,
        /// The addresses the interface has.
        found: Vec<IpAddr>,
    },
    /// The kernel's interfaces cannot be listed.
    #[error("listing the pod's interfaces")]
    Interfaces(#[source] nix::Error),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `a, b, c`.
fn list(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a pod's agent is told on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodArgs {
    /// Its role.
    pub role: Role,
    /// Its name in the report (`server`, `client-<node>-osd-0`, `host-<node>`).
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// The networks it is attached to (interfaces named after them).
    pub networks: Vec<CephNetwork>,
    /// Where `run.json` is.
    pub run_dir: PathBuf,
    /// Where `ca.crt`, `agent.crt` and `agent.key` are.
    pub tls_dir: PathBuf,
    /// Where the `network-status` file is.
    pub pod_dir: PathBuf,
}

/// How the agent was asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentArgs {
    /// `--assignment FILE` (local and lab backends).
    Assignment(PathBuf),
    /// `--kube --role R --name N --node NODE [--networks public,cluster]` (Kubernetes).
    Pod(PodArgs),
    /// `--help`.
    Help,
}

/// The usage text.
pub const USAGE: &str = "usage: multinet-agent --assignment FILE.json\n       multinet-agent --kube --role server|client|host-check --name NAME --node NODE [--networks public,cluster] [--run-dir DIR] [--tls-dir DIR] [--pod-dir DIR]";

/// Parses the agent's arguments (after the program name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<AgentArgs, String> {
    let mut args = args.into_iter();
    let mut assignment = None;
    let mut kube = false;
    let (mut role, mut name, mut node, mut networks) = (None, None, None, Vec::new());
    let mut run_dir = PathBuf::from("/etc/multinet/run");
    let mut tls_dir = PathBuf::from("/etc/multinet/tls");
    let mut pod_dir = PathBuf::from("/etc/multinet/pod");
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(AgentArgs::Help),
            "--assignment" => assignment = Some(PathBuf::from(value()?)),
            "--kube" => kube = true,
            "--role" => {
                role = Some(match value()?.as_str() {
                    "server" => Role::Server,
                    "client" => Role::Client,
                    "host-check" => Role::HostCheck,
                    other => {
                        return Err(format!(
                            "--role {other:?}: expected server, client or host-check"
                        ));
                    }
                })
            }
            "--name" => name = Some(value()?),
            "--node" => node = Some(value()?),
            "--networks" => {
                for n in value()?.split(',').filter(|n| !n.is_empty()) {
                    networks.push(match n {
                        "public" => CephNetwork::Public,
                        "cluster" => CephNetwork::Cluster,
                        other => {
                            return Err(format!(
                                "--networks: {other:?} is not a network (public, cluster)"
                            ));
                        }
                    });
                }
            }
            "--run-dir" => run_dir = PathBuf::from(value()?),
            "--tls-dir" => tls_dir = PathBuf::from(value()?),
            "--pod-dir" => pod_dir = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    match (assignment, kube) {
        (Some(path), false) => Ok(AgentArgs::Assignment(path)),
        (None, true) => Ok(AgentArgs::Pod(PodArgs {
            role: role.ok_or("--kube needs --role")?,
            name: name.ok_or("--kube needs --name")?,
            node: node.ok_or("--kube needs --node")?,
            networks,
            run_dir,
            tls_dir,
            pod_dir,
        })),
        _ => Err(USAGE.to_string()),
    }
}

/// How long to wait for Multus' annotation to reach the downward-API file.
const STATUS_WAIT: Duration = Duration::from_secs(30);

/// Makes the pod's assignment from its mounted files; checks the addresses against
/// `interfaces` (name, address) — [`kernel_interfaces`] in a real pod.
pub fn pod_assignment(
    args: &PodArgs,
    interfaces: &dyn Fn() -> Result<Vec<(String, IpAddr)>>,
) -> Result<AgentAssignment> {
    let run_file = args.run_dir.join("run.json");
    let run_json = std::fs::read(&run_file).map_err(|source| Error::Read {
        path: run_file.clone(),
        source,
    })?;
    let status = if args.networks.is_empty() {
        String::new()
    } else {
        wait_for_status(&args.pod_dir.join("network-status"), STATUS_WAIT)?
    };
    let assignment = read_mounted(args, &run_json, &status)?;
    if !assignment.addresses.is_empty() {
        check_interfaces(&assignment.addresses, &interfaces()?)?;
    }
    Ok(assignment)
}

/// The assignment the pod's mounted files make, from their contents: `run_json` is the bytes of
/// `run.json` (the ConfigMap's [`PodRunSettings`]), `status` the text of the `network-status`
/// downward-API file (Multus' annotation; not looked at when the pod has no networks). Reads no
/// file and no kernel state, so any input can be tried on it; [`pod_assignment`] reads the files
/// and checks the kernel's interfaces around it.
///
/// # Errors
///
/// [`Error::RunSettings`] and [`Error::Status`] name the file (under `args.run_dir` /
/// `args.pod_dir`) whose text is not what it should be; [`Error::Assignment`] when settings and
/// annotation make no assignment (a network without an address, a bad coordinator address).
pub fn read_mounted(args: &PodArgs, run_json: &[u8], status: &str) -> Result<AgentAssignment> {
    let settings: PodRunSettings =
        serde_json::from_slice(run_json).map_err(|source| Error::RunSettings {
            path: args.run_dir.join("run.json"),
            source,
        })?;
    let status = if args.networks.is_empty() {
        Vec::new()
    } else {
        parse_network_status(status).map_err(|source| Error::Status {
            path: args.pod_dir.join("network-status"),
            source,
        })?
    };
    let identity = AgentIdentity {
        role: args.role,
        node: args.node.clone(),
        pod: args.name.clone(),
        networks: args.networks.clone(),
    };
    let tls = TlsFiles {
        ca: args.tls_dir.join("ca.crt"),
        cert: args.tls_dir.join("agent.crt"),
        key: args.tls_dir.join("agent.key"),
    };
    Ok(settings.assignment(identity, tls, &status)?)
}

/// The downward-API file is written when the pod starts; Multus has set the annotation by
/// then, but an empty file is waited for, bounded.
fn wait_for_status(file: &Path, wait: Duration) -> Result<String> {
    let since = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Read {
            path: file.to_path_buf(),
            source,
        })?;
        if !text.trim().is_empty() {
            return Ok(text);
        }
        if since.elapsed() >= wait {
            return Err(Error::StatusEmpty {
                path: file.to_path_buf(),
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every address must be on the interface named after its network: `interfaces` holds the pod's
/// (interface name, address) pairs.
///
/// # Errors
///
/// [`Error::NoInterface`] when no interface has the network's name, [`Error::WrongAddress`] when
/// it does not hold the address.
pub fn check_interfaces(
    addresses: &[NetworkAddress],
    interfaces: &[(String, IpAddr)],
) -> Result<()> {
    for a in addresses {
        let name = a.network.key();
        let on: Vec<IpAddr> = interfaces
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, ip)| *ip)
            .collect();
        if on.is_empty() {
            return Err(Error::NoInterface {
                network: name,
                address: a.addr,
            });
        }
        if !on.contains(&a.addr) {
            return Err(Error::WrongAddress {
                network: name,
                address: a.addr,
                found: on,
            });
        }
    }
    Ok(())
}

/// The kernel's interface addresses in this network namespace.
pub fn kernel_interfaces() -> Result<Vec<(String, IpAddr)>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(Error::Interfaces)? {
        let Some(addr) = ifa.address else { continue };
        if let Some(v4) = addr.as_sockaddr_in() {
            out.push((ifa.interface_name.clone(), IpAddr::V4(v4.ip())));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            out.push((ifa.interface_name.clone(), IpAddr::V6(v6.ip())));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<AgentArgs, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_parse() {
        assert_eq!(
            args(&["--assignment", "a.json"]),
            Ok(AgentArgs::Assignment("a.json".into()))
        );
        let Ok(AgentArgs::Pod(p)) = args(&[
            "--kube",
            "--role",
            "client",
            "--name",
            "client-w1-osd-0",
            "--node",
            "w1",
            "--networks",
            "public,cluster",
        ]) else {
            panic!("pod arguments")
        };
        assert_eq!(p.role, Role::Client);
        assert_eq!(p.networks, vec![CephNetwork::Public, CephNetwork::Cluster]);
        assert_eq!(p.run_dir, PathBuf::from("/etc/multinet/run"));
        assert!(args(&["--kube", "--role", "boss"]).is_err_and(|e| e.contains("\"boss\"")));
        assert!(args(&["--kube", "--role", "server"]).is_err_and(|e| e.contains("--name")));
        assert!(args(&["--networks", "storage"]).is_err_and(|e| e.contains("\"storage\"")));
        assert!(args(&["--bogus"]).is_err_and(|e| e.contains("\"--bogus\"")));
        assert_eq!(args(&["-h"]), Ok(AgentArgs::Help));
    }

    /// A pod's mounted files in a temporary directory, removed on drop.
    struct PodFiles(PathBuf);
    impl Drop for PodFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn pod_files(tag: &str, status: &str) -> (PodFiles, PodArgs) {
        let dir = std::env::temp_dir().join(format!("mn-pod-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(
            dir.join("run.json"),
            r#"{"run_id":"0123456789","coordinator":"10.244.0.9:7443","probe":{"interval_ms":1000,"timeout_ms":4000,"small_bytes":64,"large_bytes":9000},"grace_ms":30000,"batch_max":256,"unacked_max":1024}"#,
        )
        .expect("run.json");
        std::fs::write(dir.join("network-status"), status).expect("network-status");
        let args = PodArgs {
            role: Role::Client,
            name: "client-w1-osd-0".into(),
            node: "w1".into(),
            networks: vec![CephNetwork::Public, CephNetwork::Cluster],
            run_dir: dir.clone(),
            tls_dir: dir.clone(),
            pod_dir: dir.clone(),
        };
        (PodFiles(dir), args)
    }

    const STATUS: &str = r#"[{"name":"k8s-pod-network","ips":["10.244.1.7"],"default":true},
        {"name":"rook-ceph/public-net","interface":"public","ips":["192.168.20.21"]},
        {"name":"rook-ceph/cluster-net","interface":"cluster","ips":["192.168.30.21"]}]"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_assignment_comes_from_the_mounted_files_and_matches_the_kernel() {
        let (_files, args) = pod_files("ok", STATUS);
        let kernel = || {
            Ok(vec![
                ("eth0".to_string(), ip("10.244.1.7")),
                ("public".to_string(), ip("192.168.20.21")),
                ("cluster".to_string(), ip("192.168.30.21")),
            ])
        };
        let a = pod_assignment(&args, &kernel).expect("assignment");
        assert_eq!(a.run_id, "0123456789");
        assert_eq!(a.identity.pod, "client-w1-osd-0");
        assert_eq!(
            a.addresses.iter().map(|a| a.addr).collect::<Vec<_>>(),
            vec![ip("192.168.20.21"), ip("192.168.30.21")]
        );
        assert_eq!(a.tls.key, args.tls_dir.join("agent.key"));
    }

    #[test]
    fn annotation_and_kernel_disagreeing_is_named() {
        let (_files, args) = pod_files("mismatch", STATUS);
        let kernel = || {
            Ok(vec![
                ("public".to_string(), ip("192.168.20.99")),
                ("net2".to_string(), ip("192.168.30.21")),
            ])
        };
        let e = pod_assignment(&args, &kernel).expect_err("mismatch");
        assert_eq!(
            e.to_string(),
            "network-status gives the public network 192.168.20.21, but interface \"public\" has 192.168.20.99"
        );
        let mut public_ok = args.clone();
        public_ok.networks = vec![CephNetwork::Cluster];
        let e = pod_assignment(&public_ok, &kernel).expect_err("no interface");
        assert!(
            e.to_string().contains("has no interface named \"cluster\""),
            "{e}"
        );
    }

    /// The contents alone make the assignment; text that is not what the file should hold is
    /// named by that file's path.
    #[test]
    fn mounted_texts_are_read_without_files() {
        let (files, args) = pod_files("texts", "");
        let run_json = std::fs::read(files.0.join("run.json")).expect("run.json");
        let a = read_mounted(&args, &run_json, STATUS).expect("assignment");
        assert_eq!(a.addresses.len(), 2);
        let e = read_mounted(&args, b"{", STATUS).expect_err("bad run.json");
        assert_eq!(
            e.to_string(),
            format!(
                "{} is not valid run settings",
                files.0.join("run.json").display()
            )
        );
        let e = read_mounted(&args, &run_json, "[{").expect_err("bad status");
        assert_eq!(
            e.to_string(),
            files.0.join("network-status").display().to_string()
        );
        // Without networks the annotation is not looked at.
        let mut no_networks = args.clone();
        no_networks.networks.clear();
        assert!(read_mounted(&no_networks, &run_json, "[{").is_ok());
    }

    #[test]
    fn an_empty_status_file_is_waited_for_then_named() {
        let (files, _) = pod_files("empty", "");
        let e = wait_for_status(&files.0.join("network-status"), Duration::from_millis(600))
            .expect_err("empty");
        assert!(
            e.to_string().contains("Multus wrote no network-status"),
            "{e}"
        );
    }

    #[test]
    fn the_kernel_has_loopback() {
        let all = kernel_interfaces().expect("getifaddrs");
        assert!(all.iter().any(|(_, ip)| ip.is_loopback()), "{all:?}");
    }
}
