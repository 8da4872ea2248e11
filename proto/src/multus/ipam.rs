//! IPAM sections of CNI configs: which addresses each plugin hands out, and so how many pods
//! can get theirs.
//!
//! Supported: whereabouts (`range`, the `start-end/prefix` form, `range_start`, `range_end`,
//! `exclude`, `ipRanges`, `gateway`), host-local (`subnet`, `ranges[][]` with
//! `rangeStart`/`rangeEnd`/`gateway`, `runtimeConfig.ipRanges`), static (`addresses`) and dhcp
//! (capacity unknown). A pod takes one address from every range (whereabouts) or range set
//! (host-local), so the pod capacity is the smallest of them. Verdicts, capacities and address
//! lists are the plugin's own: each plugin's file cites the source it follows, and where
//! multinet is stricter than a plugin its message says so.
//!
//! This file holds the reports and [`read_ipam`], which reads the type, the plugin-independent
//! `routes`, static and dhcp; whereabouts and host-local have their files (`whereabouts`,
//! `host_local`) over the pieces `range` shares.

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
    /// First address the plugin hands out (exclusions applied); absent when it hands out none.
    pub first: Option<String>,
    /// Last address the plugin hands out (exclusions applied); absent when it hands out none.
    pub last: Option<String>,
    /// How many addresses the plugin hands out from this range (saturating at `u64::MAX`, which
    /// only a host-local range wider than 2^64 reaches; a note says so then).
    pub usable: u64,
}

/// A host-local range set: a pod takes one address from it, from whichever of its ranges has
/// one free, so its capacity is the sum over its ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeSetReport {
    /// The one family of the set's ranges (host-local refuses mixed sets).
    pub family: Family,
    /// How many of [`IpamReport::ranges`] belong to this set: the sets take the ranges in
    /// order, each the next `ranges` entries.
    pub ranges: usize,
    /// Addresses the set hands out (saturating at `u64::MAX`).
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
    /// Every range, in the order the pod takes them. For whereabouts each range is taken on
    /// its own (one address from each); for host-local see `sets`.
    pub ranges: Vec<RangeReport>,
    /// host-local only: how `ranges` group into range sets (one address per set).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<RangeSetReport>,
    /// Route destinations the IPAM installs in the pod (Rook's pod → host route).
    pub routes: Vec<String>,
    /// Facts the user should know (why capacity is unknown, allocator limits).
    pub notes: Vec<String>,
    /// Why this valid IPAM will not give pods working addresses (a range the plugin cannot
    /// allocate from, every pod given the same address): each makes `spec check` exit 1 when
    /// the NAD is selected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

impl IpamReport {
    fn new(ipam_type: Option<String>, scope: Scope) -> Self {
        Self {
            ipam_type,
            capacity: None,
            scope,
            ranges: Vec::new(),
            sets: Vec::new(),
            routes: Vec::new(),
            notes: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The families the IPAM hands out addresses of (empty when it hands out none it knows).
    pub fn families(&self) -> Vec<Family> {
        let mut families: Vec<Family> = self
            .ranges
            .iter()
            .filter(|r| r.usable > 0)
            .map(|r| r.family)
            .collect();
        families.sort();
        families.dedup();
        families
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

/// What of the plugin's config around its `ipam` section the IPAM plugins read too.
#[derive(Debug, Clone, Copy, Default)]
pub struct PluginContext<'p, 'v> {
    /// `cniVersion` of the config (a conflist's, which libcni gives every plugin).
    pub cni_version: Option<&'v str>,
    /// The plugin's `runtimeConfig` (host-local reads `runtimeConfig.ipRanges`), with its path.
    pub runtime_config: Option<Field<'p, 'v>>,
}

/// Reads the `ipam` section at `field` (null when the config has none).
pub fn read_ipam(field: Field<'_, '_>, problems: &mut Problems) -> IpamReport {
    read_plugin_ipam(field, PluginContext::default(), problems)
}

/// Reads the `ipam` section at `field` (null when the config has none) with what the plugin
/// around it says (`cniVersion`, `runtimeConfig`).
pub fn read_plugin_ipam(
    field: Field<'_, '_>,
    context: PluginContext<'_, '_>,
    problems: &mut Problems,
) -> IpamReport {
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
        Some("host-local") => host_local(field, context, problems),
        Some("static") => static_ipam(field, problems),
        Some("dhcp") => {
            // plugins/ipam/dhcp: the plugin forwards each ADD to the `dhcp daemon` on the
            // node, which asks a DHCP server through the pod's interface.
            let mut r = IpamReport::new(None, Scope::Cluster);
            r.notes.push("dhcp: the DHCP server decides the capacity; multinet cannot know it from the config".into());
            r.notes.push("dhcp needs the CNI dhcp daemon (`dhcp daemon`, from containernetworking-plugins) running on every node, and a DHCP server answering on the master interface's segment; without either, pod creation fails".into());
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
