//! The end of a run: what became of every agent, the findings, the verdict, the report.

use multinet_proto::control::Role;

use std::time::Instant;

use super::decide::fate_of;
use super::{Error, Result, RunSettings, RunSupervisor};
use crate::findings::{self, AgentFact, AgentFate, AgentOutages, RunFacts};
use crate::matrix::PathMatrix;
use crate::matrix_actor::{Peek, Take};
use crate::mesh::Targeting;
use crate::report::{self, NodeReport, ResultAccounting, RunReport, Verdict};
use crate::roster::{AgentView, RosterSnapshot, Snapshot};
use crate::scheduler::Scheduler;

impl RunSupervisor {
    /// The run's final report: the matrix is taken, agents that never connected are asked
    /// of the backend.
    pub(super) async fn report<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
    ) -> Result<RunReport> {
        let snap = self.roster.send(Snapshot).await?;
        let matrix = self.matrix.send(Take).await?;
        // Agents that never connected, with no reason yet: the backend may know why their pods
        // never started (a reason the run's end settles: a retry can no longer mend it).
        let silent: Vec<String> = snap
            .agents
            .iter()
            .filter(|a| !a.ever_connected)
            .map(|a| a.expected.pod.clone())
            .filter(|pod| {
                !matches!(
                    self.scheduler_fates.get(pod),
                    Some(AgentFate::NotStarted { .. } | AgentFate::NoAddress { .. })
                )
            })
            .collect();
        if !silent.is_empty() {
            for (pod, status) in scheduler.never_started(&silent).await {
                if let Some(fate) = fate_of(status) {
                    self.scheduler_fates.insert(pod, fate);
                }
            }
        }
        self.compose(scheduler, settings, snap, matrix, false)
    }

    /// A soak's interim report: what was measured so far, the verdict as of now
    /// (`in_progress`); the matrix is copied and goes on recording, the backend is not asked.
    pub(super) async fn interim_report<S: Scheduler>(
        &self,
        scheduler: &S,
        settings: &RunSettings,
    ) -> Result<RunReport> {
        let snap = self.roster.send(Snapshot).await?;
        let matrix = self.matrix.send(Peek).await?;
        self.compose(scheduler, settings, snap, matrix, true)
    }

    fn compose<S: Scheduler>(
        &self,
        scheduler: &S,
        settings: &RunSettings,
        snap: crate::roster::RosterSnapshot,
        matrix: PathMatrix,
        in_progress: bool,
    ) -> Result<RunReport> {
        let end = self.at(Instant::now());
        let fact = |view: &AgentView| -> AgentFact {
            let pod = &view.expected.pod;
            AgentFact {
                identity: view.expected.clone(),
                fate: end.fate(view),
                // One still to pass again on a returned responder's addresses has not passed.
                passed_at_ms: self
                    .passed_at
                    .get(pod)
                    .copied()
                    .filter(|_| !self.must_pass_again.contains(pod)),
                exit: self.exit_reasons.get(pod).cloned(),
                addresses: if view.addresses.is_empty() {
                    self.placed_addresses.get(pod).cloned().unwrap_or_default()
                } else {
                    view.addresses.clone()
                },
                egress: view.egress.clone(),
            }
        };
        // The server; in a mesh, the responder on the server's node (the others are agents).
        let mut server = None;
        let mut agents = Vec::new();
        let mut servers_ok = true;
        for view in &snap.agents {
            let f = fact(view);
            if view.expected.role == Role::Server {
                servers_ok &= f.fate == AgentFate::Reported;
            }
            if view.expected.role == Role::Server
                && (server.is_none() && view.expected.node == self.server_node
                    || !self.targeting.is_mesh())
            {
                server = Some(f)
            } else {
                agents.push(f)
            }
        }
        agents.sort_by_key(|a| a.identity.role != Role::Server);
        // Planned pods the roster never heard of (server never ready: clients not started).
        for p in &self.plan {
            if !snap.agents.iter().any(|a| a.expected.pod == p.pod) {
                agents.push(AgentFact {
                    identity: p.clone(),
                    fate: AgentFate::NotStarted {
                        reason: findings::NOT_STARTED_FOR_THE_SERVER.into(),
                    },
                    passed_at_ms: None,
                    exit: None,
                    addresses: Vec::new(),
                    egress: None,
                });
            }
        }
        let server = server.ok_or(Error::Placement("the server was never planned"))?;
        let server_ok = servers_ok;
        let mesh = match &self.targeting {
            Targeting::Single => None,
            Targeting::Mesh {
                peers,
                peers_per_node,
            } => Some(findings::MeshFacts {
                target_nodes: {
                    let reporting: std::collections::BTreeSet<&str> = std::iter::once(&server)
                        .chain(&agents)
                        .filter(|a| a.identity.role == Role::Server)
                        .filter(|a| a.fate == AgentFate::Reported)
                        .map(|a| a.identity.pod.as_str())
                        .collect();
                    crate::mesh::target_nodes(
                        snap.responders
                            .iter()
                            .filter(|(pod, _)| reporting.contains(pod.as_str()))
                            .map(|(_, r)| r),
                    )
                },
                all_target_nodes: snap.target_nodes.clone(),
                peers: peers.clone(),
                peers_per_node: *peers_per_node,
            }),
        };
        let facts = RunFacts {
            networks: settings.networks.clone(),
            server_node: self.server_node.clone(),
            nodes: self.nodes.iter().map(|n| n.name.clone()).collect(),
            server,
            agents,
            success_threshold: settings.threshold(),
            flaky_threshold_ms: settings.config.flaky_threshold.as_std().as_millis() as u64,
            // The lab's control network carries nothing else (issue #12); a cluster's pod
            // network may share the host's interfaces with the public network.
            control_network_isolated: scheduler.backend() == "lab",
            soak_min_outage_ms: (settings.soak != super::Soak::Off)
                .then(|| settings.outage_rule().min_ms),
            started_unix_ms: self.started_unix_ms,
            agent_outages: agent_outages(&snap),
            mesh,
            stranded: self.stranded.clone(),
        };
        // Pods not started because the server never became ready are left out by the
        // `scheduling` rule itself while a server or responder is not reporting (its finding
        // explains them); every other pod that was not started keeps its finding.
        let found = findings::evaluate(&matrix, &facts);
        let clients: Vec<&AgentFact> = facts
            .agents
            .iter()
            .filter(|a| a.identity.role == Role::Client)
            .collect();
        let hosts: Vec<&AgentFact> = facts
            .agents
            .iter()
            .filter(|a| a.identity.role == Role::HostCheck)
            .collect();
        let produced: u64 = snap.agents.iter().map(|a| a.produced).sum();
        // A mesh's responders among the agents answer probes: they have nothing to pass.
        let all_passed = server_ok
            && facts
                .agents
                .iter()
                .filter(|a| a.identity.role != Role::Server)
                .all(|a| a.passed_at_ms.is_some());
        Ok(RunReport {
            verdict: Verdict::decide(&found, all_passed),
            in_progress,
            backend: scheduler.backend().into(),
            validates_real_network: scheduler.validates_real_network(),
            run_id: self.run_id.clone(),
            started_at: findings::utc(self.started_unix_ms, 0),
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
            paths: report::paths(&matrix, facts.mesh.as_ref().map(|m| &m.all_target_nodes)),
            timelines: if settings.soak == super::Soak::Off {
                Vec::new()
            } else {
                report::timelines(&matrix)
            },
            expected_clients: clients.len(),
            // Started: its agent ran and reached the coordinator. A pod that never did is not
            // counted, whatever became of it.
            started_clients: clients
                .iter()
                .filter(|a| {
                    !matches!(
                        a.fate,
                        AgentFate::NotStarted { .. }
                            | AgentFate::NoAddress { .. }
                            | AgentFate::NeverConnected
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
            agent_outages: facts.agent_outages.clone(),
            coordinator_restarts: self
                .restarts
                .iter()
                .map(|r| report::CoordinatorRestartReport {
                    checkpoint_at: findings::utc(self.started_unix_ms, r.checkpoint_ms),
                    resumed_at: findings::utc(self.started_unix_ms, r.resumed_ms),
                    checkpoint_ms: r.checkpoint_ms,
                    resumed_ms: r.resumed_ms,
                })
                .collect(),
            mesh: facts.mesh.as_ref().map(|m| report::MeshReport {
                peers_per_node: m.peers_per_node,
                networks: findings::mesh_matrix(&matrix, &facts),
            }),
        })
    }
}

/// The agents that were away at some time, server first (the roster's order otherwise), an
/// absence still open ending when the agents were told to stop.
fn agent_outages(snap: &RosterSnapshot) -> Vec<AgentOutages> {
    let end_ms = snap.stopped_ms.unwrap_or(snap.at_ms);
    let mut out: Vec<AgentOutages> = snap
        .agents
        .iter()
        .filter(|a| a.absences.count > 0)
        .map(|a| AgentOutages {
            identity: a.expected.clone(),
            absences: a.absences.clone(),
            end_ms,
        })
        .collect();
    out.sort_by_key(|a| a.identity.role != Role::Server);
    out
}
