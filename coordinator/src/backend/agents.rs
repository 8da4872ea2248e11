//! Agent processes, for the backends that run agents on this machine (local, lab): writing
//! an agent's certificate and assignment, starting it (optionally inside a network namespace),
//! noticing when it exits, the kill-agent fault, and stopping them all.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use multinet_proto::assignment::{AgentAssignment, NetworkAddress};
use multinet_proto::control::{AgentIdentity, Role};
use tokio::process::{Child, Command};

use crate::scheduler::AgentEnv;

pub mod process;

use process::{Adopted, Process};

/// Why an agent process could not be set up. (A program that cannot be spawned is not an
/// error: the pod did not start, and the run reports it.)
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This process's own executable could not be found (it runs agents as `multinet agent`).
    #[error("finding the multinet binary to run agents")]
    OwnExecutable(#[source] std::io::Error),
    /// The agent's certificate could not be issued or written.
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    /// The agent's assignment or log file could not be written.
    #[error("writing {}", .path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The agent's assignment could not be encoded as JSON.
    #[error("encoding the agent's assignment")]
    Encode(#[source] serde_json::Error),
    /// The agent command is empty.
    #[error("empty agent command")]
    EmptyCommand,
}

/// Kill an agent with SIGKILL (as a crash would) some time after it started or after probing
/// began, and optionally start it again later with the same assignment (as a kubelet restarts
/// a container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillAgent {
    /// `server` (the single server; in a mesh the first responder), `server-NODE` (a mesh's
    /// responder on NODE), or a node name (its first client still running is killed).
    pub target: String,
    /// How long after [`Self::from`].
    pub after: Duration,
    /// What `after` counts from.
    pub from: KillFrom,
    /// Start the agent again this long after it was killed (`None`: it stays dead).
    pub restart_after: Option<Duration>,
}

/// What a [`KillAgent`]'s delay counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillFrom {
    /// The victim's own start (`--kill-agent TARGET@SECONDS`, a topology's `after`).
    AgentStart,
    /// The start of probing (a topology's `at`, like every scheduled fault).
    Probing,
}

impl std::str::FromStr for KillAgent {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (target, when) = text.split_once('@').ok_or_else(|| {
            format!(
                "{text:?}: expected TARGET@SECONDS[+SECONDS], e.g. server@3, n2@5 or server-n3@2+10"
            )
        })?;
        let seconds = |s: &str| -> Result<Duration, String> {
            let secs: f64 = s
                .parse()
                .map_err(|_| format!("{text:?}: {s:?} is not a number of seconds"))?;
            if !(0.0..=86_400.0).contains(&secs) {
                return Err(format!("{text:?}: seconds must be 0 to 86400, found {s}"));
            }
            Ok(Duration::from_secs_f64(secs))
        };
        if target.is_empty() {
            return Err(format!(
                "{text:?}: expected TARGET@SECONDS[+SECONDS], no target"
            ));
        }
        let (after, restart_after) = match when.split_once('+') {
            Some((at, back)) => (seconds(at)?, Some(seconds(back)?)),
            None => (seconds(when)?, None),
        };
        Ok(Self {
            target: target.to_string(),
            after,
            from: KillFrom::AgentStart,
            restart_after,
        })
    }
}

#[derive(Debug)]
struct Running {
    process: Process,
    started: Instant,
    role: Role,
    node: String,
    log: std::path::PathBuf,
    exited: bool,
    /// The whole command line, to start the agent again after a kill ([`KillAgent`]).
    argv: Vec<String>,
}

/// Where a [`KillAgent`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KillState {
    /// Not due yet (or no victim yet).
    Pending,
    /// `pod` was killed at `at`; it is started again once its exit was seen and
    /// `restart_after` passed.
    Killed { pod: String, at: Instant },
    /// Done: killed for good, or killed and started again.
    Done,
}

/// The agent processes of a run.
#[derive(Debug)]
pub struct AgentProcesses {
    agent_command: Vec<String>,
    running: BTreeMap<String, Running>,
    /// The kill-agent faults and where each stands.
    kills: Vec<(KillAgent, KillState)>,
    /// When probing began ([`Self::probing_began`]): what [`KillFrom::Probing`] counts from.
    probing_since: Option<Instant>,
}

impl AgentProcesses {
    /// Agents are started with `agent_command` + `--assignment FILE`; `kills` are applied as
    /// they fall due ([`Self::exited`]).
    pub fn new(agent_command: Vec<String>, kills: Vec<KillAgent>) -> Self {
        Self {
            agent_command,
            running: BTreeMap::new(),
            kills: kills.into_iter().map(|k| (k, KillState::Pending)).collect(),
            probing_since: None,
        }
    }

    /// Probing began now: kills counted from it ([`KillFrom::Probing`]) start counting.
    pub fn probing_began(&mut self) {
        self.probing_since.get_or_insert_with(Instant::now);
    }

