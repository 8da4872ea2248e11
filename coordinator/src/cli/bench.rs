//! `multinet bench …` (see BENCHMARKS.md).

use clap::{Args, Subcommand};

use crate::bench::{self, IngestArgs, load::LoadArgs, soak::SoakArgs};

/// `multinet bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Control-plane ingest: many agent connections reporting at a fixed rate.
    Ingest(IngestFlags),
    /// A long soak, time-compressed: the run's matrix fed hours of simulated results; memory
    /// and report size per simulated hour.
    Soak(SoakFlags),
    /// The data plane on the lab (or --backend local, or --backend kube on a cluster): per
    /// network and path, bulk throughput
    /// both ways (1 and --streams connections), request/response rate and latency
    /// percentiles, new TCP and TLS connections per second, CPU of both ends, MSS and path
    /// MTU; iperf3 and nginx as references. Several -f: setups side by side. --mesh: every
    /// node to every node's responder.
    Network(Box<NetworkFlags>),
    /// The load side of `ingest` (started by it).
    #[command(hide = true)]
    Load(LoadFlags),
    /// One test of `bench network`, run in a pod's namespace (started by it), or with --tests
    /// a path's tests in a kube client pod; prints JSON.
    #[command(hide = true)]
    Client(ClientFlags),
    /// A probe server on one address, its listeners printed as JSON (started by `bench
    /// network` for its loopback comparison).
    #[command(hide = true)]
    Serve(ServeFlags),
}

/// Output of `bench network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkOutput {
    /// Tables for people.
    Text,
    /// Everything measured (docs/bench-network.md).
    Json,
    /// One value a line: setup, network, cni, from, to, metric, value.
    Csv,
}

impl NetworkOutput {
    /// The format a report file's name asks for, by its extension (case ignored): `.json`,
    /// `.csv`, `.txt`; `None` for any other.
    fn of_file(path: &std::path::Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "json" => Self::Json,
            "csv" => Self::Csv,
            "txt" => Self::Text,
            _ => return None,
        })
    }
}

/// Where `bench network` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkBackend {
    /// The emulated lab: network namespaces, the real CNI plugins (root).
    Lab,
    /// Processes on loopback addresses of this machine (no root): validates no real network.
    Local,
    /// A Kubernetes cluster: the bench runs there as a coordinator Job (as `run --backend
    /// kube` does), each path's tests in a client pod; no references (not in the image).
    Kube,
}

