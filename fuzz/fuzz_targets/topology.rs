//! Lab topology files (`multinet lab up --topology`): reading never panics, and a topology read
//! without errors keeps the lab's promises — every subnet inside the ranges reserved for the
//! lab (198.18.0.0/15, fd00::/8) and outside its control network, every range inside its
//! subnet and in order, node names Kubernetes node names with short ids of their own that fit
//! interface names, and a CNI
//! config that is JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_coordinator::lab::topology::{
    CONTROL_NETWORK, MAX_NAME_LEN, MAX_NODE_ID_LEN, MAX_NODES, SAFE_V4, SAFE_V6, parse_topology,
};
use multinet_proto::cidr::{Cidr, to_u128};

/// `inner` lies wholly inside `outer`.
fn within(inner: &Cidr, outer: &Cidr) -> bool {
    inner.family() == outer.family() && inner.prefix >= outer.prefix && outer.contains(inner.addr)
}

/// `a` and `b` share an address.
fn overlap(a: &Cidr, b: &Cidr) -> bool {
    a.family() == b.family() && a.first() <= b.last() && b.first() <= a.last()
}

fuzz_target!(|data: &str| {
    let Ok((topology, problems)) = parse_topology(data) else {
        return;
    };
    if !problems.is_valid() {
        return;
    }
    assert!(!topology.name.is_empty() && topology.name.len() <= MAX_NAME_LEN);
    assert!(!topology.nodes.is_empty() && topology.nodes.len() <= MAX_NODES as usize);
    let mut ids = std::collections::BTreeSet::new();
    for node in &topology.nodes {
        // A Kubernetes node name; the lab's short id for it fits interface names and is the
        // node's alone.
        assert!(
            multinet_proto::names::dns1123_subdomain(&node.name).is_ok(),
            "{}",
            node.name
        );
        let id = topology.node_id(&node.name);
        assert!(!id.is_empty() && id.len() <= MAX_NODE_ID_LEN, "{id}");
        assert!(ids.insert(id.clone()), "id {id} twice");
        assert_eq!(
            topology
                .nodes
                .iter()
                .filter(|n| n.name == node.name)
                .count(),
            1
        );
    }
    assert!(!topology.networks.is_empty());
    for (network, lab) in &topology.networks {
        let subnet = &lab.subnet;
        assert!(
            within(subnet, &SAFE_V4) || within(subnet, &SAFE_V6),
            "{network:?}: {subnet} outside the lab's ranges"
        );
        assert!(
            !overlap(subnet, &CONTROL_NETWORK),
            "{network:?}: {subnet} overlaps control"
        );
        assert!(subnet.contains(lab.range_start) && subnet.contains(lab.range_end));
        assert!(to_u128(lab.range_start) <= to_u128(lab.range_end));
        serde_json::from_str::<serde_json::Value>(&lab.config_json).expect("config is JSON");
    }
});
