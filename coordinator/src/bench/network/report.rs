//! What `multinet bench network` measured (the JSON, docs/bench-network.md) and its renderings:
//! per setup and network three text tables of related metrics ([`MetricGroup`]; rows = paths),
//! cut to a terminal's width when they are wider; with several setups also one table per metric
//! with a column per setup; CSV in long form (one value a line) to plot.

use std::fmt::Write as _;
use std::net::IpAddr;

use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_proto::network::CephNetwork;
use serde::{Deserialize, Serialize};

use super::reference::{Iperf3, LoopbackComparison, Tools};
use crate::lab::topology::LabTopology;

/// The bench's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkBenchReport {
    /// Always `bench_network`.
    pub kind: String,
    /// Where it ran: `lab`, `local` or `kube`.
    #[serde(default = "lab")]
    pub backend: String,
    /// Whether its figures are a network's (false on the local backend: this machine's
    /// loopback, said in the text report too).
    #[serde(default = "yes")]
    pub validates_real_network: bool,
    /// The bench's time as estimated before anything was built (paths × tests × duration,
    /// with allowances for starting tests and building labs: `bench::network::Estimate`), ms.
    #[serde(default)]
    pub estimated_ms: u64,
    /// How long the bench took, building and removing included, ms.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// Each test's duration, ms.
    pub duration_ms: u64,
    /// Connections of the parallel bulk tests.
    pub streams: u32,
    /// The body size of request/response and connection-rate answers.
    pub answer_bytes: u64,
    /// The reference tools, found or missing.
    pub references: Tools,
    /// One per setup, in the order benchmarked.
    pub setups: Vec<SetupResult>,
}

impl NetworkBenchReport {
    /// An empty report of `request`.
    pub fn new(request: &super::NetworkBenchRequest) -> Self {
        Self {
            kind: "bench_network".into(),
            backend: request.backend.name().into(),
            validates_real_network: request.backend != super::BenchBackend::Local,
            estimated_ms: 0,
            elapsed_ms: 0,
            duration_ms: request.duration.as_millis() as u64,
            streams: request.streams,
            answer_bytes: super::ANSWER_BYTES,
            references: Tools::default(),
            setups: Vec::new(),
        }
    }
}

fn lab() -> String {
    "lab".into()
}

fn yes() -> bool {
    true
}

/// One setup (a topology, its lab built for the bench; or the local backend's nodes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupResult {
    /// Its name: the topology file's stem, `default`, the lab's name, or `local`.
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// The lab's name (empty on the local backend).
    pub lab: String,
    /// The server's node (in a mesh, the node a single run would have put it on).
    pub server_node: String,
    /// With `--mesh`: the responders and which pairs the paths cover; `None`: one server.
    #[serde(default)]
    pub mesh: Option<MeshCoverage>,
    /// Per network, its paths.
    pub networks: Vec<NetworkResult>,
    /// The probe server against nginx on loopback, with the same load.
    pub loopback: Option<LoopbackComparison>,
    /// Why the setup could not be measured (its lab could not be built here, its server did
    /// not start); the other setups were.
    pub error: Option<String>,
    /// The topology's networks, for the table headings.
    #[serde(skip)]
    describe: Vec<(CephNetwork, String, Option<u32>)>,
}

impl SetupResult {
    /// A setup with nothing measured yet.
    pub fn new(name: &str, source: &str, topology: &LabTopology) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            lab: topology.name.clone(),
            server_node: String::new(),
            mesh: None,
            networks: Vec::new(),
            loopback: None,
            error: None,
            describe: topology
                .networks
                .iter()
                .map(|(network, n)| (*network, n.cni_type.clone(), n.mtu))
                .collect(),
        }
    }

    /// A setup on the local backend with nothing measured yet: its networks are blocks of
    /// loopback addresses (CNI `loopback`, no MTU set).
    pub fn local(name: &str, source: &str, networks: &[CephNetwork]) -> Self {
        let loopback = networks.iter().map(|n| (*n, "loopback".to_string(), None));
        Self::described(name, source, loopback.collect())
    }

    /// A setup with nothing measured yet whose networks are `describe`d: (network, CNI
    /// plugin, MTU its config sets) — a cluster's, from its NADs.
    pub fn described(
        name: &str,
        source: &str,
        describe: Vec<(CephNetwork, String, Option<u32>)>,
    ) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            lab: String::new(),
            server_node: String::new(),
            mesh: None,
            networks: Vec::new(),
            loopback: None,
            error: None,
            describe,
        }
    }

    /// Adds a network's paths.
    pub fn push_network(&mut self, network: CephNetwork, paths: Vec<PathResult>) {
        let (cni, mtu) = self
            .describe
            .iter()
            .find(|(n, _, _)| *n == network)
            .map_or((String::new(), None), |(_, cni, mtu)| (cni.clone(), *mtu));
        self.networks.push(NetworkResult {
            network: network.key().to_string(),
            cni,
            mtu,
            paths,
        });
    }
}

/// A mesh bench's responders and the pairs its paths cover (each network's paths are these
/// pairs, less those whose responder is not on the network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshCoverage {
    /// `--mesh-peers K`: each node's own responder and K others'; `None`: every node's.
    pub peers_per_node: Option<u32>,
    /// The nodes with a responder there when the bench began (`pairs` also name those gone
    /// before: their paths say so in `error`).
    pub responders: Vec<String>,
    /// The pairs (client node, responder node) of any network, as a mesh run with the same
    /// nodes covers them.
    pub pairs: Vec<(String, String)>,
    /// Each network's own pairs (peers are chosen per network, among its responders).
    pub networks: Vec<NetworkPairs>,
}

