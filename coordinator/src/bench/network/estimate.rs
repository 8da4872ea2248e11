//! The bench's time, estimated before anything is built ([`Estimate`]) and said; past
//! `--max-time` the bench is refused.

use std::time::Duration;

use multinet_proto::network::CephNetwork;

use super::setup::{Place, Setup};
use super::site::path_tests;
use super::{BenchBackend, NetworkBenchRequest};
use crate::mesh::Targeting;

/// How long a bench takes, said before anything is built: per setup, each path (client node →
/// responder node, per network; every node counted as a client node, so an upper bound) runs
/// its tests of `--duration` one after another, each with [`START_ALLOWANCE`], and with the
/// references iperf3 (two runs of whole seconds); each setup adds the loopback comparison (four
/// tests and two wrk runs of whole seconds) and [`SETUP_ALLOWANCE`] for building its lab and
/// starting its agents. On the kube backend each path also starts a client pod
/// ([`POD_START_ALLOWANCE`]), and there are no references to run (they are not in multinet's
/// image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Paths, all setups.
    pub paths: usize,
    /// Tests per path (iperf3 not counted).
    pub tests_per_path: usize,
    /// Whether the references are measured.
    pub references: bool,
    /// Whether a setup is a mesh (`--mesh`, or a kube configuration's `mesh: true`).
    pub mesh: bool,
    /// The bench's time in all.
    pub total: Duration,
}

/// What a test process takes besides its duration in the estimate (start, connects, the last
/// answer); measured at 0.1–0.2 s with a debug build on a loaded 2-core machine.
pub const START_ALLOWANCE: Duration = Duration::from_millis(250);
/// What a setup takes besides its tests in the estimate: its lab built and removed, its
/// agents started (5–10 s for three nodes).
pub const SETUP_ALLOWANCE: Duration = Duration::from_secs(20);
/// What a kube bench's client pod takes to start besides its tests in the estimate: created,
/// scheduled, its sandbox made (CNI ADD), its container started, its log read and the pod
/// deleted (5–10 s on a cluster).
pub const POD_START_ALLOWANCE: Duration = Duration::from_secs(10);

impl Estimate {
    /// The estimate of a kube bench of `config` on `nodes` (those the cluster's preflight
    /// planned), made before anything is created.
    pub(crate) fn of_nodes(
        nodes: &[String],
        config: &multinet_proto::config::RunConfig,
        request: &NetworkBenchRequest,
    ) -> Self {
        let setup = Setup {
            name: String::new(),
            source: String::new(),
            place: Place::Kube {
                nodes: nodes.to_vec(),
            },
            config: config.clone(),
            warnings: Vec::new(),
        };
        Self::of(std::slice::from_ref(&setup), request)
    }

    pub(super) fn of(setups: &[Setup], request: &NetworkBenchRequest) -> Self {
        let tests_per_path = path_tests(request.streams).len();
        // The kube backend measures no reference (not in multinet's image): said, not timed.
        let references = request.references && request.backend != BenchBackend::Kube;
        // iperf3 and wrk run whole seconds.
        let whole = Duration::from_secs(request.duration.as_secs_f64().ceil().max(1.0) as u64);
        let iperf3 = if references {
            2 * whole
        } else {
            Duration::ZERO
        };
        let test = request.duration + START_ALLOWANCE;
        let pod_start = if request.backend == BenchBackend::Kube {
            POD_START_ALLOWANCE
        } else {
            Duration::ZERO
        };
        let per_path = test * tests_per_path as u32 + iperf3 + pod_start;
        let loopback = test * 4 + (whole + START_ALLOWANCE) * 2;
        let per_setup = SETUP_ALLOWANCE + if references { loopback } else { Duration::ZERO };
        let mut paths = 0;
        let mut total = Duration::ZERO;
        for setup in setups {
            let nodes = setup.node_names();
            let networks = crate::run::config::networks(&setup.config);
            // At most: every node a responder on every network.
            let these = if setup.config.mesh {
                let responders: Vec<(String, Vec<CephNetwork>)> = nodes
                    .iter()
                    .map(|n| (n.clone(), networks.clone()))
                    .collect();
                let mesh = Targeting::mesh(&nodes, &responders, setup.config.mesh_peers);
                networks.iter().map(|n| mesh.covered(*n).len()).sum()
            } else {
                nodes.len() * networks.len()
            };
            paths += these;
            total += per_path * these as u32 + per_setup;
        }
        Self {
            paths,
            tests_per_path,
            references,
            mesh: setups.iter().any(|s| s.config.mesh),
            total,
        }
    }

    /// One line: paths × tests × duration, the total.
    pub fn said(&self, duration: Duration) -> String {
        format!(
            "{} path(s) × {} test(s) × {:.1}s{}, with starting and building: about {}",
            self.paths,
            self.tests_per_path,
            duration.as_secs_f64(),
            if self.references {
                " and iperf3 both ways per path, the nginx comparison"
            } else {
                ""
            },
            minutes(self.total)
        )
    }