/// Arguments of `multinet bench network`.
#[derive(Debug, Args)]
pub struct NetworkFlags {
    /// Where to run: the lab, or local processes on loopback (validates no real network).
    #[arg(long, value_enum, default_value = "lab")]
    pub backend: NetworkBackend,
    /// Nodes the local backend simulates (1 to 64) [default: 3]; with the lab the topology
    /// says.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub nodes: Option<u32>,
    /// Mesh: a responder on every node; every node's client measures the path to every
    /// node's responder (its own included), one test at a time.
    #[arg(long)]
    pub mesh: bool,
    /// Mesh with K other nodes per node (its own besides), chosen by rendezvous hashing as
    /// `run --mesh-peers` chooses them; implies --mesh.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub mesh_peers: Option<u32>,
    /// A bench estimated to take longer than this is refused (exit 22) before anything is
    /// built, a Go duration: the estimate is paths × tests × --duration with the references
    /// and the setups' building (said on stderr); it does not stop a bench that overruns it.
    #[arg(long, default_value = "1h", value_parser = parse_go_duration)]
    pub max_time: std::time::Duration,
    /// A lab topology; repeat to benchmark setups one after another, side by side
    /// [default: the embedded default lab].
    #[arg(short = 'f', long = "topology", value_name = "TOPOLOGY.yaml")]
    pub topologies: Vec<std::path::PathBuf>,
    /// A lab that is up (`multinet lab up`): benchmarked as it is, left up.
    #[arg(long, value_name = "NAME", conflicts_with = "topologies")]
    pub lab: Option<String>,
    /// Each test's duration, a Go duration (100ms to 10m).
    #[arg(long, default_value = "10s", value_parser = parse_test_duration)]
    pub duration: std::time::Duration,
    /// Connections of the parallel bulk tests (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub streams: u32,
    /// Leave out the references (iperf3 on each path, nginx against the probe server).
    #[arg(long)]
    pub no_references: bool,
    /// Output format [default: as --report's file name ends (.json, .csv, .txt), else text].
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<NetworkOutput>,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// No progress lines on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Kubernetes: a run configuration file (as `run -c`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Kubernetes: the namespace (as `run -n`).
    #[arg(short = 'n', long, conflicts_with = "config")]
    pub namespace: Option<String>,
    /// Kubernetes: the public network's NAD (as `run --public-network`).
    #[arg(long, value_name = "NAD", conflicts_with = "config")]
    pub public_network: Option<String>,
    /// Kubernetes: the cluster network's NAD (as `run --cluster-network`).
    #[arg(long, value_name = "NAD", conflicts_with = "config")]
    pub cluster_network: Option<String>,
    /// Kubernetes: the service account of the bench's pods (Rook's `serviceAccountName`).
    #[arg(long, value_name = "SA")]
    pub service_account: Option<String>,
    /// Kubernetes: the multinet image the Job, the server and the client pods run.
    #[arg(long, value_name = "IMAGE", default_value = crate::backend::kube::DEFAULT_IMAGE)]
    pub image: String,
    /// Kubernetes: the kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubernetes: the kubeconfig context [default: its current context].
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// Kubernetes, set by the bench's Job: this process is bench run ID's coordinator inside
    /// the cluster (its configuration is the owner's).
    #[arg(long, value_name = "ID", hide = true)]
    pub in_cluster_run: Option<String>,
    /// Kubernetes, set by the bench's Job: where the owner's configuration is mounted.
    #[arg(long, value_name = "FILE", hide = true)]
    pub run_config: Option<std::path::PathBuf>,
}

fn parse_test_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_go_duration(text)?;
    if d < std::time::Duration::from_millis(100) || d > multinet_agent::load::MAX_DURATION {
        return Err(format!("must be 100ms to 10m, found {text}"));
    }
    Ok(d)
}

/// Arguments of `multinet bench client` (given by `bench network`).
#[derive(Debug, Args)]
pub struct ClientFlags {
    /// download | upload | rr | crr | tls: one test, its outcome printed as JSON.
    #[arg(long, value_parser = parse_kind, required_unless_present = "tests", conflicts_with = "tests")]
    pub kind: Option<multinet_agent::load::LoadKind>,
    /// A path's tests, one after another (`download:1,download:4,…,tls:1`), a JSON line each
    /// (the kube backend's client pods).
    #[arg(long, value_parser = parse_tests)]
    pub tests: Option<Tests>,
    /// With --tests: the server's HTTPS listener (the TLS test).
    #[arg(long, requires = "tests")]
    pub tls_target: Option<std::net::SocketAddr>,
    /// With --tests: take the source address this pod has on this network (public,
    /// cluster), as --network-status gives it.
    #[arg(long, value_parser = parse_network, requires_all = ["tests", "network_status"], conflicts_with = "source")]
    pub source_network: Option<multinet_proto::network::CephNetwork>,
    /// Multus' network-status annotation, as the downward API mounts it.
    #[arg(long, value_name = "FILE")]
    pub network_status: Option<std::path::PathBuf>,
    /// With --tests: read the server's CPU seconds (`GET /cpu`) before and after each test.
    #[arg(long, requires = "tests")]
    pub server_cpu: bool,
    /// The server's listener.
    #[arg(long)]
    pub target: std::net::SocketAddr,
    /// Source address.
    #[arg(long)]
    pub source: Option<std::net::IpAddr>,
    /// Interface to bind to.
    #[arg(long)]
    pub device: Option<String>,
    /// Connections.
    #[arg(long, default_value_t = 1)]
    pub streams: u32,
    /// Duration, ms.
    #[arg(long)]
    pub duration_ms: u64,
    /// Answer size of the request tests.
    #[arg(long, default_value_t = 64)]
    pub answer_bytes: u64,
    /// Run CA.
    #[arg(long, requires_all = ["cert", "key"])]
    pub ca: Option<std::path::PathBuf>,
    /// Certificate.
    #[arg(long)]
    pub cert: Option<std::path::PathBuf>,
    /// Its key.
    #[arg(long)]
    pub key: Option<std::path::PathBuf>,
}

