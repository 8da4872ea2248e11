//! What runs in a client's namespace or pod (`multinet bench client`): one test
//! ([`client`]), or a path's tests one after another ([`path_client`]), its source address
//! read from Multus' network-status on kube.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_proto::network::CephNetwork;

use super::report::TestResult;

/// One test as `multinet bench client` is asked for it (from the bench, in a pod's
/// namespace, or on the local backend in this machine's).
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// What the test does.
    pub kind: LoadKind,
    /// The server's listener.
    pub target: std::net::SocketAddr,
    /// Where connections leave from.
    pub source: Option<std::net::IpAddr>,
    /// The interface they are bound to.
    pub device: Option<String>,
    /// Connections at once.
    pub streams: u32,
    /// How long.
    pub duration: Duration,
    /// Answer size of the request tests.
    pub answer_bytes: u64,
    /// The run's TLS files (TLS tests trust its CA).
    pub tls: Option<multinet_proto::assignment::TlsFiles>,
}

/// The client TLS configuration trusting the run CA of `files` (the TLS tests'), said as an
/// error when it cannot be read.
fn probe_tls(
    files: Option<&multinet_proto::assignment::TlsFiles>,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
    files
        .map(|files| {
            multinet_agent::tls::RunTls::load(files)
                .and_then(|t| t.probe_client_config())
                .map_err(|e| multinet_agent::chain(&e))
        })
        .transpose()
}

/// Runs one test in this process (on one thread, as an agent runs) and returns what it
/// measured.
///
/// # Errors
///
/// The plan is out of bounds or the CA cannot be read (said).
pub fn client(request: &ClientRequest) -> Result<LoadOutcome, String> {
    multinet_agent::install_crypto_provider();
    let tls = probe_tls(request.tls.as_ref())?;
    let plan = multinet_agent::load::LoadPlan {
        kind: request.kind,
        target: request.target,
        source: request.source,
        device: request.device.clone(),
        streams: request.streams,
        duration: request.duration,
        answer_bytes: request.answer_bytes,
        tls,
    };
    let runtime = multinet_agent::entry::single_threaded().map_err(|e| e.to_string())?;
    runtime
        .block_on(multinet_agent::load::run(&plan))
        .map_err(|e| e.to_string())
}

/// Where a path client's connections leave from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSource {
    /// This address (`None`: the kernel's choice), bound to this interface.
    Address {
        /// The source address.
        source: Option<IpAddr>,
        /// The interface.
        device: Option<String>,
    },
    /// The pod's address on `network`, as Multus' network-status annotation (mounted through
    /// the downward API at `status_file`) gives it for the interface named after the network
    /// — as a kube agent learns its addresses.
    Network {
        /// The network under test.
        network: CephNetwork,
        /// The downward-API file.
        status_file: PathBuf,
    },
}

/// A path's tests as one client process runs them, one after another (a kube bench's client
/// pod, `multinet bench client --tests …`).
#[derive(Debug, Clone)]
pub struct PathClientRequest {
    /// The tests, in order.
    pub tests: Vec<(LoadKind, u32)>,
    /// The server's HTTP listener.
    pub target: std::net::SocketAddr,
    /// Its HTTPS listener (the TLS test).
    pub tls_target: std::net::SocketAddr,
    /// Where connections leave from.
    pub source: ClientSource,
    /// Each test's duration.
    pub duration: Duration,
    /// Answer size of the request tests.
    pub answer_bytes: u64,
    /// The run's TLS files (the TLS test trusts its CA).
    pub tls: Option<multinet_proto::assignment::TlsFiles>,
    /// Read the server's CPU seconds (`GET /cpu`) before and after each test.
    pub server_cpu: bool,
}

/// The first line a path client prints: the address its connections leave from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientAddressLine {
    /// The client's address on the network under test.
    pub client_address: IpAddr,
}

/// How long a path client waits for Multus' network-status to reach its downward-API file.
const STATUS_PATIENCE: Duration = Duration::from_secs(30);

