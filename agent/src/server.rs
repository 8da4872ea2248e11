//! The probe server (role Server): HTTP and HTTPS on each of the agent's network addresses.
//!
//! Routes: `GET /` answers with the caller's IP address (so a client sees which of its
//! addresses the server saw), `GET /payload?bytes=N` with exactly N bytes (MTU black holes
//! hide behind small probes), `POST /upload` reads its body (at most [`UPLOAD_MAX`]), throws it
//! away and answers with the count of bytes it received (the bench's upload, `bench
//! network`), `GET /cpu` with this process's CPU seconds so far (`/proc/self/stat`: the bench
//! reads it before and after a test where it cannot read the server's `/proc`, as on the kube
//! backend), anything else 404. Connections are kept alive, bounded in
//! number, and drained on [`ProbeServer::shutdown`].
//!
//! Owns the listening sockets; knows nothing about the control plane.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::Listener;
use multinet_proto::network::CephNetwork;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// The largest payload `/payload` serves.
pub const PAYLOAD_MAX: u64 = 16 * 1024 * 1024;
/// The largest body `POST /upload` takes (a body announced or found larger is refused with
/// 413 and the connection closed): the bench's uploads end each body at 1 GiB or their
/// deadline, whichever is first.
pub const UPLOAD_MAX: u64 = 1024 * 1024 * 1024;
/// How long an upload's body may be silent before the server gives up on it.
const UPLOAD_IDLE_LIMIT: Duration = Duration::from_secs(10);
/// The most connections a server takes at once, all listeners together, however many files
/// it may open.
pub const CONNECTIONS_CEILING: usize = 65_536;
/// The fewest, however few files it may open.
const CONNECTIONS_FLOOR: usize = 256;
/// Descriptors kept for everything but probe connections (listeners, the control channel,
/// certificate files, the runtime).
const DESCRIPTORS_RESERVED: u64 = 128;

/// How many connections a server takes at once when the process may open `open_files` files:
/// all it can hold a descriptor for (less a reserve), within
/// `CONNECTIONS_FLOOR..=`[`CONNECTIONS_CEILING`]. Past it a connection is closed at once, and its
/// client records an `io` failure: a fixed 1024 made a 32-node lab (608 clients on public, each
/// with its kept-alive HTTP and HTTPS connections and its handshake probes) `flaky` everywhere,
/// and would have done the same to a cluster of that size.
pub fn connection_limit(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(DESCRIPTORS_RESERVED))
        .unwrap_or(usize::MAX)
        .clamp(CONNECTIONS_FLOOR, CONNECTIONS_CEILING)
}

/// Where the kernel caps every listen backlog (per network namespace).
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

/// The backlog to listen with: the kernel's cap, `net.core.somaxconn` (4096 by default since
/// Linux 5.4), read as the Go runtime reads it for every listener (`maxListenerBacklog`, Go's
/// `src/net/sock_linux.go`); 4096 when it cannot be read. Clients of a round start together, so
/// new connections come in bursts: a 32-node lab's 608 public clients open up to four fresh
/// connections each per round, and tokio's default backlog of 1024 let the kernel drop SYNs of
/// a burst — retried a second later, some probes then ran into their timeout
/// (`connect_timeout`), and every node was called `flaky`.
pub fn listen_backlog() -> u32 {
    std::fs::read_to_string(SOMAXCONN)
        .ok()
        .and_then(|text| parse_somaxconn(&text))
        .unwrap_or(4096)
}

/// `net.core.somaxconn` as the file holds it (a positive number and a newline).
fn parse_somaxconn(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok().filter(|n| *n > 0)
}

