//! The `AgentRoster` actor: which agents the run expects, which are connected, what each has
//! reported (by sequence number, so a batch resent after a reconnect counts once), where the
//! server listens, and why peers were refused. The control-plane tasks talk to it; the run's
//! supervisor reads snapshots of it. Across an agent's reconnects and restarts its batches are
//! counted by [`ledger`]; the times it was away by [`absences`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use actix::prelude::*;
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::{
    AgentIdentity, CoordinatorMessage, EgressReport, Hello, Listener, PROTOCOL_VERSION, Refusal,
    ReportBatch, Role,
};
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use crate::matrix_actor::{LetGo, MatrixActor, Record, TargetNodes};
use crate::mesh::{Responder, Targeting};

pub mod absences;
pub mod ledger;
pub mod state;
#[cfg(any(test, feature = "test-hooks"))]
pub mod test_hooks;

use absences::{Absences, Return};
use ledger::{Arrival, BatchLedger, BatchVerdict};

#[derive(Debug)]
struct AgentState {
    expected: AgentIdentity,
    /// The live connection: its id and the channel to its writer task.
    conn: Option<(u64, Sender<CoordinatorMessage>)>,
    /// The live connection itself, to close it.
    connection: Option<quinn::Connection>,
    /// Its batches, by sequence number, across reconnects and restarts.
    ledger: BatchLedger,
    /// The times it was away (connection gone until it said Hello again).
    absences: Absences,
    ever_connected: bool,
    /// When the last connection went away (None while connected).
    disconnected_at: Option<Instant>,
    /// Times the backend saw its process (or pod) exit ([`ProcessExited`]).
    exits: u64,
    /// While set ([`test_hooks::WithholdAcks`]), batches are recorded but acknowledged only up
    /// to this sequence number, so the agent keeps them to resend.
    #[cfg(any(test, feature = "test-hooks"))]
    acks_held_at: Option<u64>,
    /// What the agent said when it gave up.
    failed: Option<String>,
    /// Its addresses, as its latest Hello said them.
    addresses: Vec<NetworkAddress>,
    /// Where its probes leave from, as it last reported (None until it did).
    egress: Option<EgressReport>,
    /// Wall-clock time (Unix ms) its result times count from, as its latest Hello said.
    clock_epoch_unix_ms: u64,
}

impl AgentState {
    /// The sequence number to acknowledge once batch `seq` is recorded.
    #[cfg(not(any(test, feature = "test-hooks")))]
    fn ack_for(&self, seq: u64) -> u64 {
        seq
    }

    /// The sequence number to acknowledge once batch `seq` is recorded: `seq`, unless a test
    /// withholds the agent's acknowledgements.
    #[cfg(any(test, feature = "test-hooks"))]
    fn ack_for(&self, seq: u64) -> u64 {
        self.acks_held_at.unwrap_or(seq)
    }

    /// Queues `message` for the agent's writer, when it is connected. The roster cannot wait:
    /// a full queue ([`crate::control_plane::WRITER_CAPACITY`]) means the agent does not read
    /// its stream, so its connection is closed; it reconnects and is told everything again.
    fn tell(&self, message: CoordinatorMessage) {
        let Some((_, tx)) = &self.conn else {
            return;
        };
        match tx.try_send(message) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    pod = %self.expected.pod,
                    "the agent does not read what the coordinator sends; closing its connection"
                );
                if let Some(c) = &self.connection {
                    c.close(
                        crate::control_plane::close_code::WRITER_FULL.into(),
                        b"writer queue full",
                    );
                }
            }
        }
    }
}

