//! The bench's load generator (`multinet bench network`): one test, from this process's network
//! namespace, against a probe server's listener — bulk download or upload over one or more
//! kept-alive connections, request/response on kept-alive connections (netperf's TCP_RR), or a
//! new connection per request, plain or TLS (TCP_CRR). Every test ends by itself: at its
//! deadline, after [`MAX_REQUESTS`], or when every connection failed for good; each connect,
//! handshake and request has its own time limit.
//!
//! Measures what this end sees: bytes the server sent before the deadline (download), bytes
//! the server said it received (upload: each body ends at the deadline, and the answer counts
//! it), requests completed, latency per request in a histogram, this process's CPU time
//! ([`cpu_seconds`]), the TCP MSS and path MTU of a bulk connection (IPv4 and IPv6).
//!
//! Owns its sockets only; knows nothing about the control plane or the coordinator.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Body, Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONNECTION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsConnector;

/// The most connections one test opens at once.
pub const MAX_STREAMS: u32 = 64;
/// The longest test.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// The most requests one test makes, all connections together.
pub const MAX_REQUESTS: u64 = 100_000_000;
/// How long a connect, a TLS handshake, or one request's answer may take.
const STEP_LIMIT: Duration = Duration::from_secs(5);
/// An upload body's size at most (the server's bound, `server::UPLOAD_MAX`): a body ends there
/// or at the deadline, whichever is first.
const UPLOAD_BODY_MAX: u64 = crate::server::UPLOAD_MAX;
/// A download request's size (the server's largest payload).
const DOWNLOAD_BYTES: u64 = crate::server::PAYLOAD_MAX;
/// Blocks an upload body is sent in.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
/// How long a connection waits after a failure before it tries again.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);
/// Latencies above this are recorded as this (µs): one step's limit.
const LATENCY_MAX_US: u64 = 10_000_000;

/// What a test does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// `GET /payload` of the server's largest payload, again and again, on each connection.
    Download,
    /// `POST /upload` bodies of zeros on each connection.
    Upload,
    /// Small requests one after another on each kept-alive connection (TCP_RR).
    RequestResponse,
    /// A new TCP connection per request, closed after it (TCP_CRR).
    ConnectRequest,
    /// A new TCP connection and a full TLS handshake (no resumption) per request.
    TlsHandshakeRequest,
}

impl LoadKind {
    /// Its name on a command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Upload => "upload",
            Self::RequestResponse => "rr",
            Self::ConnectRequest => "crr",
            Self::TlsHandshakeRequest => "tls",
        }
    }

    /// The kind named `name` ([`Self::name`]).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Download,
            Self::Upload,
            Self::RequestResponse,
            Self::ConnectRequest,
            Self::TlsHandshakeRequest,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// One test.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// What it does.
    pub kind: LoadKind,
    /// The listener: HTTP, or HTTPS for [`LoadKind::TlsHandshakeRequest`].
    pub target: SocketAddr,
    /// The address connections leave from (`None`: the kernel's choice).
    pub source: Option<IpAddr>,
    /// The interface connections are bound to (`SO_BINDTODEVICE`), so they leave only by
    /// the network under test.
    pub device: Option<String>,
    /// Connections at once (bulk transfers and request/response; the connection-rate tests
    /// use one), 1 to [`MAX_STREAMS`].
    pub streams: u32,
    /// How long it lasts, at most [`MAX_DURATION`].
    pub duration: Duration,
    /// The body size of request/response and connection-rate answers (`/payload?bytes=N`).
    pub answer_bytes: u64,
    /// HTTPS: the client configuration (trusting the run CA) and the name to verify.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// The largest.
    pub max: u64,
    /// The mean.
    pub mean: f64,
}

