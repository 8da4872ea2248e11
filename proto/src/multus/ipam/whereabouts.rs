//! whereabouts' IPAM: `range` (also the `START-END/PREFIX` form), `range_start`, `range_end`,
//! `exclude`, `ipRanges` and `gateway`, read and counted as whereabouts reads and allocates,
//! cluster-wide.
//!
//! The rules, and where they come from (k8snetworkplumbingwg/whereabouts):
//!
//! * `pkg/config/config.go`, `LoadIPAMConfig`: a top-level `range` (with the top-level
//!   `range_start`, `range_end`, `exclude`) is the first of the `ipRanges`; a pod takes one
//!   address from each. `START-END/PREFIX`: START is parsed with `ParseIPSloppy`, the rest with
//!   `ParseCIDRSloppy`; a START outside the CIDR refuses the config ("invalid range start for
//!   CIDR"); START and END then replace `range_start` / `range_end`. Sloppy parsing reads IPv4
//!   octets with leading zeros as decimal. The `gateway` is parsed sloppily too; a bad one
//!   refuses the config.
//! * `pkg/types/types.go`, `IPAMConfig.UnmarshalJSON` / `backwardsCompatibleIPAddress`: a
//!   top-level `range_start` / `range_end` that does not parse is dropped silently; inside
//!   `ipRanges` they decode as Go `net.IP`, and a bad one refuses the config.
//! * `pkg/iphelpers`, `GetIPRange` / `FirstUsableIP` / `LastUsableIP`: the network and the last
//!   address of the CIDR are never handed out (IPv4 and IPv6 alike), nothing else is skipped
//!   (no `x.y.z.0` rule); a CIDR with fewer than 2 host bits has no usable address;
//!   `range_start` counts only inside the usable addresses, `range_end` only from the start to
//!   the last usable address — otherwise each is ignored, an inverted `range_end` included.
//! * `pkg/allocate`, `IterateForAssignment` / `parseExcludedRange`: every `exclude` entry is a
//!   CIDR or a single address (`net.ParseCIDR`, then `net.ParseIP`: no leading zeros); one that
//!   parses as neither fails every allocation. The `gateway` is not skipped.
//! * `pkg/storage/kubernetes/ipam.go`, `toIPReservationList`: reservations are stored as
//!   offsets from the CIDR's network address and read back as int64; an address more than
//!   2^63 − 1 past the network address is forgotten once handed out, so it is handed out again.

use serde_json::{Map, Value};

use crate::cidr::{AddrRange, Cidr, Family, count_usable, from_u128, parse_ip, to_u128};
use crate::field::{Field, OwnedPath, Problems};

use super::range::{
    first_last_free, leading_zeros_warning, parse_cidr_sloppy, parse_ip_sloppy, range_report,
    saturate, strict_ip_field,
};
use super::{IpamReport, Scope};

/// The largest offset from a range's network address whereabouts can store and read back
/// (`strconv.ParseInt(offset, 10, 64)`).
pub(super) const LARGEST_OFFSET: u128 = i64::MAX as u128;

/// Keys whereabouts does not read, with the key it reads instead.
const FOREIGN_KEYS: &[(&str, &str)] = &[
    ("rangeStart", "range_start"),
    ("rangeEnd", "range_end"),
    ("subnet", "range"),
    ("ranges", "ipRanges"),
];

/// One range as whereabouts allocates from it: what it hands out and where.
struct Allocated {
    /// The CIDR (network address as written, host bits kept for the dash form's END).
    cidr: Cidr,
    /// The addresses it walks, clipped to what it can record.
    walked: AddrRange,
    /// The excluded ranges.
    excluded: Vec<AddrRange>,
    /// How many of `walked` are not excluded.
    usable: u128,
}

