//! A TCP port of a ClusterIP, spliced in user space as [`crate::lab::kubelet::forward`]
//! splices the `kubernetes` Service: a listener on `ClusterIP:port` in the control namespace,
//! each connection joined to one to a ready endpoint, made from the control namespace (which
//! reaches the pods on the pod network). As kube-proxy's userspace mode did
//! (`pkg/proxy/userspace/proxysocket.go`, `tryConnect`), an endpoint that does not answer is
//! passed over for the next; with no endpoint the connection is reset (kube-proxy rejects
//! it). Established connections are left alone when endpoints change, as kube-proxy leaves
//! TCP's conntrack entries: they end when either side ends them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::endpoints::RoundRobin;
use crate::lab::net;

/// How long a connection to one endpoint may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How many endpoints a connection tries at most.
const CONNECT_TRIES: usize = 4;

/// Splices connections accepted on `listener` (bound in namespace `ns`) to the endpoints
/// `endpoints` holds, until `stop` is cancelled or the endpoints' sender is dropped; every
/// spliced connection ends with it.
pub async fn splice(
    listener: TcpListener,
    ns: String,
    mut endpoints: watch::Receiver<Vec<SocketAddr>>,
    stop: CancellationToken,
) {
    let service = listener.local_addr().ok();
    let mut balance = RoundRobin::default();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            // The list is read at each accept; here only its sender's end matters.
            changed = endpoints.changed() => if changed.is_err() {
                break;
            },
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else {
                    // Out of descriptors, say: let connections end before trying again.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let ready = endpoints.borrow().clone();
                let candidates: Vec<SocketAddr> = (0..ready.len().min(CONNECT_TRIES))
                    .filter_map(|_| balance.pick(&ready))
                    .collect();
                let ns = ns.clone();
                connections.spawn(async move {
                    match connect_any(&ns, &candidates).await {
                        Some(mut outbound) => {
                            let mut inbound = inbound;
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                        None => {
                            // A reset, as for a port nobody serves.
                            let _ = inbound.set_zero_linger();
                            if !candidates.is_empty() {
                                tracing::warn!(?service, ?candidates, "no endpoint of the Service answered");
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// A connection from namespace `ns` to the first of `candidates` that answers in time.
async fn connect_any(ns: &str, candidates: &[SocketAddr]) -> Option<TcpStream> {
    for endpoint in candidates {
        let ns_owned = ns.to_string();
        let socket = tokio::task::spawn_blocking(move || net::tcp_socket_in(&ns_owned)).await;
        let socket = match socket {
            Ok(Ok(socket)) => socket,
            Ok(Err(e)) => {
                tracing::warn!("{}", multinet_agent::chain(&e));
                return None;
            }
            Err(_) => return None,
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(*endpoint)).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => tracing::debug!(%endpoint, "connecting to an endpoint: {e}"),
            Err(_) => tracing::debug!(%endpoint, "connecting to an endpoint: timed out"),
        }
    }
    None
}