/// The pod's address on `network` from the network-status file (waited for while empty,
/// bounded), of `target`'s family where it has several.
fn address_from_status(
    network: CephNetwork,
    file: &Path,
    target: std::net::SocketAddr,
) -> Result<IpAddr, String> {
    let since = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        if !text.trim().is_empty() {
            break text;
        }
        if since.elapsed() >= STATUS_PATIENCE {
            return Err(format!(
                "{} stayed empty for {}s: Multus wrote no network-status annotation on this pod",
                file.display(),
                STATUS_PATIENCE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let status = multinet_proto::multus::status::parse_network_status(&text)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let attached = multinet_proto::multus::status::find_by_interface(&status, network.key())
        .ok_or_else(|| {
            format!(
                "{}: no interface named {:?} (the {} network's) is attached",
                file.display(),
                network.key(),
                network.key()
            )
        })?;
    let addresses = attached.addresses();
    addresses
        .iter()
        .find(|a| a.is_ipv4() == target.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| {
            format!(
                "{}: interface {:?} has no address",
                file.display(),
                network.key()
            )
        })
}

/// Runs a path's tests one after another in this process (on one thread), giving `out` one
/// JSON line each: first a [`ClientAddressLine`], then one [`TestResult`] per test, a failed
/// test said in its `failure` and the next one run.
///
/// # Errors
///
/// The source address cannot be found, the CA cannot be read, or the runtime not built.
pub fn path_client(request: &PathClientRequest, out: &mut dyn FnMut(String)) -> Result<(), String> {
    multinet_agent::install_crypto_provider();
    let (source, device) = match &request.source {
        ClientSource::Address { source, device } => (*source, device.clone()),
        ClientSource::Network {
            network,
            status_file,
        } => (
            Some(address_from_status(*network, status_file, request.target)?),
            None,
        ),
    };
    if let Some(address) = source {
        out(serde_json::to_string(&ClientAddressLine {
            client_address: address,
        })
        .map_err(|e| e.to_string())?);
    }
    let tls = probe_tls(request.tls.as_ref())?;
    let runtime = multinet_agent::entry::single_threaded().map_err(|e| e.to_string())?;
    let server_cpu = || {
        request.server_cpu.then(|| {
            runtime
                .block_on(multinet_agent::load::server_cpu_seconds(
                    request.target,
                    source,
                    device.as_deref(),
                ))
                // Said in the pod's log; the test's server CPU is then left empty.
                .map_err(|e| eprintln!("{}the server's CPU time (GET /cpu): {e}", super::NOTE))
                .ok()
        })?
    };
    for (kind, streams) in &request.tests {
        let plan = multinet_agent::load::LoadPlan {
            kind: *kind,
            target: if *kind == LoadKind::TlsHandshakeRequest {
                request.tls_target
            } else {
                request.target
            },
            source,
            device: device.clone(),
            streams: *streams,
            duration: request.duration,
            answer_bytes: request.answer_bytes,
            tls: tls.clone(),
        };
        let before = server_cpu();
        let ran = runtime.block_on(multinet_agent::load::run(&plan));
        let after = server_cpu();
        let (outcome, failure) = match ran {
            Ok(outcome) => (Some(outcome), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let result = TestResult {
            kind: *kind,
            streams: *streams,
            outcome,
            server_cpu_seconds: before.zip(after).map(|(b, a)| a - b),
            failure,
        };
        out(serde_json::to_string(&result).map_err(|e| e.to_string())?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kube client pod's source: its address on the interface named after the network under
    /// test, of the target's family, from Multus' network-status; what is missing is said.
    #[test]
    fn the_client_source_is_read_from_network_status_by_network() {
        let dir = std::env::temp_dir().join(format!("multinet-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch");
        let file = dir.join("network-status");
        std::fs::write(
            &file,
            r#"[{"name": "k8s-pod-network", "ips": ["10.244.1.7"], "default": true},
                {"name": "ns/public-net", "interface": "public", "ips": ["fd00::5", "198.18.36.5"]},
                {"name": "ns/cluster-net", "interface": "cluster", "ips": []}]"#,
        )
        .expect("network-status");
        let v4: std::net::SocketAddr = "198.18.36.1:8080".parse().expect("address");
        let v6: std::net::SocketAddr = "[fd00::1]:8080".parse().expect("address");
        let found = |network, target| address_from_status(network, &file, target);
        assert_eq!(
            found(CephNetwork::Public, v4),
            Ok("198.18.36.5".parse().expect("ip"))
        );
        assert_eq!(
            found(CephNetwork::Public, v6),
            Ok("fd00::5".parse().expect("ip"))
        );
        let none = found(CephNetwork::Cluster, v4).expect_err("no address");
        assert!(
            none.contains("interface \"cluster\" has no address"),
            "{none}"
        );
        std::fs::write(
            &file,
            r#"[{"name": "k8s-pod-network", "ips": ["10.244.1.7"]}]"#,
        )
        .expect("network-status");
        let missing = found(CephNetwork::Public, v4).expect_err("not attached");
        assert!(
            missing.contains("no interface named \"public\""),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
