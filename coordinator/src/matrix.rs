//! The path matrix: every probe outcome, aggregated per path in bounded memory.
//!
//! A path is (client node, client pod, network, target, probe kind). Per path the matrix keeps
//! counters, failures by class, a fixed-bucket latency histogram, the current run of
//! consecutive successes, and up/down transitions (a count plus the most recent outage
//! windows). Nothing grows with the length of a run; memory grows only with the number of
//! paths, which the placement fixes.
//!
//! Pure data: the `PathMatrix` actor in [`crate::supervisor`] owns one.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use multinet_proto::control::{ProbeResult, Role};
use multinet_proto::network::CephNetwork;
use multinet_proto::probe::{FailureClass, Outcome, ProbeKind};
use serde::{Deserialize, Serialize};

pub use crate::outage::PathChange;
pub use timeline::Timeline;

pub mod state;
pub mod timeline;
use crate::outage::ClassCounts;

/// Upper bounds of the latency buckets, in microseconds; the last bucket is open.
const BUCKETS_US: [u32; 17] = [
    50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000, 2_000_000, 5_000_000, 10_000_000,
];

/// Outage windows kept per path (the count of all of them is kept separately).
const OUTAGES_KEPT: usize = 8;

/// Identifies a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PathKey {
    /// The client's node.
    pub node: String,
    /// The client (pod or host checker).
    pub client: String,
    /// The network.
    pub network: CephNetwork,
    /// The server address probed.
    pub target: SocketAddr,
    /// The probe kind.
    pub kind: ProbeKind,
}

/// A latency histogram with fixed buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    counts: [u64; BUCKETS_US.len() + 1],
    max_us: u32,
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, us: u32) {
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        self.counts[i] += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The `q` quantile (0..=1) as the upper bound of its bucket (the maximum for the open
    /// bucket and never above the maximum seen); `None` without samples.
    pub fn quantile_us(&self, q: f64) -> Option<u32> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let bound = BUCKETS_US.get(i).copied().unwrap_or(self.max_us);
                return Some(bound.min(self.max_us));
            }
        }
        Some(self.max_us)
    }

    /// The largest sample.
    pub fn max_us(&self) -> u32 {
        self.max_us
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.max_us = self.max_us.max(other.max_us);
    }
}

/// A time the path was down: from its first failure to the next success (`None` while down),
/// on the run's clock ([`crate::matrix_actor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// The first failed probe, ms since the run started.
    pub from_ms: u64,
    /// The probe that succeeded again.
    pub to_ms: Option<u64>,
    /// The window's failed probes by class.
    pub failures: ClassCounts,
}

/// What the matrix knows about one path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStats {
    /// Probes whose result arrived.
    pub sent: u64,
    /// Of those, successes.
    pub ok: u64,
    /// Failures by class (a list of pairs in JSON: an HTTP status class is no map key).
    #[serde(with = "state::pairs")]
    pub failures: BTreeMap<FailureClass, u64>,
    /// Latency of successful probes.
    pub latency: Histogram,
    /// Successes since the last failure.
    pub consecutive_ok: u64,
    /// Times the path went from up to down (after having been up).
    pub flaps: u64,
    /// Whether the last probe succeeded.
    pub up: Option<bool>,
    /// All outages seen (the count) and the most recent ones.
    pub outages: u64,
    /// The most recent outage windows, oldest first.
    pub recent_outages: Vec<Outage>,
    /// The first and last result, ms since the run started.
    pub first_ms: Option<u64>,
    /// See `first_ms`.
    pub last_ms: Option<u64>,
    /// The first and last failed probe, ms since the run started: when a path failed, also
    /// once its older outage windows are no longer kept.
    pub first_failed_ms: Option<u64>,
    /// See `first_failed_ms`.
    pub last_failed_ms: Option<u64>,
}

