//! # multinet-agent: the probe agent
//!
//! One binary, three roles, chosen by the assignment file the coordinator writes
//! ([`multinet_proto::assignment::AgentAssignment`]): the single **server** that listens on
//! its network addresses, **clients** that probe it over each network they are attached to,
//! and **host checkers** that probe its public address from a node's host network. Every
//! agent reports to the coordinator over the control plane (QUIC, mutual TLS), which never
//! runs over the networks under test.
//!
//! # Layout
//!
//! * [`tls`] — the run's PKI: PEM loading, the control-plane QUIC client configuration, the
//!   probe server's and probe clients' HTTPS configurations.
//! * [`control`] — the control-plane client: Hello/Welcome, report batches with sequence
//!   numbers, acknowledgements, reconnect with backoff and resend, grace period, Stop.
//!   [`control::outbox`] holds the results and unacknowledged batches between prober and
//!   control client.
//! * [`server`] — the probe server: HTTP and HTTPS on each address; `/` echoes the caller's
//!   address, `/payload?bytes=N` serves N bytes.
//! * [`load`] — the bench's load generator (`multinet bench network`): one bulk,
//!   request/response or connection-rate test against a probe server, bounded in time and
//!   requests, measured (throughput, rates, latency percentiles, CPU, MSS and path MTU).
//! * [`prober`] — the probes of clients and host checkers: every kind each round, failure
//!   classes, latency.
//! * [`egress`] — where probes leave from: the kernel's route lookup per network probed, sent
//!   to the coordinator after every Targets (`wrong_egress` when it is not the network's
//!   interface).
//! * [`pod`] — in a Kubernetes pod: the assignment made from the mounted run settings, TLS
//!   material and Multus' network-status, checked against the kernel's interfaces; the
//!   arguments of both ways to run.
//! * [`run`] (here) — wires the pieces for the assignment's role and says how the agent ended
//!   ([`ExitReason`]).
//! * [`Error`] (here) — why an agent could not run: each module's own error (`tls::Error`,
//!   `control::Error`, …) or reading its assignment; [`chain`] says one with its causes on a
//!   line, as the agent reports it on stderr and to the coordinator.
//! * [`entry`] — the command-line entry point both binaries call (`multinet-agent` and the
//!   hidden `multinet agent`), and the runtime builders every multinet process uses.
//!
//! Every long-lived task ends with [`run`]: the prober is dropped with it, the server is shut
//! down by [`server::ProbeServer::shutdown`].

#![forbid(unsafe_code)]

pub mod control;
pub mod egress;
pub mod entry;
pub mod load;
pub mod pod;
pub mod prober;
pub mod server;
pub mod tls;

#[cfg(test)]
mod testing;

use std::path::{Path, PathBuf};

use multinet_proto::assignment::AgentAssignment;
use multinet_proto::control::{AgentMessage, Role};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::control::{ControlEnd, ControlSettings, Outbox};
use crate::prober::{ProbePlan, Prober};
use crate::server::ProbeServer;
use crate::tls::RunTls;

