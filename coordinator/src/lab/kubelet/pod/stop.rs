//! Step 5 of a pod's life: its containers stopped (SIGTERM, the grace period, SIGKILL), its
//! sandbox removed, and its deletion confirmed as the kubelet confirms it once the pod's
//! containers are gone.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions};
use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::{Exit, PodUpdate, Worker};
use crate::backend::kube::api_error::said;

impl Worker {
    /// Stops the containers (SIGTERM, the grace period, SIGKILL) and removes the sandbox.
    /// The grace period is the deletion's (`deletionGracePeriodSeconds`, 0 for a forced
    /// deletion), else the pod's; a stopping lab gives the pod's.
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
            .unwrap_or(30)
            .max(0) as u64;
        for s in &mut self.slots {
            s.restart_at = None;
        }
        self.signal_all(Signal::SIGTERM);
        let mut deadline = tokio::time::Instant::now() + Duration::from_secs(grace);
        let mut killed = false;
        while self.slots.iter().any(|s| s.state.running()) {
            match tokio::time::timeout_at(deadline, exits.recv()).await {
                Ok(Some((i, restart, code))) => {
                    self.exited(i, restart, code);
                    self.slots[i].restart_at = None;
                }
                Ok(None) => break,
                Err(_) if !killed => {
                    self.signal_all(Signal::SIGKILL);
                    killed = true;
                    deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                }
                Err(_) => break,
            }
        }
        self.remove_sandbox().await;
        self.kubelet
            .logs
            .remove_pod(&self.namespace, &self.name, &self.uid);
        let _ = std::fs::remove_dir_all(&self.dir);
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
