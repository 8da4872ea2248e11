//! Where a setup is measured: its backend ([`BenchSite`]: the lab, the local backend, and
//! kube's in [`super::kube`]), the server and client pods placed, and every path's tests.

use std::net::IpAddr;

use multinet_agent::load::LoadKind;
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::Listener;
use multinet_proto::network::CephNetwork;

use super::process::{ClientArgs, run_test};
use super::reference;
use super::report::{MeshCoverage, PathResult, SetupResult};
use super::{Error, NetworkBenchRequest, failed};
use crate::backend::local::LocalBackend;
use crate::exit::chain;
use crate::lab::backend::{LabBackend, netns_exec};
use crate::lab::build::PodNet;
use crate::run::{BoxError, Notice, Say};
use crate::scheduler::Scheduler;
use crate::supervisor::{RunSettings, RunSupervisor};

/// The actor system a bench's supervisor runs on (two worker threads).
pub(crate) fn bench_system() -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::multi_threaded(2)
            .unwrap_or_else(|e| panic!("cannot build the tokio runtime: {e}"))
    })
}

/// [`on_site`] on the running system: places and measures on `backend`, then cleans up
/// whatever happened.
///
/// [`on_site`]: super::setup::on_site
pub(crate) async fn site<S: BenchSite>(
    mut backend: S,
    settings: &RunSettings,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    result: &mut SetupResult,
    what: &str,
    say: Say<'_>,
) -> Result<(), Error> {
    let socket = backend.control_socket();
    let run_root = backend.run_root();
    // A backend whose objects carry the run id (kube: its agents' settings, their
    // names) gives it; the others' is made here.
    let run_id = backend.run_id();
    let mut supervisor = match socket.map_err(BoxError::from).and_then(|s| {
        match run_id {
            Some(id) => RunSupervisor::prepare_with_id(s, &run_root, id),
            None => RunSupervisor::prepare(s, &run_root),
        }
        .map_err(Into::into)
    }) {
        Ok(supervisor) => supervisor,
        Err(e) => {
            let _ = backend.cleanup().await;
            return Err(failed("", e));
        }
    };
    let outcome = tokio::select! {
        r = measure(&mut supervisor, &mut backend, settings, request, tools, result, say) => r,
        signal = crate::signals::shutdown_signal() => Err(Error::Interrupted(signal)),
    };
    if let Err(e) = supervisor.cleanup(&mut backend).await {
        say(Notice::Note(format!("cleaning up {what}: {}", chain(&e))));
    }
    outcome
}

/// A client pod of the bench: no agent, only addresses (and a namespace to run its tests in).
#[derive(Debug, Clone)]
pub(crate) struct ClientPod {
    /// Its network namespace; `None`: this machine's own (the local backend).
    pub(super) ns: Option<String>,
    /// Its addresses, one per network it is attached to.
    pub(super) addresses: Vec<NetworkAddress>,
    /// The network it could not get an address on, with the reason.
    pub(super) failed: Option<(CephNetwork, String)>,
}

impl From<PodNet> for ClientPod {
    fn from(pod: PodNet) -> Self {
        Self {
            ns: Some(pod.ns),
            addresses: pod.addresses,
            failed: pod.failed,
        }
    }
}

/// What the bench needs of a backend beyond a run's placement.
#[allow(async_fn_in_trait)] // used with the three concrete backends only
pub(crate) trait BenchSite: Scheduler {
    /// One client pod per `(node, networks)`, in that order.
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<ClientPod>, BoxError>;
    /// The pid of pod `pod`'s agent (its CPU time), while it runs.
    fn agent_pid(&self, pod: &str) -> Option<i32>;
    /// The network namespace of pod `pod`; `None` on the local backend (no namespace).
    fn pod_namespace(&self, pod: &str) -> Option<String>;
    /// Where the loopback comparison runs beside server pod `pod`: its namespace and that
    /// namespace's 127.0.0.1, or (local) no namespace and a loopback address of the run's own
    /// block, so that nothing else on the machine is met.
    fn loopback(&mut self, pod: &str) -> Option<(Option<String>, IpAddr)>;
    /// Why the references (iperf3, the nginx comparison) cannot be measured here at all;
    /// `None` where they can (each tool may still be missing).
    fn no_references(&self) -> Option<&'static str> {
        None
    }
    /// Every test on one path (a process per test in the client pod's namespace, by default).
    async fn measure_path(
        &mut self,
        bench: &Bench<'_>,
        ends: PathEnds<'_>,
        tools: &reference::Tools,
        say: Say<'_>,
    ) -> PathResult {
        measure_path(bench, ends, tools, say).await
    }
}

