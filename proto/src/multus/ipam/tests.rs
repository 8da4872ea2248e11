use super::*;
use crate::cidr::to_u128;
use proptest::prelude::*;
use serde_json::json;

fn read(ipam: Value) -> (IpamReport, Problems) {
    let mut problems = Problems::default();
    let report = read_ipam(Field::new("spec.config.ipam", &ipam), &mut problems);
    (report, problems)
}

#[test]
fn whereabouts_excludes_network_broadcast_and_dot_zero() {
    let (r, p) = read(json!({"type": "whereabouts", "range": "192.168.0.0/22"}));
    assert!(p.is_valid(), "{p:?}");
    // 1024 addresses - network - broadcast - 192.168.{1,2,3}.0
    assert_eq!(r.capacity, Some(1024 - 2 - 3));
    assert_eq!(r.ranges[0].first.as_deref(), Some("192.168.0.1"));
    assert_eq!(r.ranges[0].last.as_deref(), Some("192.168.3.254"));
}

#[test]
fn whereabouts_range_end_form_start_end_and_exclude() {
    let (r, p) = read(json!({"type": "whereabouts", "range": "192.168.2.225-192.168.2.230/28"}));
    assert!(p.is_valid(), "{p:?}");
    assert_eq!(r.capacity, Some(6));
    let (r, p) = read(json!({
        "type": "whereabouts", "range": "192.168.2.0/24",
        "range_start": "192.168.2.10", "range_end": "192.168.2.20",
        "exclude": ["192.168.2.12/31", "192.168.2.20"]
    }));
    assert!(p.is_valid(), "{p:?}");
    assert_eq!(r.capacity, Some(11 - 3));
}

#[test]
fn whereabouts_ip_ranges_take_the_smallest() {
    let (r, p) = read(json!({
        "type": "whereabouts", "range": "198.18.0.0/24",
        "ipRanges": [{"range": "fd00:1::/120"}, {"range": "198.19.0.0/28", "exclude": ["198.19.0.0/30"]}]
    }));
    assert!(p.is_valid(), "{p:?}");
    assert_eq!(
        r.ranges.iter().map(|x| x.usable).collect::<Vec<_>>(),
        [254, 254, 11]
    );
    assert_eq!(r.capacity, Some(11));
}

#[test]
fn host_local_ranges_and_gateway() {
    let (r, p) = read(json!({
        "type": "host-local",
        "ranges": [[{"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.1", "rangeEnd": "198.18.0.50"},
                    {"subnet": "198.18.1.0/29"}],
                   [{"subnet": "fd00::/125", "gateway": "fd00::7"}]],
        "routes": [{"dst": "198.19.0.0/16"}]
    }));
    assert!(p.is_valid(), "{p:?}");
    // set 1: 50 - gateway .1 = 49, plus .1-.6 of the /29 less gateway = 5 → 54; set 2: ::1-::7 less ::7 = 6
    assert_eq!(r.capacity, Some(6));
    assert_eq!(r.scope, Scope::PerNode);
    assert_eq!(r.routes, ["198.19.0.0/16"]);
    let (legacy, p) = read(json!({"type": "host-local", "subnet": "10.0.0.0/30"}));
    assert!(p.is_valid(), "{p:?}");
    assert_eq!(legacy.capacity, Some(1));
}

#[test]
fn static_dhcp_and_none() {
    assert_eq!(
        read(json!({"type": "static", "addresses": [{"address": "198.18.0.5/24"}]}))
            .0
            .capacity,
        Some(1)
    );
    assert_eq!(read(json!({"type": "dhcp"})).0.capacity, None);
    assert_eq!(read(Value::Null).0.capacity, Some(0));
}

#[test]
fn bad_ipam_names_fields() {
    let cases = [
        (json!({"type": "whereabouts"}), "spec.config.ipam.range"),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0"}),
            "spec.config.ipam.range",
        ),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/24", "exclude": ["nope"]}),
            "spec.config.ipam.exclude[0]",
        ),
        (
            json!({"type": "whereabouts", "ipRanges": [{"range": "x/1"}]}),
            "spec.config.ipam.ipRanges[0].range",
        ),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/24", "range_start": "x"}),
            "spec.config.ipam.range_start",
        ),
        (
            json!({"type": "host-local", "ranges": [[{"rangeStart": "198.18.0.1"}]]}),
            "spec.config.ipam.ranges[0][0].subnet",
        ),
        (
            json!({"type": "host-local", "subnet": "198.18.0.0/31"}),
            "spec.config.ipam.subnet",
        ),
        (
            json!({"type": "host-local", "subnet": "198.18.0.0/24", "rangeEnd": "198.19.0.1"}),
            "spec.config.ipam.rangeEnd",
        ),
        (json!({"type": "host-local"}), "spec.config.ipam.ranges"),
        (
            json!({"type": "static", "addresses": [{"address": "198.18.0.5"}]}),
            "spec.config.ipam.addresses[0].address",
        ),
        (json!({"type": 7}), "spec.config.ipam.type"),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/24", "routes": [{"gw": "1.1.1.1"}]}),
            "spec.config.ipam.routes[0].dst",
        ),
    ];
    for (ipam, field) in cases {
        let (_, p) = read(ipam.clone());
        assert!(
            p.errors.iter().any(|e| e.field == field),
            "{ipam}: expected error at {field}, got {:?}",
            p.errors
        );
    }
}

