//! A soak's checkpoint: what a coordinator process that died (killed, OOM, its node gone)
//! leaves for the next one to continue the same run (`multinet run --resume RUN`).
//!
//! Written into the run's directory as `checkpoint.json` (atomically: a crash leaves the old
//! checkpoint or the new one) every [`every`] during the soak. It holds the run's identity,
//! clock and settings, the control plane's address (the agents dial it; the resumed
//! coordinator binds it again) and the PKI it serves with, the supervisor's record of the run
//! so far, the backend's (agent processes by pid and start time, the scheduled faults done),
//! the roster's per-agent batch ledgers and the whole path matrix. The agents keep probing
//! while the coordinator is away, keep their unacknowledged batches and resend them when they
//! reconnect; what an earlier coordinator process acknowledged after the checkpoint is counted
//! as lost, exactly ([`crate::roster::ledger`]), so `produced = recorded + lost + unaccounted`
//! holds across the restart.
//!
//! A resume must come within the agents' grace (`--agent-grace-seconds`): after it they exit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::AgentIdentity;
use serde::{Deserialize, Serialize};

use crate::backend::agents::ProcessRecord;
use crate::findings::AgentFate;
use crate::matrix::state::MatrixState;
use crate::pki::PkiState;
use crate::report::StageTiming;
use crate::roster::state::RosterState;
use crate::scheduler::NodePlan;

/// The checkpoint's file name in the run's directory.
pub const FILE: &str = "checkpoint.json";

/// The format's version; a checkpoint of another version is refused.
pub const VERSION: u32 = 1;

/// How often a soak writes its checkpoint: every report interval, at most every 30 s (a
/// crash loses at most that much of results, counted as lost).
pub fn every(report_interval: Duration) -> Duration {
    const AT_MOST: Duration = Duration::from_secs(30);
    if report_interval.is_zero() {
        AT_MOST
    } else {
        report_interval.min(AT_MOST)
    }
}

/// Everything a resumed run starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// The run.
    pub run_id: String,
    /// When it was written, ms since the run started.
    pub written_ms: u64,
    /// The run's start, Unix ms (its clock).
    pub started_unix_ms: u64,
    /// When probing began, ms since the run started (the soak's time counts from it).
    pub probing_began_ms: u64,
    /// The soak's length, ms (`None`: until stopped).
    pub soak_ms: Option<u64>,
    /// The run configuration, as `multinet config` writes it (read back through the same
    /// checks as a configuration file).
    pub config: serde_json::Value,
    /// How long agents outlive an unreachable coordinator, ms.
    pub agent_grace_ms: u64,
    /// Where the control plane listens.
    pub control: SocketAddr,
    /// The PKI it serves with.
    pub pki: PkiState,
    /// The backend's part.
    pub backend: BackendState,
    /// The supervisor's record.
    pub supervisor: SupervisorState,
    /// The roster.
    pub roster: RosterState,
    /// The path matrix.
    pub matrix: MatrixState,
    /// The coordinator's earlier restarts in this run.
    pub restarts: Vec<CoordinatorRestart>,
    /// The coordinator process that wrote it: a resume is refused while it still runs.
    #[serde(default)]
    pub coordinator: Option<crate::backend::agents::process::Adopted>,
}

/// One time the coordinator of a run was restarted from its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorRestart {
    /// The checkpoint it resumed from was written at, ms since the run started (the
    /// coordinator died after it).
    pub checkpoint_ms: u64,
    /// The new process took over at, ms since the run started.
    pub resumed_ms: u64,
}

/// The backend's part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "backend")]
pub enum BackendState {
    /// The emulated lab.
    Lab {
        /// The lab's name.
        lab: String,
        /// Whether the lab was up before the run (`--lab`): it stays up after.
        keep_lab: bool,
        /// Whether everything stays for a look after the run (`--keep`).
        keep_everything: bool,
        /// The agents' processes.
        agents: Vec<ProcessRecord>,
        /// Scheduled fault events (applications and removals, in time order) done.
        schedule_done: usize,
    },
    /// Agents on loopback.
    Local {
        /// The agents' processes.
        agents: Vec<ProcessRecord>,
    },
    /// A Kubernetes cluster: the coordinator Job's container, restarted by the kubelet in
    /// the same pod (same address, same emptyDir), resumes from it by itself.
    Kube(KubeState),
}

