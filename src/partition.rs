//! `Partition`: one partition's log with its durability and visibility state.
//!
//! Group commit: a producer that needs its batch durable calls [`Partition::wait_durable`]. The
//! first waiter takes the flush lock, snapshots the log end offset and fsyncs on the blocking
//! pool; waiters that arrive meanwhile park on the `durable` watch and are released by that
//! fsync if it covers them, or run the next one, which covers everything appended during the
//! first. Concurrent producers therefore share fsyncs instead of queueing for one each.
//!
//! Visibility: for topics that fsync before acknowledging, the high watermark is the durable
//! offset, so a consumer never reads a record that a crash could take back. Otherwise it is the
//! log end offset, as on a single Kafka replica.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use strata_api::broker::FetchWaker;

use tokio::sync::watch;

use crate::log::cleaner::{self, CleanerStats};
use crate::log::follower::ReplicaAppend;
use crate::log::index::AbortedTxn;
use crate::log::{AppendInfo, FileSlice, LogConfig, LogError, UnifiedLog};
use crate::replica_manager::replica_set::ReplicaSet;

/// One partition hosted by this broker.
#[derive(Debug)]
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    /// The topic's id (a recreated topic of the same name has another).
    pub topic_id: uuid::Uuid,
    /// Whether this broker leads the partition (per the metadata image).
    leader: AtomicBool,
    /// The leader epoch per the metadata image.
    leader_epoch: AtomicI32,
    /// A mirror topic's partition, following a source cluster: its leader appends the source's
    /// batches (with the source's epochs) and takes no producer's.
    mirror: AtomicBool,
    /// A mirror made writable: the newest source epoch its log holds (-1: none). It takes
    /// writes only while leading in a higher epoch, so that its own batches never share an
    /// epoch with the source's (failback finds the divergence by epoch).
    epoch_floor: AtomicI32,
    log: Mutex<UnifiedLog>,
    /// Offsets below this value are fsync'd.
    durable: watch::Sender<u64>,
    /// Held by the one task running an fsync.
    flushing: tokio::sync::Mutex<()>,
    /// The consumers' fetches parked on this partition, woken when data may have become
    /// readable (the high watermark moved) or leadership changed.
    waiters: Mutex<Waiters>,
    /// The followers' fetches parked on it (they read to the log end): woken by every append
    /// as well, which consumers need not be.
    follower_waiters: Mutex<Waiters>,
    /// The partition's remote log (its manifest) has been loaded since this broker started, or
    /// the log has records: either way it knows the offset it continues at.
    remote_opened: AtomicBool,
    /// The replicas as this broker, leading, sees them (one replica: the leader alone).
    replica_set: Mutex<ReplicaSet>,
    /// The high watermark of a replicated partition, for produces waiting on `acks=all`.
    committed: watch::Sender<u64>,
    /// On the leader, Kafka's low watermark: the lowest log start offset of the in-sync
    /// replicas, for DeleteRecords waiting until every one deleted the records.
    low_watermark: watch::Sender<u64>,
}

/// How far above the newest mirrored source epoch a mirror made writable leads. The old
/// primary's epochs after the cut (its restarts and elections while lost) stay below it, so
/// that when it fails back its batches never share an epoch number with the new primary's and
/// the divergence point is found exactly, by epochs, as a follower finds it.
pub const MIRROR_EPOCH_GAP: i32 = 1_000;

/// The fetches registered with a partition. Fetches that ended (answered at their deadline)
/// are dropped once the list doubles since its last purge: Kafka's purgatory purges the same
/// way, so a partition that never changes does not collect every fetch that ever polled it.
#[derive(Debug, Default)]
struct Waiters {
    wakers: Vec<Arc<FetchWaker>>,
    purge_at: usize,
}

/// Wakes and empties a waiter list.
fn wake(list: &Mutex<Waiters>) {
    let woken = std::mem::take(&mut list.lock().unwrap_or_else(|p| p.into_inner()).wakers);
    for waker in woken.iter().filter(|w| !w.is_done()) {
        waker.wake();
    }
}

