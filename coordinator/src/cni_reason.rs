//! What a CNI plugin's failure says about the master interface, in the words of the plugin,
//! completed with what the runtime knows: backends add the master's name (and, where they know
//! it, its MTU) to the reason a pod got no address ([`annotate`]); the findings read it back
//! ([`read`]) to name the master and the MTUs and lead with the fix.
//!
//! The messages, from containernetworking/plugins (`plugins/main/macvlan/macvlan.go` and
//! `plugins/main/ipvlan/ipvlan.go`, `loadConf`/`createMacvlan`/`createIpvlan`):
//! * a missing master: `failed to lookup master "eth1": Link not found` (older plugins), or the
//!   bare `Link not found` (newer macvlan asks the master's MTU first, through netlink);
//! * a NAD MTU above the master's: macvlan refuses it itself, `invalid MTU 9000, must be [0,
//!   master MTU(1500)]`; ipvlan (and macvlan before that check) leaves it to the kernel, which
//!   refuses the link: `failed to create ipvlan: invalid argument`.

/// What the runtime knows about a failed ADD's master interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Master<'a> {
    /// The master interface the NAD's config names (`master`).
    pub name: &'a str,
    /// The node the pod was placed on.
    pub node: &'a str,
    /// The MTU the NAD's config asks for (`mtu`), if any.
    pub nad_mtu: Option<u32>,
    /// The master's MTU, where the backend knows it (the lab does; a cluster's API does not).
    pub master_mtu: Option<u32>,
    /// Whether the master interface exists on the node, where the backend knows it.
    pub present: Option<bool>,
}

/// What a failed ADD's reason says about the master, read back by [`read`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Said {
    /// The master interface named, by the plugin or by the runtime.
    pub master: Option<String>,
    /// The master is missing on the node.
    pub missing: bool,
    /// The NAD's MTU, when the failure is its MTU above the master's.
    pub nad_mtu: Option<u32>,
    /// The master's MTU, when known.
    pub master_mtu: Option<u32>,
}

impl Said {
    /// Whether the failure is a NAD MTU the master cannot carry (said by the plugin, or
    /// inferred by the runtime from both MTUs).
    pub fn mtu_too_large(&self) -> bool {
        self.nad_mtu.is_some()
    }
}

/// The plugin's `invalid MTU A, must be [0, master MTU(B)]`: (A, B).
fn plugin_mtu_refusal(reason: &str) -> Option<(u32, u32)> {
    let rest = &reason[reason.find("invalid MTU ")? + "invalid MTU ".len()..];
    let nad: u32 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let rest = &rest[rest.find("master MTU(")? + "master MTU(".len()..];
    let master: u32 = rest.split(')').next()?.parse().ok()?;
    Some((nad, master))
}

/// `reason` completed with what the runtime knows of the master, when the failure is about
/// it: a missing master (`Link not found`) gets ` (the master interface "X" is not on node
/// N)`; a refused MTU (the plugin's `invalid MTU`, or the kernel's `invalid argument` where the
/// NAD asks an MTU above the master's known one) gets ` (master interface "X" on node N: MTU
/// M, below the NAD's mtu A)` — the master's MTU left out where unknown. Other reasons, and
/// reasons that name the master already, come back unchanged.
pub fn annotate(reason: &str, master: &Master<'_>) -> String {
    let Master {
        name,
        node,
        nad_mtu,
        master_mtu,
        present,
    } = *master;
    if reason.contains("Link not found") && present != Some(true) {
        if reason.contains("master") {
            return reason.to_string();
        }
        return format!("{reason} (the master interface \"{name}\" is not on node {node})");
    }
    if let Some((nad, master_mtu)) = plugin_mtu_refusal(reason) {
        return format!(
            "{reason} (master interface \"{name}\" on node {node}: MTU {master_mtu}, below the NAD's mtu {nad})"
        );
    }
    let kernel_refused = reason.contains("invalid argument");
    match (nad_mtu, master_mtu) {
        (Some(nad), Some(m)) if kernel_refused && nad > m => format!(
            "{reason} (master interface \"{name}\" on node {node}: MTU {m}, below the NAD's mtu {nad})"
        ),
        (Some(nad), None) if kernel_refused => format!(
            "{reason} (master interface \"{name}\" on node {node}; the NAD's mtu {nad} may be above its MTU)"
        ),
        _ => reason.to_string(),
    }
}

