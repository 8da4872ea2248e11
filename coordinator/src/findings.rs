//! Findings: the path matrix and the scheduling facts turned into statements a person can act
//! on. Each names its network and nodes, carries evidence (counts, ratios, times) and
//! suggestions for whoever must fix the network. Pure: no I/O, unit-tested on synthetic
//! matrices.

mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use multinet_proto::assignment::NetworkAddress;
use multinet_proto::control::{AgentIdentity, EgressReport, Role};
use multinet_proto::network::CephNetwork;
use serde::Serialize;
use serde_json::Value;

use crate::matrix::PathMatrix;

pub(crate) use rules::duplicate_address_suggestions;
pub use rules::{
    CellOutage, CellReport, CellState, CellWindow, MeshFacts, MeshNetwork, derive, mesh_matrix,
};

/// What a finding is about: the `findings[].kind` vocabulary of docs/report.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Pods could not get an address on a network.
    AddressUnavailable,
    /// Clients on the server's node pass, clients elsewhere fail; in a mesh, traffic between
    /// two nodes (or between any nodes) is blocked.
    InterNodeBlocked,
    /// One node's clients fail while other nodes' pass; in a mesh, also a node cut off from
    /// every other node.
    NodeUnreachable,
    /// Small probes pass, large ones fail.
    MtuBlackhole,
    /// A path alternates or succeeds too rarely.
    Flaky,
    /// A host checker cannot reach the server's public address (a mesh's responders').
    HostUnreachable,
    /// HTTP passes and HTTPS fails.
    TlsFailure,
    /// An agent stopped reporting.
    AgentLost,
    /// The server (a mesh's responder) never got its addresses or never became reachable.
    ServerUnavailable,
    /// Expected pods could not be scheduled or started.
    Scheduling,
    /// Two agents hold the same address on one network.
    DuplicateAddress,
    /// An agent's probes on a network left by another interface than the network's (not
    /// counted).
    WrongEgress,
    /// In a soak: a node's paths on a network were down for a while (outage windows); in a
    /// mesh soak, the node's toward every responder, or one pair's (client node, responder
    /// node: `nodes` has both, `evidence.pair`).
    Outage,
    /// An agent was away from the run for a while (its connection gone, its process killed
    /// or restarted): its paths were not measured, which is no network outage.
    AgentOutage,
    /// In a mesh, a network left unvalidated from a node: every responder its agents probe
    /// there was gone, so they had nothing to pass on.
    NotValidated,
}

/// How much a finding weighs in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The run passes with it, as `warn`.
    Warn,
    /// The run fails.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// Weight in the verdict.
    pub severity: Severity,
    /// The network, when the finding is about one.
    pub network: Option<CephNetwork>,
    /// The nodes concerned.
    pub nodes: Vec<String>,
    /// One sentence.
    pub summary: String,
    /// Counts, ratios, times.
    pub evidence: BTreeMap<String, Value>,
    /// What to check, for whoever must fix it.
    pub suggestions: Vec<String>,
}

/// The reason of a planned pod the run never started because the server (in a mesh, the
/// responders) never became ready. While the server or a responder is not reporting, the
/// finding about it explains these pods, and the `scheduling` rule leaves them out (they stay
/// in the report's `agents[]`); when every one reports in the end (ready too late), they are
/// a `scheduling` finding with this reason.
pub const NOT_STARTED_FOR_THE_SERVER: &str =
    "not started: the server (in a mesh, the responders) never became ready";

/// What happened to an agent, as the supervisor saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AgentFate {
    /// Connected and reporting to the end.
    Reported,
    /// Never connected.
    NeverConnected,
    /// Connected, then stopped reporting and did not come back.
    Lost {
        /// Milliseconds since the run started.
        at_ms: u64,
    },
    /// Could not get an address on a network.
    NoAddress {
        /// The network.
        network: CephNetwork,
        /// The reason as the backend got it (CNI error, event text).
        reason: String,
    },
    /// Could not be scheduled or started.
    NotStarted {
        /// The reason.
        reason: String,
    },
    /// The agent could not set itself up.
    Failed {
        /// Its reason.
        reason: String,
    },
}

/// An agent the run placed, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFact {
    /// Who it is.
    pub identity: AgentIdentity,
    /// What happened to it.
    pub fate: AgentFate,
    /// Milliseconds since the run started when it passed every network (clients and host
    /// checkers), if it did.
    pub passed_at_ms: Option<u64>,
    /// How its process or pod ended, when the backend saw it end before the run did (exit
    /// status and the last lines it logged).
    pub exit: Option<String>,
    /// Its addresses on the networks it is attached to: as it said them when it connected,
    /// else as the backend handed them out; empty when neither is known (and for host
    /// checkers, which use the node's own).
    pub addresses: Vec<NetworkAddress>,
    /// Where its probes left from, as it reported (None: it never said).
    pub egress: Option<EgressReport>,
}

/// An [`AgentFact`] as the report's `agents` entries have it: the identity's fields first, in
/// this order (the identity's own order is its wire format's), `exit` only when known.
#[derive(Serialize)]
struct AgentFactReport<'a> {
    pod: &'a str,
    node: &'a str,
    role: Role,
    networks: &'a [CephNetwork],
    fate: &'a AgentFate,
    passed_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<&'a str>,
    addresses: &'a [NetworkAddress],
    #[serde(skip_serializing_if = "Option::is_none")]
    egress: Option<&'a EgressReport>,
}

