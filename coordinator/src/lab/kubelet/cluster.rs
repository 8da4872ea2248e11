//! What ties a lab to the cluster it serves, kept in the lab's state directory so that
//! `multinet lab down` can undo it: the kubeconfig, the Node objects registered, and the pid of
//! the `lab up` process serving them (stopped first, so no process goes on serving a removed
//! lab).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::backend::kube::api_error::{KubeError, said};

/// Why the lab's tie to its cluster could not be recorded or undone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig's path could not be resolved (it is kept as an absolute path).
    #[error("the kubeconfig {}", path.display())]
    Kubeconfig {
        /// The kubeconfig as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file could not be written.
    #[error("saving the lab's cluster")]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not what `lab up` writes.
    #[error("the lab's cluster state")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No client for the cluster the state names.
    #[error(transparent)]
    Connect(super::ClientError),
    /// The API server did not answer a deletion in time.
    #[error("the API server did not answer within {} s", .waited.as_secs())]
    NoAnswer {
        /// How long it was waited for.
        waited: Duration,
        /// The timeout.
        #[source]
        source: tokio::time::error::Elapsed,
    },
    /// The API server refused to remove a node.
    #[error("removing node {node}")]
    RemoveNode {
        /// The node.
        node: String,
        /// What the API server said.
        #[source]
        source: KubeError,
    },
    /// The kubeconfig's API server is not on loopback, where the lab's forwarder reaches it.
    #[error(
        "the lab serves only a control plane on loopback (the kubeconfig's server is {server})"
    )]
    NotLoopback {
        /// The kubeconfig's server URL.
        server: String,
    },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long `lab down` waits for the API server to delete one node.
const DELETE_WAIT: Duration = Duration::from_secs(10);

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
pub fn save(state_dir: &Path, kubeconfig: &Path, nodes: &BTreeSet<String>) -> Result<()> {
    let state = KubeState {
        kubeconfig: std::fs::canonicalize(kubeconfig).map_err(|source| Error::Kubeconfig {
            path: kubeconfig.to_path_buf(),
            source,
        })?,
        nodes: nodes.iter().cloned().collect(),
        pid: Some(std::process::id()),
    };
    let path = state_dir.join(KUBE_STATE);
    serde_json::to_vec_pretty(&state)
        .map_err(std::io::Error::from)
        .and_then(|text| std::fs::write(&path, text))
        .map_err(|source| Error::Save { path, source })
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

fn read(state_dir: &Path) -> Result<Option<KubeState>> {
    let path = state_dir.join(KUBE_STATE);
    let Ok(text) = std::fs::read(&path) else {
        return Ok(None);
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| Error::State { path, source })
}

/// Removes the Node objects a lab registered (its state names the cluster), if any; bounded.
pub async fn remove_nodes(state_dir: &Path) -> Result<Vec<String>> {
    let Some(state) = read(state_dir)? else {
        return Ok(Vec::new());
    };
    let client = crate::backend::kube::client::connect(Some(&state.kubeconfig), None)
        .await
        .map_err(|e| Error::Connect(e.into()))?;
    let nodes: Api<Node> = Api::all(client);
    let mut removed = Vec::new();
    for name in &state.nodes {
        let deleted = tokio::time::timeout(
            DELETE_WAIT,
            nodes.delete(name, &kube::api::DeleteParams::default()),
        )
        .await
        .map_err(|source| Error::NoAnswer {
            waited: DELETE_WAIT,
            source,
        })?;
        match deleted {
            Ok(_) => removed.push(name.clone()),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(Error::RemoveNode {
                    node: name.clone(),
                    source: said(e),
                });
            }
        }
    }
    Ok(removed)
}

/// The port of the API server `config` names (the Service forwarder's target); it must be on
/// loopback.
pub fn api_port(config: &kube::Config) -> Result<u16> {
    let uri = &config.cluster_url;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(Error::NotLoopback {
            server: uri.to_string(),
        });
    }
    Ok(uri.port_u16().unwrap_or(443))
}
