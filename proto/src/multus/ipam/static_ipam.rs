//! The static IPAM plugin (containernetworking/plugins `plugins/ipam/static`): the `addresses`
//! listed in the config, the same for every pod, plus whatever a pod asks for itself (`ips` in
//! its selection, through the `ips` capability) — so from the config alone, one pod at most.

use serde_json::Value;

use crate::cidr::Cidr;
use crate::field::{Field, OwnedPath, Problems};

use super::{IpamReport, RangeReport, Scope};

/// static: every pod using the NAD gets the same listed addresses, so only one pod can.
pub(super) fn static_ipam(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
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
            .push("static IPAM without addresses: pods get only the addresses they ask for themselves (`ips` in their selection, with the `ips` capability); without, none".into());
        report.capacity = Some(0);
    } else {
        report.notes.push("static IPAM gives every pod the addresses listed here, the same for all: a second pod on this network conflicts; per-pod addresses need `ips` in each pod's selection".into());
        report.capacity = Some(1);
    }
    report
}
