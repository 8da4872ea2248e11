use multinet_proto::config::{CONVERGED_NODE_TYPE, Toleration, TolerationOperator};
use multinet_proto::multus::nad::read_config;

use super::*;

fn parse(text: &str) -> (LabTopology, Problems) {
    parse_topology(text).expect("well-formed YAML")
}

fn valid(text: &str) -> LabTopology {
    let (topology, problems) = parse(text);
    assert!(problems.is_valid(), "{text}\n{:#?}", problems.errors);
    topology
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn the_default_topology() {
    let (topology, problems) = parse("");
    assert_eq!(problems, Problems::default());
    assert_eq!(topology, LabTopology::default());
    assert_eq!(topology.name, "mn");
    let names: Vec<_> = topology.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    let public = &topology.networks[&CephNetwork::Public];
    assert_eq!(public.cni_type, "macvlan");
    assert_eq!(public.subnet.to_string(), "198.18.0.0/20");
    assert_eq!(
        (public.range_start, public.range_end),
        (ip("198.18.1.1"), ip("198.18.15.254"))
    );
    assert_eq!(public.mtu, None);
    assert!(!public.from_nad);
    let cluster = &topology.networks[&CephNetwork::Cluster];
    assert_eq!(cluster.subnet.to_string(), "198.18.16.0/20");
    assert_eq!(
        (cluster.range_start, cluster.range_end),
        (ip("198.18.17.1"), ip("198.18.31.254"))
    );
    assert_eq!(topology.config, ConfigSource::Default);
    let config = topology.default_run_config();
    assert_eq!(
        (
            config.public_network.as_str(),
            config.cluster_network.as_str()
        ),
        ("public", "cluster")
    );
    assert_eq!(config.clients_per_node(CONVERGED_NODE_TYPE), (19, 3));
    // An empty mapping and a null network mean the same defaults.
    assert_eq!(valid("{}\n"), topology);
    assert_eq!(valid("networks: {public: , cluster: {}}\n"), topology);
}

#[test]
fn kubernetes_node_names_get_short_ids() {
    let long = format!("{}.example.com", "storage-a".repeat(26));
    assert_eq!(long.len(), 246);
    let text =
        format!("nodes: [n1, worker-1, storage-a.example.com, {long:?}, sw, ctl, abcd, abcde]\n");
    let topology = valid(&text);
    let ids: Vec<String> = topology
        .nodes
        .iter()
        .map(|n| topology.node_id(&n.name))
        .collect();
    // Kept: 1-4 of [a-z0-9] and not the lab's own `sw`/`ctl`; derived: `n-<position>`.
    assert_eq!(
        ids,
        ["n1", "n-2", "n-3", "n-4", "n-5", "n-6", "abcd", "n-8"]
    );
    // Reports use the user's names.
    assert_eq!(topology.nodes[2].name, "storage-a.example.com");
    assert_eq!(topology.nodes[3].name, long);
    // Every id fits `<id>p<j>` for ten-digit j and `<id>-pub` in 15 characters.
    let sixty_four = valid(&format!(
        "nodes: [{}]\n",
        (1..=64)
            .map(|i| format!("node-{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for node in &sixty_four.nodes {
        let id = sixty_four.node_id(&node.name);
        assert!(id.len() <= 4, "{id}");
        assert!(format!("{id}p{}", u32::MAX).len() <= 15);
    }
}

#[test]
fn one_network_only_and_a_node_count() {
    let topology = valid("name: ab12\nnodes: 5\nnetworks: {cluster: {cni: bridge}}\n");
    assert_eq!(topology.nodes.len(), 5);
    assert_eq!(topology.nodes[4].name, "n5");
    assert_eq!(
        topology.networks.keys().copied().collect::<Vec<_>>(),
        [CephNetwork::Cluster]
    );
    let config = topology.default_run_config();
    assert_eq!(
        (
            config.public_network.as_str(),
            config.cluster_network.as_str()
        ),
        ("", "cluster")
    );
}

const FULL: &str = r#"
name: qa1
nodes:
  - name: s1
    labels: {role: storage, fast: true}
  - name: w1
    labels: {role: worker}
    taints:
      - {key: dedicated, value: apps, effect: NoSchedule}
      - {key: soon, effect: PreferNoSchedule}
  - w2
networks:
  public:
    cni: ipvlan
    subnet: fd00:10::/64
    mtu: 1400
  cluster:
    apiVersion: k8s.cni.cncf.io/v1
    kind: NetworkAttachmentDefinition
    metadata: {name: cluster-net, namespace: rook-ceph}
    spec:
      config: '{"cniVersion": "0.3.1", "type": "macvlan", "master": "clu0", "mode": "bridge", "mtu": 9000, "ipam": {"type": "whereabouts", "range": "198.18.16.0/24"}}'
underlay:
  - {node: s1, network: cluster, mtu: 1500, master_mtu: 1400}
  - {node: w2, network: public, present: false}
server_node: s1
faults:
  - block: {network: cluster, from: w1, to: "*"}
  - loss: {network: public, node: w2, percent: 12.5}
  - host-route-missing: {node: w1}
  - kill-agent: {node: s1, after: 1m30s}
config:
  clusterNetwork: rook-ceph/cluster-net
  nodeTypes:
    storage:
      osdsPerNode: 2
      placement: {nodeSelector: {role: storage}}
    worker:
      otherDaemonsPerNode: 4
      placement:
        nodeSelector: {role: worker}
        tolerations: [{key: dedicated, operator: Exists}]
"#;

#[test]
fn a_file_with_every_key() {
    let (topology, problems) = parse(FULL);
    assert!(problems.is_valid(), "{:#?}", problems.errors);
    assert!(problems.warnings.is_empty(), "{:#?}", problems.warnings);
    assert_eq!(topology.name, "qa1");
    assert_eq!(topology.nodes.len(), 3);
    assert_eq!(topology.nodes[0].labels["fast"], "true");
    assert_eq!(
        topology.nodes[1].taints[0],
        Taint {
            key: "dedicated".into(),
            value: "apps".into(),
            effect: TaintEffect::NoSchedule,
        }
    );
    assert_eq!(topology.nodes[1].taints[1].value, "");
    assert_eq!(topology.nodes[2].name, "w2");

    let public = &topology.networks[&CephNetwork::Public];
    assert_eq!(public.cni_type, "ipvlan");
    assert_eq!(public.subnet.to_string(), "fd00:10::/64");
    assert_eq!(
        (public.range_start, public.range_end),
        (ip("fd00:10::1:1"), ip("fd00:10::1:ffff"))
    );
    assert_eq!(public.mtu, Some(1400));

    let cluster = &topology.networks[&CephNetwork::Cluster];
    assert!(cluster.from_nad);
    assert_eq!(cluster.cni_type, "macvlan");
    assert_eq!(cluster.ipam_type.as_deref(), Some("whereabouts"));
    assert_eq!(cluster.nad_name.as_deref(), Some("cluster-net"));
    assert_eq!(cluster.mtu, Some(9000));
    assert_eq!(cluster.subnet.to_string(), "198.18.16.0/24");
    assert!(cluster.config_json.starts_with(r#"{"cniVersion": "0.3.1""#));
    assert_eq!(
        cluster.cni_config(CephNetwork::Cluster),
        cluster.config_json,
        "a NAD's config runs as written"
    );

    assert_eq!(
        topology.underlay,
        [
            Underlay {
                node: "s1".into(),
                network: CephNetwork::Cluster,
                mtu: Some(1500),
                master_mtu: Some(1400),
                present: true,
            },
            Underlay {
                node: "w2".into(),
                network: CephNetwork::Public,
                mtu: None,
                master_mtu: None,
                present: false,
            },
        ]
    );
    assert_eq!(topology.server_node.as_deref(), Some("s1"));
    assert_eq!(
        topology.faults,
        [
            Fault::Block {
                network: CephNetwork::Cluster,
                from: NodeRef::Node("w1".into()),
                to: NodeRef::Any,
            },
            Fault::Loss {
                network: CephNetwork::Public,
                node: "w2".into(),
                percent: 12.5,
            },
            Fault::HostRouteMissing { node: "w1".into() },
            Fault::KillAgent {
                node: "s1".into(),
                after: GoDuration::from_secs(90),
            },
        ]
    );
    let ConfigSource::Inline(config) = &topology.config else {
        panic!("inline config expected, got {:?}", topology.config);
    };
    assert_eq!(config.public_network, "public", "filled in from the lab");
    assert_eq!(config.cluster_network, "rook-ceph/cluster-net");
    assert_eq!(config.node_types["storage"].osds_per_node, 2);
    let worker = &config.node_types["worker"].placement;
    assert!(node_matches(&topology.nodes[1], worker));
    assert!(!node_matches(&topology.nodes[0], worker));
}

#[test]
fn the_example_file_reads_cleanly() {
    let text = include_str!("../../../../deploy/examples/lab-topology.yaml");
    let (topology, problems) = parse(text);
    assert!(problems.is_valid(), "{:#?}", problems.errors);
    assert!(problems.warnings.is_empty(), "{:#?}", problems.warnings);
    assert_eq!(topology.name, "qa");
    assert_eq!(topology.faults.len(), 4);
    assert!(matches!(topology.config, ConfigSource::Inline(_)));
}

#[test]
fn config_as_a_path_is_kept_for_the_caller() {
    let topology = valid("config: configs/run.yaml\n");
    assert_eq!(
        topology.config,
        ConfigSource::Path(PathBuf::from("configs/run.yaml"))
    );
}

/// Each input has one thing wrong; the error must name its field.
#[test]
fn bad_inputs_name_their_field() {
    let cases: &[(&str, &str)] = &[
        ("name: toolongname\n", "name"),
        ("name: Lab\n", "name"),
        ("nodes: 0\n", "nodes"),
        ("nodes: 65\n", "nodes"),
        ("nodes: -1\n", "nodes"),
        ("nodes: []\n", "nodes"),
        ("nodes: {a: 1}\n", "nodes"),
        ("nodes: [{name: a}, {name: a}]\n", "nodes[1].name"),
        ("nodes: [a, a]\n", "nodes[1]"),
        ("nodes: [{name: Node1}]\n", "nodes[0].name"),
        ("nodes: [{name: worker_1}]\n", "nodes[0].name"),
        ("nodes: [{name: -w1}]\n", "nodes[0].name"),
        ("nodes: [{name: a..b}]\n", "nodes[0].name"),
        ("nodes: [{labels: {a: b}}]\n", "nodes[0].name"),
        ("nodes: [{name: a, labels: [x]}]\n", "nodes[0].labels"),
        (
            "nodes: [{name: a, taints: [{key: k, effect: Never}]}]\n",
            "nodes[0].taints[0].effect",
        ),
        (
            "nodes: [{name: a, taints: [{effect: NoSchedule}]}]\n",
            "nodes[0].taints[0].key",
        ),
        (
            "networks: {public: {subnet: 10.0.0.0/24}}\n",
            "networks.public.subnet",
        ),
        (
            "networks: {public: {subnet: 198.16.0.0/14}}\n",
            "networks.public.subnet",
        ),
        (
            "networks: {public: {subnet: 2001:db8::/64}}\n",
            "networks.public.subnet",
        ),
        (
            "networks: {public: {subnet: 198.18.0.0/33}}\n",
            "networks.public.subnet",
        ),
        (
            "networks: {public: {subnet: 198.18.0.0/31}}\n",
            "networks.public.subnet",
        ),
        ("networks: {public: {cni: sriov}}\n", "networks.public.cni"),
        (
            "networks: {public: {range_start: 198.18.16.5}}\n",
            "networks.public.range_start",
        ),
        (
            "networks: {public: {range_end: fd00::1}}\n",
            "networks.public.range_end",
        ),
        (
            "networks: {public: {range_end: nowhere}}\n",
            "networks.public.range_end",
        ),
        (
            "networks: {public: {range_start: 198.18.9.0, range_end: 198.18.8.0}}\n",
            "networks.public.range_start",
        ),
        ("networks: {public: {mtu: 100}}\n", "networks.public.mtu"),
        ("networks: {public: {mtu: 9001}}\n", "networks.public.mtu"),
        (
            "networks: {public: {subnet: 198.18.0.0/16}, cluster: {subnet: 198.18.16.0/20}}\n",
            "networks.cluster.subnet",
        ),
        ("networks: {}\n", "networks"),
        ("networks: {storage: {}}\n", "networks.storage"),
        ("networks: [public]\n", "networks"),
        (
            "networks: {public: {kind: ConfigMap}}\n",
            "networks.public.kind",
        ),
        (
            "networks: {public: {apiVersion: v1, kind: NetworkAttachmentDefinition, metadata: {name: p}}}\n",
            "networks.public.apiVersion",
        ),
        (
            "networks: {public: {apiVersion: k8s.cni.cncf.io/v1, kind: NetworkAttachmentDefinition, metadata: {name: p}, spec: {config: '{\"type\": \"macvlan\", \"mode\": \"fast\", \"ipam\": {\"type\": \"host-local\", \"subnet\": \"198.18.0.0/24\"}}'}}}\n",
            "networks.public.spec.config.mode",
        ),
        (
            "networks: {public: {apiVersion: k8s.cni.cncf.io/v1, kind: NetworkAttachmentDefinition, metadata: {name: p}, spec: {config: '{\"type\": \"macvlan\", \"ipam\": {\"type\": \"whereabouts\", \"range\": \"192.168.20.0/24\"}}'}}}\n",
            "networks.public.spec.config.ipam",
        ),
        (
            "networks: {public: {apiVersion: k8s.cni.cncf.io/v1, kind: NetworkAttachmentDefinition, metadata: {name: p}, spec: {config: '{\"type\": \"macvlan\", \"ipam\": {\"type\": \"dhcp\"}}'}}}\n",
            "networks.public.spec.config.ipam",
        ),
        (
            "networks: {public: {apiVersion: k8s.cni.cncf.io/v1, kind: NetworkAttachmentDefinition, metadata: {name: p}, spec: {config: '{\"type\": \"sriov\", \"ipam\": {\"type\": \"host-local\", \"subnet\": \"198.18.0.0/24\"}}'}}}\n",
            "networks.public.spec.config.type",
        ),
        (
            "networks: {public: {apiVersion: k8s.cni.cncf.io/v1, kind: NetworkAttachmentDefinition, metadata: {name: p}, spec: {}}}\n",
            "networks.public.spec.config",
        ),
        (
            "underlay: [{node: n9, network: public}]\n",
            "underlay[0].node",
        ),
        ("underlay: [{network: public}]\n", "underlay[0].node"),
        (
            "underlay: [{node: n1, network: storage}]\n",
            "underlay[0].network",
        ),
        (
            "networks: {public: {}}\nunderlay: [{node: n1, network: cluster}]\n",
            "underlay[0].network",
        ),
        (
            "underlay: [{node: n1, network: public, master_mtu: 100}]\n",
            "underlay[0].master_mtu",
        ),
        (
            "underlay: [{node: n1, network: public, master_mtu: 1400, present: false}]\n",
            "underlay[0].master_mtu",
        ),
        (
            "underlay: [{node: n1, network: public, mtu: 20000}]\n",
            "underlay[0].mtu",
        ),
        (
            "underlay: [{node: n1, network: public, present: 'false'}]\n",
            "underlay[0].present",
        ),
        (
            "underlay: [{node: n1, network: public}, {node: n1, network: public, mtu: 1400}]\n",
            "underlay[1]",
        ),
        ("server_node: n4\n", "server_node"),
        (
            "faults: [{block: {network: public, from: n7, to: n1}}]\n",
            "faults[0].block.from",
        ),
        (
            "faults: [{block: {network: public, from: n1}}]\n",
            "faults[0].block.to",
        ),
        (
            "networks: {cluster: {}}\nfaults: [{block: {network: public, from: n1, to: n2}}]\n",
            "faults[0].block.network",
        ),
        (
            "faults: [{loss: {network: public, node: n1, percent: 0}}]\n",
            "faults[0].loss.percent",
        ),
        (
            "faults: [{loss: {network: public, node: n1, percent: 101}}]\n",
            "faults[0].loss.percent",
        ),
        (
            "faults: [{loss: {network: public, node: n1, percent: 30%}}]\n",
            "faults[0].loss.percent",
        ),
        (
            "faults: [{host-route-missing: {node: x}}]\n",
            "faults[0].host-route-missing.node",
        ),
        (
            "networks: {cluster: {}}\nfaults: [{host-route-missing: {node: n1}}]\n",
            "faults[0].host-route-missing",
        ),
        (
            "faults: [{kill-agent: {node: n1, after: 10}}]\n",
            "faults[0].kill-agent.after",
        ),
        (
            "faults: [{kill-agent: {node: n1}}]\n",
            "faults[0].kill-agent.after",
        ),
        (
            "faults: [{kill-agent: {node: n1, after: 1s, at: 10s}}]\n",
            "faults[0].kill-agent.after",
        ),
        (
            "faults: [{kill-agent: {node: n1, at: 10}}]\n",
            "faults[0].kill-agent.at",
        ),
        (
            "faults: [{kill-agent: {node: n1, at: 10s, for: 0s}}]\n",
            "faults[0].kill-agent.for",
        ),
        (
            "faults: [{host-route-missing: {node: n1, at: 10s}}]\n",
            "faults[0].host-route-missing",
        ),
        ("faults: [{partition: {node: n1}}]\n", "faults[0].partition"),
        (
            "faults: [{loss: {network: public, node: n1, percent: 5}, kill-agent: {node: n1, after: 1s}}]\n",
            "faults[0]",
        ),
        ("faults: {block: {}}\n", "faults"),
        ("config: 3\n", "config"),
        ("config: ''\n", "config"),
        ("config: {probeInterval: 10}\n", "config.probeInterval"),
        (
            "networks: {public: {}}\nconfig: {clusterNetwork: cluster}\n",
            "config.clusterNetwork",
        ),
        (
            "config: {publicNetwork: public-net}\n",
            "config.publicNetwork",
        ),
        ("[1, 2]\n", ""),
    ];
    assert!(cases.len() >= 15);
    for (text, field) in cases {
        let (_, problems) = parse(text);
        assert!(
            problems.errors.iter().any(|e| e.field == *field),
            "{text}expected an error at {field:?}, got {:#?}",
            problems.errors
        );
    }
}

#[test]
fn mistakes_are_reported_once() {
    // A bad public network is still the public network for the faults naming it.
    let (_, problems) = parse(
        "networks: {public: {subnet: 10.0.0.0/8}}\nfaults: [{loss: {network: public, node: n1, percent: 5}}]\n",
    );
    let fields: Vec<_> = problems.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["networks.public.subnet"]);
    // Every problem of a file is found, not only the first.
    let (_, problems) = parse("name: BAD\nnodes: 99\nserver_node: zz\nconfig: 1\n");
    let fields: Vec<_> = problems.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "nodes", "server_node", "config"]);
}

#[test]
fn a_network_inside_the_control_network_is_refused_naming_both_ranges() {
    // Issue #12's repro: a public subnet in 198.19.0.0/16 passed with its host route missing,
    // because the host checker reached the server over the control network.
    let (_, problems) = parse(
        "nodes: 3\nnetworks: {public: {cni: macvlan, subnet: 198.19.36.0/24}, cluster: {cni: macvlan, subnet: 198.19.46.0/24}}\nfaults: [{host-route-missing: {node: n3}}]\n",
    );
    let found: Vec<_> = problems
        .errors
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    for ((field, message), (want_field, want_range)) in found.iter().zip([
        ("networks.public.subnet", "198.19.36.0/24"),
        ("networks.cluster.subnet", "198.19.46.0/24"),
    ]) {
        assert_eq!(*field, want_field);
        assert!(
            message.contains(want_range) && message.contains("198.19.0.0/16"),
            "{message}"
        );
    }
    // A NAD's IPAM range is checked the same way, and a range that only touches the control
    // network (a /15 holding it) is refused too.
    let (_, problems) = parse(
        "networks: {public: {apiVersion: k8s.cni.cncf.io/v1, kind: NetworkAttachmentDefinition, metadata: {name: p}, spec: {config: '{\"type\": \"macvlan\", \"ipam\": {\"type\": \"whereabouts\", \"range\": \"198.18.0.0/15\"}}'}}}\n",
    );
    let fields: Vec<_> = problems.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["networks.public.spec.config.ipam"]);
    // The control network's own addresses are inside it (what the check protects).
    for addr in [
        crate::lab::build::COORDINATOR,
        crate::lab::build::control_addr(1),
        crate::lab::build::control_addr(100 + 60_000),
    ] {
        assert!(CONTROL_NETWORK.contains(IpAddr::V4(addr)), "{addr}");
    }
}

#[test]
fn malformed_yaml_fails_outright() {
    let err = parse_topology("nodes: [1, 2\n").expect_err("unclosed list");
    assert!(err.line.is_some(), "{err}");
}

#[test]
fn warnings_for_unknown_keys_and_useless_settings() {
    let (_, problems) = parse(
        "nmae: x\nnetworks: {public: {cni: host-device, mtu: 1500, size: 3}}\nfaults: [{block: {network: public, from: n1, to: n1}}]\nconfig: {nodeTypes: {gpu: {osdsPerNode: 1, placement: {nodeSelector: {gpu: yes}}}}}\n",
    );
    assert!(problems.is_valid(), "{:#?}", problems.errors);
    let fields: Vec<_> = problems.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "nmae",
            "networks.public.size",
            "networks.public.mtu",
            "faults[0].block",
            "config.nodeTypes.gpu.placement",
        ]
    );
}

