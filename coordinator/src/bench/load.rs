//! The load side of `multinet bench ingest`: N agent connections on one QUIC endpoint, on one
//! thread (a current-thread runtime), each saying Hello and then sealing one batch of `rate`
//! results per second for `seconds` seconds into the agent's own [`Outbox`], sending it and
//! applying the coordinator's acknowledgements to it, as an agent does. Prints a
//! [`LoadReport`] as JSON on stdout. Traffic goes only to the coordinator address it is given
//! (loopback).
//!
//! Like an agent, a connection that cannot be made is retried (100 ms, doubling to 1 s) for
//! [`GRACE`], and a connection that is lost is made again and everything not acknowledged is
//! resent. So that resends are exercised in every run, not only when something goes wrong,
//! one connection in ten is cut on purpose once, at a second of its own ([`Cut`]): half of
//! those after the coordinator acknowledged three batches whose acknowledgements the load
//! then ignores (the coordinator has them: each resend is a known duplicate, as in the
//! product's reconnect test), half right after a batch was written (it may or may not have
//! been recorded: an uncertain duplicate). `bench ingest` checks the coordinator's
//! duplicate count against both.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use multinet_agent::control::Outbox;
use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::codec::{decode_frame, encode};
use multinet_proto::control::{
    AgentIdentity, AgentMessage, COORDINATOR_NAME, CoordinatorMessage, Hello, PROTOCOL_VERSION,
    ProbeResult, Role,
};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Connection, Outcome, Payload, ProbeKind, Scheme};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

/// How long a connection may stay impossible before its agent gives up (an agent's default
/// grace is longer; this bounds the bench).
pub const GRACE: Duration = Duration::from_secs(30);
/// Longest time one connection attempt (QUIC handshake, Hello, Welcome) may take, as an
/// agent's.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(5);
/// First pause between connection attempts, doubling up to [`BACKOFF_MAX`], as an agent's.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long the load waits for the coordinator to acknowledge a batch it needs acknowledged
/// (before a planned cut, and the last batch at the end).
const ACK_PATIENCE: Duration = Duration::from_secs(15);
/// Batches whose acknowledgements are ignored before an [`Cut::AcksIgnored`] cut.
const IGNORED_ACKS: u64 = 3;

/// Arguments (given by `bench ingest`).
#[derive(Debug, Clone)]
pub struct LoadArgs {
    /// Coordinator address.
    pub addr: SocketAddr,
    /// Run id.
    pub run_id: String,
    /// Run CA.
    pub ca: std::path::PathBuf,
    /// Client certificate.
    pub cert: std::path::PathBuf,
    /// Its key.
    pub key: std::path::PathBuf,
    /// Connections.
    pub agents: u32,
    /// Results per second per connection (at least 1).
    pub rate: u32,
    /// Seconds of reporting.
    pub seconds: u64,
}

/// What the load did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// Agents welcomed at least once.
    pub welcomed: usize,
    /// Results written to the coordinator at least once (resends not counted again).
    pub sent: u64,
    /// Results acknowledged, by the agents' outboxes (every batch up to the last
    /// acknowledged one).
    pub acked: u64,
    /// Connections made again after the first: planned cuts and lost connections.
    pub reconnects: u64,
    /// Connections cut on purpose ([`Cut`]).
    pub planned_cuts: u64,
    /// Batches resent after a reconnect that the coordinator had acknowledged already: each
    /// must be counted as a duplicate.
    pub resent_known_duplicates: u64,
    /// Batches resent after a reconnect whose acknowledgement had not arrived: each may or may
    /// not be a duplicate.
    pub resent_uncertain: u64,
    /// Connection attempts that failed and were retried, by what went wrong.
    pub retried: BTreeMap<String, u64>,
    /// Connections lost (not cut on purpose) and made again, by what went wrong.
    pub lost: BTreeMap<String, u64>,
    /// Agents that gave up (or whose task panicked), by what went wrong.
    pub failed: BTreeMap<String, u64>,
    /// Packets the kernel dropped at the load's socket because its receive buffer was full
    /// (`/proc/net/udp`; `None` where it cannot be read).
    pub socket_drops: Option<u64>,
    /// The load's socket receive buffer in bytes as the kernel reports it.
    pub receive_buffer: usize,
}

/// Runs the load; returns the exit code.
pub fn load(args: &LoadArgs) -> u8 {
    multinet_agent::install_crypto_provider();
    let runtime = match multinet_agent::entry::single_threaded() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench load: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("bench load: {e:#}");
            1
        }
    }
}

