//! The `kubernetes` Service as kube-proxy provides it to pods: a TCP listener on the Service's
//! address on the pod network (inside the lab's control namespace), each connection spliced to
//! the control plane on loopback. The bytes pass through this process, so the host namespace
//! needs (and gets) no route into the lab.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Why the Service could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target is not on loopback (the lab forwards only to a local control plane).
    #[error("the API server is forwarded only from loopback, not {target}")]
    NotLoopback {
        /// The API server's address.
        target: SocketAddr,
    },
    /// No socket on the Service's address in the control namespace.
    #[error(transparent)]
    Listen(#[from] crate::lab::net::Error),
    /// The socket could not be handed to the runtime.
    #[error("the Service listener")]
    Listener(#[source] std::io::Error),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Starts forwarding `service` (in namespace `ns`) to `target`; the task runs until aborted.
pub fn start(
    ns: &str,
    service: SocketAddr,
    target: SocketAddr,
) -> Result<tokio::task::JoinHandle<()>> {
    if !target.ip().is_loopback() {
        return Err(Error::NotLoopback { target });
    }
    let listener = crate::lab::net::tcp_listener_in(ns, service)?;
    listener.set_nonblocking(true).map_err(Error::Listener)?;
    let listener = TcpListener::from_std(listener).map_err(Error::Listener)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                // Out of descriptors, say: let connections end before trying again.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(async move {
                match TcpStream::connect(target).await {
                    Ok(mut outbound) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                    Err(e) => tracing::warn!("forwarding to the API server at {target}: {e}"),
                }
            });
        }
    }))
}