/// The roster.
#[derive(Debug)]
pub struct AgentRoster {
    run_id: String,
    agents: BTreeMap<String, AgentState>,
    /// The servers (a mesh's responders) that said where they listen, by pod.
    responders: BTreeMap<String, Responder>,
    /// Every address a mesh's responders listened on in this run, with its node: paths to
    /// a responder's addresses before it restarted still name their node.
    target_nodes: BTreeMap<std::net::SocketAddr, String>,
    /// The addresses a responder said in this roster and no longer listens on ([`let_go`]).
    let_go: BTreeSet<std::net::SocketAddr>,
    /// Which responders each node's agents probe.
    targeting: Targeting,
    /// Whether clients may be told their targets: not before every pod is placed
    /// ([`ReleaseTargets`]), so probing starts together and does not compete with placement.
    targets_released: bool,
    matrix: Addr<MatrixActor>,
    refused: BTreeMap<String, u64>,
    duplicate_batches: u64,
    sequence_gaps: u64,
    /// The roster's clock: absences are counted from here — the run's start when the
    /// supervisor gives it ([`Self::with_clock`]), so they are on the run's clock.
    started: Instant,
    /// When [`StopAll`] came, ms since the roster started: connections that close from then
    /// on are the run's end, not an agent going away, and an agent away then was away to the
    /// end.
    stopped_ms: Option<u64>,
    /// Once a soak writes checkpoints ([`state::Durable`]): per agent, the process (clock
    /// epoch) and the highest batch the latest checkpoint holds. A batch is acknowledged only
    /// up to it, so an agent keeps — and resends to a resumed coordinator — every batch a
    /// checkpoint does not hold yet: a coordinator that dies loses no result.
    durable: Option<BTreeMap<String, (u64, u64)>>,
}

/// The acknowledgement for `ack` from agent `pod`: `ack`, or no more than the latest
/// checkpoint holds of its current process once checkpoints are written (`durable`).
fn durable_ack(
    durable: Option<&BTreeMap<String, (u64, u64)>>,
    pod: &str,
    state: &AgentState,
    ack: u64,
) -> u64 {
    let Some(durable) = durable else {
        return ack;
    };
    match durable.get(pod) {
        Some(&(epoch, seq)) if Some(epoch) == state.ledger.epoch() => ack.min(seq),
        _ => 0,
    }
}

impl AgentRoster {
    /// A roster for run `run_id` recording into `matrix`.
    pub fn new(run_id: String, matrix: Addr<MatrixActor>) -> Self {
        Self {
            run_id,
            agents: BTreeMap::new(),
            responders: BTreeMap::new(),
            target_nodes: BTreeMap::new(),
            let_go: BTreeSet::new(),
            targeting: Targeting::Single,
            targets_released: false,
            matrix,
            refused: BTreeMap::new(),
            duplicate_batches: 0,
            sequence_gaps: 0,
            started: Instant::now(),
            stopped_ms: None,
            durable: None,
        }
    }

    /// Counts absences from `started`, the run's start (the run's clock).
    pub fn with_clock(mut self, started: Instant) -> Self {
        self.started = started;
        self
    }

    /// Milliseconds since the roster started.
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn refuse(&mut self, refusal: Refusal) -> Refusal {
        let key = match &refusal {
            Refusal::ProtocolVersion { .. } => "protocol_version",
            Refusal::RunId { .. } => "run_id",
            Refusal::UnknownAgent { .. } => "unknown_agent",
            Refusal::NoHello => "no_hello",
        };
        *self.refused.entry(key.to_string()).or_default() += 1;
        refusal
    }
}

impl Actor for AgentRoster {
    type Context = Context<Self>;
}

/// Adds agents the run expects.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Expect(pub Vec<AgentIdentity>);

impl Handler<Expect> for AgentRoster {
    type Result = ();
    fn handle(&mut self, msg: Expect, _: &mut Context<Self>) {
        for e in msg.0 {
            self.agents.insert(
                e.pod.clone(),
                AgentState {
                    expected: e,
                    conn: None,
                    connection: None,
                    addresses: Vec::new(),
                    egress: None,
                    clock_epoch_unix_ms: 0,
                    ledger: BatchLedger::default(),
                    absences: Absences::default(),
                    ever_connected: false,
                    disconnected_at: None,
                    exits: 0,
                    #[cfg(any(test, feature = "test-hooks"))]
                    acks_held_at: None,
                    failed: None,
                },
            );
        }
    }
}

/// A peer introduced itself.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Refusal>")]
pub struct Introduce {
    /// Its Hello.
    pub hello: Hello,
    /// Connection id (unique per connection).
    pub conn_id: u64,
    /// Channel to the connection's writer.
    pub tx: Sender<CoordinatorMessage>,
    /// The connection.
    pub connection: quinn::Connection,
}