/// The pairs a mesh bench covers on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPairs {
    /// `public` or `cluster`.
    pub network: String,
    /// (client node, responder node).
    pub pairs: Vec<(String, String)>,
}

impl MeshCoverage {
    /// The coverage of `targeting` over `responders` (pod → node and listeners); `None` for a
    /// single server.
    pub fn of(
        targeting: &crate::mesh::Targeting,
        responders: &std::collections::BTreeMap<String, crate::mesh::Responder>,
    ) -> Option<Self> {
        let crate::mesh::Targeting::Mesh { peers_per_node, .. } = targeting else {
            return None;
        };
        let mut nodes: Vec<String> = responders.values().map(|r| r.node.clone()).collect();
        nodes.sort();
        nodes.dedup();
        let networks: Vec<NetworkPairs> = targeting
            .networks()
            .into_iter()
            .map(|n| NetworkPairs {
                network: n.key().to_string(),
                pairs: targeting.covered(n).into_iter().collect(),
            })
            .collect();
        Some(Self {
            peers_per_node: *peers_per_node,
            responders: nodes,
            pairs: networks
                .iter()
                .flat_map(|n| n.pairs.iter().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            networks,
        })
    }

    /// Its lines in the text report: what the mesh is, then each client node's responders.
    pub fn text(&self) -> String {
        let mut out = format!(
            "mesh: {}; {} pair(s) (client node → responder node):\n",
            match self.peers_per_node {
                None => "every node → every node's responder".to_string(),
                Some(k) =>
                    format!("every node → its own responder and {k} peer(s)' (rendezvous hashing)"),
            },
            self.pairs.len()
        );
        // One list when every network has the same pairs; else each network's own.
        let same = self.networks.windows(2).all(|w| w[0].pairs == w[1].pairs);
        if same {
            pairs_text(&mut out, "  ", &self.pairs);
        } else {
            for n in &self.networks {
                let _ = writeln!(out, "  {} ({} pair(s)):", n.network, n.pairs.len());
                pairs_text(&mut out, "    ", &n.pairs);
            }
        }
        out
    }
}

/// One line per client node: `{indent}from → to to …`.
fn pairs_text(out: &mut String, indent: &str, pairs: &[(String, String)]) {
    let mut from: Vec<&String> = pairs.iter().map(|(f, _)| f).collect();
    from.dedup();
    for node in from {
        let to: Vec<&str> = pairs
            .iter()
            .filter(|(f, _)| f == node)
            .map(|(_, t)| t.as_str())
            .collect();
        let _ = writeln!(out, "{indent}{node} → {}", to.join(" "));
    }
}

/// One network of a setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkResult {
    /// `public` or `cluster`.
    pub network: String,
    /// Its CNI plugin.
    pub cni: String,
    /// The interface MTU its config sets (`None`: the plugin's default).
    pub mtu: Option<u32>,
    /// One per client node (in a mesh, one per client node and responder node).
    pub paths: Vec<PathResult>,
}

/// One path: a client pod on `from` to the server (a mesh's responder) on `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathResult {
    /// The client's node.
    pub from: String,
    /// The server's (responder's) node.
    pub to: String,
    /// The client pod's address on the network.
    pub client_address: Option<IpAddr>,
    /// The server's address on the network (`None`: a mesh's responder gone before the bench
    /// began, see `error`).
    pub server_address: Option<IpAddr>,
    /// Why the path could not be measured at all.
    pub error: Option<String>,
    /// The tests, in the order run.
    pub tests: Vec<TestResult>,
    /// iperf3 on the same path.
    pub iperf3: Option<Iperf3>,
}

impl PathResult {
    /// A path with nothing measured yet.
    pub fn new(from: &str, to: &str, server_address: IpAddr) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            client_address: None,
            server_address: Some(server_address),
            error: None,
            tests: Vec::new(),
            iperf3: None,
        }
    }

    /// A path that could not be measured at all, and why (its server's address unknown).
    pub fn unmeasured(from: &str, to: &str, error: String) -> Self {
        Self {
            server_address: None,
            error: Some(error),
            ..Self::new(from, to, IpAddr::from([0, 0, 0, 0]))
        }
    }

    /// The test of `kind` with `streams` connections.
    pub fn test(&self, kind: LoadKind, streams: u32) -> Option<&TestResult> {
        self.tests
            .iter()
            .find(|t| t.kind == kind && t.streams == streams)
    }

    /// Whether it has that test already.
    pub fn has(&self, kind: LoadKind, streams: u32) -> bool {
        self.test(kind, streams).is_some()
    }

    fn outcome(&self, kind: LoadKind, streams: u32) -> Option<&LoadOutcome> {
        self.test(kind, streams)?.outcome.as_ref()
    }
}

/// One test on a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// What it did.
    pub kind: LoadKind,
    /// Connections at once.
    pub streams: u32,
    /// What the client measured (`None`: the client process failed).
    pub outcome: Option<LoadOutcome>,
    /// CPU time the server agent used during the test, seconds.
    pub server_cpu_seconds: Option<f64>,
    /// Why the client process failed.
    pub failure: Option<String>,
}

