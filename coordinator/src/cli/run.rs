//! `multinet run`: Rook's `run` flags (same names and meanings) and multinet's, turned into a
//! [`RunRequest`]; what the run says and the error it ends with, printed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::backend::agents::KillAgent;
use crate::exit;
use crate::report::Format;
use crate::run::{
    self as runner, BackendKind, ConfigRequest, Error, KubeRequest, LabRequest, Notice, RunRequest,
};

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
    /// One self-contained HTML page to look at, share and print.
    Html,
}

impl From<RunOutput> for Format {
    fn from(output: RunOutput) -> Self {
        match output {
            RunOutput::Text => Format::Text,
            RunOutput::Json => Format::Json,
            RunOutput::Junit => Format::Junit,
            RunOutput::Yaml => Format::Yaml,
            RunOutput::Html => Format::Html,
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
    /// Soak: keep probing for DURATION (a Go duration, 6h, 90s) from the start of probing;
    /// without a value, or 0, until SIGINT/SIGTERM, which end a soak with its report.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "0")]
    pub duration: Option<String>,
    /// During a soak, rewrite --report's file (atomically) this often with what was measured
    /// so far, a Go duration [default: 5m; 0 at the end only]; `reportInterval` in the
    /// configuration.
    #[arg(long, value_name = "DURATION")]
    pub report_interval: Option<String>,
    /// Serve live Prometheus metrics at http://ADDR:PORT/metrics while the run lasts (an IP
    /// address and a port; port 0 takes a free one, said on stderr); `metricsAddr` in the
    /// configuration.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_addr: Option<String>,
    /// Mesh: a responder on every node instead of the one server; every node's clients probe
    /// every node's responder, and the report has a node × node matrix per network
    /// (`mesh: true` in the configuration).
    #[arg(long)]
    pub mesh: bool,
    /// Mesh with K other nodes per node (its own besides), chosen by rendezvous hashing so the
    /// choice stays as nodes come and go; implies --mesh (`meshPeers`).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub mesh_peers: Option<u32>,
    /// Namespace (recorded in the configuration; the local backend has none).
    #[arg(short = 'n', long, conflicts_with = "config")]
    pub namespace: Option<String>,
    /// Report format [default: as --report's file name ends (.json, .xml, .html, .yaml), else
    /// text].
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<RunOutput>,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// How long agents outlive a coordinator they cannot reach (killed, or its host gone)
    /// before they exit by themselves, seconds [default: 10; in a lab or local soak 300, the
    /// time to `--resume` it].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub agent_grace_seconds: Option<u64>,
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
    #[arg(long, value_name = "IMAGE", default_value = crate::backend::kube::DEFAULT_IMAGE)]
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
    /// Local and lab backend fault: kill an agent (`server`: the server, in a mesh the first
    /// responder; `server-NODE`: a mesh's responder on NODE; a node name: its first client)
    /// SECONDS after it started, e.g. `server@3`, `server-n3@2` or `n2@2`; `+SECONDS` after
    /// it starts the agent again that much later with the same assignment, as a kubelet
    /// restarts a container (`server-n3@2+10`). Repeat it to kill several (on the lab,
    /// instead of the topology's kill-agent faults).
    #[arg(long, value_name = "TARGET@SECONDS[+SECONDS]")]
    pub kill_agent: Vec<KillAgent>,
    /// Continue a lab or local soak whose coordinator died, from its checkpoint: RUN is its run id
    /// (said when the soak started, and in its reports) or its run directory. The run's
    /// settings are the checkpoint's; only -o, --report, --quiet and --metrics-addr apply.
    /// Resume within the agents' grace (--agent-grace-seconds of the first run).
    #[arg(long, value_name = "RUN", conflicts_with_all = [
        "backend", "nodes", "public_network", "cluster_network", "daemons_per_node", "config",
        "timeout_minutes", "flaky_threshold_seconds", "host_check_only", "probe_interval",
        "duration", "report_interval", "namespace", "agent_grace_seconds", "topology", "nads",
        "lab", "keep", "dry_run", "service_account", "kubeconfig", "context", "in_cluster_run",
        "kill_agent", "mesh", "mesh_peers",
    ])]
    pub resume: Option<String>,
}

