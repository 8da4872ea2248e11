//! host-local's IPAM: range sets from `runtimeConfig.ipRanges`, the top-level `subnet` and
//! `ranges[][]`, each range a `subnet` with `rangeStart`, `rangeEnd` and `gateway`, read,
//! refused and counted as host-local does it, on each node separately.
//!
//! The rules, and where they come from (containernetworking/plugins,
//! `plugins/ipam/host-local/backend/allocator`):
//!
//! * `config.go`, `LoadIPAMConfig`: the range sets are `runtimeConfig.ipRanges` (beside `ipam`,
//!   in the plugin's config), then the top-level range (`subnet` with its `rangeStart`,
//!   `rangeEnd`, `gateway` — only when `subnet` is given), then `ranges`, each its own set;
//!   none is an error ("no IP ranges specified") unless `rangeFromFile` names a file on the
//!   node. More than one set of a family needs `cniVersion` 0.3.0 or later ("CNI version … does
//!   not support more than 1 address per family"); range sets must not overlap ("range set …
//!   overlaps with …"). A pod takes one address from every set.
//! * `range_set.go`, `RangeSet.Canonicalize`: a set is not empty, holds one family ("mixed
//!   address families"), and its ranges do not overlap.
//! * `range.go`, `Range.Canonicalize`: the subnet has no host bits set ("Network has host bits
//!   set") and at least 2 host bits ("too small to allocate from"); the gateway defaults to the
//!   subnet's first address + 1; `rangeStart` (default: the same) and `rangeEnd` (default: the
//!   last address, less the broadcast address for IPv4) must lie in the subnet, in order
//!   (`Range.Contains`). Addresses decode as Go `net.IP` / `net.ParseCIDR`: no leading zeros.
//! * `allocator.go`, `RangeIter.Next`: every address from `rangeStart` to `rangeEnd` is handed
//!   out except the range's gateway.

use serde_json::{Map, Value};

use crate::cidr::{AddrRange, Cidr, Family, count_usable, from_u128, to_u128};
use crate::field::{Field, OwnedPath, Problems};

use super::range::{first_last_free, parse_ip_sloppy, range_report, saturate, strict_ip_field};
use super::{IpamReport, PluginContext, RangeSetReport, Scope};

/// Keys host-local does not read, with what it reads instead.
const FOREIGN_KEYS: &[(&str, &str)] = &[
    ("range", "it reads `subnet`"),
    ("range_start", "it reads `rangeStart`"),
    ("range_end", "it reads `rangeEnd`"),
    (
        "exclude",
        "host-local has no exclusions: split the range into several ranges of one set instead",
    ),
    (
        "ipRanges",
        "it reads `ranges` here, and `ipRanges` only under the plugin's `runtimeConfig`",
    ),
];

/// One range of a set, as host-local canonicalises it.
struct HostLocalRange {
    path: String,
    cidr: Cidr,
    start: u128,
    end: u128,
    gateway: Option<u128>,
}

