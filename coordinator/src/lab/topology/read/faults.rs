//! Where the lab departs from a healthy network: the `underlay` section (an uplink's MTU, a
//! missing uplink) and the `faults` section (blocks, loss, a missing host route, killed
//! agents), every node and network named checked against what the file defines.

use multinet_proto::config::GoDuration;
use multinet_proto::field::{Field, OwnedPath, Problems, type_name};
use multinet_proto::network::CephNetwork;
use serde_json::Value;

use super::{Known, get, read_mtu, warn_unknown_keys};
use crate::lab::topology::{Fault, NodeRef, ScheduledFault, Underlay};

pub(super) fn read_underlay(
    field: Field<'_, '_>,
    known: &Known,
    problems: &mut Problems,
) -> Vec<Underlay> {
    let mut underlay: Vec<Underlay> = Vec::new();
    for (index, item) in field.list(problems).unwrap_or_default().iter().enumerate() {
        let path = OwnedPath::index(field.path(), index);
        let item_field = path.at(item);
        let Some(map) = item_field.mapping(problems) else {
            continue;
        };
        warn_unknown_keys(
            item_field,
            map,
            &["node", "network", "mtu", "master_mtu", "present"],
            problems,
        );
        let node = known.node_at(item_field, map, "node", problems);
        let network = known.network_at(item_field, map, "network", problems);
        let mtu = read_mtu(item_field.child_path("mtu").at(get(map, "mtu")), problems);
        let master_mtu_path = item_field.child_path("master_mtu");
        let master_mtu = read_mtu(master_mtu_path.at(get(map, "master_mtu")), problems);
        let present = item_field
            .child_path("present")
            .at(get(map, "present"))
            .boolean(problems)
            .unwrap_or(true);
        let (Some(node), Some(network)) = (node, network) else {
            continue;
        };
        if underlay
            .iter()
            .any(|u| u.node == node && u.network == network)
        {
            problems.error(
                path.as_str(),
                format!(
                    "node {node:?} already has an entry for the {} network",
                    network.key()
                ),
            );
            continue;
        }
        if master_mtu.is_some() && !present {
            problems.error(
                master_mtu_path.as_str(),
                "a node without the uplink (`present: false`) has no master interface to set an MTU on",
            );
        }
        underlay.push(Underlay {
            node,
            network,
            mtu,
            master_mtu,
            present,
        });
    }
    underlay
}

const FAULT_KINDS: [&str; 6] = [
    "block",
    "loss",
    "link-down",
    "mtu",
    "host-route-missing",
    "kill-agent",
];

/// Keys of a fault's body that put it on a schedule.
const SCHEDULE_KEYS: [&str; 2] = ["at", "for"];

/// The faults, always on and on a schedule.
pub(super) fn read_faults(
    field: Field<'_, '_>,
    known: &Known,
    problems: &mut Problems,
) -> (Vec<Fault>, Vec<ScheduledFault>) {
    let mut faults = Vec::new();
    let mut scheduled = Vec::new();
    for (index, item) in field.list(problems).unwrap_or_default().iter().enumerate() {
        let path = OwnedPath::index(field.path(), index);
        let item_field = path.at(item);
        let Some(fault) = read_fault(item_field, known, problems) else {
            continue;
        };
        match read_schedule(item_field, &fault, problems) {
            Some((at, duration)) => scheduled.push(ScheduledFault {
                fault,
                at,
                duration,
            }),
            None => faults.push(fault),
        }
    }
    (faults, scheduled)
}

/// `at` and `for` in a fault's body: `Some` when either is given (`at` defaults to the start
/// of probing). Only faults on the switch's ports (block, loss, link-down, mtu) can come and
/// go, and a killed agent (`for`: it is started again after that long).
fn read_schedule(
    field: Field<'_, '_>,
    fault: &Fault,
    problems: &mut Problems,
) -> Option<(std::time::Duration, Option<std::time::Duration>)> {
    let (kind, body) = field.value().as_object()?.iter().next()?;
    let body = body.as_object()?;
    if !SCHEDULE_KEYS.iter().any(|k| body.contains_key(*k)) {
        return None;
    }
    let path = field.child_path(kind);
    if !fault.comes_and_goes() && !matches!(fault, Fault::KillAgent { .. }) {
        problems.error(
            path.as_str(),
            "only block, loss, link-down, mtu and kill-agent faults take `at` and `for`; this \
             fault is made when the lab is built",
        );
        return None;
    }
    let body_field = path.at(field.value().get(kind.as_str())?);
    let at = match get(body, "at") {
        Value::Null => Some(GoDuration::from_secs(0)),
        _ => read_duration(
            body_field.child_path("at").at(get(body, "at")),
            "expected when, into the probing, the fault begins, as a Go duration such as \"30s\"",
            problems,
        ),
    };
    let duration = match get(body, "for") {
        Value::Null => None,
        _ => Some(read_duration(
            body_field.child_path("for").at(get(body, "for")),
            "expected how long the fault lasts, as a Go duration such as \"20s\"",
            problems,
        )?),
    };
    if duration.is_some_and(|d| d.as_std().is_zero()) {
        problems.error(
            body_field.child_path("for").as_str(),
            "a fault on a schedule lasts longer than 0s (leave `for` out to keep it to the end)",
        );
    }
    Some((at?.as_std(), duration.map(|d| d.as_std())))
}

