//! `multinet run`: a whole validation run. Builds the run configuration from Rook's flags or
//! a file, picks the backend, hosts the actix system on a tokio runtime, races the run against
//! SIGINT/SIGTERM, cleans up on every way out, and prints the report.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use multinet_proto::config::{
    CONVERGED_NODE_TYPE, GoDuration, NodeType, RunConfig, parse_run_config,
};
use multinet_proto::field::Problems;
use multinet_proto::network::CephNetwork;

use crate::backend::agents::{AgentProcesses, KillAgent};
use crate::backend::lab::{Keep, LabBackend};
use crate::backend::local::LocalBackend;
use crate::cli::EXIT_INVALID;
use crate::input::read_text_or_report;
use crate::lab::build::Lab;
use crate::lab::topology::{ConfigSource, LabTopology};
use crate::progress::Progress;
use crate::report::{self, RunReport};
use crate::scheduler::Scheduler;
use crate::supervisor::{RunSettings, RunSupervisor};

/// Where agents run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Agents as processes on loopback addresses of this machine: no root needed, validates no
    /// real network.
    Local,
    /// The emulated lab: network namespaces as nodes and pods, the real CNI plugins. Needs
    /// root. The default when it can run.
    Lab,
    /// A Kubernetes cluster, through its API (`--dry-run -o yaml` shows the objects without
    /// one).
    Kube,
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunOutput {
    /// For people.
    Text,
    /// For programs (schema in docs/report.md).
    Json,
    /// JUnit XML for CI dashboards.
    Junit,
    /// With `--dry-run`: the Kubernetes objects a run would create.
    Yaml,
}

impl RunOutput {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Junit => "junit",
            Self::Yaml => "yaml",
        }
    }
}

/// Arguments of `multinet run` (Rook's `run` flags keep their names and meanings).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the agents run.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Simulated nodes (local backend).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub nodes: u32,
    /// NetworkAttachmentDefinition of Ceph's public network.
    #[arg(long, conflicts_with = "config")]
    pub public_network: Option<String>,
    /// NetworkAttachmentDefinition of Ceph's cluster network.
    #[arg(long, conflicts_with = "config")]
    pub cluster_network: Option<String>,
    /// Clients per node, all on both networks (Rook's legacy flag mode) [default: 19].
    #[arg(long, conflicts_with = "config", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub daemons_per_node: Option<u32>,
    /// Run configuration file (Rook's ValidationTestConfig keys plus multinet's); replaces the
    /// flags Rook makes exclusive with it.
    #[arg(short = 'c', long = "config", value_name = "CONFIG.yaml")]
    pub config: Option<PathBuf>,
    /// Per-stage deadline in minutes [default: 3].
    #[arg(long, conflicts_with = "config", value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub timeout_minutes: Option<u64>,
    /// All clients must pass within this many seconds of the first [default: 30].
    #[arg(long, conflicts_with = "config", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub flaky_threshold_seconds: Option<u64>,
    /// Only check that hosts reach the public network.
    #[arg(long)]
    pub host_check_only: bool,
    /// Time between probe rounds, a Go duration such as 200ms or 1s.
    #[arg(long, value_name = "DURATION")]
    pub probe_interval: Option<String>,
    /// Namespace (recorded in the configuration; the local backend has none).
    #[arg(short = 'n', long, conflicts_with = "config")]
    pub namespace: Option<String>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value_t = RunOutput::Text)]
    pub output: RunOutput,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// How long agents outlive a coordinator they cannot reach (killed, or its host gone)
    /// before they exit by themselves, seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub agent_grace_seconds: u64,
    /// Lab topology file (lab backend; default: 3 nodes, public and cluster on macvlan).
    #[arg(
        short = 'f',
        long = "topology",
        value_name = "TOPOLOGY.yaml",
        conflicts_with = "lab"
    )]
    pub topology: Option<PathBuf>,
    /// Lab backend: NetworkAttachmentDefinition manifests to use as the lab's networks (those
    /// named by --public-network / --cluster-network, else the first and second), run as
    /// written.
    #[arg(long, value_name = "NADS.yaml", conflicts_with = "lab")]
    pub nads: Option<PathBuf>,
    /// Run on a lab that is already up (`multinet lab up`); it is left up.
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// Leave the lab up after the run.
    #[arg(long)]
    pub keep: bool,
    /// Kubernetes: print every object the run would create (`-o yaml`) and create nothing; needs
    /// no cluster.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubernetes: the multinet image agents and the coordinator Job run.
    #[arg(long, value_name = "IMAGE", default_value = crate::backend::k8s::DEFAULT_IMAGE)]
    pub image: String,
    /// Kubernetes: the service account of the run's pods (Rook's `serviceAccountName`).
    #[arg(long, value_name = "SA")]
    pub service_account: Option<String>,
    /// Kubernetes: the kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context [default: its current context].
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// Kubernetes, set by the coordinator Job: this process is run ID's coordinator inside the
    /// cluster (the owner object exists; its configuration is given with -c).
    #[arg(long, value_name = "ID", hide = true)]
    pub in_cluster_run: Option<String>,
    /// Local backend fault: kill an agent (`server`, or a node's first client) SECONDS after it
    /// started, e.g. `server@3` or `n2@2`.
    #[arg(long, value_name = "TARGET@SECONDS")]
    pub kill_agent: Option<KillAgent>,
}

