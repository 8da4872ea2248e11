//! The times an agent was away from the run: from the moment its connection went (lost,
//! process killed, pod gone) to the moment it said Hello again — as the same process (a
//! reconnect) or as a new one (a restart) — or to the end of the run. An agent away is an
//! *agent* outage: its paths were not measured meanwhile, which says nothing of the network
//! (the network's outages are the paths' failed probes, [`crate::outage`]). Pure data in
//! bounded memory, like the matrix's outage windows: a count and the time of all of them, the
//! most recent [`ABSENCES_KEPT`] windows and the longest one. Times are milliseconds since the
//! roster started (the run's start, within the few milliseconds that set the run up).

use serde::{Deserialize, Serialize};

/// Windows kept per agent (the count and time of all of them are kept separately).
pub const ABSENCES_KEPT: usize = 8;

/// How an absence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Return {
    /// The same agent process connected again (same clock epoch).
    Reconnected,
    /// A new process of the agent connected (another clock epoch): the old one is gone.
    Restarted,
}

/// One time an agent was away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absence {
    /// When its connection went, ms since the run started.
    pub from_ms: u64,
    /// When it said Hello again; `None` while it is away (at the end: away to the end).
    pub to_ms: Option<u64>,
    /// How it came back; `None` while it is away.
    pub returned: Option<Return>,
}

impl Absence {
    /// Its length, ms, up to `now_ms` while it lasts.
    pub fn duration_ms(&self, now_ms: u64) -> u64 {
        self.to_ms.unwrap_or(now_ms).saturating_sub(self.from_ms)
    }
}

/// An agent's absences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absences {
    /// Absences so far.
    pub count: u64,
    /// Time away in the absences that ended, ms.
    pub closed_ms: u64,
    /// Absences that ended with a restart.
    pub restarts: u64,
    /// The most recent absences, oldest first (at most [`ABSENCES_KEPT`]).
    pub recent: Vec<Absence>,
    /// The longest absence that ended.
    pub longest: Option<Absence>,
}

impl Absences {
    /// The agent's connection went at `at_ms` (nothing if it is away already).
    pub fn left(&mut self, at_ms: u64) {
        if self.away() {
            return;
        }
        self.count += 1;
        if self.recent.len() == ABSENCES_KEPT {
            self.recent.remove(0);
        }
        self.recent.push(Absence {
            from_ms: at_ms,
            to_ms: None,
            returned: None,
        });
    }

    /// The agent said Hello again at `at_ms`, `how` (nothing if it was not away).
    pub fn returned(&mut self, at_ms: u64, how: Return) {
        let Some(last) = self.recent.last_mut().filter(|a| a.to_ms.is_none()) else {
            return;
        };
        last.to_ms = Some(at_ms.max(last.from_ms));
        last.returned = Some(how);
        let closed = *last;
        self.closed_ms += closed.duration_ms(at_ms);
        if how == Return::Restarted {
            self.restarts += 1;
        }
        if self
            .longest
            .is_none_or(|l| closed.duration_ms(at_ms) > l.duration_ms(at_ms))
        {
            self.longest = Some(closed);
        }
    }

    /// Whether the agent is away now.
    pub fn away(&self) -> bool {
        self.recent.last().is_some_and(|a| a.to_ms.is_none())
    }

    /// Time away so far, ms, the current absence up to `now_ms`.
    pub fn away_ms(&self, now_ms: u64) -> u64 {
        let current = self
            .recent
            .last()
            .filter(|a| a.to_ms.is_none())
            .map_or(0, |a| a.duration_ms(now_ms));
        self.closed_ms + current
    }

    /// The windows to show: the most recent ones and the longest, by start.
    pub fn windows(&self) -> Vec<Absence> {
        let mut out = self.recent.clone();
        if let Some(l) = self.longest
            && !out.contains(&l)
        {
            out.insert(0, l);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_opens_when_the_connection_goes_and_closes_when_the_agent_is_back() {
        let mut a = Absences::default();
        a.returned(50, Return::Reconnected);
        assert_eq!(a.count, 0, "not away: nothing to close");
        a.left(1_000);
        a.left(1_500);
        assert!(a.away());
        assert_eq!(a.away_ms(4_000), 3_000);
        a.returned(11_000, Return::Restarted);
        a.left(20_000);
        a.returned(20_300, Return::Reconnected);
        assert_eq!((a.count, a.restarts, a.away_ms(30_000)), (2, 1, 10_300));
        assert_eq!(
            a.windows(),
            [
                Absence {
                    from_ms: 1_000,
                    to_ms: Some(11_000),
                    returned: Some(Return::Restarted)
                },
                Absence {
                    from_ms: 20_000,
                    to_ms: Some(20_300),
                    returned: Some(Return::Reconnected)
                }
            ]
        );
        // Away to the end.
        a.left(25_000);
        assert_eq!(a.away_ms(30_000), 15_300);
    }

    #[test]
    fn memory_is_bounded_and_the_longest_window_is_kept() {
        let mut a = Absences::default();
        a.left(0);
        a.returned(60_000, Return::Restarted);
        for i in 1..1_000 {
            a.left(100_000 * i);
            a.returned(100_000 * i + 10, Return::Reconnected);
        }
        assert_eq!(a.count, 1_000);
        assert_eq!(a.recent.len(), ABSENCES_KEPT);
        let shown = a.windows();
        assert_eq!(shown.len(), ABSENCES_KEPT + 1);
        assert_eq!(shown[0].from_ms, 0, "the longest, first by start");
        assert_eq!(a.away_ms(u64::MAX / 2), 60_000 + 999 * 10);
    }
}