impl BenchSite for LabBackend {
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<ClientPod>, BoxError> {
        let placed = self.place_without_agents(pods).await?;
        Ok(placed.into_iter().map(ClientPod::from).collect())
    }

    fn agent_pid(&self, pod: &str) -> Option<i32> {
        LabBackend::agent_pid(self, pod)
    }

    fn pod_namespace(&self, pod: &str) -> Option<String> {
        LabBackend::pod_namespace(self, pod).map(str::to_string)
    }

    fn loopback(&mut self, pod: &str) -> Option<(Option<String>, IpAddr)> {
        let ns = LabBackend::pod_namespace(self, pod)?.to_string();
        Some((Some(ns), IpAddr::from([127, 0, 0, 1])))
    }
}

impl BenchSite for LocalBackend {
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<ClientPod>, BoxError> {
        Ok(pods
            .iter()
            .map(|(_, networks)| ClientPod {
                ns: None,
                addresses: self.pod_addresses(networks),
                failed: None,
            })
            .collect())
    }

    fn agent_pid(&self, pod: &str) -> Option<i32> {
        LocalBackend::agent_pid(self, pod)
    }

    fn pod_namespace(&self, _pod: &str) -> Option<String> {
        None
    }

    fn loopback(&mut self, _pod: &str) -> Option<(Option<String>, IpAddr)> {
        let address = self.pod_addresses(&[CephNetwork::Public]).first()?.addr;
        Some((None, address))
    }
}

/// The command prefix that runs a program in namespace `ns`; nothing for `None` (this
/// machine's own namespace, the local backend).
pub(crate) fn exec_in(ns: Option<&str>) -> Vec<String> {
    ns.map(netns_exec).unwrap_or_default()
}

/// What a setup's tests share.
pub(crate) struct Bench<'a> {
    /// `multinet bench client` (this binary).
    pub(super) client_command: Vec<String>,
    /// The client's TLS files (the run CA as its trust anchor).
    pub(super) tls: multinet_proto::assignment::TlsFiles,
    pub(crate) request: &'a NetworkBenchRequest,
}

