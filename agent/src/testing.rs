//! Test fixtures shared by the agent's module tests: a tiny run PKI written to a temporary
//! directory that is removed when the fixture is dropped (also when a test fails).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::{COORDINATOR_NAME, PROBE_SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

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