/// whereabouts: see the module documentation for every rule and its source.
pub(super) fn whereabouts(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
    let mut report = IpamReport::new(None, Scope::Cluster);
    let empty = Map::new();
    let map = field.value().as_object().unwrap_or(&empty);
    warn_foreign_keys(field.path(), map, problems);
    let gateway = read_gateway(field, map, problems);

    let mut entries: Vec<(String, &Value, bool)> = Vec::new();
    match map.get("range") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(_) => entries.push((field.path().to_string(), field.value(), true)),
    }
    if let Some(list) = map.get("ipRanges") {
        let path = field.child_path("ipRanges");
        for (i, item) in path
            .at(list)
            .list(problems)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item_path = OwnedPath::index(path.as_str(), i);
            if item_path.at(item).mapping(problems).is_some() {
                entries.push((item_path.as_str().to_string(), item, false));
            }
        }
    }
    if entries.is_empty() {
        problems.error(
            field.child_path("range").as_str(),
            "whereabouts needs `range` or `ipRanges` (pkg/config: no range, no address)",
        );
        return report;
    }

    let mut capacity: Option<u128> = None;
    for (base, entry, top_level) in entries {
        if !top_level && let Some(m) = entry.as_object() {
            warn_foreign_keys(&base, m, problems);
        }
        let Some(allocated) = allocate(&base, entry, top_level, &mut report, problems) else {
            continue;
        };
        let bounds = first_last_free(allocated.walked, &allocated.excluded);
        if let (Some(gw), Some((first, last))) = (&gateway, bounds)
            && allocated.cidr.family() == Family::of(gw.0)
        {
            let g = to_u128(gw.0);
            let excluded = allocated
                .excluded
                .iter()
                .any(|e| e.family == allocated.cidr.family() && (e.start..=e.end).contains(&g));
            if (first..=last).contains(&g) && !excluded {
                let family = allocated.cidr.family();
                problems.warn(
                    gw.1.as_str(),
                    format!(
                        "{} lies inside the addresses whereabouts hands out from {} ({} – {}); \
                         whereabouts does not skip the gateway, so it may give this address to a \
                         pod: add it to `exclude` or start the range after it",
                        gw.0,
                        allocated.cidr.network(),
                        from_u128(family, first),
                        from_u128(family, last)
                    ),
                );
            }
        }
        report
            .ranges
            .push(range_report(allocated.cidr, bounds, allocated.usable));
        capacity = Some(capacity.map_or(allocated.usable, |c| c.min(allocated.usable)));
    }
    if map.get("node_slice_size").is_some() {
        report.notes.push("node_slice_size: addresses are split into per-node slices; a node can run out before the range does".into());
    }
    report.capacity = capacity.map(saturate);
    report
}

/// Warns about keys whereabouts ignores, naming the key it reads instead.
fn warn_foreign_keys(base: &str, map: &Map<String, Value>, problems: &mut Problems) {
    for (foreign, read) in FOREIGN_KEYS {
        if map.contains_key(*foreign) {
            problems.warn(
                OwnedPath::child(base, foreign).as_str(),
                format!(
                    "whereabouts ignores `{foreign}` (host-local's spelling); it reads `{read}`"
                ),
            );
        }
    }
}

/// The `gateway`, parsed sloppily; a bad one refuses the config.
fn read_gateway(
    field: Field<'_, '_>,
    map: &Map<String, Value>,
    problems: &mut Problems,
) -> Option<(std::net::IpAddr, OwnedPath)> {
    let path = field.child_path("gateway");
    let text = path.at(map.get("gateway")?).string(problems)?;
    if text.is_empty() {
        return None;
    }
    match parse_ip_sloppy(text) {
        Some(ip) => {
            if parse_ip(text).is_none() {
                problems.warn(path.as_str(), leading_zeros_warning(text, &ip.to_string()));
            }
            Some((ip, path))
        }
        None => {
            problems.error(
                path.as_str(),
                format!(
                    "{text:?} is not an IP address: whereabouts refuses the config (\"couldn't \
                     parse gateway IP\")"
                ),
            );
            None
        }
    }
}

