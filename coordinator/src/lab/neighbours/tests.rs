use super::*;
use crate::lab::topology::parse_topology;

fn topology(text: &str) -> LabTopology {
    let (topology, problems) = parse_topology(text).expect("topology parses");
    assert!(problems.is_valid(), "{problems:?}");
    topology
}

/// A plan as the supervisor makes it: the server on both networks, a host checker per node,
/// `osds` clients per node on both networks and `others` on public only.
fn plan(topology: &LabTopology, osds: usize, others: usize) -> Vec<AgentIdentity> {
    let both = vec![CephNetwork::Public, CephNetwork::Cluster];
    let pod = |pod: String, node: &str, role, networks: Vec<CephNetwork>| AgentIdentity {
        pod,
        node: node.to_string(),
        role,
        networks,
    };
    let mut pods = vec![pod(
        "server".into(),
        &topology.nodes[0].name,
        Role::Server,
        both.clone(),
    )];
    for node in &topology.nodes {
        let n = &node.name;
        pods.push(pod(
            format!("host-{n}"),
            n,
            Role::HostCheck,
            vec![CephNetwork::Public],
        ));
        for i in 0..osds {
            pods.push(pod(format!("c-{n}-osd-{i}"), n, Role::Client, both.clone()));
        }
        for i in 0..others {
            pods.push(pod(
                format!("c-{n}-other-{i}"),
                n,
                Role::Client,
                vec![CephNetwork::Public],
            ));
        }
    }
    pods
}

fn roomy(_: Family) -> Option<Capacity> {
    Some(Capacity {
        limit: 1024,
        in_use: 10,
    })
}

#[test]
fn the_default_lab_needs_an_entry_each_way_between_the_server_and_every_other_agent() {
    let t = topology("nodes: 3\n");
    let needs = needs(&t, &plan(&t, 16, 3));
    // public: 57 clients → 2 × 57, 3 host checkers → 2 × 3; cluster: 48 clients → 2 × 48.
    assert_eq!(
        needs,
        vec![Need {
            family: Family::V4,
            entries: 2 * 57 + 2 * 3 + 2 * 48,
            networks: BTreeMap::from([
                (CephNetwork::Public, (57, 3)),
                (CephNetwork::Cluster, (48, 0)),
            ]),
        }]
    );
    assert_eq!(check(&needs, roomy), Ok(()));
    // The server, placed before the clients, adds nothing of its own.
    let without_server: Vec<_> = plan(&t, 16, 3)
        .into_iter()
        .filter(|p| p.role != Role::Server)
        .collect();
    assert_eq!(super::needs(&t, &without_server), needs);
}

#[test]
fn a_32_node_lab_is_refused_on_a_default_kernel_naming_the_sysctl_and_a_limit_that_fits() {
    let t = topology("nodes: 32\n");
    let needs = needs(&t, &plan(&t, 16, 3));
    assert_eq!(needs[0].entries, 2 * 608 + 2 * 32 + 2 * 512);
    let refused = check(&needs, roomy).expect_err("2304 entries do not fit in 1024");
    assert_eq!(refused.needed, 2304);
    assert_eq!(
        refused.suggested, 4096,
        "1.5 × 2314, rounded up to a power of two"
    );
    let said = refused.to_string();
    for part in [
        "ARP table",
        "2304 IPv4 neighbour entries",
        "608 clients and 32 host checkers on public, 512 clients on cluster",
        "10 are in use",
        "allows 1024",
        "sysctl -w net.ipv4.neigh.default.gc_thresh3=4096 net.ipv4.neigh.default.gc_thresh2=2048",
    ] {
        assert!(said.contains(part), "{part:?} not in {said}");
    }
    // The same lab fits a machine whose limit was raised so.
    assert_eq!(
        check(&needs, |_| Some(Capacity {
            limit: 4096,
            in_use: 10
        })),
        Ok(())
    );
}

#[test]
fn each_family_is_held_against_its_own_table() {
    let t = topology(
        "nodes: 20\nnetworks:\n  public: {cni: macvlan, subnet: 198.18.36.0/24}\n  cluster: {cni: macvlan, subnet: 'fd00:46::/64'}\n",
    );
    let needs = needs(&t, &plan(&t, 16, 3));
    let v4 = 2 * 380 + 2 * 20;
    let v6 = 2 * 320;
    assert_eq!(
        needs
            .iter()
            .map(|n| (n.family, n.entries))
            .collect::<Vec<_>>(),
        vec![(Family::V4, v4), (Family::V6, v6)]
    );
    // 800 + 640 together would not fit 1024; each alone does.
    assert_eq!(check(&needs, roomy), Ok(()));
    let small_v6 = |family| {
        Some(Capacity {
            limit: if family == Family::V6 { 512 } else { 1024 },
            in_use: 0,
        })
    };
    let refused = check(&needs, small_v6).expect_err("640 IPv6 entries do not fit in 512");
    assert_eq!((refused.table, refused.needed), ("NDISC", v6));
    assert!(
        refused
            .to_string()
            .contains("net.ipv6.neigh.default.gc_thresh3")
    );
}

#[test]
fn a_kernel_that_does_not_say_refuses_nothing() {
    let t = topology("nodes: 32\n");
    assert_eq!(check(&needs(&t, &plan(&t, 16, 3)), |_| None), Ok(()));
}

#[test]
fn the_entry_count_is_read_from_the_kernels_statistics() {
    let stat = "entries  allocs   destroys hash_grows lookups\n00000401 0000b3c5 0000b843 00000004 001e9f83\n00000401 0000b97c 0000b4fc 00000004 0023198c\n";
    assert_eq!(entries_in_stat(stat), Some(1025));
    assert_eq!(entries_in_stat("allocs\n1\n"), None);
    assert_eq!(entries_in_stat(""), None);
    // This machine's own, whatever it holds.
    assert!(capacity(Family::V4).is_some_and(|c| c.limit > 0));
}
