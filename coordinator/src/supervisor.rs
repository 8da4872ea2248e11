//! The `RunSupervisor`: the run's state machine. Plan → place the server → learn its addresses
//! → place host checkers and clients → probe until every client has its consecutive successes
//! on every network (or the stage deadline passes) → stop the agents → findings and verdict →
//! clean up. It owns the deadlines; the actors own the state ([`crate::roster::AgentRoster`],
//! [`crate::matrix_actor::MatrixActor`]); the control plane feeds them.
//!
//! Cleanup runs on every way out: success, failure, error, and cancellation (the caller races
//! the run against SIGINT/SIGTERM and then calls [`RunSupervisor::cleanup`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use anyhow::Context;
use multinet_proto::assignment::ProbeSettings;
use multinet_proto::config::RunConfig;
use multinet_proto::control::Role;
use multinet_proto::network::CephNetwork;

use crate::control_plane::ControlPlane;
use crate::findings::{self, AgentFact, AgentFate, RunFacts};
use crate::matrix_actor::{FailingPaths, MatrixActor, Passing, Take};
use crate::pki::RunPki;
use crate::progress::{Progress, Status};
use crate::report::{self, NodeReport, ResultAccounting, RunReport, StageTiming, Verdict};
use crate::roster::{AgentRoster, AgentView, Expect, ExpectedAgent, Snapshot, StopAll};
use crate::scheduler::{AgentEnv, NodePlan, PodPlan, PodStatus, Scheduler};

/// How long an agent may be disconnected before it counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(3);
/// How often the supervisor looks at the run.
const TICK: Duration = Duration::from_millis(100);

/// What a run needs besides the scheduler.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The run configuration (Rook's keys and multinet's).
    pub config: RunConfig,
    /// Networks under test, public first.
    pub networks: Vec<CephNetwork>,
    /// How long an agent outlives a coordinator it cannot reach before it exits by itself.
    pub agent_grace: Duration,
}

impl RunSettings {
    fn stage_deadline(&self) -> Duration {
        self.config.resource_timeout.as_std()
    }
    fn threshold(&self) -> u64 {
        u64::from(self.config.success_threshold)
    }
}

/// A run in progress: the pieces that must be cleaned up.
#[derive(Debug)]
pub struct RunSupervisor {
    run_id: String,
    run_dir: PathBuf,
    pki: RunPki,
    matrix: Addr<MatrixActor>,
    roster: Addr<AgentRoster>,
    control: ControlPlane,
    started: Instant,
    stages: Vec<StageTiming>,
    /// Fates the scheduler reported (no address, not started, exited).
    scheduler_fates: BTreeMap<String, AgentFate>,
    /// When each agent passed every network, ms since the start.
    passed_at: BTreeMap<String, u64>,
    plan: Vec<PodPlan>,
    nodes: Vec<NodePlan>,
    server_node: String,
}

fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

