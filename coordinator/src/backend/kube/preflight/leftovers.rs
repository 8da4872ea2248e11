//! Another run's owner in the namespace: a run in progress, or what a run that died left.
//! The two call for opposite advice — `multinet cleanup` removes a leftover, and would tear a
//! live run down — so they are told apart: a run whose coordinator Job is active is live; one
//! whose owner is younger than the longest such a run can last (its own configuration's
//! deadline) may be; anything else is left over.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use multinet_proto::config::{RunConfig, parse_run_config};

use super::Problem;
use crate::backend::kube::api_error::{ApiResultExt, KubeError};
use crate::backend::kube::names::RunNames;
use crate::backend::kube::objects::job_deadline;

/// What another run's owner stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtherRun {
    /// In progress: its coordinator Job is active.
    Live {
        /// The Job.
        job: String,
    },
    /// Perhaps in progress (no Job to ask: a coordinator in a pod of its own, or a command
    /// outside that is still starting one): its owner is younger than its deadline.
    MaybeLive {
        /// How long ago its owner was created.
        age: Duration,
        /// When it ends at the latest.
        ends_by: Timestamp,
    },
    /// Left by a run that ended without removing it.
    Leftover,
}

/// Judges run `run` by its owner and its coordinator Job (if any), as of `now`.
pub fn judge(owner: &ConfigMap, job: Option<&Job>, now: Timestamp) -> OtherRun {
    if let Some(job) = job {
        let status = job.status.clone().unwrap_or_default();
        let finished = status.conditions.iter().flatten().any(|c| {
            matches!(
                c.type_.as_str(),
                "Complete" | "Failed" | "SuccessCriteriaMet" | "FailureTarget"
            ) && c.status == "True"
        });
        // A Job is active while it has a pod running or has not finished (its pod still to
        // be created).
        if status.active.unwrap_or(0) > 0 || !finished {
            return OtherRun::Live {
                job: job.metadata.name.clone().unwrap_or_default(),
            };
        }
        return OtherRun::Leftover;
    }
    let Some(created) = owner.metadata.creation_timestamp.as_ref().map(|t| t.0) else {
        return OtherRun::Leftover;
    };
    // The longest the run can last: its own configuration's, as the owner holds it.
    let config = owner
        .data
        .as_ref()
        .and_then(|d| d.get("config.yaml"))
        .and_then(|text| parse_run_config(text).ok())
        .map(|(c, _)| c)
        .unwrap_or_default();
    let deadline = lifetime(&config);
    let Ok(age) = Duration::try_from(now.duration_since(created)) else {
        return OtherRun::Leftover;
    };
    if age < deadline {
        let ends_by = created.checked_add(deadline).unwrap_or(Timestamp::MAX);
        return OtherRun::MaybeLive { age, ends_by };
    }
    OtherRun::Leftover
}

/// The longest a run of `config` lasts: its coordinator Job's deadline, and the removal after.
fn lifetime(config: &RunConfig) -> Duration {
    job_deadline(config) + config.resource_timeout.as_std()
}

/// How the other run reads, with advice that fits it.
pub fn describe(other: &OtherRun, namespace: &str, owner: &str, run: &str) -> String {
    let cleanup = format!("multinet cleanup -n {namespace} --run {run}");
    match other {
        OtherRun::Live { job } => format!(
            "run {run} is in progress in namespace {namespace} (its coordinator Job {namespace}/{job} is active); two runs in one namespace would compete for its nodes and addresses: wait for it to end (it removes its objects then; `kubectl -n {namespace} logs -f job/{job}` follows it), or start this run in another namespace"
        ),
        OtherRun::MaybeLive { age, ends_by } => format!(
            "run {run} may be in progress in namespace {namespace}: its ConfigMap {namespace}/{owner} was created {}s ago, and a run of its configuration lasts until {ends_by} at the latest; wait for it to end — if it is still there after that, nothing runs it any more and `{cleanup}` removes it",
            age.as_secs()
        ),
        OtherRun::Leftover => format!(
            "a previous run's objects are still present: ConfigMap {namespace}/{owner} owns run {run}; remove them with `{cleanup}`"
        ),
    }
}

/// Another run's owner still present in `namespace` (other than `own_run`'s: the
/// coordinator Job's run was created by the command that started it), said as live or left
/// over.
pub async fn check_leftovers(
    client: &Client,
    namespace: &str,
    own_run: Option<&str>,
    problems: &mut Vec<Problem>,
) -> Result<(), KubeError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    for cm in crate::backend::kube::cleanup::owners(client, namespace, None).await? {
        let name = cm.metadata.name.clone().unwrap_or_default();
        let run = crate::backend::kube::cleanup::run_of(&cm);
        if own_run == Some(run.as_str()) {
            continue;
        }
        let job = jobs
            .get_opt(&RunNames::new(&run).coordinator())
            .await
            .said()?;
        let other = judge(&cm, job.as_ref(), Timestamp::now());
        problems.push(Problem::Cluster(describe(&other, namespace, &name, &run)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owner(created: &str, config: &str) -> ConfigMap {
        serde_json::from_value(
            json!({"metadata": {"name": "multinet-0a1b2c3d4e", "creationTimestamp": created},
            "data": {"config.yaml": config}}),
        )
        .expect("owner")
    }

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(
            json!({"metadata": {"name": "multinet-0a1b2c3d4e-coordinator"}, "status": status}),
        )
        .expect("job")
    }

    #[test]
    fn a_run_is_live_while_its_job_is_active_and_left_over_once_it_finished() {
        let now: Timestamp = "2026-11-29T10:00:00Z".parse().expect("time");
        let old = owner("2026-11-28T10:00:00Z", "");
        // Kubernetes' Job status (k8s.io/api/batch/v1 JobStatus): `active` counts running
        // pods; a finished Job has a Complete or Failed condition with status True.
        assert_eq!(
            judge(&old, Some(&job(json!({"active": 1}))), now),
            OtherRun::Live {
                job: "multinet-0a1b2c3d4e-coordinator".into()
            }
        );
        // Its pod not created yet: not finished, so still live.
        assert!(matches!(
            judge(&old, Some(&job(json!({}))), now),
            OtherRun::Live { .. }
        ));
        let failed = job(
            json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}),
        );
        assert_eq!(judge(&old, Some(&failed), now), OtherRun::Leftover);
    }

    #[test]
    fn without_a_job_a_young_owner_may_be_live_until_its_own_deadline() {
        let now: Timestamp = "2026-11-29T10:00:00Z".parse().expect("time");
        // resourceTimeout 1m, soak 0: the Job's 5m and the removal's 1m.
        let young = owner("2026-11-29T09:58:00Z", "resourceTimeout: 1m\n");
        assert_eq!(
            judge(&young, None, now),
            OtherRun::MaybeLive {
                age: Duration::from_secs(120),
                ends_by: "2026-11-29T10:04:00Z".parse().expect("time"),
            }
        );
        let old = owner("2026-11-29T09:50:00Z", "resourceTimeout: 1m\n");
        assert_eq!(judge(&old, None, now), OtherRun::Leftover);
        // Only a leftover is told to be removed.
        let live = describe(
            &OtherRun::Live { job: "j".into() },
            "rook-ceph",
            "multinet-0a1b2c3d4e",
            "0a1b2c3d4e",
        );
        assert!(!live.contains("multinet cleanup"), "{live}");
    }
}
