//! One pod's life on a lab node, as the kubelet syncs it (Kubernetes `pkg/kubelet/kubelet.go`,
//! `syncPod` / `SyncTerminatingPod`; `pkg/kubelet/kuberuntime`, `computePodActions`):
//!
//! 1. Images: only multinet's runs; any other backs off as a failing pull does.
//! 2. Volumes first (the downward-API `network-status` file is empty until Multus has written
//!    the annotation, as on a node), then the sandbox: the pod namespace and Multus'
//!    attachments; a failure is the `FailedCreatePodSandBox` event with the plugin's message,
//!    the pod stays `ContainerCreating`, and the sandbox is tried again with a back-off (10 s
//!    doubling to 5 min), each failure counted on the one event.
//! 3. Containers started; status `Running`, `Ready` once every container runs.
//! 4. A container that ends is restarted per `restartPolicy` (at once the first time, then
//!    with a back-off of 10 s doubling to 5 min, `CrashLoopBackOff` meanwhile; `restartCount`,
//!    `lastState`); with none to restart, the phase is `Succeeded` or `Failed` and the sandbox
//!    is removed (CNI DEL releases the addresses), as the kubelet kills a finished pod's
//!    sandbox.
//! 5. Graceful deletion: SIGTERM, the grace period, SIGKILL, CNI DEL, then the deletion is
//!    confirmed (`gracePeriodSeconds: 0` with the pod's uid as precondition), as the kubelet
//!    does once its containers are gone.

mod status;

use crate::backend::kube::api_error::said;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use nix::sys::signal::Signal;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use self::status::{ContainerPhase, State};
use super::events::{Kind, Recorder};
use super::logs::ContainerLogs;
use super::{Kubelet, container, multus, volumes};
use crate::lab::sandbox::Sandbox;

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the pod's worker is told.
#[derive(Debug, Clone)]
pub enum PodUpdate {
    /// The pod as the API has it now.
    Present(Pod),
    /// The pod was removed from the API (its last state): stop it, confirm nothing.
    Gone(Pod),
    /// The lab stops serving: stop the pod, leave its object.
    Stop,
}

impl PodUpdate {
    /// Whether the pod must stop: deleted, being deleted, or the lab stopping.
    fn ending(&self) -> bool {
        match self {
            PodUpdate::Present(pod) => pod.metadata.deletion_timestamp.is_some(),
            PodUpdate::Gone(_) | PodUpdate::Stop => true,
        }
    }
}

/// A container: its spec, state, restarts.
#[derive(Debug)]
struct Slot {
    /// The container in the pod spec.
    spec: Container,
    /// How many times it was restarted (`restartCount`); numbers its starts and logs.
    restarts: i32,
    /// Its state now.
    state: State,
    /// Its previous termination (`lastState`).
    last: Option<State>,
    /// When a restart is due (back-off), if one is.
    restart_at: Option<tokio::time::Instant>,
    /// The next back-off (zero before the first restart).
    backoff: Duration,
    /// Signals for its process, delivered by the task that owns and reaps it.
    signals: Option<mpsc::UnboundedSender<Signal>>,
}

/// An ended start of container `slot`: `(slot, start number, exit code)`.
type Exit = (usize, i32, i32);

/// A pod's worker.
#[derive(Debug)]
struct Worker {
    kubelet: Arc<Kubelet>,
    /// The pod (the version it started from, with the annotations written since).
    pod: Pod,
    node: String,
    namespace: String,
    name: String,
    uid: String,
    /// The pod's files: volumes, roots, logs.
    dir: std::path::PathBuf,
    recorder: Recorder,
    /// Its namespace and attachments, while it has them.
    sandbox: Option<Sandbox>,
    /// The network namespace its containers run in (the sandbox's, or the node's).
    netns: String,
    /// `status.podIP`.
    pod_ip: String,
    started: Timestamp,
    slots: Vec<Slot>,
    volumes: Vec<volumes::HostVolume>,
    exits: mpsc::UnboundedSender<Exit>,
}