impl Handler<Introduce> for AgentRoster {
    type Result = Result<(), Refusal>;
    fn handle(&mut self, msg: Introduce, _: &mut Context<Self>) -> Self::Result {
        let Hello {
            protocol_version,
            run_id,
            agent,
            addresses,
            clock_epoch_unix_ms,
            last_acked,
            ..
        } = msg.hello;
        if protocol_version != PROTOCOL_VERSION {
            return Err(self.refuse(Refusal::ProtocolVersion {
                agent: protocol_version,
                coordinator: PROTOCOL_VERSION,
            }));
        }
        if run_id != self.run_id {
            return Err(self.refuse(Refusal::RunId { agent: run_id }));
        }
        let known = self
            .agents
            .get(&agent.pod)
            .is_some_and(|s| s.expected.node == agent.node && s.expected.role == agent.role);
        if !known {
            return Err(self.refuse(Refusal::UnknownAgent {
                pod: agent.pod,
                node: agent.node,
            }));
        }
        let targets = (self.targets_released && agent.role != Role::Server)
            .then(|| self.targeting.targets(&agent.node, &self.responders))
            .filter(|t| !t.is_empty());
        let now_ms = self.now_ms();
        let Some(state) = self.agents.get_mut(&agent.pod) else {
            return Err(Refusal::NoHello);
        };
        match state.ledger.hello(clock_epoch_unix_ms, last_acked) {
            Arrival::First => {}
            Arrival::Reconnect => state.absences.returned(now_ms, Return::Reconnected),
            Arrival::Restart { lost } => {
                // A new process whose predecessor's connection had not been seen to close
                // yet: the restart is still an absence (of no measured length).
                state.absences.left(now_ms);
                state.absences.returned(now_ms, Return::Restarted);
                #[cfg(any(test, feature = "test-hooks"))]
                {
                    state.acks_held_at = None;
                }
                if lost > 0 {
                    self.matrix.do_send(Record {
                        client: agent.pod.clone(),
                        node: state.expected.node.clone(),
                        results: Vec::new(),
                        dropped: lost,
                        clock_epoch_unix_ms,
                    });
                }
            }
        }
        state.conn = Some((msg.conn_id, msg.tx));
        state.addresses = addresses;
        state.clock_epoch_unix_ms = clock_epoch_unix_ms;
        state.connection = Some(msg.connection);
        state.tell(CoordinatorMessage::Welcome);
        if let Some(listeners) = targets {
            state.tell(CoordinatorMessage::Targets { listeners });
        }
        state.ever_connected = true;
        state.disconnected_at = None;
        Ok(())
    }
}

/// A report batch from a connected agent; answers the sequence number to acknowledge.
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Report {
    /// The agent.
    pub pod: String,
    /// The batch.
    pub batch: ReportBatch,
}

impl Handler<Report> for AgentRoster {
    type Result = u64;
    fn handle(&mut self, msg: Report, _: &mut Context<Self>) -> u64 {
        let Some(state) = self.agents.get_mut(&msg.pod) else {
            return 0;
        };
        let seq = msg.batch.seq;
        let lost_in_resume = match state.ledger.batch(
            seq,
            msg.batch.results.len() as u64,
            msg.batch.dropped,
            msg.batch.produced,
        ) {
            BatchVerdict::Duplicate { ack } => {
                self.duplicate_batches += 1;
                return durable_ack(self.durable.as_ref(), &msg.pod, state, ack);
            }
            BatchVerdict::Record { gap, lost } => {
                self.sequence_gaps += gap;
                lost
            }
        };
        let ack = durable_ack(self.durable.as_ref(), &msg.pod, state, state.ack_for(seq));
        self.matrix.do_send(Record {
            client: msg.pod,
            node: state.expected.node.clone(),
            results: msg.batch.results,
            dropped: msg.batch.dropped + lost_in_resume,
            clock_epoch_unix_ms: state.clock_epoch_unix_ms,
        });
        ack
    }
}

