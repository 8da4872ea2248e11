//! The report outbox: probe results waiting to be batched, and sealed batches waiting for the
//! coordinator's acknowledgement. Pure bookkeeping behind a mutex (never held across an
//! `await`), so the prober pushes results synchronously and the control client sends batches.

use std::collections::VecDeque;
use std::sync::Mutex;

use multinet_proto::control::{ProbeResult, ReportBatch};
use tokio::sync::Notify;

/// The largest batch, whatever the assignment says: keeps every frame far below
/// [`multinet_proto::control::codec::MAX_FRAME`] (a result encodes to under 50 bytes).
pub const BATCH_MAX_LIMIT: usize = 10_000;

/// Results and unacknowledged batches, shared by the prober and the control client.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<OutboxState>,
    /// Wakes the control client when a batch was sealed because it was full.
    sealed: Notify,
}

#[derive(Debug)]
struct OutboxState {
    /// Results per batch (at least 1).
    batch_max: usize,
    /// Unacknowledged batches kept for resending (at least 1).
    unacked_max: usize,
    /// Results not yet in a batch.
    pending: Vec<ProbeResult>,
    /// Results lost since the last sealed batch, reported in the next one.
    pending_dropped: u64,
    /// Results pushed since the agent started.
    produced: u64,
    /// The sequence number of the next batch (from 1, without gaps).
    next_seq: u64,
    /// Sealed batches not yet acknowledged, oldest first.
    unacked: VecDeque<ReportBatch>,
    /// The highest acknowledged sequence number (0: none).
    last_acked: u64,
}

impl Outbox {
    /// An empty outbox; `batch_max` and `unacked_max` are clamped to sane bounds.
    pub fn new(batch_max: usize, unacked_max: usize) -> Self {
        Self {
            state: Mutex::new(OutboxState {
                batch_max: batch_max.clamp(1, BATCH_MAX_LIMIT),
                unacked_max: unacked_max.max(1),
                pending: Vec::new(),
                pending_dropped: 0,
                produced: 0,
                next_seq: 1,
                unacked: VecDeque::new(),
                last_acked: 0,
            }),
            sealed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        // A panic while holding the lock leaves consistent bookkeeping: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds one result; seals a batch (and wakes the sender) when it is full.
    pub fn push(&self, result: ProbeResult) {
        let mut state = self.state();
        state.pending.push(result);
        state.produced += 1;
        if state.pending.len() >= state.batch_max {
            state.seal();
            drop(state);
            self.sealed.notify_one();
        }
    }

    /// Seals the pending results (and lost-result count) into a batch, if there is any.
    pub fn seal(&self) {
        self.state().seal();
    }

    /// Records an acknowledgement: every batch up to and including `seq` is recorded.
    pub fn ack(&self, seq: u64) {
        let mut state = self.state();
        state.last_acked = state.last_acked.max(seq);
        while state.unacked.front().is_some_and(|b| b.seq <= seq) {
            state.unacked.pop_front();
        }
    }

    /// The highest acknowledged sequence number (0: none).
    pub fn last_acked(&self) -> u64 {
        self.state().last_acked
    }

    /// The sequence number of the newest sealed batch (0: none yet).
    pub fn last_sealed(&self) -> u64 {
        self.state().next_seq - 1
    }

    /// Copies of the unacknowledged batches with a sequence number above `seq`, in order.
    pub fn unacked_after(&self, seq: u64) -> Vec<ReportBatch> {
        self.state()
            .unacked
            .iter()
            .filter(|b| b.seq > seq)
            .cloned()
            .collect()
    }

    /// How many batches wait for an acknowledgement.
    pub fn unacked_len(&self) -> usize {
        self.state().unacked.len()
    }

    /// Completes when a full batch was sealed since the last call.
    pub async fn batch_sealed(&self) {
        self.sealed.notified().await;
    }
}

impl OutboxState {
    fn seal(&mut self) {
        // A batch carrying only a lost-result count must not push out a batch of results.
        if self.pending.is_empty()
            && (self.pending_dropped == 0 || self.unacked.len() >= self.unacked_max)
        {
            return;
        }
        let batch = ReportBatch {
            seq: self.next_seq,
            results: std::mem::take(&mut self.pending),
            dropped: std::mem::take(&mut self.pending_dropped),
            produced: self.produced,
        };
        self.next_seq += 1;
        self.unacked.push_back(batch);
        while self.unacked.len() > self.unacked_max {
            if let Some(oldest) = self.unacked.pop_front() {
                // Its own lost-result count would vanish with it: carry both forward.
                self.pending_dropped += oldest.results.len() as u64 + oldest.dropped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multinet_proto::network::CephNetwork;
    use multinet_proto::probe::{Connection, Outcome, Payload, ProbeKind, Scheme};

    fn result(n: u64) -> ProbeResult {
        ProbeResult {
            network: CephNetwork::Public,
            target: "127.0.0.1:80".parse().expect("addr"),
            kind: ProbeKind {
                scheme: Scheme::Http,
                payload: Payload::Small,
                connection: Connection::Fresh,
            },
            started_ms: n,
            latency_us: 1,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn full_batches_seal_themselves_with_consecutive_seqs() {
        let outbox = Outbox::new(2, 10);
        for n in 0..5 {
            outbox.push(result(n));
        }
        outbox.seal();
        outbox.seal(); // nothing pending: no empty batch
        let batches = outbox.unacked_after(0);
        let seqs: Vec<_> = batches.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        let sizes: Vec<_> = batches.iter().map(|b| b.results.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(outbox.last_sealed(), 3);
    }

    #[test]
    fn acks_remove_batches_up_to_and_including_the_seq() {
        let outbox = Outbox::new(1, 10);
        for n in 0..4 {
            outbox.push(result(n));
        }
        outbox.ack(2);
        assert_eq!(outbox.last_acked(), 2);
        let seqs: Vec<_> = outbox.unacked_after(0).iter().map(|b| b.seq).collect();
        assert_eq!(seqs, [3, 4]);
        outbox.ack(1); // stale ack changes nothing
        assert_eq!(outbox.last_acked(), 2);
        assert_eq!(outbox.unacked_len(), 2);
    }

    #[test]
    fn overflow_drops_the_oldest_and_counts_it_in_the_next_batch() {
        let outbox = Outbox::new(2, 2);
        for n in 0..6 {
            outbox.push(result(n)); // batches 1, 2, 3: batch 1 is dropped when 3 is sealed
        }
        assert_eq!(outbox.unacked_len(), 2);
        outbox.push(result(6));
        outbox.seal(); // batch 4 carries batch 1's two results as dropped; batch 2 goes
        let batches = outbox.unacked_after(0);
        assert_eq!(batches.iter().map(|b| b.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(batches[1].dropped, 2);
        assert_eq!(batches[1].results.len(), 1);
        // Batch 2's loss waits for room instead of evicting another batch of results.
        outbox.seal();
        assert_eq!(outbox.last_sealed(), 4);
        outbox.ack(3);
        outbox.seal();
        let batches = outbox.unacked_after(0);
        assert_eq!(batches.iter().map(|b| b.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!((batches[1].results.len(), batches[1].dropped), (0, 2));
    }
}
