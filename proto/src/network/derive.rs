//! What a checked network section turns into: pod annotations, Ceph settings, bind flags, and
//! the cross-field rules that need the whole section (ranges vs. provider and selectors).

use serde::Serialize;

use super::{CephNetwork, IpFamily, NetworkCheck, Provider};
use crate::cidr::Family;
use crate::field::{Field, OwnedPath, Problems};
use crate::multus::selection::render_annotation;

/// Ceph's `public_network` / `cluster_network` settings, as Rook writes them to the mon config
/// store: the CIDRs joined with ", ". `None` leaves Ceph's setting alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CephNetworks {
    /// `public_network`.
    pub public_network: Option<String>,
    /// `cluster_network`.
    pub cluster_network: Option<String>,
}

/// The messenger bind flags Rook gives every daemon for `ipFamily` / `dualStack`.
pub fn bind_flags(ip_family: Option<IpFamily>, dual_stack: bool) -> Vec<String> {
    let pair = |v4: bool, v6: bool| {
        vec![
            format!("--ms-bind-ipv4={v4}"),
            format!("--ms-bind-ipv6={v6}"),
        ]
    };
    match (dual_stack, ip_family) {
        (true, _) => pair(true, true),
        (false, Some(IpFamily::IPv4)) => pair(true, false),
        // Setting only v6 would leave v4 on too: an accidental dual stack.
        (false, Some(IpFamily::IPv6)) => pair(false, true),
        (false, None) => Vec::new(),
    }
}

/// Derives what Ceph and the pods get, and checks the rules that need the whole section.
/// `ranges_given` are the networks with at least one `addressRanges` entry as written, parsed
/// or not: the rules about where ranges may be given hold for an unparsable entry too (its
/// own error does not hide theirs).
pub(super) fn derive_outputs(
    field: Field<'_, '_>,
    check: &mut NetworkCheck,
    ranges_given: &[CephNetwork],
    problems: &mut Problems,
) {
    check.ms_bind_flags = bind_flags(check.ip_family, check.dual_stack);
    let ranges_path = field.child_path("addressRanges");

    if !ranges_given.is_empty() && check.provider == Provider::Default {
        problems.error(
            ranges_path.as_str(),
            "address ranges can only be given with provider \"host\" or \"multus\"",
        );
    }
    for network in CephNetwork::ALL {
        let path = OwnedPath::child(ranges_path.as_str(), network.key());
        if ranges_given.contains(&network)
            && check.provider == Provider::Multus
            && check.networks.get(network).is_none()
        {
            problems.error(
                path.as_str(),
                format!(
                    "a {} address range needs a `{}` selector under provider multus",
                    network.key(),
                    network.key()
                ),
            );
        }
        let ranges = check.address_ranges.get(network);
        if ranges.is_empty() {
            continue;
        }
        check_families(
            path.as_str(),
            ranges,
            check.ip_family,
            check.dual_stack,
            problems,
        );
        let joined = ranges
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match network {
            CephNetwork::Public => check.ceph.public_network = Some(joined),
            CephNetwork::Cluster => check.ceph.cluster_network = Some(joined),
        }
    }

    if check.provider != Provider::Multus {
        return;
    }
    let public = check
        .networks
        .public
        .as_ref()
        .and_then(|c| c.selection.clone());
    let cluster = check
        .networks
        .cluster
        .as_ref()
        .and_then(|c| c.selection.clone());
    if let (Some(p), Some(c)) = (&public, &cluster) {
        if p.interface.is_some() && p.interface == c.interface {
            problems.error(
                field.child_path("selectors").as_str(),
                format!(
                    "public and cluster both ask for interface {:?}; an OSD pod gets both \
                     attachments, and two interfaces cannot share a name",
                    p.interface.as_deref().unwrap_or_default()
                ),
            );
        }
        if p.namespaced_name() == c.namespaced_name() {
            problems.warn(
                field.child_path("selectors").as_str(),
                format!(
                    "public and cluster select the same NetworkAttachmentDefinition {}: OSD \
                     replication will share the public network's bandwidth and addresses",
                    p.namespaced_name()
                ),
            );
        }
    }
    let osd: Vec<_> = public.iter().chain(cluster.iter()).cloned().collect();
    let daemon: Vec<_> = public.iter().cloned().collect();
    check.osd_annotation = Some(render_annotation(&osd));
    check.daemon_annotation = Some(render_annotation(&daemon));
}

/// Warns when the ranges' families disagree with ipFamily / dualStack.
fn check_families(
    path: &str,
    ranges: &[crate::cidr::Cidr],
    ip_family: Option<IpFamily>,
    dual_stack: bool,
    problems: &mut Problems,
) {
    let has = |f: Family| ranges.iter().any(|c| c.family() == f);
    let wanted = match ip_family {
        Some(IpFamily::IPv6) => Family::V6,
        _ => Family::V4,
    };
    if dual_stack {
        for f in [Family::V4, Family::V6] {
            if !has(f) {
                problems.warn(
                    path,
                    format!("dualStack is set but no {f} range is given; daemons bind {f} too"),
                );
            }
        }
    } else if !has(wanted) {
        problems.warn(
            path,
            format!(
                "Ceph binds {wanted} (ipFamily {}) but no range is {wanted}",
                match ip_family {
                    Some(IpFamily::IPv6) => "IPv6",
                    Some(IpFamily::IPv4) => "IPv4",
                    None => "unset, read as IPv4",
                }
            ),
        );
    }
}