/// host-local: see the module documentation for every rule and its source.
pub(super) fn host_local(
    field: Field<'_, '_>,
    context: PluginContext<'_, '_>,
    problems: &mut Problems,
) -> IpamReport {
    let mut report = IpamReport::new(None, Scope::PerNode);
    report.notes.push("host-local allocates on each node separately: pods on different nodes can get the same address; whereabouts gives cluster-wide unique addresses".into());
    let empty = Map::new();
    let map = field.value().as_object().unwrap_or(&empty);
    for (foreign, instead) in FOREIGN_KEYS {
        if map.contains_key(*foreign) {
            problems.warn(
                field.child_path(foreign).as_str(),
                format!("host-local ignores `{foreign}`; {instead}"),
            );
        }
    }

    // (path of the set, its ranges with their paths)
    let mut sets: Vec<(String, Vec<(String, &Value)>)> = Vec::new();
    if let Some(runtime) = context.runtime_config
        && let Some(list) = runtime.value().get("ipRanges")
    {
        collect_sets(&runtime.child_path("ipRanges"), list, &mut sets, problems);
    }
    let has_subnet = map
        .get("subnet")
        .is_some_and(|s| !s.is_null() && s.as_str() != Some(""));
    if has_subnet {
        sets.push((
            field.path().to_string(),
            vec![(field.path().to_string(), field.value())],
        ));
    } else {
        for key in ["rangeStart", "rangeEnd", "gateway"] {
            if map.contains_key(key) {
                problems.warn(
                    field.child_path(key).as_str(),
                    "ignored: without a top-level `subnet`, host-local drops the top-level range",
                );
            }
        }
    }
    if let Some(list) = map.get("ranges") {
        collect_sets(&field.child_path("ranges"), list, &mut sets, problems);
    }
    if sets.is_empty() {
        if map.get("rangeFromFile").is_some() {
            report.notes.push("rangeFromFile: the range is read from a file on each node; multinet cannot know the capacity".into());
        } else {
            problems.error(
                field.child_path("ranges").as_str(),
                "host-local needs `ranges` (a list of range sets), a `subnet`, or \
                 `runtimeConfig.ipRanges` (host-local: \"no IP ranges specified\")",
            );
        }
        return report;
    }

    let mut parsed_sets: Vec<(String, Vec<HostLocalRange>)> = Vec::new();
    for (set_path, items) in sets {
        if items.is_empty() {
            problems.error(
                set_path.as_str(),
                "an empty range set: host-local refuses it (\"empty range set\")",
            );
            continue;
        }
        let ranges: Vec<HostLocalRange> = items
            .iter()
            .filter_map(|(path, value)| read_range(path, value, problems))
            .collect();
        if ranges.len() != items.len() {
            continue; // its errors are filed; a set with a refused range is refused
        }
        if let Some(other) = ranges
            .iter()
            .find(|r| r.cidr.family() != ranges[0].cidr.family())
        {
            problems.error(
                other.path.as_str(),
                format!(
                    "{} is {} while this range set starts with {} {}: host-local refuses \
                     mixed address families in one set",
                    other.cidr,
                    other.cidr.family(),
                    ranges[0].cidr.family(),
                    ranges[0].cidr
                ),
            );
            continue;
        }
        let mut overlapping = false;
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if overlap(a, b) {
                    overlapping = true;
                    problems.error(
                        b.path.as_str(),
                        format!(
                            "{} overlaps {} of the same range set ({}): host-local refuses it \
                             (\"subnets … overlap\")",
                            describe(b),
                            describe(a),
                            a.path
                        ),
                    );
                }
            }
        }
        if !overlapping {
            parsed_sets.push((set_path, ranges));
        }
    }
    for (i, (path_a, a)) in parsed_sets.iter().enumerate() {
        for (path_b, b) in &parsed_sets[i + 1..] {
            if let Some((x, y)) = a
                .iter()
                .flat_map(|x| b.iter().map(move |y| (x, y)))
                .find(|(x, y)| overlap(x, y))
            {
                problems.error(
                    path_b.as_str(),
                    format!(
                        "this range set overlaps the one at {path_a} ({} and {}): host-local \
                         refuses it (\"range set … overlaps with …\")",
                        describe(y),
                        describe(x)
                    ),
                );
            }
        }
    }
    for family in [Family::V4, Family::V6] {
        let count = parsed_sets
            .iter()
            .filter(|(_, r)| r[0].cidr.family() == family)
            .count();
        if count > 1 && !cni_version_allows_several(context.cni_version) {
            problems.error(
                field.child_path("ranges").as_str(),
                format!(
                    "{count} {family} range sets, but cniVersion {} allows one address per \
                     family: host-local refuses it (\"CNI version … does not support more than 1 \
                     address per family\"); use cniVersion 0.3.0 or later",
                    context
                        .cni_version
                        .map_or("(none, read as 0.1.0)".to_string(), |v| format!("{v:?}"))
                ),
            );
        }
    }

    let mut capacity: Option<u128> = None;
    for (_, ranges) in &parsed_sets {
        let mut total: u128 = 0;
        for r in ranges {
            let family = r.cidr.family();
            let span = AddrRange {
                family,
                start: r.start,
                end: r.end,
            };
            let gateway: Vec<AddrRange> = r
                .gateway
                .iter()
                .map(|g| AddrRange {
                    family,
                    start: *g,
                    end: *g,
                })
                .collect();
            let usable = count_usable(span, &gateway, false);
            total = total.saturating_add(usable);
            report.ranges.push(range_report(
                r.cidr,
                first_last_free(span, &gateway),
                usable,
            ));
        }
        if total > u128::from(u64::MAX) {
            report.notes.push(format!(
                "a {} range set hands out {total} addresses, more than multinet counts (shown \
                 as {})",
                ranges[0].cidr.family(),
                u64::MAX
            ));
        }
        report.sets.push(RangeSetReport {
            family: ranges[0].cidr.family(),
            ranges: ranges.len(),
            usable: saturate(total),
        });
        capacity = Some(capacity.map_or(total, |c| c.min(total)));
    }
    report.capacity = capacity.map(saturate);
    report
}