/// Runs the pod the channel carries until it ends (see [`PodUpdate`]).
pub async fn run(kubelet: Arc<Kubelet>, mut rx: watch::Receiver<PodUpdate>) {
    let PodUpdate::Present(pod) = rx.borrow_and_update().clone() else {
        return;
    };
    let (exits, mut exit_rx) = mpsc::unbounded_channel();
    let mut worker = Worker::new(kubelet, pod, exits);
    worker.life(&mut rx, &mut exit_rx).await;
}

/// Waits `back_off`; false as soon as the pod must stop.
async fn wait_unless_ending(back_off: Duration, rx: &mut watch::Receiver<PodUpdate>) -> bool {
    let until = tokio::time::Instant::now() + back_off;
    loop {
        if rx.borrow().ending() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => return true,
            changed = rx.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
        }
    }
}

impl Worker {
    fn new(kubelet: Arc<Kubelet>, pod: Pod, exits: mpsc::UnboundedSender<Exit>) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let node = spec.node_name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
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
                backoff: Duration::ZERO,
                signals: None,
            })
            .collect();
        Self {
            recorder: Recorder::new(kubelet.client.clone(), &pod, &node),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            dir: kubelet.state_dir.join("pods").join(&uid),
            uid,
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
        rx: &mut watch::Receiver<PodUpdate>,
        exits: &mut mpsc::UnboundedReceiver<Exit>,
    ) {
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.clone());
        let finished = matches!(phase.as_deref(), Some("Succeeded" | "Failed"));
        if !finished && self.prepare(rx).await && !rx.borrow().ending() {
            for i in 0..self.slots.len() {
                self.start(i).await;
            }
            self.report().await;
            self.supervise(rx, exits).await;
            if !rx.borrow().ending() {
                // Finished: nothing will run in the sandbox again.
                self.remove_sandbox().await;
            }
        }
        while !rx.borrow().ending() {
            if rx.changed().await.is_err() {
                break;
            }
        }
        let last = rx.borrow().clone();
        self.terminate(&last, exits).await;
        if let PodUpdate::Present(pod) = last {
            self.confirm_deletion(&pod).await;
        }
    }

    /// Checks images, makes the volumes and the sandbox (retrying), writes the network status.
    /// False when the pod must stop meanwhile or can never start here.
    async fn prepare(&mut self, rx: &mut watch::Receiver<PodUpdate>) -> bool {
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
            return self
                .cannot_start("the multinet lab does not run init containers")
                .await;
        }
        self.report().await;
        match volumes::materialize(&self.kubelet, &self.pod, &self.dir.join("volumes")).await {
            Ok(v) => self.volumes = v,
            Err(e) => return self.cannot_start(&multinet_agent::chain(&e)).await,
        }
        // A node whose runtime network is not ready runs only hostNetwork pods
        // (`pkg/kubelet/kubelet.go`, `syncPod`: "network is not ready").
        let host_network = spec.host_network == Some(true);
        if !host_network && self.kubelet.not_ready.contains(&self.node) {
            let message = "network is not ready: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:the lab runs this node as not ready";
            let mut backoff = BACKOFF_START;
            loop {
                self.recorder
                    .record(Kind::Warning, "NetworkNotReady", message)
                    .await;
                if !wait_unless_ending(backoff, rx).await {
                    return false;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        let mut backoff = BACKOFF_START;
        loop {
            match self.make_sandbox(host_network).await {
                Ok(()) => break,
                Err(message) => {
                    let text = format!(
                        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{}\": {message}",
                        self.uid
                    );
                    self.recorder
                        .record(Kind::Warning, "FailedCreatePodSandBox", &text)
                        .await;
                    if !wait_unless_ending(backoff, rx).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        // The downward API now reads the pod with Multus' annotation (a kubelet's volume
        // manager rewrites the files when the pod changes).
        if let Err(e) = volumes::refresh_downward(&self.pod, &self.dir.join("volumes")) {
            return self.cannot_start(&multinet_agent::chain(&e)).await;
        }
        true
    }

    /// A pod this lab cannot start: `Failed` event, containers waiting with the reason.
    async fn cannot_start(&mut self, message: &str) -> bool {
        self.recorder.record(Kind::Warning, "Failed", message).await;
        self.set_waiting("CreateContainerConfigError", message);
        self.report().await;
        false
    }

    /// An image the lab cannot run: every attempt fails as a pull does (`Failed` events,
    /// `ErrImagePull`), then `ImagePullBackOff` until the next attempt, the back-off doubling
    /// from 10 s to 5 min (`pkg/kubelet/images/image_manager.go`, `EnsureImageExists`), until
    /// the pod must stop.
    async fn pull_back_off(&mut self, image: &str, rx: &mut watch::Receiver<PodUpdate>) {
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
            if !wait_unless_ending(backoff, rx).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The pod's network: the node's for hostNetwork pods, else a sandbox with Multus'
    /// attachments, whose `network-status` is written before the sandbox counts as made (a
    /// failure to write it fails the ADD, as in Multus). On failure nothing is left.
    async fn make_sandbox(&mut self, host_network: bool) -> Result<(), String> {
        if host_network {
            let node = self.node.clone();
            self.netns = self
                .kubelet
                .with_lab(move |lab| Ok(lab.node_namespace(&node)))
                .await
                .map_err(|e| multinet_agent::chain(&e))?;
            self.pod_ip = self.kubelet.node_address.to_string();
            return Ok(());
        }
        let delegates = multus::delegates(&self.kubelet, &self.pod).await?;
        let node = self.node.clone();
        let sandbox = self
            .kubelet
            .with_lab(move |lab| lab.add_sandbox(&node))
            .await
            .map_err(|e| multinet_agent::chain(&e))?;
        let attached =
            match multus::attach_all(&self.kubelet, &self.pod, &sandbox, &delegates).await {
                Ok(statuses) if delegates.is_empty() => Ok(statuses),
                Ok(statuses) => multus::write_status(&self.kubelet, &self.pod, &statuses)
                    .await
                    .map(|()| statuses)
                    .map_err(|e| multinet_agent::chain(&e)),
                Err(message) => Err(message),
            };
        match attached {
            Ok(statuses) => {
                self.netns = sandbox.ns.clone();
                self.pod_ip = sandbox.pod_ip.to_string();
                self.sandbox = Some(sandbox);
                if !delegates.is_empty()
                    && let Ok(text) = serde_json::to_string_pretty(&statuses)
                {
                    self.pod
                        .metadata
                        .annotations
                        .get_or_insert_default()
                        .insert(
                            multinet_proto::multus::NETWORK_STATUS_ANNOTATION.into(),
                            text,
                        );
                }
                Ok(())
            }
            Err(message) => {
                if let Err(e) = self
                    .kubelet
                    .with_lab(move |lab| lab.remove_sandbox(&sandbox))
                    .await
                {
                    tracing::warn!(
                        "pod {}/{}: removing a failed sandbox: {}",
                        self.namespace,
                        self.name,
                        multinet_agent::chain(&e)
                    );
                }
                Err(message)
            }
        }
    }

    async fn remove_sandbox(&mut self) {
        if let Some(sandbox) = self.sandbox.take()
            && let Err(e) = self
                .kubelet
                .with_lab(move |lab| lab.remove_sandbox(&sandbox))
                .await
        {
            tracing::warn!(
                "pod {}/{}: removing its sandbox: {}",
                self.namespace,
                self.name,
                multinet_agent::chain(&e)
            );
        }
    }

    fn set_waiting(&mut self, reason: &str, message: &str) {
        for slot in &mut self.slots {
            slot.state = State::Waiting {
                reason: reason.into(),
                message: message.into(),
            };
        }
    }

    async fn start(&mut self, i: usize) {
        let spec = self.slots[i].spec.clone();
        let restart = self.slots[i].restarts;
        // Fields the downward API gives env now that the pod has its address.
        let status = self.pod.status.get_or_insert_default();
        status.pod_ip = Some(self.pod_ip.clone());
        status.host_ip = Some(self.kubelet.node_address.to_string());
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
            Ok(running) => {
                self.slots[i].state = State::Running {
                    started: running.started,
                };
                self.kubelet.logs.set(
                    &self.namespace,
                    &self.name,
                    &spec.name,
                    ContainerLogs {
                        uid: self.uid.clone(),
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
                let (signals, signal_rx) = mpsc::unbounded_channel();
                self.slots[i].signals = Some(signals);
                let exits = self.exits.clone();
                tokio::spawn(async move {
                    let code = running.wait(signal_rx).await;
                    let _ = exits.send((i, restart, code));
                });
            }
            Err(e) => {
                // As containerd reports a start that fails: terminated, exit 128, StartError.
                let now = Timestamp::now();
                let message = multinet_agent::chain(&e);
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

    /// After container `i` ended: schedule its restart if the policy says so — at once the
    /// first time, then after a back-off doubling from 10 s to 5 min (`kuberuntime`
    /// `doBackOff`).
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
            if !slot.backoff.is_zero() {
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
            }
            slot.backoff = if slot.backoff.is_zero() {
                BACKOFF_START
            } else {
                (slot.backoff * 2).min(BACKOFF_MAX)
            };
        }
    }

    async fn supervise(
        &mut self,
        rx: &mut watch::Receiver<PodUpdate>,
        exits: &mut mpsc::UnboundedReceiver<Exit>,
    ) {
        loop {
            if !matches!(self.phase(), "Running" | "Pending") || rx.borrow().ending() {
                return;
            }
            let next = self.slots.iter().filter_map(|s| s.restart_at).min();
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                Some((i, restart, code)) = exits.recv() => {
                    self.exited(i, restart, code);
                    self.report().await;
                }
                () = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
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

    fn exited(&mut self, i: usize, restart: i32, code: i32) {
        let slot = &self.slots[i];
        if slot.restarts != restart {
            return;
        }
        let State::Running { started } = slot.state else {
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
                uid: self.uid.clone(),
                pod_dir: self.dir.clone(),
                restart,
                running: false,
            },
        );
        self.slots[i].signals = None;
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
        let containers: Vec<ContainerPhase<'_>> = self
            .slots
            .iter()
            .map(|s| ContainerPhase {
                state: &s.state,
                restarting: s.restart_at.is_some(),
            })
            .collect();
        status::phase(!self.netns.is_empty(), &containers)
    }

    /// Writes the pod's status (the status subresource, one merge patch of all of it).
    async fn report(&self) {
        let now = Time(Timestamp::now());
        let ready = !self.slots.is_empty() && self.slots.iter().all(|s| s.state.running());
        let condition = |kind: &str, ok: bool| {
            json!({"type": kind, "status": if ok { "True" } else { "False" },
                   "lastTransitionTime": now, "lastProbeTime": null})
        };
        let statuses: Vec<serde_json::Value> = self
            .slots
            .iter()
            .map(|s| {
                json!({
                    "name": s.spec.name,
                    "image": s.spec.image,
                    "imageID": "",
                    "containerID": format!("multinet-lab://{}-{}-{}", self.uid, s.spec.name, s.restarts),
                    "ready": s.state.running(),
                    "started": s.state.running(),
                    "restartCount": s.restarts,
                    "state": s.state.json(),
                    "lastState": s.last.as_ref().map(State::json).unwrap_or(json!({})),
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
            tracing::debug!("pod {}/{} status: {}", self.namespace, self.name, said(e));
        }
    }

    /// Stops the containers (SIGTERM, the grace period, SIGKILL) and removes the sandbox.
    /// The grace period is the deletion's (`deletionGracePeriodSeconds`, 0 for a forced
    /// deletion), else the pod's; a stopping lab gives the pod's.
    async fn terminate(&mut self, last: &PodUpdate, exits: &mut mpsc::UnboundedReceiver<Exit>) {
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
    async fn confirm_deletion(&self, pod: &Pod) {
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
