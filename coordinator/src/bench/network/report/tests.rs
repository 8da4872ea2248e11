//! The report's renderings: metrics read from tests, text tables, side by side, CSV.

use super::*;
use multinet_agent::load::Latency;

fn outcome(kind: LoadKind, gbit: Option<f64>, rate: Option<f64>) -> LoadOutcome {
    LoadOutcome {
        kind,
        streams: 1,
        seconds: 2.0,
        bytes: 1,
        requests: 10,
        errors: 0,
        first_error: None,
        gbit_per_s: gbit,
        per_second: rate,
        latency_us: rate.map(|_| Latency {
            p50: 10,
            p90: 20,
            p99: 30,
            p999: 40,
            max: 50,
            mean: 12.0,
        }),
        cpu_seconds: Some(1.0),
        tcp_mss: Some(1448),
        path_mtu: Some(1500),
    }
}

fn path(from: &str, down: f64) -> PathResult {
    let mut p = PathResult::new(from, "n1", "198.18.1.1".parse().expect("ip"));
    for (kind, g, r) in [
        (LoadKind::Download, Some(down), None),
        (LoadKind::RequestResponse, None, Some(5000.0)),
    ] {
        p.tests.push(TestResult {
            kind,
            streams: 1,
            outcome: Some(outcome(kind, g, r)),
            server_cpu_seconds: Some(0.5),
            failure: None,
        });
    }
    p.iperf3 = Some(Iperf3 {
        upload_gbit_per_s: None,
        download_gbit_per_s: Some(down * 2.0),
        error: None,
    });
    p
}

fn report(setups: &[(&str, f64)]) -> NetworkBenchReport {
    NetworkBenchReport {
        kind: "bench_network".into(),
        backend: "lab".into(),
        validates_real_network: true,
        estimated_ms: 0,
        elapsed_ms: 0,
        machine_busy_before_percent: None,
        duration_ms: 2000,
        streams: 4,
        answer_bytes: 64,
        references: Tools::default(),
        setups: setups
            .iter()
            .map(|(name, down)| SetupResult {
                name: (*name).into(),
                source: format!("{name}.yaml"),
                lab: "b1".into(),
                server_node: "n1".into(),
                mesh: None,
                networks: vec![NetworkResult {
                    network: "public".into(),
                    cni: "macvlan".into(),
                    mtu: None,
                    paths: vec![path("n2", *down)],
                }],
                loopback: None,
                error: None,
                warnings: Vec::new(),
                describe: Vec::new(),
            })
            .collect(),
    }
}

#[test]
fn metrics_are_read_from_the_tests_and_references() {
    let p = path("n2", 3.0);
    assert_eq!(Metric::Download1.of(&p, 4), Some(3.0));
    assert_eq!(Metric::DownloadN.of(&p, 4), None);
    assert_eq!(Metric::Rr.of(&p, 4), Some(5000.0));
    assert_eq!(Metric::RrP999.of(&p, 4), Some(40.0));
    // 1 s of CPU in a 2 s test: half a core.
    assert_eq!(Metric::ClientCpu.of(&p, 4), Some(50.0));
    assert_eq!(Metric::ServerCpu.of(&p, 4), Some(25.0));
    assert_eq!(Metric::Iperf3Download.of(&p, 4), Some(0.5));
    assert_eq!(Metric::Iperf3Upload.of(&p, 4), None);
}

#[test]
fn two_setups_give_two_columns_side_by_side_and_in_csv() {
    let r = report(&[("macvlan", 3.0), ("bridge", 5.0)]);
    let text = r.text();
    let side = text
        .split("setups side by side\n")
        .nth(1)
        .expect("side by side");
    let mut lines = side.lines();
    assert_eq!(lines.next(), Some("download_1_gbit_per_s"));
    let heading: Vec<&str> = lines.next().expect("heading").split_whitespace().collect();
    assert_eq!(heading, ["network", "path", "macvlan", "bridge"]);
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(row, ["public", "n2", "→", "n1", "3.00", "5.00"]);
    let csv = r.csv();
    assert!(
        csv.lines()
            .any(|l| l == "bridge,public,macvlan,n2,n1,download_1_gbit_per_s,5")
    );
    assert_eq!(
        csv.lines().next(),
        Some("setup,network,cni,from,to,metric,value")
    );
}

