use super::*;
use multinet_proto::control::ProbeResult;
use multinet_proto::probe::{Connection, FailureClass, Outcome, Payload, ProbeKind, Scheme};
use serde_json::json;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const ROUNDS: u64 = 20;

pub(in crate::findings) fn kinds() -> Vec<ProbeKind> {
    let mut all = Vec::new();
    for scheme in [Scheme::Http, Scheme::Https] {
        for payload in [Payload::Small, Payload::Large] {
            for connection in [Connection::Fresh, Connection::KeptAlive] {
                all.push(ProbeKind {
                    scheme,
                    payload,
                    connection,
                });
            }
        }
    }
    all
}

/// A synthetic run: 3 nodes, server on n1, two OSD clients per node on both networks and a
/// host checker per node. `ok(node, network, kind, round)` decides every probe.
struct Synthetic {
    matrix: PathMatrix,
    facts: RunFacts,
}

fn agent(pod: String, node: &str, role: Role, networks: Vec<CephNetwork>) -> AgentFact {
    AgentFact {
        identity: AgentIdentity {
            pod,
            node: node.into(),
            role,
            networks,
        },
        fate: AgentFate::Reported,
        passed_at_ms: None,
        exit: None,
        addresses: Vec::new(),
        egress: None,
    }
}

/// 198.18.<network>.<n>: a distinct address per agent and network, as an IPAM hands them out.
fn lab_address(network: CephNetwork, n: usize) -> NetworkAddress {
    let net = match network {
        CephNetwork::Public => 0,
        CephNetwork::Cluster => 1,
    };
    NetworkAddress {
        network,
        addr: std::net::Ipv4Addr::new(198, 18, net, n as u8 + 1).into(),
        interface: Some(format!("net{}", net + 1)),
    }
}

/// Gives every agent but the host checkers its own address on each of its networks.
fn with_addresses(facts: &mut RunFacts) {
    let all = std::iter::once(&mut facts.server).chain(facts.agents.iter_mut());
    for (n, fact) in all.enumerate() {
        if fact.identity.role != Role::HostCheck {
            fact.addresses = fact
                .identity
                .networks
                .iter()
                .map(|network| lab_address(*network, n))
                .collect();
        }
    }
}

fn run(ok: impl Fn(&str, CephNetwork, ProbeKind, u64) -> bool) -> Synthetic {
    run_by_client(|_, node, network, kind, round| ok(node, network, kind, round))
}

/// [`run`] with `ok(client, node, network, kind, round)`.
fn run_by_client(ok: impl Fn(&str, &str, CephNetwork, ProbeKind, u64) -> bool) -> Synthetic {
    let both = vec![CephNetwork::Public, CephNetwork::Cluster];
    let mut agents = Vec::new();
    for node in NODES {
        for i in 0..2 {
            agents.push(agent(
                format!("client-{node}-{i}"),
                node,
                Role::Client,
                both.clone(),
            ));
        }
        agents.push(agent(
            format!("host-{node}"),
            node,
            Role::HostCheck,
            vec![CephNetwork::Public],
        ));
    }
    let mut matrix = PathMatrix::default();
    for a in &agents {
        for network in &a.identity.networks {
            let results: Vec<ProbeResult> = (0..ROUNDS)
                .flat_map(|round| kinds().into_iter().map(move |kind| (round, kind)))
                .map(|(round, kind)| ProbeResult {
                    network: *network,
                    target: "127.0.0.1:8080".parse().expect("addr"),
                    kind,
                    started_ms: round * 1000,
                    latency_us: 500,
                    outcome: if ok(&a.identity.pod, &a.identity.node, *network, kind, round) {
                        Outcome::Ok
                    } else {
                        Outcome::Failed(FailureClass::ConnectTimeout)
                    },
                })
                .collect();
            matrix.record(&a.identity.pod, &a.identity.node, &results, 0);
        }
    }
    for a in &mut agents {
        if a.identity
            .networks
            .iter()
            .all(|n| matrix.client_passes(&a.identity.pod, *n, 12))
        {
            a.passed_at_ms = Some(12_000);
        }
    }
    let mut facts = RunFacts {
        networks: both.clone(),
        server_node: "n1".into(),
        nodes: NODES.iter().map(|n| n.to_string()).collect(),
        server: agent("server".into(), "n1", Role::Server, both),
        agents,
        success_threshold: 12,
        flaky_threshold_ms: 30_000,
        control_network_isolated: true,
        soak_min_outage_ms: None,
        started_unix_ms: 1_796_000_000_000,
        agent_outages: Vec::new(),
        mesh: None,
        stranded: Default::default(),
    };
    with_addresses(&mut facts);
    Synthetic { matrix, facts }
}

pub(in crate::findings) fn kinds_of(
    findings: &[Finding],
) -> Vec<(FindingKind, Option<CephNetwork>, Vec<String>)> {
    findings
        .iter()
        .map(|f| (f.kind, f.network, f.nodes.clone()))
        .collect()
}

#[test]
fn healthy_matrix_yields_no_finding() {
    let s = run(|_, _, _, _| true);
    assert_eq!(evaluate(&s.matrix, &s.facts), Vec::<Finding>::new());
}

#[test]
fn inter_node_blocked() {
    let s = run(|node, net, _, _| !(net == CephNetwork::Cluster && node != "n1"));
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::InterNodeBlocked,
            Some(CephNetwork::Cluster),
            vec!["n2".into(), "n3".into()]
        )]
    );
    assert_eq!(f[0].severity, Severity::Fail);
    assert!(!f[0].suggestions.is_empty());
}

