//! What can go wrong on the Kubernetes backend, as one type: the API's answers (through
//! [`super::api_error`], so each reads once), the client's configuration, the run's own
//! objects, and the coordinator Job seen from outside the cluster.

use std::path::PathBuf;

use super::api_error::KubeError;
use super::cleanup::CleanupError;

/// Why the Kubernetes backend could not do what the run asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error(transparent)]
    Api(#[from] KubeError),
    /// An API call failed while doing `what` (e.g. `creating ConfigMap rook-ceph/multinet-…`).
    #[error("{what}")]
    Call {
        /// What was being done.
        what: String,
        /// The API's answer.
        #[source]
        source: KubeError,
    },
    /// A soak's checkpoint in the API cannot be read back whole
    /// ([`super::checkpoint_store`]).
    #[error("{object}: {why}")]
    Checkpoint {
        /// The object at fault (`ConfigMap <namespace>/<name>`).
        object: String,
        /// What is wrong with it.
        why: String,
    },
    /// Removing a run failed or did not finish in time.
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    /// The kubeconfig file could not be read.
    #[error("reading the kubeconfig {}", .path.display())]
    KubeconfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig was read but does not give a usable configuration (context, user, CA).
    #[error("the kubeconfig {}", .path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Running in a pod, but its service account's configuration is unusable.
    #[error("the in-cluster configuration (service account)")]
    InCluster(#[source] kube::config::InClusterError),
    /// Neither a kubeconfig nor a pod's service account was found.
    #[error(
        "no Kubernetes configuration: give --kubeconfig, set KUBECONFIG, or create ~/.kube/config"
    )]
    NoConfiguration,
    /// The client could not be made from the configuration (TLS material, proxy).
    #[error("connecting to the Kubernetes API")]
    Connect(#[source] kube::Error),
    /// The run's TLS material could not be made.
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    /// An object of the run could not be encoded (JSON or YAML).
    #[error("encoding {what}: {message}")]
    Encode {
        /// Which object.
        what: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// The run configuration is not valid for a run on a cluster (its problems, on one line).
    #[error("{0}")]
    Invalid(String),
    /// No node type has OSDs, so the server has no node.
    #[error("no node type has OSDs: nowhere to place the server")]
    NoServerNodeType,
    /// The run was asked to place a pod on a node the preflight did not find.
    #[error("node {0} is not one of the run's nodes")]
    UnknownNode(String),
    /// A client pod's name is not `client-<node>-<index>`.
    #[error("unexpected client name {0}")]
    UnexpectedClient(String),
    /// A server's name is neither `server` (the single-server run) nor `server-<its node>`
    /// (a mesh's responder), or a host checker was asked for as a pod.
    #[error("unexpected server name {pod} on node {node}: expected server or server-{node}")]
    UnexpectedServer {
        /// The agent's name.
        pod: String,
        /// The node it was planned on.
        node: String,
    },
    /// The control plane's UDP port could not be bound in the coordinator's pod.
    #[error("binding the control plane's UDP port {port}")]
    Socket {
        /// The port.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run's report ConfigMap lacks the report in the format asked for.
    #[error("the run's report ConfigMap has no {key}")]
    ReportMissing {
        /// The key (`report.json`, …).
        key: &'static str,
    },
    /// The gzipped report in the run's report ConfigMap cannot be read.
    #[error("{key}.gz in the run's report ConfigMap")]
    ReportUnreadable {
        /// The key.
        key: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The coordinator Job ended without storing its report.
    #[error(
        "the coordinator Job ended without storing its report in ConfigMap {namespace}/{name}: see its log above"
    )]
    ReportNotStored {
        /// The namespace.
        namespace: String,
        /// The report ConfigMap's name.
        name: String,
    },
    /// The watch on the coordinator's pod ended (the API server closed it for good).
    #[error("the watch on the coordinator's pod ended")]
    WatchEnded,
    /// The coordinator Job's pod did not start within the run's `resourceTimeout`.
    #[error(
        "the coordinator Job {namespace}/{job} did not start its pod within {seconds}s (the run's resourceTimeout); it was waiting: {waiting}"
    )]
    JobNotStarted {
        /// The namespace.
        namespace: String,
        /// The Job.
        job: String,
        /// The resource timeout, s.
        seconds: f64,
        /// What the pod waited on, in one line.
        waiting: String,
    },
    /// The coordinator's pod cannot start, and will not by waiting (unschedulable, image, …).
    #[error("the coordinator pod {pod} {why}")]
    CoordinatorPod {
        /// The pod.
        pod: String,
        /// What keeps it from starting (`cannot be scheduled: …`, `cannot pull image …`).
        why: String,
    },
    /// The Job controller cannot create the coordinator's pod (service account, admission,
    /// quota).
    #[error("Kubernetes cannot create the pod of Job {job}: {message}")]
    JobPodRefused {
        /// The Job.
        job: String,
        /// The event's message.
        message: String,
    },
    /// The coordinator's pod did not end within the run's deadline.
    #[error("the coordinator pod {0} did not end within the run's deadline")]
    CoordinatorDeadline(String),
}

impl Error {
    /// [`Error::Call`]: `source` while doing `what`.
    pub fn call(what: impl Into<String>) -> impl FnOnce(KubeError) -> Self {
        let what = what.into();
        move |source| Error::Call { what, source }
    }

    /// [`Error::Encode`] of `what`.
    pub fn encode<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |e| Error::Encode {
            what,
            message: e.to_string(),
        }
    }
}

/// The result of a Kubernetes backend operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
