//! The static IPAM plugin: the listed `addresses`, the same for every pod, so one pod at most.

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
            .push("static IPAM without addresses: interfaces get no address".into());
        report.capacity = Some(0);
    } else {
        report.notes.push("static IPAM gives every pod the same addresses: a second pod on this network conflicts".into());
        report.capacity = Some(1);
    }
    report
}