/// A setup whose lab was refused (ipvlan where the kernel has none) says so under its
/// heading, which names no server (it had none: "server on " was printed).
#[test]
fn a_setup_never_built_names_no_server_and_says_why() {
    let mut r = report(&[("macvlan", 3.0), ("ipvlan", 1.0)]);
    let refused = &mut r.setups[1];
    refused.server_node = String::new();
    refused.networks.clear();
    refused.error = Some("building the lab: missing: ipvlan links".into());
    let text = r.text();
    let heading = text
        .lines()
        .find(|l| l.starts_with("setup ipvlan"))
        .expect("ipvlan's heading");
    assert!(heading.ends_with(": lab b1"), "{heading}");
    assert!(
        text.contains(&format!(
            "{heading}\n  ERROR: building the lab: missing: ipvlan links\n"
        )),
        "{text}"
    );
    let macvlan = text.lines().find(|l| l.starts_with("setup macvlan"));
    assert!(
        macvlan.is_some_and(|l| l.ends_with(", server on n1")),
        "{text}"
    );
}

#[test]
fn one_setup_has_no_side_by_side_tables() {
    let text = report(&[("default", 1.0)]).text();
    assert!(!text.contains("side by side"), "{text}");
    assert!(text.contains("throughput, Gbit/s"), "{text}");
    assert!(!text.contains("validates no real network"), "{text}");
}

/// A path on which every test ran, figures of a lab path's size (`n` is added to each, so
/// that the paths' cells differ).
fn measured_path(from: &str, n: f64) -> PathResult {
    let mut p = PathResult::new(from, "n1", "198.18.1.1".parse().expect("ip"));
    for (kind, streams, gbit, rate) in [
        (LoadKind::Download, 1, Some(16.9 + n), None),
        (LoadKind::Download, 4, Some(20.0 + n), None),
        (LoadKind::Upload, 1, Some(18.3 + n), None),
        (LoadKind::Upload, 4, Some(19.7 + n), None),
        (LoadKind::RequestResponse, 1, None, Some(14608.0 + n)),
        (LoadKind::ConnectRequest, 1, None, Some(12564.0 + n)),
        (LoadKind::TlsHandshakeRequest, 1, None, Some(1951.0 + n)),
    ] {
        let mut o = outcome(kind, gbit, rate);
        o.streams = streams;
        o.latency_us = rate.map(|_| Latency {
            p50: 71,
            p90: 98,
            p99: 135,
            p999: 1210,
            max: 4000,
            mean: 75.0,
        });
        if gbit.is_none() {
            (o.tcp_mss, o.path_mtu) = (None, None);
        }
        p.tests.push(TestResult {
            kind,
            streams,
            outcome: Some(o),
            server_cpu_seconds: Some(1.8),
            failure: None,
        });
    }
    p.iperf3 = Some(Iperf3 {
        upload_gbit_per_s: Some(19.7),
        download_gbit_per_s: Some(20.4),
        error: None,
    });
    p
}

/// One setup, public and cluster, paths from n1, n2 and n3 to the server on n1, every
/// test measured; cluster's n3 path not measured at all.
fn measured_report(names: &[&str]) -> NetworkBenchReport {
    let mut r = report(&names.iter().map(|n| (*n, 1.0)).collect::<Vec<_>>());
    for setup in &mut r.setups {
        setup.networks = ["public", "cluster"]
            .into_iter()
            .map(|network| NetworkResult {
                network: network.into(),
                cni: "macvlan".into(),
                mtu: Some(1500),
                paths: ["n1", "n2", "n3"]
                    .into_iter()
                    .enumerate()
                    .map(|(i, from)| match (network, from) {
                        ("cluster", "n3") => PathResult::unmeasured(
                            from,
                            "n1",
                            "the client pod got no address".into(),
                        ),
                        _ => measured_path(from, i as f64),
                    })
                    .collect(),
            })
            .collect();
    }
    r
}

/// The cells of a text's tables (the words after the path `from → to` of its lines that
/// begin with one; side by side, after the network too), sorted; a table cut into groups
/// has the same cells as uncut.
fn cells(text: &str) -> Vec<String> {
    let mut cells: Vec<String> = text
        .lines()
        .filter(|l| l.contains(" → ") && !l.starts_with("  !"))
        .flat_map(|l| {
            let (_, after) = l.split_once(" → ").unwrap_or_default();
            after.split_whitespace().skip(1).map(str::to_string)
        })
        .collect();
    cells.sort();
    cells
}

#[test]
fn the_groups_hold_every_metric_once() {
    let grouped: Vec<Metric> = MetricGroup::ALL
        .iter()
        .flat_map(|g| g.metrics().iter().copied())
        .collect();
    assert_eq!(grouped.len(), METRICS.len(), "{grouped:?}");
    for metric in METRICS {
        assert_eq!(
            grouped.iter().filter(|m| **m == metric).count(),
            1,
            "{metric:?} in {grouped:?}"
        );
    }
}