/// Reads back what [`annotate`] and the plugins say (see the module's messages).
pub fn read(reason: &str) -> Said {
    let mut said = Said::default();
    let named = ["lookup master \"", "master interface \""]
        .into_iter()
        .find_map(|m| reason.find(m).map(|at| at + m.len()))
        .and_then(|at| reason[at..].split('"').next())
        .filter(|n| !n.is_empty());
    said.master = named.map(str::to_string);
    said.missing = reason.contains("Link not found") && said.master.is_some();
    if let Some((nad, master)) = plugin_mtu_refusal(reason) {
        said.nad_mtu = Some(nad);
        said.master_mtu = Some(master);
    } else if let Some(at) = reason.find(": MTU ") {
        let rest = &reason[at + ": MTU ".len()..];
        let master = rest.split(',').next().and_then(|m| m.parse().ok());
        let nad = rest
            .find("the NAD's mtu ")
            .and_then(|i| {
                rest[i + "the NAD's mtu ".len()..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
            })
            .and_then(|n| n.parse().ok());
        if let (Some(master), Some(nad)) = (master, nad) {
            said.master_mtu = Some(master);
            said.nad_mtu = Some(nad);
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master<'a>(nad_mtu: Option<u32>, master_mtu: Option<u32>) -> Master<'a> {
        Master {
            name: "pub0",
            node: "worker-3",
            nad_mtu,
            master_mtu,
            present: None,
        }
    }

    #[test]
    fn a_missing_master_is_named_once() {
        // Newer macvlan: the bare netlink error (macvlan.go, loadConf → getMTUByName).
        let bare = "CNI ADD (/usr/lib/cni/macvlan) failed: Link not found";
        let done = annotate(bare, &master(None, None));
        assert_eq!(
            done,
            format!("{bare} (the master interface \"pub0\" is not on node worker-3)")
        );
        let said = read(&done);
        assert_eq!(said.master.as_deref(), Some("pub0"));
        assert!(said.missing && !said.mtu_too_large());
        // Older plugins name it themselves: nothing added.
        let old = "failed to lookup master \"eth1\": Link not found";
        assert_eq!(annotate(old, &master(None, None)), old);
        assert_eq!(read(old).master.as_deref(), Some("eth1"));
        assert!(read(old).missing);
    }

    #[test]
    fn a_refused_mtu_names_the_master_and_both_mtus() {
        // macvlan's own check (macvlan.go, loadConf): both MTUs in the plugin's words.
        let plugin = "CNI ADD (/usr/lib/cni/macvlan) failed: invalid MTU 9000, must be [0, master MTU(1500)]";
        let done = annotate(plugin, &master(Some(9000), None));
        let said = read(&done);
        assert_eq!(
            said,
            Said {
                master: Some("pub0".into()),
                missing: false,
                nad_mtu: Some(9000),
                master_mtu: Some(1500),
            }
        );
        assert!(done.contains("worker-3"), "{done}");
        // The kernel's refusal (ipvlan): the MTUs from what the runtime knows.
        let kernel = "failed to create ipvlan: invalid argument";
        let known = read(&annotate(kernel, &master(Some(9000), Some(1400))));
        assert_eq!(
            (known.nad_mtu, known.master_mtu, known.master.as_deref()),
            (Some(9000), Some(1400), Some("pub0"))
        );
        // A cluster's runtime does not know the master's MTU: named, MTUs not claimed.
        let unknown = read(&annotate(kernel, &master(Some(9000), None)));
        assert_eq!(unknown.master.as_deref(), Some("pub0"));
        assert!(!unknown.mtu_too_large());
        // An invalid argument with the NAD's MTU within the master's is something else.
        assert_eq!(annotate(kernel, &master(Some(1500), Some(9000))), kernel);
    }

    #[test]
    fn other_failures_are_left_as_they_are() {
        let range = "failed to allocate for range 0: no IP addresses available in range set";
        assert_eq!(annotate(range, &master(Some(9000), Some(1500))), range);
        assert_eq!(read(range), Said::default());
        // A master that exists: "Link not found" is about another link.
        let mut present = master(None, None);
        present.present = Some(true);
        let other = "failed to move link: Link not found";
        assert_eq!(annotate(other, &present), other);
    }
}