/// Appends the range sets of a `ranges` / `runtimeConfig.ipRanges` list.
fn collect_sets<'v>(
    path: &OwnedPath,
    list: &'v Value,
    sets: &mut Vec<(String, Vec<(String, &'v Value)>)>,
    problems: &mut Problems,
) {
    for (i, set) in path
        .at(list)
        .list(problems)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let set_path = OwnedPath::index(path.as_str(), i);
        let Some(items) = set_path.at(set).list(problems) else {
            continue;
        };
        sets.push((
            set_path.as_str().to_string(),
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
        ));
    }
}

/// One range as `Range.Canonicalize` reads it; `None` when host-local refuses it (filed).
fn read_range(base: &str, entry: &Value, problems: &mut Problems) -> Option<HostLocalRange> {
    let at = |key: &str| OwnedPath::child(base, key);
    Field::new(base, entry).mapping(problems)?;
    let subnet_path = at("subnet");
    let text = subnet_path
        .at(entry.get("subnet").unwrap_or(&Value::Null))
        .required_string(problems, "a host-local range needs a `subnet` CIDR")?;
    let cidr = match text.parse::<Cidr>() {
        Ok(c) => c,
        Err(e) => {
            let sloppy = text
                .split_once('/')
                .and_then(|(a, _)| parse_ip_sloppy(a))
                .map_or(String::new(), |_| {
                    " (octets with leading zeros are refused: Go's net.ParseCIDR)".to_string()
                });
            problems.error(
                subnet_path.as_str(),
                format!("{e}{sloppy}; host-local refuses the config"),
            );
            return None;
        }
    };
    let family = cidr.family();
    let mut valid = true;
    if to_u128(cidr.addr) != cidr.first() {
        problems.error(
            subnet_path.as_str(),
            format!(
                "{text} has host bits set: host-local refuses it (\"Network has host bits set\"); \
                 the network is {}",
                cidr.network()
            ),
        );
        valid = false;
    }
    if cidr.prefix + 2 > family.bits() {
        problems.error(
            subnet_path.as_str(),
            format!(
                "{} is too small for host-local (\"too small to allocate from\"): it needs at \
                 least 2 host bits, a /{} or wider",
                cidr.network(),
                family.bits() - 2
            ),
        );
        valid = false;
    }
    let gateway_path = at("gateway");
    let gateway = strict_ip_field(&gateway_path, entry.get("gateway"), problems);
    let start = strict_ip_field(&at("rangeStart"), entry.get("rangeStart"), problems);
    let end = strict_ip_field(&at("rangeEnd"), entry.get("rangeEnd"), problems);
    if !valid
        || [
            ("gateway", gateway),
            ("rangeStart", start),
            ("rangeEnd", end),
        ]
        .iter()
        .any(|(k, v)| v.is_none() && entry.get(*k).is_some_and(|x| x.as_str() != Some("")))
    {
        return None;
    }
    let same_family = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .and_then(crate::cidr::parse_ip)
            .is_none_or(|ip| Family::of(ip) == family)
    };
    let inside = |v: u128| (cidr.first()..=cidr.last()).contains(&v);
    let show = |n: u128| from_u128(family, n).to_string();
    let network = cidr.network();
    let first = start.unwrap_or(cidr.first() + 1);
    let last = end.unwrap_or(if family == Family::V4 {
        cidr.last() - 1
    } else {
        cidr.last()
    });
    if let Some(s) = start {
        let why = if !same_family("rangeStart") || !inside(s) {
            Some(format!("lies outside {network}"))
        } else if end.is_some_and(|e| s > e) {
            Some(format!("comes after rangeEnd {}", show(last)))
        } else {
            None
        };
        if let Some(why) = why {
            problems.error(
                at("rangeStart").as_str(),
                format!(
                    "rangeStart {} {why}: host-local refuses the range (\"RangeStart … not in \
                     network …\")",
                    show(s)
                ),
            );
            return None;
        }
    }
    if let Some(e) = end {
        let why = if !same_family("rangeEnd") || !inside(e) {
            Some(format!("lies outside {network}"))
        } else if e < first {
            Some(format!("comes before rangeStart {}", show(first)))
        } else {
            None
        };
        if let Some(why) = why {
            problems.error(
                at("rangeEnd").as_str(),
                format!(
                    "rangeEnd {} {why}: host-local refuses the range (\"RangeEnd … not in \
                     network …\")",
                    show(e)
                ),
            );
            return None;
        }
    }
    let gateway = match gateway {
        None => Some(cidr.first() + 1),
        Some(g) if same_family("gateway") && inside(g) => Some(g),
        Some(g) => {
            problems.warn(
                gateway_path.as_str(),
                format!(
                    "the gateway {} lies outside {network}: host-local accepts it and so keeps \
                     no address of this range for it, but a route through it cannot work from \
                     this interface",
                    entry
                        .get("gateway")
                        .and_then(Value::as_str)
                        .map_or_else(|| show(g), str::to_string)
                ),
            );
            None
        }
    };
    Some(HostLocalRange {
        path: base.to_string(),
        cidr,
        start: first,
        end: last,
        gateway,
    })
}

