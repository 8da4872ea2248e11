//! `multinet bench network --backend kube`: the bench on a Kubernetes cluster.
//!
//! As for `multinet run --backend kube`, the agents must reach the coordinator's control plane
//! over the pod network, so the bench runs in the cluster as a coordinator Job (same image):
//!
//! * outside ([`bench`] without `--in-cluster-run`): the run configuration checked as a run's
//!   (`-c`, `-n`, the NADs, the service account), the cluster's preflight (reading only), the
//!   estimate with a pod start per path and `--max-time` — all before anything is created; then
//!   the run's owner and the bench's Job ([`crate::backend::kube::objects::KubeRun::bench_job`]), its log streamed to stderr,
//!   the JSON report it stored read back, and the run removed (also on a signal);
//! * inside (the Job, `--in-cluster-run ID`): the server (every responder with `--mesh`)
//!   placed by the [`KubeBackend`] as a run places it, then per path one client pod
//!   ([`KubeBackend::run_bench_client`]: `multinet bench client --tests …`, one JSON line per
//!   test), one at a time; its log read ([`read_client_log`]) and the pod deleted.
//!
//! iperf3, nginx and wrk are not in multinet's image: the references are reported skipped, with
//! [`NOT_IN_IMAGE`] as the reason, never silently.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use multinet_agent::load::LoadKind;
use multinet_proto::config::RunConfig;
use multinet_proto::field::Problems;
use multinet_proto::network::CephNetwork;

use super::reference::{Iperf3, Tool, Tools};
use super::report::{NetworkBenchReport, PathResult, SetupResult, TestResult};
use super::site::{Bench, BenchSite, PathEnds};
use super::{
    ANSWER_BYTES, ClientAddressLine, Error, Estimate, NetworkBenchRequest, TEST_PATIENCE, failed,
    path_tests,
};
use crate::backend::kube::backend::{KubeBackend, KubeBackendSpec, OwnerRole};
use crate::backend::kube::names::{Owner, RunNames};
use crate::backend::kube::objects::paths;
use crate::backend::kube::preflight::{Preflight, Problem, Purpose, Who, preflight};
use crate::backend::kube::{client, outside};
use crate::exit::chain;
use crate::run::kube::{kube_run, owner_of, selection_list};
use crate::run::{ConfigRequest, Notice, Say};

/// Why the references are not measured on the kube backend.
pub const NOT_IN_IMAGE: &str =
    "iperf3, nginx and wrk are not in multinet's image: no reference measured on the kube backend";

/// The key of the report in the run's report ConfigMap.
pub const REPORT_KEY: &str = "bench.json";

/// Where the Job finds the run configuration the command outside wrote into the owner.
const JOB_CONFIG: &str = "/etc/multinet/config/config.yaml";

/// More time the Job gets than its steps' worst case: the cleanup at its end.
const JOB_MARGIN: Duration = Duration::from_secs(120);

/// The run configuration of a kube bench: the run's sources, with the request's mesh.
fn config_of(request: &NetworkBenchRequest) -> Result<RunConfig, Error> {
    let mut sources = request.kube.config.clone();
    // The Job's configuration is the owner's, as the command outside resolved it.
    if request.kube.cluster.in_cluster_run.is_some() {
        sources = ConfigRequest {
            file: sources.file.or_else(|| Some(JOB_CONFIG.into())),
            ..ConfigRequest::default()
        };
    }
    sources.mesh |= request.mesh;
    sources.mesh_peers = sources.mesh_peers.or(request.mesh_peers);
    let mut problems = Problems::default();
    let config = crate::run::config::resolve_for_kube(&sources, &mut problems)
        .ok_or_else(|| Error::Invalid(problems.clone()))?;
    if crate::run::config::networks(&config).is_empty() {
        return Err(Error::Usage(
            "a kube bench measures a network: name its NAD (--public-network, --cluster-network, or -c)"
                .into(),
        ));
    }
    Ok(config)
}

/// The bench on the kube backend: from outside the cluster (the Job started and its report
/// read back), or as that Job (`--in-cluster-run`).
///
/// # Errors
///
/// [`Error`]: invalid input or a preflight the input fails (exit 22, nothing created), a
/// cluster that cannot run it, a signal.
pub fn bench(request: &NetworkBenchRequest, say: Say<'_>) -> Result<NetworkBenchReport, Error> {
    let config = config_of(request)?;
    match request.kube.cluster.in_cluster_run.clone() {
        Some(id) => in_cluster(request, config, &id, say),
        None => from_outside(request, config, say),
    }
}