#[test]
fn default_ranges_stay_inside_their_subnet() {
    let range = |subnet: &str| {
        default_range(&subnet.parse().expect("test CIDR"))
            .map(|(start, end)| format!("{start}-{end}"))
    };
    assert_eq!(
        range("198.18.16.0/20").as_deref(),
        Some("198.18.17.1-198.18.31.254")
    );
    assert_eq!(
        range("198.18.4.0/24").as_deref(),
        Some("198.18.4.17-198.18.4.254")
    );
    assert_eq!(
        range("198.18.4.0/30").as_deref(),
        Some("198.18.4.1-198.18.4.2")
    );
    assert_eq!(range("198.18.4.0/31"), None);
    assert_eq!(
        range("fd00:10::/64").as_deref(),
        Some("fd00:10::1:1-fd00:10::1:ffff")
    );
    assert_eq!(
        range("fd00:10::/120").as_deref(),
        Some("fd00:10::11-fd00:10::ff")
    );
    assert_eq!(range("fd00::/127"), None);
    // A small subnet with an explicit range is fine.
    let topology = valid(
        "networks: {public: {subnet: 198.18.0.0/31, range_start: 198.18.0.0, range_end: 198.18.0.1}}\n",
    );
    assert_eq!(
        topology.networks[&CephNetwork::Public].range_end,
        ip("198.18.0.1")
    );
}

