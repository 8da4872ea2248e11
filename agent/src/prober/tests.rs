//! Probes against a real probe server and against misbehaving fakes, all on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use multinet_proto::assignment::{NetworkAddress, ProbeSettings};
use multinet_proto::control::{Listener, ProbeResult};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{Connection, FailureClass, Outcome, Payload, ProbeKind, Scheme};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ProbeFrom, ProbePlan, Prober, ROUND};
use crate::control::Outbox;
use crate::server::ProbeServer;
use crate::testing::TestPki;
use crate::tls::RunTls;

/// Another loopback address than the server's: Linux routes all of 127/8 to `lo`.
const CLIENT_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn prober(pki: &TestPki, timeout_ms: u64) -> Prober {
    let tls = RunTls::load(&pki.client()).expect("client PKI");
    let settings = ProbeSettings {
        interval_ms: 100,
        timeout_ms,
        small_bytes: 64,
        large_bytes: 300_000,
    };
    Prober::new(
        tls.probe_client_config().expect("probe client config"),
        &settings,
        Instant::now(),
    )
}

async fn probe_server(pki: &TestPki, addresses: &[NetworkAddress]) -> ProbeServer {
    let tls = RunTls::load(&pki.probe_server()).expect("server PKI");
    ProbeServer::bind(addresses, tls.probe_server_config().expect("server config"))
        .await
        .expect("server binds")
}

fn kind(scheme: Scheme, payload: Payload, connection: Connection) -> ProbeKind {
    ProbeKind {
        scheme,
        payload,
        connection,
    }
}

fn ipv6_loopback_missing() -> Option<&'static str> {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
        .is_err()
        .then_some("IPv6 loopback (::1)")
}

/// Every probe kind, twice (the second round reuses the kept-alive connections of the first),
/// from `source` against a probe server on `server`.
async fn every_kind_passes_against_the_server_on(server: IpAddr, source: IpAddr) {
    let pki = TestPki::new();
    let network = CephNetwork::Public;
    let server = probe_server(
        &pki,
        &[NetworkAddress {
            network,
            addr: server,
            interface: None,
        }],
    )
    .await;
    let mut prober = prober(&pki, 2_000);
    let listeners = server.listeners().to_vec();
    assert_eq!(listeners.len(), 1, "{listeners:?}");
    for listener in listeners {
        for round in 0..2 {
            for kind in ROUND {
                let target = match kind.scheme {
                    Scheme::Http => listener.http,
                    Scheme::Https => listener.https,
                };
                let result = prober
                    .probe(listener.network, Some(source), target, kind)
                    .await;
                assert_eq!(result.outcome, Outcome::Ok, "round {round}: {result:?}");
                assert!(result.latency_us > 0, "{result:?}");
                assert_eq!((result.network, result.target), (listener.network, target));
            }
        }
    }
    assert_eq!(prober.kept.len(), 2);
    assert!(
        prober.mismatch_noted.is_empty(),
        "the server saw our source"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn every_kind_passes_against_the_server_on_ipv4() {
    every_kind_passes_against_the_server_on(Ipv4Addr::LOCALHOST.into(), CLIENT_V4).await;
}

/// Where the machine has no IPv6 loopback this test skips, saying so, and fails under CI.
#[tokio::test]
async fn every_kind_passes_against_the_server_on_ipv6() {
    if !crate::testing::can_run("the IPv6 probe test", ipv6_loopback_missing()) {
        return;
    }
    every_kind_passes_against_the_server_on(Ipv6Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into())
        .await;
}

#[tokio::test]
async fn the_probe_loop_runs_every_kind_each_round_once_targets_arrive() {
    let pki = TestPki::new();
    let server = probe_server(
        &pki,
        &[NetworkAddress {
            network: CephNetwork::Public,
            addr: Ipv4Addr::LOCALHOST.into(),
            interface: None,
        }],
    )
    .await;
    // Bound to the interface too, as in a pod (here the loopback, where the server is).
    let plan = ProbePlan {
        networks: vec![ProbeFrom {
            network: CephNetwork::Public,
            source: Some(CLIENT_V4),
            device: Some("lo".into()),
        }],
    };
    let outbox = Outbox::new(1_000, 10);
    let (targets_tx, targets_rx) = watch::channel(Vec::<Listener>::new());
    let probing = prober(&pki, 1_000).run(&plan, targets_rx, Duration::from_millis(100), &outbox);
    let feeding = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        targets_tx.send_replace(server.listeners().to_vec());
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(targets_tx); // closing the targets channel ends the loop
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(probing, feeding)
    })
    .await
    .expect("the loop ends when its targets channel closes");
    let results = sealed_results(&outbox);
    assert!(
        results.len() >= 2 * ROUND.len(),
        "{} results",
        results.len()
    );
    for kind in ROUND {
        assert!(
            results
                .iter()
                .any(|r| r.kind == kind && r.outcome == Outcome::Ok),
            "{kind:?} never passed"
        );
    }
    assert!(results.iter().all(|r| r.started_ms >= 100));
    server.shutdown().await;
}

