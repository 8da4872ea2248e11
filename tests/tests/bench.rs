//! `multinet bench ingest` end to end, small: the real coordinator and load processes on
//! loopback. The bench must check what it claims — every offered result recorded once,
//! resends counted as duplicates — and leave nothing behind.

use std::process::{Command, Stdio};

use multinet_tests::e2e::processes_mentioning;
use serde_json::Value;

#[test]
fn a_small_ingest_records_every_offered_result_once_through_planned_reconnects() {
    // 40 agents × 5 results/s × 10 s; agents 0, 10, 20, 30 ignore three acks and reconnect,
    // agents 5, 15, 25, 35 are cut abruptly.
    let child = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "bench",
            "ingest",
            "--agents",
            "40",
            "--rate",
            "5",
            "--seconds",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("multinet runs");
    let pid = child.id();
    let out = child.wait_with_output().expect("bench ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{r:#}");
    assert_eq!(r["offered"], 40 * 5 * 10);
    for key in ["sent", "acked", "recorded", "recorded_ok"] {
        assert_eq!(r[key], r["offered"], "{key}: {r:#}");
    }
    assert_eq!(
        (r["connected"].as_u64(), r["roster_connected"].as_u64()),
        (Some(40), Some(40))
    );
    assert_eq!(
        (r["planned_cuts"].as_u64(), r["cuts"].as_u64()),
        (Some(8), Some(8))
    );
    // Four agents resent three batches the coordinator had acknowledged: at least twelve
    // duplicates, each counted once.
    assert_eq!(r["resent_known_duplicates"], 12, "{r:#}");
    let duplicates = r["duplicate_batches"].as_u64().expect("duplicates");
    let uncertain = r["resent_uncertain"].as_u64().expect("uncertain");
    assert!((12..=12 + uncertain).contains(&duplicates), "{r:#}");
    assert_eq!(r["sequence_gaps"], 0);
    assert_eq!(r["threads"], 1, "the coordinator runs on one thread");
    assert!(
        r["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["held"] == true),
        "{r:#}"
    );
    assert!(stderr.contains("passed"), "{stderr}");
    let run_dir = format!("multinet-bench-{pid}");
    assert_eq!(
        processes_mentioning(&run_dir),
        Vec::<String>::new(),
        "the load process left running"
    );
    assert!(
        !std::env::temp_dir().join(&run_dir).exists(),
        "the bench's directory left behind"
    );
}

#[test]
fn a_rate_of_zero_is_invalid_input() {
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["bench", "ingest", "--rate", "0"])
        .output()
        .expect("multinet runs");
    assert_eq!(out.status.code(), Some(22));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--rate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing ran");
}

#[test]
fn with_the_live_metrics_on_every_result_is_still_recorded_and_each_sample_scrapes() {
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "bench",
            "ingest",
            "--agents",
            "20",
            "--rate",
            "5",
            "--seconds",
            "3",
            "--metrics",
        ])
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{r:#}");
    assert_eq!(r["recorded"], 20 * 5 * 3, "{r:#}");
    let samples = r["samples"].as_array().expect("samples");
    // The load's 20 agents sit on 10 nodes, one probe kind: 10 series of probes.
    let last = samples.last().expect("a sample");
    assert!(
        last["scrape_bytes"].as_u64().is_some_and(|b| b > 1_000),
        "{last:#}"
    );
    assert!(
        samples.iter().all(|s| s["scrape_ms"].as_f64().is_some()),
        "{r:#}"
    );
}