/// The least length at which a partition's waiter list is purged.
const WAITERS_PURGE_MIN: usize = 64;

impl Waiters {
    fn register(&mut self, waker: &Arc<FetchWaker>) {
        if self.wakers.len() >= self.purge_at.max(WAITERS_PURGE_MIN) {
            self.wakers.retain(|w| !w.is_done());
            self.purge_at = self.wakers.len() * 2;
        }
        self.wakers.push(Arc::clone(waker));
    }
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBound {
    /// The log end (a follower).
    LogEnd,
    /// The high watermark (a `read_uncommitted` consumer).
    HighWatermark,
    /// The last stable offset (a `read_committed` consumer), with the aborted transactions.
    LastStable,
}

/// What a read returns besides the records.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Records, if any.
    pub records: Option<FileSlice>,
    /// High watermark at the time of the read.
    pub high_watermark: u64,
    /// Last stable offset at the time of the read.
    pub last_stable_offset: u64,
    /// First offset of the log.
    pub log_start_offset: u64,
    /// For a `read_committed` read: the aborted transactions overlapping it.
    pub aborted: Option<Vec<AbortedTxn>>,
}

impl Partition {
    /// Wraps an opened log; it leads nothing until [`Self::set_leadership`].
    pub fn new(topic: String, index: i32, topic_id: uuid::Uuid, log: UnifiedLog) -> Self {
        let durable = watch::Sender::new(log.recovery_point());
        Self {
            topic,
            index,
            topic_id,
            leader: AtomicBool::new(false),
            leader_epoch: AtomicI32::new(log.leader_epoch()),
            log: Mutex::new(log),
            durable,
            flushing: tokio::sync::Mutex::new(()),
            remote_opened: AtomicBool::new(false),
            mirror: AtomicBool::new(false),
            epoch_floor: AtomicI32::new(-1),
            waiters: Mutex::default(),
            follower_waiters: Mutex::default(),
            replica_set: Mutex::default(),
            committed: watch::Sender::new(0),
            low_watermark: watch::Sender::new(0),
        }
    }

    /// The high watermark a replicated partition starts from when this broker opens it (its
    /// checkpoint), capped at the log end.
    pub fn start_high_watermark_at(&self, offset: u64) {
        let end = self.log().log_end_offset();
        self.replica_set().set_high_watermark(offset.min(end));
    }

    /// The replica set, locked. Taken after the log lock where both are held.
    pub fn replica_set(&self) -> MutexGuard<'_, ReplicaSet> {
        self.replica_set
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies the image's replicas and ISR. A broker that becomes leader starts the high
    /// watermark from what it had as a follower.
    pub fn set_replicas(&self, me: i32, replicas: Vec<i32>, isr: Vec<i32>, partition_epoch: i32) {
        let now = now_ms();
        let epoch = self.leader_epoch();
        let log = self.log();
        let mut set = self.replica_set();
        // Each leadership (epoch) starts afresh: followers must fetch again to count.
        if set.me != me || set.leader_epoch != epoch || set.replicas.is_empty() {
            // Fresh from disk, the checkpointed high watermark; else what this broker knew.
            let start = if set.replicas.is_empty() {
                set.high_watermark().min(log.log_end_offset())
            } else {
                self.high_watermark_of(&log, &set)
            };
            *set = ReplicaSet::new(me, replicas, isr, start, now);
            set.partition_epoch = partition_epoch;
            set.leader_epoch = epoch;
        } else {
            set.update(replicas, isr, partition_epoch, now);
        }
        let local_end = self.local_ack_offset(&log);
        set.advance_high_watermark(local_end);
        // The watch follows this leadership's high watermark, which may start above what an
        // earlier leadership left in it: a retried batch already committed below it must not
        // wait for a later record to move it.
        self.committed.send_replace(set.high_watermark());
    }

    /// Whether the partition has more than one replica.
    pub fn is_replicated(&self) -> bool {
        self.replica_set().is_replicated()
    }

