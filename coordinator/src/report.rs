//! The run report: what `multinet run` prints (text), writes for programs (JSON), for CI
//! dashboards (JUnit XML) and for people to look at (one self-contained HTML page). The JSON
//! schema is documented in docs/report.md and versioned ([`SCHEMA_VERSION`]); the JSON is the
//! source of truth: every other format is rendered from it as it reads back
//! ([`stored::StoredReport`]), so `multinet report show` prints a stored report as the run did.
//! [`Format`] is the one list of formats; [`render`] and [`write`] the one way to produce and
//! deliver them. Knows nothing of the command line.
//!
//! * [`stored`] — a report read back from its JSON. [`text`], [`junit`], [`html`] — renderers.
//! * [`compare`] — two stored reports: what changed, and whether it is a regression.

pub mod compare;
mod drift;
mod html;
mod junit;
pub mod stored;
mod text;

use std::collections::BTreeMap;

use multinet_proto::network::CephNetwork;
use multinet_proto::probe::ProbeKind;
use serde::{Deserialize, Serialize};

use crate::findings::{AgentFact, Finding, Severity};
use crate::matrix::{Outage, PathMatrix};

pub use html::render as html;
pub use junit::render as junit;
pub use stored::{Stored, StoredReport};
pub use text::render as text;

/// The report schema's version, the JSON's `schema_version`. 1: reports written before the key
/// existed (read as if they had it); 2: `schema_version` added, nothing else changed. What is
/// read from each is in docs/report.md; 3: `started_at`, `in_progress`, `timelines`, outage
/// windows on the run's clock with their dominant class; 4: `mesh` and `paths[].target_node`
/// (mesh runs); 5: a mesh soak's `mesh.networks[].cells[].outage` and its pairs' `outage`
/// findings.
pub const SCHEMA_VERSION: u32 = 5;

/// A run report as its JSON is written: `schema_version` first.
#[derive(Serialize)]
struct Versioned<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a RunReport,
}

impl<'a> Versioned<'a> {
    fn new(report: &'a RunReport) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            report,
        }
    }
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// For programs (schema in docs/report.md).
    Json,
    /// JUnit XML for CI dashboards.
    Junit,
    /// YAML (a dry run's objects; a report as YAML otherwise).
    Yaml,
    /// One self-contained HTML page (inline CSS and SVG; nothing loaded from elsewhere).
    Html,
}

impl Format {
    /// Its name on the command line (`-o NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Junit => "junit",
            Self::Yaml => "yaml",
            Self::Html => "html",
        }
    }

    /// The format a report file's name asks for, by its extension (case ignored): `.json`,
    /// `.xml` (JUnit), `.html`/`.htm`, `.txt`; `None` for any other (YAML too: on `run` it
    /// means a dry run's objects, which is asked for with `-o yaml` only).
    pub fn of_file(path: &std::path::Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "json" => Self::Json,
            "xml" => Self::Junit,
            "html" | "htm" => Self::Html,
            "txt" => Self::Text,
            _ => return None,
        })
    }

    /// The file name a stored report of this format has (`report.json`).
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Json => "report.json",
            Self::Junit => "report.xml",
            Self::Yaml => "report.yaml",
            Self::Text => "report.txt",
            Self::Html => "report.html",
        }
    }
}

/// Where a text report goes when it goes to a terminal: in colour or not, and the terminal's
/// width (columns), which its wide tables are made to fit. [`Terminal::PLAIN`] (not a
/// terminal: piped, a file) has neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terminal {
    /// ANSI colour: the verdict, findings' severity, matrix cells with failures.
    pub colour: bool,
    /// The terminal's width in columns; `None`: tables as wide as they are.
    pub width: Option<usize>,
}

impl Terminal {
    /// Plain text, tables as wide as they are.
    pub const PLAIN: Terminal = Terminal {
        colour: false,
        width: None,
    };
}

/// The report in `format`: JSON and YAML as written (with [`SCHEMA_VERSION`]); the others
/// rendered from that JSON read back, as `multinet report show` renders a stored one.
pub fn render(report: &RunReport, format: Format) -> String {
    render_styled(report, format, Terminal::PLAIN)
}

