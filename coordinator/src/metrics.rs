//! Live metrics of a run (`multinet run --metrics-addr ADDR:PORT`, `metricsAddr:`): what the
//! run measures so far, in the Prometheus/OpenMetrics text format at `GET /metrics`, for as
//! long as the run lasts.
//!
//! * [`RunMetrics`] — the registry and the run-wide metrics (agents, results, stage,
//!   elapsed); the supervisor updates these at each look at the run.
//! * [`PathMetrics`] — the per-path metrics, updated by the matrix actor as it records each
//!   batch ([`crate::matrix_actor`]): metric handles are looked up once per client path and
//!   kept, so a result costs a few atomic increments and one histogram lock.
//! * [`MetricsServer`] — the HTTP endpoint (hyper, as the agent's probe server), stopped at
//!   the end of the run.
//!
//! Labels are bounded by the placement, never by the number of agents: network, source node
//! (the client's), target node (the server's), probe kind, and result (`ok` or the failure
//! class the report uses). Names follow Prometheus' conventions: prefix `multinet_`, the unit
//! in the name, `_total` for counters. `multinet_path_up` and the outage counters apply the
//! outage rule of the soak's `outage` finding ([`crate::outage`]) as results arrive; where
//! their figures differ from the report's (host checkers counted, every window rather than
//! each path's 8 kept, paths let go when the server listens anew) is README's "Live metrics".
//!
//! This module must not decide anything about the run: it only shows what the supervisor and
//! the matrix actor tell it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use multinet_proto::control::ProbeResult;
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Connection, FailureClass, Outcome, Payload, ProbeKind, Scheme};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::outage::{LiveOutage, OutageRule, PathChange};

/// Upper bounds of the latency histogram's buckets, seconds: 100 µs to 10 s, about three a
/// decade (the matrix's own histogram spans the same range).
pub const LATENCY_BUCKETS_S: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The stages `multinet_run_stage` knows, in the order a run goes through them.
pub const STAGES: [&str; 6] = ["server", "place_agents", "probe", "soak", "stop", "report"];

/// The media type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `multinet_probes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    network: &'static str,
    source_node: String,
    target_node: String,
    kind: &'static str,
    result: String,
}

/// Labels of `multinet_probe_latency_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    network: &'static str,
    source_node: String,
    target_node: String,
    kind: &'static str,
}

/// Labels of the per-path gauges and outage counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    network: &'static str,
    source_node: String,
    target_node: String,
}

/// Labels of `multinet_run_stage`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// A probe kind as a label value: `http_small_fresh` … `https_large_kept_alive`.
pub fn kind_label(kind: ProbeKind) -> &'static str {
    match (kind.scheme, kind.payload, kind.connection) {
        (Scheme::Http, Payload::Small, Connection::Fresh) => "http_small_fresh",
        (Scheme::Http, Payload::Small, Connection::KeptAlive) => "http_small_kept_alive",
        (Scheme::Http, Payload::Large, Connection::Fresh) => "http_large_fresh",
        (Scheme::Http, Payload::Large, Connection::KeptAlive) => "http_large_kept_alive",
        (Scheme::Https, Payload::Small, Connection::Fresh) => "https_small_fresh",
        (Scheme::Https, Payload::Small, Connection::KeptAlive) => "https_small_kept_alive",
        (Scheme::Https, Payload::Large, Connection::Fresh) => "https_large_fresh",
        (Scheme::Https, Payload::Large, Connection::KeptAlive) => "https_large_kept_alive",
    }
}

/// The registry and every metric family of a run; cloning shares them.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    registry: Arc<Registry>,
    probes: Family<ProbeLabels, Counter>,
    latency: HistogramFamily<KindLabels>,
    path_up: Family<PathLabels, Gauge>,
    outages: Family<PathLabels, Counter>,
    outage_seconds: Family<PathLabels, Counter<f64, AtomicU64>>,
    agents_connected: Gauge,
    agents_expected: Gauge,
    results_lost: Counter,
    results_recorded: Counter,
    stage: Family<StageLabels, Gauge>,
    elapsed: Gauge<f64, AtomicU64>,
}

