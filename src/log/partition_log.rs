//! `PartitionLog`: the ordered segments of one partition.
//!
//! It owns appends (validation, producer checks, offset assignment, rolling), reads by offset and
//! timestamp, crash recovery and retention. It is synchronous and single-writer: the caller holds
//! it behind a lock and does fsyncs outside that lock with the handles [`PartitionLog::flush_target`]
//! hands out, so a slow fsync never blocks appends (group commit).
//!
//! Invariants, checked after every change in debug builds:
//! `log_start_offset <= recovery_point <= log_end_offset`, segments are contiguous and the last
//! one is the active segment.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::batch::{self, BatchHeader};
use super::cleaner::{self, CleanedSegment, CleaningPlan, SegmentSnapshot};
use super::config::{LogConfig, TimestampType};
use super::error::{LogError, Result};
use super::producer_state::{ProducerStateManager, SequenceCheck};
use super::segment::{FileSlice, LogSegment, SegmentSettings};

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

/// Files to fsync and the offset they make durable.
#[derive(Debug)]
pub struct FlushTarget {
    /// Segment files that may hold unflushed bytes.
    pub files: Vec<Arc<File>>,
    /// Offsets below this are durable once every file is synced.
    pub offset: u64,
    /// The partition directory.
    pub dir: PathBuf,
    /// Set when a roll created a segment file since the last flush: the directory entry must
    /// be durable too before the records in it are. The count of directory changes covered.
    pub dir_changes: Option<u64>,
}

impl FlushTarget {
    /// Fsyncs the files, then the directory if needed. Blocking: run it off the reactor, and
    /// outside the partition lock, so appends go on meanwhile (group commit).
    pub fn sync(&self) -> Result<()> {
        for file in &self.files {
            file.sync_data().map_err(|e| LogError::io(&self.dir, e))?;
        }
        if self.dir_changes.is_some() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// One partition's log on local disk.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<u64, LogSegment>,
    log_start_offset: u64,
    log_end_offset: u64,
    recovery_point: u64,
    /// Segment files created in the directory (by rolls) since it was opened, and how many
    /// of them a directory fsync has made durable: rolls leave that fsync to the next flush.
    dir_changes: u64,
    dir_synced: u64,
    unflushed_messages: u64,
    last_flush: SystemTime,
    producer_state: ProducerStateManager,
    leader_epoch: i32,
    /// The cleaner's checkpoint: offsets below it are compacted.
    first_dirty: u64,
    /// When a tombstone kept by the last pass may go (ms since the epoch).
    tombstone_expiry: Option<i64>,
    /// First offset in the remote tier, if any segment is there.
    remote_start: Option<u64>,
    /// Segments below this offset are safely in the remote tier.
    uploaded_end: u64,
    /// Bytes of batches in the remote tier.
    remote_bytes: u64,
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
    pub file: std::sync::Arc<std::fs::File>,
}

/// The file in a partition directory holding the cleaner's checkpoint.
const CLEANER_CHECKPOINT: &str = "cleaner.checkpoint";

impl PartitionLog {
    /// Opens the log in `dir`, creating it if needed.
    ///
    /// After an unclean shutdown (`clean == false`) every segment that may hold data above the
    /// checkpointed `recovery_point` is recovered: CRCs checked, torn tail truncated, indexes
    /// rebuilt; segments after a corrupt one are deleted, as in Kafka.
    pub fn open(dir: &Path, config: LogConfig, recovery_point: u64, clean: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        cleaner::recover_leftovers(dir)?;
        let mut base_offsets = segment_base_offsets(dir)?;
        if base_offsets.is_empty() {
            base_offsets.push(0);
        }
        let recover_from = if clean {
            u64::MAX
        } else {
            base_offsets
                .iter()
                .copied()
                .filter(|&base| base <= recovery_point)
                .max()
                .unwrap_or(0)
        };
        let settings = segment_settings(&config);
        let mut segments = BTreeMap::new();
        let mut cut_short = false;
        for (n, &base) in base_offsets.iter().enumerate() {
            if cut_short {
                // An earlier segment lost its tail to recovery: what follows is not contiguous.
                tracing::warn!(dir = %dir.display(), base, "deleting segment after a truncated one");
                delete_segment_files(dir, base)?;
                continue;
            }
            let recover = base >= recover_from;
            let mut segment = LogSegment::open(dir, base, settings, recover)?;
            if recover {
                // What survived the crash may sit only in the page cache: make it durable
                // before it counts as recovered, as Kafka flushes after recovery.
                segment.flush()?;
            }
            if base_offsets.get(n + 1).is_some() {
                segment.close()?;
                // Compaction leaves gaps between segments; only a cut tail breaks the chain.
                cut_short = segment.truncated_by_recovery();
            }
            segments.insert(base, segment);
        }
        let log_end_offset = segments
            .values()
            .next_back()
            .map_or(0, LogSegment::next_offset);
        let log_start_offset = *segments.keys().next().unwrap_or(&0);
        let mut log = Self {
            dir: dir.to_owned(),
            config,
            segments,
            log_start_offset,
            log_end_offset,
            // Clean: everything was flushed at shutdown. Unclean: recovered segments were
            // flushed above. Either way the whole log is durable now.
            recovery_point: log_end_offset,
            dir_changes: 0,
            dir_synced: 0,
            unflushed_messages: 0,
            last_flush: SystemTime::now(),
            producer_state: ProducerStateManager::default(),
            leader_epoch: 0,
            first_dirty: read_checkpoint(&dir.join(CLEANER_CHECKPOINT)),
            tombstone_expiry: None,
            remote_start: None,
            uploaded_end: 0,
            remote_bytes: 0,
        };
        log.rebuild_producer_state()?;
        log.check_invariants();
        Ok(log)
    }