/// The preflight's problems as an error: exit 22 when the input is at fault.
fn refused(problems: Vec<Problem>) -> Result<(), Error> {
    if problems.is_empty() {
        return Ok(());
    }
    let invalid = problems.iter().any(|p| matches!(p, Problem::Invalid(_)));
    let lines: Vec<String> = problems
        .into_iter()
        .map(|p| match p {
            Problem::Invalid(text) | Problem::Cluster(text) => text,
        })
        .collect();
    if invalid {
        Err(Error::Usage(lines.join("\n")))
    } else {
        Err(failed("the cluster's preflight", lines.join("\n")))
    }
}

/// The arguments the bench's Job gets beyond its run id, configuration and image.
fn job_args(request: &NetworkBenchRequest) -> Vec<String> {
    let mut args = vec![
        "-o".to_string(),
        "json".into(),
        "--duration".into(),
        format!("{}ms", request.duration.as_millis()),
        "--streams".into(),
        request.streams.to_string(),
        "--max-time".into(),
        format!("{}ms", request.max_time.as_millis()),
    ];
    if !request.references {
        args.push("--no-references".into());
    }
    if request.kube.quiet {
        args.push("-q".into());
    }
    args
}

/// From outside the cluster: checks, estimates, then runs the bench's Job and reads its report.
fn from_outside(
    request: &NetworkBenchRequest,
    config: RunConfig,
    say: Say<'_>,
) -> Result<NetworkBenchReport, Error> {
    let began = Instant::now();
    let runtime = multinet_agent::entry::single_threaded()
        .map_err(|e| failed("cannot start the runtime", e))?;
    let cluster = &request.kube.cluster;
    runtime.block_on(async {
        let client = client::connect(cluster.kubeconfig.as_deref(), cluster.context.as_deref())
            .await
            .map_err(|e| failed("", e))?;
        let (public, network) = config.network_selections(&mut Problems::default());
        let selections = selection_list(&public, &network);
        let (found, problems) = preflight(&client, &config, &selections, Who::Cli, None, Purpose::Bench)
            .await
            .map_err(|e| failed("preflight", e))?;
        refused(problems)?;
        for line in found.left_out.iter().chain(&found.warnings) {
            say(Notice::Note(line.clone()));
        }
        let nodes: Vec<String> = found.nodes.iter().map(|n| n.name.clone()).collect();
        let estimate = Estimate::of_nodes(&nodes, &config, request);
        estimate.within(request, say)?;
        let id = crate::supervisor::new_run_id();
        let ns = config.namespace.clone();
        let image = &cluster.image;
        let placeholder = Owner {
            name: RunNames::new(&id).owner(),
            uid: String::new(),
        };
        let yaml = serde_saphyr::to_string(&config)
            .map_err(|e| failed("the run configuration", e))?;
        let owner = outside::create_owner(
            &client,
            &kube_run(&id, &config, image, &public, &network, placeholder),
            yaml,
        )
        .await
        .map_err(|e| failed("", e))?;
        let run = kube_run(&id, &config, image, &public, &network, owner);
        let deadline = job_deadline(
            &estimate,
            config.resource_timeout.as_std(),
            request.duration,
        );
        let bounds = outside::JobBounds {
            start: config.resource_timeout.as_std(),
            total: deadline,
            status_every: outside::STATUS_EVERY,
        };
        let job = run.bench_job(job_args(request), deadline);
        let mut to_stderr = |line: &str| say(Notice::Line(line.to_string()));
        let outcome = tokio::select! {
            r = outside::run_job(&client, &run, job, bounds, &mut to_stderr) => Ok(r),
            signal = crate::signals::shutdown_signal() => {
                say(Notice::Note(format!("{signal}: removing bench run {id}")));
                Err(signal)
            }
        };
        let report = match outcome {
            Ok(Ok(outcome)) => outcome
                .value(REPORT_KEY)
                .map_err(|e| failed("the bench's Job", e))
                .and_then(|json| {
                    serde_json::from_str::<NetworkBenchReport>(&json)
                        .map_err(|e| failed("the report the bench's Job stored", e))
                }),
            Ok(Err(e)) => Err(failed("the bench's Job", e)),
            Err(signal) => Err(Error::Interrupted(signal)),
        };
        let removed = tokio::select! {
            r = crate::backend::kube::cleanup::cleanup_runs(&client, &ns, Some(&id), config.resource_timeout.as_std()) => {
                r.map_err(|e| chain(&e))
            }
            signal = crate::signals::shutdown_signal() => Err(format!("{signal} while waiting for its objects to go")),
        };
        if let Err(why) = removed {
            say(Notice::Note(format!(
                "bench run {id} may not be fully removed: {why}; `multinet cleanup -n {ns} --run {id}` finishes it"
            )));
        }
        let mut report = report?;
        report.estimated_ms = estimate.total.as_millis() as u64;
        report.elapsed_ms = began.elapsed().as_millis() as u64;
        Ok(report)
    })
}

