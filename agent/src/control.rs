//! The control-plane client: one QUIC connection to the coordinator, one bidirectional stream,
//! length-prefixed frames ([`multinet_proto::control::codec`]).
//!
//! On every connection the agent sends `Hello` (with the highest acknowledged batch), waits for
//! `Welcome`, announces itself if it has something to announce (the server's listeners), then
//! resends every unacknowledged batch in order and keeps sending new ones. A lost connection
//! is re-established with backoff while the prober keeps filling the [`Outbox`]; when no
//! connection could be made for the grace period the client gives up by itself.
//!
//! Owns the connection and the protocol; never touches probe sockets.

pub mod outbox;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use multinet_proto::assignment::{AgentAssignment, NetworkAddress};
use multinet_proto::control::codec::{self, CodecError, decode_frame};
use multinet_proto::control::{
    AgentIdentity, AgentMessage, COORDINATOR_NAME, CoordinatorMessage, Hello, Listener,
    PROTOCOL_VERSION, Refusal,
};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, sleep, timeout};

pub use outbox::Outbox;

/// First pause between connection attempts; doubles up to [`BACKOFF_MAX`].
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Longest time one connection attempt (QUIC handshake, Hello, Welcome) may take.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(5);
/// How long the agent waits for the last batch's acknowledgement after Stop.
const STOP_ACK_WAIT: Duration = Duration::from_secs(2);
/// How long closing the connection may take before the agent exits anyway.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// How the control client is set up.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// The coordinator's QUIC address.
    pub coordinator: SocketAddr,
    /// The run, repeated in every Hello.
    pub run_id: String,
    /// Who the agent is, repeated in every Hello.
    pub identity: AgentIdentity,
    /// The agent's addresses, repeated in every Hello.
    pub addresses: Vec<NetworkAddress>,
    /// Mutual TLS against the run CA (see [`crate::tls::RunTls::control_client_config`]).
    pub client_config: quinn::ClientConfig,
    /// How long the coordinator may be unreachable before the client gives up.
    pub grace: Duration,
    /// Pending results are sealed into a batch and sent at least this often.
    pub flush_every: Duration,
    /// A Heartbeat is sent when nothing else was sent for this long.
    pub heartbeat_after: Duration,
    /// Wall-clock time (Unix ms) the agent's clock counts from (sent in every Hello).
    pub clock_epoch_unix_ms: u64,
}

impl ControlSettings {
    /// The settings an assignment implies, for an agent whose clock counts from
    /// `clock_epoch_unix_ms` (Unix ms).
    pub fn from_assignment(
        assignment: &AgentAssignment,
        client_config: quinn::ClientConfig,
        clock_epoch_unix_ms: u64,
    ) -> Self {
        Self {
            coordinator: assignment.coordinator,
            run_id: assignment.run_id.clone(),
            identity: assignment.identity.clone(),
            addresses: assignment.addresses.clone(),
            client_config,
            grace: Duration::from_millis(assignment.grace_ms),
            flush_every: Duration::from_millis(assignment.probe.interval_ms.max(1)),
            heartbeat_after: Duration::from_secs(1),
            clock_epoch_unix_ms,
        }
    }
}

/// How the control client ended, when it ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlEnd {
    /// The coordinator sent Stop; pending results were flushed.
    Stopped,
    /// No connection could be established for the grace period.
    GraceExpired,
}

