//! The `kubernetes` Service as kube-proxy provides it to pods: a TCP listener on the Service's
//! address on the pod network (inside the lab's control namespace), each connection spliced to
//! the control plane on loopback. The bytes pass through this process, so the host namespace
//! needs (and gets) no route into the lab.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

/// Starts forwarding `service` (in namespace `ns`) to `target`; the task runs until aborted.
pub fn start(
    ns: &str,
    service: SocketAddr,
    target: SocketAddr,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    anyhow::ensure!(
        target.ip().is_loopback(),
        "the API server is forwarded only from loopback, not {target}"
    );
    let listener = crate::lab::net::tcp_listener_in(ns, service)?;
    listener
        .set_nonblocking(true)
        .context("the Service listener")?;
    let listener = TcpListener::from_std(listener).context("the Service listener")?;
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