impl PathStats {
    /// Counts `r`; what it did to the path's up/down state.
    fn record(&mut self, r: &ProbeResult) -> PathChange {
        let was_down = self.up == Some(false);
        self.sent += 1;
        self.first_ms.get_or_insert(r.started_ms);
        self.last_ms = Some(r.started_ms);
        match r.outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.consecutive_ok += 1;
                self.latency.record(r.latency_us);
                if self.up == Some(false)
                    && let Some(last) = self.recent_outages.last_mut()
                {
                    last.to_ms.get_or_insert(r.started_ms);
                }
                self.up = Some(true);
            }
            Outcome::Failed(class) => {
                *self.failures.entry(class).or_default() += 1;
                // min and max: a path's results come in order, but cost nothing to guard.
                self.first_failed_ms = Some(
                    self.first_failed_ms
                        .map_or(r.started_ms, |t| t.min(r.started_ms)),
                );
                self.last_failed_ms = Some(
                    self.last_failed_ms
                        .map_or(r.started_ms, |t| t.max(r.started_ms)),
                );
                self.consecutive_ok = 0;
                if self.up != Some(false) {
                    if self.up == Some(true) {
                        self.flaps += 1;
                    }
                    self.outages += 1;
                    if self.recent_outages.len() == OUTAGES_KEPT {
                        self.recent_outages.remove(0);
                    }
                    self.recent_outages.push(Outage {
                        from_ms: r.started_ms,
                        to_ms: None,
                        failures: ClassCounts::default(),
                    });
                }
                if let Some(open) = self.recent_outages.last_mut() {
                    open.failures.add(class);
                }
                self.up = Some(false);
            }
        }
        match (was_down, self.up == Some(false)) {
            (false, false) => PathChange::StayedUp,
            (false, true) => PathChange::WentDown,
            (true, true) => PathChange::StayedDown,
            (true, false) => PathChange::CameUp,
        }
    }

    /// ok / sent (1.0 for a path without probes).
    pub fn success_ratio(&self) -> f64 {
        if self.sent == 0 {
            1.0
        } else {
            self.ok as f64 / self.sent as f64
        }
    }
}

/// A client's paths on one network that have reported only failures so far, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeverSucceeded {
    /// Their probes, every one failed.
    pub probes: u64,
    /// From the first of those probes to the last, milliseconds of the agent's clock.
    pub span_ms: u64,
}

/// Who a client is, as the matrix needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its node.
    pub node: String,
    /// Client or host checker.
    pub role: Role,
}

/// A path as a node sees it: every client of the node together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodePathKey {
    /// The clients' node.
    pub node: String,
    /// The network.
    pub network: CephNetwork,
    /// The server address probed.
    pub target: SocketAddr,
    /// The probe kind.
    pub kind: ProbeKind,
}

/// All paths of a run.
#[derive(Debug, Clone, Default)]
pub struct PathMatrix {
    paths: HashMap<PathKey, PathStats>,
    /// Per node path, success and latency per time bucket.
    timelines: HashMap<NodePathKey, Timeline>,
    /// Results agents reported as dropped from their resend buffers.
    lost: u64,
    /// Results recorded.
    recorded: u64,
}

impl PathMatrix {
    /// Records a batch from `client`.
    pub fn record(&mut self, client: &str, node: &str, results: &[ProbeResult], dropped: u64) {
        self.record_with(client, node, results, dropped, |_, _| {});
    }

    /// [`Self::record`], telling `each` every result with what it did to its path (the live
    /// metrics follow the paths' up/down state this way, without a second look-up).
    pub fn record_with(
        &mut self,
        client: &str,
        node: &str,
        results: &[ProbeResult],
        dropped: u64,
        mut each: impl FnMut(&ProbeResult, PathChange),
    ) {
        self.lost += dropped;
        for r in results {
            let key = PathKey {
                node: node.to_string(),
                client: client.to_string(),
                network: r.network,
                target: r.target,
                kind: r.kind,
            };
            let change = self.paths.entry(key).or_default().record(r);
            let node_key = NodePathKey {
                node: node.to_string(),
                network: r.network,
                target: r.target,
                kind: r.kind,
            };
            self.timelines.entry(node_key).or_default().record(
                r.started_ms,
                matches!(r.outcome, Outcome::Ok).then_some(r.latency_us),
            );
            self.recorded += 1;
            each(r, change);
        }
    }

