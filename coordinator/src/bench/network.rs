//! `multinet bench network` on the lab: the data plane measured, per network and per path
//! (client node → the server's node), one test at a time so that tests do not disturb each
//! other — bulk throughput both ways with one and `--streams` connections, request/response
//! rate and latency percentiles on kept-alive connections, new connections (and TLS
//! handshakes) per second, the CPU time of both ends, the path's MSS and MTU — and, in the same
//! run, references: iperf3 on the same path, nginx against the probe server on loopback
//! ([`reference`]). Several topologies are benchmarked one after another, each lab built and
//! removed in turn.
//!
//! Placement is a run's: the lab built from the topology, the run's plan, its server stage
//! (the server agent placed and started by the lab backend, its listeners learnt over the
//! control plane: [`RunSupervisor::place_server_only`]), and one client pod per node placed
//! with the same CNI ADDs a run's pods get ([`LabBackend::place_without_agents`]), attached to
//! the networks the run's most attached client on that node has. Each test is a process
//! started in the client pod's namespace (`multinet bench client`, the agent's load generator
//! [`multinet_agent::load`]) that prints what it measured and ends at its deadline.
//!
//! * [`report`] — what a bench measured (JSON), rendered as text tables and CSV.
//! * [`reference`] — iperf3 and nginx, started in the lab's pod namespaces.
//!
//! Knows nothing of clap: the command line hands in a [`NetworkBenchRequest`].

pub mod reference;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_proto::control::Listener;
use multinet_proto::field::Problems;
use multinet_proto::network::CephNetwork;

use crate::exit::{Class, Classify, chain};
use crate::lab::backend::{Keep, LabBackend, netns_exec};
use crate::lab::build::{Lab, PodNet};
use crate::lab::topology::LabTopology;
use crate::run::{ConfigRequest, Notice, Say};
use crate::scheduler::Scheduler;
use crate::signals::Signal;
use crate::supervisor::{RunSettings, RunSupervisor};

pub use report::{NetworkBenchReport, PathResult, SetupResult, TestResult};

/// The body size of request/response and connection-rate answers: a small answer, as
/// netperf's TCP_RR and TCP_CRR default to one byte; 64 bytes is about the probe server's `/`.
pub const ANSWER_BYTES: u64 = 64;
/// How much longer than its duration a test process may take before it is killed (its
/// connects, handshakes and the last answer each have 5 s).
const TEST_PATIENCE: Duration = Duration::from_secs(20);

/// What `multinet bench network` is asked to do.
#[derive(Debug, Clone)]
pub struct NetworkBenchRequest {
    /// Topology files, benchmarked one after another; empty: the embedded default lab.
    pub topologies: Vec<PathBuf>,
    /// A lab that is up (`lab up`): benchmarked as it is and left up.
    pub existing_lab: Option<String>,
    /// How long each test lasts.
    pub duration: Duration,
    /// Connections of the parallel bulk tests (and of the nginx comparison's request load).
    pub streams: u32,
    /// Run the references (iperf3 on each path, nginx against the probe server).
    pub references: bool,
}

/// Why a bench could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topology or flag is invalid; nothing was created (exit 22).
    #[error("invalid input: {}", .0.errors_line())]
    Invalid(Problems),
    /// Flags that do not go together (exit 22).
    #[error("{0}")]
    Usage(String),
    /// The lab could not be built, the server not placed (exit 69).
    #[error("{context}")]
    Failed {
        /// What was being done.
        context: String,
        /// Why.
        #[source]
        source: crate::run::BoxError,
    },
    /// A signal ended the bench; what it built was removed (128 + the signal).
    #[error("{0}: the bench was stopped and its lab removed")]
    Interrupted(Signal),
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Invalid(_) | Error::Usage(_) => Class::Invalid,
            Error::Failed { .. } => Class::Error,
            Error::Interrupted(signal) => Class::Signal(*signal),
        }
    }
}

fn failed(context: impl Into<String>, source: impl Into<crate::run::BoxError>) -> Error {
    Error::Failed {
        context: context.into(),
        source: source.into(),
    }
}

/// One setup to benchmark: a topology checked, not built yet (or a lab that is up).
struct Setup {
    /// How the report names it: the topology file's stem, `default`, or the lab's name.
    name: String,
    /// Where it came from.
    source: String,
    topology: LabTopology,
    /// The topology's text (written into the lab's state), `None` for a lab that is up.
    text: Option<String>,
    config: multinet_proto::config::RunConfig,
}

