//! What the cluster says about a run's pods, turned into the run's facts: a pod stuck in
//! ContainerCreating because Multus / IPAM / the CNI plugin failed (`FailedCreatePodSandBox`)
//! got no address on a network; an unschedulable pod or an image that cannot be pulled never
//! started; a pod that ended, or an agent container that restarted, is gone. When the run
//! ends, a pod whose container never ran is said as never started, with what it waited on.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use multinet_proto::network::CephNetwork;

use crate::scheduler::PodStatus;

/// A sandbox failure counts once the kubelet has seen it this often, or for this long: one
/// failed attempt that a retry mends (an IPAM lock taken, a CNI plugin still starting) is not a
/// pod without an address.
pub const SANDBOX_REPEATS: i32 = 3;
/// See [`SANDBOX_REPEATS`].
pub const SANDBOX_PERSISTS: Duration = Duration::from_secs(30);

/// The part of an Event diagnosis reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// The kind of object it is about: `Pod`, or `DaemonSet` (a host checker pod it could not
    /// create).
    pub kind: String,
    /// The object's name.
    pub pod: String,
    /// `FailedCreatePodSandBox`, `FailedScheduling`, `FailedCreate`, …
    pub reason: String,
    /// The message (the CNI error text, the scheduler's reasons).
    pub message: String,
    /// How often it happened (1 for a single event).
    pub repeats: i32,
    /// How long ago it first happened, when the event says.
    pub age: Option<Duration>,
}

impl PodEvent {
    /// From an Event, as of `now`.
    pub fn from_event(e: &k8s_openapi::api::core::v1::Event, now: Timestamp) -> Self {
        let first = e
            .first_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0));
        Self {
            kind: e.involved_object.kind.clone().unwrap_or_default(),
            pod: e.involved_object.name.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            repeats: e
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1),
            age: first.and_then(|t| Duration::try_from(now.duration_since(t)).ok()),
        }
    }

    /// Whether it has happened often enough, or for long enough, to be more than a hiccup.
    pub fn persists(&self) -> bool {
        self.repeats >= SANDBOX_REPEATS || self.age.is_some_and(|a| a >= SANDBOX_PERSISTS)
    }
}

/// The scheduler's reason when it cannot place the pod (`PodScheduled` false, `Unschedulable`).
pub fn unschedulable(status: &k8s_openapi::api::core::v1::PodStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .map(|c| c.message.as_deref().unwrap_or("no reason given"))
}

/// A NAD the run selected, as a diagnosis needs it: its network, its name (Multus's messages
/// name it) and, from its config, the master interface and MTU (which the CNI plugins' errors
/// are about, see [`crate::cni_reason`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedNad {
    /// The Ceph network it serves.
    pub network: CephNetwork,
    /// `metadata.name`.
    pub name: String,
    /// The config's `master` (macvlan, ipvlan), when it names one.
    pub master: Option<String>,
    /// The config's `mtu`, when set.
    pub mtu: Option<u32>,
}

/// A pod that cannot run: no address (with the network, told apart by the NAD names in the
/// message) or not started (unschedulable, image not pulled). `nads` are the NADs of the
/// public and cluster networks. `None` while nothing is wrong (yet).
pub fn stuck(
    pod: &Pod,
    events: &[PodEvent],
    nads: &[SelectedNad],
    image: &str,
) -> Option<PodStatus> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref()?;
    if let Some(why) = unschedulable(status) {
        return Some(PodStatus::NotStarted {
            reason: format!("pod {name} is unschedulable: {why}"),
        });
    }
    for c in status.container_statuses.iter().flatten() {
        let Some(waiting) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        // ErrImagePull is one failed attempt (a registry hiccup); the kubelet says
        // ImagePullBackOff once it keeps failing.
        if matches!(
            reason,
            "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull"
        ) {
            return Some(PodStatus::NotStarted {
                reason: format!(
                    "pod {name} cannot pull image {image} ({reason}): {}",
                    waiting.message.as_deref().unwrap_or("no message")
                ),
            });
        }
    }
    let sandbox = sandbox_failure(name, events)?;
    let running = status.phase.as_deref() == Some("Running");
    if running || !sandbox.persists() {
        return None; // a retry succeeded, or may yet
    }
    Some(no_address(pod, sandbox, nads))
}

/// The latest `FailedCreatePodSandBox` event of pod `name`.
fn sandbox_failure<'a>(name: &str, events: &'a [PodEvent]) -> Option<&'a PodEvent> {
    events
        .iter()
        .rev()
        .find(|e| e.kind == "Pod" && e.pod == name && e.reason == "FailedCreatePodSandBox")
}

