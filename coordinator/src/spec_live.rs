//! `spec check --pods` / `--ippools`: the live state of a cluster's secondary networks, from
//! `kubectl get pods -A -o yaml` and `kubectl get ippools.whereabouts.cni.cncf.io -A -o yaml`.
//!
//! Reads the files and puts together what `multinet_proto::multus::{pods, ippool}` say: requested
//! networks a pod does not have, addresses held by two pods on one network, leaked whereabouts
//! reservations, pools whose ranges overlap, and — with the manifest, `--nads` and `--nodes` —
//! the addresses free now against the worst case. What will not work goes to the caller's
//! [`Fit`] (exit 1), what deserves attention to its warnings, unreadable input to its errors
//! (exit 22). Touches no cluster.

use std::fmt::Write;
use std::path::Path;

use multinet_proto::capacity::CapacityCheck;
use multinet_proto::cidr::{Cidr, to_u128};
use multinet_proto::field::{Problem, Problems};
use multinet_proto::multus::ippool::{
    IpPool, LeakedReservation, PoolOverlap, PoolUsage, check_pools, read_ippools,
};
use multinet_proto::multus::nad::Nad;
use multinet_proto::multus::pods::{
    AttachmentProblem, AttachmentProblemKind, DuplicateAddress, LivePod, check_pods, read_pods,
};
use multinet_proto::spec_fit::Fit;
use serde::Serialize;

use crate::findings::duplicate_address_suggestions;
use crate::input::read_documents;

/// How many leaked reservations a pool's warning names; the JSON lists all.
const LEAKS_LISTED: usize = 3;

/// The live state checked; the `live` object of `spec check`'s JSON.
#[derive(Debug, Default, Serialize)]
pub struct LiveReport {
    /// The pods file, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_file: Option<String>,
    /// Pods read.
    pub pods: usize,
    /// Pods whose attachments were checked (not host-network, not ended).
    pub pods_checked: usize,
    /// Requested networks a pod does not have as asked.
    pub attachments: Vec<AttachmentProblem>,
    /// Addresses two or more pods hold on one network, with what to check.
    pub duplicates: Vec<DuplicateFinding>,
    /// The IPPools, when `--ippools` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ippools: Option<PoolsReport>,
}

/// A duplicate address and what to check (the run's `duplicate_address` suggestions).
#[derive(Debug, Serialize)]
pub struct DuplicateFinding {
    /// The address, network and holders.
    #[serde(flatten)]
    pub duplicate: DuplicateAddress,
    /// The same summary the text output prints.
    pub summary: String,
    /// What to check, for the person who must fix the network.
    pub suggestions: Vec<String>,
}

/// What the IPPools say.
#[derive(Debug, Serialize)]
pub struct PoolsReport {
    /// The IPPools file.
    pub file: String,
    /// Every pool's addresses now.
    pub usage: Vec<PoolUsage>,
    /// Reservations whose pod is gone or does not hold the address.
    pub leaked: Vec<LeakedReservation>,
    /// Pairs of pools whose ranges overlap.
    pub overlaps: Vec<PoolOverlap>,
    /// Namespaces whose reservations were not judged (no pod of theirs in the pods file).
    pub unchecked_namespaces: Vec<String>,
    /// Free addresses of each selected NAD's pools against the worst case (`--nodes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub demand: Vec<FreeVersusDemand>,
}

/// One selected NAD's free addresses now against the worst case.
#[derive(Debug, Serialize)]
pub struct FreeVersusDemand {
    /// `namespace/name` of the NAD.
    pub nad: String,
    /// Addresses the worst case needs.
    pub demand: u64,
    /// Addresses free now: the smallest over the NAD's ranges (a pod takes one from each).
    pub free: u64,
    /// Whether `free` covers `demand`.
    pub fits: bool,
    /// How `free` was computed, range by range.
    pub arithmetic: String,
}

/// What `check` reads.
#[derive(Debug, Clone, Copy)]
pub struct LiveInputs<'a> {
    /// `--pods`.
    pub pods: Option<&'a Path>,
    /// `--ippools`.
    pub ippools: Option<&'a Path>,
    /// The NADs read with `--nads` (empty without).
    pub nads: &'a [Nad],
    /// The worst case per selected NAD (`--nodes` with a manifest and `--nads`), if compared.
    pub capacity: Option<&'a [CapacityCheck]>,
    /// True when `--nodes` was given (to say why nothing was compared).
    pub nodes_given: bool,
}