#[test]
fn node_unreachable() {
    let s = run(|node, net, _, _| !(net == CephNetwork::Public && node == "n3"));
    let f = evaluate(&s.matrix, &s.facts);
    // The host checker on n3 probes public too, so it fails as well: one cause, said once,
    // the host checker's failure attached to it.
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::NodeUnreachable,
            Some(CephNetwork::Public),
            vec!["n3".into()]
        )]
    );
    assert_eq!(f[0].evidence["clients_passing"], 0);
    assert_eq!(f[0].evidence["explains"][0]["kind"], "host_unreachable");
    assert_eq!(f[0].evidence["explains"][0]["host_checker"], "host-n3");
}

#[test]
fn mtu_blackhole() {
    let s = run(|node, net, kind, _| {
        !(net == CephNetwork::Cluster && node == "n2" && kind.payload == Payload::Large)
    });
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::MtuBlackhole,
            Some(CephNetwork::Cluster),
            vec!["n2".into()]
        )]
    );
}

#[test]
fn tls_failure() {
    let s = run(|node, net, kind, _| {
        !(net == CephNetwork::Cluster && node == "n2" && kind.scheme == Scheme::Https)
    });
    assert_eq!(
        kinds_of(&evaluate(&s.matrix, &s.facts)),
        [(
            FindingKind::TlsFailure,
            Some(CephNetwork::Cluster),
            vec!["n2".into()]
        )]
    );
}

#[test]
fn flaky_path_that_still_passes_is_a_warning() {
    // Fails in rounds 2 and 5, passes from round 6 on: 14 clean rounds at the end.
    let s = run(|node, net, _, round| {
        !(net == CephNetwork::Public && node == "n2" && (round == 2 || round == 5))
    });
    let f = evaluate(&s.matrix, &s.facts);
    let flaky: Vec<_> = f.iter().filter(|f| f.kind == FindingKind::Flaky).collect();
    assert_eq!(flaky.len(), 1, "{f:#?}");
    assert_eq!(
        (flaky[0].network, flaky[0].nodes.clone(), flaky[0].severity),
        (
            Some(CephNetwork::Public),
            vec!["n2".to_string()],
            Severity::Warn
        )
    );
    assert_eq!(flaky[0].evidence["flaps"], 2 * 8 * 2);
}

#[test]
fn one_client_that_never_passes_is_named_even_when_its_node_looks_fine() {
    // client-n2-1's kept-alive large HTTPS probes fail in the last 5 rounds: 5 of the node's
    // 320 public probes (98.4 % pass, one flap) — but that client never passes.
    let s = run_by_client(|client, _, network, kind, round| {
        !(client == "client-n2-1"
            && network == CephNetwork::Public
            && kind.scheme == Scheme::Https
            && kind.payload == Payload::Large
            && kind.connection == Connection::KeptAlive
            && round >= 15)
    });
    let findings = derive(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&findings),
        vec![(
            FindingKind::Flaky,
            Some(CephNetwork::Public),
            vec!["n2".to_string()]
        )]
    );
    assert_eq!(findings[0].severity, Severity::Fail);
    let lagging = &findings[0].evidence["clients_not_passing"];
    assert_eq!(lagging[0]["client"], "client-n2-1");
    assert_eq!(lagging[0]["probes_sent"], 160);
    assert_eq!(lagging[0]["probes_ok"], 155);
    assert_eq!(lagging[0]["failures"]["connect_timeout"], 5);
    assert_eq!(lagging.as_array().map(Vec::len), Some(1));
}

#[test]
fn host_unreachable() {
    let s = run_by_client(|client, _, _, _, _| client != "host-n2");
    assert_eq!(
        kinds_of(&evaluate(&s.matrix, &s.facts)),
        [(
            FindingKind::HostUnreachable,
            Some(CephNetwork::Public),
            vec!["n2".into()]
        )]
    );
}

#[test]
fn a_host_path_with_partial_success_is_flaky_not_unreachable() {
    // Every third round of host-n2's probes gets through: lossy, not missing.
    let s = run_by_client(|client, _, _, _, round| client != "host-n2" || round % 3 == 0);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::Flaky,
            Some(CephNetwork::Public),
            vec!["n2".into()]
        )]
    );
    assert_eq!(f[0].severity, Severity::Fail);
    assert!(f[0].summary.contains("only sometimes"), "{}", f[0].summary);
}

#[test]
fn a_lossy_host_where_the_nodes_clients_are_lossy_too_is_said_once_and_fails() {
    // Loss on n2's public uplink: its clients lose three early rounds and pass later; the
    // host checker, on the same uplink, loses every third round and never passes.
    let s = run_by_client(|client, node, net, _, round| {
        if node != "n2" || net != CephNetwork::Public {
            true
        } else if client == "host-n2" {
            round % 3 != 0
        } else {
            !matches!(round, 0 | 3 | 6)
        }
    });
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::Flaky,
            Some(CephNetwork::Public),
            vec!["n2".into()]
        )]
    );
    assert!(f[0].evidence.contains_key("clients"), "{:?}", f[0]);
    assert_eq!(f[0].evidence["explains"][0]["kind"], "flaky");
    assert_eq!(f[0].evidence["explains"][0]["host_checker"], "host-n2");
    // The host checker never passed: the run fails, as it would have without the merge.
    assert_eq!(f[0].severity, Severity::Fail);
}

#[test]
fn agent_lost_is_not_a_network_verdict() {
    let mut s = run(|node, _, _, round| !(node == "n3" && round > 3));
    for a in s
        .facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == "n3")
    {
        a.fate = AgentFate::Lost { at_ms: 4_000 };
        a.passed_at_ms = None;
    }
    assert_eq!(
        kinds_of(&evaluate(&s.matrix, &s.facts)),
        [(FindingKind::AgentLost, None, vec!["n3".into()])]
    );
}