/// One range entry (the top level or an `ipRanges` element) as whereabouts allocates from it;
/// `None` when whereabouts refuses it (the errors are filed).
fn allocate(
    base: &str,
    entry: &Value,
    top_level: bool,
    report: &mut IpamReport,
    problems: &mut Problems,
) -> Option<Allocated> {
    let at = |key: &str| OwnedPath::child(base, key);
    let range_path = at("range");
    let text = range_path
        .at(entry.get("range").unwrap_or(&Value::Null))
        .required_string(
            problems,
            "expected a CIDR such as 192.168.20.0/24, or START-END/PREFIX",
        )?;
    let (cidr, start, end) = match text.split_once('-') {
        Some((start_text, cidr_text)) => {
            let (cidr, start) = dash_form(&range_path, text, start_text, cidr_text, problems)?;
            for key in ["range_start", "range_end"] {
                if entry.get(key).is_some() {
                    problems.warn(
                        at(key).as_str(),
                        format!(
                            "ignored: the START-END/PREFIX form of `range` ({text:?}) sets both \
                             ends, and whereabouts takes them from there"
                        ),
                    );
                }
            }
            (
                cidr,
                Some((start, range_path.clone())),
                Some((to_u128(cidr.addr), range_path.clone())),
            )
        }
        None => {
            let (cidr, sloppy) = match parse_cidr_sloppy(text) {
                Ok(parsed) => parsed,
                Err(e) => {
                    problems.error(
                        range_path.as_str(),
                        format!("{e}; whereabouts refuses the config"),
                    );
                    return None;
                }
            };
            if sloppy {
                problems.warn(
                    range_path.as_str(),
                    leading_zeros_warning(text, &cidr.to_string()),
                );
            }
            let start = end_field(
                &at("range_start"),
                entry.get("range_start"),
                top_level,
                problems,
            );
            let end = end_field(
                &at("range_end"),
                entry.get("range_end"),
                top_level,
                problems,
            );
            (
                cidr,
                start.map(|s| (s, at("range_start"))),
                end.map(|e| (e, at("range_end"))),
            )
        }
    };
    let excluded = read_excludes(&at("exclude"), entry.get("exclude"), problems);
    let family = cidr.family();
    let network = cidr.network();
    if family.bits() - cidr.prefix < 2 {
        report.failures.push(format!(
            "{network}: whereabouts finds no usable address in a range with fewer than 2 host \
             bits (pkg/iphelpers GetIPRange: \"net mask is too short\"), so every pod on this \
             network fails to start"
        ));
        return Some(Allocated {
            cidr,
            walked: AddrRange {
                family,
                start: 1,
                end: 0,
            },
            excluded,
            usable: 0,
        });
    }
    let (first_usable, last_usable) = (cidr.first() + 1, cidr.last() - 1);
    let show = |n: u128| from_u128(family, n).to_string();
    let mut first = first_usable;
    if let Some((s, path)) = start {
        if (first_usable..=last_usable).contains(&s) {
            first = s;
        } else {
            problems.warn(
                path.as_str(),
                format!(
                    "the range start {} lies outside the addresses whereabouts hands out from \
                     {network} ({} – {}); whereabouts ignores it and starts at {}",
                    show(s),
                    show(first_usable),
                    show(last_usable),
                    show(first_usable)
                ),
            );
        }
    }
    let mut last = last_usable;
    if let Some((e, path)) = end {
        if (first..=last_usable).contains(&e) {
            last = e;
        } else {
            let why = if (cidr.first()..first).contains(&e) {
                format!("comes before the range's start {}", show(first))
            } else {
                format!(
                    "lies outside the addresses whereabouts hands out from {network} ({} – {})",
                    show(first_usable),
                    show(last_usable)
                )
            };
            problems.warn(
                path.as_str(),
                format!(
                    "the range end {} {why}; whereabouts ignores it and hands out up to {}",
                    show(e),
                    show(last_usable)
                ),
            );
        }
    }
    let largest = cidr.first().saturating_add(LARGEST_OFFSET);
    if first > largest {
        report.failures.push(format!(
            "{network}: every address from {} on lies more than 2^63 − 1 addresses past \
             {network}'s network address; whereabouts keeps reservations as int64 offsets from it \
             (pkg/storage/kubernetes toIPReservationList) and forgets these, so it would hand \
             the same address to every pod",
            show(first)
        ));
        return Some(Allocated {
            cidr,
            walked: AddrRange {
                family,
                start: 1,
                end: 0,
            },
            excluded,
            usable: 0,
        });
    }
    if last > largest {
        report.notes.push(format!(
            "{network}: whereabouts keeps reservations as int64 offsets from the network address \
             (pkg/storage/kubernetes toIPReservationList): only the addresses up to {} count, \
             past them it would hand out addresses twice",
            show(largest)
        ));
        last = largest;
    }
    let walked = AddrRange {
        family,
        start: first,
        end: last,
    };
    let usable = count_usable(walked, &excluded, false);
    Some(Allocated {
        cidr,
        walked,
        excluded,
        usable,
    })
}