/// Something that happened to a connection.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum ConnectionEvent {
    /// A server (a mesh's responder) listens here; the agents that probe it are told.
    ServerReady {
        /// The server's pod.
        pod: String,
        /// Its listeners.
        listeners: Vec<Listener>,
    },
    /// The agent gave up, with its reason.
    Failed {
        /// The agent.
        pod: String,
        /// Its words.
        reason: String,
    },
    /// Where the agent's probes leave from.
    Egress {
        /// The agent.
        pod: String,
        /// Its report.
        report: EgressReport,
    },
    /// The connection closed.
    Closed {
        /// The agent.
        pod: String,
        /// Which connection.
        conn_id: u64,
    },
    /// A peer was refused before it could say who it is (TLS, no stream, bad first frame).
    Refused(&'static str),
}

impl Handler<ConnectionEvent> for AgentRoster {
    type Result = ();
    fn handle(&mut self, msg: ConnectionEvent, _: &mut Context<Self>) {
        match msg {
            ConnectionEvent::ServerReady { pod, listeners } => {
                let Some(state) = self
                    .agents
                    .get(&pod)
                    .filter(|s| s.expected.role == Role::Server)
                else {
                    return;
                };
                let responder = Responder {
                    node: state.expected.node.clone(),
                    listeners,
                };
                if self.responders.get(&pod) != Some(&responder) {
                    if self.targeting.is_mesh() {
                        let mut changed = false;
                        for (addr, node) in crate::mesh::target_nodes([&responder]) {
                            changed |= self.target_nodes.insert(addr, node.clone()) != Some(node);
                        }
                        if changed {
                            // Labelled before any result to them arrives: the agents are
                            // told of these addresses only below.
                            self.matrix.do_send(TargetNodes(
                                self.target_nodes.clone().into_iter().collect(),
                            ));
                        }
                    }
                    // Before the agents hear of the new listeners: paths to this pod's old
                    // ones are let go, in the live outages too (per pod: a resumed roster's
                    // responders that have not said theirs again yet are not let go).
                    if let_go(&mut self.let_go, self.responders.get(&pod), &responder) {
                        self.matrix
                            .do_send(LetGo(self.let_go.iter().copied().collect()));
                    }
                    self.responders.insert(pod, responder);
                    self.send_targets();
                }
            }
            ConnectionEvent::Failed { pod, reason } => {
                if let Some(s) = self.agents.get_mut(&pod) {
                    s.failed = Some(reason);
                }
            }
            ConnectionEvent::Egress { pod, report } => {
                if let Some(s) = self.agents.get_mut(&pod) {
                    s.egress = Some(report);
                }
            }
            ConnectionEvent::Closed { pod, conn_id } => {
                let (now_ms, stopping) = (self.now_ms(), self.stopped_ms.is_some());
                if let Some(s) = self.agents.get_mut(&pod)
                    && s.conn.as_ref().is_some_and(|(id, _)| *id == conn_id)
                {
                    s.conn = None;
                    s.disconnected_at = Some(Instant::now());
                    // An agent that gave up (`failed`) is not away: it is done, and says why.
                    if !stopping && s.failed.is_none() {
                        s.absences.left(now_ms);
                    }
                }
            }
            ConnectionEvent::Refused(why) => *self.refused.entry(why.to_string()).or_default() += 1,
        }
    }
}

/// The backend saw the agent's process (or pod) exit: the agent is away from now on, even
/// while its connection has not timed out yet (a killed process closes nothing; QUIC notices
/// after its idle timeout), until a new process says Hello. Exits and restarts pair up in
/// either order: a backend may notice a restarted container only after the new process said
/// Hello (Kubernetes' `restartCount`), and then the exit opens no absence — the restart
/// already closed it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ProcessExited(pub String);

impl Handler<ProcessExited> for AgentRoster {
    type Result = ();
    fn handle(&mut self, msg: ProcessExited, _: &mut Context<Self>) {
        let (now_ms, stopping) = (self.now_ms(), self.stopped_ms.is_some());
        if let Some(s) = self.agents.get_mut(&msg.0) {
            s.exits += 1;
            let unanswered = s.exits > s.ledger.restarts();
            if unanswered && s.ever_connected && s.failed.is_none() && !stopping {
                s.absences.left(now_ms);
            }
        }
    }
}

/// Tells every connected agent to stop.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAll;