    /// The offset below which the leader's own log counts toward the high watermark: durable
    /// for topics that fsync before acknowledging, else appended.
    fn local_ack_offset(&self, log: &UnifiedLog) -> u64 {
        if log.config().fsync_before_ack() {
            (*self.durable.borrow()).min(log.log_end_offset())
        } else {
            log.log_end_offset()
        }
    }

    /// Recomputes a replicated partition's high watermark after the leader's own log moved;
    /// wakes fetches and produces if it advanced.
    fn leader_progressed(&self) {
        if !self.is_replicated() {
            return;
        }
        let advanced = {
            let log = self.log();
            let mut set = self.replica_set();
            if !set.is_replicated() {
                return;
            }
            let local = self.local_ack_offset(&log);
            set.advance_high_watermark(local)
        };
        if let Some(hw) = advanced {
            self.committed.send_replace(hw);
            self.data_changed();
        }
    }

    /// Records a follower's fetch at `fetch_offset`; false if it is not a replica. Advances
    /// the high watermark when it can.
    pub fn follower_fetched(&self, replica_id: i32, fetch_offset: u64) -> bool {
        let advanced = {
            let log = self.log();
            let mut set = self.replica_set();
            let leader_end = log.log_end_offset();
            if !set.record_fetch(
                replica_id,
                fetch_offset.min(leader_end),
                leader_end,
                now_ms(),
            ) {
                return false;
            }
            let local = self.local_ack_offset(&log);
            set.advance_high_watermark(local)
        };
        if let Some(hw) = advanced {
            self.committed.send_replace(hw);
            self.data_changed();
        }
        true
    }

    /// Marks the partition as a mirror's (or not); applied before its leadership. A mirror
    /// that stops (`stopped_mirror`: failover or promote, seen now or, after a restart, in the
    /// image) keeps the newest source epoch in its log as its epoch floor.
    pub fn set_mirror(&self, mirror: bool, stopped_mirror: bool) {
        let was = self.mirror.swap(mirror, Ordering::AcqRel);
        if mirror || !stopped_mirror {
            return;
        }
        let latest = self.log().latest_epoch().unwrap_or(-1);
        // Seen stopping: the whole log is the source's. After a restart only an epoch above
        // the leader's can be known to be the source's.
        if was || latest > self.leader_epoch() {
            self.epoch_floor.fetch_max(latest, Ordering::AcqRel);
        }
    }

    /// Whether it is a mirror topic's partition that still follows its source.
    pub fn is_mirror(&self) -> bool {
        self.mirror.load(Ordering::Acquire)
    }

    /// For a mirror made writable whose leader epoch is not yet [`MIRROR_EPOCH_GAP`] above
    /// the newest source epoch it holds: the epoch the new one must exceed. It takes writes
    /// once the controller raised it.
    pub fn epoch_behind_log(&self) -> Option<i32> {
        let floor = self.epoch_floor.load(Ordering::Acquire);
        let wanted = floor.saturating_add(MIRROR_EPOCH_GAP);
        (floor >= 0 && self.leader_epoch() < wanted).then_some(wanted - 1)
    }

    /// Appends a source cluster's batches at their offsets (this broker leads a mirror
    /// partition); followers are woken and the high watermark moves as after a produce.
    pub fn append_mirrored(&self, records: &[u8]) -> Result<ReplicaAppend, LogError> {
        let (appended, must_flush) = {
            let mut log = self.log();
            let appended = log.append_as_follower(records, now_ms())?;
            (appended, log.config().fsync_before_ack())
        };
        if appended.batches > 0 {
            if self.is_replicated() {
                self.wake_followers();
            } else if !must_flush {
                self.data_changed();
            }
            if !must_flush {
                self.leader_progressed();
            }
        }
        Ok(appended)
    }

    /// Appends a fetch response's batches from the leader (this broker follows).
    pub fn append_from_leader(&self, records: &[u8]) -> Result<(), LogError> {
        self.log().append_as_follower(records, now_ms())?;
        Ok(())
    }

