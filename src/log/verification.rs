//! KIP-890's guard against hanging transactions, on the partition leader.
//!
//! A transactional batch that would open its producer's transaction on a partition is written
//! only after the coordinator confirms that the partition is in that transaction. Verification
//! starts here with a fresh guard (a number no other verification has); the batch is then
//! appended with it, and the append is refused unless the guard is still the producer's. The
//! producer's next transactional batch, or the marker ending its transaction, clears the
//! guard. So a verification that
//! raced an abort (verified, then the transaction ended, then the batch arrives) no longer
//! matches and cannot open a transaction the coordinator knows nothing about. Guards live only
//! in memory: a new leader verifies again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{LogError, Result};

/// Guards of verifications whose batch never came (its producer gave up) are forgotten past
/// this many, oldest first, so that a flood of producer ids cannot grow the map for ever.
const MAX_PENDING: usize = 10_000;

/// The next guard, unique in this process; never 0, `strata_api::broker::OPEN_TXN_GUARD`.
static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);

/// One producer's pending verification.
#[derive(Debug, Clone, Copy)]
struct Pending {
    guard: u64,
    epoch: i16,
}

/// The pending verifications of one partition's producers.
#[derive(Debug, Default)]
pub struct Verifications {
    pending: HashMap<i64, Pending>,
}

impl Verifications {
    /// The guard for a batch of `producer_id` at `epoch` that needs verifying: the pending
    /// one of that epoch (pipelined batches share it), else a new one.
    pub fn start(&mut self, producer_id: i64, epoch: i16) -> u64 {
        if let Some(pending) = self.pending.get(&producer_id)
            && pending.epoch == epoch
        {
            return pending.guard;
        }
        if self.pending.len() >= MAX_PENDING
            && let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.guard)
                .map(|(id, _)| *id)
        {
            self.pending.remove(&oldest);
        }
        let guard = NEXT_GUARD.fetch_add(1, Ordering::Relaxed);
        self.pending.insert(producer_id, Pending { guard, epoch });
        guard
    }

    /// Refuses a batch opening a transaction of `producer_id` unless `guard` is its pending
    /// verification's.
    pub fn check(&self, producer_id: i64, guard: u64) -> Result<()> {
        match self.pending.get(&producer_id) {
            Some(pending) if pending.guard == guard => Ok(()),
            _ => Err(LogError::InvalidTxnState(format!(
                "the transaction of producer {producer_id} ended while this partition was being \
                 verified with its coordinator"
            ))),
        }
    }

    /// Forgets `producer_id`'s verification: a transactional batch of it was written.
    pub fn clear(&mut self, producer_id: i64) {
        self.pending.remove(&producer_id);
    }

    /// A marker of `producer_id` at `epoch` was written: the verifications of the transaction
    /// it ended are void. `bumped`: the marker carries a newer epoch than the producer's
    /// batches here (transaction version 2, or a fencing abort), so a verification already at
    /// that epoch is of the producer's next transaction, started while the marker was on its
    /// way, and stays.
    pub fn end_txn(&mut self, producer_id: i64, epoch: i16, bumped: bool) {
        if let Some(pending) = self.pending.get(&producer_id)
            && (pending.epoch < epoch || (pending.epoch == epoch && !bumped))
        {
            self.pending.remove(&producer_id);
        }
    }

    /// Number of pending verifications.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_voids_the_verifications_of_the_transaction_it_ends_only() {
        let mut v = Verifications::default();
        // Version 1: the next transaction keeps the epoch, so a verification under way is a
        // late batch of the ended one.
        let late = v.start(7, 3);
        v.end_txn(7, 3, false);
        assert!(v.check(7, late).is_err());
        // Version 2: the marker moves the producer to epoch 4, and its next transaction's
        // first batch may already be verifying at 4.
        let next = v.start(7, 4);
        v.end_txn(7, 4, true);
        assert!(v.check(7, next).is_ok());
        // An older epoch's verification is void whatever the marker.
        let old = v.start(8, 1);
        v.end_txn(8, 2, true);
        assert!(v.check(8, old).is_err());
    }

    #[test]
    fn pipelined_batches_share_a_guard_and_a_new_epoch_gets_a_new_one() {
        let mut v = Verifications::default();
        let first = v.start(7, 0);
        assert_eq!(v.start(7, 0), first);
        assert!(v.check(7, first).is_ok());
        let bumped = v.start(7, 1);
        assert_ne!(bumped, first);
        assert!(v.check(7, first).is_err(), "the old epoch's guard is gone");
        assert!(v.check(7, bumped).is_ok());
    }

    #[test]
    fn a_guard_cleared_by_a_marker_no_longer_admits_its_batch() {
        let mut v = Verifications::default();
        let guard = v.start(7, 0);
        v.clear(7);
        assert!(matches!(
            v.check(7, guard),
            Err(LogError::InvalidTxnState(_))
        ));
        // A new verification is a new guard: the stale one stays refused.
        let again = v.start(7, 0);
        assert_ne!(again, guard);
        assert!(v.check(7, guard).is_err());
        assert!(v.check(8, again).is_err(), "guards are per producer");
    }

    #[test]
    fn pending_verifications_are_bounded() {
        let mut v = Verifications::default();
        let first = v.start(0, 0);
        for id in 1..=MAX_PENDING as i64 {
            v.start(id, 0);
        }
        assert_eq!(v.len(), MAX_PENDING);
        assert!(v.check(0, first).is_err(), "the oldest was forgotten");
        assert!(
            v.check(MAX_PENDING as i64, v.pending[&(MAX_PENDING as i64)].guard)
                .is_ok()
        );
    }
}