/// A listener on `addr` with `backlog` (capped by the kernel at `net.core.somaxconn`), with
/// `TCP_NODELAY` set once for every connection it accepts: Linux makes an accepted socket as a
/// clone of its listener (`inet_csk_clone_lock` → `sk_clone_lock`, net/ipv4/
/// inet_connection_sock.c), options included, which saves a `setsockopt` on every new
/// connection's way to its answer.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Raises this process's soft limit on open files to its hard limit, as the Go runtime does for
/// every Go program since 1.19 (so nginx, Rook's tester's server, is sized by
/// `worker_rlimit_nofile`, and a Go server by the hard limit); returns the soft limit in effect
/// afterwards. A container's hard limit is normally high (containerd and CRI-O default to
/// 1048576); the soft one may be 1024.
pub fn raise_open_files_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// This process's soft limit on open files.
fn open_files_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
}
/// How long a TLS handshake may take.
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their request at shutdown.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Payload bytes are served from this block (zeroed static memory: costs no RSS until sent).
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Why the probe server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address could not be listened on (not on this host, or taken).
    #[error("listening for {scheme} on {address} (network {network:?})")]
    Listen {
        /// `HTTP` or `HTTPS`.
        scheme: &'static str,
        /// The agent's address on the network.
        address: IpAddr,
        /// The network.
        network: CephNetwork,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A listening socket's own address could not be read.
    #[error(transparent)]
    LocalAddress(std::io::Error),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A running probe server.
#[derive(Debug)]
pub struct ProbeServer {
    /// Where it listens, one entry per network address.
    listeners: Vec<Listener>,
    /// `true` asks every accept loop and connection to stop.
    stop: watch::Sender<bool>,
    /// The accept loops (each owns its connections' tasks).
    accept_loops: JoinSet<()>,
}

impl ProbeServer {
    /// Listens for HTTP and HTTPS on port 0 of every address, taking as many connections at
    /// once as [`connection_limit`] allows for the process's open-files limit now.
    pub async fn bind(
        addresses: &[NetworkAddress],
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<Self> {
        let (stop, _) = watch::channel(false);
        let limit = Arc::new(Semaphore::new(connection_limit(open_files_limit())));
        let acceptor = TlsAcceptor::from(tls);
        let mut listeners = Vec::with_capacity(addresses.len());
        let mut accept_loops = JoinSet::new();
        for address in addresses {
            let bind = |scheme: &'static str| {
                listen(SocketAddr::new(address.addr, 0), listen_backlog()).map_err(|source| {
                    Error::Listen {
                        scheme,
                        address: address.addr,
                        network: address.network,
                        source,
                    }
                })
            };
            let http = bind("HTTP")?;
            let https = bind("HTTPS")?;
            listeners.push(Listener {
                network: address.network,
                http: http.local_addr().map_err(Error::LocalAddress)?,
                https: https.local_addr().map_err(Error::LocalAddress)?,
            });
            accept_loops.spawn(accept_loop(http, None, limit.clone(), stop.subscribe()));
            accept_loops.spawn(accept_loop(
                https,
                Some(acceptor.clone()),
                limit.clone(),
                stop.subscribe(),
            ));
        }
        Ok(Self {
            listeners,
            stop,
            accept_loops,
        })
    }

    /// Where the server listens.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Stops accepting, lets open requests finish briefly, then closes everything.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(DRAIN_LIMIT * 2, async {
            while self.accept_loops.join_next().await.is_some() {}
        })
        .await;
        // Dropping the JoinSet aborts whatever is left.
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limit: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) {
    // Connections are counted, not joined: a tracked task costs a count up and down, where a
    // join set's entry costs an allocation and a lock at each end (the listener's hot path).
    // Nothing is left behind for that: each connection ends by itself within DRAIN_LIMIT of
    // the stop (`serve_http`), and this loop waits for them.
    let connections = TaskTracker::new();
    // Each connection watches for the stop itself; this loop's own wait for it is made once.
    let for_connections = stop.clone();
    let mut stopping = pin!(async move {
        let mut stop = stop;
        stopped(&mut stop).await;
    });
    loop {
        tokio::select! {
            () = stopping.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Past the bound the connection is closed at once: the client sees it.
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        continue;
                    };
                    let stop = for_connections.clone();
                    // Two task types, not one future branching inside: a task is as large as
                    // its future's largest state, and a plain connection's must not carry the
                    // TLS handshake's and session's (kilobytes tokio copies when it makes the
                    // task, finishes it and hands out its output).
                    match &tls {
                        None => connections.spawn(async move {
                            serve_http(PlainTcp(stream), peer, stop).await;
                            drop(permit);
                        }),
                        Some(acceptor) => connections.spawn(serve_tls(
                            acceptor.clone(),
                            stream,
                            peer,
                            stop,
                            permit,
                        )),
                    };
                    // The new connection's request is most likely in already: let its task
                    // answer it before this loop asks the kernel for another connection (an
                    // `accept4` that mostly finds none), so that call is not on the way to
                    // the answer.
                    tokio::task::yield_now().await;
                }
                // Out of descriptors and the like: pause instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
    drop(listener);
    connections.close();
    // Every connection ends within DRAIN_LIMIT of the stop by itself (a TLS handshake at
    // once); the margin is for a runtime slow to get to them.
    let _ = tokio::time::timeout(DRAIN_LIMIT * 2, connections.wait()).await;
}