    fn rebuild_producer_state(&mut self) -> Result<()> {
        self.producer_state.clear();
        for segment in self.segments.values() {
            segment.scan_headers(|header| self.producer_state.update(header))?;
        }
        Ok(())
    }

    /// Validates and appends the single batch of a produce request, assigning its offsets.
    pub fn append(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo> {
        let header = batch::validate_single_batch(batch)?;
        if header.size() > self.config.max_message_bytes {
            return Err(LogError::RecordTooLarge {
                size: header.size(),
                max: self.config.max_message_bytes,
            });
        }
        if let SequenceCheck::Duplicate(original) = self.producer_state.check(&header)? {
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
        if self.config.cleanup_policy.compacts() {
            check_keys(batch)?;
        }
        self.maybe_roll(header.size(), now_ms)?;
        let base_offset = self.log_end_offset;
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
        self.active_segment_mut()
            .append([&head, records], &header)?;
        self.producer_state.update(&header);
        self.log_end_offset = header.next_offset();
        self.unflushed_messages += header.records_count as u64;
        self.check_invariants();
        Ok(AppendInfo {
            base_offset,
            next_offset: self.log_end_offset,
            log_append_time,
            duplicate: false,
        })
    }

    fn active_segment(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_segment_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Rolls to a new segment when the active one is full or old enough.
    fn maybe_roll(&mut self, incoming_bytes: u64, now_ms: i64) -> Result<()> {
        let active = self.active_segment();
        if active.size() == 0 {
            return Ok(());
        }
        let too_big = active.size() + incoming_bytes > self.config.segment_bytes;
        let age_ms = SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
        let too_old = age_ms
            .duration_since(active.created())
            .is_ok_and(|age| age.as_millis() >= self.config.segment_ms as u128);
        if too_big || too_old || active.indexes_full() {
            self.roll()?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self) -> Result<()> {
        let base = self.log_end_offset;
        if self.active_segment().base_offset() == base {
            return Ok(());
        }
        self.active_segment_mut().close()?;
        let segment = LogSegment::open(&self.dir, base, segment_settings(&self.config), false)?;
        self.segments.insert(base, segment);
        // The new file's directory entry must survive a crash like its data: the next flush
        // fsyncs the directory before the records in it count as durable. Not here: this runs
        // inside an append, under the partition lock.
        self.dir_changes += 1;
        tracing::debug!(dir = %self.dir.display(), base, "rolled log segment");
        Ok(())
    }

    /// Up to `max_bytes` of batches from the one holding `offset`, none at or above
    /// `max_offset`; `None` at the log end. See [`LogSegment::read`] for `min_one`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u64,
        max_offset: u64,
        min_one: bool,
    ) -> Result<Option<FileSlice>> {
        if offset < self.log_start_offset as i64 || offset > self.log_end_offset as i64 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let offset = offset as u64;
        for (_, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            if let Some(slice) = segment.read(offset, max_bytes, max_offset, min_one)? {
                return Ok(Some(slice));
            }
        }
        Ok(None)
    }

    /// The earliest offset whose timestamp is at or above `timestamp`, with that timestamp.
    pub fn find_offset_by_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        for segment in self.segments.values() {
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp, self.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the first offset carrying it (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<(u64, i64)> {
        let segment = self
            .segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| s.max_timestamp())?;
        segment
            .find_offset_by_timestamp(segment.max_timestamp(), self.log_start_offset)
            .ok()
            .flatten()
    }

    /// What to fsync to make everything appended so far durable; `None` if it already is.
    pub fn flush_target(&self) -> Option<FlushTarget> {
        // A roll without records after it (retention rolls an expired active segment) still
        // leaves a directory entry to make durable.
        if self.recovery_point >= self.log_end_offset && self.dir_synced >= self.dir_changes {
            return None;
        }
        let files = self
            .segments
            .values()
            .filter(|s| {
                s.next_offset() > self.recovery_point || s.base_offset() >= self.recovery_point
            })
            .map(LogSegment::file)
            .collect();
        Some(FlushTarget {
            files,
            offset: self.log_end_offset,
            dir: self.dir.clone(),
            dir_changes: (self.dir_synced < self.dir_changes).then_some(self.dir_changes),
        })
    }

    /// Records that `target` was synced: offsets below its offset are durable.
    pub fn mark_flushed(&mut self, target: &FlushTarget, now: SystemTime) {
        let offset = target.offset;
        if let Some(changes) = target.dir_changes {
            self.dir_synced = self.dir_synced.max(changes);
        }
        if offset > self.recovery_point {
            self.recovery_point = offset.min(self.log_end_offset);
        }
        if self.recovery_point == self.log_end_offset {
            self.unflushed_messages = 0;
        }
        self.last_flush = now;
        self.check_invariants();
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now (or a roll left its
    /// directory entry to make durable).
    pub fn flush_due(&self, now: SystemTime) -> bool {
        if self.dir_synced < self.dir_changes {
            return true;
        }
        if self.recovery_point >= self.log_end_offset {
            return false;
        }
        let age = now.duration_since(self.last_flush).unwrap_or_default();
        self.unflushed_messages >= self.config.flush_messages
            || age.as_millis() >= self.config.flush_ms.max(0) as u128
    }

    /// What the cleaner should compact now: `None` unless the topic is compacted and the
    /// dirty share of its closed segments reaches `min.cleanable.dirty.ratio`.
    pub fn cleaning_plan(&self, now_ms: i64) -> Option<CleaningPlan> {
        if !self.config.cleanup_policy.compacts() {
            return None;
        }
        let active_base = self.active_segment().base_offset();
        let segments: Vec<SegmentSnapshot> = self
            .segments
            .values()
            .filter(|s| s.base_offset() < active_base)
            .map(|s| SegmentSnapshot {
                base_offset: s.base_offset(),
                path: s.path().to_owned(),
                file: s.file(),
                size: s.size(),
                max_timestamp: s.max_timestamp(),
            })
            .collect();
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let first_dirty = self.first_dirty.max(self.log_start_offset);
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
        Some(CleaningPlan {
            dir: self.dir.clone(),
            segments,
            first_dirty,
            active_base,
            delete_retention_ms: self.config.delete_retention_ms,
            min_compaction_lag_ms: self.config.min_compaction_lag_ms,
            tombstones_due,
        })
    }

    /// Swaps a cleaned segment in for the one it was made from, unless that one changed (was
    /// deleted by retention meanwhile). Returns whether it was swapped in.
    pub fn install_cleaned(&mut self, cleaned: CleanedSegment) -> Result<bool> {
        let active_base = self.active_segment().base_offset();
        let current = self.segments.get(&cleaned.base_offset);
        if cleaned.base_offset >= active_base
            || current.is_none_or(|s| s.size() != cleaned.original_size)
        {
            let _ = std::fs::remove_file(&cleaned.path);
            return Ok(false);
        }
        let stem = super::segment::file_stem(cleaned.base_offset);
        let swap = self
            .dir
            .join(format!("{stem}.log.{}", cleaner::SWAP_SUFFIX));
        std::fs::rename(&cleaned.path, &swap).map_err(|e| LogError::io(&swap, e))?;
        sync_dir(&self.dir)?;
        // From here a crash completes the swap on the next open.
        drop(self.segments.remove(&cleaned.base_offset));
        cleaner::install_swap(&self.dir, &stem, &swap)?;
        sync_dir(&self.dir)?;
        let settings = segment_settings(&self.config);
        let mut segment = LogSegment::open(&self.dir, cleaned.base_offset, settings, true)?;
        segment.close()?;
        self.segments.insert(cleaned.base_offset, segment);
        self.check_invariants();
        Ok(true)
    }

    /// Base offset of the active segment, the one appends go to.
    pub fn active_base_offset(&self) -> u64 {
        self.active_segment().base_offset()
    }

    /// Records when the earliest tombstone the last pass kept may go.
    pub fn set_tombstone_expiry(&mut self, expiry: Option<i64>) {
        self.tombstone_expiry = expiry;
    }

    /// Records that offsets below `offset` are compacted (durably, so a restart does not
    /// redo the work).
    pub fn set_first_dirty(&mut self, offset: u64) -> Result<()> {
        self.first_dirty = offset;
        let path = self.dir.join(CLEANER_CHECKPOINT);
        let tmp = self.dir.join(format!("{CLEANER_CHECKPOINT}.tmp"));
        std::fs::write(&tmp, format!("{offset}\n")).map_err(|e| LogError::io(&tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        sync_dir(&self.dir)
    }

    /// Deletes segments past `retention.ms` or beyond `retention.bytes`; returns how many.
    ///
    /// For a tiered topic, total retention (`retention.ms`, `retention.bytes` over both tiers)
    /// applies to every segment: what it removes is dead in both tiers, and the remote log
    /// manager removes the remote side. Local retention (`local.retention.*`, usually
    /// shorter) removes only segments already uploaded.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        if !self.config.cleanup_policy.deletes() {
            return Ok(0);
        }
        let tiered = self.config.tiered();
        let older_than = |limit: i64, segment: &LogSegment| {
            limit >= 0 && segment.max_timestamp() >= 0 && now_ms - segment.max_timestamp() > limit
        };
        let total_ms = self.config.retention_ms;
        let local_ms = self.config.local_retention_limit_ms();
        // Like Kafka, an expired active segment is rolled so that it can be deleted too.
        let active = self.active_segment();
        let roll_active = older_than(total_ms, active) || (tiered && older_than(local_ms, active));
        if roll_active && active.size() > 0 {
            self.roll()?;
        }
        let uploaded_end = if tiered { self.uploaded_end } else { 0 };
        let remote_bytes = if tiered { self.remote_bytes } else { 0 };
        let local_only: u64 = self
            .segments
            .values()
            .filter(|s| s.base_offset() >= uploaded_end)
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
            limit if tiered && limit >= 0 => self.size().saturating_sub(limit as u64),
            _ => 0,
        };
        let mut doomed = Vec::new();
        for segment in self.segments.values().take(self.segments.len() - 1) {
            let uploaded = tiered && segment.next_offset() <= uploaded_end;
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
        for base in &doomed {
            if let Some(segment) = self.segments.remove(base) {
                tracing::info!(segment = %segment.path().display(), "retention deletes segment");
                segment.delete()?;
            }
        }
        self.log_start_offset = self.active_start();
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        self.check_invariants();
        Ok(doomed.len())
    }

    /// Closed segments entirely below `max_offset` that are not uploaded yet, oldest first.
    pub fn upload_candidates(&self, max_offset: u64) -> Vec<SegmentFile> {
        self.segments
            .values()
            .take(self.segments.len() - 1)
            .filter(|s| s.base_offset() >= self.uploaded_end && s.next_offset() <= max_offset)
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
    pub fn set_remote_tier(&mut self, start: Option<u64>, uploaded_end: u64, bytes: u64) {
        self.remote_start = start;
        self.uploaded_end = uploaded_end;
        self.remote_bytes = bytes;
    }

    /// First offset in the remote tier, if any.
    pub fn remote_start(&self) -> Option<u64> {
        self.remote_start
    }

    /// Segments below this offset are in the remote tier.
    pub fn uploaded_end(&self) -> u64 {
        self.uploaded_end
    }

    /// The first offset a consumer can read: in the remote tier if there is one, else on local
    /// disk. Offsets between the remote tier's end and the local log's start (a log restored
    /// above offsets lost with a disk) hold no records: a read there continues locally.
    pub fn visible_start(&self) -> u64 {
        match self.remote_start {
            Some(remote) => remote.min(self.log_start_offset),
            None => self.log_start_offset,
        }
    }

    /// Starts an empty log at `offset` (a broker restoring a partition whose history is in
    /// the remote tier). Refused unless the log is empty.
    pub fn start_empty_at(&mut self, offset: u64) -> Result<()> {
        if self.log_end_offset != self.log_start_offset || self.size() > 0 {
            return Err(LogError::Unsupported(format!(
                "the log of {} is not empty",
                self.dir.display()
            )));
        }
        if self.log_end_offset == offset {
            return Ok(());
        }
        let old: Vec<u64> = self.segments.keys().copied().collect();
        let segment = LogSegment::open(&self.dir, offset, segment_settings(&self.config), false)?;
        self.segments.insert(offset, segment);
        for base in old {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete()?;
            }
        }
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        tracing::info!(dir = %self.dir.display(), offset, "empty log starts after the remote tier");
        self.check_invariants();
        Ok(())
    }

    fn active_start(&self) -> u64 {
        *self
            .segments
            .keys()
            .next()
            .expect("a log always has an active segment")
    }

    /// Trims the active segment's indexes; the log must not be appended to afterwards.
    pub fn close(&mut self) -> Result<()> {
        self.active_segment_mut().close()
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments.values().map(LogSegment::size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// First offset of the log.
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    /// Offset the next record will get.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset
    }

    /// Offsets below this are known durable.
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point
    }

    /// The epoch stamped on appended batches.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Sets the epoch stamped on batches appended from now on.
    pub fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
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
        &self.dir
    }

    fn check_invariants(&self) {
        debug_assert!(self.log_start_offset <= self.recovery_point, "{self:?}");
        debug_assert!(self.recovery_point <= self.log_end_offset, "{self:?}");
        debug_assert_eq!(self.active_segment().next_offset(), self.log_end_offset);
        debug_assert!(
            self.segments
                .values()
                .zip(self.segments.values().skip(1))
                .all(|(a, b)| a.next_offset() <= b.base_offset()),
            "segments overlap: {self:?}"
        );
    }
}

fn segment_settings(config: &LogConfig) -> SegmentSettings {
    SegmentSettings {
        index_bytes: config.segment_index_bytes,
        index_interval_bytes: config.index_interval_bytes,
    }
}

/// Base offsets of the `.log` files in `dir`, ascending.
fn segment_base_offsets(dir: &Path) -> Result<Vec<u64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if let Ok(base) = stem.parse::<u64>() {
            offsets.push(base);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Kafka refuses records without a key in a compacted topic: compaction could not keep them.
fn check_keys(batch: &[u8]) -> Result<()> {
    let mut bytes = bytes::Bytes::copy_from_slice(batch);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
        .map_err(|e| LogError::InvalidRecord(format!("batch does not decode: {e}")))?;
    if set.records.iter().any(|r| r.key.is_none()) {
        return Err(LogError::InvalidRecord(
            "compacted topic cannot accept a record without a key".into(),
        ));
    }
    Ok(())
}

/// The cleaner checkpoint, 0 when absent or unreadable (the whole log is then dirty).
fn read_checkpoint(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Removes the three files of the segment at `base` without opening it.
fn delete_segment_files(dir: &Path, base: u64) -> Result<()> {
    let stem = super::segment::file_stem(base);
    for ext in ["log", "index", "timeindex"] {
        let path = dir.join(format!("{stem}.{ext}"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io(&path, e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// fsyncs a directory so that created, renamed or deleted entries are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(test)]
    DIR_SYNCS.with(|n| n.set(n.get() + 1));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

#[cfg(test)]
thread_local! {
    /// Directory fsyncs made by this thread, so a test can tell which path made them.
    static DIR_SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Directory fsyncs made by the calling thread (tests only).
#[cfg(test)]
pub(crate) fn dir_syncs_on_this_thread() -> u64 {
    DIR_SYNCS.with(std::cell::Cell::get)
}

#[cfg(test)]
#[path = "partition_log_test.rs"]
mod tests;
