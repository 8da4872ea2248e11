//! The `RunSupervisor`: the run's state machine. Plan → place the server → learn its addresses
//! → place host checkers and clients → probe until every client has its consecutive successes
//! on every network, or the verdict cannot change any more (the early verdict, `decide`), or
//! the stage deadline passes → stop the agents → findings and verdict →
//! clean up. It owns the deadlines; the actors own the state ([`crate::roster::AgentRoster`],
//! [`crate::matrix_actor::MatrixActor`]); the control plane feeds them. Its decisions — is an
//! agent gone, is a stage over and how, what became of each agent — are pure functions of
//! what it was told and of the time it passes in (`decide`); this module does the asking and
//! reads the clock.
//!
//! Cleanup runs on every way out: success, failure, error, and cancellation (the caller races
//! the run against SIGINT/SIGTERM and then calls [`RunSupervisor::cleanup`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use multinet_proto::assignment::{NetworkAddress, ProbeSettings};
use multinet_proto::config::RunConfig;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;

use crate::control_plane::{ControlPlane, connection_limit_for};
use crate::findings::AgentFate;
use crate::matrix_actor::{FailingPaths, MatrixActor, Standing, Standings, WithMetrics};
use crate::mesh::Targeting;
use crate::metrics::{PathMetrics, RunMetrics};
use crate::outage::OutageRule;
use crate::pki::RunPki;
use crate::progress::{Progress, Status};
use crate::report::{RunReport, StageTiming};
use crate::roster::{
    AgentRoster, Expect, ProcessExited, ReleaseTargets, Snapshot, StopAll, Target,
};
use crate::scheduler::{AgentEnv, NodePlan, PodStatus, Scheduler};

mod bench;
mod decide;
mod outcome;
mod plan;
mod resume;

pub use bench::ServerPlaced;
use decide::{EarlyVerdict, Moment, ProbeStage, ServerStage, fate_of};

/// Why a run could not be carried out (a run that was carried out and failed is a report).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run's private directory could not be created or removed.
    #[error("{action} {}", .path.display())]
    RunDir {
        /// `creating` or `removing`.
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run's PKI could not be made.
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    /// The control plane could not start.
    #[error(transparent)]
    ControlPlane(#[from] crate::control_plane::Error),
    /// One of the run's actors (roster, matrix) stopped before the run ended — a bug.
    #[error("an actor of the run stopped: {0}")]
    Actor(#[from] actix::MailboxError),
    /// No pod can be placed where the run configuration says (see the message).
    #[error("{0}")]
    Placement(&'static str),
    /// The backend's topology puts the server on a node that no node type selects.
    #[error("the server's node {0} runs no test pods (no node type selects it)")]
    ServerNodeUnused(String),
    /// The backend failed (it says what it was doing).
    #[error(transparent)]
    Backend(crate::run::BoxError),
    /// The soak's checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::Error),
    /// A checkpoint's matrix cannot be resumed from.
    #[error("the checkpoint's matrix: {0}")]
    Matrix(#[from] crate::matrix::state::Error),
}

/// The result of a supervisor operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Error::Backend` from a backend's own error.
fn backend<E: std::error::Error + Send + Sync + 'static>(error: E) -> Error {
    Error::Backend(Box::new(error))
}
/// How often the supervisor looks at the run.
const TICK: Duration = Duration::from_millis(100);

/// How long stopped agents get to send their last batches and hang up.
const STOP_PATIENCE: Duration = Duration::from_secs(2);

/// What a run needs besides the scheduler.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The run configuration (Rook's keys and multinet's).
    pub config: RunConfig,
    /// Networks under test, public first.
    pub networks: Vec<CephNetwork>,
    /// How long an agent outlives a coordinator it cannot reach before it exits by itself.
    pub agent_grace: Duration,
    /// Whether the run keeps probing after its first pass, and how long.
    pub soak: Soak,
    /// Cancelled to end a soak early (SIGINT/SIGTERM): the probing then ends as if its time
    /// were up, and the report covers what was measured.
    pub stop: tokio_util::sync::CancellationToken,
    /// Set by the supervisor once probing has begun: from then on a soak's signal ends the
    /// run with a report ([`RunSettings::stop`]); before, it ends the run at once.
    pub probing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The live metrics the run updates, when it serves them (`--metrics-addr`).
    pub metrics: Option<RunMetrics>,
    /// Where a soak's interim reports go every `reportInterval` (`None`: the report is made
    /// at the end only).
    pub interim: Option<InterimReports>,
    /// Asked on a soak's signal, before the soak is ended: a coordinator whose pod is being
    /// replaced leaves the run to the new pod instead ([`HandOver`]).
    pub hand_over: Option<HandOver>,
}

/// Asked when a soak's coordinator gets SIGTERM: `Some(why)` when the run goes on without
/// this process — its Kubernetes Job's pod is being deleted (evicted, drained) while the run
/// and its Job are not, and a checkpoint is stored for the pod that replaces it — so the
/// process leaves at once instead of ending the soak; `None`: the signal ends the soak.
#[derive(Clone)]
pub struct HandOver(pub std::sync::Arc<AskHandOver>);

/// What [`HandOver`] calls.
pub type AskHandOver = dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>
    + Send
    + Sync;

impl std::fmt::Debug for HandOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandOver")
    }
}

