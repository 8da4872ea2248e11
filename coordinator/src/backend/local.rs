//! The `local` backend: simulated nodes, each network a block of loopback addresses (one
//! address per pod per network), one agent process per pod. Linux routes all of 127.0.0.0/8
//! to `lo`, so every pod gets its own source address without root. It validates no real
//! network; the report says so.
//!
//! Fault injection for tests and demos: `kill` an agent (the server, or the first client of a
//! node) a given time after it started.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use multinet_proto::assignment::{AgentAssignment, NetworkAddress};
use multinet_proto::config::RunConfig;
use multinet_proto::control::{AgentIdentity, Role};
use multinet_proto::network::CephNetwork;
use tokio::process::{Child, Command};

use crate::scheduler::{AgentEnv, NodePlan, PodPlan, PodStatus, Scheduler};

/// Kill an agent some time after it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillAgent {
    /// `server`, or a node name (its first client is killed).
    pub target: String,
    /// How long after the agent started.
    pub after: Duration,
}

impl std::str::FromStr for KillAgent {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (target, secs) = text
            .split_once('@')
            .ok_or_else(|| format!("{text:?}: expected TARGET@SECONDS, e.g. server@3 or n2@5"))?;
        let secs: f64 = secs
            .parse()
            .map_err(|_| format!("{text:?}: {secs:?} is not a number of seconds"))?;
        if !(0.0..=86_400.0).contains(&secs) || target.is_empty() {
            return Err(format!(
                "{text:?}: expected TARGET@SECONDS with 0 ≤ SECONDS ≤ 86400"
            ));
        }
        Ok(Self {
            target: target.to_string(),
            after: Duration::from_secs_f64(secs),
        })
    }
}

#[derive(Debug)]
struct Running {
    child: Child,
    started: Instant,
    role: Role,
    node: String,
    exited: bool,
}

/// The backend.
#[derive(Debug)]
pub struct LocalBackend {
    nodes: u32,
    /// Second octet of this run's loopback block (random, so runs side by side rarely meet).
    block: u8,
    next_host: BTreeMap<CephNetwork, u32>,
    agents: BTreeMap<String, Running>,
    kill: Option<KillAgent>,
    killed: bool,
    agent_command: Vec<String>,
}

impl LocalBackend {
    /// `nodes` simulated nodes; agents are started with `agent_command` + `--assignment FILE`.
    pub fn new(nodes: u32, agent_command: Vec<String>, kill: Option<KillAgent>) -> Self {
        let block =
            2 + (std::process::id() as u8 ^ (Instant::now().elapsed().subsec_nanos() as u8)) % 250;
        Self {
            nodes,
            block,
            next_host: BTreeMap::new(),
            agents: BTreeMap::new(),
            kill,
            killed: false,
            agent_command,
        }
    }

    /// The command that runs an agent: `MULTINET_AGENT_BIN` if set, else this very binary's
    /// `agent` subcommand.
    pub fn default_agent_command() -> anyhow::Result<Vec<String>> {
        if let Ok(bin) = std::env::var("MULTINET_AGENT_BIN") {
            return Ok(vec![bin]);
        }
        let exe = std::env::current_exe().context("finding the multinet binary to run agents")?;
        Ok(vec![exe.display().to_string(), "agent".into()])
    }

    fn address(&mut self, network: CephNetwork) -> IpAddr {
        let k: u32 = match network {
            CephNetwork::Public => 0,
            CephNetwork::Cluster => 1,
        };
        let i = self.next_host.entry(network).or_insert(0);
        let host = *i;
        *i += 1;
        IpAddr::V4(Ipv4Addr::new(
            127,
            self.block,
            (k * 100 + host / 250 + 1) as u8,
            (host % 250 + 1) as u8,
        ))
    }
}

