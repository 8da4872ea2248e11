//! Removing a run: delete its owner with foreground propagation and the default grace period
//! (never forced: a forced pod deletion skips the CNI DEL, and whereabouts keeps the address
//! allocated), then wait, bounded, until the owner — which the garbage collector removes
//! last — is gone. `multinet cleanup` does this for every leftover run it finds.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::{Api, Client};

use super::names::{ALL_RUNS_SELECTOR, COMPONENT, RUN};

/// How often the owner's presence is checked while waiting.
const POLL: Duration = Duration::from_millis(500);

/// Deletes run `run`'s owner in `namespace` and waits until it is gone or `timeout` passes.
/// Returns whether there was anything to delete.
pub async fn remove_run(
    client: &Client,
    namespace: &str,
    owner: &str,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    match api.delete(owner, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let since = Instant::now();
    loop {
        if api.get_opt(owner).await?.is_none() {
            return Ok(true);
        }
        anyhow::ensure!(
            since.elapsed() < timeout,
            "ConfigMap {namespace}/{owner} and the objects it owns were not gone within {:?}; check for pods stuck Terminating (kubectl get pods -n {namespace} -l {ALL_RUNS_SELECTOR}) and run `multinet cleanup -n {namespace}` again",
            timeout
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The owners of leftover runs in `namespace` (all, or run `run`): (owner name, run id).
pub async fn find_runs(
    client: &Client,
    namespace: &str,
    run: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut selector = format!("{ALL_RUNS_SELECTOR},{COMPONENT}=owner");
    if let Some(run) = run {
        selector.push_str(&format!(",{RUN}={run}"));
    }
    let owners = api.list(&ListParams::default().labels(&selector)).await?;
    Ok(owners
        .into_iter()
        .map(|cm| {
            let run = cm
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(RUN).cloned())
                .unwrap_or_default();
            (cm.metadata.name.unwrap_or_default(), run)
        })
        .collect())
}
