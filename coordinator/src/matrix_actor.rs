//! The `MatrixActor`: owns the run's [`PathMatrix`]; the roster sends it every recorded batch,
//! the supervisor asks how each client stands and takes the matrix at the end.

use actix::prelude::*;
use multinet_proto::control::ProbeResult;
use multinet_proto::network::CephNetwork;

use crate::matrix::{NeverSucceeded, PathMatrix};
use crate::metrics::PathMetrics;

/// The actor.
#[derive(Debug, Default)]
pub struct MatrixActor {
    matrix: PathMatrix,
    /// The live per-path metrics, when the run serves them ([`WithMetrics`]).
    metrics: Option<PathMetrics>,
}

impl Actor for MatrixActor {
    type Context = Context<Self>;
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
}

impl Handler<Record> for MatrixActor {
    type Result = ();
    fn handle(&mut self, msg: Record, _: &mut Context<Self>) {
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
                    |r, change| metrics.result(&msg.client, &msg.node, r, change),
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
        self.metrics = Some(msg.0);
    }
}

/// How each of these (pod, network) pairs stands: whether it passes with `threshold`
/// consecutive successes, and its longest path without a single success.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Standing>")]
pub struct Standings {
    /// The pairs.
    pub pairs: Vec<(String, CephNetwork)>,
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
            .map(|(pod, net)| Standing {
                passes: self.matrix.client_passes(pod, *net, msg.threshold),
                never_succeeded: self.matrix.never_succeeded(pod, *net),
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
