//! `multinet lab up | status | down`, and loading a topology for `multinet run --backend lab`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use multinet_proto::field::Problems;

use crate::cli::EXIT_INVALID;
use crate::input::read_text_or_report;
use crate::lab::build::Lab;
use crate::lab::topology::{ConfigSource, LabTopology, parse_topology};

/// `multinet lab …`
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build a lab: namespaces as nodes, underlay switches, the control network.
    Up {
        /// Topology file (default: 3 nodes, public and cluster on macvlan).
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Lab name (overrides the file's).
        #[arg(long)]
        name: Option<String>,
        /// NetworkAttachmentDefinition manifests to use as the lab's networks (first public,
        /// second cluster), their spec.config run as written.
        #[arg(long, value_name = "NADS.yaml")]
        nads: Option<PathBuf>,
        /// Serve as the nodes of the Kubernetes cluster this kubeconfig names (a control plane
        /// on loopback, e.g. `tests/kube/control-plane up`): register the nodes, run the pods
        /// bound to them, in the foreground until SIGINT/SIGTERM.
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// With --kubeconfig: the image(s) the lab runs (multinet's; default the image
        /// `multinet run --backend kube` uses). Any other image fails to pull.
        #[arg(long = "image", value_name = "IMAGE", requires = "kubeconfig")]
        images: Vec<String>,
        /// With --kubeconfig: a node that reports NotReady (as a node whose container network
        /// is not ready); repeatable.
        #[arg(long = "not-ready", value_name = "NODE", requires = "kubeconfig")]
        not_ready: Vec<String>,
    },
    /// Show the labs that are up, or one lab's namespaces.
    Status {
        /// A lab name.
        name: Option<String>,
    },
    /// Remove a lab (CNI DEL for every pod, every namespace, its state).
    Down {
        /// The lab.
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Every lab.
        #[arg(long)]
        all: bool,
    },
}

/// Which of the user's NADs become which network: those named like the run's networks, else
/// the first and second in the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct NadChoice<'a> {
    /// The file of NetworkAttachmentDefinitions.
    pub file: Option<&'a Path>,
    /// The public network's NAD name, when the run names one.
    pub public: Option<&'a str>,
    /// The cluster network's NAD name, when the run names one.
    pub cluster: Option<&'a str>,
}

/// The topology text with its `networks` replaced by the NADs of `nads`.
fn with_nads(base: &str, nads: NadChoice<'_>, problems: &mut Problems) -> Option<String> {
    let path = nads.file?;
    let label = path.display().to_string();
    let text = read_text_or_report(path, problems)?;
    let docs = match multinet_proto::yaml::parse_documents(&text) {
        Ok(d) => d,
        Err(e) => {
            problems.error(label, format!("not valid YAML: {e}"));
            return None;
        }
    };
    let nad_docs: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| {
            d.get("kind").and_then(serde_json::Value::as_str) == Some("NetworkAttachmentDefinition")
        })
        .collect();
    let name_of = |d: &serde_json::Value| {
        d.pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let pick = |wanted: Option<&str>, index: usize| {
        let wanted = wanted.map(|w| w.rsplit('/').next().unwrap_or(w));
        wanted
            .and_then(|w| {
                nad_docs
                    .iter()
                    .find(|d| name_of(d).as_deref() == Some(w))
                    .copied()
            })
            .or_else(|| nad_docs.get(index).copied())
    };
    let public = pick(nads.public, 0);
    let cluster = pick(nads.cluster, 1).filter(|c| public.is_none_or(|p| !std::ptr::eq(*c, p)));
    if public.is_none() {
        problems.error(label, "holds no NetworkAttachmentDefinition");
        return None;
    }
    let mut topology = match multinet_proto::yaml::parse_document(base) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if topology.contains_key("networks") {
        problems.warn("--nads", "replaces the topology file's networks");
    }
    let mut networks = serde_json::Map::new();
    for (key, nad) in [("public", public), ("cluster", cluster)] {
        if let Some(nad) = nad {
            networks.insert(key.into(), nad.clone());
        }
    }
    topology.insert("networks".into(), serde_json::Value::Object(networks));
    serde_json::to_string_pretty(&serde_json::Value::Object(topology)).ok()
}

/// Reads and validates a topology (with `nads` as its networks when given); `None` after
/// printing the problems (exit 22).
pub fn load_topology(
    file: Option<&Path>,
    name: Option<&str>,
    nads: NadChoice<'_>,
) -> Option<(LabTopology, String)> {
    let mut problems = Problems::default();
    let base = match file {
        None => String::new(),
        Some(path) => match read_text_or_report(path, &mut problems) {
            Some(text) => text,
            None => {
                report(&problems);
                return None;
            }
        },
    };
    let (source, label) = match (nads.file, with_nads(&base, nads, &mut problems)) {
        (Some(_), None) => {
            report(&problems);
            return None;
        }
        (Some(path), Some(text)) => (text, path.display().to_string()),
        (None, _) => (
            base,
            file.map(|p| p.display().to_string()).unwrap_or_default(),
        ),
    };
    let (mut topology, source) = match source.trim().is_empty() {
        true => (LabTopology::default(), String::new()),
        false => {
            let text = source;
            match parse_topology(&text) {
                Ok((mut t, found)) => {
                    problems.absorb_under(&label, found);
                    // A run configuration named by path is read relative to the topology file.
                    if let (Some(file), ConfigSource::Path(config)) = (file, &mut t.config)
                        && config.is_relative()
                        && let Some(dir) = file.parent()
                    {
                        *config = dir.join(&*config);
                    }
                    (t, text)
                }
                Err(e) => {
                    problems.error(label, format!("not valid YAML: {e}"));
                    report(&problems);
                    return None;
                }
            }
        }
    };
    if let Some(name) = name {
        if name.is_empty()
            || name.len() > 6
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            problems.error(
                "--name",
                format!("{name:?}: a lab name is 1 to 6 lowercase letters or digits"),
            );
        }
        topology.name = name.to_string();
    }
    for w in &problems.warnings {
        eprintln!("multinet: warning: {w}");
    }
    if problems.is_valid() {
        Some((topology, source))
    } else {
        report(&problems);
        None
    }
}