/// Runs the bench: every setup checked first (a bad file refuses the whole bench before any
/// lab is built), then each built, measured and removed in turn.
///
/// # Errors
///
/// [`Error`]: invalid input, a lab that could not be built or whose server did not start, a
/// signal.
pub fn bench(request: &NetworkBenchRequest, say: Say<'_>) -> Result<NetworkBenchReport, Error> {
    crate::lab::available().map_err(|why| Error::Usage(format!("bench network: {why}")))?;
    if !request.topologies.is_empty() && request.existing_lab.is_some() {
        return Err(Error::Usage(
            "-f and --lab do not go together: benchmark a topology file or a lab that is up".into(),
        ));
    }
    multinet_agent::install_crypto_provider();
    let setups = check_setups(request, say)?;
    let mut report = NetworkBenchReport::new(request);
    report.references = reference::Tools::find();
    for setup in setups {
        let name = setup.name.clone();
        say(Notice::Info(format!("bench {name}: {}", setup.source)));
        let (source, topology) = (setup.source.clone(), setup.topology.clone());
        match bench_setup(setup, request, &report.references, say) {
            Ok(result) => report.setups.push(result),
            // A setup this machine cannot build (a kernel without ipvlan) or whose server
            // did not start is said in the report; the other setups are still measured.
            Err(e @ Error::Failed { .. }) => {
                let mut result = SetupResult::new(&name, &source, &topology);
                result.error = Some(chain(&e));
                say(Notice::Note(format!("bench {name}: {}", chain(&e))));
                report.setups.push(result);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Reads and checks every topology (or opens the lab that is up).
fn check_setups(request: &NetworkBenchRequest, say: Say<'_>) -> Result<Vec<Setup>, Error> {
    let mut problems = Problems::default();
    let mut setups = Vec::new();
    if let Some(name) = &request.existing_lab {
        let lab = Lab::open(name).map_err(|e| Error::Usage(chain(&e)))?;
        let config = config_for(&lab.topology, &mut problems)?;
        setups.push(Setup {
            name: name.clone(),
            source: format!("lab {name}, up"),
            topology: lab.topology,
            text: None,
            config,
        });
        return Ok(setups);
    }
    let files: Vec<Option<&Path>> = if request.topologies.is_empty() {
        vec![None]
    } else {
        request
            .topologies
            .iter()
            .map(|p| Some(p.as_path()))
            .collect()
    };
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let loaded = crate::lab::load::load_topology(
            file,
            None,
            crate::lab::load::NadChoice {
                file: None,
                public: None,
                cluster: None,
            },
        );
        match loaded {
            Err(p) => problems.errors.extend(p.errors),
            Ok((topology, text, warnings)) => {
                for w in &warnings.warnings {
                    say(Notice::Warning(w.to_string()));
                }
                let config = config_for(&topology, &mut problems)?;
                let mut name = file
                    .and_then(|f| f.file_stem())
                    .map_or("default".to_string(), |s| s.to_string_lossy().into_owned());
                // Two files of one name (a/x.yaml, b/x.yaml) are told apart by position.
                if !names.insert(name.clone()) {
                    name = format!("{name}-{}", setups.len() + 1);
                    names.insert(name.clone());
                }
                setups.push(Setup {
                    name,
                    source: file.map_or("the embedded default topology".to_string(), |f| {
                        f.display().to_string()
                    }),
                    topology,
                    text: Some(text),
                    config,
                });
            }
        }
    }
    if !problems.errors.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(setups)
}

fn config_for(
    topology: &LabTopology,
    problems: &mut Problems,
) -> Result<multinet_proto::config::RunConfig, Error> {
    let mut own = Problems::default();
    let config = crate::run::config::resolve_for_lab(
        &ConfigRequest::default(),
        topology,
        crate::run::config::DEFAULT_LOCAL_NODES,
        &mut own,
    );
    match config {
        Some(config) => Ok(config),
        None => {
            problems.errors.extend(own.errors);
            Err(Error::Invalid(problems.clone()))
        }
    }
}

/// Builds one setup's lab, places the server and the client pods as a run does, measures
/// every path, and removes what it built — on every way out.
fn bench_setup(
    setup: Setup,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    say: Say<'_>,
) -> Result<SetupResult, Error> {
    let agent_command = crate::backend::agents::AgentProcesses::default_agent_command()
        .map_err(|e| failed("", e))?;
    let (lab, keep) = match setup.text {
        Some(text) => {
            for notice in Lab::notices(&setup.topology) {
                say(Notice::Info(format!("lab: {notice}")));
            }
            let lab = crate::run::lab_up_interruptible(setup.topology.clone(), text, say).map_err(
                |e| match e {
                    crate::run::Error::Interrupted(signal) => Error::Interrupted(signal),
                    other => failed("building the lab", other),
                },
            )?;
            (lab, Keep::Nothing)
        }
        None => (
            Lab::open(&setup.topology.name).map_err(|e| failed("opening the lab", e))?,
            Keep::Lab,
        ),
    };
    let mut result = SetupResult::new(&setup.name, &setup.source, &setup.topology);
    let backend = LabBackend::new(lab, agent_command, Vec::new(), keep);
    let settings = RunSettings {
        networks: crate::run::config::networks(&setup.config),
        config: setup.config,
        agent_grace: crate::run::AGENT_GRACE,
        soak: crate::supervisor::Soak::Off,
        stop: tokio_util::sync::CancellationToken::new(),
        probing: std::sync::Arc::default(),
        metrics: None,
        interim: None,
        hand_over: None,
    };
    let system = actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::multi_threaded(2)
            .unwrap_or_else(|e| panic!("cannot build the tokio runtime: {e}"))
    });
    let measured = system.block_on(async {
        let mut backend = backend;
        let socket = backend.control_socket();
        let run_root = backend.run_root();
        let mut supervisor = match socket
            .map_err(crate::run::BoxError::from)
            .and_then(|s| RunSupervisor::prepare(s, &run_root).map_err(Into::into))
        {
            Ok(supervisor) => supervisor,
            Err(e) => {
                let _ = backend.cleanup().await;
                return Err(failed("", e));
            }
        };
        let outcome = tokio::select! {
            r = measure(&mut supervisor, &mut backend, &settings, request, tools, &mut result, say) => r,
            signal = crate::signals::shutdown_signal() => Err(Error::Interrupted(signal)),
        };
        if let Err(e) = supervisor.cleanup(&mut backend).await {
            say(Notice::Note(format!(
                "cleaning up lab {}: {}; `multinet lab down` removes what is left",
                setup.topology.name,
                chain(&e)
            )));
        }
        outcome
    });
    measured.map(|()| result)
}

/// What a setup's tests share.
struct Bench<'a> {
    /// `multinet bench client` (this binary).
    client_command: Vec<String>,
    /// The client's TLS files (the run CA as its trust anchor).
    tls: multinet_proto::assignment::TlsFiles,
    /// The server agent's pid (its CPU time).
    server_pid: Option<i32>,
    request: &'a NetworkBenchRequest,
}

