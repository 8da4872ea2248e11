//! What a topology needs from the machine before anything is built: root, `ip`, `nsenter` and
//! `nft`, the CNI plugins its configs name, and the link types, probed in a scratch namespace.

use std::collections::BTreeSet;
use std::path::PathBuf;

use multinet_proto::network::CephNetwork;
use serde_json::Value;

use super::{Error, Lab, Result};
use crate::lab::cni::CNI_PATH;
use crate::lab::net::{self, ip_in, netns_add, netns_del};
use crate::lab::topology::LabTopology;

impl Lab {
    /// Checks what the topology needs before anything is created: root, `ip` and `nft`, every
    /// CNI plugin its configs name (each plugin of a conflist, and host-local for the IPAM),
    /// and the kernel's link types. Names everything missing at once.
    pub fn preflight(topology: &LabTopology) -> Result<()> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            });
        if uid.as_deref() != Some("0") {
            return Err(Error::NotRoot);
        }
        let mut missing: Vec<String> = Vec::new();
        if net::run("ip", &["-V"]).is_err() {
            missing.push("iproute2's `ip` (`apt-get install iproute2`)".into());
        }
        // Agents run inside their pods' namespaces through `nsenter` (lab::backend).
        if net::run("nsenter", &["--version"]).is_err() {
            missing.push("util-linux's `nsenter` (`apt-get install util-linux`)".into());
        }
        // Faults and an underlay MTU below the NAD's are nftables rules in the switch namespace.
        if !crate::lab::faults::ruleset(topology).is_empty()
            && net::run("nft", &["--version"]).is_err()
        {
            missing.push("nftables' `nft` (`apt-get install nftables`)".into());
        }
        let mut plugins: BTreeSet<String> = BTreeSet::from(["host-local".to_string()]);
        for n in topology.networks.values() {
            plugins.extend(plugin_types(&n.config_json));
            plugins.insert(n.cni_type.clone());
        }
        for plugin in &plugins {
            let path = PathBuf::from(CNI_PATH).join(plugin);
            if !path.exists() {
                missing.push(format!(
                    "the CNI plugin {} (`apt-get install containernetworking-plugins`)",
                    path.display()
                ));
            }
        }
        missing.extend(missing_link_kinds(topology, kernel_has));
        if !missing.is_empty() {
            return Err(Error::Missing(missing));
        }
        Ok(())
    }
}

/// The link types `topology` needs that `kernel_has` says the kernel cannot make, each said
/// with what needs it. `kernel_has` is [`kernel_has`] but in tests of the lacking branch,
/// which no kernel at hand may take.
fn missing_link_kinds(topology: &LabTopology, kernel_has: impl Fn(&str) -> bool) -> Vec<String> {
    let mut kinds: BTreeSet<&str> = BTreeSet::from(["veth", "bridge"]);
    kinds.extend(
        topology
            .networks
            .values()
            .filter_map(|n| link_kind(&n.cni_type)),
    );
    if topology.networks.contains_key(&CephNetwork::Public) {
        kinds.insert("macvlan"); // the hosts' shim onto the public network
    }
    let users = |kind: &str| -> String {
        let nets: Vec<&str> = topology
            .networks
            .iter()
            .filter(|(_, n)| link_kind(&n.cni_type) == Some(kind))
            .map(|(k, _)| k.key())
            .collect();
        match (kind, nets.is_empty()) {
            ("macvlan", true) => "the hosts' public-network shim".into(),
            (_, true) => "the lab's switches and links".into(),
            _ => format!("the {} network(s)", nets.join(" and ")),
        }
    };
    kinds
        .into_iter()
        .filter(|kind| !kernel_has(kind))
        .map(|kind| {
            format!(
                "{kind} links (used by {}), which this kernel does not provide",
                users(kind)
            )
        })
        .collect()
}

/// The link type a CNI plugin creates on its master, if the kernel must provide one.
fn link_kind(cni_type: &str) -> Option<&'static str> {
    match cni_type {
        "macvlan" => Some("macvlan"),
        "ipvlan" => Some("ipvlan"),
        "bridge" => Some("bridge"),
        _ => None,
    }
}

/// The plugin types a CNI config runs: its `type`, or each plugin's in a conflist.
fn plugin_types(config_json: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(config_json) else {
        return Vec::new();
    };
    let of = |p: &Value| p.get("type").and_then(Value::as_str).map(str::to_string);
    match v.get("plugins").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(of).collect(),
        None => of(&v).into_iter().collect(),
    }
}

/// Whether the kernel can make links of `kind` (tries it in a scratch namespace).
fn kernel_has(kind: &str) -> bool {
    // `_` is never in a lab name, so no lab's `<name>-` prefix covers this namespace.
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ns = format!(
        "mn_probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    if netns_add(&ns).is_err() {
        return false;
    }
    let ok = match kind {
        "veth" => ip_in(
            &ns,
            &[
                "link", "add", "name", "vx0", "type", "veth", "peer", "name", "vx1",
            ],
        )
        .is_ok(),
        "macvlan" | "ipvlan" => {
            ip_in(&ns, &["link", "add", "name", "br0", "type", "bridge"]).is_ok()
                && ip_in(
                    &ns,
                    &["link", "add", "link", "br0", "name", "x0", "type", kind],
                )
                .is_ok()
        }
        other => ip_in(&ns, &["link", "add", "name", "x0", "type", other]).is_ok(),
    };
    let _ = netns_del(&ns);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::parse_topology;

    #[test]
    fn a_link_type_the_kernel_lacks_is_named_with_the_networks_that_use_it() {
        let (topology, problems) =
            parse_topology("networks:\n  public: {cni: ipvlan}\n  cluster: {cni: ipvlan}\n")
                .expect("YAML");
        assert!(problems.is_valid(), "{problems:?}");
        assert_eq!(
            missing_link_kinds(&topology, |kind| kind != "ipvlan"),
            [
                "ipvlan links (used by the public and cluster network(s)), which this kernel does \
              not provide"
            ]
        );
        // The hosts' shim needs macvlan even where no network uses it.
        assert_eq!(
            missing_link_kinds(&topology, |kind| kind != "macvlan"),
            [
                "macvlan links (used by the hosts' public-network shim), which this kernel does not \
              provide"
            ]
        );
        assert_eq!(
            missing_link_kinds(&topology, |_| true),
            Vec::<String>::new()
        );
    }
}