#[test]
fn generated_cni_configs_read_back_with_their_ranges() {
    let cases = [
        ("macvlan", "master", "pub0", Some("bridge")),
        ("ipvlan", "master", "pub0", Some("l2")),
        ("bridge", "bridge", "br-pub", None),
        ("host-device", "device", "pub0", None),
    ];
    for (cni, master_key, master, mode) in cases {
        let text = format!(
            "networks: {{public: {{cni: {cni}, subnet: 198.18.32.0/22, mtu: 1400}}, cluster: {{cni: {cni}, subnet: 'fd00:20::/64', range_start: 'fd00:20::100', range_end: 'fd00:20::1ff'}}}}\n"
        );
        let topology = valid(&text);
        let public = &topology.networks[&CephNetwork::Public];
        assert_eq!(public.config_json, public.cni_config(CephNetwork::Public));
        let mut problems = Problems::default();
        let summary =
            read_config("public", &public.config_json, &mut problems).expect("config reads");
        assert!(problems.is_valid(), "{cni}: {:#?}", problems.errors);
        assert_eq!(summary.plugin, cni);
        assert_eq!(summary.master.as_deref(), Some(master), "{cni}");
        assert_eq!(summary.mode.as_deref(), mode, "{cni}");
        let json: Value = serde_json::from_str(&public.config_json).expect("JSON");
        assert_eq!(json[master_key], master, "{cni}");
        assert_eq!(json["ipam"]["type"], "whereabouts");
        if cni == "bridge" {
            assert_eq!(json["isGateway"], false);
        }
        // host-device sets no MTU (it would be ignored); the others carry it.
        let want_mtu = (cni != "host-device").then_some(1400);
        assert_eq!(summary.mtu, want_mtu, "{cni}");
        assert_eq!(summary.ipam.ipam_type.as_deref(), Some("whereabouts"));
        assert_eq!(summary.ipam.ranges.len(), 1);
        let range = &summary.ipam.ranges[0];
        assert_eq!(range.cidr, "198.18.32.0/22");
        assert_eq!(range.first.as_deref(), Some("198.18.32.65"));
        assert_eq!(range.last.as_deref(), Some("198.18.35.254"));

        let cluster = &topology.networks[&CephNetwork::Cluster];
        let summary =
            read_config("cluster", &cluster.config_json, &mut problems).expect("config reads");
        assert!(problems.is_valid(), "{cni}: {:#?}", problems.errors);
        let want_master = match cni {
            "bridge" => "br-clu",
            _ => "clu0",
        };
        assert_eq!(summary.master.as_deref(), Some(want_master));
        let range = &summary.ipam.ranges[0];
        assert_eq!(range.cidr, "fd00:20::/64");
        assert_eq!(range.first.as_deref(), Some("fd00:20::100"));
        assert_eq!(range.last.as_deref(), Some("fd00:20::1ff"));
        assert_eq!(summary.ipam.capacity, Some(256));
    }
}

