use multinet_proto::probe::{Connection, Payload, Scheme};

use super::*;
use crate::matrix::PathMatrix;

fn result(network: CephNetwork, ms: u64, outcome: Outcome) -> ProbeResult {
    ProbeResult {
        network,
        target: "198.18.0.1:8080".parse().expect("addr"),
        kind: ProbeKind {
            scheme: Scheme::Https,
            payload: Payload::Large,
            connection: Connection::KeptAlive,
        },
        started_ms: ms,
        latency_us: 1_500,
        outcome,
    }
}

/// The sample lines of the exposition whose name and labels start with `prefix`, sorted
/// (series come in no set order).
fn samples<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    lines.sort_unstable();
    lines
}

/// Records `results` of `client` on `node` as the matrix actor does.
fn record(
    matrix: &mut PathMatrix,
    paths: &mut PathMetrics,
    client: &str,
    node: &str,
    results: &[ProbeResult],
) {
    paths.batch(results.len(), 0);
    matrix.record_with(client, node, results, 0, |r, _| {
        paths.result(client, node, r);
    });
}

#[test]
fn every_family_is_exposed_with_its_unit_and_the_exposition_ends_with_eof() {
    let run = RunMetrics::new();
    run.set_stage("probe");
    run.set_agents(5, 7);
    let text = run.encode();
    // The per-path families have no series before a result: their lines come with it.
    for line in [
        "# TYPE multinet_results_lost counter",
        "# TYPE multinet_results_recorded counter",
        "# TYPE multinet_run_elapsed_seconds gauge",
        "multinet_agents_connected 5",
        "multinet_agents_expected 7",
        "multinet_run_stage{stage=\"probe\"} 1",
        "multinet_run_stage{stage=\"server\"} 0",
        "multinet_results_recorded_total 0",
        "# UNIT multinet_run_elapsed_seconds seconds",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert_eq!(text.lines().last(), Some("# EOF"));
}

#[test]
fn results_count_by_result_and_fill_the_latency_histogram() {
    let run = RunMetrics::new();
    let mut paths = PathMetrics::new(run.clone(), OutageRule { min_ms: 900 }, "n1".into());
    let mut matrix = PathMatrix::default();
    let results = [
        result(CephNetwork::Public, 0, Outcome::Ok),
        result(CephNetwork::Public, 100, Outcome::Ok),
        result(
            CephNetwork::Public,
            200,
            Outcome::Failed(FailureClass::ConnectTimeout),
        ),
        result(CephNetwork::Cluster, 0, Outcome::Ok),
    ];
    record(&mut matrix, &mut paths, "n2-osd-0", "n2", &results);
    // A second client of the same node adds to the same series: no per-client label.
    record(&mut matrix, &mut paths, "n2-osd-1", "n2", &results[..1]);
    paths.batch(0, 3);
    let text = run.encode();
    for line in [
        "# TYPE multinet_probes counter",
        "# TYPE multinet_probe_latency_seconds histogram",
        "# UNIT multinet_probe_latency_seconds seconds",
        "# TYPE multinet_path_up gauge",
        "# TYPE multinet_outages counter",
        "# TYPE multinet_outage_seconds counter",
        "# UNIT multinet_outage_seconds seconds",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let labels =
        r#"network="public",source_node="n2",target_node="n1",kind="https_large_kept_alive""#;
    assert_eq!(
        samples(&text, "multinet_probes_total{network=\"public\""),
        [
            format!(r#"multinet_probes_total{{{labels},result="connect_timeout"}} 1"#),
            format!(r#"multinet_probes_total{{{labels},result="ok"}} 3"#),
        ]
    );
    // 1.5 ms: above the 1 ms bucket, within 2.5 ms.
    let buckets: Vec<&str> = samples(&text, "multinet_probe_latency_seconds_bucket{")
        .into_iter()
        .filter(|l| l.contains(labels))
        .collect();
    assert_eq!(buckets.len(), LATENCY_BUCKETS_S.len() + 1);
    assert!(
        buckets.iter().any(|l| l
            .starts_with(r#"multinet_probe_latency_seconds_bucket{le="0.001","#)
            && l.ends_with("} 0")),
        "{buckets:?}"
    );
    assert!(
        buckets.iter().any(|l| l
            .starts_with(r#"multinet_probe_latency_seconds_bucket{le="0.0025","#)
            && l.ends_with("} 3")),
        "{buckets:?}"
    );
    assert!(text.contains(&format!(
        "multinet_probe_latency_seconds_count{{{labels}}} 3"
    )));
    assert!(
        text.lines()
            .any(|l| l == "multinet_results_recorded_total 5")
    );
    assert!(text.lines().any(|l| l == "multinet_results_lost_total 3"));
}

#[test]
fn a_path_is_down_during_an_outage_and_its_time_is_counted() {
    let run = RunMetrics::new();
    let mut paths = PathMetrics::new(run.clone(), OutageRule { min_ms: 900 }, "n1".into());
    let mut matrix = PathMatrix::default();
    let failed = Outcome::Failed(FailureClass::Unreachable);
    let up = r#"multinet_path_up{network="cluster",source_node="n2",target_node="n1"}"#;
    let outages = r#"multinet_outages_total{network="cluster",source_node="n2",target_node="n1"}"#;
    let seconds =
        r#"multinet_outage_seconds_total{network="cluster",source_node="n2",target_node="n1"}"#;
    let shows = |line: String| {
        let text = run.encode();
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    };
    record(
        &mut matrix,
        &mut paths,
        "c",
        "n2",
        &[result(CephNetwork::Cluster, 0, Outcome::Ok)],
    );
    shows(format!("{up} 1"));
    // One lost probe is loss: still up, no outage.
    record(
        &mut matrix,
        &mut paths,
        "c",
        "n2",
        &[result(CephNetwork::Cluster, 100, failed)],
    );
    shows(format!("{up} 1"));
    record(
        &mut matrix,
        &mut paths,
        "c",
        "n2",
        &[result(CephNetwork::Cluster, 200, Outcome::Ok)],
    );
    // Failing for the shortest outage (and more than that after the loss, which would
    // otherwise be part of it): down, counted.
    let down: Vec<_> = (0..4)
        .map(|i| result(CephNetwork::Cluster, 2_000 + i * 400, failed))
        .collect();
    record(&mut matrix, &mut paths, "c", "n2", &down);
    shows(format!("{up} 0"));
    shows(format!("{outages} 1"));
    shows(format!("{seconds} 1.2"));
    record(
        &mut matrix,
        &mut paths,
        "c",
        "n2",
        &[result(CephNetwork::Cluster, 3_500, Outcome::Ok)],
    );
    shows(format!("{up} 1"));
    shows(format!("{outages} 1"));
    shows(format!("{seconds} 1.5"));
}

#[test]
fn every_probe_kind_has_its_own_label() {
    let mut seen = std::collections::BTreeSet::new();
    for scheme in [Scheme::Http, Scheme::Https] {
        for payload in [Payload::Small, Payload::Large] {
            for connection in [Connection::Fresh, Connection::KeptAlive] {
                seen.insert(kind_label(ProbeKind {
                    scheme,
                    payload,
                    connection,
                }));
            }
        }
    }
    assert_eq!(seen.len(), 8);
}

#[tokio::test]
async fn the_endpoint_serves_metrics_and_nothing_else() {
    use http_body_util::BodyExt;
    let run = RunMetrics::new();
    run.set_agents(2, 3);
    let listener = MetricsServer::bind("127.0.0.1:0".parse().expect("addr")).expect("binds");
    // Taken: a second run on the same address is refused, naming it.
    let taken = MetricsServer::bind(listener.local_addr().expect("addr")).expect_err("taken");
    assert!(
        taken
            .to_string()
            .starts_with("serving metrics: cannot listen on 127.0.0.1:")
    );
    let server = MetricsServer::serve(listener, run).expect("serves");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let get = |path: &'static str| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let request = Request::get(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            content_type,
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    let (status, content_type, body) = get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
    assert!(
        body.lines().any(|l| l == "multinet_agents_connected 2"),
        "{body}"
    );
    let (status, _, _) = get("/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped"
    );
}

/// At the issue's scale — 64 nodes × 2 networks × 8 probe kinds — the series are per node,
/// network and kind whatever the number of clients: three clients a node make no more series
/// than one.
#[test]
fn series_grow_with_nodes_networks_and_kinds_not_with_clients() {
    let run = RunMetrics::new();
    let mut paths = PathMetrics::new(run.clone(), OutageRule { min_ms: 900 }, "n0".into());
    let mut matrix = PathMatrix::default();
    let kinds: Vec<ProbeKind> = [Scheme::Http, Scheme::Https]
        .into_iter()
        .flat_map(|scheme| {
            [Payload::Small, Payload::Large]
                .into_iter()
                .flat_map(move |payload| {
                    [Connection::Fresh, Connection::KeptAlive]
                        .into_iter()
                        .map(move |connection| ProbeKind {
                            scheme,
                            payload,
                            connection,
                        })
                })
        })
        .collect();
    for node in 0..64 {
        for client in 0..3 {
            let results: Vec<ProbeResult> = [CephNetwork::Public, CephNetwork::Cluster]
                .into_iter()
                .flat_map(|network| {
                    kinds.iter().map(move |kind| ProbeResult {
                        kind: *kind,
                        ..result(network, 0, Outcome::Ok)
                    })
                })
                .collect();
            let (client, node) = (format!("n{node}-c{client}"), format!("n{node}"));
            record(&mut matrix, &mut paths, &client, &node, &results);
        }
    }
    let began = std::time::Instant::now();
    let text = run.encode();
    let took = began.elapsed();
    assert_eq!(samples(&text, "multinet_probes_total{").len(), 64 * 2 * 8);
    assert_eq!(samples(&text, "multinet_path_up{").len(), 64 * 2);
    assert_eq!(
        samples(&text, "multinet_probe_latency_seconds_bucket{").len(),
        64 * 2 * 8 * (LATENCY_BUCKETS_S.len() + 1)
    );
    // What a scrape costs at this scale (debug build), for the record.
    eprintln!(
        "64 nodes x 2 networks x 8 kinds: {} bytes, {} lines, encoded in {took:?}",
        text.len(),
        text.lines().count()
    );
}

/// deploy/monitoring/ stays in step with the code: every metric the Grafana dashboard queries
/// is one the coordinator exposes, and the Service and monitors scrape the coordinator
/// container's port by its name.
#[test]
fn the_deploy_monitoring_files_name_what_the_coordinator_serves() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let run = RunMetrics::new();
    let mut paths = PathMetrics::new(run.clone(), OutageRule { min_ms: 900 }, "n1".into());
    let mut matrix = PathMatrix::default();
    let ok = result(CephNetwork::Public, 0, Outcome::Ok);
    record(&mut matrix, &mut paths, "c", "n2", &[ok]);
    let exposed: std::collections::BTreeSet<String> = run
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("the dashboard is JSON");
    let mut queried = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("multinet_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                queried.push(name);
            }
        }
    }
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        assert!(
            exposed.contains(name),
            "the dashboard queries {name}: {exposed:?}"
        );
    }
    let port = crate::backend::kube::objects::METRICS_PORT_NAME;
    assert!(read("service.yaml").contains(&format!("targetPort: {port}")));
    for monitor in ["servicemonitor.yaml", "podmonitor.yaml"] {
        assert!(
            read(monitor).contains(&format!("- port: {port}")),
            "{monitor}"
        );
    }
}

#[test]
fn a_mesh_labels_each_path_with_its_responders_node_and_keeps_their_outages_apart() {
    let run = RunMetrics::new();
    let mut paths = PathMetrics::new(run.clone(), OutageRule { min_ms: 900 }, "n1".into());
    let to_n3: std::net::SocketAddr = "198.18.0.3:8443".parse().expect("addr");
    paths.set_target_nodes(std::collections::HashMap::from([(to_n3, "n3".to_string())]));
    let mut matrix = PathMatrix::default();
    let failed = Outcome::Failed(FailureClass::ConnectTimeout);
    // The path to n1's responder works; the one to n3's fails long enough to be down.
    let mut results = vec![result(CephNetwork::Cluster, 0, Outcome::Ok)];
    for i in 0..4 {
        results.push(result(CephNetwork::Cluster, 200 + i * 400, Outcome::Ok));
        results.push(ProbeResult {
            target: to_n3,
            ..result(CephNetwork::Cluster, 200 + i * 400, failed)
        });
    }
    record(&mut matrix, &mut paths, "c", "n2", &results);
    let text = run.encode();
    for line in [
        r#"multinet_path_up{network="cluster",source_node="n2",target_node="n1"} 1"#,
        r#"multinet_path_up{network="cluster",source_node="n2",target_node="n3"} 0"#,
        r#"multinet_outages_total{network="cluster",source_node="n2",target_node="n3"} 1"#,
        r#"multinet_outages_total{network="cluster",source_node="n2",target_node="n1"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// Must-fix 4 of the review of branch `soak` (the live outage leak): the server restarts with
/// another listener while its client's path to the old one is down (failed 1.0 s to 3.0 s).
/// The client lets the old path go and no result will close it: told the listeners now, the
/// metrics end that path's window at its last result, so the node is up again (1 outage,
/// 2.0 s), a late result to the old listener is a probe only, and a later outage on the new
/// listener (10.0 s to 11.0 s) is an outage of its own (2 outages, 3.0 s) — before, the node
/// stayed down for good and the later outage was folded into the first (1 outage, 10.0 s).
#[test]
fn a_path_to_a_listener_let_go_while_down_ends_its_nodes_outage() {
    let run = RunMetrics::new();
    let mut paths = PathMetrics::new(run.clone(), OutageRule { min_ms: 900 }, "n1".into());
    let mut matrix = PathMatrix::default();
    let old = result(CephNetwork::Public, 0, Outcome::Ok).target;
    let new: std::net::SocketAddr = "198.18.0.1:9080".parse().expect("addr");
    let to_new = |ms, outcome| ProbeResult {
        target: new,
        ..result(CephNetwork::Public, ms, outcome)
    };
    let failed = Outcome::Failed(FailureClass::ConnectTimeout);
    let down_on_old: Vec<ProbeResult> = [(0, Outcome::Ok), (1_000, failed), (2_000, failed)]
        .into_iter()
        .chain([(3_000, failed)])
        .map(|(ms, outcome)| result(CephNetwork::Public, ms, outcome))
        .collect();
    record(&mut matrix, &mut paths, "c", "n2", &down_on_old);
    // (multinet_path_up, multinet_outages_total, multinet_outage_seconds_total) of n2 -> n1.
    let figures = |text: &str| -> Vec<String> {
        ["path_up", "outages_total", "outage_seconds_total"]
            .iter()
            .map(|name| {
                let prefix = format!(
                    r#"multinet_{name}{{network="public",source_node="n2",target_node="n1"}} "#
                );
                text.lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .unwrap_or("none")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(figures(&run.encode()), ["0", "1", "2.0"]);
    // The server listens elsewhere now; a late failure to the old listener arrives.
    paths.set_let_go(HashSet::from([old]));
    let mut later = vec![result(CephNetwork::Public, 3_500, failed)];
    later.extend([(4_000, Outcome::Ok), (5_000, Outcome::Ok)].map(|(ms, o)| to_new(ms, o)));
    later.extend(
        [(10_000, failed), (10_500, failed), (11_000, Outcome::Ok)].map(|(ms, o)| to_new(ms, o)),
    );
    record(&mut matrix, &mut paths, "c", "n2", &later[..3]);
    let text = run.encode();
    assert_eq!(figures(&text), ["1", "1", "2.0"]);
    // The late result still counts as a probe.
    assert!(
        text.lines().any(|l| l
            == r#"multinet_probes_total{network="public",source_node="n2",target_node="n1",kind="https_large_kept_alive",result="connect_timeout"} 4"#),
        "{text}"
    );
    record(&mut matrix, &mut paths, "c", "n2", &later[3..]);
    assert_eq!(figures(&run.encode()), ["1", "2", "3.0"]);
}
