//! A report as stored: the JSON document `multinet run -o json` writes, read back. Every format
//! (text, JUnit, HTML, JSON again) is rendered from a [`StoredReport`] — the one a run just made
//! as well as one read from a file (`multinet report show`), so both print the same.
//!
//! Reading is lenient on purpose: a key an older multinet did not write takes its default, a
//! key a newer one added is ignored, and the vocabularies that grow (finding kinds, failure
//! classes, agents' fates) are kept as the strings and objects they are. What each schema
//! version holds is in docs/report.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use multinet_proto::network::CephNetwork;
use multinet_proto::probe::ProbeKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ErrorReport, HostCheckers, Latency, NodeReport, ResultAccounting, RunReport};
use super::{SCHEMA_VERSION, StageTiming, Verdict};

/// Reports written before the schema was versioned (no `schema_version` key) are version 1.
pub const FIRST_SCHEMA_VERSION: u32 = 1;

pub(super) fn first_version() -> u32 {
    FIRST_SCHEMA_VERSION
}

fn yes() -> bool {
    true
}

/// A run report as stored. Field order is the JSON's (docs/report.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    /// The schema version it was written with; 1 when the key is absent.
    #[serde(default = "first_version")]
    pub schema_version: u32,
    /// pass, warn or fail.
    pub verdict: Verdict,
    /// An interim report of a soak still running (schema 3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// local, lab or kube.
    pub backend: String,
    /// False for the local backend.
    #[serde(default = "yes")]
    pub validates_real_network: bool,
    /// The run id.
    #[serde(default)]
    pub run_id: String,
    /// When the run started, RFC 3339 UTC (schema 3; empty before, and then not written).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started_at: String,
    /// Networks under test.
    #[serde(default)]
    pub networks: Vec<CephNetwork>,
    /// The nodes.
    #[serde(default)]
    pub nodes: Vec<NodeReport>,
    /// The server's node.
    #[serde(default)]
    pub server_node: String,
    /// Findings, failures first.
    #[serde(default)]
    pub findings: Vec<StoredFinding>,
    /// Every path.
    #[serde(default)]
    pub paths: Vec<StoredPath>,
    /// A soak's time buckets per node path (schema 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timelines: Vec<super::TimelineReport>,
    /// Clients the run planned.
    #[serde(default)]
    pub expected_clients: usize,
    /// Clients that started with their addresses.
    #[serde(default)]
    pub started_clients: usize,
    /// Clients that passed every network.
    #[serde(default)]
    pub passed_clients: usize,
    /// Host checkers planned and passed.
    #[serde(default)]
    pub host_checkers: HostCheckers,
    /// Agents the run expected to connect.
    #[serde(default)]
    pub expected_agents: usize,
    /// Agents that connected.
    #[serde(default)]
    pub connected_agents: usize,
    /// Peers refused by reason.
    #[serde(default)]
    pub refused_connections: BTreeMap<String, u64>,
    /// Result accounting.
    #[serde(default)]
    pub results: ResultAccounting,
    /// Stage timings.
    #[serde(default)]
    pub stages: Vec<StageTiming>,
    /// Wall time of the run, ms.
    #[serde(default)]
    pub duration_ms: u64,
    /// Every agent and what became of it, as written (`pod`, `node`, `role`, `fate`, …).
    #[serde(default)]
    pub agents: Vec<Value>,
    /// The agents that were away at some time (`pod`, `node`, `role`, `outages`, `away_ms`,
    /// `restarts`, `windows`), as written; absent when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_outages: Vec<Value>,
    /// The coordinator's restarts from its checkpoint (`checkpoint_at`, `resumed_at`,
    /// `checkpoint_ms`, `resumed_ms`), as written; absent when there was none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coordinator_restarts: Vec<Value>,
    /// A mesh run's node × node matrix per network (schema 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<super::MeshReport>,
}

