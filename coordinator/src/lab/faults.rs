//! Faults, applied where a real network would have them: nftables rules on the underlay
//! switch's ports (a `bridge` table in the lab's switch namespace) for blocked paths, random
//! loss and an underlay MTU below the NAD's (`underlay`, or an `mtu` fault); a switch port set
//! down for a `link-down`; link settings for missing uplinks and host routes (in
//! [`super::build`]). Faults that come and go (on a schedule, or `multinet lab fault`) each
//! get a table of their own. The control network is never touched.
//!
//! The MTU rule matters: veth pairs carry segmentation-offloaded packets whatever their MTU,
//! so a lower MTU set on a veth alone drops nothing. The switch port drops IP packets longer
//! than the underlay MTU, as a switch with that MTU would.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use multinet_proto::network::CephNetwork;

use super::net;
use super::topology::{Fault, LabTopology, NodeRef};

/// Why the fault rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rules file could not be written into the lab's state directory.
    #[error("writing the fault rules to {}", path.display())]
    Write {
        /// The rules file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused the rules, or could not be run in the switch namespace.
    #[error(transparent)]
    Load(#[from] net::Error),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The switch port of node `node` (its name) on `network`, in the switch namespace:
/// `<id>-pub` / `<id>-clu` with the node's [`LabTopology::node_id`].
pub fn switch_port(topology: &LabTopology, node: &str, network: CephNetwork) -> String {
    format!(
        "{}-{}",
        topology.node_id(node),
        match network {
            CephNetwork::Public => "pub",
            CephNetwork::Cluster => "clu",
        }
    )
}

/// The rules of one fault, each line `    <match> counter drop\n` (empty for faults that are
/// not switch rules).
fn fault_rules(topology: &LabTopology, fault: &Fault) -> String {
    let mut rules = String::new();
    match fault {
        Fault::Block { network, from, to } => {
            let mut r = String::new();
            if let NodeRef::Node(n) = from {
                let _ = write!(r, "iifname \"{}\" ", switch_port(topology, n, *network));
            }
            if let NodeRef::Node(n) = to {
                let _ = write!(r, "oifname \"{}\" ", switch_port(topology, n, *network));
            }
            if r.is_empty() {
                // From any node to any node: every port of this network's switch.
                for node in &topology.nodes {
                    let _ = writeln!(
                        rules,
                        "    iifname \"{}\" counter drop",
                        switch_port(topology, &node.name, *network)
                    );
                }
            } else {
                let _ = writeln!(rules, "    {r}counter drop");
            }
        }
        Fault::Loss {
            network,
            node,
            percent,
        } => {
            let port = switch_port(topology, node, *network);
            let threshold = (percent * 100.0).round() as u32; // per ten thousand
            for dir in ["iifname", "oifname"] {
                let _ = writeln!(
                    rules,
                    "    {dir} \"{port}\" numgen random mod 10000 < {threshold} counter drop"
                );
            }
        }
        Fault::Mtu { network, node, mtu } => {
            rules.push_str(&mtu_rules(&switch_port(topology, node, *network), *mtu));
        }
        Fault::LinkDown { .. } | Fault::HostRouteMissing { .. } | Fault::KillAgent { .. } => {}
    }
    rules
}

/// Rules that drop IP packets longer than `mtu` on switch port `port`, both ways (IPv6's
/// `length` is its payload's: the 40-byte header is not counted).
fn mtu_rules(port: &str, mtu: u32) -> String {
    let mut rules = String::new();
    for dir in ["iifname", "oifname"] {
        let _ = writeln!(rules, "    {dir} \"{port}\" ip length > {mtu} counter drop");
        let _ = writeln!(
            rules,
            "    {dir} \"{port}\" ip6 length > {} counter drop",
            mtu.saturating_sub(40)
        );
    }
    rules
}

/// The switch port `fault` takes down (a link-down), if it is one.
fn port_down(topology: &LabTopology, fault: &Fault) -> Option<String> {
    match fault {
        Fault::LinkDown { network, node } => Some(switch_port(topology, node, *network)),
        _ => None,
    }
}

/// Applies `fault` to the lab that is up: its switch rules as the nftables table `table`
/// (through the file `file`, removed after), its switch port down for a link-down.
///
/// # Errors
///
/// `nft` refused the rules, or the port could not be set down.
pub fn apply_fault(
    topology: &LabTopology,
    fault: &Fault,
    table_name: &str,
    switch_ns: &str,
    file: &Path,
) -> Result<()> {
    let rules = fault_rules(topology, fault);
    if !rules.is_empty() {
        load(&table(table_name, &rules), switch_ns, file)?;
    }
    if let Some(port) = port_down(topology, fault) {
        net::in_namespace(switch_ns, |l| l.down(&port))?;
    }
    Ok(())
}

/// Undoes [`apply_fault`]: deletes the table, sets the port up again. A link-down on a port
/// that another fault also took down brings it up all the same (faults on one port do not
/// stack).
///
/// # Errors
///
/// `nft` could not delete the table (it was never applied), or the port not be set up.
pub fn remove_fault(
    topology: &LabTopology,
    fault: &Fault,
    table_name: &str,
    switch_ns: &str,
) -> Result<()> {
    if !fault_rules(topology, fault).is_empty() {
        net::run(
            "ip",
            &[
                "netns", "exec", switch_ns, "nft", "delete", "table", "bridge", table_name,
            ],
        )?;
    }
    if let Some(port) = port_down(topology, fault) {
        net::in_namespace(switch_ns, |l| l.up(&port))?;
    }
    Ok(())
}

/// A bridge table `name` filtering the switch's forwarding with `rules`.
fn table(name: &str, rules: &str) -> String {
    format!(
        "table bridge {name} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n{rules}  }}\n}}\n"
    )
}

/// The table of scheduled fault `index` (of [`LabTopology::scheduled`]): its own, so it comes
/// and goes without touching the others.
pub fn scheduled_table_name(index: usize) -> String {
    format!("multinet_at{index}")
}

/// Applies scheduled fault `index` (of [`LabTopology::scheduled`]) in the switch namespace
/// `switch_ns`; nothing for an index out of range.
pub fn apply_scheduled(
    topology: &LabTopology,
    index: usize,
    switch_ns: &str,
    dir: &Path,
) -> Result<()> {
    let Some(scheduled) = topology.scheduled.get(index) else {
        return Ok(());
    };
    apply_fault(
        topology,
        &scheduled.fault,
        &scheduled_table_name(index),
        switch_ns,
        &dir.join(format!("fault-at{index}.nft")),
    )
}

/// Removes scheduled fault `index` from the switch namespace.
pub fn remove_scheduled(topology: &LabTopology, index: usize, switch_ns: &str) -> Result<()> {
    let Some(scheduled) = topology.scheduled.get(index) else {
        return Ok(());
    };
    remove_fault(
        topology,
        &scheduled.fault,
        &scheduled_table_name(index),
        switch_ns,
    )
}

/// The nftables ruleset for the topology's faults that are always on (empty when there is
/// none).
pub fn ruleset(topology: &LabTopology) -> String {
    let mut rules = String::new();
    for fault in &topology.faults {
        rules.push_str(&fault_rules(topology, fault));
    }
    for u in &topology.underlay {
        let Some(mtu) = u.mtu else { continue };
        rules.push_str(&mtu_rules(&switch_port(topology, &u.node, u.network), mtu));
    }
    if rules.is_empty() {
        return String::new();
    }
    table("multinet", &rules)
}

/// Loads the fault rules into the switch namespace. The rules file lives in the lab's state
/// directory `dir` (removed with the lab, also after a crash).
pub fn apply(topology: &LabTopology, switch_ns: &str, dir: &Path) -> Result<()> {
    let rules = ruleset(topology);
    if !rules.is_empty() {
        load(&rules, switch_ns, &dir.join("faults.nft"))?;
    }
    for port in topology
        .faults
        .iter()
        .filter_map(|f| port_down(topology, f))
    {
        net::in_namespace(switch_ns, |l| l.down(&port))?;
    }
    Ok(())
}

/// Loads `rules` into `switch_ns` through the file `file` (removed after).
fn load(rules: &str, switch_ns: &str, file: &Path) -> Result<()> {
    std::fs::write(file, rules).map_err(|source| Error::Write {
        path: file.to_path_buf(),
        source,
    })?;
    let result = net::run(
        "ip",
        &[
            "netns",
            "exec",
            switch_ns,
            "nft",
            "-f",
            &file.display().to_string(),
        ],
    );
    let _ = std::fs::remove_file(file);
    Ok(result?)
}

/// Whether `node`'s host shim is to be left out.
pub fn host_route_missing(topology: &LabTopology, node: &str) -> bool {
    topology
        .faults
        .iter()
        .any(|f| matches!(f, Fault::HostRouteMissing { node: n } if n == node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::parse_topology;

    fn rules(yaml: &str) -> String {
        let (topology, problems) = parse_topology(yaml).expect("topology parses");
        assert!(problems.is_valid(), "{problems:?}");
        ruleset(&topology)
    }

    #[test]
    fn faults_become_switch_port_rules() {
        let r = rules(
            "faults:\n  - block: {network: cluster, from: '*', to: n1}\n  - block: {network: public, from: n2, to: '*'}\n  - block: {network: public, from: '*', to: '*'}\n  - loss: {network: public, node: n3, percent: 30}\nunderlay:\n  - {node: n2, network: cluster, mtu: 1400}\n",
        );
        for line in [
            "oifname \"n1-clu\" counter drop",
            "iifname \"n2-pub\" counter drop",
            "iifname \"n1-pub\" counter drop",
            "iifname \"n3-pub\" numgen random mod 10000 < 3000 counter drop",
            "oifname \"n3-pub\" numgen random mod 10000 < 3000 counter drop",
            "iifname \"n2-clu\" ip length > 1400 counter drop",
            "oifname \"n2-clu\" ip6 length > 1360 counter drop",
        ] {
            assert!(r.contains(line), "missing {line:?} in\n{r}");
        }
        assert_eq!(rules(""), "", "no fault, no table");
    }

    #[test]
    fn an_mtu_fault_is_the_underlays_rule_and_a_link_down_is_no_rule_but_a_port() {
        let (topology, problems) = parse_topology(
            "faults:
  - mtu: {network: cluster, node: n2, mtu: 1400, at: 5s, for: 10s}
  - link-down: {network: public, node: n3, at: 1m}
  - link-down: {network: cluster, node: n1}
",
        )
        .expect("topology parses");
        assert!(problems.is_valid(), "{problems:?}");
        assert_eq!(topology.scheduled.len(), 2, "{topology:?}");
        let underlay = rules(
            "underlay:
  - {node: n2, network: cluster, mtu: 1400}
",
        );
        assert_eq!(
            fault_rules(&topology, &topology.scheduled[0].fault),
            underlay
                .lines()
                .filter(|l| l.contains("counter drop"))
                .map(|l| format!(
                    "{l}
"
                ))
                .collect::<String>()
        );
        assert_eq!(fault_rules(&topology, &topology.scheduled[1].fault), "");
        assert_eq!(
            port_down(&topology, &topology.scheduled[1].fault).as_deref(),
            Some("n3-pub")
        );
        // The link-down that is always on is a port set down when the lab is built, no rule.
        assert_eq!(ruleset(&topology), "");
        assert_eq!(
            port_down(&topology, &topology.faults[0]).as_deref(),
            Some("n1-clu")
        );
    }
}
