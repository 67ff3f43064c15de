//! `UnifiedLog`: one partition's log across both tiers (Kafka's `UnifiedLog`), over the
//! [`LocalLog`] on disk and the bookkeeping of what the remote tier holds.
//!
//! It owns the decisions: validation of produced batches, producer state (idempotence), offset
//! assignment, which segments retention deletes, what compaction may touch, which closed
//! segments are ready for upload. The local log does the file work.
//!
//! Offsets, by Kafka's names: `log_start_offset` (the first offset a consumer can read, in the
//! remote tier when there is one), `local_log_start_offset` (the first on local disk),
//! `remote_log_start_offset` and `remote_log_end_offset` (the remote tier's range; segments
//! below the latter are uploaded), `recovery_point` (durable below), `log_end_offset` (the
//! next offset). The high watermark is the partition's (see `crate::partition`).
//!
//! DeleteRecords may put the log start inside the first local segment, above the local log
//! start: the latter stays the base of the first segment on disk (Kafka raises it too), so a
//! follower that starts its log at the leader's local log start receives whole batches from
//! their first offset and learns the log start from the leader's fetch responses.

use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use super::batch::{self, BatchHeader};
use super::cleaner::{CleanedSegment, CleaningPlan, SegmentSnapshot};
use super::config::{LogConfig, TimestampType};
use super::error::{LogError, Result};
use super::index::AbortedTxn;
use super::leader_epoch::LeaderEpochCache;
use super::local_log::{FlushTarget, LocalLog, sync_dir};
use super::producer_state::{ProducerStateManager, SequenceCheck};
use super::segment::{FileSlice, LogSegment};
use super::verification::Verifications;

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Offset after the last record.
    pub next_offset: u64,
    /// The broker timestamp for `LogAppendTime` topics, -1 otherwise.
    pub log_append_time: i64,
    /// The batch was a retry of one already in the log; nothing was appended.
    pub duplicate: bool,
}

/// A producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Sequence of its last record (-1: none kept).
    pub last_sequence: i32,
    /// Max timestamp of its last batch (-1: none kept).
    pub last_timestamp: i64,
    /// Epoch of the coordinator of its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction.
    pub current_txn_first_offset: Option<u64>,
}

/// A closed segment ready to be uploaded.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    /// First offset.
    pub base_offset: u64,
    /// Offset after its last record.
    pub next_offset: u64,
    /// Bytes of batches.
    pub size: u64,
    /// The open file (stays readable if retention deletes it meanwhile).
    pub file: std::sync::Arc<File>,
}

/// What the remote tier holds, as the remote log manager last said.
#[derive(Debug, Clone, Copy, Default)]
struct RemoteTier {
    log_start_offset: Option<u64>,
    log_end_offset: u64,
    bytes: u64,
}

/// The file in a partition directory holding the cleaner's checkpoint.
const CLEANER_CHECKPOINT: &str = "cleaner.checkpoint";

/// The file in a partition directory holding the log start offset DeleteRecords set (or a
/// follower learned from its leader), when it is inside a segment rather than at one's base.
const LOG_START_CHECKPOINT: &str = "log-start-offset.checkpoint";

/// The file in a partition directory holding the producer state below the local log start
/// (Kafka's producer snapshot at the log start), so that a restart knows the producers whose
/// batches local retention deleted without asking the remote tier.
const PRODUCER_SNAPSHOT: &str = "producer-state.json";

