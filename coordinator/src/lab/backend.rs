//! The `lab` backend: a [`Lab`] (network namespaces as nodes and pods, real CNI plugins) as a
//! [`Scheduler`]. Node types select nodes by labels and taints exactly as in Kubernetes; pods
//! get their addresses from the CNI result; agents run inside their pod namespaces, host
//! checkers inside the node namespaces; the coordinator's control plane lives in the lab's
//! control namespace.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use multinet_proto::config::RunConfig;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;

use crate::backend::agents::{AgentProcesses, KillAgent};
use crate::lab::build::{Lab, PodNet};
use crate::lab::topology::node_matches;
use crate::scheduler::{AgentEnv, NodePlan, PodStatus, Scheduler};

/// Why the lab backend could not do what the run asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Working on the lab failed (binding in its control namespace, adding a pod, removing).
    #[error(transparent)]
    Lab(#[from] crate::lab::build::Error),
    /// A lab operation panicked in its blocking thread.
    #[error("a lab operation failed: {0}")]
    Panicked(#[source] tokio::task::JoinError),
    /// A node matches two node types (Kubernetes would place both types' pods on it).
    #[error(
        "node types must not overlap: node {node} matches node type {first:?} and node type {second:?}"
    )]
    NodeTypesOverlap {
        /// The node.
        node: String,
        /// The first node type it matches.
        first: String,
        /// The second.
        second: String,
    },
    /// No node of the lab matches a node type of the run configuration.
    #[error("no node of the lab matches any node type of the run configuration")]
    NoNodeMatches,
    /// An agent's files could not be written.
    #[error(transparent)]
    Agent(#[from] crate::backend::agents::Error),
    /// The kernel's neighbour table cannot hold the run's networks under test (checked
    /// before any pod is placed).
    #[error(transparent)]
    NeighbourTable(#[from] Box<crate::lab::neighbours::TooSmall>),
}

/// What a run leaves of its lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing: the lab was built for the run and goes with it.
    Nothing,
    /// The lab without the run's pods: it was up before the run (`--lab NAME`).
    Lab,
    /// Everything, pods included, for a look after the run (`--keep`).
    Everything,
}

/// The backend.
#[derive(Debug)]
pub struct LabBackend {
    /// Shared with the blocking threads that place pods (each holding a read lock while it
    /// works): a run cut short (a signal) while pods are being placed leaves that work
    /// running, and cleanup, taking the write lock ([`LabBackend::on_lab`]), waits for it
    /// before it removes the lab.
    lab: Arc<RwLock<Lab>>,
    agents: AgentProcesses,
    /// What cleanup leaves.
    keep: Keep,
    /// The scheduled faults' timer, once probing began; stopped by cleanup.
    schedule: Option<tokio::task::JoinHandle<()>>,
    /// Scheduled fault events done (for a checkpoint).
    schedule_done: Arc<AtomicUsize>,
    /// A resumed run's: the control port to bind again, and how far into the probing it
    /// resumes (the scheduled faults go on from there).
    resumed: Option<Resumed>,
    /// The namespace of each pod placed with an agent (a bench starts its references there).
    namespaces: std::collections::BTreeMap<String, String>,
}

/// Where a resumed run takes the lab up ([`LabBackend::resume`]); the scheduled fault
/// events it goes on from are the `schedule_done` it starts with.
#[derive(Debug, Clone, Copy)]
struct Resumed {
    control_port: u16,
    probing_elapsed: std::time::Duration,
}

impl LabBackend {
    /// Runs on `lab`, applying `kills` (the topology's kill-agent faults, or the command
    /// line's); `keep` says what cleanup leaves.
    pub fn new(lab: Lab, agent_command: Vec<String>, kills: Vec<KillAgent>, keep: Keep) -> Self {
        Self {
            lab: Arc::new(RwLock::new(lab)),
            agents: AgentProcesses::new(agent_command, kills),
            keep,
            schedule: None,
            schedule_done: Arc::default(),
            resumed: None,
            namespaces: Default::default(),
        }
    }

    /// Continues a run whose coordinator died: `agents` adopted, the control plane bound on
    /// `control_port` again, the scheduled faults resumed after the `schedule_done` first
    /// events at `probing_elapsed` into the probing (events whose time passed while the
    /// coordinator was away are done at once).
    pub fn resume(
        lab: Lab,
        agents: AgentProcesses,
        keep: Keep,
        control_port: u16,
        probing_elapsed: std::time::Duration,
        schedule_done: usize,
    ) -> Self {
        Self {
            lab: Arc::new(RwLock::new(lab)),
            agents,
            keep,
            schedule: None,
            schedule_done: Arc::new(AtomicUsize::new(schedule_done)),
            resumed: Some(Resumed {
                control_port,
                probing_elapsed,
            }),
            namespaces: Default::default(),
        }
    }

