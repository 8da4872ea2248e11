//! `multinet run` apart from the command line: a [`RunRequest`] (plain values, no clap) in,
//! a [`RunOutcome`] or an [`Error`] out. What the run says while it goes reaches the caller
//! as [`Notice`]s; the report is rendered and written here ([`crate::report`]), so that a
//! Kubernetes run's report is given before its objects are removed.
//!
//! * [`config`] — the one resolver of the run configuration (flags, file, lab topology,
//!   Kubernetes rules).
//! * `launch` — which backend, the lab built under signals, the run on its runtime.
//! * `kube` — a Kubernetes run: the dry run, and the coordinator inside the cluster.
//! * `job` — a Kubernetes run from outside the cluster: the coordinator as a Job.

pub mod config;
mod job;
pub(crate) mod kube;
mod launch;
mod resume;

use std::path::PathBuf;
use std::time::Duration;

use multinet_proto::field::Problems;

use crate::backend::agents::KillAgent;
use crate::exit::{Class, Classify};
use crate::report::{Format, RunReport};
use crate::signals::Signal;

pub use config::ConfigRequest;
pub(crate) use launch::lab_up_interruptible;

/// Where agents run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Processes on loopback addresses of this machine: validates no real network.
    Local,
    /// The emulated lab (network namespaces, the real CNI plugins); needs root.
    Lab,
    /// A Kubernetes cluster, through its API.
    Kube,
}

impl BackendKind {
    /// Its name, as `--backend` and the report's `backend` have it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Lab => "lab",
            Self::Kube => "kube",
        }
    }
}

/// Everything a run is asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The backend; `None` picks one (see `launch`): a lab or Kubernetes setting given, a
    /// kubeconfig found, the lab possible, else local.
    pub backend: Option<BackendKind>,
    /// Where the configuration comes from.
    pub config: ConfigRequest,
    /// Nodes the local backend simulates.
    pub nodes: u32,
    /// The report's format.
    pub format: Format,
    /// Where the report goes; standard output when `None`.
    pub report_to: Option<PathBuf>,
    /// How a text report is styled (the command line decides: colour and the terminal's width
    /// when standard output is a terminal and there is no `--report` file; colour not with
    /// `NO_COLOR`).
    pub terminal: crate::report::Terminal,
    /// No progress and no informational notices.
    pub quiet: bool,
    /// How long agents outlive a coordinator they cannot reach; `None`: [`AGENT_GRACE`], or
    /// [`SOAK_AGENT_GRACE`] in a soak ([`Self::agent_grace_for`]).
    pub agent_grace: Option<Duration>,
    /// Lab settings.
    pub lab: LabRequest,
    /// Kubernetes settings.
    pub kube: KubeRequest,
    /// Local and lab backends: kill these agents, each some time after it started.
    pub kill_agent: Vec<KillAgent>,
    /// Resume this run (its id, or its directory) from its checkpoint instead of starting
    /// one ([`crate::checkpoint`]): only the output settings of the request apply.
    pub resume: Option<String>,
}

impl Default for RunRequest {
    /// What `multinet run` does without flags: the backend picked, Rook's flag-mode
    /// configuration, text to stdout, agents' grace 10 s, multinet's image.
    fn default() -> Self {
        Self {
            backend: None,
            config: ConfigRequest::default(),
            nodes: config::DEFAULT_LOCAL_NODES,
            format: Format::Text,
            report_to: None,
            terminal: crate::report::Terminal::PLAIN,
            quiet: false,
            agent_grace: None,
            lab: LabRequest::default(),
            kube: KubeRequest {
                image: crate::backend::kube::DEFAULT_IMAGE.to_string(),
                ..KubeRequest::default()
            },
            kill_agent: Vec::new(),
            resume: None,
        }
    }
}

/// How long agents outlive a coordinator they cannot reach, unless asked otherwise.
pub const AGENT_GRACE: Duration = Duration::from_secs(10);

