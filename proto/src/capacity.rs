//! Selected networks resolved to their NetworkAttachmentDefinitions, and each NAD's address
//! capacity compared with the validation run's worst case.
//!
//! The worst case is Rook's: on every node, each OSD client takes a public and a cluster
//! address, each other-daemon client a public one; the single server takes one on each network
//! — or, in a mesh run, a responder on every node takes one on each network ([`Servers`]).
//! When public and cluster select the same NAD, both demands come out of the same range.

use serde::Serialize;

use crate::field::{Problem, Problems};
use crate::multus::ipam::Scope;
use crate::multus::nad::Nad;
use crate::network::{CephNetwork, NetworkCheck};
use crate::spec_fit::Fit;

/// Clients per node on each network (from the run configuration's node types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PerNodeClients {
    /// Clients attached to public per node (OSD clients + other-daemon clients).
    pub public: u32,
    /// Clients attached to cluster per node (OSD clients).
    pub cluster: u32,
}

/// The clients whose addresses a NAD must hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Clients {
    /// A validation run: on every node, this many clients on each network.
    PerNode(PerNodeClients),
    /// `bench network` on a cluster: one client pod at a time on the whole cluster, attached
    /// to the one network it measures — counted `n` addresses at once from each NAD, on any
    /// one node, since the pod before it is deleted without waiting for its sandbox (and its
    /// address) to be released.
    AtOnce(u32),
}

/// Where the run's servers take their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Servers {
    /// The single server: one address on each network, on one node.
    Single,
    /// A mesh run (`mesh: true`): a responder on every node, one address on each network of
    /// it (at worst every network: a node of OSDs).
    PerNode,
}

/// One NAD's capacity against the run's demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityCheck {
    /// `namespace/name` of the NAD.
    pub nad: String,
    /// Which of Ceph's networks use it.
    pub networks: Vec<CephNetwork>,
    /// Addresses the run needs from it (per node for per-node IPAM, else in total).
    pub demand: u64,
    /// Addresses it can hand out (same unit as `demand`); `None` when unknown.
    pub capacity: Option<u64>,
    /// `Some(true)` when it fits, `None` when capacity is unknown.
    pub fits: Option<bool>,
    /// The arithmetic, for people.
    pub arithmetic: String,
}

/// The NAD each selected network resolves to, with an error naming the selector for each
/// selection that is not among `nads`.
pub fn resolve<'a>(
    check: &NetworkCheck,
    nads: &'a [Nad],
    nads_label: &str,
    problems: &mut Problems,
) -> Vec<(CephNetwork, &'a Nad)> {
    let mut resolved = Vec::new();
    for network in CephNetwork::ALL {
        let Some(selection) = check
            .networks
            .get(network)
            .and_then(|c| c.selection.as_ref())
        else {
            continue;
        };
        let namespace = selection.namespace.as_deref().unwrap_or(&check.namespace);
        match nads
            .iter()
            .find(|n| n.namespace == namespace && n.name == selection.name)
        {
            Some(nad) => resolved.push((network, nad)),
            None => {
                let known: Vec<String> = nads.iter().map(Nad::namespaced_name).collect();
                problems.error(
                    format!("{}.selectors.{}", check.source, network.key()),
                    format!(
                        "selects NetworkAttachmentDefinition {namespace}/{}, which {nads_label} does not define ({})",
                        selection.name,
                        if known.is_empty() { "it defines none".to_string() } else { format!("it defines {}", known.join(", ")) }
                    ),
                );
            }
        }
    }
    resolved
}

/// Finds each NAD that hands out addresses outside the `addressRanges` given for its network:
/// Ceph daemons that get such an address find none of theirs in `public_network` /
/// `cluster_network` and fail to start ("unable to find any IP address in networks"), so the
/// spec will not work as configured (`fit`).
pub fn check_ranges_cover(check: &NetworkCheck, resolved: &[(CephNetwork, &Nad)], fit: &mut Fit) {
    for (network, nad) in resolved {
        let declared = check.address_ranges.get(*network);
        let Some(config) = &nad.config else { continue };
        if declared.is_empty() {
            continue;
        }
        for range in &config.ipam.ranges {
            let Ok(cidr) = range.cidr.parse::<crate::cidr::Cidr>() else {
                continue;
            };
            let covered = declared.iter().any(|d| {
                d.family() == cidr.family() && d.first() <= cidr.first() && cidr.last() <= d.last()
            });
            if !covered {
                fit.fails(
                    format!("{}.addressRanges.{}", check.source, network.key()),
                    format!(
                        "NetworkAttachmentDefinition {} hands out addresses in {}, which no {} \
                         address range covers: Ceph daemons would find no address of theirs in \
                         {}_network",
                        nad.namespaced_name(),
                        range.cidr,
                        network.key(),
                        network.key()
                    ),
                );
            }
        }
    }
}

