//! [`KubeBackend`]: the [`Scheduler`] of a run inside a cluster. The coordinator runs in a
//! pod and serves the control plane on its pod IP; it creates the run's objects (see
//! [`super::objects`]) as the supervisor places pods, and learns what becomes of them from
//! watches on the run's agent pods and on the namespace's events — never from fixed sleeps.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret, Service};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use multinet_proto::config::RunConfig;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::multus::selection::NetworkSelection;
use multinet_proto::network::CephNetwork;

use super::api_error::{ApiResultExt, said};
use super::diagnose::{self, PodEvent};
use super::names::{Owner, RunNames};
use super::objects::{AgentTls, CONTROL_PORT, KubeRun};
use super::{Error, Result};
use crate::scheduler::{AgentEnv, NodePlan, PodStatus, Scheduler};

mod bench_client;

pub use bench_client::BenchClientRun;

/// The annotation naming the agent a pod runs (the report's name for it).
pub const AGENT_ANNOTATION: &str = "multinet.io/agent";

/// Where a coordinator in a pod keeps its run's directory: the image's root is read-only;
/// `/tmp` is an emptyDir, which outlives a restart of the container (a soak's checkpoint is
/// there).
pub const RUN_ROOT: &str = "/tmp";

/// Who removes the run's objects at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRole {
    /// This process created the owner: cleanup deletes it, and with it everything.
    Ours,
    /// `multinet run` outside the cluster created it (this is its coordinator Job): cleanup
    /// asks for the agents' pods and host-check DaemonSets to go (never forced, not waited
    /// for, and a refusal only said), so nothing is left running or holding addresses if that
    /// command is gone; the owner and the report stay for it, and it deletes the owner once
    /// it has the report.
    Outside,
}

/// The Kubernetes scheduler of one run.
pub struct KubeBackend {
    client: Client,
    names: RunNames,
    config: RunConfig,
    namespace: String,
    image: String,
    public: Option<NetworkSelection>,
    cluster: Option<NetworkSelection>,
    owner: Owner,
    owner_role: OwnerRole,
    /// This pod's control plane: its IP.
    coordinator: SocketAddr,
    /// Where a soak's agents reach the control plane: the run's Service
    /// ([`super::objects::KubeRun::control_service`]), which a replacement pod keeps; `None`:
    /// the pod's IP.
    control_service: Option<SocketAddr>,
    /// The generation of the soak's checkpoint last stored in the API (`None`: not known yet;
    /// a resumed coordinator asks the API).
    checkpoint_generation: Option<u64>,
    nodes: Vec<NodePlan>,
    /// The selected NADs, for diagnosing sandbox failures.
    selected_nads: Vec<diagnose::SelectedNad>,
    shared_created: bool,
    host_sets: BTreeSet<String>,
    /// Node types whose host-check DaemonSet the API server refused, and why.
    refused_sets: BTreeMap<String, String>,
    /// The agent pods created, for an outside run's cleanup.
    created_pods: Vec<String>,
    told: BTreeSet<String>,
    /// Whether a soak's checkpoint holds this backend's part (the coordinator Job of a soak,
    /// whose container the kubelet restarts in the same pod should it die).
    resumable: bool,
    pods: Option<Store<Pod>>,
    /// `bench network`'s client pods created so far (each named by its count).
    bench_clients: usize,
    /// Events about pods, and about DaemonSets (one watch each, filtered by kind on the
    /// server; the run's are picked by name as they arrive).
    events: Vec<Store<Event>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

/// What a [`KubeBackend`] is made from.
pub struct KubeBackendSpec {
    /// The API client.
    pub client: Client,
    /// The run id.
    pub run_id: String,
    /// The run configuration.
    pub config: RunConfig,
    /// The multinet image.
    pub image: String,
    /// The networks' NADs.
    pub public: Option<NetworkSelection>,
    /// See `public`.
    pub cluster: Option<NetworkSelection>,
    /// The owner object.
    pub owner: Owner,
    /// Who created it.
    pub owner_role: OwnerRole,
    /// This pod's IP.
    pub pod_ip: std::net::IpAddr,
    /// The nodes the preflight planned.
    pub nodes: Vec<NodePlan>,
    /// The selected NADs as the preflight read them (their masters and MTUs name the cause of
    /// a sandbox failure).
    pub nads: Vec<(CephNetwork, multinet_proto::multus::nad::Nad)>,
    /// Whether a soak's checkpoint holds this backend's part: true for a soak's coordinator
    /// Job (restartPolicy OnFailure: its container is restarted in the same pod, with the
    /// same address and emptyDir, and resumes from the checkpoint it finds there).
    pub resumable: bool,
}

impl std::fmt::Debug for KubeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeBackend")
            .field("run", &self.names.run)
            .field("namespace", &self.namespace)
            .field("coordinator", &self.coordinator)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for KubeBackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeBackendSpec")
            .field("run_id", &self.run_id)
            .field("namespace", &self.config.namespace)
            .finish_non_exhaustive()
    }
}

