//! `multinet bench network` on the lab (or the local backend): the data plane measured, per
//! network and per path (client node → the server's node; with `--mesh`, every node → every
//! node's responder), one test at a time so that tests do not disturb each other — bulk throughput both ways with one and `--streams` connections, request/response
//! rate and latency percentiles on kept-alive connections, new connections (and TLS
//! handshakes) per second, the CPU time of both ends, the path's MSS and MTU — and, in the same
//! run, references: iperf3 on the same path, nginx against the probe server on loopback
//! ([`reference`]). Several topologies are benchmarked one after another, each lab built and
//! removed in turn.
//!
//! Placement is a run's: the lab built from the topology, the run's plan, its server stage
//! (the server agent — in a mesh every node's responder — placed and started by the backend,
//! its listeners learnt over the control plane: [`RunSupervisor::place_server_only`]), and one
//! client pod per node placed with the same CNI ADDs a run's pods get
//! ([`LabBackend::place_without_agents`]), attached to the networks the run's most attached
//! client on that node has. Each test is a process started in the client pod's namespace
//! (`multinet bench client`, the agent's load generator [`multinet_agent::load`]) that prints
//! what it measured and ends at its deadline. A mesh's pairs are a mesh run's
//! ([`crate::mesh::Targeting`]: every node, or its own and K peers by rendezvous hashing).
//!
//! On the local backend ([`LocalBackend`]) there is no namespace: the agents are processes on
//! loopback addresses of this machine, each client "pod" is a loopback address of the run's
//! block, and every test process binds to it. Such a bench validates no real network; the
//! report says so.
//!
//! Before anything is built, the tests' time is estimated (paths × tests × duration, with the
//! references) and said; past `--max-time` the bench is refused ([`Estimate`]).
//!
//! On the kube backend ([`kube`]) the bench runs inside the cluster as a coordinator Job, as a
//! `run --backend kube` does (agents must reach its control plane); each path's tests run in a
//! client pod of their own, one pod at a time, whose log is read back.
//!
//! * [`report`] — what a bench measured (JSON), rendered as text tables and CSV.
//! * [`reference`] — iperf3 and nginx, started in the lab's pod namespaces.
//! * [`kube`] — the kube backend: the Job from outside, the client pods from inside.
//!
//! Knows nothing of clap: the command line hands in a [`NetworkBenchRequest`].

pub mod kube;
pub mod reference;
pub mod report;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::Listener;
use multinet_proto::field::Problems;
use multinet_proto::network::CephNetwork;

use crate::backend::local::LocalBackend;
use crate::exit::{Class, Classify, chain};
use crate::lab::backend::{Keep, LabBackend, netns_exec};
use crate::lab::build::{Lab, PodNet};
use crate::lab::topology::LabTopology;
use crate::mesh::Targeting;
use crate::run::{BoxError, ConfigRequest, Notice, Say};
use crate::scheduler::Scheduler;
use crate::signals::Signal;
use crate::supervisor::{RunSettings, RunSupervisor};

pub use report::{MeshCoverage, NetworkBenchReport, PathResult, SetupResult, TestResult};

/// The body size of request/response and connection-rate answers: a small answer, as
/// netperf's TCP_RR and TCP_CRR default to one byte; 64 bytes is about the probe server's `/`.
pub const ANSWER_BYTES: u64 = 64;
/// How much longer than its duration a test process may take before it is killed (its
/// connects, handshakes and the last answer each have 5 s).
pub(crate) const TEST_PATIENCE: Duration = Duration::from_secs(20);
/// `--max-time`'s default: the most time a bench's tests may take in all, unless raised.
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(3600);

/// Where a bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BenchBackend {
    /// The emulated lab: network namespaces and the real CNI plugins (root).
    #[default]
    Lab,
    /// Processes on loopback addresses of this machine, no namespace, no root: validates no
    /// real network.
    Local,
    /// A Kubernetes cluster through its API: the bench runs there as a coordinator Job, each
    /// path's tests in a client pod.
    Kube,
}

impl BenchBackend {
    /// Its name, as `--backend` and the report's `backend` have it.
    pub fn name(self) -> &'static str {
        match self {
            BenchBackend::Lab => "lab",
            BenchBackend::Local => "local",
            BenchBackend::Kube => "kube",
        }
    }
}

/// What `multinet bench network` is asked to do.
#[derive(Debug, Clone)]
pub struct NetworkBenchRequest {
    /// Where it runs (`--backend`).
    pub backend: BenchBackend,
    /// Nodes the local backend simulates (`--nodes`; `None`: 3); refused with the lab, whose
    /// topology says how many nodes there are.
    pub nodes: Option<u32>,
    /// A responder on every node, each node's client going to every node's (`--mesh`).
    pub mesh: bool,
    /// With the mesh, each node's own responder and K others' (`--mesh-peers K`, implies
    /// `mesh`), chosen as a mesh run chooses them.
    pub mesh_peers: Option<u32>,
    /// The most time the tests may take in all ([`Estimate`]); past it the bench is refused.
    pub max_time: Duration,
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
    /// The kube backend's cluster and run configuration (unused by the others).
    pub kube: KubeBench,
}