/// Builds the run configuration the way Rook's CLI does, validated; problems are filed.
pub(crate) fn build_config(args: &RunArgs, problems: &mut Problems) -> Option<RunConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = read_text_or_report(path, problems)?;
            match parse_run_config(&text) {
                Ok((config, found)) => {
                    problems.absorb_under(&path.display().to_string(), found);
                    config
                }
                Err(e) => {
                    problems.error(path.display().to_string(), format!("not valid YAML: {e}"));
                    return None;
                }
            }
        }
        None => {
            let mut config = RunConfig::default();
            // Rook's flag mode: every daemon simulated as an OSD (both networks).
            config.node_types.clear();
            config.node_types.insert(
                CONVERGED_NODE_TYPE.into(),
                NodeType::with_counts(args.daemons_per_node.unwrap_or(19), 0),
            );
            if let Some(ns) = &args.namespace {
                config.namespace = ns.clone();
            }
            match (&args.public_network, &args.cluster_network) {
                (None, None) => {
                    // Both networks, by default, so that a first try shows everything.
                    config.public_network = "public".into();
                    config.cluster_network = "cluster".into();
                }
                (p, c) => {
                    config.public_network = p.clone().unwrap_or_default();
                    config.cluster_network = c.clone().unwrap_or_default();
                }
            }
            if let Some(m) = args.timeout_minutes {
                config.resource_timeout = GoDuration::from_secs(m * 60);
            }
            if let Some(s) = args.flaky_threshold_seconds {
                config.flaky_threshold = GoDuration::from_secs(s);
            }
            let mut found = Problems::default();
            config.validate(&mut found);
            problems.absorb(found);
            config
        }
    };
    apply_overrides(args, &mut config, problems);
    problems.is_valid().then_some(config)
}

/// `--host-check-only` and `--probe-interval` apply whatever the configuration's source.
fn apply_overrides(args: &RunArgs, config: &mut RunConfig, problems: &mut Problems) {
    if args.host_check_only {
        config.host_check_only = true;
    }
    if let Some(text) = &args.probe_interval {
        match GoDuration::parse(text) {
            Ok(d)
                if d.as_std() >= Duration::from_millis(10)
                    && d.as_std() <= Duration::from_secs(60) =>
            {
                config.probe_interval = d
            }
            Ok(d) => problems.error("--probe-interval", format!("{d} is outside 10ms..1m")),
            Err(e) => problems.error("--probe-interval", e),
        }
    }
}

fn networks(config: &RunConfig) -> Vec<CephNetwork> {
    let mut n = Vec::new();
    if !config.public_network.is_empty() {
        n.push(CephNetwork::Public);
    }
    if !config.cluster_network.is_empty() {
        n.push(CephNetwork::Cluster);
    }
    n
}

/// Whether the lab can run here: root, `ip`, and the CNI plugins.
fn lab_available() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("the lab needs root".into());
    }
    if !std::path::Path::new(crate::lab::cni::CNI_PATH)
        .join("macvlan")
        .exists()
    {
        return Err(format!(
            "the lab needs the CNI plugins in {} (apt-get install containernetworking-plugins)",
            crate::lab::cni::CNI_PATH
        ));
    }
    Ok(())
}