    /// Refuses the bench (exit 22, nothing built) when this estimate is over `--max-time`;
    /// else says it.
    pub(super) fn within(
        &self,
        request: &NetworkBenchRequest,
        say: crate::run::Say<'_>,
    ) -> Result<(), super::Error> {
        if self.total > request.max_time {
            return Err(super::Error::Usage(format!(
                "--max-time {}: {}; raise --max-time{}",
                minutes(request.max_time),
                self.said(request.duration),
                if self.mesh {
                    ", shorten --duration, or take fewer peers (--mesh-peers K)"
                } else {
                    " or shorten --duration"
                }
            )));
        }
        say(crate::run::Notice::Note(format!(
            "bench: {}",
            self.said(request.duration)
        )));
        Ok(())
    }
}

/// `12m30s`.
pub(crate) fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::setup::check_setups;
    use super::super::tests::{quiet, request};
    use super::*;

    #[test]
    fn the_estimate_counts_the_pairs_a_mesh_run_covers() {
        let paths = |mesh, peers, nodes| {
            let request = request(mesh, peers, nodes);
            let setups = check_setups(&request, &quiet).expect("valid");
            Estimate::of(&setups, &request)
        };
        // Two networks: 3 paths each to the one server, 3 × 3 in a full mesh, 3 × (own + 1).
        assert_eq!(paths(false, None, 3).paths, 6);
        assert_eq!(paths(true, None, 3).paths, 18);
        assert_eq!(
            paths(false, Some(1), 3).paths,
            12,
            "--mesh-peers implies --mesh"
        );
        let e = paths(true, None, 3);
        assert_eq!(e.tests_per_path, 7);
        // 18 paths × 7 tests × (1 s + 0.25 s), and one setup's allowance.
        assert_eq!(
            e.total,
            Duration::from_millis(18 * 7 * 1250) + SETUP_ALLOWANCE
        );
        assert!(
            e.said(Duration::from_secs(1))
                .starts_with("18 path(s) × 7 test(s) × 1.0s")
        );
    }

    /// With the references: iperf3 both ways per path, and per setup the loopback
    /// comparison's four tests and wrk's two runs (iperf3 and wrk run whole seconds).
    #[test]
    fn the_references_add_iperf3_per_path_and_the_loopback_comparison_per_setup() {
        let mut request = request(false, None, 3);
        request.references = true;
        request.duration = Duration::from_millis(1500);
        let setups = check_setups(&request, &quiet).expect("valid");
        let e = Estimate::of(&setups, &request);
        assert!(e.references);
        // 6 paths × (7 × 1.75 s + 2 × 2 s); 4 × 1.75 s + 2 × (2 s + 0.25 s) and the allowance.
        assert_eq!(
            e.total,
            Duration::from_millis(6 * (7 * 1750 + 2 * 2000) + 4 * 1750 + 2 * 2250)
                + SETUP_ALLOWANCE
        );
    }

    /// On kube every path starts a client pod, and no reference runs (not in the image): the
    /// estimate of three nodes and two networks, 7 tests of 0.5 s each per path.
    #[test]
    fn the_kube_estimate_adds_a_pod_start_per_path_and_no_references() {
        let mut request = request(false, None, 3);
        request.backend = BenchBackend::Kube;
        request.nodes = None;
        request.duration = Duration::from_millis(500);
        request.references = true;
        let nodes: Vec<String> = ["k1", "k2", "k3"].map(String::from).to_vec();
        let config = multinet_proto::config::RunConfig {
            public_network: "public-net".into(),
            cluster_network: "cluster-net".into(),
            ..multinet_proto::config::RunConfig::default()
        };
        let e = Estimate::of_nodes(&nodes, &config, &request);
        assert_eq!(e.paths, 6);
        assert!(!e.references, "said skipped, not timed");
        assert_eq!(
            e.total,
            (Duration::from_millis(7 * 750) + POD_START_ALLOWANCE) * 6 + SETUP_ALLOWANCE
        );
        // A full mesh: 9 pairs per network.
        let mesh = multinet_proto::config::RunConfig {
            mesh: true,
            ..config
        };
        let e = Estimate::of_nodes(&nodes, &mesh, &request);
        assert_eq!(e.paths, 18);
        assert_eq!(
            e.total,
            (Duration::from_millis(7 * 750) + POD_START_ALLOWANCE) * 18 + SETUP_ALLOWANCE
        );
    }

    #[test]
    fn a_refusal_says_what_to_change_and_peers_only_for_a_mesh() {
        let refusal = |mesh| {
            let mut request = request(mesh, None, 3);
            request.max_time = Duration::from_secs(1);
            let setups = check_setups(&request, &quiet).expect("valid");
            match Estimate::of(&setups, &request).within(&request, &quiet) {
                Err(super::super::Error::Usage(text)) => text,
                other => panic!("refused: {other:?}"),
            }
        };
        let single = refusal(false);
        assert!(
            single.starts_with("--max-time 1s: 6 path(s) × 7 test(s) × 1.0s"),
            "{single}"
        );
        assert!(
            single.ends_with("raise --max-time or shorten --duration"),
            "{single}"
        );
        let mesh = refusal(true);
        assert!(mesh.starts_with("--max-time 1s: 18 path(s)"), "{mesh}");
        assert!(
            mesh.ends_with("or take fewer peers (--mesh-peers K)"),
            "{mesh}"
        );
    }
}
