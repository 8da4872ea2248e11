//! What the NetworkAttachmentDefinitions selected for Ceph's networks mean for Ceph: the
//! checks that need both the network spec and the NAD, and the line between a spec that is
//! valid and will work and one that is valid but will not work as configured.
//!
//! `spec check` exits 0 when a spec is valid and will work, 1 when it is valid but will not
//! work as configured ([`Fit::will_not_work`] is not empty: filled here, by
//! [`crate::capacity::check_ranges_cover`], and by the worst-case shortfalls of
//! [`crate::capacity::CapacityCheck::shortfall`]), 22 when it is invalid (an error).
//! Pure: the caller hands in the checked spec and the resolved NADs.

use crate::cidr::Family;
use crate::field::{Problem, Problems};
use crate::multus::nad::Nad;
use crate::network::{CephNetwork, IpFamily, NetworkCheck};

/// Why a valid spec will not work as configured, by field: each makes `spec check` exit 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fit {
    /// What will not work, with the fix; `field` names the NAD or the spec field.
    pub will_not_work: Vec<Problem>,
}

impl Fit {
    /// Records something that will not work.
    pub fn fails(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.will_not_work.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Checks each NAD selected for a Ceph network (`resolved`, from
/// [`crate::capacity::resolve`]) against what Ceph and Rook need. Errors and warnings go to
/// `problems`, what will not work to `fit`. `resource_name` gives a NAD's
/// `k8s.v1.cni.cncf.io/resourceName` annotation.
///
/// * An IPAM the plugin cannot allocate from ([`crate::multus::ipam::IpamReport::failures`]),
///   or one that hands out no address, will not work.
/// * Ceph binds IPv4 unless `ipFamily: IPv6` (Rook: no `--ms-bind-*` flags when unset, and
///   Ceph's default is IPv4); a NAD that hands out no address of the family Ceph binds will not
///   work: OSDs find no address of theirs on the network and do not come up. With `dualStack`
///   a missing family is a warning.
/// * static IPAM is an error for a Ceph network (multinet's rule, said in the message): it
///   gives every pod the NAD's addresses, or the ones the pod asks for with `ips`, which Rook
///   never sets.
/// * macvlan / ipvlan without `master` take the node's default-route interface: a warning.
/// * An SR-IOV NAD without `k8s.v1.cni.cncf.io/resourceName`: no VF is given to the pod, a
///   warning.
pub fn check_selected_nads(
    check: &NetworkCheck,
    resolved: &[(CephNetwork, &Nad)],
    resource_name: impl Fn(&Nad) -> Option<String>,
    problems: &mut Problems,
    fit: &mut Fit,
) {
    let mut seen: Vec<String> = Vec::new();
    for (network, nad) in resolved {
        let name = nad.namespaced_name();
        let label = format!("NetworkAttachmentDefinition {name}");
        let selector = format!("{}.selectors.{}", check.source, network.key());
        let Some(config) = &nad.config else { continue };
        let ipam = &config.ipam;
        let first_time = !seen.contains(&name);
        seen.push(name.clone());
        if first_time {
            for failure in &ipam.failures {
                fit.fails(format!("{label}: spec.config.ipam"), failure.clone());
            }
            if ipam.failures.is_empty() && ipam.capacity == Some(0) {
                fit.fails(
                    format!("{label}: spec.config.ipam"),
                    format!(
                        "hands out no address ({}): pods on this network get none, so Ceph's \
                         daemons find no address of theirs on it",
                        if ipam.ranges.is_empty() {
                            "no range".to_string()
                        } else {
                            format!("ranges {}", ipam.cidrs())
                        }
                    ),
                );
            }
            let needs_master = matches!(config.plugin.as_str(), "macvlan" | "ipvlan");
            if needs_master && config.master.is_none() {
                problems.warn(
                    format!("{label}: spec.config.master"),
                    format!(
                        "no `master`: {} takes the interface of each node's default route \
                         (usually the pod network's NIC), so Ceph's traffic would share it; \
                         name the interface of the storage network",
                        config.plugin
                    ),
                );
            }
            if config.plugin == "sriov" && resource_name(nad).is_none() {
                problems.warn(
                    format!("{label}: metadata.annotations"),
                    "an SR-IOV NAD without k8s.v1.cni.cncf.io/resourceName: Multus asks the \
                     device plugin for no VF, and the sriov plugin fails without one; set it to \
                     the SR-IOV device plugin's resource (e.g. intel.com/sriov_netdevice)",
                );
            }
        }
        if ipam.ipam_type.as_deref() == Some("static") {
            problems.error(
                selector.as_str(),
                format!(
                    "{label} uses static IPAM, which gives every pod the addresses listed in the \
                     NAD, or those a pod asks for with `ips` in its selection — which Rook never \
                     sets; every {} daemon would get the same address (multinet's rule: a Ceph \
                     network needs an IPAM that hands each pod its own address, such as \
                     whereabouts)",
                    network.key()
                ),
            );
        }
        let families = ipam.families();
        if families.is_empty() {
            continue;
        }
        if check.dual_stack {
            for f in [Family::V4, Family::V6] {
                if !families.contains(&f) {
                    problems.warn(
                        selector.as_str(),
                        format!(
                            "dualStack is set but {label} hands out no {f} address: daemons on \
                             the {} network bind {f} too and find no {f} address there",
                            network.key()
                        ),
                    );
                }
            }
            continue;
        }
        let (wanted, why, fix) = match check.ip_family {
            Some(IpFamily::IPv6) => (
                Family::V6,
                "ipFamily IPv6",
                "give the NAD an IPv6 range, or set spec.network.ipFamily: IPv4",
            ),
            Some(IpFamily::IPv4) => (
                Family::V4,
                "ipFamily IPv4",
                "give the NAD an IPv4 range, or set spec.network.ipFamily: IPv6",
            ),
            None => (
                Family::V4,
                "ipFamily unset: Ceph's default",
                "set spec.network.ipFamily: IPv6 (Rook then starts the daemons with \
                 --ms-bind-ipv6=true --ms-bind-ipv4=false), or give the NAD an IPv4 range",
            ),
        };
        if !families.contains(&wanted) {
            let has = families
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" and ");
            let who = match network {
                CephNetwork::Public => "OSDs, mons and the other daemons",
                CephNetwork::Cluster => "OSDs",
            };
            fit.fails(
                selector.as_str(),
                format!(
                    "Ceph binds {wanted} ({why}) but {label} hands out only {has} addresses on \
                     the {} network: {who} find no {wanted} address of theirs there and will not \
                     come up; {fix}",
                    network.key()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::resolve;
    use crate::multus::nad::read_nads;
    use crate::network::check_manifest;
    use crate::yaml::parse_documents;

    fn nad(name: &str, config: &str) -> String {
        format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {{name: {name}, namespace: rook-ceph}}\nspec:\n  config: '{config}'\n---\n"
        )
    }

    fn run(spec: &str, nads: &str) -> (Problems, Fit) {
        let check = check_manifest(&parse_documents(spec).expect("spec"), None);
        let mut problems = Problems::default();
        let nads = read_nads(
            &parse_documents(nads).expect("nads"),
            "rook-ceph",
            &mut problems,
        );
        let resolved = resolve(&check, &nads, "nads.yaml", &mut problems);
        let mut fit = Fit::default();
        check_selected_nads(&check, &resolved, |_| None, &mut problems, &mut fit);
        (problems, fit)
    }

    const V6: &str = r#"{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "ipam": {"type": "whereabouts", "range": "fd00:20::/64"}}"#;

    #[test]
    fn ipv6_only_nad_with_ipfamily_unset_will_not_work() {
        let (p, fit) = run(
            "network: {provider: multus, selectors: {public: pub}}",
            &nad("pub", V6),
        );
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(fit.will_not_work.len(), 1, "{fit:?}");
        let problem = &fit.will_not_work[0];
        assert_eq!(problem.field, "network.selectors.public");
        assert!(
            problem.message.contains("Ceph binds IPv4 (ipFamily unset")
                && problem.message.contains("set spec.network.ipFamily: IPv6"),
            "{}",
            problem.message
        );
        let (_, fit) = run(
            "network: {provider: multus, selectors: {public: pub}, ipFamily: IPv6}",
            &nad("pub", V6),
        );
        assert!(fit.will_not_work.is_empty(), "{fit:?}");
        let (p, fit) = run(
            "network: {provider: multus, selectors: {public: pub}, dualStack: true}",
            &nad("pub", V6),
        );
        assert!(fit.will_not_work.is_empty(), "{fit:?}");
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("hands out no IPv4 address")),
            "{p:?}"
        );
    }

    #[test]
    fn static_is_an_error_and_empty_ipam_will_not_work() {
        let (p, _) = run(
            "network: {provider: multus, selectors: {cluster: st}}",
            &nad(
                "st",
                r#"{"type": "macvlan", "master": "eth2", "ipam": {"type": "static", "addresses": [{"address": "198.18.0.5/24"}]}}"#,
            ),
        );
        assert_eq!(p.errors.len(), 1, "{p:?}");
        assert_eq!(p.errors[0].field, "network.selectors.cluster");
        assert!(
            p.errors[0].message.contains("multinet's rule"),
            "{}",
            p.errors[0].message
        );
        let (p, fit) = run(
            "network: {provider: multus, selectors: {public: none}}",
            &nad("none", r#"{"type": "macvlan"}"#),
        );
        assert!(p.is_valid(), "{p:?}");
        assert_eq!(
            fit.will_not_work[0].field,
            "NetworkAttachmentDefinition rook-ceph/none: spec.config.ipam"
        );
        assert!(
            p.warnings.iter().any(
                |w| w.field == "NetworkAttachmentDefinition rook-ceph/none: spec.config.master"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn sriov_without_resource_name_is_warned() {
        let nads = nad(
            "vf",
            r#"{"type": "sriov", "ipam": {"type": "whereabouts", "range": "198.18.0.0/24"}}"#,
        );
        let (p, fit) = run(
            "network: {provider: multus, selectors: {public: vf}}",
            &nads,
        );
        assert!(fit.will_not_work.is_empty(), "{fit:?}");
        assert!(
            p.warnings
                .iter()
                .any(|w| w.message.contains("resourceName")),
            "{p:?}"
        );
    }
}
