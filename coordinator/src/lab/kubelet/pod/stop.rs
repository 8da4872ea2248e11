//! Step 5 of a pod's life: its containers stopped (SIGTERM, the grace period, SIGKILL), its
//! sandbox removed, and its deletion confirmed as the kubelet confirms it once the pod's
//! containers are gone.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions};
use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{Exit, PodUpdate, Worker};
use crate::backend::kube::api_error::said;

/// How long containers get to end after SIGKILL before the sandbox is removed anyway.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The grace period when neither the deletion nor the pod gives one (Kubernetes' default
/// `terminationGracePeriodSeconds`).
const DEFAULT_GRACE_SECONDS: i64 = 30;

impl Worker {
    /// Stops the containers (SIGTERM, the grace period, SIGKILL) and removes the sandbox.
    /// The grace period is the deletion's (`deletionGracePeriodSeconds`), else the pod's; a
    /// stopping lab gives the pod's. A forced deletion (`--force --grace-period=0`: the API
    /// object is gone at once, its last state carries 0) is SIGKILL at once. A kubelet is a
    /// little gentler: a current one never gives less than 1 s (`pkg/kubelet/pod_workers.go`,
    /// `calculateEffectiveGracePeriod`), and older ones took a 0 from the API as none given
    /// and used the pod's own grace period — so on a real node a forced-deleted container can
    /// still run beside its replacement for a while.
    pub(super) async fn terminate(
        &mut self,
        last: &PodUpdate,
        exits: &mut mpsc::UnboundedReceiver<Exit>,
    ) {
        let final_pod = match last {
            PodUpdate::Present(p) | PodUpdate::Gone(p) => Some(p),
            PodUpdate::Stop => None,
        };
        let grace = final_pod
            .and_then(|p| p.metadata.deletion_grace_period_seconds)
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE_SECONDS)
            .max(0);
        let grace = Duration::from_secs(grace as u64);
        for s in &mut self.slots {
            s.restart_at = None;
        }
        self.signal_all(Signal::SIGTERM);
        if timeout(grace, self.reap_all(exits)).await.is_err() {
            self.signal_all(Signal::SIGKILL);
            let _ = timeout(KILL_WAIT, self.reap_all(exits)).await;
        }
        self.remove_sandbox().await;
        self.kubelet
            .logs
            .remove_pod(&self.namespace, &self.name, &self.uid);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Takes the containers' exits until none runs (or no exit can come any more). Stopped
    /// between two exits, it has recorded every exit it took.
    async fn reap_all(&mut self, exits: &mut mpsc::UnboundedReceiver<Exit>) {
        while self.slots.iter().any(|s| s.state.running()) {
            let Some((i, restart, code)) = exits.recv().await else {
                return;
            };
            self.exited(i, restart, code);
            self.slots[i].restart_at = None;
        }
    }

    /// Asks each running container's owner task to signal its process (it does so only while
    /// the process is not yet reaped, so a reused pid is never hit).
    fn signal_all(&self, signal: Signal) {
        for s in &self.slots {
            if s.state.running()
                && let Some(tx) = &s.signals
            {
                let _ = tx.send(signal);
            }
        }
    }

    /// The deletion confirmed, as the kubelet confirms it once the pod's containers are gone.
    pub(super) async fn confirm_deletion(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_none() {
            return;
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api().delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => {}
            Err(e) => tracing::warn!(
                "pod {}/{}: confirming its deletion: {}",
                self.namespace,
                self.name,
                said(e)
            ),
        }
    }
}