#[test]
fn default_config_json_is_the_documented_shape() {
    let json: Value =
        serde_json::from_str(&LabNetwork::default_for(CephNetwork::Cluster).config_json)
            .expect("JSON");
    assert_eq!(
        json,
        json!({
            "cniVersion": CNI_VERSION,
            "name": "cluster",
            "type": "macvlan",
            "master": "clu0",
            "mode": "bridge",
            "ipam": {
                "type": "whereabouts",
                "range": "198.18.16.0/20",
                "range_start": "198.18.17.1",
                "range_end": "198.18.31.254",
            },
        })
    );
}

fn node(labels: &[(&str, &str)], taints: &[(&str, &str, TaintEffect)]) -> LabNode {
    LabNode {
        name: "n1".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        taints: taints
            .iter()
            .map(|(key, value, effect)| Taint {
                key: key.to_string(),
                value: value.to_string(),
                effect: *effect,
            })
            .collect(),
    }
}

fn placement(selector: &[(&str, &str)], tolerations: Vec<Toleration>) -> Placement {
    Placement {
        node_selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tolerations,
    }
}

fn toleration(
    key: &str,
    operator: TolerationOperator,
    value: &str,
    effect: Option<TaintEffect>,
) -> Toleration {
    Toleration {
        key: key.into(),
        operator,
        value: value.into(),
        effect,
        toleration_seconds: None,
    }
}