    /// The lab, also after a lab operation panicked (its state is still what must be removed).
    fn lab(&self) -> RwLockReadGuard<'_, Lab> {
        self.lab.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` on the lab alone (after any placement still at work) in a blocking
    /// thread: removing pods takes its time, and meanwhile the runtime's thread must go on.
    async fn on_lab<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Lab) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let lab = self.lab.clone();
        tokio::task::spawn_blocking(move || {
            let mut lab = lab.write().unwrap_or_else(PoisonError::into_inner);
            work(&mut lab)
        })
        .await
        .map_err(Error::Panicked)
    }

    /// Places `pods` (index in the run's list, node, networks) on blocking threads, nodes in
    /// parallel ([`crate::lab::build::nodes_at_once`] at a time; a node's pods one after
    /// another, as a kubelet does), and hands each placed pod to `placed` as soon as it is
    /// (the agent starts while other pods are still being placed). The first error stops the
    /// placing of pods not yet begun and is returned once the pods at work are done.
    async fn place(
        &mut self,
        pods: Vec<(usize, String, Vec<CephNetwork>)>,
        mut placed: impl FnMut(&mut Self, usize, PodNet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let lab = self.lab.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let placing = tokio::task::spawn_blocking(move || {
            let lab = lab.read().unwrap_or_else(PoisonError::into_inner);
            crate::lab::build::per_node(
                &pods,
                |(_, node, _)| node.clone(),
                |node_pods| {
                    for (i, node, networks) in node_pods {
                        // The run gave up (an error, or the run was cut short and nobody
                        // listens any more): pods not yet begun are not placed.
                        if stopped.load(Ordering::Relaxed) || tx.is_closed() {
                            return;
                        }
                        let _ = tx.send((*i, lab.add_pod(node, networks)));
                    }
                },
            );
        });
        let mut first_error = None;
        while let Some((i, result)) = rx.recv().await {
            if first_error.is_some() {
                continue;
            }
            if let Err(e) = result
                .map_err(Error::from)
                .and_then(|net| placed(self, i, net))
            {
                stop.store(true, Ordering::Relaxed);
                first_error = Some(e);
            }
        }
        placing.await.map_err(Error::Panicked)?;
        first_error.map_or(Ok(()), Err)
    }

    /// Starts the agent of a pod that was placed.
    fn start_placed(
        &mut self,
        pod: &AgentIdentity,
        env: &AgentEnv<'_>,
        net: PodNet,
    ) -> Result<PodStatus, Error> {
        if let Some((network, reason)) = net.failed {
            return Ok(PodStatus::NoAddress { network, reason });
        }
        self.namespaces.insert(pod.pod.clone(), net.ns.clone());
        Ok(
            match self
                .agents
                .start(pod, env, net.addresses.clone(), &netns_exec(&net.ns))?
            {
                Ok(()) => PodStatus::Started(net.addresses),
                Err(reason) => PodStatus::NotStarted { reason },
            },
        )
    }

    /// Starts a host checker in its node's namespace (nothing to place).
    fn start_host_check(
        &mut self,
        pod: &AgentIdentity,
        env: &AgentEnv<'_>,
    ) -> Result<PodStatus, Error> {
        // A read lock: placements hold read locks too, so this does not wait for them.
        let ns = self.lab().node_namespace(&pod.node);
        Ok(
            match self.agents.start(pod, env, Vec::new(), &netns_exec(&ns))? {
                Ok(()) => PodStatus::Started(Vec::new()),
                Err(reason) => PodStatus::NotStarted { reason },
            },
        )
    }
}

/// What a bench (`multinet bench network`) asks of the lab besides a run's placement.
impl LabBackend {
    /// Places pods that run no agent — a bench's clients, one per entry (node, networks) —
    /// exactly as a run's pods are placed (the same CNI ADDs, nodes in parallel); each pod's
    /// networking in the order asked. They go with the run's pods at cleanup.
    ///
    /// # Errors
    ///
    /// A pod could not be placed (the lab's error).
    pub async fn place_without_agents(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<PodNet>, Error> {
        let count = pods.len();
        let mut placed: Vec<Option<PodNet>> = vec![None; count];
        let indexed = pods
            .into_iter()
            .enumerate()
            .map(|(i, (node, networks))| (i, node, networks))
            .collect();
        self.place(indexed, |_, i, net| {
            placed[i] = Some(net);
            Ok(())
        })
        .await?;
        Ok(placed.into_iter().flatten().collect())
    }

    /// The pid of pod `pod`'s agent, while it runs.
    pub fn agent_pid(&self, pod: &str) -> Option<i32> {
        self.agents.pid(pod)
    }

    /// The network namespace of pod `pod` (placed with an agent).
    pub fn pod_namespace(&self, pod: &str) -> Option<&str> {
        self.namespaces.get(pod).map(String::as_str)
    }

    /// The lab's state directory (a bench's scratch files go there, removed with the lab).
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.lab().state_dir_path()
    }
}

/// The command prefix that runs an agent inside namespace `ns`: util-linux's `nsenter` enters
/// the network namespace and nothing else. (`ip netns exec` also gives each process a mount
/// namespace of its own, with `/sys` remounted; every namespace the lab mounts in the shared
/// `/run/netns` afterwards is then copied into each agent's mount namespace, a cost that grows
/// with agents × pods and dominated placing 190 pods. An agent reads nothing under `/sys`.)
pub fn netns_exec(ns: &str) -> Vec<String> {
    vec![
        "nsenter".into(),
        format!("--net={}/{ns}", crate::lab::net::NETNS_DIR),
        "--".into(),
    ]
}

impl Scheduler for LabBackend {
    type Error = Error;

    fn backend(&self) -> &'static str {
        "lab"
    }

    fn validates_real_network(&self) -> bool {
        true
    }

    fn control_socket(&self) -> Result<UdpSocket, Error> {
        let port = self.resumed.map_or(0, |r| r.control_port);
        Ok(self.lab().control_socket(port)?)
    }

    /// Inside the lab's state, so `lab down` removes it also after a killed run.
    fn run_root(&self) -> std::path::PathBuf {
        self.lab().state_dir_path()
    }

    fn server_node(&self) -> Option<String> {
        self.lab().topology.server_node.clone()
    }

    async fn nodes(&mut self, config: &RunConfig) -> Result<Vec<NodePlan>, Error> {
        let mut plans = Vec::new();
        for node in &self.lab().topology.nodes {
            let types: Vec<&String> = config
                .node_types
                .iter()
                .filter(|(_, t)| node_matches(node, &t.placement))
                .map(|(name, _)| name)
                .collect();
            match types.as_slice() {
                [] => {}
                [one] => plans.push(NodePlan {
                    name: node.name.clone(),
                    node_type: (*one).clone(),
                }),
                [first, second, ..] => {
                    return Err(Error::NodeTypesOverlap {
                        node: node.name.clone(),
                        first: (*first).clone(),
                        second: (*second).clone(),
                    });
                }
            }
        }
        if plans.is_empty() {
            return Err(Error::NoNodeMatches);
        }
        Ok(plans)
    }

    async fn start(&mut self, pod: &AgentIdentity, env: &AgentEnv<'_>) -> Result<PodStatus, Error> {
        Ok(self
            .start_all(std::slice::from_ref(pod), env)
            .await?
            .remove(0))
    }

    /// Host checkers start at once; the other pods are placed nodes in parallel, each agent
    /// started as soon as its pod is placed.
    async fn start_all(
        &mut self,
        pods: &[AgentIdentity],
        env: &AgentEnv<'_>,
    ) -> Result<Vec<PodStatus>, Error> {
        // One kernel holds every node's neighbour entries: a run past its cap would fail
        // paths that work (`lab::neighbours`).
        {
            use crate::lab::neighbours;
            neighbours::check(
                &neighbours::needs(&self.lab().topology, pods),
                neighbours::capacity,
            )?;
        }
        let mut statuses: Vec<Option<PodStatus>> = vec![None; pods.len()];
        let mut to_place = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            if pod.role == Role::HostCheck {
                statuses[i] = Some(self.start_host_check(pod, env)?);
            } else {
                to_place.push((i, pod.node.clone(), pod.attached_networks().to_vec()));
            }
        }
        self.place(to_place, |backend, i, net| {
            statuses[i] = Some(backend.start_placed(&pods[i], env, net)?);
            Ok(())
        })
        .await?;
        Ok(statuses
            .into_iter()
            .zip(pods)
            .map(|(status, pod)| {
                status.unwrap_or_else(|| PodStatus::NotStarted {
                    reason: format!("pod {} was not placed", pod.pod),
                })
            })
            .collect())
    }

    async fn exited(&mut self) -> Vec<(String, String)> {
        self.agents.exited()
    }

    /// Starts the scheduled faults' timer: each fault on the switch's ports applied `at` into
    /// the probing and removed `for` later, in the switch namespace. A fault that cannot be
    /// applied or removed is said on stderr (the run goes on; its report shows what the
    /// network did). Scheduled kill-agent faults count from now too; the agents' processes
    /// apply them ([`AgentProcesses::exited`]).
    async fn probing_began(&mut self) {
        self.agents.probing_began();
        let (topology, switch_ns, dir) = {
            let lab = self.lab();
            (
                lab.topology.clone(),
                Lab::switch_ns(&lab.topology.name),
                lab.state_dir_path(),
            )
        };
        if topology.scheduled.is_empty() {
            return;
        }
        let mut events: Vec<(std::time::Duration, usize, bool)> = Vec::new();
        for (index, s) in topology.scheduled.iter().enumerate() {
            if !s.fault.comes_and_goes() {
                continue;
            }
            events.push((s.at, index, true));
            if let Some(d) = s.duration {
                events.push((s.at + d, index, false));
            }
        }
        // Removals before applications at the same time: a fault that ends as another begins.
        events.sort_by_key(|(at, index, apply)| (*at, *apply, *index));
        let elapsed = self
            .resumed
            .map_or(std::time::Duration::ZERO, |r| r.probing_elapsed);
        // Events done before: none in a new run, the checkpoint's in a resumed one.
        let skip = self.schedule_done.load(Ordering::SeqCst);
        let now = tokio::time::Instant::now();
        let begun = now.checked_sub(elapsed).unwrap_or(now);
        let topology = Arc::new(topology);
        let events_done = self.schedule_done.clone();
        self.schedule = Some(tokio::spawn(async move {
            for (at, index, apply) in events.into_iter().skip(skip) {
                tokio::time::sleep_until(begun + at).await;
                let (topology, switch_ns, dir) = (topology.clone(), switch_ns.clone(), dir.clone());
                let done = tokio::task::spawn_blocking(move || {
                    if apply {
                        crate::lab::faults::apply_scheduled(&topology, index, &switch_ns, &dir)
                    } else {
                        crate::lab::faults::remove_scheduled(&topology, index, &switch_ns)
                    }
                })
                .await;
                let what = if apply { "applying" } else { "removing" };
                match done {
                    Ok(Ok(())) => tracing::info!(
                        fault = index,
                        "{what} scheduled fault {index} at {}ms",
                        at.as_millis()
                    ),
                    Ok(Err(e)) => {
                        tracing::warn!("{what} scheduled fault {index}: {}", crate::exit::chain(&e))
                    }
                    Err(e) => tracing::warn!("{what} scheduled fault {index}: {e}"),
                }
                events_done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    fn checkpoint(&self) -> Option<crate::checkpoint::BackendState> {
        Some(crate::checkpoint::BackendState::Lab {
            lab: self.lab().topology.name.clone(),
            keep_lab: self.keep == Keep::Lab,
            keep_everything: self.keep == Keep::Everything,
            agents: self.agents.records(),
            schedule_done: self.schedule_done.load(Ordering::SeqCst),
        })
    }

    async fn cleanup(&mut self) -> Result<(), Error> {
        if let Some(timer) = self.schedule.take() {
            timer.abort();
            if self.keep == Keep::Lab {
                // The lab stays as it was: no scheduled fault outlives the run (one never
                // applied has no table, which is no error here).
                let _ = self
                    .on_lab(|lab| {
                        let sw = Lab::switch_ns(&lab.topology.name);
                        for index in 0..lab.topology.scheduled.len() {
                            let _ = crate::lab::faults::remove_scheduled(&lab.topology, index, &sw);
                        }
                    })
                    .await;
            }
        }
        self.agents.stop_all().await;
        match self.keep {
            Keep::Nothing => Ok(self.on_lab(|lab| Lab::down(&lab.topology.name)).await??),
            Keep::Lab => Ok(self.on_lab(Lab::remove_pods).await??),
            Keep::Everything => Ok(()),
        }
    }
}
