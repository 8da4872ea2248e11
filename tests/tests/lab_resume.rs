//! A soak that outlives its coordinator (issue #13), as root on the lab: the coordinator is
//! killed with SIGKILL mid-soak, `multinet run --resume RUN` continues the same run from its
//! checkpoint, and the run completes with every result accounted for. Skips where the lab
//! cannot run, fails instead under CI ([`multinet_tests::require`]).

mod lab_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use lab_support::*;
use multinet_tests::resume::{KillMentioning, checkpoint_into_probing, run_id_said};
use serde_json::Value;

const SOAK: &str = "config:\n  nodeTypes:\n    converged: {osdsPerNode: 1, otherDaemonsPerNode: 1}\n  probeInterval: 200ms\n  probeTimeout: 500ms\n  resourceTimeout: 1m\n";

#[test]
fn a_coordinator_killed_mid_soak_is_resumed_and_the_run_completes_with_nothing_lost() {
    if !lab_possible() {
        return;
    }
    let lab = LabGuard::new('r');
    let _processes = KillMentioning(format!("/run/multinet/{}/", lab.name));
    let topology = lab.topology(SOAK);
    let mut first = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "lab",
            "-o",
            "json",
            "--duration",
            "40s",
            "--report-interval",
            "2s",
            "--agent-grace-seconds",
            "60",
            "-f",
        ])
        .arg(&topology)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("multinet runs");
    // The run id, from the line that says how to resume it.
    let run_id = run_id_said(&mut first, Duration::from_secs(90));
    // A checkpoint 8 s or more into the probing: the first coordinator has recorded a lot.
    let checkpoint = std::path::PathBuf::from(format!(
        "/run/multinet/{}/multinet-{run_id}/checkpoint.json",
        lab.name
    ));
    let written = checkpoint_into_probing(&checkpoint, 8_000);
    // While its coordinator runs, the run is not to be resumed: refused, nothing touched.
    let early = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "-q", "-o", "json", "--resume", &run_id])
        .output()
        .expect("multinet --resume runs");
    let early_err = String::from_utf8_lossy(&early.stderr);
    assert_eq!(early.status.code(), Some(22), "{early_err}");
    assert!(early_err.contains("still runs"), "{early_err}");
    let killed = first.kill();
    let _ = first.wait();
    let checkpointed = written.expect("a checkpoint 8 s into the probing");
    killed.expect("SIGKILL to the coordinator");
    let recorded_then = checkpointed["matrix"]["recorded"]
        .as_u64()
        .expect("recorded");
    assert!(recorded_then > 0, "the checkpoint holds the matrix");
    // The coordinator stays dead a while; the agents go on probing meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["run", "-q", "-o", "json", "--resume", &run_id])
        .output()
        .expect("multinet --resume runs");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "a JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["verdict"], "pass", "{r:#}");
    assert_eq!(r["run_id"], run_id.as_str());
    // One restart, after the checkpoint resumed from.
    let restarts = r["coordinator_restarts"].as_array().expect("restarts");
    assert_eq!(restarts.len(), 1, "{r:#}");
    let (at, resumed) = (
        restarts[0]["checkpoint_ms"]
            .as_u64()
            .expect("checkpoint_ms"),
        restarts[0]["resumed_ms"].as_u64().expect("resumed_ms"),
    );
    assert_eq!(Some(at), checkpointed["written_ms"].as_u64());
    assert!(resumed >= at + 3_000, "{restarts:#?}");
    // Nothing lost: once a soak checkpoints, a batch is acknowledged only when a checkpoint
    // holds it, so the agents resent everything the dead coordinator had not checkpointed.
    let results = &r["results"];
    let n = |k: &str| results[k].as_u64().expect(k);
    assert_eq!((n("unaccounted"), n("lost")), (0, 0), "{results:#}");
    assert_eq!(n("produced"), n("recorded"), "{results:#}");
    assert!(n("recorded") > recorded_then, "{results:#}");
    // The agents were never away (the coordinator was), and no network outage was made up.
    assert!(r.get("agent_outages").is_none(), "{r:#}");
    assert_eq!(r["findings"], serde_json::json!([]), "{r:#}");
    // The stages tell the restart: the first soak to its checkpoint, the time without a
    // coordinator, the resumed soak; which lasted to 40 s from the start of probing.
    let stages = r["stages"].as_array().expect("stages");
    let names: Vec<(&str, &str)> = stages
        .iter()
        .filter_map(|s| Some((s["name"].as_str()?, s["outcome"].as_str()?)))
        .collect();
    assert_eq!(
        names[3..],
        [
            ("soak", "coordinator died after its checkpoint"),
            ("coordinator restart", "resumed"),
            ("soak (resumed)", "done"),
            ("stop", "done"),
        ],
        "{names:?}"
    );
    let ms = |name: &str| {
        stages
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["duration_ms"].as_u64())
            .expect(name)
    };
    let probing_began = checkpointed["probing_began_ms"].as_u64().expect("probing");
    let soak_end = probing_began + 40_000;
    let resumed_soak_end = resumed + ms("soak (resumed)");
    assert!(
        resumed_soak_end.abs_diff(soak_end) <= 1_000,
        "the soak ended at {resumed_soak_end} ms, probing began at {probing_began} ms"
    );
    lab.assert_gone();
}
