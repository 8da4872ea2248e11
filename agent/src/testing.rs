//! Test fixtures shared by the agent's module tests and its integration tests (included there
//! with `#[path]`): a tiny run PKI written to a temporary directory that is removed when the
//! fixture is dropped (also when a test fails), a minimal in-test coordinator, and what a test
//! that cannot run here does ([`can_run`]).
#![allow(dead_code)] // each test crate uses its own part of the fixtures

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use multinet_proto::control::codec::{decode_frame, encode};
use multinet_proto::control::{ALPN, AgentMessage, CoordinatorMessage, Hello, ReportBatch};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::{COORDINATOR_NAME, PROBE_SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// `true` when `missing` is `None`: the test can run. Otherwise the test `what` cannot (the
/// machine lacks `missing`): under CI (`CI=true`) or with `MULTINET_REQUIRE_LAB=1` it fails
/// saying so, elsewhere it says so on stderr and the caller returns — the policy of the
/// workspace tests (`tests/src/require.rs`).
pub fn can_run(what: &str, missing: Option<&str>) -> bool {
    let Some(missing) = missing else {
        return true;
    };
    let set =
        |var: &str| std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    assert!(
        !(set("CI") || set("MULTINET_REQUIRE_LAB")),
        "{what} needs {missing}; this machine lacks it, and CI (CI=true) or \
         MULTINET_REQUIRE_LAB=1 requires every test to run"
    );
    eprintln!(
        "skipped: {what} needs {missing} (set MULTINET_REQUIRE_LAB=1 to make this a failure)"
    );
    false
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "multinet-agent-test-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A run CA and the certificates a run issues, as PEM files.
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    next: AtomicU32,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = TempDir::new("pki");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");
        Self {
            dir,
            ca,
            next: AtomicU32::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issues a certificate for `names` with `usages`; its files with this CA as trust anchor.
    pub fn issue(&self, names: &[&str], usages: &[ExtendedKeyUsagePurpose]) -> TlsFiles {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params.extended_key_usages = usages.to_vec();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let files = TlsFiles {
            ca: self.dir().join("ca.pem"),
            cert: self.dir().join(format!("leaf-{n}.pem")),
            key: self.dir().join(format!("leaf-{n}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }

    /// The server agent's files: HTTPS server and control-plane client.
    pub fn probe_server(&self) -> TlsFiles {
        self.issue(
            &[PROBE_SERVER_NAME],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// A client agent's files.
    pub fn client(&self) -> TlsFiles {
        self.issue(
            &["agent.multinet.invalid"],
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    /// The coordinator's files (control-plane server).
    pub fn coordinator(&self) -> TlsFiles {
        self.issue(&[COORDINATOR_NAME], &[ExtendedKeyUsagePurpose::ServerAuth])
    }
}

/// Patience for anything that should happen "soon".
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A QUIC endpoint that speaks the coordinator's side of the protocol, one script at a time.
pub struct TestCoordinator {
    pub endpoint: quinn::Endpoint,
}

impl TestCoordinator {
    pub fn new(files: &TlsFiles) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&files.ca).expect("ca") {
            roots.add(ca.expect("ca pem")).expect("ca added");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let chain = CertificateDer::pem_file_iter(&files.cert)
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("cert pem");
        let key = PrivateKeyDer::from_pem_file(&files.key).expect("key");
        let mut crypto = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("tls13")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server identity");
        crypto.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(crypto).expect("quic crypto");
        let config = quinn::ServerConfig::with_crypto(Arc::new(quic));
        let endpoint = quinn::Endpoint::server(config, (Ipv4Addr::LOCALHOST, 0).into())
            .expect("server endpoint");
        Self { endpoint }
    }

    pub fn addr(&self) -> SocketAddr {
        self.endpoint.local_addr().expect("addr")
    }

    /// The next agent connection and its stream.
    pub async fn accept(&self) -> TestPeer {
        tokio::time::timeout(PATIENCE, async {
            let connection = self
                .endpoint
                .accept()
                .await
                .expect("endpoint open")
                .await
                .expect("handshake");
            let (send, recv) = connection.accept_bi().await.expect("stream");
            TestPeer {
                connection,
                send,
                recv,
                buf: Vec::new(),
            }
        })
        .await
        .expect("an agent connects in time")
    }
}

pub struct TestPeer {
    pub connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    buf: Vec<u8>,
}

impl TestPeer {
    /// The next message, heartbeats included.
    pub async fn next_any(&mut self) -> AgentMessage {
        tokio::time::timeout(PATIENCE, self.read_message())
            .await
            .expect("a message in time")
            .expect("the agent's stream is open")
    }

    /// The next message within `wait`, or `None` (timeout, stream closed or connection gone).
    pub async fn try_next(&mut self, wait: Duration) -> Option<AgentMessage> {
        tokio::time::timeout(wait, self.read_message())
            .await
            .ok()
            .flatten()
    }

    async fn read_message(&mut self) -> Option<AgentMessage> {
        loop {
            if let Some((message, used)) =
                decode_frame::<AgentMessage>(&self.buf).expect("well-formed frame")
            {
                self.buf.drain(..used);
                return Some(message);
            }
            let mut chunk = [0u8; 4096];
            let n = self.recv.read(&mut chunk).await.ok()??;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next message that is not a heartbeat.
    pub async fn next(&mut self) -> AgentMessage {
        loop {
            match self.next_any().await {
                AgentMessage::Heartbeat => continue,
                message => return message,
            }
        }
    }

    pub async fn hello(&mut self) -> Hello {
        match self.next().await {
            AgentMessage::Hello(hello) => hello,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    /// The next report batch; an Egress before it (sent after every Targets) is passed over.
    pub async fn report(&mut self) -> ReportBatch {
        loop {
            match self.next().await {
                AgentMessage::Report(batch) => return batch,
                AgentMessage::Egress(_) => continue,
                other => panic!("expected Report, got {other:?}"),
            }
        }
    }

    pub async fn send(&mut self, message: CoordinatorMessage) {
        self.send
            .write_all(&encode(&message).expect("encode"))
            .await
            .expect("write");
    }
}