/// What a test measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadOutcome {
    /// What it did.
    pub kind: LoadKind,
    /// Connections at once.
    pub streams: u32,
    /// Seconds from the first connect to the last answer counted.
    pub seconds: f64,
    /// Payload bytes moved (download: received before the deadline; upload: as the server
    /// counted them).
    pub bytes: u64,
    /// Requests answered in full.
    pub requests: u64,
    /// Connects, handshakes or requests that failed.
    pub errors: u64,
    /// The first failure, said.
    pub first_error: Option<String>,
    /// Bulk transfers: Gbit/s (`bytes × 8 / seconds`).
    pub gbit_per_s: Option<f64>,
    /// Request tests: requests per second.
    pub per_second: Option<f64>,
    /// Request tests: latency of each request (connect and handshake included where the
    /// test makes a connection per request).
    pub latency_us: Option<Latency>,
    /// CPU time this process used during the test, seconds (user + system, `/proc/self/stat`).
    pub cpu_seconds: Option<f64>,
    /// Bulk transfers: the TCP maximum segment size of a connection (`TCP_MAXSEG`) at its end.
    pub tcp_mss: Option<u32>,
    /// Bulk transfers: the kernel's path MTU of a connection at its end, bytes — `IP_MTU`
    /// over IPv4, `IPV6_MTU` over IPv6 (ipv6(7)).
    pub path_mtu: Option<u32>,
}

/// Why a test cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `streams` out of bounds.
    #[error("streams must be 1 to {MAX_STREAMS}, found {0}")]
    Streams(u32),
    /// `duration` out of bounds.
    #[error("the duration must be above 0 and at most {}s, found {:?}", MAX_DURATION.as_secs(), .0)]
    Duration(Duration),
    /// A TLS test without a client configuration.
    #[error("the TLS test needs the run CA")]
    NoTls,
}

/// CPU time of process `pid` (this process when `None`) so far, seconds: utime + stime of
/// `/proc/PID/stat` (proc(5)), in clock ticks.
pub fn cpu_seconds(pid: Option<i32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    let ticks = ticks_of(&stat)?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)?;
    Some(ticks as f64 / per_second as f64)
}

