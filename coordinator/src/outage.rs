//! The outage rule: when the paths of a node on a network count as down, and for how long.
//! One rule with two users: the soak's `outage` finding applies it to the whole run at the
//! end (`findings::rules::soak`), and the live metrics ([`crate::metrics`]) apply it as
//! results arrive ([`LiveOutage`]). Pure arithmetic on the agents' clocks (milliseconds);
//! it reads no clock and knows no actor.
//!
//! The rule. Each client path is down from its first failed probe to its next success. The
//! windows of all the paths of one node on one network (every client, probe kind and target)
//! are merged: a window that starts at most [`OutageRule::min_ms`] after the previous one
//! ended continues it — the probe kinds are probed one after another, each blocked probe
//! waiting out the probe timeout, so one outage starts on each kind up to a round apart. A
//! merged window shorter than `min_ms` — two probe intervals and a probe timeout, one failed
//! probe's worth — is loss, not an outage, and is left to the `flaky` rule.

use multinet_proto::probe::FailureClass;

/// The rule's one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageRule {
    /// The shortest outage, and the longest gap that still joins two windows, ms: two probe
    /// intervals and a probe timeout.
    pub min_ms: u64,
}

impl OutageRule {
    /// The rule for a run probing every `probe_interval` with `probe_timeout`.
    pub fn new(probe_interval: std::time::Duration, probe_timeout: std::time::Duration) -> Self {
        Self {
            min_ms: (2 * probe_interval + probe_timeout).as_millis() as u64,
        }
    }

    /// Whether a window starting at `from_ms` continues one that ended at `previous_to_ms`.
    pub fn joins(&self, previous_to_ms: u64, from_ms: u64) -> bool {
        from_ms <= previous_to_ms.saturating_add(self.min_ms)
    }

    /// Whether a merged window lasted long enough to be an outage rather than loss.
    pub fn long_enough(&self, window: &Window) -> bool {
        window.to_ms - window.from_ms >= self.min_ms
    }

    /// Merges `windows` (any order) by [`Self::joins`], sorted by start.
    pub fn merge(&self, mut windows: Vec<Window>) -> Vec<Window> {
        windows.sort_by_key(|w| w.from_ms);
        let mut out: Vec<Window> = Vec::new();
        for w in windows {
            match out.last_mut() {
                Some(last) if self.joins(last.to_ms, w.from_ms) => {
                    last.to_ms = last.to_ms.max(w.to_ms);
                    last.ongoing |= w.ongoing;
                    last.failures.merge(&w.failures);
                }
                _ => out.push(w),
            }
        }
        out
    }

    /// The outages among the paths' windows at the end of a run: merged, without those too
    /// short to be one — except a window still open at the end, whose length is not known.
    pub fn outages(&self, windows: Vec<Window>) -> Vec<Window> {
        self.merge(windows)
            .into_iter()
            .filter(|w| self.long_enough(w) || w.ongoing)
            .collect()
    }
}

/// A time the paths were down, on the run's clock (ms since the run started,
/// [`crate::matrix_actor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first failed probe.
    pub from_ms: u64,
    /// The probe that succeeded again, or the last failed one while `ongoing`.
    pub to_ms: u64,
    /// Still down at the last probe seen.
    pub ongoing: bool,
    /// The failed probes in the window, by class.
    pub failures: ClassCounts,
}

/// Failed probes counted by [`FailureClass`], in fixed memory (HTTP statuses count together,
/// the most recent code kept): what an outage window's dominant class is read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassCounts {
    counts: [u32; 8],
    http_status: u16,
}

impl ClassCounts {
    fn index(class: FailureClass) -> usize {
        match class {
            FailureClass::ConnectRefused => 0,
            FailureClass::ConnectTimeout => 1,
            FailureClass::Unreachable => 2,
            FailureClass::Tls => 3,
            FailureClass::HttpStatus(_) => 4,
            FailureClass::ShortBody => 5,
            FailureClass::ReadTimeout => 6,
            FailureClass::Io => 7,
        }
    }

    /// Counts one failed probe.
    pub fn add(&mut self, class: FailureClass) {
        let i = Self::index(class);
        self.counts[i] = self.counts[i].saturating_add(1);
        if let FailureClass::HttpStatus(code) = class {
            self.http_status = code;
        }
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &ClassCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
        if other.counts[4] > 0 {
            self.http_status = other.http_status;
        }
    }

