use super::*;
use crate::cidr::{from_u128, to_u128};
use proptest::prelude::*;
use serde_json::json;

fn read(ipam: Value) -> (IpamReport, Problems) {
    let mut problems = Problems::default();
    let report = read_ipam(Field::new("spec.config.ipam", &ipam), &mut problems);
    (report, problems)
}

/// Reads an IPAM inside a plugin config, so `cniVersion` and `runtimeConfig` count.
fn read_plugin(plugin: Value) -> (IpamReport, Problems) {
    let mut problems = Problems::default();
    let runtime = plugin.get("runtimeConfig").cloned().unwrap_or(Value::Null);
    let context = PluginContext {
        cni_version: plugin.get("cniVersion").and_then(Value::as_str),
        runtime_config: runtime
            .is_object()
            .then(|| Field::new("spec.config.runtimeConfig", &runtime)),
    };
    let report = read_plugin_ipam(
        Field::new("spec.config.ipam", &plugin["ipam"]),
        context,
        &mut problems,
    );
    (report, problems)
}

/// What one table row expects: the capacity, each range's (first, last, usable), and the
/// fields with errors / warnings (in any order; every one listed must be there).
struct Expect<'a> {
    capacity: Option<u64>,
    ranges: &'a [(&'a str, &'a str, u64)],
    errors: &'a [&'a str],
    warnings: &'a [&'a str],
    failures: usize,
}

const OK: Expect<'static> = Expect {
    capacity: None,
    ranges: &[],
    errors: &[],
    warnings: &[],
    failures: 0,
};

fn check_row(ipam: Value, report: &IpamReport, problems: &Problems, want: &Expect<'_>) {
    for field in want.errors {
        assert!(
            problems.errors.iter().any(|e| e.field == *field),
            "{ipam}: expected an error at {field}, got {:?}",
            problems.errors
        );
    }
    if want.errors.is_empty() {
        assert!(problems.is_valid(), "{ipam}: {:?}", problems.errors);
        assert_eq!(report.capacity, want.capacity, "{ipam}: capacity");
        let got: Vec<(String, String, u64)> = report
            .ranges
            .iter()
            .map(|r| {
                (
                    r.first.clone().unwrap_or_default(),
                    r.last.clone().unwrap_or_default(),
                    r.usable,
                )
            })
            .collect();
        let wanted: Vec<(String, String, u64)> = want
            .ranges
            .iter()
            .map(|(f, l, u)| (f.to_string(), l.to_string(), *u))
            .collect();
        assert_eq!(got, wanted, "{ipam}: ranges");
    }
    for field in want.warnings {
        assert!(
            problems.warnings.iter().any(|w| w.field == *field),
            "{ipam}: expected a warning at {field}, got {:?}",
            problems.warnings
        );
    }
    assert_eq!(
        report.failures.len(),
        want.failures,
        "{ipam}: failures {:?}",
        report.failures
    );
}