/// The reference tools on the kube backend: not in the image, said.
fn tools_not_in_image() -> Tools {
    let missing = || Tool {
        path: None,
        missing: Some(NOT_IN_IMAGE.to_string()),
    };
    Tools {
        iperf3: missing(),
        nginx: missing(),
        wrk: missing(),
        taskset: missing(),
        not_run: None,
    }
}

/// The networks of the setup as the report heads them: each selected NAD's CNI plugin and MTU.
fn describe(found: &Preflight, config: &RunConfig) -> Vec<(CephNetwork, String, Option<u32>)> {
    crate::run::config::networks(config)
        .into_iter()
        .map(|network| {
            let nad = found.nads.iter().find(|(n, _)| *n == network);
            let summary = nad.and_then(|(_, nad)| nad.config.as_ref());
            (
                network,
                summary.map_or_else(|| "unknown".to_string(), |c| c.plugin.clone()),
                summary.and_then(|c| c.mtu),
            )
        })
        .collect()
}

/// The bench's coordinator Job: places the server(s) and measures every path with client
/// pods, then stores the JSON report for the command outside.
fn in_cluster(
    request: &NetworkBenchRequest,
    config: RunConfig,
    id: &str,
    say: Say<'_>,
) -> Result<NetworkBenchReport, Error> {
    let began = Instant::now();
    let mut report = NetworkBenchReport::new(request);
    report.references = if request.references {
        tools_not_in_image()
    } else {
        Tools::not_run(super::NOT_RUN)
    };
    let cluster = &request.kube.cluster;
    let (public, network) = config.network_selections(&mut Problems::default());
    let ns = config.namespace.clone();
    super::site::bench_system().block_on(async {
        let client = client::connect(cluster.kubeconfig.as_deref(), cluster.context.as_deref())
            .await
            .map_err(|e| failed("", e))?;
        let selections = selection_list(&public, &network);
        let (found, problems) = preflight(&client, &config, &selections, Who::Coordinator, Some(id), Purpose::Bench)
            .await
            .map_err(|e| failed("preflight", e))?;
        refused(problems)?;
        let pod_ip: IpAddr = std::env::var("POD_IP")
            .ok()
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| Error::Usage("POD_IP is not set to this pod's IP: the bench's Job gives it from the downward API (status.podIP)".into()))?;
        let owner = owner_of(id, &client, &ns)
            .await
            .map_err(|e| failed("the run's owner ConfigMap", e))?;
        let mut result = SetupResult::described(
            "kube",
            &format!("namespace {ns}, {} node(s)", found.nodes.len()),
            describe(&found, &config),
        );
        let mut backend = KubeBackend::new(KubeBackendSpec {
            client: client.clone(),
            run_id: id.to_string(),
            config: config.clone(),
            image: cluster.image.clone(),
            public: public.clone(),
            cluster: network.clone(),
            owner: owner.clone(),
            owner_role: OwnerRole::Outside,
            pod_ip,
            nodes: found.nodes.clone(),
            nads: found.nads.clone(),
            resumable: false,
        });
        backend.watch();
        let settings = super::setup::settings(config.clone());
        let tools = report.references.clone();
        let what = format!("bench run {id}; `multinet cleanup -n {ns} --run {id}` removes what is left");
        match super::site::site(backend, &settings, request, &tools, &mut result, &what, say).await {
            Ok(()) => {}
            Err(e @ Error::Failed { .. }) => {
                result.error = Some(chain(&e));
                say(Notice::Note(format!("bench: {}", chain(&e))));
            }
            Err(e) => return Err(e),
        }
        report.setups.push(result);
        report.elapsed_ms = began.elapsed().as_millis() as u64;
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| failed("the report", e))?;
        let code = if report.any_setup_failed() {
            crate::exit::ERROR
        } else {
            crate::exit::SUCCESS
        };
        let run = kube_run(id, &config, &cluster.image, &public, &network, owner);
        let stored = outside::store_value(&client, &run, REPORT_KEY, &json, code)
            .await
            .map_err(|e| failed("storing the report", e))?;
        say(Notice::Line(format!("multinet: report stored in {stored}")));
        Ok(report)
    })
}