fn rook_flags_given(args: &RunArgs) -> bool {
    args.config.is_some()
        || args.public_network.is_some()
        || args.cluster_network.is_some()
        || args.daemons_per_node.is_some()
        || args.timeout_minutes.is_some()
        || args.flaky_threshold_seconds.is_some()
}

pub(crate) fn fail_invalid(problems: &Problems) -> u8 {
    for p in &problems.errors {
        eprintln!("multinet run: {p}");
    }
    EXIT_INVALID
}

/// Runs the command; returns the exit code.
pub fn run(args: &RunArgs) -> u8 {
    let backend = match args.backend {
        Some(b) => b,
        None if args.topology.is_some() || args.lab.is_some() || args.nads.is_some() => {
            Backend::Lab
        }
        None if args.dry_run || args.kubeconfig.is_some() || args.context.is_some() => {
            Backend::Kube
        }
        None if crate::backend::k8s::client::configured(None) => {
            if !args.quiet {
                eprintln!(
                    "multinet run: using the Kubernetes backend: {} (--backend lab or local to run on this machine)",
                    match crate::backend::k8s::client::kubeconfig_path(None) {
                        Some(path) => format!("found the kubeconfig {}", path.display()),
                        None => "running in a pod".to_string(),
                    }
                );
            }
            Backend::Kube
        }
        None => match lab_available() {
            Ok(()) => Backend::Lab,
            Err(why) => {
                if !args.quiet {
                    eprintln!(
                        "multinet run: using the local backend (agents on loopback; it validates no real network) because {why}; run as root with containernetworking-plugins installed for the emulated lab."
                    );
                }
                Backend::Local
            }
        },
    };
    if backend != Backend::Kube && (args.dry_run || args.output == RunOutput::Yaml) {
        eprintln!(
            "multinet run: --dry-run and -o yaml show the objects of a Kubernetes run: add --backend kube"
        );
        return EXIT_INVALID;
    }
    let agent_command = match AgentProcesses::default_agent_command() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("multinet run: {e:#}");
            return 1;
        }
    };
    multinet_agent::install_crypto_provider();
    let mut problems = Problems::default();
    match backend {
        Backend::Kube => crate::kube_cmd::run(args),
        Backend::Local => {
            let Some(config) = build_config(args, &mut problems) else {
                return fail_invalid(&problems);
            };
            warn_all(&problems);
            let backend = LocalBackend::new(args.nodes, agent_command, args.kill_agent.clone());
            execute(backend, settings(config, args), args)
        }
        Backend::Lab => {
            if let Err(why) = lab_available() {
                problems.error("--backend", format!("lab: {why}"));
                return fail_invalid(&problems);
            }
            let (lab, keep) = match &args.lab {
                Some(name) => match Lab::open(name) {
                    Ok(lab) => (
                        lab,
                        if args.keep {
                            Keep::Everything
                        } else {
                            Keep::Lab
                        },
                    ),
                    Err(e) => {
                        eprintln!("multinet run: {e:#}");
                        return EXIT_INVALID;
                    }
                },
                None => {
                    let Some((topology, source)) = crate::lab_cmd::load_topology(
                        args.topology.as_deref(),
                        None,
                        crate::lab_cmd::NadChoice {
                            file: args.nads.as_deref(),
                            public: args.public_network.as_deref(),
                            cluster: args.cluster_network.as_deref(),
                        },
                    ) else {
                        return EXIT_INVALID;
                    };
                    let Some(config) = lab_config(args, &topology, &mut problems) else {
                        return fail_invalid(&problems);
                    };
                    warn_all(&problems);
                    if !args.quiet {
                        for notice in Lab::notices(&topology) {
                            eprintln!("multinet run: lab: {notice}");
                        }
                    }
                    let lab = match lab_up_interruptible(topology, source) {
                        Ok(lab) => lab,
                        Err(code) => return code,
                    };
                    let kill = args
                        .kill_agent
                        .clone()
                        .or_else(|| topology_kill(&lab.topology));
                    let keep = if args.keep {
                        Keep::Everything
                    } else {
                        Keep::Nothing
                    };
                    let backend = LabBackend::new(lab, agent_command, kill, keep);
                    return execute(backend, settings(config, args), args);
                }
            };
            let Some(config) = lab_config(args, &lab.topology, &mut problems) else {
                return fail_invalid(&problems);
            };
            warn_all(&problems);
            let kill = args
                .kill_agent
                .clone()
                .or_else(|| topology_kill(&lab.topology));
            let backend = LabBackend::new(lab, agent_command, kill, keep);
            execute(backend, settings(config, args), args)
        }
    }
}

