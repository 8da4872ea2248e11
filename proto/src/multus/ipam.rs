//! IPAM sections of CNI configs and how many pods they can give addresses to.
//!
//! Supported: whereabouts (`range`, the `start-end/prefix` form, `range_start`, `range_end`,
//! `exclude`, `ipRanges`), host-local (`subnet`, `ranges[][]` with `rangeStart`/`rangeEnd`,
//! `gateway`), static (`addresses`) and dhcp (capacity unknown). A pod takes one address from
//! every range (whereabouts) or range set (host-local), so the pod capacity is the smallest of
//! them. The counting rules follow each plugin's allocator; see the per-plugin functions.

use serde::Serialize;
use serde_json::Value;

use crate::cidr::{AddrRange, Cidr, Family, count_usable, parse_ip, to_u128};
use crate::field::{Field, OwnedPath, Problems};

/// Whether addresses are unique across the cluster or only within a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One allocation for the whole cluster (whereabouts, static, dhcp).
    Cluster,
    /// Each node allocates on its own (host-local): the same address can be handed out on
    /// two nodes.
    PerNode,
}

/// One address range an IPAM hands out from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeReport {
    /// The network, e.g. `192.168.20.0/24`.
    pub cidr: String,
    /// IPv4 or IPv6.
    pub family: Family,
    /// First address that can be handed out.
    pub first: Option<String>,
    /// Last address that can be handed out.
    pub last: Option<String>,
    /// Addresses that can be handed out (saturating at u64::MAX).
    pub usable: u64,
}

/// What an IPAM section amounts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpamReport {
    /// `ipam.type`, when there is an IPAM section.
    #[serde(rename = "type")]
    pub ipam_type: Option<String>,
    /// How many pods can get their addresses; `None` when it cannot be known from the config.
    pub capacity: Option<u64>,
    /// Cluster-wide or per-node allocation.
    pub scope: Scope,
    /// The ranges, in the order the pod takes them.
    pub ranges: Vec<RangeReport>,
    /// Route destinations the IPAM installs in the pod (Rook's pod → host route).
    pub routes: Vec<String>,
    /// Facts the user should know (why capacity is unknown, allocator limits).
    pub notes: Vec<String>,
}

impl IpamReport {
    fn new(ipam_type: Option<String>, scope: Scope) -> Self {
        Self {
            ipam_type,
            capacity: None,
            scope,
            ranges: Vec::new(),
            routes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The ranges' CIDRs joined with ", ".
    pub fn cidrs(&self) -> String {
        self.ranges
            .iter()
            .map(|r| r.cidr.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Reads the `ipam` section at `field` (null when the config has none).
pub fn read_ipam(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
    if field.value().is_null() {
        let mut report = IpamReport::new(None, Scope::Cluster);
        report.capacity = Some(0);
        report
            .notes
            .push("no IPAM section: attached interfaces get no address".into());
        return report;
    }
    let Some(map) = field.mapping(problems) else {
        return IpamReport::new(None, Scope::Cluster);
    };
    let get = |k: &str| map.get(k).unwrap_or(&Value::Null);
    let ipam_type = field
        .child_path("type")
        .at(get("type"))
        .string(problems)
        .map(str::to_string);
    let mut report = match ipam_type.as_deref() {
        Some("whereabouts") => whereabouts(field, problems),
        Some("host-local") => host_local(field, problems),
        Some("static") => static_ipam(field, problems),
        Some("dhcp") => {
            let mut r = IpamReport::new(None, Scope::Cluster);
            r.notes.push("dhcp: the DHCP server decides the capacity; multinet cannot know it from the config".into());
            r
        }
        None => {
            problems.error(
                field.child_path("type").as_str(),
                "an IPAM section needs a `type`",
            );
            IpamReport::new(None, Scope::Cluster)
        }
        Some(other) => {
            let mut r = IpamReport::new(None, Scope::Cluster);
            r.notes
                .push(format!("IPAM type {other:?}: capacity unknown to multinet"));
            r
        }
    };
    report.ipam_type = ipam_type;
    if let Some(routes) = map.get("routes") {
        read_routes(field.child_path("routes"), routes, &mut report, problems);
    }
    report
}

fn read_routes(path: OwnedPath, value: &Value, report: &mut IpamReport, problems: &mut Problems) {
    let Some(items) = path.at(value).list(problems) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let item_path = OwnedPath::index(path.as_str(), i);
        let dst_path = OwnedPath::child(item_path.as_str(), "dst");
        match dst_path
            .at(item.get("dst").unwrap_or(&Value::Null))
            .string(problems)
        {
            Some(dst) => match dst.parse::<Cidr>() {
                Ok(c) => report.routes.push(c.to_string()),
                Err(e) => problems.error(dst_path.as_str(), e.to_string()),
            },
            None => problems.error(
                dst_path.as_str(),
                "a route needs a destination CIDR in `dst`",
            ),
        }
    }
}

/// An address field: a string holding an IP.
fn ip_field(path: &OwnedPath, value: Option<&Value>, problems: &mut Problems) -> Option<u128> {
    let text = path.at(value?).string(problems)?;
    match parse_ip(text) {
        Some(ip) => Some(to_u128(ip)),
        None => {
            problems.error(path.as_str(), format!("{text:?} is not an IP address"));
            None
        }
    }
}

fn range_report(cidr: Cidr, range: AddrRange, usable: u128) -> RangeReport {
    let empty = usable == 0 || range.is_empty();
    RangeReport {
        cidr: cidr.network().to_string(),
        family: cidr.family(),
        first: (!empty).then(|| range.start_addr().to_string()),
        last: (!empty).then(|| range.end_addr().to_string()),
        usable: saturate(usable),
    }
}

/// whereabouts: a range excludes its network and last (broadcast) address, skips IPv4 addresses
/// ending in `.0`, honours `range_start`/`range_end` inside the network, and skips `exclude`d
/// CIDRs or single addresses. Each pod takes one address from `range` and from every `ipRanges`
/// entry.
fn whereabouts(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
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

/// host-local: a range runs from `rangeStart` (default: network + 1) to `rangeEnd` (default: the
/// last address, less the broadcast address for IPv4), less the gateway (default: network + 1).
/// `ranges` is a list of range sets; a pod takes one address from each set.
fn host_local(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
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

/// static: every pod using the NAD gets the same listed addresses, so only one pod can.
fn static_ipam(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
    let mut report = IpamReport::new(None, Scope::Cluster);
    let path = field.child_path("addresses");
    let items = path
        .at(field.value().get("addresses").unwrap_or(&Value::Null))
        .list(problems)
        .unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        let addr_path = OwnedPath::child(OwnedPath::index(path.as_str(), i).as_str(), "address");
        let Some(text) = addr_path
            .at(item.get("address").unwrap_or(&Value::Null))
            .required_string(
                problems,
                "expected an address with prefix, such as 198.18.0.5/24",
            )
        else {
            continue;
        };
        match text.parse::<Cidr>() {
            Ok(c) => report.ranges.push(RangeReport {
                cidr: c.network().to_string(),
                family: c.family(),
                first: Some(c.addr.to_string()),
                last: Some(c.addr.to_string()),
                usable: 1,
            }),
            Err(e) => problems.error(addr_path.as_str(), e.to_string()),
        }
    }
    if items.is_empty() {
        report
            .notes
            .push("static IPAM without addresses: interfaces get no address".into());
        report.capacity = Some(0);
    } else {
        report.notes.push("static IPAM gives every pod the same addresses: a second pod on this network conflicts".into());
        report.capacity = Some(1);
    }
    report
}

#[cfg(test)]
mod tests;
