//! `multinet run` outside the cluster: agents must reach the coordinator over the pod
//! network, so the coordinator runs in the cluster as a Job (same image). This side creates
//! the run's owner (holding the run configuration) and the Job, streams the Job's log to the
//! terminal, fetches the report the Job stores in the run's report ConfigMap, and removes the
//! run — also on SIGINT/SIGTERM.
//!
//! * [`start`] — waiting for the Job's pod to run, saying what it waits on.

mod start;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::Duration;

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{LogParams, PostParams};
use kube::{Api, Client};

pub use start::{JobBounds, STATUS_EVERY};

use super::api_error::{ApiResultExt, said};
use super::names::Owner;
use super::objects::{KubeRun, coordinator_restarts};
use super::{Error, Result};
use crate::report::Format;

/// The key of the report in `format` in the report ConfigMap.
pub fn report_key(format: Format) -> &'static str {
    format.file_name()
}

/// What the Job left: the report ConfigMap's contents and the run's exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOutcome {
    /// Its text values.
    pub data: BTreeMap<String, String>,
    /// Its binary values (a report too large to store as text, gzipped).
    pub binary: BTreeMap<String, Vec<u8>>,
    /// The run's exit code.
    pub exit_code: u8,
    /// Whether the report is a soak's interim one: the Job ended before its final report.
    pub in_progress: bool,
}

impl JobOutcome {
    /// The report in `format`, as the Job stored it.
    pub fn report(&self, format: Format) -> Result<String> {
        self.value(report_key(format))
    }

    /// The text stored under `key` (gzipped under `<key>.gz` when too large).
    pub fn value(&self, key: &'static str) -> Result<String> {
        if let Some(text) = self.data.get(key) {
            return Ok(text.clone());
        }
        let gz = self
            .binary
            .get(&format!("{key}.gz"))
            .ok_or(Error::ReportMissing { key })?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut text)
            .map_err(|source| Error::ReportUnreadable { key, source })?;
        Ok(text)
    }
}

/// Creates the owner (with `config_yaml`), returning it as others refer to it.
pub async fn create_owner(
    client: &Client,
    run: &KubeRun<'_>,
    config_yaml: String,
) -> Result<Owner> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &run.namespace);
    let created = api
        .create(&PostParams::default(), &run.owner_config_map(config_yaml))
        .await
        .said()
        .map_err(Error::call(format!(
            "creating ConfigMap {}/{}",
            run.namespace,
            run.names.owner()
        )))?;
    Ok(Owner {
        name: run.names.owner(),
        uid: created.metadata.uid.unwrap_or_default(),
    })
}

/// Runs the coordinator Job of `run` (its owner exists), `job` (a run's
/// [`KubeRun::coordinator_job`] or a bench's [`KubeRun::bench_job`]), to the end, within `bounds`: its log
/// goes to `log` line by line (the command gives standard error), and so does what its pod
/// waits on before it runs; returns what it stored. A soak's Job also gets the run's Service
/// ([`KubeRun::control_service`]), and a pod of it that ends before the final report is
/// followed by the pod the Job replaces it with (at most its restarts), while the Job runs.
pub async fn run_job(
    client: &Client,
    run: &KubeRun<'_>,
    job: Job,
    bounds: JobBounds,
    log: &mut (dyn FnMut(&str) + Send),
) -> Result<JobOutcome> {
    let started = tokio::time::Instant::now();
    let ns = &run.namespace;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    if coordinator_restarts(run.config) > 0 {
        let service = run.control_service();
        Api::<Service>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &service)
            .await
            .said()
            .map_err(Error::call(format!(
                "creating Service {ns}/{}",
                run.names.control()
            )))?;
    }
    jobs.create(&PostParams::default(), &job)
        .await
        .said()
        .map_err(Error::call(format!(
            "creating Job {ns}/{}",
            run.names.coordinator()
        )))?;
    log(&format!(
        "multinet: run {} — coordinator Job {ns}/{} started; its log follows",
        run.names.run,
        run.names.coordinator()
    ));
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let job_name = run.names.coordinator();
    let report = Api::<ConfigMap>::namespaced(client.clone(), ns);
    // A soak's coordinator pod may be replaced (evicted, its node lost): the Job's next pod
    // continues the run, and its log is followed in turn.
    let restarts = usize::try_from(coordinator_restarts(run.config)).unwrap_or(0);
    let mut followed: Vec<String> = Vec::new();
    let stored = loop {
        let pod = tokio::select! {
            r = start::started_pod(&pods, &events, run, bounds, &followed, log) => r?,
            r = start::job_failed(&events, &job_name) => return Err(r),
        };
        if let Some(last) = followed.last() {
            log(&format!(
                "multinet: pod {pod} replaces the coordinator's pod {last} and continues the run; its log follows"
            ));
        }
        follow_log(&pods, &pod, log, started + bounds.total).await?;
        followed.push(pod);
        // The log ends when the container does; the report was stored before that.
        let stored = report.get_opt(&run.names.report()).await.said()?;
        let last_is_final = stored
            .as_ref()
            .and_then(|cm| cm.data.as_ref())
            .is_none_or(|d| d.get(IN_PROGRESS_KEY).is_none_or(|v| v != "true"));
        if (stored.is_some() && last_is_final)
            || followed.len() > restarts
            || !job_active(&jobs, &job_name).await
            || tokio::time::Instant::now() >= started + bounds.total
        {
            break stored;
        }
        log(&format!(
            "multinet: the coordinator's pod {} ended before the run's report; waiting for the Job to replace it",
            followed.last().map_or("", String::as_str)
        ));
    };
    let stored = stored.ok_or_else(|| Error::ReportNotStored {
        namespace: ns.clone(),
        name: run.names.report(),
    })?;
    let data = stored.data.unwrap_or_default();
    let exit_code = data
        .get("exit-code")
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(1);
    Ok(JobOutcome {
        exit_code,
        in_progress: data.get(IN_PROGRESS_KEY).is_some_and(|v| v == "true"),
        binary: stored
            .binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
        data,
    })
}

