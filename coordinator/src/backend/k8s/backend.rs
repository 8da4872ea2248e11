//! [`KubeBackend`]: the [`Scheduler`] of a run inside a cluster. The coordinator runs in a
//! pod and serves the control plane on its pod IP; it creates the run's objects (see
//! [`super::objects`]) as the supervisor places pods, and learns what becomes of them from
//! watches on the run's pods and on pod events — never from fixed sleeps.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use multinet_proto::config::RunConfig;
use multinet_proto::control::Role;
use multinet_proto::multus::selection::NetworkSelection;
use multinet_proto::network::CephNetwork;

use super::diagnose::{self, PodEvent};
use super::names::{Owner, RunNames};
use super::objects::{AgentTls, CONTROL_PORT, KubeRun};
use crate::scheduler::{AgentEnv, NodePlan, PodPlan, PodStatus, Scheduler};

/// The annotation naming the agent a pod runs (the report's name for it).
pub const AGENT_ANNOTATION: &str = "multinet.io/agent";

/// Who removes the run's objects at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRole {
    /// This process created the owner: cleanup deletes it, and with it everything.
    Ours,
    /// `multinet run` outside the cluster created it (this is its coordinator Job): cleanup
    /// removes the agents only; the owner keeps the report until the outside command has it.
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
    /// Where agents reach the control plane: this pod's IP.
    coordinator: SocketAddr,
    nodes: Vec<NodePlan>,
    shared_created: bool,
    host_sets: BTreeSet<String>,
    created_pods: Vec<String>,
    told: BTreeSet<String>,
    pods: Option<Store<Pod>>,
    events: Option<Store<Event>>,
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
    /// A backend for the run `spec` describes; call [`Self::watch`] before the run starts.
    pub fn new(spec: KubeBackendSpec) -> Self {
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
            nodes: spec.nodes,
            shared_created: false,
            host_sets: BTreeSet::new(),
            created_pods: Vec::new(),
            told: BTreeSet::new(),
            pods: None,
            events: None,
            watchers: Vec::new(),
        }
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

    /// Starts the watches on the run's pods and on pod events in the namespace.
    pub fn watch(&mut self) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let (reader, writer) = reflector::store();
        let stream = watcher(
            pods,
            watcher::Config::default().labels(&self.names.selector()),
        )
        .default_backoff()
        .reflect(writer);
        self.watchers
            .push(tokio::spawn(stream.for_each(|_| async {})));
        self.pods = Some(reader);
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let (reader, writer) = reflector::store();
        let stream = watcher(
            events,
            watcher::Config::default().fields("involvedObject.kind=Pod"),
        )
        .default_backoff()
        .reflect(writer);
        self.watchers
            .push(tokio::spawn(stream.for_each(|_| async {})));
        self.events = Some(reader);
    }

    /// The run's Secret and agent settings, once.
    async fn create_shared(&mut self, env: &AgentEnv<'_>) -> anyhow::Result<()> {
        if self.shared_created {
            return Ok(());
        }
        let (ca, cert, key) = env.pki.shared_agent_pem()?;
        let secret = self.objects().tls_secret(Some(&AgentTls { ca, cert, key }));
        Api::<Secret>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        let settings = super::dry_run::pod_run_settings(
            &self.names.run,
            &self.config,
            Some(self.coordinator),
            env.grace_ms,
        );
        let cm = self
            .objects()
            .agents_config_map(serde_json::to_string_pretty(&settings)?);
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &cm)
            .await?;
        self.shared_created = true;
        Ok(())
    }

    fn node_type(&self, node: &str) -> anyhow::Result<String> {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.node_type.clone())
            .ok_or_else(|| anyhow::anyhow!("node {node} is not one of the run's nodes"))
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

    fn nads(&self) -> Vec<(CephNetwork, String)> {
        [
            (CephNetwork::Public, &self.public),
            (CephNetwork::Cluster, &self.cluster),
        ]
        .into_iter()
        .filter_map(|(n, s)| s.as_ref().map(|s| (n, s.name.clone())))
        .collect()
    }

    async fn create_pod(&mut self, mut pod: Pod, agent: &str) -> anyhow::Result<()> {
        pod.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(AGENT_ANNOTATION.into(), agent.into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        Api::<Pod>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &pod)
            .await?;
        self.created_pods.push(name);
        Ok(())
    }
}