#[test]
fn agents_that_never_started_or_never_connected_are_not_said_to_have_stopped() {
    let mut s = run(|node, _, _, _| node != "n3");
    let mut n3 = s
        .facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == "n3");
    let pending = n3.next().expect("a client on n3");
    pending.fate = AgentFate::NotStarted {
        reason: "never started: pod p Pending, on node n3, container agent ContainerCreating"
            .into(),
    };
    pending.passed_at_ms = None;
    let silent = n3.next().expect("another client on n3");
    silent.fate = AgentFate::NeverConnected;
    silent.passed_at_ms = None;
    for a in n3 {
        a.fate = AgentFate::NotStarted {
            reason: "pod p cannot pull image i (ImagePullBackOff): not found".into(),
        };
        a.passed_at_ms = None;
    }
    let f = evaluate(&s.matrix, &s.facts);
    let lost = f
        .iter()
        .find(|f| f.kind == FindingKind::AgentLost)
        .expect("the agent that never connected");
    assert_eq!(
        lost.summary,
        "1 agent(s) on node n3 never connected to the coordinator; their paths are not judged"
    );
    assert!(
        f.iter().all(|f| !f.summary.contains("stopped reporting")),
        "{f:#?}"
    );
    let scheduling = f
        .iter()
        .find(|f| f.kind == FindingKind::Scheduling)
        .expect("the pods that never started");
    assert_eq!(
        scheduling.summary,
        "2 pod(s) could not be scheduled or started"
    );
    // Advice for the reasons there are: the image, and a pod that waited; not placement.
    assert!(
        scheduling.suggestions[0].contains("image"),
        "{scheduling:#?}"
    );
    assert!(
        scheduling.suggestions[1].contains("kubectl describe pod"),
        "{scheduling:#?}"
    );
    assert_eq!(scheduling.suggestions.len(), 2, "{scheduling:#?}");
}

#[test]
fn server_unavailable_when_the_server_is_lost() {
    let mut s = run(|_, _, _, round| round < 3);
    s.facts.server.fate = AgentFate::Lost { at_ms: 3_000 };
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(FindingKind::ServerUnavailable, None, vec!["n1".into()])]
    );
    assert!(f[0].summary.contains("stopped reporting"));
}

#[test]
fn a_server_without_an_address_for_its_masters_mtu_says_so_and_leads_with_the_fix() {
    let mut s = run(|_, _, _, _| true);
    s.facts.server.fate = AgentFate::NoAddress {
        network: CephNetwork::Cluster,
        reason: "CNI ADD (/usr/lib/cni/macvlan) failed: invalid MTU 9000, must be [0, master MTU(1500)] (master interface \"clu0\" on node n1)".into(),
    };
    let f = evaluate(&s.matrix, &s.facts);
    let server = f
        .iter()
        .find(|f| f.kind == FindingKind::ServerUnavailable)
        .expect("server_unavailable");
    assert!(
        server.summary.ends_with(
            "the NAD's MTU 9000 is above the MTU 1500 of the master interface \"clu0\" on node(s) n1"
        ),
        "{}",
        server.summary
    );
    assert_eq!(server.evidence["nad_mtu"], json!(9000));
    assert!(server.suggestions[0].starts_with("raise the MTU of \"clu0\""));
}

#[test]
fn server_unreachable_from_everywhere_on_one_network() {
    let s = run(|_, net, _, _| net == CephNetwork::Public);
    assert_eq!(
        kinds_of(&evaluate(&s.matrix, &s.facts)),
        [(
            FindingKind::ServerUnavailable,
            Some(CephNetwork::Cluster),
            vec!["n1".into()]
        )]
    );
}

#[test]
fn address_unavailable_counts_got_and_expected() {
    let mut s = run(|_, _, _, _| true);
    for a in s
        .facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == "n3" && a.identity.role == Role::Client)
    {
        a.fate = AgentFate::NoAddress {
            network: CephNetwork::Cluster,
            reason: "failed to find master interface eth2".into(),
        };
    }
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::AddressUnavailable,
            Some(CephNetwork::Cluster),
            vec!["n3".into()]
        )]
    );
    assert_eq!(
        (
            f[0].evidence["got"].clone(),
            f[0].evidence["expected"].clone()
        ),
        (serde_json::json!(5), serde_json::json!(7))
    );
    assert_eq!(
        f[0].evidence["errors"][0],
        "failed to find master interface eth2"
    );
}

/// The clients of `node` got no address on `network`, for `reason`.
fn no_address(s: &mut Synthetic, node: &str, network: CephNetwork, reason: &str) {
    for a in s
        .facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == node && a.identity.role == Role::Client)
    {
        a.fate = AgentFate::NoAddress {
            network,
            reason: reason.into(),
        };
    }
}

#[test]
fn address_unavailable_for_a_missing_master_names_it_and_says_so_first() {
    let mut s = run(|_, _, _, _| true);
    // As the lab's runtime words macvlan's error.
    no_address(
        &mut s,
        "n3",
        CephNetwork::Cluster,
        "on node n3: CNI ADD of macvlan failed: failed to lookup master \"clu0\": Link not found",
    );
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind, FindingKind::AddressUnavailable);
    assert_eq!(f[0].evidence["missing_master"], "clu0");
    assert!(
        f[0].summary.contains("\"clu0\" is missing on node(s) n3"),
        "{}",
        f[0].summary
    );
    assert!(
        f[0].suggestions[0].contains("\"clu0\"") && f[0].suggestions[0].contains("n3"),
        "{:?}",
        f[0].suggestions
    );
    assert!(!f[0].suggestions[0].contains("range"));
    // Newer plugins say only "Link not found"; the lab's runtime names the master it knows.
    for a in s
        .facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == "n3")
    {
        if let AgentFate::NoAddress { reason, .. } = &mut a.fate {
            *reason = "on node n3: CNI ADD (/usr/lib/cni/macvlan) failed: Link not found (the master interface \"clu0\" is not on node n3)".into();
        }
    }
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(f[0].evidence["missing_master"], "clu0");
    // "Link not found" alone names nothing: the general suggestions stay.
    for a in s
        .facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == "n3")
    {
        if let AgentFate::NoAddress { reason, .. } = &mut a.fate {
            *reason = "CNI ADD failed: Link not found".into();
        }
    }
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(f[0].evidence.get("missing_master"), None);
    assert!(f[0].suggestions[0].contains("range"));
}

