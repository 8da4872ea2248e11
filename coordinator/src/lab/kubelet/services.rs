//! ClusterIP Services as kube-proxy provides them to pods, for every Service of the cluster
//! (any namespace) that has a ClusterIP and a selector ([`endpoints::proxied`] says which):
//! the ClusterIP is put on the pod network (a /32 on the control namespace's bridge, as
//! [`Lab::add_service_address`](crate::lab::build::Lab::add_service_address) puts the
//! `kubernetes` Service's) while the Service exists, and each of its ports is served there —
//! TCP spliced ([`tcp`]), UDP relayed with a flow per client ([`udp`], [`flows`]) — to the
//! Service's ready endpoints. Pods reach the ClusterIP on their pod network: it is in the
//! control network's range (`tests/kube/control-plane`'s Service range is inside it), and
//! any other address takes a pod's default route, which leads into the control namespace.
//! The host namespace gets no route to any of it.
//!
//! Where the endpoints come from: the Endpoints objects (core/v1) the cluster's own
//! controller-manager writes for each Service with a selector — its pods that are Ready in
//! `addresses`, the others in `notReadyAddresses`, a named `targetPort` resolved per pod.
//! kube-proxy reads EndpointSlices today, written by the same controller-manager from the
//! same rules; but the local control plane the lab is tested with is Kubernetes 1.20, which
//! serves EndpointSlices only as `discovery.k8s.io/v1beta1`, a version the Kubernetes types
//! here (1.33's) do not have. Endpoints are served by both (deprecated, not removed, in
//! 1.33), and are what kube-proxy read before slices; reading the real controller's output
//! keeps its timing and its readiness rules, which matching pods here would only imitate.
//!
//! What kube-proxy does that is not emulated: NodePorts, external and load-balancer
//! addresses, `sessionAffinity: ClientIP`, traffic policies, SCTP, Services without a
//! selector (Endpoints written by hand), IPv6, endpoints that are hostNetwork pods (their
//! `podIP` in the lab is the nodes' loopback address, which the control namespace does not
//! share). The endpoint sees the control namespace's address as the client's (as behind
//! kube-proxy's userspace mode), not the pod's.
//!
//! Every socket here is made in the control namespace, whose only routes are the control
//! network's: whatever address an Endpoints object names, nothing leaves the lab.
//!
//! Everything here ends with [`Services::stop`]: every proxy, every connection and flow, and
//! the addresses it put on the control network.

pub mod endpoints;
pub mod flows;
mod tcp;
mod udp;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::endpoints::{Frontend, Protocol, Proxied, ServiceKey};
use super::Kubelet;
use crate::lab::net;

/// How long stopping waits for the proxies to end (each ends at once when told).
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The Services served, until [`Self::stop`].
#[derive(Debug)]
pub struct Services {
    /// Tells the watcher, and through it every proxy, to stop.
    stop: CancellationToken,
    /// The watcher: it takes the addresses off when its proxies have ended.
    task: tokio::task::JoinHandle<()>,
}

/// Starts serving the cluster's ClusterIP Services in the control namespace `ctl`.
pub fn start(kubelet: Arc<Kubelet>, ctl: String) -> Services {
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(kubelet, ctl, stop.clone()));
    Services { stop, task }
}

impl Services {
    /// Stops every proxy, connection and flow, and takes the Services' addresses off the
    /// control network.
    pub async fn stop(self) {
        self.stop.cancel();
        // The addresses go after the proxies: bounded twice over, so a stuck removal cannot
        // keep the lab from stopping.
        if tokio::time::timeout(STOP_WAIT * 2, self.task)
            .await
            .is_err()
        {
            tracing::warn!("Services still stopping after {:?}", STOP_WAIT * 2);
        }
    }
}

