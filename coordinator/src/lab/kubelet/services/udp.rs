//! A UDP port of a ClusterIP, relayed in user space as kube-proxy's userspace mode did
//! (`pkg/proxy/userspace/proxysocket.go`, `udpProxySocket`): one socket on `ClusterIP:port`
//! in the control namespace; per client address a flow — a socket connected to the endpoint
//! chosen for it, whose replies go back to the client from `ClusterIP:port` — kept and ended
//! by [`super::flows`]. The endpoint sees the control namespace's address as the source (as
//! behind the userspace proxy), the client sees the ClusterIP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::endpoints::RoundRobin;
use super::flows::FlowTable;
use crate::lab::net;

/// The largest datagram relayed (the largest a UDP socket takes).
const MAX_DATAGRAM: usize = 65_535;

/// A flow's socket, and the task relaying its replies (ended with the flow).
#[derive(Debug)]
struct Flow {
    socket: Arc<UdpSocket>,
    replies: tokio::task::AbortHandle,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.replies.abort();
    }
}

/// What a flow's reply task tells the relay.
#[derive(Debug)]
enum FromEndpoint {
    /// A reply went back to the client.
    Replied(SocketAddr, u64),
    /// The flow's socket failed (the endpoint refused: ICMP port unreachable): the flow ends,
    /// the client's next datagram is balanced anew.
    Failed(SocketAddr, u64),
}

/// Relays datagrams from `frontend` (bound in namespace `ns`) to the endpoints `endpoints`
/// holds, until `stop` is cancelled or the endpoints' sender is dropped; every flow's socket
/// and task end with it.
pub async fn relay(
    frontend: UdpSocket,
    ns: String,
    mut endpoints: watch::Receiver<Vec<SocketAddr>>,
    stop: CancellationToken,
) {
    let frontend = Arc::new(frontend);
    let service = frontend.local_addr().ok();
    let mut flows: FlowTable<Flow> = FlowTable::default();
    let mut balance = RoundRobin::default();
    let mut replies = JoinSet::new();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let expiry = flows.next_expiry();
        tokio::select! {
            () = stop.cancelled() => break,
            changed = endpoints.changed() => {
                if changed.is_err() {
                    break;
                }
                let ready = endpoints.borrow_and_update().clone();
                let ended = flows.keep_ready(&ready);
                if !ended.is_empty() {
                    tracing::debug!(?service, ended = ended.len(), "UDP flows to endpoints no longer ready ended");
                }
            }
            received = frontend.recv_from(&mut buf) => {
                let Ok((n, client)) = received else {
                    continue;
                };
                let now = Instant::now();
                let sent = match flows.outbound(client, now) {
                    Some(flow) => flow.socket.send(&buf[..n]).await.is_ok(),
                    None => false,
                };
                if sent {
                    continue;
                }
                // No flow yet, or its socket failed: a new flow to the next ready endpoint.
                flows.remove_client(client);
                let Some(endpoint) = balance.pick(&endpoints.borrow()) else {
                    // No endpoint: dropped, as kube-proxy's rules reject it.
                    continue;
                };
                let socket = match connected_socket(&ns, endpoint).await {
                    Ok(socket) => Arc::new(socket),
                    Err(e) => {
                        tracing::warn!(?service, %endpoint, "UDP flow: {}", multinet_agent::chain(&e));
                        continue;
                    }
                };
                let id = flows.next_id();
                let task = replies.spawn(relay_replies(
                    socket.clone(),
                    frontend.clone(),
                    client,
                    id,
                    events_tx.clone(),
                ));
                let _ = socket.send(&buf[..n]).await;
                flows.insert(client, endpoint, Flow { socket, replies: task }, now);
                tracing::debug!(?service, %client, %endpoint, "UDP flow");
            }
            Some(event) = events.recv() => match event {
                FromEndpoint::Replied(client, id) => flows.inbound(client, id, Instant::now()),
                FromEndpoint::Failed(client, id) => {
                    flows.remove(client, id);
                }
            },
            () = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                flows.expire(Instant::now());
            }
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
        }
    }
    // Dropping the flows and the set ends every reply task; their sockets close.
    drop(flows);
    replies.shutdown().await;
}

/// A UDP socket in namespace `ns`, connected to `endpoint` (so only its datagrams come in).
async fn connected_socket(ns: &str, endpoint: SocketAddr) -> Result<UdpSocket, net::Error> {
    let ns = ns.to_string();
    let socket = tokio::task::spawn_blocking(move || {
        let socket = net::udp_socket_in(&ns, SocketAddr::from(([0, 0, 0, 0], 0)))?;
        let failed = |what: &str| {
            let what = format!("{what} a UDP socket to {endpoint} in namespace {ns}");
            move |source| net::Error::Namespace { what, source }
        };
        socket.connect(endpoint).map_err(failed("connecting"))?;
        socket.set_nonblocking(true).map_err(failed("preparing"))?;
        Ok::<_, net::Error>(socket)
    })
    .await
    .map_err(|_| net::Error::Panicked)??;
    UdpSocket::from_std(socket).map_err(|source| net::Error::Namespace {
        what: format!("registering a UDP socket to {endpoint}"),
        source,
    })
}

/// Sends what the endpoint answers on `socket` back to `client` from the Service's address,
/// until the socket fails (or the task is aborted with its flow).
async fn relay_replies(
    socket: Arc<UdpSocket>,
    frontend: Arc<UdpSocket>,
    client: SocketAddr,
    id: u64,
    events: mpsc::UnboundedSender<FromEndpoint>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                let _ = frontend.send_to(&buf[..n], client).await;
                let _ = events.send(FromEndpoint::Replied(client, id));
            }
            Err(_) => {
                let _ = events.send(FromEndpoint::Failed(client, id));
                return;
            }
        }
    }
}