#[test]
fn address_unavailable_for_an_mtu_above_the_masters_names_both_mtus_and_says_so_first() {
    let mut s = run(|_, _, _, _| true);
    // macvlan's own words (plugins/main/macvlan/macvlan.go, loadConf), as the lab's runtime
    // completes them (cni_reason::annotate).
    no_address(
        &mut s,
        "n2",
        CephNetwork::Public,
        "on node n2: CNI ADD (/usr/lib/cni/macvlan) failed: invalid MTU 9000, must be [0, master MTU(1500)] (master interface \"pub0\" on node n2: MTU 1500, below the NAD's mtu 9000)",
    );
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind, FindingKind::AddressUnavailable);
    assert_eq!(f[0].nodes, ["n2"]);
    assert_eq!(
        (
            &f[0].evidence["master"],
            &f[0].evidence["nad_mtu"],
            &f[0].evidence["master_mtu"]
        ),
        (
            &serde_json::json!("pub0"),
            &serde_json::json!(9000),
            &serde_json::json!(1500)
        )
    );
    assert!(
        f[0].summary.contains(
            "MTU 9000 is above the MTU 1500 of the master interface \"pub0\" on node(s) n2"
        ),
        "{}",
        f[0].summary
    );
    assert!(
        f[0].suggestions[0].contains("\"pub0\"") && f[0].suggestions[0].contains("9000"),
        "{:?}",
        f[0].suggestions
    );
    assert!(!f[0].suggestions.iter().any(|s| s.contains("range")));
}

#[test]
fn scheduling() {
    let mut s = run(|_, _, _, _| true);
    s.facts.agents[0].fate = AgentFate::NotStarted {
        reason: "0/3 nodes are available: untolerated taint".into(),
    };
    assert_eq!(
        kinds_of(&evaluate(&s.matrix, &s.facts)),
        [(FindingKind::Scheduling, None, vec!["n1".into()])]
    );
}

/// A pod the run never started because the server never became ready is the server's
/// finding's consequence while the server is not reporting, not a scheduling problem; a pod
/// that could not be scheduled is one, whatever became of the server (the supervisor once
/// dropped every `scheduling` finding when the server, or any mesh responder, was not
/// reporting). A server that reported in the end (ready too late) has no finding of its own:
/// then the pods not started for it are the `scheduling` finding, so a failed run says why.
#[test]
fn scheduling_leaves_out_only_the_pods_not_started_for_a_server_not_reporting() {
    let mut s = run(|_, _, _, _| true);
    for a in &mut s.facts.agents {
        a.fate = AgentFate::NotStarted {
            reason: NOT_STARTED_FOR_THE_SERVER.into(),
        };
        a.passed_at_ms = None;
    }
    let late = evaluate(&s.matrix, &s.facts);
    let scheduling = late
        .iter()
        .find(|f| f.kind == FindingKind::Scheduling)
        .expect("the pods not started, the server reporting");
    assert_eq!(
        scheduling.summary,
        format!(
            "{} pod(s) could not be scheduled or started",
            s.facts.agents.len()
        )
    );
    s.facts.server.fate = AgentFate::Lost { at_ms: 5_000 };
    let f = evaluate(&s.matrix, &s.facts);
    assert!(
        f.iter().all(|f| f.kind != FindingKind::Scheduling),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|f| f.kind == FindingKind::ServerUnavailable),
        "{f:#?}"
    );
    s.facts.agents[0].fate = AgentFate::NotStarted {
        reason: "0/3 nodes are available: untolerated taint".into(),
    };
    let f = evaluate(&s.matrix, &s.facts);
    let scheduling: Vec<&Finding> = f
        .iter()
        .filter(|f| f.kind == FindingKind::Scheduling)
        .collect();
    assert_eq!(scheduling.len(), 1, "{f:#?}");
    assert_eq!(
        scheduling[0].summary,
        "1 pod(s) could not be scheduled or started"
    );
    assert_eq!(
        scheduling[0].nodes,
        [s.facts.agents[0].identity.node.clone()]
    );
}

#[test]
fn rook_flaky_rule_on_late_clients() {
    let mut s = run(|_, _, _, _| true);
    s.facts
        .agents
        .iter_mut()
        .filter(|a| a.identity.node == "n3" && a.identity.role == Role::Client)
        .for_each(|a| a.passed_at_ms = Some(60_000));
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(FindingKind::Flaky, None, vec!["n3".into()])]
    );
    assert_eq!(f[0].severity, Severity::Warn);
}

#[test]
fn mixed_node_flaky_on_public_and_blocked_on_cluster() {
    let s = run(|node, net, _, round| match (node, net) {
        ("n2", CephNetwork::Public) => round != 1 && round != 4,
        (n, CephNetwork::Cluster) => n == "n1",
        _ => true,
    });
    let f = evaluate(&s.matrix, &s.facts);
    let got = kinds_of(&f);
    assert!(
        got.contains(&(
            FindingKind::InterNodeBlocked,
            Some(CephNetwork::Cluster),
            vec!["n2".into(), "n3".into()]
        )),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(k, n, nodes)| *k == FindingKind::Flaky
            && *n == Some(CephNetwork::Public)
            && nodes == &["n2".to_string()]),
        "{got:?}"
    );
    assert_eq!(f[0].severity, Severity::Fail, "failures sort first");
}