    /// The command that runs an agent: `MULTINET_AGENT_BIN` if set, else this very binary's
    /// `agent` subcommand.
    pub fn default_agent_command() -> Result<Vec<String>, Error> {
        if let Ok(bin) = std::env::var("MULTINET_AGENT_BIN") {
            return Ok(vec![bin]);
        }
        let exe = std::env::current_exe().map_err(Error::OwnExecutable)?;
        Ok(vec![exe.display().to_string(), "agent".into()])
    }

    /// Writes the agent's certificate and assignment and starts it, prefixed by `wrapper`
    /// (e.g. `ip netns exec NS`). `Err` is a reason the pod did not start.
    pub fn start(
        &mut self,
        pod: &AgentIdentity,
        env: &AgentEnv<'_>,
        addresses: Vec<NetworkAddress>,
        wrapper: &[String],
    ) -> Result<Result<(), String>, Error> {
        // Files are named after the pod, bounded: a pod named after a 253-character node name
        // would exceed a file name's 255 bytes.
        let stem = multinet_proto::names::bounded_label(&pod.pod, 63);
        let tls = env
            .pki
            .write_agent_files(env.run_dir, &stem, pod.role == Role::Server)?;
        let assignment = AgentAssignment {
            run_id: env.run_id.to_string(),
            coordinator: env.coordinator,
            identity: pod.clone(),
            tls,
            addresses,
            probe: env.probe,
            grace_ms: env.grace_ms,
            batch_max: 256,
            unacked_max: 1024,
        };
        let file = env.run_dir.join(format!("{stem}.assignment.json"));
        let json = serde_json::to_vec_pretty(&assignment).map_err(Error::Encode)?;
        std::fs::write(&file, json).map_err(|source| Error::File {
            path: file.clone(),
            source,
        })?;
        let log_path = env.run_dir.join(format!("{stem}.log"));
        let log = std::fs::File::create(&log_path).map_err(|source| Error::File {
            path: log_path.clone(),
            source,
        })?;
        let mut argv: Vec<String> = wrapper.iter().chain(&self.agent_command).cloned().collect();
        argv.push("--assignment".into());
        argv.push(file.display().to_string());
        let (program, args) = argv.split_first().ok_or(Error::EmptyCommand)?;
        let (program, args) = (program.clone(), args.to_vec());
        match spawn(&program, &args, log) {
            Ok(child) => {
                self.running.insert(
                    pod.pod.clone(),
                    Running {
                        process: Process::Child(child),
                        started: Instant::now(),
                        role: pod.role,
                        node: pod.node.clone(),
                        log: log_path,
                        exited: false,
                        argv,
                    },
                );
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(format!("cannot start {program}: {e}"))),
        }
    }

    /// Kills the victims of the kill-agent faults that fell due (SIGKILL, as a crash would).
    fn apply_kills(&mut self) {
        let probing = self.probing_since;
        for (kill, state) in &mut self.kills {
            if *state != KillState::Pending {
                continue;
            }
            let victim = self.running.iter_mut().find(|(pod, r)| {
                !r.exited
                    && match kill.target.as_str() {
                        "server" => r.role == Role::Server,
                        responder if responder.starts_with("server-") => {
                            r.role == Role::Server && pod.as_str() == responder
                        }
                        node => r.role == Role::Client && r.node == node,
                    }
            });
            let Some((pod, r)) = victim else {
                continue;
            };
            let due = match kill.from {
                KillFrom::AgentStart => r.started.elapsed() >= kill.after,
                KillFrom::Probing => probing.is_some_and(|p| p.elapsed() >= kill.after),
            };
            if due {
                r.process.kill();
                tracing::info!(pod = %pod, "kill-agent: killed the agent");
                *state = match kill.restart_after {
                    Some(_) => KillState::Killed {
                        pod: pod.clone(),
                        at: Instant::now(),
                    },
                    None => KillState::Done,
                };
            }
        }
    }

    /// Starts again, with the same command line and assignment, the killed agents whose exit
    /// was seen and whose time to come back has come (as a kubelet restarts a container).
    fn apply_restarts(&mut self) {
        for (kill, state) in &mut self.kills {
            let (KillState::Killed { pod, at }, Some(after)) = (&*state, kill.restart_after) else {
                continue;
            };
            let Some(r) = self.running.get_mut(pod) else {
                *state = KillState::Done;
                continue;
            };
            if !r.exited || at.elapsed() < after {
                continue;
            }
            let log = std::fs::OpenOptions::new().append(true).open(&r.log);
            let started = log.map_err(|e| e.to_string()).and_then(|log| {
                let (program, args) = r.argv.split_first().ok_or("empty agent command")?;
                spawn(program, args, log).map_err(|e| format!("cannot start {program}: {e}"))
            });
            match started {
                Ok(child) => {
                    tracing::info!(pod = %pod, "kill-agent: started the agent again");
                    r.process = Process::Child(child);
                    r.started = Instant::now();
                    r.exited = false;
                }
                Err(e) => {
                    tracing::warn!(pod = %pod, "kill-agent: cannot start the agent again: {e}")
                }
            }
            *state = KillState::Done;
        }
    }

