//! The text form of a spec check, for people: what the spec means, then what is wrong.

use std::fmt::Write;

use multinet_proto::field::{Problem, Problems};
use multinet_proto::multus::ipam::RangeReport;
use multinet_proto::network::{CephNetwork, NetworkChoice, Provider};

use crate::spec_check::SpecReport;
use crate::spec_live::LiveOnlyReport;

/// Renders `report` as text.
pub fn render(report: &SpecReport) -> String {
    let mut out = String::new();
    let n = &report.network;
    let _ = writeln!(
        out,
        "spec check: {} ({}, namespace {})",
        report.file, n.source, n.namespace
    );
    let provider = match n.provider {
        Provider::Default => "\"\" (the cluster's default pod network)",
        Provider::Host => "host (daemons use the hosts' network namespace)",
        Provider::Multus => "multus (daemons get NAD interfaces)",
    };
    let _ = writeln!(out, "  provider         {provider}");
    for network in CephNetwork::ALL {
        let line = match n.networks.get(network) {
            Some(choice) => describe_choice(choice),
            None => "(not selected)".to_string(),
        };
        let _ = writeln!(out, "  {:<16} {line}", network.key());
    }
    if let (Some(osd), Some(daemon)) = (&n.osd_annotation, &n.daemon_annotation) {
        let _ = writeln!(out, "  annotation k8s.v1.cni.cncf.io/networks");
        let _ = writeln!(out, "    OSD pods       {}", or_none(osd));
        let _ = writeln!(out, "    other daemons  {}", or_none(daemon));
    }
    let _ = writeln!(out, "  ceph config");
    let _ = writeln!(
        out,
        "    public_network   {}",
        ceph_value(n.ceph.public_network.as_deref(), n.provider)
    );
    let _ = writeln!(
        out,
        "    cluster_network  {}",
        ceph_value(n.ceph.cluster_network.as_deref(), n.provider)
    );
    let flags = if n.ms_bind_flags.is_empty() {
        "(none: Ceph's defaults)".to_string()
    } else {
        n.ms_bind_flags.join(" ")
    };
    let _ = writeln!(out, "  daemon flags     {flags}");

    if let Some(nads) = &report.nads {
        let _ = writeln!(out, "\nNetworkAttachmentDefinitions ({})", nads.len());
        for nad in nads {
            let used = if nad.selected_by.is_empty() {
                "not selected".to_string()
            } else {
                nad.selected_by
                    .iter()
                    .map(|n| n.key())
                    .collect::<Vec<_>>()
                    .join(" + ")
            };
            let _ = writeln!(out, "  {}/{}  [{used}]", nad.namespace, nad.name);
            let Some(c) = &nad.config else {
                let _ = writeln!(out, "      config not inspectable");
                continue;
            };
            let mut plugin = c.plugin.clone();
            if c.chain.len() > 1 {
                plugin = format!("{} (chain: {})", plugin, c.chain.join(" → "));
            }
            let mut line = format!("      {plugin}");
            if let Some(m) = &c.master {
                let _ = write!(line, " master={m}");
            }
            if let Some(m) = &c.mode {
                let _ = write!(line, " mode={m}");
            }
            if let Some(m) = c.mtu {
                let _ = write!(line, " mtu={m}");
                if let Some(by) = &c.mtu_set_by {
                    let _ = write!(line, " (set by {by})");
                }
            }
            if let Some(r) = &nad.resource_name {
                let _ = write!(line, " resourceName={r}");
            }
            let _ = writeln!(out, "{line}");
            let ipam = &c.ipam;
            let capacity = match ipam.capacity {
                Some(cap) => format!("capacity {cap} pod(s)"),
                None => "capacity unknown".to_string(),
            };
            let _ = writeln!(
                out,
                "      IPAM {}: {capacity}",
                ipam.ipam_type.as_deref().unwrap_or("none")
            );
            let range_line = |out: &mut String, indent: &str, r: &RangeReport| {
                let span = match (&r.first, &r.last) {
                    (Some(f), Some(l)) => format!("{f} – {l}"),
                    _ => "nothing to hand out".to_string(),
                };
                let _ = writeln!(out, "{indent}{:<22} {:>6} usable  {span}", r.cidr, r.usable);
            };
            if ipam.sets.is_empty() {
                for r in &ipam.ranges {
                    range_line(&mut out, "        ", r);
                }
            } else {
                // host-local: one address per range set, from whichever of its ranges has one.
                let mut ranges = ipam.ranges.iter();
                for (i, set) in ipam.sets.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "        range set {} ({}): {} usable, one address per pod",
                        i + 1,
                        set.family,
                        set.usable
                    );
                    for r in ranges.by_ref().take(set.ranges) {
                        range_line(&mut out, "          ", r);
                    }
                }
            }
            for route in &ipam.routes {
                let _ = writeln!(out, "        route to {route}");
            }
            for note in &ipam.notes {
                let _ = writeln!(out, "        note: {note}");
            }
            for failure in &ipam.failures {
                let _ = writeln!(out, "        WILL NOT WORK: {failure}");
            }
        }
    }

    if let Some(cap) = report.capacity.as_ref().filter(|c| !c.checks.is_empty()) {
        let _ = writeln!(
            out,
            "\nWorst case on {} node(s): {} public + {} cluster clients per node ({})",
            cap.nodes, cap.clients_per_node.public, cap.clients_per_node.cluster, cap.counts_from
        );
        for c in &cap.checks {
            let verdict = match c.fits {
                Some(true) => "fits",
                Some(false) => "DOES NOT FIT",
                None => "unknown",
            };
            let _ = writeln!(out, "  {:<28} {verdict:<13} {}", c.nad, c.arithmetic);
        }
    }

    if let Some(live) = &report.live {
        crate::spec_live::render(live, &mut out);
    }
    verdict(&mut out, report.valid, &n.problems, &report.will_not_work);
    out
}

