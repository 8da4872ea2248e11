//! The one resolver of a run's configuration: Rook's flags or a file (`-c`), the lab
//! topology's `config`, the overrides that apply whatever the source, and each backend's own
//! rules — into a validated [`RunConfig`], or every problem found. The rules themselves live
//! in `multinet_proto::config` (pure); this module only decides which source wins.

use std::path::PathBuf;

use multinet_proto::config::{
    CONVERGED_NODE_TYPE, GoDuration, NodeType, RunConfig, check_probe_interval,
    check_report_interval, socket_address,
};
use multinet_proto::field::Problems;
use multinet_proto::network::CephNetwork;

use crate::input::read_run_config;
use crate::lab::topology::{ConfigSource, LabTopology};

/// Where a run's configuration comes from, as the user gave it (no validation yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    /// A run configuration file (Rook's `ValidationTestConfig` keys plus multinet's); Rook
    /// makes it exclusive with the flags below up to `namespace`.
    pub file: Option<PathBuf>,
    /// Rook's `--public-network`: the public network's NAD.
    pub public_network: Option<String>,
    /// Rook's `--cluster-network`: the cluster network's NAD.
    pub cluster_network: Option<String>,
    /// Rook's `--daemons-per-node` [default 19]: clients per node, on both networks.
    pub daemons_per_node: Option<u32>,
    /// Rook's `--timeout-minutes`: the per-stage deadline.
    pub timeout_minutes: Option<u64>,
    /// Rook's `--flaky-threshold-seconds`.
    pub flaky_threshold_seconds: Option<u64>,
    /// Rook's `--namespace`.
    pub namespace: Option<String>,
    /// `--host-check-only`, whatever the source.
    pub host_check_only: bool,
    /// `--probe-interval` as typed (a Go duration), whatever the source.
    pub probe_interval: Option<String>,
    /// `--service-account` (Kubernetes), whatever the source.
    pub service_account: Option<String>,
    /// `--duration` as typed (a Go duration): the soak's length, `soakDuration`'s override;
    /// `0` (also `--duration` without a value) soaks until stopped.
    pub duration: Option<String>,
    /// `--report-interval` as typed (a Go duration): `reportInterval`'s override.
    pub report_interval: Option<String>,
    /// `--metrics-addr` as typed (`ADDR:PORT`): `metricsAddr`'s override.
    pub metrics_addr: Option<String>,
    /// `--mesh`: a responder on every node (`mesh: true`), whatever the source.
    pub mesh: bool,
    /// `--mesh-peers K` (implies `--mesh`): `meshPeers`' override.
    pub mesh_peers: Option<u32>,
}

impl ConfigRequest {
    /// `--duration 0` (or without a value): soak until stopped.
    pub fn until_stopped(&self) -> bool {
        self.duration
            .as_deref()
            .and_then(|d| GoDuration::parse(d).ok())
            .is_some_and(|d| d.as_std().is_zero())
    }

    /// Whether the configuration comes from Rook's flags or `-c` (not from a lab topology).
    pub fn rook_source_given(&self) -> bool {
        self.file.is_some()
            || self.public_network.is_some()
            || self.cluster_network.is_some()
            || self.daemons_per_node.is_some()
            || self.timeout_minutes.is_some()
            || self.flaky_threshold_seconds.is_some()
    }
}

/// The configuration the way Rook's CLI builds it (flags or `-c`), with the overrides;
/// `None` when `problems` holds an error.
pub fn resolve(request: &ConfigRequest, problems: &mut Problems) -> Option<RunConfig> {
    let mut config = match &request.file {
        Some(path) => {
            let (config, found) = read_run_config(path, problems)?;
            problems.absorb_under(&path.display().to_string(), found);
            config
        }
        None => from_flags(request, problems),
    };
    apply_overrides(request, &mut config, problems);
    problems.is_valid().then_some(config)
}

/// Rook's flag mode: every daemon simulated as an OSD (both networks).
fn from_flags(request: &ConfigRequest, problems: &mut Problems) -> RunConfig {
    let mut config = RunConfig::default();
    config.node_types.clear();
    config.node_types.insert(
        CONVERGED_NODE_TYPE.into(),
        NodeType::with_counts(request.daemons_per_node.unwrap_or(19), 0),
    );
    if let Some(ns) = &request.namespace {
        config.namespace = ns.clone();
    }
    match (&request.public_network, &request.cluster_network) {
        (None, None) => {
            // Both networks, by default, so that a first try shows everything.
            config.public_network = "public".into();
            config.cluster_network = "cluster".into();
        }
        (p, c) => {
            config.public_network = p.clone().unwrap_or_default();
            config.cluster_network = c.clone().unwrap_or_default();
        }
    }
    if let Some(m) = request.timeout_minutes {
        config.resource_timeout = GoDuration::from_secs(m * 60);
    }
    if let Some(s) = request.flaky_threshold_seconds {
        config.flaky_threshold = GoDuration::from_secs(s);
    }
    let mut found = Problems::default();
    config.validate(&mut found);
    problems.absorb(found);
    config
}