pub(crate) fn warn_all(problems: &Problems) {
    for p in &problems.warnings {
        eprintln!("multinet run: warning: {p}");
    }
}

pub(crate) fn settings(config: RunConfig, args: &RunArgs) -> RunSettings {
    RunSettings {
        networks: networks(&config),
        config,
        agent_grace: Duration::from_secs(args.agent_grace_seconds),
    }
}

/// The run configuration of a lab run: Rook's flags or `-c` when given, else the topology's
/// `config`, else Rook's converged default on the topology's networks.
fn lab_config(
    args: &RunArgs,
    topology: &LabTopology,
    problems: &mut Problems,
) -> Option<RunConfig> {
    let mut config = if rook_flags_given(args) {
        build_config(args, problems)?
    } else {
        let mut config = match &topology.config {
            ConfigSource::Inline(c) => c.clone(),
            ConfigSource::Path(path) => {
                let text = read_text_or_report(path, problems)?;
                match parse_run_config(&text) {
                    Ok((c, found)) => {
                        problems.absorb_under(&path.display().to_string(), found);
                        c
                    }
                    Err(e) => {
                        problems.error(path.display().to_string(), format!("not valid YAML: {e}"));
                        return None;
                    }
                }
            }
            ConfigSource::Default => topology.default_run_config(),
        };
        apply_overrides(args, &mut config, problems);
        config
    };
    for network in networks(&config) {
        if !topology.networks.contains_key(&network) {
            problems.error(
                format!("{}Network", network.key()),
                format!(
                    "the run tests the {} network, which the lab topology does not define",
                    network.key()
                ),
            );
        }
    }
    if args.nodes != 3 {
        problems.warn(
            "--nodes",
            "ignored with the lab: the topology says how many nodes there are",
        );
    }
    config.host_check_only |= args.host_check_only;
    problems.is_valid().then_some(config)
}

/// Builds the lab, listening for SIGINT/SIGTERM/SIGHUP meanwhile: a signal while it is being
/// built lets the build finish (a half-made namespace is harder to remove than a whole lab),
/// then removes it. `Err(code)` when there is no lab to run on, said why.
fn lab_up_interruptible(topology: LabTopology, source: String) -> Result<Lab, u8> {
    let name = topology.name.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("multinet run: cannot start the runtime: {e}");
            1u8
        })?;
    runtime.block_on(async move {
        let signal = shutdown_signal();
        tokio::pin!(signal);
        let mut build = tokio::task::spawn_blocking(move || Lab::up(topology, &source));
        let (built, interrupted) = tokio::select! {
            r = &mut build => (r, None),
            (signal, code) = &mut signal => (build.await, Some((signal, code))),
        };
        let built = built.map_err(|e| anyhow::anyhow!("the lab build panicked: {e}"));
        match (built, interrupted) {
            (Ok(Ok(lab)), None) => Ok(lab),
            (Ok(Err(e)) | Err(e), None) => {
                eprintln!("multinet run: building the lab: {e:#}");
                Err(1)
            }
            (built, Some((signal, code))) => {
                if let Ok(Err(e)) | Err(e) = built {
                    eprintln!("multinet run: building the lab: {e:#}");
                }
                eprintln!("multinet run: {signal} while the lab was being built: removing lab {name}");
                if let Err(e) = Lab::down(&name) {
                    eprintln!("multinet run: removing lab {name}: {e:#}; `multinet lab down {name}` finishes it");
                }
                Err(code)
            }
        }
    })
}

