//! The prober (roles Client and HostCheck): probes the server's listeners (a mesh run's: the
//! listeners of every responder it is told to probe) over each network the agent is attached
//! to, classifies failures and measures latency.
//!
//! Every round runs all eight probe kinds against each listener, in this order per
//! scheme (HTTP, then HTTPS): small fresh, small kept-alive, large fresh, large kept-alive
//! ([`ROUND`]). Probes run one after another, each within the probe timeout, so a round takes
//! at most eight timeouts per network. A client binds every probe to its own address on the
//! network (the traffic leaves through that network's interface, never the default route); a
//! host checker probes the public network only and does not bind.
//!
//! Owns the probe sockets; hands results to the [`Outbox`] and nothing else.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use multinet_proto::assignment::{AgentAssignment, ProbeSettings};
use multinet_proto::control::{Listener, ProbeResult, Role};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Connection, FailureClass, Outcome, Payload, ProbeKind, Scheme};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior, timeout_at};
use tokio_rustls::TlsConnector;

use crate::control::Outbox;

/// The probe kinds of one round, in order.
pub const ROUND: [ProbeKind; 8] = {
    const fn kind(scheme: Scheme, payload: Payload, connection: Connection) -> ProbeKind {
        ProbeKind {
            scheme,
            payload,
            connection,
        }
    }
    use Connection::{Fresh, KeptAlive};
    use Payload::{Large, Small};
    use Scheme::{Http, Https};
    [
        kind(Http, Small, Fresh),
        kind(Http, Small, KeptAlive),
        kind(Http, Large, Fresh),
        kind(Http, Large, KeptAlive),
        kind(Https, Small, Fresh),
        kind(Https, Small, KeptAlive),
        kind(Https, Large, Fresh),
        kind(Https, Large, KeptAlive),
    ]
};

/// Small responses are one line; anything longer is not kept.
const SMALL_BODY_KEEP: usize = 128;

/// Why an assignment gives no way to probe.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client is attached to a network its assignment has no address on.
    #[error("no address on network {network:?} in the assignment of {pod}")]
    NoAddress {
        /// The network.
        network: CephNetwork,
        /// The client's pod.
        pod: String,
    },
    /// The assignment is the server's, which answers probes and sends none.
    #[error("the server agent does not probe")]
    ServerDoesNotProbe,
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which networks an agent probes, and from which of its addresses and interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    /// The networks.
    pub networks: Vec<ProbeFrom>,
}

/// Where the probes on one network leave from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFrom {
    /// The network.
    pub network: CephNetwork,
    /// Source address (`None`: no bind, the host's routing decides).
    pub source: Option<IpAddr>,
    /// Interface the probes are bound to (`SO_BINDTODEVICE`), so they never take another
    /// route (the default one) even where the server is routed rather than on-link.
    pub device: Option<String>,
}

impl ProbePlan {
    /// A client probes each network of its identity from its address there; a host checker
    /// probes the public network without binding.
    pub fn for_assignment(assignment: &AgentAssignment) -> Result<Self> {
        let identity = &assignment.identity;
        let networks = match identity.role {
            Role::HostCheck => vec![ProbeFrom {
                network: CephNetwork::Public,
                source: None,
                device: None,
            }],
            Role::Client => identity
                .networks
                .iter()
                .map(|&network| {
                    let address = assignment
                        .addresses
                        .iter()
                        .find(|a| a.network == network)
                        .ok_or_else(|| Error::NoAddress {
                            network,
                            pod: identity.pod.clone(),
                        })?;
                    Ok(ProbeFrom {
                        network,
                        source: Some(address.addr),
                        device: address.interface.clone(),
                    })
                })
                .collect::<Result<_>>()?,
            Role::Server => return Err(Error::ServerDoesNotProbe),
        };
        Ok(Self { networks })
    }
}