impl Scheduler for LocalBackend {
    fn backend(&self) -> &'static str {
        "local"
    }

    fn validates_real_network(&self) -> bool {
        false
    }

    fn control_bind(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    async fn nodes(&mut self, config: &RunConfig) -> anyhow::Result<Vec<NodePlan>> {
        // No labels exist here: nodes take the node types in turn, in name order.
        let types: Vec<&String> = config.node_types.keys().collect();
        anyhow::ensure!(!types.is_empty(), "the run configuration has no node types");
        Ok((1..=self.nodes)
            .map(|i| NodePlan {
                name: format!("n{i}"),
                node_type: types[(i as usize - 1) % types.len()].clone(),
            })
            .collect())
    }

    async fn start(&mut self, pod: &PodPlan, env: &AgentEnv<'_>) -> anyhow::Result<PodStatus> {
        let addresses: Vec<NetworkAddress> = pod
            .networks
            .iter()
            .map(|n| NetworkAddress {
                network: *n,
                addr: self.address(*n),
            })
            .collect();
        let tls = env
            .pki
            .write_agent_files(env.run_dir, &pod.pod, pod.role == Role::Server)?;
        let assignment = AgentAssignment {
            run_id: env.run_id.to_string(),
            coordinator: env.coordinator,
            identity: AgentIdentity {
                role: pod.role,
                node: pod.node.clone(),
                pod: pod.pod.clone(),
                networks: if pod.role == Role::HostCheck {
                    vec![CephNetwork::Public]
                } else {
                    pod.networks.clone()
                },
            },
            tls,
            addresses: addresses.clone(),
            probe: env.probe,
            grace_ms: env.grace_ms,
            batch_max: 256,
            unacked_max: 1024,
        };
        let file = env.run_dir.join(format!("{}.assignment.json", pod.pod));
        std::fs::write(&file, serde_json::to_vec_pretty(&assignment)?)?;
        let log = std::fs::File::create(env.run_dir.join(format!("{}.log", pod.pod)))?;
        let (program, args) = self
            .agent_command
            .split_first()
            .context("empty agent command")?;
        let child = Command::new(program)
            .args(args)
            .arg("--assignment")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(child) => {
                self.agents.insert(
                    pod.pod.clone(),
                    Running {
                        child,
                        started: Instant::now(),
                        role: pod.role,
                        node: pod.node.clone(),
                        exited: false,
                    },
                );
                Ok(PodStatus::Started(addresses))
            }
            Err(e) => Ok(PodStatus::NotStarted {
                reason: format!("cannot start {program}: {e}"),
            }),
        }
    }

    async fn exited(&mut self) -> Vec<(String, String)> {
        if let (Some(kill), false) = (&self.kill, self.killed) {
            let victim = self.agents.iter_mut().find(|(_, r)| {
                if kill.target == "server" {
                    r.role == Role::Server
                } else {
                    r.role == Role::Client && r.node == kill.target
                }
            });
            if let Some((_, r)) = victim
                && r.started.elapsed() >= kill.after
            {
                let _ = r.child.start_kill();
                self.killed = true;
            }
        }
        let mut out = Vec::new();
        for (pod, r) in &mut self.agents {
            if r.exited {
                continue;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                r.exited = true;
                out.push((pod.clone(), format!("agent process exited: {status}")));
            }
        }
        out
    }

    async fn cleanup(&mut self) -> anyhow::Result<()> {
        // Agents got Stop over the control plane; give them a moment, then make sure.
        let deadline = Instant::now() + Duration::from_secs(3);
        for r in self.agents.values_mut() {
            while Instant::now() < deadline && matches!(r.child.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = r.child.start_kill();
            let _ = r.child.wait().await;
        }
        self.agents.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_agent_parses() {
        assert_eq!(
            "server@2.5".parse::<KillAgent>(),
            Ok(KillAgent {
                target: "server".into(),
                after: Duration::from_millis(2500)
            })
        );
        assert!("server".parse::<KillAgent>().is_err());
        assert!("@3".parse::<KillAgent>().is_err());
        assert!("n1@-1".parse::<KillAgent>().is_err());
    }

    #[test]
    fn addresses_are_distinct_loopback_per_network() {
        let mut b = LocalBackend::new(3, vec!["true".into()], None);
        let mut a: Vec<IpAddr> = (0..600).map(|_| b.address(CephNetwork::Public)).collect();
        a.extend((0..600).map(|_| b.address(CephNetwork::Cluster)));
        let unique: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        assert!(a.iter().all(IpAddr::is_loopback));
    }
}
