//! The path MTU `multinet bench network` reports for an IPv6 path, measured as the bench's
//! client measures it (`bench::network::client`, on a thread inside the client's namespace)
//! against the probe server in another namespace, as root. The test makes its own namespaces
//! (unique names, never a lab's `<lab>-` prefix) and removes them also when it fails; its
//! traffic stays inside them, on fd00::/8 addresses. Where the lab cannot run the test skips,
//! or fails under CI ([`multinet_tests::require`]).

mod lab_support;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use lab_support::Scratch;
use multinet_agent::load::{LoadKind, LoadOutcome};
use multinet_coordinator::bench::network::{ClientRequest, client};
use multinet_coordinator::lab::net;
use multinet_proto::assignment::NetworkAddress;
use multinet_proto::network::CephNetwork;
use multinet_tests::temp::TempDir;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

/// `ip -6 route get ADDR` in namespace `ns`, as iproute2 prints it.
fn route_get(ns: &str, addr: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns, "-6", "route", "get", addr])
        .output()
        .expect("ip runs");
    assert!(out.status.success(), "ip route get {addr} in {ns}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_ipv6_path_reports_the_mtu_of_its_link_and_the_one_a_router_says_is_too_big() {
    if !multinet_tests::require::lab() {
        return;
    }
    // client ─c0 (1500)─ r0 router r1 (1280) ─ s0 (1500)─ server   the routed path
    // client ─c1 (1280)──────────────────────── s1 (1280)─ server   the direct path
    // The routed path's narrow hop is in its middle: both ends have 1500-byte links (and the
    // server announces an MSS for 1500), so only the router's ICMPv6 Packet Too Big tells the
    // client of 1280.
    // No duplicate address detection, as the lab's pods: with it every link-local address is
    // tentative for a second or more after its link comes up (RFC 4862 §5.4), and the routed
    // path's first connection timed out while the router could not yet resolve the server.
    let scratch = Scratch::new_with("pmtu", 3, &[("net/ipv6/conf/default/accept_dad", "0")]);
    let (c, r, s) = (&scratch.0[0], &scratch.0[1], &scratch.0[2]);
    net::veth(c, "c0", r, "r0", Some(1500)).expect("veth c0-r0");
    net::veth(r, "r1", s, "s0", Some(1500)).expect("veth r1-s0");
    net::set_mtu(r, "r1", 1280).expect("r1 MTU");
    net::veth(c, "c1", s, "s1", Some(1280)).expect("veth c1-s1");
    for (ns, link, addr) in [
        (c, "c0", "fd00:a::1"),
        (r, "r0", "fd00:a::2"),
        (r, "r1", "fd00:b::1"),
        (s, "s0", "fd00:b::2"),
        (c, "c1", "fd00:c::1"),
        (s, "s1", "fd00:c::2"),
    ] {
        net::in_namespace(ns, |l| l.add_address_without_dad(link, ip(addr), 64)).expect("address");
    }
    net::ip_in(
        c,
        &["-6", "route", "add", "fd00:b::/64", "via", "fd00:a::2"],
    )
    .expect("route");
    net::ip_in(
        s,
        &["-6", "route", "add", "fd00:a::/64", "via", "fd00:b::1"],
    )
    .expect("route");
    net::sysctl_in(r, "net/ipv6/conf/all/forwarding", "1").expect("forwarding");

    // The probe server in the server's namespace: its sockets are made on a thread there,
    // its tasks run on this runtime's workers (dropped before the namespaces are).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let pki_dir = TempDir::new("pmtu");
    let pki = multinet_coordinator::pki::RunPki::new("0123456789").expect("pki");
    let files = pki
        .write_agent_files(&pki_dir.0, "server", true)
        .expect("server PKI");
    multinet_agent::install_crypto_provider();
    let server_tls = multinet_agent::tls::RunTls::load(&files)
        .and_then(|t| t.probe_server_config())
        .expect("server TLS");
    let addresses = [
        NetworkAddress {
            network: CephNetwork::Public,
            addr: ip("fd00:b::2"),
            interface: None,
        },
        NetworkAddress {
            network: CephNetwork::Cluster,
            addr: ip("fd00:c::2"),
            interface: None,
        },
    ];
    let server = net::on_thread_in(s, || {
        Ok(runtime.block_on(multinet_agent::server::ProbeServer::bind(
            &addresses, server_tls,
        )))
    })
    .expect("in the server's namespace")
    .expect("the probe server listens");
    let routed = server.listeners()[0].http;
    let direct = server.listeners()[1].http;

    // One bench test from the client's namespace, bound to `device` as the bench binds it.
    let measure = |kind: LoadKind, target: SocketAddr, source: &str, device: &str| {
        let request = ClientRequest {
            kind,
            target,
            source: Some(ip(source)),
            device: Some(device.to_string()),
            streams: 1,
            duration: Duration::from_secs(1),
            answer_bytes: 64,
            tls: None,
        };
        let out: LoadOutcome = net::on_thread_in(c, || Ok(client(&request)))
            .expect("in the client's namespace")
            .expect("the test runs");
        assert_eq!(out.errors, 0, "{kind:?} to {target}: {out:?}");
        assert!(out.bytes > 0, "{kind:?} to {target}: {out:?}");
        out
    };

    // The direct path: its links' MTU.
    let out = measure(LoadKind::Download, direct, "fd00:c::1", "c1");
    assert_eq!(out.path_mtu, Some(1280), "direct path: {out:?}");
    // The routed path, downloading: the client sent nothing large yet, so what it knows is
    // its own link's 1500.
    let out = measure(LoadKind::Download, routed, "fd00:a::1", "c0");
    assert_eq!(out.path_mtu, Some(1500), "routed path before: {out:?}");
    // Uploading: full-size segments reach the router's 1280 hop, the router answers Packet
    // Too Big, and the connection's path MTU and MSS fall to fit (1280 − 40 − 20 at most).
    let out = measure(LoadKind::Upload, routed, "fd00:a::1", "c0");
    assert_eq!(out.path_mtu, Some(1280), "routed path, learned: {out:?}");
    assert!(
        out.tcp_mss.is_some_and(|m| m <= 1220),
        "routed path, MSS: {out:?}"
    );
    // The kernel keeps what it learned as a route exception of the client's namespace (read
    // back with iproute2), and the next connection on the path starts from it.
    let route = route_get(c, "fd00:b::2");
    assert!(route.contains("mtu 1280"), "{route}");
    let out = measure(LoadKind::Download, routed, "fd00:a::1", "c0");
    assert_eq!(out.path_mtu, Some(1280), "routed path after: {out:?}");

    runtime.block_on(server.shutdown());
}