impl RunSupervisor {
    /// Sets up the run: id, private directory, PKI, actors, control plane. Must be called
    /// inside an actix system.
    pub fn prepare(control_bind: std::net::SocketAddr) -> anyhow::Result<Self> {
        let run_id = new_run_id();
        let run_dir = std::env::temp_dir().join(format!("multinet-{run_id}"));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&run_dir)
                .with_context(|| format!("creating {}", run_dir.display()))?;
        }
        let pki = RunPki::new(&run_id)?;
        let matrix = MatrixActor::default().start();
        let roster = AgentRoster::new(run_id.clone(), matrix.clone()).start();
        let control = ControlPlane::start(&pki, control_bind, roster.clone())?;
        Ok(Self {
            run_id,
            run_dir,
            pki,
            matrix,
            roster,
            control,
            started: Instant::now(),
            stages: Vec::new(),
            scheduler_fates: BTreeMap::new(),
            passed_at: BTreeMap::new(),
            plan: Vec::new(),
            nodes: Vec::new(),
            server_node: String::new(),
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where agents reach the control plane.
    pub fn control_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        self.control.local_addr()
    }

    /// The roster actor (tests drop connections through it).
    pub fn roster(&self) -> Addr<AgentRoster> {
        self.roster.clone()
    }

    /// The run's PKI.
    pub fn pki(&self) -> &RunPki {
        &self.pki
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn stage_done(&mut self, name: &str, since: Instant, met: bool) {
        self.stage_ended(name, since, if met { "done" } else { "deadline" });
    }

    fn stage_ended(&mut self, name: &str, since: Instant, outcome: &str) {
        self.stages.push(StageTiming {
            name: name.into(),
            duration_ms: since.elapsed().as_millis() as u64,
            outcome: outcome.into(),
        });
    }

    /// Plans the pods: the server on the first node of the server's node type, then per node a
    /// host checker (when public is tested) and the node type's clients.
    fn plan(&mut self, settings: &RunSettings) -> anyhow::Result<()> {
        let config = &settings.config;
        let server_type = config
            .server_node_type()
            .context("no node type has OSDs, so there is nowhere to place the server")?;
        let server_node = self
            .nodes
            .iter()
            .find(|n| n.node_type == server_type)
            .context("no node belongs to the server's node type")?;
        self.server_node = server_node.name.clone();
        let public = settings.networks.contains(&CephNetwork::Public);
        self.plan.push(PodPlan {
            pod: "server".into(),
            node: self.server_node.clone(),
            role: Role::Server,
            networks: settings.networks.clone(),
        });
        for node in &self.nodes {
            if public {
                self.plan.push(PodPlan {
                    pod: format!("host-{}", node.name),
                    node: node.name.clone(),
                    role: Role::HostCheck,
                    networks: Vec::new(),
                });
            }
            if config.host_check_only {
                continue;
            }
            let Some(t) = config.node_types.get(&node.node_type) else {
                continue;
            };
            for i in 0..t.osds_per_node {
                self.plan.push(PodPlan {
                    pod: format!("client-{}-osd-{i}", node.name),
                    node: node.name.clone(),
                    role: Role::Client,
                    networks: settings.networks.clone(),
                });
            }
            if public {
                for i in 0..t.other_daemons_per_node {
                    self.plan.push(PodPlan {
                        pod: format!("client-{}-other-{i}", node.name),
                        node: node.name.clone(),
                        role: Role::Client,
                        networks: vec![CephNetwork::Public],
                    });
                }
            }
        }
        Ok(())
    }

    fn expected(p: &PodPlan) -> ExpectedAgent {
        ExpectedAgent {
            pod: p.pod.clone(),
            node: p.node.clone(),
            role: p.role,
            networks: if p.role == Role::HostCheck {
                vec![CephNetwork::Public]
            } else {
                p.networks.clone()
            },
        }
    }

    async fn start_pods<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        pods: &[PodPlan],
    ) -> anyhow::Result<()> {
        self.roster
            .send(Expect(pods.iter().map(Self::expected).collect()))
            .await?;
        let coordinator = self.control.local_addr()?;
        let env = AgentEnv {
            run_id: &self.run_id,
            coordinator,
            probe: ProbeSettings {
                interval_ms: settings.config.probe_interval.as_std().as_millis() as u64,
                timeout_ms: settings.config.probe_timeout.as_std().as_millis() as u64,
                small_bytes: settings.config.payload_bytes.small,
                large_bytes: settings.config.payload_bytes.large,
            },
            grace_ms: settings.agent_grace.as_millis() as u64,
            pki: &self.pki,
            run_dir: &self.run_dir,
        };
        for pod in pods {
            let fate = match scheduler.start(pod, &env).await? {
                PodStatus::Started(_) => continue,
                PodStatus::NoAddress { network, reason } => {
                    AgentFate::NoAddress { network, reason }
                }
                PodStatus::NotStarted { reason } => AgentFate::NotStarted { reason },
            };
            self.scheduler_fates.insert(pod.pod.clone(), fate);
        }
        Ok(())
    }

    /// Agents whose process exited or whose connection has been gone for [`LOST_AFTER`].
    fn is_gone(&self, view: &AgentView) -> bool {
        self.scheduler_fates.contains_key(&view.expected.pod)
            || view.failed.is_some()
            || view
                .disconnected_at
                .is_some_and(|t| t.elapsed() >= LOST_AFTER)
    }

    async fn poll_exits<S: Scheduler>(&mut self, scheduler: &mut S) {
        let at_ms = self.elapsed_ms();
        for (pod, _reason) in scheduler.exited().await {
            self.scheduler_fates
                .entry(pod)
                .or_insert(AgentFate::Lost { at_ms });
        }
    }

    /// Runs the whole validation; returns the report. Call [`Self::cleanup`] afterwards in
    /// every case.
    pub async fn run<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
    ) -> anyhow::Result<RunReport> {
        let deadline = settings.stage_deadline();
        self.nodes = scheduler.nodes(&settings.config).await?;
        self.plan(settings)?;
        let (server, rest): (Vec<PodPlan>, Vec<PodPlan>) = self
            .plan
            .clone()
            .into_iter()
            .partition(|p| p.role == Role::Server);

        // Stage 1: the server, until it says where it listens.
        let since = Instant::now();
        self.start_pods(scheduler, settings, &server).await?;
        let mut ready = false;
        while since.elapsed() < deadline {
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            if snap.listeners.is_some() {
                ready = true;
                break;
            }
            if snap.agents.iter().any(|a| self.is_gone(a)) {
                break;
            }
            progress.show(Status {
                stage: "server".into(),
                connected: snap.agents.iter().filter(|a| a.connected).count(),
                expected: 1,
                passing: Vec::new(),
                failing_paths: 0,
            });
            tokio::time::sleep(TICK).await;
        }
        self.stage_done("server", since, ready);

        if ready {
            // Stage 2 and 3: the other agents, probing until everyone passes.
            let since = Instant::now();
            self.start_pods(scheduler, settings, &rest).await?;
            self.stage_done("place agents", since, true);
            let since = Instant::now();
            let outcome = self
                .probe_until_passed(scheduler, settings, progress, &rest, deadline)
                .await?;
            self.stage_ended("probe", since, outcome);
        } else {
            progress.note("the server did not become ready; no client was started");
        }

        // Stop the agents and take their last batches.
        let since = Instant::now();
        self.roster.do_send(StopAll);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            let snap = self.roster.send(Snapshot).await?;
            if snap.agents.iter().all(|a| !a.connected) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stage_done("stop", since, true);
        self.report(scheduler, settings).await
    }

    async fn probe_until_passed<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
        pods: &[PodPlan],
        deadline: Duration,
    ) -> anyhow::Result<&'static str> {
        let since = Instant::now();
        let pairs: Vec<(String, CephNetwork)> = pods
            .iter()
            .flat_map(|p| {
                Self::expected(p)
                    .networks
                    .into_iter()
                    .map(move |n| (p.pod.clone(), n))
            })
            .collect();
        loop {
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            let passing = self
                .matrix
                .send(Passing {
                    pairs: pairs.clone(),
                    threshold: settings.threshold(),
                })
                .await?;
            let mut per_pod: BTreeMap<&str, bool> = BTreeMap::new();
            for ((pod, _), ok) in pairs.iter().zip(&passing) {
                let e = per_pod.entry(pod.as_str()).or_insert(true);
                *e &= *ok;
            }
            let now = self.elapsed_ms();
            for (pod, ok) in &per_pod {
                if *ok {
                    self.passed_at.entry(pod.to_string()).or_insert(now);
                }
            }
            let server_gone = snap
                .agents
                .iter()
                .any(|a| a.expected.role == Role::Server && self.is_gone(a));
            let settled = snap
                .agents
                .iter()
                .filter(|a| a.expected.role != Role::Server)
                .all(|a| self.passed_at.contains_key(&a.expected.pod) || self.is_gone(a));
            let mut passing_by_net = Vec::new();
            for net in &settings.networks {
                let attached: Vec<_> = pairs
                    .iter()
                    .zip(&passing)
                    .filter(|((_, n), _)| n == net)
                    .collect();
                passing_by_net.push((
                    net.key().to_string(),
                    attached.iter().filter(|(_, ok)| **ok).count(),
                    attached.len(),
                ));
            }
            let failing_paths = self.matrix.send(FailingPaths).await?;
            progress.show(Status {
                stage: "probe".into(),
                connected: snap.agents.iter().filter(|a| a.connected).count(),
                expected: snap.agents.len(),
                passing: passing_by_net,
                failing_paths,
            });
            if server_gone {
                progress.note("the server agent is gone; stopping the run");
                return Ok("server lost");
            }
            if settled {
                return Ok("done");
            }
            if since.elapsed() >= deadline {
                return Ok("deadline");
            }
            tokio::time::sleep(TICK).await;
        }
    }

    async fn report<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
    ) -> anyhow::Result<RunReport> {
        let snap = self.roster.send(Snapshot).await?;
        let matrix = self.matrix.send(Take).await?;
        let fact = |view: &AgentView| -> AgentFact {
            let pod = &view.expected.pod;
            let fate = if let Some(f) = self.scheduler_fates.get(pod) {
                if matches!(f, AgentFate::Lost { .. }) && !view.ever_connected {
                    AgentFate::NeverConnected
                } else {
                    f.clone()
                }
            } else if let Some(reason) = &view.failed {
                AgentFate::Failed {
                    reason: reason.clone(),
                }
            } else if !view.ever_connected {
                AgentFate::NeverConnected
            } else if view
                .disconnected_at
                .is_some_and(|t| t.elapsed() >= LOST_AFTER)
            {
                AgentFate::Lost {
                    at_ms: self.elapsed_ms().saturating_sub(
                        view.disconnected_at
                            .map_or(0, |t| t.elapsed().as_millis() as u64),
                    ),
                }
            } else {
                AgentFate::Reported
            };
            AgentFact {
                pod: pod.clone(),
                node: view.expected.node.clone(),
                role: view.expected.role,
                networks: view.expected.networks.clone(),
                fate,
                passed_at_ms: self.passed_at.get(pod).copied(),
            }
        };
        let mut server = None;
        let mut agents = Vec::new();
        for view in &snap.agents {
            let f = fact(view);
            if view.expected.role == Role::Server {
                server = Some(f)
            } else {
                agents.push(f)
            }
        }
        // Planned pods the roster never heard of (server never ready: clients not started).
        for p in &self.plan {
            if !snap.agents.iter().any(|a| a.expected.pod == p.pod) {
                let e = Self::expected(p);
                agents.push(AgentFact {
                    pod: e.pod,
                    node: e.node,
                    role: e.role,
                    networks: e.networks,
                    fate: AgentFate::NotStarted {
                        reason: "not started: the server never became ready".into(),
                    },
                    passed_at_ms: None,
                });
            }
        }
        let server = server.context("the server was never planned")?;
        let server_ok = server.fate == AgentFate::Reported;
        let facts = RunFacts {
            networks: settings.networks.clone(),
            server_node: self.server_node.clone(),
            nodes: self.nodes.iter().map(|n| n.name.clone()).collect(),
            server,
            agents,
            success_threshold: settings.threshold(),
            flaky_threshold_ms: settings.config.flaky_threshold.as_std().as_millis() as u64,
        };
        // Server-not-started pods are consequences, not scheduling problems of their own.
        let mut found = findings::evaluate(&matrix, &facts);
        if !server_ok {
            found.retain(|f| f.kind != findings::FindingKind::Scheduling);
        }
        let clients: Vec<&AgentFact> = facts
            .agents
            .iter()
            .filter(|a| a.role == Role::Client)
            .collect();
        let hosts: Vec<&AgentFact> = facts
            .agents
            .iter()
            .filter(|a| a.role == Role::HostCheck)
            .collect();
        let produced: u64 = snap.agents.iter().map(|a| a.produced).sum();
        let all_passed = server_ok && facts.agents.iter().all(|a| a.passed_at_ms.is_some());
        Ok(RunReport {
            verdict: Verdict::decide(&found, all_passed),
            backend: scheduler.backend().into(),
            validates_real_network: scheduler.validates_real_network(),
            run_id: self.run_id.clone(),
            networks: settings.networks.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeReport {
                    name: n.name.clone(),
                    node_type: n.node_type.clone(),
                    server: n.name == self.server_node,
                })
                .collect(),
            server_node: self.server_node.clone(),
            findings: found,
            paths: report::paths(&matrix),
            expected_clients: clients.len(),
            started_clients: clients
                .iter()
                .filter(|a| {
                    !matches!(
                        a.fate,
                        AgentFate::NotStarted { .. } | AgentFate::NoAddress { .. }
                    )
                })
                .count(),
            passed_clients: clients.iter().filter(|a| a.passed_at_ms.is_some()).count(),
            host_checkers: report::HostCheckers {
                expected: hosts.len(),
                passed: hosts.iter().filter(|a| a.passed_at_ms.is_some()).count(),
            },
            expected_agents: self.plan.len(),
            connected_agents: snap.agents.iter().filter(|a| a.ever_connected).count(),
            refused_connections: snap.refused.clone(),
            results: ResultAccounting {
                produced,
                unaccounted: produced.saturating_sub(matrix.recorded() + matrix.lost()),
                recorded: matrix.recorded(),
                lost: matrix.lost(),
                duplicate_batches: snap.duplicate_batches,
                sequence_gaps: snap.sequence_gaps,
            },
            stages: self.stages.clone(),
            duration_ms: self.elapsed_ms(),
            agents: std::iter::once(facts.server.clone())
                .chain(facts.agents.iter().cloned())
                .collect(),
        })
    }

    /// Stops the agents, closes the control plane, and removes everything the run created.
    /// Safe to call more than once.
    pub async fn cleanup<S: Scheduler>(&mut self, scheduler: &mut S) -> anyhow::Result<()> {
        self.roster.do_send(StopAll);
        let result = scheduler.cleanup().await;
        self.control.close().await;
        if self.run_dir.exists() {
            std::fs::remove_dir_all(&self.run_dir)
                .with_context(|| format!("removing {}", self.run_dir.display()))?;
        }
        result
    }
}