/// The `START-END/PREFIX` form: the CIDR (its address is END) and START, or `None` with the
/// error filed when whereabouts refuses it.
fn dash_form(
    path: &OwnedPath,
    text: &str,
    start_text: &str,
    cidr_text: &str,
    problems: &mut Problems,
) -> Option<(Cidr, u128)> {
    let Some(start) = parse_ip_sloppy(start_text) else {
        problems.error(
            path.as_str(),
            format!(
                "{text:?}: the start {start_text:?} of START-END/PREFIX is not an IP address; \
                 whereabouts refuses the config (\"invalid range start IP\")"
            ),
        );
        return None;
    };
    let (cidr, sloppy) = match parse_cidr_sloppy(cidr_text) {
        Ok(parsed) => parsed,
        Err(e) => {
            problems.error(
                path.as_str(),
                format!("{text:?}: END/PREFIX is not valid: {e}; whereabouts refuses the config"),
            );
            return None;
        }
    };
    if sloppy || parse_ip(start_text).is_none() {
        problems.warn(
            path.as_str(),
            leading_zeros_warning(text, &format!("{start}-{cidr}")),
        );
    }
    if !cidr.contains(start) {
        problems.error(
            path.as_str(),
            format!(
                "{text:?}: the start {start} lies outside {}, the network of END/PREFIX; \
                 whereabouts refuses the config (\"invalid range start for CIDR\")",
                cidr.network()
            ),
        );
        return None;
    }
    Some((cidr, to_u128(start)))
}

/// `range_start` / `range_end` outside the dash form: at the top level a value that does not
/// parse is dropped (a warning), inside `ipRanges` it refuses the config (an error).
fn end_field(
    path: &OwnedPath,
    value: Option<&Value>,
    top_level: bool,
    problems: &mut Problems,
) -> Option<u128> {
    let value = value?;
    if !top_level {
        return strict_ip_field(path, Some(value), problems);
    }
    let text = path.at(value).string(problems)?;
    if text.is_empty() {
        return None;
    }
    match parse_ip(text) {
        Some(ip) => Some(to_u128(ip)),
        None => {
            problems.warn(
                path.as_str(),
                format!(
                    "{text:?} is not an IP address as Go's net.ParseIP reads it (no leading \
                     zeros); whereabouts drops it silently (pkg/types backwardsCompatibleIPAddress) \
                     and uses the range's own end"
                ),
            );
            None
        }
    }
}

/// `exclude`: CIDRs or single addresses, strictly parsed (`parseExcludedRange`).
fn read_excludes(
    path: &OwnedPath,
    value: Option<&Value>,
    problems: &mut Problems,
) -> Vec<AddrRange> {
    let Some(value) = value else {
        return Vec::new();
    };
    let mut excluded = Vec::new();
    for (i, item) in path
        .at(value)
        .list(problems)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let item_path = OwnedPath::index(path.as_str(), i);
        let Some(t) = item_path.at(item).string(problems) else {
            continue;
        };
        let parsed = t.parse::<Cidr>().ok().or_else(|| {
            parse_ip(t).map(|ip| Cidr {
                addr: ip,
                prefix: Family::of(ip).bits(),
            })
        });
        match parsed {
            Some(c) => excluded.push(AddrRange {
                family: c.family(),
                start: c.first(),
                end: c.last(),
            }),
            None => problems.error(
                item_path.as_str(),
                format!(
                    "{t:?} is not a CIDR or an IP address as Go's net.ParseCIDR / net.ParseIP \
                     read them (no leading zeros); whereabouts fails every allocation (\"could \
                     not parse exclude range\")"
                ),
            ),
        }
    }
    excluded
}
