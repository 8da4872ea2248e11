//! whereabouts `IPPool` objects (`whereabouts.cni.cncf.io/v1alpha1`), as
//! `kubectl get ippools.whereabouts.cni.cncf.io -A -o yaml` prints them, and what they say
//! against the live pods: reservations of pods that are gone (leaked), addresses free now, and
//! pools whose ranges overlap.
//!
//! The format, from k8snetworkplumbingwg/whereabouts:
//!
//! * `pkg/api/whereabouts.cni.cncf.io/v1alpha1/ippool_types.go`: `spec.range` is a CIDR;
//!   `spec.allocations` maps an offset (decimal text) to `{id, podref, ifname, ipamclaimref}`,
//!   `podref` being `namespace/name` of the pod.
//! * `pkg/storage/kubernetes/ipam.go`, `toIPReservationList`: the address of an allocation is
//!   the offset added to the address of `spec.range` as `net.ParseCIDR` returns it (the address
//!   as written); an offset that does not parse as a non-negative integer is ignored (logged)
//!   — so its address is free again for whereabouts. `IPPoolName` names a pool
//!   `[NETWORK_NAME-]RANGE` with `:` and `/` replaced by `-`.
//! * `pkg/reconciler/iploop.go` (`findOrphanedIPsPerPool`, `isPodAlive`) and
//!   `pkg/reconciler/wrappedPod.go`: whereabouts' own cleanup takes a reservation as orphaned
//!   when no live pod has its `podref`, or when that pod's `network-status` (default network
//!   left out) does not list the address; a reservation without `podref` is skipped.
//! * `pkg/iphelpers` (see [`super::ipam`]'s whereabouts rules): the network and the last
//!   address of a range are never handed out.
//!
//! This module reads no files and never panics on bad input: problems are filed under
//! `IPPool NAMESPACE/NAME: FIELD`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::pods::LivePod;
use crate::cidr::{Cidr, from_u128, to_u128};
use crate::field::{Field, Problems};

/// API group and version of whereabouts' IPPools.
pub const IPPOOL_API_VERSION: &str = "whereabouts.cni.cncf.io/v1alpha1";
/// Their kind.
pub const IPPOOL_KIND: &str = "IPPool";

/// One reservation of an IPPool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reservation {
    /// The key in `spec.allocations`: the offset from the range's address.
    pub offset: String,
    /// The reserved address (offset added to the address of `spec.range`).
    pub address: IpAddr,
    /// `podref`: `namespace/name` of the pod; absent in reservations of old whereabouts.
    pub pod_ref: Option<String>,
    /// `id`: the container (sandbox) ID the address was handed to.
    pub container_id: Option<String>,
    /// `ifname`: the pod's interface, when whereabouts recorded it.
    pub ifname: Option<String>,
}

/// One IPPool object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpPool {
    /// `metadata.namespace` (whereabouts' own namespace, not the NAD's).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.range` as written.
    pub range: String,
    /// `spec.range` parsed.
    #[serde(skip)]
    pub cidr: Cidr,
    /// The reservations whereabouts reads back, in offset order.
    pub reservations: Vec<Reservation>,
}

impl IpPool {
    /// `namespace/name`.
    pub fn namespaced_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The addresses whereabouts hands out from this range when no NAD narrows it: all but
    /// the network and the last address; none below 2 host bits (`pkg/iphelpers`).
    pub fn handed_out(&self) -> Option<(u128, u128)> {
        let (first, last) = (self.cidr.first(), self.cidr.last());
        (last - first >= 2).then_some((first + 1, last - 1))
    }
}