/// Where a kube bench runs and with what: what `run --backend kube` is given.
#[derive(Debug, Clone, Default)]
pub struct KubeBench {
    /// The run configuration's sources: `-c`, the namespace, the networks' NADs, the service
    /// account (`mesh` and `mesh_peers` are the request's).
    pub config: ConfigRequest,
    /// The cluster (kubeconfig, context), the image, and — in the bench's coordinator Job —
    /// its run id.
    pub cluster: crate::run::KubeRequest,
    /// No progress lines (`-q`): the Job's are not said either.
    pub quiet: bool,
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

/// One setup to benchmark: a topology checked, not built yet (or a lab that is up, or the
/// local backend's simulated nodes).
struct Setup {
    /// How the report names it: the topology file's stem, `default`, the lab's name, or
    /// `local`.
    name: String,
    /// Where it came from.
    source: String,
    place: Place,
    config: multinet_proto::config::RunConfig,
}

/// Where a setup's pods go.
enum Place {
    /// A lab: built from `topology` (its text written into the lab's state), or, with `text`
    /// `None`, the lab of that name that is up.
    Lab {
        topology: Box<LabTopology>,
        text: Option<String>,
    },
    /// The local backend's simulated nodes `n1`…`nN`.
    Local { nodes: u32 },
    /// A cluster's nodes, as its preflight planned them.
    Kube { nodes: Vec<String> },
}

impl Setup {
    /// Its node names, in the backend's order.
    fn node_names(&self) -> Vec<String> {
        match &self.place {
            Place::Lab { topology, .. } => topology.nodes.iter().map(|n| n.name.clone()).collect(),
            Place::Local { nodes } => (1..=*nodes).map(|i| format!("n{i}")).collect(),
            Place::Kube { nodes } => nodes.clone(),
        }
    }

    /// An empty result of it.
    fn result(&self) -> SetupResult {
        match &self.place {
            Place::Lab { topology, .. } => SetupResult::new(&self.name, &self.source, topology),
            Place::Local { .. } => SetupResult::local(
                &self.name,
                &self.source,
                &crate::run::config::networks(&self.config),
            ),
            // Its networks are described once the cluster's NADs are read.
            Place::Kube { .. } => SetupResult::described(&self.name, &self.source, Vec::new()),
        }
    }
}

/// How long a bench takes, said before anything is built: per setup, each path (client node →
/// responder node, per network; every node counted as a client node, so an upper bound) runs
/// its tests of `--duration` one after another, each with [`START_ALLOWANCE`], and with the
/// references iperf3 (two runs of whole seconds); each setup adds the loopback comparison (four
/// tests) and [`SETUP_ALLOWANCE`] for building its lab and starting its agents. On the kube
/// backend each path also starts a client pod ([`POD_START_ALLOWANCE`]), and there are no
/// references to run (they are not in multinet's image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Paths, all setups.
    pub paths: usize,
    /// Tests per path (iperf3 not counted).
    pub tests_per_path: usize,
    /// Whether the references are measured.
    pub references: bool,
    /// The bench's time in all.
    pub total: Duration,
}

/// What a test process takes besides its duration in the estimate (start, connects, the last
/// answer); measured at 0.1–0.2 s with a debug build on a loaded 2-core machine.
pub const START_ALLOWANCE: Duration = Duration::from_millis(250);
/// What a setup takes besides its tests in the estimate: its lab built and removed, its
/// agents started (5–10 s for three nodes).
pub const SETUP_ALLOWANCE: Duration = Duration::from_secs(20);
/// What a kube bench's client pod takes to start besides its tests in the estimate: created,
/// scheduled, its sandbox made (CNI ADD), its container started, its log read and the pod
/// deleted (5–10 s on a cluster).
pub const POD_START_ALLOWANCE: Duration = Duration::from_secs(10);

impl Estimate {
    /// The estimate of a kube bench of `config` on `nodes` (those the cluster's preflight
    /// planned), made before anything is created.
    pub(crate) fn of_nodes(
        nodes: &[String],
        config: &multinet_proto::config::RunConfig,
        request: &NetworkBenchRequest,
    ) -> Self {
        let setup = Setup {
            name: String::new(),
            source: String::new(),
            place: Place::Kube {
                nodes: nodes.to_vec(),
            },
            config: config.clone(),
        };
        Self::of(std::slice::from_ref(&setup), request)
    }

    fn of(setups: &[Setup], request: &NetworkBenchRequest) -> Self {
        let tests_per_path = path_tests(request.streams).len();
        // The kube backend measures no reference (not in multinet's image): said, not timed.
        let references = request.references && request.backend != BenchBackend::Kube;
        let iperf3 = if references {
            2 * Duration::from_secs(request.duration.as_secs_f64().ceil().max(1.0) as u64)
        } else {
            Duration::ZERO
        };
        let test = request.duration + START_ALLOWANCE;
        let pod_start = if request.backend == BenchBackend::Kube {
            POD_START_ALLOWANCE
        } else {
            Duration::ZERO
        };
        let per_path = test * tests_per_path as u32 + iperf3 + pod_start;
        let per_setup = SETUP_ALLOWANCE + if references { test * 4 } else { Duration::ZERO };
        let mut paths = 0;
        let mut total = Duration::ZERO;
        for setup in setups {
            let nodes = setup.node_names();
            let networks = crate::run::config::networks(&setup.config);
            // At most: every node a responder on every network.
            let these = if setup.config.mesh {
                let responders: Vec<(String, Vec<CephNetwork>)> = nodes
                    .iter()
                    .map(|n| (n.clone(), networks.clone()))
                    .collect();
                let mesh = Targeting::mesh(&nodes, &responders, setup.config.mesh_peers);
                networks.iter().map(|n| mesh.covered(*n).len()).sum()
            } else {
                nodes.len() * networks.len()
            };
            paths += these;
            total += per_path * these as u32 + per_setup;
        }
        Self {
            paths,
            tests_per_path,
            references,
            total,
        }
    }

