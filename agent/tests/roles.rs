//! The agent as the coordinator sees it: whole roles through `multinet_agent::run`, and the
//! binary's exit codes. Everything on loopback; every child process is killed on drop.

#[path = "../src/testing.rs"]
mod testing;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use multinet_agent::{ExitReason, run};
use multinet_proto::assignment::{AgentAssignment, NetworkAddress, ProbeSettings, TlsFiles};
use multinet_proto::control::{AgentIdentity, AgentMessage, CoordinatorMessage, Role};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::Outcome;
use testing::{PATIENCE, TempDir, TestCoordinator, TestPki};

fn assignment(
    role: Role,
    pod: &str,
    coordinator: SocketAddr,
    tls: TlsFiles,
    address: Option<IpAddr>,
    grace_ms: u64,
) -> AgentAssignment {
    AgentAssignment {
        run_id: "run-e2e".into(),
        coordinator,
        identity: AgentIdentity {
            role,
            node: "node-a".into(),
            pod: pod.into(),
            networks: vec![CephNetwork::Public],
        },
        tls,
        addresses: address
            .map(|addr| NetworkAddress {
                network: CephNetwork::Public,
                addr,
                interface: None,
            })
            .into_iter()
            .collect(),
        probe: ProbeSettings {
            interval_ms: 100,
            timeout_ms: 1_000,
            small_bytes: 64,
            large_bytes: 100_000,
        },
        grace_ms,
        batch_max: 8,
        unacked_max: 64,
    }
}

#[tokio::test]
async fn server_and_client_roles_probe_each_other_and_stop() {
    multinet_agent::install_crypto_provider();
    let pki = TestPki::new();
    let coordinator = TestCoordinator::new(&pki.coordinator());
    let server = assignment(
        Role::Server,
        "server",
        coordinator.addr(),
        pki.probe_server(),
        Some(Ipv4Addr::LOCALHOST.into()),
        5_000,
    );
    let client = assignment(
        Role::Client,
        "client-0",
        coordinator.addr(),
        pki.client(),
        Some(Ipv4Addr::new(127, 0, 0, 2).into()),
        5_000,
    );
    let (client_go, client_wait) = tokio::sync::oneshot::channel::<()>();
    let client_agent = async {
        client_wait.await.expect("the script starts the client");
        run(client).await
    };
    let script = async {
        let mut server_peer = coordinator.accept().await;
        let hello = server_peer.hello().await;
        assert_eq!(hello.agent.role, Role::Server);
        server_peer.send(CoordinatorMessage::Welcome).await;
        let listeners = match server_peer.next().await {
            AgentMessage::ServerReady { listeners } => listeners,
            other => panic!("expected ServerReady, got {other:?}"),
        };
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners[0].http.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));

        client_go.send(()).expect("client waiting");
        let mut client_peer = coordinator.accept().await;
        assert_eq!(client_peer.hello().await.agent.pod, "client-0");
        client_peer.send(CoordinatorMessage::Welcome).await;
        let server_ip = listeners[0].http.ip();
        client_peer
            .send(CoordinatorMessage::Targets { listeners })
            .await;
        // Before probing, the client says where its probes leave from: by loopback here, as
        // its control plane does.
        match client_peer.next().await {
            AgentMessage::Egress(egress) => {
                assert_eq!(egress.routes.len(), 1, "{egress:?}");
                assert_eq!(egress.routes[0].target, server_ip);
                assert_eq!(egress.routes[0].interface.as_deref(), Some("lo"));
                assert!(egress.routes[0].source.is_some_and(|s| s.is_loopback()));
                assert_eq!(egress.control_interface.as_deref(), Some("lo"));
            }
            other => panic!("expected Egress, got {other:?}"),
        }
        let mut kinds_ok = HashSet::new();
        let mut next_seq = 1;
        while kinds_ok.len() < 8 {
            let batch = client_peer.report().await;
            assert_eq!(batch.seq, next_seq, "no gaps");
            next_seq += 1;
            for result in &batch.results {
                assert_eq!(result.outcome, Outcome::Ok, "{result:?}");
                kinds_ok.insert(result.kind);
            }
            client_peer
                .send(CoordinatorMessage::Ack { seq: batch.seq })
                .await;
        }
        client_peer.send(CoordinatorMessage::Stop).await;
        server_peer.send(CoordinatorMessage::Stop).await;
        // Keep acknowledging what the client flushes after Stop.
        while let Some(message) = client_peer.try_next(Duration::from_millis(500)).await {
            if let AgentMessage::Report(batch) = message {
                client_peer
                    .send(CoordinatorMessage::Ack { seq: batch.seq })
                    .await;
            }
        }
        (server_peer, client_peer)
    };
    let server_agent = run(server);
    let (server_end, client_end, _peers) = tokio::time::timeout(PATIENCE * 3, async {
        tokio::join!(server_agent, client_agent, script)
    })
    .await
    .expect("both agents stop in time");
    assert_eq!(server_end.expect("server ok"), ExitReason::Stopped);
    assert_eq!(client_end.expect("client ok"), ExitReason::Stopped);
}

