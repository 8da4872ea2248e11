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
use crate::report::{self, ErrorReport};
use crate::signals::shutdown_signal;

pub(super) fn run_outside(
    request: &RunRequest,
    config: RunConfig,
    public: Option<NetworkSelection>,
    cluster: Option<NetworkSelection>,
    say: Say<'_>,
) -> Result<RunOutcome> {
    let started = std::time::Instant::now();
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
        let args = job_args(request.format, request, &config);
        let outcome = tokio::select! {
            r = outside::run_job(&client, &run, run.coordinator_job(args), bounds, &mut to_stderr) => Ok(r),
            signal = shutdown_signal() => {
                say(Notice::Note(format!("{signal}: removing run {id}")));
                Err(signal)
            }
        };
        // The report first: a run whose removal fails still has its result.
        let ended: Result<u8> = match outcome {
            Ok(Ok(outcome)) => match outcome.report(request.format) {
                // A soak's interim report: the Job ended before its final one. What it
                // measured until then is shown; the run was not carried out to its end.
                Ok(text) if outcome.in_progress => {
                    say(Notice::Note(format!(
                        "the coordinator Job ended (exit code {}) before its final report: this is its last interim report, as of its duration_ms into the run",
                        outcome.exit_code
                    )));
                    report::write(&text, request.report_to.as_deref())
                        .map(|()| crate::exit::ERROR)
                        .map_err(Error::from)
                }
                Ok(text) => report::write(&text, request.report_to.as_deref())
                    .map(|()| outcome.exit_code)
                    .map_err(Error::from),
                // No report to show is never a pass: the run could not be carried out (the
                // coordinator could not start, or died), and says so where its report goes.
                Err(e) => {
                    say(Notice::Note(chain(&e)));
                    let stand_in = without_report(
                        outcome.exit_code,
                        &chain(&e),
                        started.elapsed().as_millis() as u64,
                    );
                    report::write(
                        &stand_in.render(request.format),
                        request.report_to.as_deref(),
                    )
                    .map(|()| stand_in.verdict.exit_code())
                    .map_err(Error::from)
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

/// The report of a coordinator Job that ended with `exit_code` and stored no report (`why`):
/// the run could not be carried out (verdict `error`, exit 69) — the Job's log, streamed
/// before, says what stopped it.
fn without_report(exit_code: u8, why: &str, duration_ms: u64) -> ErrorReport {
    ErrorReport::new(
        "kube",
        format!(
            "the coordinator Job ended with exit code {exit_code} and stored no report (its log says why): {why}"
        ),
        duration_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Format, Verdict};

    #[test]
    fn a_job_that_stored_no_report_is_an_error_with_its_exit_code_and_why() {
        let r = without_report(69, "no report.json in the run's report ConfigMap", 4_200);
        assert_eq!(r.verdict, Verdict::Error);
        assert_eq!(r.verdict.exit_code(), crate::exit::ERROR);
        assert_eq!(
            r.error,
            "the coordinator Job ended with exit code 69 and stored no report (its log says why): no report.json in the run's report ConfigMap"
        );
        let json: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).expect("JSON");
        assert_eq!(json["verdict"], "error");
        assert_eq!(json["backend"], "kube");
    }
}
