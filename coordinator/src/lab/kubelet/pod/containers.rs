//! Steps 3 and 4 of a pod's life: its containers started (a start that fails is a
//! `StartError`, as containerd reports it), watched, and restarted per `restartPolicy` — at
//! once the first time, then with a back-off doubling from 10 s to 5 min (`CrashLoopBackOff`
//! meanwhile).

use k8s_openapi::jiff::Timestamp;
use tokio::sync::{mpsc, watch};

use super::status::State;
use super::{BACKOFF_MAX, BACKOFF_START, Exit, PodUpdate, Worker};
use crate::lab::kubelet::container;
use crate::lab::kubelet::events::Kind;
use crate::lab::kubelet::logs::ContainerLogs;
use crate::lab::kubelet::volumes;

impl Worker {
    /// Starts container `i` (its start number is its restart count); its exit comes back on
    /// the worker's exits channel.
    pub(super) async fn start(&mut self, i: usize) {
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

    /// Watches the containers until the pod finishes or must stop: exits recorded, restarts
    /// started when due.
    pub(super) async fn supervise(
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

    /// Records that start `restart` of container `i` ended with `code` (an exit of an older
    /// start is ignored).
    pub(super) fn exited(&mut self, i: usize, restart: i32, code: i32) {
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
}
