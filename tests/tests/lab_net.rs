//! The lab's kernel contact (`multinet_coordinator::lab::net`) on its own, as root: namespaces
//! made and removed without `ip`, links, addresses, MTUs and masters through netlink. Each test
//! makes namespaces of its own (unique names, never a lab's `<lab>-` prefix) and removes them
//! also when it fails; what the helpers did is read back with iproute2's `ip -j`, a tool
//! independent of them. Where the lab cannot run the tests skip, or fail under CI
//! ([`multinet_tests::require`]).

mod lab_support;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use lab_support::Scratch;
use multinet_coordinator::lab::net;
use multinet_tests::eventually::eventually;
use serde_json::Value;

/// `ip -j -n NS ARGS`, parsed.
fn ip_json(ns: &str, args: &[&str]) -> Value {
    let out = Command::new("ip")
        .args(["-j", "-n", ns])
        .args(args)
        .output()
        .expect("ip runs");
    assert!(out.status.success(), "ip {args:?} in {ns}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

/// Link `name` in `ns` as `ip -j link show` reports it.
fn link(ns: &str, name: &str) -> Value {
    ip_json(ns, &["link", "show", "dev", name])[0].clone()
}

fn is_up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

fn lab_possible() -> bool {
    multinet_tests::require::lab()
}

#[test]
fn a_namespace_is_made_with_its_loopback_up_listed_and_removed() {
    if !lab_possible() {
        return;
    }
    let scratch = Scratch::new("ns", 1);
    let ns = &scratch.0[0];
    assert!(
        net::netns_list().expect("list").contains(ns),
        "listed by netns_list"
    );
    let ip_list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    assert!(
        String::from_utf8_lossy(&ip_list.stdout).contains(ns.as_str()),
        "`ip netns list` sees it"
    );
    assert!(is_up(&link(ns, "lo")), "lo is up");
    // The same name again is refused, and the namespace that has it is left as it was.
    assert!(
        net::netns_add(ns).is_err(),
        "a second namespace of the same name"
    );
    assert!(is_up(&link(ns, "lo")), "the first one is untouched");
    net::netns_del(ns).expect("delete");
    assert!(!net::netns_list().expect("list").contains(ns));
    net::netns_del(ns).expect("deleting a missing namespace is not an error");
}

#[test]
fn a_veth_joins_two_namespaces_both_ends_up_with_the_mtu_given() {
    if !lab_possible() {
        return;
    }
    let scratch = Scratch::new("veth", 2);
    let (a, b) = (&scratch.0[0], &scratch.0[1]);
    net::veth(a, "va", b, "vb", Some(1400)).expect("veth");
    for (ns, name) in [(a, "va"), (b, "vb")] {
        let l = link(ns, name);
        assert_eq!(l["mtu"], 1400, "{name}'s MTU");
        assert!(is_up(&l), "{name} is up");
    }
    net::set_mtu(b, "vb", 1280).expect("mtu");
    assert_eq!(link(b, "vb")["mtu"], 1280);
    assert!(net::has_link(a, "va").expect("lookup"));
    assert!(
        !net::has_link(a, "vb").expect("lookup"),
        "the peer is not here"
    );
    assert!(net::link_del(a, "va").expect("delete"), "deleted");
    assert!(
        !net::link_del(a, "va").expect("delete"),
        "a missing link is reported as such, not as an error"
    );
    // Deleting one end removes the pair.
    assert!(!net::has_link(b, "vb").expect("lookup"));
}

#[test]
fn a_bridge_gets_its_mac_ports_and_addresses_a_macvlan_rides_on_it() {
    if !lab_possible() {
        return;
    }
    let scratch = Scratch::new("br", 2);
    let (a, b) = (&scratch.0[0], &scratch.0[1]);
    net::add_bridge(a, "br0").expect("bridge");
    net::set_mac(a, "br0", "02:4d:4e:00:00:07").expect("mac");
    net::link_up(a, "br0").expect("up");
    net::veth(a, "port0", b, "eth0", None).expect("veth");
    net::set_master(a, "port0", "br0").expect("master");
    let addr: IpAddr = "198.18.250.1".parse().expect("ip");
    net::add_address(a, "br0", addr, 24).expect("address");
    // `replace` accepts an address the link has already, `add` does not.
    net::replace_address(a, "br0", addr, 24).expect("replace");
    assert!(net::add_address(a, "br0", addr, 24).is_err());
    net::add_macvlan(a, "br0", "mv0").expect("macvlan");
    let v6: IpAddr = "fd00:4d4e::1".parse().expect("ip");
    net::add_address(a, "mv0", v6, 64).expect("IPv6 address");

    let bridge = link(a, "br0");
    assert_eq!(bridge["address"], "02:4d:4e:00:00:07");
    assert!(is_up(&bridge));
    assert_eq!(link(a, "port0")["master"], "br0");
    let mv = link(a, "mv0");
    assert_eq!(mv["link"], "br0", "the macvlan's parent");
    let addrs = |dev: &str| -> Vec<String> {
        ip_json(a, &["addr", "show", "dev", dev])[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| Some(format!("{}/{}", i["local"].as_str()?, i["prefixlen"])))
            .collect()
    };
    assert!(
        addrs("br0").contains(&"198.18.250.1/24".to_string()),
        "{:?}",
        addrs("br0")
    );
    assert!(
        addrs("mv0").contains(&"fd00:4d4e::1/64".to_string()),
        "{:?}",
        addrs("mv0")
    );
}

#[test]
fn a_missing_link_or_namespace_fails_naming_what_and_where() {
    if !lab_possible() {
        return;
    }
    let scratch = Scratch::new("err", 1);
    let ns = &scratch.0[0];
    let e = net::set_master(ns, "lo", "nobr").expect_err("no such master");
    let text = e.to_string();
    assert!(
        text.contains("nobr") && text.contains(ns.as_str()),
        "names the link and the namespace: {text}"
    );
    assert!(
        matches!(
            e,
            net::Error::Netlink {
                errno: Some(19),
                ..
            }
        ),
        "ENODEV: {e:?}"
    );
    let e = net::add_address(ns, "eth9", "198.18.250.2".parse().expect("ip"), 24)
        .expect_err("no such link");
    assert!(e.to_string().contains("eth9"), "{e}");
    let missing = format!("mnt_{}_never_made", std::process::id());
    let e = net::link_up(&missing, "lo").expect_err("no such namespace");
    assert!(e.to_string().contains(&missing), "{e}");
}

#[test]
fn stopping_a_namespace_s_processes_stops_them_all_at_once() {
    if !lab_possible() {
        return;
    }
    let scratch = Scratch::new("kill", 2);
    let mut children: Vec<std::process::Child> = scratch
        .0
        .iter()
        .map(|ns| {
            Command::new("ip")
                .args(["netns", "exec", ns, "sleep", "300"])
                .spawn()
                .expect("sleep in the namespace")
        })
        .collect();
    // Both `sleep`s run inside their namespaces (`ip netns exec` execs them).
    let in_namespace = |ns: &str| -> bool {
        let out = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .expect("ip runs");
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    };
    eventually(
        Duration::from_secs(5),
        "both sleeps in their namespaces",
        || {
            let waiting: Vec<&String> = scratch.0.iter().filter(|ns| !in_namespace(ns)).collect();
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(waiting)
            }
        },
    );
    let started = std::time::Instant::now();
    net::netns_kill_all(&scratch.0).expect("kill");
    for child in &mut children {
        let status = child.wait().expect("wait");
        assert!(!status.success(), "stopped by a signal: {status:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SIGTERM was enough, no second per namespace: {:?}",
        started.elapsed()
    );
    assert!(scratch.0.iter().all(|ns| !in_namespace(ns)));
}
