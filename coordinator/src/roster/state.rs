//! The roster as a run's checkpoint holds it ([`crate::checkpoint`]): per agent what was
//! expected, its batch ledger, its absences and what it said; for the run, where the servers
//! listen and the addresses they no longer listen on. Connections are not kept: a resumed run's agents connect again, as after a lost
//! connection, and their Hello's `last_acked` tells what the checkpoint missed
//! ([`super::ledger`]).

use std::collections::BTreeMap;
use std::time::Instant;

use actix::prelude::*;
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::{AgentIdentity, EgressReport, Listener};
use serde::{Deserialize, Serialize};

use super::absences::Absences;
use super::ledger::BatchLedger;
use super::{AgentRoster, AgentState};
use tokio::sync::oneshot;

use crate::matrix::PathMatrix;
use crate::matrix_actor::{MatrixActor, PeekInto};
use crate::mesh::{Responder, Targeting};

/// One agent, serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// What the run expected.
    pub expected: AgentIdentity,
    /// Its batches across its processes.
    pub ledger: BatchLedger,
    /// The times it was away.
    pub absences: Absences,
    /// Whether it ever connected.
    pub ever_connected: bool,
    /// Exits the backend saw.
    pub exits: u64,
    /// Its reason for giving up.
    pub failed: Option<String>,
    /// Its addresses, as its latest Hello said.
    pub addresses: Vec<NetworkAddress>,
    /// Where its probes leave from.
    pub egress: Option<EgressReport>,
    /// The wall-clock time its results count from, Unix ms.
    pub clock_epoch_unix_ms: u64,
}

/// The roster, serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RosterState {
    /// Every expected agent.
    pub agents: Vec<AgentRecord>,
    /// Where the single server listens, as checkpoints before mesh runs had it (read only:
    /// [`Self::responders`] holds it now).
    #[serde(default, skip_serializing)]
    pub listeners: Option<Vec<Listener>>,
    /// The servers (a mesh's responders) that said where they listen, by pod.
    #[serde(default)]
    pub responders: BTreeMap<String, Responder>,
    /// A mesh's every responder address in this run, with its node.
    #[serde(default)]
    pub target_nodes: BTreeMap<std::net::SocketAddr, String>,
    /// The addresses responders said in this run and no longer listen on: their paths stay
    /// let go in the live metrics of a resumed run (a checkpoint before this field was kept
    /// has none: such paths come back until their responder says its listeners again).
    #[serde(default)]
    pub let_go: std::collections::BTreeSet<std::net::SocketAddr>,
    /// Which responders each node's agents probe.
    #[serde(default)]
    pub targeting: Targeting,
    /// Whether clients were told their targets.
    pub targets_released: bool,
    /// Refused peers by reason.
    pub refused: BTreeMap<String, u64>,
    /// Batches received twice.
    pub duplicate_batches: u64,
    /// Batches missing from agents' sequences.
    pub sequence_gaps: u64,
}

impl RosterState {
    /// Per agent, its current process (clock epoch) and the highest batch recorded of it:
    /// what a checkpoint of this state holds ([`Durable`]).
    pub fn held(&self) -> BTreeMap<String, (u64, u64)> {
        self.agents
            .iter()
            .filter_map(|a| {
                let epoch = a.ledger.epoch()?;
                Some((a.expected.pod.clone(), (epoch, a.ledger.last_seq())))
            })
            .collect()
    }
}

/// Asks for the roster's state and, with it, the matrix as it holds exactly the batches the
/// state says were recorded: the matrix's copy is asked for in the same handler, behind every
/// batch the roster passed on before ([`crate::matrix_actor::PeekInto`]).
#[derive(Debug, Message)]
#[rtype(result = "(RosterState, oneshot::Receiver<PathMatrix>)")]
pub struct TakeState;

/// A checkpoint holding `0` (per agent: process clock epoch, highest batch) was written:
/// acknowledge batches only up to it from now on (see [`AgentRoster`]'s `durable`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Durable(pub BTreeMap<String, (u64, u64)>);

impl Handler<Durable> for AgentRoster {
    type Result = ();
    fn handle(&mut self, msg: Durable, _: &mut Context<Self>) {
        // Not once the run is ending: its last batches are acknowledged as they come.
        if self.stopped_ms.is_none() {
            self.durable = Some(msg.0);
        }
    }
}

/// The latest checkpoint could not be written: acknowledge batches as they come again, so the
/// agents do not hold results for a checkpoint that may never come (a resumed run would then
/// count what came after the older checkpoint as lost, exactly).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct NotDurable;

impl Handler<NotDurable> for AgentRoster {
    type Result = ();
    fn handle(&mut self, _: NotDurable, _: &mut Context<Self>) {
        self.durable = None;
    }
}

