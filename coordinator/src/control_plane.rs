//! The control-plane endpoint: QUIC with mutual TLS against the run CA. One task accepts
//! connections; each connection gets a reader task (this module) and a writer task, and talks
//! to the [`AgentRoster`] actor. A malformed frame, a refused Hello or a peer without a run
//! certificate closes that connection only.
//!
//! Capacity: at most [`ControlPlane::set_connection_limit`] connections are served at once
//! (the run's agents plus a margin, [`connection_limit_for`]); a connection above it is closed
//! with [`close_code::OVER_CAPACITY`] and counted ([`ControlPlane::refused_over_capacity`]).
//!
//! Bursts: every agent's packets arrive on one UDP socket, and a socket whose receive buffer
//! is full drops what arrives (QUIC resends it, late: a handshake whose packets are dropped
//! again and again times out). So the socket asks for [`SOCKET_RECEIVE_BUFFER`] bytes
//! ([`enlarge_receive_buffer`]); the kernel caps that at `net.core.rmem_max`.
//!
//! Stopping: every task this module spawns is tracked ([`ControlPlane::live_tasks`]) and
//! watches one shutdown signal. [`ControlPlane::close`] raises it, closes the endpoint and
//! waits for the tasks; those still running after [`SHUTDOWN_PATIENCE`] are aborted, and that
//! is logged. This module does not own the agents' state: the roster does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix::Addr;
use multinet_proto::control::codec::{self, CodecError, PREFIX};
use multinet_proto::control::{AgentMessage, CoordinatorMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::pki::RunPki;
use crate::roster::{AgentRoster, ConnectionEvent, Introduce, Report};

/// How long a new connection may take to open its stream and say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`ControlPlane::close`] waits for its tasks to end by themselves before it aborts
/// them (they end as soon as their connection closes, which the endpoint's close does at
/// once: a task still running after this is stuck).
pub const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(2);

/// How long aborted tasks get to be dropped (an abort takes effect at their next poll).
const ABORT_PATIENCE: Duration = Duration::from_millis(500);

/// How long the endpoint may take to send its connections' close frames.
const IDLE_PATIENCE: Duration = Duration::from_secs(2);

/// Messages queued for one agent's writer. What goes to an agent is small and rare: Welcome,
/// Targets, Stop, and one Ack per report batch, and the reader queues the Ack of a batch only
/// after the roster has recorded it, one batch at a time. A full queue therefore means the
/// agent does not read its stream: the reader then waits (and stops reading that agent's
/// batches, so QUIC flow control slows the agent down) instead of the queue growing without
/// bound; the roster, which cannot wait, closes such a connection (the agent reconnects and is
/// told everything again). 64 leaves room for a burst of Acks behind a briefly slow stream.
pub const WRITER_CAPACITY: usize = 64;

/// Connections beyond the expected agents, at least: room for agents reconnecting while the
/// coordinator has not yet seen their previous connection close (up to the 10 s idle timeout)
/// and for peers that are refused after their handshake.
const CONNECTION_MARGIN: usize = 16;

/// The receive buffer the control plane's socket asks for: room for a burst of thousands of
/// datagrams (the kernel charges each with its bookkeeping, some 2 KiB or more for a full
/// QUIC packet), as when thousands of agents connect or report within a few milliseconds.
/// With the kernel's default (208 KiB on Debian) `bench ingest` saw handshakes and batches
/// dropped at the socket (BENCHMARKS.md).
pub const SOCKET_RECEIVE_BUFFER: usize = 4 << 20;

/// Asks the kernel for a receive buffer of [`SOCKET_RECEIVE_BUFFER`] bytes on `socket` and
/// returns what it granted, in bytes as `SO_RCVBUF` reports it (Linux doubles the request for
/// its bookkeeping and caps the request at the `net.core.rmem_max` sysctl; `socket(7)`).
///
/// # Errors
///
/// The `SO_RCVBUF` socket option could not be set or read.
pub fn enlarge_receive_buffer(socket: &std::net::UdpSocket) -> std::io::Result<usize> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt::RcvBuf};
    setsockopt(socket, RcvBuf, &SOCKET_RECEIVE_BUFFER)?;
    Ok(getsockopt(socket, RcvBuf)?)
}

