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
//! * [`reference`] — iperf3, nginx and wrk, started in the lab's pod namespaces.
//! * [`kube`] — the kube backend: the Job from outside, the client pods from inside.
//!
//! Knows nothing of clap: the command line hands in a [`NetworkBenchRequest`].
//!
//! [`RunSupervisor::place_server_only`]: crate::supervisor::RunSupervisor::place_server_only
//! [`LabBackend::place_without_agents`]: crate::lab::backend::LabBackend::place_without_agents
//! [`LocalBackend`]: crate::backend::local::LocalBackend
pub mod kube;
pub mod reference;
pub mod report;

// The bench's parts, private to it (what is public is re-exported below).
mod client;
mod estimate;
mod machine;
mod process;
mod setup;
mod site;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use multinet_proto::field::Problems;

use crate::exit::{Class, Classify, chain};
use crate::run::{ConfigRequest, Notice, Say};
use crate::signals::Signal;

pub use client::{
    ClientAddressLine, ClientRequest, ClientSource, PathClientRequest, client, path_client,
};
pub use estimate::{Estimate, POD_START_ALLOWANCE, SETUP_ALLOWANCE, START_ALLOWANCE};
pub use report::{MeshCoverage, NetworkBenchReport, PathResult, SetupResult, TestResult};
pub use site::path_tests;

use setup::{bench_setup, check_setups};

/// How `bench client` begins a line of its standard error that is a note on the way, not why
/// it failed (a client pod's log mixes both; `kube::read_client_log` reads the last other line
/// as its last words).
pub(crate) const NOTE: &str = "note: ";

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
    estimate.within(request, say)?;
    // This machine's other work before anything starts: the lab's figures swing with it.
    let busy_before = machine::busy_share(Duration::from_secs(1));
    let began = Instant::now();
    let mut report = NetworkBenchReport::new(request);
    report.machine_busy_before_percent = busy_before.map(|b| (1000.0 * b).round() / 10.0);
    report.estimated_ms = estimate.total.as_millis() as u64;
    report.references = if request.references {
        reference::Tools::find()
    } else {
        reference::Tools::not_run(NOT_RUN)
    };
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

/// Why a bench has no references when asked for none.
pub(crate) const NOT_RUN: &str = "--no-references";

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn request(mesh: bool, mesh_peers: Option<u32>, nodes: u32) -> NetworkBenchRequest {
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

    pub(super) fn quiet(_: Notice) {}

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
}
