//! The setups a bench measures (topologies checked, a lab that is up, the local backend's
//! nodes) and how one is built, measured and removed.

use std::path::Path;

use multinet_proto::field::Problems;

use super::reference;
use super::report::SetupResult;
use super::site::{BenchSite, bench_system, site};
use super::{BenchBackend, Error, NetworkBenchRequest, failed};
use crate::backend::local::LocalBackend;
use crate::exit::chain;
use crate::lab::backend::{Keep, LabBackend};
use crate::lab::build::Lab;
use crate::lab::topology::LabTopology;
use crate::run::{ConfigRequest, Notice, Say};
use crate::supervisor::RunSettings;

/// One setup to benchmark: a topology checked, not built yet (or a lab that is up, or the
/// local backend's simulated nodes).
pub(super) struct Setup {
    /// How the report names it: the topology file's stem, `default`, the lab's name, or
    /// `local`.
    pub(super) name: String,
    /// Where it came from.
    pub(super) source: String,
    pub(super) place: Place,
    pub(super) config: multinet_proto::config::RunConfig,
    /// What its topology's check warned of (an unknown key ignored, …), for the report.
    pub(super) warnings: Vec<String>,
}

/// Where a setup's pods go.
pub(super) enum Place {
    /// A lab: built from `topology` (its text written into the lab's state), or, with `text`
    /// `None`, the lab of that name that is up.
    Lab {
        topology: Box<LabTopology>,
        text: Option<String>,
    },
    /// The local backend's simulated nodes `n1`…`nN`.
    Local { nodes: u32 },
    /// A cluster's nodes, as its preflight planned them.
    Kube { nodes: Vec<String> },
}

impl Setup {
    /// Its node names, in the backend's order.
    pub(super) fn node_names(&self) -> Vec<String> {
        match &self.place {
            Place::Lab { topology, .. } => topology.nodes.iter().map(|n| n.name.clone()).collect(),
            Place::Local { nodes } => (1..=*nodes).map(|i| format!("n{i}")).collect(),
            Place::Kube { nodes } => nodes.clone(),
        }
    }

    /// An empty result of it (its warnings already in).
    pub(super) fn result(&self) -> SetupResult {
        let mut result = match &self.place {
            Place::Lab { topology, .. } => SetupResult::new(&self.name, &self.source, topology),
            Place::Local { .. } => SetupResult::local(
                &self.name,
                &self.source,
                &crate::run::config::networks(&self.config),
            ),
            // Its networks are described once the cluster's NADs are read.
            Place::Kube { .. } => SetupResult::described(&self.name, &self.source, Vec::new()),
        };
        result.warnings = self.warnings.clone();
        result
    }
}

/// Reads and checks every topology (or opens the lab that is up).
pub(super) fn check_setups(
    request: &NetworkBenchRequest,
    say: Say<'_>,
) -> Result<Vec<Setup>, Error> {
    let mut problems = Problems::default();
    let mut setups = Vec::new();
    let overrides = ConfigRequest {
        mesh: request.mesh,
        mesh_peers: request.mesh_peers,
        ..ConfigRequest::default()
    };
    if request.backend == BenchBackend::Local {
        let nodes = request
            .nodes
            .unwrap_or(crate::run::config::DEFAULT_LOCAL_NODES);
        let config = crate::run::config::resolve(&overrides, &mut problems)
            .ok_or_else(|| Error::Invalid(problems.clone()))?;
        setups.push(Setup {
            name: "local".into(),
            source: format!("the local backend, {nodes} node(s) on loopback"),
            place: Place::Local { nodes },
            config,
            warnings: Vec::new(),
        });
        return Ok(setups);
    }
    if let Some(name) = &request.existing_lab {
        let lab = Lab::open(name).map_err(|e| Error::Usage(chain(&e)))?;
        let config = config_for(&lab.topology, &overrides, &mut problems)?;
        setups.push(Setup {
            name: name.clone(),
            source: format!("lab {name}, up"),
            place: Place::Lab {
                topology: Box::new(lab.topology),
                text: None,
            },
            config,
            warnings: Vec::new(),
        });
        return Ok(setups);
    }
    let files: Vec<Option<&Path>> = if request.topologies.is_empty() {
        vec![None]
    } else {
        request
            .topologies
            .iter()
            .map(|p| Some(p.as_path()))
            .collect()
    };
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        let loaded = crate::lab::load::load_topology(
            file,
            None,
            crate::lab::load::NadChoice {
                file: None,
                public: None,
                cluster: None,
            },
        );
        match loaded {
            Err(p) => problems.errors.extend(p.errors),
            Ok((topology, text, warnings)) => {
                for w in &warnings.warnings {
                    say(Notice::Warning(w.to_string()));
                }
                let config = config_for(&topology, &overrides, &mut problems)?;
                let mut name = file
                    .and_then(|f| f.file_stem())
                    .map_or("default".to_string(), |s| s.to_string_lossy().into_owned());
                // Two files of one name (a/x.yaml, b/x.yaml) are told apart by position.
                if !names.insert(name.clone()) {
                    name = format!("{name}-{}", setups.len() + 1);
                    names.insert(name.clone());
                }
                setups.push(Setup {
                    name,
                    source: file.map_or("the embedded default topology".to_string(), |f| {
                        f.display().to_string()
                    }),
                    place: Place::Lab {
                        topology: Box::new(topology),
                        text: Some(text),
                    },
                    config,
                    warnings: warnings.warnings.iter().map(ToString::to_string).collect(),
                });
            }
        }
    }
    if !problems.errors.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(setups)
}