/// Application error codes the coordinator closes connections with (the agent logs them).
pub mod close_code {
    /// The run is over: the control plane closed.
    pub const RUN_OVER: u32 = 0;
    /// No control stream, or its first message was not Hello.
    pub const NO_HELLO: u32 = 1;
    /// The roster refused the Hello (the [`multinet_proto::control::Refusal`] was sent first).
    pub const REFUSED: u32 = 2;
    /// Hello sent twice on one connection.
    pub const HELLO_TWICE: u32 = 3;
    /// A frame was too large or malformed.
    pub const MALFORMED: u32 = 4;
    /// Dropped on purpose (tests of the reconnect guarantee).
    pub const DROPPED: u32 = 5;
    /// More connections than the run expects agents, plus a margin.
    pub const OVER_CAPACITY: u32 = 6;
    /// The agent's writer queue was full: it does not read what it is sent.
    pub const WRITER_FULL: u32 = 7;
}

/// The connection limit for a run of `expected` agents: each of them, plus
/// `max(16, expected / 2)` for reconnects and refused peers.
pub fn connection_limit_for(expected: usize) -> usize {
    expected + CONNECTION_MARGIN.max(expected / 2)
}

/// The running endpoint.
#[derive(Debug)]
pub struct ControlPlane {
    endpoint: quinn::Endpoint,
    /// Raised by [`Self::close`]: the accept loop stops and every connection task ends.
    shutdown: CancellationToken,
    /// Raised when tasks outlived [`SHUTDOWN_PATIENCE`]: every tracked task is dropped at its
    /// next poll.
    abort: CancellationToken,
    /// Every task the control plane spawned, so that [`Self::close`] can wait for them.
    tasks: TaskTracker,
    /// How many connections may be served at once, and how many are.
    slots: Arc<ConnectionSlots>,
    /// Connections closed because [`Self::slots`] were all taken.
    over_capacity: Arc<AtomicU64>,
    /// The socket's receive buffer in bytes, as the kernel reports it (0: unknown), so that a
    /// benchmark can say what it ran with.
    receive_buffer: usize,
}

/// Why the control plane could not start or say where it listens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run's PKI could not make the QUIC server configuration.
    #[error(transparent)]
    Tls(#[from] crate::pki::Error),
    /// The QUIC endpoint could not be made on the backend's socket.
    #[error("starting the QUIC endpoint")]
    Endpoint(#[source] std::io::Error),
    /// The endpoint's socket has no local address.
    #[error("the control plane's address")]
    Address(#[source] std::io::Error),
}

/// The result of a control plane operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ControlPlane {
    /// Starts accepting agents on `socket` (bound by the backend where agents reach it). Until
    /// [`Self::set_connection_limit`], at most [`connection_limit_for`]`(0)` connections are
    /// served at once: no agent connects before the run has planned it.
    pub fn start(
        pki: &RunPki,
        socket: std::net::UdpSocket,
        roster: Addr<AgentRoster>,
    ) -> Result<Self> {
        let receive_buffer = match enlarge_receive_buffer(&socket) {
            Ok(granted) => {
                if granted < SOCKET_RECEIVE_BUFFER {
                    tracing::debug!(
                        granted,
                        asked = SOCKET_RECEIVE_BUFFER,
                        "the control plane's receive buffer is smaller than asked \
                         (net.core.rmem_max): bursts of many agents may be dropped and resent"
                    );
                }
                granted
            }
            Err(e) => {
                tracing::warn!("cannot size the control plane's receive buffer: {e}");
                0
            }
        };
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(pki.quic_server_config()?),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(Error::Endpoint)?;
        let plane = Self {
            endpoint,
            shutdown: CancellationToken::new(),
            abort: CancellationToken::new(),
            tasks: TaskTracker::new(),
            slots: Arc::new(ConnectionSlots {
                limit: AtomicUsize::new(connection_limit_for(0)),
                live: AtomicUsize::new(0),
            }),
            over_capacity: Arc::new(AtomicU64::new(0)),
            receive_buffer,
        };
        let tasks = Tasks {
            tracker: plane.tasks.clone(),
            shutdown: plane.shutdown.clone(),
            abort: plane.abort.clone(),
        };
        tasks.spawn(accept(
            plane.endpoint.clone(),
            roster,
            tasks.clone(),
            plane.slots.clone(),
            plane.over_capacity.clone(),
        ));
        Ok(plane)
    }

    /// Where agents connect.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.endpoint.local_addr().map_err(Error::Address)
    }

    /// How many connections may be served at once from now on (see [`connection_limit_for`]).
    /// Connections already served stay.
    pub fn set_connection_limit(&self, limit: usize) {
        self.slots.limit.store(limit, Ordering::Relaxed);
    }

    /// Connections closed so far because the limit was reached.
    pub fn refused_over_capacity(&self) -> u64 {
        self.over_capacity.load(Ordering::Relaxed)
    }

    /// The socket's receive buffer in bytes as the kernel reports it ([`enlarge_receive_buffer`];
    /// 0 when it could not be read).
    pub fn receive_buffer(&self) -> usize {
        self.receive_buffer
    }

    /// Tasks of the control plane still running (0 once [`Self::close`] returned).
    pub fn live_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Closes every connection and the endpoint, and waits for every task: those still
    /// running after [`SHUTDOWN_PATIENCE`] are aborted. Safe to call more than once.
    pub async fn close(&self) {
        self.shutdown.cancel();
        self.endpoint
            .close(close_code::RUN_OVER.into(), b"run over");
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_PATIENCE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.tasks.len(),
                "control-plane tasks still running {SHUTDOWN_PATIENCE:?} after the close; aborting them"
            );
            self.abort.cancel();
            if tokio::time::timeout(ABORT_PATIENCE, self.tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    remaining = self.tasks.len(),
                    "control-plane tasks not gone {ABORT_PATIENCE:?} after their abort"
                );
            }
        }
        let refused = self.refused_over_capacity();
        if refused > 0 {
            tracing::warn!(
                refused,
                "the control plane refused {refused} connections over its limit"
            );
        }
        let _ = tokio::time::timeout(IDLE_PATIENCE, self.endpoint.wait_idle()).await;
    }
}

