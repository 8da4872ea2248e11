//! Whether the kernel's neighbour tables can hold a run's networks under test.
//!
//! Linux keeps one neighbour table per address family (ARP for IPv4, NDISC for IPv6) for
//! every network namespace of the machine together, and caps its dynamic entries with
//! `net.ipv4.neigh.default.gc_thresh3` / `net.ipv6.neigh.default.gc_thresh3` (1024 by
//! default), which only the host's namespace can change (`net/core/neighbour.c`:
//! `neigh_alloc` counts `tbl->gc_entries` across namespaces and fails past `gc_thresh3`
//! when forced garbage collection frees nothing; the kernel then drops the packet that needed
//! the entry and logs "neighbour table overflow"). A real node holds the entries of its own
//! pods; a lab holds every node's on one kernel. A lab run past the cap would fail paths that
//! work, so it is refused before any pod is placed (exit 69, the run's `error` verdict).
//!
//! The lab's control network uses permanent entries, which are exempt from the cap
//! ([`crate::lab::net::Links::add_permanent_neighbour`]); what counts is the networks under
//! test: on each, every client and the server hold an entry for each other (a client probes
//! the server; the server answers every client), and so do each host checker and the server.

use std::collections::BTreeMap;

use multinet_proto::cidr::Family;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;

use crate::lab::topology::LabTopology;

/// What a run asks of one family's neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// IPv4 (ARP) or IPv6 (NDISC).
    pub family: Family,
    /// Dynamic entries the run holds at once when every agent probes.
    pub entries: u64,
    /// Per network of this family: clients and host checkers on it.
    pub networks: BTreeMap<CephNetwork, (u64, u64)>,
}

/// The kernel's cap for one family and what is in the table now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// `gc_thresh3`: dynamic entries the kernel keeps for all namespaces together.
    pub limit: u64,
    /// Entries in the table now (`/proc/net/stat/arp_cache`, first column; permanent ones
    /// included, so this errs towards refusing).
    pub in_use: u64,
}

/// The neighbour table is too small for the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the kernel's {table} table cannot hold this run: its networks under test need about \
     {needed} {family} neighbour entries at once ({networks}), {in_use} are in use, and the \
     kernel allows {limit} for all network namespaces of this machine together ({sysctl}); \
     past it the kernel drops packets and the run would fail paths that work. Raise the limit \
     for the whole machine (`sysctl -w {sysctl}={suggested} {sysctl2}={suggested_half}`), or \
     place fewer nodes or clients (`--daemons-per-node`, or the run configuration's \
     osdsPerNode and otherDaemonsPerNode)"
)]
pub struct TooSmall {
    /// `ARP` or `NDISC`.
    pub table: &'static str,
    /// `IPv4` or `IPv6`.
    pub family: &'static str,
    /// Entries the run needs.
    pub needed: u64,
    /// The networks and their attachments, said.
    pub networks: String,
    /// Entries in use now.
    pub in_use: u64,
    /// The cap.
    pub limit: u64,
    /// The sysctl that sets it.
    pub sysctl: &'static str,
    /// Its `gc_thresh2` companion (forced garbage collection starts there).
    pub sysctl2: &'static str,
    /// A limit that fits: one and a half times the need and what is in use, rounded up to a power
    /// of two.
    pub suggested: u64,
    /// Half of it, for `gc_thresh2`.
    pub suggested_half: u64,
}

/// What `pods` ask of each family's table on `topology`'s networks: each client and host
/// checker on a network and the server hold an entry for each other, two per agent (the
/// server itself, placed or not, adds none). Families no network uses are left out.
pub fn needs(topology: &LabTopology, pods: &[AgentIdentity]) -> Vec<Need> {
    let mut by_family: BTreeMap<u8, Need> = BTreeMap::new();
    for (network, net) in &topology.networks {
        let on = |role: Role| {
            pods.iter()
                .filter(|p| p.role == role && p.networks.contains(network))
                .count() as u64
        };
        let (clients, host_checkers) = (on(Role::Client), on(Role::HostCheck));
        if clients + host_checkers == 0 {
            continue;
        }
        let family = net.subnet.family();
        let need = by_family.entry(family.bits()).or_insert_with(|| Need {
            family,
            entries: 0,
            networks: BTreeMap::new(),
        });
        need.entries += 2 * (clients + host_checkers);
        need.networks.insert(*network, (clients, host_checkers));
    }
    by_family.into_values().collect()
}

/// Checks `needs` against `capacity` (the kernel's, [`capacity`], but given in tests).
///
/// # Errors
///
/// [`TooSmall`] for the first family whose table cannot hold the run.
pub fn check(
    needs: &[Need],
    capacity: impl Fn(Family) -> Option<Capacity>,
) -> Result<(), Box<TooSmall>> {
    for need in needs {
        let Some(cap) = capacity(need.family) else {
            continue; // the kernel would not say: nothing to hold against
        };
        if need.entries + cap.in_use <= cap.limit {
            continue;
        }
        let v4 = need.family == Family::V4;
        let suggested = ((need.entries + cap.in_use) * 3 / 2).next_power_of_two();
        let networks = need
            .networks
            .iter()
            .map(|(network, (clients, hosts))| {
                let hosts = if *hosts > 0 {
                    format!(" and {hosts} host checkers")
                } else {
                    String::new()
                };
                format!("{clients} clients{hosts} on {}", network.key())
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Box::new(TooSmall {
            table: if v4 { "ARP" } else { "NDISC" },
            family: if v4 { "IPv4" } else { "IPv6" },
            needed: need.entries,
            networks,
            in_use: cap.in_use,
            limit: cap.limit,
            sysctl: if v4 {
                "net.ipv4.neigh.default.gc_thresh3"
            } else {
                "net.ipv6.neigh.default.gc_thresh3"
            },
            sysctl2: if v4 {
                "net.ipv4.neigh.default.gc_thresh2"
            } else {
                "net.ipv6.neigh.default.gc_thresh2"
            },
            suggested,
            suggested_half: suggested / 2,
        }));
    }
    Ok(())
}

/// This machine's cap and current use for `family`, from `/proc` (the host's namespace: the
/// caller's; the table itself is the same from any namespace). `None` when `/proc` does not
/// say.
pub fn capacity(family: Family) -> Option<Capacity> {
    let (sysctl, stat) = match family {
        Family::V4 => (
            "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
            "/proc/net/stat/arp_cache",
        ),
        Family::V6 => (
            "/proc/sys/net/ipv6/neigh/default/gc_thresh3",
            "/proc/net/stat/ndisc_cache",
        ),
    };
    let limit = std::fs::read_to_string(sysctl).ok()?.trim().parse().ok()?;
    let in_use = entries_in_stat(&std::fs::read_to_string(stat).ok()?)?;
    Some(Capacity { limit, in_use })
}

/// The `entries` column of a `/proc/net/stat/*_cache` file: a header line, then one line per
/// CPU whose first field is the table's entry count in hexadecimal (the same on every line).
fn entries_in_stat(text: &str) -> Option<u64> {
    let mut lines = text.lines();
    let header = lines.next()?;
    if header.split_whitespace().next() != Some("entries") {
        return None;
    }
    let first = lines.next()?.split_whitespace().next()?;
    u64::from_str_radix(first, 16).ok()
}

#[cfg(test)]
mod tests;