impl Default for RunMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RunMetrics {
    /// Every family registered, none with a series yet but the run-wide ones.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("multinet");
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "probes",
            "Probe results recorded, by network, client node, server node, probe kind and result (ok or the failure class)",
            probes.clone(),
        );
        let latency: HistogramFamily<KindLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "probe_latency",
            "Latency of successful probes",
            Unit::Seconds,
            latency.clone(),
        );
        let path_up = Family::<PathLabels, Gauge>::default();
        registry.register(
            "path_up",
            "1 while a node's paths to the server's node on a network are up, 0 while they are in an outage (the soak's outage rule: down for at least two probe intervals and a probe timeout)",
            path_up.clone(),
        );
        let outages = Family::<PathLabels, Counter>::default();
        registry.register(
            "outages",
            "Outages of a node's paths on a network (the soak's outage rule), counted once they have lasted the shortest outage",
            outages.clone(),
        );
        let outage_seconds = Family::<PathLabels, Counter<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "outage",
            "Time in those outages, the agents' clock",
            Unit::Seconds,
            outage_seconds.clone(),
        );
        let agents_connected = Gauge::default();
        registry.register(
            "agents_connected",
            "Agents connected to the control plane now",
            agents_connected.clone(),
        );
        let agents_expected = Gauge::default();
        registry.register(
            "agents_expected",
            "Agents the run placed or will place (server, clients, host checkers)",
            agents_expected.clone(),
        );
        let results_lost = Counter::default();
        registry.register(
            "results_lost",
            "Probe results agents reported dropped from their full resend buffers",
            results_lost.clone(),
        );
        let results_recorded = Counter::default();
        registry.register(
            "results_recorded",
            "Probe results the coordinator recorded",
            results_recorded.clone(),
        );
        let stage = Family::<StageLabels, Gauge>::default();
        registry.register(
            "run_stage",
            "1 for the stage the run is in (server, place_agents, probe, soak, stop, report), 0 for the others",
            stage.clone(),
        );
        for name in STAGES {
            stage.get_or_create(&StageLabels { stage: name }).set(0);
        }
        let elapsed = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "run_elapsed",
            "Time since the run started",
            Unit::Seconds,
            elapsed.clone(),
        );
        Self {
            registry: Arc::new(registry),
            probes,
            latency,
            path_up,
            outages,
            outage_seconds,
            agents_connected,
            agents_expected,
            results_lost,
            results_recorded,
            stage,
            elapsed,
        }
    }

    /// The exposition, OpenMetrics text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a metric.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding the metrics: {e}");
        }
        out
    }

    /// The run is in `stage` (one of [`STAGES`]; another name is ignored).
    pub fn set_stage(&self, stage: &str) {
        for name in STAGES {
            self.stage
                .get_or_create(&StageLabels { stage: name })
                .set(i64::from(name == stage));
        }
    }

    /// The run's agents: connected now, and expected in all.
    pub fn set_agents(&self, connected: usize, expected: usize) {
        self.agents_connected.set(connected as i64);
        self.agents_expected.set(expected as i64);
    }

    /// Time since the run started.
    pub fn set_elapsed(&self, elapsed: std::time::Duration) {
        self.elapsed.set(elapsed.as_secs_f64());
    }
}

/// The metric handles of one client path (network, target, probe kind), found once.
#[derive(Debug)]
struct PathHandles {
    ok: Counter,
    failed: HashMap<FailureClass, Counter>,
    latency: Histogram,
    labels: ProbeLabels,
    /// Index of its node's [`NodeOutage`] in `PathMetrics::nodes`.
    node: usize,
    /// Down in its node's [`LiveOutage`]: its last result counted there failed. Its own, not
    /// the matrix's, so that a path let go ([`PathMetrics::set_let_go`]) or a resumed
    /// run's path first seen down counts once each way.
    down: bool,
    /// Its last result's time, ms on the run's clock: where a path let go while down ends.
    last_ms: u64,
}

/// The outage state and metrics of a node's paths to the server's node on one network.
#[derive(Debug)]
struct NodeOutage {
    live: LiveOutage,
    up: Gauge,
    outages: Counter,
    outage_seconds: Counter<f64, AtomicU64>,
    /// What `outages` and `outage_seconds` show so far, to add only the difference.
    shown: (u64, u64),
}

impl NodeOutage {
    /// One path's `change` at `at_ms`, and the metrics brought up to date.
    fn observe(&mut self, change: PathChange, at_ms: u64) {
        self.live.observe(change, at_ms);
        self.up.set(i64::from(!self.live.down()));
        let (outages, down_ms) = (self.live.outages(), self.live.down_ms());
        if outages > self.shown.0 {
            self.outages.inc_by(outages - self.shown.0);
        }
        if down_ms > self.shown.1 {
            self.outage_seconds
                .inc_by((down_ms - self.shown.1) as f64 / 1000.0);
        }
        self.shown = (outages.max(self.shown.0), down_ms.max(self.shown.1));
    }
}

