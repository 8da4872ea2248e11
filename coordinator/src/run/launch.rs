//! Which backend, the lab built under signals, and the run on its runtime: the actix system
//! on a tokio runtime, raced against SIGINT/SIGTERM/SIGHUP, cleaned up on every way out.

use multinet_proto::config::RunConfig;
use multinet_proto::field::Problems;

use super::config::{self, networks};
use super::{BackendKind, BoxError, Error, Notice, Result, RunOutcome, RunRequest, Say, warn_all};
use crate::backend::agents::{AgentProcesses, KillAgent};
use crate::backend::local::LocalBackend;
use crate::exit::{Class, Classify, chain};
use crate::lab::backend::{Keep, LabBackend};
use crate::lab::build::Lab;
use crate::lab::topology::LabTopology;
use crate::metrics::{MetricsServer, RunMetrics};
use crate::progress::Progress;
use crate::report::{self, ErrorReport, Format, RunReport};
use crate::scheduler::Scheduler;
use crate::signals::shutdown_signal;
use crate::supervisor::{RunSettings, RunSupervisor};

/// The backend a request runs on: the one asked for, else the one its settings imply, else
/// Kubernetes when a kubeconfig is found, else the lab when it can run here, else local.
fn choose(request: &RunRequest, say: Say<'_>) -> BackendKind {
    let lab = &request.lab;
    let kube = &request.kube;
    match request.backend {
        Some(b) => b,
        None if lab.topology.is_some() || lab.existing.is_some() || lab.nads.is_some() => {
            BackendKind::Lab
        }
        None if kube.dry_run || kube.names_a_cluster() => BackendKind::Kube,
        None if crate::backend::kube::client::configured(None) => {
            say(Notice::Info(format!(
                "using the Kubernetes backend: {} (--backend lab or local to run on this machine)",
                match crate::backend::kube::client::kubeconfig_path(None) {
                    Some(path) => format!("found the kubeconfig {}", path.display()),
                    None => "running in a pod".to_string(),
                }
            )));
            BackendKind::Kube
        }
        None => match crate::lab::available() {
            Ok(()) => BackendKind::Lab,
            Err(why) => {
                say(Notice::Info(format!(
                    "using the local backend (agents on loopback; it validates no real network) because {why}; run as root with containernetworking-plugins installed for the emulated lab."
                )));
                BackendKind::Local
            }
        },
    }
}

pub(super) fn run(request: &RunRequest, say: Say<'_>) -> Result<RunOutcome> {
    // Before anything is started: a report that could never be written would lose the run.
    if let Some(path) = &request.report_to {
        report::check_destination(path).map_err(|e| Error::invalid("--report", chain(&e)))?;
    }
    if let Some(run) = &request.resume {
        return super::resume::run(run, request, say);
    }
    let started = std::time::Instant::now();
    let backend = choose(request, say);
    let result = run_on(backend, request, say);
    if let Err(error) = &result {
        report_error(error, backend, started, request, say);
    }
    result
}

/// A run that could not be carried out ([`Class::Error`]) still reports: verdict `error` and
/// the reason, in the run's format, where its report goes (not for a dry run, whose output is
/// objects, nor when the report itself is what could not be written).
fn report_error(
    error: &Error,
    backend: BackendKind,
    started: std::time::Instant,
    request: &RunRequest,
    say: Say<'_>,
) {
    if error.class() != Class::Error || matches!(error, Error::Write(_)) || request.kube.dry_run {
        return;
    }
    let report = ErrorReport::new(
        backend.name(),
        chain(error),
        started.elapsed().as_millis() as u64,
    );
    if let Err(e) = report::write(&report.render(request.format), request.report_to.as_deref()) {
        say(Notice::Note(format!("the error report: {}", chain(&e))));
    }
}

