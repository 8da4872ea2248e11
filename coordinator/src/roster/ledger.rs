//! One agent's batches across its processes: which batch sequence numbers were recorded, what
//! each process said it produced, and what a restart left behind. Pure data, owned by the
//! roster ([`super::AgentRoster`]); it reads no clock and sends nothing.
//!
//! An agent process numbers its batches from 1 and resends, after a reconnect, every batch not
//! yet acknowledged (its `Hello.last_acked` says up to where it was). One process is known by
//! the wall-clock instant its clock counts from (`Hello.clock_epoch_unix_ms`, protocol
//! version 4): the same on every reconnection of the process, another value for a new process
//! of the same agent (a crash and a kubelet restart, the lab's `kill-agent` with `for`).
//!
//! * Reconnect (same epoch): numbering goes on; a batch at or below the highest recorded one
//!   is a resend and is counted once (a duplicate).
//! * Restart (new epoch): numbering starts again from 1 and is accepted as new. What the old
//!   process said it produced (cumulative, in its newest batch) but never arrived — batches
//!   in a gap of its numbering, none of which can ever be resent now — is counted as lost, so
//!   that `produced = recorded + lost + unaccounted` holds across the restart. Results the old
//!   process produced after the newest batch that arrived are unknown to the coordinator and
//!   counted nowhere (no report can name them).
//! * Resume (the same process, after the coordinator restarted from a checkpoint, `run
//!   --resume`): its Hello's `last_acked` can be beyond the highest batch the checkpoint
//!   recorded — batches an earlier coordinator process acknowledged after its last checkpoint
//!   and took with it. The agent never resends an acknowledged batch, so their results are
//!   lost; the first batch after them says how many (its cumulative `produced` less its own
//!   results and drops, less what the checkpoint had), and they are counted as lost.

/// What a Hello meant for the agent's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The agent's first connection.
    First,
    /// The same process again (same clock epoch): numbering goes on.
    Reconnect,
    /// A new process (another clock epoch): numbering starts from 1.
    Restart {
        /// Results the old process said it produced that never arrived: counted as lost.
        lost: u64,
    },
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Already recorded (a resend after a reconnect): acknowledge `ack` again, record nothing.
    Duplicate {
        /// The highest sequence number recorded from this process.
        ack: u64,
    },
    /// New: record it. `gap` batches of this process's numbering were skipped before it.
    Record {
        /// Batches missing between the previous recorded one and this one.
        gap: u64,
        /// Results of those batches known lost: acknowledged by an earlier coordinator
        /// process after its last checkpoint (see the module's documentation).
        lost: u64,
    },
}

/// One process's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ProcessCounts {
    /// Highest batch sequence number recorded.
    last_seq: u64,
    /// Results it says it produced (cumulative, from its newest batch).
    produced: u64,
    /// Results recorded from it.
    recorded: u64,
    /// Results it reported dropped from its resend buffer.
    dropped: u64,
}

/// One agent's batches, across its processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchLedger {
    /// The clock epoch of the current process (None before its first Hello).
    epoch: Option<u64>,
    /// The current process.
    current: ProcessCounts,
    /// The processes before it, summed.
    earlier: ProcessCounts,
    /// Results earlier processes produced that never arrived (see the module's documentation).
    lost_in_restarts: u64,
    /// Times a new process of the agent said Hello.
    restarts: u64,
    /// Results an earlier coordinator process acknowledged and took with it (a resume).
    #[serde(default)]
    lost_in_resume: u64,
    /// The `last_acked` of a Hello beyond the highest recorded batch, until the next batch
    /// says what was in between (a resume).
    #[serde(default)]
    acked_unrecorded: Option<u64>,
}