/// The server placed, the client pods placed, every path measured into `result`.
async fn measure(
    supervisor: &mut RunSupervisor,
    backend: &mut LabBackend,
    settings: &RunSettings,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    result: &mut SetupResult,
    say: Say<'_>,
) -> Result<(), Error> {
    let placed = supervisor
        .place_server_only(backend, settings)
        .await
        .map_err(|e| failed("placing the server", e))?;
    let Some(placed) = placed else {
        let why: Vec<String> = supervisor
            .exit_reasons()
            .map(|(pod, reason)| format!("{pod}: {reason}"))
            .collect();
        return Err(failed(
            "the server agent did not say where it listens",
            if why.is_empty() {
                "no answer within the stage deadline (resourceTimeout)".to_string()
            } else {
                why.join("; ")
            },
        ));
    };
    result.server_node = placed.server_node.clone();
    let pods = backend
        .place_without_agents(placed.client_networks.clone())
        .await
        .map_err(|e| failed("placing the client pods", e))?;
    let run_dir = crate::supervisor::run_dir(&backend.run_root(), supervisor.run_id());
    let tls = supervisor
        .pki()
        .write_agent_files(&run_dir, "bench-client", false)
        .map_err(|e| failed("the bench client's certificate", e))?;
    let exe = std::env::current_exe().map_err(|e| failed("finding this program", e))?;
    let bench = Bench {
        client_command: vec![exe.display().to_string(), "bench".into(), "client".into()],
        tls,
        server_pid: backend.agent_pid("server"),
        request,
    };
    let server_ns = backend.pod_namespace("server").map(str::to_string);
    for network in &settings.networks {
        let Some(listener) = placed.listeners.iter().find(|l| l.network == *network) else {
            continue;
        };
        let mut paths = Vec::new();
        for ((node, networks), pod) in placed.client_networks.iter().zip(&pods) {
            if !networks.contains(network) {
                continue;
            }
            let path = measure_path(
                &bench,
                PathEnds {
                    node,
                    server_node: &placed.server_node,
                    network: *network,
                    pod,
                    listener,
                    server_ns: server_ns.as_deref(),
                },
                tools,
                say,
            )
            .await;
            paths.push(path);
        }
        result.push_network(*network, paths);
    }
    if request.references
        && let Some(ns) = &server_ns
    {
        let server_tls = supervisor
            .pki()
            .write_agent_files(&run_dir, "bench-loopback-server", true)
            .map_err(|e| failed("the loopback probe server's certificate", e))?;
        let dir = backend.state_dir();
        let loopback = reference::Loopback {
            program: &bench.client_command[0],
            ns,
            dir: &dir,
            server_tls: &server_tls,
        };
        result.loopback =
            Some(reference::server_against_nginx(&loopback, request, tools, say).await);
    }
    Ok(())
}