/// The built binary with an assignment file; killed if the test ends first.
fn agent_command(assignment: &AgentAssignment, dir: &TempDir) -> tokio::process::Command {
    let path = dir.path().join("assignment.json");
    std::fs::write(
        &path,
        serde_json::to_vec(assignment).expect("assignment JSON"),
    )
    .expect("write assignment");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_multinet-agent"));
    command
        .arg("--assignment")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn exit_code(mut command: tokio::process::Command) -> (i32, String) {
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("the agent exits by itself")
        .expect("the agent runs");
    (
        output.status.code().expect("exited, not signalled"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_binary_exits_3_when_the_coordinator_stays_unreachable() {
    let pki = TestPki::new();
    let dir = TempDir::new("exit3");
    let nobody = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr");
    let client = assignment(Role::HostCheck, "host-a", nobody, pki.client(), None, 500);
    let (code, _) = exit_code(agent_command(&client, &dir)).await;
    assert_eq!(code, 3);
}

#[tokio::test]
async fn the_binary_exits_0_after_stop_and_1_when_refused_or_misconfigured() {
    let pki = TestPki::new();
    let dir = TempDir::new("exit01");
    let coordinator = TestCoordinator::new(&pki.coordinator());
    let host = assignment(
        Role::HostCheck,
        "host-a",
        coordinator.addr(),
        pki.client(),
        None,
        5_000,
    );

    let stopped = exit_code(agent_command(&host, &dir));
    let script = async {
        let mut peer = coordinator.accept().await;
        peer.hello().await;
        peer.send(CoordinatorMessage::Welcome).await;
        peer.send(CoordinatorMessage::Stop).await;
        peer
    };
    let ((code, stderr), _peer) = tokio::join!(stopped, script);
    assert_eq!(code, 0, "{stderr}");

    let refused = exit_code(agent_command(&host, &dir));
    let script = async {
        let mut peer = coordinator.accept().await;
        peer.hello().await;
        peer.send(CoordinatorMessage::Refused(
            multinet_proto::control::Refusal::NoHello,
        ))
        .await;
        peer
    };
    let ((code, stderr), _peer) = tokio::join!(refused, script);
    assert_eq!(code, 1);
    assert!(stderr.contains("Hello"), "{stderr}");

    let mut missing = tokio::process::Command::new(env!("CARGO_BIN_EXE_multinet-agent"));
    missing
        .arg("--assignment")
        .arg(dir.path().join("absent.json"))
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let (code, stderr) = exit_code(missing).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("absent.json"), "{stderr}");
}

/// In a pod the agent is PID 1, which gets no signal it has no handler for: it must end on
/// SIGTERM itself, at once, or every pod deletion waits out its grace period.
#[tokio::test]
async fn the_binary_exits_143_at_once_on_sigterm() {
    let pki = TestPki::new();
    let dir = TempDir::new("sigterm");
    let nobody = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr");
    // A long grace: without SIGTERM it would keep trying to reach the coordinator.
    let client = assignment(
        Role::HostCheck,
        "host-a",
        nobody,
        pki.client(),
        None,
        60_000,
    );
    let mut child = agent_command(&client, &dir)
        .spawn()
        .expect("the agent runs");
    let raw = child.id().expect("running");
    // Wait (bounded) until it catches SIGTERM: bit 14 of SigCgt in /proc/PID/status.
    let catches = || {
        std::fs::read_to_string(format!("/proc/{raw}/status"))
            .ok()
            .and_then(|s| {
                let mask = s
                    .lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))?
                    .trim()
                    .to_string();
                u64::from_str_radix(&mask, 16).ok()
            })
            .is_some_and(|mask| mask & (1 << 14) != 0)
    };
    let since = std::time::Instant::now();
    while !catches() {
        assert!(
            since.elapsed() < PATIENCE,
            "the agent never installed its SIGTERM handler"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = nix::unistd::Pid::from_raw(raw as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM sent");
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
        .await
        .expect("ends within 5 s of SIGTERM")
        .expect("waited");
    assert_eq!(status.code(), Some(143), "{status:?}");
}