/// Why an agent could not run: the errors of its parts, and reading its assignment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--help` where an assignment was expected; says the usage.
    #[error("{}", pod::USAGE)]
    Usage,
    /// The assignment file cannot be read.
    #[error("reading the assignment {}", path.display())]
    ReadAssignment {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The assignment file is not an assignment.
    #[error("the assignment {} is not valid", path.display())]
    Assignment {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A pod's assignment could not be made from its mounted files.
    #[error(transparent)]
    Pod(#[from] pod::Error),
    /// SIGTERM cannot be listened for.
    #[error("listening for SIGTERM")]
    Signal(#[source] std::io::Error),
    /// The run's TLS material is not usable.
    #[error(transparent)]
    Tls(#[from] tls::Error),
    /// The probe server could not listen.
    #[error(transparent)]
    Server(#[from] server::Error),
    /// The assignment gives a client or host checker nothing to probe from.
    #[error(transparent)]
    Probe(#[from] prober::Error),
    /// The control client gave up: refused, or without a socket.
    #[error(transparent)]
    Control(#[from] control::Error),
}

/// Results of this crate's top level.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line, `what: why: root cause` (empty levels skipped): how
/// an agent says why it failed, on stderr and to the coordinator.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// How an agent ended normally (errors are the third way: exit code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The coordinator sent Stop and the last results were flushed.
    Stopped,
    /// The coordinator was unreachable longer than the grace period.
    CoordinatorLost,
    /// SIGTERM (the pod is being deleted).
    Terminated,
}

impl ExitReason {
    /// The process exit code: 0 after Stop, 3 after losing the coordinator, 143 (128 +
    /// SIGTERM) when terminated.
    pub fn code(self) -> u8 {
        match self {
            ExitReason::Stopped => 0,
            ExitReason::CoordinatorLost => 3,
            ExitReason::Terminated => 143,
        }
    }
}

impl From<ControlEnd> for ExitReason {
    fn from(end: ControlEnd) -> Self {
        match end {
            ControlEnd::Stopped => ExitReason::Stopped,
            ControlEnd::GraceExpired => ExitReason::CoordinatorLost,
        }
    }
}

/// Installs rustls' ring provider as the process default (a second call changes nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads the assignment the arguments point to: a file, or a pod's mounted files.
pub fn assignment_from(args: &pod::AgentArgs) -> Result<AgentAssignment> {
    match args {
        pod::AgentArgs::Assignment(path) => read_assignment(path),
        pod::AgentArgs::Pod(p) => Ok(pod::pod_assignment(p, &pod::kernel_interfaces)?),
        pod::AgentArgs::Help => Err(Error::Usage),
    }
}

/// Reads an assignment file (JSON).
pub fn read_assignment(path: &Path) -> Result<AgentAssignment> {
    let text = std::fs::read(path).map_err(|source| Error::ReadAssignment {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| Error::Assignment {
        path: path.to_path_buf(),
        source,
    })
}

/// [`run`], ended at once by SIGTERM. In a pod the agent is PID 1 of its PID namespace, and
/// the kernel does not deliver a signal PID 1 has no handler for: without this, every pod
/// deletion would wait out the grace period until SIGKILL (pid_namespaces(7)).
pub async fn run_until_terminated(assignment: AgentAssignment) -> Result<ExitReason> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::Signal)?;
    tokio::select! {
        end = run(assignment) => end,
        _ = term.recv() => Ok(ExitReason::Terminated),
    }
}

/// Runs the assignment's role until the coordinator says Stop, the coordinator is lost, or a
/// fatal error (refused, cannot set up).
pub async fn run(assignment: AgentAssignment) -> Result<ExitReason> {
    let started = Instant::now();
    // The same instant on the wall clock: the coordinator puts results on its own clock.
    let clock_epoch_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let tls = RunTls::load(&assignment.tls)?;
    let settings = ControlSettings::from_assignment(
        &assignment,
        tls.control_client_config()?,
        clock_epoch_unix_ms,
    );
    let outbox = Outbox::new(assignment.batch_max, assignment.unacked_max);
    let (targets_tx, targets_rx) = watch::channel(Vec::new());
    match assignment.identity.role {
        Role::Server => {
            // As many clients at once as the process can hold descriptors for.
            let open_files = server::raise_open_files_limit();
            tracing::debug!(open_files, "probe server's open-files limit");
            let server =
                match ProbeServer::bind(&assignment.addresses, tls.probe_server_config()?).await {
                    Ok(server) => server,
                    Err(error) => return Err(fail(&settings, error.into()).await),
                };
            let ready = AgentMessage::ServerReady {
                listeners: server.listeners().to_vec(),
            };
            let end = control::run(&settings, Some(ready), &outbox, &targets_tx).await;
            server.shutdown().await;
            Ok(end?.into())
        }
        Role::Client | Role::HostCheck => {
            let setup = || -> Result<_> {
                let plan = ProbePlan::for_assignment(&assignment)?;
                let client_config = tls.probe_client_config()?;
                Ok((plan, Prober::new(client_config, &assignment.probe, started)))
            };
            let (plan, prober) = match setup() {
                Ok(setup) => setup,
                Err(error) => return Err(fail(&settings, error).await),
            };
            let interval = std::time::Duration::from_millis(assignment.probe.interval_ms);
            let probing = prober.run(&plan, targets_rx, interval, &outbox);
            let controlling = control::run(&settings, None, &outbox, &targets_tx);
            tokio::pin!(probing, controlling);
            // The prober only ends when the targets channel closes, which the control client
            // holds until it ends: the control client decides.
            let end = tokio::select! {
                end = &mut controlling => end,
                () = &mut probing => controlling.await,
            };
            Ok(end?.into())
        }
    }
}

/// Tells the coordinator (if it can be reached within the grace period) why the agent cannot
/// work, and returns the error to exit with.
async fn fail(settings: &ControlSettings, error: Error) -> Error {
    if let Err(report) = control::report_failure(settings, chain(&error)).await {
        tracing::error!("could not report the failure: {}", chain(&report));
    }
    error
}
