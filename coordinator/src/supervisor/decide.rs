//! The supervisor's decisions, pure: whether an agent is gone, whether a stage is over and
//! how, and what became of each agent, from what the roster and the backend said and from the
//! time, which the caller passes in. No actor, no backend and no clock here, so every
//! decision is tested with plain values; the supervisor reads the clock once per look at the
//! run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use multinet_proto::control::Role;

use crate::findings::AgentFate;
use crate::roster::{AgentView, RosterSnapshot};
use crate::scheduler::PodStatus;

/// How long an agent may be disconnected before it counts as lost.
pub(super) const LOST_AFTER: Duration = Duration::from_secs(3);

/// An agent's fate from what the backend said of its pod; None while the pod runs.
pub(super) fn fate_of(status: PodStatus) -> Option<AgentFate> {
    match status {
        PodStatus::Started(_) => None,
        PodStatus::NoAddress { network, reason } => Some(AgentFate::NoAddress { network, reason }),
        PodStatus::NotStarted { reason } => Some(AgentFate::NotStarted { reason }),
    }
}

/// How the server stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerStage {
    /// Not ready yet; look again.
    Waiting,
    /// The server said where it listens.
    Ready,
    /// The server is gone before it was ready.
    Gone,
    /// The stage deadline passed first.
    Deadline,
}

/// How the probe stage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeStage {
    /// Clients are still probing; look again.
    Probing,
    /// Every client and host checker passed or is gone.
    Done,
    /// The server agent is gone: nothing can pass any more.
    ServerLost,
    /// The stage deadline passed first.
    Deadline,
}

impl ProbeStage {
    /// The stage's outcome in the report's `stages`.
    pub(super) fn outcome(self) -> &'static str {
        match self {
            Self::Probing => "probing",
            Self::Done => "done",
            Self::ServerLost => "server lost",
            Self::Deadline => "deadline",
        }
    }
}

/// What the supervisor knows of the run at one moment, besides the roster's snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moment<'a> {
    /// Fates the backend reported (no address, not started, exited), by pod.
    pub scheduler_fates: &'a BTreeMap<String, AgentFate>,
    /// When each agent passed every network, ms since the start, by pod.
    pub passed_at: &'a BTreeMap<String, u64>,
    /// When the run started.
    pub started: Instant,
    /// Now.
    pub now: Instant,
}