fn run_on(backend: BackendKind, request: &RunRequest, say: Say<'_>) -> Result<RunOutcome> {
    if backend != BackendKind::Kube && (request.kube.dry_run || request.format == Format::Yaml) {
        return Err(Error::Usage(
            "--dry-run and -o yaml show the objects of a Kubernetes run: add --backend kube".into(),
        ));
    }
    // The input first: a run refused for it has started nothing, not even looked for agents.
    let agent_command =
        || AgentProcesses::default_agent_command().map_err(|e| Error::failed("", e));
    multinet_agent::install_crypto_provider();
    match backend {
        BackendKind::Kube => super::kube::run(request, say),
        BackendKind::Local => {
            let mut problems = Problems::default();
            let config = config::resolve(&request.config, &mut problems)
                .ok_or_else(|| Error::Invalid(problems.clone()))?;
            warn_all(&problems, say);
            let metrics = metrics_listener(&config)?;
            let backend =
                LocalBackend::new(request.nodes, agent_command()?, request.kill_agent.clone());
            finish(
                execute(backend, settings(config, request), metrics, request, say)?,
                request,
            )
        }
        BackendKind::Lab => {
            crate::lab::available()
                .map_err(|why| Error::invalid("--backend", format!("lab: {why}")))?;
            let (lab, keep, config, command, metrics) = match &request.lab.existing {
                Some(name) => {
                    let lab = Lab::open(name).map_err(|e| Error::Usage(chain(&e)))?;
                    let config = lab_config(request, &lab.topology, say)?;
                    let keep = if request.lab.keep {
                        Keep::Everything
                    } else {
                        Keep::Lab
                    };
                    let metrics = metrics_listener(&config)?;
                    (lab, keep, config, agent_command()?, metrics)
                }
                None => {
                    let (topology, source) = crate::lab::load::load_topology(
                        request.lab.topology.as_deref(),
                        None,
                        crate::lab::load::NadChoice {
                            file: request.lab.nads.as_deref(),
                            public: request.config.public_network.as_deref(),
                            cluster: request.config.cluster_network.as_deref(),
                        },
                    )
                    .map_err(Error::Invalid)
                    .map(|(topology, source, warnings)| {
                        warn_all(&warnings, say);
                        (topology, source)
                    })?;
                    let config = lab_config(request, &topology, say)?;
                    for notice in Lab::notices(&topology) {
                        say(Notice::Info(format!("lab: {notice}")));
                    }
                    // Everything that can refuse the run is asked before the lab is built.
                    let command = agent_command()?;
                    let metrics = metrics_listener(&config)?;
                    let lab = lab_up_interruptible(topology, source, say)?;
                    let keep = if request.lab.keep {
                        Keep::Everything
                    } else {
                        Keep::Nothing
                    };
                    (lab, keep, config, command, metrics)
                }
            };
            let kills = if request.kill_agent.is_empty() {
                topology_kills(&lab.topology)
            } else {
                request.kill_agent.clone()
            };
            let backend = LabBackend::new(lab, command, kills, keep);
            finish(
                execute(backend, settings(config, request), metrics, request, say)?,
                request,
            )
        }
    }
}

fn lab_config(request: &RunRequest, topology: &LabTopology, say: Say<'_>) -> Result<RunConfig> {
    let mut problems = Problems::default();
    let config = config::resolve_for_lab(&request.config, topology, request.nodes, &mut problems)
        .ok_or_else(|| Error::Invalid(problems.clone()))?;
    warn_all(&problems, say);
    Ok(config)
}

/// The listener of the live metrics (`metricsAddr`), bound before anything of the run is
/// made: an address that cannot be bound refuses the run with nothing to remove.
pub(super) fn metrics_listener(config: &RunConfig) -> Result<Option<std::net::TcpListener>> {
    config
        .metrics_addr
        .map(|addr| MetricsServer::bind(addr).map_err(|e| Error::failed("", e)))
        .transpose()
}

/// The supervisor's settings for `config`.
pub(super) fn settings(config: RunConfig, request: &RunRequest) -> RunSettings {
    let soak = if request.config.until_stopped() {
        crate::supervisor::Soak::UntilStopped
    } else {
        crate::supervisor::Soak::from_config(&config)
    };
    RunSettings {
        networks: networks(&config),
        config,
        agent_grace: request.agent_grace_for(soak != crate::supervisor::Soak::Off),
        soak,
        stop: tokio_util::sync::CancellationToken::new(),
        probing: std::sync::Arc::default(),
        metrics: None,
        interim: interim_reports(request),
        hand_over: None,
    }
}

/// A soak with `--report FILE` rewrites the file every `reportInterval` (atomically, in the
/// run's format, without colour); a report on standard output is written at the end only.
pub(super) fn interim_reports(request: &RunRequest) -> Option<crate::supervisor::InterimReports> {
    let path = request.report_to.clone()?;
    let format = request.format;
    Some(crate::supervisor::InterimReports(std::sync::Arc::new(
        move |report| {
            report::write(&report::render(report, format), Some(&path))
                .map_err(|e| multinet_agent::chain(&e))
        },
    )))
}

/// Writes the report the run made; the exit code is the verdict's, or 1 when something was
/// left behind.
pub(super) fn finish(ended: Ended, request: &RunRequest) -> Result<RunOutcome> {
    report::write(
        &report::render_styled(&ended.report, request.format, request.terminal),
        request.report_to.as_deref(),
    )?;
    Ok(RunOutcome {
        exit_code: ended.report.verdict.exit_code().max(u8::from(ended.left)),
        report: Some(ended.report),
    })
}