impl RunArgs {
    /// The request these flags make.
    pub fn request(&self) -> RunRequest {
        RunRequest {
            backend: self.backend.map(|b| match b {
                Backend::Local => BackendKind::Local,
                Backend::Lab => BackendKind::Lab,
                Backend::Kube => BackendKind::Kube,
            }),
            config: ConfigRequest {
                file: self.config.clone(),
                public_network: self.public_network.clone(),
                cluster_network: self.cluster_network.clone(),
                daemons_per_node: self.daemons_per_node,
                timeout_minutes: self.timeout_minutes,
                flaky_threshold_seconds: self.flaky_threshold_seconds,
                namespace: self.namespace.clone(),
                host_check_only: self.host_check_only,
                probe_interval: self.probe_interval.clone(),
                service_account: self.service_account.clone(),
                duration: self.duration.clone(),
                report_interval: self.report_interval.clone(),
                metrics_addr: self.metrics_addr.clone(),
                mesh: self.mesh,
                mesh_peers: self.mesh_peers,
            },
            nodes: self.nodes,
            format: self
                .output
                .map(Format::from)
                .or_else(|| self.report.as_deref().and_then(Format::of_file))
                .unwrap_or_default(),
            report_to: self.report.clone(),
            terminal: if self.report.is_none() {
                super::terminal_on_stdout()
            } else {
                crate::report::Terminal::PLAIN
            },
            quiet: self.quiet,
            agent_grace: self.agent_grace_seconds.map(Duration::from_secs),
            lab: LabRequest {
                topology: self.topology.clone(),
                nads: self.nads.clone(),
                existing: self.lab.clone(),
                keep: self.keep,
            },
            kube: KubeRequest {
                dry_run: self.dry_run,
                image: self.image.clone(),
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
                in_cluster_run: self.in_cluster_run.clone(),
            },
            kill_agent: self.kill_agent.clone(),
            resume: self.resume.clone(),
        }
    }
}

/// Runs `multinet run`; the exit code.
pub fn run(args: &RunArgs) -> u8 {
    let quiet = args.quiet;
    let say = move |notice: Notice| match notice {
        Notice::Info(text) if !quiet => eprintln!("multinet run: {text}"),
        Notice::Info(_) => {}
        Notice::Note(text) => eprintln!("multinet run: {text}"),
        Notice::Warning(text) => eprintln!("multinet run: warning: {text}"),
        Notice::Line(text) => eprintln!("{text}"),
    };
    match runner::run(&args.request(), &say) {
        Ok(outcome) => outcome.exit_code,
        Err(error) => {
            print_error("multinet run", &error);
            exit::code(&error)
        }
    }
}

/// Prints a run's error: every problem of invalid input on a line of its own (warnings
/// first); nothing more for a signal (it was said when it came).
pub(crate) fn print_error(prefix: &str, error: &Error) {
    match error {
        Error::Invalid(problems) => {
            for p in &problems.warnings {
                eprintln!("{prefix}: warning: {p}");
            }
            for p in &problems.errors {
                eprintln!("{prefix}: {p}");
            }
        }
        Error::Refused { lines, .. } => {
            for line in lines {
                eprintln!("{prefix}: {line}");
            }
        }
        Error::Interrupted(_) => {}
        other => eprintln!("{prefix}: {}", crate::exit::chain(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: RunArgs,
    }

    #[test]
    fn every_flag_reaches_the_request() {
        let w = Wrap::parse_from([
            "run",
            "--backend",
            "lab",
            "--public-network",
            "p",
            "--daemons-per-node",
            "4",
            "-o",
            "junit",
            "--report",
            "r.xml",
            "-q",
            "--agent-grace-seconds",
            "7",
            "--nads",
            "n.yaml",
            "--keep",
            "--probe-interval",
            "1s",
            "--host-check-only",
            "--metrics-addr",
            "127.0.0.1:0",
        ]);
        let r = w.args.request();
        assert_eq!(r.backend, Some(BackendKind::Lab));
        assert_eq!(r.config.public_network.as_deref(), Some("p"));
        assert_eq!(r.config.daemons_per_node, Some(4));
        assert_eq!(r.format, Format::Junit);
        assert_eq!(r.report_to, Some(PathBuf::from("r.xml")));
        assert!(r.quiet && r.lab.keep && r.config.host_check_only);
        assert_eq!(r.agent_grace, Some(Duration::from_secs(7)));
        assert_eq!(r.lab.nads, Some(PathBuf::from("n.yaml")));
        assert_eq!(r.config.probe_interval.as_deref(), Some("1s"));
        assert_eq!(r.config.metrics_addr.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(r.nodes, crate::run::config::DEFAULT_LOCAL_NODES);
    }

    #[test]
    fn the_report_file_name_picks_the_format_unless_o_says() {
        let format = |args: &[&str]| {
            Wrap::parse_from(std::iter::once("run").chain(args.iter().copied()))
                .args
                .request()
                .format
        };
        assert_eq!(format(&["--report", "r.html"]), Format::Html);
        assert_eq!(format(&["--report", "R.JSON"]), Format::Json);
        assert_eq!(format(&["--report", "r.xml"]), Format::Junit);
        assert_eq!(format(&["--report", "r.txt"]), Format::Text);
        assert_eq!(format(&["--report", "report"]), Format::Text);
        assert_eq!(format(&["-o", "json", "--report", "r.html"]), Format::Json);
        assert_eq!(format(&["-o", "html"]), Format::Html);
        assert_eq!(format(&[]), Format::Text);
    }
}
