//! The `Scheduler` trait: what a backend (local processes, the lab, Kubernetes) does for a
//! run. The supervisor plans which pods go where; a scheduler places them, learns their
//! addresses, reports pod-level facts (no address, never started, exited, with the reason
//! text), and cleans up — idempotently, so it can run again after a crash or a signal.

use std::net::SocketAddr;
use std::path::PathBuf;

use multinet_proto::assignment::{NetworkAddress, ProbeSettings};
use multinet_proto::config::RunConfig;
use multinet_proto::control::AgentIdentity;
use multinet_proto::network::CephNetwork;

use crate::pki::RunPki;

/// A node of the (real or simulated) cluster, with the node type it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodePlan {
    /// Node name.
    pub name: String,
    /// Node type from the run configuration.
    pub node_type: String,
}

/// What every agent of the run shares.
#[derive(Debug)]
pub struct AgentEnv<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Where agents reach the control plane.
    pub coordinator: SocketAddr,
    /// Probe settings.
    pub probe: ProbeSettings,
    /// How long an agent outlives an unreachable coordinator, ms.
    pub grace_ms: u64,
    /// The run PKI, to issue agent certificates.
    pub pki: &'a RunPki,
    /// A directory private to the run (certificates, assignments, agent logs).
    pub run_dir: &'a PathBuf,
}

/// What became of a pod the scheduler was asked to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodStatus {
    /// Running with these addresses.
    Started(Vec<NetworkAddress>),
    /// Could not get an address on a network.
    NoAddress {
        /// The network.
        network: CephNetwork,
        /// The backend's reason (CNI error text, event message).
        reason: String,
    },
    /// Could not be scheduled or started.
    NotStarted {
        /// The reason.
        reason: String,
    },
}

/// A backend.
#[allow(async_fn_in_trait)] // used with concrete types only; no `dyn`, no Send bound needed
pub trait Scheduler {
    /// Why the backend could not do what it was asked (its own error type; the supervisor
    /// carries it as the run's cause).
    type Error: std::error::Error + Send + Sync + 'static;

    /// `local`, `lab` or `kube`, for the report.
    fn backend(&self) -> &'static str;

    /// Whether a pass means anything about a real network (false for `local`).
    fn validates_real_network(&self) -> bool;

    /// The UDP socket of the coordinator's control plane, bound where agents can reach it
    /// (loopback, the lab's control namespace, the pod network).
    fn control_socket(&self) -> Result<std::net::UdpSocket, Self::Error>;

    /// Where the run's private directory goes (certificates, assignments, agent logs).
    fn run_root(&self) -> PathBuf {
        std::env::temp_dir()
    }

    /// The run id, when the backend chose it (its objects carry it); otherwise the
    /// supervisor makes one.
    fn run_id(&self) -> Option<String> {
        None
    }

    /// A node the server must run on, when the backend's topology names one; otherwise the
    /// placement rule decides.
    fn server_node(&self) -> Option<String> {
        None
    }

    /// The nodes, each with its node type (placement by node selector and tolerations).
    async fn nodes(&mut self, config: &RunConfig) -> Result<Vec<NodePlan>, Self::Error>;

    /// Starts the pod of agent `pod` on its node and learns its addresses (on
    /// [`AgentIdentity::attached_networks`]).
    async fn start(
        &mut self,
        pod: &AgentIdentity,
        env: &AgentEnv<'_>,
    ) -> Result<PodStatus, Self::Error>;

    /// Starts every pod of `pods` (as [`Self::start`] does one) and returns what became of
    /// each, in `pods`' order. How many at once is the backend's to say: this default starts
    /// them one after another (the local backend: spawning a process is quick); the lab places
    /// pods of different nodes in parallel, the kube backend creates several pods at once.
    /// An `Err` ends the run; whatever was started before it is still removed by
    /// [`Self::cleanup`].
    async fn start_all(
        &mut self,
        pods: &[AgentIdentity],
        env: &AgentEnv<'_>,
    ) -> Result<Vec<PodStatus>, Self::Error> {
        let mut statuses = Vec::with_capacity(pods.len());
        for pod in pods {
            statuses.push(self.start(pod, env).await?);
        }
        Ok(statuses)
    }

    /// Pods that have exited since the last call, with the reason.
    async fn exited(&mut self) -> Vec<(String, String)>;

    /// Probing has begun: every pod is placed and the agents were told their targets. A
    /// backend with something timed from then starts it (the lab's scheduled faults, whose
    /// `at` counts from here). Default: nothing.
    async fn probing_began(&mut self) {}

    /// What became of pods after [`Self::start`] returned, when the backend learns it later
    /// (a cluster: the pod stays ContainerCreating because IPAM failed, or is unschedulable).
    /// Each pod at most once.
    async fn facts(&mut self) -> Vec<(String, PodStatus)> {
        Vec::new()
    }

    /// Why each of `agents` — agents that never connected — did not start, where the backend
    /// can tell (a cluster: the pod's container never ran; it stayed Pending, with the
    /// reason it waited on). An agent whose process ran is left out: it started, and never
    /// reached the coordinator. Asked once, as the run ends.
    async fn never_started(&mut self, agents: &[String]) -> Vec<(String, PodStatus)> {
        let _ = agents;
        Vec::new()
    }

    /// The backend's part of a soak's checkpoint ([`crate::checkpoint`]); `None`: this
    /// backend cannot resume a run (no checkpoint is written).
    fn checkpoint(&self) -> Option<crate::checkpoint::BackendState> {
        None
    }

    /// Whether a soak's checkpoint is also stored outside the run's directory
    /// ([`Scheduler::store_checkpoint`]): the Kubernetes backend keeps it in the API, for a
    /// pod that replaces the coordinator's.
    fn stores_checkpoint(&self) -> bool {
        false
    }

    /// Stores a soak's checkpoint outside the run's directory: `gzipped` is the checkpoint's
    /// JSON without the coordinator's key, gzipped, written `written_ms` into the run. What
    /// it holds is acknowledged to the agents as durable only once this returns `Ok`.
    async fn store_checkpoint(
        &mut self,
        gzipped: Vec<u8>,
        written_ms: u64,
    ) -> Result<(), Self::Error> {
        let _ = (gzipped, written_ms);
        Ok(())
    }

    /// Removes the checkpoint stored outside the run's directory, before the agents are told
    /// to stop: a coordinator started from it after that would find them gone and call every
    /// one lost.
    async fn forget_checkpoint(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Stops everything the run started and removes what it created. Idempotent.
    async fn cleanup(&mut self) -> Result<(), Self::Error>;
}