/// Compares each resolved NAD's capacity with the demand of `nodes` nodes of `clients`
/// (a run's on every node, or a bench's few at once) plus the servers' addresses
/// (`servers_at`: the single server's, or a responder's on every node), and warns (with the
/// arithmetic) where it does not fit.
pub fn compare(
    resolved: &[(CephNetwork, &Nad)],
    nodes: u32,
    clients: Clients,
    servers_at: Servers,
    problems: &mut Problems,
) -> Vec<CapacityCheck> {
    let mut checks: Vec<CapacityCheck> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (_, nad) in resolved {
        let name = nad.namespaced_name();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let networks: Vec<CephNetwork> = resolved
            .iter()
            .filter(|(_, n)| n.namespaced_name() == name)
            .map(|(net, _)| *net)
            .collect();
        let servers = networks.len() as u64;
        // A bench's clients: all of them on one node at worst, counted once, not per node.
        let (clients, at_once) = match clients {
            Clients::PerNode(per_node) => (
                networks
                    .iter()
                    .map(|net| match net {
                        CephNetwork::Public => per_node.public,
                        CephNetwork::Cluster => per_node.cluster,
                    })
                    .sum::<u32>(),
                false,
            ),
            // Each pod is on one network: public and cluster on one NAD share the n.
            Clients::AtOnce(n) => (n, true),
        };
        let nodes_with_clients = if at_once { 1 } else { nodes };
        let client_demand = if at_once {
            format!("{clients} bench client address(es) at once")
        } else {
            format!("{nodes} nodes × {clients} clients")
        };
        let ipam = nad.config.as_ref().map(|c| &c.ipam);
        let per_node_scope = ipam.is_some_and(|i| i.scope == Scope::PerNode);
        let capacity = ipam.and_then(|i| i.capacity);
        let what = networks
            .iter()
            .map(|n| n.key())
            .collect::<Vec<_>>()
            .join(" + ");
        let (demand, mut arithmetic) = match (per_node_scope, servers_at) {
            (true, Servers::Single) => {
                let d = u64::from(clients) + servers;
                (
                    d,
                    format!(
                        "{what}: per node (host-local allocates per node) {clients} clients + {servers} server address(es) on the server's node = {d}"
                    ),
                )
            }
            (true, Servers::PerNode) => {
                let d = u64::from(clients) + servers;
                (
                    d,
                    format!(
                        "{what}: per node (host-local allocates per node) {clients} clients + {servers} responder address(es) = {d}"
                    ),
                )
            }
            (false, Servers::Single) => {
                let d = u64::from(nodes_with_clients) * u64::from(clients) + servers;
                (
                    d,
                    format!("{what}: {client_demand} + {servers} server address(es) = {d}"),
                )
            }
            (false, Servers::PerNode) if !at_once => {
                let d = u64::from(nodes) * (u64::from(clients) + servers);
                (
                    d,
                    format!(
                        "{what}: {nodes} nodes × ({clients} clients + {servers} responder address(es)) = {d}"
                    ),
                )
            }
            (false, Servers::PerNode) => {
                let d = u64::from(clients) + u64::from(nodes) * servers;
                (
                    d,
                    format!(
                        "{what}: {client_demand} + {nodes} nodes × {servers} responder address(es) = {d}"
                    ),
                )
            }
        };
        let fits = capacity.map(|c| c >= demand);
        match (capacity, ipam) {
            (Some(c), Some(i)) => arithmetic.push_str(&format!(
                "; {} ({}) can hand out {c}",
                i.ipam_type.as_deref().unwrap_or("no IPAM"),
                if i.ranges.is_empty() {
                    "no range".to_string()
                } else {
                    i.cidrs()
                }
            )),
            _ => arithmetic.push_str("; capacity unknown"),
        }
        let check = CapacityCheck {
            nad: name,
            networks,
            demand,
            capacity,
            fits,
            arithmetic,
        };
        if let Some(shortfall) = check.shortfall() {
            problems.warn(shortfall.field, shortfall.message);
        }
        checks.push(check);
    }
    checks
}