/// A list of tests, `kind:streams` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tests(pub Vec<(multinet_agent::load::LoadKind, u32)>);

fn parse_tests(text: &str) -> Result<Tests, String> {
    text.split(',')
        .map(|one| {
            let (kind, streams) = one
                .split_once(':')
                .ok_or_else(|| format!("{one:?}: expected KIND:STREAMS"))?;
            let streams: u32 = streams
                .parse()
                .map_err(|_| format!("{one:?}: the streams are not a number"))?;
            Ok((parse_kind(kind)?, streams))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Tests)
}

fn parse_network(text: &str) -> Result<multinet_proto::network::CephNetwork, String> {
    match text {
        "public" => Ok(multinet_proto::network::CephNetwork::Public),
        "cluster" => Ok(multinet_proto::network::CephNetwork::Cluster),
        other => Err(format!("public or cluster, found {other}")),
    }
}

fn parse_kind(text: &str) -> Result<multinet_agent::load::LoadKind, String> {
    multinet_agent::load::LoadKind::parse(text)
        .ok_or_else(|| format!("one of download, upload, rr, crr, tls; found {text}"))
}

/// Arguments of `multinet bench serve` (given by `bench network`).
#[derive(Debug, Args)]
pub struct ServeFlags {
    /// Address to listen on (port 0).
    #[arg(long)]
    pub address: std::net::IpAddr,
    /// How long to serve, ms.
    #[arg(long)]
    pub for_ms: u64,
    /// Run CA.
    #[arg(long)]
    pub ca: std::path::PathBuf,
    /// Server certificate.
    #[arg(long)]
    pub cert: std::path::PathBuf,
    /// Its key.
    #[arg(long)]
    pub key: std::path::PathBuf,
}

/// Arguments of `multinet bench ingest`.
#[derive(Debug, Args)]
pub struct IngestFlags {
    /// Agent connections.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub agents: u32,
    /// Results per second per agent (sent as one batch per second).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rate: u32,
    /// Duration of the reporting phase, seconds (connections are cut and made again on
    /// purpose from 8 s).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// With the live metrics on (`--metrics-addr`'s updates at every result, and the
    /// exposition encoded at every sample, as a scrape would): their cost.
    #[arg(long)]
    pub metrics: bool,
}

/// Arguments of `multinet bench soak`.
#[derive(Debug, Args)]
pub struct SoakFlags {
    /// Simulated clients.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub agents: u32,
    /// Nodes they are spread over.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub nodes: u32,
    /// Simulated hours.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(2..))]
    pub hours: u64,
    /// Simulated probe interval, a Go duration.
    #[arg(long, default_value = "10s", value_parser = parse_go_duration)]
    pub interval: std::time::Duration,
    /// Probes lost at random, per mille.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub loss_per_mille: u32,
    /// With the live metrics on, each sample encoding them as a scrape would.
    #[arg(long)]
    pub metrics: bool,
}

fn parse_go_duration(text: &str) -> Result<std::time::Duration, String> {
    multinet_proto::config::GoDuration::parse(text)
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

/// Arguments of `multinet bench load` (given by `bench ingest`).
#[derive(Debug, Args)]
pub struct LoadFlags {
    /// Coordinator address.
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    /// Run id.
    #[arg(long)]
    pub run_id: String,
    /// Run CA.
    #[arg(long)]
    pub ca: std::path::PathBuf,
    /// Client certificate.
    #[arg(long)]
    pub cert: std::path::PathBuf,
    /// Its key.
    #[arg(long)]
    pub key: std::path::PathBuf,
    /// Connections.
    #[arg(long)]
    pub agents: u32,
    /// Results per second per connection.
    #[arg(long)]
    pub rate: u32,
    /// Seconds of reporting.
    #[arg(long)]
    pub seconds: u64,
}

/// Runs a `bench` subcommand; the exit code.
pub fn run(command: BenchCommand) -> u8 {
    match command {
        BenchCommand::Ingest(f) => bench::ingest(&IngestArgs {
            agents: f.agents,
            rate: f.rate,
            seconds: f.seconds,
            metrics: f.metrics,
        }),
        BenchCommand::Soak(f) => bench::soak::soak(&SoakArgs {
            agents: f.agents,
            nodes: f.nodes,
            hours: f.hours,
            interval: f.interval,
            loss_per_mille: f.loss_per_mille,
            metrics: f.metrics,
        }),
        BenchCommand::Network(f) => network(&f),
        BenchCommand::Client(f) => {
            let tls = match (f.ca, f.cert, f.key) {
                (Some(ca), Some(cert), Some(key)) => {
                    Some(multinet_proto::assignment::TlsFiles { ca, cert, key })
                }
                _ => None,
            };
            let Some(kind) = f.kind else {
                return path_client(
                    f.tests,
                    f.target,
                    f.tls_target,
                    f.source_network,
                    f.network_status,
                    f.source,
                    f.device,
                    f.server_cpu,
                    f.duration_ms,
                    f.answer_bytes,
                    tls,
                );
            };
            let request = bench::network::ClientRequest {
                kind,
                target: f.target,
                source: f.source,
                device: f.device,
                streams: f.streams,
                duration: std::time::Duration::from_millis(f.duration_ms),
                answer_bytes: f.answer_bytes,
                tls,
            };
            match bench::network::client(&request)
                .and_then(|o| serde_json::to_string(&o).map_err(|e| e.to_string()))
            {
                Ok(json) => {
                    println!("{json}");
                    crate::exit::SUCCESS
                }
                Err(e) => {
                    eprintln!("multinet bench client: {e}");
                    crate::exit::INVALID
                }
            }
        }
        BenchCommand::Serve(f) => {
            let tls = multinet_proto::assignment::TlsFiles {
                ca: f.ca,
                cert: f.cert,
                key: f.key,
            };
            match bench::network::reference::serve(
                f.address,
                &tls,
                std::time::Duration::from_millis(f.for_ms),
            ) {
                Ok(()) => crate::exit::SUCCESS,
                Err(e) => {
                    eprintln!("multinet bench serve: {e}");
                    crate::exit::ERROR
                }
            }
        }
        BenchCommand::Load(f) => bench::load::load(&LoadArgs {
            addr: f.addr,
            run_id: f.run_id,
            ca: f.ca,
            cert: f.cert,
            key: f.key,
            agents: f.agents,
            rate: f.rate,
            seconds: f.seconds,
        }),
    }
}

/// `multinet bench client --tests …`: a path's tests, one JSON line each on stdout as each
/// ends; exit 0 once all ran (a failed test is said in its line), 22 when they cannot start.
#[allow(clippy::too_many_arguments)]
fn path_client(
    tests: Option<Tests>,
    target: std::net::SocketAddr,
    tls_target: Option<std::net::SocketAddr>,
    source_network: Option<multinet_proto::network::CephNetwork>,
    network_status: Option<std::path::PathBuf>,
    source: Option<std::net::IpAddr>,
    device: Option<String>,
    server_cpu: bool,
    duration_ms: u64,
    answer_bytes: u64,
    tls: Option<multinet_proto::assignment::TlsFiles>,
) -> u8 {
    use std::io::Write as _;
    let source = match (source_network, network_status) {
        (Some(network), Some(status_file)) => bench::network::ClientSource::Network {
            network,
            status_file,
        },
        _ => bench::network::ClientSource::Address { source, device },
    };
    let request = bench::network::PathClientRequest {
        tests: tests.map(|t| t.0).unwrap_or_default(),
        target,
        tls_target: tls_target.unwrap_or(target),
        source,
        duration: std::time::Duration::from_millis(duration_ms),
        answer_bytes,
        tls,
        server_cpu,
    };
    let mut print = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    match bench::network::path_client(&request, &mut print) {
        Ok(()) => crate::exit::SUCCESS,
        Err(e) => {
            eprintln!("multinet bench client: {e}");
            crate::exit::INVALID
        }
    }
}

/// The format of `bench network`'s report: `-o`'s when given (whatever the file's name), else
/// as the `--report` file's name ends, else text.
fn report_format(output: Option<NetworkOutput>, report: Option<&std::path::Path>) -> NetworkOutput {
    output
        .or_else(|| report.and_then(NetworkOutput::of_file))
        .unwrap_or(NetworkOutput::Text)
}

/// `multinet bench network`: the bench, its report written where asked; exit 0 when every
/// setup was measured, 22 for invalid input (also a bench whose tests would take longer than
/// --max-time), 69 when a setup's lab could not be built or its server not started (the
/// report says which; the others are measured), 128 + N on a signal.
fn network(f: &NetworkFlags) -> u8 {
    let format = report_format(f.output, f.report.as_deref());
    let request = bench::network::NetworkBenchRequest {
        backend: match f.backend {
            NetworkBackend::Lab => bench::network::BenchBackend::Lab,
            NetworkBackend::Local => bench::network::BenchBackend::Local,
            NetworkBackend::Kube => bench::network::BenchBackend::Kube,
        },
        nodes: f.nodes,
        mesh: f.mesh,
        mesh_peers: f.mesh_peers,
        max_time: f.max_time,
        topologies: f.topologies.clone(),
        existing_lab: f.lab.clone(),
        duration: f.duration,
        streams: f.streams,
        references: !f.no_references,
        kube: bench::network::KubeBench {
            config: crate::run::ConfigRequest {
                file: f.run_config.clone().or_else(|| f.config.clone()),
                public_network: f.public_network.clone(),
                cluster_network: f.cluster_network.clone(),
                namespace: f.namespace.clone(),
                service_account: f.service_account.clone(),
                ..crate::run::ConfigRequest::default()
            },
            cluster: crate::run::KubeRequest {
                dry_run: false,
                image: f.image.clone(),
                kubeconfig: f.kubeconfig.clone(),
                context: f.context.clone(),
                in_cluster_run: f.in_cluster_run.clone(),
            },
            quiet: f.quiet,
        },
    };
    if f.backend != NetworkBackend::Kube
        && let Some(flag) = kube_flag_given(f)
    {
        eprintln!(
            "multinet bench network: {flag} applies to --backend kube only (a cluster's configuration)"
        );
        return crate::exit::INVALID;
    }
    // Before anything is built: a report that could never be written would lose the bench.
    if let Some(path) = &f.report
        && let Err(e) = crate::report::check_destination(path)
    {
        eprintln!(
            "multinet bench network: --report: {}",
            crate::exit::chain(&e)
        );
        return crate::exit::INVALID;
    }
    let quiet = f.quiet;
    let say = move |notice: crate::run::Notice| match notice {
        crate::run::Notice::Info(text) if !quiet => eprintln!("multinet: {text}"),
        crate::run::Notice::Info(_) => {}
        crate::run::Notice::Note(text) => eprintln!("multinet: {text}"),
        // Whole lines (the kube bench Job's log, streamed): as they are.
        crate::run::Notice::Line(text) => eprintln!("{text}"),
        crate::run::Notice::Warning(text) => eprintln!("multinet: warning: {text}"),
    };
    match bench::network::bench(&request, &say) {
        // The bench's Job stored its report for the command outside; its log has said where.
        Ok(report) if f.in_cluster_run.is_some() => {
            if report.any_setup_failed() {
                crate::exit::ERROR
            } else {
                crate::exit::SUCCESS
            }
        }
        Ok(report) => {
            let rendered = match format {
                // On a terminal the tables are cut to its width; in a file or a pipe they
                // are as wide as they are (as `run`'s report).
                NetworkOutput::Text => report.text_fitting(match f.report {
                    Some(_) => None,
                    None => super::terminal_on_stdout().width,
                }),
                NetworkOutput::Csv => report.csv(),
                NetworkOutput::Json => match serde_json::to_string_pretty(&report) {
                    Ok(json) => json + "\n",
                    Err(e) => {
                        eprintln!("multinet bench network: the report: {e}");
                        return crate::exit::ERROR;
                    }
                },
            };
            match crate::report::write(&rendered, f.report.as_deref()) {
                Ok(()) if report.any_setup_failed() => crate::exit::ERROR,
                Ok(()) => crate::exit::SUCCESS,
                Err(e) => {
                    eprintln!("multinet bench network: {}", crate::exit::chain(&e));
                    crate::exit::ERROR
                }
            }
        }
        Err(e) => {
            eprintln!("multinet bench network: {}", crate::exit::chain(&e));
            crate::exit::code(&e)
        }
    }
}

/// The first Kubernetes-only flag given, as typed.
fn kube_flag_given(f: &NetworkFlags) -> Option<&'static str> {
    let given = [
        ("-c", f.config.is_some()),
        ("-n", f.namespace.is_some()),
        ("--public-network", f.public_network.is_some()),
        ("--cluster-network", f.cluster_network.is_some()),
        ("--service-account", f.service_account.is_some()),
        ("--image", f.image != crate::backend::kube::DEFAULT_IMAGE),
        ("--kubeconfig", f.kubeconfig.is_some()),
        ("--context", f.context.is_some()),
        ("--in-cluster-run", f.in_cluster_run.is_some()),
    ];
    given.into_iter().find(|(_, g)| *g).map(|(flag, _)| flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use multinet_agent::load::LoadKind;

    #[test]
    fn a_paths_tests_are_kind_and_streams_in_order() {
        assert_eq!(
            parse_tests("download:1,upload:4,tls:1"),
            Ok(Tests(vec![
                (LoadKind::Download, 1),
                (LoadKind::Upload, 4),
                (LoadKind::TlsHandshakeRequest, 1)
            ]))
        );
        assert!(parse_tests("download").is_err_and(|e| e.contains("KIND:STREAMS")));
        assert!(parse_tests("download:x").is_err_and(|e| e.contains("not a number")));
        assert!(parse_tests("jump:1").is_err_and(|e| e.contains("one of download")));
    }

    /// An explicit `-o text` is kept for a file named `.json` (it was taken for the default
    /// and the file got JSON); without -o the file's name decides, case ignored.
    #[test]
    fn the_report_format_is_o_s_else_the_file_name_s_else_text() {
        use NetworkOutput::{Csv, Json, Text};
        fn file(name: &str) -> Option<&std::path::Path> {
            Some(std::path::Path::new(name))
        }
        assert_eq!(report_format(Some(Text), file("bench.json")), Text);
        assert_eq!(report_format(Some(Csv), file("bench.json")), Csv);
        assert_eq!(report_format(None, file("bench.json")), Json);
        assert_eq!(report_format(None, file("BENCH.CSV")), Csv);
        assert_eq!(report_format(None, file("bench.txt")), Text);
        assert_eq!(report_format(None, file("bench.out")), Text);
        assert_eq!(report_format(None, None), Text);
        assert_eq!(report_format(Some(Json), None), Json);
    }
}