/// One partition's log.
#[derive(Debug)]
pub struct UnifiedLog {
    pub(super) local: LocalLog,
    pub(super) config: LogConfig,
    pub(super) producer_state: ProducerStateManager,
    /// The producer state of the batches below the local log start: what retention deleted
    /// locally, or what the remote tier said (see [`Self::merge_producer_history`]).
    pub(super) producer_base: ProducerStateManager,
    /// Whether the producer state covers the whole log. A tiered log that starts above 0 on
    /// local disk (after a restart, or a replica started at a leader's local log start) lacks
    /// the producers whose last batches are only in the remote tier until it merges theirs.
    pub(super) producer_history_complete: bool,
    /// The epoch stamped on batches this replica appends as leader.
    leader_epoch: i32,
    /// Leader epoch → first offset, for truncation after leader changes.
    pub(super) epochs: LeaderEpochCache,
    /// The cleaner's checkpoint: offsets below it are compacted.
    pub(super) first_dirty: u64,
    /// When a tombstone kept by the last pass may go (ms since the epoch).
    tombstone_expiry: Option<i64>,
    remote: RemoteTier,
    /// Records below this offset are deleted (DeleteRecords, KIP-107) though their segments
    /// may still be on disk: the log starts here at the earliest.
    deleted_below: u64,
    /// Transactions whose markers may not be below the high watermark yet (see `txn`).
    pub(super) completed_txns: Vec<super::txn::CompletedTxn>,
    /// KIP-890 verifications of transactional batches, while this replica leads.
    pub(super) verifications: Verifications,
}

impl UnifiedLog {
    /// Opens the log in `dir`, creating it if needed; after an unclean shutdown
    /// (`clean == false`) the segments past `recovery_point` are recovered first.
    pub fn open(dir: &Path, config: LogConfig, recovery_point: u64, clean: bool) -> Result<Self> {
        let local = LocalLog::open(dir, &config, recovery_point, clean)?;
        let mut epochs = LeaderEpochCache::open(dir)?;
        // Entries past what survived a crash were never written.
        epochs.truncate_from_end(local.log_end_offset())?;
        let local_start = local.local_log_start_offset();
        // A snapshot of another start (a crash between writing it and deleting the segments,
        // or one left from before a truncation) is not this log's.
        let base = std::fs::read(dir.join(PRODUCER_SNAPSHOT))
            .ok()
            .and_then(|bytes| ProducerStateManager::from_json(&bytes, local_start));
        let producer_history_complete = !config.tiered() || local_start == 0 || base.is_some();
        let mut log = Self {
            local,
            config,
            producer_state: ProducerStateManager::default(),
            producer_base: base.unwrap_or_default(),
            producer_history_complete,
            leader_epoch: epochs.latest_epoch().unwrap_or(0),
            epochs,
            first_dirty: read_checkpoint(&dir.join(CLEANER_CHECKPOINT)),
            tombstone_expiry: None,
            remote: RemoteTier::default(),
            deleted_below: read_checkpoint(&dir.join(LOG_START_CHECKPOINT)),
            verifications: Verifications::default(),
            completed_txns: Vec::new(),
        };
        log.rebuild_producer_state()?;
        Ok(log)
    }

    /// Rebuilds the producer state from the batches on disk, and adds to the leader epoch
    /// cache any epoch they hold that its checkpoint missed (a crash between the append and
    /// the checkpoint write, or a log from before the checkpoint existed).
    ///
    /// Transactions are replayed too, and each segment's transaction index is rebuilt from its
    /// markers (an abort whose transaction began below the local log keeps the entry the index
    /// had).
    pub(super) fn rebuild_producer_state(&mut self) -> Result<()> {
        self.producer_state = self.producer_base.clone();
        self.completed_txns.clear();
        let mut observed = false;
        let mut indexes = Vec::new();
        for segment in self.local.segments().iter() {
            let mut aborted = Vec::new();
            segment.scan_batches(|header, position| {
                observed |= self
                    .epochs
                    .observe(header.partition_leader_epoch, header.base_offset);
                if !header.is_control() {
                    self.producer_state.update(header);
                    return Ok(());
                }
                let Some(marker) = Self::marker_at(segment, position, header)? else {
                    return Ok(());
                };
                let (pid, at) = (header.producer_id, header.base_offset);
                match self.producer_state.end_txn(
                    pid,
                    header.producer_epoch,
                    marker.coordinator_epoch,
                ) {
                    Some(first_offset) => {
                        self.completed_txns.push(super::txn::CompletedTxn {
                            first_offset,
                            marker_offset: at,
                        });
                        if !marker.commit {
                            aborted.push(AbortedTxn {
                                producer_id: pid,
                                first_offset,
                                last_offset: at,
                                last_stable_offset: self
                                    .producer_state
                                    .first_ongoing_offset()
                                    .unwrap_or(at + 1),
                            });
                        }
                    }
                    None if !marker.commit => aborted.extend(
                        segment
                            .txn_index()
                            .entries()
                            .iter()
                            .find(|e| e.producer_id == pid && e.last_offset == at),
                    ),
                    None => {}
                }
                Ok(())
            })?;
            indexes.push((segment.base_offset(), aborted));
        }
        for (base, aborted) in indexes {
            if let Some(segment) = self.local.segments_mut().get_mut(base) {
                segment.txn_index_mut().replace(aborted)?;
            }
        }
        if observed {
            self.epochs.flush()?;
        }
        Ok(())
    }

