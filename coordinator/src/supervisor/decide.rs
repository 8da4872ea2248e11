//! The supervisor's decisions, pure: whether an agent is gone, whether an agent has failed
//! beyond doubt (the early verdict), whether a stage is over and how, and what became of each
//! agent, from what the roster, the matrix and the backend said and from the time, which the
//! caller passes in. No actor, no backend and no clock here, so every decision is tested with
//! plain values; the supervisor reads the clock once per look at the run.
//!
//! # Stranded agents
//!
//! In a mesh an agent probes its node's peers on each network; one whose every peer
//! responder on a network is gone cannot pass, and would wait out `resourceTimeout`. It is
//! *stranded* once every one of them has been gone for Rook's `flakyThreshold` (the early
//! verdict's window, as long as a path must fail to be dead) — not at once: a responder
//! reconnecting, or restarted quickly, usually comes back within it (a slower restart
//! strands its probers). A stranded agent is settled, never passed: the stage may end
//! without it (`decided`). The supervisor keeps the record: a soak that follows records the
//! agent's pass once its responders are back and it passes on every network, and the report
//! names each network a stranded agent that never passed left unvalidated from its node
//! (`not_validated`).
//!
//! # The early verdict
//!
//! A run ends as soon as its outcome cannot change: every client and host checker has passed,
//! is gone, has *failed beyond doubt*, or is stranded (above). An agent has failed beyond
//! doubt when
//!
//! 1. a reference passes: some other agent passed every network (clients on the server's node,
//!    or on other nodes), so the server, the control plane and the placement work — what fails
//!    is this agent's path, not a slow start; and Rook's flaky window (`flakyThreshold`, counted
//!    from the first agent that passed, as Rook counts it from the first Ready client) is over,
//!    so a clean pass is no longer possible whatever this agent does next; and
//! 2. on one network, some of its paths (target, probe kind) have never succeeded, and those
//!    paths together failed over at least `flakyThreshold` of its own probing and at least as
//!    many probes as Rook's success threshold (12): as much evidence to call a path dead as
//!    Rook asks to call a client Ready. (Together, because a blocked probe waits out the probe
//!    timeout, 4 s by default, and an agent probes its kinds one after another: one path
//!    alone gets a result only every few rounds.)
//!
//! A path with even one success is lossy, not dead, and is never ended early: random loss
//! keeps probing until the client passes (late, so Rook's flaky warning) or `resourceTimeout`
//! passes, exactly as in Rook. Without any reference (nothing passes anywhere) the run waits for
//! `resourceTimeout` too — unless the agents left are stranded, which needs no reference: a
//! slow start and a dead network look alike until something passes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use multinet_proto::control::{AgentIdentity, Listener, Role};
use multinet_proto::network::CephNetwork;

use crate::findings::AgentFate;
use crate::matrix_actor::Standing;
use crate::mesh::{Responder, Targeting};
use crate::roster::{AgentView, RosterSnapshot};
use crate::scheduler::PodStatus;

/// How long an agent may be disconnected before it counts as lost.
pub(super) const LOST_AFTER: Duration = Duration::from_secs(3);

/// An agent's fate from what the backend said of its pod; None while the pod runs.
/// The passes of one look: each pod whose every `(pod, network)` pair's standing passes
/// (`pairs` and `standings` in the same order) is recorded passed — at `now_ms`, unless it
/// passed before (Rook's readiness rule reads the first pass) — and its pass to make again
/// is made. Returns those pods, each once.
pub(super) fn record_passes(
    pairs: &[(String, CephNetwork)],
    standings: &[Standing],
    passed_at: &mut BTreeMap<String, u64>,
    must_pass_again: &mut BTreeSet<String>,
    now_ms: u64,
) -> Vec<String> {
    let mut per_pod: BTreeMap<&str, bool> = BTreeMap::new();
    for ((pod, _), standing) in pairs.iter().zip(standings) {
        *per_pod.entry(pod.as_str()).or_insert(true) &= standing.passes;
    }
    let passed: Vec<String> = per_pod
        .into_iter()
        .filter(|(_, passes)| *passes)
        .map(|(pod, _)| pod.to_string())
        .collect();
    for pod in &passed {
        passed_at.entry(pod.clone()).or_insert(now_ms);
        must_pass_again.remove(pod);
    }
    passed
}

/// The planned pods a soak looks at for a pass where they are stranded: stranded, and not
/// failed beyond doubt (the soak passes nobody who did).
pub(super) fn stranded_to_check(
    plan: &[AgentIdentity],
    stranded: &BTreeMap<String, Vec<CephNetwork>>,
    failed_for_certain: &BTreeSet<String>,
) -> Vec<AgentIdentity> {
    plan.iter()
        .filter(|p| stranded.contains_key(&p.pod) && !failed_for_certain.contains(&p.pod))
        .cloned()
        .collect()
}

pub(super) fn fate_of(status: PodStatus) -> Option<AgentFate> {
    match status {
        PodStatus::Started(_) => None,
        PodStatus::NoAddress { network, reason } => Some(AgentFate::NoAddress { network, reason }),
        PodStatus::NotStarted { reason } => Some(AgentFate::NotStarted { reason }),
    }
}

