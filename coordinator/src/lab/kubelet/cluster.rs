//! What ties a lab to the cluster it serves, kept in the lab's state directory so that
//! `multinet lab down` can undo it: the kubeconfig, the Node objects registered, and the pid of
//! the `lab up` process serving them (stopped first, so no process goes on serving a removed
//! lab).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::backend::kube::api_error::said;

/// What `lab down` needs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct KubeState {
    /// The cluster's kubeconfig.
    pub kubeconfig: PathBuf,
    /// Nodes registered.
    pub nodes: Vec<String>,
    /// The process serving them.
    #[serde(default)]
    pub pid: Option<u32>,
}

const KUBE_STATE: &str = "kube.json";

/// Records that this process serves `nodes` of the cluster `kubeconfig` names.
pub fn save(state_dir: &Path, kubeconfig: &Path, nodes: &BTreeSet<String>) -> anyhow::Result<()> {
    let state = KubeState {
        kubeconfig: std::fs::canonicalize(kubeconfig)
            .with_context(|| format!("the kubeconfig {}", kubeconfig.display()))?,
        nodes: nodes.iter().cloned().collect(),
        pid: Some(std::process::id()),
    };
    std::fs::write(
        state_dir.join(KUBE_STATE),
        serde_json::to_vec_pretty(&state)?,
    )
    .context("saving the lab's cluster")
}

/// Stops the process that serves the lab (SIGTERM, then up to 60 s for it to stop its pods,
/// then SIGKILL), if one does. A pid that is no longer a `multinet … lab up` is left alone.
pub fn stop_server(state_dir: &Path) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(pid) = read(state_dir).ok().flatten().and_then(|s| s.pid) else {
        return;
    };
    if pid == std::process::id() {
        return;
    }
    let serving = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                c.contains(" lab up ") && c.contains("--kubeconfig")
            })
            .unwrap_or(false)
    };
    if !serving(pid) {
        return;
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while serving(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    if serving(pid) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

fn read(state_dir: &Path) -> anyhow::Result<Option<KubeState>> {
    let Ok(text) = std::fs::read(state_dir.join(KUBE_STATE)) else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_slice(&text).context("the lab's cluster state")?,
    ))
}

/// Removes the Node objects a lab registered (its state names the cluster), if any; bounded.
pub async fn remove_nodes(state_dir: &Path) -> anyhow::Result<Vec<String>> {
    let Some(state) = read(state_dir)? else {
        return Ok(Vec::new());
    };
    let client = crate::backend::kube::client::connect(Some(&state.kubeconfig), None).await?;
    let nodes: Api<Node> = Api::all(client);
    let mut removed = Vec::new();
    for name in &state.nodes {
        let deleted = tokio::time::timeout(
            Duration::from_secs(10),
            nodes.delete(name, &kube::api::DeleteParams::default()),
        )
        .await
        .context("the API server did not answer within 10 s")?;
        match deleted {
            Ok(_) => removed.push(name.clone()),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => anyhow::bail!("removing node {name}: {}", said(e)),
        }
    }
    Ok(removed)
}

/// The port of the API server `config` names (the Service forwarder's target); it must be on
/// loopback.
pub fn api_port(config: &kube::Config) -> anyhow::Result<u16> {
    let uri = &config.cluster_url;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "the lab serves only a control plane on loopback (the kubeconfig's server is {uri})"
    );
    Ok(uri.port_u16().unwrap_or(443))
}