/// Why the control client gave up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No UDP socket could be opened for the control plane.
    #[error("opening a UDP socket on {local} for the control plane")]
    Socket {
        /// The wildcard address of the coordinator's family, port 0.
        local: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The coordinator refused this agent: final, another attempt would be refused too.
    #[error("the coordinator refused this agent")]
    Refused(#[source] Refusal),
    /// No connection could be made within the grace period (reporting a failure).
    #[error("the coordinator at {coordinator} was unreachable")]
    Unreachable {
        /// The coordinator's QUIC address.
        coordinator: SocketAddr,
    },
}

impl Error {
    /// The coordinator's reason, when it refused this agent.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why one connection ended without Stop: refused (final), or lost (reconnect). A lost
/// connection is logged, never returned.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    /// The coordinator refused the agent.
    #[error("the coordinator refused this agent")]
    Refused(#[source] Refusal),
    /// The QUIC connection could not be started (bad address, endpoint closing).
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed (handshake, timeout, reset).
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    /// A message could not be encoded (larger than a frame may be).
    #[error("encoding a control frame")]
    Encode(#[source] CodecError),
    /// The stream to the coordinator failed.
    #[error("writing to the coordinator")]
    Write(#[source] quinn::WriteError),
    /// The stream from the coordinator failed.
    #[error("reading from the coordinator")]
    Read(#[source] quinn::ReadError),
    /// The coordinator sent bytes that are not a frame of its messages.
    #[error("malformed frame from the coordinator")]
    Malformed(#[source] CodecError),
    /// The coordinator's stream ended with part of a frame read.
    #[error("the coordinator's stream ended inside a frame")]
    EndedInFrame,
    /// The coordinator answered Hello with something else than Welcome or a refusal.
    #[error("expected Welcome, got {0:?}")]
    NotWelcome(Box<CoordinatorMessage>),
    /// The coordinator ended the stream before it answered Hello.
    #[error("the coordinator closed the stream before Welcome")]
    ClosedBeforeWelcome,
    /// The coordinator ended the stream without Stop.
    #[error("the coordinator closed the stream")]
    Closed,
    /// The attempt (handshake, Hello, Welcome) took longer than it may.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
}

/// A client endpoint on the wildcard address of the coordinator's family.
fn client_endpoint(coordinator: SocketAddr) -> Result<quinn::Endpoint> {
    let local: SocketAddr = if coordinator.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    quinn::Endpoint::client(local).map_err(|source| Error::Socket { local, source })
}

/// Runs the control client until Stop, grace expiry or refusal (an error).
///
/// `announce` is sent after every Welcome (the server's `ServerReady`). Results come from
/// `outbox`; Targets go to `targets`.
pub async fn run(
    settings: &ControlSettings,
    announce: Option<AgentMessage>,
    outbox: &Outbox,
    targets: &watch::Sender<Vec<Listener>>,
) -> Result<ControlEnd> {
    let endpoint = client_endpoint(settings.coordinator)?;
    let mut unreachable_since = Instant::now();
    let mut backoff = BACKOFF_INITIAL;
    let mut reported_outage = false;
    loop {
        let remaining = settings.grace.saturating_sub(unreachable_since.elapsed());
        if remaining.is_zero() {
            endpoint.close(0u32.into(), b"grace expired");
            return Ok(ControlEnd::GraceExpired);
        }
        let attempt = Session::open(&endpoint, settings, outbox.last_acked(), announce.as_ref());
        let error = match timeout(remaining.min(ATTEMPT_LIMIT), attempt).await {
            Ok(Ok(mut session)) => {
                backoff = BACKOFF_INITIAL;
                reported_outage = false;
                match session.serve(settings, outbox, targets).await {
                    Ok(end) => {
                        session.close(&endpoint).await;
                        return Ok(end);
                    }
                    Err(SessionError::Refused(refusal)) => return Err(Error::Refused(refusal)),
                    Err(lost) => {
                        unreachable_since = Instant::now();
                        lost
                    }
                }
            }
            Ok(Err(SessionError::Refused(refusal))) => return Err(Error::Refused(refusal)),
            Ok(Err(lost)) => lost,
            Err(_) => SessionError::NoAnswer(remaining.min(ATTEMPT_LIMIT)),
        };
        if !reported_outage {
            tracing::warn!(
                "control plane to {}: {}; reconnecting",
                settings.coordinator,
                crate::chain(&error)
            );
            reported_outage = true;
        }
        let remaining = settings.grace.saturating_sub(unreachable_since.elapsed());
        sleep(backoff.min(remaining)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Connects once (within `settings.grace`), says Hello, reports that the agent could not set
/// itself up, and closes. The reason ends up in the coordinator's report.
pub async fn report_failure(settings: &ControlSettings, reason: String) -> Result<()> {
    let endpoint = client_endpoint(settings.coordinator)?;
    let deadline = Instant::now() + settings.grace;
    let mut backoff = BACKOFF_INITIAL;
    let failed = AgentMessage::Failed { reason };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Unreachable {
                coordinator: settings.coordinator,
            });
        }
        let attempt = Session::open(&endpoint, settings, 0, Some(&failed));
        match timeout(remaining.min(ATTEMPT_LIMIT), attempt).await {
            Ok(Ok(mut session)) => {
                let _ = session.send.finish();
                let _ = timeout(CLOSE_WAIT, session.send.stopped()).await;
                session.close(&endpoint).await;
                return Ok(());
            }
            Ok(Err(SessionError::Refused(refusal))) => return Err(Error::Refused(refusal)),
            Ok(Err(_)) | Err(_) => {}
        }
        sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection with its stream.
struct Session {
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    reader: FrameReader,
    /// The highest batch sequence number sent on this connection.
    sent_upto: u64,
    /// When a frame was last written (for heartbeats).
    last_write: Instant,
}

impl Session {
    /// Connects, says Hello, waits for Welcome and sends `announce`.
    async fn open(
        endpoint: &quinn::Endpoint,
        settings: &ControlSettings,
        last_acked: u64,
        announce: Option<&AgentMessage>,
    ) -> Result<Self, SessionError> {
        let connection = endpoint
            .connect_with(
                settings.client_config.clone(),
                settings.coordinator,
                COORDINATOR_NAME,
            )?
            .await?;
        let (send, recv) = connection.open_bi().await?;
        let mut session = Session {
            connection,
            send,
            recv,
            reader: FrameReader::default(),
            sent_upto: last_acked,
            last_write: Instant::now(),
        };
        session
            .write(&AgentMessage::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                run_id: settings.run_id.clone(),
                agent: settings.identity.clone(),
                last_acked,
                addresses: settings.addresses.clone(),
                clock_epoch_unix_ms: settings.clock_epoch_unix_ms,
            }))
            .await?;
        match session.reader.next(&mut session.recv).await? {
            Some(CoordinatorMessage::Welcome) => {}
            Some(CoordinatorMessage::Refused(refusal)) => {
                return Err(SessionError::Refused(refusal));
            }
            Some(other) => return Err(SessionError::NotWelcome(Box::new(other))),
            None => return Err(SessionError::ClosedBeforeWelcome),
        }
        if let Some(message) = announce {
            session.write(message).await?;
        }
        Ok(session)
    }

    async fn write(&mut self, message: &AgentMessage) -> Result<(), SessionError> {
        let frame = codec::encode(message).map_err(SessionError::Encode)?;
        self.send
            .write_all(&frame)
            .await
            .map_err(SessionError::Write)?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Sends every sealed batch this connection has not carried yet.
    async fn send_unsent(&mut self, outbox: &Outbox) -> Result<(), SessionError> {
        for batch in outbox.unacked_after(self.sent_upto) {
            let seq = batch.seq;
            self.write(&AgentMessage::Report(batch)).await?;
            self.sent_upto = seq;
        }
        Ok(())
    }

    /// Serves the connection until Stop (Ok) or until it fails.
    async fn serve(
        &mut self,
        settings: &ControlSettings,
        outbox: &Outbox,
        targets: &watch::Sender<Vec<Listener>>,
    ) -> Result<ControlEnd, SessionError> {
        self.send_unsent(outbox).await?;
        let mut flush = tokio::time::interval(settings.flush_every);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(Duration::from_millis(250));
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = self.reader.next(&mut self.recv) => match message? {
                    Some(CoordinatorMessage::Ack { seq }) => outbox.ack(seq),
                    Some(CoordinatorMessage::Targets { listeners }) => {
                        // Where the probes will leave from, before they start (again after
                        // every reconnect: the coordinator resends Targets).
                        let egress = crate::egress::report(
                            &settings.identity,
                            &settings.addresses,
                            &listeners,
                            settings.coordinator,
                        )
                        .await;
                        targets.send_replace(listeners);
                        if !egress.routes.is_empty() {
                            self.write(&AgentMessage::Egress(egress)).await?;
                        }
                    }
                    Some(CoordinatorMessage::Stop) => {
                        self.finish(outbox).await;
                        return Ok(ControlEnd::Stopped);
                    }
                    Some(CoordinatorMessage::Refused(refusal)) => {
                        return Err(SessionError::Refused(refusal));
                    }
                    Some(CoordinatorMessage::Welcome) => {}
                    None => return Err(SessionError::Closed),
                },
                () = outbox.batch_sealed() => self.send_unsent(outbox).await?,
                _ = flush.tick() => {
                    outbox.seal();
                    self.send_unsent(outbox).await?;
                }
                _ = heartbeat.tick() => {
                    if self.last_write.elapsed() >= settings.heartbeat_after {
                        self.write(&AgentMessage::Heartbeat).await?;
                    }
                }
            }
        }
    }

    /// After Stop: sends what is pending and waits briefly for its acknowledgement.
    async fn finish(&mut self, outbox: &Outbox) {
        outbox.seal();
        if self.send_unsent(outbox).await.is_err() {
            return;
        }
        let last = outbox.last_sealed();
        let _ = timeout(STOP_ACK_WAIT, async {
            while outbox.last_acked() < last {
                match self.reader.next(&mut self.recv).await {
                    Ok(Some(CoordinatorMessage::Ack { seq })) => outbox.ack(seq),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        })
        .await;
    }

    /// Closes the stream and the connection, briefly waiting for the close to go out.
    async fn close(&mut self, endpoint: &quinn::Endpoint) {
        let _ = self.send.finish();
        self.connection.close(0u32.into(), b"done");
        let _ = timeout(CLOSE_WAIT, endpoint.wait_idle()).await;
    }
}

/// Accumulates stream bytes and cuts them into frames.
#[derive(Debug, Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// The next message, `None` at a clean end of stream. Cancel-safe: bytes are only consumed
    /// by a completed read.
    async fn next(
        &mut self,
        recv: &mut quinn::RecvStream,
    ) -> Result<Option<CoordinatorMessage>, SessionError> {
        loop {
            // decode_frame checks the length prefix against MAX_FRAME before anything else,
            // so the buffer never grows past one frame.
            if let Some((message, used)) =
                decode_frame::<CoordinatorMessage>(&self.buf).map_err(SessionError::Malformed)?
            {
                self.buf.drain(..used);
                return Ok(Some(message));
            }
            let mut chunk = [0u8; 4096];
            match recv.read(&mut chunk).await.map_err(SessionError::Read)? {
                Some(n) => self.buf.extend_from_slice(&chunk[..n]),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(SessionError::EndedInFrame),
            }
        }
    }
}

#[cfg(test)]
mod tests;