/// A finding as stored: its kind and severity as their JSON strings (`inter_node_blocked`,
/// `fail`), so that kinds a newer multinet added still show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    /// `findings[].kind`.
    pub kind: String,
    /// `fail` or `warn`.
    pub severity: String,
    /// The network, when the finding is about one.
    #[serde(default)]
    pub network: Option<CephNetwork>,
    /// The nodes concerned.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// One sentence.
    #[serde(default)]
    pub summary: String,
    /// Counts, ratios, times.
    #[serde(default)]
    pub evidence: BTreeMap<String, Value>,
    /// What to check.
    #[serde(default)]
    pub suggestions: Vec<String>,
}

impl StoredFinding {
    /// Whether it fails the run (severity `fail`).
    pub fn fails(&self) -> bool {
        self.severity == "fail"
    }
}

/// One path as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPath {
    /// The client's node.
    pub source_node: String,
    /// The client.
    pub client: String,
    /// The network.
    pub network: CephNetwork,
    /// The server address.
    pub target: String,
    /// The responder's node (mesh runs, schema 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_node: Option<String>,
    /// The probe kind.
    pub kind: ProbeKind,
    /// Probes whose result arrived.
    pub sent: u64,
    /// Successes.
    pub ok: u64,
    /// Failures by class.
    #[serde(default)]
    pub failures: BTreeMap<String, u64>,
    /// Latency of successful probes, µs.
    #[serde(default)]
    pub latency_us: Latency,
    /// Up→down transitions.
    #[serde(default)]
    pub flaps: u64,
    /// Recent outage windows (ms).
    #[serde(default)]
    pub outages: Vec<StoredOutage>,
}

/// An outage window as stored: the run's clock from schema 3, each agent's own clock before.
pub type StoredOutage = super::PathOutage;

/// A stored report of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// A run that was carried out.
    Run(Box<StoredReport>),
    /// A run that could not be (verdict `error`).
    Error(ErrorReport),
}

impl StoredReport {
    /// The report a run just made, as its JSON reads back.
    ///
    /// # Errors
    ///
    /// Only if the report's own JSON does not read back (a bug; tested).
    pub fn of(report: &RunReport) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::to_value(super::Versioned::new(report))?)
    }
}

/// Reads a stored report from `text` (the contents of `path`, named in errors).
///
/// # Errors
///
/// Not JSON, not an object, or a key of the wrong shape: [`LoadError`] names the file, line
/// and column, and the key.
pub fn parse(text: &str, path: &Path) -> Result<Stored, LoadError> {
    let invalid = |source: serde_json::Error| LoadError::Invalid {
        path: path.to_path_buf(),
        source,
    };
    let value: Value = serde_json::from_str(text).map_err(invalid)?;
    let error_verdict = value.get("verdict").and_then(Value::as_str) == Some("error");
    if error_verdict {
        let report: ErrorReport = serde_json::from_value(value).map_err(invalid)?;
        Ok(Stored::Error(report))
    } else {
        let report: StoredReport = serde_json::from_value(value).map_err(invalid)?;
        Ok(Stored::Run(Box::new(report)))
    }
}

/// Reads the stored report in the file `path`.
///
/// # Errors
///
/// The file cannot be read, or [`parse`]'s errors.
pub fn load(path: &Path) -> Result<Stored, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

impl Stored {
    /// Its schema version.
    pub fn schema_version(&self) -> u32 {
        match self {
            Stored::Run(r) => r.schema_version,
            Stored::Error(r) => r.schema_version,
        }
    }

    /// Its verdict.
    pub fn verdict(&self) -> Verdict {
        match self {
            Stored::Run(r) => r.verdict,
            Stored::Error(r) => r.verdict,
        }
    }

    /// A warning to show when it was written by a newer multinet (keys it added are not
    /// shown), else `None`.
    pub fn newer_schema_warning(&self, path: &Path) -> Option<String> {
        let version = self.schema_version();
        (version > SCHEMA_VERSION).then(|| {
            format!(
                "{}: schema_version {version} is newer than this multinet's ({SCHEMA_VERSION}); keys it does not know are not shown",
                path.display()
            )
        })
    }
}