    /// DeleteRecords on the leader: the log starts at `offset` from now on (the caller keeps
    /// it at or below the high watermark); the low watermark follows as the in-sync
    /// followers move their own log starts.
    pub fn delete_records(&self, offset: u64) -> Result<watch::Receiver<u64>, LogError> {
        self.log().advance_log_start(offset)?;
        self.update_low_watermark();
        Ok(self.low_watermark.subscribe())
    }

    /// Records the log start offset a follower reported in its fetch.
    pub fn follower_log_start(&self, replica_id: i32, log_start_offset: u64) {
        let changed = self
            .replica_set()
            .record_log_start(replica_id, log_start_offset);
        if changed {
            self.update_low_watermark();
        }
    }

    fn update_low_watermark(&self) {
        let low = {
            let log = self.log();
            self.replica_set().low_watermark(log.log_start_offset())
        };
        self.low_watermark.send_if_modified(|current| {
            let changed = *current != low;
            *current = low;
            changed
        });
    }

    /// On a follower: moves the log start up to the leader's (Kafka's follower does the
    /// same from each fetch response), as far as this log reaches.
    pub fn learn_log_start(&self, leader_log_start: u64) -> Result<(), LogError> {
        let mut log = self.log();
        let to = leader_log_start.min(log.log_end_offset());
        log.advance_log_start(to).map(|_| ())
    }

    /// What a follower learns of the leader's high watermark (capped at its own log end).
    pub fn learn_high_watermark(&self, high_watermark: u64) {
        let advanced = {
            let log = self.log();
            let end = log.log_end_offset();
            let mut set = self.replica_set();
            let before = set.high_watermark();
            set.set_high_watermark(high_watermark.min(end));
            set.high_watermark() > before
        };
        // Consumers reading from this follower (KIP-392) see the new records.
        if advanced {
            self.data_changed();
        }
    }

    /// Truncates after the leader answered a diverging epoch: to where the leader's history
    /// under `epoch` ends (`leader_end`), or where this log's ends if earlier, as Kafka's
    /// fetcher decides (KIP-320). Returns the new log end.
    pub fn truncate_after_divergence(&self, epoch: i32, leader_end: i64) -> Result<u64, LogError> {
        let to = self.divergence_point(epoch, leader_end);
        self.truncate_to(to)?;
        Ok(to)
    }

    /// Where [`Self::truncate_after_divergence`] truncates to.
    pub fn divergence_point(&self, epoch: i32, leader_end: i64) -> u64 {
        {
            let log = self.log();
            let replica_end = log.log_end_offset();
            if leader_end < 0 {
                self.replica_set().high_watermark().min(replica_end)
            } else if epoch < 0 {
                (leader_end as u64).min(replica_end)
            } else {
                match log.end_offset_for_epoch(epoch) {
                    None => (leader_end as u64).min(replica_end),
                    // This log never had `epoch`: go back to the end of the epoch before it
                    // and ask again from there.
                    Some((own, own_end)) if own != epoch => own_end.min(replica_end),
                    Some((_, own_end)) => (leader_end as u64).min(own_end).min(replica_end),
                }
            }
        }
    }

    /// Removes every record at or above `offset`; durability and the high watermark follow.
    pub fn truncate_to(&self, offset: u64) -> Result<(), LogError> {
        let mut log = self.log();
        log.truncate_to(offset)?;
        let end = log.log_end_offset();
        self.durable.send_if_modified(|d| lower(d, end));
        self.replica_set().cap_high_watermark(end);
        Ok(())
    }

    /// Empties the log and starts it at `offset` (a follower behind the leader's log start).
    pub fn start_over_at(&self, offset: u64) -> Result<(), LogError> {
        let mut log = self.log();
        log.truncate_fully_and_start_at(offset)?;
        self.durable.send_replace(offset);
        let mut set = self.replica_set();
        set.cap_high_watermark(offset);
        set.set_high_watermark(offset);
        Ok(())
    }