/// Whether Job `name` may still run a pod: it exists and has not completed or failed. An
/// API error is asked again, 5 times over about 10 s; then it is "no": the run is not waited
/// on for a pod that may never come.
async fn job_active(jobs: &Api<Job>, name: &str) -> bool {
    for attempt in 1..=5 {
        match jobs.get_opt(name).await {
            Ok(None) => return false,
            Ok(Some(job)) => {
                return !job
                    .status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .any(|c| {
                        matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True"
                    });
            }
            Err(_) if attempt < 5 => tokio::time::sleep(Duration::from_secs(2)).await,
            Err(_) => {}
        }
    }
    false
}

/// Streams the pod's log to `log` until its container has ended (or `deadline`). A stream
/// the API server ends or breaks early (a proxy's idle timeout, a restarted API server) is
/// opened again where it stopped: lines carry timestamps, and those already shown are
/// skipped. When it cannot be followed any more, the pod's end is still waited for, so the
/// report it stores is not given up on.
async fn follow_log(
    pods: &Api<Pod>,
    pod: &str,
    log: &mut (dyn FnMut(&str) + Send),
    deadline: tokio::time::Instant,
) -> Result<()> {
    let mut last: Option<Timestamp> = None;
    // Reopenings in a row that brought no new line.
    let mut fruitless = 0;
    // Once the container has ended for good, its log is read once more, to its end: what was
    // written after the stream broke (a restarted container that ran to its end meanwhile).
    let mut ended = false;
    while fruitless < LOG_REOPENINGS {
        let params = LogParams {
            follow: !ended,
            timestamps: true,
            since_time: last.map(since_time),
            ..LogParams::default()
        };
        fruitless += 1;
        match pods.log_stream(pod, &params).await {
            Ok(stream) => {
                let mut lines = stream.lines();
                loop {
                    match lines.try_next().await {
                        Ok(Some(line)) => {
                            let (at, text) = split_timestamp(&line);
                            if let (Some(at), Some(last)) = (at, last)
                                && at <= last
                            {
                                continue;
                            }
                            last = at.or(last);
                            fruitless = 0;
                            log(text);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log(&format!(
                                "multinet: the coordinator's log broke off ({e}); following it again"
                            ));
                            break;
                        }
                    }
                }
            }
            // The last read of a pod that is gone (force-deleted) has nothing to show.
            Err(_) if ended => {}
            Err(e) => log(&format!(
                "multinet: cannot open the coordinator's log ({}); trying again",
                said(e)
            )),
        }
        if ended {
            return Ok(());
        }
        match pod_state(pods, pod).await {
            PodState::Ended => {
                ended = true;
                continue;
            }
            // A coordinator being restarted (the kubelet's back-off: 10 s, 20 s, …) has no
            // log to follow meanwhile; that is no reason to give up on it.
            PodState::Restarting => fruitless = 0,
            PodState::Running => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::CoordinatorDeadline(pod.to_string()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    log(&format!(
        "multinet: the coordinator's log cannot be followed ({LOG_REOPENINGS} attempts in a row without a line); waiting for pod {pod} to end"
    ));
    while tokio::time::Instant::now() < deadline {
        if pod_ended(pods, pod).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(Error::CoordinatorDeadline(pod.to_string()))
}

/// Whether the pod's container has ended for good (or the pod is gone). An API error is
/// "not yet".
async fn pod_ended(pods: &Api<Pod>, pod: &str) -> bool {
    pod_state(pods, pod).await == PodState::Ended
}

/// Where the coordinator's container is, as its log follower needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    /// Ended for good, or the pod is gone.
    Ended,
    /// Ended or waiting, and to be (re)started by the kubelet.
    Restarting,
    /// Running (or not known: an API error).
    Running,
}

async fn pod_state(pods: &Api<Pod>, pod: &str) -> PodState {
    match pods.get_opt(pod).await {
        Ok(None) => PodState::Ended,
        Ok(Some(p)) if has_ended(&p) => PodState::Ended,
        Ok(Some(p)) => {
            let waiting_or_dead = p
                .status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .any(|c| {
                    c.state
                        .as_ref()
                        .is_some_and(|s| s.waiting.is_some() || s.terminated.is_some())
                });
            if waiting_or_dead {
                PodState::Restarting
            } else {
                PodState::Running
            }
        }
        Err(_) => PodState::Running,
    }
}

/// Whether `pod`'s container has ended for good: the pod finished or is being deleted, or its
/// container terminated and the kubelet will not restart it. A soak's coordinator that died
/// is restarted (`restartPolicy: OnFailure`, a non-zero exit) and continues the run: its log
/// goes on in the restarted container.
pub fn has_ended(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return true;
    }
    let Some(status) = &pod.status else {
        return true;
    };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return true;
    }
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Never");
    status.container_statuses.iter().flatten().any(|c| {
        c.state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| match policy {
                "OnFailure" => t.exit_code == 0,
                "Always" => false,
                _ => true,
            })
    })
}