/// Reads and checks the live state; files problems into `problems` and what will not work into
/// `fit`.
pub fn check(inputs: LiveInputs<'_>, problems: &mut Problems, fit: &mut Fit) -> LiveReport {
    let mut report = LiveReport {
        pods_file: inputs.pods.map(|p| p.display().to_string()),
        ..LiveReport::default()
    };
    let pods: Vec<LivePod> = match inputs.pods {
        Some(path) => {
            let label = path.display().to_string();
            let docs = read_documents(path, problems).unwrap_or_default();
            let mut found = Problems::default();
            let pods = read_pods(&docs, &mut found);
            problems.absorb_under(&label, found);
            pods
        }
        None => Vec::new(),
    };
    report.pods = pods.len();
    report.pods_checked = pods.iter().filter(|p| p.is_attached_by_multus()).count();
    // A NAD known to have no IPAM section hands out no address: its attachments have none.
    let expects_address = |namespace: &str, name: &str| {
        inputs
            .nads
            .iter()
            .find(|n| n.namespace == namespace && n.name == name)
            .and_then(|n| n.config.as_ref())
            .is_none_or(|c| c.ipam.ipam_type.is_some())
    };
    let checked = check_pods(&pods, expects_address);
    for a in &checked.attachments {
        fit.fails(format!("Pod {}", a.pod_described()), a.message.clone());
    }
    for d in checked.duplicates {
        let summary = d.summary();
        fit.fails("duplicate_address", summary.clone());
        let suggestions = duplicate_address_suggestions(d.nodes().len() > 1)
            .iter()
            .map(ToString::to_string)
            .collect();
        report.duplicates.push(DuplicateFinding {
            duplicate: d,
            summary,
            suggestions,
        });
    }
    report.attachments = checked.attachments;

    if let Some(path) = inputs.ippools {
        let label = path.display().to_string();
        let docs = read_documents(path, problems).unwrap_or_default();
        let mut found = Problems::default();
        let pools = read_ippools(&docs, &mut found);
        problems.absorb_under(&label, found);
        let checked = check_pools(&pools, &pods);
        // One warning per pool: a pool can hold hundreds of leaked reservations.
        for pool in &pools {
            let name = pool.namespaced_name();
            let leaks: Vec<&LeakedReservation> =
                checked.leaked.iter().filter(|l| l.pool == name).collect();
            if leaks.is_empty() {
                continue;
            }
            let shown: Vec<&str> = leaks
                .iter()
                .take(LEAKS_LISTED)
                .map(|l| l.reason.as_str())
                .collect();
            let more = match leaks.len().saturating_sub(LEAKS_LISTED) {
                0 => String::new(),
                n => format!("; and {n} more (all in -o json)"),
            };
            problems.warn(
                format!("IPPool {name}"),
                format!(
                    "{} leaked reservation(s), addresses lost to new pods until whereabouts' \
                     reconciler (ip-control-loop) or a person removes them: {}{more}",
                    leaks.len(),
                    shown.join("; ")
                ),
            );
        }
        if inputs.pods.is_none() && !pools.is_empty() {
            problems.warn(
                "--ippools",
                "without --pods no reservation can be judged leaked",
            );
        } else if !checked.unchecked_namespaces.is_empty() {
            problems.warn(
                "--ippools",
                format!(
                    "reservations of namespace(s) {} were not judged: the pods file has no pod \
                     there (list every namespace: `kubectl get pods -A -o yaml`)",
                    checked.unchecked_namespaces.join(", ")
                ),
            );
        }
        // The NADs (from --nads) whose whereabouts ranges a pool serves, for the messages.
        let served_by = |pool_name: &str, open: &str, close: &str| {
            let Some(pool) = pools.iter().find(|p| p.namespaced_name() == pool_name) else {
                return String::new();
            };
            let names: Vec<String> = whereabouts_ranges(inputs.nads)
                .filter(|(_, cidr)| *cidr == pool.cidr.network())
                .map(|(nad, _)| nad.namespaced_name())
                .collect();
            if names.is_empty() {
                String::new()
            } else {
                format!("{open}NAD {}{close}", names.join(", "))
            }
        };
        for o in &checked.overlaps {
            problems.warn(
                format!("IPPool {}", o.pools[0]),
                format!(
                    "its range {}{} overlaps IPPool {} ({}{}): {OVERLAP_RISK}",
                    o.ranges[0],
                    served_by(&o.pools[0], " (", ")"),
                    o.pools[1],
                    o.ranges[1],
                    served_by(&o.pools[1], ", ", ""),
                ),
            );
        }
        let ranges: Vec<(&Nad, Cidr)> = whereabouts_ranges(inputs.nads).collect();
        for (i, (a, ra)) in ranges.iter().enumerate() {
            for (b, rb) in &ranges[i + 1..] {
                let overlap = ra.family() == rb.family()
                    && ra.first() <= rb.last()
                    && rb.first() <= ra.last();
                if overlap && a.namespaced_name() != b.namespaced_name() {
                    problems.warn(
                        format!("NAD {}", a.namespaced_name()),
                        format!(
                            "its whereabouts range {ra} overlaps {rb} of NAD {}: {OVERLAP_RISK}",
                            b.namespaced_name()
                        ),
                    );
                }
            }
        }
        let demand = match inputs.capacity {
            Some(checks) => free_versus_demand(checks, inputs.nads, &pools, &checked.leaked),
            None => {
                if inputs.nodes_given {
                    problems.warn(
                        "--nodes",
                        "comparing free addresses with the worst case needs the CephCluster \
                         manifest and --nads (which pool serves which network); nothing was \
                         compared",
                    );
                }
                Vec::new()
            }
        };
        for d in demand.iter().filter(|d| !d.fits) {
            fit.fails(
                format!("NAD {}", d.nad),
                format!(
                    "the worst case needs {} address(es) but only {} are free now: {}",
                    d.demand, d.free, d.arithmetic
                ),
            );
        }
        report.ippools = Some(PoolsReport {
            file: label,
            usage: checked.usage,
            leaked: checked.leaked,
            overlaps: checked.overlaps,
            unchecked_namespaces: checked.unchecked_namespaces,
            demand,
        });
    }
    report
}