impl Handler<TakeState> for AgentRoster {
    type Result = MessageResult<TakeState>;
    fn handle(&mut self, _: TakeState, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.matrix.do_send(PeekInto(tx));
        MessageResult((
            RosterState {
                agents: self
                    .agents
                    .values()
                    .map(|s| AgentRecord {
                        expected: s.expected.clone(),
                        ledger: s.ledger.clone(),
                        absences: s.absences.clone(),
                        ever_connected: s.ever_connected,
                        exits: s.exits,
                        failed: s.failed.clone(),
                        addresses: s.addresses.clone(),
                        egress: s.egress.clone(),
                        clock_epoch_unix_ms: s.clock_epoch_unix_ms,
                    })
                    .collect(),
                listeners: None,
                responders: self.responders.clone(),
                target_nodes: self.target_nodes.clone(),
                let_go: self.let_go.clone(),
                targeting: self.targeting.clone(),
                targets_released: self.targets_released,
                refused: self.refused.clone(),
                duplicate_batches: self.duplicate_batches,
                sequence_gaps: self.sequence_gaps,
            },
            rx,
        ))
    }
}

impl AgentRoster {
    /// The roster of a resumed run: `state` as checkpointed, no agent connected (none is away
    /// either: the time the coordinator was down is not the agents' absence), absences on the
    /// clock that counts from `started`, the run's start.
    pub fn restore(
        run_id: String,
        matrix: Addr<MatrixActor>,
        started: Instant,
        state: RosterState,
    ) -> Self {
        let mut roster = Self::new(run_id, matrix).with_clock(started);
        for a in state.agents {
            roster.agents.insert(
                a.expected.pod.clone(),
                AgentState {
                    expected: a.expected,
                    conn: None,
                    connection: None,
                    ledger: a.ledger,
                    absences: a.absences,
                    ever_connected: a.ever_connected,
                    disconnected_at: None,
                    exits: a.exits,
                    #[cfg(any(test, feature = "test-hooks"))]
                    acks_held_at: None,
                    failed: a.failed,
                    addresses: a.addresses,
                    egress: a.egress,
                    clock_epoch_unix_ms: a.clock_epoch_unix_ms,
                },
            );
        }
        roster.responders = state.responders;
        if let (Some(listeners), Some(server)) = (
            state.listeners,
            roster
                .agents
                .values()
                .find(|a| a.expected.role == multinet_proto::control::Role::Server),
        ) {
            roster.responders.insert(
                server.expected.pod.clone(),
                Responder {
                    node: server.expected.node.clone(),
                    listeners,
                },
            );
        }
        roster.target_nodes = state.target_nodes;
        // A checkpoint from before the history was kept: its responders' addresses now.
        if roster.target_nodes.is_empty() && state.targeting.is_mesh() {
            roster.target_nodes = crate::mesh::target_nodes(roster.responders.values());
        }
        roster.let_go = state.let_go;
        roster.targeting = state.targeting;
        roster.targets_released = state.targets_released;
        roster.refused = state.refused;
        roster.duplicate_batches = state.duplicate_batches;
        roster.sequence_gaps = state.sequence_gaps;
        roster
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::SocketAddr;

    use multinet_proto::control::Role;
    use multinet_proto::network::CephNetwork;

    use super::*;
    use crate::roster::{ConnectionEvent, Expect, Snapshot};

    fn listening_on(port: u16) -> Vec<Listener> {
        let at = |p: u16| SocketAddr::from(([198, 18, 0, 1], p));
        vec![Listener {
            network: CephNetwork::Public,
            http: at(port),
            https: at(port + 1),
        }]
    }

    fn addresses(port: u16) -> BTreeSet<SocketAddr> {
        listening_on(port)
            .iter()
            .flat_map(|l| [l.http, l.https])
            .collect()
    }

    /// The server listened on 9000/9001, then (restarted) on 9100/9101: the checkpoint keeps
    /// 9000/9001 let go, so a resumed run's live metrics do not bring their paths back (they
    /// did: the roster's record of them began empty). A checkpoint written before the field
    /// was kept reads with none.
    #[actix_rt::test]
    async fn a_checkpoint_keeps_the_listeners_let_go_and_an_older_one_reads_with_none() {
        let matrix = MatrixActor::new(0).start();
        let roster = AgentRoster::new("r".into(), matrix.clone()).start();
        let server = AgentIdentity {
            role: Role::Server,
            node: "n1".into(),
            pod: "server".into(),
            networks: vec![CephNetwork::Public],
        };
        roster.send(Expect(vec![server])).await.expect("roster");
        for port in [9000, 9100] {
            let listeners = listening_on(port);
            let pod = "server".to_string();
            let ready = ConnectionEvent::ServerReady { pod, listeners };
            roster.send(ready).await.expect("roster");
        }
        let (state, _) = roster.send(TakeState).await.expect("roster");
        assert_eq!(state.let_go, addresses(9000));

        let restored = AgentRoster::restore("r".into(), matrix, Instant::now(), state.clone());
        let snapshot = restored.start().send(Snapshot).await.expect("roster");
        assert_eq!(snapshot.let_go, addresses(9000));

        let mut older = serde_json::to_value(&state).expect("serializes");
        let fields = older.as_object_mut().expect("an object");
        assert!(fields.remove("let_go").is_some());
        let older: RosterState = serde_json::from_value(older).expect("an older checkpoint");
        assert!(older.let_go.is_empty());
    }
}
