//! The control-plane endpoint: QUIC with mutual TLS against the run CA. One task accepts
//! connections; each connection gets a reader task (this module) and a writer task, and talks
//! to the [`AgentRoster`] actor. A malformed frame, a refused Hello or a peer without a run
//! certificate closes that connection only.
//!
//! Stopping: [`ControlPlane::close`] closes the endpoint; every task ends with its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Addr;
use multinet_proto::control::codec::{self, CodecError, PREFIX};
use multinet_proto::control::{AgentMessage, CoordinatorMessage};
use tokio::sync::mpsc;

use crate::pki::RunPki;
use crate::roster::{AgentRoster, ConnectionEvent, Introduce, Report};

/// How long a new connection may take to open its stream and say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// The running endpoint.
#[derive(Debug)]
pub struct ControlPlane {
    endpoint: quinn::Endpoint,
}

impl ControlPlane {
    /// Starts accepting agents on `socket` (bound by the backend where agents reach it).
    pub fn start(
        pki: &RunPki,
        socket: std::net::UdpSocket,
        roster: Addr<AgentRoster>,
    ) -> anyhow::Result<Self> {
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(pki.quic_server_config()?),
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let accepting = endpoint.clone();
        tokio::spawn(async move {
            let ids = Arc::new(AtomicU64::new(1));
            while let Some(incoming) = accepting.accept().await {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(incoming, id, roster.clone()));
            }
        });
        Ok(Self { endpoint })
    }

    /// Where agents connect.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    /// Closes every connection and the endpoint.
    pub async fn close(&self) {
        self.endpoint.close(0u32.into(), b"run over");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
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
    mut rx: mpsc::UnboundedReceiver<CoordinatorMessage>,
) {
    while let Some(message) = rx.recv().await {
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

async fn serve(incoming: quinn::Incoming, conn_id: u64, roster: Addr<AgentRoster>) {
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
        connection.close(1u32.into(), b"no control stream");
        return;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_frames(send, rx));
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut recv)).await {
        Ok(Ok(AgentMessage::Hello(hello))) => hello,
        _ => {
            roster.do_send(ConnectionEvent::Refused("no_hello"));
            connection.close(1u32.into(), b"the first message must be Hello");
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
            let _ = tx.send(CoordinatorMessage::Refused(refusal));
            drop(tx);
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            connection.close(2u32.into(), b"refused");
            return;
        }
        Err(_) => return,
    }
    loop {
        match read_frame(&mut recv).await {
            Ok(AgentMessage::Report(batch)) => match roster
                .send(Report {
                    pod: pod.clone(),
                    batch,
                })
                .await
            {
                Ok(seq) => {
                    let _ = tx.send(CoordinatorMessage::Ack { seq });
                }
                Err(_) => break,
            },
            Ok(AgentMessage::Heartbeat) => {}
            Ok(AgentMessage::ServerReady { listeners }) => {
                roster.do_send(ConnectionEvent::ServerReady(listeners))
            }
            Ok(AgentMessage::Failed { reason }) => roster.do_send(ConnectionEvent::Failed {
                pod: pod.clone(),
                reason,
            }),
            Ok(AgentMessage::Hello(_)) => {
                connection.close(3u32.into(), b"Hello sent twice");
                break;
            }
            Err(ReadError::Codec) => {
                roster.do_send(ConnectionEvent::Refused("malformed_frame"));
                connection.close(4u32.into(), b"malformed frame");
                break;
            }
            Err(ReadError::Closed) => break,
        }
    }
    roster.do_send(ConnectionEvent::Closed { pod, conn_id });
}