/// How many reopenings in a row without a new line make the log unfollowable.
const LOG_REOPENINGS: usize = 20;

/// The `sinceTime` that asks again for every line after `last`: `last` cut down to its whole
/// second. `sinceTime` is a whole second on the wire (Kubernetes' `metav1.Time`, RFC 3339 in
/// seconds), and kube-core *rounds* the time it is given to the nearest second (`LogParams`,
/// `Request::logs` in `subresource.rs`): from `…:35.6` it would ask for the lines from `…:36`
/// on and lose those of `…:35.6`–`…:36` — the first lines of a container the kubelet
/// restarted at once (its log file starts afresh: Kubernetes `pkg/kubelet/kuberuntime/logs`
/// filters by `sinceTime`). The lines of that second already shown are skipped by their
/// timestamps.
fn since_time(last: Timestamp) -> Timestamp {
    let nanos = i64::from(last.subsec_nanosecond());
    last.checked_sub(k8s_openapi::jiff::SignedDuration::from_nanos(nanos))
        .unwrap_or(last)
}

/// `2026-11-29T04:30:13.123456789Z text` → the time and the text.
fn split_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((at, text)) => match at.parse::<Timestamp>() {
            Ok(at) => (Some(at), text),
            Err(_) => (None, line),
        },
        None => (None, line),
    }
}

/// The report ConfigMap's key that marks a soak's interim report (`"true"`): the run was
/// still going when it was stored.
pub const IN_PROGRESS_KEY: &str = "in-progress";

/// Stores `text` under `key` with `exit_code` for the command outside the cluster (the Job's
/// side), replacing what was stored before; where it is.
pub async fn store_value(
    client: &Client,
    run: &KubeRun<'_>,
    key: &str,
    text: &str,
    exit_code: u8,
) -> Result<String> {
    store(client, run, run.report_config_map(key, text, exit_code)).await
}

/// Stores the report for the command outside the cluster (the Job's side), replacing the one
/// stored before (a soak's interim report, `in_progress`, every `reportInterval`); where it is.
pub async fn store_report(
    client: &Client,
    run: &KubeRun<'_>,
    format: Format,
    report: &str,
    exit_code: u8,
    in_progress: bool,
) -> Result<String> {
    let mut cm = run.report_config_map(report_key(format), report, exit_code);
    if in_progress {
        cm.data
            .get_or_insert_with(BTreeMap::new)
            .insert(IN_PROGRESS_KEY.into(), "true".into());
    }
    store(client, run, cm).await
}

