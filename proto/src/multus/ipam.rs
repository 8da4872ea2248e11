//! IPAM sections of CNI configs and how many pods they can give addresses to.
//!
//! Supported: whereabouts (`range`, the `start-end/prefix` form, `range_start`, `range_end`,
//! `exclude`, `ipRanges`), host-local (`subnet`, `ranges[][]` with `rangeStart`/`rangeEnd`,
//! `gateway`), static (`addresses`) and dhcp (capacity unknown). A pod takes one address from
//! every range (whereabouts) or range set (host-local), so the pod capacity is the smallest of
//! them. The counting rules follow each plugin's allocator; see the per-plugin functions.
//!
//! This file holds the reports and [`read_ipam`], which reads the type, the plugin-independent
//! `routes` and dhcp; each other plugin has its file (`whereabouts`, `host_local`,
//! `static_ipam`) over the pieces `range` shares.

mod host_local;
mod range;
mod static_ipam;
#[cfg(test)]
mod tests;
mod whereabouts;

use serde::Serialize;
use serde_json::Value;

use crate::cidr::{Cidr, Family};
use crate::field::{Field, OwnedPath, Problems};
use host_local::host_local;
use static_ipam::static_ipam;
use whereabouts::whereabouts;

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
