//! Where probes leave from: for each network the agent probes, the kernel's route lookup for
//! the server's address, made as the probes are made — bound to the network's interface where
//! the agent has one (a client's NAD interface), by the host's routing otherwise (a host
//! checker). A connected UDP socket sends nothing: `connect` only looks the route up and picks
//! the source address, which Linux takes from the outgoing interface; the interface holding
//! that address is reported with it ([`multinet_proto::control::EgressReport`]).
//!
//! The lookup leaves the source unbound on purpose: a probe bound to its source address leaves
//! by whichever interface the route names (Linux's weak host model), and an unbound lookup
//! shows that interface. Policy routing by source address is not seen. Owns no long-lived
//! socket; touches nothing else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::{AgentIdentity, Egress, EgressReport, Listener, Role};
use multinet_proto::network::CephNetwork;

/// The source address and the interface holding it that the kernel picks for `target`,
/// bound to `device` when given (a device the kernel refuses to bind to is looked up without:
/// the probes then go without it too, see the prober). `(None, None)`: no route.
pub async fn route(target: SocketAddr, device: Option<&str>) -> (Option<IpAddr>, Option<String>) {
    let any: IpAddr = if target.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let Ok(socket) = tokio::net::UdpSocket::bind(SocketAddr::new(any, 0)).await else {
        return (None, None);
    };
    if let Some(device) = device {
        let _ = socket.bind_device(Some(device.as_bytes()));
    }
    if socket.connect(target).await.is_err() {
        return (None, None);
    }
    let Ok(local) = socket.local_addr() else {
        return (None, None);
    };
    let source = local.ip();
    (Some(source), interface_holding(source))
}

/// The interface of this network namespace that holds `addr`.
pub fn interface_holding(addr: IpAddr) -> Option<String> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|entry| {
        let held = entry.address.and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })?;
        (held == addr).then_some(entry.interface_name)
    })
}

/// The networks an agent probes and the interface each is bound to: a client's NAD
/// interfaces, a host checker's public network by the host's routing; a server probes none.
pub fn probed(
    identity: &AgentIdentity,
    addresses: &[NetworkAddress],
) -> Vec<(CephNetwork, Option<String>)> {
    match identity.role {
        Role::Server => Vec::new(),
        Role::HostCheck => vec![(CephNetwork::Public, None)],
        Role::Client => identity
            .networks
            .iter()
            .map(|&network| {
                let device = addresses
                    .iter()
                    .find(|a| a.network == network)
                    .and_then(|a| a.interface.clone());
                (network, device)
            })
            .collect(),
    }
}

/// The agent's egress toward every listener of the networks it probes, and its control
/// plane's toward `coordinator`.
pub async fn report(
    identity: &AgentIdentity,
    addresses: &[NetworkAddress],
    listeners: &[Listener],
    coordinator: SocketAddr,
) -> EgressReport {
    let mut routes = Vec::new();
    for (network, device) in probed(identity, addresses) {
        let Some(listener) = listeners.iter().find(|l| l.network == network) else {
            continue;
        };
        let (source, interface) = route(listener.http, device.as_deref()).await;
        routes.push(Egress {
            network,
            target: listener.http.ip(),
            interface,
            source,
        });
    }
    EgressReport {
        routes,
        control_interface: route(coordinator, None).await.1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_leaves_by_lo() {
        let (source, interface) = route("127.0.0.1:9".parse().expect("addr"), None).await;
        assert_eq!(source, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(interface.as_deref(), Some("lo"));
        assert_eq!(
            interface_holding(Ipv4Addr::LOCALHOST.into()).as_deref(),
            Some("lo")
        );
    }

    #[test]
    fn a_client_probes_by_its_nad_interfaces_a_host_checker_by_routing() {
        let identity = |role| AgentIdentity {
            role,
            node: "n1".into(),
            pod: "p".into(),
            networks: vec![CephNetwork::Public, CephNetwork::Cluster],
        };
        let addresses = [NetworkAddress {
            network: CephNetwork::Cluster,
            addr: "198.18.16.5".parse().expect("addr"),
            interface: Some("cluster".into()),
        }];
        assert_eq!(
            probed(&identity(Role::Client), &addresses),
            [
                (CephNetwork::Public, None),
                (CephNetwork::Cluster, Some("cluster".into()))
            ]
        );
        assert_eq!(
            probed(&identity(Role::HostCheck), &addresses),
            [(CephNetwork::Public, None)]
        );
        assert_eq!(probed(&identity(Role::Server), &addresses), []);
    }
}