    /// One line: paths × tests × duration, the total.
    pub fn said(&self, duration: Duration) -> String {
        format!(
            "{} path(s) × {} test(s) × {:.1}s{}, with starting and building: about {}",
            self.paths,
            self.tests_per_path,
            duration.as_secs_f64(),
            if self.references {
                " and iperf3 both ways per path, the nginx comparison"
            } else {
                ""
            },
            minutes(self.total)
        )
    }
}

/// `12m30s`.
fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// Runs the bench: every setup checked first (a bad file refuses the whole bench before any
/// lab is built), then each built, measured and removed in turn.
///
/// # Errors
///
/// [`Error`]: invalid input, a lab that could not be built or whose server did not start, a
/// signal.
pub fn bench(request: &NetworkBenchRequest, say: Say<'_>) -> Result<NetworkBenchReport, Error> {
    match request.backend {
        BenchBackend::Lab => {
            crate::lab::available().map_err(|why| Error::Usage(format!("bench network: {why}")))?;
            if !request.topologies.is_empty() && request.existing_lab.is_some() {
                return Err(Error::Usage(
                    "-f and --lab do not go together: benchmark a topology file or a lab that is up"
                        .into(),
                ));
            }
            if request.nodes.is_some() {
                return Err(Error::Usage(
                    "--nodes applies to --backend local only: a lab's topology says how many nodes it has"
                        .into(),
                ));
            }
        }
        BenchBackend::Local => {
            if !request.topologies.is_empty() || request.existing_lab.is_some() {
                return Err(Error::Usage(
                    "-f and --lab name a lab: they do not go with --backend local, whose nodes are --nodes"
                        .into(),
                ));
            }
        }
        BenchBackend::Kube => {
            if !request.topologies.is_empty() || request.existing_lab.is_some() {
                return Err(Error::Usage(
                    "-f and --lab name a lab: they do not go with --backend kube, whose nodes are the cluster's"
                        .into(),
                ));
            }
            if request.nodes.is_some() {
                return Err(Error::Usage(
                    "--nodes applies to --backend local only: a kube bench uses the cluster's nodes (the run configuration's node types)"
                        .into(),
                ));
            }
        }
    }
    if request.max_time.is_zero() {
        return Err(Error::Usage("--max-time: must be more than 0".into()));
    }
    multinet_agent::install_crypto_provider();
    if request.backend == BenchBackend::Kube {
        return kube::bench(request, say);
    }
    let setups = check_setups(request, say)?;
    let estimate = Estimate::of(&setups, request);
    if estimate.total > request.max_time {
        return Err(Error::Usage(format!(
            "--max-time {}: {}; raise --max-time, shorten --duration, or take fewer peers (--mesh-peers K)",
            minutes(request.max_time),
            estimate.said(request.duration)
        )));
    }
    say(Notice::Note(format!(
        "bench: {}",
        estimate.said(request.duration)
    )));
    let began = Instant::now();
    let mut report = NetworkBenchReport::new(request);
    report.estimated_ms = estimate.total.as_millis() as u64;
    report.references = reference::Tools::find();
    for setup in setups {
        let name = setup.name.clone();
        say(Notice::Info(format!("bench {name}: {}", setup.source)));
        let empty = setup.result();
        match bench_setup(setup, request, &report.references, say) {
            Ok(result) => report.setups.push(result),
            // A setup this machine cannot build (a kernel without ipvlan) or whose server
            // did not start is said in the report; the other setups are still measured.
            Err(e @ Error::Failed { .. }) => {
                let mut result = empty;
                result.error = Some(chain(&e));
                say(Notice::Note(format!("bench {name}: {}", chain(&e))));
                report.setups.push(result);
            }
            Err(e) => return Err(e),
        }
    }
    report.elapsed_ms = began.elapsed().as_millis() as u64;
    Ok(report)
}

