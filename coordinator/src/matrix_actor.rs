//! The `MatrixActor`: owns the run's [`PathMatrix`]; the roster sends it every recorded batch,
//! the supervisor asks how each client stands and takes the matrix at the end.
//!
//! One clock for the run. Each agent times its results from its own start
//! ([`ProbeResult::started_ms`]); agents start up to the whole placement apart, so their times
//! cannot be compared as they come. The actor puts every result on the run's clock — ms since
//! the coordinator's run started — from the wall-clock time each agent's clock counts from
//! (Hello's `clock_epoch_unix_ms`). Across nodes this is as good as the nodes' clock
//! synchronisation, which Ceph itself needs (its monitors warn from 50 ms of skew,
//! `mon_clock_drift_allowed`).

use actix::prelude::*;
use multinet_proto::control::ProbeResult;
use multinet_proto::network::CephNetwork;

use crate::matrix::{NeverSucceeded, PathMatrix};
use crate::metrics::PathMetrics;

/// The actor.
#[derive(Debug, Default)]
pub struct MatrixActor {
    matrix: PathMatrix,
    /// Wall-clock time (Unix ms) the run's clock counts from; 0: results keep their agents'
    /// clocks (a matrix fed without a run, as benchmarks do).
    run_epoch_unix_ms: u64,
    /// The live per-path metrics, when the run serves them ([`WithMetrics`]).
    metrics: Option<PathMetrics>,
    /// A mesh's responder addresses with their nodes, as last told ([`TargetNodes`]): kept
    /// for metrics attached later.
    target_nodes: std::collections::HashMap<std::net::SocketAddr, String>,
    /// The addresses let go, as last told ([`LetGo`]): kept for metrics attached later.
    let_go: std::collections::HashSet<std::net::SocketAddr>,
}

impl Actor for MatrixActor {
    type Context = Context<Self>;
}

impl MatrixActor {
    /// A matrix whose run clock counts from `run_epoch_unix_ms` (Unix ms).
    pub fn new(run_epoch_unix_ms: u64) -> Self {
        Self {
            run_epoch_unix_ms,
            ..Self::default()
        }
    }
}

impl MatrixActor {
    /// A resumed run's matrix ([`crate::checkpoint`]): `matrix` as checkpointed, going on
    /// on the same run clock.
    pub fn restore(run_epoch_unix_ms: u64, matrix: PathMatrix) -> Self {
        Self {
            matrix,
            run_epoch_unix_ms,
            metrics: None,
            target_nodes: Default::default(),
            let_go: std::collections::HashSet::new(),
        }
    }
}

/// A result time of an agent whose clock counts from `agent_epoch_unix_ms`, on the run's clock
/// counting from `run_epoch_unix_ms` (both Unix ms). Unchanged when either epoch is unknown
/// (0); a time before the run's start (a node's clock behind the coordinator's) is 0.
pub fn to_run_clock(agent_ms: u64, agent_epoch_unix_ms: u64, run_epoch_unix_ms: u64) -> u64 {
    if agent_epoch_unix_ms == 0 || run_epoch_unix_ms == 0 {
        return agent_ms;
    }
    agent_epoch_unix_ms
        .saturating_add(agent_ms)
        .saturating_sub(run_epoch_unix_ms)
}

/// Records a batch.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Record {
    /// Client pod.
    pub client: String,
    /// Its node.
    pub node: String,
    /// The results.
    pub results: Vec<ProbeResult>,
    /// Results the agent dropped.
    pub dropped: u64,
    /// Wall-clock time (Unix ms) the agent's result times count from (0: unknown).
    pub clock_epoch_unix_ms: u64,
}

impl Handler<Record> for MatrixActor {
    type Result = ();
    fn handle(&mut self, mut msg: Record, _: &mut Context<Self>) {
        for r in &mut msg.results {
            r.started_ms = to_run_clock(
                r.started_ms,
                msg.clock_epoch_unix_ms,
                self.run_epoch_unix_ms,
            );
        }
        match &mut self.metrics {
            None => self
                .matrix
                .record(&msg.client, &msg.node, &msg.results, msg.dropped),
            Some(metrics) => {
                metrics.batch(msg.results.len(), msg.dropped);
                self.matrix.record_with(
                    &msg.client,
                    &msg.node,
                    &msg.results,
                    msg.dropped,
                    |r, _| metrics.result(&msg.client, &msg.node, r),
                );
            }
        }
    }
}

/// From now on, every recorded result also updates these live metrics.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct WithMetrics(pub PathMetrics);

impl Handler<WithMetrics> for MatrixActor {
    type Result = ();
    fn handle(&mut self, msg: WithMetrics, _: &mut Context<Self>) {
        let mut metrics = msg.0;
        if !self.target_nodes.is_empty() {
            metrics.set_target_nodes(self.target_nodes.clone());
        }
        if !self.let_go.is_empty() {
            metrics.set_let_go(self.let_go.clone());
        }
        self.metrics = Some(metrics);
    }
}

