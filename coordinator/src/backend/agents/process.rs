//! An agent's process as the coordinator holds it: its own child, or — in a resumed run
//! (`run --resume`) — a process an earlier coordinator process started, adopted by its pid and
//! start time (`/proc/PID/stat` field 22, `proc(5)`), so a pid the kernel gave to another
//! process since is never taken for the agent. An adopted process is not the coordinator's
//! child: its exit status cannot be read (its new parent, init or a subreaper, reaps it), only
//! that it is gone.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::Child;

/// A process the coordinator did not start, known by pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopted {
    /// Its pid.
    pub pid: i32,
    /// When it started, clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
}

impl Adopted {
    /// The process `pid` as it is now (`None`: there is none, or it is a zombie).
    pub fn of(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, start_time) = parse_stat(&stat)?;
        (state != 'Z' && state != 'X').then_some(Self { pid, start_time })
    }

    /// Whether the process still runs (the same process: same pid, same start time).
    pub fn alive(&self) -> bool {
        Self::of(self.pid).is_some_and(|now| now.start_time == self.start_time)
    }

    /// Sends `signal` if the process is still the one adopted.
    fn signal(&self, signal: Signal) {
        if self.alive() {
            let _ = kill(Pid::from_raw(self.pid), signal);
        }
    }
}

/// The state (field 3) and start time (field 22) of a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may itself hold spaces and parentheses: the fields
/// after it are read from its last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4..=21 come before the start time: 18 of them.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// An agent's process.
#[derive(Debug)]
pub enum Process {
    /// Started by this coordinator process.
    Child(Child),
    /// Started by an earlier one (a resumed run).
    Adopted(Adopted),
}

impl Process {
    /// The pid, while the process is known to run.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Process::Child(child) => child.id().and_then(|id| i32::try_from(id).ok()),
            Process::Adopted(a) => Some(a.pid),
        }
    }

    /// What a checkpoint keeps of it: pid and start time, while it runs.
    pub fn adoptable(&self) -> Option<Adopted> {
        match self {
            Process::Child(_) => self.pid().and_then(Adopted::of),
            Process::Adopted(a) => a.alive().then_some(*a),
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        match self {
            Process::Child(child) => {
                let _ = child.start_kill();
            }
            Process::Adopted(a) => a.signal(Signal::SIGKILL),
        }
    }

    /// How it ended, once it has (`None` while it runs).
    pub fn exit(&mut self) -> Option<String> {
        match self {
            Process::Child(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => None,
            },
            Process::Adopted(a) => (!a.alive()).then(|| {
                "ended (its status is its parent's to read: an earlier coordinator process started it)".to_string()
            }),
        }
    }

    /// Waits up to `patience` for it to end by itself, then kills it and waits for the end.
    pub async fn end(&mut self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline && self.exit().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        match self {
            Process::Child(child) => {
                let _ = child.wait().await;
            }
            Process::Adopted(a) => {
                // Not ours to wait for: watch it go (SIGKILL is not refused), boundedly.
                let until = tokio::time::Instant::now() + Duration::from_secs(2);
                while a.alive() && tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_read_after_the_command_name_whatever_it_holds() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 3 1 0 0 20 0 1 0 987654 12345678 100 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 987_654)));
        assert_eq!(parse_stat("4242 (x) Z"), None);
    }

    #[test]
    fn this_process_is_alive_and_another_start_time_is_not_it() {
        let me = Adopted::of(std::process::id() as i32).expect("this process");
        assert!(me.alive());
        let other = Adopted {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.alive());
    }
}