/// whereabouts, row by row. Expected values follow k8snetworkplumbingwg/whereabouts:
/// `pkg/config/config.go` `LoadIPAMConfig` (range / ipRanges, the START-END/PREFIX form and its
/// "invalid range start for CIDR", ParseIPSloppy / ParseCIDRSloppy, gateway parsing),
/// `pkg/types/types.go` `backwardsCompatibleIPAddress` (a bad top-level range_start is
/// dropped), `pkg/iphelpers/iphelpers.go` `GetIPRange` / `FirstUsableIP` / `LastUsableIP`
/// (network and last address never handed out, range_start / range_end ignored outside the
/// usable span, an inverted range_end ignored), `pkg/allocate/allocate.go`
/// `IterateForAssignment` / `parseExcludedRange` (exclusions are CIDRs or single addresses,
/// nothing else skipped — no `.0` rule), `pkg/storage/kubernetes/ipam.go`
/// `toIPReservationList` (int64 offsets from the network address).
#[test]
fn whereabouts_table() {
    let rows: Vec<(Value, Expect<'_>)> = vec![
        // .0 addresses inside a range are handed out: only network and last address are not.
        (
            json!({"type": "whereabouts", "range": "192.168.0.0/22"}),
            Expect {
                capacity: Some(1022),
                ranges: &[("192.168.0.1", "192.168.3.254", 1022)],
                ..OK
            },
        ),
        // The example: the start lies outside 192.168.2.16/28.
        (
            json!({"type": "whereabouts", "range": "192.168.1.5-192.168.2.25/28"}),
            Expect {
                errors: &["spec.config.ipam.range"],
                ..OK
            },
        ),
        (
            json!({"type": "whereabouts", "range": "192.168.2.225-192.168.2.230/28"}),
            Expect {
                capacity: Some(6),
                ranges: &[("192.168.2.225", "192.168.2.230", 6)],
                ..OK
            },
        ),
        // The dash form sets both ends; written range_start / range_end are ignored.
        (
            json!({"type": "whereabouts", "range": "192.168.2.225-192.168.2.230/28", "range_start": "192.168.2.226"}),
            Expect {
                capacity: Some(6),
                ranges: &[("192.168.2.225", "192.168.2.230", 6)],
                warnings: &["spec.config.ipam.range_start"],
                ..OK
            },
        ),
        // Inverted range_end: ignored, the range runs to the last usable address.
        (
            json!({"type": "whereabouts", "range": "10.0.0.0/24", "range_start": "10.0.0.100", "range_end": "10.0.0.50"}),
            Expect {
                capacity: Some(155),
                ranges: &[("10.0.0.100", "10.0.0.254", 155)],
                warnings: &["spec.config.ipam.range_end"],
                ..OK
            },
        ),
        // range_start on the network address: outside the usable span, ignored.
        (
            json!({"type": "whereabouts", "range": "10.0.0.0/29", "range_start": "10.0.0.0"}),
            Expect {
                capacity: Some(6),
                ranges: &[("10.0.0.1", "10.0.0.6", 6)],
                warnings: &["spec.config.ipam.range_start"],
                ..OK
            },
        ),
        // First and last are the first and last handed out, exclusions applied; single
        // addresses may be excluded.
        (
            json!({"type": "whereabouts", "range": "192.168.2.0/24", "range_start": "192.168.2.10",
                   "range_end": "192.168.2.20", "exclude": ["192.168.2.8/30", "192.168.2.20"]}),
            Expect {
                capacity: Some(8),
                ranges: &[("192.168.2.12", "192.168.2.19", 8)],
                ..OK
            },
        ),
        // Leading zeros: read as decimal, a warning.
        (
            json!({"type": "whereabouts", "range": "192.168.001.0/24"}),
            Expect {
                capacity: Some(254),
                ranges: &[("192.168.1.1", "192.168.1.254", 254)],
                warnings: &["spec.config.ipam.range"],
                ..OK
            },
        ),
        // An exclude whereabouts cannot parse fails every allocation.
        (
            json!({"type": "whereabouts", "range": "10.0.0.0/24", "exclude": ["10.0.0.010/32"]}),
            Expect {
                errors: &["spec.config.ipam.exclude[0]"],
                ..OK
            },
        ),
        // A top-level range_start that does not parse is dropped silently: a warning.
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/24", "range_start": "x"}),
            Expect {
                capacity: Some(254),
                ranges: &[("198.18.0.1", "198.18.0.254", 254)],
                warnings: &["spec.config.ipam.range_start"],
                ..OK
            },
        ),
        // …inside ipRanges it refuses the config.
        (
            json!({"type": "whereabouts", "ipRanges": [{"range": "198.18.0.0/24", "range_start": "x"}]}),
            Expect {
                errors: &["spec.config.ipam.ipRanges[0].range_start"],
                ..OK
            },
        ),
        // host-local's spelling is ignored, and said so.
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/28", "rangeStart": "198.18.0.5"}),
            Expect {
                capacity: Some(14),
                ranges: &[("198.18.0.1", "198.18.0.14", 14)],
                warnings: &["spec.config.ipam.rangeStart"],
                ..OK
            },
        ),
        // A gateway inside the pool may be handed to a pod.
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/28", "gateway": "198.18.0.1"}),
            Expect {
                capacity: Some(14),
                ranges: &[("198.18.0.1", "198.18.0.14", 14)],
                warnings: &["spec.config.ipam.gateway"],
                ..OK
            },
        ),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/28", "gateway": "198.18.0.1", "exclude": ["198.18.0.1/32"]}),
            Expect {
                capacity: Some(13),
                ranges: &[("198.18.0.2", "198.18.0.14", 13)],
                ..OK
            },
        ),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/28", "gateway": "not-an-ip"}),
            Expect {
                errors: &["spec.config.ipam.gateway"],
                ..OK
            },
        ),
        // A /31 has no usable address for GetIPRange: valid, but it will not work.
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/31"}),
            Expect {
                capacity: Some(0),
                ranges: &[("", "", 0)],
                failures: 1,
                ..OK
            },
        ),
        // One address from the top-level range and from every ipRanges entry.
        (
            json!({"type": "whereabouts", "range": "198.18.0.0/24",
                   "ipRanges": [{"range": "fd00:1::/120"}, {"range": "198.19.0.0/28", "exclude": ["198.19.0.0/30"]}]}),
            Expect {
                capacity: Some(11),
                ranges: &[
                    ("198.18.0.1", "198.18.0.254", 254),
                    ("fd00:1::1", "fd00:1::fe", 254),
                    ("198.19.0.4", "198.19.0.14", 11),
                ],
                ..OK
            },
        ),
        // int64 offsets: a /64 counts up to 2^63 − 1 addresses, no saturated 2^64 − 1 …
        (
            json!({"type": "whereabouts", "range": "fd00::/64"}),
            Expect {
                capacity: Some(i64::MAX as u64),
                ranges: &[("fd00::1", "fd00::7fff:ffff:ffff:ffff", i64::MAX as u64)],
                ..OK
            },
        ),
        // … and a range wholly beyond it says so.
        (
            json!({"type": "whereabouts", "range": "fd00::/64", "range_start": "fd00::8000:0:0:1"}),
            Expect {
                capacity: Some(0),
                ranges: &[("", "", 0)],
                failures: 1,
                ..OK
            },
        ),
        (
            json!({"type": "whereabouts"}),
            Expect {
                errors: &["spec.config.ipam.range"],
                ..OK
            },
        ),
        (
            json!({"type": "whereabouts", "range": "198.18.0.0"}),
            Expect {
                errors: &["spec.config.ipam.range"],
                ..OK
            },
        ),
        (
            json!({"type": "whereabouts", "ipRanges": [{"range": "x/1"}]}),
            Expect {
                errors: &["spec.config.ipam.ipRanges[0].range"],
                ..OK
            },
        ),
    ];
    for (ipam, want) in rows {
        let (report, problems) = read(ipam.clone());
        check_row(ipam, &report, &problems, &want);
    }
}

