//! Which Services are proxied and to where, from the API objects alone (pure: no sockets, no
//! client): a Service and its Endpoints become a ClusterIP with, per port, the ready
//! endpoints' addresses; and the choice of an endpoint for a new connection or flow.
//!
//! Rules followed (kube-proxy, `pkg/proxy/servicechangetracker.go` and
//! `pkg/proxy/endpointschangetracker.go`; `pkg/controller/endpoint`, which resolves a named
//! `targetPort` per pod and puts pods that are not Ready in `notReadyAddresses`): a Service is
//! proxied when it has a ClusterIP (not headless `None`, not `ExternalName`) and a selector;
//! each of its TCP and UDP ports is matched to the Endpoints ports of the same name and
//! protocol; only `addresses` (ready) are used.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::{Endpoints, Service};

/// A transport kube-proxy proxies here (SCTP is not emulated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Spliced connections.
    Tcp,
    /// Relayed datagrams, a flow per client address.
    Udp,
}

impl Protocol {
    /// The protocol a Service or Endpoints port names (`TCP` when it names none).
    fn of(name: Option<&str>) -> Option<Self> {
        match name.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// A port of a Service's ClusterIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frontend {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The Service's `port`.
    pub port: u16,
}

impl std::fmt::Display for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// A Service as it is proxied: its ClusterIP and, per port, the ready endpoints (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxied {
    /// The ClusterIP (IPv4: the pod network has no IPv6).
    pub ip: Ipv4Addr,
    /// Each port's endpoints, `IP:targetPort` (empty while no endpoint is ready).
    pub ports: BTreeMap<Frontend, Vec<SocketAddr>>,
}

/// `namespace/name` of a Service (and of its Endpoints, which share the name).
pub type ServiceKey = (String, String);

/// The key of `service`.
pub fn key(service: &Service) -> ServiceKey {
    (
        service.metadata.namespace.clone().unwrap_or_default(),
        service.metadata.name.clone().unwrap_or_default(),
    )
}

/// Whether a Service is the API server's own, which [`crate::lab::kubelet::forward`] serves.
fn is_api_service(key: &ServiceKey) -> bool {
    key.0 == "default" && key.1 == "kubernetes"
}

/// How `service` is proxied with `endpoints` (its Endpoints object, if there is one yet);
/// `None` for a Service kube-proxy gives no ClusterIP rules here: headless, `ExternalName`,
/// without a selector, IPv6 only, or the `kubernetes` Service.
pub fn proxied(service: &Service, endpoints: Option<&Endpoints>) -> Option<Proxied> {
    if is_api_service(&key(service)) {
        return None;
    }
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
        return None;
    }
    let ip = spec
        .cluster_ip
        .iter()
        .chain(spec.cluster_ips.iter().flatten())
        .find_map(|ip| ip.parse::<Ipv4Addr>().ok())?;
    let mut ports = BTreeMap::new();
    for port in spec.ports.iter().flatten() {
        let (Some(protocol), Ok(number)) = (
            Protocol::of(port.protocol.as_deref()),
            u16::try_from(port.port),
        ) else {
            continue;
        };
        let name = port.name.as_deref().unwrap_or_default();
        let mut ready: Vec<SocketAddr> = endpoints
            .and_then(|e| e.subsets.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|subset| {
                let target = subset.ports.iter().flatten().find(|p| {
                    p.name.as_deref().unwrap_or_default() == name
                        && Protocol::of(p.protocol.as_deref()) == Some(protocol)
                });
                let target = target.and_then(|p| u16::try_from(p.port).ok());
                subset
                    .addresses
                    .iter()
                    .flatten()
                    .filter_map(move |a| Some((a.ip.parse::<Ipv4Addr>().ok()?, target?)))
            })
            .map(|(ip, port)| SocketAddr::new(IpAddr::V4(ip), port))
            .collect();
        ready.sort();
        ready.dedup();
        ports.insert(
            Frontend {
                protocol,
                port: number,
            },
            ready,
        );
    }
    Some(Proxied { ip, ports })
}