/// [`render`], the text format styled for `terminal` (colour, tables that fit its width); the
/// other formats never are.
pub fn render_styled(report: &RunReport, format: Format, terminal: Terminal) -> String {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(&Versioned::new(report)).unwrap_or_default() + "\n"
        }
        Format::Yaml => serde_saphyr::to_string(&Versioned::new(report)).unwrap_or_default(),
        Format::Text | Format::Junit | Format::Html => match StoredReport::of(report) {
            Ok(stored) if format == Format::Text => text::render_with(&stored, terminal),
            Ok(stored) => render_stored(&stored, format),
            // Never seen: `StoredReport` reads every report a run writes (tested).
            Err(e) => format!("multinet: the run's report does not read back from its JSON: {e}\n"),
        },
    }
}

/// A stored report in `format`.
pub fn render_stored(report: &StoredReport, format: Format) -> String {
    match format {
        Format::Text => text(report),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Junit => junit(report),
        Format::Html => html(report),
        Format::Yaml => serde_saphyr::to_string(report).unwrap_or_default(),
    }
}

impl Stored {
    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        self.render_styled(format, Terminal::PLAIN)
    }

    /// [`Stored::render`], text styled for `terminal` ([`render_styled`]).
    pub fn render_styled(&self, format: Format, terminal: Terminal) -> String {
        match self {
            Stored::Run(report) if format == Format::Text => text::render_with(report, terminal),
            Stored::Run(report) => render_stored(report, format),
            Stored::Error(report) => report.render(format),
        }
    }
}

/// Writes a rendered report to `to`, or to standard output when `None`. A file is replaced
/// atomically: written whole to a temporary file beside it, flushed, then renamed over it, so
/// a reader (or a crash) sees the previous report or the new one, never half of one.
///
/// # Errors
///
/// The file cannot be written (the error names it).
pub fn write(rendered: &str, to: Option<&std::path::Path>) -> Result<(), WriteError> {
    match to {
        Some(path) => write_atomically(path, rendered).map_err(|source| WriteError {
            path: path.to_path_buf(),
            source,
        }),
        None => {
            crate::out!("{rendered}");
            Ok(())
        }
    }
}

/// Writes `text` to `path` as one step for its readers: a temporary file beside it, synced,
/// renamed over it (a crash leaves the old file or the new one, never part of one).
pub(crate) fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = beside(path, "tmp")?;
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `.NAME.TAG-PID` beside `path` (NAME its file name): a file of this process's own.
fn beside(path: &std::path::Path, tag: &str) -> std::io::Result<std::path::PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{tag}-{}", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

/// Checks, before anything is measured, that a report can be written to `path` when the work
/// ends: a directory at `path` is refused, and a file is created beside it and removed (as
/// [`write`]'s temporary file will be), so a missing or read-only directory is found now —
/// not after minutes of measurements that could then only be lost.
///
/// # Errors
///
/// [`WriteError`] naming `path`: no file name, a directory, or the file beside it could not be
/// created (the OS's reason as its source).
pub fn check_destination(path: &std::path::Path) -> Result<(), WriteError> {
    let error = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(error(std::io::Error::other("it is a directory")));
    }
    let probe = beside(path, "check").map_err(error)?;
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
    };
    // One left by an earlier process killed mid-check whose PID was this one's: ours now.
    if let Err(e) = create() {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(error(e));
        }
        let _ = std::fs::remove_file(&probe);
        create().map_err(error)?;
    }
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// pass, warn, fail — or error, for a run that could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every client passed and nothing is wrong.
    Pass,
    /// Every client passed, with findings (such as flaky paths).
    Warn,
    /// Something is broken.
    Fail,
    /// The run could not be carried out (an [`ErrorReport`]): nothing is known of the network.
    Error,
}

impl Verdict {
    /// Rook's exit codes: 0 pass, 1 fail or pass with findings; multinet's 69 for a run that
    /// could not be carried out ([`crate::exit::ERROR`]).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => crate::exit::SUCCESS,
            Verdict::Warn | Verdict::Fail => crate::exit::FAILURE,
            Verdict::Error => crate::exit::ERROR,
        }
    }

    /// From the findings and whether every client passed.
    pub fn decide(findings: &[Finding], all_passed: bool) -> Self {
        if !all_passed || findings.iter().any(|f| f.severity == Severity::Fail) {
            Verdict::Fail
        } else if findings.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn
        }
    }
}