/// A column of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Download, one connection, Gbit/s.
    Download1,
    /// Download, `--streams` connections.
    DownloadN,
    /// Upload, one connection.
    Upload1,
    /// Upload, `--streams` connections.
    UploadN,
    /// Request/response on a kept-alive connection, per second.
    Rr,
    /// Its latency percentiles, µs.
    RrP50,
    /// 90th.
    RrP90,
    /// 99th.
    RrP99,
    /// 99.9th.
    RrP999,
    /// New connection + request, per second.
    Crr,
    /// New connection + full TLS handshake + request, per second.
    Tls,
    /// Client CPU during the one-connection download, % of one core.
    ClientCpu,
    /// Server agent CPU during it.
    ServerCpu,
    /// TCP MSS of the download's connection.
    Mss,
    /// The kernel's path MTU of it (IPv4 and IPv6).
    PathMtu,
    /// multinet's one-connection upload over iperf3's on the same path.
    Iperf3Upload,
    /// multinet's one-connection download over iperf3's (`-R`).
    Iperf3Download,
}

/// Every column, in order.
pub const METRICS: [Metric; 17] = [
    Metric::Download1,
    Metric::DownloadN,
    Metric::Upload1,
    Metric::UploadN,
    Metric::Rr,
    Metric::RrP50,
    Metric::RrP90,
    Metric::RrP99,
    Metric::RrP999,
    Metric::Crr,
    Metric::Tls,
    Metric::ClientCpu,
    Metric::ServerCpu,
    Metric::Mss,
    Metric::PathMtu,
    Metric::Iperf3Upload,
    Metric::Iperf3Download,
];

/// The text report's per-path tables, one per group of related columns, each keyed by path:
/// together the groups hold every [`METRICS`] column once. The path and 17 metrics in one
/// table were some 150 characters wide; a group is at most 7 metrics, under 80 characters with
/// lab-style node names (`n1 → n2`). Read as a QA engineer reads a path: how fast (throughput, with
/// iperf3 beside it as the yardstick), how responsive (request rates and latency), and what
/// it cost and carried (CPU of both ends, segment sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricGroup {
    /// Bulk throughput both ways, 1 and `--streams` connections, and multinet's
    /// one-connection figures over iperf3's on the same path.
    Throughput,
    /// Request/response rate and latency percentiles, new connections and TLS handshakes
    /// per second.
    Requests,
    /// What the one-connection download cost and found: CPU of client and server agent, TCP
    /// MSS and path MTU.
    DownloadCost,
}

impl MetricGroup {
    /// Every group, in the order the text report prints them.
    pub const ALL: [MetricGroup; 3] = [Self::Throughput, Self::Requests, Self::DownloadCost];

    /// Its columns, in order.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Self::Throughput => &[
                Metric::Download1,
                Metric::DownloadN,
                Metric::Upload1,
                Metric::UploadN,
                Metric::Iperf3Download,
                Metric::Iperf3Upload,
            ],
            Self::Requests => &[
                Metric::Rr,
                Metric::RrP50,
                Metric::RrP90,
                Metric::RrP99,
                Metric::RrP999,
                Metric::Crr,
                Metric::Tls,
            ],
            Self::DownloadCost => &[
                Metric::ClientCpu,
                Metric::ServerCpu,
                Metric::Mss,
                Metric::PathMtu,
            ],
        }
    }

    /// The line above its table: what its columns are and their units.
    pub fn title(self) -> &'static str {
        match self {
            Self::Throughput => {
                "throughput, Gbit/s, and one connection's over iperf3's on the path"
            }
            Self::Requests => "requests per second and request/response latency, µs",
            Self::DownloadCost => {
                "one-connection download: CPU, % of one core; MSS and path MTU, bytes"
            }
        }
    }
}

impl Metric {
    /// Its heading in a text table.
    pub fn heading(self, streams: u32) -> String {
        match self {
            Metric::Download1 => "down×1".into(),
            Metric::DownloadN => format!("down×{streams}"),
            Metric::Upload1 => "up×1".into(),
            Metric::UploadN => format!("up×{streams}"),
            Metric::Rr => "RR/s".into(),
            Metric::RrP50 => "p50 µs".into(),
            Metric::RrP90 => "p90".into(),
            Metric::RrP99 => "p99".into(),
            Metric::RrP999 => "p99.9".into(),
            Metric::Crr => "CRR/s".into(),
            Metric::Tls => "TLS/s".into(),
            Metric::ClientCpu => "client%".into(),
            Metric::ServerCpu => "server%".into(),
            Metric::Mss => "MSS".into(),
            Metric::PathMtu => "PMTU".into(),
            Metric::Iperf3Upload => "up/iperf3".into(),
            Metric::Iperf3Download => "down/iperf3".into(),
        }
    }

