//! `multinet run` outside the cluster: agents must reach the coordinator over the pod
//! network, so the coordinator runs in the cluster as a Job (same image). This side creates
//! the run's owner (holding the run configuration) and the Job, streams the Job's log to the
//! terminal, fetches the report the Job stores in the run's report ConfigMap, and removes the
//! run — also on SIGINT/SIGTERM.

use std::time::Duration;

use anyhow::Context as _;
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{LogParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::names::{COMPONENT, Owner};
use super::objects::KubeRun;

/// The report files the coordinator Job stores, by format.
pub const REPORT_KEYS: [(&str, &str); 3] = [
    ("text", "report.txt"),
    ("json", "report.json"),
    ("junit", "report.xml"),
];

/// What the Job left: the report in every format and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// `report.txt`, `report.json`, `report.xml` → contents.
    pub reports: std::collections::BTreeMap<String, String>,
    /// The run's exit code.
    pub exit_code: u8,
}

/// Creates the owner (with `config_yaml`), returning it as others refer to it.
pub async fn create_owner(
    client: &Client,
    run: &KubeRun<'_>,
    config_yaml: String,
) -> anyhow::Result<Owner> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &run.namespace);
    let created = api
        .create(&PostParams::default(), &run.owner_config_map(config_yaml))
        .await
        .with_context(|| format!("creating ConfigMap {}/{}", run.namespace, run.names.owner()))?;
    Ok(Owner {
        name: run.names.owner(),
        uid: created.metadata.uid.unwrap_or_default(),
    })
}

/// Runs the coordinator Job of `run` (its owner exists) to the end: its log goes to standard
/// error line by line; returns what it stored.
pub async fn run_job(
    client: &Client,
    run: &KubeRun<'_>,
    extra_args: Vec<String>,
    timeout: Duration,
) -> anyhow::Result<JobOutcome> {
    let ns = &run.namespace;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job = run.coordinator_job(extra_args);
    jobs.create(&PostParams::default(), &job)
        .await
        .with_context(|| format!("creating Job {ns}/{}", run.names.coordinator()))?;
    eprintln!(
        "multinet: run {} — coordinator Job {ns}/{} started; its log follows",
        run.names.run,
        run.names.coordinator()
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = tokio::time::timeout(timeout, started_pod(&pods, run, &run.image))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the coordinator pod of Job {ns}/{} did not start within {timeout:?}",
                run.names.coordinator()
            )
        })??;
    let mut lines = pods
        .log_stream(
            &pod,
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await?
        .lines();
    while let Some(line) = lines.try_next().await? {
        eprintln!("{line}");
    }
    let report = Api::<ConfigMap>::namespaced(client.clone(), ns);
    // The log ends when the container does; the report was stored before that.
    let stored = report
        .get_opt(&run.names.report())
        .await?
        .and_then(|cm| cm.data)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the coordinator Job ended without storing its report in ConfigMap {ns}/{}: see its log above",
                run.names.report()
            )
        })?;
    let exit_code = stored
        .get("exit-code")
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(1);
    Ok(JobOutcome {
        reports: stored
            .into_iter()
            .filter(|(k, _)| k.starts_with("report."))
            .collect(),
        exit_code,
    })
}

/// Waits until the Job's pod runs (or already ended); its name. An image that cannot be
/// pulled is an error naming it.
async fn started_pod(pods: &Api<Pod>, run: &KubeRun<'_>, image: &str) -> anyhow::Result<String> {
    let selector = format!("{},{COMPONENT}=coordinator", run.names.selector());
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .applied_objects()
        .boxed();
    while let Some(pod) = stream.try_next().await? {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        if matches!(
            status.phase.as_deref(),
            Some("Running" | "Succeeded" | "Failed")
        ) {
            return Ok(name);
        }
        for c in status.container_statuses.iter().flatten() {
            if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref())
                && matches!(
                    w.reason.as_deref(),
                    Some("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName")
                )
            {
                anyhow::bail!(
                    "the coordinator pod {name} cannot pull image {image}: {}",
                    w.message.as_deref().unwrap_or("no message")
                );
            }
        }
    }
    anyhow::bail!("the watch on the coordinator's pod ended")
}

/// Stores the report for the command outside the cluster (the Job's side).
pub async fn store_report(
    client: &Client,
    run: &KubeRun<'_>,
    reports: &[(&str, String)],
    exit_code: u8,
) -> anyhow::Result<()> {
    let mut cm = run.report_config_map(String::new(), exit_code);
    let data = cm.data.get_or_insert_with(Default::default);
    data.remove("report.json");
    for (key, text) in reports {
        data.insert((*key).to_string(), text.clone());
    }
    Api::<ConfigMap>::namespaced(client.clone(), &run.namespace)
        .create(&PostParams::default(), &cm)
        .await
        .with_context(|| format!("storing the report in ConfigMap {}", run.names.report()))?;
    Ok(())
}
