//! The run's PKI: a CA made for this run only, the coordinator's certificate, and one client
//! certificate per agent (the server agent's also serves its HTTPS probes). Agents trust only
//! this CA; the coordinator accepts only certificates it signed. Nothing outlives the run.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::{ALPN, COORDINATOR_NAME, PROBE_SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The run CA and the coordinator's certificate.
#[derive(Debug)]
pub struct RunPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    coordinator_cert: CertificateDer<'static>,
    coordinator_key: Vec<u8>,
}

/// The provider every TLS config of the coordinator uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn leaf_params(
    common_name: &str,
    names: Vec<String>,
    server: bool,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    Ok(params)
}

impl RunPki {
    /// Makes a CA for run `run_id` and the coordinator's certificate.
    pub fn new(run_id: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("multinet run {run_id} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let cert = leaf_params("multinet coordinator", vec![COORDINATOR_NAME.into()], true)?
            .signed_by(&key, &ca)?;
        Ok(Self {
            coordinator_cert: cert.der().clone(),
            coordinator_key: key.serialize_der(),
            ca,
        })
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// Issues an agent's certificate and writes CA, certificate and key as PEM files into
    /// `dir` (owner-only permissions); the server agent's certificate also names
    /// [`PROBE_SERVER_NAME`] for its HTTPS probes.
    pub fn write_agent_files(
        &self,
        dir: &Path,
        pod: &str,
        server: bool,
    ) -> anyhow::Result<TlsFiles> {
        let mut names = vec![format!("{pod}.agent.multinet.invalid")];
        if server {
            names.push(PROBE_SERVER_NAME.into());
        }
        let key = KeyPair::generate()?;
        let cert = leaf_params(pod, names, server)?.signed_by(&key, &self.ca)?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{pod}.crt.pem")),
            key: dir.join(format!("{pod}.key.pem")),
        };
        if !files.ca.exists() {
            std::fs::write(&files.ca, self.ca.pem()).context("writing the run CA")?;
        }
        std::fs::write(&files.cert, cert.pem()).context("writing an agent certificate")?;
        write_private(&files.key, key.serialize_pem().as_bytes())?;
        Ok(files)
    }

    /// One certificate for every agent of a Kubernetes run, PEM: (CA, certificate, key). It
    /// proves membership of the run (identity travels in the Hello), and it also serves the
    /// server agent's HTTPS probes; one Secret then serves every pod.
    pub fn shared_agent_pem(&self) -> anyhow::Result<(String, String, String)> {
        let key = KeyPair::generate()?;
        let cert = leaf_params(
            "multinet agent",
            vec!["agent.multinet.invalid".into(), PROBE_SERVER_NAME.into()],
            true,
        )?
        .signed_by(&key, &self.ca)?;
        Ok((self.ca.pem(), cert.pem(), key.serialize_pem()))
    }

    /// The QUIC server configuration: TLS 1.3, ALPN, client certificates required and
    /// verified against the run CA only.
    pub fn quic_server_config(&self) -> anyhow::Result<quinn::ServerConfig> {
        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.coordinator_key.clone()));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.coordinator_cert.clone()], key)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport.max_idle_timeout(Some(std::time::Duration::from_secs(10).try_into()?));
        transport.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    Ok(())
}