/// Round robin over a port's endpoints, as kube-proxy's userspace load balancer chose
/// (`pkg/proxy/userspace/roundrobin.go`): each new connection or flow takes the next.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// How many were chosen so far.
    next: usize,
}

impl RoundRobin {
    /// The endpoint for the next connection or flow; `None` when none is ready.
    pub fn pick(&mut self, endpoints: &[SocketAddr]) -> Option<SocketAddr> {
        if endpoints.is_empty() {
            return None;
        }
        let chosen = endpoints[self.next % endpoints.len()];
        self.next = self.next.wrapping_add(1);
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        EndpointAddress, EndpointPort, EndpointSubset, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn service(name: &str, cluster_ip: &str, ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("soak".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.into()),
                selector: Some(BTreeMap::from([("app".into(), "coordinator".into())])),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn port(name: &str, protocol: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            protocol: Some(protocol.into()),
            port,
            target_port: Some(target),
            ..ServicePort::default()
        }
    }

    fn address(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..EndpointAddress::default()
        }
    }

    fn endpoint_port(name: &str, protocol: &str, port: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            protocol: Some(protocol.into()),
            port,
            ..EndpointPort::default()
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a socket address")
    }

    fn frontend(protocol: Protocol, port: u16) -> Frontend {
        Frontend { protocol, port }
    }

    #[test]
    fn each_port_gets_the_ready_addresses_at_the_port_number_the_endpoints_give_it() {
        // QUIC on a named targetPort, HTTP on a numeric one; the controller has resolved both.
        let svc = service(
            "coordinator",
            "198.19.255.20",
            vec![
                port("quic", "UDP", 7443, IntOrString::String("control".into())),
                port("http", "TCP", 80, IntOrString::Int(8080)),
            ],
        );
        let endpoints = Endpoints {
            subsets: Some(vec![
                EndpointSubset {
                    addresses: Some(vec![address("198.19.0.105"), address("198.19.0.102")]),
                    not_ready_addresses: Some(vec![address("198.19.0.109")]),
                    ports: Some(vec![
                        endpoint_port("quic", "UDP", 7000),
                        endpoint_port("http", "TCP", 8080),
                    ]),
                },
                // A pod whose named port resolves to another number (the controller puts it
                // in a subset of its own).
                EndpointSubset {
                    addresses: Some(vec![address("198.19.0.107")]),
                    ports: Some(vec![endpoint_port("quic", "UDP", 7001)]),
                    ..EndpointSubset::default()
                },
            ]),
            ..Endpoints::default()
        };
        let proxied = proxied(&svc, Some(&endpoints)).expect("proxied");
        assert_eq!(proxied.ip, Ipv4Addr::new(198, 19, 255, 20));
        assert_eq!(
            proxied.ports,
            BTreeMap::from([
                (
                    frontend(Protocol::Tcp, 80),
                    vec![addr("198.19.0.102:8080"), addr("198.19.0.105:8080")]
                ),
                (
                    frontend(Protocol::Udp, 7443),
                    vec![
                        addr("198.19.0.102:7000"),
                        addr("198.19.0.105:7000"),
                        addr("198.19.0.107:7001")
                    ]
                ),
            ])
        );
    }

    #[test]
    fn a_port_with_no_ready_endpoint_is_proxied_with_none() {
        let svc = service(
            "coordinator",
            "198.19.255.20",
            vec![port("quic", "UDP", 7443, IntOrString::Int(7443))],
        );
        let only_not_ready = Endpoints {
            subsets: Some(vec![EndpointSubset {
                not_ready_addresses: Some(vec![address("198.19.0.105")]),
                ports: Some(vec![endpoint_port("quic", "UDP", 7443)]),
                ..EndpointSubset::default()
            }]),
            ..Endpoints::default()
        };
        for endpoints in [None, Some(&only_not_ready)] {
            let proxied = proxied(&svc, endpoints).expect("proxied");
            assert_eq!(
                proxied.ports,
                BTreeMap::from([(frontend(Protocol::Udp, 7443), vec![])])
            );
        }
    }