/// The server (every responder) placed, the client pods placed, every path measured into
/// `result`.
async fn measure<S: BenchSite>(
    supervisor: &mut RunSupervisor,
    backend: &mut S,
    settings: &RunSettings,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    result: &mut SetupResult,
    say: Say<'_>,
) -> Result<(), Error> {
    let placed = supervisor
        .place_server_only(backend, settings)
        .await
        .map_err(|e| failed("placing the server", e))?;
    let Some(placed) = placed else {
        let why: Vec<String> = supervisor
            .exit_reasons()
            .map(|(pod, reason)| format!("{pod}: {reason}"))
            .collect();
        return Err(failed(
            "the server agent did not say where it listens",
            if why.is_empty() {
                "no answer within the stage deadline (resourceTimeout)".to_string()
            } else {
                why.join("; ")
            },
        ));
    };
    result.server_node = placed.server_node.clone();
    result.mesh = MeshCoverage::of(&placed.targeting, &placed.responders);
    let pods = backend
        .place_clients(placed.client_networks.clone())
        .await
        .map_err(|e| failed("placing the client pods", e))?;
    let run_dir = crate::supervisor::run_dir(&backend.run_root(), supervisor.run_id());
    let tls = supervisor
        .pki()
        .write_agent_files(&run_dir, "bench-client", false)
        .map_err(|e| failed("the bench client's certificate", e))?;
    let exe = std::env::current_exe().map_err(|e| failed("finding this program", e))?;
    let bench = Bench {
        client_command: vec![exe.display().to_string(), "bench".into(), "client".into()],
        tls,
        request,
    };
    for network in &settings.networks {
        let mut paths = Vec::new();
        for ((node, networks), pod) in placed.client_networks.iter().zip(&pods) {
            if !networks.contains(network) {
                continue;
            }
            // The single server's node, or the node's mesh peers (its own first).
            let targets = placed
                .targeting
                .peers_of(*network, node)
                .map_or_else(|| vec![placed.server_node.clone()], <[String]>::to_vec);
            for target in &targets {
                let Some((server_pod, listener)) = placed.responders.iter().find_map(|(pod, r)| {
                    let listener = r.listeners.iter().find(|l| l.network == *network)?;
                    (r.node == *target).then_some((pod, listener))
                }) else {
                    // A mesh goes on without a responder that is gone; its paths say why.
                    let error = match placed.gone.get(target) {
                        Some(why) => format!("the responder on {target} is gone: {why}"),
                        None => format!(
                            "the responder on {target} said no listener on the {} network",
                            network.key()
                        ),
                    };
                    paths.push(PathResult::unmeasured(node, target, error));
                    continue;
                };
                let server_ns = backend.pod_namespace(server_pod);
                let server_pid = backend.agent_pid(server_pod);
                let path = backend
                    .measure_path(
                        &bench,
                        PathEnds {
                            node,
                            server_node: target,
                            network: *network,
                            pod,
                            listener,
                            server_ns: server_ns.as_deref(),
                            server_pid,
                        },
                        tools,
                        say,
                    )
                    .await;
                paths.push(path);
            }
        }
        result.push_network(*network, paths);
    }
    let server_pod = placed
        .responders
        .iter()
        .find(|(_, r)| r.node == placed.server_node)
        .map(|(pod, _)| pod.clone());
    if request.references
        && let Some(why) = backend.no_references()
    {
        result.loopback = Some(reference::LoopbackComparison {
            error: Some(why.to_string()),
            ..reference::LoopbackComparison::default()
        });
    } else if request.references
        && server_pod.is_none()
        && let Some(why) = placed.gone.get(&placed.server_node)
    {
        // Beside the server's node's responder, which is gone.
        result.loopback = Some(reference::LoopbackComparison {
            error: Some(format!(
                "not measured: the responder on {} is gone: {why}",
                placed.server_node
            )),
            ..reference::LoopbackComparison::default()
        });
    } else if request.references
        && let Some((ns, address)) = server_pod.and_then(|pod| backend.loopback(&pod))
    {
        let server_tls = supervisor
            .pki()
            .write_agent_files(&run_dir, "bench-loopback-server", true)
            .map_err(|e| failed("the loopback probe server's certificate", e))?;
        let loopback = reference::Loopback {
            program: &bench.client_command[0],
            ns: ns.as_deref(),
            address,
            dir: &run_dir,
            server_tls: &server_tls,
        };
        result.loopback =
            Some(reference::server_against_nginx(&loopback, request, tools, say).await);
    }
    Ok(())
}

/// The two ends of a path.
pub(crate) struct PathEnds<'a> {
    pub(crate) node: &'a str,
    pub(crate) server_node: &'a str,
    pub(crate) network: CephNetwork,
    pod: &'a ClientPod,
    pub(crate) listener: &'a Listener,
    /// The server pod's namespace (`None`: the local backend's, this machine's).
    server_ns: Option<&'a str>,
    /// The server agent's pid (its CPU time).
    server_pid: Option<i32>,
}

