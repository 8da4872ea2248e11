//! A local soak that outlives its coordinator (issue #13): the coordinator killed with
//! SIGKILL mid-soak, `multinet run --resume RUN` continues the same run from its checkpoint in
//! the run's directory, and the run completes with nothing lost and no process left. No root
//! needed: agents on loopback.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use multinet_tests::e2e::processes_mentioning;
use multinet_tests::resume::{KillMentioning, checkpoint_into_probing, run_id_said};
use serde_json::Value;

/// Removes the run's directory when the test ends, however it ends.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_local_soak_whose_coordinator_is_killed_is_resumed_with_nothing_lost() {
    let mut first = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "local",
            "--nodes",
            "2",
            "--daemons-per-node",
            "3",
            "--probe-interval",
            "200ms",
            "-o",
            "json",
            "--duration",
            "25s",
            "--report-interval",
            "2s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("multinet runs");
    let run_id = run_id_said(&mut first, Duration::from_secs(60));
    let dir = std::env::temp_dir().join(format!("multinet-{run_id}"));
    let marker = format!("{}/", dir.display());
    // Dropped in reverse: the processes are killed first, then the directory goes.
    let _dir = RemoveDir(dir.clone());
    let _processes = KillMentioning(marker.clone());
    let checkpoint = dir.join("checkpoint.json");
    let written = checkpoint_into_probing(&checkpoint, 5_000);
    let killed = first.kill();
    let _ = first.wait();
    let checkpointed = written.expect("a checkpoint 5 s into the probing");
    killed.expect("SIGKILL to the coordinator");
    assert_eq!(checkpointed["backend"]["backend"], "local");
    // The coordinator stays dead a while; the agents go on probing meanwhile.
    std::thread::sleep(Duration::from_secs(2));
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
    assert_eq!(r["backend"], "local");
    assert_eq!(r["coordinator_restarts"].as_array().map(Vec::len), Some(1));
    let results = &r["results"];
    let n = |k: &str| results[k].as_u64().expect(k);
    assert_eq!((n("unaccounted"), n("lost")), (0, 0), "{results:#}");
    assert_eq!(n("produced"), n("recorded"), "{results:#}");
    assert!(
        n("recorded")
            > checkpointed["matrix"]["recorded"]
                .as_u64()
                .expect("recorded"),
        "{results:#}"
    );
    // Nothing of the run is left: the resumed coordinator stopped the adopted agents and
    // removed the run's directory.
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new());
    assert!(!dir.exists(), "the run directory is left");
}