/// Why overlapping whereabouts ranges are worth a warning, and when they are harmless.
const OVERLAP_RISK: &str = "each pool hands out its addresses on its own, so two pods can get one \
    address, unless whereabouts' overlapping-range reservations (`enable_overlapping_ranges`) \
    cover both — they are keyed by `network_name` and address (pkg/storage/kubernetes/ipam.go, \
    normalizeIP), so NADs with different `network_name`s are not guarded from each other";

/// Every whereabouts range of `nads`, with its NAD.
fn whereabouts_ranges(nads: &[Nad]) -> impl Iterator<Item = (&Nad, Cidr)> {
    nads.iter()
        .filter_map(|n| n.config.as_ref().map(|c| (n, c)))
        .filter(|(_, c)| c.ipam.ipam_type.as_deref() == Some("whereabouts"))
        .flat_map(|(n, c)| {
            c.ipam
                .ranges
                .iter()
                .filter_map(move |r| r.cidr.parse::<Cidr>().ok().map(|cidr| (n, cidr)))
        })
}

/// For each NAD in `checks`: a pod takes one address from each of its whereabouts ranges, so
/// the free addresses are the smallest over its ranges of (addresses the range hands out −
/// reservations among them). A range with no pool yet is wholly free (whereabouts creates the
/// pool on first use). Two pools over one range (different `network_name`s) are ambiguous:
/// the fuller one is taken, the lower bound.
fn free_versus_demand(
    checks: &[CapacityCheck],
    nads: &[Nad],
    pools: &[IpPool],
    leaked: &[LeakedReservation],
) -> Vec<FreeVersusDemand> {
    let mut out = Vec::new();
    for check in checks {
        let Some(config) = nads
            .iter()
            .find(|n| n.namespaced_name() == check.nad)
            .and_then(|n| n.config.as_ref())
            .filter(|c| c.ipam.ipam_type.as_deref() == Some("whereabouts"))
        else {
            continue;
        };
        let mut parts = Vec::new();
        let mut free: Option<u64> = None;
        for range in &config.ipam.ranges {
            let bounds = range
                .first
                .as_deref()
                .zip(range.last.as_deref())
                .and_then(|(f, l)| Some((f.parse().ok()?, l.parse().ok()?)))
                .map(|(f, l)| (to_u128(f), to_u128(l)));
            let candidates = pools
                .iter()
                .filter(|p| p.cidr.network().to_string() == range.cidr)
                .map(|p| {
                    let inside: Vec<_> = p
                        .reservations
                        .iter()
                        .filter(|r| {
                            bounds.is_some_and(|(f, l)| (f..=l).contains(&to_u128(r.address)))
                        })
                        .collect();
                    let leaked = inside
                        .iter()
                        .filter(|r| {
                            leaked
                                .iter()
                                .any(|k| k.pool == p.namespaced_name() && k.address == r.address)
                        })
                        .count();
                    (p, inside.len() as u64, leaked)
                })
                .max_by_key(|(_, reserved, _)| *reserved);
            let (range_free, part) = match candidates {
                Some((pool, reserved, leaked)) => {
                    let f = range.usable.saturating_sub(reserved);
                    let leaked = if leaked > 0 {
                        format!(" ({leaked} of them leaked)")
                    } else {
                        String::new()
                    };
                    (
                        f,
                        format!(
                            "{}: {} usable − {reserved} reserved in IPPool {}{leaked} = {f} free",
                            range.cidr,
                            range.usable,
                            pool.namespaced_name()
                        ),
                    )
                }
                None => (
                    range.usable,
                    format!(
                        "{}: {} usable, no IPPool yet (none reserved)",
                        range.cidr, range.usable
                    ),
                ),
            };
            free = Some(free.map_or(range_free, |f| f.min(range_free)));
            parts.push(part);
        }
        let free = free.unwrap_or(0);
        out.push(FreeVersusDemand {
            nad: check.nad.clone(),
            demand: check.demand,
            free,
            fits: free >= check.demand,
            arithmetic: parts.join("; "),
        });
    }
    out
}

