//! Container logs as the kubelet serves them to the API server: `GET
//! /containerLogs/{namespace}/{pod}/{container}` with `follow`, `timestamps`, `tailLines`,
//! `limitBytes`, `sinceSeconds`, `sinceTime` and `previous` (Kubernetes
//! `pkg/kubelet/server/server.go`, `getContainerLogs`; `pkg/kubelet/kuberuntime/logs`), over TLS
//! on loopback, the API server's client certificate verified against the cluster's CA (the
//! kubelet's `--client-ca-file`). This is what `kubectl logs -f` and `pods/log` read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::jiff::Timestamp;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

use super::Kubelet;

/// Why the kubelet endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint was asked to listen off loopback.
    #[error("the kubelet endpoint listens on loopback only")]
    NotLoopback {
        /// The address asked for.
        address: IpAddr,
    },
    /// The endpoint could not listen.
    #[error("the kubelet endpoint")]
    Listen {
        /// Where it was to listen.
        address: IpAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its self-signed serving certificate could not be made.
    #[error("the kubelet endpoint's certificate")]
    Certificate(#[source] rcgen::Error),
    /// Its TLS configuration was refused (a CA certificate, the protocol versions, the key).
    #[error("the kubelet endpoint's TLS configuration")]
    Tls(#[source] rustls::Error),
    /// The client-certificate verifier could not be made from the cluster's CA.
    #[error("the kubelet endpoint's client-certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// The kubeconfig gives no CA to verify the API server's client certificate with.
    #[error(
        "the kubeconfig names no CA for its cluster (the kubelet endpoint verifies the API server's client certificate with it)"
    )]
    NoClusterCa,
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a container's logs are, by `(namespace, pod, container)`.
#[derive(Debug, Default)]
pub struct LogIndex {
    entries: Mutex<HashMap<(String, String, String), ContainerLogs>>,
}

/// One container's log files.
#[derive(Debug, Clone)]
pub struct ContainerLogs {
    /// The pod's uid (a pod of the same name that replaces it has its own logs).
    pub uid: String,
    /// The pod's directory.
    pub pod_dir: PathBuf,
    /// The current start's number.
    pub restart: i32,
    /// Whether the current start still runs (a follow ends when it stops).
    pub running: bool,
}

impl LogIndex {
    /// Records a container's current start.
    pub fn set(&self, ns: &str, pod: &str, container: &str, logs: ContainerLogs) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert((ns.into(), pod.into(), container.into()), logs);
        }
    }
    /// Forgets pod `uid` (it was deleted); a newer pod of the same name keeps its logs.
    pub fn remove_pod(&self, ns: &str, pod: &str, uid: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|(n, p, _), logs| !(n == ns && p == pod && logs.uid == uid));
        }
    }
    fn get(&self, ns: &str, pod: &str, container: &str) -> Option<ContainerLogs> {
        self.entries
            .lock()
            .ok()?
            .get(&(ns.into(), pod.into(), container.into()))
            .cloned()
    }
}

/// The line's content without the CRI prefix (`<time> <stream> <tag> `).
pub fn content(line: &str) -> Option<&str> {
    let mut parts = line.splitn(4, ' ');
    let (_, _, _) = (parts.next()?, parts.next()?, parts.next()?);
    Some(parts.next().unwrap_or_default())
}

fn stamp(line: &str) -> Option<Timestamp> {
    line.split(' ').next()?.parse().ok()
}

/// The log server: its port, and the task serving it.
#[derive(Debug)]
pub struct LogServer {
    /// The port (`status.daemonEndpoints.kubeletEndpoint.Port`).
    pub port: u16,
    /// The serving task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the log server on `address` (loopback), a free port.
pub async fn start(kubelet: Arc<Kubelet>, address: IpAddr) -> Result<LogServer> {
    if !address.is_loopback() {
        return Err(Error::NotLoopback { address });
    }
    let tls = Arc::new(tls_config(&kubelet)?);
    let listen = |source| Error::Listen { address, source };
    let listener = TcpListener::bind(SocketAddr::new(address, 0))
        .await
        .map_err(listen)?;
    let port = listener.local_addr().map_err(listen)?.port();
    let task = tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, say: let connections end before trying again.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (acceptor, kubelet) = (acceptor.clone(), kubelet.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    let kubelet = kubelet.clone();
                    async move { Ok::<_, Infallible>(handle(&kubelet, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(LogServer { port, task })
}

/// A self-signed serving certificate (as a kubelet without `serverTLSBootstrap`), client
/// certificates required and verified against the kubeconfig's CA.
fn tls_config(kubelet: &Kubelet) -> Result<rustls::ServerConfig> {
    let provider = crate::pki::provider();
    let key = rcgen::KeyPair::generate().map_err(Error::Certificate)?;
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .and_then(|params| params.self_signed(&key))
        .map_err(Error::Certificate)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in &kubelet.client_ca {
        roots.add(ca.clone()).map_err(Error::Tls)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(Error::Verifier)?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(Error::Tls)
}

/// The CA certificates `config` trusts for its cluster (DER): the kubelet endpoint verifies
/// the API server's client certificate with them.
pub fn cluster_ca(config: &kube::Config) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = config
        .root_cert
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    if certs.is_empty() {
        return Err(Error::NoClusterCa);
    }
    Ok(certs)
}

type Body = BoxBody<Bytes, Infallible>;

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text)).boxed());
    *r.status_mut() = status;
    r
}

/// What a log request asks for.
#[derive(Debug, Default, PartialEq)]
struct Query {
    follow: bool,
    timestamps: bool,
    previous: bool,
    tail_lines: Option<usize>,
    limit_bytes: Option<usize>,
    since: Option<Timestamp>,
}

fn parse_query(q: &str) -> Query {
    let mut out = Query::default();
    for (k, v) in q.split('&').filter_map(|kv| kv.split_once('=')) {
        let v = v.replace("%3A", ":").replace("%3a", ":");
        match k {
            "follow" => out.follow = v == "true",
            "timestamps" => out.timestamps = v == "true",
            "previous" => out.previous = v == "true",
            "tailLines" => out.tail_lines = v.parse().ok(),
            "limitBytes" => out.limit_bytes = v.parse().ok(),
            "sinceTime" => out.since = v.parse().ok(),
            "sinceSeconds" => {
                out.since = v.parse::<i64>().ok().and_then(|s| {
                    Timestamp::now()
                        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(s))
                        .ok()
                });
            }
            _ => {}
        }
    }
    out
}