    /// The ISR this leader should ask the controller for now, with the leader and partition
    /// epochs it is decided under; marked pending (see [`ReplicaSet::propose_isr`]).
    pub fn propose_isr(&self, max_lag_ms: i64) -> Option<(Vec<i32>, i32, i32)> {
        if !self.is_leader() {
            return None;
        }
        let now = now_ms();
        if !self.replica_set().may_change_isr(now, max_lag_ms) {
            return None;
        }
        let epoch = self.leader_epoch();
        let log = self.log();
        let epoch_start = log
            .epoch_start_offset(epoch)
            .unwrap_or(log.log_end_offset());
        let mut set = self.replica_set();
        if set.leader_epoch != epoch {
            return None;
        }
        let isr = set.propose_isr(now, max_lag_ms, epoch_start)?;
        Some((isr, epoch, set.partition_epoch))
    }

    /// Forgets a pending ISR the controller refused (it is proposed again if still right).
    pub fn isr_refused(&self) {
        self.replica_set().pending_isr = None;
    }

    /// Resolves once the high watermark of a replicated partition reaches `offset` (true), or
    /// once this broker no longer leads it in `epoch` (false): then the records may never be
    /// committed here, and the producer must ask the new leader (Kafka completes its delayed
    /// produces with NOT_LEADER_OR_FOLLOWER the same way).
    pub async fn wait_committed(&self, offset: u64, epoch: i32) -> bool {
        let mut committed = self.committed.subscribe();
        loop {
            if *committed.borrow_and_update() >= offset {
                return true;
            }
            if !self.is_leader() || self.leader_epoch() != epoch {
                return false;
            }
            if committed.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Applies the image's view: whether this broker leads, and the leader epoch. Batches
    /// appended from now on carry the epoch.
    pub fn set_leadership(&self, leader: bool, epoch: i32) -> Result<(), LogError> {
        let result = {
            let mut log = self.log();
            // A mirror's epochs are the source's, carried by its batches: its own leaderships
            // start none (they would split the source's history for its followers).
            let result = log.set_leader_epoch(epoch, leader && !self.is_mirror());
            self.leader_epoch.store(epoch, Ordering::Release);
            self.leader
                .store(leader && result.is_ok(), Ordering::Release);
            result
        };
        // A parked fetch answers NOT_LEADER_OR_FOLLOWER now rather than at its deadline, and a
        // produce waiting for the ISR learns that it will not be committed here.
        self.data_changed();
        self.committed.send_modify(|_| {});
        result
    }

    /// Registers a parked fetch, a follower's or a consumer's, woken at the partition's next
    /// change that concerns it.
    pub fn register_fetch(&self, waker: &Arc<FetchWaker>, follower: bool) {
        let list = if follower {
            &self.follower_waiters
        } else {
            &self.waiters
        };
        list.lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(waker);
    }

    /// Wakes every fetch parked on this partition (each registers again if it waits on).
    pub fn data_changed(&self) {
        wake(&self.waiters);
        wake(&self.follower_waiters);
    }

    /// Wakes the followers' parked fetches: records were appended past what they have.
    fn wake_followers(&self) {
        wake(&self.follower_waiters);
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The log, locked. Never held across an `.await`.
    pub fn log(&self) -> MutexGuard<'_, UnifiedLog> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends the single batch of a produce request.
    pub fn append(&self, batch: &[u8], now_ms: i64) -> Result<(AppendInfo, u64, bool), LogError> {
        self.append_guarded(batch, now_ms, None)
    }

    /// [`Self::append`] of a batch verified under `guard` if it was (KIP-890,
    /// [`UnifiedLog::append_verified`]).
    pub fn append_guarded(
        &self,
        batch: &[u8],
        now_ms: i64,
        guard: Option<u64>,
    ) -> Result<(AppendInfo, u64, bool), LogError> {
        let (info, log_start_offset, must_flush) = {
            let mut log = self.log();
            let info = match guard {
                Some(guard) => log.append_verified(batch, now_ms, guard)?,
                None => log.append(batch, now_ms)?,
            };
            (
                info,
                log.log_start_offset(),
                log.config().fsync_before_ack(),
            )
        };
        self.appended(must_flush);
        Ok((info, log_start_offset, must_flush))
    }

    /// Appends a coordinator's batch of a producer's transaction; see [`Self::append`].
    pub fn append_as_coordinator(
        &self,
        batch: &[u8],
        now_ms: i64,
    ) -> Result<(AppendInfo, u64, bool), LogError> {
        let (info, log_start_offset, must_flush) = {
            let mut log = self.log();
            let info = log.append_as_coordinator(batch, now_ms)?;
            (
                info,
                log.log_start_offset(),
                log.config().fsync_before_ack(),
            )
        };
        self.appended(must_flush);
        Ok((info, log_start_offset, must_flush))
    }

    /// Appends a transaction marker as leader (WriteTxnMarkers); see [`Self::append`].
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        marker: strata_record::control::Marker,
        now_ms: i64,
    ) -> Result<(AppendInfo, u64, bool), LogError> {
        let (info, log_start_offset, must_flush) = {
            let mut log = self.log();
            let info = log.append_marker(producer_id, epoch, marker, now_ms)?;
            // Forgets the transactions whose markers are committed already.
            let high_watermark = self.high_watermark_locked(&log);
            log.last_stable_offset(high_watermark);
            (
                info,
                log.log_start_offset(),
                log.config().fsync_before_ack(),
            )
        };
        self.appended(must_flush);
        Ok((info, log_start_offset, must_flush))
    }

    /// Followers, parked on the log end, are woken at once. Consumers only once the high
    /// watermark moves: for one replica without fsync-before-ack that is now; otherwise the
    /// flush or the followers' progress moves it, and wakes them.
    fn appended(&self, must_flush: bool) {
        if self.is_replicated() {
            self.wake_followers();
        } else if !must_flush {
            self.data_changed();
        }
        if !must_flush {
            self.leader_progressed();
        }
    }

    /// Reads up to `max_bytes` from `offset`, never past the high watermark for consumers.
    /// A follower (`to_log_end`) reads past it, up to the log end.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
        bound: ReadBound,
    ) -> Result<ReadResult, LogError> {
        let mut log = self.log();
        let high_watermark = self.high_watermark_locked(&log);
        let last_stable_offset = log.last_stable_offset(high_watermark);
        let limit = match bound {
            ReadBound::LogEnd => log.log_end_offset(),
            ReadBound::HighWatermark => high_watermark,
            ReadBound::LastStable => last_stable_offset,
        };
        let records = log
            .read(offset, max_bytes, limit, min_one)?
            .filter(|slice| slice.len > 0);
        // Bounded by the read's limit, not by where its bytes end: telling a consumer of an
        // aborted transaction beyond its records is harmless, missing one is not.
        let aborted = (bound == ReadBound::LastStable && records.is_some())
            .then(|| log.aborted_txns(offset.max(0) as u64, limit));
        Ok(ReadResult {
            records,
            high_watermark,
            last_stable_offset,
            log_start_offset: log.log_start_offset(),
            aborted,
        })
    }

    /// The last stable offset: where `read_committed` consumers stop.
    pub fn last_stable_offset(&self) -> u64 {
        let mut log = self.log();
        let high_watermark = self.high_watermark_locked(&log);
        log.last_stable_offset(high_watermark)
    }

    /// Records that the partition's remote log is loaded (see [`Self::takes_writes`]).
    pub fn set_remote_opened(&self) {
        self.remote_opened.store(true, Ordering::Release);
    }

    /// Whether the partition may take writes: a tiered partition whose local log is empty (a
    /// new broker, a lost disk, a restore) waits until its manifest is loaded, which may move
    /// the log's start above offsets acknowledged before the disk was lost.
    pub fn takes_writes(&self, tiered_store: bool) -> bool {
        if !tiered_store || self.remote_opened.load(Ordering::Acquire) {
            return true;
        }
        let log = self.log();
        if log.log_end_offset() > 0 {
            // Settled for good: produce need not take the log lock for this again.
            self.remote_opened.store(true, Ordering::Release);
            return true;
        }
        !log.config().tiered()
    }

    /// The offset up to which consumers may read.
    pub fn high_watermark(&self) -> u64 {
        let log = self.log();
        self.high_watermark_locked(&log)
    }

    fn high_watermark_locked(&self, log: &UnifiedLog) -> u64 {
        let set = self.replica_set();
        self.high_watermark_of(log, &set)
    }

    fn high_watermark_of(&self, log: &UnifiedLog, set: &ReplicaSet) -> u64 {
        if set.is_replicated() {
            set.high_watermark()
                .clamp(log.local_log_start_offset(), log.log_end_offset())
        } else if log.config().fsync_before_ack() {
            (*self.durable.borrow()).clamp(log.local_log_start_offset(), log.log_end_offset())
        } else {
            log.log_end_offset()
        }
    }

    /// Resolves once every offset below `offset` is durable.
    pub async fn wait_durable(&self, offset: u64) -> Result<(), LogError> {
        let durable = self.durable.subscribe();
        if *durable.borrow() >= offset {
            return Ok(());
        }
        // Waiters queue for the flush lock: the first fsyncs, and each after it finds its
        // records covered by that fsync or runs the next. (Waiting for the durable watch
        // instead lost wake-ups: a waiter woken by an fsync that did not cover it, while that
        // fsync still held the lock, waited for the next periodic flush, up to a second.)
        let _guard = self.flushing.lock().await;
        if *durable.borrow() >= offset {
            return Ok(());
        }
        self.flush().await
    }

    /// Fsyncs everything appended so far. Callers hold `flushing` or accept a redundant sync.
    pub async fn flush(&self) -> Result<(), LogError> {
        let target = self.log().flush_target();
        let Some(target) = target else {
            let end = self.log().log_end_offset();
            if self.durable.send_if_modified(|d| bump(d, end)) {
                self.data_changed();
                self.leader_progressed();
            }
            return Ok(());
        };
        let before = *self.durable.borrow();
        let started = std::time::Instant::now();
        let (synced, target) = tokio::task::spawn_blocking(move || (target.sync(), target))
            .await
            .map_err(|e| LogError::io(self.log().dir(), std::io::Error::other(e)))?;
        if let Err(e) = synced {
            // Wake the other waiters so that they see the failure by trying themselves.
            self.durable.send_modify(|_| {});
            return Err(e);
        }
        crate::metrics::BROKER.flushed(started.elapsed(), target.offset.saturating_sub(before));
        self.log().mark_flushed(&target, SystemTime::now());
        if self.durable.send_if_modified(|d| bump(d, target.offset)) {
            self.data_changed();
            self.leader_progressed();
        }
        Ok(())
    }

    /// Runs an fsync if `flush.messages`/`flush.ms` ask for one now.
    pub async fn flush_if_due(&self) -> Result<bool, LogError> {
        if !self.log().flush_due(SystemTime::now()) {
            return Ok(false);
        }
        let _guard = self.flushing.lock().await;
        self.flush().await?;
        Ok(true)
    }

    /// One compaction pass, if the log is compacted and dirty enough. Blocking: run it on the
    /// blocking pool. The lock is held only to plan and to swap each rewritten segment in.
    pub fn clean(&self, budget: usize, now_ms: i64) -> Result<Option<CleanerStats>, LogError> {
        let plan = {
            let mut log = self.log();
            let high_watermark = self.high_watermark_locked(&log);
            let last_stable_offset = log.last_stable_offset(high_watermark);
            log.cleaning_plan(now_ms, last_stable_offset)
        };
        let Some(plan) = plan else {
            return Ok(None);
        };
        let mut stats = CleanerStats::default();
        let (map, end) = cleaner::build_offset_map(&plan, budget, now_ms, &mut stats)?;
        if end <= plan.first_dirty && !plan.tombstones_due {
            return Ok(None);
        }
        let clean_to = end.max(plan.first_dirty);
        for segment in plan.segments.iter().filter(|s| s.base_offset < clean_to) {
            let cleaned = cleaner::clean_segment(&plan, segment, &map, now_ms, &mut stats)?;
            if let Some(cleaned) = cleaned {
                self.log().install_cleaned(cleaned)?;
            }
        }
        let mut log = self.log();
        log.set_tombstone_expiry(stats.next_tombstone_expiry);
        log.set_first_dirty(clean_to)?;
        Ok(Some(stats))
    }

    /// Applies a changed topic config.
    pub fn set_config(&self, config: LogConfig) {
        self.log().set_config(config);
    }

    /// A receiver of the durable offset.
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn lower(current: &mut u64, to: u64) -> bool {
    if to < *current {
        *current = to;
        true
    } else {
        false
    }
}

fn bump(current: &mut u64, to: u64) -> bool {
    if to > *current {
        *current = to;
        true
    } else {
        false
    }
}

/// Shared handle to a partition.
pub type PartitionRef = Arc<Partition>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::log::batch::tests::sample_batch;

    #[test]
    fn an_empty_tiered_log_takes_writes_once_its_manifest_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let tiered = LogConfig::default();
        assert!(tiered.tiered(), "topics are tiered by default");
        let log = UnifiedLog::open(&dir.path().join("t-0"), tiered.clone(), 0, true).unwrap();
        let partition = Partition::new("t".into(), 0, uuid::Uuid::new_v4(), log);
        assert!(
            partition.takes_writes(false),
            "no object store: nothing to wait for"
        );
        assert!(
            !partition.takes_writes(true),
            "the manifest may move the log's start"
        );
        partition.set_remote_opened();
        assert!(partition.takes_writes(true));
        // A log with records is past that question.
        let log = UnifiedLog::open(&dir.path().join("u-0"), tiered, 0, true).unwrap();
        let partition = Partition::new("u".into(), 0, uuid::Uuid::new_v4(), log);
        partition
            .log()
            .append(&sample_batch(1, 0, None), 0)
            .unwrap();
        assert!(partition.takes_writes(true));
    }

