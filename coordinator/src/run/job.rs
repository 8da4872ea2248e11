//! A Kubernetes run from outside the cluster: agents must reach the coordinator over the pod
//! network, so the coordinator runs in the cluster as a Job (same image). This side checks
//! the cluster, creates the run's owner and the Job, streams the Job's log, writes the report
//! the Job stored, and removes the run — also on SIGINT/SIGTERM/SIGHUP (a second signal stops
//! waiting for the removal and says how to finish it).

use multinet_proto::config::RunConfig;
use multinet_proto::multus::selection::NetworkSelection;

use super::kube::{checked, job_args, kube_run, selection_list, with_client};
use super::{Error, Notice, Result, RunOutcome, RunRequest, Say};
use crate::backend::kube::cleanup::cleanup_runs;
use crate::backend::kube::names::{Owner, RunNames};
use crate::backend::kube::preflight::Who;
use crate::backend::kube::{self as kube_backend, outside};
use crate::exit::chain;
use crate::report;
use crate::signals::shutdown_signal;

pub(super) fn run_outside(
    request: &RunRequest,
    config: RunConfig,
    public: Option<NetworkSelection>,
    cluster: Option<NetworkSelection>,
    say: Say<'_>,
) -> Result<RunOutcome> {
    let image = &request.kube.image;
    let result = with_client(request, |client| async move {
        let selections = selection_list(&public, &cluster);
        if let Err(e) = checked(&client, &config, &selections, Who::Cli, None, say).await {
            return Ok(Err(e));
        }
        let id = crate::supervisor::new_run_id();
        let ns = config.namespace.clone();
        let placeholder = Owner {
            name: RunNames::new(&id).owner(),
            uid: String::new(),
        };
        let yaml = serde_saphyr::to_string(&config)
            .map_err(kube_backend::Error::encode("the run configuration"))?;
        let owner = outside::create_owner(
            &client,
            &kube_run(&id, &config, image, &public, &cluster, placeholder),
            yaml,
        )
        .await?;
        let run = kube_run(&id, &config, image, &public, &cluster, owner.clone());
        let bounds = outside::JobBounds::of(&config);
        let mut to_stderr = |line: &str| say(Notice::Line(line.to_string()));
        let args = job_args(request.format, request);
        let outcome = tokio::select! {
            r = outside::run_job(&client, &run, args, bounds, &mut to_stderr) => Ok(r),
            signal = shutdown_signal() => {
                say(Notice::Note(format!("{signal}: removing run {id}")));
                Err(signal)
            }
        };
        // The report first: a run whose removal fails still has its result.
        let ended: Result<u8> = match outcome {
            Ok(Ok(outcome)) => match outcome.report(request.format) {
                Ok(text) => report::write(&text, request.report_to.as_deref())
                    .map(|()| outcome.exit_code)
                    .map_err(Error::from),
                // No report to show is never a pass.
                Err(e) => {
                    say(Notice::Note(chain(&e)));
                    Ok(outcome.exit_code.max(1))
                }
            },
            Ok(Err(e)) => Err(Error::failed("", e)),
            Err(signal) => Err(Error::Interrupted(signal)),
        };
        let removed = tokio::select! {
            r = cleanup_runs(&client, &ns, Some(&id), config.resource_timeout.as_std()) => {
                r.map_err(|e| chain(&e))
            }
            signal = shutdown_signal() => Err(format!("{signal} while waiting for its objects to go")),
        };
        if let Err(why) = removed {
            say(Notice::Note(format!(
                "run {id} may not be fully removed: {why}; `multinet cleanup -n {ns} --run {id}` finishes it"
            )));
            return Ok(ended.map(|code| code.max(1)));
        }
        Ok(ended)
    });
    let exit_code = result??;
    Ok(RunOutcome {
        exit_code,
        report: None,
    })
}