/// The same in a soak: time for an operator, or a restarted coordinator, to resume the run
/// (`run --resume`) before its agents give up.
pub const SOAK_AGENT_GRACE: Duration = Duration::from_secs(300);

impl RunRequest {
    /// The agents' grace: as asked, else [`AGENT_GRACE`], or [`SOAK_AGENT_GRACE`] when
    /// `soak`.
    pub fn agent_grace_for(&self, soak: bool) -> Duration {
        self.agent_grace
            .unwrap_or(if soak { SOAK_AGENT_GRACE } else { AGENT_GRACE })
    }
}

/// The lab's part of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabRequest {
    /// A topology file (default: 3 nodes, public and cluster on macvlan).
    pub topology: Option<PathBuf>,
    /// NetworkAttachmentDefinitions to use as the lab's networks.
    pub nads: Option<PathBuf>,
    /// Run on this lab, already up; it is left up.
    pub existing: Option<String>,
    /// Leave the lab (and the run's pods) up after the run.
    pub keep: bool,
}

/// The Kubernetes part of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeRequest {
    /// Render every object the run would create (YAML) and create nothing.
    pub dry_run: bool,
    /// The image agents and the coordinator Job run.
    pub image: String,
    /// The kubeconfig file; `$KUBECONFIG` or `~/.kube/config` when `None`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; its current one when `None`.
    pub context: Option<String>,
    /// Set in the coordinator Job: this process is that run's coordinator.
    pub in_cluster_run: Option<String>,
}

impl KubeRequest {
    /// Whether a kubeconfig or a context is named (the cluster may be another one than the
    /// pod this runs in).
    pub fn names_a_cluster(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }
}

/// What a run says while it goes (the report is its result, not a notice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Informational (which backend, what the lab maps); not shown with `--quiet`.
    Info(String),
    /// Always shown (what was left out, a signal, what to do about something left behind).
    Note(String),
    /// A problem with the input that does not stop the run.
    Warning(String),
    /// A line as it is (the coordinator Job's log, where a report was stored).
    Line(String),
}

/// Where a run's notices go. Shared with the run's tasks, so `Sync`.
pub type Say<'a> = &'a (dyn Fn(Notice) + Send + Sync);

/// How a run ended when it ran to its end.
#[derive(Debug)]
pub struct RunOutcome {
    /// The exit code: the verdict's (0 pass, 1 warn or fail), 1 when something was left
    /// behind; 0 for a dry run.
    pub exit_code: u8,
    /// The report, when this process made it (not when a coordinator Job made it, nor for a
    /// dry run); it has been written already.
    pub report: Option<Box<RunReport>>,
}

/// Why a run did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is invalid; every error is listed (exit 22, nothing was created).
    #[error("invalid input: {}", .0.errors_line())]
    Invalid(Problems),
    /// Settings that do not go together, or one the backend cannot honour (exit 22).
    #[error("{0}")]
    Usage(String),
    /// The cluster's preflight refused the run: the input (exit 22) or the cluster (exit 69,
    /// [`crate::exit::ERROR`]: the run could not start).
    #[error("{}", .lines.join("; "))]
    Refused {
        /// What it found, one per line.
        lines: Vec<String>,
        /// Whether the input is at fault (else the cluster).
        invalid: bool,
    },
    /// A signal ended the run; what it made was removed, or it was said what is left.
    #[error("{0}")]
    Interrupted(Signal),
    /// A soak's coordinator got a signal while its pod was being replaced and left the run,
    /// as it was, to the new pod ([`crate::supervisor::HandOver`]).
    #[error("{0}: the run was left to the pod that replaces this one")]
    HandedOver(Signal),
    /// The report could not be written (exit 69).
    #[error(transparent)]
    Write(#[from] crate::report::WriteError),
    /// The run could not be carried out: the lab could not be built, a backend failed (exit
    /// 69, [`crate::exit::ERROR`]; the report, verdict `error`, says why).
    #[error("{context}")]
    Failed {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: BoxError,
    },
}

