//! Connecting to the cluster: the kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else
//! `~/.kube/config`) and its context, or the in-cluster service account.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::{Error, Result};

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
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client> {
    Client::try_from(config(kubeconfig, context).await?).map_err(Error::Connect)
}

/// The client configuration of the cluster the arguments name (server, CA, credentials).
pub async fn config(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Config> {
    let options = KubeConfigOptions {
        context: context.map(String::from),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig_path(kubeconfig) {
        Some(path) => {
            let file = match Kubeconfig::read_from(&path) {
                Ok(file) => file,
                Err(source) => return Err(Error::KubeconfigRead { path, source }),
            };
            match Config::from_custom_kubeconfig(file, &options).await {
                Ok(config) => config,
                Err(source) => return Err(Error::Kubeconfig { path, source }),
            }
        }
        None if in_cluster() => Config::incluster().map_err(Error::InCluster)?,
        None => return Err(Error::NoConfiguration),
    };
    Ok(config)
}