    /// Its name in CSV and in the side-by-side tables' titles.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Download1 => "download_1_gbit_per_s",
            Metric::DownloadN => "download_n_gbit_per_s",
            Metric::Upload1 => "upload_1_gbit_per_s",
            Metric::UploadN => "upload_n_gbit_per_s",
            Metric::Rr => "rr_per_s",
            Metric::RrP50 => "rr_p50_us",
            Metric::RrP90 => "rr_p90_us",
            Metric::RrP99 => "rr_p99_us",
            Metric::RrP999 => "rr_p999_us",
            Metric::Crr => "crr_per_s",
            Metric::Tls => "tls_per_s",
            Metric::ClientCpu => "client_cpu_percent",
            Metric::ServerCpu => "server_cpu_percent",
            Metric::Mss => "tcp_mss",
            Metric::PathMtu => "path_mtu",
            Metric::Iperf3Upload => "upload_over_iperf3",
            Metric::Iperf3Download => "download_over_iperf3",
        }
    }

    /// Its value on `path` (`streams`: the parallel tests' connections).
    pub fn of(self, path: &PathResult, streams: u32) -> Option<f64> {
        let rr = || path.outcome(LoadKind::RequestResponse, 1);
        let latency = || rr().and_then(|o| o.latency_us);
        let down1 = || path.test(LoadKind::Download, 1);
        let gbit = |kind, n| path.outcome(kind, n).and_then(|o| o.gbit_per_s);
        let rate = |kind| path.outcome(kind, 1).and_then(|o| o.per_second);
        let ratio = |ours: Option<f64>, theirs: Option<f64>| {
            ours.zip(theirs.filter(|t| *t > 0.0)).map(|(o, t)| o / t)
        };
        match self {
            Metric::Download1 => gbit(LoadKind::Download, 1),
            Metric::DownloadN => gbit(LoadKind::Download, streams),
            Metric::Upload1 => gbit(LoadKind::Upload, 1),
            Metric::UploadN => gbit(LoadKind::Upload, streams),
            Metric::Rr => rate(LoadKind::RequestResponse),
            Metric::RrP50 => latency().map(|l| l.p50 as f64),
            Metric::RrP90 => latency().map(|l| l.p90 as f64),
            Metric::RrP99 => latency().map(|l| l.p99 as f64),
            Metric::RrP999 => latency().map(|l| l.p999 as f64),
            Metric::Crr => rate(LoadKind::ConnectRequest),
            Metric::Tls => rate(LoadKind::TlsHandshakeRequest),
            Metric::ClientCpu => down1()
                .and_then(|t| t.outcome.as_ref())
                .and_then(|o| o.cpu_seconds.map(|c| 100.0 * c / o.seconds)),
            Metric::ServerCpu => down1().and_then(|t| {
                let o = t.outcome.as_ref()?;
                Some(100.0 * t.server_cpu_seconds? / o.seconds)
            }),
            Metric::Mss => path
                .outcome(LoadKind::Download, 1)
                .and_then(|o| o.tcp_mss)
                .map(f64::from),
            Metric::PathMtu => path
                .outcome(LoadKind::Download, 1)
                .and_then(|o| o.path_mtu)
                .map(f64::from),
            Metric::Iperf3Upload => ratio(
                gbit(LoadKind::Upload, 1),
                path.iperf3.as_ref().and_then(|i| i.upload_gbit_per_s),
            ),
            Metric::Iperf3Download => ratio(
                gbit(LoadKind::Download, 1),
                path.iperf3.as_ref().and_then(|i| i.download_gbit_per_s),
            ),
        }
    }

    /// A value as a cell.
    fn cell(self, value: Option<f64>) -> String {
        let Some(v) = value else {
            return "-".into();
        };
        match self {
            Metric::Download1 | Metric::DownloadN | Metric::Upload1 | Metric::UploadN => {
                format!("{v:.2}")
            }
            Metric::Iperf3Upload | Metric::Iperf3Download => format!("{v:.2}×"),
            _ => format!("{v:.0}"),
        }
    }
}

/// `from → to`.
fn path_label(path: &PathResult) -> String {
    format!("{} → {}", path.from, path.to)
}