impl Handler<StopAll> for AgentRoster {
    type Result = ();
    fn handle(&mut self, _: StopAll, _: &mut Context<Self>) {
        let now_ms = self.now_ms();
        self.stopped_ms.get_or_insert(now_ms);
        // The run ends here: its last batches go into the report, not a checkpoint, and what
        // the agents kept for a checkpoint is acknowledged now (an agent that has nothing new
        // to send waits for these before it hangs up).
        let held_back = self.durable.take().is_some();
        for s in self.agents.values() {
            if held_back && s.ledger.last_seq() > 0 {
                s.tell(CoordinatorMessage::Ack {
                    seq: s.ledger.last_seq(),
                });
            }
        }
        for s in self.agents.values() {
            s.tell(CoordinatorMessage::Stop);
        }
    }
}

impl AgentRoster {
    /// Tells every connected client and host checker where its targets listen (the server,
    /// or a mesh's responders it probes), once targets are released and it has any.
    fn send_targets(&self) {
        if !self.targets_released {
            return;
        }
        for state in self.agents.values() {
            if state.expected.role == Role::Server {
                continue;
            }
            let listeners = self
                .targeting
                .targets(&state.expected.node, &self.responders);
            if !listeners.is_empty() {
                state.tell(CoordinatorMessage::Targets { listeners });
            }
        }
    }
}

/// Updates `let_go` (the addresses responders said in this roster and no longer listen on)
/// for one pod that said `new` listeners, `old` those it said before in this roster (none
/// yet: a new pod, or a resumed roster's first word from it). Only that pod's old addresses
/// it no longer listens on are let go — never another pod's, which may not have said its
/// listeners again yet after a resume — and an address listened on again is no longer.
/// Whether `let_go` changed.
fn let_go(
    let_go: &mut BTreeSet<std::net::SocketAddr>,
    old: Option<&Responder>,
    new: &Responder,
) -> bool {
    let now = crate::mesh::target_nodes([new]);
    let mut changed = false;
    for addr in now.keys() {
        changed |= let_go.remove(addr);
    }
    for addr in old
        .map(|o| crate::mesh::target_nodes([o]))
        .unwrap_or_default()
        .into_keys()
    {
        if !now.contains_key(&addr) {
            changed |= let_go.insert(addr);
        }
    }
    changed
}

/// Which responders each node's agents probe (a mesh run's; a single-server run needs none).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Target(pub Targeting);

impl Handler<Target> for AgentRoster {
    type Result = ();
    fn handle(&mut self, msg: Target, _: &mut Context<Self>) {
        self.targeting = msg.0;
        self.send_targets();
    }
}

/// Every pod is placed: clients may probe (those connected are told their targets now, later
/// ones when they connect).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ReleaseTargets;

impl Handler<ReleaseTargets> for AgentRoster {
    type Result = ();
    fn handle(&mut self, _: ReleaseTargets, _: &mut Context<Self>) {
        if !self.targets_released {
            self.targets_released = true;
            self.send_targets();
        }
    }
}

/// One agent as the supervisor sees it.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// What was expected.
    pub expected: AgentIdentity,
    /// Connected now.
    pub connected: bool,
    /// Connected at some point.
    pub ever_connected: bool,
    /// Since when it has been disconnected.
    pub disconnected_at: Option<Instant>,
    /// Its own reason for giving up.
    pub failed: Option<String>,
    /// Batches recorded.
    pub batches: u64,
    /// Results it produced, by its own count.
    pub produced: u64,
    /// Results recorded from it.
    pub recorded: u64,
    /// Results it reported dropped.
    pub dropped: u64,
    /// Its addresses, as it said them (empty until it connected).
    pub addresses: Vec<NetworkAddress>,
    /// Where its probes leave from, as it last reported (None until it did).
    pub egress: Option<EgressReport>,
    /// Times the backend saw its process (or pod) exit.
    pub exits: u64,
    /// The times it was away from the run (agent outages).
    pub absences: Absences,
    /// New processes of it that said Hello after the first (restarts).
    pub restarts: u64,
    /// Results its earlier processes said they produced that never arrived (counted as
    /// lost when the new process said Hello).
    pub lost_in_restarts: u64,
    /// Results an earlier coordinator process acknowledged and took with it (`run --resume`).
    pub lost_in_resume: u64,
}

