//! `ReplicaSet`: what the leader of a partition knows of its replicas (Kafka's `Partition`
//! leader state with its `Replica`s): the assignment and ISR from the metadata image, each
//! follower's log end offset as its fetches report it, and the high watermark derived from
//! them.
//!
//! A follower asks for offset `n` only once everything below `n` is durable on it (it fsyncs
//! before fetching on, for topics that fsync before acknowledging), so its fetch offset is
//! its durable log end. The high watermark is the lowest of those over the ISR, the leader's
//! own durable end included: a record below it is fsync'd on every in-sync replica, and
//! `acks=all` waits for it. It never moves back while this broker leads.

use std::collections::HashMap;

/// One follower as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FollowerState {
    /// The offset of its last fetch (all below it is on the follower), if it fetched.
    pub log_end_offset: Option<u64>,
    /// When it last had everything the leader had (ms since the epoch).
    pub last_caught_up_ms: i64,
    /// When it last fetched.
    pub last_fetch_ms: i64,
    /// The log start offset it reported in its last fetch, if it did.
    pub log_start_offset: Option<u64>,
}

/// The leader's view of a partition's replicas.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSet {
    /// This broker.
    pub me: i32,
    /// All replicas, in preference order.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The partition epoch of the assignment and ISR above (AlterPartition fencing).
    pub partition_epoch: i32,
    /// The leader epoch this set was made for.
    pub leader_epoch: i32,
    /// An ISR sent to the controller and not yet seen in the image (Kafka's pending ISR).
    /// Until then the high watermark counts the members of both, so a replica joining is
    /// never behind a committed record, and one leaving still holds commits back.
    pub pending_isr: Option<Vec<i32>>,
    followers: HashMap<i32, FollowerState>,
    high_watermark: u64,
}