/// How tasks are spawned: tracked, and dropped when the abort signal is raised.
#[derive(Debug, Clone)]
struct Tasks {
    tracker: TaskTracker,
    /// Seen by the tasks themselves: they end their work and return.
    shutdown: CancellationToken,
    /// Seen by [`Self::spawn`]'s wrapper: the task's future is dropped.
    abort: CancellationToken,
}

impl Tasks {
    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let abort = self.abort.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                biased;
                () = abort.cancelled() => {}
                () = task => {}
            }
        })
    }
}

/// The connection limit and the connections counted against it.
#[derive(Debug)]
struct ConnectionSlots {
    limit: AtomicUsize,
    live: AtomicUsize,
}

impl ConnectionSlots {
    /// A slot for one connection, or None when all are taken.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let limit = self.limit.load(Ordering::Relaxed);
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < limit).then_some(live + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

/// A served connection's place in [`ConnectionSlots`], given back when dropped.
#[derive(Debug)]
struct Slot(Arc<ConnectionSlots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept(
    endpoint: quinn::Endpoint,
    roster: Addr<AgentRoster>,
    tasks: Tasks,
    slots: Arc<ConnectionSlots>,
    over_capacity: Arc<AtomicU64>,
) {
    let mut ids = 1u64..;
    loop {
        let incoming = tokio::select! {
            () = tasks.shutdown.cancelled() => break,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
        };
        match slots.take() {
            Some(slot) => {
                let id = ids.next().unwrap_or_default();
                tasks.spawn(serve(incoming, id, roster.clone(), tasks.clone(), slot));
            }
            None => {
                let refused = over_capacity.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    peer = %incoming.remote_address(),
                    limit = slots.limit.load(Ordering::Relaxed),
                    refused,
                    "control plane full: refusing a connection"
                );
                tasks.spawn(refuse_over_capacity(incoming));
            }
        }
    }
}

/// Completes the handshake only to tell the peer why it is closed.
async fn refuse_over_capacity(incoming: quinn::Incoming) {
    if let Ok(Ok(connection)) = tokio::time::timeout(HELLO_TIMEOUT, incoming).await {
        connection.close(close_code::OVER_CAPACITY.into(), b"too many connections");
    }
}

/// Why reading a frame stopped.
#[derive(Debug)]
enum ReadError {
    /// The peer closed the stream or the connection.
    Closed,
    /// The frame was too large or malformed.
    Codec,
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<AgentMessage, ReadError> {
    let mut prefix = [0u8; PREFIX];
    recv.read_exact(&mut prefix)
        .await
        .map_err(|_| ReadError::Closed)?;
    let len = codec::body_len(prefix).map_err(|_: CodecError| ReadError::Codec)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|_| ReadError::Closed)?;
    codec::decode_body(&body).map_err(|_: CodecError| ReadError::Codec)
}

async fn write_frames(
    mut send: quinn::SendStream,
    mut rx: mpsc::Receiver<CoordinatorMessage>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = rx.recv() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let last = matches!(message, CoordinatorMessage::Refused(_));
        let Ok(frame) = codec::encode(&message) else {
            break;
        };
        if send.write_all(&frame).await.is_err() {
            break;
        }
        if last {
            let _ = send.finish();
            let _ = send.stopped().await;
            break;
        }
    }
}