/// A plain TCP connection whose write side is closed by closing the socket, which follows at
/// once: hyper shuts the write side down (`shutdown(2)`) before it lets a connection go, and on
/// plain TCP the `close(2)` right after sends the same FIN (and the same RST when a request
/// was left unread), so the `shutdown` is a system call per connection for nothing — nginx,
/// the reference, closes without it. TLS streams keep their shutdown: it sends close_notify.
struct PlainTcp(TcpStream);

impl AsyncRead for PlainTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PlainTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Completes when a stop is asked for (or nobody can ask any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// One HTTPS connection: the handshake (within [`TLS_HANDSHAKE_LIMIT`], given up at the
/// stop), then HTTP on it.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_LIMIT, acceptor.accept(stream));
    let stream = tokio::select! {
        biased;
        done = handshake => done,
        _ = stop.changed() => return,
    };
    if let Ok(Ok(stream)) = stream {
        serve_http(stream, peer, stop).await;
    }
    drop(permit);
}

async fn serve_http<S>(stream: S, peer: SocketAddr, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let caller = peer.ip().to_canonical();
    let service =
        hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| async move {
            if request.method() == Method::POST && request.uri().path() == "/upload" {
                return Ok::<_, Infallible>(receive_upload(request).await);
            }
            Ok(respond(&request, caller))
        });
    let mut connection = pin!(
        hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service)
    );
    // The connection first (`biased`: no random draw at each of its wake-ups); the stop, the
    // only change the channel ever carries (or its sender gone), through `changed`, which
    // only compares versions (`wait_for` borrows the value under the channel's read lock).
    // After the stop the connection gets DRAIN_LIMIT to finish the request it is on; then it
    // is dropped (closed), so nothing outlives the server's shutdown.
    tokio::select! {
        biased;
        _ = connection.as_mut() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_LIMIT, connection).await;
        }
    }
}

/// The answer to one request.
pub fn respond<B>(request: &Request<B>, caller: IpAddr) -> Response<ResponseBody> {
    if request.method() != Method::GET {
        return status(StatusCode::NOT_FOUND);
    }
    match request.uri().path() {
        "/" => {
            let text = Bytes::from(format!("{caller}\n"));
            let mut response = Response::new(ResponseBody::text(text));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        "/payload" => match payload_size(request.uri().query()) {
            // No header of its own: hyper writes `content-length` from the body's exact size
            // (`ResponseBody::size_hint`), and a body without `content-type` is
            // `application/octet-stream` to its recipient (RFC 9110 §8.3) — what it is. A
            // header map of its own would cost two allocations on every request.
            Some(bytes) if bytes <= PAYLOAD_MAX => Response::new(ResponseBody::zeros(bytes)),
            _ => status(StatusCode::BAD_REQUEST),
        },
        "/cpu" => match crate::load::cpu_seconds(None) {
            Some(seconds) => {
                let mut response =
                    Response::new(ResponseBody::text(Bytes::from(format!("{seconds}\n"))));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                response
            }
            None => status(StatusCode::SERVICE_UNAVAILABLE),
        },
        _ => status(StatusCode::NOT_FOUND),
    }
}

/// `POST /upload`: reads the body to its end, at most [`UPLOAD_MAX`] bytes, each frame within
/// [`UPLOAD_IDLE_LIMIT`]; answers with the count of bytes received (`413` past the bound,
/// `400` for a body cut short or silent too long).
pub async fn receive_upload<B>(request: Request<B>) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt as _;
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > UPLOAD_MAX) {
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let mut body = request.into_body();
    let mut received: u64 = 0;
    loop {
        match tokio::time::timeout(UPLOAD_IDLE_LIMIT, body.frame()).await {
            Err(_) | Ok(Some(Err(_))) => return status(StatusCode::BAD_REQUEST),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    received += data.len() as u64;
                    if received > UPLOAD_MAX {
                        return status(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                }
            }
        }
    }
    Response::new(ResponseBody::text(Bytes::from(format!("{received}\n"))))
}

