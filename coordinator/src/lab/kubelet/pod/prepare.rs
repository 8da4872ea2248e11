//! Steps 1 and 2 of a pod's life: its images checked (any but multinet's backs off as a
//! failing pull), its volumes made, then its network: the node's for a hostNetwork pod, else a
//! sandbox with Multus' attachments, tried again with a back-off while it fails
//! (`FailedCreatePodSandBox`). Also the sandbox's removal, once nothing runs in it any more.

use tokio::sync::watch;

use super::{BACKOFF_MAX, BACKOFF_START, PodUpdate, Worker, wait_unless_ending};
use crate::lab::kubelet::events::Kind;
use crate::lab::kubelet::{multus, volumes};

impl Worker {
    /// Checks images, makes the volumes and the sandbox (retrying), writes the network status.
    /// False when the pod must stop meanwhile or can never start here.
    pub(super) async fn prepare(&mut self, rx: &mut watch::Receiver<PodUpdate>) -> bool {
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

    /// Removes the sandbox, if the pod has one (CNI DEL releases its addresses).
    pub(super) async fn remove_sandbox(&mut self) {
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
}