    /// Failed probes counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The class with the most failed probes (the first in declaration order on a tie), or
    /// `None` when nothing was counted.
    pub fn dominant(&self) -> Option<FailureClass> {
        let (i, &n) = self
            .counts
            .iter()
            .enumerate()
            .max_by_key(|&(i, n)| (*n, std::cmp::Reverse(i)))?;
        (n > 0).then_some(match i {
            0 => FailureClass::ConnectRefused,
            1 => FailureClass::ConnectTimeout,
            2 => FailureClass::Unreachable,
            3 => FailureClass::Tls,
            4 => FailureClass::HttpStatus(self.http_status),
            5 => FailureClass::ShortBody,
            6 => FailureClass::ReadTimeout,
            _ => FailureClass::Io,
        })
    }
}

/// What happened to one client path with one probe result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathChange {
    /// It succeeded, as it did before (or it is the path's first probe).
    StayedUp,
    /// It failed after a success (or as the path's first probe): a window opens.
    WentDown,
    /// It failed again.
    StayedDown,
    /// It succeeded after failing: the path's window closes.
    CameUp,
}

/// The rule applied as results arrive, for the paths of one node on one network (towards one
/// target node): how many paths are down now, the current merged window, and the outages so
/// far. O(1) memory whatever the run's length. Results of different clients arrive in their
/// own batches, a little out of order: a window that opens before the current one's start
/// moves the start back instead of being dropped.
///
/// Differences with the end-of-run rule, both from not knowing the future: a window counts
/// once it has lasted `min_ms` (at the end, a window still open counts whatever its length),
/// and a window that started before an earlier, already closed window is folded into the
/// current one.
#[derive(Debug, Clone)]
pub struct LiveOutage {
    rule: OutageRule,
    /// Paths whose last probe failed.
    paths_down: u32,
    /// The current (most recent) merged window.
    window: Option<Window>,
    /// Whether `window` has been counted as an outage already.
    counted: bool,
    /// Outages so far (windows that lasted `min_ms`).
    outages: u64,
    /// Their length in ms, the closed ones.
    closed_ms: u64,
}

impl LiveOutage {
    /// Nothing seen yet: up, no outage.
    pub fn new(rule: OutageRule) -> Self {
        Self {
            rule,
            paths_down: 0,
            window: None,
            counted: false,
            outages: 0,
            closed_ms: 0,
        }
    }

    /// One path's result at `at_ms` (the agent's clock) and what it did to the path.
    pub fn observe(&mut self, change: PathChange, at_ms: u64) {
        match change {
            PathChange::StayedUp => return,
            PathChange::WentDown => {
                self.paths_down += 1;
                match &mut self.window {
                    Some(w) if w.ongoing || self.rule.joins(w.to_ms, at_ms) => {
                        w.from_ms = w.from_ms.min(at_ms);
                        w.to_ms = w.to_ms.max(at_ms);
                        w.ongoing = true;
                    }
                    _ => {
                        if let Some(w) = self.window
                            && self.counted
                        {
                            self.closed_ms += w.to_ms - w.from_ms;
                        }
                        self.window = Some(Window {
                            from_ms: at_ms,
                            to_ms: at_ms,
                            ongoing: true,
                            failures: ClassCounts::default(),
                        });
                        self.counted = false;
                    }
                }
            }
            PathChange::StayedDown | PathChange::CameUp => {
                if change == PathChange::CameUp {
                    self.paths_down = self.paths_down.saturating_sub(1);
                }
                if let Some(w) = &mut self.window {
                    w.to_ms = w.to_ms.max(at_ms);
                    w.ongoing = self.paths_down > 0;
                }
            }
        }
        if let Some(w) = &self.window
            && !self.counted
            && self.rule.long_enough(w)
        {
            self.counted = true;
            self.outages += 1;
        }
    }

    /// Down now: in a window that is still open and has lasted long enough to be an outage.
    /// A path that lost a probe or two is up (that is loss); one whose outage just ended is
    /// up at its first success.
    pub fn down(&self) -> bool {
        self.counted && self.window.is_some_and(|w| w.ongoing)
    }

    /// Outages so far (each counted once it lasted `min_ms`).
    pub fn outages(&self) -> u64 {
        self.outages
    }