    /// Validates and appends the single batch of a produce request, assigning its offsets.
    pub fn append(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_checked(batch, now_ms, true, None)
    }

    /// KIP-890: what a transactional batch of `producer_id` at `epoch` needs before it is
    /// appended. `None`: nothing, its transaction is open here. Otherwise the guard to append
    /// it with ([`Self::append_verified`]) once the coordinator has confirmed the partition.
    pub fn start_verification(&mut self, producer_id: i64, epoch: i16) -> Option<u64> {
        (!self.producer_state.ongoing_at(producer_id, epoch))
            .then(|| self.verifications.start(producer_id, epoch))
    }

    /// [`Self::append`] for a batch verified under `guard`: a transactional batch that would
    /// open its producer's transaction is refused unless the guard is still current.
    pub fn append_verified(&mut self, batch: &[u8], now_ms: i64, guard: u64) -> Result<AppendInfo> {
        self.append_checked(batch, now_ms, true, Some(guard))
    }

    /// Appends a batch a coordinator wrote for a producer's transaction (TxnOffsetCommit):
    /// it carries no sequence, so only the transaction is tracked (Kafka's coordinator
    /// origin).
    pub fn append_as_coordinator(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.append_checked(batch, now_ms, false, None)
    }

    fn append_checked(
        &mut self,
        batch: &[u8],
        now_ms: i64,
        sequences: bool,
        guard: Option<u64>,
    ) -> Result<AppendInfo> {
        let header = batch::validate_single_batch(batch)?;
        if header.size() > self.config.max_message_bytes {
            return Err(LogError::RecordTooLarge {
                size: header.size(),
                max: self.config.max_message_bytes,
            });
        }
        let check = if sequences {
            self.producer_state.check(&header)?
        } else {
            self.producer_state.check_epoch(&header)?;
            SequenceCheck::Append
        };
        if let SequenceCheck::Duplicate(original) = check {
            return Ok(AppendInfo {
                base_offset: original.first_offset,
                next_offset: original.first_offset + header.last_offset_delta as u64 + 1,
                log_append_time: match self.config.timestamp_type {
                    TimestampType::LogAppendTime => original.max_timestamp,
                    TimestampType::CreateTime => -1,
                },
                duplicate: true,
            });
        }
        if let Some(guard) = guard
            && header.is_transactional()
            && !self
                .producer_state
                .ongoing_at(header.producer_id, header.producer_epoch)
        {
            self.verifications.check(header.producer_id, guard)?;
        }
        if self.config.cleanup_policy.compacts() {
            check_keys(batch)?;
        }
        self.local.maybe_roll(&self.config, header.size(), now_ms)?;
        let base_offset = self.local.log_end_offset();
        // Only the header changes: it is rewritten in a copy and written out beside the
        // producer's records, which are never copied.
        let (mut head, records) = batch::split_header(batch);
        batch::assign_offset(&mut head, base_offset, self.leader_epoch);
        let log_append_time = match self.config.timestamp_type {
            TimestampType::LogAppendTime => {
                batch::set_log_append_time(&mut head, records, now_ms);
                now_ms
            }
            TimestampType::CreateTime => -1,
        };
        let header = BatchHeader::parse(&head)?;
        self.epochs.assign(self.leader_epoch, base_offset)?;
        self.local.append(&head, records, &header)?;
        self.producer_state.update(&header);
        if header.is_transactional() {
            self.verifications.clear(header.producer_id);
        }
        Ok(AppendInfo {
            base_offset,
            next_offset: self.local.log_end_offset(),
            log_append_time,
            duplicate: false,
        })
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self) -> Result<()> {
        self.local.roll(&self.config)
    }

