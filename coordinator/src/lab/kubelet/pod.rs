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
//!
//! The files: `prepare` (steps 1 and 2: images, volumes, the sandbox and Multus'
//! attachments), `containers` (steps 3 and 4: starting, restarting and watching them), `stop`
//! (step 5), `status` (the status written after each step, and the phase it gives).

mod containers;
mod prepare;
mod status;
mod stop;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};

use self::status::State;
use super::events::Recorder;
use super::{Kubelet, volumes};
use crate::lab::sandbox::Sandbox;

/// The first back-off (a sandbox, a pull, a restart after the first), doubling up to
/// [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_secs(10);
/// The longest back-off.
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

/// Waits `back_off`; false as soon as the pod must stop (or nobody can tell it any more).
async fn wait_unless_ending(back_off: Duration, rx: &mut watch::Receiver<PodUpdate>) -> bool {
    tokio::time::timeout(back_off, rx.wait_for(PodUpdate::ending))
        .await
        .is_err()
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

    /// The pod's life, steps 1 to 5.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough never to end by itself within a test.
    const NEVER: Duration = Duration::from_secs(600);
    /// How long a test waits for what must happen at once.
    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_back_off_runs_out_while_the_pod_stays() {
        let (_tx, mut rx) = watch::channel(PodUpdate::Present(Pod::default()));
        assert!(wait_unless_ending(Duration::from_millis(20), &mut rx).await);
    }

    #[tokio::test]
    async fn a_back_off_ends_at_once_when_the_pod_must_stop() {
        let (tx, mut rx) = watch::channel(PodUpdate::Present(Pod::default()));
        let stop = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.send_replace(PodUpdate::Stop);
            tx
        });
        let waited = tokio::time::timeout(PATIENCE, wait_unless_ending(NEVER, &mut rx)).await;
        assert_eq!(waited.ok(), Some(false), "the back-off did not end at Stop");
        drop(stop.await);
        let (_tx, mut ended) = watch::channel(PodUpdate::Stop);
        assert!(
            !wait_unless_ending(NEVER, &mut ended).await,
            "already ending"
        );
    }

    #[tokio::test]
    async fn a_back_off_ends_when_nobody_can_tell_the_pod_any_more() {
        let (tx, mut rx) = watch::channel(PodUpdate::Present(Pod::default()));
        drop(tx);
        let waited = tokio::time::timeout(PATIENCE, wait_unless_ending(NEVER, &mut rx)).await;
        assert_eq!(waited.ok(), Some(false));
    }
}