/// Appends the text form of `report` to `out`.
pub fn render(report: &LiveReport, out: &mut String) {
    if let Some(file) = &report.pods_file {
        let _ = writeln!(
            out,
            "\nPods: {file}: {} pod(s), {} with Multus attachments checked",
            report.pods, report.pods_checked
        );
        if report.attachments.is_empty() && report.duplicates.is_empty() {
            let _ = writeln!(
                out,
                "  every requested network attached with an address; no address held twice"
            );
        }
        // One line each; the sentences are under "will not work".
        for a in &report.attachments {
            let what = match a.kind {
                AttachmentProblemKind::NoStatus => "NOTHING ATTACHED",
                AttachmentProblemKind::InterfaceMissing => "NOT ATTACHED",
                AttachmentProblemKind::NoAddress => "NO ADDRESS",
            };
            let _ = writeln!(
                out,
                "  {what:<17} {:<28} pod {}",
                a.networks.join(", "),
                a.pod_described()
            );
        }
        for d in &report.duplicates {
            let holders: Vec<String> = d
                .duplicate
                .pods
                .iter()
                .map(|p| {
                    format!(
                        "{} (node {})",
                        p.pod,
                        p.node.as_deref().unwrap_or("not scheduled")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  {:<17} {} on {}: {}",
                "DUPLICATE",
                d.duplicate.address,
                d.duplicate.network,
                holders.join(", ")
            );
            for s in &d.suggestions {
                let _ = writeln!(out, "      - {s}");
            }
        }
    }
    if let Some(pools) = &report.ippools {
        let _ = writeln!(
            out,
            "\nwhereabouts IPPools: {}: {} pool(s)",
            pools.file,
            pools.usage.len()
        );
        for u in &pools.usage {
            let _ = writeln!(
                out,
                "  {:<40} {:<20} {:>6} usable {:>6} reserved ({} leaked) {:>6} free",
                u.pool, u.range, u.usable, u.reserved, u.leaked, u.free
            );
        }
        for d in &pools.demand {
            let verdict = if d.fits { "fits" } else { "DOES NOT FIT" };
            let _ = writeln!(
                out,
                "  {:<28} {verdict:<13} needs {}, {} free now ({})",
                d.nad, d.demand, d.free, d.arithmetic
            );
        }
    }
}

/// `spec check` without a manifest: only the live state. The JSON output is this structure.
#[derive(Debug, Serialize)]
pub struct LiveOnlyReport {
    /// True when there is no error (warnings allowed).
    pub valid: bool,
    /// What will not work (exit 1); left out when there is nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub will_not_work: Vec<Problem>,
    /// The live state.
    pub live: LiveReport,
    /// Errors and warnings, by file, object and field.
    #[serde(flatten)]
    pub problems: Problems,
}