/// The arguments of a path's client pod: `multinet bench client` with the path's tests, the
/// server's listeners, its source found by network in the mounted network-status, the run's
/// TLS files, the server's CPU read over `GET /cpu`.
pub fn client_args(
    tests: &[(LoadKind, u32)],
    listener: &multinet_proto::control::Listener,
    network: CephNetwork,
    duration: Duration,
) -> Vec<String> {
    let tests: Vec<String> = tests
        .iter()
        .map(|(kind, streams)| format!("{}:{streams}", kind.name()))
        .collect();
    let file = |dir: &str, name: &str| format!("{dir}/{name}");
    vec![
        "bench".to_string(),
        "client".into(),
        "--tests".into(),
        tests.join(","),
        "--target".into(),
        listener.http.to_string(),
        "--tls-target".into(),
        listener.https.to_string(),
        "--source-network".into(),
        network.key().into(),
        "--network-status".into(),
        file(paths::POD_DIR, "network-status"),
        "--duration-ms".into(),
        duration.as_millis().to_string(),
        "--answer-bytes".into(),
        ANSWER_BYTES.to_string(),
        "--ca".into(),
        file(paths::TLS_DIR, "ca.crt"),
        "--cert".into(),
        file(paths::TLS_DIR, "agent.crt"),
        "--key".into(),
        file(paths::TLS_DIR, "agent.key"),
        "--server-cpu".into(),
    ]
}

/// The bench Job's `activeDeadlineSeconds` (and how long the command outside waits for it):
/// the bench's worst case, not its estimate, so that the Job is never killed while its own
/// bounded steps still run — a killed Job stores no report, and every path measured so far
/// would be lost on exactly the broken network a bench is run to see. Each step is bounded:
/// the servers' stage by the resource timeout, each path by its client pod's start (the
/// resource timeout) and its [`client_deadline`], plus a few seconds to read its log and
/// delete it; the resource timeout again for the Job's own pod to start, and [`JOB_MARGIN`]
/// for the cleanup.
pub fn job_deadline(
    estimate: &Estimate,
    resource_timeout: Duration,
    duration: Duration,
) -> Duration {
    let per_path =
        resource_timeout + client_deadline(estimate.tests_per_path, duration) + PATH_READ_ALLOWANCE;
    (resource_timeout * 2 + per_path * estimate.paths as u32 + JOB_MARGIN).max(estimate.total)
}

/// Reading a client pod's log and deleting it, at most (its last state, its log and its
/// deletion, each bounded by `API_PATIENCE`, plus a few seconds).
const PATH_READ_ALLOWANCE: Duration = Duration::from_secs(35);

/// A client pod's `activeDeadlineSeconds`: each test's duration and [`TEST_PATIENCE`].
pub fn client_deadline(tests: usize, duration: Duration) -> Duration {
    (duration + TEST_PATIENCE) * tests as u32
}

/// What a client pod's log says.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientLog {
    /// The address its connections left from.
    pub client_address: Option<IpAddr>,
    /// One per expected test, in order: as printed, or failed with why it is missing.
    pub tests: Vec<TestResult>,
    /// The log's other lines (the client's errors on stderr).
    pub said: Vec<String>,
}