/// The two ends of a path.
struct PathEnds<'a> {
    node: &'a str,
    server_node: &'a str,
    network: CephNetwork,
    pod: &'a PodNet,
    listener: &'a Listener,
    server_ns: Option<&'a str>,
}

/// Every test on one path, one after another.
async fn measure_path(
    bench: &Bench<'_>,
    ends: PathEnds<'_>,
    tools: &reference::Tools,
    say: Say<'_>,
) -> PathResult {
    let mut path = PathResult::new(ends.node, ends.server_node, ends.listener.http.ip());
    if let Some((network, reason)) = &ends.pod.failed {
        path.error = Some(format!(
            "the client pod got no address on the {} network: {reason}",
            network.key()
        ));
        return path;
    }
    let Some(address) = ends
        .pod
        .addresses
        .iter()
        .find(|a| a.network == ends.network)
    else {
        path.error = Some(format!(
            "the client pod has no address on the {} network",
            ends.network.key()
        ));
        return path;
    };
    path.client_address = Some(address.addr);
    let streams = bench.request.streams;
    let tests = [
        (LoadKind::Download, 1),
        (LoadKind::Download, streams),
        (LoadKind::Upload, 1),
        (LoadKind::Upload, streams),
        (LoadKind::RequestResponse, 1),
        (LoadKind::ConnectRequest, 1),
        (LoadKind::TlsHandshakeRequest, 1),
    ];
    for (kind, n) in tests {
        if n == 1 && streams == 1 && path.has(kind, 1) {
            continue;
        }
        say(Notice::Info(format!(
            "{} {} → {}: {} ×{n}",
            ends.network.key(),
            ends.node,
            ends.server_node,
            kind.name()
        )));
        let target = if kind == LoadKind::TlsHandshakeRequest {
            ends.listener.https
        } else {
            ends.listener.http
        };
        let test = run_test(
            bench,
            &ends.pod.ns,
            ClientArgs {
                kind,
                streams: n,
                target,
                source: address.addr,
                device: address.interface.as_deref(),
            },
        )
        .await;
        path.tests.push(test);
    }
    if bench.request.references
        && let Some(server_ns) = ends.server_ns
    {
        path.iperf3 = Some(
            reference::iperf3_path(
                tools,
                server_ns,
                &ends.pod.ns,
                ends.listener.http.ip(),
                address,
                bench.request.duration,
                say,
            )
            .await,
        );
    }
    path
}

/// One test's client, as its command line says it.
struct ClientArgs<'a> {
    kind: LoadKind,
    streams: u32,
    target: std::net::SocketAddr,
    source: std::net::IpAddr,
    device: Option<&'a str>,
}

/// Runs one test: the client process in `ns`, bounded by the duration and
/// [`TEST_PATIENCE`]; the server agent's CPU time read before and after.
async fn run_test(bench: &Bench<'_>, ns: &str, args: ClientArgs<'_>) -> TestResult {
    let mut argv = netns_exec(ns);
    argv.extend(bench.client_command.iter().cloned());
    argv.extend([
        "--kind".to_string(),
        args.kind.name().to_string(),
        "--target".into(),
        args.target.to_string(),
        "--source".into(),
        args.source.to_string(),
        "--streams".into(),
        args.streams.to_string(),
        "--duration-ms".into(),
        bench.request.duration.as_millis().to_string(),
        "--answer-bytes".into(),
        ANSWER_BYTES.to_string(),
        "--ca".into(),
        bench.tls.ca.display().to_string(),
        "--cert".into(),
        bench.tls.cert.display().to_string(),
        "--key".into(),
        bench.tls.key.display().to_string(),
    ]);
    if let Some(device) = args.device {
        argv.extend(["--device".to_string(), device.to_string()]);
    }
    let server_before = bench
        .server_pid
        .and_then(|pid| multinet_agent::load::cpu_seconds(Some(pid)));
    let ran = run_json::<LoadOutcome>(&argv, bench.request.duration + TEST_PATIENCE).await;
    let server_after = bench
        .server_pid
        .and_then(|pid| multinet_agent::load::cpu_seconds(Some(pid)));
    let server_cpu = server_before
        .zip(server_after)
        .map(|(before, after)| after - before);
    match ran {
        Ok(outcome) => TestResult {
            kind: args.kind,
            streams: args.streams,
            outcome: Some(outcome),
            server_cpu_seconds: server_cpu,
            failure: None,
        },
        Err(why) => TestResult {
            kind: args.kind,
            streams: args.streams,
            outcome: None,
            server_cpu_seconds: server_cpu,
            failure: Some(why),
        },
    }
}

