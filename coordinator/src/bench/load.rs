//! The load side of `multinet bench ingest`: N agent connections on one QUIC endpoint, each
//! saying Hello and then sending one batch of `rate` results per second for `seconds`
//! seconds, counting acknowledgements. Prints a [`LoadReport`] as JSON on stdout. Traffic goes
//! only to the coordinator address it is given (loopback).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::codec::{decode_frame, encode};
use multinet_proto::control::{
    AgentIdentity, AgentMessage, COORDINATOR_NAME, CoordinatorMessage, Hello, PROTOCOL_VERSION,
    ProbeResult, ReportBatch, Role,
};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Connection, Outcome, Payload, ProbeKind, Scheme};
use serde::{Deserialize, Serialize};

/// Arguments (given by `bench ingest`).
#[derive(Debug, Clone)]
pub struct LoadArgs {
    /// Coordinator address.
    pub addr: std::net::SocketAddr,
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
    /// Results per second per connection.
    pub rate: u32,
    /// Seconds of reporting.
    pub seconds: u64,
}

/// What the load did.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadReport {
    /// Connections welcomed.
    pub welcomed: usize,
    /// Results sent.
    pub sent: u64,
    /// Results acknowledged.
    pub acked: u64,
    /// Connections that ended in an error, by what went wrong (e.g. `connect: timed out`).
    #[serde(default)]
    pub failed: std::collections::BTreeMap<String, u64>,
}

/// Runs the load; returns the exit code.
pub fn load(args: &LoadArgs) -> u8 {
    multinet_agent::install_crypto_provider();
    let runtime = match multinet_agent::entry::multi_threaded(1) {
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

async fn run(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    let files = TlsFiles {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let config = multinet_agent::tls::RunTls::load(&files)?.control_client_config()?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config);
    let welcomed = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    // Every connection starts reporting at the same moment, once all had time to connect.
    let start = tokio::time::Instant::now() + Duration::from_secs(2 + u64::from(args.agents) / 200);
    let mut tasks = Vec::new();
    for i in 0..args.agents {
        let (endpoint, welcomed, sent, acked, failed) = (
            endpoint.clone(),
            welcomed.clone(),
            sent.clone(),
            acked.clone(),
            failed.clone(),
        );
        let (addr, run_id, rate, seconds) =
            (args.addr, args.run_id.clone(), args.rate, args.seconds);
        tasks.push(tokio::spawn(async move {
            // Spread the handshakes over the ramp.
            tokio::time::sleep(Duration::from_micros(u64::from(i) * 500)).await;
            let result = agent(
                endpoint, addr, run_id, i, rate, seconds, start, &welcomed, &sent,
            )
            .await;
            match result {
                Ok(n) => {
                    acked.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
                    *failed.entry(format!("{e:#}")).or_insert(0) += 1;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    endpoint.close(0u32.into(), b"done");
    Ok(LoadReport {
        welcomed: welcomed.load(Ordering::Relaxed),
        sent: sent.load(Ordering::Relaxed),
        acked: acked.load(Ordering::Relaxed),
        failed: std::mem::take(&mut *failed.lock().unwrap_or_else(|e| e.into_inner())),
    })
}

fn results(rate: u32, at_ms: u64) -> Vec<ProbeResult> {
    (0..rate)
        .map(|k| ProbeResult {
            network: CephNetwork::Public,
            target: "127.0.0.1:8080"
                .parse()
                .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8080))),
            kind: ProbeKind {
                scheme: if k % 2 == 0 {
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
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn agent(
    endpoint: quinn::Endpoint,
    addr: std::net::SocketAddr,
    run_id: String,
    i: u32,
    rate: u32,
    seconds: u64,
    start: tokio::time::Instant,
    welcomed: &AtomicUsize,
    sent: &AtomicU64,
) -> anyhow::Result<u64> {
    let connection = endpoint
        .connect(addr, COORDINATOR_NAME)?
        .await
        .context("connect")?;
    let (mut send, mut recv) = connection.open_bi().await.context("open stream")?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        run_id,
        agent: AgentIdentity {
            role: Role::Client,
            node: format!("n{}", i % 10),
            pod: format!("bench-{i}"),
            networks: vec![CephNetwork::Public],
        },
        last_acked: 0,
        addresses: Vec::new(),
    };
    send.write_all(&encode(&AgentMessage::Hello(hello))?)
        .await?;
    // Read acknowledgements in the background; the highest seq acked is what counts.
    let last_ack = Arc::new(AtomicU64::new(0));
    let welcome = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let (last_ack, welcome) = (last_ack.clone(), welcome.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 4096];
            while let Ok(Some(n)) = recv.read(&mut chunk).await {
                buf.extend_from_slice(&chunk[..n]);
                while let Ok(Some((msg, used))) = decode_frame::<CoordinatorMessage>(&buf) {
                    buf.drain(..used);
                    match msg {
                        CoordinatorMessage::Welcome => welcome.notify_one(),
                        CoordinatorMessage::Ack { seq } => {
                            last_ack.fetch_max(seq, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(30), welcome.notified())
        .await
        .context("no Welcome within 30 s")?;
    welcomed.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep_until(start).await;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    for seq in 1..=seconds {
        ticker.tick().await;
        let batch = ReportBatch {
            seq,
            results: results(rate, seq * 1000),
            dropped: 0,
            produced: seq * u64::from(rate),
        };
        send.write_all(&encode(&AgentMessage::Report(batch))?)
            .await?;
        sent.fetch_add(u64::from(rate), Ordering::Relaxed);
    }
    // Wait (bounded) for the last acknowledgement.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while last_ack.load(Ordering::Relaxed) < seconds && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = send.finish();
    connection.close(0u32.into(), b"done");
    reader.abort();
    Ok(last_ack.load(Ordering::Relaxed) * u64::from(rate))
}