/// The Kubernetes backend's part of a checkpoint: which of the run's objects exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubeState {
    /// The agents' Secret and settings ConfigMap are created.
    pub shared_created: bool,
    /// Agent pods created, by name.
    pub created_pods: Vec<String>,
    /// Node types whose host-check DaemonSet was made.
    pub host_sets: BTreeSet<String>,
    /// Node types whose host-check DaemonSet the API server refused, and why.
    pub refused_sets: BTreeMap<String, String>,
    /// Agents whose end was told already.
    pub told: BTreeSet<String>,
    /// The coordinator pod's IP: without a [`KubeState::control_service`], the agents dial it,
    /// and a container restarted in a pod whose sandbox was made again (a new IP) cannot
    /// continue the run.
    #[serde(default)]
    pub pod_ip: Option<std::net::IpAddr>,
    /// The run's Service the agents dial instead of the pod's IP (a soak's coordinator Job):
    /// a pod that replaces the coordinator's, at another IP, can continue the run.
    #[serde(default)]
    pub control_service: Option<std::net::SocketAddr>,
}

/// The supervisor's record of the run so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisorState {
    /// Stages ended.
    pub stages: Vec<StageTiming>,
    /// Fates the backend reported.
    pub scheduler_fates: BTreeMap<String, AgentFate>,
    /// How agents' processes ended.
    pub exit_reasons: BTreeMap<String, String>,
    /// When each agent passed every network, ms since the start.
    pub passed_at: BTreeMap<String, u64>,
    /// Agents that had failed beyond doubt.
    pub failed_for_certain: BTreeSet<String>,
    /// Addresses the backend handed out.
    pub placed_addresses: BTreeMap<String, Vec<NetworkAddress>>,
    /// Every agent the run wants, the server first.
    pub plan: Vec<AgentIdentity>,
    /// The nodes.
    pub nodes: Vec<NodePlan>,
    /// The server's node.
    pub server_node: String,
    /// When the soak stage of the coordinator process that wrote the checkpoint began, ms
    /// since the run started.
    #[serde(default)]
    pub soak_began_ms: Option<u64>,
    /// Agents (pod names) that passed before a responder they probe listened anew and had not passed
    /// again when the probe stage ended: the report counts them not passed. (Absent from a
    /// checkpoint written before it was kept: nobody.)
    #[serde(default)]
    pub must_pass_again: BTreeSet<String>,
    /// Agents (pod names) stranded when the probe stage ended and not passed since, with the
    /// networks they were stranded on (`supervisor::decide`): the report's `not_validated`.
    /// (Absent from a checkpoint written before it was kept: nobody.)
    #[serde(default)]
    pub stranded: BTreeMap<String, Vec<multinet_proto::network::CephNetwork>>,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the file.
    #[error("{action} {}", .path.display())]
    Io {
        /// `reading` or `writing`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("{}: not a multinet checkpoint", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint of another format version.
    #[error("{}: checkpoint version {found}; this multinet reads version {VERSION}", .path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
}

impl Checkpoint {
    /// How far into its run the wall clock is now (from `started_unix_ms`).
    pub fn run_time(&self) -> Duration {
        Duration::from_millis(crate::supervisor::unix_ms_now().saturating_sub(self.started_unix_ms))
    }