/// One HTTP/1 connection: the request handle and the task driving the socket (aborted, and
/// the socket closed, when this is dropped).
#[derive(Debug)]
struct HttpConnection {
    sender: SendRequest<Empty<Bytes>>,
    driver: AbortHandle,
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Runs probes and keeps the kept-alive connections.
#[derive(Debug)]
pub struct Prober {
    /// HTTPS probes trust only the run CA.
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    /// Limit of one probe, connect to last byte.
    timeout: Duration,
    /// Size of a large probe's payload.
    large_bytes: u32,
    /// Agent start, for `started_ms`.
    started: Instant,
    /// One reusable connection per network, scheme and target.
    kept: HashMap<(CephNetwork, Scheme, SocketAddr), HttpConnection>,
    /// Networks on which the server already saw another source address than ours (noted once).
    mismatch_noted: HashSet<CephNetwork>,
    /// The interface its connections are bound to (one prober per network).
    device: Option<String>,
    /// Whether binding to the interface was refused (noted once; probes then bind the source
    /// address only).
    device_refused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Prober {
    /// A prober with the run's HTTPS client configuration.
    pub fn new(tls: Arc<rustls::ClientConfig>, settings: &ProbeSettings, started: Instant) -> Self {
        Self {
            tls,
            server_name: crate::tls::probe_server_name(),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            large_bytes: settings.large_bytes,
            started,
            kept: HashMap::new(),
            mismatch_noted: HashSet::new(),
            device: None,
            device_refused: Default::default(),
        }
    }

    /// A prober with the same settings and no connections yet.
    fn fresh(&self) -> Self {
        Self {
            tls: self.tls.clone(),
            server_name: self.server_name.clone(),
            timeout: self.timeout,
            large_bytes: self.large_bytes,
            started: self.started,
            kept: HashMap::new(),
            mismatch_noted: HashSet::new(),
            device: self.device.clone(),
            device_refused: self.device_refused.clone(),
        }
    }

    /// Probes until the targets channel closes: waits for targets, then runs a round every
    /// `interval` against each listener, pushing every result into `outbox`. Each network and
    /// listener has its own loop, so a network or a target whose probes time out does not
    /// slow the probes of another.
    pub async fn run(
        self,
        plan: &ProbePlan,
        targets: watch::Receiver<Vec<Listener>>,
        interval: Duration,
        outbox: &Outbox,
    ) {
        let loops: Vec<_> = plan
            .networks
            .iter()
            .map(|from| {
                let mut prober = self.fresh();
                prober.device = from.device.clone();
                prober.run_network(
                    (from.network, from.source),
                    targets.clone(),
                    interval,
                    outbox,
                )
            })
            .collect();
        join_all(loops).await;
    }

    /// Probes every listener on `network` the targets name (the server's; a mesh's
    /// responders'), each in a loop of its own so a target whose probes time out does not slow
    /// the others. When the targets change, the loops of listeners still named go on (their
    /// kept-alive connections too); new ones start, and those no longer named stop.
    async fn run_network(
        self,
        (network, source): (CephNetwork, Option<IpAddr>),
        mut targets: watch::Receiver<Vec<Listener>>,
        interval: Duration,
        outbox: &Outbox,
    ) {
        type Loop<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
        let mut running: Vec<(Listener, Loop<'_>)> = Vec::new();
        loop {
            let current: Vec<Listener> = targets
                .borrow_and_update()
                .iter()
                .filter(|l| l.network == network)
                .copied()
                .collect();
            running.retain(|(l, _)| current.contains(l));
            for listener in current {
                if !running.iter().any(|(l, _)| *l == listener) {
                    let probing =
                        self.fresh()
                            .run_target((network, source), listener, interval, outbox);
                    running.push((listener, Box::pin(probing)));
                }
            }
            // The loops run until the targets change (or their channel closes).
            let mut changed = std::pin::pin!(targets.changed());
            let changed = std::future::poll_fn(|cx| {
                for (_, probing) in &mut running {
                    // A target's loop never ends by itself.
                    let _ = probing.as_mut().poll(cx);
                }
                changed.as_mut().poll(cx)
            })
            .await;
            if changed.is_err() {
                return;
            }
        }
    }

    /// Runs a round of every probe kind against `listener` every `interval`, for as long as
    /// it is polled.
    async fn run_target(
        mut self,
        (network, source): (CephNetwork, Option<IpAddr>),
        listener: Listener,
        interval: Duration,
        outbox: &Outbox,
    ) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for kind in ROUND {
                let target = match kind.scheme {
                    Scheme::Http => listener.http,
                    Scheme::Https => listener.https,
                };
                outbox.push(self.probe(network, source, target, kind).await);
            }
        }
    }

