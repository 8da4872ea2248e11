//! `multinet lab up | status | down | fault`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit;
use crate::lab::build::Lab;
use crate::lab::load::{NadChoice, load_topology};

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
    /// Add, remove or list faults on a lab that is up, while runs go on (chaos by hand or
    /// from a script): block, loss, link-down and mtu, written as in a topology's `faults`.
    Fault {
        #[command(subcommand)]
        command: FaultCommand,
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

/// `multinet lab fault …`
#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Apply a fault now; prints its number.
    Add {
        /// The lab (`multinet lab status` lists them).
        lab: String,
        /// The fault, as one entry of a topology's `faults` list, e.g.
        /// 'block: {network: cluster, from: n1, to: n2}', 'loss: {network: public, node: n3,
        /// percent: 30}', 'link-down: {network: cluster, node: n2}',
        /// 'mtu: {network: public, node: n1, mtu: 1400}'.
        fault: String,
    },
    /// Remove a fault added with `add` (the network as it was before it).
    Remove {
        /// The lab.
        lab: String,
        /// The fault's number (`multinet lab fault list`).
        #[arg(required_unless_present = "all")]
        id: Option<u32>,
        /// Every fault added by hand.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// The faults added by hand that are applied now: number, since when (UTC), the fault.
    List {
        /// The lab.
        lab: String,
    },
}

/// Runs `lab fault`; the exit code (22 for a fault the lab cannot apply or a number it does
/// not have, 1 when the machine refused).
fn fault(command: &FaultCommand) -> u8 {
    let (FaultCommand::Add { lab, .. }
    | FaultCommand::Remove { lab, .. }
    | FaultCommand::List { lab }) = command;
    let lab = match Lab::open(lab) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("multinet lab fault: {}", crate::exit::chain(&e));
            return exit::INVALID;
        }
    };
    let name = &lab.topology.name;
    let done = match command {
        FaultCommand::Add { fault, .. } => lab.add_live_fault(fault).map(|f| {
            crate::outln!("{}", f.id);
            eprintln!(
                "multinet lab fault: fault {} applied to lab {name}: {} (remove it: multinet lab fault remove {name} {})",
                f.id, f.fault, f.id
            );
        }),
        FaultCommand::Remove { id: Some(id), .. } => lab.remove_live_fault(*id).map(|f| {
            eprintln!("multinet lab fault: fault {} removed from lab {name}: {}", f.id, f.fault);
        }),
        FaultCommand::Remove { id: None, .. } => lab.live_faults().and_then(|all| {
            all.iter().try_for_each(|f| {
                lab.remove_live_fault(f.id)?;
                eprintln!("multinet lab fault: fault {} removed from lab {name}: {}", f.id, f.fault);
                Ok(())
            })
        }),
        FaultCommand::List { .. } => lab.live_faults().map(|all| {
            if all.is_empty() {
                eprintln!("multinet lab fault: lab {name} has no fault added by hand");
            }
            for f in all {
                crate::outln!("{}\t{}\t{}", f.id, f.since, f.fault);
            }
        }),
    };
    match done {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("multinet lab fault: {}", crate::exit::chain(&e));
            if e.is_invalid() { exit::INVALID } else { 1 }
        }
    }
}

/// Runs a lab subcommand; returns the exit code.
pub fn run(command: LabCommand) -> u8 {
    let result = match &command {
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
            let (topology, source) = match load_topology(file.as_deref(), name.as_deref(), choice) {
                Ok((topology, source, warnings)) => {
                    for w in &warnings.warnings {
                        eprintln!("multinet lab: warning: {w}");
                    }
                    (topology, source)
                }
                Err(problems) => {
                    for w in &problems.warnings {
                        eprintln!("multinet lab: warning: {w}");
                    }
                    for e in &problems.errors {
                        eprintln!("multinet lab: {e}");
                    }
                    return exit::INVALID;
                }
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
                    return exit::INVALID;
                }
                if !kubeconfig.is_file() {
                    eprintln!(
                        "multinet lab: --kubeconfig {}: no such file",
                        kubeconfig.display()
                    );
                    return exit::INVALID;
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
            Lab::up(topology, &source).map_err(anyhow::Error::from).map(|lab| {
                crate::outln!("lab {name} is up: {} node(s), networks {}", lab.topology.nodes.len(), lab.topology.networks.keys().map(|n| n.key()).collect::<Vec<_>>().join(", "));
                crate::outln!("run on it: multinet run --backend lab --lab {name}; remove it: multinet lab down {name}");
            })
        }
        LabCommand::Status { name } => status(name.as_deref()),
        LabCommand::Fault { command } => return fault(command),
        LabCommand::Down { name, all } => {
            let names = if *all {
                Lab::list().unwrap_or_default()
            } else {
                name.iter().cloned().collect()
            };
            names.iter().try_for_each(|n| {
                remove_cluster_nodes(n);
                Lab::down(n)?;
                crate::outln!("lab {n} removed");
                anyhow::Ok(())
            })
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("multinet lab: {}", crate::exit::chain(&*e));
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
    let name = topology.name.clone();
    let lab = match Lab::up(topology, source) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("multinet lab: {}", crate::exit::chain(&e));
            return 1;
        }
    };
    let runtime = match multinet_agent::entry::multi_threaded(2) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("multinet lab: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let stop = async {
            crate::signals::shutdown_signal().await;
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
            eprintln!("multinet lab: {}", crate::exit::chain(&e));
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
    let Ok(runtime) = multinet_agent::entry::single_threaded() else {
        return;
    };
    match runtime.block_on(crate::lab::kubelet::cluster::remove_nodes(&dir)) {
        Ok(removed) if !removed.is_empty() => {
            crate::outln!(
                "lab {name}: node(s) {} removed from the cluster",
                removed.join(", ")
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "multinet lab: lab {name}: its nodes were not removed from the cluster: {}",
            crate::exit::chain(&e)
        ),
    }
}

fn status(name: Option<&str>) -> anyhow::Result<()> {
    let labs = Lab::list()?;
    match name {
        None if labs.is_empty() => crate::outln!("no lab is up"),
        None => {
            for lab in labs {
                crate::outln!("{lab}");
            }
        }
        Some(name) => {
            let lab = Lab::open(name)?;
            let prefix = format!("{name}-");
            let namespaces: Vec<String> = crate::lab::net::netns_list()?
                .into_iter()
                .filter(|n| n.starts_with(&prefix))
                .collect();
            crate::outln!(
                "lab {name}: {} node(s), networks {}",
                lab.topology.nodes.len(),
                lab.topology
                    .networks
                    .keys()
                    .map(|n| n.key())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            crate::outln!(
                "namespaces ({}): {}",
                namespaces.len(),
                namespaces.join(" ")
            );
        }
    }
    Ok(())
}