/// host-local, row by row. Expected values follow containernetworking/plugins
/// `plugins/ipam/host-local/backend/allocator`: `config.go` `LoadIPAMConfig` (runtimeConfig
/// ipRanges, the top-level range as its own set, no ranges, one address per family before CNI
/// 0.3.0, overlapping sets), `range_set.go` `RangeSet.Canonicalize` (empty set, mixed
/// families, overlapping ranges), `range.go` `Range.Canonicalize` / `Range.Contains` /
/// `lastIP` (host bits, too small, gateway default .1, rangeStart / rangeEnd in the subnet and
/// in order, IPv4 broadcast left out), `allocator.go` `RangeIter.Next` (the gateway skipped).
#[test]
fn host_local_table() {
    let rows: Vec<(Value, Expect<'_>)> = vec![
        // The example: host bits set is refused, not masked.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "192.0.2.12/24"}}),
            Expect {
                errors: &["spec.config.ipam.subnet"],
                ..OK
            },
        ),
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "10.0.0.0/30"}}),
            Expect {
                capacity: Some(1),
                ranges: &[("10.0.0.2", "10.0.0.2", 1)],
                ..OK
            },
        ),
        // IPv6: the last address is handed out (no broadcast), the gateway ::1 is not.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "fd00::/125"}}),
            Expect {
                capacity: Some(6),
                ranges: &[("fd00::2", "fd00::7", 6)],
                ..OK
            },
        ),
        // A set takes one address from whichever of its ranges has one; sets are separate.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.1", "rangeEnd": "198.18.0.50"},
                 {"subnet": "198.18.1.0/29"}],
                [{"subnet": "fd00::/125", "gateway": "fd00::7"}]]}}),
            Expect {
                // set 1: .2–.50 (gateway .1 skipped) = 49, plus .2–.6 = 5 → 54; set 2: ::1–::6 = 6
                capacity: Some(6),
                ranges: &[
                    ("198.18.0.2", "198.18.0.50", 49),
                    ("198.18.1.2", "198.18.1.6", 5),
                    ("fd00::1", "fd00::6", 6),
                ],
                ..OK
            },
        ),
        // The top-level subnet beside `ranges` is its own set: the minimum, not the sum.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/28",
                   "ranges": [[{"subnet": "fd00::/120"}]]}}),
            Expect {
                capacity: Some(13),
                ranges: &[
                    ("198.18.0.2", "198.18.0.14", 13),
                    ("fd00::2", "fd00::ff", 254),
                ],
                ..OK
            },
        ),
        // runtimeConfig.ipRanges come first.
        (
            json!({"cniVersion": "1.0.0", "runtimeConfig": {"ipRanges": [[{"subnet": "198.19.0.0/29"}]]},
                   "ipam": {"type": "host-local", "ranges": [[{"subnet": "fd00::/120"}]]}}),
            Expect {
                capacity: Some(5),
                ranges: &[
                    ("198.19.0.2", "198.19.0.6", 5),
                    ("fd00::2", "fd00::ff", 254),
                ],
                ..OK
            },
        ),
        // Two IPv4 sets need cniVersion 0.3.0 or later.
        (
            json!({"cniVersion": "0.2.0", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "198.18.0.0/24"}], [{"subnet": "198.19.0.0/24"}]]}}),
            Expect {
                errors: &["spec.config.ipam.ranges"],
                ..OK
            },
        ),
        // Range sets must not overlap one another.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "198.18.0.0/24"}], [{"subnet": "198.18.0.0/25"}]]}}),
            Expect {
                errors: &["spec.config.ipam.ranges[1]"],
                ..OK
            },
        ),
        // One set holds one family.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "198.18.0.0/24"}, {"subnet": "fd00::/120"}]]}}),
            Expect {
                errors: &["spec.config.ipam.ranges[0][1]"],
                ..OK
            },
        ),
        // Ranges of one set must not overlap.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [
                [{"subnet": "198.18.0.0/24", "rangeEnd": "198.18.0.100"}, {"subnet": "198.18.0.0/24", "rangeStart": "198.18.0.100"}]]}}),
            Expect {
                errors: &["spec.config.ipam.ranges[0][1]"],
                ..OK
            },
        ),
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [[]]}}),
            Expect {
                errors: &["spec.config.ipam.ranges[0]"],
                ..OK
            },
        ),
        // rangeStart / rangeEnd in the subnet and in order.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/24", "rangeEnd": "198.19.0.1"}}),
            Expect {
                errors: &["spec.config.ipam.rangeEnd"],
                ..OK
            },
        ),
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/24",
                   "rangeStart": "198.18.0.100", "rangeEnd": "198.18.0.50"}}),
            Expect {
                errors: &["spec.config.ipam.rangeStart"],
                ..OK
            },
        ),
        // The network address itself may start a range: host-local hands it out.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/29",
                   "rangeStart": "198.18.0.0", "gateway": "198.18.0.6"}}),
            Expect {
                capacity: Some(6),
                ranges: &[("198.18.0.0", "198.18.0.5", 6)],
                ..OK
            },
        ),
        // A gateway outside the subnet is accepted (a warning): nothing is skipped.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/29", "gateway": "198.19.0.1"}}),
            Expect {
                capacity: Some(6),
                ranges: &[("198.18.0.1", "198.18.0.6", 6)],
                warnings: &["spec.config.ipam.gateway"],
                ..OK
            },
        ),
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/31"}}),
            Expect {
                errors: &["spec.config.ipam.subnet"],
                ..OK
            },
        ),
        // Leading zeros: Go's net.ParseCIDR refuses them.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.018.0.0/24"}}),
            Expect {
                errors: &["spec.config.ipam.subnet"],
                ..OK
            },
        ),
        // whereabouts' spelling is ignored, and said so.
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "subnet": "198.18.0.0/29", "range_start": "198.18.0.3"}}),
            Expect {
                capacity: Some(5),
                ranges: &[("198.18.0.2", "198.18.0.6", 5)],
                warnings: &["spec.config.ipam.range_start"],
                ..OK
            },
        ),
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local"}}),
            Expect {
                errors: &["spec.config.ipam.ranges"],
                ..OK
            },
        ),
        (
            json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [[{"rangeStart": "198.18.0.1"}]]}}),
            Expect {
                errors: &["spec.config.ipam.ranges[0][0].subnet"],
                ..OK
            },
        ),
    ];
    for (plugin, want) in rows {
        let (report, problems) = read_plugin(plugin.clone());
        check_row(plugin, &report, &problems, &want);
        if problems.is_valid() {
            assert_eq!(
                report.sets.iter().map(|s| s.ranges).sum::<usize>(),
                report.ranges.len(),
                "every range belongs to one set"
            );
        }
    }
}

