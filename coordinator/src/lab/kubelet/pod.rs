//! One pod's life on a lab node, as the kubelet syncs it (Kubernetes `pkg/kubelet/kubelet.go`,
//! `syncPod` / `SyncTerminatingPod`; `pkg/kubelet/kuberuntime`, `computePodActions`;
//! `pkg/kubelet/status/status_manager.go`):
//!
//! 1. Images: only multinet's runs; any other is `ErrImagePull` with a `Failed` event.
//! 2. Sandbox: the pod namespace and Multus' attachments; a failure is the
//!    `FailedCreatePodSandBox` event with the plugin's message, the pod stays
//!    `ContainerCreating`, and the sandbox is tried again with a back-off (10 s doubling to
//!    5 min, `kuberuntime` `sandboxBackOff`), each failure counted on the one event.
//! 3. Volumes and containers started; status `Running`, `Ready` once every container runs.
//! 4. A container that ends is restarted per `restartPolicy` (back-off 10 s doubling to 5 min,
//!    `CrashLoopBackOff` meanwhile, `restartCount`, `lastState`); with none to restart, the
//!    phase is `Succeeded` or `Failed`.
//! 5. Graceful deletion: SIGTERM, the grace period, SIGKILL, CNI DEL, then the deletion is
//!    confirmed (`gracePeriodSeconds: 0` with the pod's uid as precondition), as the kubelet
//!    does once its containers are gone.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::events::{Kind, Recorder};
use super::logs::ContainerLogs;
use super::{Kubelet, container, multus, volumes};
use crate::lab::sandbox::Sandbox;

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// One container's state, as `containerStatuses` shows it.
#[derive(Debug, Clone)]
enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        pid: u32,
        started: Timestamp,
    },
    Terminated {
        code: i32,
        reason: String,
        message: String,
        started: Timestamp,
        finished: Timestamp,
    },
}

#[derive(Debug)]
struct Slot {
    spec: Container,
    restarts: i32,
    state: State,
    last: Option<State>,
    restart_at: Option<tokio::time::Instant>,
    backoff: Duration,
}

/// A pod's worker.
#[derive(Debug)]
struct Worker {
    kubelet: Arc<Kubelet>,
    pod: Pod,
    node: String,
    namespace: String,
    name: String,
    uid: String,
    dir: std::path::PathBuf,
    recorder: Recorder,
    sandbox: Option<Sandbox>,
    netns: String,
    pod_ip: String,
    started: Timestamp,
    slots: Vec<Slot>,
    volumes: Vec<volumes::HostVolume>,
    exits: mpsc::UnboundedSender<(usize, i32, i32)>,
}