/// A stored report that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is no multinet report (JSON with `verdict` and `backend`; docs/report.md).
    #[error("{} is not a multinet JSON report (docs/report.md)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        #[source]
        source: serde_json::Error,
    },
}

impl crate::exit::Classify for LoadError {
    fn class(&self) -> crate::exit::Class {
        crate::exit::Class::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Format, render_stored};

    /// Real runs' reports (tests/fixtures/reports/README.md says how they were made).
    const PASS: &str = include_str!("../../../tests/fixtures/reports/lab-pass.json");
    const FAIL: &str = include_str!("../../../tests/fixtures/reports/lab-block-cluster.json");

    fn read(text: &str) -> StoredReport {
        match parse(text, Path::new("r.json")).expect("a report") {
            Stored::Run(r) => *r,
            Stored::Error(e) => panic!("an error report: {e:?}"),
        }
    }

    #[test]
    fn a_stored_report_reads_back_whole_every_key_in_its_order() {
        // Version 2 reports (before `started_at`, `timelines` and outage classes) read back as
        // they were written; a version 3 report reads back whole in
        // `a_report_just_made_reads_back_whole`.
        for text in [PASS, FAIL] {
            let report = read(text);
            assert_eq!(report.schema_version, 2);
            assert_eq!(render_stored(&report, Format::Json), text);
        }
        let fail = read(FAIL);
        assert_eq!(fail.verdict, Verdict::Fail);
        assert_eq!(fail.findings[0].kind, "inter_node_blocked");
        assert!(fail.findings[0].fails());
    }

    #[test]
    fn a_report_without_schema_version_is_version_1_and_reads_the_same() {
        let mut value: Value = serde_json::from_str(FAIL).expect("JSON");
        value
            .as_object_mut()
            .expect("object")
            .shift_remove("schema_version");
        let old = read(&value.to_string());
        assert_eq!(old.schema_version, FIRST_SCHEMA_VERSION);
        let new = read(FAIL);
        assert_eq!(
            render_stored(&old, Format::Text),
            render_stored(&new, Format::Text)
        );
        assert_eq!(
            Stored::Run(Box::new(old)).newer_schema_warning(Path::new("r.json")),
            None
        );
    }

    #[test]
    fn keys_a_newer_multinet_added_are_ignored_with_a_warning() {
        let mut value: Value = serde_json::from_str(PASS).expect("JSON");
        value["schema_version"] = 99.into();
        value["soak"] = serde_json::json!({"buckets": []});
        let stored = parse(&value.to_string(), Path::new("new.json")).expect("read");
        let warning = stored
            .newer_schema_warning(Path::new("new.json"))
            .expect("a warning");
        assert!(
            warning.starts_with("new.json: schema_version 99 is newer"),
            "{warning}"
        );
        assert!(stored.render(Format::Text).contains("— PASS"));
    }

    #[test]
    fn an_error_report_reads_back_as_one() {
        let text = ErrorReport::new("lab", "no plugin".into(), 5).render(Format::Json);
        let stored = parse(&text, Path::new("e.json")).expect("read");
        assert_eq!(stored.verdict(), Verdict::Error);
        assert_eq!(stored.render(Format::Json), text);
        let v1 = r#"{"verdict":"error","backend":"kube","error":"x","duration_ms":1}"#;
        assert_eq!(
            parse(v1, Path::new("e.json"))
                .expect("read")
                .schema_version(),
            FIRST_SCHEMA_VERSION
        );
    }

    #[test]
    fn what_is_no_report_is_said_with_the_file_and_the_key() {
        let e = parse(r#"{"backend": "lab"}"#, Path::new("x.json")).expect_err("no verdict");
        let said = crate::exit::chain(&e);
        assert!(
            said.starts_with("x.json is not a multinet JSON report")
                && said.contains("missing field `verdict`"),
            "{said}"
        );
        let e = parse("{", Path::new("x.json")).expect_err("not JSON");
        assert!(
            crate::exit::chain(&e).contains("line 1"),
            "{}",
            crate::exit::chain(&e)
        );
        assert_eq!(crate::exit::code(&e), crate::exit::INVALID);
    }
}