#[test]
fn node_selector_needs_every_label() {
    use TaintEffect::*;
    let storage = node(&[("role", "storage"), ("zone", "a")], &[]);
    assert!(node_matches(&storage, &placement(&[], vec![])));
    assert!(node_matches(
        &storage,
        &placement(&[("role", "storage")], vec![])
    ));
    assert!(!node_matches(
        &storage,
        &placement(&[("role", "storage"), ("zone", "b")], vec![])
    ));
    assert!(!node_matches(&storage, &placement(&[("gpu", "")], vec![])));
    // A taint does not get in the way of the selector check, nor the selector of the taint's.
    let tainted = node(&[("role", "storage")], &[("x", "", NoSchedule)]);
    assert!(!node_matches(
        &tainted,
        &placement(&[("role", "storage")], vec![])
    ));
}

#[test]
fn taints_keep_away_untolerating_placements() {
    use TaintEffect::*;
    use TolerationOperator::*;
    let dedicated = node(&[], &[("dedicated", "storage", NoSchedule)]);
    let none = placement(&[], vec![]);
    assert!(!node_matches(&dedicated, &none), "NoSchedule, untolerated");
    let tolerated = [
        toleration("dedicated", Equal, "storage", Some(NoSchedule)),
        toleration("dedicated", Equal, "storage", None),
        toleration("dedicated", Exists, "", None),
        toleration("dedicated", Exists, "", Some(NoSchedule)),
        toleration("", Exists, "", None),
    ];
    for t in tolerated {
        assert!(
            node_matches(&dedicated, &placement(&[], vec![t.clone()])),
            "{t:?} tolerates the taint"
        );
    }
    let not_tolerated = [
        toleration("dedicated", Equal, "apps", Some(NoSchedule)),
        toleration("dedicated", Equal, "storage", Some(NoExecute)),
        toleration("other", Exists, "", None),
        toleration("", Equal, "storage", None),
    ];
    for t in not_tolerated {
        assert!(
            !node_matches(&dedicated, &placement(&[], vec![t.clone()])),
            "{t:?} does not tolerate the taint"
        );
    }
    let evicting = node(&[], &[("broken", "", NoExecute)]);
    assert!(!node_matches(&evicting, &none));
    assert!(node_matches(
        &evicting,
        &placement(&[], vec![toleration("broken", Exists, "", Some(NoExecute))])
    ));
    // Every hard taint needs its own toleration.
    let both = node(&[], &[("a", "", NoSchedule), ("b", "", NoExecute)]);
    assert!(!node_matches(
        &both,
        &placement(&[], vec![toleration("a", Exists, "", None)])
    ));
    assert!(node_matches(
        &both,
        &placement(
            &[],
            vec![
                toleration("a", Exists, "", None),
                toleration("b", Exists, "", None)
            ]
        )
    ));
}