#[test]
fn static_dhcp_and_none() {
    assert_eq!(
        read(json!({"type": "static", "addresses": [{"address": "198.18.0.5/24"}]}))
            .0
            .capacity,
        Some(1)
    );
    let (dhcp, _) = read(json!({"type": "dhcp"}));
    assert_eq!(dhcp.capacity, None);
    assert!(
        dhcp.notes.iter().any(|n| n.contains("dhcp daemon")),
        "{:?}",
        dhcp.notes
    );
    assert_eq!(read(Value::Null).0.capacity, Some(0));
}

#[test]
fn bad_ipam_names_fields() {
    let cases = [
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

/// whereabouts' allocator, pod after pod, written from `pkg/iphelpers` `GetIPRange` and
/// `pkg/allocate` `IterateForAssignment`: the addresses it hands out until it has none left.
fn allocate_whereabouts(
    cidr: Cidr,
    start: Option<u128>,
    end: Option<u128>,
    excl: &[Cidr],
) -> Vec<u128> {
    let host_bits = cidr.family().bits() - cidr.prefix;
    if host_bits < 2 {
        return Vec::new(); // "net mask is too short"
    }
    let (usable_first, usable_last) = (cidr.first() + 1, cidr.last() - 1);
    let first = start
        .filter(|s| (usable_first..=usable_last).contains(s))
        .unwrap_or(usable_first);
    let last = end
        .filter(|e| (first..=usable_last).contains(e))
        .unwrap_or(usable_last);
    let mut reserved: Vec<u128> = Vec::new();
    loop {
        let mut ip = first;
        let mut assigned = None;
        while ip <= last {
            if reserved.contains(&ip) {
                ip += 1;
                continue;
            }
            if let Some(x) = excl.iter().find(|x| (x.first()..=x.last()).contains(&ip)) {
                ip = x.last() + 1; // jump to the excluded subnet's broadcast, then on
                continue;
            }
            assigned = Some(ip);
            break;
        }
        match assigned {
            Some(ip) => reserved.push(ip),
            None => return reserved,
        }
    }
}

fn small_cidr(v6: bool) -> impl Strategy<Value = Cidr> {
    (any::<u16>(), 0u8..=10).prop_map(move |(seed, host_bits)| {
        let (bits, base) = if v6 {
            (128u8, "fd00::".parse::<std::net::IpAddr>().expect("ip"))
        } else {
            (32, "198.18.0.0".parse().expect("ip"))
        };
        let network = (to_u128(base) + u128::from(seed) * 2048) & !((1u128 << host_bits) - 1);
        Cidr {
            addr: from_u128(Family::of(base), network),
            prefix: bits - host_bits,
        }
    })
}

/// A host-local range as its allocator walks it (`allocator.go` `RangeIter.Next`): start to
/// end, the gateway skipped; `None` when `Range.Canonicalize` refuses it.
fn host_local_walk(
    cidr: Cidr,
    start: Option<u128>,
    end: Option<u128>,
    gw: Option<u128>,
) -> Option<Vec<u128>> {
    if cidr.prefix + 2 > cidr.family().bits() {
        return None;
    }
    let inside = |a: u128| (cidr.first()..=cidr.last()).contains(&a);
    let first = start.unwrap_or(cidr.first() + 1);
    let last = end.unwrap_or(if cidr.family() == Family::V4 {
        cidr.last() - 1
    } else {
        cidr.last()
    });
    // `Range.Canonicalize` checks a given `rangeStart` before `rangeEnd` is defaulted, and a
    // given `rangeEnd` against the start (`Range.Contains`): a start after the default end is
    // accepted, and the range hands out nothing.
    if !inside(first) || !inside(last) || (end.is_some() && first > last) {
        return None;
    }
    // No gateway: the subnet's .1; one outside the subnet skips nothing.
    let gateway = match gw {
        None => Some(cidr.first() + 1),
        Some(g) => Some(g).filter(|g| inside(*g)),
    };
    Some((first..=last).filter(|a| Some(*a) != gateway).collect())
}

proptest! {
    /// For small ranges, the addresses spec check lists (count, first, last) are exactly the
    /// ones whereabouts' allocator hands out, pod after pod.
    #[test]
    fn whereabouts_lists_what_its_allocator_hands_out(
        cidr in any::<bool>().prop_flat_map(small_cidr),
        start_off in proptest::option::of(0u128..1100),
        end_off in proptest::option::of(0u128..1100),
        excl in proptest::collection::vec((0u128..1100, 0u8..4, any::<bool>()), 0..3),
    ) {
        let family = cidr.family();
        let ip = |off: u128| from_u128(family, cidr.first() + off);
        let excl: Vec<(Cidr, bool)> = excl.iter().map(|(o, hb, bare)| (Cidr { addr: ip(*o), prefix: family.bits() - hb }, *bare)).collect();
        let mut ipam = json!({"type": "whereabouts", "range": cidr.to_string()});
        if let Some(s) = start_off { ipam["range_start"] = json!(ip(s).to_string()); }
        if let Some(e) = end_off { ipam["range_end"] = json!(ip(e).to_string()); }
        // Single addresses as bare IPs half the time (parseExcludedRange takes both).
        ipam["exclude"] = json!(excl.iter().map(|(c, bare)| if *bare && c.prefix == family.bits() { c.addr.to_string() } else { c.to_string() }).collect::<Vec<_>>());
        let (report, problems) = read(ipam);
        prop_assert!(problems.is_valid(), "{:?}", problems);
        let excl: Vec<Cidr> = excl.into_iter().map(|(c, _)| c).collect();
        let handed = allocate_whereabouts(cidr, start_off.map(|o| to_u128(ip(o))), end_off.map(|o| to_u128(ip(o))), &excl);
        prop_assert_eq!(report.capacity, Some(handed.len() as u64));
        let listed = &report.ranges[0];
        prop_assert_eq!(listed.first.clone(), handed.iter().min().map(|a| from_u128(family, *a).to_string()));
        prop_assert_eq!(listed.last.clone(), handed.iter().max().map(|a| from_u128(family, *a).to_string()));
    }

    /// For small ranges, a host-local set's listed addresses are exactly those its allocator
    /// walks, and what host-local refuses is refused.
    #[test]
    fn host_local_lists_what_its_allocator_hands_out(
        cidrs in any::<bool>().prop_flat_map(|v6| proptest::collection::vec(small_cidr(v6), 1..3)),
        bounds in proptest::collection::vec((proptest::option::of(0u128..1100), proptest::option::of(0u128..1100), proptest::option::of(0u128..1100)), 2),
    ) {
        let mut ranges = Vec::new();
        let mut walks = Vec::new();
        for (cidr, (s, e, g)) in cidrs.iter().zip(&bounds) {
            let family = cidr.family();
            let at = |off: u128| cidr.first() + off;
            let mut range = json!({"subnet": cidr.to_string()});
            if let Some(s) = s { range["rangeStart"] = json!(from_u128(family, at(*s)).to_string()); }
            if let Some(e) = e { range["rangeEnd"] = json!(from_u128(family, at(*e)).to_string()); }
            if let Some(g) = g { range["gateway"] = json!(from_u128(family, at(*g)).to_string()); }
            ranges.push(range);
            walks.push(host_local_walk(*cidr, s.map(at), e.map(at), g.map(at)));
        }
        let (report, problems) = read_plugin(json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [ranges]}}));
        let overlap = walks.len() == 2 && cidrs[0].first() <= cidrs[1].last() && cidrs[1].first() <= cidrs[0].last();
        let accepted = walks.iter().all(Option::is_some);
        if !accepted {
            prop_assert!(!problems.is_valid(), "host-local refuses it: {:?}", report);
        } else if !overlap {
            prop_assert!(problems.is_valid(), "{:?}", problems);
            let total: usize = walks.iter().flatten().map(Vec::len).sum();
            prop_assert_eq!(report.capacity, Some(total as u64));
            for (listed, (walk, cidr)) in report.ranges.iter().zip(walks.iter().flatten().zip(&cidrs)) {
                let family = cidr.family();
                prop_assert_eq!(listed.usable, walk.len() as u64);
                prop_assert_eq!(listed.first.clone(), walk.first().map(|a| from_u128(family, *a).to_string()));
                prop_assert_eq!(listed.last.clone(), walk.last().map(|a| from_u128(family, *a).to_string()));
            }
        }
    }

    #[test]
    fn arbitrary_ipam_never_panics(text in "\\PC{0,60}", key in "(range|subnet|ranges|exclude|ipRanges|range_start|gateway|rangeStart)") {
        let _ = read(json!({"type": "whereabouts", key.clone(): text.clone()}));
        let _ = read(json!({"type": "host-local", key: text}));
    }
}