/// Reads every IPPool of a parsed YAML stream: `List`/`IPPoolList` documents (their `items`)
/// and bare `IPPool` documents. Other kinds are skipped with a warning; a pool without a name
/// or a parsable `spec.range` is an error naming the pool and field.
pub fn read_ippools(docs: &[Value], problems: &mut Problems) -> Vec<IpPool> {
    let mut pools = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let label = format!("document {}", index + 1);
        match doc.get("kind").and_then(Value::as_str) {
            Some("List" | "IPPoolList") => {
                let path = format!("{label}.items");
                let items = Field::new(&path, doc.get("items").unwrap_or(&Value::Null));
                for (i, item) in items.list(problems).unwrap_or_default().iter().enumerate() {
                    let item_label = format!("{path}[{i}]");
                    match item.get("kind").and_then(Value::as_str) {
                        Some(IPPOOL_KIND) | None => {
                            if let Some(pool) = read_ippool(&item_label, item, problems) {
                                pools.push(pool);
                            }
                        }
                        Some(other) => problems.warn(
                            item_label,
                            format!("skipped: kind {other:?} is not {IPPOOL_KIND}"),
                        ),
                    }
                }
            }
            Some(IPPOOL_KIND) => {
                if let Some(pool) = read_ippool(&label, doc, problems) {
                    pools.push(pool);
                }
            }
            other => problems.warn(
                label,
                format!(
                    "skipped: kind {:?} is neither {IPPOOL_KIND} nor a List of them",
                    other.unwrap_or("")
                ),
            ),
        }
    }
    pools
}

fn read_ippool(label: &str, doc: &Value, problems: &mut Problems) -> Option<IpPool> {
    let (namespace, name) = super::live_object_name(
        label,
        doc,
        IPPOOL_API_VERSION,
        &format!("an {IPPOOL_KIND}"),
        problems,
    )?;
    let prefix = format!("{IPPOOL_KIND} {namespace}/{name}");
    let mut local = Problems::default();
    let pool = read_spec(doc, &mut local).map(|(range, cidr, reservations)| IpPool {
        namespace,
        name,
        range,
        cidr,
        reservations,
    });
    problems.absorb_under(&prefix, local);
    pool
}

fn read_spec(doc: &Value, problems: &mut Problems) -> Option<(String, Cidr, Vec<Reservation>)> {
    let range = Field::new(
        "spec.range",
        doc.pointer("/spec/range").unwrap_or(&Value::Null),
    )
    .required_string(
        problems,
        "an IPPool needs its range (whereabouts writes it when it creates the pool)",
    )?;
    let cidr = match range.parse::<Cidr>() {
        Ok(c) => c,
        Err(e) => {
            problems.error("spec.range", e.to_string());
            return None;
        }
    };
    let allocations = Field::new(
        "spec.allocations",
        doc.pointer("/spec/allocations").unwrap_or(&Value::Null),
    )
    .mapping(problems)?;
    let base = to_u128(cidr.addr);
    let mut reservations = Vec::new();
    for (offset, entry) in allocations {
        let path = format!("spec.allocations[{offset:?}]");
        // toIPReservationList: a key that is not a non-negative integer is skipped.
        let Some(number) = offset
            .parse::<u128>()
            .ok()
            .filter(|_| offset.bytes().all(|b| b.is_ascii_digit()))
        else {
            problems.warn(
                path,
                "the key is not an offset (a non-negative whole number): whereabouts ignores \
                 this reservation, so its address counts as free",
            );
            continue;
        };
        let address = base
            .checked_add(number)
            .filter(|a| *a <= cidr.last() && cidr.contains(from_u128(cidr.family(), *a)))
            .map(|a| from_u128(cidr.family(), a));
        let Some(address) = address else {
            problems.warn(
                path,
                format!(
                    "offset {number} from {} lies outside {range}: whereabouts never hands \
                     out such an address; the reservation holds nothing",
                    cidr.addr
                ),
            );
            continue;
        };
        let Some(map) = Field::new(&path, entry).mapping(problems) else {
            continue;
        };
        let text = |key: &str, problems: &mut Problems| {
            let key_path = format!("{path}.{key}");
            Field::new(&key_path, map.get(key).unwrap_or(&Value::Null))
                .string(problems)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let pod_ref = text("podref", problems);
        if let Some(p) = &pod_ref
            && p.split('/').count() != 2
        {
            problems.warn(
                format!("{path}.podref"),
                format!("{p:?} is not namespace/name: no pod can match it"),
            );
        }
        reservations.push(Reservation {
            offset: offset.clone(),
            address,
            pod_ref,
            container_id: text("id", problems),
            ifname: text("ifname", problems),
        });
    }
    reservations.sort_by_key(|r| to_u128(r.address));
    Some((range.to_string(), cidr, reservations))
}

/// A reservation whose pod is gone, or no longer holds the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeakedReservation {
    /// `namespace/name` of the pool.
    pub pool: String,
    /// The reserved address.
    pub address: IpAddr,
    /// The `podref` it names.
    pub pod_ref: String,
    /// Why it is leaked, in a sentence (the pool left unsaid).
    pub reason: String,
}

