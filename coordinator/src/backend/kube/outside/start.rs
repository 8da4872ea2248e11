//! Waiting for the coordinator Job's pod to run. While it waits, what the pod waits on is said
//! (phase, node, the container's waiting reason, the latest event) — at most every
//! [`JobBounds::status_every`] and only when it changed; a pod that cannot start (its image
//! not pulled, its container not created, unschedulable, its Job unable to create it) is an
//! error naming why; one that has not started within [`JobBounds::start`] is given up on,
//! with the bound and what it was still waiting on.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use multinet_proto::config::RunConfig;

use crate::backend::kube::api_error::said_watch;
use crate::backend::kube::diagnose::{self, PodEvent};
use crate::backend::kube::names::COMPONENT;
use crate::backend::kube::objects::{KubeRun, job_deadline};
use crate::backend::kube::{Error, Result};

/// How often, at most, `multinet run` says what the coordinator's pod waits on.
pub const STATUS_EVERY: Duration = Duration::from_secs(15);

/// How long `multinet run` waits on its coordinator Job, from the run's own deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobBounds {
    /// For the Job's pod to run: the run's `resourceTimeout`, the time every pod of the run
    /// gets to start.
    pub start: Duration,
    /// For the whole Job: its `activeDeadlineSeconds` ([`job_deadline`]).
    pub total: Duration,
    /// How often, at most, what the pod waits on is said.
    pub status_every: Duration,
}

impl JobBounds {
    /// The bounds of a run of `config`.
    pub fn of(config: &RunConfig) -> Self {
        Self {
            start: config.resource_timeout.as_std(),
            total: job_deadline(config),
            status_every: STATUS_EVERY,
        }
    }
}

/// Waits until a pod of the Job other than those in `skip` (pods already followed, which a
/// replacement follows) runs (or already ended); its name. Says what it waits on through
/// `log`.
pub(super) async fn started_pod(
    pods: &Api<Pod>,
    events: &Api<Event>,
    run: &KubeRun<'_>,
    bounds: JobBounds,
    skip: &[String],
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<String> {
    let selector = format!("{},{COMPONENT}=coordinator", run.names.selector());
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .boxed();
    let give_up = tokio::time::sleep(bounds.start);
    tokio::pin!(give_up);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + bounds.status_every,
        bounds.status_every,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latest: Option<Pod> = None;
    let mut said = String::new();
    loop {
        tokio::select! {
            next = stream.try_next() => {
                let Some(pod) = next.map_err(said_watch)? else {
                    return Err(Error::WatchEnded);
                };
                if pod.metadata.name.as_ref().is_some_and(|n| skip.contains(n)) {
                    continue;
                }
                if let Some(name) = cannot_start(&pod, &run.image)? {
                    return Ok(name);
                }
                latest = Some(pod);
            }
            _ = tick.tick() => {
                let now = waiting_on(events, latest.as_ref()).await;
                if now != said {
                    log(&format!("multinet: the coordinator Job {} waits: {now}", run.names.coordinator()));
                    said = now;
                }
            }
            () = &mut give_up => {
                let now = waiting_on(events, latest.as_ref()).await;
                return Err(Error::JobNotStarted {
                    namespace: run.namespace.clone(),
                    job: run.names.coordinator(),
                    seconds: bounds.start.as_secs_f64(),
                    waiting: now,
                });
            }
        }
    }
}

/// `Ok(Some(name))` when the pod runs or already ended; an error naming why when it cannot
/// start; `Ok(None)` while it may yet.
fn cannot_start(pod: &Pod, image: &str) -> Result<Option<String>> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let Some(status) = pod.status.as_ref() else {
        return Ok(None);
    };
    if matches!(
        status.phase.as_deref(),
        Some("Running" | "Succeeded" | "Failed")
    ) {
        return Ok(Some(name));
    }
    if let Some(why) = diagnose::unschedulable(status) {
        return Err(Error::CoordinatorPod {
            pod: name,
            why: format!("cannot be scheduled: {why}"),
        });
    }
    for c in status.container_statuses.iter().flatten() {
        let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let why = w.message.as_deref().unwrap_or("no message");
        match w.reason.as_deref() {
            // ErrImagePull alone is one failed attempt; the kubelet says ImagePullBackOff
            // once it keeps failing.
            Some(r @ ("ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull")) => {
                return Err(Error::CoordinatorPod {
                    pod: name,
                    why: format!("cannot pull image {image} ({r}): {why}"),
                });
            }
            Some(
                r @ ("CreateContainerConfigError" | "CreateContainerError" | "RunContainerError"),
            ) => {
                return Err(Error::CoordinatorPod {
                    pod: name,
                    why: format!("cannot start ({r}): {why}"),
                });
            }
            _ => {}
        }
    }
    Ok(None)
}

/// What the pod waits on, in one line ([`diagnose::waiting`]), with the latest event about it.
async fn waiting_on(events: &Api<Event>, pod: Option<&Pod>) -> String {
    let Some(pod) = pod else {
        return "no pod created yet".into();
    };
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    diagnose::waiting(pod, latest_event(events, name).await.as_ref())
}

/// The latest event about pod `name` (none when they cannot be read: the pod's own status
/// still says what it can).
async fn latest_event(events: &Api<Event>, name: &str) -> Option<PodEvent> {
    let fields = format!("involvedObject.kind=Pod,involvedObject.name={name}");
    let list = events
        .list(&ListParams::default().fields(&fields))
        .await
        .ok()?;
    let now = k8s_openapi::jiff::Timestamp::now();
    list.items
        .iter()
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
                .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        })
        .map(|e| PodEvent::from_event(e, now))
}

/// Resolves when the Job controller says it cannot create the Job's pod (no such service
/// account, a pod security policy that refuses it, a quota): the error naming why.
pub(super) async fn job_failed(events: &Api<Event>, job: &str) -> Error {
    let fields = format!("involvedObject.kind=Job,involvedObject.name={job}");
    let mut stream = watcher(events.clone(), watcher::Config::default().fields(&fields))
        .default_backoff()
        .applied_objects()
        .boxed();
    loop {
        match stream.try_next().await {
            Ok(Some(e))
                if e.reason.as_deref() == Some("FailedCreate")
                    && PodEvent::from_event(&e, k8s_openapi::jiff::Timestamp::now()).persists() =>
            {
                return Error::JobPodRefused {
                    job: job.to_string(),
                    message: e.message.as_deref().unwrap_or("no message").to_string(),
                };
            }
            Ok(Some(_)) => {}
            // Without events the pod's own watch still tells; never end the run for this.
            Ok(None) | Err(_) => std::future::pending::<()>().await,
        }
    }
}
