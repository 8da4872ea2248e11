//! A soak that outlives its coordinator: the checkpoint the supervisor writes while it soaks,
//! and the run a new coordinator process resumes from it ([`crate::checkpoint`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::Actor;

use super::{Error, Result, RunSettings, RunSupervisor, Soak};
use crate::backend::agents::process::Adopted;
use crate::checkpoint::{Checkpoint, CoordinatorRestart, SupervisorState, VERSION};
use crate::control_plane::{ControlPlane, connection_limit_for};
use crate::matrix::PathMatrix;
use crate::matrix::state::MatrixState;
use crate::matrix_actor::MatrixActor;
use crate::pki::RunPki;
use crate::progress::Progress;
use crate::report::{RunReport, StageTiming};
use crate::roster::AgentRoster;
use crate::roster::state::{Durable, TakeState};
use crate::scheduler::Scheduler;

impl RunSupervisor {
    /// Writes the run's checkpoint into its directory, when the backend can resume a run.
    ///
    /// A backend that stores it elsewhere too ([`Scheduler::stores_checkpoint`]) gets it
    /// without the coordinator's key, gzipped; what it holds is durable only once stored there.
    pub(super) async fn write_checkpoint<S: Scheduler>(
        &self,
        scheduler: &mut S,
        settings: &RunSettings,
    ) -> Result<()> {
        let Some(backend) = scheduler.checkpoint() else {
            return Ok(());
        };
        let (roster, matrix) = self.roster.send(TakeState).await?;
        let matrix = matrix
            .await
            .map_err(|_| Error::Actor(actix::MailboxError::Closed))?;
        let held = roster.held();
        let mut checkpoint = Checkpoint {
            version: VERSION,
            run_id: self.run_id.clone(),
            written_ms: self.elapsed_ms(),
            started_unix_ms: self.started_unix_ms,
            probing_began_ms: self.probing_began_ms.unwrap_or_default(),
            soak_ms: match settings.soak {
                Soak::For(d) => Some(d.as_millis() as u64),
                Soak::UntilStopped | Soak::Off => None,
            },
            config: serde_json::to_value(&settings.config).unwrap_or_default(),
            agent_grace_ms: settings.agent_grace.as_millis() as u64,
            control: self.control.local_addr()?,
            pki: self.pki.state(),
            backend,
            supervisor: SupervisorState {
                stages: self.stages.clone(),
                scheduler_fates: self.scheduler_fates.clone(),
                exit_reasons: self.exit_reasons.clone(),
                passed_at: self.passed_at.clone(),
                failed_for_certain: self.failed_for_certain.clone(),
                placed_addresses: self.placed_addresses.clone(),
                plan: self.plan.clone(),
                nodes: self.nodes.clone(),
                server_node: self.server_node.clone(),
                soak_began_ms: self.soak_began_ms,
                must_pass_again: self.must_pass_again.clone(),
                stranded: self.stranded.clone(),
            },
            roster,
            matrix: MatrixState::default(),
            restarts: self.restarts.clone(),
            coordinator: Adopted::of(std::process::id() as i32),
        };
        // Off the runtime's threads: at thousands of agents the matrix is tens of MB of JSON
        // (BENCHMARKS.md, bench soak), and the control plane must go on meanwhile.
        let run_dir = self.run_dir.clone();
        let elsewhere = scheduler.stores_checkpoint();
        let written_ms = checkpoint.written_ms;
        let gzipped = tokio::task::spawn_blocking(move || {
            checkpoint.matrix = matrix.to_state();
            checkpoint.write(&run_dir)?;
            Ok::<_, crate::checkpoint::Error>(elsewhere.then(|| checkpoint.gzip_without_key()))
        })
        .await
        .map_err(|e| {
            Error::Checkpoint(crate::checkpoint::Error::Io {
                action: "writing",
                path: self.run_dir.join(crate::checkpoint::FILE),
                source: std::io::Error::other(e.to_string()),
            })
        })??;
        if let Some(gzipped) = gzipped {
            scheduler
                .store_checkpoint(gzipped, written_ms)
                .await
                .map_err(super::backend)?;
        }
        // Written: what it holds need not be kept by the agents any more.
        self.roster.do_send(Durable(held));
        Ok(())
    }

