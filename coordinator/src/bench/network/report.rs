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

mod metric;
#[cfg(test)]
mod tests;
mod text;

pub use metric::{METRICS, Metric, MetricGroup};

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
    /// The share of this machine's CPUs busy in the second before the bench began (other
    /// work competing with the tests), % of all CPUs; `None` on kube (the tests run on the
    /// cluster's nodes) and where `/proc/stat` cannot be read.
    #[serde(default)]
    pub machine_busy_before_percent: Option<f64>,
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
    /// Whether a setup could not be measured.
    pub fn any_setup_failed(&self) -> bool {
        self.setups.iter().any(|s| s.error.is_some())
    }

    /// An empty report of `request`.
    pub fn new(request: &super::NetworkBenchRequest) -> Self {
        Self {
            kind: "bench_network".into(),
            backend: request.backend.name().into(),
            validates_real_network: request.backend != super::BenchBackend::Local,
            estimated_ms: 0,
            elapsed_ms: 0,
            machine_busy_before_percent: None,
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
    /// What its topology's check warned of (an unknown key ignored, …): the setup measured
    /// may not be the one meant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
            warnings: Vec::new(),
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
            warnings: Vec::new(),
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