#[test]
fn prefer_no_schedule_never_excludes() {
    let soft = node(&[], &[("maybe", "", TaintEffect::PreferNoSchedule)]);
    assert!(node_matches(&soft, &placement(&[], vec![])));
}

/// A killed agent takes `after` (from the agents' start, stays dead) or a schedule: `at`
/// into the probing, started again `for` later (without `for`, it stays dead).
#[test]
fn a_killed_agent_takes_after_or_a_schedule() {
    let (topology, problems) = parse(
        "faults:
  - kill-agent: {node: n1, after: 2s}
  - kill-agent: {node: n2, at: 10s, for: 10s}
  - kill-agent: {node: n3, at: 5s}
",
    );
    assert!(problems.is_valid(), "{problems:?}");
    assert_eq!(
        topology.faults,
        [Fault::KillAgent {
            node: "n1".into(),
            after: GoDuration::from_secs(2),
        }]
    );
    let kill = |node: &str| Fault::KillAgent {
        node: node.into(),
        after: GoDuration::from_secs(0),
    };
    assert_eq!(
        topology.scheduled,
        [
            ScheduledFault {
                fault: kill("n2"),
                at: std::time::Duration::from_secs(10),
                duration: Some(std::time::Duration::from_secs(10)),
            },
            ScheduledFault {
                fault: kill("n3"),
                at: std::time::Duration::from_secs(5),
                duration: None,
            },
        ]
    );
}