/// The probe server's CPU seconds so far, as its `GET /cpu` answers (its `/proc/self/stat`):
/// asked over `target` (its HTTP listener) from `source`, within [`STEP_LIMIT`] per step.
/// For a bench whose server's `/proc` cannot be read (the kube backend); `Err` says why.
///
/// # Errors
///
/// The server cannot be reached, does not answer 200, or its answer is not a number.
pub async fn server_cpu_seconds(
    target: SocketAddr,
    source: Option<IpAddr>,
    device: Option<&str>,
) -> Result<f64, String> {
    let plan = LoadPlan {
        kind: LoadKind::RequestResponse,
        target,
        source,
        device: device.map(str::to_string),
        streams: 1,
        duration: STEP_LIMIT,
        answer_bytes: 0,
        tls: None,
    };
    let deadline = Instant::now() + STEP_LIMIT * 3;
    let stream = connect(&plan, deadline).await?;
    let mut client = http_client::<_, Empty<Bytes>>(stream).await?;
    let request = Request::get("/cpu")
        .header(HOST, target.to_string())
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = timeout_at(deadline, client.sender.send_request(request))
        .await
        .map_err(|_| "GET /cpu: timed out".to_string())?
        .map_err(|e| format!("GET /cpu: {e}"))?;
    if response.status() != StatusCode::OK {
        return Err(format!("GET /cpu: HTTP {}", response.status()));
    }
    let body = timeout_at(deadline, response.into_body().collect())
        .await
        .map_err(|_| "GET /cpu: reading the answer timed out".to_string())?
        .map_err(|e| format!("GET /cpu: {e}"))?
        .to_bytes();
    std::str::from_utf8(&body)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| "GET /cpu: the answer is not a number of seconds".to_string())
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted from its last `)`.
fn ticks_of(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Counts of one connection's work.
#[derive(Debug, Default)]
struct Tally {
    bytes: u64,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    /// When its last counted answer came.
    last: Option<Instant>,
    latency: Option<Histogram<u64>>,
    tcp_mss: Option<u32>,
    path_mtu: Option<u32>,
}

impl Tally {
    fn failed(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    /// A request begun at `begun` was answered now: counted, its latency into `histogram`.
    fn answered(&mut self, histogram: &mut Option<Histogram<u64>>, begun: Instant) {
        let now = Instant::now();
        record(histogram, now - begun);
        self.requests += 1;
        self.last = Some(now);
    }
}

/// Runs one test to its end.
///
/// # Errors
///
/// The plan is out of bounds ([`Error`]); failures during the test are counted, not errors.
pub async fn run(plan: &LoadPlan) -> Result<LoadOutcome, Error> {
    if !(1..=MAX_STREAMS).contains(&plan.streams) {
        return Err(Error::Streams(plan.streams));
    }
    if plan.duration.is_zero() || plan.duration > MAX_DURATION {
        return Err(Error::Duration(plan.duration));
    }
    if plan.kind == LoadKind::TlsHandshakeRequest && plan.tls.is_none() {
        return Err(Error::NoTls);
    }
    let streams = match plan.kind {
        LoadKind::ConnectRequest | LoadKind::TlsHandshakeRequest => 1,
        _ => plan.streams,
    };
    let cpu_before = cpu_seconds(None);
    let started = Instant::now();
    let deadline = started + plan.duration;
    let requests_left = Arc::new(AtomicU64::new(MAX_REQUESTS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let plan = plan.clone();
        let left = requests_left.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            match plan.kind {
                LoadKind::Download | LoadKind::Upload => {
                    bulk(&plan, deadline, &left, &mut tally).await;
                }
                LoadKind::RequestResponse => {
                    kept_alive_requests(&plan, deadline, &left, &mut tally).await;
                }
                LoadKind::ConnectRequest | LoadKind::TlsHandshakeRequest => {
                    connection_per_request(&plan, deadline, &left, &mut tally).await;
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    let mut histogram = new_histogram();
    while let Some(joined) = tasks.join_next().await {
        let Ok(tally) = joined else {
            total.failed("a connection's task panicked".into());
            continue;
        };
        total.bytes += tally.bytes;
        total.requests += tally.requests;
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
        total.last = total.last.max(tally.last);
        total.tcp_mss = total.tcp_mss.or(tally.tcp_mss);
        total.path_mtu = total.path_mtu.or(tally.path_mtu);
        if let (Some(h), Some(mine)) = (histogram.as_mut(), tally.latency.as_ref()) {
            let _ = h.add(mine);
        }
    }
    let cpu = cpu_before
        .zip(cpu_seconds(None))
        .map(|(before, after)| after - before);
    // Downloads count what came before the deadline; uploads and requests until their last
    // answer (an upload's body ends at the deadline, its answer comes just after).
    let end = match plan.kind {
        LoadKind::Download => deadline.min(Instant::now()),
        _ => total.last.unwrap_or(deadline).max(started),
    };
    let seconds = (end - started).as_secs_f64().max(1e-9);
    let bulk = matches!(plan.kind, LoadKind::Download | LoadKind::Upload);
    let latency = histogram
        .filter(|h| !bulk && !h.is_empty())
        .map(|h| Latency {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        });
    Ok(LoadOutcome {
        kind: plan.kind,
        streams,
        seconds,
        bytes: total.bytes,
        requests: total.requests,
        errors: total.errors,
        first_error: total.first_error,
        gbit_per_s: bulk.then(|| total.bytes as f64 * 8.0 / seconds / 1e9),
        per_second: (!bulk).then(|| total.requests as f64 / seconds),
        latency_us: latency,
        cpu_seconds: cpu,
        tcp_mss: total.tcp_mss,
        path_mtu: total.path_mtu,
    })
}

/// A histogram of 1 µs to [`LATENCY_MAX_US`] at 3 significant digits.
fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).ok()
}

/// After a failed connect or request: a moment before the next try (bounded by the deadline),
/// so a path that refuses everything is not hammered in a tight loop.
async fn pause_after_failure(deadline: Instant) {
    tokio::time::sleep_until(deadline.min(Instant::now() + FAILURE_PAUSE)).await;
}

/// Takes one request from the test's allowance; `false` when it is spent.
fn take_request(left: &AtomicU64) -> bool {
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// A TCP connection from the plan's source and device to its target, within `deadline` and
/// [`STEP_LIMIT`].
async fn connect(plan: &LoadPlan, deadline: Instant) -> Result<TcpStream, String> {
    let socket = if plan.target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(device) = &plan.device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(|e| format!("binding to interface {device}: {e}"))?;
    }
    if let Some(source) = plan.source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("binding to {source}: {e}"))?;
    }
    let limit = deadline.min(Instant::now() + STEP_LIMIT);
    let stream = match timeout_at(limit, socket.connect(plan.target)).await {
        Err(_) => return Err(format!("connecting to {}: timed out", plan.target)),
        Ok(Err(e)) => return Err(format!("connecting to {}: {e}", plan.target)),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// An HTTP/1 client on a stream; the connection's driver runs as a task, aborted on drop.
struct Client<B> {
    sender: SendRequest<B>,
    driver: AbortHandle,
}

impl<B> Drop for Client<B> {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn http_client<S, B>(stream: S) -> Result<Client<B>, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, connection) = timeout(
        STEP_LIMIT,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| "HTTP handshake: timed out".to_string())?
    .map_err(|e| format!("HTTP handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    })
    .abort_handle();
    Ok(Client { sender, driver })
}

/// Reads a response's body to its end within `until`; its length.
async fn drain<B>(body: &mut B, until: Instant) -> Result<u64, String>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut n = 0;
    loop {
        match timeout_at(until, body.frame()).await {
            Err(_) => return Err("reading the answer: timed out".into()),
            Ok(None) => return Ok(n),
            Ok(Some(Err(e))) => return Err(format!("reading the answer: {e}")),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    n += data.len() as u64;
                }
            }
        }
    }
}

/// One connection moving bulk data until the deadline; a connection that fails is made
/// again (counted as an error) while time is left.
async fn bulk(plan: &LoadPlan, deadline: Instant, left: &AtomicU64, tally: &mut Tally) {
    while Instant::now() < deadline && take_request(left) {
        let result = match connect(plan, deadline).await {
            Ok(stream) if plan.kind == LoadKind::Upload => {
                upload_on(stream, plan, deadline, left, tally).await
            }
            Ok(stream) => download_on(stream, plan, deadline, left, tally).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tally.failed(e);
            pause_after_failure(deadline).await;
        }
    }
}

/// Downloads on `stream` until the deadline: bytes received before it count.
async fn download_on(
    stream: TcpStream,
    plan: &LoadPlan,
    deadline: Instant,
    left: &AtomicU64,
    tally: &mut Tally,
) -> Result<(), String> {
    let fd = SizesOf::new(&stream);
    let mut client = http_client::<_, Empty<Bytes>>(stream).await?;
    let path = format!("/payload?bytes={DOWNLOAD_BYTES}");
    while Instant::now() < deadline && take_request(left) {
        ready(&mut client.sender, deadline).await?;
        let request = Request::get(&path)
            .header(HOST, plan.target.to_string())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = match timeout_at(
            deadline.min(Instant::now() + STEP_LIMIT),
            client.sender.send_request(request),
        )
        .await
        {
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => return Err("waiting for the answer: timed out".into()),
            Ok(Err(e)) => return Err(format!("request: {e}")),
            Ok(Ok(response)) => response,
        };
        if response.status() != StatusCode::OK {
            return Err(format!("answer: HTTP {}", response.status()));
        }
        let mut body = response.into_body();
        loop {
            let until = deadline.min(Instant::now() + STEP_LIMIT);
            match timeout_at(until, body.frame()).await {
                Err(_) if Instant::now() >= deadline => {
                    tally.last = Some(deadline);
                    fd.read(tally);
                    return Ok(());
                }
                Err(_) => return Err("reading the payload: timed out".into()),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(format!("reading the payload: {e}")),
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        tally.bytes += data.len() as u64;
                    }
                }
            }
        }
        tally.requests += 1;
        tally.last = Some(Instant::now());
    }
    fd.read(tally);
    Ok(())
}