impl CapacityCheck {
    /// The problem when the NAD does not fit the worst case (`fits == Some(false)`), with the
    /// arithmetic: `field` names the NAD.
    pub fn shortfall(&self) -> Option<Problem> {
        if self.fits != Some(false) {
            return None;
        }
        Some(Problem {
            field: format!("NetworkAttachmentDefinition {}", self.nad),
            message: format!(
                "too few addresses for the worst case: {}; the run (and Ceph in that failure \
                 case) would leave {} pod(s) without an address — widen the range",
                self.arithmetic,
                self.demand - self.capacity.unwrap_or(0)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multus::nad::read_nads;
    use crate::network::check_manifest;
    use crate::yaml::parse_documents;

    fn nad(name: &str, ipam: &str) -> String {
        format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {{name: {name}, namespace: rook-ceph}}\nspec:\n  config: '{{\"type\": \"macvlan\", \"master\": \"eth0\", \"ipam\": {ipam}}}'\n"
        )
    }

    fn run(spec: &str, nads: &str, nodes: u32) -> (Vec<CapacityCheck>, Problems) {
        run_fit(spec, nads, nodes).0
    }

    fn run_fit(spec: &str, nads: &str, nodes: u32) -> ((Vec<CapacityCheck>, Problems), Fit) {
        run_servers(spec, nads, nodes, Servers::Single)
    }

    fn run_servers(
        spec: &str,
        nads: &str,
        nodes: u32,
        servers: Servers,
    ) -> ((Vec<CapacityCheck>, Problems), Fit) {
        let rook = Clients::PerNode(PerNodeClients {
            public: 19,
            cluster: 3,
        });
        run_clients(spec, nads, nodes, rook, servers)
    }

    fn run_clients(
        spec: &str,
        nads: &str,
        nodes: u32,
        clients: Clients,
        servers: Servers,
    ) -> ((Vec<CapacityCheck>, Problems), Fit) {
        let check = check_manifest(&parse_documents(spec).expect("spec"), None);
        let mut p = Problems::default();
        let nads = read_nads(&parse_documents(nads).expect("nads"), "rook-ceph", &mut p);
        let resolved = resolve(&check, &nads, "nads.yaml", &mut p);
        let mut fit = Fit::default();
        check_ranges_cover(&check, &resolved, &mut fit);
        let checks = compare(&resolved, nodes, clients, servers, &mut p);
        ((checks, p), fit)
    }

    /// A bench holds a few client addresses at once (on any one node), not a run's clients on
    /// every node: a range too small for the run fits it, and its arithmetic says so — with
    /// the single server, a responder on every node, and host-local's per-node ranges.
    #[test]
    fn a_bench_needs_its_few_client_addresses_not_a_runs() {
        let bench = Clients::AtOnce(2);
        let small = nad(
            "pub",
            r#"{"type": "whereabouts", "range": "198.18.0.0/28"}"#,
        );
        let spec = "network: {provider: multus, selectors: {public: pub, cluster: pub}}";
        let ((run, p), _) = run_servers(spec, &small, 8, Servers::Single);
        assert_eq!(run[0].demand, 8 * (19 + 3) + 2);
        assert_eq!(run[0].fits, Some(false), "{p:?}");
        // 2 pods (each on the one network it measures) + the server's 2 = 4 of 14.
        let ((checks, p), _) = run_clients(spec, &small, 8, bench, Servers::Single);
        assert_eq!(checks[0].demand, 4);
        assert_eq!(checks[0].fits, Some(true), "{p:?}");
        assert!(p.warnings.is_empty(), "{p:?}");
        assert!(
            checks[0].arithmetic.starts_with(
                "public + cluster: 2 bench client address(es) at once + 2 server address(es) = 4"
            ),
            "{}",
            checks[0].arithmetic
        );
        // --mesh: 2 + 8 nodes × 2 = 18, more than the range's 14: warned.
        let ((checks, p), _) = run_clients(spec, &small, 8, bench, Servers::PerNode);
        assert_eq!(checks[0].demand, 18);
        assert_eq!(checks[0].fits, Some(false));
        assert_eq!(p.warnings.len(), 1, "{p:?}");
        // host-local: per node, both pods on one node at worst, beside the server.
        let per_node = nad(
            "pub",
            r#"{"type": "host-local", "subnet": "198.18.0.0/28"}"#,
        );
        let ((checks, p), _) = run_clients(spec, &per_node, 8, bench, Servers::Single);
        assert_eq!(checks[0].demand, 2 + 2);
        assert_eq!(checks[0].fits, Some(true), "{p:?}");
    }

    /// A mesh run's responders take an address on every node: a range that fits the single
    /// server's run may not fit the mesh's, and the arithmetic says so.
    #[test]
    fn a_mesh_needs_a_responder_address_on_every_node() {
        let nads = nad(
            "pub",
            r#"{"type": "whereabouts", "range": "198.18.0.0/26"}"#,
        );
        let spec = "network: {provider: multus, selectors: {public: pub}}";
        let ((checks, p), _) = run_servers(spec, &nads, 3, Servers::PerNode);
        assert_eq!(checks[0].demand, 3 * (19 + 1));
        assert_eq!(checks[0].fits, Some(true), "{p:?}");
        // On 4 nodes: 20 addresses a node, 80 in all, where the range hands out 62.
        let ((checks, p), _) = run_servers(spec, &nads, 4, Servers::PerNode);
        assert_eq!(checks[0].demand, 80);
        assert_eq!(checks[0].fits, Some(false));
        assert!(
            p.warnings[0]
                .message
                .contains("4 nodes × (19 clients + 1 responder address(es)) = 80"),
            "{}",
            p.warnings[0].message
        );
        // Both networks from one NAD: a responder takes one address on each.
        let both = nad(
            "both",
            r#"{"type": "whereabouts", "range": "198.18.0.0/24"}"#,
        );
        let ((checks, _), _) = run_servers(
            "network: {provider: multus, selectors: {public: both, cluster: both}}",
            &both,
            3,
            Servers::PerNode,
        );
        assert_eq!(checks[0].demand, 3 * (22 + 2));
    }

    #[test]
    fn warns_with_arithmetic_when_the_range_is_too_small() {
        let nads = nad(
            "pub",
            r#"{"type": "whereabouts", "range": "198.18.0.0/26"}"#,
        );
        let (checks, p) = run(
            "network: {provider: multus, selectors: {public: pub}}",
            &nads,
            3,
        );
        assert_eq!(checks[0].demand, 3 * 19 + 1);
        assert_eq!(checks[0].capacity, Some(62));
        assert_eq!(checks[0].fits, Some(true));
        assert!(p.warnings.is_empty(), "{p:?}");
        let (checks, p) = run(
            "network: {provider: multus, selectors: {public: pub}}",
            &nads,
            4,
        );
        assert_eq!(checks[0].fits, Some(false));
        assert!(
            p.warnings[0]
                .message
                .contains("4 nodes × 19 clients + 1 server address(es) = 77"),
            "{}",
            p.warnings[0].message
        );
    }

    #[test]
    fn shared_nad_adds_both_demands_and_missing_nad_is_an_error() {
        let nads = nad(
            "both",
            r#"{"type": "whereabouts", "range": "198.18.0.0/24"}"#,
        );
        let (checks, _) = run(
            "network: {provider: multus, selectors: {public: both, cluster: both}}",
            &nads,
            3,
        );
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].demand, 3 * 22 + 2);
        let (_, p) = run(
            "network: {provider: multus, selectors: {public: both, cluster: other/missing}}",
            &nads,
            3,
        );
        assert_eq!(p.errors[0].field, "network.selectors.cluster");
        assert!(
            p.errors[0].message.contains("other/missing"),
            "{}",
            p.errors[0].message
        );
    }

    #[test]
    fn address_ranges_must_cover_the_nad_range() {
        let nads = nad(
            "pub",
            r#"{"type": "whereabouts", "range": "198.18.0.0/24"}"#,
        );
        let spec = "network: {provider: multus, selectors: {public: pub}, addressRanges: {public: [198.18.0.0/25]}}";
        let ((_, p), fit) = run_fit(spec, &nads, 3);
        assert!(p.warnings.is_empty(), "{p:?}");
        let p = &fit.will_not_work;
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "network.addressRanges.public");
        assert_eq!(
            p[0].message,
            "NetworkAttachmentDefinition rook-ceph/pub hands out addresses in 198.18.0.0/24, which no \
             public address range covers: Ceph daemons would find no address of theirs in \
             public_network"
        );
        let wide = "network: {provider: multus, selectors: {public: pub}, addressRanges: {public: [198.18.0.0/16]}}";
        let ((_, p), fit) = run_fit(wide, &nads, 3);
        assert!(
            p.warnings.is_empty() && fit.will_not_work.is_empty(),
            "{p:?} {fit:?}"
        );
    }

    #[test]
    fn host_local_compares_per_node() {
        let nads = nad("hl", r#"{"type": "host-local", "subnet": "198.18.0.0/28"}"#);
        let (checks, p) = run(
            "network: {provider: multus, selectors: {public: hl}}",
            &nads,
            10,
        );
        assert_eq!((checks[0].demand, checks[0].capacity), (20, Some(13)));
        assert_eq!(p.warnings.len(), 1);
    }
}