#[tokio::test]
async fn a_closed_port_is_connect_refused() {
    let pki = TestPki::new();
    let closed = {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.local_addr().expect("addr")
    };
    let mut prober = prober(&pki, 300);
    for connection in [Connection::Fresh, Connection::KeptAlive] {
        let result = prober
            .probe(
                CephNetwork::Public,
                Some(CLIENT_V4),
                closed,
                kind(Scheme::Http, Payload::Small, connection),
            )
            .await;
        assert_eq!(
            result.outcome,
            Outcome::Failed(FailureClass::ConnectRefused)
        );
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_a_tls_failure() {
    let ours = TestPki::new();
    let theirs = TestPki::new();
    let server = probe_server(
        &theirs,
        &[NetworkAddress {
            network: CephNetwork::Public,
            addr: Ipv4Addr::LOCALHOST.into(),
            interface: None,
        }],
    )
    .await;
    let target = server.listeners()[0].https;
    let mut prober = prober(&ours, 1_000);
    let result = prober
        .probe(
            CephNetwork::Public,
            Some(CLIENT_V4),
            target,
            kind(Scheme::Https, Payload::Small, Connection::Fresh),
        )
        .await;
    assert_eq!(result.outcome, Outcome::Failed(FailureClass::Tls));
    server.shutdown().await;
}

/// A one-connection fake server: reads the request, writes `answer`, keeps the connection
/// open for `hold`, then closes. Ends by itself.
async fn fake_server(answer: &'static [u8], hold: Duration) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(Duration::from_secs(2), listener.accept()).await
        else {
            return;
        };
        let mut request = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut request)).await;
        let _ = stream.write_all(answer).await;
        tokio::time::sleep(hold).await;
    });
    (addr, task)
}

async fn probe_fake(answer: &'static [u8], hold: Duration, kind: ProbeKind) -> ProbeResult {
    let pki = TestPki::new();
    let (addr, task) = fake_server(answer, hold).await;
    let result = prober(&pki, 300)
        .probe(CephNetwork::Public, Some(CLIENT_V4), addr, kind)
        .await;
    task.abort();
    let _ = task.await;
    result
}

#[tokio::test]
async fn a_payload_cut_short_is_short_body() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 300000\r\n\r\nonly a few bytes";
    let result = probe_fake(
        answer,
        Duration::ZERO,
        kind(Scheme::Http, Payload::Large, Connection::Fresh),
    )
    .await;
    assert_eq!(result.outcome, Outcome::Failed(FailureClass::ShortBody));
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_read_timeout() {
    for scheme in [Scheme::Http, Scheme::Https] {
        let started = std::time::Instant::now();
        let result = probe_fake(
            b"",
            Duration::from_secs(2),
            kind(scheme, Payload::Small, Connection::Fresh),
        )
        .await;
        assert_eq!(
            result.outcome,
            Outcome::Failed(FailureClass::ReadTimeout),
            "{scheme:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "bounded by the timeout"
        );
        assert!(result.latency_us >= 300_000);
    }
}