/// Uploads on `stream` until the deadline: each body ends at the deadline or
/// [`UPLOAD_BODY_MAX`], and the server's count of what it received is what counts.
async fn upload_on(
    stream: TcpStream,
    plan: &LoadPlan,
    deadline: Instant,
    left: &AtomicU64,
    tally: &mut Tally,
) -> Result<(), String> {
    let fd = SizesOf::new(&stream);
    let mut client = http_client::<_, ZeroBody>(stream).await?;
    while Instant::now() < deadline && take_request(left) {
        ready(&mut client.sender, deadline).await?;
        let request = Request::post("/upload")
            .header(HOST, plan.target.to_string())
            .body(ZeroBody::until(deadline, UPLOAD_BODY_MAX))
            .map_err(|e| e.to_string())?;
        // The body ends at the deadline; its answer comes one round trip later.
        let until = deadline + STEP_LIMIT;
        let response = match timeout_at(until, client.sender.send_request(request)).await {
            Err(_) => return Err("waiting for the upload's answer: timed out".into()),
            Ok(Err(e)) => return Err(format!("upload: {e}")),
            Ok(Ok(response)) => response,
        };
        if response.status() != StatusCode::OK {
            return Err(format!("upload's answer: HTTP {}", response.status()));
        }
        let text = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the upload's answer: {e}"))?
            .to_bytes();
        let counted: u64 = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| "the upload's answer is no byte count".to_string())?;
        tally.bytes += counted;
        tally.requests += 1;
        tally.last = Some(Instant::now());
        fd.read(tally);
    }
    Ok(())
}