/// Takes a soak's interim report (`in_progress: true`) and writes it where the final report
/// will go; an error is said and the soak goes on.
#[derive(Clone)]
pub struct InterimReports(pub std::sync::Arc<WriteInterim>);

/// What [`InterimReports`] calls: writes one report, or says why it could not.
pub type WriteInterim = dyn Fn(&crate::report::RunReport) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for InterimReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InterimReports")
    }
}

/// How long a run keeps probing, counted from the start of probing: after the first pass
/// every client goes on probing every network at the probe interval until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Soak {
    /// No soak: the run ends with its first-pass verdict (Rook's tester's run).
    #[default]
    Off,
    /// Probing lasts this long (`soakDuration`, `--duration 6h`).
    For(Duration),
    /// Until stopped (`--duration` without a value, or `0`): SIGINT or SIGTERM ends it.
    UntilStopped,
}

impl Soak {
    /// `soakDuration` of a configuration: zero is no soak.
    pub fn from_config(config: &RunConfig) -> Self {
        let d = config.soak_duration.as_std();
        if d.is_zero() { Soak::Off } else { Soak::For(d) }
    }
}

impl RunSettings {
    fn stage_deadline(&self) -> Duration {
        self.config.resource_timeout.as_std()
    }
    fn threshold(&self) -> u64 {
        u64::from(self.config.success_threshold)
    }
    /// The outage rule of this run's probing ([`crate::outage`]).
    pub fn outage_rule(&self) -> OutageRule {
        OutageRule::new(
            self.config.probe_interval.as_std(),
            self.config.probe_timeout.as_std(),
        )
    }
    fn early_verdict(&self) -> EarlyVerdict {
        EarlyVerdict {
            window: self.config.flaky_threshold.as_std(),
            min_failures: self.threshold(),
        }
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
    /// The run's start: its clock (results, stages, outage windows) counts from here.
    started: Instant,
    /// The same instant on the wall clock, Unix ms.
    started_unix_ms: u64,
    stages: Vec<StageTiming>,
    /// Fates the scheduler reported (no address, not started, exited).
    scheduler_fates: BTreeMap<String, AgentFate>,
    /// How agents' processes or pods ended, as the backend saw it.
    exit_reasons: BTreeMap<String, String>,
    /// When each agent passed every network, ms since the start.
    passed_at: BTreeMap<String, u64>,
    /// Agents that had failed beyond doubt at the last look (the early verdict).
    failed_for_certain: BTreeSet<String>,
    /// Agents stranded at the last look of the probe stage, with the networks they are
    /// stranded on ([`Moment::stranded`]), until they pass (in the soak that follows): the
    /// report's `not_validated` reads it, so the checkpoint keeps it.
    stranded: BTreeMap<String, Vec<CephNetwork>>,
    /// The addresses the backend handed each pod out, where it knows them when it starts it
    /// (local, lab): an agent that never connects is still accounted for.
    placed_addresses: BTreeMap<String, Vec<NetworkAddress>>,
    /// Every agent the run wants, the server first.
    plan: Vec<AgentIdentity>,
    nodes: Vec<NodePlan>,
    /// The single server's node; in a mesh, the node a single run would have put it on.
    server_node: String,
    /// Which responders each node's agents probe (a mesh's; the single server otherwise).
    targeting: Targeting,
    /// When probing began, ms since the start (a soak's time counts from it).
    probing_began_ms: Option<u64>,
    /// When this coordinator process's soak stage began, ms since the start.
    soak_began_ms: Option<u64>,
    /// The coordinator's restarts in this run (a resumed run's).
    restarts: Vec<crate::checkpoint::CoordinatorRestart>,
    /// A mesh's responders said to be gone (and not yet said to be back), by pod, with when
    /// they were first seen gone.
    responders_away: BTreeMap<String, Instant>,
    /// The servers' (a mesh's responders') listeners at the last look at the run: a change
    /// since is a responder listening anew ([`decide::relistened`]).
    listening: BTreeMap<String, crate::mesh::Responder>,
    /// Clients and host checkers that passed before a responder they probe came back or
    /// listened anew, and must pass again (on its listeners now) before the probe stage
    /// counts them settled.
    must_pass_again: BTreeSet<String>,
    /// Clients and host checkers that passed and were gone when a responder they probe
    /// listened anew: their pass stands while they stay gone; one that comes back joins
    /// `must_pass_again` (it probes the new listeners; it passed on the old). Only the probe
    /// stage reads it (in a soak a pass stands), so no checkpoint keeps it.
    pass_again_when_back: BTreeSet<String>,
}

/// Each pod's (pod, network) pairs, what the matrix's standings are asked of.
fn pod_networks(pods: &[AgentIdentity]) -> Vec<(String, CephNetwork)> {
    pods.iter()
        .flat_map(|p| p.networks.iter().map(move |n| (p.pod.clone(), *n)))
        .collect()
}

/// The directory of run `run_id` under `run_root` (`multinet-ID`): its PKI files, agents'
/// logs and a soak's checkpoint.
pub fn run_dir(run_root: &std::path::Path, run_id: &str) -> std::path::PathBuf {
    run_root.join(format!("multinet-{run_id}"))
}

/// The wall clock now, Unix ms (what the run's clock counts from, and a resumed run finds
/// its place on it by).
pub(crate) fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A new run id: 10 lowercase hex digits.
pub fn new_run_id() -> String {
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
    pub fn prepare(
        control_socket: std::net::UdpSocket,
        run_root: &std::path::Path,
    ) -> Result<Self> {
        Self::prepare_with_id(control_socket, run_root, new_run_id())
    }

    /// [`Self::prepare`] for a run whose id the backend chose (a cluster's objects carry it).
    pub fn prepare_with_id(
        control_socket: std::net::UdpSocket,
        run_root: &std::path::Path,
        run_id: String,
    ) -> Result<Self> {
        let run_dir = run_dir(run_root, &run_id);
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&run_dir)
                .map_err(|source| Error::RunDir {
                    action: "creating",
                    path: run_dir.clone(),
                    source,
                })?;
        }
        let pki = RunPki::new(&run_id)?;
        let started = Instant::now();
        let started_unix_ms = unix_ms_now();
        let matrix = MatrixActor::new(started_unix_ms).start();
        let roster = AgentRoster::new(run_id.clone(), matrix.clone())
            .with_clock(started)
            .start();
        let control = ControlPlane::start(&pki, control_socket, roster.clone())?;
        Ok(Self {
            run_id,
            run_dir,
            pki,
            matrix,
            roster,
            control,
            started,
            started_unix_ms,
            stages: Vec::new(),
            scheduler_fates: BTreeMap::new(),
            exit_reasons: BTreeMap::new(),
            passed_at: BTreeMap::new(),
            failed_for_certain: BTreeSet::new(),
            stranded: BTreeMap::new(),
            placed_addresses: BTreeMap::new(),
            plan: Vec::new(),
            nodes: Vec::new(),
            server_node: String::new(),
            targeting: Targeting::Single,
            probing_began_ms: None,
            soak_began_ms: None,
            restarts: Vec::new(),
            responders_away: BTreeMap::new(),
            listening: BTreeMap::new(),
            must_pass_again: BTreeSet::new(),
            pass_again_when_back: BTreeSet::new(),
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where agents reach the control plane.
    pub fn control_addr(&self) -> Result<std::net::SocketAddr> {
        Ok(self.control.local_addr()?)
    }

    /// The roster actor (tests drop connections through it).
    pub fn roster(&self) -> Addr<AgentRoster> {
        self.roster.clone()
    }

    /// The matrix actor (tests ask it how an agent's paths stand while the run goes).
    pub fn matrix(&self) -> Addr<MatrixActor> {
        self.matrix.clone()
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

    async fn start_pods<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        pods: &[AgentIdentity],
    ) -> Result<()> {
        self.roster.send(Expect(pods.to_vec())).await?;
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
        let statuses = scheduler.start_all(pods, &env).await.map_err(backend)?;
        for (pod, status) in pods.iter().zip(statuses) {
            if let PodStatus::Started(addresses) = &status
                && !addresses.is_empty()
            {
                self.placed_addresses
                    .insert(pod.pod.clone(), addresses.clone());
            }
            if let Some(fate) = fate_of(status) {
                self.scheduler_fates.insert(pod.pod.clone(), fate);
            }
        }
        Ok(())
    }

    /// The run as the supervisor knows it `now`, for [`decide`]'s decisions.
    fn at(&self, now: Instant) -> Moment<'_> {
        Moment {
            scheduler_fates: &self.scheduler_fates,
            passed_at: &self.passed_at,
            failed_for_certain: &self.failed_for_certain,
            stranded: &self.stranded,
            must_pass_again: &self.must_pass_again,
            started: self.started,
            now,
        }
    }

    async fn poll_exits<S: Scheduler>(&mut self, scheduler: &mut S) {
        let at_ms = self.elapsed_ms();
        for (pod, status) in scheduler.facts().await {
            if let Some(fate) = fate_of(status) {
                self.scheduler_fates.entry(pod).or_insert(fate);
            }
        }
        for (pod, reason) in scheduler.exited().await {
            // The agent is away from now, not from when its connection times out.
            self.roster.do_send(ProcessExited(pod.clone()));
            self.exit_reasons.insert(pod.clone(), reason);
            // A restarted agent's process may exit again: its newest exit counts.
            let fate = self
                .scheduler_fates
                .entry(pod)
                .or_insert(AgentFate::Lost { at_ms });
            if matches!(fate, AgentFate::Lost { .. }) {
                *fate = AgentFate::Lost { at_ms };
            }
        }
    }

    /// Runs the whole validation; returns the report. Call [`Self::cleanup`] afterwards in
    /// every case.
    pub async fn run<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
    ) -> Result<RunReport> {
        let deadline = settings.stage_deadline();
        self.nodes = scheduler.nodes(&settings.config).await.map_err(backend)?;
        self.plan(settings, scheduler.server_node())?;
        self.roster.send(Target(self.targeting.clone())).await?;
        self.attach_metrics(settings).await?;
        self.metrics_stage(settings, "server");
        self.control
            .set_connection_limit(connection_limit_for(self.plan.len()));
        let (server, rest): (Vec<AgentIdentity>, Vec<AgentIdentity>) = self
            .plan
            .clone()
            .into_iter()
            .partition(|p| p.role == Role::Server);

        // Stage 1: the server, until it says where it listens.
        let since = Instant::now();
        self.start_pods(scheduler, settings, &server).await?;
        let ready = loop {
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            let now = Instant::now();
            match self.at(now).server_stage(&snap, now - since, deadline) {
                ServerStage::Waiting => {}
                ServerStage::Ready => break true,
                ServerStage::Gone | ServerStage::Deadline => break false,
            }
            let status = Status {
                stage: "server".into(),
                connected: snap.agents.iter().filter(|a| a.connected).count(),
                expected: server.len(),
                passing: Vec::new(),
                failing_paths: 0,
                failed_paths: 0,
            };
            self.metrics_tick(settings, &status);
            progress.show(status);
            tokio::time::sleep(TICK).await;
        };
        self.stage_done("server", since, ready);

        if ready {
            // Stage 2 and 3: the other agents, probing until everyone passes.
            let since = Instant::now();
            self.metrics_stage(settings, "place_agents");
            self.start_pods(scheduler, settings, &rest).await?;
            // Probing starts when every pod is placed: together, and not competing with the
            // placement for the machine (a lab places its pods on the same cores).
            self.roster.send(ReleaseTargets).await?;
            scheduler.probing_began().await;
            settings
                .probing
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.probing_began_ms = Some(self.elapsed_ms());
            self.stage_done("place agents", since, true);
            let since = Instant::now();
            self.metrics_stage(settings, "probe");
            let outcome = self
                .probe_until_passed(scheduler, settings, progress, &rest, deadline)
                .await?;
            self.stage_ended("probe", since, outcome);
            if settings.soak != Soak::Off && outcome != ProbeStage::ServerLost.outcome() {
                let probing_since = since;
                let since = Instant::now();
                self.soak_began_ms = Some(self.elapsed_ms());
                self.metrics_stage(settings, "soak");
                let outcome = self
                    .soak(scheduler, settings, progress, probing_since)
                    .await?;
                self.stage_ended("soak", since, outcome);
            }
        } else {
            progress.note("the server did not become ready; no client was started");
        }
        self.stop_and_report(scheduler, settings, progress).await
    }