/// The topology's kill-agent fault, if any (the first one).
fn topology_kill(topology: &LabTopology) -> Option<KillAgent> {
    topology.faults.iter().find_map(|f| match f {
        crate::lab::topology::Fault::KillAgent { node, after } => Some(KillAgent {
            target: node.clone(),
            after: after.as_std(),
        }),
        _ => None,
    })
}

/// Runs the validation on `backend`, cleaning up on every way out.
fn execute<S: Scheduler>(backend: S, settings: RunSettings, args: &RunArgs) -> u8 {
    match execute_with(|| async move { Ok(backend) }, settings, args.quiet) {
        Finished::Report(report, left) => emit(&report, args).max(u8::from(left)),
        Finished::Code(code) => code,
    }
}

/// How a run ended: with a report, or with an exit code (a signal, an error already said, a
/// backend that could not be made).
#[derive(Debug)]
pub(crate) enum Finished {
    /// The run's report, and whether the cleanup after it failed (something may be left).
    Report(Box<RunReport>, bool),
    /// Exit with this code.
    Code(u8),
}

/// Makes the backend with `make` inside the run's runtime (a Kubernetes client must live in
/// the runtime that uses it), runs the validation, and cleans up on every way out. `make`
/// returns `Err(code)` when it has said why it cannot start.
pub(crate) fn execute_with<S, F, Fut>(make: F, settings: RunSettings, quiet: bool) -> Finished
where
    S: Scheduler,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<S, u8>>,
{
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot build the tokio runtime: {e}"))
    });
    let outcome = system.block_on(async move {
        let mut backend = match make().await {
            Ok(b) => b,
            Err(code) => return Ok(Err(code)),
        };
        let mut progress = Progress::new(quiet);
        let socket = backend.control_socket();
        let run_root = backend.run_root();
        let run_id = backend
            .run_id()
            .unwrap_or_else(crate::supervisor::new_run_id);
        let prepared = socket.and_then(|s| RunSupervisor::prepare_with_id(s, &run_root, run_id));
        let mut supervisor = match prepared {
            Ok(s) => s,
            Err(e) => {
                let _ = backend.cleanup().await;
                return Err(e);
            }
        };
        let result = tokio::select! {
            r = supervisor.run(&mut backend, &settings, &mut progress) => r.map(Ok),
            (name, code) = shutdown_signal() => {
                progress.note(&format!("{name}: stopping the run and cleaning up"));
                Ok(Err(code))
            }
        };
        progress.finish();
        let cleaned = supervisor.cleanup(&mut backend).await;
        let report = result?;
        // A cleanup that fails does not take the run's result with it: the report is still
        // given, the exit code says something is left.
        let left = match cleaned {
            Ok(()) => false,
            Err(e) => {
                eprintln!("multinet run: cleaning up: {e:#}");
                true
            }
        };
        anyhow::Ok(report.map(|r| (r, left)))
    });
    match outcome {
        Ok(Ok((report, left))) => Finished::Report(Box::new(report), left),
        Ok(Err(code)) => Finished::Code(code),
        Err(e) => {
            eprintln!("multinet run: {e:#}");
            Finished::Code(1)
        }
    }
}

/// Waits for SIGINT or SIGTERM; returns its name and the exit code (128 + signal number).
pub(crate) async fn shutdown_signal() -> (&'static str, u8) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => ("SIGINT", 130),
        _ = term.recv() => ("SIGTERM", 143),
        // The terminal went away: clean up as for the others.
        _ = hup.recv() => ("SIGHUP", 129),
    }
}

/// The report in `output`'s format.
pub(crate) fn render(report: &RunReport, output: RunOutput) -> String {
    match output {
        RunOutput::Text => report::text(report),
        RunOutput::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        RunOutput::Junit => report::junit(report),
        RunOutput::Yaml => serde_saphyr::to_string(report).unwrap_or_default(),
    }
}

pub(crate) fn emit(report: &RunReport, args: &RunArgs) -> u8 {
    let text = render(report, args.output);
    match write_out(&text, args) {
        Ok(()) => report.verdict.exit_code(),
        Err(code) => code,
    }
}

/// Writes the report text to `--report FILE` or standard output.
pub(crate) fn write_out(text: &str, args: &RunArgs) -> Result<(), u8> {
    match &args.report {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("multinet run: cannot write {}: {e}", path.display());
                return Err(1);
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}
