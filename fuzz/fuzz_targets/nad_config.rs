//! NAD `spec.config` strings (CNI configs, conflists, IPAM sections): never panic, and the
//! capacity figures stay within the address space — no range hands out more addresses than its
//! CIDR holds or than lie between its first and last, its first and last lie in its CIDR, a
//! range set holds no more than its ranges, and no pod capacity exceeds what the ranges hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::cidr::{Cidr, parse_ip, to_u128};
use multinet_proto::field::Problems;
use multinet_proto::multus::nad::read_config;

fuzz_target!(|data: &str| {
    let mut problems = Problems::default();
    let Some(summary) = read_config("NetworkAttachmentDefinition fuzz/fuzz", data, &mut problems)
    else {
        return;
    };
    let ipam = &summary.ipam;
    let mut total: u128 = 0;
    for range in &ipam.ranges {
        let cidr: Cidr = range.cidr.parse().expect("a range's CIDR parses");
        assert!(u128::from(range.usable) <= cidr.size(), "{range:?}");
        assert_eq!(range.first.is_some(), range.last.is_some(), "{range:?}");
        if let (Some(first), Some(last)) = (&range.first, &range.last) {
            let first = parse_ip(first).expect("first parses");
            let last = parse_ip(last).expect("last parses");
            assert!(cidr.contains(first) && cidr.contains(last), "{range:?}");
            assert!(to_u128(first) <= to_u128(last), "{range:?}");
            assert!(
                u128::from(range.usable) <= to_u128(last) - to_u128(first) + 1,
                "{range:?}"
            );
        } else {
            assert_eq!(range.usable, 0, "{range:?}");
        }
        total = total.saturating_add(u128::from(range.usable));
    }
    let mut taken = 0;
    for set in &ipam.sets {
        let held: u128 = ipam.ranges[taken..taken + set.ranges]
            .iter()
            .map(|r| u128::from(r.usable))
            .sum();
        assert!(u128::from(set.usable) <= held, "{set:?}");
        taken += set.ranges;
    }
    assert!(ipam.sets.is_empty() || taken == ipam.ranges.len());
    if let Some(capacity) = ipam.capacity
        && !ipam.ranges.is_empty()
    {
        assert!(
            u128::from(capacity) <= total,
            "capacity {capacity} > {total}"
        );
    }
});
