//! Removing a run: delete its owner with foreground propagation and the default grace period
//! (never forced: a forced pod deletion skips the CNI DEL, and whereabouts keeps the address
//! allocated), then wait, bounded, until the owner — which the garbage collector removes
//! last — is gone. `multinet cleanup` does this for every leftover run it finds.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::{Api, Client};

use super::api_error::{ApiResultExt, KubeError};
use super::names::{ALL_RUNS_SELECTOR, COMPONENT, RUN};

/// Why a run could not be removed. It says what to look at, not which command finishes the
/// removal: the caller knows that command (`multinet cleanup`, with or without `--run`) and
/// gives it once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleanupError {
    /// A request to the API failed.
    #[error(transparent)]
    Api(#[from] KubeError),
    /// The owner was still there when the wait ended.
    #[error(
        "ConfigMap {namespace}/{owner} and the objects it owns were not gone within {timeout:?}; check for pods stuck Terminating (kubectl get pods -n {namespace} -l {ALL_RUNS_SELECTOR})"
    )]
    NotGone {
        /// The run's namespace.
        namespace: String,
        /// The owner ConfigMap.
        owner: String,
        /// How long it was waited for.
        timeout: Duration,
    },
}

/// How often the owner's presence is checked while waiting.
const POLL: Duration = Duration::from_millis(500);

/// Deletes run `run`'s owner in `namespace` and waits until it is gone or `timeout` passes.
/// Returns whether there was anything to delete.
pub async fn remove_run(
    client: &Client,
    namespace: &str,
    owner: &str,
    timeout: Duration,
) -> Result<bool, CleanupError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    match api.delete(owner, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
        Err(e) => return Err(super::api_error::said(e).into()),
    }
    let since = Instant::now();
    loop {
        if api.get_opt(owner).await.said()?.is_none() {
            return Ok(true);
        }
        if since.elapsed() >= timeout {
            return Err(CleanupError::NotGone {
                namespace: namespace.to_string(),
                owner: owner.to_string(),
                timeout,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The owners of leftover runs in `namespace` (all, or run `run`): (owner name, run id).
pub async fn find_runs(
    client: &Client,
    namespace: &str,
    run: Option<&str>,
) -> Result<Vec<(String, String)>, KubeError> {
    Ok(owners(client, namespace, run)
        .await?
        .into_iter()
        .map(|cm| {
            let run = run_of(&cm);
            (cm.metadata.name.unwrap_or_default(), run)
        })
        .collect())
}

/// The owner ConfigMaps of the runs in `namespace` (of run `run` only, when given).
pub async fn owners(
    client: &Client,
    namespace: &str,
    run: Option<&str>,
) -> Result<Vec<ConfigMap>, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut selector = format!("{ALL_RUNS_SELECTOR},{COMPONENT}=owner");
    if let Some(run) = run {
        selector.push_str(&format!(",{RUN}={run}"));
    }
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await
        .said()?
        .items)
}

/// The run id an owner ConfigMap carries (its `multinet.io/run` label).
pub fn run_of(owner: &ConfigMap) -> String {
    owner
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(RUN).cloned())
        .unwrap_or_default()
}

/// Removes every leftover run in `namespace` (or run `run`); says what it did, line by line.
pub async fn cleanup_runs(
    client: &kube::Client,
    namespace: &str,
    run: Option<&str>,
    timeout: Duration,
) -> Result<Vec<String>, CleanupError> {
    let runs = find_runs(client, namespace, run).await?;
    if runs.is_empty() {
        return Ok(vec![match run {
            Some(id) => format!("no objects of run {id} in namespace {namespace}"),
            None => format!("no multinet run left in namespace {namespace}"),
        }]);
    }
    let mut lines = Vec::new();
    for (owner, id) in runs {
        let removed = remove_run(client, namespace, &owner, timeout).await?;
        lines.push(if removed {
            format!("run {id}: removed (ConfigMap {namespace}/{owner} and every object it owned)")
        } else {
            format!("run {id}: already gone")
        });
    }
    Ok(lines)
}