/// Renders a `spec check` without a manifest: the live state, then what is wrong.
pub fn render_live_only(report: &LiveOnlyReport) -> String {
    let mut out = String::from("spec check: live state");
    out.push('\n');
    crate::spec_live::render(&report.live, &mut out);
    verdict(
        &mut out,
        report.valid,
        &report.problems,
        &report.will_not_work,
    );
    out
}

/// The warnings, will-not-work and errors sections, then the one-line verdict.
fn verdict(out: &mut String, valid: bool, problems: &Problems, will_not_work: &[Problem]) {
    section(out, "warnings", &problems.warnings);
    section(out, "will not work", will_not_work);
    section(out, "errors", &problems.errors);
    let warnings = problems.warnings.len();
    let _ = writeln!(
        out,
        "\n{}",
        if !valid {
            format!("INVALID: {} error(s)", problems.errors.len())
        } else if !will_not_work.is_empty() {
            format!(
                "valid, but WILL NOT WORK as configured: {} problem(s) ({warnings} warning(s))",
                will_not_work.len()
            )
        } else {
            format!("valid ({warnings} warning(s))")
        }
    );
}

fn describe_choice(choice: &NetworkChoice) -> String {
    if let Some(s) = &choice.selection {
        let iface = s.interface.as_deref().map_or(
            "interface picked by Multus (net1, net2, …)".to_string(),
            |i| format!("interface {i}"),
        );
        return format!("NAD {}, {iface}", s.namespaced_name());
    }
    if let Some(i) = &choice.host_interface {
        return format!("host interface {i}");
    }
    format!("{:?} (not usable)", choice.selector)
}

fn or_none(annotation: &str) -> &str {
    if annotation.is_empty() {
        "(none)"
    } else {
        annotation
    }
}

fn ceph_value(value: Option<&str>, provider: Provider) -> String {
    match (value, provider) {
        (Some(v), _) => v.to_string(),
        (None, Provider::Multus) => "(unset: Rook detects it with a canary pod)".to_string(),
        (None, _) => "(unset: Ceph's default)".to_string(),
    }
}

fn section(out: &mut String, title: &str, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title} ({})", problems.len());
    for p in problems {
        let _ = writeln!(out, "  - {p}");
    }
}