/// Reads a connection's segment sizes through a duplicate of its descriptor (the stream
/// itself moves into the HTTP client), and whether it is an IPv6 connection (the option that
/// holds its path MTU depends on the family).
struct SizesOf {
    fd: Option<std::os::fd::OwnedFd>,
    ipv6: bool,
}

impl SizesOf {
    fn new(stream: &TcpStream) -> Self {
        use std::os::fd::AsFd as _;
        Self {
            fd: stream.as_fd().try_clone_to_owned().ok(),
            ipv6: stream.peer_addr().is_ok_and(|a| a.is_ipv6()),
        }
    }

    fn read(&self, tally: &mut Tally) {
        use nix::sys::socket::{getsockopt, sockopt};
        let Some(fd) = &self.fd else { return };
        if let Ok(mss) = getsockopt(fd, sockopt::TcpMaxSeg) {
            tally.tcp_mss = Some(mss);
        }
        let mtu = if self.ipv6 {
            ipv6_path_mtu(fd).ok()
        } else {
            getsockopt(fd, sockopt::IpMtu)
                .ok()
                .and_then(|mtu| u32::try_from(mtu).ok())
        };
        if mtu.is_some() {
            tally.path_mtu = mtu;
        }
    }
}

/// The path MTU the kernel knows for connected IPv6 socket `fd`, bytes:
/// `getsockopt(IPPROTO_IPV6, IPV6_MTU)`, the IPv6 twin of IPv4's `IP_MTU` (ipv6(7): "Retrieve
/// the current known path MTU of the current socket. Valid only when the socket has been
/// connected.").
///
/// Linux answers `dst_mtu()` of the socket's cached route (`do_ipv6_getsockopt`,
/// net/ipv6/ipv6_sockglue.c; `ip6_mtu`, net/ipv6/route.c): the route's `RTAX_MTU` metric
/// when it has one — the path MTU learned from an ICMPv6 Packet Too Big (RFC 8201), kept as
/// a route exception for `net.ipv6.route.mtu_expires` (600 s by default), or an `mtu` set on
/// the route —, else the outgoing interface's IPv6 MTU (`net.ipv6.conf.IF.mtu`, the link's
/// MTU unless set lower). `ip -6 route get ADDR` shows the metric as `mtu N` and nothing
/// where the interface's applies. The socket, not a route lookup, is asked, so the answer
/// is the one of the namespace the connection lives in and of the route it took (source
/// address and interface binding included).
///
/// nix has no `IPV6_MTU` option; rustix's getter keeps this safe code (the workspace
/// forbids `unsafe`).
///
/// # Errors
///
/// The socket is not connected or has no route cached (`ENOTCONN`), or is no IPv6 socket.
fn ipv6_path_mtu(fd: impl std::os::fd::AsFd) -> std::io::Result<u32> {
    rustix::net::sockopt::ipv6_mtu(fd).map_err(std::io::Error::from)
}

/// Waits until the connection can take a request.
async fn ready<B>(sender: &mut SendRequest<B>, deadline: Instant) -> Result<(), String> {
    match timeout_at(deadline.max(Instant::now()) + STEP_LIMIT, sender.ready()).await {
        Err(_) => Err("the connection did not become ready".into()),
        Ok(Err(e)) => Err(format!("the connection closed: {e}")),
        Ok(Ok(())) => Ok(()),
    }
}

