//! The run's PKI: a CA made for this run only, the coordinator's certificate, and one client
//! certificate per agent (the server agent's also serves its HTTPS probes). Agents trust only
//! this CA; the coordinator accepts only certificates it signed. Nothing outlives the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use multinet_proto::assignment::TlsFiles;
use multinet_proto::control::{ALPN, COORDINATOR_NAME, PROBE_SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why the run's PKI could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen could not make a key or a certificate.
    #[error("making {what}")]
    Issue {
        /// What was being made.
        what: &'static str,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// A PEM file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// rustls refused the coordinator's TLS configuration.
    #[error("the coordinator's TLS configuration: {what}")]
    Tls {
        /// Which part.
        what: &'static str,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built.
    #[error("the coordinator's client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// A resumed run's PKI was asked to issue a certificate: it keeps no CA key.
    #[error("a resumed run issues no certificate (the run CA's key is not kept)")]
    Resumed,
    /// A checkpoint's PKI part is not base64.
    #[error("the checkpoint's {what} is not base64")]
    State {
        /// Which part.
        what: &'static str,
        /// Why.
        #[source]
        source: base64::DecodeError,
    },
    /// The TLS configuration is not usable for QUIC.
    #[error("the coordinator's TLS configuration is not usable for QUIC")]
    Quic(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn issuing(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |source| Error::Issue { what, source }
}

fn tls(what: &'static str) -> impl FnOnce(rustls::Error) -> Error {
    move |source| Error::Tls { what, source }
}

fn write(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The run CA and the coordinator's certificate.
#[derive(Debug)]
pub struct RunPki {
    /// The CA that issues agents' certificates; `None` in a resumed run, whose agents have
    /// theirs already ([`Self::restore`]).
    ca: Option<CertifiedIssuer<'static, KeyPair>>,
    ca_der: CertificateDer<'static>,
    coordinator_cert: CertificateDer<'static>,
    coordinator_key: Vec<u8>,
}

/// What a resumed run needs of the PKI: the CA certificate (to verify the agents) and the
/// coordinator's certificate and key (the agents verify it against the CA they have), DER.
/// The CA's key is not kept: a resumed run issues no certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PkiState {
    /// The CA certificate, DER, base64.
    pub ca: String,
    /// The coordinator's certificate, DER, base64.
    pub certificate: String,
    /// The coordinator's PKCS #8 key, DER, base64.
    pub key: String,
}

/// The provider every TLS config of the coordinator uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn leaf_params(common_name: &str, names: Vec<String>, server: bool) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(names).map_err(issuing("certificate names"))?;
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
    ///
    /// # Errors
    ///
    /// rcgen cannot make a key or sign a certificate.
    pub fn new(run_id: &str) -> Result<Self> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(issuing("the run CA"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("multinet run {run_id} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(issuing("the run CA's key"))?;
        let ca = CertifiedIssuer::self_signed(params, ca_key).map_err(issuing("the run CA"))?;
        let key = KeyPair::generate().map_err(issuing("the coordinator's key"))?;
        let cert = leaf_params("multinet coordinator", vec![COORDINATOR_NAME.into()], true)?
            .signed_by(&key, &ca)
            .map_err(issuing("the coordinator's certificate"))?;
        Ok(Self {
            coordinator_cert: cert.der().clone(),
            coordinator_key: key.serialize_der(),
            ca_der: ca.der().clone(),
            ca: Some(ca),
        })
    }

    /// What a resumed run needs ([`PkiState`]).
    pub fn state(&self) -> PkiState {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        PkiState {
            ca: b64(&self.ca_der),
            certificate: b64(&self.coordinator_cert),
            key: b64(&self.coordinator_key),
        }
    }

    /// The PKI of a resumed run: it verifies agents and serves the control plane as before,
    /// and issues nothing ([`Error::Resumed`]).
    ///
    /// # Errors
    ///
    /// A part that is not base64 ([`Error::State`]); whether the DER is a certificate and a
    /// key is found when the control plane's TLS configuration is made.
    pub fn restore(state: &PkiState) -> Result<Self> {
        use base64::Engine as _;
        let bytes = |what: &'static str, text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|source| Error::State { what, source })
        };
        Ok(Self {
            ca: None,
            ca_der: CertificateDer::from(bytes("ca", &state.ca)?),
            coordinator_cert: CertificateDer::from(bytes("certificate", &state.certificate)?),
            coordinator_key: bytes("key", &state.key)?,
        })
    }

    fn issuer(&self) -> Result<&CertifiedIssuer<'static, KeyPair>> {
        self.ca.as_ref().ok_or(Error::Resumed)
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// Issues an agent's certificate and writes CA, certificate and key as PEM files into
    /// `dir` (owner-only permissions); the server agent's certificate also names
    /// [`PROBE_SERVER_NAME`] for its HTTPS probes.
    pub fn write_agent_files(&self, dir: &Path, pod: &str, server: bool) -> Result<TlsFiles> {
        let mut names = vec![format!("{pod}.agent.multinet.invalid")];
        if server {
            names.push(PROBE_SERVER_NAME.into());
        }
        let key = KeyPair::generate().map_err(issuing("an agent's key"))?;
        let cert = leaf_params(pod, names, server)?
            .signed_by(&key, self.issuer()?)
            .map_err(issuing("an agent's certificate"))?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{pod}.crt.pem")),
            key: dir.join(format!("{pod}.key.pem")),
        };
        if !files.ca.exists() {
            std::fs::write(&files.ca, self.issuer()?.pem()).map_err(write(&files.ca))?;
        }
        std::fs::write(&files.cert, cert.pem()).map_err(write(&files.cert))?;
        write_private(&files.key, key.serialize_pem().as_bytes())?;
        Ok(files)
    }

    /// One certificate for every agent of a Kubernetes run, PEM: (CA, certificate, key). It
    /// proves membership of the run (identity travels in the Hello), and it also serves the
    /// server agent's HTTPS probes; one Secret then serves every pod.
    pub fn shared_agent_pem(&self) -> Result<(String, String, String)> {
        let key = KeyPair::generate().map_err(issuing("the agents' key"))?;
        let cert = leaf_params(
            "multinet agent",
            vec!["agent.multinet.invalid".into(), PROBE_SERVER_NAME.into()],
            true,
        )?
        .signed_by(&key, self.issuer()?)
        .map_err(issuing("the agents' certificate"))?;
        Ok((self.issuer()?.pem(), cert.pem(), key.serialize_pem()))
    }

    /// The QUIC server configuration: TLS 1.3, ALPN, client certificates required and
    /// verified against the run CA only.
    pub fn quic_server_config(&self) -> Result<quinn::ServerConfig> {
        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der())
            .map_err(tls("the run CA as a trust anchor"))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(Error::Verifier)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.coordinator_key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls("TLS 1.3 with the ring provider"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.coordinator_cert.clone()], key)
            .map_err(tls("the coordinator's certificate and key"))?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(config).map_err(Error::Quic)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        // 10 s is far below QUIC's 2^62 µs bound: the conversion cannot fail.
        transport.max_idle_timeout(std::time::Duration::from_secs(10).try_into().ok());
        transport.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .map_err(write(path))
}