/// Reads a client pod's log: its JSON lines (a [`ClientAddressLine`], then a [`TestResult`]
/// per test) and whatever else it said. An `expected` test without a line — the client died,
/// or was ended at its deadline — is a failed test whose `failure` gives the log's last other
/// line.
pub fn read_client_log(log: &str, expected: &[(LoadKind, u32)]) -> ClientLog {
    let mut client_address = None;
    let mut printed: Vec<TestResult> = Vec::new();
    let mut said = Vec::new();
    for line in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with('{') {
            if let Ok(test) = serde_json::from_str::<TestResult>(line) {
                printed.push(test);
                continue;
            }
            if let Ok(address) = serde_json::from_str::<ClientAddressLine>(line) {
                client_address = Some(address.client_address);
                continue;
            }
        }
        said.push(line.to_string());
    }
    // What went wrong, not a note said on the way (a server CPU time not read).
    let last = said
        .iter()
        .rev()
        .find(|l| !l.starts_with(super::NOTE))
        .or(said.last());
    let why = last.map_or_else(
        || "it said nothing".to_string(),
        |l| format!("its last words: {l}"),
    );
    let tests = expected
        .iter()
        .map(|(kind, streams)| {
            printed
                .iter()
                .find(|t| t.kind == *kind && t.streams == *streams)
                .cloned()
                .unwrap_or_else(|| TestResult {
                    kind: *kind,
                    streams: *streams,
                    outcome: None,
                    server_cpu_seconds: None,
                    failure: Some(format!("the client pod printed no result for it; {why}")),
                })
        })
        .collect();
    ClientLog {
        client_address,
        tests,
        said,
    }
}

impl BenchSite for KubeBackend {
    async fn place_clients(
        &mut self,
        pods: Vec<(String, Vec<CephNetwork>)>,
    ) -> Result<Vec<super::site::ClientPod>, crate::run::BoxError> {
        // A client pod is made per path when its tests run: nothing to place ahead.
        Ok(pods
            .iter()
            .map(|_| super::site::ClientPod {
                ns: None,
                addresses: Vec::new(),
                failed: None,
            })
            .collect())
    }

    fn agent_pid(&self, _pod: &str) -> Option<i32> {
        None
    }

    fn pod_namespace(&self, _pod: &str) -> Option<String> {
        None
    }

    fn loopback(&mut self, _pod: &str) -> Option<(Option<String>, IpAddr)> {
        None
    }