/// No address on the network a sandbox failure names: the NAD its message names (Multus
/// quotes it, or gives it after the pod as `…:<nad>]`); if it names none, the first one. The
/// plugin's words about the NAD's master are completed with its name and the pod's node
/// ([`crate::cni_reason::annotate`]; the master's own MTU is not known here).
fn no_address(pod: &Pod, sandbox: &PodEvent, nads: &[SelectedNad]) -> PodStatus {
    let nad = nads
        .iter()
        .find(|nad| names_nad(&sandbox.message, &nad.name))
        .or(nads.first());
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("(not bound)");
    let reason = match nad.and_then(|n| n.master.as_deref().map(|m| (n, m))) {
        Some((nad, master)) => crate::cni_reason::annotate(
            &sandbox.message,
            &crate::cni_reason::Master {
                name: master,
                node,
                nad_mtu: nad.mtu,
                master_mtu: None,
                present: None,
            },
        ),
        None => sandbox.message.clone(),
    };
    PodStatus::NoAddress {
        network: nad.map_or(CephNetwork::Public, |n| n.network),
        reason,
    }
}

/// Whether the pod's containers never ran: none is or was running or terminated, none
/// restarted. Such a pod's agent never started, whatever else is known of it.
pub fn never_ran(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_none_or(|containers| {
            containers.iter().all(|c| {
                let state = |s: Option<&k8s_openapi::api::core::v1::ContainerState>| {
                    s.is_some_and(|s| s.running.is_some() || s.terminated.is_some())
                };
                c.restart_count == 0 && !state(c.state.as_ref()) && !state(c.last_state.as_ref())
            })
        })
}

/// Why a pod whose container never ran did not start, as the run ends: no address when the
/// sandbox failed on a network (even once: nothing mended it), otherwise never started, with
/// what it waited on.
pub fn never_started(
    pod: &Pod,
    events: &[PodEvent],
    nads: &[SelectedNad],
    image: &str,
) -> PodStatus {
    if let Some(status) = stuck(pod, events, nads, image) {
        return status;
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if let Some(sandbox) = sandbox_failure(name, events) {
        return no_address(pod, sandbox, nads);
    }
    let latest = events
        .iter()
        .rev()
        .find(|e| e.kind == "Pod" && e.pod == name);
    PodStatus::NotStarted {
        reason: format!("never started: {}", waiting(pod, latest)),
    }
}

/// What a pod waits on, in one line: its phase, its node, each waiting container's reason and
/// message, and `latest`, the latest event about it.
pub fn waiting(pod: &Pod, latest: Option<&PodEvent>) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let mut parts = vec![format!(
        "pod {name} {}",
        status.phase.as_deref().unwrap_or("Pending")
    )];
    parts.push(
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(node) => format!("on node {node}"),
            None => "not scheduled yet".into(),
        },
    );
    for c in status.container_statuses.iter().flatten() {
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let mut text = format!(
                "container {} {}",
                c.name,
                w.reason.as_deref().unwrap_or("waiting")
            );
            if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
                text.push_str(&format!(" ({m})"));
            }
            parts.push(text);
        }
    }
    if let Some(e) = latest {
        parts.push(format!("latest event {}: {}", e.reason, e.message));
    }
    parts.join(", ")
}

/// Whether a Multus error message names the NAD `nad` (exactly: `public-net` is not named by
/// `public-net-2`).
fn names_nad(message: &str, nad: &str) -> bool {
    message.match_indices(nad).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + nad.len()..].chars().next();
        let edge = |c: Option<char>| {
            c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        };
        edge(before) && edge(after)
    })
}

/// A pod whose agent is gone: the pod ended, or its container restarted (host checkers run
/// under a DaemonSet, which restarts them). The reason says how the container last ended.
pub fn ended(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let agent = status.container_statuses.iter().flatten().next();
    let phase = status.phase.as_deref().unwrap_or_default();
    if matches!(phase, "Failed" | "Succeeded") {
        return Some(format!(
            "pod {name} ended ({phase}){}",
            agent.map(last_exit).unwrap_or_default()
        ));
    }
    let agent = agent?;
    (agent.restart_count > 0).then(|| {
        format!(
            "the agent container of pod {name} restarted {} time(s){}",
            agent.restart_count,
            last_exit(agent)
        )
    })
}

