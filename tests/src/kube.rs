//! The run the Kubernetes tests drive: its id, its backend against a scripted or fake API
//! server, and what the scheduler hands its agents.

use std::path::PathBuf;

use multinet_coordinator::backend::kube::backend::{KubeBackend, KubeBackendSpec, OwnerRole};
use multinet_coordinator::backend::kube::names::Owner;
use multinet_coordinator::pki::RunPki;
use multinet_coordinator::scheduler::{AgentEnv, NodePlan};
use multinet_proto::assignment::ProbeSettings;
use multinet_proto::config::RunConfig;
use multinet_proto::multus::selection::NetworkSelection;

/// The run's id.
pub const RUN: &str = "0a1b2c3d4e";
/// Its owner ConfigMap's uid, as the API server gave it.
pub const OWNER_UID: &str = "owner-uid";

/// Run [`RUN`]'s scheduler in rook-ceph with `client`, its coordinator at 10.244.0.9;
/// `nodes` are (name, node type).
pub fn backend(
    client: kube::Client,
    config: RunConfig,
    networks: (Option<NetworkSelection>, Option<NetworkSelection>),
    owner_role: OwnerRole,
    nodes: &[(&str, &str)],
) -> KubeBackend {
    KubeBackend::new(KubeBackendSpec {
        client,
        run_id: RUN.into(),
        config,
        image: "ghcr.io/multinet/multinet:test".into(),
        public: networks.0,
        cluster: networks.1,
        owner: Owner {
            name: format!("multinet-{RUN}"),
            uid: OWNER_UID.into(),
        },
        owner_role,
        pod_ip: "10.244.0.9".parse().expect("ip"),
        nodes: nodes
            .iter()
            .map(|(name, node_type)| NodePlan {
                name: name.to_string(),
                node_type: node_type.to_string(),
            })
            .collect(),
        // The scripted API serves no NAD configs: sandbox failures are told as Multus says.
        nads: Vec::new(),
        resumable: false,
    })
}

/// What the scheduler hands every agent of [`RUN`].
pub fn agent_env<'a>(pki: &'a RunPki, run_dir: &'a PathBuf) -> AgentEnv<'a> {
    AgentEnv {
        run_id: RUN,
        coordinator: "0.0.0.0:7443".parse().expect("addr"),
        probe: ProbeSettings {
            interval_ms: 1000,
            timeout_ms: 4000,
            small_bytes: 64,
            large_bytes: 65536,
        },
        grace_ms: 10_000,
        pki,
        run_dir,
    }
}