/// A mesh run's responder node of each target address, for the live metrics' `target_node`
/// label ([`PathMetrics::set_target_nodes`]).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TargetNodes(pub std::collections::HashMap<std::net::SocketAddr, String>);

impl Handler<TargetNodes> for MatrixActor {
    type Result = ();
    fn handle(&mut self, msg: TargetNodes, _: &mut Context<Self>) {
        self.target_nodes = msg.0;
        if let Some(metrics) = &mut self.metrics {
            metrics.set_target_nodes(self.target_nodes.clone());
        }
    }
}

/// The addresses the server (a mesh's responders) listened on and no longer does, HTTP and
/// HTTPS: paths to them are let go by their clients, and leave the live outages
/// ([`PathMetrics::set_let_go`]).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct LetGo(pub std::collections::HashSet<std::net::SocketAddr>);

impl Handler<LetGo> for MatrixActor {
    type Result = ();
    fn handle(&mut self, msg: LetGo, _: &mut Context<Self>) {
        if let Some(metrics) = &mut self.metrics {
            metrics.set_let_go(msg.0.clone());
        }
        self.let_go = msg.0;
    }
}

/// How each of these (pod, network) pairs stands: whether it passes with `threshold`
/// consecutive successes, and its longest path without a single success.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Standing>")]
pub struct Standings {
    /// The pairs, each with the target addresses its agent was told to probe on the network
    /// (HTTP and HTTPS apart; [`crate::matrix::PathMatrix::client_passes_targets`]), shared
    /// by the agents of a node.
    pub pairs: Vec<(String, CephNetwork, std::sync::Arc<[std::net::SocketAddr]>)>,
    /// Consecutive successes needed on every probe kind.
    pub threshold: u64,
}

/// One pair's answer to [`Standings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// `threshold` consecutive successes on every probe kind.
    pub passes: bool,
    /// Its path failing longest without ever succeeding, if any.
    pub never_succeeded: Option<NeverSucceeded>,
}

impl Handler<Standings> for MatrixActor {
    type Result = Vec<Standing>;
    fn handle(&mut self, msg: Standings, _: &mut Context<Self>) -> Vec<Standing> {
        msg.pairs
            .iter()
            .map(|(pod, net, targets)| Standing {
                passes: self
                    .matrix
                    .client_passes_targets(pod, *net, msg.threshold, targets),
                never_succeeded: self.matrix.never_succeeded(pod, *net, targets),
            })
            .collect()
    }
}

/// For progress: paths failing right now (their last probe failed), and paths that have
/// failed at least once so far.
#[derive(Debug, Message)]
#[rtype(result = "(usize, usize)")]
pub struct FailingPaths;

impl Handler<FailingPaths> for MatrixActor {
    type Result = MessageResult<FailingPaths>;
    fn handle(&mut self, _: FailingPaths, _: &mut Context<Self>) -> Self::Result {
        let paths = self.matrix.paths();
        MessageResult((
            paths.iter().filter(|(_, s)| s.up == Some(false)).count(),
            paths.iter().filter(|(_, s)| s.ok < s.sent).count(),
        ))
    }
}

/// Results recorded so far ([`PathMatrix::recorded`]): what `bench ingest` samples.
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Recorded;

impl Handler<Recorded> for MatrixActor {
    type Result = u64;
    fn handle(&mut self, _: Recorded, _: &mut Context<Self>) -> u64 {
        self.matrix.recorded()
    }
}

/// A copy of the matrix as it stands (a soak's interim report); the actor goes on recording.
#[derive(Debug, Message)]
#[rtype(result = "PathMatrix")]
pub struct Peek;

impl Handler<Peek> for MatrixActor {
    type Result = MessageResult<Peek>;
    fn handle(&mut self, _: Peek, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.matrix.clone())
    }
}

/// A copy of the matrix into a channel: sent with `do_send`, which queues it at once behind
/// every message queued before — what the roster needs to take its state and the matrix's
/// together ([`crate::roster::state::TakeState`]). `send` may have to wait for room in the
/// mailbox and then come behind later batches.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PeekInto(pub tokio::sync::oneshot::Sender<PathMatrix>);

impl Handler<PeekInto> for MatrixActor {
    type Result = ();
    fn handle(&mut self, msg: PeekInto, _: &mut Context<Self>) {
        let _ = msg.0.send(self.matrix.clone());
    }
}

/// Takes the matrix (at the end of the run).
#[derive(Debug, Message)]
#[rtype(result = "PathMatrix")]
pub struct Take;

impl Handler<Take> for MatrixActor {
    type Result = MessageResult<Take>;
    fn handle(&mut self, _: Take, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::mem::take(&mut self.matrix))
    }
}