/// Builds the lab, listening for SIGINT/SIGTERM/SIGHUP meanwhile: a signal while it is being
/// built lets the build finish (a half-made namespace is harder to remove than a whole lab),
/// then removes it.
pub(crate) fn lab_up_interruptible(
    topology: LabTopology,
    source: String,
    say: Say<'_>,
) -> Result<Lab> {
    let name = topology.name.clone();
    let runtime = multinet_agent::entry::single_threaded()
        .map_err(|e| Error::failed("cannot start the runtime", e))?;
    runtime.block_on(async move {
        let signal = shutdown_signal();
        tokio::pin!(signal);
        let mut build = tokio::task::spawn_blocking(move || Lab::up(topology, &source));
        let (built, interrupted) = tokio::select! {
            r = &mut build => (r, None),
            signal = &mut signal => (build.await, Some(signal)),
        };
        let built: std::result::Result<Lab, BoxError> = match built {
            Ok(Ok(lab)) => Ok(lab),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(format!("the lab build panicked: {e}").into()),
        };
        match (built, interrupted) {
            (Ok(lab), None) => Ok(lab),
            (Err(e), None) => Err(Error::failed("building the lab", e)),
            (built, Some(signal)) => {
                if let Err(e) = built {
                    say(Notice::Note(format!("building the lab: {}", chain(&*e))));
                }
                say(Notice::Note(format!(
                    "{signal} while the lab was being built: removing lab {name}"
                )));
                if let Err(e) = Lab::down(&name) {
                    say(Notice::Note(format!(
                        "removing lab {name}: {}; `multinet lab down {name}` finishes it",
                        chain(&e)
                    )));
                }
                Err(Error::Interrupted(signal))
            }
        }
    })
}

/// The topology's kill-agent faults: `after` the agents started, or on a schedule (`at` into
/// the probing, started again `for` later).
fn topology_kills(topology: &LabTopology) -> Vec<KillAgent> {
    use crate::backend::agents::KillFrom;
    use crate::lab::topology::Fault;
    let fixed = topology.faults.iter().filter_map(|f| match f {
        Fault::KillAgent { node, after } => Some(KillAgent {
            target: node.clone(),
            after: after.as_std(),
            from: KillFrom::AgentStart,
            restart_after: None,
        }),
        _ => None,
    });
    let scheduled = topology.scheduled.iter().filter_map(|s| match &s.fault {
        Fault::KillAgent { node, .. } => Some(KillAgent {
            target: node.clone(),
            after: s.at,
            from: KillFrom::Probing,
            restart_after: s.duration,
        }),
        _ => None,
    });
    fixed.chain(scheduled).collect()
}

/// How a run that got to its report ended.
#[derive(Debug)]
pub(super) struct Ended {
    /// The run's report.
    pub report: Box<RunReport>,
    /// The cleanup after it failed (said): something may be left.
    pub left: bool,
}

/// Runs the validation on `backend`, cleaning up on every way out.
fn execute<S: Scheduler>(
    backend: S,
    settings: RunSettings,
    metrics: Option<std::net::TcpListener>,
    request: &RunRequest,
    say: Say<'_>,
) -> Result<Ended> {
    execute_with(
        || async move { Ok(backend) },
        settings,
        metrics,
        None,
        request.quiet,
        say,
    )
}

/// A run to resume ([`crate::checkpoint`]): its checkpoint and directory.
pub(super) struct Resume {
    /// The checkpoint.
    pub checkpoint: Box<crate::checkpoint::Checkpoint>,
    /// The run's directory, where it was found.
    pub run_dir: std::path::PathBuf,
}

/// Makes the backend with `make` inside the run's runtime (a Kubernetes client must live in
/// the runtime that uses it), runs the validation, and cleans up on every way out. A cleanup
/// that fails does not take the run's result with it: the report is still given.
pub(super) fn execute_with<S, F, Fut>(
    make: F,
    settings: RunSettings,
    metrics_listener: Option<std::net::TcpListener>,
    resume: Option<Resume>,
    quiet: bool,
    say: Say<'_>,
) -> Result<Ended>
where
    S: Scheduler,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<S>>,
{
    let system = actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::multi_threaded(2)
            .unwrap_or_else(|e| panic!("cannot build the tokio runtime: {e}"))
    });
    system.block_on(async move {
        let mut settings = settings;
        let mut backend = make().await?;
        // The live metrics, served from before the run starts until it is cleaned up.
        let server = match metrics_listener {
            Some(listener) => match MetricsServer::serve(listener, RunMetrics::new()) {
                Ok(server) => {
                    say(Notice::Note(format!(
                        "metrics: serving http://{}/metrics",
                        server.local_addr()
                    )));
                    settings.metrics = Some(server.metrics().clone());
                    Some(server)
                }
                Err(e) => {
                    let _ = backend.cleanup().await;
                    return Err(Error::failed("", e));
                }
            },
            None => None,
        };
        let ran = run_and_clean_up(backend, &settings, resume, quiet, say).await;
        if let Some(server) = server {
            server.stop().await;
        }
        ran
    })
}