/// The responders (pods) whose listeners changed from `before` to `now` (the roster's
/// [`RosterSnapshot::responders`] at two looks at the run): a new `ServerReady` with other
/// addresses or ports — a process that restarted, whether or not it was away long enough to
/// be gone ([`LOST_AFTER`]) or the backend saw it exit. A responder's first listeners are no
/// change; the same listeners said again after a reconnect are none either, in whatever
/// order (nothing its probers reach has changed).
pub(super) fn relistened(
    before: &BTreeMap<String, Responder>,
    now: &BTreeMap<String, Responder>,
) -> BTreeSet<String> {
    let set = |r: &Responder| r.listeners.iter().copied().collect::<HashSet<Listener>>();
    now.iter()
        .filter(|(pod, r)| before.get(*pod).is_some_and(|b| set(b) != set(r)))
        .map(|(pod, _)| pod.clone())
        .collect()
}

/// Who must pass again after a responder listened anew ([`Moment::pass_again`]), by pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PassAgain {
    /// Agents here now: not settled until they pass again.
    pub now: BTreeSet<String>,
    /// Agents gone now: their pass stands while they stay gone; one that comes back must
    /// pass again.
    pub when_back: BTreeSet<String>,
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
    /// Every client and host checker passed, is gone, failed beyond doubt or is stranded (at
    /// least one of those left): the verdict cannot change any more.
    Decided,
    /// The server agent is gone (a mesh's every responder): nothing can pass any more.
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
            Self::Decided => "decided",
            Self::ServerLost => "server lost",
            Self::Deadline => "deadline",
        }
    }
}

/// Rook's two numbers as the early verdict reads them (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EarlyVerdict {
    /// Rook's `flakyThreshold`: how long after the first agent passed a clean pass is still
    /// possible, and how long a path must have failed, without one success, to be dead.
    pub window: Duration,
    /// Rook's success threshold (12): the fewest probes that call a path dead.
    pub min_failures: u64,
}

/// What the supervisor knows of the run at one moment, besides the roster's snapshot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moment<'a> {
    /// Fates the backend reported (no address, not started, exited), by pod.
    pub scheduler_fates: &'a BTreeMap<String, AgentFate>,
    /// When each agent passed every network, ms since the start, by pod.
    pub passed_at: &'a BTreeMap<String, u64>,
    /// Agents that failed beyond doubt at the last look ([`Moment::failed_for_certain`]).
    pub failed_for_certain: &'a BTreeSet<String>,
    /// Agents stranded at the last look, with the networks they are stranded on
    /// ([`Moment::stranded`]).
    pub stranded: &'a BTreeMap<String, Vec<CephNetwork>>,
    /// Agents that passed before a responder they probe listened anew (it came back, or
    /// said new listeners: [`Moment::pass_again`]), and must pass again on its listeners
    /// now before they count as settled.
    pub must_pass_again: &'a BTreeSet<String>,
    /// When the run started.
    pub started: Instant,
    /// Now.
    pub now: Instant,
}

