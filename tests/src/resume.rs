//! What the coordinator-restart tests share (`lab_resume`, `local_resume`): the run id a soak
//! says it can be resumed by, its checkpoint once it is far enough into the probing, and a
//! guard that kills every process of the run however the test ends (the first coordinator's
//! agents outlive it by design).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

use crate::eventually::within;

/// The run id `child` says on stderr it can be resumed by (`--resume ID`), within
/// `patience`; kills `child` and panics with what it said otherwise. Takes `child`'s stderr.
pub fn run_id_said(child: &mut Child, patience: Duration) -> String {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut said = Vec::new();
    let run_id = within(patience, Duration::from_millis(50), || {
        while let Ok(line) = rx.try_recv() {
            if let Some(rest) = line.split("--resume ").nth(1) {
                return Ok(rest
                    .split(['`', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string());
            }
            said.push(line);
        }
        Err(())
    });
    run_id.unwrap_or_else(|()| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the soak never said its run id: {said:#?}");
    })
}

/// The checkpoint at `path` once one was written `into_probing_ms` or more after probing
/// began, within 60 s; `Err` with the last `written_ms` seen otherwise.
pub fn checkpoint_into_probing(path: &Path, into_probing_ms: u64) -> Result<Value, Option<u64>> {
    within(Duration::from_secs(60), Duration::from_millis(100), || {
        let c: Value = std::fs::read(path)
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .ok_or(None)?;
        match (c["written_ms"].as_u64(), c["probing_began_ms"].as_u64()) {
            (Some(at), Some(p)) if at >= p + into_probing_ms => Ok(c),
            (at, _) => Err(at),
        }
    })
}

/// Kills, when dropped, every process whose command line mentions the marker (`pkill -f`).
#[derive(Debug)]
pub struct KillMentioning(pub String);

impl Drop for KillMentioning {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &self.0])
            .status();
    }
}