/// Runs the pod the channel carries until it is deleted (the channel then says `None`, or the
/// pod gets a deletion timestamp).
pub async fn run(kubelet: Arc<Kubelet>, mut rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = rx.borrow_and_update().clone() else {
        return;
    };
    let (exits, mut exit_rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(kubelet, pod, exits);
    worker.life(&mut rx, &mut exit_rx).await;
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

impl Worker {
    fn new(
        kubelet: Arc<Kubelet>,
        pod: Pod,
        exits: mpsc::UnboundedSender<(usize, i32, i32)>,
    ) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = kubelet
            .lab
            .lock()
            .map(|lab| lab.pod_dir(&uid))
            .unwrap_or_default();
        let slots = spec
            .containers
            .iter()
            .map(|c| Slot {
                spec: c.clone(),
                restarts: 0,
                state: State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                },
                last: None,
                restart_at: None,
                backoff: BACKOFF_START,
            })
            .collect();
        Self {
            recorder: Recorder::new(kubelet.client.clone(), &pod, &node),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid,
            dir,
            node,
            sandbox: None,
            netns: String::new(),
            pod_ip: String::new(),
            started: Timestamp::now(),
            slots,
            volumes: Vec::new(),
            exits,
            kubelet,
            pod,
        }
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(self.kubelet.client.clone(), &self.namespace)
    }

    async fn life(
        &mut self,
        rx: &mut watch::Receiver<Option<Pod>>,
        exits: &mut mpsc::UnboundedReceiver<(usize, i32, i32)>,
    ) {
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.clone());
        let finished = matches!(phase.as_deref(), Some("Succeeded" | "Failed"));
        if !finished && !deleting(&self.pod) && self.prepare(rx).await {
            self.start_all().await;
            self.report().await;
            self.supervise(rx, exits).await;
        }
        self.wait_for_deletion(rx).await;
        self.terminate(exits).await;
        self.confirm_deletion().await;
    }

    /// Checks images, makes the sandbox (retrying), writes the network status and volumes.
    /// False when the pod was deleted meanwhile or can never start here.
    async fn prepare(&mut self, rx: &mut watch::Receiver<Option<Pod>>) -> bool {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let images: Vec<String> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .filter_map(|c| c.image.clone())
            .filter(|i| !self.kubelet.images.contains(i))
            .collect();
        if let Some(image) = images.first() {
            self.pull_back_off(image, rx).await;
            return false;
        }
        if spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
            let message = "the multinet lab does not run init containers";
            self.recorder.record(Kind::Warning, "Failed", message).await;
            self.set_waiting("CreateContainerConfigError", message);
            self.report().await;
            return false;
        }
        self.report().await;
        let mut backoff = BACKOFF_START;
        loop {
            match self.make_sandbox(spec.host_network == Some(true)).await {
                Ok(()) => break,
                Err(message) => {
                    let text = format!(
                        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{}\": {message}",
                        self.uid
                    );
                    self.recorder
                        .record(Kind::Warning, "FailedCreatePodSandBox", &text)
                        .await;
                    let until = tokio::time::Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep_until(until) => break,
                            changed = rx.changed() => {
                                let gone = changed.is_err() || rx.borrow().as_ref().is_none_or(deleting);
                                if gone {
                                    return false;
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Err(e) = self.make_volumes().await {
            let message = format!("{e:#}");
            self.recorder
                .record(Kind::Warning, "FailedMount", &message)
                .await;
            self.set_waiting("CreateContainerConfigError", &message);
            self.report().await;
            return false;
        }
        true
    }

    /// An image the lab cannot run: every attempt fails as a pull does (`Failed` events,
    /// `ErrImagePull`), then `ImagePullBackOff` until the next attempt, the back-off doubling
    /// from 10 s to 5 min (`pkg/kubelet/images/image_manager.go`, `EnsureImageExists`), until
    /// the pod is deleted.
    async fn pull_back_off(&mut self, image: &str, rx: &mut watch::Receiver<Option<Pod>>) {
        let message = format!(
            "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": the multinet lab runs only multinet's image ({})",
            self.kubelet.images.join(", ")
        );
        let back_off = format!("Back-off pulling image \"{image}\"");
        let mut backoff = BACKOFF_START;
        loop {
            self.recorder
                .record(
                    Kind::Normal,
                    "Pulling",
                    &format!("Pulling image \"{image}\""),
                )
                .await;
            self.recorder
                .record(Kind::Warning, "Failed", &message)
                .await;
            self.recorder
                .record(Kind::Warning, "Failed", "Error: ErrImagePull")
                .await;
            self.set_waiting("ErrImagePull", &message);
            self.report().await;
            self.recorder
                .record(Kind::Normal, "BackOff", &back_off)
                .await;
            self.recorder
                .record(Kind::Warning, "Failed", "Error: ImagePullBackOff")
                .await;
            self.set_waiting("ImagePullBackOff", &back_off);
            self.report().await;
            let until = tokio::time::Instant::now() + backoff;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    changed = rx.changed() => {
                        if changed.is_err() || rx.borrow().as_ref().is_none_or(deleting) {
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn make_sandbox(&mut self, host_network: bool) -> Result<(), String> {
        if host_network {
            let node = self.node.clone();
            self.netns = self
                .kubelet
                .with_lab(move |lab| Ok(lab.node_namespace(&node)))
                .await
                .map_err(|e| format!("{e:#}"))?;
            self.pod_ip = self.kubelet.node_address.to_string();
            return Ok(());
        }
        let delegates = multus::delegates(&self.kubelet, &self.pod).await?;
        let node = self.node.clone();
        let sandbox = self
            .kubelet
            .with_lab(move |lab| lab.add_sandbox(&node))
            .await
            .map_err(|e| format!("{e:#}"))?;
        match multus::attach_all(&self.kubelet, &self.pod, &sandbox, &delegates).await {
            Ok(statuses) => {
                self.netns = sandbox.ns.clone();
                self.pod_ip = sandbox.pod_ip.to_string();
                self.sandbox = Some(sandbox);
                if !delegates.is_empty() {
                    multus::write_status(&self.kubelet, &self.pod, &statuses)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    // The downward API reads the pod with the annotation.
                    if let Ok(text) = serde_json::to_string_pretty(&statuses) {
                        self.pod
                            .metadata
                            .annotations
                            .get_or_insert_default()
                            .insert(
                                multinet_proto::multus::NETWORK_STATUS_ANNOTATION.into(),
                                text,
                            );
                    }
                }
                Ok(())
            }
            Err(message) => {
                let _ = self
                    .kubelet
                    .with_lab(move |lab| lab.remove_sandbox(&sandbox))
                    .await;
                Err(message)
            }
        }
    }

    async fn make_volumes(&mut self) -> anyhow::Result<()> {
        let status = self.pod.status.get_or_insert_default();
        status.pod_ip = Some(self.pod_ip.clone());
        status.host_ip = Some(self.kubelet.node_address.to_string());
        self.volumes =
            volumes::materialize(&self.kubelet, &self.pod, &self.dir.join("volumes")).await?;
        Ok(())
    }

    fn set_waiting(&mut self, reason: &str, message: &str) {
        for slot in &mut self.slots {
            slot.state = State::Waiting {
                reason: reason.into(),
                message: message.into(),
            };
        }
    }

    async fn start_all(&mut self) {
        for i in 0..self.slots.len() {
            self.start(i).await;
        }
    }

    async fn start(&mut self, i: usize) {
        let spec = self.slots[i].spec.clone();
        let restart = self.slots[i].restarts;
        let started = async {
            let env = volumes::environment(&self.kubelet, &self.pod, &spec).await?;
            container::start(container::Start {
                pod: &self.pod,
                container: &spec,
                env,
                volumes: &self.volumes,
                netns: &self.netns,
                pod_dir: &self.dir,
                binary: &self.kubelet.binary,
                restart,
            })
            .await
        }
        .await;
        match started {
            Ok(mut running) => {
                let pid = running.child.id().unwrap_or_default();
                self.slots[i].state = State::Running {
                    pid,
                    started: running.started,
                };
                self.kubelet.logs.set(
                    &self.namespace,
                    &self.name,
                    &spec.name,
                    ContainerLogs {
                        pod_dir: self.dir.clone(),
                        restart,
                        running: true,
                    },
                );
                self.recorder
                    .record(
                        Kind::Normal,
                        "Started",
                        &format!("Started container {}", spec.name),
                    )
                    .await;
                let exits = self.exits.clone();
                tokio::spawn(async move {
                    let code = match running.child.wait().await {
                        Ok(status) => status.code().unwrap_or_else(|| {
                            128 + std::os::unix::process::ExitStatusExt::signal(&status)
                                .unwrap_or(9)
                        }),
                        Err(_) => 128,
                    };
                    let _ = exits.send((i, restart, code));
                });
            }
            Err(e) => {
                // As containerd reports a start that fails: terminated, exit 128, StartError.
                let now = Timestamp::now();
                let message = format!("{e:#}");
                self.recorder
                    .record(Kind::Warning, "Failed", &format!("Error: {message}"))
                    .await;
                self.slots[i].state = State::Terminated {
                    code: 128,
                    reason: "StartError".into(),
                    message,
                    started: now,
                    finished: now,
                };
                self.after_exit(i);
            }
        }
    }

    /// After container `i` ended: schedule its restart if the policy says so.
    fn after_exit(&mut self, i: usize) {
        let policy = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        let slot = &mut self.slots[i];
        let State::Terminated { code, .. } = slot.state else {
            return;
        };
        let restart = policy == "Always" || (policy == "OnFailure" && code != 0);
        if restart {
            slot.restart_at = Some(tokio::time::Instant::now() + slot.backoff);
            slot.last = Some(slot.state.clone());
            slot.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    slot.backoff.as_secs(),
                    slot.spec.name,
                    self.name,
                    self.namespace,
                    self.uid
                ),
            };
            slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn supervise(
        &mut self,
        rx: &mut watch::Receiver<Option<Pod>>,
        exits: &mut mpsc::UnboundedReceiver<(usize, i32, i32)>,
    ) {
        loop {
            if self.phase() != "Running" && self.phase() != "Pending" {
                return;
            }
            let next = self.slots.iter().filter_map(|s| s.restart_at).min();
            tokio::select! {
                changed = rx.changed() => {
                    let gone = changed.is_err() || rx.borrow().as_ref().is_none_or(deleting);
                    if gone {
                        return;
                    }
                }
                Some((i, restart, code)) = exits.recv() => {
                    self.exited(i, restart, code).await;
                    self.report().await;
                }
                () = async { if let Some(at) = next { tokio::time::sleep_until(at).await } else { std::future::pending().await } } => {
                    let now = tokio::time::Instant::now();
                    for i in 0..self.slots.len() {
                        if self.slots[i].restart_at.is_some_and(|at| at <= now) {
                            self.slots[i].restart_at = None;
                            self.slots[i].restarts += 1;
                            self.start(i).await;
                        }
                    }
                    self.report().await;
                }
            }
        }
    }

    async fn exited(&mut self, i: usize, restart: i32, code: i32) {
        let slot = &self.slots[i];
        if slot.restarts != restart {
            return;
        }
        let State::Running { started, .. } = slot.state else {
            return;
        };
        let name = slot.spec.name.clone();
        let log = container::log_path(&self.dir, &name, restart);
        let fallback =
            slot.spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        let message = if code != 0 && fallback {
            container::fallback_message(&log)
        } else {
            String::new()
        };
        self.kubelet.logs.set(
            &self.namespace,
            &self.name,
            &name,
            ContainerLogs {
                pod_dir: self.dir.clone(),
                restart,
                running: false,
            },
        );
        self.slots[i].state = State::Terminated {
            code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message,
            started,
            finished: Timestamp::now(),
        };
        self.after_exit(i);
    }

    fn phase(&self) -> &'static str {
        let sandboxed = !self.netns.is_empty();
        let running = self
            .slots
            .iter()
            .any(|s| matches!(s.state, State::Running { .. }) || s.restart_at.is_some());
        let ended: Vec<i32> = self
            .slots
            .iter()
            .filter_map(|s| match (&s.state, s.restart_at) {
                (State::Terminated { code, .. }, None) => Some(*code),
                _ => None,
            })
            .collect();
        if !sandboxed || (!running && ended.len() < self.slots.len()) {
            "Pending"
        } else if running {
            "Running"
        } else if ended.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    }

    /// Writes the pod's status (the status subresource, one merge patch of all of it).
    async fn report(&self) {
        let now = Time(Timestamp::now());
        let ready = !self.slots.is_empty()
            && self
                .slots
                .iter()
                .all(|s| matches!(s.state, State::Running { .. }));
        let condition = |kind: &str, ok: bool| json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now, "lastProbeTime": null});
        let statuses: Vec<Value> = self
            .slots
            .iter()
            .map(|s| {
                json!({
                    "name": s.spec.name,
                    "image": s.spec.image,
                    "imageID": "",
                    "containerID": format!("multinet-lab://{}-{}-{}", self.uid, s.spec.name, s.restarts),
                    "ready": matches!(s.state, State::Running { .. }),
                    "started": matches!(s.state, State::Running { .. }),
                    "restartCount": s.restarts,
                    "state": state_json(&s.state),
                    "lastState": s.last.as_ref().map(state_json).unwrap_or(json!({})),
                })
            })
            .collect();
        let mut status = json!({
            "phase": self.phase(),
            "conditions": [
                condition("Initialized", true),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", true),
            ],
            "hostIP": self.kubelet.node_address.to_string(),
            "startTime": Time(self.started),
            "containerStatuses": statuses,
            "qosClass": "Burstable",
        });
        if !self.pod_ip.is_empty() {
            status["podIP"] = json!(self.pod_ip);
            status["podIPs"] = json!([{"ip": self.pod_ip}]);
        }
        if let Err(e) = self
            .api()
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
        {
            tracing::debug!(
                "pod {}/{} status: {}",
                self.namespace,
                self.name,
                super::api_message(&e)
            );
        }
    }

    async fn wait_for_deletion(&mut self, rx: &mut watch::Receiver<Option<Pod>>) {
        loop {
            match rx.borrow().as_ref() {
                None => return,
                Some(p) if deleting(p) => {
                    self.pod = p.clone();
                    return;
                }
                Some(_) => {}
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops the containers (SIGTERM, the grace period, SIGKILL) and removes the sandbox.
    async fn terminate(&mut self, exits: &mut mpsc::UnboundedReceiver<(usize, i32, i32)>) {
        let grace = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0) as u64;
        let signal_all = |slots: &[Slot], signal: Signal| {
            for s in slots {
                if let State::Running { pid, .. } = s.state
                    && pid > 0
                {
                    let _ = kill(Pid::from_raw(pid as i32), signal);
                }
            }
        };
        for s in &mut self.slots {
            s.restart_at = None;
        }
        signal_all(&self.slots, Signal::SIGTERM);
        let mut deadline = tokio::time::Instant::now() + Duration::from_secs(grace);
        let mut killed = false;
        while self
            .slots
            .iter()
            .any(|s| matches!(s.state, State::Running { .. }))
        {
            match tokio::time::timeout_at(deadline, exits.recv()).await {
                Ok(Some((i, restart, code))) => {
                    self.exited(i, restart, code).await;
                    self.slots[i].restart_at = None;
                }
                Ok(None) => break,
                Err(_) if !killed => {
                    signal_all(&self.slots, Signal::SIGKILL);
                    killed = true;
                    deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                }
                Err(_) => break,
            }
        }
        if let Some(sandbox) = self.sandbox.take()
            && let Err(e) = self
                .kubelet
                .with_lab(move |lab| lab.remove_sandbox(&sandbox))
                .await
        {
            tracing::warn!(
                "pod {}/{}: removing its sandbox: {e:#}",
                self.namespace,
                self.name
            );
        }
        self.kubelet.logs.remove_pod(&self.namespace, &self.name);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The deletion confirmed, as the kubelet confirms it once the pod's containers are gone.
    async fn confirm_deletion(&self) {
        if !deleting(&self.pod) {
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
                super::api_message(&e)
            ),
        }
    }
}

fn state_json(state: &State) -> Value {
    match state {
        State::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        State::Running { started, .. } => json!({"running": {"startedAt": Time(*started)}}),
        State::Terminated {
            code,
            reason,
            message,
            started,
            finished,
        } => {
            let mut t = json!({"exitCode": code, "reason": reason, "startedAt": Time(*started), "finishedAt": Time(*finished)});
            if !message.is_empty() {
                t["message"] = json!(message);
            }
            json!({"terminated": t})
        }
    }
}