    /// Runs one probe.
    pub async fn probe(
        &mut self,
        network: CephNetwork,
        source: Option<IpAddr>,
        target: SocketAddr,
        kind: ProbeKind,
    ) -> ProbeResult {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let outcome = match self.attempt(network, source, target, kind, deadline).await {
            Ok(seen) => {
                if let (Some(seen), Some(source)) = (seen, source)
                    && seen != source
                    && self.mismatch_noted.insert(network)
                {
                    // Not a failure (NAT or a policy rewrote the source), but worth a line.
                    tracing::warn!(
                        "on network {network:?} the server saw {seen}, \
                         not this agent's {source}"
                    );
                }
                Outcome::Ok
            }
            Err(class) => Outcome::Failed(class),
        };
        let latency = start.elapsed().as_micros().max(1);
        ProbeResult {
            network,
            target,
            kind,
            started_ms: u64::try_from(start.duration_since(self.started).as_millis())
                .unwrap_or(u64::MAX),
            latency_us: u32::try_from(latency).unwrap_or(u32::MAX),
            outcome,
        }
    }

    /// The probe proper: `Ok(address the server saw)` (small probes), or the failure class.
    async fn attempt(
        &mut self,
        network: CephNetwork,
        source: Option<IpAddr>,
        target: SocketAddr,
        kind: ProbeKind,
        deadline: Instant,
    ) -> Result<Option<IpAddr>, FailureClass> {
        match kind.connection {
            Connection::Fresh => {
                let mut connection = self.connect(source, target, kind.scheme, deadline).await?;
                self.exchange(&mut connection, target, kind.payload, deadline)
                    .await
            }
            Connection::KeptAlive => {
                let key = (network, kind.scheme, target);
                let usable = self.kept.get(&key).is_some_and(|c| !c.sender.is_closed());
                let mut connection = match self.kept.remove(&key) {
                    Some(connection) if usable => connection,
                    _ => self.connect(source, target, kind.scheme, deadline).await?,
                };
                let result = self
                    .exchange(&mut connection, target, kind.payload, deadline)
                    .await;
                // A connection that failed once is not trusted again.
                if result.is_ok() {
                    self.kept.insert(key, connection);
                }
                result
            }
        }
    }

