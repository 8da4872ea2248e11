//! The run's PKI as the agent uses it: the run CA is the only trust anchor, and the agent's own
//! certificate serves both as its control-plane client certificate and, for the server agent,
//! as the HTTPS certificate of the probe server.
//!
//! Owns PEM loading and the three TLS configurations; opens no sockets.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// Why the run's TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PEM file cannot be read or parsed.
    #[error("reading {what} from {}", path.display())]
    Read {
        /// What was expected in it (`PEM certificates`, `the PEM private key`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The run CA is not usable as a trust anchor.
    #[error("run CA in {} is not usable", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused a configuration (versions, or the certificate and key as an identity).
    #[error("{what}")]
    Config {
        /// Which configuration, and what of it.
        what: &'static str,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The control plane's TLS configuration is not usable for QUIC.
    #[error("control-plane TLS configuration is not usable for QUIC")]
    Quic(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn config_error(what: &'static str) -> impl FnOnce(rustls::Error) -> Error {
    move |source| Error::Config { what, source }
}

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

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|source| Error::Read {
            what: "PEM certificates",
            path: path.to_path_buf(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(Error::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

impl RunTls {
    /// Reads the CA, certificate and key files.
    ///
    /// # Errors
    ///
    /// A file cannot be read or holds no usable PEM object; the CA is not a usable anchor.
    pub fn load(files: &TlsFiles) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certificates(&files.ca)? {
            roots.add(ca).map_err(|source| Error::Ca {
                path: files.ca.clone(),
                source,
            })?;
        }
        let chain = read_certificates(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| Error::Read {
            what: "the PEM private key",
            path: files.key.clone(),
            source,
        })?;
        Ok(Self {
            roots: Arc::new(roots),
            chain,
            key,
        })
    }

    /// The QUIC client configuration of the control plane: mutual TLS against the run CA, ALPN
    /// [`ALPN`]. The caller connects with server name [`multinet_proto::control::COORDINATOR_NAME`].
    ///
    /// # Errors
    ///
    /// rustls refuses TLS 1.3 with ring, or the certificate and key as a client identity.
    pub fn control_client_config(&self) -> Result<quinn::ClientConfig> {
        let mut crypto = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error("TLS 1.3 with the ring provider"))?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(config_error(
                "the agent certificate and key do not form a client identity",
            ))?;
        crypto.alpn_protocols = vec![ALPN.to_vec()];
        let quic =
            quinn::crypto::rustls::QuicClientConfig::try_from(crypto).map_err(Error::Quic)?;
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(QUIC_KEEP_ALIVE));
        // 5 s is far below QUIC's 2^62 µs bound: the conversion cannot fail.
        transport.max_idle_timeout(quinn::IdleTimeout::try_from(QUIC_IDLE_TIMEOUT).ok());
        let mut config = quinn::ClientConfig::new(Arc::new(quic));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }

    /// The HTTPS configuration of the probe server (server agent only; its certificate names
    /// [`PROBE_SERVER_NAME`]).
    ///
    /// # Errors
    ///
    /// rustls refuses the versions, or the certificate and key as a server identity.
    pub fn probe_server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error("TLS versions with the ring provider"))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(config_error(
                "the agent certificate and key do not form a server identity",
            ))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The HTTPS configuration of probes: trusts only the run CA; connect with
    /// [`probe_server_name`] whatever address is probed.
    ///
    /// # Errors
    ///
    /// rustls refuses the versions with the ring provider.
    pub fn probe_client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error("TLS versions with the ring provider"))?
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