impl Scheduler for KubeBackend {
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
        // The image's root is read-only; /tmp is an emptyDir.
        std::path::PathBuf::from("/tmp")
    }

    fn control_socket(&self) -> anyhow::Result<std::net::UdpSocket> {
        let any: std::net::IpAddr = if self.coordinator.is_ipv6() {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        Ok(std::net::UdpSocket::bind((any, CONTROL_PORT))?)
    }

    async fn nodes(&mut self, _config: &RunConfig) -> anyhow::Result<Vec<NodePlan>> {
        Ok(self.nodes.clone())
    }

    async fn start(&mut self, pod: &PodPlan, env: &AgentEnv<'_>) -> anyhow::Result<PodStatus> {
        self.create_shared(env).await?;
        let node_type = self.node_type(&pod.node)?;
        match pod.role {
            Role::Server => {
                let p = self.objects().server_pod(&node_type, Some(&pod.node));
                self.create_pod(p, &pod.pod).await?;
            }
            Role::Client => {
                let index = pod
                    .pod
                    .strip_prefix(&format!("client-{}-", pod.node))
                    .ok_or_else(|| anyhow::anyhow!("unexpected client name {}", pod.pod))?
                    .to_string();
                let p = self.objects().client_pod(&pod.node, &node_type, &index);
                self.create_pod(p, &pod.pod).await?;
            }
            Role::HostCheck => {
                if self.host_sets.insert(node_type.clone()) {
                    let ds = self.objects().host_check_daemon_set(&node_type);
                    Api::<DaemonSet>::namespaced(self.client.clone(), &self.namespace)
                        .create(&PostParams::default(), &ds)
                        .await?;
                }
            }
        }
        // Addresses are the agents' to learn (network-status); they report them when they
        // connect. What goes wrong before that arrives through `facts`.
        Ok(PodStatus::Started(Vec::new()))
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
        let (Some(pods), Some(events)) = (&self.pods, &self.events) else {
            return Vec::new();
        };
        let prefix = format!("{}-", self.names.owner());
        let events: Vec<PodEvent> = events
            .state()
            .iter()
            .filter_map(|e| PodEvent::from_event(e))
            .filter(|e| e.pod.starts_with(&prefix))
            .collect();
        let nads = self.nads();
        let mut out = Vec::new();
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

    async fn cleanup(&mut self) -> anyhow::Result<()> {
        for w in self.watchers.drain(..) {
            w.abort();
        }
        let timeout = self.config.resource_timeout.as_std();
        match self.owner_role {
            OwnerRole::Ours => {
                super::cleanup::remove_run(
                    &self.client,
                    &self.namespace,
                    &self.owner.name,
                    timeout,
                )
                .await?;
            }
            OwnerRole::Outside => {
                // Agents only, never forced; the outside command deletes the owner when it has
                // the report.
                let params = DeleteParams::foreground();
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
                for name in std::mem::take(&mut self.created_pods) {
                    ignore_missing(pods.delete(&name, &params).await)?;
                }
                let sets: Api<DaemonSet> = Api::namespaced(self.client.clone(), &self.namespace);
                for node_type in std::mem::take(&mut self.host_sets) {
                    ignore_missing(
                        sets.delete(&self.names.host_check(&node_type), &params)
                            .await,
                    )?;
                }
                wait_pods_gone(&pods, &self.names, timeout).await?;
            }
        }
        Ok(())
    }
}

fn ignore_missing<T>(r: Result<T, kube::Error>) -> anyhow::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Waits, bounded, until no agent pod of the run is left (the coordinator's own pod stays).
async fn wait_pods_gone(
    pods: &Api<Pod>,
    names: &RunNames,
    timeout: Duration,
) -> anyhow::Result<()> {
    let selector = format!(
        "{},{} in (server,client,host-check)",
        names.selector(),
        super::names::COMPONENT
    );
    let since = std::time::Instant::now();
    loop {
        let left = pods
            .list(&kube::api::ListParams::default().labels(&selector))
            .await?;
        if left.items.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            since.elapsed() < timeout,
            "{} agent pod(s) of run {} still present after {timeout:?}",
            left.items.len(),
            names.run
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