impl KubeBackend {
    /// The events the watches have seen, as the diagnosis reads them (ages from now).
    fn pod_events(&self) -> Vec<PodEvent> {
        let now = k8s_openapi::jiff::Timestamp::now();
        self.events
            .iter()
            .flat_map(|store| store.state())
            .map(|e| PodEvent::from_event(&e, now))
            .collect()
    }

    /// A backend for the run `spec` describes; call [`Self::watch`] before the run starts.
    pub fn new(spec: KubeBackendSpec) -> Self {
        let selected_nads = selected_nads(spec.public.as_ref(), spec.cluster.as_ref(), &spec.nads);
        Self {
            client: spec.client,
            names: RunNames::new(&spec.run_id),
            namespace: spec.config.namespace.clone(),
            config: spec.config,
            image: spec.image,
            public: spec.public,
            cluster: spec.cluster,
            owner: spec.owner,
            owner_role: spec.owner_role,
            coordinator: SocketAddr::new(spec.pod_ip, CONTROL_PORT),
            control_service: None,
            checkpoint_generation: None,
            selected_nads,
            nodes: spec.nodes,
            shared_created: false,
            host_sets: BTreeSet::new(),
            refused_sets: BTreeMap::new(),
            created_pods: Vec::new(),
            told: BTreeSet::new(),
            resumable: spec.resumable,
            pods: None,
            bench_clients: 0,
            events: Vec::new(),
            watchers: Vec::new(),
        }
    }

    /// The backend of a run resumed from its checkpoint (`state`): the run's objects are
    /// known to exist as it says; call [`Self::watch`] before the run goes on.
    pub fn resume(spec: KubeBackendSpec, state: crate::checkpoint::KubeState) -> Self {
        let mut backend = Self::new(spec);
        backend.shared_created = state.shared_created;
        backend.created_pods = state.created_pods;
        backend.host_sets = state.host_sets;
        backend.refused_sets = state.refused_sets;
        backend.told = state.told;
        backend.control_service = state.control_service;
        backend
    }