/// Request/response on one kept-alive connection until the deadline (made again when it
/// fails).
async fn kept_alive_requests(
    plan: &LoadPlan,
    deadline: Instant,
    left: &AtomicU64,
    tally: &mut Tally,
) {
    let mut histogram = new_histogram();
    let path = format!("/payload?bytes={}", plan.answer_bytes);
    'connections: while Instant::now() < deadline && take_request(left) {
        let connected = match connect(plan, deadline).await {
            Ok(stream) => http_client::<_, Empty<Bytes>>(stream).await,
            Err(e) => Err(e),
        };
        let mut client = match connected {
            Ok(client) => client,
            Err(e) => {
                tally.failed(e);
                pause_after_failure(deadline).await;
                continue;
            }
        };
        while Instant::now() < deadline && take_request(left) {
            let begun = Instant::now();
            match request_once(&mut client.sender, plan, &path, false).await {
                Ok(()) => tally.answered(&mut histogram, begun),
                Err(e) => {
                    tally.failed(e);
                    pause_after_failure(deadline).await;
                    continue 'connections;
                }
            }
        }
        break;
    }
    tally.latency = histogram;
}

/// A new connection (and TLS handshake) per request until the deadline.
async fn connection_per_request(
    plan: &LoadPlan,
    deadline: Instant,
    left: &AtomicU64,
    tally: &mut Tally,
) {
    let mut histogram = new_histogram();
    let path = format!("/payload?bytes={}", plan.answer_bytes);
    // Full handshakes: no session resumption, no tickets.
    let tls = plan.tls.as_ref().map(|config| {
        let mut config = (**config).clone();
        config.resumption = rustls::client::Resumption::disabled();
        TlsConnector::from(Arc::new(config))
    });
    while Instant::now() < deadline && take_request(left) {
        let begun = Instant::now();
        let done = async {
            let stream = connect(plan, deadline).await?;
            let mut client = match (&tls, plan.kind) {
                (Some(tls), LoadKind::TlsHandshakeRequest) => {
                    let stream = timeout(
                        STEP_LIMIT,
                        tls.connect(crate::tls::probe_server_name(), stream),
                    )
                    .await
                    .map_err(|_| "TLS handshake: timed out".to_string())?
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                    http_client::<_, Empty<Bytes>>(stream).await?
                }
                _ => http_client::<_, Empty<Bytes>>(stream).await?,
            };
            request_once(&mut client.sender, plan, &path, true).await
        }
        .await;
        match done {
            Ok(()) => tally.answered(&mut histogram, begun),
            Err(e) => {
                tally.failed(e);
                pause_after_failure(deadline).await;
            }
        }
    }
    tally.latency = histogram;
}

/// One small request and its whole answer; `close` asks the server to close the connection
/// after it (the server then holds the TIME_WAIT, not this end's ports).
async fn request_once(
    sender: &mut SendRequest<Empty<Bytes>>,
    plan: &LoadPlan,
    path: &str,
    close: bool,
) -> Result<(), String> {
    let until = Instant::now() + STEP_LIMIT;
    match timeout_at(until, sender.ready()).await {
        Err(_) => return Err("the connection did not become ready".into()),
        Ok(Err(e)) => return Err(format!("the connection closed: {e}")),
        Ok(Ok(())) => {}
    }
    let mut request = Request::get(path).header(HOST, plan.target.to_string());
    if close {
        request = request.header(CONNECTION, "close");
    }
    let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
    let response = match timeout_at(until, sender.send_request(request)).await {
        Err(_) => return Err("waiting for the answer: timed out".into()),
        Ok(Err(e)) => return Err(format!("request: {e}")),
        Ok(Ok(response)) => response,
    };
    if response.status() != StatusCode::OK {
        return Err(format!("answer: HTTP {}", response.status()));
    }
    let got = drain(&mut response.into_body(), until).await?;
    if got != plan.answer_bytes {
        return Err(format!(
            "answer: {got} bytes, {} expected",
            plan.answer_bytes
        ));
    }
    Ok(())
}

fn record(histogram: &mut Option<Histogram<u64>>, took: Duration) {
    if let Some(h) = histogram {
        let us = u64::try_from(took.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_MAX_US);
        let _ = h.record(us);
    }
}

/// An upload body: zeros in 64 KiB blocks until its deadline or its size, whichever is
/// first; chunked (its length is not known in advance).
#[derive(Debug)]
struct ZeroBody {
    deadline: Instant,
    left: u64,
}

impl ZeroBody {
    fn until(deadline: Instant, max: u64) -> Self {
        Self {
            deadline,
            left: max,
        }
    }
}

