//! `multinet lab up | status | down`, and loading a topology for `multinet run --backend lab`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use multinet_proto::field::Problems;

use crate::cli::EXIT_INVALID;
use crate::input::read_text_or_report;
use crate::lab::build::Lab;
use crate::lab::topology::{LabTopology, parse_topology};

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

/// Reads and validates a topology; `None` after printing the problems (exit 22).
pub fn load_topology(file: Option<&Path>, name: Option<&str>) -> Option<(LabTopology, String)> {
    let mut problems = Problems::default();
    let (mut topology, source) = match file {
        None => (LabTopology::default(), String::new()),
        Some(path) => {
            let label = path.display().to_string();
            let Some(text) = read_text_or_report(path, &mut problems) else {
                report(&problems);
                return None;
            };
            match parse_topology(&text) {
                Ok((t, found)) => {
                    problems.absorb_under(&label, found);
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
        LabCommand::Up { file, name } => {
            let Some((topology, source)) = load_topology(file.as_deref(), name.as_deref()) else {
                return EXIT_INVALID;
            };
            let name = topology.name.clone();
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