    fn no_references(&self) -> Option<&'static str> {
        Some(NOT_IN_IMAGE)
    }

    async fn measure_path(
        &mut self,
        bench: &Bench<'_>,
        ends: PathEnds<'_>,
        _tools: &Tools,
        say: Say<'_>,
    ) -> PathResult {
        let request = bench.request;
        let mut path = PathResult::new(ends.node, ends.server_node, ends.listener.http.ip());
        if request.references {
            path.iperf3 = Some(Iperf3 {
                error: Some(NOT_IN_IMAGE.into()),
                ..Iperf3::default()
            });
        }
        let tests = path_tests(request.streams);
        say(Notice::Info(format!(
            "{} {} → {}: {} test(s) in a client pod",
            ends.network.key(),
            ends.node,
            ends.server_node,
            tests.len()
        )));
        let args = client_args(&tests, ends.listener, ends.network, request.duration);
        let deadline = client_deadline(tests.len(), request.duration);
        match self
            .run_bench_client(ends.node, ends.network, args, deadline)
            .await
        {
            Err(reason) => path.error = Some(reason),
            Ok(ran) => {
                let log = read_client_log(&ran.log, &tests);
                path.client_address = log.client_address;
                path.tests = log.tests;
                if let Some(failed) = ran.failed {
                    path.error = Some(match log.said.last() {
                        Some(last) => format!("{failed}; its log ends: {last}"),
                        None => failed,
                    });
                }
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multinet_agent::load::LoadOutcome;

    fn outcome(kind: LoadKind, streams: u32) -> LoadOutcome {
        LoadOutcome {
            kind,
            streams,
            seconds: 0.3,
            bytes: 1_000_000,
            requests: 10,
            errors: 0,
            first_error: None,
            gbit_per_s: Some(0.03),
            per_second: None,
            latency_us: None,
            cpu_seconds: Some(0.1),
            tcp_mss: Some(1448),
            path_mtu: Some(1500),
        }
    }

    /// The Job outlives the bench's worst case: every path's pod slow to start and every
    /// test running to its patience — far past the estimate, which assumes healthy paths.
    #[test]
    fn the_jobs_deadline_is_the_worst_case_not_the_estimate() {
        let estimate = Estimate {
            paths: 6,
            tests_per_path: 7,
            references: false,
            mesh: false,
            total: Duration::from_secs(6 * (7 * 10 + 10) + 20),
        };
        let rt = Duration::from_secs(180);
        let d = Duration::from_secs(10);
        let deadline = job_deadline(&estimate, rt, d);
        let worst_path = rt + (d + TEST_PATIENCE) * 7 + PATH_READ_ALLOWANCE;
        assert_eq!(deadline, rt * 2 + worst_path * 6 + JOB_MARGIN);
        assert!(deadline > estimate.total + rt + JOB_MARGIN);
    }

    #[test]
    fn a_client_log_gives_every_test_in_order_and_says_what_is_missing() {
        let expected = path_tests(4);
        let line = |kind, streams| {
            serde_json::to_string(&TestResult {
                kind,
                streams,
                outcome: Some(outcome(kind, streams)),
                server_cpu_seconds: Some(0.2),
                failure: None,
            })
            .expect("json")
        };
        // The address first, tests as printed (stderr lines between them), then the client
        // killed at its deadline before the TLS test.
        let mut log = String::from("{\"client_address\":\"198.18.1.3\"}\n");
        for (kind, streams) in &expected[..expected.len() - 1] {
            log.push_str(&line(*kind, *streams));
            log.push('\n');
        }
        log.push_str("multinet bench client: killed\n");
        // A note said after it is not what went wrong.
        log.push_str("note: the server's CPU time (GET /cpu): timed out\n");
        let read = read_client_log(&log, &expected);
        assert_eq!(read.client_address, Some("198.18.1.3".parse().expect("ip")));
        assert_eq!(read.tests.len(), expected.len());
        for (test, (kind, streams)) in read.tests.iter().zip(&expected) {
            assert_eq!((test.kind, test.streams), (*kind, *streams));
        }
        assert!(read.tests[..6].iter().all(|t| t.outcome.is_some()));
        assert_eq!(read.tests[0].server_cpu_seconds, Some(0.2));
        let missing = &read.tests[6];
        assert_eq!(missing.kind, LoadKind::TlsHandshakeRequest);
        assert!(missing.outcome.is_none());
        assert_eq!(
            missing.failure.as_deref(),
            Some(
                "the client pod printed no result for it; its last words: multinet bench client: killed"
            )
        );
        assert_eq!(
            read.said,
            [
                "multinet bench client: killed",
                "note: the server's CPU time (GET /cpu): timed out"
            ]
        );
        // An empty log: every test failed, said.
        let empty = read_client_log("", &expected);
        assert!(empty.tests.iter().all(|t| t.failure.as_deref()
            == Some("the client pod printed no result for it; it said nothing")));
        assert_eq!(empty.client_address, None);
    }

    #[test]
    fn a_client_pods_deadline_bounds_each_test() {
        assert_eq!(
            client_deadline(7, Duration::from_millis(500)),
            Duration::from_millis(7 * 20_500)
        );
    }

    #[test]
    fn the_references_are_said_not_in_the_image() {
        let tools = tools_not_in_image();
        assert!(
            tools
                .said()
                .contains("iperf3 MISSING (iperf3, nginx and wrk are not in")
        );
        assert_eq!(tools.nginx.missing.as_deref(), Some(NOT_IN_IMAGE));
    }

    #[test]
    fn the_job_gets_the_benchs_settings() {
        let request = NetworkBenchRequest {
            backend: super::super::BenchBackend::Kube,
            nodes: None,
            mesh: false,
            mesh_peers: None,
            max_time: Duration::from_secs(600),
            topologies: Vec::new(),
            existing_lab: None,
            duration: Duration::from_millis(300),
            streams: 2,
            references: false,
            kube: super::super::KubeBench::default(),
        };
        assert_eq!(
            job_args(&request),
            [
                "-o",
                "json",
                "--duration",
                "300ms",
                "--streams",
                "2",
                "--max-time",
                "600000ms",
                "--no-references"
            ]
        );
    }
}