#[test]
fn an_agent_fact_keeps_its_report_form() {
    // The report's `agents` entries: identity first, in this key order, `exit` only when known.
    let mut fact = agent(
        "client-n2-osd-0".into(),
        "n2",
        Role::Client,
        vec![CephNetwork::Public, CephNetwork::Cluster],
    );
    fact.fate = AgentFate::Lost { at_ms: 1200 };
    fact.passed_at_ms = Some(800);
    assert_eq!(
        serde_json::to_string(&fact).expect("json"),
        r#"{"pod":"client-n2-osd-0","node":"n2","role":"client","networks":["public","cluster"],"fate":{"state":"lost","at_ms":1200},"passed_at_ms":800,"addresses":[]}"#
    );
    fact.exit = Some("exit status 1".into());
    fact.addresses = vec![lab_address(CephNetwork::Public, 4)];
    assert_eq!(
        serde_json::to_value(&fact).expect("json").to_string(),
        r#"{"pod":"client-n2-osd-0","node":"n2","role":"client","networks":["public","cluster"],"fate":{"state":"lost","at_ms":1200},"passed_at_ms":800,"exit":"exit status 1","addresses":[{"network":"public","addr":"198.18.0.5","interface":"net1"}]}"#
    );
}

/// The address `pod` holds on `network` in a synthetic run.
fn address_of(s: &Synthetic, pod: &str, network: CephNetwork) -> NetworkAddress {
    s.facts
        .agents
        .iter()
        .chain(std::iter::once(&s.facts.server))
        .find(|a| a.identity.pod == pod)
        .and_then(|a| a.addresses.iter().find(|x| x.network == network))
        .cloned()
        .expect("the pod has an address there")
}

/// Makes `pod` hold `address` (instead of its own).
fn give(s: &mut Synthetic, pod: &str, address: &NetworkAddress) {
    let fact = s
        .facts
        .agents
        .iter_mut()
        .chain(std::iter::once(&mut s.facts.server))
        .find(|a| a.identity.pod == pod)
        .expect("pod");
    for a in &mut fact.addresses {
        if a.network == address.network {
            *a = address.clone();
        }
    }
}

#[test]
fn two_pods_of_two_nodes_with_one_address_are_named_with_both_nodes() {
    // host-local on a network shared by nodes: n1's and n3's allocators both hand out the
    // range's first address.
    let mut s = run(|_, _, _, _| true);
    let held = address_of(&s, "client-n1-0", CephNetwork::Cluster);
    give(&mut s, "client-n3-1", &held);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::DuplicateAddress,
            Some(CephNetwork::Cluster),
            vec!["n1".into(), "n3".into()]
        )]
    );
    assert_eq!(f[0].severity, Severity::Fail);
    assert_eq!(
        f[0].summary,
        format!(
            "pods client-n1-0 (node n1) and client-n3-1 (node n3) both hold {} on the cluster network",
            held.addr
        )
    );
    assert_eq!(f[0].evidence["address"], json!(held.addr));
    assert_eq!(
        f[0].evidence["pods"],
        json!([{"pod": "client-n1-0", "node": "n1"}, {"pod": "client-n3-1", "node": "n3"}])
    );
    assert!(
        f[0].suggestions[0].contains("host-local"),
        "{:?}",
        f[0].suggestions
    );
}

#[test]
fn path_failures_of_nodes_holding_a_duplicated_address_are_explained_by_it() {
    // n3's clients fail on the cluster network, and one of them holds n1's address there:
    // which pod answers is chance, so n3's failure is said under the duplicate, once.
    let mut s = run(|node, network, _, _| !(node == "n3" && network == CephNetwork::Cluster));
    let held = address_of(&s, "client-n1-0", CephNetwork::Cluster);
    give(&mut s, "client-n3-1", &held);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::DuplicateAddress,
            Some(CephNetwork::Cluster),
            vec!["n1".into(), "n3".into()]
        )],
        "{f:#?}"
    );
    assert_eq!(f[0].evidence["explains"][0]["kind"], "node_unreachable");
    assert_eq!(f[0].evidence["explains"][0]["nodes"], json!(["n3"]));
    // A failure on a node that holds no duplicated address stands on its own.
    let mut s = run(|node, network, _, _| !(node == "n2" && network == CephNetwork::Cluster));
    give(&mut s, "client-n3-1", &held);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(
        f.iter()
            .any(|x| x.kind == FindingKind::NodeUnreachable && x.nodes == ["n2"])
    );
    assert!(f.iter().all(|x| !x.evidence.contains_key("explains")));
}

#[test]
fn one_address_on_another_network_is_no_duplicate() {
    // The same IP on the public and the cluster network is two addresses: the networks are
    // separate segments.
    let mut s = run(|_, _, _, _| true);
    let public = address_of(&s, "client-n2-0", CephNetwork::Public);
    let cluster_twin = NetworkAddress {
        network: CephNetwork::Cluster,
        ..public
    };
    give(&mut s, "client-n2-1", &cluster_twin);
    assert_eq!(evaluate(&s.matrix, &s.facts), Vec::<Finding>::new());
}

#[test]
fn three_holders_on_one_node_and_the_server_are_all_named() {
    let mut s = run(|_, _, _, _| true);
    let held = address_of(&s, "server", CephNetwork::Public);
    give(&mut s, "client-n1-0", &held);
    give(&mut s, "client-n1-1", &held);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::DuplicateAddress,
            Some(CephNetwork::Public),
            vec!["n1".into()]
        )]
    );
    assert_eq!(
        f[0].summary,
        format!(
            "3 pods hold {} on the public network: server (node n1), client-n1-0 (node n1), client-n1-1 (node n1)",
            held.addr
        )
    );
    assert!(
        f[0].suggestions[0].starts_with("two pods of one node"),
        "{:?}",
        f[0].suggestions
    );
}