impl Body for ZeroBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 || Instant::now() >= self.deadline {
            return Poll::Ready(None);
        }
        let n = self.left.min(ZEROS.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &ZEROS[..n as usize],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime …; a command name with spaces and a parenthesis.
        let stat = "42 (my (odd) prog) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0";
        assert_eq!(ticks_of(stat), Some(325));
        assert_eq!(ticks_of("garbage"), None);
        assert!(cpu_seconds(None).is_some_and(|s| s >= 0.0));
    }

    #[test]
    fn kinds_have_names_both_ways() {
        for name in ["download", "upload", "rr", "crr", "tls"] {
            assert_eq!(LoadKind::parse(name).map(LoadKind::name), Some(name));
        }
        assert_eq!(LoadKind::parse("udp"), None);
    }

    /// A probe server on 127.0.0.1 (test PKI) and the client configuration trusting it.
    async fn loopback() -> (crate::server::ProbeServer, Arc<rustls::ClientConfig>) {
        loopback_on("127.0.0.1".parse().expect("ip")).await
    }

    /// A probe server on loopback address `addr` (test PKI) and the client configuration
    /// trusting it.
    async fn loopback_on(addr: IpAddr) -> (crate::server::ProbeServer, Arc<rustls::ClientConfig>) {
        crate::install_crypto_provider();
        let pki = crate::testing::TestPki::new();
        let server_tls = crate::tls::RunTls::load(&pki.probe_server()).expect("server PKI");
        let client_tls = crate::tls::RunTls::load(&pki.client()).expect("client PKI");
        let addresses = [multinet_proto::assignment::NetworkAddress {
            network: multinet_proto::network::CephNetwork::Public,
            addr,
            interface: None,
        }];
        let server = crate::server::ProbeServer::bind(
            &addresses,
            server_tls.probe_server_config().expect("config"),
        )
        .await
        .expect("server binds");
        (server, client_tls.probe_client_config().expect("client"))
    }

    #[tokio::test]
    async fn the_server_cpu_is_read_over_its_http_listener() {
        let (server, _) = loopback().await;
        let listener = server.listeners()[0];
        let source = Some("127.0.0.1".parse().expect("ip"));
        let seconds = server_cpu_seconds(listener.http, source, None)
            .await
            .expect("GET /cpu answers");
        assert!(seconds >= 0.0, "{seconds}");
        // Nothing listens there: said, not a number.
        let closed = SocketAddr::new(listener.http.ip(), 1);
        let error = server_cpu_seconds(closed, source, None)
            .await
            .expect_err("no server");
        assert!(error.contains("connecting"), "{error}");
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_test_measures_the_probe_server_on_loopback_and_ends_by_itself() {
        let (server, tls) = loopback().await;
        let listener = server.listeners()[0];
        for (kind, streams) in [
            (LoadKind::Download, 1),
            (LoadKind::Download, 3),
            (LoadKind::Upload, 1),
            (LoadKind::Upload, 3),
            (LoadKind::RequestResponse, 2),
            (LoadKind::ConnectRequest, 1),
            (LoadKind::TlsHandshakeRequest, 1),
        ] {
            let plan = LoadPlan {
                kind,
                target: if kind == LoadKind::TlsHandshakeRequest {
                    listener.https
                } else {
                    listener.http
                },
                source: Some("127.0.0.1".parse().expect("ip")),
                device: None,
                streams,
                duration: Duration::from_millis(400),
                answer_bytes: 64,
                tls: Some(tls.clone()),
            };
            let started = std::time::Instant::now();
            let out = run(&plan).await.expect("runs");
            // Ends by itself: its duration and at most one step's limit for the last answer.
            assert!(started.elapsed() < Duration::from_secs(3), "{out:?}");
            assert_eq!(out.errors, 0, "{out:?}");
            assert!(out.requests > 0, "{out:?}");
            assert!(out.cpu_seconds.is_some(), "{out:?}");
            match kind {
                LoadKind::Download | LoadKind::Upload => {
                    assert!(
                        out.bytes > 0 && out.gbit_per_s.is_some_and(|g| g > 0.0),
                        "{out:?}"
                    );
                    assert!(out.latency_us.is_none());
                    assert!(out.tcp_mss.is_some_and(|m| m > 0), "{out:?}");
                    assert!(out.path_mtu.is_some_and(|m| m >= 576), "{out:?}");
                }
                _ => {
                    let l = out.latency_us.expect("latency");
                    assert!(
                        l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
                        "{l:?}"
                    );
                    assert!(out.per_second.is_some_and(|r| r > 0.0), "{out:?}");
                }
            }
        }
        server.shutdown().await;
    }

    /// The MTU file of loopback, `None` where the system has none (IPv6 off).
    fn loopback_mtu(file: &str) -> Option<u32> {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_tests_report_the_path_mtu_of_ipv4_and_ipv6_loopback() {
        // The kernel's own figures for `lo`: the link's MTU, which IPv4 caps at the largest
        // IPv4 packet (`IP_MAX_MTU`, 65535: `ipv4_mtu`, net/ipv4/route.c), and its IPv6 MTU
        // (`net.ipv6.conf.lo.mtu`), not capped: 65536 unless someone changed them.
        let Some(link_mtu) = loopback_mtu("/sys/class/net/lo/mtu") else {
            panic!("/sys/class/net/lo/mtu is unreadable");
        };
        // IPv6 may be off (`disable_ipv6`, common in containers) with its files still there.
        let v6_mtu = loopback_mtu("/proc/sys/net/ipv6/conf/lo/mtu")
            .filter(|_| std::net::TcpListener::bind("[::1]:0").is_ok());
        let mut families = vec![("127.0.0.1", link_mtu.min(65535))];
        match v6_mtu {
            Some(mtu) => families.push(("::1", mtu)),
            // Said (a failure under CI); the IPv4 half still runs.
            None => {
                let _ = crate::testing::can_run("the IPv6 path MTU test", Some("IPv6 on loopback"));
            }
        }
        for (addr, mtu) in families {
            let (server, tls) = loopback_on(addr.parse().expect("ip")).await;
            for kind in [LoadKind::Download, LoadKind::Upload] {
                let plan = LoadPlan {
                    kind,
                    target: server.listeners()[0].http,
                    source: None,
                    device: None,
                    streams: 1,
                    duration: Duration::from_millis(200),
                    answer_bytes: 64,
                    tls: Some(tls.clone()),
                };
                let out = run(&plan).await.expect("runs");
                assert_eq!(out.errors, 0, "{addr} {out:?}");
                assert_eq!(out.path_mtu, Some(mtu), "{addr} {kind:?}: {out:?}");
                // The MSS fits in the path MTU with the IP and TCP headers.
                assert!(
                    out.tcp_mss.is_some_and(|m| m > 0 && m < mtu),
                    "{addr} {kind:?}: {out:?}"
                );
            }
            server.shutdown().await;
        }
    }

    #[tokio::test]
    async fn a_refused_target_is_counted_as_errors_and_the_test_still_ends_at_its_deadline() {
        // A port nothing listens on: bind one, read its number, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let plan = LoadPlan {
            kind: LoadKind::RequestResponse,
            target: SocketAddr::new("127.0.0.1".parse().expect("ip"), port),
            source: None,
            device: None,
            streams: 1,
            duration: Duration::from_millis(200),
            answer_bytes: 1,
            tls: None,
        };
        let started = std::time::Instant::now();
        let out = run(&plan).await.expect("runs");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(out.requests, 0);
        assert!(out.errors > 0, "{out:?}");
        assert!(
            out.first_error
                .as_deref()
                .is_some_and(|e| e.contains("refused")),
            "{out:?}"
        );
        assert!(out.latency_us.is_none());
    }

    #[tokio::test]
    async fn plans_out_of_bounds_are_refused() {
        let plan = LoadPlan {
            kind: LoadKind::Download,
            target: "127.0.0.1:9".parse().expect("addr"),
            source: None,
            device: None,
            streams: 0,
            duration: Duration::from_secs(1),
            answer_bytes: 1,
            tls: None,
        };
        assert!(matches!(run(&plan).await, Err(Error::Streams(0))));
        let long = LoadPlan {
            streams: 1,
            duration: MAX_DURATION * 2,
            ..plan.clone()
        };
        assert!(matches!(run(&long).await, Err(Error::Duration(_))));
        let tls = LoadPlan {
            kind: LoadKind::TlsHandshakeRequest,
            streams: 1,
            ..plan
        };
        assert!(matches!(run(&tls).await, Err(Error::NoTls)));
    }
}