impl BatchLedger {
    /// A Hello from the process whose clock counts from `epoch_unix_ms`.
    /// `last_acked` is the Hello's: the highest batch the process was told was recorded.
    pub fn hello(&mut self, epoch_unix_ms: u64, last_acked: u64) -> Arrival {
        self.acked_unrecorded = None;
        match self.epoch.replace(epoch_unix_ms) {
            None => Arrival::First,
            Some(old) if old == epoch_unix_ms => {
                if last_acked > self.current.last_seq {
                    self.acked_unrecorded = Some(last_acked);
                }
                Arrival::Reconnect
            }
            Some(_) => {
                let old = std::mem::take(&mut self.current);
                let lost = old.produced.saturating_sub(old.recorded + old.dropped);
                self.earlier.last_seq += old.last_seq;
                self.earlier.produced += old.produced;
                self.earlier.recorded += old.recorded;
                self.earlier.dropped += old.dropped;
                self.lost_in_restarts += lost;
                self.restarts += 1;
                Arrival::Restart { lost }
            }
        }
    }

    /// A batch `seq` of the current process, carrying `results` results, `dropped` dropped
    /// ones and the process's cumulative `produced`.
    pub fn batch(&mut self, seq: u64, results: u64, dropped: u64, produced: u64) -> BatchVerdict {
        let c = &mut self.current;
        if seq <= c.last_seq {
            return BatchVerdict::Duplicate { ack: c.last_seq };
        }
        let gap = seq - c.last_seq - 1;
        // Exact only when the batch follows the acknowledged ones directly: a later one
        // means the agent also dropped batches from its buffer, which it reports as dropped
        // in a batch to come — those stay out of this count, so nothing counts twice.
        let lost = match self.acked_unrecorded.take() {
            Some(acked) if gap > 0 && seq == acked + 1 => (produced - results.min(produced))
                .saturating_sub(dropped)
                .saturating_sub(c.produced),
            _ => 0,
        };
        self.lost_in_resume += lost;
        c.last_seq = seq;
        c.produced = c.produced.max(produced);
        c.recorded += results;
        c.dropped += dropped;
        BatchVerdict::Record { gap, lost }
    }

    /// The clock epoch of the current process (Unix ms; None before its first Hello): what
    /// its results' `started_ms` count from — a restarted process's count from its own.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The highest sequence number recorded from the current process.
    pub fn last_seq(&self) -> u64 {
        self.current.last_seq
    }

    /// Batches recorded, every process.
    pub fn batches(&self) -> u64 {
        self.earlier.last_seq + self.current.last_seq
    }

    /// Results produced, as every process said (each one's newest count, summed).
    pub fn produced(&self) -> u64 {
        self.earlier.produced + self.current.produced
    }

    /// Results recorded, every process.
    pub fn recorded(&self) -> u64 {
        self.earlier.recorded + self.current.recorded
    }

    /// Results the processes reported dropped.
    pub fn dropped(&self) -> u64 {
        self.earlier.dropped + self.current.dropped
    }

    /// Results earlier processes produced that never arrived.
    pub fn lost_in_restarts(&self) -> u64 {
        self.lost_in_restarts
    }

    /// Results an earlier coordinator process acknowledged after its last checkpoint (lost
    /// in a resume).
    pub fn lost_in_resume(&self) -> u64 {
        self.lost_in_resume
    }

