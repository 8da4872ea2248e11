//! `multinet run --resume RUN`: a soak whose coordinator died, continued by this process from
//! the checkpoint the dead one left in the run's directory ([`crate::checkpoint`]). The run's
//! configuration, backend, agents and figures are the checkpoint's; of the request only the
//! output settings apply (`-o`, `--report`, `--quiet`, `--metrics-addr`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use multinet_proto::config::{parse_run_config, socket_address};

use super::config::networks;
use super::launch::{Resume, execute_with, finish, interim_reports, metrics_listener};
use super::{Error, Notice, Result, RunOutcome, RunRequest, Say};
use crate::backend::agents::AgentProcesses;
use crate::backend::local::LocalBackend;
use crate::checkpoint::{self, BackendState, Checkpoint};
use crate::exit::chain;
use crate::lab::backend::{Keep, LabBackend};
use crate::lab::build::{Lab, STATE_ROOT};
use crate::supervisor::{RunSettings, Soak};

/// Where the checkpoint of `run` is: `run` names the run's directory (or its checkpoint
/// file), or is a run id whose directory is in a lab's state (`/run/multinet/LAB/multinet-ID`).
fn find(run: &str) -> Result<PathBuf> {
    let given = Path::new(run);
    if given.is_file() {
        return Ok(given.to_path_buf());
    }
    if given.is_dir() {
        return Ok(given.join(checkpoint::FILE));
    }
    let valid_id = !run.is_empty() && run.chars().all(|c| c.is_ascii_hexdigit());
    // A local run's directory is in the temporary directory.
    let local = crate::supervisor::run_dir(&std::env::temp_dir(), run).join(checkpoint::FILE);
    if valid_id && local.is_file() {
        return Ok(local);
    }
    if valid_id && let Ok(labs) = std::fs::read_dir(STATE_ROOT) {
        for lab in labs.flatten() {
            let candidate = crate::supervisor::run_dir(&lab.path(), run).join(checkpoint::FILE);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(Error::invalid(
        "--resume",
        format!(
            "no checkpoint of run {run:?}: expected a run id with a checkpoint under {STATE_ROOT}/LAB/multinet-ID/ or {}/multinet-ID/ (a lab or local soak writes one; the run id is in its first lines and in its report) or a run directory",
            std::env::temp_dir().display()
        ),
    ))
}

/// Resumes `run` and writes its report as `request` says.
pub(super) fn run(run: &str, request: &RunRequest, say: Say<'_>) -> Result<RunOutcome> {
    let path = find(run)?;
    let read = Checkpoint::read(&path).map_err(|e| Error::invalid("--resume", chain(&e)))?;
    if let Some(coordinator) = read.coordinator.filter(|c| c.alive()) {
        return Err(Error::Usage(format!(
            "run {} is not to be resumed: its coordinator (pid {}) still runs",
            read.run_id, coordinator.pid
        )));
    }
    let run_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let config_text = serde_json::to_string(&read.config).unwrap_or_default();
    let mut config = match parse_run_config(&config_text) {
        Ok((config, problems)) if problems.is_valid() => config,
        Ok((_, problems)) => {
            let mut problems = problems;
            problems.errors.iter_mut().for_each(|e| {
                e.field = format!("{}: config.{}", path.display(), e.field);
            });
            return Err(Error::Invalid(problems));
        }
        Err(e) => {
            return Err(Error::invalid(
                &format!("{}: config", path.display()),
                e.to_string(),
            ));
        }
    };
    if let Some(text) = &request.config.metrics_addr {
        config.metrics_addr =
            Some(socket_address(text).map_err(|why| Error::invalid("--metrics-addr", why))?);
    }
    multinet_agent::install_crypto_provider();
    let agent_command =
        AgentProcesses::default_agent_command().map_err(|e| Error::failed("", e))?;
    let probing_elapsed = read
        .run_time()
        .saturating_sub(Duration::from_millis(read.probing_began_ms));
    let settings = RunSettings {
        networks: networks(&config),
        soak: match read.soak_ms {
            Some(ms) => Soak::For(Duration::from_millis(ms)),
            None => Soak::UntilStopped,
        },
        config,
        agent_grace: Duration::from_millis(read.agent_grace_ms),
        stop: tokio_util::sync::CancellationToken::new(),
        probing: std::sync::Arc::default(),
        metrics: None,
        interim: interim_reports(request),
        hand_over: None,
    };
    let metrics = metrics_listener(&settings.config)?;
    say(Notice::Info(format!(
        "resuming run {} from {} (checkpoint written {:.1} s into the run)",
        read.run_id,
        path.display(),
        read.written_ms as f64 / 1000.0
    )));
    let port = read.control.port();
    match read.backend.clone() {
        BackendState::Local { agents } => {
            let backend = LocalBackend::resume(AgentProcesses::adopt(agent_command, agents), port);
            go_on(backend, settings, metrics, read, run_dir, request, say)
        }
        BackendState::Kube(_) => Err(Error::invalid(
            "--resume",
            format!(
                "{}: run {} is a Kubernetes run: its coordinator Job restarts a coordinator that died, in the same pod, and that one continues the run by itself",
                path.display(),
                read.run_id
            ),
        )),
        BackendState::Lab {
            lab,
            keep_lab,
            keep_everything,
            agents,
            schedule_done,
        } => {
            crate::lab::available()
                .map_err(|why| Error::invalid("--resume", format!("lab: {why}")))?;
            let opened = Lab::open(&lab)
                .map_err(|e| Error::invalid("--resume", format!("the run's lab: {}", chain(&e))))?;
            let keep = match (keep_everything, keep_lab) {
                (true, _) => Keep::Everything,
                (false, true) => Keep::Lab,
                (false, false) => Keep::Nothing,
            };
            let backend = LabBackend::resume(
                opened,
                AgentProcesses::adopt(agent_command, agents),
                keep,
                port,
                probing_elapsed,
                schedule_done,
            );
            go_on(backend, settings, metrics, read, run_dir, request, say)
        }
    }
}

/// Runs the resumed run on `backend` and writes its report.
fn go_on<S: crate::scheduler::Scheduler>(
    backend: S,
    settings: RunSettings,
    metrics: Option<std::net::TcpListener>,
    read: Checkpoint,
    run_dir: PathBuf,
    request: &RunRequest,
    say: Say<'_>,
) -> Result<RunOutcome> {
    let resume = Resume {
        checkpoint: Box::new(read),
        run_dir,
    };
    finish(
        execute_with(
            || async move { Ok(backend) },
            settings,
            metrics,
            Some(resume),
            request.quiet,
            say,
        )?,
        request,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resumed run reads its configuration back through the configuration file's reader:
    /// what a checkpoint writes must read back as it was, every key set.
    #[test]
    fn a_checkpointed_configuration_reads_back_as_it_was() {
        use multinet_proto::config::{GoDuration, SampleKind};
        for kind in [
            SampleKind::Converged,
            SampleKind::DedicatedStorageNodes,
            SampleKind::StretchCluster,
        ] {
            let mut config = kind.config();
            config.soak_duration = GoDuration::parse("6h").expect("duration");
            config.report_interval = GoDuration::parse("30s").expect("duration");
            config.metrics_addr = Some("127.0.0.1:9464".parse().expect("address"));
            let text = serde_json::to_string(&config).expect("encodes");
            let (back, problems) = parse_run_config(&text).expect("reads");
            assert!(problems.is_valid(), "{kind}: {problems:?}");
            assert_eq!(back, config, "{kind}");
        }
    }

    /// The committed fuzz seed is a real lab checkpoint (cut down): it reads.
    #[test]
    fn a_lab_checkpoint_reads() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/seeds/checkpoint/lab-2-nodes.json"
        ));
        let c = Checkpoint::read(path).expect("a checkpoint");
        assert!(matches!(c.backend, BackendState::Lab { .. }));
        crate::matrix::PathMatrix::from_state(c.matrix).expect("its matrix");
        crate::pki::RunPki::restore(&c.pki).expect("its PKI");
        let mut wrong = serde_json::to_value(Checkpoint::read(path).expect("again")).expect("json");
        wrong["version"] = 2.into();
        let text = serde_json::to_vec(&wrong).expect("encodes");
        assert!(matches!(
            Checkpoint::parse(&text, path),
            Err(checkpoint::Error::Version { found: 2, .. })
        ));
    }

    #[test]
    fn a_run_without_a_checkpoint_is_refused_naming_the_flag() {
        let error = find("0123456789abcdef-not-a-run").expect_err("no such run");
        assert!(
            matches!(&error, Error::Invalid(p) if p.errors[0].to_string().starts_with("--resume: no checkpoint of run"))
        );
        assert_eq!(crate::exit::code(&error), crate::exit::INVALID);
    }
}