    /// The run's end: the agents are told to stop and hand in their last batches, then the
    /// report is made.
    async fn stop_and_report<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
    ) -> Result<RunReport> {
        // Stop the agents and take their last batches.
        let since = Instant::now();
        self.metrics_stage(settings, "stop");
        // From here on the run cannot be resumed: its agents are told to stop. A coordinator
        // that dies now and a new one resuming from the checkpoint would find them gone and
        // call every one lost; without a checkpoint it ends the run with its last report.
        let _ = std::fs::remove_file(self.run_dir.join(crate::checkpoint::FILE));
        if let Err(e) = scheduler.forget_checkpoint().await {
            progress.note(&format!(
                "removing the stored checkpoint: {} (a coordinator started from it now would call every agent lost)",
                crate::exit::chain(&e)
            ));
        }
        self.roster.do_send(StopAll);
        let all_gone = async {
            loop {
                let snap = self.roster.send(Snapshot).await?;
                let connected = snap.agents.iter().filter(|a| a.connected).count();
                if let Some(metrics) = &settings.metrics {
                    metrics.set_agents(connected, self.plan.len());
                }
                if connected == 0 {
                    return Ok::<_, Error>(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        // The report is made after the patience whether or not every agent hung up.
        let stopped = tokio::time::timeout(STOP_PATIENCE, all_gone).await;
        if let Ok(result) = stopped {
            result?;
        }
        self.stage_done("stop", since, true);
        let over_capacity = self.control.refused_over_capacity();
        if over_capacity > 0 {
            progress.note(&format!(
                "the control plane refused {over_capacity} connections beyond the run's agents"
            ));
        }
        self.metrics_stage(settings, "report");
        self.report(scheduler, settings).await
    }

    /// The matrix updates the live per-path metrics from now on, when the run serves them.
    async fn attach_metrics(&self, settings: &RunSettings) -> Result<()> {
        if let Some(metrics) = &settings.metrics {
            let mut paths = PathMetrics::new(
                metrics.clone(),
                settings.outage_rule(),
                self.server_node.clone(),
            );
            // A resumed mesh's responders are known already: labelled before any result
            // (the roster tells the matrix of later ones).
            let snapshot = self.roster.send(Snapshot).await?;
            paths.set_target_nodes(snapshot.target_nodes.into_iter().collect());
            // The listeners let go so far, as the roster tells the matrix of later ones.
            if !snapshot.let_go.is_empty() {
                paths.set_let_go(snapshot.let_go.into_iter().collect());
            }
            self.matrix.send(WithMetrics(paths)).await?;
        }
        Ok(())
    }

    /// The live metrics: the run is in `stage` now.
    fn metrics_stage(&self, settings: &RunSettings, stage: &str) {
        if let Some(metrics) = &settings.metrics {
            metrics.set_stage(stage);
            metrics.set_elapsed(self.started.elapsed());
        }
    }

    /// The live metrics at each look at the run: agents, time.
    fn metrics_tick(&self, settings: &RunSettings, status: &Status) {
        if let Some(metrics) = &settings.metrics {
            metrics.set_agents(status.connected, self.plan.len());
            metrics.set_elapsed(self.started.elapsed());
        }
    }

    async fn probe_until_passed<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
        pods: &[AgentIdentity],
        deadline: Duration,
    ) -> Result<&'static str> {
        let since = Instant::now();
        let pairs = pod_networks(pods);
        loop {
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            let look = Instant::now();
            // Before the stage is decided: a responder back, or listening anew, makes its
            // probers that passed pass again.
            let anew = self.note_responders(&snap, look, true, progress);
            let at = self.at(look);
            let again = at.pass_again(&snap.agents, &self.targeting, &anew);
            let back = at.back(&snap.agents, &self.pass_again_when_back);
            self.must_pass_again.extend(again.now);
            self.must_pass_again.extend(back.iter().cloned());
            self.pass_again_when_back.retain(|pod| !back.contains(pod));
            self.pass_again_when_back.extend(again.when_back);
            let standings = self
                .matrix
                .send(Standings {
                    pairs: self.with_targets(pods, &pairs, &snap, look),
                    threshold: settings.threshold(),
                })
                .await?;
            let passing: Vec<bool> = standings.iter().map(|s| s.passes).collect();
            let mut per_pod: BTreeMap<&str, Vec<Standing>> = BTreeMap::new();
            for ((pod, _), standing) in pairs.iter().zip(&standings) {
                per_pod.entry(pod.as_str()).or_default().push(*standing);
            }
            let now = Instant::now();
            let now_ms = self.at(now).elapsed_ms();
            decide::record_passes(
                &pairs,
                &standings,
                &mut self.passed_at,
                &mut self.must_pass_again,
                now_ms,
            );
            let failed: BTreeSet<String> = per_pod
                .iter()
                .filter(|(pod, _)| {
                    !self.passed_at.contains_key(**pod) || self.must_pass_again.contains(**pod)
                })
                .filter(|(_, s)| self.at(now).failed_for_certain(s, settings.early_verdict()))
                .map(|(pod, _)| pod.to_string())
                .collect();
            self.failed_for_certain = failed;
            self.stranded = self.at(now).stranded(
                &snap.agents,
                &self.targeting,
                &self.responders_away,
                settings.early_verdict().window,
            );
            let stage = self
                .at(now)
                .probe_stage(&snap.agents, now - since, deadline);
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
            let (failing_paths, failed_paths) = self.matrix.send(FailingPaths).await?;
            let status = Status {
                stage: "probe".into(),
                connected: snap.agents.iter().filter(|a| a.connected).count(),
                expected: snap.agents.len(),
                passing: passing_by_net,
                failing_paths,
                failed_paths,
            };
            self.metrics_tick(settings, &status);
            progress.show(status);
            if settings.stop.is_cancelled() {
                // A soak stopped during its first pass: what was measured is the report.
                return Ok("stopped");
            }
            match stage {
                ProbeStage::Probing => tokio::time::sleep(TICK).await,
                ProbeStage::ServerLost => {
                    progress.note(if self.targeting.is_mesh() {
                        "every responder is gone; stopping the run"
                    } else {
                        "the server agent is gone; stopping the run"
                    });
                    return Ok(stage.outcome());
                }
                ProbeStage::Decided => {
                    let failed = self.failed_for_certain.len();
                    let stranded = self
                        .stranded
                        .keys()
                        .filter(|pod| !self.failed_for_certain.contains(*pod))
                        .count();
                    let mut why = Vec::new();
                    if failed > 0 {
                        why.push(format!("{failed} agent(s) failed beyond doubt (a path without one success for the flaky threshold while others pass)"));
                    }
                    if stranded > 0 {
                        why.push(format!("{stranded} agent(s) have nothing left to probe on a network (every responder they probe there gone for the flaky threshold)"));
                    }
                    progress.note(&format!(
                        "{}: ending the run before its deadline",
                        why.join("; ")
                    ));
                    return Ok(stage.outcome());
                }
                ProbeStage::Done | ProbeStage::Deadline => return Ok(stage.outcome()),
            }
        }
    }

    /// Says when a mesh's responder is gone while others are left (the run goes on without
    /// it), when it is back (its agent restarted and reconnected), and when a responder — the
    /// single server too — listens anew (a new `ServerReady` with other addresses or ports);
    /// returns the responders that listen anew since the last look, back or with new
    /// listeners ([`decide::relistened`]): what their probers must pass again on while
    /// `passing_again` (the probe stage; the soak makes nobody pass again).
    fn note_responders(
        &mut self,
        snap: &crate::roster::RosterSnapshot,
        now: Instant,
        passing_again: bool,
        progress: &mut Progress,
    ) -> BTreeSet<String> {
        let mut anew = decide::relistened(&self.listening, &snap.responders);
        self.listening = snap.responders.clone();
        let at = self.at(now);
        if at.servers_gone(&snap.agents) {
            return anew;
        }
        let node_of = |pod: &str| {
            snap.agents
                .iter()
                .find(|a| a.expected.pod == pod)
                .map_or(String::new(), |a| a.expected.node.clone())
        };
        let gone = at.gone_servers(&snap.agents);
        // (One back from being gone is said so below.)
        let away = |pod: &&String| gone.contains(*pod) || self.responders_away.contains_key(*pod);
        for pod in anew.iter().filter(|p| !away(p)) {
            let who = if self.targeting.is_mesh() {
                format!("responder {pod} on {}", node_of(pod))
            } else {
                "the server".to_string()
            };
            let then = if passing_again {
                "whoever passed on it passes again there"
            } else {
                "its probers probe it there from now on"
            };
            progress.note(&format!(
                "{who} listens anew (new addresses or ports): {then}"
            ));
        }
        for pod in gone
            .iter()
            .filter(|p| !self.responders_away.contains_key(*p))
        {
            progress.note(&format!(
                "responder {pod} on {} is gone: the run goes on without it; its peers' paths to it are left out of their verdict while it is away",
                node_of(pod)
            ));
        }
        for pod in self.responders_away.keys().filter(|p| !gone.contains(*p)) {
            progress.note(&format!("responder {pod} is back"));
            // Those who passed while it was away have not probed it since.
            anew.insert(pod.clone());
        }
        self.responders_away.retain(|pod, _| gone.contains(pod));
        for pod in gone {
            self.responders_away.entry(pod).or_insert(now);
        }
        anew
    }

    /// In the soak: the agents stranded when the probe stage ended ([`Moment::stranded`]) that
    /// pass now on every network (their responders back) are passed — at this time (Rook's
    /// readiness rule reads how late), their pass to make again made too — and stranded no
    /// more. Until then their record stays whole: a network that passes at one look while
    /// another does not may lose its responders again. One that also failed beyond doubt
    /// keeps its verdict, as an agent that only failed beyond doubt does (the soak passes
    /// nobody).
    async fn pass_stranded(
        &mut self,
        snap: &crate::roster::RosterSnapshot,
        settings: &RunSettings,
        now: Instant,
    ) -> Result<()> {
        if self.stranded.is_empty() {
            return Ok(());
        }
        let pods = decide::stranded_to_check(&self.plan, &self.stranded, &self.failed_for_certain);
        let pairs = pod_networks(&pods);
        let standings = self
            .matrix
            .send(Standings {
                pairs: self.with_targets(&pods, &pairs, snap, now),
                threshold: settings.threshold(),
            })
            .await?;
        let now_ms = self.at(now).elapsed_ms();
        let passed = decide::record_passes(
            &pairs,
            &standings,
            &mut self.passed_at,
            &mut self.must_pass_again,
            now_ms,
        );
        for pod in passed {
            self.stranded.remove(&pod);
        }
        Ok(())
    }

    /// `pairs` (pod, network) with the target addresses the pod was told to probe there
    /// ([`Targeting::target_addresses`]): what it must have passed on before it passes.
    fn with_targets(
        &self,
        pods: &[AgentIdentity],
        pairs: &[(String, CephNetwork)],
        snap: &crate::roster::RosterSnapshot,
        now: Instant,
    ) -> Vec<(String, CephNetwork, std::sync::Arc<[std::net::SocketAddr]>)> {
        // A mesh's responder that is gone is no one's target to pass on while it is away.
        let here = self.at(now).responders_here(snap);
        let node_of: BTreeMap<&str, &str> = pods
            .iter()
            .map(|p| (p.pod.as_str(), p.node.as_str()))
            .collect();
        let mut known: BTreeMap<(&str, CephNetwork), std::sync::Arc<[std::net::SocketAddr]>> =
            BTreeMap::new();
        pairs
            .iter()
            .map(|(pod, network)| {
                let node = node_of.get(pod.as_str()).copied().unwrap_or_default();
                let targets = known
                    .entry((node, *network))
                    .or_insert_with(|| {
                        self.targeting
                            .target_addresses(node, *network, &here)
                            .into()
                    })
                    .clone();
                (pod.clone(), *network, targets)
            })
            .collect()
    }

    /// The soak: every agent keeps probing until the soak's time, counted from
    /// `probing_since`, is up, the run is stopped ([`RunSettings::stop`]), or the server is
    /// gone. The stage's outcome: `done`, `stopped` or `server lost`.
    async fn soak<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
        probing_since: Instant,
    ) -> Result<&'static str> {
        let every = settings.config.report_interval.as_std();
        let mut last_interim = Instant::now();
        let checkpoint_every = crate::checkpoint::every(every);
        // One at once: a coordinator that dies early in the soak can be resumed too.
        let mut last_checkpoint: Option<Instant> = None;
        loop {
            if last_checkpoint.is_none_or(|t| t.elapsed() >= checkpoint_every) {
                last_checkpoint = Some(Instant::now());
                if let Err(why) = self.write_checkpoint(scheduler, settings).await {
                    self.roster.do_send(crate::roster::state::NotDurable);
                    progress.note(&format!(
                        "the checkpoint: {}; results are acknowledged as they come until one is written (a coordinator restart would resume from an older one)",
                        crate::exit::chain(&why)
                    ));
                }
            }
            if let Some(interim) = &settings.interim
                && !every.is_zero()
                && last_interim.elapsed() >= every
            {
                last_interim = Instant::now();
                let report = self.interim_report(scheduler, settings).await?;
                if let Err(why) = (interim.0)(&report) {
                    progress.note(&format!("the interim report: {why}"));
                }
            }
            let snap = self.roster.send(Snapshot).await?;
            self.poll_exits(scheduler).await;
            let now = Instant::now();
            // The soak has no pass to make again: what it reads is outages, and a responder's
            // time away or restart is its agent outage.
            self.note_responders(&snap, now, false, progress);
            self.pass_stranded(&snap, settings, now).await?;
            if self.at(now).servers_gone(&snap.agents) {
                progress.note(if self.targeting.is_mesh() {
                    "every responder is gone; ending the soak"
                } else {
                    "the server agent is gone; ending the soak"
                });
                return Ok("server lost");
            }
            if settings.stop.is_cancelled() {
                return Ok("stopped");
            }
            let remaining = match settings.soak {
                Soak::For(d) => match d.checked_sub(now - probing_since) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok("done"),
                },
                Soak::UntilStopped | Soak::Off => None,
            };
            let (failing_paths, failed_paths) = self.matrix.send(FailingPaths).await?;
            let status = Status {
                stage: match remaining {
                    Some(left) => format!("soak ({}s left)", left.as_secs()),
                    None => "soak (until stopped)".into(),
                },
                connected: snap.agents.iter().filter(|a| a.connected).count(),
                expected: snap.agents.len(),
                passing: Vec::new(),
                failing_paths,
                failed_paths,
            };
            self.metrics_tick(settings, &status);
            progress.show(status);
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                () = settings.stop.cancelled() => {}
            }
        }
    }

    /// Stops the agents, closes the control plane, and removes everything the run created.
    /// Safe to call more than once.
    pub async fn cleanup<S: Scheduler>(&mut self, scheduler: &mut S) -> Result<()> {
        self.roster.do_send(StopAll);
        let result = scheduler.cleanup().await;
        self.control.close().await;
        if self.run_dir.exists() {
            std::fs::remove_dir_all(&self.run_dir).map_err(|source| Error::RunDir {
                action: "removing",
                path: self.run_dir.clone(),
                source,
            })?;
        }
        result.map_err(backend)
    }
}