/// `--host-check-only`, `--probe-interval`, `--service-account`, `--duration`,
/// `--report-interval`, `--metrics-addr`, `--mesh` and `--mesh-peers` apply whatever the
/// configuration's source; the interval's bounds are `probeInterval`'s.
fn apply_overrides(request: &ConfigRequest, config: &mut RunConfig, problems: &mut Problems) {
    if request.host_check_only {
        config.host_check_only = true;
    }
    if let Some(text) = &request.probe_interval {
        match GoDuration::parse(text) {
            Ok(d) => match check_probe_interval(d) {
                Ok(()) => config.probe_interval = d,
                Err(why) => problems.error("--probe-interval", why),
            },
            Err(e) => problems.error("--probe-interval", e),
        }
    }
    if let Some(sa) = &request.service_account {
        config.service_account_name = sa.clone();
    }
    if let Some(text) = &request.duration {
        match GoDuration::parse(text) {
            Ok(d) => config.soak_duration = d,
            Err(e) => problems.error("--duration", e),
        }
    }
    if let Some(text) = &request.report_interval {
        match GoDuration::parse(text) {
            Ok(d) => match check_report_interval(d) {
                Ok(()) => config.report_interval = d,
                Err(why) => problems.error("--report-interval", why),
            },
            Err(e) => problems.error("--report-interval", e),
        }
    }
    if let Some(text) = &request.metrics_addr {
        match socket_address(text) {
            Ok(addr) => config.metrics_addr = Some(addr),
            Err(why) => problems.error("--metrics-addr", why),
        }
    }
    if request.mesh || request.mesh_peers.is_some() {
        config.mesh = true;
    }
    if let Some(k) = request.mesh_peers {
        config.mesh_peers = k;
    }
}

/// The configuration of a lab run: Rook's flags or `-c` when given, else the topology's
/// `config`, else Rook's converged default on the topology's networks; every network the run
/// tests must be one of the topology's. `nodes` is `--nodes`, which the lab ignores (said).
pub fn resolve_for_lab(
    request: &ConfigRequest,
    topology: &LabTopology,
    nodes: u32,
    problems: &mut Problems,
) -> Option<RunConfig> {
    let config = if request.rook_source_given() {
        resolve(request, problems)?
    } else {
        let mut config = match &topology.config {
            ConfigSource::Inline(c) => c.clone(),
            ConfigSource::Path(path) => {
                let (config, found) = read_run_config(path, problems)?;
                problems.absorb_under(&path.display().to_string(), found);
                config
            }
            ConfigSource::Default => topology.default_run_config(),
        };
        apply_overrides(request, &mut config, problems);
        config
    };
    for network in networks(&config) {
        if !topology.networks.contains_key(&network) {
            problems.error(
                format!("{}Network", network.key()),
                format!(
                    "the run tests the {} network, which the lab topology does not define",
                    network.key()
                ),
            );
        }
    }
    if nodes != DEFAULT_LOCAL_NODES {
        problems.warn(
            "--nodes",
            "ignored with the lab: the topology says how many nodes there are",
        );
    }
    problems.is_valid().then_some(config)
}

/// How many nodes the local backend simulates unless told (`--nodes`).
pub const DEFAULT_LOCAL_NODES: u32 = 3;

/// The configuration of a Kubernetes run: as [`resolve`], plus the backend's own rules
/// (node type names become labels) and the networks' NAD selections, checked.
pub fn resolve_for_kube(request: &ConfigRequest, problems: &mut Problems) -> Option<RunConfig> {
    let config = resolve(request, problems)?;
    crate::backend::kube::names::check_node_type_names(&config, problems);
    if config.metrics_addr.is_some_and(|a| a.port() == 0) {
        problems.error(
            if request.metrics_addr.is_some() {
                "--metrics-addr"
            } else {
                "metricsAddr"
            },
            "the kube backend needs a fixed port (the coordinator's pod declares it for Prometheus to scrape), such as 0.0.0.0:9464",
        );
    }
    let _ = config.network_selections(problems);
    problems.is_valid().then_some(config)
}

/// The Ceph networks a configuration tests, public first.
pub fn networks(config: &RunConfig) -> Vec<CephNetwork> {
    let mut n = Vec::new();
    if !config.public_network.is_empty() {
        n.push(CephNetwork::Public);
    }
    if !config.cluster_network.is_empty() {
        n.push(CephNetwork::Cluster);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooks_flag_mode_simulates_every_daemon_as_an_osd_on_both_networks() {
        let mut problems = Problems::default();
        let config = resolve(&ConfigRequest::default(), &mut problems).expect("valid");
        assert_eq!(config.public_network, "public");
        assert_eq!(config.cluster_network, "cluster");
        let t = &config.node_types[CONVERGED_NODE_TYPE];
        assert_eq!((t.osds_per_node, t.other_daemons_per_node), (19, 0));
    }

    #[test]
    fn the_metrics_address_flag_overrides_the_file_and_names_itself_when_wrong() {
        let mut problems = Problems::default();
        let request = ConfigRequest {
            metrics_addr: Some("127.0.0.1:0".into()),
            ..ConfigRequest::default()
        };
        let config = resolve(&request, &mut problems).expect("valid");
        assert_eq!(
            config.metrics_addr,
            Some("127.0.0.1:0".parse().expect("addr"))
        );
        let request = ConfigRequest {
            metrics_addr: Some("metrics.local:9464".into()),
            ..ConfigRequest::default()
        };
        assert!(resolve(&request, &mut problems).is_none());
        assert!(
            problems.errors[0]
                .to_string()
                .starts_with("--metrics-addr: expected ADDR:PORT"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_probe_interval_flag_has_the_configurations_bounds() {
        for (typed, error) in [
            (
                "5ms",
                Some("--probe-interval: must be at least 10ms, found 5ms"),
            ),
            (
                "2m",
                Some("--probe-interval: must be at most 1m0s, found 2m0s"),
            ),
            ("1s", None),
        ] {
            let mut problems = Problems::default();
            let request = ConfigRequest {
                probe_interval: Some(typed.into()),
                ..ConfigRequest::default()
            };
            let config = resolve(&request, &mut problems);
            match error {
                Some(e) => {
                    assert!(config.is_none(), "{typed}");
                    assert_eq!(problems.errors[0].to_string(), e);
                }
                None => assert_eq!(
                    config.expect("valid").probe_interval,
                    GoDuration::from_secs(1)
                ),
            }
        }
    }
}