/// Counters the agents share.
#[derive(Debug, Default)]
struct Tally {
    welcomed: AtomicUsize,
    sent: AtomicU64,
    acked: AtomicU64,
    reconnects: AtomicU64,
    planned_cuts: AtomicU64,
    resent_known_duplicates: AtomicU64,
    resent_uncertain: AtomicU64,
    retried: Mutex<BTreeMap<String, u64>>,
    lost: Mutex<BTreeMap<String, u64>>,
    failed: Mutex<BTreeMap<String, u64>>,
}

fn count(map: &Mutex<BTreeMap<String, u64>>, why: String) {
    *map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(why)
        .or_insert(0) += 1;
}

fn take(map: &Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    std::mem::take(
        &mut *map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// What every agent of the load shares.
struct Shared {
    endpoint: quinn::Endpoint,
    args: LoadArgs,
    /// When the first batches are due (every connection had time to connect).
    start: Instant,
    /// Wall-clock time (Unix ms) the load's result times count from (its start).
    clock_epoch_unix_ms: u64,
    tally: Tally,
}

async fn run(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(args.rate >= 1, "--rate must be at least 1");
    let files = TlsFiles {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let config = multinet_agent::tls::RunTls::load(&files)?.control_client_config()?;
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let receive_buffer = crate::control_plane::enlarge_receive_buffer(&socket)
        .context("sizing the load's receive buffer")?;
    let inode = super::socket_inode(&socket);
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    endpoint.set_default_client_config(config);
    let shared = Arc::new(Shared {
        endpoint: endpoint.clone(),
        args: args.clone(),
        start: Instant::now() + Duration::from_secs(2 + u64::from(args.agents) / 200),
        clock_epoch_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        tally: Tally::default(),
    });
    let mut tasks = Vec::new();
    for i in 0..args.agents {
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            // Spread the handshakes over the ramp.
            sleep(Duration::from_micros(u64::from(i) * 500)).await;
            if let Err(e) = agent(&shared, i).await {
                count(&shared.tally.failed, format!("{e:#}"));
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await {
            count(&shared.tally.failed, format!("agent task: {e}"));
        }
    }
    endpoint.close(0u32.into(), b"done");
    let t = &shared.tally;
    Ok(LoadReport {
        welcomed: t.welcomed.load(Ordering::Relaxed),
        sent: t.sent.load(Ordering::Relaxed),
        acked: t.acked.load(Ordering::Relaxed),
        reconnects: t.reconnects.load(Ordering::Relaxed),
        planned_cuts: t.planned_cuts.load(Ordering::Relaxed),
        resent_known_duplicates: t.resent_known_duplicates.load(Ordering::Relaxed),
        resent_uncertain: t.resent_uncertain.load(Ordering::Relaxed),
        retried: take(&t.retried),
        lost: take(&t.lost),
        failed: take(&t.failed),
        socket_drops: inode.and_then(super::socket_drops),
        receive_buffer,
    })
}

/// A connection cut on purpose, once, after batch `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Never cut.
    Never,
    /// The acknowledgements of batches `at - 2 ..= at` are ignored; once the coordinator has
    /// acknowledged batch `at`, the connection is closed and made again, and those batches
    /// are resent: known duplicates.
    AcksIgnored {
        /// The last batch whose acknowledgement is ignored.
        at: u64,
    },
    /// The connection is closed right after batch `at` is written, and made again: batches
    /// not acknowledged by then are resent, and may or may not be duplicates.
    Abrupt {
        /// The batch after which the connection is closed.
        at: u64,
    },
}

impl Cut {
    /// The cut of agent `i` when reporting lasts `seconds`: agents 0, 10, 20, … ignore acks,
    /// agents 5, 15, 25, … are cut abruptly, each at a second of its own between the fourth
    /// and the third-last (so nothing is cut during the first or last batches); none when
    /// `seconds` is below 8.
    pub fn of(i: u32, seconds: u64) -> Self {
        if seconds < 8 {
            return Cut::Never;
        }
        let at = IGNORED_ACKS + 1 + u64::from(i / 10) % (seconds - 2 - IGNORED_ACKS - 1);
        match i % 10 {
            0 => Cut::AcksIgnored { at },
            5 => Cut::Abrupt { at },
            _ => Cut::Never,
        }
    }
}

/// One connection to the coordinator with its stream.
struct Session {
    connection: quinn::Connection,
    send: quinn::SendStream,
    /// The highest sequence number the coordinator acknowledged on this connection, whether
    /// or not the outbox was told.
    acked: watch::Receiver<u64>,
    /// While set, acknowledgements are not applied to the outbox.
    ignore_acks: Arc<AtomicBool>,
    /// The highest batch written on this connection.
    sent_upto: u64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One load agent: connects, reports `seconds` batches, is cut as [`Cut::of`] says, and
/// waits until every batch is acknowledged.
async fn agent(shared: &Shared, i: u32) -> anyhow::Result<()> {
    let args = &shared.args;
    let tally = &shared.tally;
    let outbox = Arc::new(Outbox::new(args.rate as usize, args.seconds as usize + 1));
    let mut written_upto = 0u64;
    let mut session = connect(shared, i, &outbox).await?;
    tally.welcomed.fetch_add(1, Ordering::Relaxed);
    // Each agent reports at a phase of its own within the second, as agents started one after
    // another do.
    let phase = Duration::from_secs(1) * i / args.agents.max(1);
    let mut ticker = tokio::time::interval_at(shared.start + phase, Duration::from_secs(1));
    let cut = Cut::of(i, args.seconds);
    for seq in 1..=args.seconds {
        ticker.tick().await;
        for k in 0..args.rate {
            outbox.push(result(k, seq * 1000));
        }
        if cut
            == (Cut::AcksIgnored {
                at: seq + IGNORED_ACKS - 1,
            })
        {
            session.ignore_acks.store(true, Ordering::Relaxed);
        }
        if let Err(e) = send_unsent(&mut session, &outbox, &mut written_upto, tally).await {
            count(&tally.lost, format!("{e:#}"));
            session = reconnect(shared, i, &outbox, &mut written_upto, session).await?;
        }
        match cut {
            Cut::AcksIgnored { at } if at == seq => {
                // Wait until the coordinator has recorded the batches whose acks are ignored,
                // so that each resend is a known duplicate.
                let mut acked = session.acked.clone();
                let _ = timeout(ACK_PATIENCE, acked.wait_for(|a| *a >= seq)).await;
            }
            Cut::Abrupt { at } if at == seq => {}
            _ => continue,
        }
        tally.planned_cuts.fetch_add(1, Ordering::Relaxed);
        session = reconnect(shared, i, &outbox, &mut written_upto, session).await?;
    }
    // Every batch acknowledged, reconnecting (and resending) if the connection is lost.
    let deadline = Instant::now() + ACK_PATIENCE;
    while outbox.last_acked() < args.seconds {
        let mut acked = session.acked.clone();
        let waited = timeout(
            deadline.saturating_duration_since(Instant::now()),
            acked.wait_for(|a| *a >= args.seconds),
        )
        .await
        .map(|acked| acked.is_ok());
        match waited {
            Ok(true) => {}
            Ok(false) => {
                count(
                    &tally.lost,
                    "the connection ended before the last ack".into(),
                );
                session = reconnect(shared, i, &outbox, &mut written_upto, session).await?;
            }
            Err(_) => anyhow::bail!(
                "batches acknowledged up to {} of {} within {ACK_PATIENCE:?}",
                outbox.last_acked(),
                args.seconds
            ),
        }
    }
    tally.acked.fetch_add(
        outbox.last_acked() * u64::from(args.rate),
        Ordering::Relaxed,
    );
    let _ = session.send.finish();
    session.connection.close(0u32.into(), b"done");
    Ok(())
}

/// Writes every sealed batch `session` has not carried yet, counting results written for the
/// first time.
async fn send_unsent(
    session: &mut Session,
    outbox: &Outbox,
    written_upto: &mut u64,
    tally: &Tally,
) -> anyhow::Result<()> {
    for batch in outbox.unacked_after(session.sent_upto) {
        let (seq, results) = (batch.seq, batch.results.len() as u64);
        session
            .send
            .write_all(&encode(&AgentMessage::Report(batch))?)
            .await
            .context("writing a batch")?;
        session.sent_upto = seq;
        if seq > *written_upto {
            *written_upto = seq;
            tally.sent.fetch_add(results, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Closes `old` and connects again; resends every batch the outbox holds unacknowledged,
/// counting as known duplicates those the coordinator had acknowledged on `old` (ignored
/// acks) and as uncertain the others.
async fn reconnect(
    shared: &Shared,
    i: u32,
    outbox: &Arc<Outbox>,
    written_upto: &mut u64,
    old: Session,
) -> anyhow::Result<Session> {
    let tally = &shared.tally;
    old.connection.close(0u32.into(), b"reconnecting");
    let observed = *old.acked.borrow();
    drop(old);
    let mut session = connect(shared, i, outbox).await?;
    tally.reconnects.fetch_add(1, Ordering::Relaxed);
    let resent = outbox.unacked_after(session.sent_upto);
    let known = resent.iter().filter(|b| b.seq <= observed).count() as u64;
    tally
        .resent_known_duplicates
        .fetch_add(known, Ordering::Relaxed);
    tally
        .resent_uncertain
        .fetch_add(resent.len() as u64 - known, Ordering::Relaxed);
    send_unsent(&mut session, outbox, written_upto, tally).await?;
    Ok(session)
}

/// Makes a connection, retrying as an agent does (backoff from [`BACKOFF_INITIAL`] to
/// [`BACKOFF_MAX`]) for [`GRACE`]; each failed attempt is counted with its reason.
async fn connect(shared: &Shared, i: u32, outbox: &Arc<Outbox>) -> anyhow::Result<Session> {
    let first = Instant::now();
    let mut backoff = BACKOFF_INITIAL;
    loop {
        let why = match timeout(ATTEMPT_LIMIT, open(shared, i, outbox)).await {
            Ok(Ok(session)) => return Ok(session),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no Welcome within {ATTEMPT_LIMIT:?}"),
        };
        anyhow::ensure!(
            first.elapsed() < GRACE,
            "no connection within {GRACE:?}; the last attempt: {why}"
        );
        count(&shared.tally.retried, why);
        sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection attempt: QUIC handshake, stream, Hello, Welcome.
async fn open(shared: &Shared, i: u32, outbox: &Arc<Outbox>) -> anyhow::Result<Session> {
    let connection = shared
        .endpoint
        .connect(shared.args.addr, COORDINATOR_NAME)?
        .await
        .context("connect")?;
    let (mut send, mut recv) = connection.open_bi().await.context("open stream")?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        run_id: shared.args.run_id.clone(),
        agent: AgentIdentity {
            role: Role::Client,
            node: format!("n{}", i % 10),
            pod: format!("bench-{i}"),
            networks: vec![CephNetwork::Public],
        },
        last_acked: outbox.last_acked(),
        addresses: Vec::new(),
        clock_epoch_unix_ms: shared.clock_epoch_unix_ms,
    };
    send.write_all(&encode(&AgentMessage::Hello(hello))?)
        .await
        .context("Hello")?;
    let (welcome_tx, welcome_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let (acked_tx, acked) = watch::channel(outbox.last_acked());
    let ignore_acks = Arc::new(AtomicBool::new(false));
    let reader = {
        let (outbox, ignore_acks) = (outbox.clone(), ignore_acks.clone());
        tokio::spawn(async move {
            let mut welcome_tx = Some(welcome_tx);
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 4096];
            while let Ok(Some(n)) = recv.read(&mut chunk).await {
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some((msg, used))) = decode_frame::<CoordinatorMessage>(&buf) {
                    buf.drain(..used);
                    match msg {
                        CoordinatorMessage::Welcome => {
                            if let Some(tx) = welcome_tx.take() {
                                let _ = tx.send(Ok(()));
                            }
                        }
                        CoordinatorMessage::Refused(refusal) => {
                            if let Some(tx) = welcome_tx.take() {
                                let _ = tx.send(Err(format!("refused: {refusal}")));
                            }
                        }
                        CoordinatorMessage::Ack { seq } => {
                            if !ignore_acks.load(Ordering::Relaxed) {
                                outbox.ack(seq);
                            }
                            acked_tx.send_if_modified(|a| {
                                let newer = seq > *a;
                                *a = (*a).max(seq);
                                newer
                            });
                        }
                        _ => {}
                    }
                }
            }
            // Dropping `acked_tx` tells waiters the connection ended.
        })
    };
    let session = Session {
        connection,
        send,
        acked,
        ignore_acks,
        sent_upto: outbox.last_acked(),
        reader,
    };
    match welcome_rx.await {
        Ok(Ok(())) => Ok(session),
        Ok(Err(refused)) => anyhow::bail!(refused),
        Err(_) => anyhow::bail!("the stream ended before Welcome"),
    }
}

fn result(k: u32, at_ms: u64) -> ProbeResult {
    ProbeResult {
        network: CephNetwork::Public,
        target: SocketAddr::from(([127, 0, 0, 1], 8080)),
        kind: ProbeKind {
            scheme: if k.is_multiple_of(2) {
                Scheme::Http
            } else {
                Scheme::Https
            },
            payload: Payload::Small,
            connection: Connection::Fresh,
        },
        started_ms: at_ms,
        latency_us: 250 + k,
        outcome: Outcome::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_in_ten_is_cut_each_way_once_inside_the_reporting_phase() {
        let seconds = 60;
        let cuts: Vec<Cut> = (0..2000).map(|i| Cut::of(i, seconds)).collect();
        let ignored = cuts
            .iter()
            .filter(|c| matches!(c, Cut::AcksIgnored { .. }))
            .count();
        let abrupt = cuts
            .iter()
            .filter(|c| matches!(c, Cut::Abrupt { .. }))
            .count();
        assert_eq!((ignored, abrupt), (200, 200));
        for cut in cuts {
            if let Cut::AcksIgnored { at } | Cut::Abrupt { at } = cut {
                // The ignored acks start after the first batch, and a batch follows the cut.
                assert!(at > IGNORED_ACKS && at < seconds - 1, "{cut:?}");
            }
        }
        assert!((0..100).all(|i| Cut::of(i, 7) == Cut::Never));
    }
}