/// Reads and checks every topology (or opens the lab that is up).
fn check_setups(request: &NetworkBenchRequest, say: Say<'_>) -> Result<Vec<Setup>, Error> {
    let mut problems = Problems::default();
    let mut setups = Vec::new();
    let overrides = ConfigRequest {
        mesh: request.mesh,
        mesh_peers: request.mesh_peers,
        ..ConfigRequest::default()
    };
    if request.backend == BenchBackend::Local {
        let nodes = request
            .nodes
            .unwrap_or(crate::run::config::DEFAULT_LOCAL_NODES);
        let config = crate::run::config::resolve(&overrides, &mut problems)
            .ok_or_else(|| Error::Invalid(problems.clone()))?;
        setups.push(Setup {
            name: "local".into(),
            source: format!("the local backend, {nodes} node(s) on loopback"),
            place: Place::Local { nodes },
            config,
        });
        return Ok(setups);
    }
    if let Some(name) = &request.existing_lab {
        let lab = Lab::open(name).map_err(|e| Error::Usage(chain(&e)))?;
        let config = config_for(&lab.topology, &overrides, &mut problems)?;
        setups.push(Setup {
            name: name.clone(),
            source: format!("lab {name}, up"),
            place: Place::Lab {
                topology: Box::new(lab.topology),
                text: None,
            },
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
                let config = config_for(&topology, &overrides, &mut problems)?;
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
                    place: Place::Lab {
                        topology: Box::new(topology),
                        text: Some(text),
                    },
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

/// The run configuration of a lab setup: the topology's, with `--mesh` and `--mesh-peers`.
fn config_for(
    topology: &LabTopology,
    overrides: &ConfigRequest,
    problems: &mut Problems,
) -> Result<multinet_proto::config::RunConfig, Error> {
    let mut own = Problems::default();
    let config = crate::run::config::resolve_for_lab(
        overrides,
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

/// Builds one setup's lab (or starts the local backend), places the server and the client
/// pods as a run does, measures every path, and removes what it built — on every way out.
fn bench_setup(
    setup: Setup,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    say: Say<'_>,
) -> Result<SetupResult, Error> {
    let agent_command = crate::backend::agents::AgentProcesses::default_agent_command()
        .map_err(|e| failed("", e))?;
    let mut result = setup.result();
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
    let measured = match setup.place {
        // Benchmarked by its coordinator Job ([`kube`]), never as a setup here.
        Place::Kube { .. } => Err(Error::Usage(
            "a kube setup is benchmarked in its cluster".into(),
        )),
        Place::Local { nodes } => {
            let backend = LocalBackend::new(nodes, agent_command, None);
            let what = "the local backend's agents".to_string();
            on_site(backend, &settings, request, tools, &mut result, &what, say)
        }
        Place::Lab { topology, text } => {
            let (lab, keep) = match text {
                Some(text) => {
                    for notice in Lab::notices(&topology) {
                        say(Notice::Info(format!("lab: {notice}")));
                    }
                    let lab = crate::run::lab_up_interruptible((*topology).clone(), text, say)
                        .map_err(|e| match e {
                            crate::run::Error::Interrupted(signal) => Error::Interrupted(signal),
                            other => failed("building the lab", other),
                        })?;
                    (lab, Keep::Nothing)
                }
                None => (
                    Lab::open(&topology.name).map_err(|e| failed("opening the lab", e))?,
                    Keep::Lab,
                ),
            };
            let backend = LabBackend::new(lab, agent_command, Vec::new(), keep);
            let what = format!(
                "lab {}; `multinet lab down {}` removes what is left",
                topology.name, topology.name
            );
            on_site(backend, &settings, request, tools, &mut result, &what, say)
        }
    };
    measured.map(|()| result)
}

/// Places and measures on `backend` (its control plane, the supervisor, the bench), then
/// cleans up whatever happened; `what` names what a failed cleanup leaves.
fn on_site<S: BenchSite>(
    backend: S,
    settings: &RunSettings,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    result: &mut SetupResult,
    what: &str,
    say: Say<'_>,
) -> Result<(), Error> {
    bench_system().block_on(site(backend, settings, request, tools, result, what, say))
}

/// The actor system a bench's supervisor runs on (two worker threads).
pub(crate) fn bench_system() -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(|| {
        multinet_agent::entry::multi_threaded(2)
            .unwrap_or_else(|e| panic!("cannot build the tokio runtime: {e}"))
    })
}

/// [`on_site`] on the running system: places and measures on `backend`, then cleans up
/// whatever happened.
pub(crate) async fn site<S: BenchSite>(
    backend: S,
    settings: &RunSettings,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    result: &mut SetupResult,
    what: &str,
    say: Say<'_>,
) -> Result<(), Error> {
    {
        let mut backend = backend;
        let socket = backend.control_socket();
        let run_root = backend.run_root();
        // A backend whose objects carry the run id (kube: its agents' settings, their
        // names) gives it; the others' is made here.
        let run_id = backend.run_id();
        let mut supervisor = match socket.map_err(BoxError::from).and_then(|s| {
            match run_id {
                Some(id) => RunSupervisor::prepare_with_id(s, &run_root, id),
                None => RunSupervisor::prepare(s, &run_root),
            }
            .map_err(Into::into)
        }) {
            Ok(supervisor) => supervisor,
            Err(e) => {
                let _ = backend.cleanup().await;
                return Err(failed("", e));
            }
        };
        let outcome = tokio::select! {
            r = measure(&mut supervisor, &mut backend, settings, request, tools, result, say) => r,
            signal = crate::signals::shutdown_signal() => Err(Error::Interrupted(signal)),
        };
        if let Err(e) = supervisor.cleanup(&mut backend).await {
            say(Notice::Note(format!("cleaning up {what}: {}", chain(&e))));
        }
        outcome
    }
}

/// A client pod of the bench: no agent, only addresses (and a namespace to run its tests in).
#[derive(Debug, Clone)]
pub(crate) struct ClientPod {
    /// Its network namespace; `None`: this machine's own (the local backend).
    ns: Option<String>,
    /// Its addresses, one per network it is attached to.
    addresses: Vec<NetworkAddress>,
    /// The network it could not get an address on, with the reason.
    failed: Option<(CephNetwork, String)>,
}

impl From<PodNet> for ClientPod {
    fn from(pod: PodNet) -> Self {
        Self {
            ns: Some(pod.ns),
            addresses: pod.addresses,
            failed: pod.failed,
        }
    }
}

/// What the bench needs of a backend beyond a run's placement.
#[allow(async_fn_in_trait)] // used with the three concrete backends only
pub(crate) trait BenchSite: Scheduler {
    /// One client pod per `(node, networks)`, in that order.
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<ClientPod>, BoxError>;
    /// The pid of pod `pod`'s agent (its CPU time), while it runs.
    fn agent_pid(&self, pod: &str) -> Option<i32>;
    /// The network namespace of pod `pod`; `None` on the local backend (no namespace).
    fn pod_namespace(&self, pod: &str) -> Option<String>;
    /// Where the loopback comparison runs beside server pod `pod`: its namespace and that
    /// namespace's 127.0.0.1, or (local) no namespace and a loopback address of the run's own
    /// block, so that nothing else on the machine is met.
    fn loopback(&mut self, pod: &str) -> Option<(Option<String>, IpAddr)>;
    /// Why the references (iperf3, the nginx comparison) cannot be measured here at all;
    /// `None` where they can (each tool may still be missing).
    fn no_references(&self) -> Option<&'static str> {
        None
    }
    /// Every test on one path (a process per test in the client pod's namespace, by default).
    async fn measure_path(
        &mut self,
        bench: &Bench<'_>,
        ends: PathEnds<'_>,
        tools: &reference::Tools,
        say: Say<'_>,
    ) -> PathResult {
        measure_path(bench, ends, tools, say).await
    }
}

impl BenchSite for LabBackend {
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<ClientPod>, BoxError> {
        let placed = self.place_without_agents(pods).await?;
        Ok(placed.into_iter().map(ClientPod::from).collect())
    }

    fn agent_pid(&self, pod: &str) -> Option<i32> {
        LabBackend::agent_pid(self, pod)
    }

    fn pod_namespace(&self, pod: &str) -> Option<String> {
        LabBackend::pod_namespace(self, pod).map(str::to_string)
    }

    fn loopback(&mut self, pod: &str) -> Option<(Option<String>, IpAddr)> {
        let ns = LabBackend::pod_namespace(self, pod)?.to_string();
        Some((Some(ns), IpAddr::from([127, 0, 0, 1])))
    }
}

impl BenchSite for LocalBackend {
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<ClientPod>, BoxError> {
        Ok(pods
            .iter()
            .map(|(_, networks)| ClientPod {
                ns: None,
                addresses: self.pod_addresses(networks),
                failed: None,
            })
            .collect())
    }

    fn agent_pid(&self, pod: &str) -> Option<i32> {
        LocalBackend::agent_pid(self, pod)
    }

    fn pod_namespace(&self, _pod: &str) -> Option<String> {
        None
    }

    fn loopback(&mut self, _pod: &str) -> Option<(Option<String>, IpAddr)> {
        let address = self.pod_addresses(&[CephNetwork::Public]).first()?.addr;
        Some((None, address))
    }
}

/// The command prefix that runs a program in namespace `ns`; nothing for `None` (this
/// machine's own namespace, the local backend).
pub(crate) fn exec_in(ns: Option<&str>) -> Vec<String> {
    ns.map(netns_exec).unwrap_or_default()
}

/// What a setup's tests share.
pub(crate) struct Bench<'a> {
    /// `multinet bench client` (this binary).
    client_command: Vec<String>,
    /// The client's TLS files (the run CA as its trust anchor).
    tls: multinet_proto::assignment::TlsFiles,
    pub(crate) request: &'a NetworkBenchRequest,
}

/// The server (every responder) placed, the client pods placed, every path measured into
/// `result`.
async fn measure<S: BenchSite>(
    supervisor: &mut RunSupervisor,
    backend: &mut S,
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
    result.mesh = MeshCoverage::of(&placed.targeting, &placed.responders);
    let pods = backend
        .place_clients(placed.client_networks.clone())
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
        request,
    };
    for network in &settings.networks {
        let mut paths = Vec::new();
        for ((node, networks), pod) in placed.client_networks.iter().zip(&pods) {
            if !networks.contains(network) {
                continue;
            }
            // The single server's node, or the node's mesh peers (its own first).
            let targets = placed
                .targeting
                .peers_of(*network, node)
                .map_or_else(|| vec![placed.server_node.clone()], <[String]>::to_vec);
            for target in &targets {
                let Some((server_pod, listener)) = placed.responders.iter().find_map(|(pod, r)| {
                    let listener = r.listeners.iter().find(|l| l.network == *network)?;
                    (r.node == *target).then_some((pod, listener))
                }) else {
                    // A mesh goes on without a responder that is gone; its paths say why.
                    if let Some(why) = placed.gone.get(target) {
                        paths.push(PathResult::unmeasured(
                            node,
                            target,
                            format!("the responder on {target} is gone: {why}"),
                        ));
                    }
                    continue;
                };
                let server_ns = backend.pod_namespace(server_pod);
                let server_pid = backend.agent_pid(server_pod);
                let path = backend
                    .measure_path(
                        &bench,
                        PathEnds {
                            node,
                            server_node: target,
                            network: *network,
                            pod,
                            listener,
                            server_ns: server_ns.as_deref(),
                            server_pid,
                        },
                        tools,
                        say,
                    )
                    .await;
                paths.push(path);
            }
        }
        result.push_network(*network, paths);
    }
    let server_pod = placed
        .responders
        .iter()
        .find(|(_, r)| r.node == placed.server_node)
        .map(|(pod, _)| pod.clone());
    if request.references
        && let Some(why) = backend.no_references()
    {
        result.loopback = Some(reference::LoopbackComparison {
            error: Some(why.to_string()),
            ..reference::LoopbackComparison::default()
        });
    } else if request.references
        && let Some((ns, address)) = server_pod.and_then(|pod| backend.loopback(&pod))
    {
        let server_tls = supervisor
            .pki()
            .write_agent_files(&run_dir, "bench-loopback-server", true)
            .map_err(|e| failed("the loopback probe server's certificate", e))?;
        let loopback = reference::Loopback {
            program: &bench.client_command[0],
            ns: ns.as_deref(),
            address,
            dir: &run_dir,
            server_tls: &server_tls,
        };
        result.loopback =
            Some(reference::server_against_nginx(&loopback, request, tools, say).await);
    }
    Ok(())
}

/// The two ends of a path.
pub(crate) struct PathEnds<'a> {
    pub(crate) node: &'a str,
    pub(crate) server_node: &'a str,
    pub(crate) network: CephNetwork,
    pod: &'a ClientPod,
    pub(crate) listener: &'a Listener,
    /// The server pod's namespace (`None`: the local backend's, this machine's).
    server_ns: Option<&'a str>,
    /// The server agent's pid (its CPU time).
    server_pid: Option<i32>,
}

/// A path's tests in the order run: download and upload with one and `streams` connections
/// (one only when `streams` is 1), request/response, a connection per request, a TLS
/// handshake per request.
pub fn path_tests(streams: u32) -> Vec<(LoadKind, u32)> {
    let mut tests = vec![(LoadKind::Download, 1)];
    if streams > 1 {
        tests.push((LoadKind::Download, streams));
    }
    tests.push((LoadKind::Upload, 1));
    if streams > 1 {
        tests.push((LoadKind::Upload, streams));
    }
    tests.extend([
        (LoadKind::RequestResponse, 1),
        (LoadKind::ConnectRequest, 1),
        (LoadKind::TlsHandshakeRequest, 1),
    ]);
    tests
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
    for (kind, n) in path_tests(bench.request.streams) {
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
            ends.pod.ns.as_deref(),
            ends.server_pid,
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
    if bench.request.references {
        path.iperf3 = Some(
            reference::iperf3_path(
                tools,
                ends.server_ns,
                ends.pod.ns.as_deref(),
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

/// Runs one test: the client process in `ns` (`None`: this machine's namespace, bound to the
/// client's loopback address), bounded by the duration and [`TEST_PATIENCE`]; the server
/// agent's (`server_pid`) CPU time read before and after.
async fn run_test(
    bench: &Bench<'_>,
    ns: Option<&str>,
    server_pid: Option<i32>,
    args: ClientArgs<'_>,
) -> TestResult {
    let mut argv = exec_in(ns);
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
    let server_before = server_pid.and_then(|pid| multinet_agent::load::cpu_seconds(Some(pid)));
    let ran = run_json::<LoadOutcome>(&argv, bench.request.duration + TEST_PATIENCE).await;
    let server_after = server_pid.and_then(|pid| multinet_agent::load::cpu_seconds(Some(pid)));
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
/// namespace, or on the local backend in this machine's).
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

/// Where a path client's connections leave from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSource {
    /// This address (`None`: the kernel's choice), bound to this interface.
    Address {
        /// The source address.
        source: Option<IpAddr>,
        /// The interface.
        device: Option<String>,
    },
    /// The pod's address on `network`, as Multus' network-status annotation (mounted through
    /// the downward API at `status_file`) gives it for the interface named after the network
    /// — as a kube agent learns its addresses.
    Network {
        /// The network under test.
        network: CephNetwork,
        /// The downward-API file.
        status_file: PathBuf,
    },
}

/// A path's tests as one client process runs them, one after another (a kube bench's client
/// pod, `multinet bench client --tests …`).
#[derive(Debug, Clone)]
pub struct PathClientRequest {
    /// The tests, in order.
    pub tests: Vec<(LoadKind, u32)>,
    /// The server's HTTP listener.
    pub target: std::net::SocketAddr,
    /// Its HTTPS listener (the TLS test).
    pub tls_target: std::net::SocketAddr,
    /// Where connections leave from.
    pub source: ClientSource,
    /// Each test's duration.
    pub duration: Duration,
    /// Answer size of the request tests.
    pub answer_bytes: u64,
    /// The run's TLS files (the TLS test trusts its CA).
    pub tls: Option<multinet_proto::assignment::TlsFiles>,
    /// Read the server's CPU seconds (`GET /cpu`) before and after each test.
    pub server_cpu: bool,
}

/// The first line a path client prints: the address its connections leave from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientAddressLine {
    /// The client's address on the network under test.
    pub client_address: IpAddr,
}

/// How long a path client waits for Multus' network-status to reach its downward-API file.
const STATUS_PATIENCE: Duration = Duration::from_secs(30);

/// The pod's address on `network` from the network-status file (waited for while empty,
/// bounded), of `target`'s family where it has several.
fn address_from_status(
    network: CephNetwork,
    file: &Path,
    target: std::net::SocketAddr,
) -> Result<IpAddr, String> {
    let since = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        if !text.trim().is_empty() {
            break text;
        }
        if since.elapsed() >= STATUS_PATIENCE {
            return Err(format!(
                "{} stayed empty for {}s: Multus wrote no network-status annotation on this pod",
                file.display(),
                STATUS_PATIENCE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let status = multinet_proto::multus::status::parse_network_status(&text)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let attached = multinet_proto::multus::status::find_by_interface(&status, network.key())
        .ok_or_else(|| {
            format!(
                "{}: no interface named {:?} (the {} network's) is attached",
                file.display(),
                network.key(),
                network.key()
            )
        })?;
    let addresses = attached.addresses();
    addresses
        .iter()
        .find(|a| a.is_ipv4() == target.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| {
            format!(
                "{}: interface {:?} has no address",
                file.display(),
                network.key()
            )
        })
}

/// Runs a path's tests one after another in this process (on one thread), giving `out` one
/// JSON line each: first a [`ClientAddressLine`], then one [`TestResult`] per test, a failed
/// test said in its `failure` and the next one run.
///
/// # Errors
///
/// The source address cannot be found, the CA cannot be read, or the runtime not built.
pub fn path_client(request: &PathClientRequest, out: &mut dyn FnMut(String)) -> Result<(), String> {
    multinet_agent::install_crypto_provider();
    let (source, device) = match &request.source {
        ClientSource::Address { source, device } => (*source, device.clone()),
        ClientSource::Network {
            network,
            status_file,
        } => (
            Some(address_from_status(*network, status_file, request.target)?),
            None,
        ),
    };
    if let Some(address) = source {
        out(serde_json::to_string(&ClientAddressLine {
            client_address: address,
        })
        .map_err(|e| e.to_string())?);
    }
    let tls = match &request.tls {
        Some(files) => Some(
            multinet_agent::tls::RunTls::load(files)
                .and_then(|t| t.probe_client_config())
                .map_err(|e| multinet_agent::chain(&e))?,
        ),
        None => None,
    };
    let runtime = multinet_agent::entry::single_threaded().map_err(|e| e.to_string())?;
    let server_cpu = || {
        request.server_cpu.then(|| {
            runtime
                .block_on(multinet_agent::load::server_cpu_seconds(
                    request.target,
                    source,
                    device.as_deref(),
                ))
                // Said in the pod's log; the test's server CPU is then left empty.
                .map_err(|e| eprintln!("the server's CPU time (GET /cpu): {e}"))
                .ok()
        })?
    };
    for (kind, streams) in &request.tests {
        let plan = multinet_agent::load::LoadPlan {
            kind: *kind,
            target: if *kind == LoadKind::TlsHandshakeRequest {
                request.tls_target
            } else {
                request.target
            },
            source,
            device: device.clone(),
            streams: *streams,
            duration: request.duration,
            answer_bytes: request.answer_bytes,
            tls: tls.clone(),
        };
        let before = server_cpu();
        let ran = runtime.block_on(multinet_agent::load::run(&plan));
        let after = server_cpu();
        let (outcome, failure) = match ran {
            Ok(outcome) => (Some(outcome), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let result = TestResult {
            kind: *kind,
            streams: *streams,
            outcome,
            server_cpu_seconds: before.zip(after).map(|(b, a)| a - b),
            failure,
        };
        out(serde_json::to_string(&result).map_err(|e| e.to_string())?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mesh: bool, mesh_peers: Option<u32>, nodes: u32) -> NetworkBenchRequest {
        NetworkBenchRequest {
            backend: BenchBackend::Local,
            nodes: Some(nodes),
            mesh,
            mesh_peers,
            max_time: DEFAULT_MAX_TIME,
            topologies: Vec::new(),
            existing_lab: None,
            duration: Duration::from_secs(1),
            streams: 4,
            references: false,
            kube: KubeBench::default(),
        }
    }

    fn quiet(_: Notice) {}

    #[test]
    fn the_estimate_counts_the_pairs_a_mesh_run_covers() {
        let paths = |mesh, peers, nodes| {
            let request = request(mesh, peers, nodes);
            let setups = check_setups(&request, &quiet).expect("valid");
            Estimate::of(&setups, &request)
        };
        // Two networks: 3 paths each to the one server, 3 × 3 in a full mesh, 3 × (own + 1).
        assert_eq!(paths(false, None, 3).paths, 6);
        assert_eq!(paths(true, None, 3).paths, 18);
        assert_eq!(
            paths(false, Some(1), 3).paths,
            12,
            "--mesh-peers implies --mesh"
        );
        let e = paths(true, None, 3);
        assert_eq!(e.tests_per_path, 7);
        // 18 paths × 7 tests × (1 s + 0.25 s), and one setup's allowance.
        assert_eq!(
            e.total,
            Duration::from_millis(18 * 7 * 1250) + SETUP_ALLOWANCE
        );
        assert!(
            e.said(Duration::from_secs(1))
                .starts_with("18 path(s) × 7 test(s) × 1.0s")
        );
    }

    /// On kube every path starts a client pod, and no reference runs (not in the image): the
    /// estimate of three nodes and two networks, 7 tests of 0.5 s each per path.
    #[test]
    fn the_kube_estimate_adds_a_pod_start_per_path_and_no_references() {
        let mut request = request(false, None, 3);
        request.backend = BenchBackend::Kube;
        request.nodes = None;
        request.duration = Duration::from_millis(500);
        request.references = true;
        let nodes: Vec<String> = ["k1", "k2", "k3"].map(String::from).to_vec();
        let config = multinet_proto::config::RunConfig {
            public_network: "public-net".into(),
            cluster_network: "cluster-net".into(),
            ..multinet_proto::config::RunConfig::default()
        };
        let e = Estimate::of_nodes(&nodes, &config, &request);
        assert_eq!(e.paths, 6);
        assert!(!e.references, "said skipped, not timed");
        assert_eq!(
            e.total,
            (Duration::from_millis(7 * 750) + POD_START_ALLOWANCE) * 6 + SETUP_ALLOWANCE
        );
        // A full mesh: 9 pairs per network.
        let mesh = multinet_proto::config::RunConfig {
            mesh: true,
            ..config
        };
        let e = Estimate::of_nodes(&nodes, &mesh, &request);
        assert_eq!(e.paths, 18);
        assert_eq!(
            e.total,
            (Duration::from_millis(7 * 750) + POD_START_ALLOWANCE) * 18 + SETUP_ALLOWANCE
        );
    }

    #[test]
    fn kube_refuses_lab_and_local_flags_before_anything_is_made() {
        for (what, change) in [
            (
                "--nodes",
                Box::new(|r: &mut NetworkBenchRequest| r.nodes = Some(2))
                    as Box<dyn Fn(&mut NetworkBenchRequest)>,
            ),
            (
                "-f",
                Box::new(|r: &mut NetworkBenchRequest| r.topologies = vec!["x.yaml".into()]),
            ),
            (
                "--lab",
                Box::new(|r: &mut NetworkBenchRequest| r.existing_lab = Some("l".into())),
            ),
        ] {
            let mut r = request(false, None, 3);
            r.backend = BenchBackend::Kube;
            r.nodes = None;
            change(&mut r);
            let error = bench(&r, &quiet).expect_err("refused");
            assert_eq!(error.class(), Class::Invalid, "{what}");
            assert!(error.to_string().contains("--backend"), "{what}: {error}");
        }
    }

    /// A kube client pod's source: its address on the interface named after the network under
    /// test, of the target's family, from Multus' network-status; what is missing is said.
    #[test]
    fn the_client_source_is_read_from_network_status_by_network() {
        let dir = std::env::temp_dir().join(format!("multinet-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch");
        let file = dir.join("network-status");
        std::fs::write(
            &file,
            r#"[{"name": "k8s-pod-network", "ips": ["10.244.1.7"], "default": true},
                {"name": "ns/public-net", "interface": "public", "ips": ["fd00::5", "198.18.36.5"]},
                {"name": "ns/cluster-net", "interface": "cluster", "ips": []}]"#,
        )
        .expect("network-status");
        let v4: std::net::SocketAddr = "198.18.36.1:8080".parse().expect("address");
        let v6: std::net::SocketAddr = "[fd00::1]:8080".parse().expect("address");
        let found = |network, target| address_from_status(network, &file, target);
        assert_eq!(
            found(CephNetwork::Public, v4),
            Ok("198.18.36.5".parse().expect("ip"))
        );
        assert_eq!(
            found(CephNetwork::Public, v6),
            Ok("fd00::5".parse().expect("ip"))
        );
        let none = found(CephNetwork::Cluster, v4).expect_err("no address");
        assert!(
            none.contains("interface \"cluster\" has no address"),
            "{none}"
        );
        std::fs::write(
            &file,
            r#"[{"name": "k8s-pod-network", "ips": ["10.244.1.7"]}]"#,
        )
        .expect("network-status");
        let missing = found(CephNetwork::Public, v4).expect_err("not attached");
        assert!(
            missing.contains("no interface named \"public\""),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bench_longer_than_max_time_is_refused_naming_the_flag() {
        let mut long = request(true, None, 64);
        long.duration = Duration::from_secs(600);
        let error = bench(&long, &quiet).expect_err("refused");
        assert_eq!(error.class(), Class::Invalid);
        let text = error.to_string();
        assert!(
            text.contains("--max-time 60m") && text.contains("8192 path(s)"),
            "{text}"
        );
        let mut zero = request(false, None, 2);
        zero.max_time = Duration::ZERO;
        assert!(
            bench(&zero, &quiet)
                .expect_err("refused")
                .to_string()
                .contains("--max-time")
        );
        let mut lab_flags = request(false, None, 2);
        lab_flags.topologies = vec!["x.yaml".into()];
        let error = bench(&lab_flags, &quiet).expect_err("refused");
        assert!(error.to_string().contains("--backend local"), "{error}");
    }

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
