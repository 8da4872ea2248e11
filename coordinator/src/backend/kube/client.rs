//! Connecting to the cluster: the kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else
//! `~/.kube/config`) and its context, or the in-cluster service account.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Whether this process runs in a pod (the API server's address is in its environment).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// The kubeconfig file that would be used, if there is one.
pub fn kubeconfig_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).find(|p| p.exists());
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".kube/config")).filter(|p| p.exists())
}

/// Whether a Kubernetes configuration is found: what makes `kube` the default backend.
pub fn configured(explicit: Option<&Path>) -> bool {
    in_cluster() || kubeconfig_path(explicit).is_some()
}

/// A client for the cluster the arguments name.
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> anyhow::Result<Client> {
    Client::try_from(config(kubeconfig, context).await?).context("connecting to the Kubernetes API")
}

/// The client configuration of the cluster the arguments name (server, CA, credentials).
pub async fn config(kubeconfig: Option<&Path>, context: Option<&str>) -> anyhow::Result<Config> {
    let options = KubeConfigOptions {
        context: context.map(String::from),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig_path(kubeconfig) {
        Some(path) => {
            let file = Kubeconfig::read_from(&path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .with_context(|| format!("the kubeconfig {}", path.display()))?
        }
        None if in_cluster() => {
            Config::incluster().context("the in-cluster configuration (service account)")?
        }
        None => anyhow::bail!(
            "no Kubernetes configuration: give --kubeconfig, set KUBECONFIG, or create ~/.kube/config"
        ),
    };
    Ok(config)
}