/// Two pools whose ranges overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolOverlap {
    /// `namespace/name` of each pool.
    pub pools: [String; 2],
    /// Their ranges.
    pub ranges: [String; 2],
}

/// One pool's addresses now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    /// `namespace/name` of the pool.
    pub pool: String,
    /// `spec.range`.
    pub range: String,
    /// Addresses whereabouts hands out from it (all but the network and last address).
    pub usable: u64,
    /// Reservations among those.
    pub reserved: u64,
    /// Of the reserved, how many are leaked.
    pub leaked: u64,
    /// `usable - reserved`: what new pods can get now.
    pub free: u64,
}

/// What the pools say against the pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolCheck {
    /// Every pool's addresses now.
    pub usage: Vec<PoolUsage>,
    /// Reservations whose pod is gone or does not hold the address.
    pub leaked: Vec<LeakedReservation>,
    /// Pairs of pools whose ranges overlap.
    pub overlaps: Vec<PoolOverlap>,
    /// Namespaces named by reservations but with no pod in the pods given: their reservations
    /// were not judged (a pods list of one namespace cannot tell).
    pub unchecked_namespaces: Vec<String>,
}

/// Checks the pools against the pods: a reservation is leaked, as whereabouts' reconciler
/// judges it, when its pod is not listed or its pod's `network-status` does not hold the
/// address — judged only for namespaces the pods list covers (it has at least one pod there),
/// so `kubectl get pods -n X` does not make every other namespace look leaked.
pub fn check_pools(pools: &[IpPool], pods: &[LivePod]) -> PoolCheck {
    let mut check = PoolCheck::default();
    let covered: BTreeSet<&str> = pods.iter().map(|p| p.namespace.as_str()).collect();
    let mut unchecked: BTreeSet<String> = BTreeSet::new();
    for pool in pools {
        let mut leaked = 0u64;
        let mut reserved = 0u64;
        let handed_out = pool.handed_out();
        for r in &pool.reservations {
            let n = to_u128(r.address);
            if handed_out.is_some_and(|(f, l)| (f..=l).contains(&n)) {
                reserved += 1;
            }
            let Some(pod_ref) = &r.pod_ref else { continue };
            let namespace = pod_ref.split('/').next().unwrap_or_default();
            if !covered.contains(namespace) {
                unchecked.insert(namespace.to_string());
                continue;
            }
            let reason = match pods.iter().find(|p| &p.pod_ref() == pod_ref) {
                None => format!(
                    "{} is reserved for pod {pod_ref}, which does not exist",
                    r.address
                ),
                Some(pod) if !pod.secondary_addresses().contains(&r.address) => format!(
                    "{} is reserved for pod {}, whose network-status does not list it{}",
                    r.address,
                    pod.described(),
                    if pod.status.is_none() {
                        " (it has no network-status yet)"
                    } else {
                        ""
                    }
                ),
                Some(_) => continue,
            };
            leaked += 1;
            check.leaked.push(LeakedReservation {
                pool: pool.namespaced_name(),
                address: r.address,
                pod_ref: pod_ref.clone(),
                reason,
            });
        }
        let usable = handed_out.map_or(0, |(f, l)| u64::try_from(l - f + 1).unwrap_or(u64::MAX));
        check.usage.push(PoolUsage {
            pool: pool.namespaced_name(),
            range: pool.range.clone(),
            usable,
            reserved,
            leaked,
            free: usable.saturating_sub(reserved),
        });
    }
    for (i, a) in pools.iter().enumerate() {
        for b in &pools[i + 1..] {
            let overlap = a.cidr.family() == b.cidr.family()
                && a.cidr.first() <= b.cidr.last()
                && b.cidr.first() <= a.cidr.last();
            if overlap {
                check.overlaps.push(PoolOverlap {
                    pools: [a.namespaced_name(), b.namespaced_name()],
                    ranges: [a.range.clone(), b.range.clone()],
                });
            }
        }
    }
    check.unchecked_namespaces = unchecked.into_iter().collect();
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multus::pods::read_pods;
    use crate::yaml::parse_documents;
    use proptest::prelude::*;

    // Written from whereabouts' ippool_types.go and ipam.go; the header cites them.
    const POOLS: &str = include_str!("../../../deploy/examples/live/ippools.yaml");
    const PODS: &str = include_str!("../../../deploy/examples/live/pods-healthy.yaml");

    fn pools(text: &str) -> (Vec<IpPool>, Problems) {
        let docs = parse_documents(text).expect("valid YAML");
        let mut problems = Problems::default();
        let pools = read_ippools(&docs, &mut problems);
        (pools, problems)
    }

    fn pods(text: &str) -> Vec<LivePod> {
        let docs = parse_documents(text).expect("valid YAML");
        let mut problems = Problems::default();
        let pods = read_pods(&docs, &mut problems);
        assert!(problems.is_valid(), "{problems:?}");
        pods
    }

    fn pool(range: &str, allocations: &str) -> String {
        format!(
            "apiVersion: {IPPOOL_API_VERSION}\nkind: IPPool\nmetadata: {{name: p, namespace: kube-system}}\nspec:\n  range: {range}\n  allocations: {allocations}\n"
        )
    }

    #[test]
    fn the_example_against_the_healthy_pods() {
        let (pools, problems) = pools(POOLS);
        assert_eq!(problems, Problems::default());
        let check = check_pools(&pools, &pods(PODS));
        let usage: Vec<(&str, u64, u64, u64, u64)> = check
            .usage
            .iter()
            .map(|u| (u.pool.as_str(), u.usable, u.reserved, u.leaked, u.free))
            .collect();
        // whereabouts hands out all but the network and the last address (pkg/iphelpers).
        assert_eq!(
            usage,
            [
                ("kube-system/192.168.20.0-24", 254, 5, 1, 249),
                ("kube-system/192.168.30.0-26", 62, 2, 0, 60),
                ("kube-system/tenant-net-192.168.30.0-24", 254, 1, 0, 253),
            ]
        );
        assert_eq!(check.leaked.len(), 1);
        assert_eq!(check.leaked[0].address.to_string(), "192.168.20.9");
        assert_eq!(
            check.leaked[0].reason,
            "192.168.20.9 is reserved for pod rook-ceph/rook-ceph-osd-2-old-5d7b9c8f6-k2j4h, \
             which does not exist"
        );
        assert_eq!(
            check.overlaps,
            [PoolOverlap {
                pools: [
                    "kube-system/192.168.30.0-26".into(),
                    "kube-system/tenant-net-192.168.30.0-24".into()
                ],
                ranges: ["192.168.30.0/26".into(), "192.168.30.0/24".into()],
            }]
        );
        assert_eq!(check.unchecked_namespaces, ["tenant-a"]);
        // The reservation's fields as whereabouts writes them.
        let r = &pools[0].reservations[3];
        assert_eq!(
            r.pod_ref.as_deref(),
            Some("rook-ceph/rook-ceph-mgr-a-84b5c7d9f-9tq6p")
        );
        assert_eq!(r.ifname.as_deref(), Some("public"));
        assert!(r.container_id.as_deref().is_some_and(|id| id.len() == 64));
    }

    // pkg/storage/kubernetes/ipam.go, toIPReservationList: address = the address of
    // `spec.range` as net.ParseCIDR returns it (as written) + the offset; a key that is not a
    // non-negative integer is ignored.
    #[test]
    fn offsets_to_addresses() {
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            ("192.168.20.0/24", "5", Ok("192.168.20.5")),
            ("192.168.20.0/24", "254", Ok("192.168.20.254")),
            ("fd00:20::/64", "255", Ok("fd00:20::ff")),
            ("10.0.0.8/24", "2", Ok("10.0.0.10")),
            ("10.0.0.0/30", "4", Err("lies outside 10.0.0.0/30")),
            ("10.0.0.0/24", "-1", Err("the key is not an offset")),
            ("10.0.0.0/24", "0x5", Err("the key is not an offset")),
            ("10.0.0.0/24", "+5", Err("the key is not an offset")),
            (
                "10.0.0.0/24",
                "340282366920938463463374607431768211456",
                Err("the key is not an offset"),
            ),
        ];
        for (range, offset, expected) in cases {
            let text = pool(range, &format!("{{\"{offset}\": {{id: c, podref: ns/p}}}}"));
            let (pools, problems) = pools(&text);
            assert!(problems.is_valid(), "{range} {offset}: {problems:?}");
            let reservations = &pools[0].reservations;
            match expected {
                Ok(address) => {
                    assert_eq!(reservations.len(), 1, "{range} {offset}");
                    assert_eq!(reservations[0].address.to_string(), *address);
                }
                Err(warning) => {
                    assert!(reservations.is_empty(), "{range} {offset}");
                    assert!(
                        problems.warnings[0].message.contains(warning),
                        "{range} {offset}: {:?}",
                        problems.warnings
                    );
                    assert!(
                        problems.warnings[0]
                            .field
                            .starts_with("IPPool kube-system/p: spec.allocations[\"")
                    );
                }
            }
        }
    }

    // pkg/reconciler/iploop.go isPodAlive + wrappedPod.go: a reservation is orphaned when no
    // live pod has its podref, or that pod's network-status (default network left out) does
    // not list the address; one without podref is skipped.
    #[test]
    fn leak_rules() {
        let live = pods(PODS);
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "the pod holds it",
                "{\"7\": {id: c, podref: rook-ceph/rook-ceph-mon-a-5c7d9f6b4-hk2lm}}",
                None,
            ),
            (
                "the pod is gone",
                "{\"7\": {id: c, podref: rook-ceph/gone}}",
                Some("which does not exist"),
            ),
            (
                "the pod lives but holds another address",
                "{\"42\": {id: c, podref: rook-ceph/rook-ceph-mon-a-5c7d9f6b4-hk2lm}}",
                Some("whose network-status does not list it"),
            ),
            (
                "the pod's default-network address does not count",
                // 10.244.1.0/24 + 8 = mon-a's pod-network address.
                "{\"8\": {id: c, podref: rook-ceph/rook-ceph-mon-a-5c7d9f6b4-hk2lm}}",
                Some("whose network-status does not list it"),
            ),
            (
                "no podref: skipped, as whereabouts skips it",
                "{\"7\": {id: c}}",
                None,
            ),
            (
                "a namespace the pods do not cover is not judged",
                "{\"7\": {id: c, podref: elsewhere/gone}}",
                None,
            ),
        ];
        for (what, allocations, expected) in cases {
            let range = if what.contains("default-network") {
                "10.244.1.0/24"
            } else {
                "192.168.20.0/24"
            };
            let (pools, problems) = pools(&pool(range, allocations));
            assert!(problems.is_valid(), "{what}: {problems:?}");
            let check = check_pools(&pools, &live);
            match expected {
                None => assert!(check.leaked.is_empty(), "{what}: {:?}", check.leaked),
                Some(text) => {
                    assert_eq!(check.leaked.len(), 1, "{what}");
                    assert!(
                        check.leaked[0].reason.contains(text),
                        "{what}: {}",
                        check.leaked[0].reason
                    );
                    assert_eq!(check.usage[0].leaked, 1, "{what}");
                }
            }
        }
    }

    #[test]
    fn usable_addresses_and_overlaps() {
        // pkg/iphelpers: network and last address never handed out; nothing below 2 host bits.
        for (range, usable) in [
            ("10.0.0.0/30", 2),
            ("10.0.0.0/31", 0),
            ("10.0.0.0/32", 0),
            ("fd00::/120", 254),
        ] {
            let (pools, _) = pools(&pool(range, "{}"));
            assert_eq!(check_pools(&pools, &[]).usage[0].usable, usable, "{range}");
        }
        let two = |a: &str, b: &str| {
            format!(
                "{}---\n{}",
                pool(a, "{}"),
                pool(b, "{}").replace("name: p,", "name: q,")
            )
        };
        for (a, b, overlap) in [
            ("10.0.0.0/24", "10.0.0.128/25", true),
            ("10.0.0.0/25", "10.0.0.128/25", false),
            ("10.0.0.0/24", "fd00::/64", false),
            ("fd00::/64", "fd00::8000:0:0:0/65", true),
        ] {
            let (pools, problems) = pools(&two(a, b));
            assert!(problems.is_valid(), "{problems:?}");
            assert_eq!(
                check_pools(&pools, &[]).overlaps.len(),
                usize::from(overlap),
                "{a} {b}"
            );
        }
    }

    #[test]
    fn bad_objects_are_named() {
        let cases: &[(&str, String, &str)] = &[
            (
                "no range",
                format!(
                    "apiVersion: {IPPOOL_API_VERSION}\nkind: IPPool\nmetadata: {{name: p, namespace: kube-system}}\nspec: {{}}\n"
                ),
                "IPPool kube-system/p: spec.range: an IPPool needs its range",
            ),
            (
                "a range that is not a CIDR",
                pool("10.0.0/24", "{}"),
                "IPPool kube-system/p: spec.range: ",
            ),
            (
                "allocations that are a list",
                pool("10.0.0.0/24", "[1]"),
                "IPPool kube-system/p: spec.allocations: expected a mapping",
            ),
            (
                "an allocation that is not a mapping",
                pool("10.0.0.0/24", "{\"1\": x}"),
                "IPPool kube-system/p: spec.allocations[\"1\"]: expected a mapping",
            ),
            (
                "a podref that is not a string",
                pool("10.0.0.0/24", "{\"1\": {podref: [a]}}"),
                "IPPool kube-system/p: spec.allocations[\"1\"].podref: expected a string",
            ),
            (
                "no name",
                format!(
                    "apiVersion: {IPPOOL_API_VERSION}\nkind: IPPool\nspec: {{range: 10.0.0.0/24}}\n"
                ),
                "document 1.metadata.name: an IPPool needs a name",
            ),
            (
                "the wrong apiVersion",
                "apiVersion: v1\nkind: IPPool\nmetadata: {name: p}\n".to_string(),
                "document 1.apiVersion: expected \"whereabouts.cni.cncf.io/v1alpha1\"",
            ),
        ];
        for (what, text, expected) in cases {
            let (_, problems) = pools(text);
            let errors: Vec<String> = problems.errors.iter().map(ToString::to_string).collect();
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{what}: expected {expected:?} among {errors:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_documents_never_panic(text in "\\PC{0,200}") {
            if let Ok(docs) = parse_documents(&text) {
                let mut problems = Problems::default();
                let pools = read_ippools(&docs, &mut problems);
                let _ = check_pools(&pools, &[]);
            }
        }

        #[test]
        fn arbitrary_ranges_and_offsets_never_panic(range in "[0-9a-f.:/]{1,40}", offset in "[0-9-]{1,45}") {
            let docs = parse_documents(&pool(&format!("\"{range}\""), &format!("{{\"{offset}\": {{podref: a/b}}}}")));
            if let Ok(docs) = docs {
                let mut problems = Problems::default();
                let pools = read_ippools(&docs, &mut problems);
                let _ = check_pools(&pools, &[]);
            }
        }
    }
}