fn render(line: &str, q: &Query) -> Option<String> {
    if let (Some(since), Some(at)) = (q.since, stamp(line))
        && at < since
    {
        return None;
    }
    let text = content(line)?;
    Some(if q.timestamps {
        format!("{} {text}\n", line.split(' ').next().unwrap_or_default())
    } else {
        format!("{text}\n")
    })
}

async fn handle(kubelet: &Kubelet, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["containerLogs", ns, pod, container] = parts.as_slice() else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("the lab serves only /containerLogs, not {path}"),
        );
    };
    let q = parse_query(req.uri().query().unwrap_or_default());
    let Some(entry) = kubelet.logs.get(ns, pod, container) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("container {container:?} in pod {ns}/{pod} has no logs on this node"),
        );
    };
    // `previous` is the last ended start (`lastState`): the current number while the
    // container waits to restart, the one before while it runs.
    let restart = match (q.previous, entry.running) {
        (false, _) | (true, false) => entry.restart,
        (true, true) => entry.restart - 1,
    };
    if restart < 0 {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("previous terminated container {container:?} in pod {pod:?} not found"),
        );
    }
    let file = super::container::log_path(&entry.pod_dir, container, restart);
    let (mut lines, complete) = read_from(&file, 0, &q).await;
    if let Some(n) = q.tail_lines {
        lines.drain(..lines.len().saturating_sub(n));
    }
    let mut first: String = lines.concat();
    if let Some(limit) = q.limit_bytes {
        first.truncate(
            (0..=limit.min(first.len()))
                .rev()
                .find(|i| first.is_char_boundary(*i))
                .unwrap_or(0),
        );
    }
    if !q.follow || q.previous {
        return Response::new(Full::new(Bytes::from(first)).boxed());
    }
    // Follow: what is there, then what is appended, until this start of the container ends.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    let index = (ns.to_string(), pod.to_string(), container.to_string());
    let logs = kubelet.logs.clone();
    tokio::spawn(async move {
        if tx.send(Ok(Frame::data(Bytes::from(first)))).await.is_err() {
            return;
        }
        let mut offset = complete;
        // Read through one open handle: a pod deleted at once (its directory removed with its
        // logs) still has its last lines read, as a real kubelet's follower has them streamed.
        let mut open = tokio::fs::File::open(&file).await.ok();
        loop {
            let ended = logs
                .get(&index.0, &index.1, &index.2)
                .is_none_or(|e| !e.running || e.restart != restart);
            if open.is_none() {
                open = tokio::fs::File::open(&file).await.ok();
            }
            let (lines, next) = match open.as_mut() {
                Some(f) => read_open(f, offset, &q).await,
                None => (Vec::new(), offset),
            };
            let chunk = lines.concat();
            offset = next;
            if !chunk.is_empty() && tx.send(Ok(Frame::data(Bytes::from(chunk)))).await.is_err() {
                return;
            }
            if ended {
                return;
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

/// The complete lines of `file` from byte `offset` on, rendered; and the offset after them.
async fn read_from(file: &std::path::Path, offset: u64, q: &Query) -> (Vec<String>, u64) {
    let Ok(mut f) = tokio::fs::File::open(file).await else {
        return (Vec::new(), offset);
    };
    read_open(&mut f, offset, q).await
}

/// [`read_from`] an open file.
async fn read_open(f: &mut tokio::fs::File, offset: u64, q: &Query) -> (Vec<String>, u64) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return (Vec::new(), offset);
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).await.is_err() {
        return (Vec::new(), offset);
    }
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let chunk = text.lines().filter_map(|l| render(l, q)).collect();
    (chunk, offset + complete as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "2026-11-30T01:02:03.000000004Z stderr F multinet: hello world";

    #[test]
    fn a_cri_line_gives_its_content_and_its_time_when_asked() {
        assert_eq!(content(LINE), Some("multinet: hello world"));
        let q = Query::default();
        assert_eq!(render(LINE, &q).as_deref(), Some("multinet: hello world\n"));
        let q = Query {
            timestamps: true,
            ..Query::default()
        };
        assert_eq!(
            render(LINE, &q).as_deref(),
            Some("2026-11-30T01:02:03.000000004Z multinet: hello world\n")
        );
        let q = parse_query("sinceTime=2026-11-30T01%3A02%3A04Z&follow=true&tailLines=5");
        assert!(q.follow);
        assert_eq!(q.tail_lines, Some(5));
        assert_eq!(
            render(LINE, &q),
            None,
            "a line before sinceTime is left out"
        );
    }
}