/// Every probing agent's egress as it reports it when all is well: a client's by its NAD
/// interface from its address there, a host checker's by its shim, control planes by `ctl0`.
fn with_egress(facts: &mut RunFacts) {
    use multinet_proto::control::{Egress, EgressReport};
    for fact in &mut facts.agents {
        let routes = match fact.identity.role {
            Role::HostCheck => vec![Egress {
                network: CephNetwork::Public,
                target: "198.18.0.1".parse().expect("addr"),
                interface: Some("shim0".into()),
                source: Some("198.18.0.250".parse().expect("addr")),
            }],
            _ => fact
                .addresses
                .iter()
                .map(|a| Egress {
                    network: a.network,
                    target: "198.18.0.1".parse().expect("addr"),
                    interface: a.interface.clone(),
                    source: Some(a.addr),
                })
                .collect(),
        };
        fact.egress = Some(EgressReport {
            routes,
            control_interface: Some("ctl0".into()),
        });
    }
}

fn reroute(facts: &mut RunFacts, pod: &str, network: CephNetwork, interface: &str) {
    let fact = facts
        .agents
        .iter_mut()
        .find(|a| a.identity.pod == pod)
        .expect("agent");
    let route = fact
        .egress
        .as_mut()
        .and_then(|e| e.routes.iter_mut().find(|r| r.network == network))
        .expect("route");
    route.interface = Some(interface.into());
    route.source = Some("198.19.0.7".parse().expect("addr"));
}

#[test]
fn egress_by_the_networks_interfaces_is_no_finding() {
    let mut s = run(|_, _, _, _| true);
    with_egress(&mut s.facts);
    assert_eq!(evaluate(&s.matrix, &s.facts), Vec::<Finding>::new());
}

#[test]
fn a_host_checker_passing_by_the_control_network_is_wrong_egress_not_a_pass() {
    // Issue #12: n3's host has no route to the public network, yet its checker reached the
    // server over the control network and passed.
    let mut s = run(|_, _, _, _| true);
    with_egress(&mut s.facts);
    reroute(&mut s.facts, "host-n3", CephNetwork::Public, "ctl0");
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::WrongEgress,
            Some(CephNetwork::Public),
            vec!["n3".into()]
        )]
    );
    assert_eq!(f[0].severity, Severity::Fail);
    assert_eq!(f[0].evidence["agents"][0]["pod"], "host-n3");
    assert_eq!(f[0].evidence["agents"][0]["interface"], "ctl0");
    assert_eq!(f[0].evidence["agents"][0]["control_interface"], "ctl0");
    assert!(f[0].summary.contains("host-n3 by ctl0"), "{}", f[0].summary);
    // On a cluster the host's routes to the pod network and to the public network may share
    // an interface: not judged there.
    s.facts.control_network_isolated = false;
    assert_eq!(evaluate(&s.matrix, &s.facts), Vec::<Finding>::new());
}

#[test]
fn a_failing_host_checker_with_wrong_egress_is_not_also_host_unreachable() {
    let mut s = run(|node, net, _, _| !(net == CephNetwork::Public && node == "n3"));
    with_egress(&mut s.facts);
    reroute(&mut s.facts, "host-n3", CephNetwork::Public, "ctl0");
    let kinds: Vec<FindingKind> = evaluate(&s.matrix, &s.facts)
        .iter()
        .map(|f| f.kind)
        .collect();
    assert_eq!(
        kinds,
        [FindingKind::NodeUnreachable, FindingKind::WrongEgress]
    );
}

#[test]
fn a_client_leaving_by_another_interface_is_wrong_egress_and_its_probes_do_not_count() {
    // client-n2-0's cluster probes leave by eth0, not its NAD interface, and fail there; the
    // other client on n2 passes. Its failures are not counted (no flaky n2), the wrong egress is
    // the finding.
    let mut s = run_by_client(|client, _, net, _, _| {
        !(net == CephNetwork::Cluster && client == "client-n2-0")
    });
    with_egress(&mut s.facts);
    reroute(&mut s.facts, "client-n2-0", CephNetwork::Cluster, "eth0");
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::WrongEgress,
            Some(CephNetwork::Cluster),
            vec!["n2".into()]
        )]
    );
    assert_eq!(f[0].evidence["agents"][0]["expected_interface"], "net2");
    assert_eq!(f[0].evidence["agents"][0]["interface"], "eth0");
}

#[test]
fn loopback_egress_is_never_judged() {
    // The local backend: every address is loopback, clients have no interface of their own
    // and host checkers' control plane leaves by `lo` as their probes do.
    let mut s = run(|_, _, _, _| true);
    with_egress(&mut s.facts);
    for fact in &mut s.facts.agents {
        fact.addresses.iter_mut().for_each(|a| a.interface = None);
        if let Some(e) = fact.egress.as_mut() {
            e.control_interface = Some("lo".into());
            for r in &mut e.routes {
                r.interface = Some("lo".into());
                r.source = Some("127.0.0.1".parse().expect("addr"));
            }
        }
    }
    assert_eq!(evaluate(&s.matrix, &s.facts), Vec::<Finding>::new());
}