/// host-local `range.go` `Range.Overlaps`: a range that hands out nothing (rangeStart on
/// 198.18.0.7, the /29's default rangeEnd .6 before it) still overlaps a range that contains
/// its start, and host-local refuses the set ("subnets … overlap"). Found by
/// `host_local_lists_what_its_allocator_hands_out`.
#[test]
fn an_empty_range_whose_start_another_range_contains_overlaps_it() {
    let (_, problems) = read_plugin(
        json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [[
            {"subnet": "198.18.0.0/23", "rangeStart": "198.18.0.7"},
            {"subnet": "198.18.0.0/29", "rangeStart": "198.18.0.7"}
        ]]}}),
    );
    assert!(
        problems
            .errors
            .iter()
            .any(|e| e.message.contains("overlaps")),
        "{:?}",
        problems.errors
    );
    // Alone, the empty range is accepted: host-local takes it and hands out nothing.
    let (report, problems) = read_plugin(
        json!({"cniVersion": "0.3.1", "ipam": {"type": "host-local", "ranges": [[
            {"subnet": "198.18.0.0/29", "rangeStart": "198.18.0.7"}
        ]]}}),
    );
    assert!(problems.is_valid(), "{:?}", problems.errors);
    assert_eq!(report.capacity, Some(0));
}