    fn objects(&self) -> KubeRun<'_> {
        KubeRun {
            names: self.names.clone(),
            namespace: self.namespace.clone(),
            image: self.image.clone(),
            config: &self.config,
            public: self.public.clone(),
            cluster: self.cluster.clone(),
            owner: self.owner.clone(),
        }
    }

    /// Starts the watches on the run's agent pods and on the events about pods and about
    /// DaemonSets in the namespace (a field selector names one kind, and none can select the
    /// run's by name prefix, so those are picked as they arrive).
    pub fn watch(&mut self) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let (reader, writer) = reflector::store();
        let agents = format!(
            "{},{} in (server,client,host-check)",
            self.names.selector(),
            super::names::COMPONENT
        );
        let stream = watcher(pods, watcher::Config::default().labels(&agents))
            .default_backoff()
            .reflect(writer);
        self.watchers
            .push(tokio::spawn(stream.for_each(|_| async {})));
        self.pods = Some(reader);
        for kind in ["Pod", "DaemonSet"] {
            let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
            let (reader, writer) = reflector::store();
            let prefix = format!("{}-", self.names.owner());
            let ours = move |e: &Event| {
                e.involved_object
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&prefix))
            };
            let fields = format!("involvedObject.kind={kind}");
            let stream = watcher(events, watcher::Config::default().fields(&fields))
                .default_backoff()
                .try_filter(move |ev| {
                    std::future::ready(match ev {
                        watcher::Event::Apply(e)
                        | watcher::Event::InitApply(e)
                        | watcher::Event::Delete(e) => ours(e),
                        watcher::Event::Init | watcher::Event::InitDone => true,
                    })
                })
                .reflect(writer);
            self.watchers
                .push(tokio::spawn(stream.for_each(|_| async {})));
            self.events.push(reader);
        }
    }

    /// The run's Secret and agent settings, once.
    async fn create_shared(&mut self, env: &AgentEnv<'_>) -> Result<()> {
        if self.shared_created {
            return Ok(());
        }
        if self.resumable {
            self.control_service = Some(self.control_service_address().await?);
            let pki = serde_json::to_string(&env.pki.state())
                .map_err(Error::encode("the coordinator's TLS identity"))?;
            Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
                .create(
                    &PostParams::default(),
                    &self.objects().coordinator_tls_secret(&pki),
                )
                .await
                .said()
                .map_err(Error::call(format!(
                    "creating Secret {}/{}",
                    self.namespace,
                    self.names.coordinator_tls()
                )))?;
        }
        let (ca, cert, key) = env.pki.shared_agent_pem()?;
        let secret = self.objects().tls_secret(Some(&AgentTls { ca, cert, key }));
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .said()?;
        let settings = super::dry_run::pod_run_settings(
            &self.names.run,
            &self.config,
            Some(self.control_service.unwrap_or(self.coordinator)),
            env.grace_ms,
        );
        let cm = self.objects().agents_config_map(
            serde_json::to_string_pretty(&settings)
                .map_err(Error::encode("the agents' settings"))?,
        );
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &cm)
            .await
            .said()?;
        self.shared_created = true;
        Ok(())
    }

    /// The address of the run's Service in front of the control plane (made with the Job
    /// by the command outside the cluster): its ClusterIP, [`CONTROL_PORT`].
    async fn control_service_address(&self) -> Result<SocketAddr> {
        let name = self.names.control();
        let service = Api::<Service>::namespaced(self.client.clone(), &self.namespace)
            .get(&name)
            .await
            .said()
            .map_err(Error::call(format!(
                "reading Service {}/{name} (the address a soak's agents dial)",
                self.namespace
            )))?;
        service
            .spec
            .and_then(|s| s.cluster_ip)
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, CONTROL_PORT))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "Service {}/{name} has no cluster IP: the agents of a soak dial it",
                    self.namespace
                ))
            })
    }

    fn node_type(&self, node: &str) -> Result<String> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.node_type.clone())
            .ok_or_else(|| Error::UnknownNode(node.to_string()))
    }

    /// The report's name of the agent a pod runs.
    fn agent_of(pod: &Pod) -> Option<String> {
        if let Some(a) = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(AGENT_ANNOTATION))
        {
            return Some(a.clone());
        }
        // Host checkers come from a DaemonSet: named after their node.
        let node = pod.spec.as_ref()?.node_name.as_ref()?;
        Some(format!("host-{node}"))
    }

    fn nads(&self) -> Vec<diagnose::SelectedNad> {
        self.selected_nads.clone()
    }

    /// Creates an agent pod. The API server refusing it (admission: Pod Security, a quota, a
    /// policy engine) is the pod's fate, not the run's end: the other agents still run and the
    /// report names the refusal.
    async fn create_pod(&mut self, pod: Pod, agent: &str) -> Result<PodStatus> {
        let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
        let (name, created) = create_agent_pod(api, pod, agent).await;
        self.created(name, created)
    }

    /// What a pod's creation came to; a created pod is remembered for cleanup.
    fn created(&mut self, name: String, created: Result<Option<String>>) -> Result<PodStatus> {
        Ok(match created? {
            None => {
                self.created_pods.push(name);
                PodStatus::Started(Vec::new())
            }
            Some(reason) => PodStatus::NotStarted {
                reason: format!("the API server refused pod {name}: {reason}"),
            },
        })
    }

    /// The pod object of a server or client agent: the single-server run's `server`, a mesh
    /// run's responder `server-<node>` (with the networks the supervisor gave it), or a
    /// client `client-<node>-<index>`.
    fn agent_pod(&self, pod: &AgentIdentity) -> Result<Pod> {
        let node_type = self.node_type(&pod.node)?;
        Ok(match pod.role {
            Role::Client => {
                let index = pod
                    .pod
                    .strip_prefix(&format!("client-{}-", pod.node))
                    .ok_or_else(|| Error::UnexpectedClient(pod.pod.clone()))?;
                self.objects().client_pod(&pod.node, &node_type, index)
            }
            Role::Server if pod.pod == "server" => self.objects().server_pod(&node_type, &pod.node),
            Role::Server if pod.pod == crate::mesh::responder_pod(&pod.node) => self
                .objects()
                .responder_pod(&node_type, &pod.node, &pod.pod, &pod.networks),
            Role::Server | Role::HostCheck => {
                return Err(Error::UnexpectedServer {
                    pod: pod.pod.clone(),
                    node: pod.node.clone(),
                });
            }
        })
    }
}