    /// The supervisor of a run resumed from `checkpoint`: the run's clock, PKI, record, roster
    /// and matrix as checkpointed, the control plane on `control_socket` (bound where the
    /// first coordinator listened), in `run_dir` (the checkpoint's). Must be called inside an
    /// actix system.
    ///
    /// # Errors
    ///
    /// The PKI or the matrix of the checkpoint are unusable, or the control plane cannot
    /// start.
    pub fn resume(
        checkpoint: Checkpoint,
        control_socket: std::net::UdpSocket,
        run_dir: PathBuf,
    ) -> Result<Self> {
        let elapsed = checkpoint.run_time();
        let now = Instant::now();
        let started = now.checked_sub(elapsed).unwrap_or(now);
        let pki = RunPki::restore(&checkpoint.pki)?;
        let matrix = PathMatrix::from_state(checkpoint.matrix)?;
        let matrix = MatrixActor::restore(checkpoint.started_unix_ms, matrix).start();
        let run_id = checkpoint.run_id;
        let targeting = checkpoint.roster.targeting.clone();
        let roster =
            AgentRoster::restore(run_id.clone(), matrix.clone(), started, checkpoint.roster)
                .start();
        let control = ControlPlane::start(&pki, control_socket, roster.clone())?;
        let state = checkpoint.supervisor;
        // Every agent reconnects at once: room for them from the start.
        control.set_connection_limit(connection_limit_for(state.plan.len()));
        let mut restarts = checkpoint.restarts;
        let resumed_ms = elapsed.as_millis() as u64;
        restarts.push(CoordinatorRestart {
            checkpoint_ms: checkpoint.written_ms,
            resumed_ms,
        });
        // The dead process's soak stage, as far as its checkpoint saw it, and the time the
        // run had no coordinator (from that checkpoint: when it died after it is unknown).
        let mut stages = state.stages;
        let soak_began = state.soak_began_ms.unwrap_or(checkpoint.written_ms);
        stages.push(StageTiming {
            name: "soak".into(),
            duration_ms: checkpoint.written_ms.saturating_sub(soak_began),
            outcome: "coordinator died after its checkpoint".into(),
        });
        stages.push(StageTiming {
            name: "coordinator restart".into(),
            duration_ms: resumed_ms.saturating_sub(checkpoint.written_ms),
            outcome: "resumed".into(),
        });
        Ok(Self {
            run_id,
            run_dir,
            pki,
            matrix,
            roster,
            control,
            started,
            started_unix_ms: checkpoint.started_unix_ms,
            stages,
            scheduler_fates: state.scheduler_fates,
            exit_reasons: state.exit_reasons,
            passed_at: state.passed_at,
            failed_for_certain: state.failed_for_certain,
            stranded: state.stranded,
            placed_addresses: state.placed_addresses,
            plan: state.plan,
            nodes: state.nodes,
            server_node: state.server_node,
            targeting,
            probing_began_ms: Some(checkpoint.probing_began_ms),
            soak_began_ms: None,
            restarts,
            responders_away: std::collections::BTreeMap::new(),
            listening: std::collections::BTreeMap::new(),
            must_pass_again: state.must_pass_again,
            pass_again_when_back: std::collections::BTreeSet::new(),
        })
    }

    /// Goes on with a resumed run: the soak's remaining time (counted from when probing
    /// began, as in the first coordinator), then the end as in [`Self::run`]. Call
    /// [`Self::cleanup`] afterwards in every case.
    pub async fn run_resumed<S: Scheduler>(
        &mut self,
        scheduler: &mut S,
        settings: &RunSettings,
        progress: &mut Progress,
    ) -> Result<RunReport> {
        self.attach_metrics(settings).await?;
        // The scheduled faults go on where they were.
        scheduler.probing_began().await;
        settings
            .probing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let resumed_ms = self.elapsed_ms();
        progress.note(&format!(
            "resumed run {} at {:.1} s into it; the agents reconnect and resend what was not recorded",
            self.run_id,
            resumed_ms as f64 / 1000.0
        ));
        let probing_since =
            self.started + Duration::from_millis(self.probing_began_ms.unwrap_or_default());
        let since = Instant::now();
        self.soak_began_ms = Some(self.elapsed_ms());
        self.metrics_stage(settings, "soak");
        let outcome = self
            .soak(scheduler, settings, progress, probing_since)
            .await?;
        self.stage_ended("soak (resumed)", since, outcome);
        self.await_reconnects(settings).await?;
        self.stop_and_report(scheduler, settings, progress).await
    }

    /// Before the agents are told to stop: waits, at most [`RECONNECT_PATIENCE`], for every
    /// agent that was connected before the restart, has not given up and whose end the
    /// backend has not seen to be back, so that
    /// it hands in what it kept (a restart late in a soak leaves the agents little time: each
    /// notices its old connection dead only after the QUIC idle timeout).
    async fn await_reconnects(&self, settings: &RunSettings) -> Result<()> {
        let patience = Instant::now() + RECONNECT_PATIENCE;
        loop {
            let snap = self.roster.send(crate::roster::Snapshot).await?;
            let away = snap
                .agents
                .iter()
                .filter(|a| {
                    a.ever_connected
                        && !a.connected
                        && a.failed.is_none()
                        && !self.scheduler_fates.contains_key(&a.expected.pod)
                })
                .count();
            if away == 0 || Instant::now() >= patience || settings.stop.is_cancelled() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How long a resumed run's end waits for its agents to reconnect: an agent's QUIC idle
/// timeout (5 s, to notice the old connection dead), a handshake it may have begun before the
/// new coordinator listened (abandoned after 5 s), and its back-off, with a margin.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(15);