    /// Up to `max_bytes` of local batches from the one holding `offset`, none at or above
    /// `max_offset`; `None` at the log end. See [`LogSegment::read`] for `min_one`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        max_offset: u64,
        min_one: bool,
    ) -> Result<Option<FileSlice>> {
        self.local.read(offset, max_bytes, max_offset, min_one)
    }

    /// The earliest local offset whose timestamp is at or above `timestamp`, with it.
    pub fn find_offset_by_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        self.local.find_offset_by_timestamp(timestamp)
    }

    /// The largest local timestamp and the first offset carrying it (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<(u64, i64)> {
        self.local.max_timestamp()
    }

    /// What to fsync to make everything appended so far durable; `None` if it already is.
    pub fn flush_target(&self) -> Option<FlushTarget> {
        self.local.flush_target()
    }

    /// Records that `target` was synced.
    pub fn mark_flushed(&mut self, target: &FlushTarget, now: SystemTime) {
        self.local.mark_flushed(target, now);
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now.
    pub fn flush_due(&self, now: SystemTime) -> bool {
        self.local.flush_due(&self.config, now)
    }

    /// What the cleaner should compact now: `None` unless the topic is compacted and the
    /// dirty share of its closed segments reaches `min.cleanable.dirty.ratio`. Nothing from
    /// `last_stable_offset` on is cleaned.
    pub fn cleaning_plan(&self, now_ms: i64, last_stable_offset: u64) -> Option<CleaningPlan> {
        if !self.config.cleanup_policy.compacts() {
            return None;
        }
        let active_base = self.active_base_offset();
        let segments: Vec<SegmentSnapshot> = self
            .local
            .segments()
            .closed()
            .map(|s| SegmentSnapshot {
                base_offset: s.base_offset(),
                path: s.path().to_owned(),
                file: s.file(),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
            })
            .collect();
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let first_dirty = self.first_dirty.max(self.local_log_start_offset());
        let dirty: u64 = segments
            .iter()
            .enumerate()
            .filter(|(n, _)| {
                let next = segments.get(n + 1).map_or(active_base, |s| s.base_offset);
                next > first_dirty
            })
            .map(|(_, s)| s.size)
            .sum();
        let tombstones_due = self.tombstone_expiry.is_some_and(|t| t <= now_ms);
        let dirty_enough =
            dirty > 0 && dirty as f64 >= total as f64 * self.config.min_cleanable_dirty_ratio;
        if !dirty_enough && !tombstones_due {
            return None;
        }
        let uncleanable_from = active_base.min(last_stable_offset);
        let aborted = self
            .local
            .segments()
            .iter()
            .flat_map(|s| s.txn_index().entries().iter().copied())
            .collect();
        Some(CleaningPlan {
            dir: self.local.dir().to_owned(),
            segments,
            first_dirty,
            active_base,
            delete_retention_ms: self.config.delete_retention_ms,
            min_compaction_lag_ms: self.config.min_compaction_lag_ms,
            tombstones_due,
            uncleanable_from,
            aborted,
        })
    }

    /// Swaps a cleaned segment in for the one it was made from, unless that one changed (was
    /// deleted by retention meanwhile). Returns whether it was swapped in.
    pub fn install_cleaned(&mut self, cleaned: CleanedSegment) -> Result<bool> {
        self.local.replace_with_cleaned(&self.config, cleaned)
    }

    /// Base offset of the active segment, the one appends go to.
    pub fn active_base_offset(&self) -> u64 {
        self.local.segments().active().base_offset()
    }

    /// Records when the earliest tombstone the last pass kept may go.
    pub fn set_tombstone_expiry(&mut self, expiry: Option<i64>) {
        self.tombstone_expiry = expiry;
    }

    /// Records that offsets below `offset` are compacted (durably, so a restart does not
    /// redo the work).
    pub fn set_first_dirty(&mut self, offset: u64) -> Result<()> {
        self.first_dirty = offset;
        let dir = self.local.dir();
        let path = dir.join(CLEANER_CHECKPOINT);
        let tmp = dir.join(format!("{CLEANER_CHECKPOINT}.tmp"));
        std::fs::write(&tmp, format!("{offset}\n")).map_err(|e| LogError::io(&tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        sync_dir(dir)
    }

    /// Moves the log start up to `offset` (DeleteRecords, or a follower following its
    /// leader's), durably, and deletes the segments wholly below it. Returns whether it moved;
    /// the caller keeps `offset` at or below the high watermark.
    pub fn advance_log_start(&mut self, offset: u64) -> Result<bool> {
        if offset <= self.log_start_offset() {
            return Ok(false);
        }
        self.deleted_below = offset;
        let dir = self.local.dir();
        let path = dir.join(LOG_START_CHECKPOINT);
        let tmp = dir.join(format!("{LOG_START_CHECKPOINT}.tmp"));
        std::fs::write(&tmp, format!("{offset}\n")).map_err(|e| LogError::io(&tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        sync_dir(dir)?;
        self.delete_below_log_start()?;
        Ok(true)
    }

    /// Deletes the closed segments wholly below the log start DeleteRecords set; returns how
    /// many.
    fn delete_below_log_start(&mut self) -> Result<usize> {
        // Kafka's rule: a segment goes when the next one starts at or below the log start, so
        // a segment compaction emptied never moves the start by going.
        let segments = self.local.segments();
        let doomed: Vec<u64> = segments
            .iter()
            .zip(segments.iter().skip(1))
            .take_while(|(_, next)| next.base_offset() <= self.deleted_below)
            .map(|(segment, _)| segment.base_offset())
            .collect();
        self.delete_segments(&doomed)?;
        Ok(doomed.len())
    }

    fn delete_segments(&mut self, doomed: &[u64]) -> Result<()> {
        self.local.delete_segments(doomed)?;
        if !doomed.is_empty() {
            self.producer_base = self.producer_state.below(self.local_log_start_offset());
            self.save_producer_base()?;
        }
        Ok(())
    }

    /// Deletes segments past `retention.ms` or beyond `retention.bytes`; returns how many.
    ///
    /// For a tiered topic, total retention (`retention.ms`, `retention.bytes` over both tiers)
    /// applies to every segment: what it removes is dead in both tiers, and the remote log
    /// manager removes the remote side. Local retention (`local.retention.*`, usually
    /// shorter) removes only segments already uploaded.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        // Below the log start nothing is kept, whatever the policy (as Kafka's
        // `deleteLogStartOffsetBreachedSegments`).
        let below_start = self.delete_below_log_start()?;
        if !self.config.cleanup_policy.deletes() {
            return Ok(below_start);
        }
        let tiered = self.config.tiered();
        let older_than = |limit: i64, segment: &LogSegment| {
            limit >= 0 && segment.max_timestamp() >= 0 && now_ms - segment.max_timestamp() > limit
        };
        let total_ms = self.config.retention_ms;
        let local_ms = self.config.local_retention_limit_ms();
        // Like Kafka, an expired active segment is rolled so that it can be deleted too.
        let active = self.local.segments().active();
        let roll_active = older_than(total_ms, active) || (tiered && older_than(local_ms, active));
        if roll_active && active.size() > 0 {
            self.roll()?;
        }
        let remote_end = if tiered {
            self.remote.log_end_offset
        } else {
            0
        };
        let remote_bytes = if tiered { self.remote.bytes } else { 0 };
        let segments = self.local.segments();
        let local_only: u64 = segments
            .iter()
            .filter(|s| s.base_offset() >= remote_end)
            .map(LogSegment::size)
            .sum();
        // Bytes over retention.bytes beyond what deleting the remote tier frees.
        let mut total_excess = match self.config.retention_bytes {
            limit if limit >= 0 => (remote_bytes + local_only)
                .saturating_sub(limit as u64)
                .saturating_sub(remote_bytes),
            _ => 0,
        };
        let mut local_excess = match self.config.local_retention_limit_bytes() {
            limit if tiered && limit >= 0 => segments.size().saturating_sub(limit as u64),
            _ => 0,
        };
        let mut doomed = Vec::new();
        for segment in segments.closed() {
            let uploaded = tiered && segment.next_offset() <= remote_end;
            let size = segment.size();
            let go = if uploaded {
                older_than(total_ms, segment)
                    || older_than(local_ms, segment)
                    || size <= local_excess
            } else {
                older_than(total_ms, segment) || size <= total_excess
            };
            if !go {
                break;
            }
            doomed.push(segment.base_offset());
            local_excess = local_excess.saturating_sub(size);
            if !uploaded {
                total_excess = total_excess.saturating_sub(size);
            }
        }
        self.delete_segments(&doomed)?;
        Ok(below_start + doomed.len())
    }

    /// Writes the producer state below the local log start to its file, if it is whole; the
    /// file names the offset, so a stale one is never taken for this log's.
    pub(super) fn save_producer_base(&self) -> Result<()> {
        // Only a tiered log keeps what local retention deleted; elsewhere those producers go
        // with their records, as in Kafka, and a restart need not know them.
        if !self.config.tiered() {
            return Ok(());
        }
        let dir = self.local.dir();
        let path = dir.join(PRODUCER_SNAPSHOT);
        if !self.producer_history_complete {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(&path, e)),
                _ => Ok(()),
            };
        }
        let tmp = dir.join(format!("{PRODUCER_SNAPSHOT}.tmp"));
        let bytes = self.producer_base.to_json(self.local_log_start_offset());
        std::fs::write(&tmp, bytes).map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))
    }

    /// Every producer the log's state knows: id, epoch, last sequence and the max timestamp of
    /// its last batch, the coordinator epoch of its last marker and its open transaction's
    /// first offset.
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        self.producer_state
            .producers()
            .map(|(id, epoch, batches)| {
                let (txn, coordinator_epoch) = self.producer_state.txn_of(id);
                let (last_sequence, last_timestamp) = batches
                    .back()
                    .map_or((-1, -1), |last| (last.last_sequence, last.max_timestamp));
                ActiveProducer {
                    producer_id: id,
                    epoch,
                    last_sequence,
                    last_timestamp,
                    coordinator_epoch,
                    current_txn_first_offset: txn,
                }
            })
            .collect()
    }

    /// The largest idempotent producer id in the log's producer state.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.producer_state.max_producer_id()
    }

    /// Whether the producer state covers the whole log (see [`Self::merge_producer_history`]).
    pub fn producer_history_complete(&self) -> bool {
        self.producer_history_complete
    }

    /// Adds the producer state of the log below the local log start, as the remote tier kept
    /// it (`older`: the state below some offset at or above the local start): producers whose
    /// last batches are only remote are known again, for duplicate detection and fencing.
    pub fn merge_producer_history(&mut self, older: ProducerStateManager) -> Result<()> {
        self.producer_base = older.below(self.local_log_start_offset());
        self.producer_state = self
            .producer_state
            .replayed_onto(self.producer_base.clone());
        self.producer_history_complete = true;
        self.save_producer_base()
    }

    /// Records that nothing below the local log start has producer state to merge.
    pub fn mark_producer_history_complete(&mut self) -> Result<()> {
        self.producer_history_complete = true;
        self.save_producer_base()
    }

    /// The producer state below `offset`, to keep with an uploaded segment that ends there;
    /// `None` while it lacks part of the history.
    pub fn producer_state_below(&self, offset: u64) -> Option<ProducerStateManager> {
        self.producer_history_complete
            .then(|| self.producer_state.below(offset))
    }

    /// Closed segments entirely below `max_offset` that are not uploaded yet, oldest first.
    pub fn upload_candidates(&self, max_offset: u64) -> Vec<SegmentFile> {
        self.local
            .segments()
            .closed()
            // A segment may straddle the remote end: another leader uploaded its own segments,
            // cut at other offsets. Its batches from the remote end on are uploaded.
            .filter(|s| {
                s.next_offset() > self.remote.log_end_offset.max(self.deleted_below)
                    && s.next_offset() <= max_offset
            })
            .filter(|s| s.size() > 0)
            .map(|s| SegmentFile {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size: s.size(),
                file: s.file(),
            })
            .collect()
    }

    /// Records what the remote tier holds: its first offset, the offset below which segments
    /// are uploaded, and its size.
    pub fn set_remote_tier(&mut self, start: Option<u64>, end: u64, bytes: u64) {
        self.remote = RemoteTier {
            log_start_offset: start,
            log_end_offset: end,
            bytes,
        };
    }

    /// First offset in the remote tier, if any segment is there.
    pub fn remote_log_start_offset(&self) -> Option<u64> {
        self.remote.log_start_offset
    }

    /// Offset after the remote tier's last record: local segments below it are uploaded.
    pub fn remote_log_end_offset(&self) -> u64 {
        self.remote.log_end_offset
    }

    /// The first offset a consumer can read: in the remote tier if there is one, else on local
    /// disk, unless DeleteRecords deleted records above that. Offsets between the remote
    /// tier's end and the local log's start (a log restored above offsets lost with a disk)
    /// hold no records: a read there continues locally.
    pub fn log_start_offset(&self) -> u64 {
        let local = self.local_log_start_offset();
        let stored = self.remote.log_start_offset.map_or(local, |r| r.min(local));
        stored.max(self.deleted_below)
    }

    /// The first offset on local disk.
    pub fn local_log_start_offset(&self) -> u64 {
        self.local.local_log_start_offset()
    }

    /// Offset the next record will get.
    pub fn log_end_offset(&self) -> u64 {
        self.local.log_end_offset()
    }

    /// Offsets below this are known durable.
    pub fn recovery_point(&self) -> u64 {
        self.local.recovery_point()
    }

    /// Starts an empty log at `offset` (a broker restoring a partition whose history is in
    /// the remote tier). Refused unless the log is empty.
    pub fn start_empty_at(&mut self, offset: u64) -> Result<()> {
        self.local.start_empty_at(&self.config, offset)?;
        self.producer_base.clear();
        self.producer_history_complete = !self.config.tiered() || offset == 0;
        self.save_producer_base()
    }

    /// Trims the active segment's indexes; the log must not be appended to afterwards.
    pub fn close(&mut self) -> Result<()> {
        self.local.close()
    }

    /// Total bytes on local disk.
    pub fn size(&self) -> u64 {
        self.local.size()
    }

    /// Number of local segments.
    pub fn segment_count(&self) -> usize {
        self.local.segments().len()
    }

    /// The epoch stamped on appended batches.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Sets the epoch stamped on batches appended from now on. As leader, the epoch starts at
    /// the log end offset (Kafka's `maybeAssignEpochStartOffset`): a follower whose log went
    /// past it under an older epoch is told to truncate there.
    pub fn set_leader_epoch(&mut self, epoch: i32, leader: bool) -> Result<()> {
        // Guards are one leadership's: markers a follower replicates never clear them.
        if epoch != self.leader_epoch || !leader {
            self.verifications = Verifications::default();
        }
        self.leader_epoch = epoch;
        if leader {
            self.epochs.assign(epoch, self.local.log_end_offset())?;
        }
        Ok(())
    }

    /// The effective topic config.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies a changed topic config; new segment settings apply from the next roll.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        self.local.dir()
    }
}

/// Kafka refuses records without a key in a compacted topic: compaction could not keep them.
/// The refusal names each such record (KIP-467), in Kafka's words.
fn check_keys(batch: &[u8]) -> Result<()> {
    let mut bytes = bytes::Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
        .map_err(|e| LogError::InvalidRecord(format!("batch does not decode: {e}")))?;
    let records: Vec<(i32, String)> = set
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(index, _)| {
            (
                index as i32,
                "Compacted topic cannot accept message without key.".to_owned(),
            )
        })
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    Err(LogError::InvalidRecords {
        message: record_errors_message(&records),
        records,
    })
}

/// Kafka's message for a batch refused for some of its records (`LogValidator`).
fn record_errors_message(records: &[(i32, String)]) -> String {
    let shown: Vec<String> = records
        .iter()
        .take(3)
        .map(|(index, message)| format!("RecordError(batchIndex={index}, message='{message}')"))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        records.len(),
        shown.join(", ")
    )
}

/// The cleaner checkpoint, 0 when absent or unreadable (the whole log is then dirty).
fn read_checkpoint(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "unified_log_test.rs"]
mod tests;