/// The report of a run that could not be carried out (the lab could not be built, a backend
/// failed or refused the run): verdict `error` and why, so that automation reading `--report`
/// tells it from a network that failed (exit code [`crate::exit::ERROR`]). Schema in
/// docs/report.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// [`SCHEMA_VERSION`] when written; read as 1 when absent.
    #[serde(default = "stored::first_version")]
    pub schema_version: u32,
    /// Always [`Verdict::Error`].
    pub verdict: Verdict,
    /// local, lab or kube.
    pub backend: String,
    /// What went wrong and its causes, on one line (`what: why: root cause`).
    pub error: String,
    /// From the start of the command to the error, ms.
    pub duration_ms: u64,
}

impl ErrorReport {
    /// The report of a run on `backend` that ended with `error` after `duration_ms`.
    pub fn new(backend: &str, error: String, duration_ms: u64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            verdict: Verdict::Error,
            backend: backend.into(),
            error,
            duration_ms,
        }
    }

    /// The report in `format`: JSON and YAML as the object; text as a line a person reads;
    /// JUnit XML as one test case in error (JUnit's `<error>`: the test could not run, as
    /// against a `<failure>`).
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Yaml => serde_saphyr::to_string(self).unwrap_or_default(),
            Format::Text => format!(
                "multinet validation run — ERROR (the run could not be carried out; nothing is known of the network)\nbackend: {}\nerror: {}\n",
                self.backend, self.error
            ),
            Format::Junit => junit::render_error(self),
            Format::Html => html::render_error(self),
        }
    }
}

/// Latency percentiles of a path, microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Median.
    pub p50: Option<u32>,
    /// 90th percentile.
    pub p90: Option<u32>,
    /// 99th percentile.
    pub p99: Option<u32>,
    /// Largest.
    pub max: Option<u32>,
}

/// One path in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    /// The client's node.
    pub source_node: String,
    /// The client.
    pub client: String,
    /// The network.
    pub network: CephNetwork,
    /// The server address.
    pub target: String,
    /// The node of the responder at `target` (a mesh run's; absent for the single server,
    /// which is on `server_node`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node: Option<String>,
    /// The probe kind.
    pub kind: ProbeKind,
    /// Probes whose result arrived.
    pub sent: u64,
    /// Successes.
    pub ok: u64,
    /// Failures by class.
    pub failures: BTreeMap<String, u64>,
    /// Latency of successful probes, µs.
    pub latency_us: Latency,
    /// Up→down transitions.
    pub flaps: u64,
    /// Recent outage windows (run clock, ms).
    pub outages: Vec<PathOutage>,
}

/// A path's outage window in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathOutage {
    /// The first failed probe, ms since the run started.
    pub from_ms: u64,
    /// The probe that succeeded again (`None`: still down at the end).
    pub to_ms: Option<u64>,
    /// The failure class most of its failed probes had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

impl From<&Outage> for PathOutage {
    fn from(o: &Outage) -> Self {
        Self {
            from_ms: o.from_ms,
            to_ms: o.to_ms,
            class: o.failures.dominant().map(|c| c.to_string()),
        }
    }
}

/// One node path's time buckets (every client of the node together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineReport {
    /// The clients' node.
    pub source_node: String,
    /// The network.
    pub network: CephNetwork,
    /// The server address.
    pub target: String,
    /// The probe kind.
    pub kind: ProbeKind,
    /// Every bucket's width, ms; bucket `i` starts `i × bucket_ms` into the run.
    pub bucket_ms: u64,
    /// The buckets, from the run's start to the last one with a probe.
    pub buckets: Vec<TimeBucket>,
}

/// One time bucket of a [`TimelineReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeBucket {
    /// Probes started in it whose result arrived.
    pub probes: u64,
    /// Of those, successes.
    pub ok: u64,
    /// Latency of the successes, µs (bucket upper bounds, as `paths[].latency_us`).
    pub latency_us: Latency,
}

/// Host checkers planned and passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HostCheckers {
    /// One per node when the public network is tested.
    pub expected: usize,
    /// Those that reached the server's public address consistently.
    pub passed: usize,
}

/// A node in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Name.
    pub name: String,
    /// Node type.
    pub node_type: String,
    /// Whether the server runs here.
    pub server: bool,
}

/// One stage's timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    /// Stage name.
    pub name: String,
    /// How long it took, ms.
    pub duration_ms: u64,
    /// `done`, `decided` (the early verdict), `deadline` or `server lost`.
    pub outcome: String,
}