impl Serialize for AgentFact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AgentFactReport {
            pod: &self.identity.pod,
            node: &self.identity.node,
            role: self.identity.role,
            networks: &self.identity.networks,
            fate: &self.fate,
            passed_at_ms: self.passed_at_ms,
            exit: self.exit.as_deref(),
            addresses: &self.addresses,
            egress: self.egress.as_ref(),
        }
        .serialize(serializer)
    }
}

/// Everything the findings engine reads besides the matrix.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// The networks under test.
    pub networks: Vec<CephNetwork>,
    /// The node the server runs on.
    pub server_node: String,
    /// All nodes, in order.
    pub nodes: Vec<String>,
    /// The server agent.
    pub server: AgentFact,
    /// Clients and host checkers.
    pub agents: Vec<AgentFact>,
    /// Consecutive successes a client needs on every probe kind of a network to pass it.
    pub success_threshold: u64,
    /// Rook's flaky threshold, milliseconds.
    pub flaky_threshold_ms: u64,
    /// Whether the agents' control network carries nothing but control traffic (the lab's):
    /// then a host checker's probes leaving by its control interface took a path that is not
    /// the one under test. On a cluster the host's route to the pod network and to the
    /// public network may share an interface legitimately, so there it is not judged.
    pub control_network_isolated: bool,
    /// For a soak, the shortest outage window in ms (two probe intervals and a probe
    /// timeout: a single failed probe's window is loss, not an outage); `None` for a run
    /// without soak.
    pub soak_min_outage_ms: Option<u64>,
    /// When the run started, Unix ms (UTC): the run's clock (every `_ms` time of a finding)
    /// counts from here.
    pub started_unix_ms: u64,
    /// The agents that were away from the run at some time (agent outages), server first.
    pub agent_outages: Vec<AgentOutages>,
    /// A mesh run's responders and which nodes probe which ([`crate::mesh`]); `None` for
    /// the single server. In a mesh, `server` is the responder on `server_node` and the other
    /// responders are among `agents`.
    pub mesh: Option<MeshFacts>,
    /// A mesh's agents (pod names) stranded when the probe stage ended — every responder
    /// they probe on these networks gone for `flakyThreshold` — and not passed since
    /// (`supervisor::decide`); empty otherwise.
    pub stranded: BTreeMap<String, Vec<CephNetwork>>,
}

/// `started_unix_ms + ms` as an RFC 3339 UTC timestamp with milliseconds
/// (`2026-11-30T18:30:00.123Z`).
pub fn utc(started_unix_ms: u64, ms: u64) -> String {
    let at = i64::try_from(started_unix_ms.saturating_add(ms)).unwrap_or(i64::MAX);
    match k8s_openapi::jiff::Timestamp::from_millisecond(at) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => String::new(),
    }
}

/// The times one agent was away from the run: the report's `agent_outages[]` entry and what
/// the `agent_outage` finding reads. Times are ms since the run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOutages {
    /// Who.
    pub identity: AgentIdentity,
    /// Its absences ([`crate::roster::absences`]): counts and the windows kept.
    pub absences: crate::roster::absences::Absences,
    /// The end of the run on the same clock: an absence still open lasted until then.
    pub end_ms: u64,
}

impl AgentOutages {
    /// The windows to show (the most recent and the longest), an open one ending at
    /// [`Self::end_ms`].
    pub fn windows(&self) -> Vec<AgentOutageWindow> {
        self.absences
            .windows()
            .into_iter()
            .map(|a| AgentOutageWindow {
                from_ms: a.from_ms,
                to_ms: a.to_ms.unwrap_or(self.end_ms).max(a.from_ms),
                duration_ms: a.duration_ms(self.end_ms),
                ongoing: a.to_ms.is_none(),
                returned: a.returned,
            })
            .collect()
    }

    /// Time away in all, ms.
    pub fn away_ms(&self) -> u64 {
        self.absences.away_ms(self.end_ms)
    }
}

/// One window of an [`AgentOutages`], as the report has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AgentOutageWindow {
    /// When its connection went, ms since the run started.
    pub from_ms: u64,
    /// When it said Hello again, or the end of the run when `ongoing`.
    pub to_ms: u64,
    /// `to_ms - from_ms`.
    pub duration_ms: u64,
    /// Still away at the end of the run.
    pub ongoing: bool,
    /// How it came back: `reconnected` (the same process), `restarted` (a new one); null
    /// while `ongoing`.
    pub returned: Option<crate::roster::absences::Return>,
}

/// An [`AgentOutages`] as the report's `agent_outages[]` entries have it.
#[derive(Serialize)]
struct AgentOutagesReport<'a> {
    pod: &'a str,
    node: &'a str,
    role: Role,
    outages: u64,
    away_ms: u64,
    restarts: u64,
    windows: Vec<AgentOutageWindow>,
}

impl Serialize for AgentOutages {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AgentOutagesReport {
            pod: &self.identity.pod,
            node: &self.identity.node,
            role: self.identity.role,
            outages: self.absences.count,
            away_ms: self.away_ms(),
            restarts: self.absences.restarts,
            windows: self.windows(),
        }
        .serialize(serializer)
    }
}

/// Findings sorted by severity (fail first), kind, network, nodes.
pub fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.network.cmp(&b.network))
            .then(a.nodes.cmp(&b.nodes))
    });
    findings
}

/// Convenience for the engine's users: the matrix and facts in, sorted findings out.
pub fn evaluate(matrix: &PathMatrix, facts: &RunFacts) -> Vec<Finding> {
    sorted(derive(matrix, facts))
}
