//! The `networks` section: each Ceph network as the shorthand (`cni`, `subnet`, range, MTU)
//! or as NetworkAttachmentDefinitions, checked against the lab's address space.

use std::collections::BTreeMap;
use std::net::IpAddr;

use multinet_proto::cidr::{Cidr, Family, from_u128, parse_ip, to_u128};
use multinet_proto::field::{Field, Problems};
use multinet_proto::multus::nad::{NAD_KIND, read_nads};
use multinet_proto::network::CephNetwork;
use serde_json::Value;

use super::{get, read_mtu, warn_unknown_keys};
use crate::lab::topology::{
    CONTROL_NETWORK, LabNetwork, SAFE_V4, SAFE_V6, SUPPORTED_CNI, default_range, prefixed,
};

pub(super) fn read_networks(
    field: Field<'_, '_>,
    problems: &mut Problems,
) -> Option<BTreeMap<CephNetwork, LabNetwork>> {
    if field.value().is_null() {
        return None;
    }
    let map = field.mapping(problems)?;
    let mut networks = BTreeMap::new();
    // Every range of each network, for the overlap check (a NAD may have several).
    let mut ranges: Vec<(CephNetwork, Cidr)> = Vec::new();
    for (key, value) in map {
        let path = field.child_path(key);
        let network = match key.as_str() {
            "public" => CephNetwork::Public,
            "cluster" => CephNetwork::Cluster,
            _ => {
                problems.error(
                    path.as_str(),
                    "unknown network: the lab builds Ceph's `public` and `cluster` networks",
                );
                continue;
            }
        };
        let read = if is_nad(value) {
            read_nad_network(path.at(value), problems)
        } else {
            read_shorthand(network, path.at(value), problems).map(|n| {
                let subnet = n.subnet;
                (n, vec![subnet])
            })
        };
        if let Some((lab, cidrs)) = read {
            ranges.extend(cidrs.into_iter().map(|c| (network, c)));
            networks.insert(network, lab);
        }
    }
    let public: Vec<Cidr> = ranges_of(&ranges, CephNetwork::Public);
    for cluster in ranges_of(&ranges, CephNetwork::Cluster) {
        if let Some(public) = public.iter().find(|p| overlaps(p, &cluster)) {
            problems.error(
                "networks.cluster.subnet",
                format!(
                    "{} overlaps the public network's {}: pods could not tell the networks apart",
                    cluster.network(),
                    public.network()
                ),
            );
        }
    }
    if map.is_empty() {
        problems.error(
            field.path(),
            "expected at least one of `public` and `cluster` (leave `networks` out for both \
             with their defaults)",
        );
    }
    (!networks.is_empty()).then_some(networks)
}

fn ranges_of(ranges: &[(CephNetwork, Cidr)], network: CephNetwork) -> Vec<Cidr> {
    ranges
        .iter()
        .filter(|(n, _)| *n == network)
        .map(|(_, c)| *c)
        .collect()
}

/// A mapping that looks like a Kubernetes object rather than the shorthand.
fn is_nad(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        ["kind", "apiVersion", "metadata", "spec"]
            .iter()
            .any(|k| m.contains_key(*k))
    })
}

fn contains(outer: &Cidr, inner: &Cidr) -> bool {
    outer.family() == inner.family()
        && outer.first() <= inner.first()
        && inner.last() <= outer.last()
}

fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.family() == b.family() && a.first() <= b.last() && b.first() <= a.last()
}