/// The run configuration of a lab setup: the topology's, with `--mesh` and `--mesh-peers`.
fn config_for(
    topology: &LabTopology,
    overrides: &ConfigRequest,
    problems: &mut Problems,
) -> Result<multinet_proto::config::RunConfig, Error> {
    let mut own = Problems::default();
    let config = crate::run::config::resolve_for_lab(
        overrides,
        topology,
        crate::run::config::DEFAULT_LOCAL_NODES,
        &mut own,
    );
    match config {
        Some(config) => Ok(config),
        None => {
            problems.errors.extend(own.errors);
            Err(Error::Invalid(problems.clone()))
        }
    }
}

/// Builds one setup's lab (or starts the local backend), places the server and the client
/// pods as a run does, measures every path, and removes what it built — on every way out.
pub(super) fn bench_setup(
    setup: Setup,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    say: Say<'_>,
) -> Result<SetupResult, Error> {
    let agent_command = crate::backend::agents::AgentProcesses::default_agent_command()
        .map_err(|e| failed("", e))?;
    let mut result = setup.result();
    let settings = settings(setup.config);
    let measured = match setup.place {
        // Benchmarked by its coordinator Job ([`kube`]), never as a setup here.
        Place::Kube { .. } => Err(Error::Usage(
            "a kube setup is benchmarked in its cluster".into(),
        )),
        Place::Local { nodes } => {
            let backend = LocalBackend::new(nodes, agent_command, Vec::new());
            let what = "the local backend's agents".to_string();
            on_site(backend, &settings, request, tools, &mut result, &what, say)
        }
        Place::Lab { topology, text } => {
            let (lab, keep) = match text {
                Some(text) => {
                    for notice in Lab::notices(&topology) {
                        say(Notice::Info(format!("lab: {notice}")));
                    }
                    let lab = crate::run::lab_up_interruptible((*topology).clone(), text, say)
                        .map_err(|e| match e {
                            crate::run::Error::Interrupted(signal) => Error::Interrupted(signal),
                            // Said "building the lab" already (run::launch): once is enough.
                            crate::run::Error::Failed { context, source } => {
                                failed(context, source)
                            }
                            other => failed("building the lab", other),
                        })?;
                    (lab, Keep::Nothing)
                }
                None => (
                    Lab::open(&topology.name).map_err(|e| failed("opening the lab", e))?,
                    Keep::Lab,
                ),
            };
            let backend = LabBackend::new(lab, agent_command, Vec::new(), keep);
            let what = format!(
                "lab {}; `multinet lab down {}` removes what is left",
                topology.name, topology.name
            );
            on_site(backend, &settings, request, tools, &mut result, &what, say)
        }
    };
    measured.map(|()| result)
}

/// A bench's run settings for `config`: one probe stage's worth, no soak, no metrics.
pub(super) fn settings(config: multinet_proto::config::RunConfig) -> RunSettings {
    RunSettings {
        networks: crate::run::config::networks(&config),
        config,
        agent_grace: crate::run::AGENT_GRACE,
        soak: crate::supervisor::Soak::Off,
        stop: tokio_util::sync::CancellationToken::new(),
        probing: std::sync::Arc::default(),
        metrics: None,
        interim: None,
        hand_over: None,
    }
}

/// Places and measures on `backend` (its control plane, the supervisor, the bench), then
/// cleans up whatever happened; `what` names what a failed cleanup leaves.
fn on_site<S: BenchSite>(
    backend: S,
    settings: &RunSettings,
    request: &NetworkBenchRequest,
    tools: &reference::Tools,
    result: &mut SetupResult,
    what: &str,
    say: Say<'_>,
) -> Result<(), Error> {
    bench_system().block_on(site(backend, settings, request, tools, result, what, say))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_example_bench_topologies_are_valid_and_without_warnings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/bench");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("deploy/examples/bench")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "{files:?}");
        let mut names = Vec::new();
        for file in files {
            let nads = crate::lab::load::NadChoice {
                file: None,
                public: None,
                cluster: None,
            };
            let (topology, _, warnings) = crate::lab::load::load_topology(Some(&file), None, nads)
                .unwrap_or_else(|p| panic!("{}: {}", file.display(), p.errors_line()));
            assert!(
                warnings.warnings.is_empty(),
                "{}: {warnings:?}",
                file.display()
            );
            names.push(topology.name);
        }
        // Different lab names: a bench of several leaves none in another's way.
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 5, "{names:?}");
    }

    /// A topology's warnings (a typo'd key, ignored) reach the report: the setup measured may
    /// not be the one meant, and stderr is gone once the report is filed.
    #[test]
    fn a_topologys_warnings_are_kept_in_its_result() {
        let dir = std::env::temp_dir().join(format!(
            "multinet-bench-warnings-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("typo.yaml");
        std::fs::write(&file, "networks:\n  public: {cni: macvlan, mtuu: 9000}\n").expect("write");
        let mut request = super::super::tests::request(false, None, 3);
        request.backend = BenchBackend::Lab;
        request.nodes = None;
        request.topologies = vec![file];
        let said = std::sync::Mutex::new(Vec::new());
        let say = |n: Notice| said.lock().expect("lock").push(n);
        let setups = check_setups(&request, &say);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let setups = setups.expect("valid, with a warning");
        let warnings = &setups[0].result().warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("mtuu"), "{warnings:?}");
        assert_eq!(said.lock().expect("lock").len(), 1, "said on stderr too");
    }
}