async fn store(client: &Client, run: &KubeRun<'_>, cm: ConfigMap) -> Result<String> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), &run.namespace);
    let name = run.names.report();
    let storing = || Error::call(format!("storing the report in ConfigMap {name}"));
    // Only this run's coordinator writes it: an unconditional replace of what is there.
    let stored = match api.get_opt(&name).await.said().map_err(storing())? {
        None => api.create(&PostParams::default(), &cm).await,
        Some(_) => api.replace(&name, &PostParams::default(), &cm).await,
    };
    stored.said().map_err(storing())?;
    Ok(format!(
        "ConfigMap {}/{}",
        run.namespace,
        run.names.report()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::kube::objects::REPORT_INLINE_MAX;
    use multinet_proto::config::RunConfig;

    /// Every line after the last one shown is asked for again, whatever its fraction of a
    /// second (the regression: `…:35.6` asked from `…:36` on, and the restarted coordinator's
    /// first line, at `…:35.9`, was never shown).
    #[test]
    fn a_reopened_log_asks_from_the_last_lines_whole_second_on() {
        for last in [
            "2026-12-02T01:20:35Z",
            "2026-12-02T01:20:35.000000001Z",
            "2026-12-02T01:20:35.499999999Z",
            "2026-12-02T01:20:35.5Z",
            "2026-12-02T01:20:35.999999999Z",
        ] {
            let last: Timestamp = last.parse().expect("a time");
            let params = LogParams {
                follow: true,
                timestamps: true,
                since_time: Some(since_time(last)),
                ..LogParams::default()
            };
            let request = kube::core::Request::new("/api/v1/namespaces/ns/pods")
                .logs("coordinator", &params)
                .expect("a log request");
            let query = request.uri().query().expect("a query").to_string();
            let asked: Timestamp = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("sinceTime="))
                .expect("sinceTime sent")
                .replace("%3A", ":")
                .parse()
                .expect("an RFC 3339 time");
            assert_eq!(asked.to_string(), "2026-12-02T01:20:35Z", "after {last}");
            assert!(asked <= last);
        }
    }

    fn outcome_of(cm: ConfigMap) -> JobOutcome {
        JobOutcome {
            data: cm.data.unwrap_or_default(),
            binary: cm
                .binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            exit_code: 0,
            in_progress: false,
        }
    }

    #[test]
    fn reports_are_stored_in_the_asked_format_and_large_ones_gzipped() {
        let config = RunConfig::default();
        let run = KubeRun::sample(&config);
        let small = "multinet validation run 0a1b2c3d4e — PASS\n";
        let cm = run.report_config_map(report_key(Format::Text), small, 0);
        assert_eq!(cm.data.as_ref().expect("data")["exit-code"], "0");
        assert!(cm.binary_data.is_none());
        let outcome = outcome_of(cm);
        assert_eq!(outcome.report(Format::Text).expect("text"), small);
        assert!(
            outcome.report(Format::Json).is_err(),
            "only the asked format"
        );

        // Too large for a ConfigMap value: gzipped, and read back whole.
        let large: String = (0..REPORT_INLINE_MAX / 40 + 10)
            .map(|i| format!("{{\"path\": {i:>8}, \"ok\": 12, \"sent\": 12}},\n"))
            .collect();
        assert!(large.len() > REPORT_INLINE_MAX);
        let cm = run.report_config_map(report_key(Format::Json), &large, 1);
        let gz = &cm.binary_data.as_ref().expect("binary")["report.json.gz"];
        assert!(gz.0.len() < 1024 * 1024, "fits a ConfigMap");
        assert!(!cm.data.as_ref().expect("data").contains_key("report.json"));
        assert_eq!(outcome_of(cm).report(Format::Json).expect("json"), large);
    }

    fn coordinator(policy: &str, phase: &str, exit_code: Option<i32>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "multinet-0a1b-coordinator-x"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "coordinator"}]},
            "status": {
                "phase": phase,
                "containerStatuses": [{
                    "name": "coordinator", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0,
                    "state": match exit_code {
                        Some(code) => serde_json::json!({"terminated": {"exitCode": code}}),
                        None => serde_json::json!({"running": {}}),
                    },
                }],
            },
        }))
        .expect("a pod")
    }

    /// A soak's coordinator that died is restarted by the kubelet (OnFailure, non-zero exit:
    /// Kubernetes pkg/kubelet/kuberuntime, `ShouldContainerBeRestarted`): its log goes on.
    #[test]
    fn a_coordinator_the_kubelet_restarts_has_not_ended() {
        assert!(!has_ended(&coordinator("OnFailure", "Running", Some(137))));
        assert!(!has_ended(&coordinator("OnFailure", "Running", None)));
        assert!(!has_ended(&coordinator("Never", "Running", None)));
        // Ended: exit 0 under OnFailure, any exit under Never, a finished or deleted pod.
        assert!(has_ended(&coordinator("OnFailure", "Running", Some(0))));
        assert!(has_ended(&coordinator("Never", "Running", Some(1))));
        assert!(has_ended(&coordinator("OnFailure", "Failed", Some(137))));
        let mut deleted = coordinator("OnFailure", "Running", Some(137));
        deleted.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert!(has_ended(&deleted));
    }
}