impl Scheduler for KubeBackend {
    type Error = Error;

    fn backend(&self) -> &'static str {
        "kube"
    }

    fn validates_real_network(&self) -> bool {
        true
    }

    fn run_id(&self) -> Option<String> {
        Some(self.names.run.clone())
    }

    fn run_root(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(RUN_ROOT)
    }

    fn control_socket(&self) -> Result<std::net::UdpSocket> {
        let any: std::net::IpAddr = if self.coordinator.is_ipv6() {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        std::net::UdpSocket::bind((any, CONTROL_PORT)).map_err(|source| Error::Socket {
            port: CONTROL_PORT,
            source,
        })
    }

    fn checkpoint(&self) -> Option<crate::checkpoint::BackendState> {
        self.resumable.then(|| {
            crate::checkpoint::BackendState::Kube(crate::checkpoint::KubeState {
                shared_created: self.shared_created,
                created_pods: self.created_pods.clone(),
                host_sets: self.host_sets.clone(),
                refused_sets: self.refused_sets.clone(),
                told: self.told.clone(),
                pod_ip: Some(self.coordinator.ip()),
                control_service: self.control_service,
            })
        })
    }

    fn stores_checkpoint(&self) -> bool {
        self.resumable
    }

    async fn store_checkpoint(&mut self, gzipped: Vec<u8>, written_ms: u64) -> Result<()> {
        let last = match self.checkpoint_generation {
            Some(g) => g,
            None => {
                super::checkpoint_store::generation(&self.client, &self.namespace, &self.names)
                    .await?
            }
        };
        let stored = super::checkpoint_store::store(
            &self.client,
            &self.objects(),
            last + 1,
            written_ms,
            &gzipped,
        )
        .await;
        // Not known after a failure (the index may have been switched though its answer was
        // lost): the next store reads it, so it never writes into the slot the index names.
        self.checkpoint_generation = stored.as_ref().ok().map(|index| index.generation);
        stored.map(|_| ())
    }

    async fn forget_checkpoint(&mut self) -> Result<()> {
        if !self.resumable {
            return Ok(());
        }
        super::checkpoint_store::forget(&self.client, &self.namespace, &self.names).await
    }

    async fn nodes(&mut self, _config: &RunConfig) -> Result<Vec<NodePlan>> {
        Ok(self.nodes.clone())
    }

    async fn start(&mut self, pod: &AgentIdentity, env: &AgentEnv<'_>) -> Result<PodStatus> {
        self.create_shared(env).await?;
        let node_type = self.node_type(&pod.node)?;
        match pod.role {
            Role::Server | Role::Client => {
                let p = self.agent_pod(pod)?;
                return self.create_pod(p, &pod.pod).await;
            }
            Role::HostCheck => {
                if self.host_sets.insert(node_type.clone()) {
                    let planned: Vec<&str> = self
                        .nodes
                        .iter()
                        .filter(|n| n.node_type == node_type)
                        .map(|n| n.name.as_str())
                        .collect();
                    let ds = self.objects().host_check_daemon_set(&node_type, &planned);
                    let created =
                        Api::<DaemonSet>::namespaced(self.client.clone(), &self.namespace)
                            .create(&PostParams::default(), &ds)
                            .await;
                    if let Some(reason) = refused(created)? {
                        self.refused_sets.insert(
                            node_type.clone(),
                            format!(
                                "the API server refused DaemonSet {}: {reason}",
                                self.names.host_check(&node_type)
                            ),
                        );
                    }
                }
                if let Some(reason) = self.refused_sets.get(&node_type) {
                    return Ok(PodStatus::NotStarted {
                        reason: reason.clone(),
                    });
                }
            }
        }
        // Addresses are the agents' to learn (network-status); they report them when they
        // connect. What goes wrong before that arrives through `facts`.
        Ok(PodStatus::Started(Vec::new()))
    }

    /// Host checkers' DaemonSets one after another (one per node type, made once); server (a
    /// mesh's responders) and client pods [`PODS_AT_ONCE`] creations at a time. Every pod created is remembered for
    /// cleanup before an error is returned.
    async fn start_all(
        &mut self,
        pods: &[AgentIdentity],
        env: &AgentEnv<'_>,
    ) -> Result<Vec<PodStatus>> {
        let mut statuses: Vec<Option<PodStatus>> = vec![None; pods.len()];
        let mut to_create = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            if pod.role == Role::HostCheck {
                statuses[i] = Some(self.start(pod, env).await?);
            } else {
                to_create.push((i, self.agent_pod(pod)?, pod.pod.clone()));
            }
        }
        if !to_create.is_empty() {
            self.create_shared(env).await?;
        }
        let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
        let created: Vec<(usize, String, Result<Option<String>>)> =
            futures::stream::iter(to_create)
                .map(|(i, pod, agent)| {
                    let api = api.clone();
                    async move {
                        let (name, created) = create_agent_pod(api, pod, &agent).await;
                        (i, name, created)
                    }
                })
                .buffer_unordered(PODS_AT_ONCE)
                .collect()
                .await;
        let mut first_error = None;
        for (i, name, created) in created {
            match self.created(name, created) {
                Ok(status) => statuses[i] = Some(status),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(statuses
            .into_iter()
            .zip(pods)
            .map(|(status, pod)| {
                status.unwrap_or_else(|| PodStatus::NotStarted {
                    reason: format!("pod {} was not created", pod.pod),
                })
            })
            .collect())
    }

    async fn exited(&mut self) -> Vec<(String, String)> {
        let Some(pods) = &self.pods else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for pod in pods.state() {
            let Some(agent) = Self::agent_of(&pod) else {
                continue;
            };
            if self.told.contains(&agent) {
                continue;
            }
            if let Some(reason) = diagnose::ended(&pod) {
                self.told.insert(agent.clone());
                out.push((agent, reason));
            }
        }
        out
    }

    async fn facts(&mut self) -> Vec<(String, PodStatus)> {
        let Some(pods) = &self.pods else {
            return Vec::new();
        };
        let events = self.pod_events();
        let nads = self.nads();
        let mut out = Vec::new();
        // A host-check DaemonSet that cannot create its pods (Pod Security refusing
        // hostNetwork, an SCC): every host checker of its node type never started.
        for node in &self.nodes {
            let set = self.names.host_check(&node.node_type);
            let agent = format!("host-{}", node.name);
            if self.told.contains(&agent) {
                continue;
            }
            if let Some(e) = events.iter().rev().find(|e| {
                e.kind == "DaemonSet" && e.pod == set && e.reason == "FailedCreate" && e.persists()
            }) && !pods
                .state()
                .iter()
                .any(|p| Self::agent_of(p).as_deref() == Some(agent.as_str()))
            {
                self.told.insert(agent.clone());
                out.push((
                    agent,
                    PodStatus::NotStarted {
                        reason: format!("DaemonSet {set} cannot create its pods: {}", e.message),
                    },
                ));
            }
        }
        for pod in pods.state() {
            let Some(agent) = Self::agent_of(&pod) else {
                continue;
            };
            if self.told.contains(&agent) {
                continue;
            }
            if let Some(status) = diagnose::stuck(&pod, &events, &nads, &self.image) {
                self.told.insert(agent.clone());
                out.push((agent, status));
            }
        }
        out
    }

    async fn never_started(&mut self, agents: &[String]) -> Vec<(String, PodStatus)> {
        let Some(pods) = &self.pods else {
            return Vec::new();
        };
        let events = self.pod_events();
        let nads = self.nads();
        let pods = pods.state();
        let mut out = Vec::new();
        for agent in agents {
            match pods
                .iter()
                .find(|p| Self::agent_of(p).as_deref() == Some(agent.as_str()))
            {
                Some(pod) if diagnose::never_ran(pod) => out.push((
                    agent.clone(),
                    diagnose::never_started(pod, &events, &nads, &self.image),
                )),
                Some(_) => {}
                // A host checker's DaemonSet made no pod on its node.
                None if agent.starts_with("host-") => {
                    let node = agent.trim_start_matches("host-");
                    let Ok(node_type) = self.node_type(node) else {
                        continue;
                    };
                    let set = self.names.host_check(&node_type);
                    let latest = events
                        .iter()
                        .rev()
                        .find(|e| e.kind == "DaemonSet" && e.pod == set)
                        .map(|e| format!("; latest event {}: {}", e.reason, e.message))
                        .unwrap_or_default();
                    out.push((
                        agent.clone(),
                        PodStatus::NotStarted {
                            reason: format!(
                                "never started: DaemonSet {set} created no pod on node {node}{latest}"
                            ),
                        },
                    ));
                }
                None => {}
            }
        }
        out
    }

    async fn cleanup(&mut self) -> Result<()> {
        for w in self.watchers.drain(..) {
            w.abort();
        }
        match self.owner_role {
            OwnerRole::Ours => {
                super::cleanup::remove_run(
                    &self.client,
                    &self.namespace,
                    &self.owner.name,
                    self.config.resource_timeout.as_std(),
                )
                .await?;
            }
            OwnerRole::Outside => {
                let params = DeleteParams::foreground();
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
                let sets: Api<DaemonSet> = Api::namespaced(self.client.clone(), &self.namespace);
                let mut asked = Vec::new();
                for name in std::mem::take(&mut self.created_pods) {
                    asked.push((
                        format!("pod {name}"),
                        pods.delete(&name, &params).await.map(|_| ()),
                    ));
                }
                for node_type in std::mem::take(&mut self.host_sets) {
                    let name = self.names.host_check(&node_type);
                    asked.push((
                        format!("DaemonSet {name}"),
                        sets.delete(&name, &params).await.map(|_| ()),
                    ));
                }
                for (what, result) in asked {
                    match result {
                        Ok(()) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => tracing::warn!(
                            "could not delete {what} ({}); deleting the run's owner removes it",
                            said(e)
                        ),
                    }
                }
            }
        }
        Ok(())
    }
}

/// `Some(reason)` when the API server refused to create an object (forbidden by admission,
/// invalid, over a quota); other errors (the API server unreachable) are errors.
/// How many agent pods are created at once: the API server takes them in parallel, and a
/// cluster's admission webhooks take their time per pod.
const PODS_AT_ONCE: usize = 8;

/// Creates an agent pod, annotated with the agent it runs; its name, and `None` when created
/// or the API server's refusal (admission: Pod Security, a quota, a policy engine), which is
/// the pod's fate, not the run's end.
async fn create_agent_pod(
    api: Api<Pod>,
    mut pod: Pod,
    agent: &str,
) -> (String, Result<Option<String>>) {
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(AGENT_ANNOTATION.into(), agent.into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let created = api.create(&PostParams::default(), &pod).await;
    (name, refused(created))
}

fn refused<T>(r: Result<T, kube::Error>) -> Result<Option<String>> {
    match r {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(e)) if matches!(e.code, 403 | 422) => Ok(Some(e.message.clone())),
        Err(e) => Err(said(e).into()),
    }
}

/// The run's NADs for diagnosis: every selected network, with the master and MTU the preflight
/// read from its config (none when the config lives on the nodes or could not be read).
fn selected_nads(
    public: Option<&NetworkSelection>,
    cluster: Option<&NetworkSelection>,
    read: &[(CephNetwork, multinet_proto::multus::nad::Nad)],
) -> Vec<diagnose::SelectedNad> {
    [
        (CephNetwork::Public, public),
        (CephNetwork::Cluster, cluster),
    ]
    .into_iter()
    .filter_map(|(network, selection)| {
        let selection = selection?;
        let config = read
            .iter()
            .find(|(n, nad)| *n == network && nad.name == selection.name)
            .and_then(|(_, nad)| nad.config.as_ref());
        Some(diagnose::SelectedNad {
            network,
            name: selection.name.clone(),
            master: config.and_then(|c| c.master.clone()),
            mtu: config.and_then(|c| c.mtu),
        })
    })
    .collect()
}
