//! The lab as a Kubernetes cluster's nodes: what a kubelet, a container runtime and Multus do
//! for multinet's pods, done by the lab, so that the `kube` backend can be run end to end
//! against a real API server on one machine.
//!
//! `multinet lab up -f TOPOLOGY --kubeconfig FILE` builds the lab and then, in the foreground
//! until SIGINT/SIGTERM:
//!
//! * registers every lab node as a Node (topology labels and taints; Ready; capacity; the
//!   kubelet endpoint on loopback) and renews its status and Lease ([`node`]);
//! * runs every pod bound to its nodes ([`pod`]): a pod namespace on the lab's control network
//!   (the pod network, `status.podIP`), hostNetwork pods in the node's namespace; the Multus
//!   selection annotation resolved against the NetworkAttachmentDefinitions in the API and run
//!   through the real CNI plugins, `network-status` written as Multus writes it, a failed ADD
//!   reported as the `FailedCreatePodSandBox` event ([`multus`]); env, downward-API, Secret,
//!   ConfigMap and emptyDir volumes materialized and the container's command run with this
//!   host's multinet binary in its own root ([`container`], [`volumes`]); status, restarts and
//!   graceful deletion kept as a kubelet keeps them;
//! * serves container logs as the kubelet does (`/containerLogs/…`, TLS, loopback), so the API
//!   server's `pods/log` and `kubectl logs -f` work ([`logs`]);
//! * makes the API server reachable from pods the way kube-proxy makes the `kubernetes`
//!   Service reachable: the Service's address on the pod network, forwarded to the control
//!   plane on loopback ([`forward`]). The host namespace gets no route into the lab;
//! * serves every other ClusterIP Service as kube-proxy does, to its ready endpoints: TCP
//!   spliced, UDP relayed with a flow per client that is dropped when its endpoint is no
//!   longer ready, so a replaced pod's clients reach its replacement ([`services`]).
//!
//! Only multinet's image runs (its binaries are this host's); any other image fails to pull,
//! as a kubelet's pull would. Not emulated: init containers, probes, resource limits (cgroups),
//! DNS, NodePorts and the other parts of kube-proxy [`services`] names, image contents other
//! than multinet's binaries.

pub mod cluster;
pub mod container;
pub mod events;
pub mod forward;
pub mod logs;
pub mod multus;
pub mod node;
pub mod pod;
pub mod services;
pub mod volumes;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::watch;

use super::build::Lab;
use super::sandbox;