#[tokio::test]
async fn a_connection_nobody_accepts_is_a_connect_timeout() {
    // A listener that never accepts, its accept queue filled: the kernel drops further SYNs,
    // as a filtered path does — all on loopback.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            queued.push(s);
        }
    }
    assert!(!queued.is_empty(), "the accept queue took connections");
    let pki = TestPki::new();
    let started = std::time::Instant::now();
    let result = prober(&pki, 300)
        .probe(
            CephNetwork::Public,
            Some(CLIENT_V4),
            addr,
            kind(Scheme::Http, Payload::Small, Connection::Fresh),
        )
        .await;
    assert_eq!(
        result.outcome,
        Outcome::Failed(FailureClass::ConnectTimeout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    drop(listener);
}

#[tokio::test]
async fn a_non_200_status_is_classified_with_its_code() {
    let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";
    let result = probe_fake(
        answer,
        Duration::ZERO,
        kind(Scheme::Http, Payload::Small, Connection::KeptAlive),
    )
    .await;
    assert_eq!(
        result.outcome,
        Outcome::Failed(FailureClass::HttpStatus(503))
    );
}

/// A mesh client probes several responders side by side: one whose probes all time out (a
/// listener that never answers) does not slow the probes of a responder that answers.
#[tokio::test]
async fn a_target_that_times_out_does_not_slow_another() {
    let pki = TestPki::new();
    let server = probe_server(
        &pki,
        &[NetworkAddress {
            network: CephNetwork::Public,
            addr: Ipv4Addr::LOCALHOST.into(),
            interface: None,
        }],
    )
    .await;
    // Connections complete in the kernel's backlog and are never answered.
    let silent = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let stalled = Listener {
        network: CephNetwork::Public,
        http: silent_addr,
        https: silent_addr,
    };
    let answering = server.listeners()[0];
    let plan = ProbePlan {
        networks: vec![ProbeFrom {
            network: CephNetwork::Public,
            source: Some(CLIENT_V4),
            device: None,
        }],
    };
    let outbox = Outbox::new(10_000, 10);
    let (targets_tx, targets_rx) = watch::channel(vec![stalled, answering]);
    // A probe times out after 1 s: in 1.5 s the stalled target gives at most 2 results, while
    // the answering one goes round after round every 100 ms.
    let probing = prober(&pki, 1_000).run(&plan, targets_rx, Duration::from_millis(100), &outbox);
    let feeding = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        drop(targets_tx);
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(probing, feeding)
    })
    .await
    .expect("the loop ends when its targets channel closes");
    let results = sealed_results(&outbox);
    let to = |addr: SocketAddr| results.iter().filter(|r| r.target == addr).count();
    let answered = to(answering.http) + to(answering.https);
    assert!(
        answered >= 3 * ROUND.len(),
        "{answered} results from the answering target"
    );
    assert!(
        to(silent_addr) <= 2,
        "{} from the stalled one",
        to(silent_addr)
    );
    assert!(
        results
            .iter()
            .filter(|r| r.target == silent_addr)
            .all(|r| r.outcome != Outcome::Ok)
    );
    drop(silent);
    server.shutdown().await;
}

