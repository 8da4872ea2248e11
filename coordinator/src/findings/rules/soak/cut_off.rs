//! When a mesh node was cut off, and which of a pair's outages that explains: window
//! arithmetic on the run's clock (ms), no matrix, no finding.
//!
//! A node was cut off while **every** pair of it was down at the same time — the intersection
//! over time of its pairs' outage windows, found by a sweep line over the windows' start and
//! end events counting the pairs down and the pairs measured — not while some pair's window
//! merely overlapped the node's merged window: one pair down from 10 s to 60 s around a blip
//! of every pair from 30 s to 32 s is a node outage of 30–32 s, the pair's own outage around
//! it. Which pairs count (README, "Mesh runs"): the node's pairs measured at that time (from
//! its first probe — the node's first for pairs beginning within two shortest outages of it —
//! to its last; [`cut_off`] says why), two or more, were all down, or, when it measured two
//! other nodes' or more, every other node's pair was — within a node the NAD's master carries
//! the traffic, so its own responder may still answer while its uplink is down. One pair
//! measured alone is that pair's outage, never its node's: nothing says the node's other
//! paths were down (a pair probed before the others begin, a node with one peer).
//!
//! A pair's outage is explained by node outages when what it has outside them is no outage
//! by the outage rule's own measure: every part of it outside the node windows is shorter than
//! [`OutageRule::min_ms`] (the two sides of one outage start a probe round apart, so a pair's
//! window rarely lies exactly inside its node's).

use std::collections::BTreeMap;

use crate::outage::{ClassCounts, OutageRule, Window};

/// How many shortest outages ([`OutageRule::min_ms`]) after a node's first probe its other
/// pairs may begin and still count as measured from it ([`cut_off`]): two, a probe round and
/// a timeout with room to spare.
const START_GRACE_OUTAGES: u64 = 2;

/// One pair of a node as the sweep sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct PairSpan<'a> {
    /// Its responder is on another node than the client's.
    pub other_node: bool,
    /// Its first and last probe, ms since the run started: measured from the first until the
    /// last.
    pub probed: (u64, u64),
    /// Its outage windows, sorted by start, not overlapping (merged by the outage rule).
    pub windows: &'a [Window],
}

/// Counts of the pairs measured and down at a time of the sweep.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    measured: i64,
    down: i64,
    measured_other: i64,
    down_other: i64,
    /// Pair windows starting (at one time of the sweep; not a running count).
    went_down: i64,
}

impl Counts {
    /// The node is cut off: every pair measured down, or every other node's pair — two or
    /// more measured either way.
    fn cut_off(&self) -> bool {
        (self.measured >= 2 && self.down >= self.measured)
            || (self.measured_other >= 2 && self.down_other >= self.measured_other)
    }
}

