//! `multinet bench network`'s client pods on the kube backend: one per path, one at a time.
//! A pod is created ([`super::super::objects::KubeRun::bench_client_pod`]), watched until it
//! has `Succeeded` or `Failed` — or found stuck (unschedulable, its sandbox failing, its image
//! not pulled) from its events as the agents' pods are ([`diagnose`]) — its log read through
//! `pods/log` (no `pods/exec`), and deleted. Knows nothing of what the log says.

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use multinet_proto::network::CephNetwork;

use super::{KubeBackend, diagnose, refused};
use crate::backend::kube::api_error::said;
use crate::backend::kube::objects::BENCH_CLIENT_CONTAINER;
use crate::scheduler::PodStatus;

/// How long each API call of a path's end (its pod's last state, its log, its deletion) may
/// take: three of these make the bench Job's allowance for reading a path back
/// (`bench::network::kube::job_deadline`).
pub(crate) const API_PATIENCE: Duration = Duration::from_secs(10);

/// What became of a client pod that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchClientRun {
    /// Its pod's name.
    pub pod: String,
    /// Its container's log (standard output and error).
    pub log: String,
    /// Why it failed (phase `Failed`: its exit, or Kubernetes' reason such as
    /// `DeadlineExceeded`); `None` when it succeeded.
    pub failed: Option<String>,
}

/// How often a pod that has not ended is looked at for a reason it never will (besides the
/// watch's news).
const STUCK_EVERY: Duration = Duration::from_secs(1);

impl KubeBackend {
    /// Runs one client pod on `node`, attached to `network`, running `args`, ended by
    /// Kubernetes past `deadline`; waits for it at most the run's `resourceTimeout` to start
    /// and `deadline` more to end. `Err` says why it could not run (the API server refused it,
    /// it never started: the diagnosis of its events); the pod is deleted either way.
    ///
    /// # Errors
    ///
    /// The reason the path gets as its `error`.
    pub async fn run_bench_client(
        &mut self,
        node: &str,
        network: CephNetwork,
        args: Vec<String>,
        deadline: Duration,
    ) -> Result<BenchClientRun, String> {
        let node_type = self.node_type(node).map_err(|e| e.to_string())?;
        self.bench_clients += 1;
        let name = self.names.bench_client(self.bench_clients);
        let pod = self.objects().bench_client_pod(
            name.clone(),
            &node_type,
            node,
            network,
            args,
            deadline,
        );
        let api = Api::<Pod>::namespaced(self.client.clone(), &self.namespace);
        match refused(api.create(&PostParams::default(), &pod).await) {
            // Remembered until deleted: a bench ended meanwhile (a signal) removes it with
            // the agents' pods.
            Ok(None) => self.created_pods.push(name.clone()),
            Ok(Some(reason)) => {
                return Err(format!("the API server refused pod {name}: {reason}"));
            }
            Err(e) => return Err(format!("creating pod {name}: {e}")),
        }
        let patience = self.config.resource_timeout.as_std() + deadline;
        let ended = tokio::time::timeout(patience, self.until_ended(&api, &name)).await;
        let outcome = match ended {
            Err(_) => {
                let last = tokio::time::timeout(API_PATIENCE, api.get_opt(&name))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten();
                Err(match last {
                    Some(pod) if diagnose::never_ran(&pod) => said_status(diagnose::never_started(
                        &pod,
                        &self.pod_events(),
                        &self.nads(),
                        &self.image,
                    )),
                    _ => format!("pod {name} did not end within {}s", patience.as_secs()),
                })
            }
            Ok(Err(reason)) => Err(reason),
            Ok(Ok(pod)) => {
                let params = LogParams {
                    container: Some(BENCH_CLIENT_CONTAINER.into()),
                    ..LogParams::default()
                };
                match tokio::time::timeout(API_PATIENCE, api.logs(&name, &params)).await {
                    Ok(Ok(log)) => Ok(BenchClientRun {
                        pod: name.clone(),
                        log,
                        failed: failure(&pod),
                    }),
                    Ok(Err(e)) => Err(format!("reading pod {name}'s log: {}", said(e))),
                    Err(_) => Err(format!(
                        "reading pod {name}'s log: no answer within {}s",
                        API_PATIENCE.as_secs()
                    )),
                }
            }
        };
        match tokio::time::timeout(API_PATIENCE, api.delete(&name, &DeleteParams::default())).await
        {
            Ok(Ok(_)) => self.created_pods.retain(|p| *p != name),
            Ok(Err(e)) => tracing::warn!(
                "could not delete bench client pod {name} ({}); the run's cleanup removes it",
                said(e)
            ),
            Err(_) => tracing::warn!(
                "deleting bench client pod {name}: no answer; the run's cleanup removes it"
            ),
        }
        outcome
    }

    /// Watches pod `name` until it has ended (`Succeeded` or `Failed`); `Err` when it is found
    /// stuck (its events say why it will not run) or is gone.
    async fn until_ended(&self, api: &Api<Pod>, name: &str) -> Result<Pod, String> {
        let fields = format!("metadata.name={name}");
        let mut stream = Box::pin(
            watcher(api.clone(), watcher::Config::default().fields(&fields))
                .default_backoff()
                .applied_objects(),
        );
        let mut tick = tokio::time::interval(STUCK_EVERY);
        let mut latest: Option<Pod> = None;
        loop {
            tokio::select! {
                next = stream.try_next() => match next {
                    Ok(Some(pod)) => latest = Some(pod),
                    Ok(None) => return Err(format!("the watch on pod {name} ended")),
                    // The watcher's backoff retries; a lasting failure ends at the caller's
                    // bound.
                    Err(_) => {}
                },
                _ = tick.tick() => {}
            }
            let Some(pod) = &latest else { continue };
            if pod.metadata.deletion_timestamp.is_some() {
                return Err(format!("pod {name} was deleted before it ended"));
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                return Ok(pod.clone());
            }
            if let Some(status) =
                diagnose::stuck(pod, &self.pod_events(), &self.nads(), &self.image)
            {
                return Err(said_status(status));
            }
        }
    }
}

/// A pod that did not start, said as a path's error.
fn said_status(status: PodStatus) -> String {
    match status {
        PodStatus::NoAddress { network, reason } => {
            format!("no address on the {} network: {reason}", network.key())
        }
        PodStatus::NotStarted { reason } => reason,
        PodStatus::Started(_) => "started".into(),
    }
}

/// Why an ended pod failed; `None` when it succeeded.
fn failure(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Failed") {
        return None;
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if let Some(reason) = &status.reason {
        return Some(format!(
            "pod {name} failed: {reason}{}",
            status
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
    }
    Some(diagnose::ended(pod).unwrap_or_else(|| format!("pod {name} failed")))
}