    /// Restarts seen (new processes after the first).
    pub fn restarts(&self) -> u64 {
        self.restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_goes_on_numbering_and_a_resend_counts_once() {
        let mut l = BatchLedger::default();
        assert_eq!(l.hello(1_000, 0), Arrival::First);
        assert_eq!(
            l.batch(1, 10, 0, 10),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        assert_eq!(
            l.batch(2, 10, 0, 20),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        // The connection dropped before batch 2's acknowledgement: the same process says
        // Hello again and resends batch 2, then goes on.
        assert_eq!(l.hello(1_000, 0), Arrival::Reconnect);
        assert_eq!(l.batch(2, 10, 0, 20), BatchVerdict::Duplicate { ack: 2 });
        assert_eq!(
            l.batch(3, 10, 0, 30),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        assert_eq!(
            (l.batches(), l.produced(), l.recorded(), l.restarts()),
            (3, 30, 30, 0)
        );
    }

    #[test]
    fn a_restart_numbers_from_one_again_and_is_not_taken_for_duplicates() {
        let mut l = BatchLedger::default();
        l.hello(1_000, 0);
        for seq in 1..=5 {
            l.batch(seq, 10, 0, seq * 10);
        }
        assert_eq!(l.hello(9_000, 0), Arrival::Restart { lost: 0 });
        assert_eq!(l.last_seq(), 0);
        assert_eq!(
            l.batch(1, 4, 0, 4),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        assert_eq!(
            l.batch(2, 4, 0, 8),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        assert_eq!(l.batch(2, 4, 0, 8), BatchVerdict::Duplicate { ack: 2 });
        // The new process's reconnects go on with its own numbering.
        assert_eq!(l.hello(9_000, 0), Arrival::Reconnect);
        assert_eq!(
            l.batch(3, 4, 0, 12),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        assert_eq!(
            (l.batches(), l.produced(), l.recorded(), l.restarts()),
            (8, 62, 62, 1)
        );
    }

    /// produced = recorded + lost + unaccounted across a restart: what the old process said
    /// it produced but never arrived (a gap in its numbering) is lost once it is gone, and
    /// produced is the sum of every process's own count.
    #[test]
    fn results_a_dead_process_never_delivered_count_as_lost() {
        let mut l = BatchLedger::default();
        l.hello(1_000, 0);
        assert_eq!(
            l.batch(1, 10, 0, 10),
            BatchVerdict::Record { gap: 0, lost: 0 }
        );
        // Batch 2 (10 results) never arrived; batch 3 reports 2 dropped from the agent's
        // buffer and 30 + 2 produced so far.
        assert_eq!(
            l.batch(3, 10, 2, 32),
            BatchVerdict::Record { gap: 1, lost: 0 }
        );
        assert_eq!(l.produced() - l.recorded() - l.dropped(), 10, "unaccounted");
        assert_eq!(l.hello(5_000, 0), Arrival::Restart { lost: 10 });
        l.batch(1, 7, 0, 7);
        let lost = l.dropped() + l.lost_in_restarts();
        assert_eq!((l.produced(), l.recorded(), lost), (39, 27, 12));
        assert_eq!(l.produced(), l.recorded() + lost, "nothing unaccounted");
        // A second restart before the new process delivered anything more.
        assert_eq!(l.hello(6_000, 0), Arrival::Restart { lost: 0 });
        assert_eq!((l.restarts(), l.batches()), (2, 4));
    }

    /// A coordinator restarted from a checkpoint that had recorded up to batch 2; the
    /// process had been told batches 3 and 4 were recorded. They are lost, counted exactly.
    #[test]
    fn batches_acknowledged_after_the_checkpoint_count_as_lost_in_the_resume() {
        let mut l = BatchLedger::default();
        l.hello(1_000, 0);
        l.batch(1, 10, 0, 10);
        l.batch(2, 10, 0, 20);
        let mut resumed: BatchLedger =
            serde_json::from_str(&serde_json::to_string(&l).expect("encodes")).expect("decodes");
        assert_eq!(resumed, l);
        assert_eq!(resumed.hello(1_000, 4), Arrival::Reconnect);
        // Batch 5: 10 results and 1 dropped; 20 + 10 + 10 + 10 + 1 produced so far.
        assert_eq!(
            resumed.batch(5, 10, 1, 51),
            BatchVerdict::Record { gap: 2, lost: 20 }
        );
        let lost = resumed.dropped() + resumed.lost_in_resume();
        assert_eq!((resumed.produced(), resumed.recorded(), lost), (51, 30, 21));
        // A gap that is not the acknowledged batches' is not counted (drops say it later).
        let mut l = BatchLedger::default();
        l.hello(1_000, 0);
        l.batch(1, 10, 0, 10);
        l.hello(1_000, 2);
        assert_eq!(
            l.batch(4, 10, 0, 40),
            BatchVerdict::Record { gap: 2, lost: 0 }
        );
    }
}