    /// Writes the checkpoint into `run_dir`, atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn write(&self, run_dir: &Path) -> Result<(), Error> {
        let path = run_dir.join(FILE);
        let text = serde_json::to_string(self).map_err(|e| Error::Io {
            action: "writing",
            path: path.clone(),
            source: e.into(),
        })?;
        crate::report::write_atomically(&path, &text).map_err(|source| Error::Io {
            action: "writing",
            path,
            source,
        })
    }

    /// The checkpoint as JSON without the coordinator's key, gzipped: what a backend stores
    /// outside the run's directory ([`crate::scheduler::Scheduler::store_checkpoint`]), where
    /// the key has no place (the Kubernetes backend keeps it in a Secret of its own).
    pub fn gzip_without_key(mut self) -> Vec<u8> {
        use std::io::Write as _;
        self.pki.key.clear();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        // Serializing these types into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut encoder, &self);
        let _ = encoder.flush();
        encoder.finish().unwrap_or_default()
    }

    /// Reads the checkpoint at `path`.
    ///
    /// # Errors
    ///
    /// Unreadable ([`Error::Io`]), not JSON of this shape ([`Error::Format`]), another
    /// version ([`Error::Version`]).
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Reads a checkpoint from `text`; `path` names it in errors.
    ///
    /// # Errors
    ///
    /// Not JSON of this shape ([`Error::Format`]), another version ([`Error::Version`]).
    pub fn parse(text: &[u8], path: &Path) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let format = |source| Error::Format {
            path: path.to_path_buf(),
            source,
        };
        let Versioned { version } = serde_json::from_slice(text).map_err(format)?;
        if version != VERSION {
            return Err(Error::Version {
                path: path.to_path_buf(),
                found: version,
            });
        }
        serde_json::from_slice(text).map_err(format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed fuzz seed: a lab run's checkpoint, written before the supervisor kept
    /// who must pass again.
    const SEED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/seeds/checkpoint/lab-2-nodes.json"
    );

    /// A resumed run reports not passed whoever the first coordinator did: the agents still
    /// to pass again on a responder that listened anew are in the checkpoint and read back;
    /// an older checkpoint without them reads with nobody to pass again.
    #[test]
    fn a_checkpoint_keeps_who_must_pass_again_and_an_older_one_reads_with_nobody() {
        let text = std::fs::read(SEED).expect("the seed");
        assert!(
            !String::from_utf8_lossy(&text).contains("must_pass_again"),
            "the seed is a checkpoint from before the field"
        );
        let path = Path::new(SEED);
        let mut old = Checkpoint::parse(&text, path).expect("an older checkpoint reads");
        assert!(old.supervisor.must_pass_again.is_empty());

        old.supervisor.must_pass_again = ["client-n1".to_string(), "host-n2".to_string()].into();
        let written = serde_json::to_vec(&old).expect("encodes");
        let back = Checkpoint::parse(&written, path).expect("reads back");
        assert_eq!(
            back.supervisor.must_pass_again,
            ["client-n1".to_string(), "host-n2".to_string()].into()
        );
        assert_eq!(back.supervisor, old.supervisor);
    }

    /// So are the agents stranded when the probe stage ended (a resumed soak records their
    /// pass, or the report names what they left unvalidated); an older checkpoint reads with
    /// nobody stranded.
    #[test]
    fn a_checkpoint_keeps_who_is_stranded_and_an_older_one_reads_with_nobody() {
        use multinet_proto::network::CephNetwork;
        let text = std::fs::read(SEED).expect("the seed");
        assert!(!String::from_utf8_lossy(&text).contains("stranded"));
        let path = Path::new(SEED);
        let mut old = Checkpoint::parse(&text, path).expect("an older checkpoint reads");
        assert!(old.supervisor.stranded.is_empty());
        let stranded: BTreeMap<String, Vec<CephNetwork>> = BTreeMap::from([(
            "client-n1".to_string(),
            vec![CephNetwork::Public, CephNetwork::Cluster],
        )]);
        old.supervisor.stranded = stranded.clone();
        let written = serde_json::to_vec(&old).expect("encodes");
        let back = Checkpoint::parse(&written, path).expect("reads back");
        assert_eq!(back.supervisor.stranded, stranded);
    }
}