    #[test]
    fn a_port_matches_only_the_endpoints_port_of_its_own_protocol_and_name() {
        let svc = service(
            "dns",
            "198.19.255.10",
            vec![
                port("dns", "UDP", 53, IntOrString::Int(53)),
                port("dns-tcp", "TCP", 53, IntOrString::Int(53)),
            ],
        );
        let endpoints = Endpoints {
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![address("198.19.0.103")]),
                ports: Some(vec![endpoint_port("dns", "UDP", 5353)]),
                ..EndpointSubset::default()
            }]),
            ..Endpoints::default()
        };
        let proxied = proxied(&svc, Some(&endpoints)).expect("proxied");
        assert_eq!(
            proxied.ports[&frontend(Protocol::Udp, 53)],
            vec![addr("198.19.0.103:5353")]
        );
        assert_eq!(proxied.ports[&frontend(Protocol::Tcp, 53)], vec![]);
    }

    #[test]
    fn headless_selectorless_external_name_ipv6_and_the_api_services_are_not_proxied() {
        let ports = || vec![port("p", "TCP", 80, IntOrString::Int(80))];
        let headless = service("h", "None", ports());
        assert_eq!(proxied(&headless, None), None);
        let mut selectorless = service("s", "198.19.255.30", ports());
        if let Some(spec) = selectorless.spec.as_mut() {
            spec.selector = None;
        }
        assert_eq!(proxied(&selectorless, None), None);
        let mut external = service("e", "", ports());
        if let Some(spec) = external.spec.as_mut() {
            spec.type_ = Some("ExternalName".into());
        }
        assert_eq!(proxied(&external, None), None);
        let v6 = service("v6", "fd00::10", ports());
        assert_eq!(proxied(&v6, None), None);
        let mut api = service("kubernetes", "198.19.255.1", ports());
        api.metadata.namespace = Some("default".into());
        assert_eq!(proxied(&api, None), None);
        // A dual-stack Service is proxied on its IPv4 address.
        let mut dual = service("d", "fd00::11", ports());
        if let Some(spec) = dual.spec.as_mut() {
            spec.cluster_ips = Some(vec!["fd00::11".into(), "198.19.255.31".into()]);
        }
        assert_eq!(
            proxied(&dual, None).map(|p| p.ip),
            Some(Ipv4Addr::new(198, 19, 255, 31))
        );
    }

    #[test]
    fn sctp_ports_are_left_out_and_an_unnamed_port_matches_the_unnamed_endpoints_port() {
        let mut unnamed = port("", "TCP", 80, IntOrString::Int(8080));
        unnamed.name = None;
        let svc = service(
            "web",
            "198.19.255.40",
            vec![unnamed, port("s", "SCTP", 9, IntOrString::Int(9))],
        );
        let endpoints = Endpoints {
            subsets: Some(vec![EndpointSubset {
                addresses: Some(vec![address("198.19.0.110")]),
                ports: Some(vec![EndpointPort {
                    port: 8080,
                    ..EndpointPort::default()
                }]),
                ..EndpointSubset::default()
            }]),
            ..Endpoints::default()
        };
        let proxied = proxied(&svc, Some(&endpoints)).expect("proxied");
        assert_eq!(
            proxied.ports,
            BTreeMap::from([(frontend(Protocol::Tcp, 80), vec![addr("198.19.0.110:8080")])])
        );
    }

    #[test]
    fn round_robin_takes_each_endpoint_in_turn_and_none_from_an_empty_list() {
        let mut rr = RoundRobin::default();
        let endpoints = [addr("198.19.0.102:7443"), addr("198.19.0.105:7443")];
        let picks: Vec<_> = (0..4).filter_map(|_| rr.pick(&endpoints)).collect();
        assert_eq!(
            picks,
            [endpoints[0], endpoints[1], endpoints[0], endpoints[1]]
        );
        assert_eq!(rr.pick(&[]), None);
        // The list shrinking keeps the choice inside it.
        assert_eq!(rr.pick(&endpoints[..1]), Some(endpoints[0]));
    }
}