/// `: exit code 1 (Error): message` from the current or last termination.
fn last_exit(c: &ContainerStatus) -> String {
    let terminated = c
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
    match terminated {
        Some(t) => format!(
            ": exit code {} ({}){}",
            t.exit_code,
            t.reason.as_deref().unwrap_or("no reason"),
            t.message
                .as_deref()
                .map(|m| format!(": {}", m.trim()))
                .unwrap_or_default()
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "multinet-r-w2-osd-0"},
            "status": status
        }))
        .expect("pod")
    }

    fn nads() -> Vec<SelectedNad> {
        vec![
            SelectedNad {
                network: CephNetwork::Public,
                name: "public-net".into(),
                master: None,
                mtu: None,
            },
            SelectedNad {
                network: CephNetwork::Cluster,
                name: "cluster-net".into(),
                master: None,
                mtu: None,
            },
        ]
    }

    const SANDBOX: &str = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox: plugin type=\"multus\" name=\"multus-cni-network\" failed (add): [rook-ceph/multinet-r-w2-osd-0/abc:cluster-net]: error adding container to network \"cluster-net\": Error at storage engine: Could not allocate IP in range: ip: 192.168.30.1 / - 192.168.30.62 / range: net.IPNet{IP:net.IP{0xc0, 0xa8, 0x1e, 0x0}}";

    #[test]
    fn a_sandbox_failure_about_the_master_names_it_and_the_node() {
        let mut nads = nads();
        nads[1].master = Some("eth1".into());
        nads[1].mtu = Some(9000);
        let mut p = pod(json!({"phase": "Pending"}));
        p.spec = Some(
            serde_json::from_value(json!({"nodeName": "worker-2.example.com", "containers": []}))
                .expect("spec"),
        );
        // Newer macvlan's bare netlink error, as Multus wraps it for the cluster NAD.
        let missing = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox: plugin type=\"multus\" name=\"multus-cni-network\" failed (add): [rook-ceph/multinet-r-w2-osd-0/abc:cluster-net]: error adding container to network \"cluster-net\": Link not found";
        let event = |message: &str| PodEvent {
            kind: "Pod".into(),
            pod: "multinet-r-w2-osd-0".into(),
            reason: "FailedCreatePodSandBox".into(),
            message: message.into(),
            repeats: 1,
            age: None,
        };
        let PodStatus::NoAddress { network, reason } =
            never_started(&p, &[event(missing)], &nads, "img")
        else {
            panic!("no address expected");
        };
        assert_eq!(network, CephNetwork::Cluster);
        let said = crate::cni_reason::read(&reason);
        assert!(said.missing, "{reason}");
        assert_eq!(said.master.as_deref(), Some("eth1"));
        assert!(reason.contains("on node worker-2.example.com"), "{reason}");
        // macvlan's MTU check (macvlan.go, loadConf): the master named, both MTUs read.
        let mtu = missing.replace(
            "Link not found",
            "invalid MTU 9000, must be [0, master MTU(1500)]",
        );
        let PodStatus::NoAddress { reason, .. } = never_started(&p, &[event(&mtu)], &nads, "img")
        else {
            panic!("no address expected");
        };
        let said = crate::cni_reason::read(&reason);
        assert_eq!(
            (said.master.as_deref(), said.nad_mtu, said.master_mtu),
            (Some("eth1"), Some(9000), Some(1500))
        );
    }

    #[test]
    fn a_sandbox_failure_is_no_address_on_the_network_its_message_names() {
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        let once = PodEvent {
            kind: "Pod".into(),
            pod: "multinet-r-w2-osd-0".into(),
            reason: "FailedCreatePodSandBox".into(),
            message: SANDBOX.into(),
            repeats: 1,
            age: Some(Duration::from_secs(2)),
        };
        // One failed attempt may yet be mended by a retry.
        assert_eq!(stuck(&p, std::slice::from_ref(&once), &nads(), "img"), None);
        let expected = Some(PodStatus::NoAddress {
            network: CephNetwork::Cluster,
            reason: SANDBOX.into(),
        });
        let repeated = PodEvent {
            repeats: SANDBOX_REPEATS,
            ..once.clone()
        };
        assert_eq!(
            stuck(&p, std::slice::from_ref(&repeated), &nads(), "img"),
            expected
        );
        let lasting = PodEvent {
            age: Some(SANDBOX_PERSISTS),
            ..once.clone()
        };
        assert_eq!(
            stuck(&p, std::slice::from_ref(&lasting), &nads(), "img"),
            expected
        );
        let events = [repeated];
        // Another pod's event says nothing about this one.
        let other = vec![PodEvent {
            pod: "multinet-r-w3-osd-0".into(),
            ..events[0].clone()
        }];
        assert_eq!(stuck(&p, &other, &nads(), "img"), None);
    }

    #[test]
    fn the_nad_a_message_names_is_matched_whole() {
        assert!(names_nad(
            "error adding container to network \"cluster-net\"",
            "cluster-net"
        ));
        assert!(names_nad(
            "[rook-ceph/pod/abc:cluster-net]: failed",
            "cluster-net"
        ));
        assert!(!names_nad("network \"cluster-net-2\"", "cluster-net"));
        assert!(!names_nad("network \"my-cluster-net\"", "cluster-net"));
    }

    #[test]
    fn events_count_their_repeats_and_age() {
        let now: Timestamp = "2026-11-29T10:00:40Z".parse().expect("time");
        let e: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "multinet-r-w2-osd-0"},
            "reason": "FailedCreatePodSandBox",
            "message": "m",
            "count": 2,
            "firstTimestamp": "2026-11-29T10:00:00Z"
        }))
        .expect("event");
        let e = PodEvent::from_event(&e, now);
        assert_eq!((e.repeats, e.age), (2, Some(Duration::from_secs(40))));
        assert!(e.persists());
    }

    #[test]
    fn unschedulable_and_image_pull_failures_never_started() {
        let p = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: ceph}, 2 node(s) didn't match Pod's node affinity/selector."}]}),
        );
        assert_eq!(
            stuck(&p, &[], &nads(), "img"),
            Some(PodStatus::NotStarted {
                reason: "pod multinet-r-w2-osd-0 is unschedulable: 0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: ceph}, 2 node(s) didn't match Pod's node affinity/selector.".into()
            })
        );
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"ghcr.io/multinet/multinet:9\""}}}]}),
        );
        let Some(PodStatus::NotStarted { reason }) =
            stuck(&p, &[], &nads(), "ghcr.io/multinet/multinet:9")
        else {
            panic!("not started")
        };
        assert!(
            reason.contains("cannot pull image ghcr.io/multinet/multinet:9 (ImagePullBackOff)"),
            "{reason}"
        );
        // The first failed pull is retried before it counts.
        let p = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "ErrImagePull", "message": "i/o timeout"}}}]}),
        );
        assert_eq!(stuck(&p, &[], &nads(), "img"), None);
    }

    #[test]
    fn a_pod_whose_container_never_ran_never_started_and_says_what_it_waited_on() {
        let mut p = pod(
            json!({"phase": "Pending", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        p.spec = Some(
            serde_json::from_value(json!({"nodeName": "w2", "containers": []})).expect("spec"),
        );
        assert!(never_ran(&p));
        let mount = PodEvent {
            kind: "Pod".into(),
            pod: "multinet-r-w2-osd-0".into(),
            reason: "FailedMount".into(),
            message:
                "MountVolume.SetUp failed for volume \"tls\" : secret \"multinet-r-tls\" not found"
                    .into(),
            repeats: 1,
            age: None,
        };
        assert_eq!(
            never_started(&p, std::slice::from_ref(&mount), &nads(), "img"),
            PodStatus::NotStarted {
                reason: "never started: pod multinet-r-w2-osd-0 Pending, on node w2, container agent ContainerCreating, latest event FailedMount: MountVolume.SetUp failed for volume \"tls\" : secret \"multinet-r-tls\" not found".into()
            }
        );
        // One sandbox failure, never mended by the end of the run: no address.
        let sandbox = PodEvent {
            reason: "FailedCreatePodSandBox".into(),
            message: SANDBOX.into(),
            ..mount
        };
        assert_eq!(
            never_started(&p, &[sandbox], &nads(), "img"),
            PodStatus::NoAddress {
                network: CephNetwork::Cluster,
                reason: SANDBOX.into()
            }
        );
        // A container that ran (and ended, or restarted) did start.
        let ran = pod(
            json!({"phase": "Failed", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"terminated": {"exitCode": 1}}}]}),
        );
        assert!(!never_ran(&ran));
    }

    #[test]
    fn ended_pods_and_restarted_agents_say_how() {
        let p = pod(
            json!({"phase": "Failed", "containerStatuses": [{"name": "agent", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "network-status gives the public network 192.168.20.5, but interface \"public\" has 192.168.20.9\n"}}}]}),
        );
        assert_eq!(
            ended(&p).as_deref(),
            Some(
                "pod multinet-r-w2-osd-0 ended (Failed): exit code 1 (Error): network-status gives the public network 192.168.20.5, but interface \"public\" has 192.168.20.9"
            )
        );
        let p = pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "agent", "ready": true, "restartCount": 2, "image": "i", "imageID": "",
            "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
        );
        assert_eq!(
            ended(&p).as_deref(),
            Some(
                "the agent container of pod multinet-r-w2-osd-0 restarted 2 time(s): exit code 137 (OOMKilled)"
            )
        );
        let p = pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "agent", "ready": true, "restartCount": 0, "image": "i", "imageID": "", "state": {"running": {}}}]}),
        );
        assert_eq!(ended(&p), None);
    }
}