/// The client ends (local address) of the established TCP connections to `server`'s HTTP and
/// HTTPS listeners, as `ss` (iproute2) lists them: a kept-alive probe connection is one that stays in this set.
fn open_to(server: Listener) -> std::collections::BTreeSet<String> {
    [server.http, server.https]
        .iter()
        .flat_map(|addr| {
            let out = std::process::Command::new("ss")
                .args(["-Htn", "state", "established", "dst", &addr.to_string()])
                .output()
                .expect("ss (iproute2) runs");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                // Recv-Q Send-Q Local Peer (no State column with a state filter).
                .filter_map(|line| line.split_whitespace().nth(2).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A mesh client's targets change as responders come and go: a new one is probed from then
/// on, one no longer named is not probed any more, and the loop ends when the channel closes.
/// A target named before and after a change keeps its loop, and with it its kept-alive
/// connections: the very connections (same client ports) carry its probes on.
#[tokio::test]
async fn targets_added_are_probed_and_targets_removed_are_not() {
    let pki = TestPki::new();
    let on = |addr: IpAddr| NetworkAddress {
        network: CephNetwork::Public,
        addr,
        interface: None,
    };
    let a = probe_server(&pki, &[on(Ipv4Addr::LOCALHOST.into())]).await;
    let b = probe_server(&pki, &[on(Ipv4Addr::new(127, 0, 0, 3).into())]).await;
    let (la, lb) = (a.listeners()[0], b.listeners()[0]);
    let plan = ProbePlan {
        networks: vec![ProbeFrom {
            network: CephNetwork::Public,
            source: Some(CLIENT_V4),
            device: None,
        }],
    };
    let outbox = Outbox::new(10_000, 10);
    let (targets_tx, targets_rx) = watch::channel(vec![la]);
    let probing = prober(&pki, 1_000).run(&plan, targets_rx, Duration::from_millis(50), &outbox);
    let results = || sealed_results(&outbox);
    let count = |results: &[ProbeResult], l: Listener| {
        results
            .iter()
            .filter(|r| r.target == l.http || r.target == l.https)
            .count()
    };
    let feeding = async {
        until(&outbox, |r| count(r, la) >= ROUND.len()).await;
        assert_eq!(count(&results(), lb), 0, "not told of b yet");
        // a's kept-alive connections: those open across a whole round (a fresh-connection
        // probe's connection lasts one probe).
        let open_then = open_to(la);
        let a_then = count(&results(), la);
        until(&outbox, |r| count(r, la) >= a_then + ROUND.len()).await;
        let open_now = open_to(la);
        let kept_alive: Vec<&String> = open_then.intersection(&open_now).collect();
        // One kept-alive connection per scheme (a fresh probe's client port reused a round
        // later could add one more: it does not survive, and it is not counted below).
        assert!(
            kept_alive.len() >= 2,
            "one kept-alive connection per scheme: {kept_alive:?}"
        );
        targets_tx.send_replace(vec![la, lb]);
        until(&outbox, |r| count(r, lb) >= ROUND.len()).await;
        let a_then = count(&results(), la);
        until(&outbox, |r| count(r, la) >= a_then + ROUND.len()).await;
        let open_after = open_to(la);
        let survived = kept_alive
            .iter()
            .filter(|c| open_after.contains(**c))
            .count();
        assert!(
            survived >= 2,
            "a's kept-alive connections {kept_alive:?} did not survive the change of targets: {open_after:?}"
        );
        targets_tx.send_replace(vec![lb]);
        // a's loop is dropped at once (a probe in flight then is never produced); from then
        // on only b is probed.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let a_then = count(&results(), la);
        let b_then = count(&results(), lb);
        until(&outbox, |r| count(r, lb) >= b_then + ROUND.len()).await;
        assert_eq!(count(&results(), la), a_then, "a no longer probed");
        drop(targets_tx);
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(probing, feeding)
    })
    .await
    .expect("the loop ends when its targets channel closes");
    assert!(results().iter().all(|r| r.outcome == Outcome::Ok));
    a.shutdown().await;
    b.shutdown().await;
}

/// Every result in `outbox` so far (sealing what is pending).
fn sealed_results(outbox: &Outbox) -> Vec<ProbeResult> {
    outbox.seal();
    outbox
        .unacked_after(0)
        .into_iter()
        .flat_map(|batch| batch.results)
        .collect()
}

/// Waits, with a bounded patience of 5 s, until `cond` holds for `outbox`'s results.
async fn until(outbox: &Outbox, cond: impl Fn(&[ProbeResult]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond(&sealed_results(outbox)) {
        assert!(Instant::now() < deadline, "condition not met in 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