/// The network safety rule: lab subnets stay in the ranges reserved for it, and out of the
/// lab's control network (a probe into it would leave by the control interface, not by the
/// network under test).
fn check_safe(path: &str, subnet: &Cidr, problems: &mut Problems) -> bool {
    let safe = match subnet.family() {
        Family::V4 => SAFE_V4,
        Family::V6 => SAFE_V6,
    };
    if contains(&safe, subnet) {
        if overlaps(subnet, &CONTROL_NETWORK) {
            problems.error(
                path,
                format!(
                    "{} overlaps the lab's control network {}: probes to it could leave by the \
                     control interface instead of the network under test; use 198.18.0.0/16 \
                     or fd00::/8",
                    subnet.network(),
                    CONTROL_NETWORK.network()
                ),
            );
            return false;
        }
        return true;
    }
    problems.error(
        path,
        format!(
            "{} is outside the lab's address space: lab subnets must lie in {SAFE_V4} (IPv4) \
             or {SAFE_V6} (IPv6), so a lab never shadows a real network",
            subnet.network()
        ),
    );
    false
}

const SHORTHAND_KEYS: [&str; 5] = ["cni", "subnet", "range_start", "range_end", "mtu"];

fn read_shorthand(
    network: CephNetwork,
    field: Field<'_, '_>,
    problems: &mut Problems,
) -> Option<LabNetwork> {
    let map = field.mapping(problems)?;
    warn_unknown_keys(field, map, &SHORTHAND_KEYS, problems);
    let defaults = LabNetwork::default_for(network);
    let errors_before = problems.errors.len();

    let cni_path = field.child_path("cni");
    let cni = cni_path
        .at(get(map, "cni"))
        .string(problems)
        .unwrap_or(&defaults.cni_type);
    if !SUPPORTED_CNI.contains(&cni) {
        problems.error(
            cni_path.as_str(),
            format!("the lab runs {}; found {cni:?}", SUPPORTED_CNI.join(", ")),
        );
    }

    let subnet_path = field.child_path("subnet");
    let subnet_given = !get(map, "subnet").is_null();
    let subnet = match subnet_path.at(get(map, "subnet")).string(problems) {
        None => Some(defaults.subnet),
        Some(text) => match text.parse::<Cidr>() {
            Ok(cidr) if check_safe(subnet_path.as_str(), &cidr, problems) => Some(cidr),
            Ok(_) => None,
            Err(why) => {
                problems.error(subnet_path.as_str(), why.to_string());
                None
            }
        },
    };

    let range = match subnet {
        Some(subnet) if subnet_given => default_range(&subnet).or_else(|| {
            if get(map, "range_start").is_null() || get(map, "range_end").is_null() {
                problems.error(
                    subnet_path.as_str(),
                    format!(
                        "{} is too small for a default range; give range_start and range_end",
                        subnet.network()
                    ),
                );
            }
            Some((subnet.addr, subnet.addr))
        }),
        Some(_) => Some((defaults.range_start, defaults.range_end)),
        None => None,
    };
    let start =
        read_range_end(field, "range_start", subnet, problems).or(range.map(|(start, _)| start));
    let end = read_range_end(field, "range_end", subnet, problems).or(range.map(|(_, end)| end));
    if let (Some(start), Some(end)) = (start, end)
        && Family::of(start) == Family::of(end)
        && to_u128(start) > to_u128(end)
    {
        problems.error(
            field.child_path("range_start").as_str(),
            format!("the range starts at {start}, after its end {end}"),
        );
    }

    let mtu = read_mtu(field.child_path("mtu").at(get(map, "mtu")), problems);
    if mtu.is_some() && cni == "host-device" {
        problems.warn(
            field.child_path("mtu").as_str(),
            "host-device moves the node's interface into the pod as it is and sets no MTU; \
             set the uplink's MTU under `underlay` instead",
        );
    }

    if problems.errors.len() > errors_before {
        return None;
    }
    Some(LabNetwork::shorthand(
        network, cni, subnet?, start?, end?, mtu,
    ))
}

/// `range_start` or `range_end`: an address of the subnet's family inside it.
fn read_range_end(
    field: Field<'_, '_>,
    key: &str,
    subnet: Option<Cidr>,
    problems: &mut Problems,
) -> Option<IpAddr> {
    let map = field.value().as_object()?;
    let path = field.child_path(key);
    let text = path.at(get(map, key)).string(problems)?;
    let Some(addr) = parse_ip(text) else {
        problems.error(
            path.as_str(),
            format!("{text:?} is not an IPv4 or IPv6 address"),
        );
        return None;
    };
    if let Some(subnet) = subnet
        && !subnet.contains(addr)
    {
        problems.error(
            path.as_str(),
            format!("{addr} is outside the subnet {}", subnet.network()),
        );
        return None;
    }
    Some(addr)
}