/// Runs `argv` to its end within `limit` (killed past it) and reads its standard output as
/// JSON; a failure is said with the process's standard error.
pub(crate) async fn run_json<T: serde::de::DeserializeOwned>(
    argv: &[String],
    limit: Duration,
) -> Result<T, String> {
    let output = run_bounded(argv, limit).await?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            argv.iter()
                .find(|a| !a.starts_with('-') && *a != "nsenter")
                .map_or("", String::as_str),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "its output is not what was expected ({e}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// Runs `argv` to its end within `limit`; killed (and waited for) past it.
pub(crate) async fn run_bounded(
    argv: &[String],
    limit: Duration,
) -> Result<std::process::Output, String> {
    let (program, args) = argv.split_first().ok_or("an empty command")?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(format!("waiting for {program}: {e}")),
        // Dropping the future drops the child: killed (kill_on_drop) and reaped by tokio.
        Err(_) => Err(format!(
            "{program} did not end within {}s; killed",
            limit.as_secs()
        )),
    }
}

/// One test as `multinet bench client` is asked for it (from the bench, in a pod's
/// namespace).
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// What the test does.
    pub kind: LoadKind,
    /// The server's listener.
    pub target: std::net::SocketAddr,
    /// Where connections leave from.
    pub source: Option<std::net::IpAddr>,
    /// The interface they are bound to.
    pub device: Option<String>,
    /// Connections at once.
    pub streams: u32,
    /// How long.
    pub duration: Duration,
    /// Answer size of the request tests.
    pub answer_bytes: u64,
    /// The run's TLS files (TLS tests trust its CA).
    pub tls: Option<multinet_proto::assignment::TlsFiles>,
}

/// Runs one test in this process (on one thread, as an agent runs) and returns what it
/// measured.
///
/// # Errors
///
/// The plan is out of bounds or the CA cannot be read (said).
pub fn client(request: &ClientRequest) -> Result<LoadOutcome, String> {
    multinet_agent::install_crypto_provider();
    let tls = match &request.tls {
        Some(files) => Some(
            multinet_agent::tls::RunTls::load(files)
                .and_then(|t| t.probe_client_config())
                .map_err(|e| multinet_agent::chain(&e))?,
        ),
        None => None,
    };
    let plan = multinet_agent::load::LoadPlan {
        kind: request.kind,
        target: request.target,
        source: request.source,
        device: request.device.clone(),
        streams: request.streams,
        duration: request.duration,
        answer_bytes: request.answer_bytes,
        tls,
    };
    let runtime = multinet_agent::entry::single_threaded().map_err(|e| e.to_string())?;
    runtime
        .block_on(multinet_agent::load::run(&plan))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_bench_topologies_are_valid_and_without_warnings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/bench");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("deploy/examples/bench")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "{files:?}");
        let mut names = Vec::new();
        for file in files {
            let nads = crate::lab::load::NadChoice {
                file: None,
                public: None,
                cluster: None,
            };
            let (topology, _, warnings) = crate::lab::load::load_topology(Some(&file), None, nads)
                .unwrap_or_else(|p| panic!("{}: {}", file.display(), p.errors_line()));
            assert!(
                warnings.warnings.is_empty(),
                "{}: {warnings:?}",
                file.display()
            );
            names.push(topology.name);
        }
        // Different lab names: a bench of several leaves none in another's way.
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 5, "{names:?}");
    }

    #[tokio::test]
    async fn a_test_process_past_its_limit_is_killed_and_said() {
        let argv = vec!["sleep".to_string(), "30".to_string()];
        let started = std::time::Instant::now();
        let error = run_bounded(&argv, Duration::from_millis(200))
            .await
            .expect_err("killed");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(error.contains("did not end within"), "{error}");
    }

    #[tokio::test]
    async fn a_failing_process_is_said_with_its_stderr() {
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo broken >&2; exit 3".to_string(),
        ];
        let error = run_json::<serde_json::Value>(&argv, Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(error.contains("broken"), "{error}");
    }
}