/// Per setup and network, three tables of related columns, each within 80 columns, and
/// every metric's value of every path in one of them (the same cells as the CSV).
#[test]
fn each_network_has_three_tables_within_80_columns_with_every_value() {
    let r = measured_report(&["default"]);
    let text = r.text();
    let wide: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  ") && l.chars().count() > 80)
        .collect();
    assert_eq!(wide, Vec::<&str>::new(), "{text}");
    for group in MetricGroup::ALL {
        assert_eq!(text.matches(group.title()).count(), 2, "{text}");
    }
    let mut expected: Vec<String> = r.setups[0]
        .networks
        .iter()
        .flat_map(|n| &n.paths)
        .flat_map(|p| METRICS.map(|m| m.cell(m.of(p, r.streams))))
        .collect();
    expected.sort();
    assert_eq!(cells(&text), expected, "{text}");
    // The path not measured: a row of dashes in each table, and why under them.
    assert!(
        text.contains("  ! cluster n3 → n1: the client pod got no address"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// On a terminal narrower than a table, the table is cut into column groups, each led by
/// the path; no line is wider than the terminal, and no cell is lost. Side by side too.
#[test]
fn on_a_narrow_terminal_tables_are_cut_into_groups_keeping_every_cell() {
    let mut r = measured_report(&["macvlan", "bridge", "ipvlan", "host-device", "jumbo"]);
    // A cluster's node names are longer than the lab's, and a mesh's paths name two.
    let long = |node: &str| format!("worker-{node}.ocp.example.com");
    for setup in &mut r.setups {
        for network in &mut setup.networks {
            for path in &mut network.paths {
                (path.from, path.to) = (long(&path.from), long(&path.to));
            }
        }
    }
    let wide = r.text();
    for width in [100, 80] {
        let narrow = r.text_fitting(Some(width));
        // Table lines; titles and notes are text the terminal may wrap.
        let over: Vec<&str> = narrow
            .lines()
            .filter(|l| l.contains(" → ") || l.starts_with("  path") || l.starts_with("  network"))
            .filter(|l| !l.starts_with("  !") && l.chars().count() > width)
            .collect();
        assert_eq!(over, Vec::<&str>::new(), "{width}: {narrow}");
        assert!(
            narrow.lines().count() > wide.lines().count(),
            "{width}: cut into groups"
        );
        assert_eq!(cells(&narrow), cells(&wide), "{width}: every cell");
    }
    // Wide enough: as without a width.
    assert_eq!(r.text_fitting(Some(1000)), wide);
}

/// A node with other daemons only has a responder on public alone: the cluster network's
/// pairs leave it out, and the report says each network's pairs apart.
#[test]
fn a_mesh_says_each_networks_pairs_when_they_differ() {
    use multinet_proto::network::CephNetwork::{Cluster, Public};
    let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
    let attached = |n: &str| {
        if n == "n3" {
            vec![Public]
        } else {
            vec![Public, Cluster]
        }
    };
    let on: Vec<(String, Vec<multinet_proto::network::CephNetwork>)> =
        nodes.iter().map(|n| (n.clone(), attached(n))).collect();
    let targeting = crate::mesh::Targeting::mesh(&nodes, &on, 1);
    let responders = nodes
        .iter()
        .map(|n| {
            let node = crate::mesh::Responder {
                node: n.clone(),
                listeners: Vec::new(),
            };
            (crate::mesh::responder_pod(n), node)
        })
        .collect();
    let mesh = MeshCoverage::of(&targeting, &responders).expect("a mesh");
    let of = |network: &str| {
        &mesh
            .networks
            .iter()
            .find(|n| n.network == network)
            .unwrap_or_else(|| panic!("{network}: {mesh:?}"))
            .pairs
    };
    assert!(of("cluster").iter().all(|(_, to)| to != "n3"), "{mesh:?}");
    assert!(of("public").iter().any(|(_, to)| to == "n3"), "{mesh:?}");
    let text = mesh.text();
    assert!(
        text.contains("  public (") && text.contains("  cluster ("),
        "{text}"
    );
}

#[test]
fn a_mesh_says_its_pairs_and_a_local_bench_that_it_validates_no_network() {
    let nodes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
    let responders: Vec<(String, Vec<multinet_proto::network::CephNetwork>)> = nodes
        .iter()
        .map(|n| {
            (
                n.clone(),
                vec![multinet_proto::network::CephNetwork::Public],
            )
        })
        .collect();
    let targeting = crate::mesh::Targeting::mesh(&nodes, &responders, 1);
    let responders = nodes
        .iter()
        .map(|n| {
            (
                crate::mesh::responder_pod(n),
                crate::mesh::Responder {
                    node: n.clone(),
                    listeners: Vec::new(),
                },
            )
        })
        .collect();
    let mesh = MeshCoverage::of(&targeting, &responders).expect("a mesh");
    assert_eq!(mesh.peers_per_node, Some(1));
    assert_eq!(mesh.responders, nodes);
    assert_eq!(mesh.pairs.len(), 6, "own and one peer each: {mesh:?}");
    assert_eq!(mesh.networks.len(), 1);
    assert_eq!(mesh.networks[0].pairs, mesh.pairs);
    assert!(MeshCoverage::of(&crate::mesh::Targeting::Single, &responders).is_none());
    let mut r = report(&[("local", 1.0)]);
    r.backend = "local".into();
    r.validates_real_network = false;
    r.setups[0].mesh = Some(mesh);
    let text = r.text();
    assert!(text.contains("it validates no real network"), "{text}");
    assert!(text.contains("responders on n1, n2, n3"), "{text}");
    assert!(
        text.contains("6 pair(s)") && text.contains("  n1 → n1 n"),
        "{text}"
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["validates_real_network"], false);
    assert_eq!(
        json["setups"][0]["mesh"]["pairs"][0],
        serde_json::json!(["n1", "n1"])
    );
}

/// The probe server against nginx reaches the CSV (it was only in the text and JSON): each
/// server's rates and capacity and the ratios, as network `loopback` on the server's node.
#[test]
fn the_nginx_comparison_is_in_the_csv_as_the_loopback_network() {
    use super::super::reference::{Capacity, CapacityComparison, LoopbackComparison};
    let mut r = report(&[("macvlan", 3.0)]);
    let rr = |rate: f64| TestResult {
        kind: LoadKind::RequestResponse,
        streams: 4,
        outcome: Some(outcome(LoadKind::RequestResponse, None, Some(rate))),
        server_cpu_seconds: None,
        failure: None,
    };
    let capacity = |per_second: f64| Capacity {
        connections: 64,
        requests: 1,
        seconds: 2.0,
        per_second,
        errors: 0,
        latency_us: None,
        server_cpu_seconds: Some(2.0),
    };
    r.setups[0].loopback = Some(LoopbackComparison {
        probe_server: vec![rr(30_000.0)],
        nginx: vec![rr(25_000.0)],
        error: None,
        capacity: Some(CapacityComparison {
            cpus: None,
            probe_server: Some(capacity(52_000.0)),
            nginx: Some(capacity(50_000.0)),
            error: None,
        }),
    });
    let csv = r.csv();
    let loopback: Vec<&str> = csv.lines().filter(|l| l.contains(",loopback,")).collect();
    assert_eq!(
        loopback,
        [
            "macvlan,loopback,,n1,n1,probe_server_rr_per_s,30000",
            "macvlan,loopback,,n1,n1,nginx_rr_per_s,25000",
            "macvlan,loopback,,n1,n1,rr_over_nginx,1.2",
            "macvlan,loopback,,n1,n1,probe_server_capacity_per_s,52000",
            "macvlan,loopback,,n1,n1,probe_server_capacity_busy_percent,100",
            "macvlan,loopback,,n1,n1,nginx_capacity_per_s,50000",
            "macvlan,loopback,,n1,n1,nginx_capacity_busy_percent,100",
            "macvlan,loopback,,n1,n1,capacity_over_nginx,1.04",
        ]
    );
}

/// `--no-references`: the heading says the references were not run (it listed the tools
/// found, as if they had been), and a report from before the field reads as run.
#[test]
fn a_bench_without_references_says_so_and_an_older_report_reads() {
    let mut r = report(&[("macvlan", 3.0)]);
    r.references = Tools::not_run("--no-references");
    assert!(
        r.text()
            .lines()
            .any(|l| l == "references: not run (--no-references)"),
        "{}",
        r.text()
    );
    let json = serde_json::to_value(report(&[("macvlan", 3.0)])).expect("JSON");
    assert!(json["references"].get("not_run").is_none(), "{json:#}");
    let back: NetworkBenchReport = serde_json::from_value(json).expect("reads");
    assert_eq!(back.references.not_run, None);
}

/// A machine busy before the bench is said (its figures swing with other work); a quiet one is
/// not.
#[test]
fn a_machine_busy_before_the_bench_is_said() {
    let mut r = report(&[("macvlan", 3.0)]);
    let said = |r: &NetworkBenchReport| {
        r.text()
            .lines()
            .any(|l| l.starts_with("NOTE: this machine"))
    };
    r.machine_busy_before_percent = Some(10.0);
    assert!(!said(&r));
    r.machine_busy_before_percent = Some(24.9);
    assert!(!said(&r));
    r.machine_busy_before_percent = Some(25.0);
    assert!(said(&r));
    r.machine_busy_before_percent = Some(63.0);
    assert!(said(&r), "{}", r.text());
    assert!(r.text().contains("CPUs were 63% busy"));
}