/// host-local's `Range.Overlaps` (`plugins/ipam/host-local/backend/allocator/range.go`): two
/// ranges of one family overlap when either contains the other's `rangeStart` or `rangeEnd`
/// (`Range.Contains`: inside the subnet, not before `rangeStart`, not after `rangeEnd`). Not
/// plain interval intersection: a range that hands out nothing (`rangeStart` on the last
/// address, the default `rangeEnd` before it) still overlaps a range containing its start.
fn overlap(a: &HostLocalRange, b: &HostLocalRange) -> bool {
    let contains = |r: &HostLocalRange, x: u128| {
        (r.cidr.first()..=r.cidr.last()).contains(&x) && x >= r.start && x <= r.end
    };
    a.cidr.family() == b.cidr.family()
        && (contains(a, b.start)
            || contains(a, b.end)
            || contains(b, a.start)
            || contains(b, a.end))
}

fn describe(r: &HostLocalRange) -> String {
    let family = r.cidr.family();
    format!(
        "{} – {}",
        from_u128(family, r.start),
        from_u128(family, r.end)
    )
}

/// `version.GreaterThanOrEqualTo(cniVersion, "0.3.0")` (containernetworking/cni
/// `pkg/version`): an absent version reads as 0.1.0, one that does not parse fails the test.
fn cni_version_allows_several(version: Option<&str>) -> bool {
    let Some(v) = version.filter(|v| !v.is_empty()) else {
        return false;
    };
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() > 3 {
        return false;
    }
    let mut numbers = [0u64; 3];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        match part.parse::<u64>() {
            Ok(n) => *slot = n,
            Err(_) => return false,
        }
    }
    (numbers[0], numbers[1], numbers[2]) >= (0, 3, 0)
}
