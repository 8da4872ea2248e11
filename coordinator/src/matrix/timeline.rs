//! Latency and success over time, per path aggregated over a node's clients, in fixed memory.
//!
//! A soak lasts hours; drift (latency creeping up as a switch buffer fills, a link
//! renegotiating) shows only per time bucket, not in whole-run percentiles. A [`Timeline`]
//! holds at most [`BUCKETS`] buckets of equal width on the run's clock, starting at
//! [`FIRST_WIDTH_MS`]; when a result falls past the last bucket, neighbouring buckets are
//! merged in pairs and the width doubles. So memory is fixed whatever the run's length, and a
//! run of length T ends with buckets of width at most T / ([`BUCKETS`] / 2) (24 buckets or
//! more, each a fixed-bucket latency histogram).

use serde::{Deserialize, Serialize};

use super::Histogram;

/// Buckets a timeline holds at most.
pub const BUCKETS: usize = 48;

/// The first buckets' width, ms: a 60 s soak gets six, an 8-minute one 48.
pub const FIRST_WIDTH_MS: u64 = 10_000;

/// One time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Probes started in the bucket whose result arrived.
    pub probes: u64,
    /// Of those, successes.
    pub ok: u64,
    /// Latency of the successes.
    pub latency: Histogram,
}

impl Bucket {
    fn merge(&mut self, other: &Bucket) {
        self.probes += other.probes;
        self.ok += other.ok;
        self.latency.merge(&other.latency);
    }
}

/// Buckets of equal width from the run's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    width_ms: u64,
    /// `buckets[i]` covers `[i × width_ms, (i + 1) × width_ms)`; as long as the latest used.
    buckets: Vec<Bucket>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            width_ms: FIRST_WIDTH_MS,
            buckets: Vec::new(),
        }
    }
}

impl Timeline {
    /// Counts a probe started at `at_ms` (run clock): a success with its latency (µs), or a
    /// failure (`None`).
    pub fn record(&mut self, at_ms: u64, latency_us: Option<u32>) {
        while at_ms >= self.width_ms.saturating_mul(BUCKETS as u64) {
            self.fold();
        }
        let i = (at_ms / self.width_ms) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        let b = &mut self.buckets[i];
        b.probes += 1;
        if let Some(us) = latency_us {
            b.ok += 1;
            b.latency.record(us);
        }
    }

    /// Merges neighbouring buckets in pairs; the width doubles.
    fn fold(&mut self) {
        let folded = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut b = pair[0].clone();
                if let Some(second) = pair.get(1) {
                    b.merge(second);
                }
                b
            })
            .collect();
        self.buckets = folded;
        self.width_ms = self.width_ms.saturating_mul(2);
    }

    /// Folds until the width is at least `width_ms` (to line timelines up with the widest).
    pub fn widen_to(&mut self, width_ms: u64) {
        while self.width_ms < width_ms {
            self.fold();
        }
    }

    /// The buckets' width, ms.
    pub fn width_ms(&self) -> u64 {
        self.width_ms
    }

    /// The buckets, from the run's start (empty ones included, up to the latest used).
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_merge_in_pairs_as_the_run_grows_and_nothing_is_lost() {
        let mut t = Timeline::default();
        // One probe a second for 24 hours, latency rising with time; every 7th fails.
        let day_s = 24 * 3600;
        for s in 0..day_s {
            let latency = (s % 7 != 0).then_some(100 + (s / 3600) as u32 * 100);
            t.record(s * 1_000, latency);
        }
        assert!(t.buckets().len() <= BUCKETS);
        assert!(t.buckets().len() >= BUCKETS / 2, "{}", t.buckets().len());
        let width = t.width_ms();
        assert_eq!(width % FIRST_WIDTH_MS, 0);
        assert!((width / FIRST_WIDTH_MS).is_power_of_two());
        assert!(width * (BUCKETS as u64) > day_s * 1_000);
        let probes: u64 = t.buckets().iter().map(|b| b.probes).sum();
        let ok: u64 = t.buckets().iter().map(|b| b.ok).sum();
        assert_eq!(probes, day_s);
        assert_eq!(ok, (0..day_s).filter(|s| s % 7 != 0).count() as u64);
        // The drift shows: the first bucket's median is lower than the last's.
        let first = t.buckets()[0].latency.quantile_us(0.5);
        let last = t.buckets().last().and_then(|b| b.latency.quantile_us(0.5));
        assert!(first < last, "{first:?} {last:?}");
    }

    #[test]
    fn a_timeline_widens_to_line_up_with_another() {
        let mut short = Timeline::default();
        short.record(0, Some(100));
        short.record(15_000, None);
        short.record(25_000, Some(200));
        assert_eq!(short.buckets().len(), 3);
        short.widen_to(4 * FIRST_WIDTH_MS);
        assert_eq!(short.width_ms(), 4 * FIRST_WIDTH_MS);
        assert_eq!(short.buckets().len(), 1);
        assert_eq!((short.buckets()[0].probes, short.buckets()[0].ok), (3, 2));
    }
}