#[test]
fn a_soak_outage_of_one_node_and_network_is_one_finding_with_its_window() {
    // Rounds are 1 s apart here; n2's cluster paths fail in rounds 5 to 12.
    let mut s = run(|node, network, _, round| {
        !(node == "n2" && network == CephNetwork::Cluster && (5..=12).contains(&round))
    });
    // A single failed round elsewhere is loss, not an outage (window 1 s < 1.5 s).
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    let outages: Vec<&Finding> = f.iter().filter(|f| f.kind == FindingKind::Outage).collect();
    assert_eq!(outages.len(), 1, "{f:#?}");
    let o = outages[0];
    assert_eq!(
        (o.network, o.nodes.clone()),
        (Some(CephNetwork::Cluster), vec!["n2".to_string()])
    );
    assert_eq!(o.evidence["outages"], json!(1));
    // From the first failed probe (round 5) to the next success (round 13).
    assert_eq!(o.evidence["windows"][0]["from_ms"], json!(5_000));
    assert_eq!(o.evidence["windows"][0]["to_ms"], json!(13_000));
    // 8 s down of 19 s observed.
    assert_eq!(o.severity, Severity::Fail);
    // Whatever the whole run's figures made of it is explained by the outage.
    assert!(
        f.iter()
            .all(|x| x.kind == FindingKind::Outage || x.network != Some(CephNetwork::Cluster)),
        "{f:#?}"
    );
    // Without a soak there is no outage finding.
    s.facts.soak_min_outage_ms = None;
    assert!(
        evaluate(&s.matrix, &s.facts)
            .iter()
            .all(|f| f.kind != FindingKind::Outage)
    );
    // One failed round: loss.
    let mut s = run(|node, _, _, round| !(node == "n3" && round == 7));
    s.facts.soak_min_outage_ms = Some(1_500);
    assert!(
        evaluate(&s.matrix, &s.facts)
            .iter()
            .all(|f| f.kind != FindingKind::Outage)
    );
}

/// The `outage` findings of `f`, by node.
fn outages_of(f: &[Finding]) -> BTreeMap<String, &Finding> {
    f.iter()
        .filter(|f| f.kind == FindingKind::Outage)
        .map(|f| (f.nodes.join(","), f))
        .collect()
}

#[test]
fn a_soak_outage_on_every_path_of_a_node_is_its_uplink_and_no_other_nodes() {
    let mut s = run(|node, network, _, round| {
        !(node == "n2" && network == CephNetwork::Cluster && (5..=12).contains(&round))
    });
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    let outages = outages_of(&f);
    assert_eq!(outages.keys().collect::<Vec<_>>(), ["n2"], "{f:#?}");
    let o = outages["n2"];
    let w = &o.evidence["windows"][0];
    // Both clients, 8 probe kinds each: 16 paths, every one down.
    assert_eq!(
        (&w["scope"], &w["paths_down"], &w["paths"]),
        (&json!("node uplink"), &json!(16), &json!(16)),
        "{w:#}"
    );
    assert_eq!(w["clients_down"], json!(["client-n2-0", "client-n2-1"]));
    assert_eq!(o.evidence["scope"], json!("node uplink"));
    assert_eq!(o.evidence["together_with"], json!([]));
    assert!(w.get("together_with").is_none(), "{w:#}");
    assert!(
        o.summary.contains("on every path of the node"),
        "{}",
        o.summary
    );
    assert!(!o.summary.contains("together"), "{}", o.summary);
    assert!(o.suggestions[0].contains("uplink"), "{:?}", o.suggestions);
}

#[test]
fn a_soak_outage_of_one_path_or_one_client_says_so_not_the_uplink() {
    // client-n2-0's plain small fresh HTTP probes only.
    let one_path = |client: &str, kind: ProbeKind| {
        client == "client-n2-0"
            && kind.scheme == Scheme::Http
            && kind.payload == Payload::Small
            && kind.connection == Connection::Fresh
    };
    for (fails, scope, paths_down, clients_down, words) in [
        (
            &one_path as &dyn Fn(&str, ProbeKind) -> bool,
            "one path",
            1,
            json!(["client-n2-0"]),
            "on one path only",
        ),
        (
            &|client: &str, _| client == "client-n2-1",
            "one client",
            8,
            json!(["client-n2-1"]),
            "on one client's paths only",
        ),
    ] {
        let mut s = run_by_client(|client, _, network, kind, round| {
            !(network == CephNetwork::Cluster && (5..=12).contains(&round) && fails(client, kind))
        });
        s.facts.soak_min_outage_ms = Some(1_500);
        let f = evaluate(&s.matrix, &s.facts);
        let outages = outages_of(&f);
        assert_eq!(outages.keys().collect::<Vec<_>>(), ["n2"], "{f:#?}");
        let o = outages["n2"];
        let w = &o.evidence["windows"][0];
        assert_eq!(
            (
                &w["scope"],
                &w["paths_down"],
                &w["paths"],
                &w["clients_down"]
            ),
            (&json!(scope), &json!(paths_down), &json!(16), &clients_down),
            "{w:#}"
        );
        assert_eq!(
            (w["from_ms"].as_u64(), w["to_ms"].as_u64()),
            (Some(5_000), Some(13_000))
        );
        assert!(o.summary.contains(words), "{}", o.summary);
        assert!(!o.suggestions[0].contains("uplink"), "{:?}", o.suggestions);
    }
}

#[test]
fn soak_outages_of_every_node_but_the_servers_at_once_are_said_together() {
    let mut s = run(|node, network, _, round| {
        !(node != "n1" && network == CephNetwork::Cluster && (5..=12).contains(&round))
    });
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    let outages = outages_of(&f);
    assert_eq!(outages.keys().collect::<Vec<_>>(), ["n2", "n3"], "{f:#?}");
    let from = utc(s.facts.started_unix_ms, 5_000);
    let to = utc(s.facts.started_unix_ms, 13_000);
    for (node, other) in [("n2", "n3"), ("n3", "n2")] {
        let o = outages[node];
        assert_eq!(o.evidence["together_with"], json!([other]), "{o:#?}");
        let w = &o.evidence["windows"][0];
        assert_eq!(
            w["together_with"],
            json!([{"node": other, "from": from, "to": to, "from_ms": 5_000, "to_ms": 13_000}]),
            "{w:#}"
        );
        assert!(
            o.summary.contains(&format!(
                "n2 and n3 — every node but the server's node n1 — were down together from {from} to {to}: the server's side"
            )),
            "{}",
            o.summary
        );
        assert!(
            o.suggestions[0].starts_with("n2 and n3 went down together")
                && o.suggestions[0].contains("server's node n1"),
            "{:?}",
            o.suggestions
        );
    }
    // Apart in time, they are not together.
    let mut s = run(|node, network, _, round| {
        let rounds = if node == "n2" { 2..=5 } else { 12..=16 };
        !(node != "n1" && network == CephNetwork::Cluster && rounds.contains(&round))
    });
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    let outages = outages_of(&f);
    assert_eq!(outages.len(), 2, "{f:#?}");
    for o in outages.values() {
        assert_eq!(o.evidence["together_with"], json!([]), "{o:#?}");
        assert!(!o.summary.contains("together"), "{}", o.summary);
    }
}