    /// Opens a TCP (and TLS) connection from `source` to `target` and starts HTTP/1 on it.
    async fn connect(
        &self,
        source: Option<IpAddr>,
        target: SocketAddr,
        scheme: Scheme,
        deadline: Instant,
    ) -> Result<HttpConnection, FailureClass> {
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|_| FailureClass::Io)?;
        if let Some(device) = &self.device
            && !self
                .device_refused
                .load(std::sync::atomic::Ordering::Relaxed)
            && let Err(e) = socket.bind_device(Some(device.as_bytes()))
        {
            // Kernels before 5.7 want CAP_NET_RAW for it (or the name is no interface here):
            // say so once, and bind the source address alone.
            if !self
                .device_refused
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(
                    "binding probes to interface {device} failed ({e}); \
                     they are bound to their source address only"
                );
            }
        }
        if let Some(source) = source {
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(|_| FailureClass::Io)?;
        }
        let stream = match timeout_at(deadline, socket.connect(target)).await {
            Err(_) => return Err(FailureClass::ConnectTimeout),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(FailureClass::ConnectRefused);
            }
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable
                ) =>
            {
                return Err(FailureClass::Unreachable);
            }
            Ok(Err(_)) => return Err(FailureClass::Io),
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        match scheme {
            Scheme::Http => start_http(stream).await,
            Scheme::Https => {
                let handshake =
                    TlsConnector::from(self.tls.clone()).connect(self.server_name.clone(), stream);
                match timeout_at(deadline, handshake).await {
                    Err(_) => Err(FailureClass::ReadTimeout),
                    Ok(Err(e)) => Err(classify_tls(&e)),
                    Ok(Ok(stream)) => start_http(stream).await,
                }
            }
        }
    }

    /// One request and its whole response.
    async fn exchange(
        &self,
        connection: &mut HttpConnection,
        target: SocketAddr,
        payload: Payload,
        deadline: Instant,
    ) -> Result<Option<IpAddr>, FailureClass> {
        let path = match payload {
            Payload::Small => "/".to_string(),
            Payload::Large => format!("/payload?bytes={}", self.large_bytes),
        };
        match timeout_at(deadline, connection.sender.ready()).await {
            Err(_) => return Err(FailureClass::ReadTimeout),
            Ok(Err(_)) => return Err(FailureClass::Io),
            Ok(Ok(())) => {}
        }
        let request = Request::get(path)
            .header(HOST, target.to_string())
            .body(Empty::new())
            .map_err(|_| FailureClass::Io)?;
        let response = match timeout_at(deadline, connection.sender.send_request(request)).await {
            Err(_) => return Err(FailureClass::ReadTimeout),
            Ok(Err(e)) if e.is_timeout() => return Err(FailureClass::ReadTimeout),
            Ok(Err(_)) => return Err(FailureClass::Io),
            Ok(Ok(response)) => response,
        };
        if response.status() != StatusCode::OK {
            return Err(FailureClass::HttpStatus(response.status().as_u16()));
        }
        let mut body = response.into_body();
        let mut received: u64 = 0;
        let mut text = Vec::new();
        loop {
            match timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(FailureClass::ReadTimeout),
                // The connection ended before the announced length.
                Ok(Some(Err(_))) => return Err(FailureClass::ShortBody),
                Ok(None) => break,
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        received += data.len() as u64;
                        if payload == Payload::Small && text.len() < SMALL_BODY_KEEP {
                            let room = SMALL_BODY_KEEP - text.len();
                            text.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                }
            }
        }
        match payload {
            Payload::Large => match received.cmp(&u64::from(self.large_bytes)) {
                std::cmp::Ordering::Less => Err(FailureClass::ShortBody),
                std::cmp::Ordering::Equal => Ok(None),
                // Not the probe server's answer.
                std::cmp::Ordering::Greater => Err(FailureClass::Io),
            },
            Payload::Small if received == 0 => Err(FailureClass::ShortBody),
            // Something answered, but not the probe server: not an address.
            Payload::Small => std::str::from_utf8(&text)
                .ok()
                .and_then(|t| t.trim().parse::<IpAddr>().ok())
                .map(Some)
                .ok_or(FailureClass::Io),
        }
    }
}

/// Starts an HTTP/1 client on a connected stream; its driver runs as a task.
async fn start_http<S>(stream: S) -> Result<HttpConnection, FailureClass>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| FailureClass::Io)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    })
    .abort_handle();
    Ok(HttpConnection { sender, driver })
}

/// A failed TLS handshake: certificate and protocol errors, or the server hanging up in the
/// middle of it, are TLS failures; anything else is I/O.
fn classify_tls(error: &std::io::Error) -> FailureClass {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidData | ErrorKind::UnexpectedEof => FailureClass::Tls,
        ErrorKind::TimedOut => FailureClass::ReadTimeout,
        _ if error
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            FailureClass::Tls
        }
        _ => FailureClass::Io,
    }
}

#[cfg(test)]
mod tests;

/// Runs every future to completion, concurrently, on the current task.
async fn join_all<F: std::future::Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done = vec![false; futures.len()];
    std::future::poll_fn(|cx| {
        for (future, done) in futures.iter_mut().zip(done.iter_mut()) {
            if !*done && future.as_mut().poll(cx).is_ready() {
                *done = true;
            }
        }
        if done.iter().all(|d| *d) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}
