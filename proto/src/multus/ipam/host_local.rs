//! host-local's IPAM: `subnet` or `ranges[][]` with `rangeStart`, `rangeEnd` and `gateway`,
//! counted as its allocator hands addresses out, on each node separately.

use serde_json::Value;

use crate::cidr::{AddrRange, Cidr, Family, count_usable};
use crate::field::{Field, OwnedPath, Problems};

use super::range::{ip_field, range_report, saturate};
use super::{IpamReport, Scope};

/// host-local: a range runs from `rangeStart` (default: network + 1) to `rangeEnd` (default: the
/// last address, less the broadcast address for IPv4), less the gateway (default: network + 1).
/// `ranges` is a list of range sets; a pod takes one address from each set.
pub(super) fn host_local(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
    let mut report = IpamReport::new(None, Scope::PerNode);
    report.notes.push("host-local allocates on each node separately: pods on different nodes can get the same address; whereabouts gives cluster-wide unique addresses".into());
    let map = field.value();
    let mut sets: Vec<Vec<(String, &Value)>> = Vec::new();
    if let Some(list) = map.get("ranges") {
        let path = field.child_path("ranges");
        for (i, set) in path
            .at(list)
            .list(problems)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let set_path = OwnedPath::index(path.as_str(), i);
            let items = set_path.at(set).list(problems).unwrap_or_default();
            sets.push(
                items
                    .iter()
                    .enumerate()
                    .map(|(j, r)| {
                        (
                            OwnedPath::index(set_path.as_str(), j).as_str().to_string(),
                            r,
                        )
                    })
                    .collect(),
            );
        }
    } else if map.get("subnet").is_some() {
        sets.push(vec![(field.path().to_string(), map)]);
    }
    if sets.is_empty() || sets.iter().all(Vec::is_empty) {
        problems.error(
            field.child_path("ranges").as_str(),
            "host-local needs `ranges` (a list of range lists) or `subnet`",
        );
        return report;
    }
    let mut capacity: Option<u128> = None;
    for set in sets {
        let mut set_total: u128 = 0;
        for (base, entry) in set {
            let at = |key: &str| OwnedPath::child(&base, key);
            let subnet_path = at("subnet");
            let Some(text) = subnet_path
                .at(entry.get("subnet").unwrap_or(&Value::Null))
                .required_string(problems, "a host-local range needs a `subnet` CIDR")
            else {
                continue;
            };
            let cidr = match text.parse::<Cidr>() {
                Ok(c) => c,
                Err(e) => {
                    problems.error(subnet_path.as_str(), e.to_string());
                    continue;
                }
            };
            let family = cidr.family();
            if cidr.prefix + 2 > family.bits() {
                problems.error(
                    subnet_path.as_str(),
                    format!(
                        "{} is too small for host-local: it needs at least a /{}",
                        cidr.network(),
                        family.bits() - 2
                    ),
                );
                continue;
            }
            let network = cidr.first();
            let last = if family == Family::V4 {
                cidr.last() - 1
            } else {
                cidr.last()
            };
            let mut bound =
                |key: &str, default: u128| match ip_field(&at(key), entry.get(key), problems) {
                    Some(v) if (cidr.first()..=cidr.last()).contains(&v) => v,
                    Some(_) => {
                        problems.error(
                            at(key).as_str(),
                            format!("lies outside subnet {}", cidr.network()),
                        );
                        default
                    }
                    None => default,
                };
            let start = bound("rangeStart", network + 1);
            let end = bound("rangeEnd", last);
            let gateway = bound("gateway", network + 1);
            let range = AddrRange { family, start, end };
            let gw = [AddrRange {
                family,
                start: gateway,
                end: gateway,
            }];
            let usable = count_usable(range, &gw, false);
            set_total = set_total.saturating_add(usable);
            report.ranges.push(range_report(cidr, range, usable));
        }
        capacity = Some(capacity.map_or(set_total, |c| c.min(set_total)));
    }
    report.capacity = capacity.map(saturate);
    report
}