/// Result accounting: nothing is silently lost. `produced` = `recorded` + `lost` +
/// `unaccounted`; `unaccounted` is what agents produced but never delivered (an agent killed
/// with results in flight).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResultAccounting {
    /// Results the agents produced, by their own count.
    pub produced: u64,
    /// Produced results that neither arrived nor were reported dropped.
    pub unaccounted: u64,
    /// Probe results recorded in the matrix.
    pub recorded: u64,
    /// Results agents reported as dropped from their resend buffers.
    pub lost: u64,
    /// Batches received twice (resent after a reconnect) and counted once.
    pub duplicate_batches: u64,
    /// Batches missing from agents' sequences.
    pub sequence_gaps: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// pass, warn or fail.
    pub verdict: Verdict,
    /// A soak's interim report, rewritten while the run goes on: the verdict is as of
    /// `duration_ms` into the run. Absent (false) in a run's final report.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// local, lab or kube.
    pub backend: String,
    /// False for the local backend: loopback only, no real network validated.
    pub validates_real_network: bool,
    /// The run id.
    pub run_id: String,
    /// When the run started, RFC 3339 UTC; every `_ms` time in the report counts from here.
    pub started_at: String,
    /// Networks under test.
    pub networks: Vec<CephNetwork>,
    /// The nodes.
    pub nodes: Vec<NodeReport>,
    /// The server's node.
    pub server_node: String,
    /// Findings, failures first.
    pub findings: Vec<Finding>,
    /// Every path.
    pub paths: Vec<PathReport>,
    /// A soak's success and latency per time bucket, per node path (empty without a soak).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timelines: Vec<TimelineReport>,
    /// Clients the run planned.
    pub expected_clients: usize,
    /// Clients that started with their addresses.
    pub started_clients: usize,
    /// Clients that passed every network.
    pub passed_clients: usize,
    /// Host checkers planned and passed.
    pub host_checkers: HostCheckers,
    /// Agents (server, clients, host checkers) the run expected to connect.
    pub expected_agents: usize,
    /// Agents that connected.
    pub connected_agents: usize,
    /// Peers refused by reason (no run certificate, wrong run id, protocol version, …).
    pub refused_connections: BTreeMap<String, u64>,
    /// Result accounting.
    pub results: ResultAccounting,
    /// Stage timings.
    pub stages: Vec<StageTiming>,
    /// Wall time of the run, ms.
    pub duration_ms: u64,
    /// Every agent and what became of it.
    pub agents: Vec<AgentFact>,
    /// The agents that were away from the run at some time (agent outages, told apart from
    /// the network's): windows, restarts. Left out when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agent_outages: Vec<crate::findings::AgentOutages>,
    /// The times the coordinator died and a new process resumed the run from its checkpoint
    /// (`run --resume`); left out when it never did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coordinator_restarts: Vec<CoordinatorRestartReport>,
    /// A mesh run's node × node matrix per network; absent for the single server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshReport>,
}

/// One coordinator restart as a report tells it: the coordinator was down from some time
/// after its last checkpoint until the new process took over; the agents went on probing
/// and resent what had not been acknowledged; the results the dead process had acknowledged
/// after the checkpoint are lost (counted in `results.lost`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoordinatorRestartReport {
    /// The checkpoint resumed from was written at, UTC.
    pub checkpoint_at: String,
    /// The new coordinator took over at, UTC.
    pub resumed_at: String,
    /// The same, ms since the run started.
    pub checkpoint_ms: u64,
    /// See `checkpoint_ms`.
    pub resumed_ms: u64,
}

/// A mesh run's matrix, as the report has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshReport {
    /// Other nodes each node probes on each network (`--mesh-peers`); `null`: every node.
    pub peers_per_node: Option<u32>,
    /// Per network, the matrix and the directed node pairs (client node, responder node)
    /// probed of those there are.
    pub networks: Vec<crate::findings::MeshNetwork>,
}

