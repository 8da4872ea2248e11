//! A run driven through the library inside the test process, so the test can act on the run
//! while it goes: intruders knock on the control plane (no run certificate, a wrong run id,
//! another protocol version) and are refused; the coordinator drops an agent's connection and
//! the agent reconnects and resends — with no result lost and none counted twice; the server
//! restarts on new ports without the backend noticing, and the clients that had passed pass
//! again on them before the run ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use multinet_agent::tls::RunTls;
use multinet_coordinator::backend::local::LocalBackend;
use multinet_coordinator::matrix_actor::Standings;
use multinet_coordinator::progress::Progress;
use multinet_coordinator::roster::test_hooks::{DropConnection, WithholdAcks};
use multinet_coordinator::roster::{ConnectionEvent, Snapshot};
use multinet_coordinator::scheduler::{AgentEnv, NodePlan, PodStatus, Scheduler};
use multinet_coordinator::supervisor::{RunSettings, RunSupervisor};
use multinet_proto::config::{GoDuration, NodeType, RunConfig};
use multinet_proto::control::codec::{decode_frame, encode};
use multinet_proto::control::{
    AgentIdentity, AgentMessage, COORDINATOR_NAME, CoordinatorMessage, Hello, Listener,
    PROTOCOL_VERSION, Refusal, Role,
};
use multinet_proto::network::CephNetwork;
use multinet_tests::eventually::eventually_async;

fn settings() -> RunSettings {
    let mut config = RunConfig::default();
    config.node_types.clear();
    config
        .node_types
        .insert("converged".into(), NodeType::with_counts(2, 1));
    config.public_network = "public".into();
    config.cluster_network = "cluster".into();
    config.probe_interval = GoDuration::from_millis(150);
    config.resource_timeout = GoDuration::from_secs(60);
    RunSettings {
        config,
        networks: vec![CephNetwork::Public, CephNetwork::Cluster],
        agent_grace: Duration::from_secs(10),
        soak: multinet_coordinator::supervisor::Soak::Off,
        stop: Default::default(),
        probing: Default::default(),
        metrics: None,
        interim: None,
        hand_over: None,
    }
}

/// An actix system on a two-thread runtime, as `multinet run` has.
fn system() -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// A local backend of two nodes running the test binary's agents, and a supervisor for it
/// (inside the system: it starts its actors).
fn local_run() -> (LocalBackend, RunSupervisor) {
    let backend = LocalBackend::new(
        2,
        vec![env!("CARGO_BIN_EXE_multinet-e2e").into(), "agent".into()],
        Vec::new(),
    );
    let supervisor = RunSupervisor::prepare(
        std::net::UdpSocket::bind(("127.0.0.1", 0)).expect("socket"),
        &std::env::temp_dir(),
    )
    .expect("prepare");
    (backend, supervisor)
}

/// Connects with `client`, says `hello`, returns the coordinator's answer.
async fn knock(
    client: quinn::ClientConfig,
    addr: SocketAddr,
    hello: Hello,
) -> Result<CoordinatorMessage, String> {
    knock_with(
        client,
        addr,
        encode(&AgentMessage::Hello(hello)).expect("encode"),
    )
    .await
}

/// Connects with `client`, sends `bytes` first, returns the coordinator's answer.
async fn knock_with(
    client: quinn::ClientConfig,
    addr: SocketAddr,
    bytes: Vec<u8>,
) -> Result<CoordinatorMessage, String> {
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(client);
    let connection = endpoint
        .connect(addr, COORDINATOR_NAME)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut chunk = [0u8; 512];
            match recv.read(&mut chunk).await {
                Ok(Some(n)) => buf.extend_from_slice(&chunk[..n]),
                _ => return Err("closed before an answer".to_string()),
            }
            if let Ok(Some((msg, _))) = decode_frame::<CoordinatorMessage>(&buf) {
                return Ok(msg);
            }
        }
    })
    .await
    .map_err(|_| "no answer".to_string())?;
    endpoint.close(0u32.into(), b"");
    answer
}