/// One port's proxy.
#[derive(Debug)]
struct Proxy {
    /// Its ready endpoints; dropping it ends the proxy too.
    endpoints: watch::Sender<Vec<SocketAddr>>,
    /// Ends it.
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// A Service being served.
#[derive(Debug)]
struct Served {
    ip: Ipv4Addr,
    proxies: BTreeMap<Frontend, Proxy>,
}

/// Watches Services and Endpoints and serves them until `stop`; then ends everything it
/// served.
async fn serve(kubelet: Arc<Kubelet>, ctl: String, stop: CancellationToken) {
    let (services, services_writer) = reflector::store::<Service>();
    let (endpoints, endpoints_writer) = reflector::store::<Endpoints>();
    let service_events = watcher(
        Api::<Service>::all(kubelet.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(services_writer)
    .map(|e| e.map(drop))
    .boxed();
    let endpoint_events = watcher(
        Api::<Endpoints>::all(kubelet.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(endpoints_writer)
    .map(|e| e.map(drop))
    .boxed();
    let mut events = futures::stream::select(service_events, endpoint_events);
    let mut served: BTreeMap<ServiceKey, Served> = BTreeMap::new();
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Err(e)) => tracing::warn!("watching Services and Endpoints: {e}"),
            Some(Ok(())) => {}
        }
        // Whatever else is waiting is taken too: one reconciliation for a burst.
        while let Some(Some(_)) = events.next().now_or_never() {}
        let wanted = wanted(&services, &endpoints);
        reconcile(&kubelet, &ctl, &mut served, wanted, &stop).await;
    }
    let keys: Vec<ServiceKey> = served.keys().cloned().collect();
    for key in keys {
        if let Some(service) = served.remove(&key) {
            end(&kubelet, &served, &key, service).await;
        }
    }
}

/// Every Service that is to be proxied now, as the stores have them.
fn wanted(
    services: &Store<Service>,
    endpoints: &Store<Endpoints>,
) -> BTreeMap<ServiceKey, Proxied> {
    services
        .state()
        .iter()
        .filter_map(|service| {
            let key = endpoints::key(service);
            let eps = endpoints.get(&ObjectRef::new(&key.1).within(&key.0));
            endpoints::proxied(service, eps.as_deref()).map(|p| (key, p))
        })
        .collect()
}

/// Brings what is served to `wanted`: Services gone (or with a new ClusterIP) ended, new ones
/// and new ports started, and every proxy given its endpoints. A port that cannot be served
/// now (its address taken, say) is said and tried again at the next change.
async fn reconcile(
    kubelet: &Kubelet,
    ctl: &str,
    served: &mut BTreeMap<ServiceKey, Served>,
    wanted: BTreeMap<ServiceKey, Proxied>,
    stop: &CancellationToken,
) {
    let ending: Vec<ServiceKey> = served
        .iter()
        .filter(|(key, s)| wanted.get(*key).is_none_or(|w| w.ip != s.ip))
        .map(|(key, _)| key.clone())
        .collect();
    for key in ending {
        if let Some(service) = served.remove(&key) {
            end(kubelet, served, &key, service).await;
        }
    }
    for (key, proxied) in wanted {
        if !served.contains_key(&key) {
            let ip = proxied.ip;
            if let Err(e) = kubelet
                .with_lab(move |lab| lab.add_service_address(ip))
                .await
            {
                tracing::warn!("Service {}/{}: {}", key.0, key.1, multinet_agent::chain(&e));
                continue;
            }
            tracing::info!("Service {}/{} served at {ip}", key.0, key.1);
            served.insert(
                key.clone(),
                Served {
                    ip,
                    proxies: BTreeMap::new(),
                },
            );
        }
        let Some(service) = served.get_mut(&key) else {
            continue;
        };
        let gone: Vec<Frontend> = service
            .proxies
            .keys()
            .filter(|f| !proxied.ports.contains_key(f))
            .copied()
            .collect();
        for frontend in gone {
            if let Some(proxy) = service.proxies.remove(&frontend) {
                end_proxy(proxy).await;
            }
        }
        for (frontend, ready) in proxied.ports {
            if let Some(proxy) = service.proxies.get(&frontend) {
                proxy.endpoints.send_if_modified(|current| {
                    let changed = *current != ready;
                    *current = ready;
                    changed
                });
                continue;
            }
            match start_proxy(ctl, service.ip, frontend, ready, stop.child_token()) {
                Ok(proxy) => {
                    service.proxies.insert(frontend, proxy);
                }
                Err(e) => tracing::warn!(
                    "Service {}/{} port {frontend}: {}",
                    key.0,
                    key.1,
                    multinet_agent::chain(&e)
                ),
            }
        }
    }
}

/// Why a port could not be served.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    /// No socket on the ClusterIP's port in the control namespace.
    #[error(transparent)]
    Bind(#[from] net::Error),
    /// The socket could not be handed to the runtime.
    #[error("the Service's socket")]
    Register(#[source] std::io::Error),
}

/// Starts serving `frontend` of `ip` in namespace `ns`, to `ready`.
fn start_proxy(
    ns: &str,
    ip: Ipv4Addr,
    frontend: Frontend,
    ready: Vec<SocketAddr>,
    stop: CancellationToken,
) -> Result<Proxy, ProxyError> {
    let address = SocketAddr::new(IpAddr::V4(ip), frontend.port);
    let (endpoints, rx) = watch::channel(ready);
    let task = match frontend.protocol {
        Protocol::Tcp => {
            let listener = net::tcp_listener_in(ns, address)?;
            listener
                .set_nonblocking(true)
                .map_err(ProxyError::Register)?;
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(ProxyError::Register)?;
            tokio::spawn(tcp::splice(listener, ns.to_string(), rx, stop.clone()))
        }
        Protocol::Udp => {
            let socket = net::udp_socket_in(ns, address)?;
            socket.set_nonblocking(true).map_err(ProxyError::Register)?;
            let socket = tokio::net::UdpSocket::from_std(socket).map_err(ProxyError::Register)?;
            tokio::spawn(udp::relay(socket, ns.to_string(), rx, stop.clone()))
        }
    };
    Ok(Proxy {
        endpoints,
        stop,
        task,
    })
}

/// Ends a proxy and waits for it (its connections and flows end with it).
async fn end_proxy(proxy: Proxy) {
    proxy.stop.cancel();
    drop(proxy.endpoints);
    let mut task = proxy.task;
    if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
        task.abort();
    }
}

/// Ends a Service's proxies, then takes its address off the control network unless another
/// Service served (`others`) has the same one.
async fn end(
    kubelet: &Kubelet,
    others: &BTreeMap<ServiceKey, Served>,
    key: &ServiceKey,
    service: Served,
) {
    for (_, proxy) in service.proxies {
        end_proxy(proxy).await;
    }
    let ip = service.ip;
    if others.values().any(|s| s.ip == ip) {
        return;
    }
    match kubelet
        .with_lab(move |lab| lab.remove_service_address(ip))
        .await
    {
        Ok(()) => tracing::info!("Service {}/{} no longer served at {ip}", key.0, key.1),
        Err(e) => tracing::warn!("Service {}/{}: {}", key.0, key.1, multinet_agent::chain(&e)),
    }
}