/// An error from below this module: a backend's, the supervisor's, the lab build's — each its
/// own type, carried with its causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result of a run.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `Failed` with `context` (may be empty: then the cause says it all).
    pub fn failed(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Failed {
            context: context.into(),
            source: source.into(),
        }
    }

    /// `Invalid` with one error under `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut problems = Problems::default();
        problems.error(field, message.into());
        Error::Invalid(problems)
    }
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Invalid(_) | Error::Usage(_) => Class::Invalid,
            Error::Refused { invalid: true, .. } => Class::Invalid,
            Error::Refused { invalid: false, .. } | Error::Write(_) | Error::Failed { .. } => {
                Class::Error
            }
            Error::Interrupted(signal) | Error::HandedOver(signal) => Class::Signal(*signal),
        }
    }
}

/// Runs the request to its end: resolves the configuration, picks and makes the backend,
/// runs the validation (or renders the dry run), writes the report, cleans up on every way
/// out.
///
/// # Errors
///
/// [`Error`]: invalid input before anything was created, a refused preflight, a signal, a
/// backend that could not be made, a report that could not be written. A run that could not
/// be carried out ([`Class::Error`], exit 69) has written a report already — verdict
/// `error` and the reason, in the request's format, where the report goes — unless the report
/// itself could not be written.
pub fn run(request: &RunRequest, say: Say<'_>) -> Result<RunOutcome> {
    launch::run(request, say)
}

/// Says the problems' warnings.
fn warn_all(problems: &Problems, say: Say<'_>) {
    for p in &problems.warnings {
        say(Notice::Warning(p.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::exit;

    fn notices() -> Mutex<Vec<Notice>> {
        Mutex::new(Vec::new())
    }

    #[test]
    fn errors_end_with_rooks_exit_codes_and_a_run_that_cannot_start_with_its_own() {
        let cases: [(Error, u8); 7] = [
            (
                Error::invalid("--probe-interval", "must be at least 10ms"),
                22,
            ),
            (Error::Usage("--dry-run needs -o yaml".into()), 22),
            (
                Error::Refused {
                    lines: vec!["no NAD".into()],
                    invalid: true,
                },
                22,
            ),
            (
                Error::Refused {
                    lines: vec!["no node ready".into()],
                    invalid: false,
                },
                69,
            ),
            (Error::Interrupted(Signal::Terminate), 143),
            (Error::HandedOver(Signal::Terminate), 143),
            (Error::failed("building the lab", "ip: no such device"), 69),
        ];
        for (error, code) in cases {
            assert_eq!(exit::code(&error), code, "{error:?}");
        }
    }

    #[test]
    fn invalid_input_is_refused_before_anything_starts() {
        // Local backend: nothing to create but processes; the refusal comes before them.
        let request = RunRequest {
            backend: Some(BackendKind::Local),
            config: ConfigRequest {
                probe_interval: Some("5ms".into()),
                daemons_per_node: Some(1),
                ..ConfigRequest::default()
            },
            ..RunRequest::default()
        };
        let said = notices();
        let say = |n: Notice| said.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        let error = run(&request, &say).expect_err("invalid");
        match &error {
            Error::Invalid(problems) => assert_eq!(
                problems.errors[0].to_string(),
                "--probe-interval: must be at least 10ms, found 5ms"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(exit::code(&error), exit::INVALID);
    }

    #[test]
    fn a_dry_run_is_only_for_kubernetes() {
        let request = RunRequest {
            backend: Some(BackendKind::Local),
            kube: KubeRequest {
                dry_run: true,
                ..RunRequest::default().kube
            },
            ..RunRequest::default()
        };
        let said = notices();
        let say = |n: Notice| said.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        let error = run(&request, &say).expect_err("usage");
        assert!(matches!(&error, Error::Usage(text) if text.contains("--backend kube")));
    }
}
