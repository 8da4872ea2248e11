//! The control client against a minimal in-test coordinator (QUIC on loopback, the test PKI,
//! client certificates required).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::{
    AgentIdentity, CoordinatorMessage, Listener, PROTOCOL_VERSION, ProbeResult, Refusal, Role,
};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Connection, Outcome, Payload, ProbeKind, Scheme};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ControlEnd, ControlSettings, Outbox, run};
use crate::testing::{PATIENCE, TestCoordinator, TestPki};
use crate::tls::RunTls;

fn identity() -> AgentIdentity {
    AgentIdentity {
        role: Role::Client,
        node: "node-a".into(),
        pod: "client-0".into(),
        networks: vec![CephNetwork::Public],
    }
}

fn addresses() -> Vec<NetworkAddress> {
    vec![NetworkAddress {
        network: CephNetwork::Public,
        addr: "127.0.0.9".parse().expect("addr"),
        interface: None,
    }]
}

fn settings(pki: &TestPki, coordinator: SocketAddr, grace: Duration) -> ControlSettings {
    let tls = RunTls::load(&pki.client()).expect("client PKI");
    ControlSettings {
        coordinator,
        run_id: "run-7".into(),
        identity: identity(),
        addresses: addresses(),
        client_config: tls.control_client_config().expect("client config"),
        grace,
        flush_every: Duration::from_millis(50),
        heartbeat_after: Duration::from_secs(1),
        clock_epoch_unix_ms: 1_796_000_000_000,
    }
}

fn result(n: u64) -> ProbeResult {
    ProbeResult {
        network: CephNetwork::Public,
        target: "127.0.0.1:8080".parse().expect("addr"),
        kind: ProbeKind {
            scheme: Scheme::Http,
            payload: Payload::Small,
            connection: Connection::Fresh,
        },
        started_ms: n,
        latency_us: 10,
        outcome: Outcome::Ok,
    }
}

/// Waits (bounded) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn hello_reports_acks_reconnect_resend_and_stop() {
    let pki = TestPki::new();
    let coordinator = TestCoordinator::new(&pki.coordinator());
    let settings = settings(&pki, coordinator.addr(), PATIENCE);
    let outbox = Outbox::new(2, 16);
    for n in 0..4 {
        outbox.push(result(n)); // batches 1 and 2, sealed before any connection
    }
    let (targets_tx, mut targets_rx) = watch::channel(Vec::<Listener>::new());
    let listeners = vec![Listener {
        network: CephNetwork::Public,
        http: "127.0.0.1:1000".parse().expect("addr"),
        https: "127.0.0.1:1001".parse().expect("addr"),
    }];

    let client = run(&settings, None, &outbox, &targets_tx);
    let script = async {
        let mut first = coordinator.accept().await;
        let hello = first.hello().await;
        assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
        assert_eq!(hello.run_id, "run-7");
        assert_eq!(hello.agent, identity());
        assert_eq!(hello.last_acked, 0);
        assert_eq!(hello.addresses, addresses());
        first.send(CoordinatorMessage::Welcome).await;
        let batch1 = first.report().await;
        let batch2 = first.report().await;
        assert_eq!((batch1.seq, batch2.seq), (1, 2));
        assert_eq!(batch1.results, vec![result(0), result(1)]);
        first.send(CoordinatorMessage::Ack { seq: 1 }).await;
        first
            .send(CoordinatorMessage::Targets {
                listeners: listeners.clone(),
            })
            .await;
        eventually("Ack 1 recorded", || outbox.unacked_len() == 1).await;
        tokio::time::timeout(PATIENCE, targets_rx.wait_for(|t| *t == listeners))
            .await
            .expect("targets in time")
            .expect("targets channel open");

        // The coordinator drops the connection before acknowledging batch 2.
        first.connection.close(0u32.into(), b"test drops the agent");
        let mut second = coordinator.accept().await;
        let hello = second.hello().await;
        assert_eq!(hello.last_acked, 1);
        assert_eq!(hello.addresses, addresses(), "every Hello says them");
        second.send(CoordinatorMessage::Welcome).await;
        let resent = second.report().await;
        assert_eq!(resent, batch2, "same seq, same results");
        second.send(CoordinatorMessage::Ack { seq: 2 }).await;

        outbox.push(result(4)); // sealed by the next flush
        let batch3 = second.report().await;
        assert_eq!(
            (batch3.seq, batch3.results.len(), batch3.dropped),
            (3, 1, 0)
        );
        second.send(CoordinatorMessage::Ack { seq: 3 }).await;

        // Stop flushes what is pending and waits for its acknowledgement.
        outbox.push(result(5));
        second.send(CoordinatorMessage::Stop).await;
        let batch4 = second.report().await;
        assert_eq!((batch4.seq, batch4.results), (4, vec![result(5)]));
        second.send(CoordinatorMessage::Ack { seq: 4 }).await;
        second
    };
    let (end, _second) = tokio::time::timeout(PATIENCE * 2, async { tokio::join!(client, script) })
        .await
        .expect("the client stops in time");
    assert_eq!(end.expect("no error"), ControlEnd::Stopped);
    assert_eq!(outbox.unacked_len(), 0);
    assert_eq!(outbox.last_acked(), 4);
}

#[tokio::test]
async fn a_refusal_is_final_and_carries_the_reason() {
    let pki = TestPki::new();
    let coordinator = TestCoordinator::new(&pki.coordinator());
    let settings = settings(&pki, coordinator.addr(), PATIENCE);
    let outbox = Outbox::new(10, 10);
    let (targets_tx, _targets_rx) = watch::channel(Vec::new());
    let refusal = Refusal::RunId {
        agent: "run-7".into(),
    };
    let script = async {
        let mut peer = coordinator.accept().await;
        peer.hello().await;
        peer.send(CoordinatorMessage::Refused(refusal.clone()))
            .await;
        peer
    };
    let (end, _peer) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(run(&settings, None, &outbox, &targets_tx), script)
    })
    .await
    .expect("the client gives up in time");
    let error = end.expect_err("refused is an error");
    assert_eq!(error.refusal(), Some(&refusal));
    let said = crate::chain(&error);
    assert!(said.contains("run-7"), "{said}");
}

#[tokio::test]
async fn with_nobody_listening_the_client_gives_up_after_the_grace_period() {
    let pki = TestPki::new();
    let nobody = {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        socket.local_addr().expect("addr")
    };
    let grace = Duration::from_millis(700);
    let settings = settings(&pki, nobody, grace);
    let outbox = Outbox::new(10, 10);
    let (targets_tx, _targets_rx) = watch::channel(Vec::new());
    let started = Instant::now();
    let end = tokio::time::timeout(PATIENCE, run(&settings, None, &outbox, &targets_tx))
        .await
        .expect("bounded");
    assert_eq!(end.expect("no error"), ControlEnd::GraceExpired);
    let took = started.elapsed();
    assert!(took >= grace && took < grace * 3, "took {took:?}");
}