/// [`execute_with`] inside the run's runtime, once the backend is made.
async fn run_and_clean_up<S: Scheduler>(
    mut backend: S,
    settings: &RunSettings,
    resume: Option<Resume>,
    quiet: bool,
    say: Say<'_>,
) -> Result<Ended> {
    let mut progress = Progress::new(quiet);
    let socket = backend.control_socket();
    let run_root = backend.run_root();
    let run_id = backend
        .run_id()
        .unwrap_or_else(crate::supervisor::new_run_id);
    let resuming = resume.is_some();
    let prepared: std::result::Result<_, BoxError> = match (socket, resume) {
        (Ok(socket), None) => {
            RunSupervisor::prepare_with_id(socket, &run_root, run_id).map_err(BoxError::from)
        }
        (Ok(socket), Some(resume)) => {
            RunSupervisor::resume(*resume.checkpoint, socket, resume.run_dir)
                .map_err(BoxError::from)
        }
        (Err(e), _) => Err(e.into()),
    };
    let mut supervisor = match prepared {
        Ok(s) => s,
        // A run that could not be resumed is left as it was (its lab, its agents): another
        // coordinator may still be serving it, or a later --resume may succeed.
        Err(e) if resuming => {
            return Err(Error::failed(
                "resuming the run (its lab and agents are left as they were)",
                e,
            ));
        }
        Err(e) => {
            let _ = backend.cleanup().await;
            return Err(Error::failed("", e));
        }
    };
    // A soak's signal is its normal end: the soak stops, the agents hand in their last
    // results and the report covers what was measured. A second signal, or one before
    // the soak began, still ends the run at once.
    let soaking = settings.soak != crate::supervisor::Soak::Off;
    let (stop, probing) = (settings.stop.clone(), settings.probing.clone());
    let hand_over = settings.hand_over.clone();
    if !resuming && backend.checkpoint().is_some() && soaking {
        let id = supervisor.run_id();
        say(Notice::Info(if backend.backend() == "kube" {
            format!(
                "run {id}: should this coordinator die, its Job restarts it and it continues the soak from its checkpoint"
            )
        } else {
            format!(
                "run {id}: should this coordinator die, `multinet run --resume {id}` continues the soak (within --agent-grace-seconds)"
            )
        }));
    }
    let result = tokio::select! {
        r = async {
            if resuming {
                supervisor.run_resumed(&mut backend, settings, &mut progress).await
            } else {
                supervisor.run(&mut backend, settings, &mut progress).await
            }
        } => r.map(Ok),
        signal = async {
            let first = shutdown_signal().await;
            if !soaking || !probing.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(first);
            }
            if let Some(hand_over) = &hand_over
                && let Some(why) = (hand_over.0)().await
            {
                return Err((first, why));
            }
            say(Notice::Note(format!("{first}: ending the soak; the report covers what was measured (a second signal stops at once)")));
            stop.cancel();
            Ok(shutdown_signal().await)
        } => match signal {
            Ok(signal) => {
                progress.note(&format!("{signal}: stopping the run and cleaning up"));
                Ok(Err(signal))
            }
            // As if killed: no end told to the agents, nothing removed. The pod that replaces
            // this one resumes from the stored checkpoint, and the agents resend what it does
            // not hold.
            Err((signal, why)) => {
                progress.finish();
                say(Notice::Note(format!(
                    "{signal}: {why}; leaving the run to the pod that replaces this one"
                )));
                return Err(Error::HandedOver(signal));
            }
        }
    };
    progress.finish();
    let cleaned = supervisor.cleanup(&mut backend).await;
    // Said whatever the run's end: a failed cleanup never hides the result.
    let left = match cleaned {
        Ok(()) => false,
        Err(e) => {
            say(Notice::Note(format!("cleaning up: {}", chain(&e))));
            true
        }
    };
    match result {
        Ok(Ok(report)) => Ok(Ended {
            report: Box::new(report),
            left,
        }),
        Ok(Err(signal)) => Err(Error::Interrupted(signal)),
        Err(e) => Err(Error::failed("", e)),
    }
}
