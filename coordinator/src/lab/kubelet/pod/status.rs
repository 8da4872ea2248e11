//! A pod's status as the kubelet's status manager writes it (`pkg/kubelet/status`,
//! `generateAPIPodStatus`): phase from the containers' states and the restart policy
//! (`getPhase`), the four conditions, `containerStatuses` with `state` and `lastState`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::Worker;
use crate::backend::kube::api_error::said;

/// One container's state, as `containerStatuses[].state` shows it.
#[derive(Debug, Clone)]
pub enum State {
    /// Not running: being created, backing off, or unable to start.
    Waiting {
        /// `ContainerCreating`, `CrashLoopBackOff`, `ErrImagePull`, …
        reason: String,
        /// Details, may be empty.
        message: String,
    },
    /// Its process runs.
    Running {
        /// When it started.
        started: Timestamp,
    },
    /// Its process ended.
    Terminated {
        /// Exit code (128 + signal for a signal).
        code: i32,
        /// `Completed`, `Error` or `StartError`.
        reason: String,
        /// The termination message (may be empty).
        message: String,
        /// When it started.
        started: Timestamp,
        /// When it ended.
        finished: Timestamp,
    },
}

impl State {
    /// Whether the process runs.
    pub fn running(&self) -> bool {
        matches!(self, State::Running { .. })
    }

    /// The state's JSON, as in `containerStatuses[].state`.
    pub fn json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if !message.is_empty() {
                    w["message"] = json!(message);
                }
                json!({"waiting": w})
            }
            State::Running { started } => json!({"running": {"startedAt": Time(*started)}}),
            State::Terminated {
                code,
                reason,
                message,
                started,
                finished,
            } => {
                let mut t = json!({"exitCode": code, "reason": reason,
                    "startedAt": Time(*started), "finishedAt": Time(*finished)});
                if !message.is_empty() {
                    t["message"] = json!(message);
                }
                json!({"terminated": t})
            }
        }
    }
}

/// What the phase is computed from, per container: its state, and whether a restart is due.
#[derive(Debug, Clone, Copy)]
pub struct ContainerPhase<'a> {
    /// The state.
    pub state: &'a State,
    /// A restart is scheduled (back-off).
    pub restarting: bool,
}

/// The pod's phase (`getPhase`): Pending until the sandbox is up and no container has run;
/// Running while any container runs or will be restarted; Succeeded when all ended with 0 and
/// none will restart; Failed when all ended and one did not end with 0.
pub fn phase(sandboxed: bool, containers: &[ContainerPhase<'_>]) -> &'static str {
    let running = containers.iter().any(|c| c.state.running() || c.restarting);
    let ended: Vec<i32> = containers
        .iter()
        .filter_map(|c| match (c.state, c.restarting) {
            (State::Terminated { code, .. }, false) => Some(*code),
            _ => None,
        })
        .collect();
    if !sandboxed || (!running && ended.len() < containers.len()) {
        "Pending"
    } else if running {
        "Running"
    } else if ended.iter().all(|c| *c == 0) {
        "Succeeded"
    } else {
        "Failed"
    }
}

impl Worker {
    /// Every container waiting, for `reason` (`ErrImagePull`, `CreateContainerConfigError`, …).
    pub(super) fn set_waiting(&mut self, reason: &str, message: &str) {
        for slot in &mut self.slots {
            slot.state = State::Waiting {
                reason: reason.into(),
                message: message.into(),
            };
        }
    }

    /// The pod's phase now.
    pub(super) fn phase(&self) -> &'static str {
        let containers: Vec<ContainerPhase<'_>> = self
            .slots
            .iter()
            .map(|s| ContainerPhase {
                state: &s.state,
                restarting: s.restart_at.is_some(),
            })
            .collect();
        phase(!self.netns.is_empty(), &containers)
    }

    /// Writes the pod's status (the status subresource, one merge patch of all of it).
    pub(super) async fn report(&self) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(code: i32) -> State {
        State::Terminated {
            code,
            reason: "Error".into(),
            message: String::new(),
            started: Timestamp::UNIX_EPOCH,
            finished: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_phase_follows_the_containers_and_their_restarts() {
        let run = State::Running {
            started: Timestamp::UNIX_EPOCH,
        };
        let c = |state: &'static State, restarting| ContainerPhase { state, restarting };
        let (ok, bad) = (Box::leak(Box::new(ended(0))), Box::leak(Box::new(ended(1))));
        let run = Box::leak(Box::new(run));
        assert_eq!(phase(false, &[c(run, false)]), "Pending");
        assert_eq!(phase(true, &[c(run, false)]), "Running");
        assert_eq!(phase(true, &[c(bad, true)]), "Running", "a restart is due");
        assert_eq!(phase(true, &[c(ok, false)]), "Succeeded");
        assert_eq!(phase(true, &[c(ok, false), c(bad, false)]), "Failed");
    }
}