#[test]
fn a_soak_outage_of_large_probes_only_is_an_mtu_drop_and_explains_the_mtu_blackhole() {
    // n2's large cluster probes fail from round 3 to 17: 15 of 20 rounds, so the whole run's
    // figures make an mtu_blackhole of it too.
    let mut s = run(|node, network, kind, round| {
        !(node == "n2"
            && network == CephNetwork::Cluster
            && kind.payload == Payload::Large
            && (3..=17).contains(&round))
    });
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        [(
            FindingKind::Outage,
            Some(CephNetwork::Cluster),
            vec!["n2".into()]
        )],
        "{f:#?}"
    );
    let o = &f[0];
    let w = &o.evidence["windows"][0];
    assert_eq!(
        (&w["scope"], &w["paths_down"], &w["paths"]),
        (&json!("large probes"), &json!(8), &json!(16)),
        "{w:#}"
    );
    assert!(
        o.summary
            .contains("on large probes only, small ones passed"),
        "{}",
        o.summary
    );
    assert!(o.suggestions[0].contains("MTU"), "{:?}", o.suggestions);
    assert_eq!(o.evidence["explains"][0]["kind"], "mtu_blackhole", "{o:#?}");
}

#[test]
fn flaky_in_a_soak_says_when_its_probes_failed_and_on_which_paths() {
    // Every path of n2 fails in rounds 2 and 5 only: loss (1 s windows, shorter than 1.5 s).
    let mut s = run(|node, net, _, round| {
        !(net == CephNetwork::Public && node == "n2" && (round == 2 || round == 5))
    });
    let plain = evaluate(&s.matrix, &s.facts);
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    assert_eq!(
        kinds_of(&f),
        kinds_of(&plain),
        "no outage, only loss: {f:#?}"
    );
    let flaky = f
        .iter()
        .find(|f| f.kind == FindingKind::Flaky && f.nodes == ["n2"])
        .expect("flaky n2");
    let started = s.facts.started_unix_ms;
    let ev = &flaky.evidence;
    assert_eq!(
        (
            &ev["first_failure"],
            &ev["last_failure"],
            &ev["first_failure_ms"],
            &ev["last_failure_ms"],
            &ev["failure_window_count"],
            &ev["scope"],
        ),
        (
            &json!(utc(started, 2_000)),
            &json!(utc(started, 5_000)),
            &json!(2_000),
            &json!(5_000),
            &json!(2),
            &json!("node uplink"),
        ),
        "{ev:#?}"
    );
    let windows = ev["failure_windows"].as_array().expect("windows");
    let spans: Vec<(u64, u64)> = windows
        .iter()
        .map(|w| {
            (
                w["from_ms"].as_u64().unwrap_or(0),
                w["to_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(spans, [(2_000, 3_000), (5_000, 6_000)]);
    assert!(
        windows.iter().all(|w| w["scope"] == "node uplink"),
        "{windows:#?}"
    );
    assert!(
        flaky.summary.contains(&format!(
            "; failed probes from {} to {} (2.0 s to 5.0 s into the run) in 2 window(s), the longest 1.0 s from {} on every path of the node at once",
            utc(started, 2_000),
            utc(started, 5_000),
            utc(started, 2_000)
        )),
        "{}",
        flaky.summary
    );
    assert!(
        flaky.suggestions[0].contains("uplink"),
        "{:?}",
        flaky.suggestions
    );
    // Outside a soak the finding is as it was: no time.
    let plain_flaky = plain
        .iter()
        .find(|f| f.kind == FindingKind::Flaky && f.nodes == ["n2"])
        .expect("flaky n2");
    assert!(!plain_flaky.evidence.contains_key("first_failure"));
    assert!(!plain_flaky.summary.contains("failed probes from"));
    assert_eq!(
        flaky.suggestions[1..],
        plain_flaky.suggestions[..],
        "the scope's suggestion comes first, the rest as before"
    );
}

#[test]
fn inter_node_blocked_in_a_soak_says_when_and_the_outages_say_together() {
    let mut s = run(|node, net, _, _| !(net == CephNetwork::Cluster && node != "n1"));
    s.facts.soak_min_outage_ms = Some(1_500);
    let f = evaluate(&s.matrix, &s.facts);
    let blocked = f
        .iter()
        .find(|f| f.kind == FindingKind::InterNodeBlocked)
        .expect("inter_node_blocked");
    let started = s.facts.started_unix_ms;
    assert_eq!(
        (
            &blocked.evidence["first_failure_ms"],
            &blocked.evidence["last_failure_ms"],
            &blocked.evidence["first_failure"],
        ),
        (&json!(0), &json!(19_000), &json!(utc(started, 0))),
        "{blocked:#?}"
    );
    // Several nodes' paths: no scope among one node's.
    assert!(!blocked.evidence.contains_key("scope"), "{blocked:#?}");
    assert!(
        blocked.summary.contains("(0.0 s to 19.0 s into the run)"),
        "{}",
        blocked.summary
    );
    let outages = outages_of(&f);
    assert_eq!(outages.keys().collect::<Vec<_>>(), ["n2", "n3"], "{f:#?}");
    for o in outages.values() {
        assert_eq!(o.evidence["windows"][0]["ongoing"], json!(true), "{o:#?}");
        assert!(
            o.summary.contains("every node but the server's node n1"),
            "{}",
            o.summary
        );
    }
}