/// A NetworkAttachmentDefinition written in place of the shorthand. Its problems are filed
/// under the network's path (`networks.public.spec.config.mode`).
fn read_nad_network(
    field: Field<'_, '_>,
    problems: &mut Problems,
) -> Option<(LabNetwork, Vec<Cidr>)> {
    let value = field.value();
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != NAD_KIND {
        problems.error(
            field.child_path("kind").as_str(),
            format!(
                "expected {NAD_KIND:?} (or the shorthand `{{cni, subnet, range_start, range_end, \
                 mtu}}` without Kubernetes keys), found {kind:?}"
            ),
        );
        return None;
    }
    let mut local = Problems::default();
    let nad = read_nads(std::slice::from_ref(value), "", &mut local)
        .into_iter()
        .next();
    let valid = local.is_valid();
    for mut problem in local.errors {
        problem.field = rehome(&problem.field, field.path());
        problems.errors.push(problem);
    }
    for mut problem in local.warnings {
        problem.field = rehome(&problem.field, field.path());
        problems.warnings.push(problem);
    }
    let nad = nad?;
    let config_path = field.child_path("spec").as_str().to_string() + ".config";
    let Some(summary) = nad.config else {
        if valid {
            problems.error(
                config_path,
                "the lab runs the CNI config as written, so a NAD here needs one in spec.config",
            );
        }
        return None;
    };
    let config_json = value
        .pointer("/spec/config")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !SUPPORTED_CNI.contains(&summary.plugin.as_str()) {
        problems.error(
            format!("{config_path}.type"),
            format!(
                "the lab runs {}; found {:?}",
                SUPPORTED_CNI.join(", "),
                summary.plugin
            ),
        );
    }
    let ipam_path = format!("{config_path}.ipam");
    let mut cidrs = Vec::new();
    for range in &summary.ipam.ranges {
        match range.cidr.parse::<Cidr>() {
            Ok(cidr) => {
                if check_safe(&ipam_path, &cidr, problems) {
                    cidrs.push(cidr);
                }
            }
            Err(why) => problems.error(ipam_path.as_str(), why.to_string()),
        }
    }
    if summary.ipam.ranges.is_empty() {
        problems.error(
            ipam_path,
            format!(
                "the lab needs an IPAM with an address range (host-local or whereabouts); found \
                 {}",
                summary.ipam.ipam_type.as_deref().unwrap_or("none")
            ),
        );
        return None;
    }
    if !valid {
        return None;
    }
    let subnet = *cidrs.first()?;
    let first = summary.ipam.ranges.first()?;
    let bound = |text: &Option<String>, fallback: u128| {
        text.as_deref()
            .and_then(parse_ip)
            .unwrap_or_else(|| from_u128(subnet.family(), fallback))
    };
    Some((
        LabNetwork {
            cni_type: summary.plugin,
            subnet,
            range_start: bound(&first.first, subnet.first()),
            range_end: bound(&first.last, subnet.last()),
            config_json,
            mtu: summary.mtu,
            from_nad: true,
            nad_name: Some(nad.name),
            ipam_type: summary.ipam.ipam_type,
        },
        cidrs,
    ))
}

/// Moves a problem `read_nads` filed (`document 1.apiVersion`,
/// `NetworkAttachmentDefinition ns/name: spec.config.mode`) under the network's path.
fn rehome(field: &str, base: &str) -> String {
    if let Some(rest) = field.strip_prefix("document 1.") {
        return format!("{base}.{rest}");
    }
    match field.split_once(": ") {
        Some((object, rest)) if object.starts_with(NAD_KIND) => format!("{base}.{rest}"),
        _ => prefixed(base, field),
    }
}