impl Moment<'_> {
    /// Whether an agent is gone: the backend reported its pod's fate, the agent gave up, or
    /// its connection has been gone for [`LOST_AFTER`].
    pub(super) fn is_gone(&self, view: &AgentView) -> bool {
        self.backend_fate(view).is_some() || view.failed.is_some() || self.lost_for(view).is_some()
    }

    /// The fate the backend reported for the agent's pod, unless it is a process that exited
    /// and a new process of the agent said Hello for every exit the backend saw (restarted, as
    /// a kubelet restarts a container, or the lab's `kill-agent` with `for` — in either order:
    /// a backend may notice the restart after the new process connected): then it is back,
    /// and its time away is an agent outage ([`crate::roster::absences`]), not its fate.
    fn backend_fate(&self, view: &AgentView) -> Option<&AgentFate> {
        self.scheduler_fates
            .get(&view.expected.pod)
            .filter(|fate| match fate {
                AgentFate::Lost { .. } => view.exits == 0 || view.restarts < view.exits,
                _ => true,
            })
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

    /// Whether an agent that has not passed has failed beyond doubt, given how each of its
    /// (network) pairs stands in the matrix now: a reference passed at least `rule.window`
    /// ago, and on one network its paths that never succeeded failed over `rule.window` and
    /// `rule.min_failures` probes (the module's documentation says why).
    pub(super) fn failed_for_certain(&self, standings: &[Standing], rule: EarlyVerdict) -> bool {
        let window_ms = rule.window.as_millis() as u64;
        let window_over = self
            .passed_at
            .values()
            .min()
            .is_some_and(|first| self.elapsed_ms().saturating_sub(*first) >= window_ms);
        window_over
            && standings.iter().any(|s| {
                s.never_succeeded.is_some_and(|dead| {
                    dead.span_ms >= window_ms && dead.probes >= rule.min_failures
                })
            })
    }

    /// The server stage, begun `in_stage` ago with `deadline` to go, given the roster now:
    /// ready once every server (a mesh's every responder) said where it listens or is gone,
    /// and at least one said it; over when every one is gone before (the single server's loss
    /// leaves nothing to probe; a mesh goes on with the responders it has, and the report
    /// names the one that is gone — no address, not started — as its own finding).
    pub(super) fn server_stage(
        &self,
        snap: &RosterSnapshot,
        in_stage: Duration,
        deadline: Duration,
    ) -> ServerStage {
        let servers: Vec<&AgentView> = snap
            .agents
            .iter()
            .filter(|a| a.expected.role == Role::Server)
            .collect();
        let ready = |a: &&AgentView| snap.responders.contains_key(&a.expected.pod);
        let here = |a: &&AgentView| ready(a) && !self.is_gone(a);
        if servers.iter().any(here) && servers.iter().all(|a| ready(a) || self.is_gone(a)) {
            ServerStage::Ready
        } else if !servers.is_empty() && servers.iter().all(|a| self.is_gone(a)) {
            ServerStage::Gone
        } else if in_stage >= deadline {
            ServerStage::Deadline
        } else {
            ServerStage::Waiting
        }
    }

    /// The probe stage, begun `in_stage` ago with `deadline` to go, given the roster's agents
    /// now (and who passed, failed beyond doubt or is stranded): done when every client and
    /// host checker passed or is gone, decided when the rest of them failed beyond doubt or
    /// are stranded (the module's documentation).
    pub(super) fn probe_stage(
        &self,
        agents: &[AgentView],
        in_stage: Duration,
        deadline: Duration,
    ) -> ProbeStage {
        let server_gone = self.servers_gone(agents);
        let unsettled = |a: &&AgentView| {
            a.expected.role != Role::Server
                && (!self.passed_at.contains_key(&a.expected.pod)
                    || self.must_pass_again.contains(&a.expected.pod))
                && !self.is_gone(a)
        };
        let open: Vec<&AgentView> = agents.iter().filter(unsettled).collect();
        if server_gone {
            ProbeStage::ServerLost
        } else if open.is_empty() {
            ProbeStage::Done
        } else if open.iter().all(|a| {
            self.failed_for_certain.contains(&a.expected.pod)
                || self.stranded.contains_key(&a.expected.pod)
        }) {
            ProbeStage::Decided
        } else if in_stage >= deadline {
            ProbeStage::Deadline
        } else {
            ProbeStage::Probing
        }
    }

    /// Whether every server is gone: the single server, or a mesh's every responder. A mesh
    /// goes on without a responder that is gone (its peers' paths to it are left out of their
    /// verdict, [`Moment::gone_servers`], and the report says it was lost); the run ends only
    /// when nothing is left to probe.
    pub(super) fn servers_gone(&self, agents: &[AgentView]) -> bool {
        let mut servers = agents
            .iter()
            .filter(|a| a.expected.role == Role::Server)
            .peekable();
        servers.peek().is_some() && servers.all(|a| self.is_gone(a))
    }

    /// The clients and host checkers not gone and not settled by a pass that are stranded
    /// now, by pod, with the networks they are stranded on (the module's documentation): in
    /// a mesh (`targeting`), on each of those networks every responder their node probes
    /// there has been gone since at least `grace` ago (`gone_since`: when each responder pod
    /// was first seen gone, while it still is). A node that probes no responder on a network
    /// is not stranded there (nothing was ever asked of it).
    pub(super) fn stranded(
        &self,
        agents: &[AgentView],
        targeting: &Targeting,
        gone_since: &BTreeMap<String, Instant>,
        grace: Duration,
    ) -> BTreeMap<String, Vec<CephNetwork>> {
        let long_gone = |node: &str, network| {
            let mut responders = agents.iter().filter(|a| {
                a.expected.role == Role::Server
                    && a.expected.node == node
                    && a.expected.networks.contains(&network)
            });
            responders.clone().next().is_some()
                && responders.all(|r| {
                    gone_since.get(&r.expected.pod).is_some_and(|since| {
                        self.is_gone(r) && self.now.saturating_duration_since(*since) >= grace
                    })
                })
        };
        agents
            .iter()
            .filter(|a| a.expected.role != Role::Server && !self.is_gone(a))
            .filter(|a| {
                !self.passed_at.contains_key(&a.expected.pod)
                    || self.must_pass_again.contains(&a.expected.pod)
            })
            .filter_map(|a| {
                let on: Vec<CephNetwork> = a
                    .expected
                    .networks
                    .iter()
                    .copied()
                    .filter(|network| {
                        targeting
                            .peers_of(*network, &a.expected.node)
                            .is_some_and(|peers| {
                                !peers.is_empty() && peers.iter().all(|p| long_gone(p, *network))
                            })
                    })
                    .collect();
                (!on.is_empty()).then(|| (a.expected.pod.clone(), on))
            })
            .collect()
    }

    /// The servers (a mesh's responders) gone now, by pod.
    pub(super) fn gone_servers(&self, agents: &[AgentView]) -> BTreeSet<String> {
        agents
            .iter()
            .filter(|a| a.expected.role == Role::Server && self.is_gone(a))
            .map(|a| a.expected.pod.clone())
            .collect()
    }

    /// The responders that said where they listen and are not gone, by pod: what a mesh's
    /// agents pass on, and what a bench measures.
    pub(super) fn responders_here(
        &self,
        snap: &RosterSnapshot,
    ) -> BTreeMap<String, crate::mesh::Responder> {
        let gone = self.gone_servers(&snap.agents);
        snap.responders
            .iter()
            .filter(|(pod, _)| !gone.contains(*pod))
            .map(|(pod, r)| (pod.clone(), r.clone()))
            .collect()
    }

    /// The agents that must pass again because the responders `relistened` (pods) listen
    /// anew: every client and host checker that passed and probes one of them on a network
    /// it is on ([`Targeting::probes`]; in a single-server run, everyone probes the server).
    /// Those not gone must pass again now ([`PassAgain::now`]); one gone keeps its pass while
    /// it stays gone — it probes nothing, and a restart elsewhere does not take its pass away
    /// — but must pass again if it comes back ([`PassAgain::when_back`],
    /// [`Moment::back`]): a new process of it probes the new listeners, and its earlier pass
    /// was on the old ones.
    ///
    /// A pass counts only on the listeners an agent probes now, but [`Moment::passed_at`]
    /// is kept once set (it dates the first pass, what Rook's flaky rule reads): without
    /// this, an agent that passed on a responder's old listeners — before it restarted, or
    /// while it was away — would count as passed although it never probed the new ones.
    pub(super) fn pass_again(
        &self,
        agents: &[AgentView],
        targeting: &Targeting,
        relistened: &BTreeSet<String>,
    ) -> PassAgain {
        let nodes: Vec<&str> = agents
            .iter()
            .filter(|a| a.expected.role == Role::Server && relistened.contains(&a.expected.pod))
            .map(|a| a.expected.node.as_str())
            .collect();
        let mut again = PassAgain::default();
        for agent in agents
            .iter()
            .filter(|a| a.expected.role != Role::Server)
            .filter(|a| self.passed_at.contains_key(&a.expected.pod))
            .filter(|a| {
                a.expected.networks.iter().any(|network| {
                    nodes
                        .iter()
                        .any(|node| targeting.probes(*network, &a.expected.node, node))
                })
            })
        {
            let pod = agent.expected.pod.clone();
            if self.is_gone(agent) {
                again.when_back.insert(pod);
            } else {
                again.now.insert(pod);
            }
        }
        again
    }

    /// Of the agents that must pass again once back (`when_back`, pods): those that are back,
    /// not gone any more ([`Moment::is_gone`]): a new process that said Hello for every exit
    /// the backend saw, or a connection back after it was lost (gone for [`LOST_AFTER`]).
    pub(super) fn back(
        &self,
        agents: &[AgentView],
        when_back: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        agents
            .iter()
            .filter(|a| when_back.contains(&a.expected.pod) && !self.is_gone(a))
            .map(|a| a.expected.pod.clone())
            .collect()
    }

    /// What became of an agent, as the run ends: the backend's word first (an agent whose
    /// process exited without ever connecting never connected), then the agent's own, then
    /// the connection's.
    pub(super) fn fate(&self, view: &AgentView) -> AgentFate {
        if let Some(f) = self.backend_fate(view) {
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
            exits: 0,
            absences: Default::default(),
            restarts: 0,
            lost_in_restarts: 0,
            lost_in_resume: 0,
        }
    }

    /// A pod passes on a look only when it passes on every network it probes; a pass keeps
    /// the time of the first one (Rook's readiness rule reads it) and makes the pass to make
    /// again; a pod to pass again that does not pass keeps it to make.
    #[test]
    fn a_look_records_the_pods_passing_on_every_network_and_keeps_their_first_pass() {
        let (p, c) = (CephNetwork::Public, CephNetwork::Cluster);
        let standing = |passes| Standing {
            passes,
            never_succeeded: None,
        };
        let pairs: Vec<(String, CephNetwork)> = [
            ("both", p),
            ("both", c),
            ("one", p),
            ("one", c),
            ("again", p),
            ("again-fails", p),
        ]
        .map(|(pod, n)| (pod.to_string(), n))
        .to_vec();
        let standings = [true, true, true, false, true, false].map(standing);
        let mut passed_at =
            BTreeMap::from([("again".to_string(), 500), ("again-fails".into(), 600)]);
        let mut again: BTreeSet<String> = ["again", "again-fails"].map(String::from).into();
        let passed = record_passes(&pairs, &standings, &mut passed_at, &mut again, 9_000);
        assert_eq!(passed, ["again", "both"]);
        assert_eq!(
            passed_at,
            BTreeMap::from([
                ("again".to_string(), 500),
                ("again-fails".into(), 600),
                ("both".into(), 9_000)
            ])
        );
        assert_eq!(again, BTreeSet::from(["again-fails".to_string()]));
    }

    /// A soak looks for a pass only at the stranded pods that did not fail beyond doubt.
    #[test]
    fn a_soak_looks_at_the_stranded_pods_that_did_not_fail_beyond_doubt() {
        let plan: Vec<AgentIdentity> = ["a", "b", "c", "d"]
            .map(|pod| view(pod, Role::Client).expected)
            .to_vec();
        let stranded = BTreeMap::from([
            ("a".to_string(), vec![CephNetwork::Public]),
            ("b".into(), vec![CephNetwork::Public]),
            ("gone-from-plan".into(), vec![CephNetwork::Public]),
        ]);
        let failed: BTreeSet<String> = ["b", "c"].map(String::from).into();
        let pods: Vec<String> = stranded_to_check(&plan, &stranded, &failed)
            .into_iter()
            .map(|p| p.pod)
            .collect();
        assert_eq!(pods, ["a"]);
    }

    /// `view` on `node`.
    fn on(node: &str, mut view: AgentView) -> AgentView {
        view.expected.node = node.into();
        view
    }

    /// A mesh whose nodes probe these responder nodes: (network, node, its peers).
    fn mesh(peers: &[(CephNetwork, &str, &[&str])]) -> Targeting {
        let mut by_network: BTreeMap<CephNetwork, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (network, node, to) in peers {
            by_network
                .entry(*network)
                .or_default()
                .insert(node.to_string(), to.iter().map(|t| t.to_string()).collect());
        }
        Targeting::Mesh {
            peers: by_network,
            peers_per_node: Some(1),
        }
    }

    fn pods(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn disconnected(mut view: AgentView, at: Instant) -> AgentView {
        view.connected = false;
        view.disconnected_at = Some(at);
        view
    }

    struct World {
        fates: BTreeMap<String, AgentFate>,
        passed_at: BTreeMap<String, u64>,
        failed_for_certain: BTreeSet<String>,
        stranded: BTreeMap<String, Vec<CephNetwork>>,
        must_pass_again: BTreeSet<String>,
        started: Instant,
    }

    impl World {
        fn new() -> Self {
            Self {
                fates: BTreeMap::new(),
                passed_at: BTreeMap::new(),
                failed_for_certain: BTreeSet::new(),
                stranded: BTreeMap::new(),
                must_pass_again: BTreeSet::new(),
                started: Instant::now(),
            }
        }

        /// The moment `after` the start.
        fn at(&self, after: Duration) -> Moment<'_> {
            Moment {
                scheduler_fates: &self.fates,
                passed_at: &self.passed_at,
                failed_for_certain: &self.failed_for_certain,
                stranded: &self.stranded,
                must_pass_again: &self.must_pass_again,
                started: self.started,
                now: self.started + after,
            }
        }
    }

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

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

    /// A process that exited and a new process of the agent that said Hello: restarted, back
    /// in the run (its time away is an agent outage, not its fate).
    #[test]
    fn an_agent_whose_process_exited_is_back_once_a_new_process_said_hello() {
        let mut world = World::new();
        world
            .fates
            .insert("c".into(), AgentFate::Lost { at_ms: 10_000 });
        let mut back = view("c", Role::Client);
        back.exits = 1;
        assert!(world.at(11 * S).is_gone(&back), "no new process yet");
        assert_eq!(
            world.at(11 * S).fate(&back),
            AgentFate::Lost { at_ms: 10_000 }
        );
        back.restarts = 1;
        assert!(!world.at(21 * S).is_gone(&back));
        assert_eq!(world.at(21 * S).fate(&back), AgentFate::Reported);
        // Killed again, not (yet) back.
        back.exits = 2;
        assert!(world.at(31 * S).is_gone(&back));
        // The roster has not heard of the exit yet (the same look at the run): it stands.
        back.exits = 0;
        assert!(world.at(31 * S).is_gone(&back));
        // Other fates of the backend stand whatever the agent said.
        world.fates.insert(
            "c".into(),
            AgentFate::NotStarted {
                reason: "image".into(),
            },
        );
        assert!(world.at(21 * S).is_gone(&back));
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
        let responder = |node: &str| crate::mesh::Responder {
            node: node.into(),
            listeners: Vec::new(),
        };
        let ready = RosterSnapshot {
            responders: BTreeMap::from([("server".into(), responder("n1"))]),
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
        // A mesh is ready when every responder is; one gone ends the stage.
        let mesh = RosterSnapshot {
            agents: vec![
                view("server-n1", Role::Server),
                view("server-n2", Role::Server),
            ],
            responders: BTreeMap::from([("server-n1".into(), responder("n1"))]),
            ..RosterSnapshot::default()
        };
        assert_eq!(now.server_stage(&mesh, 2 * S, 10 * S), ServerStage::Waiting);
        let mut all = mesh.clone();
        all.responders.insert("server-n2".into(), responder("n2"));
        assert_eq!(now.server_stage(&all, 2 * S, 10 * S), ServerStage::Ready);
        // One gone while the other is ready: the mesh goes on with the one it has.
        let mut one_gone = mesh.clone();
        one_gone.agents[1] = disconnected(one_gone.agents[1].clone(), world.started);
        assert_eq!(
            world.at(5 * S).server_stage(&one_gone, 5 * S, 10 * S),
            ServerStage::Ready
        );
        // One gone while the other is not ready yet: wait for it.
        let mut none_ready = one_gone.clone();
        none_ready.responders.clear();
        assert_eq!(
            world.at(5 * S).server_stage(&none_ready, 5 * S, 10 * S),
            ServerStage::Waiting
        );
        // Every one gone — one of them after it said where it listens: over, not ready.
        let mut ready_then_gone = one_gone.clone();
        ready_then_gone.agents[0] = disconnected(ready_then_gone.agents[0].clone(), world.started);
        assert_eq!(
            world
                .at(5 * S)
                .server_stage(&ready_then_gone, 5 * S, 10 * S),
            ServerStage::Gone
        );
        let mut all_gone = none_ready.clone();
        all_gone.agents[0] = disconnected(all_gone.agents[0].clone(), world.started);
        assert_eq!(
            world.at(5 * S).server_stage(&all_gone, 5 * S, 10 * S),
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

    /// Rook's defaults: a 30 s flaky threshold, 12 consecutive successes.
    const ROOK: EarlyVerdict = EarlyVerdict {
        window: Duration::from_secs(30),
        min_failures: 12,
    };

    fn dead(probes: u64, span_ms: u64) -> Standing {
        Standing {
            passes: false,
            never_succeeded: Some(crate::matrix::NeverSucceeded { probes, span_ms }),
        }
    }

    const LOSSY: Standing = Standing {
        passes: false,
        never_succeeded: None,
    };

    #[test]
    fn a_path_that_never_succeeded_for_the_flaky_threshold_fails_beyond_doubt_once_a_reference_passed()
     {
        let mut world = World::new();
        // Blocked paths: 12 probes over 32 s, none succeeded.
        let blocked = [LOSSY, dead(12, 32_000)];
        assert!(
            !world.at(40 * S).failed_for_certain(&blocked, ROOK),
            "no reference passed: a slow start and a dead network look alike"
        );
        world.passed_at.insert("client-n1-osd-0".into(), 2_500);
        assert!(
            !world.at(32 * S).failed_for_certain(&blocked, ROOK),
            "29.5 s after the first pass: Rook's flaky window is still open"
        );
        assert!(world.at(33 * S).failed_for_certain(&blocked, ROOK));
        // Its own path must have failed for the whole window and for 12 probes.
        assert!(
            !world
                .at(60 * S)
                .failed_for_certain(&[dead(140, 28_000)], ROOK)
        );
        let slow = EarlyVerdict {
            window: Duration::from_secs(5),
            ..ROOK
        };
        // Probing every 5 s, 6 failures in 30 s are not enough evidence: lossy paths get that.
        assert!(
            !world
                .at(60 * S)
                .failed_for_certain(&[dead(7, 30_000)], slow)
        );
        assert!(
            world
                .at(80 * S)
                .failed_for_certain(&[dead(12, 55_000)], slow)
        );
        // A path with one success is lossy: random loss is never ended early.
        assert!(!world.at(170 * S).failed_for_certain(&[LOSSY, LOSSY], ROOK));
    }

    #[test]
    fn the_probe_stage_is_decided_when_every_agent_left_failed_beyond_doubt() {
        let mut world = World::new();
        let agents = vec![
            view("server", Role::Server),
            view("client-a", Role::Client),
            view("client-b", Role::Client),
            view("host-n2", Role::HostCheck),
        ];
        world.passed_at.insert("client-a".into(), 2_000);
        world.failed_for_certain.insert("client-b".into());
        assert_eq!(
            world.at(40 * S).probe_stage(&agents, 38 * S, 180 * S),
            ProbeStage::Probing,
            "the host checker has neither passed nor failed beyond doubt"
        );
        world.failed_for_certain.insert("host-n2".into());
        assert_eq!(
            world.at(40 * S).probe_stage(&agents, 38 * S, 180 * S),
            ProbeStage::Decided
        );
        assert_eq!(ProbeStage::Decided.outcome(), "decided");
        // Passing wins: once everyone passed, the stage is done whatever was said before.
        world.passed_at.insert("client-b".into(), 41_000);
        world.passed_at.insert("host-n2".into(), 41_000);
        assert_eq!(
            world.at(41 * S).probe_stage(&agents, 39 * S, 180 * S),
            ProbeStage::Done
        );
    }

    /// `--mesh-peers 1` on three nodes: on public n1 probes n1 and n2, n3 probes n3 and n1;
    /// on cluster n1 probes n3. The responders on n1 and n2 disconnect 2 s in (gone from
    /// 5 s); with a 10 s grace n1's client is stranded on public from 15 s on — not before,
    /// whatever was seen of them — and not on cluster (n3's responder is here), and n3's
    /// client never is (its own responder is here). One responder back, and nobody is.
    #[test]
    fn a_mesh_agent_is_stranded_once_its_every_responder_has_been_gone_for_the_grace() {
        let mut world = World::new();
        let grace = 10 * S;
        let targeting = mesh(&[
            (CephNetwork::Public, "n1", &["n1", "n2"]),
            (CephNetwork::Public, "n3", &["n3", "n1"]),
            (CephNetwork::Cluster, "n1", &["n3"]),
        ]);
        let both = |mut v: AgentView| {
            v.expected.networks = vec![CephNetwork::Public, CephNetwork::Cluster];
            v
        };
        let gone_at = world.started + 2 * S;
        let agents = vec![
            disconnected(on("n1", view("server-n1", Role::Server)), gone_at),
            disconnected(on("n2", view("server-n2", Role::Server)), gone_at),
            both(on("n3", view("server-n3", Role::Server))),
            both(on("n1", view("client-n1", Role::Client))),
            on("n3", view("client-n3", Role::Client)),
        ];
        // First seen gone at the look 5 s in.
        let since: BTreeMap<String, Instant> = ["server-n1", "server-n2"]
            .into_iter()
            .map(|p| (p.to_string(), world.started + 5 * S))
            .collect();
        let stranded = |world: &World, at: Duration, since: &BTreeMap<String, Instant>| {
            world.at(at).stranded(&agents, &targeting, since, grace)
        };
        let nobody: BTreeMap<String, Vec<CephNetwork>> = BTreeMap::new();
        let n1_public = BTreeMap::from([("client-n1".to_string(), vec![CephNetwork::Public])]);
        assert_eq!(stranded(&world, 14 * S, &since), nobody);
        assert_eq!(stranded(&world, 15 * S, &since), n1_public);
        // Settled, never passed: the stage is decided once it is all that is left.
        world.passed_at.insert("client-n3".into(), 3_000);
        world.stranded = stranded(&world, 15 * S, &since);
        assert_eq!(
            world.at(15 * S).probe_stage(&agents, 14 * S, 60 * S),
            ProbeStage::Decided
        );
        assert!(!world.passed_at.contains_key("client-n1"));
        // server-n2 back (no longer in `gone_since`, connected): nothing stranded.
        let mut back = since.clone();
        back.remove("server-n2");
        let mut agents_back = agents.clone();
        agents_back[1] = on("n2", view("server-n2", Role::Server));
        assert_eq!(
            world
                .at(20 * S)
                .stranded(&agents_back, &targeting, &back, grace),
            nobody
        );
        // Not a mesh: the single server's loss is `server lost`, no one is stranded.
        assert_eq!(
            world
                .at(20 * S)
                .stranded(&agents, &Targeting::Single, &since, grace),
            nobody
        );
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
    fn a_mesh_goes_on_without_a_lost_responder_until_every_one_is_gone() {
        let world = World::new();
        let responder = |pod: &str, lost: bool| {
            let mut v = view(pod, Role::Server);
            if lost {
                v.failed = Some("killed".into());
            }
            v
        };
        let one_lost = vec![
            responder("server-n1", false),
            responder("server-n2", true),
            view("client-a", Role::Client),
        ];
        let at = world.at(5 * S);
        assert!(!at.servers_gone(&one_lost));
        assert_eq!(
            at.gone_servers(&one_lost),
            BTreeSet::from(["server-n2".to_string()])
        );
        assert_eq!(
            at.probe_stage(&one_lost, 5 * S, 10 * S),
            ProbeStage::Probing
        );
        let all_lost = vec![
            responder("server-n1", true),
            responder("server-n2", true),
            view("client-a", Role::Client),
        ];
        assert_eq!(
            at.probe_stage(&all_lost, 5 * S, 10 * S),
            ProbeStage::ServerLost
        );
        // A client that passed before a responder came back must pass again on it.
        let mut world = World::new();
        world.passed_at.insert("client-a".into(), 2_000);
        let back = vec![
            responder("server-n1", false),
            view("client-a", Role::Client),
        ];
        assert_eq!(
            world.at(5 * S).probe_stage(&back, 5 * S, 10 * S),
            ProbeStage::Done
        );
        world.must_pass_again.insert("client-a".into());
        assert_eq!(
            world.at(5 * S).probe_stage(&back, 5 * S, 10 * S),
            ProbeStage::Probing
        );
        let at = world.at(5 * S);
        // Without any server (never planned) nothing is "lost".
        assert!(!at.servers_gone(&[view("client-a", Role::Client)]));
    }

    /// A responder that restarts within [`LOST_AFTER`] — never gone, its exit never seen by
    /// the backend — says new listeners: whoever passed on its old ones must pass again on
    /// the new ones, a mesh's responder and the single server alike.
    #[test]
    fn whoever_passed_on_a_responder_that_listens_anew_passes_again() {
        let listener = |ip: [u8; 4], port: u16| multinet_proto::control::Listener {
            network: CephNetwork::Public,
            http: std::net::SocketAddr::from((ip, port)),
            https: std::net::SocketAddr::from((ip, port + 1)),
        };
        let responder = |node: &str, l| Responder {
            node: node.into(),
            listeners: vec![l],
        };
        let first = BTreeMap::from([
            (
                "server-n1".to_string(),
                responder("n1", listener([198, 18, 0, 1], 40_000)),
            ),
            (
                "server-n2".to_string(),
                responder("n2", listener([198, 18, 0, 2], 40_100)),
            ),
        ]);
        // Its first listeners are no change, nor the same ones said again on a reconnect.
        assert_eq!(relistened(&BTreeMap::new(), &first), BTreeSet::new());
        assert_eq!(relistened(&first, &first), BTreeSet::new());
        // server-n2's agent restarted: the same address, new ports.
        let mut restarted = first.clone();
        restarted.insert(
            "server-n2".into(),
            responder("n2", listener([198, 18, 0, 2], 41_200)),
        );
        assert_eq!(relistened(&first, &restarted), pods(&["server-n2"]));
        // A new address (its pod made again) is a change too.
        let mut moved = first.clone();
        moved.insert(
            "server-n1".into(),
            responder("n1", listener([198, 18, 0, 9], 40_000)),
        );
        assert_eq!(relistened(&first, &moved), pods(&["server-n1"]));

        // `--mesh-peers 1`: n1 probes n1 and n2, n2 probes n2 and n1, n3 probes n3 and n1.
        let targeting = mesh(&[
            (CephNetwork::Public, "n1", &["n1", "n2"]),
            (CephNetwork::Public, "n2", &["n2", "n1"]),
            (CephNetwork::Public, "n3", &["n3", "n1"]),
        ]);
        let agents = vec![
            on("n1", view("server-n1", Role::Server)),
            on("n2", view("server-n2", Role::Server)),
            on("n3", view("server-n3", Role::Server)),
            on("n1", view("client-n1", Role::Client)),
            on("n2", view("client-n2", Role::Client)),
            on("n3", view("client-n3", Role::Client)),
            on("n3", view("host-n3", Role::HostCheck)),
        ];
        let mut world = World::new();
        for pod in ["client-n1", "client-n3", "host-n3"] {
            world.passed_at.insert(pod.into(), 2_400);
        }
        let at = world.at(4 * S);
        // client-n1 passed on n2's old listeners; client-n2 has not passed (it will on the
        // new ones); n3 does not probe n2.
        assert_eq!(
            at.pass_again(&agents, &targeting, &pods(&["server-n2"]))
                .now,
            pods(&["client-n1"])
        );
        assert_eq!(
            at.pass_again(&agents, &targeting, &pods(&["server-n1"]))
                .now,
            pods(&["client-n1", "client-n3", "host-n3"]),
            "every node probes n1"
        );
        assert_eq!(
            at.pass_again(&agents, &targeting, &BTreeSet::new()),
            PassAgain::default()
        );

        // The single server restarted: every client and host checker that passed.
        let single = vec![
            on("n1", view("server", Role::Server)),
            on("n1", view("client-a", Role::Client)),
            on("n2", view("client-b", Role::Client)),
            on("n2", view("host-n2", Role::HostCheck)),
        ];
        let mut world = World::new();
        world.passed_at.insert("client-a".into(), 2_400);
        world.passed_at.insert("host-n2".into(), 2_600);
        let again = world
            .at(4 * S)
            .pass_again(&single, &Targeting::Single, &pods(&["server"]));
        assert_eq!(again.now, pods(&["client-a", "host-n2"]));
        assert!(again.when_back.is_empty());
        // The stage was over once client-b passed; it goes on until they pass again.
        world.passed_at.insert("client-b".into(), 3_900);
        assert_eq!(
            world.at(4 * S).probe_stage(&single, 2 * S, 60 * S),
            ProbeStage::Done
        );
        world.must_pass_again = again.now;
        assert_eq!(
            world.at(4 * S).probe_stage(&single, 2 * S, 60 * S),
            ProbeStage::Probing
        );
    }

    /// A responder on two networks that says the same listeners again after a reconnect, in
    /// another order, listens where it did: nobody passes again. Another port among them is a
    /// change.
    #[test]
    fn the_same_listeners_said_in_another_order_are_no_change() {
        let listener = |network, ip: [u8; 4], port: u16| Listener {
            network,
            http: std::net::SocketAddr::from((ip, port)),
            https: std::net::SocketAddr::from((ip, port + 1)),
        };
        let public = listener(CephNetwork::Public, [198, 18, 0, 1], 40_000);
        let cluster = listener(CephNetwork::Cluster, [198, 19, 0, 1], 40_002);
        let said = |listeners: Vec<Listener>| {
            BTreeMap::from([(
                "server-n1".to_string(),
                Responder {
                    node: "n1".into(),
                    listeners,
                },
            )])
        };
        let first = said(vec![public, cluster]);
        assert_eq!(
            relistened(&first, &said(vec![cluster, public])),
            BTreeSet::new()
        );
        let moved = listener(CephNetwork::Cluster, [198, 19, 0, 1], 41_000);
        assert_eq!(
            relistened(&first, &said(vec![moved, public])),
            pods(&["server-n1"])
        );
    }

    /// A client that passed and is gone since (lost, failed, its pod's end reported) keeps
    /// its pass when a responder it probed listens anew, while it stays gone: it probes
    /// nothing any more. One that comes back — a new process, or its connection back after
    /// it was lost — must pass again: it probes the new listeners, its pass was on the old.
    #[test]
    fn a_gone_client_that_passed_passes_again_only_if_it_comes_back() {
        let mut world = World::new();
        for pod in ["client-a", "client-b", "client-c", "client-d"] {
            world.passed_at.insert(pod.into(), 2_000);
        }
        world.fates.insert(
            "client-d".into(),
            AgentFate::NotStarted {
                reason: "Evicted".into(),
            },
        );
        let mut failed = view("client-c", Role::Client);
        failed.failed = Some("bind failed".into());
        let agents = vec![
            view("server", Role::Server),
            view("client-a", Role::Client),
            // Disconnected 2.5 s after the start: lost from 5.5 s on.
            disconnected(view("client-b", Role::Client), world.started + 2_500 * MS),
            failed,
            view("client-d", Role::Client),
        ];
        let restarted = pods(&["server"]);
        assert_eq!(
            world
                .at(4 * S)
                .pass_again(&agents, &Targeting::Single, &restarted),
            PassAgain {
                now: pods(&["client-a", "client-b"]),
                when_back: pods(&["client-c", "client-d"]),
            },
            "client-b is not lost yet"
        );
        let again = world
            .at(6 * S)
            .pass_again(&agents, &Targeting::Single, &restarted);
        assert_eq!(
            again,
            PassAgain {
                now: pods(&["client-a"]),
                when_back: pods(&["client-b", "client-c", "client-d"]),
            }
        );
        // Nobody is back while they stay gone: their passes stand, the stage is not held.
        assert_eq!(
            world.at(7 * S).back(&agents, &again.when_back),
            BTreeSet::new()
        );
        world.must_pass_again = again.now.clone();
        assert_eq!(
            world.at(7 * S).probe_stage(&agents, 7 * S, 60 * S),
            ProbeStage::Probing,
            "client-a is still to pass again"
        );
        world.must_pass_again.clear();
        assert_eq!(
            world.at(7 * S).probe_stage(&agents, 7 * S, 60 * S),
            ProbeStage::Done
        );

        // client-b's agent restarted (a new process said Hello for the exit the backend
        // saw): back, it must pass again on the server's new listeners.
        let mut returned = agents.clone();
        returned[2] = view("client-b", Role::Client);
        returned[2].exits = 1;
        returned[2].restarts = 1;
        world
            .fates
            .insert("client-b".into(), AgentFate::Lost { at_ms: 2_500 });
        let back = world.at(8 * S).back(&returned, &again.when_back);
        assert_eq!(back, pods(&["client-b"]));
        world.must_pass_again = back;
        assert_eq!(
            world.at(8 * S).probe_stage(&returned, 8 * S, 60 * S),
            ProbeStage::Probing,
            "client-b, back, has not passed on the new listeners"
        );
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