/// The paths of `matrix`, as reported; `target_nodes` names a mesh's responder nodes by
/// address ([`crate::findings::MeshFacts::all_target_nodes`]).
pub fn paths(
    matrix: &PathMatrix,
    target_nodes: Option<&BTreeMap<std::net::SocketAddr, String>>,
) -> Vec<PathReport> {
    matrix
        .paths()
        .into_iter()
        .map(|(k, s)| PathReport {
            source_node: k.node.clone(),
            client: k.client.clone(),
            network: k.network,
            target: k.target.to_string(),
            target_node: target_nodes.and_then(|t| t.get(&k.target).cloned()),
            kind: k.kind,
            sent: s.sent,
            ok: s.ok,
            failures: s
                .failures
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            latency_us: Latency {
                p50: s.latency.quantile_us(0.5),
                p90: s.latency.quantile_us(0.9),
                p99: s.latency.quantile_us(0.99),
                max: (s.ok > 0).then(|| s.latency.max_us()),
            },
            flaps: s.flaps,
            outages: s.recent_outages.iter().map(PathOutage::from).collect(),
        })
        .collect()
}

/// The node paths' timelines of `matrix`, as reported.
pub fn timelines(matrix: &PathMatrix) -> Vec<TimelineReport> {
    matrix
        .timelines()
        .into_iter()
        .map(|(k, t)| TimelineReport {
            source_node: k.node.clone(),
            network: k.network,
            target: k.target.to_string(),
            kind: k.kind,
            bucket_ms: t.width_ms(),
            buckets: t
                .buckets()
                .iter()
                .map(|b| TimeBucket {
                    probes: b.probes,
                    ok: b.ok,
                    latency_us: Latency {
                        p50: b.latency.quantile_us(0.5),
                        p90: b.latency.quantile_us(0.9),
                        p99: b.latency.quantile_us(0.99),
                        max: (b.ok > 0).then(|| b.latency.max_us()),
                    },
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_could_not_start_reports_error_and_why_in_every_format() {
        let r = ErrorReport::new(
            "lab",
            "building the lab: the lab cannot be built here; missing: CNI plugin \"nope\" <x>"
                .into(),
            1234,
        );
        let json: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "verdict": "error",
                "backend": "lab",
                "error": "building the lab: the lab cannot be built here; missing: CNI plugin \"nope\" <x>",
                "duration_ms": 1234
            })
        );
        assert!(r.render(Format::Yaml).contains("verdict: error"));
        let text = r.render(Format::Text);
        assert!(
            text.starts_with("multinet validation run — ERROR"),
            "{text}"
        );
        assert!(text.contains("error: building the lab: "), "{text}");
        let xml = r.render(Format::Junit);
        assert!(
            xml.contains(r#"errors="1""#)
                && xml.contains(r#"<error message="building the lab: the lab cannot be built here; missing: CNI plugin &quot;nope&quot; &lt;x&gt;">"#),
            "{xml}"
        );
        assert_eq!(r.verdict.exit_code(), crate::exit::ERROR);
    }

    #[test]
    fn a_report_file_is_replaced_whole_and_no_temporary_file_stays() {
        let dir = std::env::temp_dir().join(format!(
            "multinet-report-write-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("run.json");
        let first = write("first", Some(&file));
        let second = write("second, longer", Some(&file));
        let text = std::fs::read_to_string(&file);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
            .unwrap_or_default();
        let refused = write("x", Some(&dir.join("missing").join("run.json")));
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
        assert_eq!(text.expect("read"), "second, longer");
        assert_eq!(names, [std::ffi::OsString::from("run.json")]);
        let e = refused.expect_err("a missing directory");
        assert!(e.path.ends_with("missing/run.json"), "{e:?}");
    }

    #[test]
    fn a_report_destination_is_checked_leaving_nothing_and_refused_where_no_file_can_be() {
        let dir = std::env::temp_dir().join(format!(
            "multinet-report-check-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        // One left by an earlier process with this PID, killed mid-check: taken over.
        let stale = beside(&dir.join("run.json"), "check").expect("name");
        std::fs::write(&stale, "").expect("stale check file");
        let fine = check_destination(&dir.join("run.json"));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
            .unwrap_or_default();
        let missing = check_destination(&dir.join("missing").join("run.json"));
        let directory = check_destination(&dir);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(fine.is_ok(), "{fine:?}");
        assert!(left.is_empty(), "the check left {left:?}");
        let e = missing.expect_err("a missing directory");
        assert!(e.path.ends_with("missing/run.json"), "{e:?}");
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
        let e = directory.expect_err("a directory");
        assert_eq!(e.path, dir);
        assert!(e.source.to_string().contains("directory"), "{e:?}");
    }
}