/// The per-path part, owned by the matrix actor.
#[derive(Debug)]
pub struct PathMetrics {
    run: RunMetrics,
    rule: OutageRule,
    /// The node of the server every client probes.
    target_node: String,
    /// A mesh run's responder node of each target address ([`Self::set_target_nodes`]);
    /// an address not in it is the server's, on `target_node`.
    target_nodes: HashMap<SocketAddr, String>,
    /// Client pod → its paths' handles.
    clients: HashMap<String, HashMap<(CephNetwork, SocketAddr, ProbeKind), PathHandles>>,
    /// The addresses the server or a responder listened on and no longer does
    /// ([`Self::set_let_go`]): paths to them no longer count in outages.
    let_go: HashSet<SocketAddr>,
    /// (network, client node, target node) → index in `nodes`.
    node_index: HashMap<(CephNetwork, String, String), usize>,
    nodes: Vec<NodeOutage>,
}

impl PathMetrics {
    /// Per-path metrics into `run`'s registry, with the run's outage rule; every client
    /// probes the server on `target_node`.
    pub fn new(run: RunMetrics, rule: OutageRule, target_node: String) -> Self {
        Self {
            run,
            rule,
            target_node,
            target_nodes: HashMap::new(),
            clients: HashMap::new(),
            let_go: HashSet::new(),
            node_index: HashMap::new(),
            nodes: Vec::new(),
        }
    }

    /// A mesh run's responders: the node of each target address, so that each path is
    /// labelled with the node it probes (`target_node`).
    pub fn set_target_nodes(&mut self, target_nodes: HashMap<SocketAddr, String>) {
        self.target_nodes = target_nodes;
    }

    /// The addresses the server (a mesh's responders) listened on and no longer does, each
    /// let go by its own pod's new listeners ([`crate::roster`]): a path to one is one its
    /// client let go (the server restarted with other listeners): it no longer counts in its
    /// node's outage — one down is up from its last result, so that its node's outage closes
    /// (it would stay open for good, and swallow the node's next outages, as no result of that
    /// path will come to close it) — and results to it that still arrive count as probes
    /// only. An address listened on again is no longer let go and counts again. Any other
    /// address counts: a resumed run's responder that has not said its listeners again yet
    /// is not let go.
    pub fn set_let_go(&mut self, let_go: HashSet<SocketAddr>) {
        for paths in self.clients.values_mut() {
            for ((_, target, _), path) in paths.iter_mut() {
                if path.down && let_go.contains(target) {
                    path.down = false;
                    self.nodes[path.node].observe(PathChange::CameUp, path.last_ms);
                }
            }
        }
        self.let_go = let_go;
    }

    /// A batch of `results` results was recorded, and its agent said it dropped `dropped`.
    pub fn batch(&self, results: usize, dropped: u64) {
        self.run.results_recorded.inc_by(results as u64);
        self.run.results_lost.inc_by(dropped);
    }

    /// One result of `client` on `node` (recorded in the matrix:
    /// [`crate::matrix::PathMatrix::record_with`]). What it did to its path's up/down state
    /// is the path's own here (its handles keep whether it is down).
    pub fn result(&mut self, client: &str, node: &str, r: &ProbeResult) {
        let key = (r.network, r.target, r.kind);
        if !self
            .clients
            .get(client)
            .is_some_and(|p| p.contains_key(&key))
        {
            let handles = self.handles(node, r);
            self.clients
                .entry(client.to_string())
                .or_default()
                .insert(key, handles);
        }
        let Some(path) = self.clients.get_mut(client).and_then(|p| p.get_mut(&key)) else {
            return;
        };
        match r.outcome {
            Outcome::Ok => {
                path.ok.inc();
                path.latency.observe(f64::from(r.latency_us) / 1e6);
            }
            Outcome::Failed(class) => {
                let run = &self.run;
                let labels = &path.labels;
                path.failed
                    .entry(class)
                    .or_insert_with(|| {
                        run.probes.get_or_create_owned(&ProbeLabels {
                            result: class.to_string(),
                            ..labels.clone()
                        })
                    })
                    .inc();
            }
        }
        if self.let_go.contains(&r.target) {
            // A path let go: its late results are probes, no outage.
            return;
        }
        let failed = matches!(r.outcome, Outcome::Failed(_));
        let change = match (path.down, failed) {
            (false, false) => PathChange::StayedUp,
            (false, true) => PathChange::WentDown,
            (true, true) => PathChange::StayedDown,
            (true, false) => PathChange::CameUp,
        };
        path.down = failed;
        path.last_ms = path.last_ms.max(r.started_ms);
        self.nodes[path.node].observe(change, r.started_ms);
    }