/// An error of the Kubernetes client's setup (`backend::kube::client`), as that module
/// gives it.
pub type ClientError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the lab could not serve as the cluster's nodes, or a piece of work on the lab failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read into a client configuration.
    #[error(transparent)]
    Kubeconfig(ClientError),
    /// The kubeconfig's API server cannot be forwarded to (it is not on loopback).
    #[error("{}", kubeconfig.display())]
    ApiServer {
        /// The kubeconfig.
        kubeconfig: PathBuf,
        /// Why.
        #[source]
        source: cluster::Error,
    },
    /// No client could be made from the configuration.
    #[error("connecting to the Kubernetes API")]
    Client(#[source] kube::Error),
    /// The lab's tie to the cluster could not be recorded.
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    /// The kubelet endpoint (container logs) could not be started.
    #[error(transparent)]
    Logs(#[from] logs::Error),
    /// The `kubernetes` Service could not be forwarded.
    #[error(transparent)]
    Forward(#[from] forward::Error),
    /// The path of this program (the image's binaries) is not known.
    #[error("finding this program's binary")]
    CurrentExe(#[source] std::io::Error),
    /// A node could not be registered, or its first heartbeat not be sent.
    #[error(transparent)]
    Node(#[from] node::Error),
    /// Work on the lab failed: a sandbox, an attachment, an address.
    #[error(transparent)]
    Lab(#[from] sandbox::Error),
    /// Work on the lab panicked once and left its lock poisoned.
    #[error("the lab's lock is poisoned")]
    Poisoned,
    /// The blocking thread that worked on the lab panicked or was cancelled.
    #[error("the lab's worker thread")]
    Worker(#[source] tokio::task::JoinError),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `kubernetes` Service's address in the local control plane's Service range
/// (`tests/kube/control-plane`: `--service-cluster-ip-range=198.19.255.0/24`, first address).
pub const DEFAULT_API_SERVICE: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);

/// The image multinet's objects name by default, run by the lab.
pub const DEFAULT_IMAGE: &str = crate::backend::kube::DEFAULT_IMAGE;

/// How the lab serves as a cluster's nodes.
#[derive(Debug, Clone)]
pub struct KubeletOptions {
    /// The cluster's kubeconfig (an admin's: the lab writes nodes, pods' status, events).
    pub kubeconfig: PathBuf,
    /// Images the lab runs (multinet's); any other image fails to pull.
    pub images: Vec<String>,
    /// Nodes that report NotReady, as a node whose container network is not ready.
    pub not_ready: BTreeSet<String>,
    /// The `kubernetes` Service address pods are given.
    pub api_service: Ipv4Addr,
}

/// What every part of the emulation shares.
pub struct Kubelet {
    /// The cluster.
    pub client: Client,
    /// The lab (its state is written as pods come and go).
    pub lab: Arc<Mutex<Lab>>,
    /// The lab's state directory (pods' files live under `pods/<uid>`).
    pub state_dir: PathBuf,
    /// Images run.
    pub images: Vec<String>,
    /// Nodes that report NotReady (their runtime's network is not ready).
    pub not_ready: BTreeSet<String>,
    /// The host binary that stands for the image's `/usr/local/bin/multinet`.
    pub binary: PathBuf,
    /// The API server as pods reach it (`KUBERNETES_SERVICE_HOST`, `_PORT`).
    pub api_service: SocketAddr,
    /// The nodes' address (the kubelet endpoint's).
    pub node_address: IpAddr,
    /// CAs the API server's client certificate is verified with (the kubelet endpoint's).
    pub client_ca: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// Where each container's logs are.
    pub logs: Arc<logs::LogIndex>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("images", &self.images)
            .field("api_service", &self.api_service)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// Runs `work` on the lab on a blocking thread (namespace and CNI work is synchronous).
    pub async fn with_lab<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Lab) -> sandbox::Result<T> + Send + 'static,
    ) -> Result<T> {
        let lab = self.lab.clone();
        tokio::task::spawn_blocking(move || {
            let mut lab = lab.lock().map_err(|_| Error::Poisoned)?;
            Ok(work(&mut lab)?)
        })
        .await
        .map_err(Error::Worker)?
    }
}

/// A pod's worker: its channel, its task, the pod as last seen.
#[derive(Debug)]
struct Worker {
    tx: watch::Sender<pod::PodUpdate>,
    task: tokio::task::JoinHandle<()>,
    last: Pod,
}

/// Serves the lab's nodes to the cluster until `stop` resolves; then stops every pod it runs
/// (containers stopped, CNI DEL, namespaces removed) and returns. The lab and the Node objects
/// stay (as after a kubelet stops); `multinet lab down` removes both.
pub async fn serve(
    lab: Lab,
    options: KubeletOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    // The kubeconfig read once: the client, the API server's port, its CA.
    let config = crate::backend::kube::client::config(Some(&options.kubeconfig), None)
        .await
        .map_err(|e| Error::Kubeconfig(e.into()))?;
    let api_port = cluster::api_port(&config).map_err(|source| Error::ApiServer {
        kubeconfig: options.kubeconfig.clone(),
        source,
    })?;
    let client_ca = logs::cluster_ca(&config)?;
    let client = Client::try_from(config).map_err(Error::Client)?;
    let lab_name = lab.topology.name.clone();
    let topology_nodes = lab.topology.nodes.clone();
    let nodes: BTreeSet<String> = topology_nodes.iter().map(|n| n.name.clone()).collect();
    cluster::save(&lab.state_dir_path(), &options.kubeconfig, &nodes)?;
    let state_dir = lab.state_dir_path();
    let ctl = lab.add_service_address(options.api_service)?;
    let lab = Arc::new(Mutex::new(lab));

    let service = SocketAddr::new(IpAddr::V4(options.api_service), 443);
    let forwarder = forward::start(&ctl, service, SocketAddr::from(([127, 0, 0, 1], api_port)))?;
    let node_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let kubelet = Arc::new(Kubelet {
        client: client.clone(),
        lab,
        state_dir,
        images: options.images.clone(),
        not_ready: options.not_ready.clone(),
        binary: std::env::current_exe().map_err(Error::CurrentExe)?,
        api_service: service,
        node_address,
        client_ca,
        logs: Arc::new(logs::LogIndex::default()),
    });
    let log_server = logs::start(kubelet.clone(), node_address).await?;

    let node_api: Api<Node> = Api::all(client.clone());
    let mut registered = Vec::new();
    for node in &topology_nodes {
        registered.push(node::register(&node_api, node).await?);
    }
    let facts = |name: &str| node::NodeFacts {
        address: node_address,
        port: log_server.port,
        ready: !options.not_ready.contains(name),
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for node in &registered {
        let name = node.metadata.name.clone().unwrap_or_default();
        node::heartbeat(&node_api, &leases, node, &facts(&name)).await?;
    }
    // Started once nothing can fail any more: it is stopped at the end of this function.
    let services = services::start(kubelet.clone(), ctl.clone());
    tracing::info!(
        "lab {lab_name} serves as node(s) {} of the cluster; kubelet endpoint {}:{}; pods reach the API server at {service}",
        nodes.iter().cloned().collect::<Vec<_>>().join(", "),
        node_address,
        log_server.port
    );
    crate::outln!(
        "lab {lab_name} is up as the cluster's nodes: stop with SIGINT or SIGTERM, then remove it with: multinet lab down {lab_name}"
    );

    let heartbeats = {
        let (node_api, leases) = (node_api.clone(), leases.clone());
        let registered = registered.clone();
        let facts: Vec<node::NodeFacts> = registered
            .iter()
            .map(|n| facts(n.metadata.name.as_deref().unwrap_or_default()))
            .collect();
        tokio::spawn(async move {
            // The first heartbeat was sent above.
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + node::HEARTBEAT,
                node::HEARTBEAT,
            );
            loop {
                tick.tick().await;
                for (node, facts) in registered.iter().zip(&facts) {
                    if let Err(e) = node::heartbeat(&node_api, &leases, node, facts).await {
                        tracing::warn!("node heartbeat: {}", multinet_agent::chain(&e));
                    }
                }
            }
        })
    };

    let mut workers: HashMap<String, Worker> = HashMap::new();
    let pods: Api<Pod> = Api::all(client.clone());
    let mut events = watcher(pods, watcher::Config::default()).boxed();
    // The uids a re-list (after the watch lost its place) still shows: pods deleted meanwhile
    // get no Delete event, so every other worker is told its pod is gone.
    let mut relisted: Option<BTreeSet<String>> = None;
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            () = &mut stop => break,
            event = events.next() => event,
        };
        let Some(event) = event else { break };
        match event {
            Ok(watcher::Event::Init) => relisted = Some(BTreeSet::new()),
            Ok(watcher::Event::InitDone) => {
                if let Some(seen) = relisted.take() {
                    for (uid, worker) in &workers {
                        if !seen.contains(uid) {
                            let _ = worker.tx.send(pod::PodUpdate::Gone(worker.last.clone()));
                        }
                    }
                }
            }
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(uid.clone());
                }
                let on_lab = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some_and(|n| nodes.contains(n));
                if !on_lab {
                    continue;
                }
                workers.retain(|_, w| !w.task.is_finished());
                match workers.get_mut(&uid) {
                    Some(worker) => {
                        worker.last = pod.clone();
                        let _ = worker.tx.send(pod::PodUpdate::Present(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(pod::PodUpdate::Present(pod.clone()));
                        let task = tokio::spawn(pod::run(kubelet.clone(), rx));
                        workers.insert(
                            uid,
                            Worker {
                                tx,
                                task,
                                last: pod,
                            },
                        );
                    }
                }
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(worker) = pod.metadata.uid.as_ref().and_then(|u| workers.get(u)) {
                    let _ = worker.tx.send(pod::PodUpdate::Gone(pod));
                }
            }
            Err(e) => {
                tracing::warn!("watching pods: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    heartbeats.abort();
    tracing::info!("stopping the pods of lab {lab_name}");
    // A stopping kubelet leaves its pods' objects; their processes and addresses go here:
    // every pod told at once, then all awaited within one bound.
    for worker in workers.values() {
        let _ = worker.tx.send(pod::PodUpdate::Stop);
    }
    let tasks = workers.into_values().map(|w| w.task);
    if tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures::future::join_all(tasks),
    )
    .await
    .is_err()
    {
        tracing::warn!(
            "pods still stopping after 60 s: `multinet lab down {lab_name}` removes what is left"
        );
    }
    // As kube-proxy outlives the pods on a node being drained: their Services served to the
    // end, then no proxy, connection, flow or Service address left.
    services.stop().await;
    log_server.task.abort();
    forwarder.abort();
    Ok(())
}