/// The roster at a moment.
#[derive(Debug, Clone, Default)]
pub struct RosterSnapshot {
    /// Every expected agent.
    pub agents: Vec<AgentView>,
    /// The servers (a mesh's responders) that said where they listen, by pod.
    pub responders: BTreeMap<String, Responder>,
    /// A mesh's every responder address in this run, with its node.
    pub target_nodes: BTreeMap<std::net::SocketAddr, String>,
    /// The addresses a responder said in this roster and no longer listens on.
    pub let_go: BTreeSet<std::net::SocketAddr>,
    /// Refused peers by reason.
    pub refused: BTreeMap<String, u64>,
    /// Batches received twice (resent after a reconnect) and not counted again.
    pub duplicate_batches: u64,
    /// Batches missing from agents' sequences.
    pub sequence_gaps: u64,
    /// Milliseconds since the roster started, when the snapshot was taken (the clock of
    /// [`AgentView::absences`]).
    pub at_ms: u64,
    /// When the agents were told to stop, on the same clock (None: not yet): the end of an
    /// absence still open.
    pub stopped_ms: Option<u64>,
}

/// Asks for a snapshot.
#[derive(Debug, Message)]
#[rtype(result = "RosterSnapshot")]
pub struct Snapshot;

impl Handler<Snapshot> for AgentRoster {
    type Result = MessageResult<Snapshot>;
    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RosterSnapshot {
            agents: self
                .agents
                .values()
                .map(|s| AgentView {
                    expected: s.expected.clone(),
                    connected: s.conn.is_some(),
                    ever_connected: s.ever_connected,
                    disconnected_at: s.disconnected_at,
                    failed: s.failed.clone(),
                    batches: s.ledger.batches(),
                    produced: s.ledger.produced(),
                    recorded: s.ledger.recorded(),
                    dropped: s.ledger.dropped(),
                    addresses: s.addresses.clone(),
                    egress: s.egress.clone(),
                    exits: s.exits,
                    absences: s.absences.clone(),
                    restarts: s.ledger.restarts(),
                    lost_in_restarts: s.ledger.lost_in_restarts(),
                    lost_in_resume: s.ledger.lost_in_resume(),
                })
                .collect(),
            responders: self.responders.clone(),
            target_nodes: self.target_nodes.clone(),
            let_go: self.let_go.clone(),
            refused: self.refused.clone(),
            duplicate_batches: self.duplicate_batches,
            sequence_gaps: self.sequence_gaps,
            at_ms: self.now_ms(),
            stopped_ms: self.stopped_ms,
        })
    }
}

#[cfg(test)]
mod let_go_tests {
    use multinet_proto::control::Listener;
    use multinet_proto::network::CephNetwork;

    use super::*;

    fn responder(node: &str, port: u16) -> Responder {
        let at = |p: u16| std::net::SocketAddr::from(([198, 18, 0, 1], p));
        Responder {
            node: node.into(),
            listeners: vec![Listener {
                network: CephNetwork::Public,
                http: at(port),
                https: at(port + 1),
            }],
        }
    }

    fn addrs(r: &Responder) -> BTreeSet<std::net::SocketAddr> {
        crate::mesh::target_nodes([r]).into_keys().collect()
    }

    /// Should 6 of the review of branch soak2: a resumed roster has no responders; n2's
    /// responder says its listeners first. n3's, which has not said them again yet, is not let
    /// go (it was: the union of those said so far left it out, and its down paths were
    /// closed in the live outages). n3 then says other listeners than before: only its own
    /// old ones are let go; saying them again takes them back.
    #[test]
    fn a_resumed_roster_lets_go_only_a_pods_own_old_listeners() {
        let mut set = BTreeSet::new();
        let (n2, n3_old, n3_new) = (
            responder("n2", 9000),
            responder("n3", 9100),
            responder("n3", 9200),
        );
        assert!(!let_go(&mut set, None, &n2));
        assert!(
            set.is_empty(),
            "n3 not let go before it says its listeners again"
        );
        assert!(!let_go(&mut set, None, &n3_old));
        assert!(set.is_empty());
        assert!(let_go(&mut set, Some(&n3_old), &n3_new));
        assert_eq!(set, addrs(&n3_old));
        assert!(set.is_disjoint(&addrs(&n2)));
        assert!(let_go(&mut set, Some(&n3_new), &n3_old));
        assert_eq!(set, addrs(&n3_new));
    }
}
