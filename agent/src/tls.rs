//! The run's PKI as the agent uses it: the run CA is the only trust anchor, and the agent's own
//! certificate serves both as its control-plane client certificate and, for the server agent,
//! as the HTTPS certificate of the probe server.
//!
//! Owns PEM loading and the three TLS configurations; opens no sockets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::{ALPN, PROBE_SERVER_NAME};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// How often the QUIC connection is kept alive when nothing else is sent.
const QUIC_KEEP_ALIVE: Duration = Duration::from_secs(1);
/// How long a silent QUIC connection lives: a coordinator that vanished without closing is
/// noticed after this long, and the agent starts reconnecting.
const QUIC_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The run CA, the agent's certificate chain and key, loaded from [`TlsFiles`].
#[derive(Debug)]
pub struct RunTls {
    /// The only trust anchor, for the coordinator and the probe server alike.
    roots: Arc<rustls::RootCertStore>,
    /// The agent's certificate (chain), presented to the coordinator and, by the server
    /// agent, to HTTPS probes.
    chain: Vec<CertificateDer<'static>>,
    /// The key of `chain`'s first certificate.
    key: PrivateKeyDer<'static>,
}

/// The ring provider, explicitly: the configurations never depend on a process-wide default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading PEM certificates from {}", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certificates)
}

impl RunTls {
    /// Reads the CA, certificate and key files.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certificates(&files.ca)? {
            roots
                .add(ca)
                .with_context(|| format!("run CA in {} is not usable", files.ca.display()))?;
        }
        let chain = read_certificates(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .with_context(|| format!("reading the PEM private key {}", files.key.display()))?;
        Ok(Self {
            roots: Arc::new(roots),
            chain,
            key,
        })
    }

    /// The QUIC client configuration of the control plane: mutual TLS against the run CA, ALPN
    /// [`ALPN`]. The caller connects with server name [`multinet_proto::control::COORDINATOR_NAME`].
    pub fn control_client_config(&self) -> anyhow::Result<quinn::ClientConfig> {
        let mut crypto = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3 with the ring provider")?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .context("the agent certificate and key do not form a client identity")?;
        crypto.alpn_protocols = vec![ALPN.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto)
            .context("control-plane TLS configuration is not usable for QUIC")?;
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(QUIC_KEEP_ALIVE));
        transport.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(QUIC_IDLE_TIMEOUT).context("QUIC idle timeout")?,
        ));
        let mut config = quinn::ClientConfig::new(Arc::new(quic));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }

    /// The HTTPS configuration of the probe server (server agent only; its certificate names
    /// [`PROBE_SERVER_NAME`]).
    pub fn probe_server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS versions with the ring provider")?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("the agent certificate and key do not form a server identity")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The HTTPS configuration of probes: trusts only the run CA; connect with
    /// [`probe_server_name`] whatever address is probed.
    pub fn probe_client_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS versions with the ring provider")?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The name HTTPS probes verify in the server's certificate.
pub fn probe_server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls_pki_types::DnsName::try_from(PROBE_SERVER_NAME)
            .expect("PROBE_SERVER_NAME is a valid DNS name")
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestPki;

    #[test]
    fn loads_the_run_pki_and_builds_every_configuration() {
        let pki = TestPki::new();
        let tls = RunTls::load(&pki.probe_server()).expect("loads");
        tls.control_client_config().expect("control client");
        tls.probe_server_config().expect("probe server");
        tls.probe_client_config().expect("probe client");
        assert_eq!(probe_server_name().to_str(), PROBE_SERVER_NAME);
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let pki = TestPki::new();
        let mut files = pki.client();
        files.key = pki.dir().join("absent.key");
        let error = RunTls::load(&files).expect_err("no key file");
        assert!(format!("{error:#}").contains("absent.key"), "{error:#}");
    }
}