/// The whereabouts rules, address by address.
fn brute_whereabouts(cidr: Cidr, start: Option<u128>, end: Option<u128>, excl: &[Cidr]) -> u64 {
    (cidr.first()..=cidr.last())
        .filter(|a| *a != cidr.first() && *a != cidr.last())
        .filter(|a| start.is_none_or(|s| !(cidr.first()..=cidr.last()).contains(&s) || *a >= s))
        .filter(|a| end.is_none_or(|e| !(cidr.first()..=cidr.last()).contains(&e) || *a <= e))
        .filter(|a| !excl.iter().any(|x| (x.first()..=x.last()).contains(a)))
        .filter(|a| !(cidr.family() == Family::V4 && a % 256 == 0))
        .count() as u64
}

fn small_cidr(v6: bool) -> impl Strategy<Value = Cidr> {
    (any::<u16>(), 0u8..=10).prop_map(move |(seed, host_bits)| {
        let (bits, base) = if v6 {
            (128u8, "fd00::".parse::<std::net::IpAddr>().expect("ip"))
        } else {
            (32, "198.18.0.0".parse().expect("ip"))
        };
        let addr = crate::cidr::from_u128(Family::of(base), to_u128(base) + u128::from(seed) * 4);
        Cidr {
            addr,
            prefix: bits - host_bits,
        }
    })
}

proptest! {
    #[test]
    fn whereabouts_capacity_matches_brute_force(
        cidr in any::<bool>().prop_flat_map(small_cidr),
        start_off in proptest::option::of(0u128..1100),
        end_off in proptest::option::of(0u128..1100),
        excl in proptest::collection::vec((0u128..1100, 0u8..4), 0..3),
    ) {
        let family = cidr.family();
        let ip = |off: u128| crate::cidr::from_u128(family, cidr.first() + off);
        let excl: Vec<Cidr> = excl.iter().map(|(o, hb)| Cidr { addr: ip(*o), prefix: family.bits() - hb }).collect();
        let mut ipam = json!({"type": "whereabouts", "range": cidr.to_string()});
        if let Some(s) = start_off { ipam["range_start"] = json!(ip(s).to_string()); }
        if let Some(e) = end_off { ipam["range_end"] = json!(ip(e).to_string()); }
        ipam["exclude"] = json!(excl.iter().map(ToString::to_string).collect::<Vec<_>>());
        let (report, problems) = read(ipam);
        prop_assert!(problems.is_valid(), "{:?}", problems);
        let expected = brute_whereabouts(cidr, start_off.map(|o| cidr.first() + o), end_off.map(|o| cidr.first() + o), &excl);
        prop_assert_eq!(report.capacity, Some(expected));
    }

    #[test]
    fn host_local_capacity_matches_brute_force(cidr in any::<bool>().prop_flat_map(small_cidr), gw_off in 0u128..1100) {
        prop_assume!(cidr.prefix + 2 <= cidr.family().bits());
        let family = cidr.family();
        let gw = crate::cidr::from_u128(family, cidr.first() + gw_off);
        let ipam = json!({"type": "host-local", "ranges": [[{"subnet": cidr.to_string(), "gateway": gw.to_string()}]]});
        let (report, problems) = read(ipam);
        let gw_inside = cidr.contains(gw);
        prop_assert_eq!(problems.is_valid(), gw_inside);
        let gw_n = if gw_inside { to_u128(gw) } else { cidr.first() + 1 };
        let last = if family == Family::V4 { cidr.last() - 1 } else { cidr.last() };
        let expected = (cidr.first() + 1..=last).filter(|a| *a != gw_n).count() as u64;
        prop_assert_eq!(report.capacity, Some(expected));
    }

    #[test]
    fn arbitrary_ipam_never_panics(text in "\\PC{0,60}", key in "(range|subnet|ranges|exclude|ipRanges|range_start)") {
        let _ = read(json!({"type": "whereabouts", key.clone(): text.clone()}));
        let _ = read(json!({"type": "host-local", key: text}));
    }
}