/// The windows (ms since the run started, sorted) during which the node of `pairs` was cut
/// off (module docs), kept by `rule` as outages are (merged, and at least
/// [`OutageRule::min_ms`] long unless still open at the end). A window is `ongoing` when a
/// pair window still open at the end ends with it; its failed probes are those of the pair
/// windows within it (or, when none is, of those it lies in) — a pair window's probes are
/// not kept by time, so this is the class of what took the node down, not an exact count.
///
/// Where the pairs' measured times begin and end matters (review of branch soak2, must-fix
/// 2, and of its fix): a pair whose first probe comes within [`START_GRACE_OUTAGES`] shortest
/// outages of the node's first probe (its pairs' earliest) counts as measured from that first
/// probe — pairs of one start begin a probe round or a timeout apart — and a pair beginning
/// later (its responder placed late: gone when the clients' targets were released) from its
/// own first probe: counted up before it, it would hide every outage of the node until then.
/// Each pair is measured until its own last probe, and a window opens only when a pair goes
/// down: never when pairs stop being measured, as they do one by one at the end of the run
/// (or when a responder's paths are left out), leaving only those still down.
pub(super) fn cut_off(pairs: &[PairSpan<'_>], rule: OutageRule) -> Vec<Window> {
    let grace = rule.min_ms.saturating_mul(START_GRACE_OUTAGES);
    let Some(start) = pairs
        .iter()
        .filter(|p| p.probed.1 > p.probed.0)
        .map(|p| p.probed.0)
        .min()
    else {
        return Vec::new();
    };
    // (time, change): the changes at one time are applied together before the next span.
    let mut events: BTreeMap<u64, Counts> = BTreeMap::new();
    let mut add = |at: u64, f: &dyn Fn(&mut Counts)| f(events.entry(at).or_default());
    for p in pairs {
        let other = i64::from(p.other_node);
        let (first, last) = p.probed;
        if last <= first {
            continue;
        }
        let from = if first <= start.saturating_add(grace) {
            start
        } else {
            first
        };
        add(from, &|c| {
            c.measured += 1;
            c.measured_other += other;
        });
        add(last, &|c| {
            c.measured -= 1;
            c.measured_other -= other;
        });
        for w in p.windows.iter().filter(|w| w.to_ms > w.from_ms) {
            // Within the probed span by construction (a failed probe to a later one).
            let (from, to) = (w.from_ms.max(first), w.to_ms.min(last));
            if to <= from {
                continue;
            }
            add(from, &|c| {
                c.down += 1;
                c.down_other += other;
                c.went_down += 1;
            });
            add(to, &|c| {
                c.down -= 1;
                c.down_other -= other;
            });
        }
    }
    let mut now = Counts::default();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    let mut open: Option<u64> = None;
    for (&at, change) in &events {
        now.measured += change.measured;
        now.down += change.down;
        now.measured_other += change.measured_other;
        now.down_other += change.down_other;
        // A pair went down at `at` (whatever else changed then): only then may the node be
        // found cut off.
        match (open, now.cut_off()) {
            (None, true) if change.went_down > 0 => open = Some(at),
            (Some(from), false) => {
                spans.push((from, at));
                open = None;
            }
            _ => {}
        }
    }
    // Every span closes: the last event ends every pair's measured time.
    let windows = spans
        .into_iter()
        .map(|(from_ms, to_ms)| {
            let all = pairs.iter().flat_map(|p| p.windows.iter());
            let overlapping: Vec<&Window> = all
                .clone()
                .filter(|w| w.from_ms < to_ms && from_ms < w.to_ms)
                .collect();
            let within: Vec<&&Window> = overlapping
                .iter()
                .filter(|w| from_ms <= w.from_ms && w.to_ms <= to_ms)
                .collect();
            let mut failures = ClassCounts::default();
            if within.is_empty() {
                overlapping.iter().for_each(|w| failures.merge(&w.failures));
            } else {
                within.iter().for_each(|w| failures.merge(&w.failures));
            }
            Window {
                from_ms,
                to_ms,
                ongoing: all.clone().any(|w| w.ongoing && w.to_ms == to_ms),
                failures,
            }
        })
        .collect();
    rule.outages(windows)
}

/// Whether window `w` is explained by the windows `by` (any order, may overlap): each part
/// of `w` outside them is shorter than [`OutageRule::min_ms`] (module docs).
pub(super) fn explained(w: &Window, by: &[Window], rule: OutageRule) -> bool {
    let mut covers: Vec<(u64, u64)> = by
        .iter()
        .filter(|b| b.from_ms < w.to_ms && w.from_ms < b.to_ms)
        .map(|b| (b.from_ms, b.to_ms))
        .collect();
    if covers.is_empty() {
        return false;
    }
    covers.sort_unstable();
    let mut uncovered_from = w.from_ms;
    for (from, to) in covers {
        if from > uncovered_from && from - uncovered_from >= rule.min_ms {
            return false;
        }
        uncovered_from = uncovered_from.max(to);
    }
    w.to_ms.saturating_sub(uncovered_from) < rule.min_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: OutageRule = OutageRule { min_ms: 1_500 };

    fn w(from_s: u64, to_s: u64) -> Window {
        Window {
            from_ms: from_s * 1000,
            to_ms: to_s * 1000,
            ongoing: false,
            failures: ClassCounts::default(),
        }
    }

    fn span(other_node: bool, windows: &[Window]) -> PairSpan<'_> {
        PairSpan {
            other_node,
            probed: (0, 100_000),
            windows,
        }
    }

    fn secs(windows: &[Window]) -> Vec<(u64, u64)> {
        windows
            .iter()
            .map(|w| (w.from_ms / 1000, w.to_ms / 1000))
            .collect()
    }

    /// Must-fix 1 of the review of branch `soak`: n1 → n3 down 10–60 s, every pair of n1
    /// down 30–32 s (an uplink blip). The node was cut off 30–32 s only — the intersection
    /// of its pairs' windows — not 10–60 s, the merged window the long pair's touches.
    #[test]
    fn a_node_is_cut_off_only_while_every_pair_is_down_at_once() {
        let blip = [w(30, 32)];
        let long = [w(10, 60)];
        let pairs = [
            span(false, &blip), // n1 -> n1
            span(true, &blip),  // n1 -> n2
            span(true, &long),  // n1 -> n3
            span(true, &blip),  // n1 -> n4
        ];
        assert_eq!(secs(&cut_off(&pairs, RULE)), [(30, 32)]);
        // The long pair's window is not explained by the node's: 20 s before, 28 s after.
        let node = cut_off(&pairs, RULE);
        assert!(!explained(&long[0], &node, RULE));
        assert!(explained(&blip[0], &node, RULE));
    }

    /// The mesh's uplink rule: the node's own responder still answering (through the NAD's
    /// master) does not keep the node from being cut off from every other node (two or more).
    #[test]
    fn every_other_nodes_pair_down_cuts_the_node_off_its_own_responder_up() {
        let down = [w(5, 12)];
        let pairs = [
            span(false, &[]),
            span(true, &down),
            span(true, &down),
            span(true, &down),
        ];
        assert_eq!(secs(&cut_off(&pairs, RULE)), [(5, 12)]);
        // With one other node only, its pair down is that pair's, not the node's.
        assert_eq!(secs(&cut_off(&pairs[..2], RULE)), []);
    }

    /// The intersection, not the union: pairs down 10–20 s, 15–30 s and 12–25 s are all
    /// down 15–20 s; one of them back 17–18 s splits it, and a part shorter than the
    /// shortest outage (1.5 s) is loss.
    #[test]
    fn the_cut_off_window_is_the_intersection_and_short_ones_are_loss() {
        let a = [w(10, 20)];
        let b = [w(15, 30)];
        let c = [w(12, 25)];
        assert_eq!(
            secs(&cut_off(
                &[span(true, &a), span(true, &b), span(true, &c)],
                RULE
            )),
            [(15, 20)]
        );
        let split = [w(10, 17), w(18, 25)];
        assert_eq!(
            secs(&cut_off(
                &[span(true, &a), span(true, &b), span(true, &split)],
                RULE
            )),
            // 15–17 and 18–20, a second apart (within 1.5 s): one outage.
            [(15, 20)]
        );
        let short = [w(19, 20)];
        assert_eq!(
            secs(&cut_off(
                &[span(true, &a), span(true, &b), span(true, &short)],
                RULE
            )),
            []
        );
    }

    /// A pair no longer measured (its responder's paths left out after its first probes)
    /// is no pair that must be down.
    #[test]
    fn only_the_pairs_measured_at_the_time_count() {
        let down = [w(40, 50)];
        let early = PairSpan {
            other_node: true,
            probed: (0, 30_000),
            windows: &[],
        };
        assert_eq!(
            secs(&cut_off(
                &[early, span(true, &down), span(true, &down)],
                RULE
            )),
            [(40, 50)]
        );
    }

    /// Must-fix 2 of the review of branch soak2, the end of the run (shortest outage 6 s):
    /// n1 → n1's last probe at 99.0 s, up; n1 → n3's at 100.1 s, up; n1 → n2 down from 80 s
    /// to its last probe at 100.2 s, still open. The pairs stopping one by one leave n1 → n2
    /// the only one measured, and down — no cut off of n1 (it was 100.1–100.2 s, kept for
    /// being still open).
    #[test]
    fn pairs_ending_one_by_one_at_the_end_do_not_cut_the_node_off() {
        let rule = OutageRule { min_ms: 6_000 };
        let open = [Window {
            from_ms: 80_000,
            to_ms: 100_200,
            ongoing: true,
            failures: ClassCounts::default(),
        }];
        let pairs = [
            PairSpan {
                other_node: false,
                probed: (0, 99_000),
                windows: &[],
            },
            PairSpan {
                other_node: true,
                probed: (0, 100_200),
                windows: &open,
            },
            PairSpan {
                other_node: true,
                probed: (0, 100_100),
                windows: &[],
            },
        ];
        assert_eq!(secs(&cut_off(&pairs, rule)), []);
        // Every pair down at once before the end still is.
        let down = [Window {
            from_ms: 90_000,
            to_ms: 99_000,
            ..open[0]
        }];
        let all = [
            PairSpan {
                windows: &down,
                ..pairs[0]
            },
            PairSpan {
                windows: &open,
                ..pairs[1]
            },
            PairSpan {
                windows: &down,
                ..pairs[2]
            },
        ];
        assert_eq!(secs(&cut_off(&all, rule)), [(90, 99)]);
    }

    /// Must-fix 2, the start of the run: n1 → n2 probed from 0 s and down until 10 s; n1 →
    /// n1 and n1 → n3 probed first at 8 s (their first probes 8 s after, more than the
    /// shortest outage, 6 s, within two of them), up. n1 was not cut off 0–8 s: pairs
    /// beginning within two shortest outages of the node's first probe count from it.
    #[test]
    fn pairs_beginning_late_at_the_start_do_not_cut_the_node_off() {
        let rule = OutageRule { min_ms: 6_000 };
        let down = [w(0, 10)];
        let late = |other_node| PairSpan {
            other_node,
            probed: (8_000, 3_600_000),
            windows: &[],
        };
        let pairs = [
            late(false),
            PairSpan {
                other_node: true,
                probed: (0, 3_600_000),
                windows: &down,
            },
            late(true),
        ];
        assert_eq!(secs(&cut_off(&pairs, rule)), []);
    }

    /// n1's three pairs measured from the start (its own and two other nodes'), each with
    /// `windows`, and a fourth, another node's, first probed at `first_ms`, never down.
    fn three_and_a_late_one(windows: &[Window], first_ms: u64) -> Vec<PairSpan<'_>> {
        let from_start = |other_node| PairSpan {
            other_node,
            probed: (0, 3_600_000),
            windows,
        };
        vec![
            from_start(false),
            from_start(true),
            from_start(true),
            PairSpan {
                other_node: true,
                probed: (first_ms, 3_600_000),
                windows: &[],
            },
        ]
    }

    /// A pair beginning mid-run (its responder placed late, gone when the clients' targets
    /// were released: first probe at 500 s) is not counted up before it: n1's every pair
    /// down 100–160 s is n1 cut off, the late pair measured only from 500 s (review of
    /// soak2's fix). Beginning within two shortest outages of the node's first probe — 12 s
    /// exactly included — is the start.
    #[test]
    fn a_pair_beginning_mid_run_does_not_hide_an_earlier_cut_off() {
        let rule = OutageRule { min_ms: 6_000 };
        let uplink = [w(100, 160)];
        let mut pairs = three_and_a_late_one(&uplink, 500_000);
        assert_eq!(secs(&cut_off(&pairs, rule)), [(100, 160)]);
        // Beginning at 11 s, within two shortest outages of the node's first probe, it
        // counts from the start: up at 100 s, it keeps n1 from being cut off.
        pairs[3].probed = (11_000, 3_600_000);
        assert_eq!(secs(&cut_off(&pairs, rule)), []);
        // The bound itself: every other pair down 2–11 s. A pair beginning at 12 s, two
        // shortest outages after the node's first probe, counts from the start (up then:
        // no cut off); one beginning a millisecond later counts from its first probe, and
        // before it n1 was cut off.
        let early = [w(2, 11)];
        for p in &mut pairs[..3] {
            p.windows = &early;
        }
        pairs[3].probed = (12_000, 3_600_000);
        assert_eq!(secs(&cut_off(&pairs, rule)), []);
        pairs[3].probed = (12_001, 3_600_000);
        assert_eq!(secs(&cut_off(&pairs, rule)), [(2, 11)]);
    }

    /// A pair beginning inside an open cut off (its responder placed late, first probe at
    /// 130 s within n1's 100–160 s): up, it ends the window at its first probe — n1 reached a
    /// responder then; down from its first probe, the window stays open to 160 s.
    #[test]
    fn a_pair_beginning_inside_a_cut_off_ends_it_if_up_and_keeps_it_if_down() {
        let rule = OutageRule { min_ms: 6_000 };
        let uplink = [w(100, 160)];
        let mut pairs = three_and_a_late_one(&uplink, 130_000);
        assert_eq!(secs(&cut_off(&pairs, rule)), [(100, 130)]);
        let late_down = [w(130, 160)];
        pairs[3].windows = &late_down;
        assert_eq!(secs(&cut_off(&pairs, rule)), [(100, 160)]);
    }

    /// One pair measured alone is never its node cut off: n1 → n2 probed from 0 s and down
    /// 0–10 s, n1's other pairs first probed at 13 s (past the 12 s grace). Before 13 s n1 had
    /// one pair measured — its outage is the pair's. So for a node with one pair all along.
    #[test]
    fn one_pair_measured_alone_is_not_its_node_cut_off() {
        let rule = OutageRule { min_ms: 6_000 };
        let down = [w(0, 10)];
        let late = |other_node| PairSpan {
            other_node,
            probed: (13_000, 3_600_000),
            windows: &[],
        };
        let early = PairSpan {
            other_node: true,
            probed: (0, 3_600_000),
            windows: &down,
        };
        assert_eq!(secs(&cut_off(&[late(false), early, late(true)], rule)), []);
        assert_eq!(secs(&cut_off(&[early], rule)), []);
        // Two pairs measured from the start, both down: cut off.
        assert_eq!(secs(&cut_off(&[early, early], rule)), [(0, 10)]);
    }

    /// Still open at the end: every pair's window ongoing to its last probe.
    #[test]
    fn a_cut_off_still_open_at_the_end_is_ongoing() {
        let open = [Window {
            ongoing: true,
            ..w(90, 100)
        }];
        let cut = cut_off(&[span(true, &open), span(true, &open)], RULE);
        assert_eq!(secs(&cut), [(90, 100)]);
        assert!(cut[0].ongoing);
    }

    /// Must-fix 2 of the review: a pair's window explained by its responder node's outage
    /// only when inside it (parts outside shorter than the shortest outage, 1.5 s).
    #[test]
    fn a_pair_window_is_explained_only_when_inside_the_node_windows() {
        let node = [w(5, 12)];
        // Touching or overlapping is not inside.
        assert!(!explained(&w(3, 12), &node, RULE));
        assert!(!explained(&w(5, 20), &node, RULE));
        assert!(!explained(&w(12, 20), &node, RULE));
        // Inside, or out by less than a probe round and a timeout.
        assert!(explained(&w(5, 12), &node, RULE));
        assert!(explained(&w(6, 11), &node, RULE));
        let late = Window {
            to_ms: 13_000,
            ..w(5, 12)
        };
        assert!(explained(&late, &node, RULE));
        // Two node windows (the client's and the responder's) cover one pair window
        // together; a gap of 2 s between them is not covered.
        assert!(explained(&w(5, 20), &[w(5, 12), w(12, 20)], RULE));
        assert!(!explained(&w(5, 20), &[w(5, 10), w(12, 20)], RULE));
    }
}