/// A path's tests in the order run: download and upload with one and `streams` connections
/// (one only when `streams` is 1), request/response, a connection per request, a TLS
/// handshake per request.
pub fn path_tests(streams: u32) -> Vec<(LoadKind, u32)> {
    let mut tests = vec![(LoadKind::Download, 1)];
    if streams > 1 {
        tests.push((LoadKind::Download, streams));
    }
    tests.push((LoadKind::Upload, 1));
    if streams > 1 {
        tests.push((LoadKind::Upload, streams));
    }
    tests.extend([
        (LoadKind::RequestResponse, 1),
        (LoadKind::ConnectRequest, 1),
        (LoadKind::TlsHandshakeRequest, 1),
    ]);
    tests
}

/// Why `pod` has no address on `network` because it failed to get one on a network of its
/// own, `None` when it did not fail. A pod gets all its networks or none (Multus: one
/// attachment's CNI ADD failing fails the pod's sandbox), so a path on another network of the
/// pod names the network where it failed.
fn unattached(pod: &ClientPod, network: CephNetwork) -> Option<String> {
    let (failed, reason) = pod.failed.as_ref()?;
    Some(if *failed == network {
        format!(
            "the client pod got no address on the {} network: {reason}",
            failed.key()
        )
    } else {
        format!(
            "not measured: the client pod (attached to the {} network too) got no address on the {} network, and a pod gets all its networks or none: {reason}",
            network.key(),
            failed.key()
        )
    })
}

/// Every test on one path, one after another.
async fn measure_path(
    bench: &Bench<'_>,
    ends: PathEnds<'_>,
    tools: &reference::Tools,
    say: Say<'_>,
) -> PathResult {
    let mut path = PathResult::new(ends.node, ends.server_node, ends.listener.http.ip());
    if let Some(error) = unattached(ends.pod, ends.network) {
        path.error = Some(error);
        return path;
    }
    let Some(address) = ends
        .pod
        .addresses
        .iter()
        .find(|a| a.network == ends.network)
    else {
        path.error = Some(format!(
            "the client pod has no address on the {} network",
            ends.network.key()
        ));
        return path;
    };
    path.client_address = Some(address.addr);
    for (kind, n) in path_tests(bench.request.streams) {
        say(Notice::Info(format!(
            "{} {} → {}: {} ×{n}",
            ends.network.key(),
            ends.node,
            ends.server_node,
            kind.name()
        )));
        let target = if kind == LoadKind::TlsHandshakeRequest {
            ends.listener.https
        } else {
            ends.listener.http
        };
        let test = run_test(
            bench,
            ends.pod.ns.as_deref(),
            ends.server_pid,
            ClientArgs {
                kind,
                streams: n,
                target,
                source: address.addr,
                device: address.interface.as_deref(),
            },
        )
        .await;
        path.tests.push(test);
    }
    if bench.request.references {
        say(Notice::Info(format!(
            "{} {} → {}: iperf3, both ways",
            ends.network.key(),
            ends.node,
            ends.server_node
        )));
        path.iperf3 = Some(
            reference::iperf3_path(
                tools,
                ends.server_ns,
                ends.pod.ns.as_deref(),
                ends.listener.http.ip(),
                address,
                bench.request.duration,
                say,
            )
            .await,
        );
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_of_a_pod_that_failed_on_another_network_names_that_network() {
        let pod = |failed| ClientPod {
            ns: None,
            addresses: Vec::new(),
            failed,
        };
        let reason = "failed to find host device: Link not found".to_string();
        let failed = pod(Some((CephNetwork::Public, reason)));
        assert_eq!(
            unattached(&failed, CephNetwork::Public).as_deref(),
            Some(
                "the client pod got no address on the public network: failed to find host device: Link not found"
            )
        );
        assert_eq!(
            unattached(&failed, CephNetwork::Cluster).as_deref(),
            Some(
                "not measured: the client pod (attached to the cluster network too) got no address on the public network, and a pod gets all its networks or none: failed to find host device: Link not found"
            )
        );
        assert_eq!(unattached(&pod(None), CephNetwork::Cluster), None);
    }
}