    fn handles(&mut self, node: &str, r: &ProbeResult) -> PathHandles {
        let network = r.network.key();
        let target_node = self
            .target_nodes
            .get(&r.target)
            .unwrap_or(&self.target_node)
            .clone();
        let path_labels = PathLabels {
            network,
            source_node: node.to_string(),
            target_node: target_node.clone(),
        };
        let index_key = (r.network, node.to_string(), target_node.clone());
        let index = match self.node_index.get(&index_key) {
            Some(i) => *i,
            None => {
                let up = self.run.path_up.get_or_create_owned(&path_labels);
                up.set(1);
                self.nodes.push(NodeOutage {
                    live: LiveOutage::new(self.rule),
                    up,
                    outages: self.run.outages.get_or_create_owned(&path_labels),
                    outage_seconds: self.run.outage_seconds.get_or_create_owned(&path_labels),
                    shown: (0, 0),
                });
                self.node_index.insert(index_key, self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        let kind = kind_label(r.kind);
        let labels = ProbeLabels {
            network,
            source_node: node.to_string(),
            target_node: target_node.clone(),
            kind,
            result: "ok".into(),
        };
        PathHandles {
            ok: self.run.probes.get_or_create_owned(&labels),
            failed: HashMap::new(),
            latency: self.run.latency.get_or_create_owned(&KindLabels {
                network,
                source_node: node.to_string(),
                target_node,
                kind,
            }),
            labels,
            node: index,
            down: false,
            last_ms: 0,
        }
    }
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound (in use, not this host's, a privileged port).
    #[error("serving metrics: cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The HTTP endpoint: `GET /metrics`, until [`MetricsServer::stop`].
#[derive(Debug)]
pub struct MetricsServer {
    /// The address bound (the port chosen when 0 was asked for).
    addr: SocketAddr,
    /// What it serves.
    metrics: RunMetrics,
    /// Cancelled to stop accepting and end open connections.
    stop: CancellationToken,
    /// The accept loop; its connections are tracked by `connections`.
    task: tokio::task::JoinHandle<()>,
    /// Open connections, waited for on stop.
    connections: tokio_util::task::TaskTracker,
}

impl MetricsServer {
    /// Binds `addr` (before the run makes anything: a run whose address is taken is refused
    /// with nothing to remove); [`Self::serve`] serves on it.
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] when `addr` cannot be bound.
    pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
        let listen = |source| Error::Listen { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        Ok(listener)
    }

    /// Serves `metrics` on `listener` ([`Self::bind`]). Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] when the listener cannot join the runtime.
    pub fn serve(listener: std::net::TcpListener, metrics: RunMetrics) -> Result<Self, Error> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let listen = |source| Error::Listen { addr, source };
        let listener = TcpListener::from_std(listener).map_err(listen)?;
        let stop = CancellationToken::new();
        let connections = tokio_util::task::TaskTracker::new();
        let task = tokio::spawn(accept(
            listener,
            metrics.clone(),
            stop.clone(),
            connections.clone(),
        ));
        Ok(Self {
            addr,
            metrics,
            stop,
            task,
            connections,
        })
    }

    /// The metrics it serves.
    pub fn metrics(&self) -> &RunMetrics {
        &self.metrics
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends open connections, and waits for both.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.connections.close();
        self.connections.wait().await;
    }
}

async fn accept(
    listener: TcpListener,
    metrics: RunMetrics,
    stop: CancellationToken,
    connections: tokio_util::task::TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: let connections end before trying again.
                    tracing::debug!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (metrics, stop) = (metrics.clone(), stop.clone());
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = stop.cancelled() => {}
            }
            // A scrape under way gets its answer; an idle kept-alive connection closes.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
}

fn respond<B>(metrics: &RunMetrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "multinet serves /metrics only\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests;