async fn serve(
    incoming: quinn::Incoming,
    conn_id: u64,
    roster: Addr<AgentRoster>,
    tasks: Tasks,
    _slot: Slot,
) {
    let connection = match incoming.await {
        Ok(c) => c,
        Err(_) => {
            roster.do_send(ConnectionEvent::Refused("tls_handshake"));
            return;
        }
    };
    let Ok(Ok((send, mut recv))) =
        tokio::time::timeout(HELLO_TIMEOUT, connection.accept_bi()).await
    else {
        roster.do_send(ConnectionEvent::Refused("no_stream"));
        connection.close(close_code::NO_HELLO.into(), b"no control stream");
        return;
    };
    let (tx, rx) = mpsc::channel(WRITER_CAPACITY);
    let writer = tasks.spawn(write_frames(send, rx, tasks.shutdown.clone()));
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut recv)).await {
        Ok(Ok(AgentMessage::Hello(hello))) => hello,
        _ => {
            roster.do_send(ConnectionEvent::Refused("no_hello"));
            connection.close(
                close_code::NO_HELLO.into(),
                b"the first message must be Hello",
            );
            return;
        }
    };
    let pod = hello.agent.pod.clone();
    match roster
        .send(Introduce {
            hello,
            conn_id,
            tx: tx.clone(),
            connection: connection.clone(),
        })
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => {
            let _ = tx.send(CoordinatorMessage::Refused(refusal)).await;
            drop(tx);
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            connection.close(close_code::REFUSED.into(), b"refused");
            return;
        }
        Err(_) => return,
    }
    loop {
        let frame = tokio::select! {
            () = tasks.shutdown.cancelled() => {
                connection.close(close_code::RUN_OVER.into(), b"run over");
                break;
            }
            frame = read_frame(&mut recv) => frame,
        };
        match frame {
            Ok(AgentMessage::Report(batch)) => match roster
                .send(Report {
                    pod: pod.clone(),
                    batch,
                })
                .await
            {
                Ok(seq) => {
                    // Waits while the writer's queue is full: back-pressure on this agent.
                    let _ = tx.send(CoordinatorMessage::Ack { seq }).await;
                }
                Err(_) => break,
            },
            Ok(AgentMessage::Heartbeat) => {}
            Ok(AgentMessage::ServerReady { listeners }) => {
                roster.do_send(ConnectionEvent::ServerReady {
                    pod: pod.clone(),
                    listeners,
                })
            }
            Ok(AgentMessage::Failed { reason }) => roster.do_send(ConnectionEvent::Failed {
                pod: pod.clone(),
                reason,
            }),
            Ok(AgentMessage::Egress(report)) => roster.do_send(ConnectionEvent::Egress {
                pod: pod.clone(),
                report,
            }),
            Ok(AgentMessage::Hello(_)) => {
                connection.close(close_code::HELLO_TWICE.into(), b"Hello sent twice");
                break;
            }
            Err(ReadError::Codec) => {
                roster.do_send(ConnectionEvent::Refused("malformed_frame"));
                connection.close(close_code::MALFORMED.into(), b"malformed frame");
                break;
            }
            Err(ReadError::Closed) => break,
        }
    }
    roster.do_send(ConnectionEvent::Closed { pod, conn_id });
}

#[cfg(test)]
mod tests;