pub(super) fn read_fault(
    field: Field<'_, '_>,
    known: &Known,
    problems: &mut Problems,
) -> Option<Fault> {
    let map = field.mapping(problems)?;
    let mut entries = map.iter();
    let (Some((kind, body)), None) = (entries.next(), entries.next()) else {
        problems.error(
            field.path(),
            format!(
                "a fault is a mapping with exactly one key, one of {}",
                FAULT_KINDS.join(", ")
            ),
        );
        return None;
    };
    let path = field.child_path(kind);
    let body_field = path.at(body);
    if !FAULT_KINDS.contains(&kind.as_str()) {
        problems.error(
            path.as_str(),
            format!("unknown fault; the lab injects {}", FAULT_KINDS.join(", ")),
        );
        return None;
    }
    let body = body_field.mapping(problems)?;
    match kind.as_str() {
        "block" => {
            warn_unknown_keys(
                body_field,
                body,
                &["network", "from", "to", "at", "for"],
                problems,
            );
            let network = known.network_at(body_field, body, "network", problems);
            let from = known.node_or_any(body_field, body, "from", problems);
            let to = known.node_or_any(body_field, body, "to", problems);
            let (network, from, to) = (network?, from?, to?);
            if let (NodeRef::Node(a), NodeRef::Node(b)) = (&from, &to)
                && a == b
            {
                problems.warn(
                    path.as_str(),
                    format!(
                        "traffic between pods of node {a:?} does not cross the underlay, so \
                         this block has no effect"
                    ),
                );
            }
            Some(Fault::Block { network, from, to })
        }
        "loss" => {
            warn_unknown_keys(
                body_field,
                body,
                &["network", "node", "percent", "at", "for"],
                problems,
            );
            let network = known.network_at(body_field, body, "network", problems);
            let node = known.node_at(body_field, body, "node", problems);
            let percent = read_percent(
                body_field.child_path("percent").at(get(body, "percent")),
                problems,
            );
            Some(Fault::Loss {
                network: network?,
                node: node?,
                percent: percent?,
            })
        }
        "link-down" => {
            warn_unknown_keys(
                body_field,
                body,
                &["network", "node", "at", "for"],
                problems,
            );
            let network = known.network_at(body_field, body, "network", problems);
            let node = known.node_at(body_field, body, "node", problems);
            Some(Fault::LinkDown {
                network: network?,
                node: node?,
            })
        }
        "mtu" => {
            warn_unknown_keys(
                body_field,
                body,
                &["network", "node", "mtu", "at", "for"],
                problems,
            );
            let network = known.network_at(body_field, body, "network", problems);
            let node = known.node_at(body_field, body, "node", problems);
            let mtu_field = body_field.child_path("mtu");
            let mtu = match get(body, "mtu") {
                Value::Null => {
                    problems.error(
                        mtu_field.as_str(),
                        "expected the switch port's MTU, such as 1400",
                    );
                    None
                }
                value => read_mtu(mtu_field.at(value), problems),
            };
            Some(Fault::Mtu {
                network: network?,
                node: node?,
                mtu: mtu?,
            })
        }
        "host-route-missing" => {
            warn_unknown_keys(body_field, body, &["node"], problems);
            let node = known.node_at(body_field, body, "node", problems)?;
            if !known.networks.contains(&CephNetwork::Public) {
                problems.error(
                    path.as_str(),
                    "hosts reach the public network through the route this fault leaves out, \
                     and the lab has no public network",
                );
                return None;
            }
            Some(Fault::HostRouteMissing { node })
        }
        _ => {
            warn_unknown_keys(body_field, body, &["node", "after", "at", "for"], problems);
            let node = known.node_at(body_field, body, "node", problems);
            let scheduled = SCHEDULE_KEYS.iter().any(|k| body.contains_key(*k));
            let after_field = body_field.child_path("after");
            // `after` counts from the agents' start; `at` (and `for`) from the start of
            // probing, like every fault on a schedule: one or the other.
            let after = match (scheduled, get(body, "after")) {
                (true, Value::Null) => Some(GoDuration::from_secs(0)),
                (true, _) => {
                    problems.error(
                        after_field.as_str(),
                        "`after` counts from the agents' start and `at` from the start of \
                         probing: give one or the other (with `for`, use `at`)",
                    );
                    None
                }
                (false, value) => read_after(after_field.at(value), problems),
            };
            Some(Fault::KillAgent {
                node: node?,
                after: after?,
            })
        }
    }
}

fn read_percent(field: Field<'_, '_>, problems: &mut Problems) -> Option<f64> {
    match field.value() {
        Value::Number(n) => match n.as_f64() {
            Some(p) if p > 0.0 && p <= 100.0 => Some(p),
            _ => {
                problems.error(
                    field.path(),
                    format!("a loss percentage must be above 0 and at most 100, found {n}"),
                );
                None
            }
        },
        Value::Null => {
            problems.error(
                field.path(),
                "expected the share of packets lost, in percent",
            );
            None
        }
        other => {
            problems.error(
                field.path(),
                format!(
                    "expected a number of percent such as 30, found {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

fn read_after(field: Field<'_, '_>, problems: &mut Problems) -> Option<GoDuration> {
    read_duration(
        field,
        "expected how long after the agents start to kill them, as a Go duration such as \"10s\"",
        problems,
    )
}

/// A Go duration with its unit; `what` says what was expected when the value is missing or
/// not a string.
fn read_duration(field: Field<'_, '_>, what: &str, problems: &mut Problems) -> Option<GoDuration> {
    if let Value::Number(n) = field.value() {
        problems.error(
            field.path(),
            format!("expected a Go duration with a unit; found the bare number {n} (write e.g. \"{n}s\")"),
        );
        return None;
    }
    let text = field.required_string(problems, what)?;
    match GoDuration::parse(text) {
        Ok(after) => Some(after),
        Err(why) => {
            problems.error(
                field.path(),
                format!("expected a Go duration such as \"10s\" or \"1m30s\": {why}"),
            );
            None
        }
    }
}