fn status(code: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::text(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// `N` from a query holding `bytes=N`.
fn payload_size(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("bytes="))?
        .parse()
        .ok()
}

/// A response body: a short text, or a run of zero bytes streamed in blocks (a 16 MiB payload
/// never sits in memory).
#[derive(Debug)]
pub struct ResponseBody {
    text: Option<Bytes>,
    zeros_left: u64,
}

impl ResponseBody {
    fn text(text: Bytes) -> Self {
        Self {
            text: (!text.is_empty()).then_some(text),
            zeros_left: 0,
        }
    }

    fn zeros(bytes: u64) -> Self {
        Self {
            text: None,
            zeros_left: bytes,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(text) = self.text.take() {
            return Poll::Ready(Some(Ok(Frame::data(text))));
        }
        if self.zeros_left == 0 {
            return Poll::Ready(None);
        }
        let n = self.zeros_left.min(ZEROS.len() as u64);
        self.zeros_left -= n;
        let block = Bytes::from_static(&ZEROS[..n as usize]);
        Poll::Ready(Some(Ok(Frame::data(block))))
    }

    fn is_end_stream(&self) -> bool {
        self.text.is_none() && self.zeros_left == 0
    }

    fn size_hint(&self) -> SizeHint {
        let text = self.text.as_ref().map_or(0, |t| t.len() as u64);
        SizeHint::with_exact(text + self.zeros_left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn get(uri: &str) -> Response<ResponseBody> {
        let request = Request::get(uri).body(()).expect("request");
        respond(&request, "127.0.0.2".parse().expect("ip"))
    }

    async fn body_of(response: Response<ResponseBody>) -> Bytes {
        response
            .into_body()
            .collect()
            .await
            .expect("infallible")
            .to_bytes()
    }

    #[test]
    fn the_connection_limit_follows_the_open_files_limit_within_bounds() {
        assert_eq!(connection_limit(1024), 896);
        assert_eq!(connection_limit(20_000), 19_872);
        assert_eq!(connection_limit(1_048_576), CONNECTIONS_CEILING);
        assert_eq!(connection_limit(256), CONNECTIONS_FLOOR);
        assert_eq!(connection_limit(0), CONNECTIONS_FLOOR);
    }

    /// A probe server on 127.0.0.1 with a test PKI.
    async fn loopback_server() -> ProbeServer {
        loopback_server_of(&crate::testing::TestPki::new()).await
    }

    /// A probe server on 127.0.0.1 with `pki`'s certificate.
    async fn loopback_server_of(pki: &crate::testing::TestPki) -> ProbeServer {
        let tls = crate::tls::RunTls::load(&pki.probe_server()).expect("server PKI");
        let addresses = [multinet_proto::assignment::NetworkAddress {
            network: multinet_proto::network::CephNetwork::Public,
            addr: "127.0.0.1".parse().expect("ip"),
            interface: None,
        }];
        ProbeServer::bind(&addresses, tls.probe_server_config().expect("config"))
            .await
            .expect("server binds")
    }

    #[test]
    fn the_listen_backlog_is_the_kernels_cap() {
        assert_eq!(parse_somaxconn("4096\n"), Some(4096));
        assert_eq!(parse_somaxconn("65535"), Some(65_535));
        assert_eq!(parse_somaxconn("0\n"), None);
        assert_eq!(parse_somaxconn("lots"), None);
    }

    #[tokio::test]
    async fn the_server_listens_with_the_kernels_backlog_not_tokios_1024() {
        let server = loopback_server().await;
        let port = server.listeners()[0].https.port();
        // ss shows a listener's backlog as its Send-Q: LISTEN Recv-Q Send-Q Local Peer.
        let out = std::process::Command::new("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .expect("ss (iproute2) runs");
        server.shutdown().await;
        let text = String::from_utf8_lossy(&out.stdout);
        let send_q: Vec<u32> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
            .collect();
        let somaxconn = parse_somaxconn(&std::fs::read_to_string(SOMAXCONN).expect("somaxconn"));
        assert_eq!(send_q, [somaxconn.expect("a cap")], "{text}");
    }

    #[tokio::test]
    async fn more_than_a_thousand_clients_are_served_at_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // 1,500 connections held open together (each end a descriptor in this process).
        const CLIENTS: usize = 1_500;
        let open_files = raise_open_files_limit();
        assert!(
            open_files >= 2 * CLIENTS as u64 + 256,
            "this test needs {} open files; the hard limit allows {open_files}",
            2 * CLIENTS + 256
        );
        let server = loopback_server().await;
        let http = server.listeners()[0].http;
        let mut streams = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            streams.push(tokio::net::TcpStream::connect(http).await.expect("connect"));
        }
        // Every connection, all still open, gets its answer.
        let mut answered = 0;
        for stream in &mut streams {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: server\r\n\r\n")
                .await
                .expect("request");
            let mut head = [0u8; 12];
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head))
                .await
                .expect("answered within 10 s");
            if read.is_ok() && &head == b"HTTP/1.1 200" {
                answered += 1;
            }
        }
        assert_eq!(answered, CLIENTS);
        drop(streams);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn accepted_connections_have_nodelay_from_their_listener() {
        let listener = listen("127.0.0.1:0".parse().expect("addr"), 16).expect("listen");
        let addr = listener.local_addr().expect("its address");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(accepted.nodelay().expect("TCP_NODELAY readable"));
        drop(client);
    }

    /// A probe client's TLS connection to `https`, handshake done, with the run's client PKI.
    async fn tls_client(
        pki: &crate::testing::TestPki,
        https: SocketAddr,
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tls = crate::tls::RunTls::load(&pki.client()).expect("client PKI");
        let connector =
            tokio_rustls::TlsConnector::from(tls.probe_client_config().expect("client config"));
        let stream = TcpStream::connect(https).await.expect("connect");
        connector
            .connect(crate::tls::probe_server_name(), stream)
            .await
            .expect("handshake")
    }

    /// A connection the client asks closed (`Connection: close`, as the bench's connection-rate
    /// tests and Rook's tester's clients do) gets its whole answer and then an orderly end: a
    /// FIN over HTTP (the socket closed without hyper's `shutdown`), a TLS close_notify over
    /// HTTPS — never a reset or a truncation.
    #[tokio::test]
    async fn a_connection_asked_closed_ends_cleanly_after_the_whole_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let pki = crate::testing::TestPki::new();
        let server = loopback_server_of(&pki).await;
        let listener = server.listeners()[0];
        let request =
            b"GET /payload?bytes=64 HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n";
        let ends_with_64_zeros = |answer: &[u8]| {
            let text = String::from_utf8_lossy(answer);
            text.starts_with("HTTP/1.1 200")
                && text.contains("content-length: 64\r\n")
                && answer.ends_with(&[0u8; 64])
        };
        for _ in 0..3 {
            let mut stream = TcpStream::connect(listener.http).await.expect("connect");
            stream.write_all(request).await.expect("request");
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
                .await
                .expect("closed within 10 s")
                .expect("an orderly end (FIN), not a reset");
            assert!(ends_with_64_zeros(&answer), "{answer:?}");
        }
        let mut stream = tls_client(&pki, listener.https).await;
        stream.write_all(request).await.expect("request");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("closed within 10 s")
            .expect("close_notify before the end, not a truncation");
        assert!(ends_with_64_zeros(&answer), "{answer:?}");
        server.shutdown().await;
    }

    /// A kept-alive connection idle between requests is closed by the stop at once, its
    /// request-less wait ended by hyper's graceful shutdown (each connection watches the stop
    /// itself), not cut at the drain limit: shutdown returns before [`DRAIN_LIMIT`], and the
    /// client reads the end of the stream (HTTP and HTTPS). Over HTTPS the end of the stream
    /// is the proof that does not depend on time: a connection cut at the drain limit gets no
    /// TLS close_notify, and its client's read fails instead of ending.
    #[tokio::test]
    async fn shutdown_closes_idle_kept_alive_connections_at_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let pki = crate::testing::TestPki::new();
        let server = loopback_server_of(&pki).await;
        let listener = server.listeners()[0];
        let request = b"GET /payload?bytes=1 HTTP/1.1\r\nHost: server\r\n\r\n";
        let mut plain = TcpStream::connect(listener.http).await.expect("connect");
        plain.write_all(request).await.expect("request");
        let mut answer = [0u8; 512];
        let n = plain.read(&mut answer).await.expect("answer");
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            &answer[..n]
        );
        let mut secure = tls_client(&pki, listener.https).await;
        secure.write_all(request).await.expect("request");
        let n = secure.read(&mut answer).await.expect("answer");
        assert!(
            answer[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            &answer[..n]
        );

        let began = std::time::Instant::now();
        server.shutdown().await;
        let took = began.elapsed();
        assert!(
            took < DRAIN_LIMIT,
            "shutdown took {took:?}: idle connections were cut, not closed"
        );
        let ended = |read: std::io::Result<usize>| matches!(read, Ok(0));
        let read = tokio::time::timeout(Duration::from_secs(10), plain.read(&mut answer)).await;
        assert!(read.is_ok_and(ended), "HTTP: no end of stream");
        let read = tokio::time::timeout(Duration::from_secs(10), secure.read(&mut answer)).await;
        assert!(read.is_ok_and(ended), "HTTPS: no end of stream");
    }

    /// A connection still in its TLS handshake when the stop comes (here: no ClientHello
    /// yet) is closed by the stop, not left waiting out the handshake limit: connections are
    /// tracked, not owned by a join set that would abort them, so each must end by itself.
    #[tokio::test]
    async fn a_handshake_unfinished_at_the_stop_is_closed_by_it() {
        use tokio::io::AsyncReadExt;
        let pki = crate::testing::TestPki::new();
        let server = loopback_server_of(&pki).await;
        let https = server.listeners()[0].https;
        let mut silent = TcpStream::connect(https).await.expect("connect");
        // Accepted before the stop: a listener's queue is first in, first out, so the
        // handshake of a connection made after it proves the server took it.
        let _after = tls_client(&pki, https).await;
        let began = std::time::Instant::now();
        server.shutdown().await;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(TLS_HANDSHAKE_LIMIT, silent.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0))),
            "the unfinished handshake's connection was not closed: {read:?}"
        );
        assert!(
            began.elapsed() < TLS_HANDSHAKE_LIMIT,
            "closed only at the handshake limit"
        );
    }

    #[tokio::test]
    async fn root_answers_with_the_caller_address() {
        let response = get("/");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(&body_of(response).await[..], b"127.0.0.2\n");
    }

    /// `/payload` answers exactly N bytes, said in `content-length` on the wire (written by
    /// hyper from the body's exact size: the response has no header map of its own) and no
    /// `content-type` (`application/octet-stream` to its recipient, RFC 9110 §8.3).
    #[tokio::test]
    async fn payload_has_exactly_the_requested_length() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = loopback_server().await;
        for bytes in [0u64, 1, 65_536, 200_001] {
            let response = get(&format!("/payload?bytes={bytes}"));
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.body().size_hint().exact(), Some(bytes));
            assert_eq!(body_of(response).await.len() as u64, bytes);

            let mut stream = TcpStream::connect(server.listeners()[0].http)
                .await
                .expect("connect");
            let request = format!(
                "GET /payload?bytes={bytes} HTTP/1.1\r\nHost: server\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.expect("request");
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
                .await
                .expect("closed within 10 s")
                .expect("an orderly end");
            let head_end = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a head")
                + 4;
            let head = String::from_utf8_lossy(&answer[..head_end]).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(
                head.contains(&format!("content-length: {bytes}\r\n")),
                "{head}"
            );
            assert!(!head.contains("content-type"), "{head}");
            assert_eq!((answer.len() - head_end) as u64, bytes, "{head}");
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn an_upload_is_read_counted_and_thrown_away_within_its_bound() {
        let body = http_body_util::Full::new(Bytes::from(vec![7u8; 100_000]));
        let request = Request::post("/upload").body(body).expect("request");
        let response = receive_upload(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(&body_of(response).await[..], b"100000\n");
        let too_big = Request::post("/upload")
            .header(CONTENT_LENGTH, UPLOAD_MAX + 1)
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        assert_eq!(
            receive_upload(too_big).await.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[tokio::test]
    async fn cpu_answers_with_this_process_cpu_seconds() {
        let response = get("/cpu");
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_of(response).await;
        let seconds: f64 = std::str::from_utf8(&body)
            .expect("text")
            .trim()
            .parse()
            .expect("a number of seconds");
        assert!(seconds >= 0.0, "{seconds}");
    }

    #[test]
    fn bad_payload_requests_and_other_paths_are_refused() {
        let too_big = format!("/payload?bytes={}", PAYLOAD_MAX + 1);
        for (uri, code) in [
            (too_big.as_str(), StatusCode::BAD_REQUEST),
            ("/payload", StatusCode::BAD_REQUEST),
            ("/payload?bytes=x", StatusCode::BAD_REQUEST),
            ("/other", StatusCode::NOT_FOUND),
        ] {
            assert_eq!(get(uri).status(), code, "{uri}");
        }
        let post = Request::post("/").body(()).expect("request");
        assert_eq!(
            respond(&post, "::1".parse().expect("ip")).status(),
            StatusCode::NOT_FOUND
        );
    }
}