impl ReplicaSet {
    /// The set of a partition this broker now leads, starting from `high_watermark` (its
    /// own, as a follower or an earlier leader knew it).
    pub fn new(
        me: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        high_watermark: u64,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != me)
            .map(|r| {
                (
                    *r,
                    FollowerState {
                        log_end_offset: None,
                        // A replica of the ISR has until the lag limit to show up.
                        last_caught_up_ms: now_ms,
                        last_fetch_ms: 0,
                        log_start_offset: None,
                    },
                )
            })
            .collect();
        Self {
            me,
            replicas,
            isr,
            partition_epoch: 0,
            leader_epoch: -1,
            pending_isr: None,
            followers,
            high_watermark,
        }
    }

    /// Applies a new assignment or ISR from the image, keeping what is known of followers
    /// that stay.
    pub fn update(&mut self, replicas: Vec<i32>, isr: Vec<i32>, partition_epoch: i32, now_ms: i64) {
        self.followers.retain(|id, _| replicas.contains(id));
        for r in replicas.iter().filter(|r| **r != self.me) {
            self.followers.entry(*r).or_insert(FollowerState {
                log_end_offset: None,
                last_caught_up_ms: now_ms,
                last_fetch_ms: 0,
                log_start_offset: None,
            });
        }
        self.replicas = replicas;
        self.isr = isr;
        if partition_epoch != self.partition_epoch {
            self.pending_isr = None;
        }
        self.partition_epoch = partition_epoch;
    }

    /// The ISR members, pending ones included (see [`Self::pending_isr`]).
    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let pending = self.pending_isr.iter().flatten();
        self.isr
            .iter()
            .chain(pending.filter(|r| !self.isr.contains(r)))
            .copied()
    }

    /// The ISR this leader should ask for now, if it differs: without followers lagging
    /// for longer than `max_lag_ms`, with those caught up with the high watermark and the
    /// leader epoch's start (`epoch_start`). None while a change is pending. The change is
    /// marked pending.
    pub fn propose_isr(
        &mut self,
        now_ms: i64,
        max_lag_ms: i64,
        epoch_start: u64,
    ) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() || !self.is_replicated() {
            return None;
        }
        let lagging = self.lagging(now_ms, max_lag_ms);
        let joining = self.caught_up(epoch_start, now_ms, max_lag_ms);
        if lagging.is_empty() && joining.is_empty() {
            return None;
        }
        let isr: Vec<i32> = self
            .replicas
            .iter()
            .copied()
            .filter(|r| {
                *r == self.me
                    || (self.isr.contains(r) && !lagging.contains(r))
                    || joining.contains(r)
            })
            .collect();
        if isr == self.isr {
            return None;
        }
        self.pending_isr = Some(isr.clone());
        Some(isr)
    }

    /// Whether a follower might join the ISR (cheap check before [`Self::propose_isr`]).
    pub fn may_change_isr(&self, now_ms: i64, max_lag_ms: i64) -> bool {
        self.pending_isr.is_none()
            && self.is_replicated()
            && (!self.lagging(now_ms, max_lag_ms).is_empty()
                || self.replicas.iter().any(|r| {
                    !self.isr.contains(r)
                        && self.followers.get(r).is_some_and(|f| {
                            now_ms - f.last_fetch_ms <= max_lag_ms / 2
                                && f.log_end_offset
                                    .is_some_and(|end| end >= self.high_watermark)
                        })
                }))
    }

    /// Whether the partition has replicas besides the leader.
    pub fn is_replicated(&self) -> bool {
        self.replicas.len() > 1
    }

    /// Whether `id` is a replica of the partition (and not the leader).
    pub fn is_follower(&self, id: i32) -> bool {
        self.followers.contains_key(&id)
    }

    /// A follower's state.
    pub fn follower(&self, id: i32) -> Option<&FollowerState> {
        self.followers.get(&id)
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// Records a fetch of follower `id` at `fetch_offset` while the leader's log ends at
    /// `leader_end`. Returns false if `id` is not a follower of the partition.
    pub fn record_fetch(
        &mut self,
        id: i32,
        fetch_offset: u64,
        leader_end: u64,
        now_ms: i64,
    ) -> bool {
        let Some(state) = self.followers.get_mut(&id) else {
            return false;
        };
        state.log_end_offset = Some(fetch_offset);
        state.last_fetch_ms = now_ms;
        if fetch_offset >= leader_end {
            state.last_caught_up_ms = now_ms;
        }
        true
    }

    /// Records the log start offset a follower reported in its fetch; returns whether it
    /// changed.
    pub fn record_log_start(&mut self, id: i32, log_start_offset: u64) -> bool {
        self.followers.get_mut(&id).is_some_and(|state| {
            state.log_start_offset.replace(log_start_offset) != Some(log_start_offset)
        })
    }

    /// Kafka's low watermark: the lowest log start offset of the leader (`leader_start`) and
    /// the in-sync followers; below it, records are gone from every in-sync replica. A member
    /// that has not reported holds it at 0.
    pub fn low_watermark(&self, leader_start: u64) -> u64 {
        self.maximal_isr()
            .filter(|id| *id != self.me)
            .map(|id| {
                self.followers
                    .get(&id)
                    .and_then(|f| f.log_start_offset)
                    .unwrap_or(0)
            })
            .fold(leader_start, u64::min)
    }

    /// Recomputes the high watermark from the leader's durable end `local_end` and the ISR's
    /// fetch offsets; returns it if it moved. An ISR member that has not fetched yet holds it
    /// where it is.
    pub fn advance_high_watermark(&mut self, local_end: u64) -> Option<u64> {
        let mut lowest = local_end;
        for id in self.maximal_isr().filter(|id| *id != self.me) {
            match self.followers.get(&id).and_then(|f| f.log_end_offset) {
                Some(end) => lowest = lowest.min(end),
                None => return None,
            }
        }
        (lowest > self.high_watermark).then(|| {
            self.high_watermark = lowest;
            lowest
        })
    }

    /// Sets the high watermark (a follower learns it from its leader; never backwards).
    pub fn set_high_watermark(&mut self, offset: u64) -> bool {
        let moved = offset > self.high_watermark;
        if moved {
            self.high_watermark = offset;
        }
        moved
    }

    /// Lowers the high watermark to `offset` (after a truncation of this replica's log).
    pub fn cap_high_watermark(&mut self, offset: u64) {
        self.high_watermark = self.high_watermark.min(offset);
    }

    /// The in-sync followers that have not caught up for longer than `max_lag_ms`
    /// (`replica.lag.time.max.ms`): the ISR should shrink without them.
    pub fn lagging(&self, now_ms: i64, max_lag_ms: i64) -> Vec<i32> {
        self.isr
            .iter()
            .copied()
            .filter(|id| *id != self.me)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_some_and(|f| now_ms - f.last_caught_up_ms > max_lag_ms)
            })
            .collect()
    }

    /// The followers out of the ISR that have caught up with the high watermark and with the
    /// current epoch's start (`epoch_start`): the ISR should grow with them.
    ///
    /// Only a follower that is fetching counts (Kafka expands the ISR when a fetch arrives):
    /// one cut off right after it caught up keeps its old offset, which would otherwise look
    /// caught up again as soon as the shrink without it moved the high watermark to it.
    pub fn caught_up(&self, epoch_start: u64, now_ms: i64, max_lag_ms: i64) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| *id != self.me && !self.isr.contains(id))
            .filter(|id| {
                self.followers.get(id).is_some_and(|f| {
                    now_ms - f.last_fetch_ms <= max_lag_ms / 2
                        && f.log_end_offset
                            .is_some_and(|end| end >= self.high_watermark && end >= epoch_start)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ReplicaSet {
        ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2, 3], 0, 1_000)
    }

    #[test]
    fn the_high_watermark_is_the_lowest_durable_end_over_the_isr() {
        let mut set = three();
        assert!(set.is_replicated());
        // Nobody fetched yet: nothing is committed.
        assert_eq!(set.advance_high_watermark(10), None);
        assert!(set.record_fetch(2, 10, 10, 1_100));
        assert_eq!(set.advance_high_watermark(10), None, "3 has not fetched");
        assert!(set.record_fetch(3, 4, 10, 1_100));
        assert_eq!(set.advance_high_watermark(10), Some(4));
        // The leader's own durable end bounds it too.
        assert!(set.record_fetch(3, 10, 12, 1_200));
        assert_eq!(set.advance_high_watermark(8), Some(8));
        assert_eq!(set.high_watermark(), 8);
        // Never backwards.
        assert!(set.record_fetch(2, 5, 12, 1_300));
        assert_eq!(set.advance_high_watermark(12), None);
        assert_eq!(set.high_watermark(), 8);
        assert!(!set.record_fetch(7, 1, 12, 1_300), "not a replica");
    }

    #[test]
    fn a_replica_out_of_the_isr_does_not_hold_the_high_watermark() {
        let mut set = three();
        set.update(vec![1, 2, 3], vec![1, 2], 1, 1_000);
        set.record_fetch(2, 6, 6, 1_100);
        assert_eq!(set.advance_high_watermark(6), Some(6));
        // 3 catches up: it may rejoin.
        assert_eq!(set.caught_up(0, 2_000, 30_000), Vec::<i32>::new());
        set.record_fetch(3, 6, 6, 1_200);
        assert_eq!(set.caught_up(0, 2_000, 30_000), vec![3]);
        assert_eq!(
            set.caught_up(7, 2_000, 30_000),
            Vec::<i32>::new(),
            "not past the epoch start"
        );
    }

    #[test]
    fn isr_changes_are_proposed_once_and_count_while_pending() {
        let mut set = three();
        set.record_fetch(2, 10, 10, 2_000);
        set.record_fetch(3, 4, 10, 2_000);
        assert_eq!(set.advance_high_watermark(10), Some(4));
        // 3 stops catching up: the ISR shrinks without it, once.
        set.record_fetch(2, 10, 10, 32_000);
        assert!(set.may_change_isr(33_000, 30_000));
        assert_eq!(set.propose_isr(33_000, 30_000, 0), Some(vec![1, 2]));
        assert_eq!(set.propose_isr(33_000, 30_000, 0), None, "pending");
        // Until the image shows it, 3 still holds the high watermark back.
        assert_eq!(set.advance_high_watermark(10), None);
        set.update(vec![1, 2, 3], vec![1, 2], 1, 33_100);
        assert_eq!(set.advance_high_watermark(10), Some(10));
        // 3 catches up: it rejoins, and counts at once.
        set.record_fetch(3, 10, 10, 34_000);
        assert_eq!(set.propose_isr(34_000, 30_000, 0), Some(vec![1, 2, 3]));
        set.record_fetch(2, 12, 12, 34_100);
        assert_eq!(
            set.advance_high_watermark(12),
            None,
            "3 is pending and at 10"
        );
    }

    #[test]
    fn a_follower_cut_off_after_catching_up_does_not_rejoin_until_it_fetches() {
        let mut set = three();
        set.record_fetch(2, 10, 10, 2_000);
        set.record_fetch(3, 10, 10, 2_000);
        assert_eq!(set.advance_high_watermark(10), Some(10));
        // Both stop fetching: the ISR shrinks to the leader, whose end is theirs.
        assert_eq!(set.propose_isr(33_000, 30_000, 0), Some(vec![1]));
        set.update(vec![1, 2, 3], vec![1], 1, 33_100);
        assert!(!set.may_change_isr(33_200, 30_000));
        assert_eq!(
            set.propose_isr(33_200, 30_000, 0),
            None,
            "no fetch, no rejoin"
        );
        set.record_fetch(2, 10, 10, 33_300);
        assert_eq!(set.propose_isr(33_400, 30_000, 0), Some(vec![1, 2]));
    }

    #[test]
    fn followers_that_stop_catching_up_are_lagging() {
        let mut set = three();
        set.record_fetch(2, 10, 10, 2_000);
        set.record_fetch(3, 5, 10, 2_000);
        assert_eq!(set.lagging(30_000, 30_000), Vec::<i32>::new());
        assert_eq!(set.lagging(31_001, 30_000), vec![3]);
        set.record_fetch(2, 20, 20, 31_000);
        assert_eq!(set.lagging(40_000, 30_000), vec![3]);
    }
}