    /// Applies the kill-agent faults that are due (kills, and restarts of agents whose exit
    /// an earlier call returned); returns agents that exited since the last call, with the
    /// reason.
    pub fn exited(&mut self) -> Vec<(String, String)> {
        self.apply_restarts();
        self.apply_kills();
        let mut out = Vec::new();
        for (pod, r) in &mut self.running {
            if !r.exited
                && let Some(status) = r.process.exit()
            {
                r.exited = true;
                let mut reason = format!("agent process exited: {status}");
                if let Some(tail) = log_tail(&r.log) {
                    reason.push_str("; last log: ");
                    reason.push_str(&tail);
                }
                out.push((pod.clone(), reason));
            }
        }
        out
    }

    /// The pid of pod `pod`'s agent while it runs (a bench reads its CPU time).
    pub fn pid(&self, pod: &str) -> Option<i32> {
        self.running
            .get(pod)
            .filter(|r| !r.exited)
            .and_then(|r| r.process.pid())
    }

    /// Gives agents (told to stop over the control plane) a moment, then ends them all.
    pub async fn stop_all(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(3);
        for r in self.running.values_mut() {
            r.process
                .end(deadline.saturating_duration_since(Instant::now()))
                .await;
        }
        self.running.clear();
    }

    /// What a checkpoint keeps of the agents' processes, so that a resumed run adopts those
    /// still running ([`Self::adopt`]).
    pub fn records(&self) -> Vec<ProcessRecord> {
        self.running
            .iter()
            .map(|(pod, r)| ProcessRecord {
                pod: pod.clone(),
                process: if r.exited {
                    None
                } else {
                    r.process.adoptable()
                },
                role: r.role,
                node: r.node.clone(),
                log: r.log.clone(),
                argv: r.argv.clone(),
            })
            .collect()
    }

    /// The agents of a resumed run: the processes of `records` that still run are adopted;
    /// those that ended meanwhile are reported by the next [`Self::exited`]. Kill-agent faults
    /// are not carried over.
    pub fn adopt(agent_command: Vec<String>, records: Vec<ProcessRecord>) -> Self {
        let mut agents = Self::new(agent_command, Vec::new());
        for record in records {
            let gone = Adopted {
                pid: 0,
                start_time: u64::MAX,
            };
            agents.running.insert(
                record.pod,
                Running {
                    process: Process::Adopted(record.process.unwrap_or(gone)),
                    started: Instant::now(),
                    role: record.role,
                    node: record.node,
                    log: record.log,
                    exited: false,
                    argv: record.argv,
                },
            );
        }
        agents
    }
}

/// An agent's process as a checkpoint keeps it ([`AgentProcesses::records`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessRecord {
    /// The agent's pod.
    pub pod: String,
    /// Its process while it ran (`None`: it had ended).
    pub process: Option<Adopted>,
    /// Its role.
    pub role: Role,
    /// Its node.
    pub node: String,
    /// Its log file.
    pub log: std::path::PathBuf,
    /// Its command line.
    pub argv: Vec<String>,
}

/// Starts `program` with `args`, its stderr into `log`.
fn spawn(program: &str, args: &[String], log: std::fs::File) -> std::io::Result<Child> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
}

/// The last lines an agent logged (at most [`TAIL_LINES`] lines of the file's last
/// [`TAIL_BYTES`]), joined with " | "; `None` when it logged nothing.
fn log_tail(path: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | ");
    (!tail.is_empty()).then_some(tail)
}

const TAIL_BYTES: u64 = 2048;
const TAIL_LINES: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_agent_parses() {
        assert_eq!(
            "server@2.5".parse::<KillAgent>(),
            Ok(KillAgent {
                target: "server".into(),
                after: Duration::from_millis(2500),
                from: KillFrom::AgentStart,
                restart_after: None,
            })
        );
        assert_eq!(
            "server-n3@2+10".parse::<KillAgent>(),
            Ok(KillAgent {
                target: "server-n3".into(),
                after: Duration::from_secs(2),
                from: KillFrom::AgentStart,
                restart_after: Some(Duration::from_secs(10)),
            })
        );
        assert!("server".parse::<KillAgent>().is_err());
        assert!("@3".parse::<KillAgent>().is_err());
        assert!("n1@-1".parse::<KillAgent>().is_err());
        assert!("n1@2+".parse::<KillAgent>().is_err());
        assert!("n1@2+x".parse::<KillAgent>().is_err());
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("mn-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp files");
        let path = dir.join("a.log");
        let long: String = (0..500).map(|i| format!("line {i}\n")).collect();
        std::fs::write(
            &path,
            format!("{long}\nconnecting\n\nerror: refused: wrong run id\n"),
        )
        .expect("temp files");
        let tail = log_tail(&path);
        std::fs::write(dir.join("empty.log"), "").expect("temp files");
        let empty = log_tail(&dir.join("empty.log"));
        std::fs::remove_dir_all(&dir).expect("temp files");
        assert_eq!(
            tail.as_deref(),
            Some("line 499 | connecting | error: refused: wrong run id")
        );
        assert_eq!(empty, None);
    }
}