/// A table: left column, then right-aligned columns as wide as their widest cell, each line
/// indented by two spaces. With a `width` (a terminal's columns) a table wider than that is cut
/// into column groups one under the other, each led by the left column again, so every cell
/// stays on screen; a left column and one more wider than `width` still make a group.
fn table(out: &mut String, headings: &[String], rows: &[Vec<String>], width: Option<usize>) {
    let columns = headings.len();
    let mut widths: Vec<usize> = headings.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    // Each column takes two spaces before it.
    let span = |i: usize| 2 + widths[i];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    // No group yet (`usize::MAX`): the first column opens one, whatever the width.
    let mut used = usize::MAX;
    for i in 1..columns {
        let fits = width.is_none_or(|w| used.saturating_add(span(i)) <= w);
        match groups.last_mut() {
            Some(group) if fits => {
                group.push(i);
                used += span(i);
            }
            _ => {
                groups.push(vec![i]);
                used = span(0) + span(i);
            }
        }
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    let line = |cells: &[String], group: &[usize]| {
        let mut text = String::from("  ");
        let first = cells.first().map_or("", String::as_str);
        text.push_str(first);
        text.push_str(&" ".repeat(widths[0].saturating_sub(first.chars().count())));
        for &i in group {
            let cell = cells.get(i).map_or("", String::as_str);
            text.push_str("  ");
            text.push_str(&" ".repeat(widths[i].saturating_sub(cell.chars().count())));
            text.push_str(cell);
        }
        text.trim_end().to_string()
    };
    for group in &groups {
        let _ = writeln!(out, "{}", line(headings, group));
        for row in rows {
            let _ = writeln!(out, "{}", line(row, group));
        }
    }
}

/// Said under a table: tests that failed or counted errors, paths not measured.
fn notes(network: &NetworkResult, out: &mut String) {
    for path in &network.paths {
        let label = format!("{} {}", network.network, path_label(path));
        if let Some(error) = &path.error {
            let _ = writeln!(out, "  ! {label}: {error}");
        }
        for test in &path.tests {
            let what = format!("{label} {} ×{}", test.kind.name(), test.streams);
            if let Some(failure) = &test.failure {
                let _ = writeln!(out, "  ! {what}: {failure}");
            } else if let Some(o) = &test.outcome
                && o.errors > 0
            {
                let _ = writeln!(
                    out,
                    "  ! {what}: {} error(s), {} request(s) answered; first: {}",
                    o.errors,
                    o.requests,
                    o.first_error.as_deref().unwrap_or("-")
                );
            }
        }
        if let Some(iperf3) = &path.iperf3
            && let Some(error) = &iperf3.error
        {
            let _ = writeln!(out, "  ! {label} iperf3: {error}");
        }
    }
}

impl NetworkBenchReport {
    /// Whether a setup could not be measured.
    pub fn any_setup_failed(&self) -> bool {
        self.setups.iter().any(|s| s.error.is_some())
    }

    /// The text report, its tables as wide as they are: [`Self::text_fitting`] without a
    /// width.
    pub fn text(&self) -> String {
        self.text_fitting(None)
    }

    /// The text report: a heading, then per setup and network three tables of its paths
    /// ([`MetricGroup`]: throughput; request rates and latency; CPU, MSS and path MTU), each
    /// row a path `from → to`, each cell a value or `-` (not measured), with the failures and
    /// errors said under them; with several setups, one table per metric with a column per
    /// setup. `width`: a terminal's columns — a table wider than that is cut into column
    /// groups, each led by the path again (as `run`'s matrix); `None` (a file, a pipe):
    /// tables as wide as they are.
    pub fn text_fitting(&self, width: Option<usize>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "multinet bench network — {} setup(s), {:.1}s per test, {} stream(s) in the parallel tests, {} B answers",
            self.setups.len(),
            self.duration_ms as f64 / 1000.0,
            self.streams,
            self.answer_bytes
        );
        let _ = writeln!(out, "references: {}", self.references.said());
        if !self.validates_real_network {
            let _ = writeln!(
                out,
                "NOTE: the {} backend runs the agents and the load on loopback addresses of this machine; it validates no real network (the figures are this machine's loopback).",
                self.backend
            );
        }
        if self.estimated_ms > 0 {
            let _ = writeln!(
                out,
                "estimated before it began: about {:.0}s; the bench took {:.0}s",
                self.estimated_ms as f64 / 1000.0,
                self.elapsed_ms as f64 / 1000.0
            );
        }
        for setup in &self.setups {
            let place = if setup.lab.is_empty() {
                format!("{} backend", self.backend)
            } else {
                format!("lab {}", setup.lab)
            };
            // A setup whose lab was never built has no server yet: nothing to say of it.
            let server = match &setup.mesh {
                Some(mesh) => format!(", responders on {}", mesh.responders.join(", ")),
                None if setup.server_node.is_empty() => String::new(),
                None => format!(", server on {}", setup.server_node),
            };
            let _ = writeln!(
                out,
                "\nsetup {} ({}): {place}{server}",
                setup.name, setup.source
            );
            if let Some(mesh) = &setup.mesh {
                out.push_str(&mesh.text());
            }
            if let Some(error) = &setup.error {
                let _ = writeln!(out, "  ERROR: {error}");
            }
            for network in &setup.networks {
                let _ = writeln!(
                    out,
                    "{} ({}{})",
                    network.network,
                    network.cni,
                    network.mtu.map_or(String::new(), |m| format!(", MTU {m}"))
                );
                for group in MetricGroup::ALL {
                    let _ = writeln!(out, "  {}", group.title());
                    let mut headings = vec!["path".to_string()];
                    headings.extend(group.metrics().iter().map(|m| m.heading(self.streams)));
                    let rows: Vec<Vec<String>> = network
                        .paths
                        .iter()
                        .map(|path| {
                            let mut row = vec![path_label(path)];
                            row.extend(
                                group
                                    .metrics()
                                    .iter()
                                    .map(|m| m.cell(m.of(path, self.streams))),
                            );
                            row
                        })
                        .collect();
                    table(&mut out, &headings, &rows, width);
                }
                notes(network, &mut out);
            }
            if let Some(loopback) = &setup.loopback {
                out.push_str(&loopback.text());
            }
        }
        if self.setups.len() > 1 {
            out.push_str(&self.side_by_side(width));
        }
        out
    }

    /// One table per metric: rows network and path, a column per setup (cut to `width` as
    /// [`Self::text_fitting`]'s).
    fn side_by_side(&self, width: Option<usize>) -> String {
        let mut out = String::from("\nsetups side by side\n");
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for setup in &self.setups {
            for network in &setup.networks {
                for path in &network.paths {
                    let key = (network.network.clone(), path.from.clone(), path.to.clone());
                    if !rows.contains(&key) {
                        rows.push(key);
                    }
                }
            }
        }
        for metric in METRICS {
            let _ = writeln!(out, "{}", metric.key());
            let mut headings = vec!["network path".to_string()];
            headings.extend(self.setups.iter().map(|s| s.name.clone()));
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|(network, from, to)| {
                    let mut row = vec![format!("{network} {from} → {to}")];
                    for setup in &self.setups {
                        let value = setup
                            .networks
                            .iter()
                            .find(|n| &n.network == network)
                            .and_then(|n| n.paths.iter().find(|p| &p.from == from && &p.to == to))
                            .and_then(|p| metric.of(p, self.streams));
                        row.push(metric.cell(value));
                    }
                    row
                })
                .collect();
            table(&mut out, &headings, &cells, width);
        }
        out
    }

    /// CSV in long form: `setup,network,cni,from,to,metric,value`, one value a line.
    pub fn csv(&self) -> String {
        let mut out = String::from("setup,network,cni,from,to,metric,value\n");
        let field = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        for setup in &self.setups {
            for network in &setup.networks {
                for path in &network.paths {
                    for metric in METRICS {
                        if let Some(value) = metric.of(path, self.streams) {
                            let _ = writeln!(
                                out,
                                "{},{},{},{},{},{},{value}",
                                field(&setup.name),
                                field(&network.network),
                                field(&network.cni),
                                field(&path.from),
                                field(&path.to),
                                metric.key()
                            );
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multinet_agent::load::Latency;

    fn outcome(kind: LoadKind, gbit: Option<f64>, rate: Option<f64>) -> LoadOutcome {
        LoadOutcome {
            kind,
            streams: 1,
            seconds: 2.0,
            bytes: 1,
            requests: 10,
            errors: 0,
            first_error: None,
            gbit_per_s: gbit,
            per_second: rate,
            latency_us: rate.map(|_| Latency {
                p50: 10,
                p90: 20,
                p99: 30,
                p999: 40,
                max: 50,
                mean: 12.0,
            }),
            cpu_seconds: Some(1.0),
            tcp_mss: Some(1448),
            path_mtu: Some(1500),
        }
    }

    fn path(from: &str, down: f64) -> PathResult {
        let mut p = PathResult::new(from, "n1", "198.18.1.1".parse().expect("ip"));
        for (kind, g, r) in [
            (LoadKind::Download, Some(down), None),
            (LoadKind::RequestResponse, None, Some(5000.0)),
        ] {
            p.tests.push(TestResult {
                kind,
                streams: 1,
                outcome: Some(outcome(kind, g, r)),
                server_cpu_seconds: Some(0.5),
                failure: None,
            });
        }
        p.iperf3 = Some(Iperf3 {
            upload_gbit_per_s: None,
            download_gbit_per_s: Some(down * 2.0),
            error: None,
        });
        p
    }

    fn report(setups: &[(&str, f64)]) -> NetworkBenchReport {
        NetworkBenchReport {
            kind: "bench_network".into(),
            backend: "lab".into(),
            validates_real_network: true,
            estimated_ms: 0,
            elapsed_ms: 0,
            duration_ms: 2000,
            streams: 4,
            answer_bytes: 64,
            references: Tools::default(),
            setups: setups
                .iter()
                .map(|(name, down)| SetupResult {
                    name: (*name).into(),
                    source: format!("{name}.yaml"),
                    lab: "b1".into(),
                    server_node: "n1".into(),
                    mesh: None,
                    networks: vec![NetworkResult {
                        network: "public".into(),
                        cni: "macvlan".into(),
                        mtu: None,
                        paths: vec![path("n2", *down)],
                    }],
                    loopback: None,
                    error: None,
                    describe: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn metrics_are_read_from_the_tests_and_references() {
        let p = path("n2", 3.0);
        assert_eq!(Metric::Download1.of(&p, 4), Some(3.0));
        assert_eq!(Metric::DownloadN.of(&p, 4), None);
        assert_eq!(Metric::Rr.of(&p, 4), Some(5000.0));
        assert_eq!(Metric::RrP999.of(&p, 4), Some(40.0));
        // 1 s of CPU in a 2 s test: half a core.
        assert_eq!(Metric::ClientCpu.of(&p, 4), Some(50.0));
        assert_eq!(Metric::ServerCpu.of(&p, 4), Some(25.0));
        assert_eq!(Metric::Iperf3Download.of(&p, 4), Some(0.5));
        assert_eq!(Metric::Iperf3Upload.of(&p, 4), None);
    }

    #[test]
    fn two_setups_give_two_columns_side_by_side_and_in_csv() {
        let r = report(&[("macvlan", 3.0), ("bridge", 5.0)]);
        let text = r.text();
        let side = text
            .split("setups side by side\n")
            .nth(1)
            .expect("side by side");
        let mut lines = side.lines();
        assert_eq!(lines.next(), Some("download_1_gbit_per_s"));
        let heading: Vec<&str> = lines.next().expect("heading").split_whitespace().collect();
        assert_eq!(heading, ["network", "path", "macvlan", "bridge"]);
        let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
        assert_eq!(row, ["public", "n2", "→", "n1", "3.00", "5.00"]);
        let csv = r.csv();
        assert!(
            csv.lines()
                .any(|l| l == "bridge,public,macvlan,n2,n1,download_1_gbit_per_s,5")
        );
        assert_eq!(
            csv.lines().next(),
            Some("setup,network,cni,from,to,metric,value")
        );
    }

    /// A setup whose lab was refused (ipvlan where the kernel has none) says so under its
    /// heading, which names no server (it had none: "server on " was printed).
    #[test]
    fn a_setup_never_built_names_no_server_and_says_why() {
        let mut r = report(&[("macvlan", 3.0), ("ipvlan", 1.0)]);
        let refused = &mut r.setups[1];
        refused.server_node = String::new();
        refused.networks.clear();
        refused.error = Some("building the lab: missing: ipvlan links".into());
        let text = r.text();
        let heading = text
            .lines()
            .find(|l| l.starts_with("setup ipvlan"))
            .expect("ipvlan's heading");
        assert!(heading.ends_with(": lab b1"), "{heading}");
        assert!(
            text.contains(&format!(
                "{heading}\n  ERROR: building the lab: missing: ipvlan links\n"
            )),
            "{text}"
        );
        let macvlan = text.lines().find(|l| l.starts_with("setup macvlan"));
        assert!(
            macvlan.is_some_and(|l| l.ends_with(", server on n1")),
            "{text}"
        );
    }

    #[test]
    fn one_setup_has_no_side_by_side_tables() {
        let text = report(&[("default", 1.0)]).text();
        assert!(!text.contains("side by side"), "{text}");
        assert!(text.contains("throughput, Gbit/s"), "{text}");
        assert!(!text.contains("validates no real network"), "{text}");
    }

    /// A path on which every test ran, figures of a lab path's size (`n` is added to each, so
    /// that the paths' cells differ).
    fn measured_path(from: &str, n: f64) -> PathResult {
        let mut p = PathResult::new(from, "n1", "198.18.1.1".parse().expect("ip"));
        for (kind, streams, gbit, rate) in [
            (LoadKind::Download, 1, Some(16.9 + n), None),
            (LoadKind::Download, 4, Some(20.0 + n), None),
            (LoadKind::Upload, 1, Some(18.3 + n), None),
            (LoadKind::Upload, 4, Some(19.7 + n), None),
            (LoadKind::RequestResponse, 1, None, Some(14608.0 + n)),
            (LoadKind::ConnectRequest, 1, None, Some(12564.0 + n)),
            (LoadKind::TlsHandshakeRequest, 1, None, Some(1951.0 + n)),
        ] {
            let mut o = outcome(kind, gbit, rate);
            o.streams = streams;
            o.latency_us = rate.map(|_| Latency {
                p50: 71,
                p90: 98,
                p99: 135,
                p999: 1210,
                max: 4000,
                mean: 75.0,
            });
            if gbit.is_none() {
                (o.tcp_mss, o.path_mtu) = (None, None);
            }
            p.tests.push(TestResult {
                kind,
                streams,
                outcome: Some(o),
                server_cpu_seconds: Some(1.8),
                failure: None,
            });
        }
        p.iperf3 = Some(Iperf3 {
            upload_gbit_per_s: Some(19.7),
            download_gbit_per_s: Some(20.4),
            error: None,
        });
        p
    }

    /// One setup, public and cluster, paths from n1, n2 and n3 to the server on n1, every
    /// test measured; cluster's n3 path not measured at all.
    fn measured_report(names: &[&str]) -> NetworkBenchReport {
        let mut r = report(&names.iter().map(|n| (*n, 1.0)).collect::<Vec<_>>());
        for setup in &mut r.setups {
            setup.networks = ["public", "cluster"]
                .into_iter()
                .map(|network| NetworkResult {
                    network: network.into(),
                    cni: "macvlan".into(),
                    mtu: Some(1500),
                    paths: ["n1", "n2", "n3"]
                        .into_iter()
                        .enumerate()
                        .map(|(i, from)| match (network, from) {
                            ("cluster", "n3") => PathResult::unmeasured(
                                from,
                                "n1",
                                "the client pod got no address".into(),
                            ),
                            _ => measured_path(from, i as f64),
                        })
                        .collect(),
                })
                .collect();
        }
        r
    }

    /// The cells of a text's tables (the words after the path `from → to` of its lines that
    /// begin with one; side by side, after the network too), sorted; a table cut into groups
    /// has the same cells as uncut.
    fn cells(text: &str) -> Vec<String> {
        let mut cells: Vec<String> = text
            .lines()
            .filter(|l| l.contains(" → ") && !l.starts_with("  !"))
            .flat_map(|l| {
                let (_, after) = l.split_once(" → ").unwrap_or_default();
                after.split_whitespace().skip(1).map(str::to_string)
            })
            .collect();
        cells.sort();
        cells
    }

    #[test]
    fn the_groups_hold_every_metric_once() {
        let grouped: Vec<Metric> = MetricGroup::ALL
            .iter()
            .flat_map(|g| g.metrics().iter().copied())
            .collect();
        assert_eq!(grouped.len(), METRICS.len(), "{grouped:?}");
        for metric in METRICS {
            assert_eq!(
                grouped.iter().filter(|m| **m == metric).count(),
                1,
                "{metric:?} in {grouped:?}"
            );
        }
    }

    /// Per setup and network, three tables of related columns, each within 80 columns, and
    /// every metric's value of every path in one of them (the same cells as the CSV).
    #[test]
    fn each_network_has_three_tables_within_80_columns_with_every_value() {
        let r = measured_report(&["default"]);
        let text = r.text();
        let wide: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.chars().count() > 80)
            .collect();
        assert_eq!(wide, Vec::<&str>::new(), "{text}");
        for group in MetricGroup::ALL {
            assert_eq!(text.matches(group.title()).count(), 2, "{text}");
        }
        let mut expected: Vec<String> = r.setups[0]
            .networks
            .iter()
            .flat_map(|n| &n.paths)
            .flat_map(|p| METRICS.map(|m| m.cell(m.of(p, r.streams))))
            .collect();
        expected.sort();
        assert_eq!(cells(&text), expected, "{text}");
        // The path not measured: a row of dashes in each table, and why under them.
        assert!(
            text.contains("  ! cluster n3 → n1: the client pod got no address"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    /// On a terminal narrower than a table, the table is cut into column groups, each led by
    /// the path; no line is wider than the terminal, and no cell is lost. Side by side too.
    #[test]
    fn on_a_narrow_terminal_tables_are_cut_into_groups_keeping_every_cell() {
        let mut r = measured_report(&["macvlan", "bridge", "ipvlan", "host-device", "jumbo"]);
        // A cluster's node names are longer than the lab's, and a mesh's paths name two.
        let long = |node: &str| format!("worker-{node}.ocp.example.com");
        for setup in &mut r.setups {
            for network in &mut setup.networks {
                for path in &mut network.paths {
                    (path.from, path.to) = (long(&path.from), long(&path.to));
                }
            }
        }
        let wide = r.text();
        for width in [100, 80] {
            let narrow = r.text_fitting(Some(width));
            // Table lines; titles and notes are text the terminal may wrap.
            let over: Vec<&str> = narrow
                .lines()
                .filter(|l| {
                    l.contains(" → ") || l.starts_with("  path") || l.starts_with("  network")
                })
                .filter(|l| !l.starts_with("  !") && l.chars().count() > width)
                .collect();
            assert_eq!(over, Vec::<&str>::new(), "{width}: {narrow}");
            assert!(
                narrow.lines().count() > wide.lines().count(),
                "{width}: cut into groups"
            );
            assert_eq!(cells(&narrow), cells(&wide), "{width}: every cell");
        }
        // Wide enough: as without a width.
        assert_eq!(r.text_fitting(Some(1000)), wide);
    }

    /// A node with other daemons only has a responder on public alone: the cluster network's
    /// pairs leave it out, and the report says each network's pairs apart.
    #[test]
    fn a_mesh_says_each_networks_pairs_when_they_differ() {
        use multinet_proto::network::CephNetwork::{Cluster, Public};
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let attached = |n: &str| {
            if n == "n3" {
                vec![Public]
            } else {
                vec![Public, Cluster]
            }
        };
        let on: Vec<(String, Vec<multinet_proto::network::CephNetwork>)> =
            nodes.iter().map(|n| (n.clone(), attached(n))).collect();
        let targeting = crate::mesh::Targeting::mesh(&nodes, &on, 1);
        let responders = nodes
            .iter()
            .map(|n| {
                let node = crate::mesh::Responder {
                    node: n.clone(),
                    listeners: Vec::new(),
                };
                (crate::mesh::responder_pod(n), node)
            })
            .collect();
        let mesh = MeshCoverage::of(&targeting, &responders).expect("a mesh");
        let of = |network: &str| {
            &mesh
                .networks
                .iter()
                .find(|n| n.network == network)
                .unwrap_or_else(|| panic!("{network}: {mesh:?}"))
                .pairs
        };
        assert!(of("cluster").iter().all(|(_, to)| to != "n3"), "{mesh:?}");
        assert!(of("public").iter().any(|(_, to)| to == "n3"), "{mesh:?}");
        let text = mesh.text();
        assert!(
            text.contains("  public (") && text.contains("  cluster ("),
            "{text}"
        );
    }

    #[test]
    fn a_mesh_says_its_pairs_and_a_local_bench_that_it_validates_no_network() {
        let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let responders: Vec<(String, Vec<multinet_proto::network::CephNetwork>)> = nodes
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    vec![multinet_proto::network::CephNetwork::Public],
                )
            })
            .collect();
        let targeting = crate::mesh::Targeting::mesh(&nodes, &responders, 1);
        let responders = nodes
            .iter()
            .map(|n| {
                (
                    crate::mesh::responder_pod(n),
                    crate::mesh::Responder {
                        node: n.clone(),
                        listeners: Vec::new(),
                    },
                )
            })
            .collect();
        let mesh = MeshCoverage::of(&targeting, &responders).expect("a mesh");
        assert_eq!(mesh.peers_per_node, Some(1));
        assert_eq!(mesh.responders, nodes);
        assert_eq!(mesh.pairs.len(), 6, "own and one peer each: {mesh:?}");
        assert_eq!(mesh.networks.len(), 1);
        assert_eq!(mesh.networks[0].pairs, mesh.pairs);
        assert!(MeshCoverage::of(&crate::mesh::Targeting::Single, &responders).is_none());
        let mut r = report(&[("local", 1.0)]);
        r.backend = "local".into();
        r.validates_real_network = false;
        r.setups[0].mesh = Some(mesh);
        let text = r.text();
        assert!(text.contains("it validates no real network"), "{text}");
        assert!(text.contains("responders on n1, n2, n3"), "{text}");
        assert!(
            text.contains("6 pair(s)") && text.contains("  n1 → n1 n"),
            "{text}"
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["validates_real_network"], false);
        assert_eq!(
            json["setups"][0]["mesh"]["pairs"][0],
            serde_json::json!(["n1", "n1"])
        );
    }
}
