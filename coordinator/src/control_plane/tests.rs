//! The control plane's connection limit and shutdown, against real QUIC connections on
//! loopback.

use std::path::PathBuf;
use std::time::Instant;

use actix::Actor;
use multinet_proto::control::codec::{decode_frame, encode};
use multinet_proto::control::{
    AgentIdentity, COORDINATOR_NAME, Hello, PROTOCOL_VERSION, Refusal, Role,
};
use multinet_proto::network::CephNetwork;

use super::*;
use crate::matrix_actor::MatrixActor;
use crate::roster::Expect;

const RUN_ID: &str = "control-plane-test";

/// A directory removed also when the test fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A started control plane and what an agent needs to reach it.
struct Fixture {
    plane: ControlPlane,
    roster: Addr<AgentRoster>,
    client: quinn::ClientConfig,
    _dir: TempDir,
}

fn fixture(test: &str) -> Fixture {
    multinet_agent::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!(
        "multinet-control-plane-{test}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("test directory");
    let dir = TempDir(dir);
    let pki = RunPki::new(RUN_ID).expect("pki");
    let files = pki
        .write_agent_files(&dir.0, "agent", false)
        .expect("agent credentials");
    let client = multinet_agent::tls::RunTls::load(&files)
        .expect("load credentials")
        .control_client_config()
        .expect("client config");
    let roster = AgentRoster::new(RUN_ID.into(), MatrixActor::default().start()).start();
    let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).expect("socket");
    let plane = ControlPlane::start(&pki, socket, roster.clone()).expect("start");
    Fixture {
        plane,
        roster,
        client,
        _dir: dir,
    }
}

impl Fixture {
    /// A client endpoint connected to the control plane.
    async fn connect(&self) -> (quinn::Endpoint, quinn::Connection) {
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client");
        endpoint.set_default_client_config(self.client.clone());
        let addr = self.plane.local_addr().expect("addr");
        let connection = endpoint
            .connect(addr, COORDINATOR_NAME)
            .expect("connect")
            .await
            .expect("handshake");
        (endpoint, connection)
    }
}

/// Says Hello as `pod` on a new stream and returns the coordinator's first answer.
async fn hello(
    connection: &quinn::Connection,
    pod: &str,
) -> (quinn::SendStream, CoordinatorMessage) {
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        run_id: RUN_ID.into(),
        agent: AgentIdentity {
            role: Role::Client,
            node: "n1".into(),
            pod: pod.into(),
            networks: vec![CephNetwork::Public],
        },
        last_acked: 0,
        addresses: Vec::new(),
        clock_epoch_unix_ms: 1_796_000_000_000,
    };
    send.write_all(&encode(&AgentMessage::Hello(hello)).expect("encode"))
        .await
        .expect("write");
    let mut buf = Vec::new();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut chunk = [0u8; 512];
            let n = recv
                .read(&mut chunk)
                .await
                .expect("read")
                .expect("an answer before the end of the stream");
            buf.extend_from_slice(&chunk[..n]);
            if let Ok(Some((message, _))) = decode_frame::<CoordinatorMessage>(&buf) {
                return message;
            }
        }
    })
    .await
    .expect("an answer within 5 s");
    (send, answer)
}

/// The application close code and reason the coordinator closed `connection` with.
async fn closed_with(connection: &quinn::Connection) -> (u32, String) {
    match tokio::time::timeout(Duration::from_secs(5), connection.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => (
            u32::try_from(close.error_code.into_inner()).expect("a small code"),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        other => panic!("expected an application close, got {other:?}"),
    }
}

#[actix_rt::test]
async fn connections_above_the_limit_are_refused_and_counted() {
    let fixture = fixture("limit");
    fixture.plane.set_connection_limit(1);

    let (_first_endpoint, first) = fixture.connect().await;
    let (_e2, second) = fixture.connect().await;
    let (_e3, third) = fixture.connect().await;
    for refused in [&second, &third] {
        assert_eq!(
            closed_with(refused).await,
            (
                close_code::OVER_CAPACITY,
                "too many connections".to_string()
            )
        );
    }
    assert_eq!(fixture.plane.refused_over_capacity(), 2);
    assert!(
        first.close_reason().is_none(),
        "the first connection is served"
    );

    // The first connection's slot comes back when it closes: a newcomer is then served (its
    // Hello is answered, here with a refusal: the roster does not know it).
    first.close(0u32.into(), b"bye");
    let patience = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let (_endpoint, newcomer) = fixture.connect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if newcomer.close_reason().is_none() {
            break hello(&newcomer, "stranger").await.1;
        }
        assert!(Instant::now() < patience, "the slot never came back");
    };
    assert!(
        matches!(
            answer,
            CoordinatorMessage::Refused(Refusal::UnknownAgent { .. })
        ),
        "{answer:?}"
    );

    fixture.plane.close().await;
    assert_eq!(fixture.plane.live_tasks(), 0);
}

#[actix_rt::test]
async fn close_ends_every_task() {
    let fixture = fixture("close");
    fixture
        .roster
        .send(Expect(vec![AgentIdentity {
            pod: "client-n1".into(),
            node: "n1".into(),
            role: Role::Client,
            networks: vec![CephNetwork::Public],
        }]))
        .await
        .expect("roster");
    // One welcomed agent (reader and writer tasks) and one connection that never opens its
    // stream (waiting for it).
    let (_agent_endpoint, agent) = fixture.connect().await;
    let (_send, welcome) = hello(&agent, "client-n1").await;
    assert_eq!(welcome, CoordinatorMessage::Welcome);
    let (_silent_endpoint, silent) = fixture.connect().await;
    assert!(
        fixture.plane.live_tasks() >= 4,
        "accept loop, the agent's reader and writer, the silent connection: {}",
        fixture.plane.live_tasks()
    );

    let started = Instant::now();
    fixture.plane.close().await;
    assert_eq!(fixture.plane.live_tasks(), 0, "tasks left after close");
    assert!(
        started.elapsed() < SHUTDOWN_PATIENCE + IDLE_PATIENCE,
        "close took {:?}",
        started.elapsed()
    );
    assert_eq!(
        closed_with(&agent).await,
        (close_code::RUN_OVER, "run over".to_string())
    );
    // (Closed before the coordinator confirmed its handshake, the silent connection may get
    // QUIC's reasonless APPLICATION_ERROR instead of the application's code.)
    tokio::time::timeout(Duration::from_secs(5), silent.closed())
        .await
        .expect("the silent connection is closed too");
    // A second close is harmless.
    fixture.plane.close().await;
    assert_eq!(fixture.plane.live_tasks(), 0);
}

#[test]
fn the_limit_is_the_agents_plus_a_margin() {
    assert_eq!(connection_limit_for(0), 16);
    assert_eq!(connection_limit_for(9), 25);
    assert_eq!(connection_limit_for(100), 150);
}
