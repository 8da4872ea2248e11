//! whereabouts' IPAM: `range` (also the `start-end/prefix` form), `range_start`, `range_end`,
//! `exclude` and `ipRanges`, counted as its allocator hands addresses out, cluster-wide.

use serde_json::Value;

use crate::cidr::{AddrRange, Cidr, Family, count_usable, parse_ip, to_u128};
use crate::field::{Field, OwnedPath, Problems};

use super::range::{ip_field, range_report, saturate};
use super::{IpamReport, Scope};

/// whereabouts: a range excludes its network and last (broadcast) address, skips IPv4 addresses
/// ending in `.0`, honours `range_start`/`range_end` inside the network, and skips `exclude`d
/// CIDRs or single addresses. Each pod takes one address from `range` and from every `ipRanges`
/// entry.
pub(super) fn whereabouts(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
    let mut report = IpamReport::new(None, Scope::Cluster);
    let map = field.value();
    let mut entries: Vec<(String, &Value)> = Vec::new();
    if map.get("range").is_some() {
        entries.push((field.path().to_string(), map));
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
            entries.push((
                OwnedPath::index(path.as_str(), i).as_str().to_string(),
                item,
            ));
        }
    }
    if entries.is_empty() {
        problems.error(
            field.child_path("range").as_str(),
            "whereabouts needs `range` or `ipRanges`",
        );
        return report;
    }
    let mut capacity: Option<u128> = None;
    for (base, entry) in entries {
        let at = |key: &str| OwnedPath::child(&base, key);
        let range_path = at("range");
        let Some(text) = range_path
            .at(entry.get("range").unwrap_or(&Value::Null))
            .required_string(problems, "expected a CIDR such as 192.168.20.0/24")
        else {
            continue;
        };
        // The range-end form: "192.168.2.225-192.168.2.230/28".
        let (cidr_text, dash_start, dash_end) = match text.split_once('-') {
            Some((start, rest)) => match rest.split_once('/') {
                Some((end, prefix)) => (format!("{end}/{prefix}"), parse_ip(start), parse_ip(end)),
                None => (rest.to_string(), None, None),
            },
            None => (text.to_string(), None, None),
        };
        let cidr = match cidr_text.parse::<Cidr>() {
            Ok(c) if text.contains('-') && dash_start.is_none() => {
                problems.error(
                    range_path.as_str(),
                    format!("{text:?}: the start of START-END/PREFIX is not an IP address"),
                );
                c
            }
            Ok(c) => c,
            Err(e) => {
                problems.error(range_path.as_str(), e.to_string());
                continue;
            }
        };
        let family = cidr.family();
        let mut start = cidr.first().saturating_add(1);
        let mut end = cidr.last().saturating_sub(1);
        let start_hint = dash_start
            .map(to_u128)
            .or_else(|| ip_field(&at("range_start"), entry.get("range_start"), problems));
        let end_hint = dash_end
            .map(to_u128)
            .or_else(|| ip_field(&at("range_end"), entry.get("range_end"), problems));
        for (hint, name, is_start) in [
            (start_hint, "range_start", true),
            (end_hint, "range_end", false),
        ] {
            let Some(h) = hint else { continue };
            if (cidr.first()..=cidr.last()).contains(&h) {
                if is_start {
                    start = start.max(h)
                } else {
                    end = end.min(h)
                }
            } else {
                problems.warn(
                    at(name).as_str(),
                    format!("lies outside {}; whereabouts ignores it", cidr.network()),
                );
            }
        }
        let mut excluded = Vec::new();
        if let Some(list) = entry.get("exclude") {
            let path = at("exclude");
            for (i, item) in path
                .at(list)
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
                        format!("{t:?} is not a CIDR or IP address"),
                    ),
                }
            }
        }
        let range = AddrRange { family, start, end };
        let usable = count_usable(range, &excluded, true);
        if family == Family::V6 && cidr.prefix <= 64 {
            report.notes.push(format!(
                "{}: whereabouts allocates only from the first /65 of IPv6 ranges of /64 or wider",
                cidr.network()
            ));
        }
        report.ranges.push(range_report(cidr, range, usable));
        capacity = Some(capacity.map_or(usable, |c| c.min(usable)));
    }
    if map.get("node_slice_size").is_some() {
        report.notes.push("node_slice_size: addresses are split into per-node slices; a node can run out before the range does".into());
    }
    report.capacity = capacity.map(saturate);
    report
}