    /// Time down in those outages so far, ms (the current one up to its last probe).
    pub fn down_ms(&self) -> u64 {
        let current = match self.window {
            Some(w) if self.counted => w.to_ms - w.from_ms,
            _ => 0,
        };
        self.closed_ms + current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(from_ms: u64, to_ms: u64) -> Window {
        Window {
            from_ms,
            to_ms,
            ongoing: false,
            failures: ClassCounts::default(),
        }
    }

    const RULE: OutageRule = OutageRule { min_ms: 900 };

    #[test]
    fn the_shortest_outage_is_two_intervals_and_a_timeout() {
        let rule = OutageRule::new(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(4),
        );
        assert_eq!(rule.min_ms, 4_400);
    }

    #[test]
    fn windows_a_probe_round_apart_are_one_outage() {
        assert_eq!(
            RULE.merge(vec![
                w(10_700, 18_300),
                w(10_200, 18_200),
                w(30_000, 31_000)
            ]),
            [w(10_200, 18_300), w(30_000, 31_000)]
        );
        assert_eq!(
            RULE.merge(vec![w(0, 1_000), w(1_900, 2_000)]),
            [w(0, 2_000)]
        );
        assert_eq!(
            RULE.merge(vec![w(0, 1_000), w(1_901, 2_000)]),
            [w(0, 1_000), w(1_901, 2_000)]
        );
        // Too short is loss, unless still open at the end.
        let open = Window {
            ongoing: true,
            ..w(5_000, 5_100)
        };
        assert_eq!(RULE.outages(vec![w(0, 899), open]), [open]);
    }

    /// The live rule and the end-of-run rule agree on closed windows: two paths of a node,
    /// one outage seen on both a little apart, a lost probe, and a second outage.
    #[test]
    fn the_live_rule_counts_what_the_end_of_run_rule_finds() {
        use PathChange::*;
        // (path, change, at_ms)
        let events = [
            (0, StayedUp, 0),
            (1, StayedUp, 100),
            (0, WentDown, 1_000),
            (1, WentDown, 1_400),
            (0, StayedDown, 2_000),
            (1, StayedDown, 2_400),
            (0, CameUp, 3_000),
            (1, CameUp, 3_100),
            // A lost probe: loss, not an outage.
            (0, WentDown, 10_000),
            (0, CameUp, 10_200),
            // A second outage, one path only.
            (1, WentDown, 20_000),
            (1, StayedDown, 21_000),
            (1, CameUp, 22_000),
        ];
        let mut live = LiveOutage::new(RULE);
        let mut windows = Vec::new();
        let mut open: [Option<u64>; 2] = [None, None];
        let mut down_seen = Vec::new();
        for (path, change, at) in events {
            live.observe(change, at);
            down_seen.push(live.down());
            match change {
                WentDown => open[path] = Some(at),
                CameUp => windows.push(w(open[path].take().expect("open"), at)),
                _ => {}
            }
        }
        let at_end = RULE.outages(windows);
        assert_eq!(at_end, [w(1_000, 3_100), w(20_000, 22_000)]);
        assert_eq!(live.outages(), at_end.len() as u64);
        assert_eq!(
            live.down_ms(),
            at_end.iter().map(|w| w.to_ms - w.from_ms).sum::<u64>()
        );
        assert!(!live.down(), "every path came up again");
        // Down from the probe that made the window an outage to the first success of all.
        assert_eq!(
            down_seen,
            [
                false, false, false, false, true, true, true, false, false, false, false, true,
                false
            ]
        );
    }

    #[test]
    fn a_failure_soon_after_an_outage_continues_it() {
        let mut live = LiveOutage::new(RULE);
        live.observe(PathChange::WentDown, 0);
        live.observe(PathChange::StayedDown, 1_000);
        live.observe(PathChange::CameUp, 1_500);
        assert_eq!(
            (live.outages(), live.down_ms(), live.down()),
            (1, 1_500, false)
        );
        live.observe(PathChange::WentDown, 2_000);
        assert_eq!(
            (live.outages(), live.down_ms(), live.down()),
            (1, 2_000, true)
        );
        live.observe(PathChange::CameUp, 2_500);
        // Much later: a new outage; the first one's time is kept.
        live.observe(PathChange::WentDown, 10_000);
        live.observe(PathChange::StayedDown, 11_000);
        assert_eq!(
            (live.outages(), live.down_ms(), live.down()),
            (2, 3_500, true)
        );
    }

    #[test]
    fn a_merged_window_is_dominated_by_the_class_most_of_its_probes_failed_with() {
        let with = |from, to, classes: &[FailureClass]| {
            let mut window = w(from, to);
            for c in classes {
                window.failures.add(*c);
            }
            window
        };
        let merged = RULE.merge(vec![
            with(0, 500, &[FailureClass::ConnectTimeout]),
            with(
                600,
                1_500,
                &[FailureClass::ReadTimeout, FailureClass::ReadTimeout],
            ),
            with(
                1_700,
                2_000,
                &[FailureClass::HttpStatus(500), FailureClass::HttpStatus(503)],
            ),
        ]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].failures.total(), 5);
        // A tie goes to the class declared first; an HTTP status keeps its latest code.
        assert_eq!(
            merged[0].failures.dominant(),
            Some(FailureClass::HttpStatus(503))
        );
        let mut tie = ClassCounts::default();
        tie.add(FailureClass::Io);
        tie.add(FailureClass::Tls);
        assert_eq!(tie.dominant(), Some(FailureClass::Tls));
        assert_eq!(ClassCounts::default().dominant(), None);
    }
}