/// A client config with a certificate from a CA that is not the run's.
fn stranger(dir: &std::path::Path, run_ca: &std::path::Path) -> quinn::ClientConfig {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["stranger.invalid".to_string()]).expect("params");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca).expect("cert");
    std::fs::write(dir.join("stranger.crt"), cert.pem()).expect("write");
    std::fs::write(dir.join("stranger.key"), key.serialize_pem()).expect("write");
    let files = multinet_proto::assignment::TlsFiles {
        ca: run_ca.to_path_buf(),
        cert: dir.join("stranger.crt"),
        key: dir.join("stranger.key"),
    };
    RunTls::load(&files)
        .expect("load")
        .control_client_config()
        .expect("config")
}

fn hello(run_id: &str, version: u16) -> Hello {
    Hello {
        protocol_version: version,
        run_id: run_id.into(),
        agent: AgentIdentity {
            role: Role::Client,
            node: "n1".into(),
            pod: "intruder".into(),
            networks: vec![CephNetwork::Public],
        },
        last_acked: 0,
        addresses: Vec::new(),
        clock_epoch_unix_ms: 0,
    }
}

#[test]
fn intruders_are_refused_and_a_dropped_connection_loses_nothing() {
    multinet_agent::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("multinet-test-intruders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let system = system();
    let dir2 = dir.clone();
    let (report, answers) = system.block_on(async move {
        let settings = settings();
        let (mut backend, mut supervisor) = local_run();
        let addr = supervisor.control_addr().expect("addr");
        let run_id = supervisor.run_id().to_string();
        // A run certificate for the well-formed intruders; a stranger's for the other.
        let files = supervisor
            .pki()
            .write_agent_files(&dir2, "intruder", false)
            .expect("credentials");
        let member = RunTls::load(&files)
            .expect("load")
            .control_client_config()
            .expect("config");
        let outsider = stranger(&dir2, &files.ca);
        let roster = supervisor.roster();
        let intruders = tokio::spawn(async move {
            // Its batches of the next 600 ms are recorded but not acknowledged: it must resend
            // them after the drop, and the coordinator must count them once.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let held = roster
                .send(WithholdAcks("client-n2-osd-0".into()))
                .await
                .expect("roster");
            assert!(held.is_some(), "the agent is one of the run's");
            tokio::time::sleep(Duration::from_millis(600)).await;
            let dropped = roster
                .send(DropConnection("client-n2-osd-0".into()))
                .await
                .expect("roster");
            let answers = vec![
                knock(outsider, addr, hello(&run_id, PROTOCOL_VERSION)).await,
                knock(member.clone(), addr, hello("another-run", PROTOCOL_VERSION)).await,
                knock(member.clone(), addr, hello(&run_id, PROTOCOL_VERSION + 1)).await,
                // A frame announcing 4 GiB: refused before anything is allocated.
                knock_with(member, addr, vec![0xff, 0xff, 0xff, 0xff, 0]).await,
            ];
            (dropped, answers)
        });
        let mut progress = Progress::new(true);
        let report = supervisor.run(&mut backend, &settings, &mut progress).await;
        supervisor.cleanup(&mut backend).await.expect("cleanup");
        (report.expect("run"), intruders.await.expect("intruders"))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (dropped, answers) = answers;
    // Every agent process of the run is gone (their command lines name the run directory).
    assert_eq!(
        multinet_tests::e2e::processes_mentioning(&format!("multinet-{}", report.run_id)),
        Vec::<String>::new(),
        "agents left running"
    );

    assert!(
        dropped,
        "the agent was connected when its connection was dropped"
    );
    assert!(
        answers[0].is_err(),
        "no run certificate: the handshake fails ({:?})",
        answers[0]
    );
    assert!(
        matches!(
            answers[1],
            Ok(CoordinatorMessage::Refused(Refusal::RunId { .. }))
        ),
        "{:?}",
        answers[1]
    );
    assert!(
        matches!(
            answers[2],
            Ok(CoordinatorMessage::Refused(Refusal::ProtocolVersion { .. }))
        ),
        "{:?}",
        answers[2]
    );
    assert_eq!(
        report.refused_connections.get("tls_handshake"),
        Some(&1),
        "{:?}",
        report.refused_connections
    );
    assert_eq!(report.refused_connections.get("run_id"), Some(&1));
    assert_eq!(report.refused_connections.get("protocol_version"), Some(&1));
    assert!(
        answers[3].is_err(),
        "an oversized first frame gets the connection closed ({:?})",
        answers[3]
    );
    assert_eq!(report.refused_connections.get("no_hello"), Some(&1));

    // The run itself is unaffected, and every result is accounted for exactly once.
    assert_eq!(
        format!("{:?}", report.verdict),
        "Pass",
        "{:#?}",
        report.findings
    );
    assert!(
        report.results.duplicate_batches >= 1,
        "batches recorded but not acknowledged were resent after the reconnect ({:?})",
        report.results
    );
    assert_eq!(report.results.lost, 0);
    assert_eq!(report.results.unaccounted, 0);
    assert_eq!(report.results.produced, report.results.recorded);
    assert_eq!(report.results.sequence_gaps, 0);
    let reconnected = report
        .agents
        .iter()
        .find(|a| a.identity.pod == "client-n2-osd-0")
        .expect("the dropped agent");
    assert!(reconnected.passed_at_ms.is_some());
}

#[test]
fn a_soak_rewrites_its_report_while_it_runs_and_puts_results_on_the_run_clock() {
    multinet_agent::install_crypto_provider();
    let system = system();
    type Seen = Vec<(bool, u64, u64, usize)>;
    let seen: std::sync::Arc<std::sync::Mutex<Seen>> = Default::default();
    let sink = seen.clone();
    let report = system.block_on(async move {
        let mut settings = settings();
        // Counted from the probe stage's start: a loaded machine may take seconds to the pass,
        // and the soak needs room for two interim reports after it.
        settings.soak = multinet_coordinator::supervisor::Soak::For(Duration::from_secs(8));
        settings.config.report_interval = GoDuration::from_secs(1);
        settings.interim = Some(multinet_coordinator::supervisor::InterimReports(
            std::sync::Arc::new(move |r: &multinet_coordinator::report::RunReport| {
                sink.lock().expect("lock").push((
                    r.in_progress,
                    r.duration_ms,
                    r.results.recorded,
                    r.timelines.len(),
                ));
                Ok(())
            }),
        ));
        let (mut backend, mut supervisor) = local_run();
        let mut progress = Progress::new(true);
        let report = supervisor.run(&mut backend, &settings, &mut progress).await;
        supervisor.cleanup(&mut backend).await.expect("cleanup");
        report.expect("run")
    });
    let seen = seen.lock().expect("lock").clone();
    assert!(seen.len() >= 2, "one interim report a second: {seen:?}");
    assert!(seen.iter().all(|s| s.0), "interim reports say so: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1 && w[0].2 <= w[1].2),
        "each later and with at least as many results: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.3 > 0), "timelines in every interim");
    assert!(!report.in_progress);
    assert!(report.results.recorded >= seen.last().expect("one").2);
    // The run's start in UTC, and every result on the run's clock: none before the agents were
    // placed (after the server stage), none after the run's end.
    assert!(
        report.started_at.ends_with('Z') && report.started_at.len() == 24,
        "{}",
        report.started_at
    );
    let json = serde_json::to_value(&report).expect("json");
    let timelines = json["timelines"].as_array().expect("timelines");
    assert!(!timelines.is_empty());
    let buckets = timelines[0]["buckets"].as_array().expect("buckets");
    let probes: u64 = buckets
        .iter()
        .map(|b| b["probes"].as_u64().unwrap_or(0))
        .sum();
    assert!(probes > 0);
    assert!(
        (buckets.len() as u64 - 1) * timelines[0]["bucket_ms"].as_u64().expect("width")
            <= report.duration_ms,
        "the last bucket begins within the run"
    );
    // A report of this schema (timelines, started_at) reads back whole, as `report show` reads
    // it, every key in its order.
    use multinet_coordinator::report::{self, Format};
    let written = report::render(&report, Format::Json);
    let stored = report::StoredReport::of(&report).expect("reads back");
    assert_eq!(report::render_stored(&stored, Format::Json), written);
}

/// A local backend whose server restarts quickly without the backend noticing — as the kube
/// backend learns of a container's restart only later, or not at all: once asked
/// ([`UnseenRestart::restart`]), the server's process is killed and a new one started with the
/// same assignment (it listens on new ports), and the old one's exit is never reported. One
/// client is never started, so the probe stage stays open until the test says it failed.
struct UnseenRestart {
    inner: LocalBackend,
    /// The client that is never started.
    never_started: String,
    /// Set by the test: restart the server at the next look at the run.
    restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The run's directory, where the server's assignment is.
    run_dir: Option<std::path::PathBuf>,
    /// The server's new process.
    restarted: Option<tokio::process::Child>,
}

impl Scheduler for UnseenRestart {
    type Error = multinet_coordinator::backend::local::Error;

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn validates_real_network(&self) -> bool {
        self.inner.validates_real_network()
    }

    fn control_socket(&self) -> Result<std::net::UdpSocket, Self::Error> {
        self.inner.control_socket()
    }

    async fn nodes(&mut self, config: &RunConfig) -> Result<Vec<NodePlan>, Self::Error> {
        self.inner.nodes(config).await
    }

    async fn start(
        &mut self,
        pod: &AgentIdentity,
        env: &AgentEnv<'_>,
    ) -> Result<PodStatus, Self::Error> {
        self.run_dir = Some(env.run_dir.clone());
        if pod.pod == self.never_started {
            return Ok(PodStatus::Started(Vec::new()));
        }
        self.inner.start(pod, env).await
    }

    async fn exited(&mut self) -> Vec<(String, String)> {
        let asked = self.restart.load(std::sync::atomic::Ordering::SeqCst);
        if asked
            && self.restarted.is_none()
            && let (Some(pid), Some(dir)) = (self.inner.agent_pid("server"), &self.run_dir)
        {
            let killed = tokio::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .await
                .expect("kill runs");
            assert!(killed.success(), "the server's process {pid} is killed");
            let assignment = dir.join("server.assignment.json");
            let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
                .arg("agent")
                .arg("--assignment")
                .arg(&assignment)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("the server starts again");
            self.restarted = Some(child);
        }
        let mut exits = self.inner.exited().await;
        exits.retain(|(pod, _)| pod != "server");
        exits
    }

    async fn cleanup(&mut self) -> Result<(), Self::Error> {
        if let Some(mut child) = self.restarted.take() {
            let _ = child.kill().await;
        }
        self.inner.cleanup().await
    }
}

/// Each network's listener addresses (HTTP and HTTPS) of `listeners`.
fn addresses_by_network(listeners: &[Listener]) -> BTreeMap<CephNetwork, Vec<SocketAddr>> {
    let mut out: BTreeMap<CephNetwork, Vec<SocketAddr>> = BTreeMap::new();
    for l in listeners {
        out.entry(l.network).or_default().extend([l.http, l.https]);
    }
    out
}

/// The server restarts within the time an agent may be away (its control connection never
/// seen to close, the backend never saying its process exited) and listens on new ports: the
/// clients and host checkers that had passed on its old listeners must pass again on the new
/// ones before the run ends — here the probe stage would otherwise be over at once, its last
/// open client gone. (A mesh's responder follows the same rule: supervisor::decide's tests.)
#[test]
fn clients_that_passed_pass_again_on_a_server_restarted_on_new_ports() {
    multinet_agent::install_crypto_provider();
    let never_started = "client-n2-osd-1";
    let system = system();
    let (report, old, new) = system.block_on(async move {
        let settings = settings();
        let threshold = u64::from(settings.config.success_threshold);
        let (inner, mut supervisor) = local_run();
        let restart: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
        let mut backend = UnseenRestart {
            inner,
            never_started: never_started.into(),
            restart: restart.clone(),
            run_dir: None,
            restarted: None,
        };
        let (roster, matrix) = (supervisor.roster(), supervisor.matrix());
        let driver = tokio::task::spawn_local(async move {
            let patience = Duration::from_secs(45);
            // Every agent but the one never started has passed on the server's listeners —
            // by 8 more successes than a pass takes (over a second at 150 ms), so the
            // supervisor, which looks every 100 ms, has seen each of them pass.
            let what =
                "every agent but the one never started passing on the server's first listeners";
            let old = eventually_async(patience, what, async || {
                let snap = roster.send(Snapshot).await.expect("roster");
                let Some(server) = snap.responders.get("server") else {
                    return Err("the server is not listening yet".to_string());
                };
                let server = addresses_by_network(&server.listeners);
                let pairs: Vec<_> = snap
                    .agents
                    .iter()
                    .filter(|a| a.expected.role != Role::Server && a.expected.pod != never_started)
                    .flat_map(|a| {
                        a.expected.networks.iter().map(|n| {
                            let targets: std::sync::Arc<[SocketAddr]> =
                                server.get(n).cloned().unwrap_or_default().into();
                            (a.expected.pod.clone(), *n, targets)
                        })
                    })
                    .collect();
                if pairs.is_empty() {
                    return Err("the clients are not placed yet".to_string());
                }
                let standings = matrix
                    .send(Standings {
                        pairs,
                        threshold: threshold + 8,
                    })
                    .await
                    .expect("matrix");
                let failing = standings.iter().filter(|s| !s.passes).count();
                if failing > 0 {
                    return Err(format!("{failing} (pod, network) pairs not passing yet"));
                }
                Ok(server)
            })
            .await;
            restart.store(true, std::sync::atomic::Ordering::SeqCst);
            let what = "the restarted server saying where it listens";
            let new = eventually_async(patience, what, async || {
                let snap = roster.send(Snapshot).await.expect("roster");
                match snap.responders.get("server") {
                    Some(s) if addresses_by_network(&s.listeners) != old => {
                        Ok(addresses_by_network(&s.listeners))
                    }
                    Some(_) => Err("still on its first listeners"),
                    None => Err("not listening"),
                }
            })
            .await;
            // The last open client settles: the stage ends once everyone else has (again).
            roster
                .send(ConnectionEvent::Failed {
                    pod: never_started.into(),
                    reason: "never started (the test's)".into(),
                })
                .await
                .expect("roster");
            (old, new)
        });
        let mut progress = Progress::new(true);
        let report = supervisor.run(&mut backend, &settings, &mut progress).await;
        supervisor.cleanup(&mut backend).await.expect("cleanup");
        let (old, new) = driver.await.expect("the restart driver");
        (report.expect("run"), old, new)
    });
    assert_eq!(
        multinet_tests::e2e::processes_mentioning(&format!("multinet-{}", report.run_id)),
        Vec::<String>::new(),
        "agents left running"
    );
    for (network, addresses) in &new {
        assert!(
            addresses.iter().all(|a| !old[network].contains(a)),
            "new ports on {network:?}: {old:?} then {new:?}"
        );
    }
    let probe = report
        .stages
        .iter()
        .find(|s| s.name == "probe")
        .expect("a probe stage");
    assert_eq!(probe.outcome, "done", "{:?}", report.stages);
    let threshold = u64::from(settings().config.success_threshold);
    for agent in &report.agents {
        let pod = &agent.identity.pod;
        if agent.identity.role == Role::Server || pod == never_started {
            continue;
        }
        assert!(agent.passed_at_ms.is_some(), "{pod} passed: {agent:?}");
        // It passed on the new listeners: the success threshold on every path to each of
        // them, on every network it is on.
        for network in &agent.identity.networks {
            let paths: Vec<_> = report
                .paths
                .iter()
                .filter(|p| &p.client == pod && p.network == *network)
                .filter(|p| new[network].iter().any(|a| a.to_string() == p.target))
                .collect();
            let targets: std::collections::BTreeSet<&str> =
                paths.iter().map(|p| p.target.as_str()).collect();
            assert_eq!(
                targets.len(),
                new[network].len(),
                "{pod} probed every new listener on {network:?}: {paths:#?}"
            );
            for path in paths {
                assert!(
                    path.ok >= threshold,
                    "{pod} on {network:?}: {} of {} probes to {} ({:?}) succeeded",
                    path.ok,
                    path.sent,
                    path.target,
                    path.kind
                );
            }
        }
    }
}