    /// Every path, sorted.
    pub fn paths(&self) -> Vec<(&PathKey, &PathStats)> {
        let mut all: Vec<_> = self.paths.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Every node path's timeline, sorted, all with the widest bucket width of them (so
    /// bucket `i` is the same time span in each).
    pub fn timelines(&self) -> Vec<(&NodePathKey, Timeline)> {
        let width = self
            .timelines
            .values()
            .map(Timeline::width_ms)
            .max()
            .unwrap_or(timeline::FIRST_WIDTH_MS);
        let mut all: Vec<_> = self
            .timelines
            .iter()
            .map(|(k, t)| {
                let mut t = t.clone();
                t.widen_to(width);
                (k, t)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// Results recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// Results reported lost by agents.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Whether `client` has `threshold` consecutive successes on every path it has reported
    /// on `network` (and has reported at least one).
    pub fn client_passes(&self, client: &str, network: CephNetwork, threshold: u64) -> bool {
        let mut any = false;
        for (k, s) in &self.paths {
            if k.client == client && k.network == network {
                any = true;
                if s.consecutive_ok < threshold {
                    return false;
                }
            }
        }
        any
    }

    /// Whether `client` has `threshold` consecutive successes on `network` on its paths to
    /// every one of `targets` (the addresses it was told to probe: a listener's HTTP and
    /// HTTPS apart), each reported on; paths to other addresses (a responder's before it
    /// restarted) do not count. A mesh client probes its responders side by side, so one
    /// that answers fast must not pass the client before the others have said anything.
    pub fn client_passes_targets(
        &self,
        client: &str,
        network: CephNetwork,
        threshold: u64,
        targets: &[SocketAddr],
    ) -> bool {
        let mut reported: Vec<SocketAddr> = Vec::with_capacity(targets.len());
        for (k, s) in &self.paths {
            if k.client == client && k.network == network && targets.contains(&k.target) {
                if s.consecutive_ok < threshold {
                    return false;
                }
                if !reported.contains(&k.target) {
                    reported.push(k.target);
                }
            }
        }
        !targets.is_empty() && reported.len() == targets.len()
    }

    /// `client`'s paths on `network` that have reported only failures, together: their
    /// probes, and the time from the first to the last of them (the agent's clock); `None`
    /// when every path has succeeded at least once, or none reported. What the supervisor's
    /// early verdict reads: a path that never once succeeded is blocked, not lossy. Summed
    /// over the paths because a blocked probe waits out the probe timeout and an agent probes
    /// its kinds one after another: each path alone gets a result only every few rounds.
    pub fn never_succeeded(
        &self,
        client: &str,
        network: CephNetwork,
        targets: &[SocketAddr],
    ) -> Option<NeverSucceeded> {
        let mut dead = self
            .paths
            .iter()
            .filter(|(k, _)| targets.contains(&k.target))
            .filter(|(k, s)| k.client == client && k.network == network && s.sent > 0 && s.ok == 0)
            .map(|(_, s)| s)
            .peekable();
        dead.peek()?;
        let (mut probes, mut first, mut last) = (0, u64::MAX, 0);
        for s in dead {
            probes += s.sent;
            first = first.min(s.first_ms.unwrap_or(u64::MAX));
            last = last.max(s.last_ms.unwrap_or(0));
        }
        Some(NeverSucceeded {
            probes,
            span_ms: last.saturating_sub(first),
        })
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use multinet_proto::probe::{Connection, Payload, Scheme};

    pub(crate) fn result(ms: u64, ok: bool) -> ProbeResult {
        ProbeResult {
            network: CephNetwork::Public,
            target: "127.0.0.1:80".parse().expect("addr"),
            kind: ProbeKind {
                scheme: Scheme::Http,
                payload: Payload::Small,
                connection: Connection::Fresh,
            },
            started_ms: ms,
            latency_us: 300,
            outcome: if ok {
                Outcome::Ok
            } else {
                Outcome::Failed(FailureClass::ConnectTimeout)
            },
        }
    }

    #[test]
    fn counts_flaps_and_outages() {
        let mut m = PathMatrix::default();
        let seq = [true, true, false, false, true, false, true, true];
        let results: Vec<_> = seq
            .iter()
            .enumerate()
            .map(|(i, ok)| result(i as u64 * 100, *ok))
            .collect();
        m.record("c1", "n1", &results, 2);
        let (_, s) = m.paths()[0];
        assert_eq!(
            (s.sent, s.ok, s.flaps, s.outages, s.consecutive_ok),
            (8, 5, 2, 2, 2)
        );
        assert_eq!(
            s.recent_outages[0],
            Outage {
                from_ms: 200,
                to_ms: Some(400),
                failures: {
                    let mut two = ClassCounts::default();
                    two.add(FailureClass::ConnectTimeout);
                    two.add(FailureClass::ConnectTimeout);
                    two
                },
            }
        );
        assert_eq!(
            (s.first_failed_ms, s.last_failed_ms),
            (Some(200), Some(500))
        );
        assert_eq!(m.lost(), 2);
        assert!(m.client_passes("c1", CephNetwork::Public, 2));
        assert!(!m.client_passes("c1", CephNetwork::Public, 3));
        assert!(!m.client_passes("c1", CephNetwork::Cluster, 1));
    }

    #[test]
    fn a_client_passes_its_targets_only_once_it_passed_on_every_one() {
        let mut m = PathMatrix::default();
        let (a, b, old): (SocketAddr, SocketAddr, SocketAddr) = (
            "198.18.0.1:80".parse().expect("addr"),
            "198.18.0.2:80".parse().expect("addr"),
            "198.18.0.9:80".parse().expect("addr"),
        );
        let to = |target: SocketAddr, ok: bool| ProbeResult {
            target,
            ..result(0, ok)
        };
        m.record("c1", "n1", &[to(a, true), to(a, true)], 0);
        // b told but not heard from yet: not passed, however well a goes.
        assert!(!m.client_passes_targets("c1", CephNetwork::Public, 2, &[a, b]));
        m.record("c1", "n1", &[to(b, true), to(b, true)], 0);
        assert!(m.client_passes_targets("c1", CephNetwork::Public, 2, &[a, b]));
        // A responder's address before it restarted, failing: not a target any more.
        m.record("c1", "n1", &[to(old, false)], 0);
        assert!(m.client_passes_targets("c1", CephNetwork::Public, 2, &[a, b]));
        assert!(!m.client_passes_targets("c1", CephNetwork::Public, 2, &[a, old]));
        assert!(!m.client_passes_targets("c1", CephNetwork::Public, 2, &[]));
    }

    #[test]
    fn paths_that_never_succeeded_are_told_apart_from_lossy_ones() {
        let mut m = PathMatrix::default();
        let target = result(0, true).target;
        // Two probe kinds, each failing every 4 s (a blocked probe waits out its timeout).
        let other_kind = |mut r: ProbeResult| {
            r.kind.payload = Payload::Large;
            r
        };
        let dead: Vec<_> = (0..5).map(|i| result(i * 4_000, false)).collect();
        let dead_large: Vec<_> = (0..3)
            .map(|i| other_kind(result(2_000 + i * 4_000, false)))
            .collect();
        m.record("c1", "n1", &dead, 0);
        m.record("c1", "n1", &dead_large, 0);
        assert_eq!(
            m.never_succeeded("c1", CephNetwork::Public, &[target]),
            Some(NeverSucceeded {
                probes: 8,
                span_ms: 16_000
            })
        );
        assert_eq!(
            m.never_succeeded("c1", CephNetwork::Cluster, &[target]),
            None
        );
        // One success, however late, and a path is lossy, not dead: the other one stays.
        m.record("c1", "n1", &[result(17_000, true)], 0);
        assert_eq!(
            m.never_succeeded("c1", CephNetwork::Public, &[target]),
            Some(NeverSucceeded {
                probes: 3,
                span_ms: 8_000
            })
        );
        m.record("c1", "n1", &[other_kind(result(18_000, true))], 0);
        assert_eq!(
            m.never_succeeded("c1", CephNetwork::Public, &[target]),
            None
        );
        assert_eq!(
            m.never_succeeded("nobody", CephNetwork::Public, &[target]),
            None
        );
        // Paths to addresses no longer probed (a responder's before it restarted) do not count.
        let elsewhere: SocketAddr = "198.18.0.9:80".parse().expect("addr");
        assert_eq!(
            m.never_succeeded("c1", CephNetwork::Public, &[elsewhere]),
            None
        );
    }

    #[test]
    fn outage_memory_is_bounded() {
        let mut m = PathMatrix::default();
        let results: Vec<_> = (0..10_000).map(|i| result(i, i % 2 == 0)).collect();
        m.record("c1", "n1", &results, 0);
        let (_, s) = m.paths()[0];
        assert_eq!(s.outages, 5_000);
        assert_eq!(s.recent_outages.len(), OUTAGES_KEPT);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for us in [
            40, 90, 150, 400, 900, 1_500, 3_000, 7_000, 15_000, 30_000_000,
        ] {
            h.record(us);
        }
        assert_eq!(h.quantile_us(0.5), Some(1_000));
        assert_eq!(h.quantile_us(0.9), Some(20_000));
        assert_eq!(h.quantile_us(1.0), Some(30_000_000));
        assert_eq!(Histogram::default().quantile_us(0.5), None);
    }
}