    #[tokio::test]
    async fn a_reopened_replicated_partition_starts_at_its_checkpointed_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let log = UnifiedLog::open(dir.path(), LogConfig::default(), 0, true).unwrap();
        let partition = Partition::new("t".into(), 0, uuid::Uuid::new_v4(), log);
        for n in 0..5 {
            partition
                .log()
                .append(&sample_batch(2, n, None), n)
                .unwrap();
        }
        partition.flush().await.unwrap();
        // Records 4..10 may never have reached the other in-sync replica.
        partition.start_high_watermark_at(4);
        partition.set_leadership(true, 3).unwrap();
        partition.set_replicas(1, vec![1, 2], vec![1, 2], 0);
        assert_eq!(partition.high_watermark(), 4);
        assert_eq!(
            partition
                .read(0, 1 << 20, true, ReadBound::HighWatermark)
                .unwrap()
                .high_watermark,
            4
        );
        // A retried batch below it is committed already: its produce does not wait.
        let committed = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            partition.wait_committed(4, 3),
        )
        .await;
        assert_eq!(committed, Ok(true));
        // The follower reports what it has: the high watermark moves on.
        assert!(partition.follower_fetched(2, 10));
        assert_eq!(partition.high_watermark(), 10);
    }

    /// A producer that starts waiting while another task's fsync holds the flush lock, and
    /// that fsync does not cover it, runs the next fsync itself as soon as the lock is free:
    /// it never waits for the periodic flush (none runs here).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_not_covered_by_a_running_fsync_runs_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let log = UnifiedLog::open(dir.path(), LogConfig::default(), 0, true).unwrap();
        let partition = Arc::new(Partition::new("t".into(), 0, uuid::Uuid::new_v4(), log));
        partition
            .log()
            .append(&sample_batch(4, 0, None), 0)
            .unwrap();
        // Another task's fsync (say the periodic flush) holds the lock...
        let running = partition.flushing.lock().await;
        let waiter = {
            let partition = Arc::clone(&partition);
            tokio::spawn(async move { partition.wait_durable(4).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // ...and ends having made durable less than the waiter needs.
        partition.durable.send_replace(2);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(running);
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "the waiter was left for a flush nobody runs"
        );
        assert_eq!(*partition.durable().borrow(), 4);
    }
}