fn report(problems: &Problems) {
    for e in &problems.errors {
        eprintln!("multinet: {e}");
    }
}

/// Runs a lab subcommand; returns the exit code.
pub fn run(command: &LabCommand) -> u8 {
    let result = match command {
        LabCommand::Up {
            file,
            name,
            nads,
            kubeconfig,
            images,
            not_ready,
        } => {
            let choice = NadChoice {
                file: nads.as_deref(),
                ..NadChoice::default()
            };
            let Some((topology, source)) = load_topology(file.as_deref(), name.as_deref(), choice)
            else {
                return EXIT_INVALID;
            };
            let name = topology.name.clone();
            for notice in Lab::notices(&topology) {
                eprintln!("multinet lab: {notice}");
            }
            if let Some(kubeconfig) = kubeconfig {
                let unknown: Vec<&String> = not_ready
                    .iter()
                    .filter(|n| topology.node(n).is_none())
                    .collect();
                if !unknown.is_empty() {
                    eprintln!(
                        "multinet lab: --not-ready: {} is not a node of lab {name}",
                        unknown
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return EXIT_INVALID;
                }
                if !kubeconfig.is_file() {
                    eprintln!(
                        "multinet lab: --kubeconfig {}: no such file",
                        kubeconfig.display()
                    );
                    return EXIT_INVALID;
                }
                let options = crate::lab::kubelet::KubeletOptions {
                    kubeconfig: kubeconfig.clone(),
                    images: if images.is_empty() {
                        vec![crate::lab::kubelet::DEFAULT_IMAGE.to_string()]
                    } else {
                        images.clone()
                    },
                    not_ready: not_ready.iter().cloned().collect(),
                    api_service: crate::lab::kubelet::DEFAULT_API_SERVICE,
                };
                return serve_cluster(topology, &source, options);
            }
            Lab::up(topology, &source).map(|lab| {
                println!("lab {name} is up: {} node(s), networks {}", lab.topology.nodes.len(), lab.topology.networks.keys().map(|n| n.key()).collect::<Vec<_>>().join(", "));
                println!("run on it: multinet run --backend lab --lab {name}; remove it: multinet lab down {name}");
            })
        }
        LabCommand::Status { name } => status(name.as_deref()),
        LabCommand::Down { name, all } => {
            let names = if *all {
                Lab::list().unwrap_or_default()
            } else {
                name.iter().cloned().collect()
            };
            names.iter().try_for_each(|n| {
                remove_cluster_nodes(n);
                Lab::down(n)?;
                println!("lab {n} removed");
                anyhow::Ok(())
            })
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("multinet lab: {e:#}");
            1
        }
    }
}

/// `lab up --kubeconfig`: builds the lab, serves it as the cluster's nodes until a signal,
/// then stops its pods; the lab and the Node objects stay for `lab down`.
fn serve_cluster(
    topology: crate::lab::topology::LabTopology,
    source: &str,
    options: crate::lab::kubelet::KubeletOptions,
) -> u8 {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let name = topology.name.clone();
    let lab = match Lab::up(topology, source) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("multinet lab: {e:#}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("multinet lab: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let stop = async {
            crate::run_cmd::shutdown_signal().await;
        };
        crate::lab::kubelet::serve(lab, options, stop).await
    });
    match result {
        Ok(()) => {
            eprintln!(
                "multinet lab: lab {name} stopped serving; remove it and its nodes with: multinet lab down {name}"
            );
            0
        }
        Err(e) => {
            eprintln!("multinet lab: {e:#}");
            eprintln!("multinet lab: the lab stays; remove it with: multinet lab down {name}");
            1
        }
    }
}

/// Stops the process serving lab `name` as a cluster's nodes, if one does, and removes the
/// Node objects it registered; said, never fatal.
fn remove_cluster_nodes(name: &str) {
    let dir = std::path::Path::new(crate::lab::build::STATE_ROOT).join(name);
    crate::lab::kubelet::cluster::stop_server(&dir);
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return;
    };
    match runtime.block_on(crate::lab::kubelet::cluster::remove_nodes(&dir)) {
        Ok(removed) if !removed.is_empty() => {
            println!(
                "lab {name}: node(s) {} removed from the cluster",
                removed.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "multinet lab: lab {name}: its nodes were not removed from the cluster: {e:#}"
        ),
    }
}

fn status(name: Option<&str>) -> anyhow::Result<()> {
    let labs = Lab::list()?;
    match name {
        None if labs.is_empty() => println!("no lab is up"),
        None => {
            for lab in labs {
                println!("{lab}");
            }
        }
        Some(name) => {
            let lab = Lab::open(name)?;
            let prefix = format!("{name}-");
            let namespaces: Vec<String> = crate::lab::net::netns_list()?
                .into_iter()
                .filter(|n| n.starts_with(&prefix))
                .collect();
            println!(
                "lab {name}: {} node(s), networks {}",
                lab.topology.nodes.len(),
                lab.topology
                    .networks
                    .keys()
                    .map(|n| n.key())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "namespaces ({}): {}",
                namespaces.len(),
                namespaces.join(" ")
            );
        }
    }
    Ok(())
}