impl Moment<'_> {
    /// Whether an agent is gone: the backend reported its pod's fate, the agent gave up, or
    /// its connection has been gone for [`LOST_AFTER`].
    pub(super) fn is_gone(&self, view: &AgentView) -> bool {
        self.scheduler_fates.contains_key(&view.expected.pod)
            || view.failed.is_some()
            || self.lost_for(view).is_some()
    }

    /// How long the agent has been disconnected, once that is [`LOST_AFTER`] or more.
    fn lost_for(&self, view: &AgentView) -> Option<Duration> {
        view.disconnected_at
            .map(|t| self.now.saturating_duration_since(t))
            .filter(|gone| *gone >= LOST_AFTER)
    }

    /// Milliseconds since the run started.
    pub(super) fn elapsed_ms(&self) -> u64 {
        self.now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// The server stage, begun `in_stage` ago with `deadline` to go, given the roster now.
    pub(super) fn server_stage(
        &self,
        snap: &RosterSnapshot,
        in_stage: Duration,
        deadline: Duration,
    ) -> ServerStage {
        if snap.listeners.is_some() {
            ServerStage::Ready
        } else if snap.agents.iter().any(|a| self.is_gone(a)) {
            ServerStage::Gone
        } else if in_stage >= deadline {
            ServerStage::Deadline
        } else {
            ServerStage::Waiting
        }
    }

    /// The probe stage, begun `in_stage` ago with `deadline` to go, given the roster's agents
    /// now (and [`Self::passed_at`]).
    pub(super) fn probe_stage(
        &self,
        agents: &[AgentView],
        in_stage: Duration,
        deadline: Duration,
    ) -> ProbeStage {
        let server_gone = agents
            .iter()
            .any(|a| a.expected.role == Role::Server && self.is_gone(a));
        let settled = agents
            .iter()
            .filter(|a| a.expected.role != Role::Server)
            .all(|a| self.passed_at.contains_key(&a.expected.pod) || self.is_gone(a));
        if server_gone {
            ProbeStage::ServerLost
        } else if settled {
            ProbeStage::Done
        } else if in_stage >= deadline {
            ProbeStage::Deadline
        } else {
            ProbeStage::Probing
        }
    }

    /// What became of an agent, as the run ends: the backend's word first (an agent whose
    /// process exited without ever connecting never connected), then the agent's own, then
    /// the connection's.
    pub(super) fn fate(&self, view: &AgentView) -> AgentFate {
        if let Some(f) = self.scheduler_fates.get(&view.expected.pod) {
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
        } else if let Some(gone) = self.lost_for(view) {
            AgentFate::Lost {
                at_ms: self.elapsed_ms().saturating_sub(gone.as_millis() as u64),
            }
        } else {
            AgentFate::Reported
        }
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::control::AgentIdentity;
    use multinet_proto::network::CephNetwork;

    use super::*;

    fn view(pod: &str, role: Role) -> AgentView {
        AgentView {
            expected: AgentIdentity {
                role,
                node: "n1".into(),
                pod: pod.into(),
                networks: vec![CephNetwork::Public],
            },
            connected: true,
            ever_connected: true,
            disconnected_at: None,
            failed: None,
            batches: 0,
            produced: 0,
            recorded: 0,
            dropped: 0,
            addresses: Vec::new(),
            egress: None,
        }
    }

    fn disconnected(mut view: AgentView, at: Instant) -> AgentView {
        view.connected = false;
        view.disconnected_at = Some(at);
        view
    }

    struct World {
        fates: BTreeMap<String, AgentFate>,
        passed_at: BTreeMap<String, u64>,
        started: Instant,
    }

    impl World {
        fn new() -> Self {
            Self {
                fates: BTreeMap::new(),
                passed_at: BTreeMap::new(),
                started: Instant::now(),
            }
        }

        /// The moment `after` the start.
        fn at(&self, after: Duration) -> Moment<'_> {
            Moment {
                scheduler_fates: &self.fates,
                passed_at: &self.passed_at,
                started: self.started,
                now: self.started + after,
            }
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_pod_status_is_a_fate_unless_started() {
        assert_eq!(fate_of(PodStatus::Started(Vec::new())), None);
        assert_eq!(
            fate_of(PodStatus::NotStarted {
                reason: "Unschedulable".into()
            }),
            Some(AgentFate::NotStarted {
                reason: "Unschedulable".into()
            })
        );
        assert_eq!(
            fate_of(PodStatus::NoAddress {
                network: CephNetwork::Cluster,
                reason: "IPAM".into()
            }),
            Some(AgentFate::NoAddress {
                network: CephNetwork::Cluster,
                reason: "IPAM".into()
            })
        );
    }

    #[test]
    fn an_agent_is_gone_after_three_seconds_disconnected_or_by_its_word() {
        let mut world = World::new();
        let dropped = disconnected(view("c", Role::Client), world.started + S);
        assert!(!world.at(3 * S).is_gone(&dropped), "2 s without connection");
        assert!(world.at(4 * S).is_gone(&dropped), "3 s without connection");
        let mut failed = view("c", Role::Client);
        failed.failed = Some("bind failed".into());
        assert!(world.at(S).is_gone(&failed));
        world
            .fates
            .insert("c".into(), AgentFate::Lost { at_ms: 500 });
        assert!(world.at(S).is_gone(&view("c", Role::Client)));
    }

    #[test]
    fn the_server_stage_ends_ready_gone_or_at_its_deadline() {
        let world = World::new();
        let waiting = RosterSnapshot {
            agents: vec![view("server", Role::Server)],
            ..RosterSnapshot::default()
        };
        let now = world.at(2 * S);
        assert_eq!(
            now.server_stage(&waiting, 2 * S, 10 * S),
            ServerStage::Waiting
        );
        assert_eq!(
            now.server_stage(&waiting, 10 * S, 10 * S),
            ServerStage::Deadline
        );
        let ready = RosterSnapshot {
            listeners: Some(Vec::new()),
            ..waiting.clone()
        };
        // Ready wins over the deadline passing while the roster was asked.
        assert_eq!(now.server_stage(&ready, 10 * S, 10 * S), ServerStage::Ready);
        let gone = RosterSnapshot {
            agents: vec![disconnected(view("server", Role::Server), world.started)],
            ..RosterSnapshot::default()
        };
        assert_eq!(
            world.at(5 * S).server_stage(&gone, 5 * S, 10 * S),
            ServerStage::Gone
        );
    }

    #[test]
    fn the_probe_stage_is_done_when_every_client_passed_or_is_gone() {
        let mut world = World::new();
        let agents = vec![
            view("server", Role::Server),
            view("client-a", Role::Client),
            disconnected(view("client-b", Role::Client), world.started),
            view("host-n1", Role::HostCheck),
        ];
        assert_eq!(
            world.at(2 * S).probe_stage(&agents, S, 10 * S),
            ProbeStage::Probing,
            "nobody passed, client-b not yet lost"
        );
        world.passed_at.insert("client-a".into(), 1500);
        world.passed_at.insert("host-n1".into(), 1700);
        assert_eq!(
            world.at(2 * S).probe_stage(&agents, S, 10 * S),
            ProbeStage::Probing,
            "client-b is not lost yet"
        );
        assert_eq!(
            world.at(3 * S).probe_stage(&agents, 2 * S, 10 * S),
            ProbeStage::Done
        );
        assert_eq!(ProbeStage::Done.outcome(), "done");
    }

    #[test]
    fn the_probe_stage_stops_when_the_server_is_lost_or_at_its_deadline() {
        let world = World::new();
        let probing = vec![view("server", Role::Server), view("client-a", Role::Client)];
        assert_eq!(
            world.at(12 * S).probe_stage(&probing, 10 * S, 10 * S),
            ProbeStage::Deadline
        );
        assert_eq!(ProbeStage::Deadline.outcome(), "deadline");
        let mut server = view("server", Role::Server);
        server.failed = Some("no address".into());
        let lost = vec![server, view("client-a", Role::Client)];
        // The server's loss wins over the deadline.
        assert_eq!(
            world.at(12 * S).probe_stage(&lost, 10 * S, 10 * S),
            ProbeStage::ServerLost
        );
        assert_eq!(ProbeStage::ServerLost.outcome(), "server lost");
    }

    #[test]
    fn an_agents_fate_prefers_the_backends_word_then_its_own_then_the_connections() {
        let mut world = World::new();
        let ok = view("c", Role::Client);
        assert_eq!(world.at(5 * S).fate(&ok), AgentFate::Reported);

        let mut silent = view("c", Role::Client);
        silent.ever_connected = false;
        assert_eq!(world.at(5 * S).fate(&silent), AgentFate::NeverConnected);

        // Disconnected 2 s after the start: lost once 3 s have passed, at 2000 ms.
        let dropped = disconnected(view("c", Role::Client), world.started + 2 * S);
        assert_eq!(world.at(4 * S).fate(&dropped), AgentFate::Reported);
        assert_eq!(
            world.at(9 * S).fate(&dropped),
            AgentFate::Lost { at_ms: 2000 }
        );

        let mut failed = dropped.clone();
        failed.failed = Some("bind failed".into());
        assert_eq!(
            world.at(9 * S).fate(&failed),
            AgentFate::Failed {
                reason: "bind failed".into()
            }
        );

        world
            .fates
            .insert("c".into(), AgentFate::Lost { at_ms: 700 });
        assert_eq!(
            world.at(9 * S).fate(&failed),
            AgentFate::Lost { at_ms: 700 }
        );
        // A process that exited without ever connecting never connected.
        assert_eq!(world.at(9 * S).fate(&silent), AgentFate::NeverConnected);
        world.fates.insert(
            "c".into(),
            AgentFate::NotStarted {
                reason: "Unschedulable".into(),
            },
        );
        assert_eq!(
            world.at(9 * S).fate(&silent),
            AgentFate::NotStarted {
                reason: "Unschedulable".into()
            }
        );
    }
}
