//! `LocalLog`: the part of a partition's log on local disk (Kafka's `LocalLog`): its segments,
//! appends of batches whose offsets are already assigned, rolls, reads, flush bookkeeping and
//! the deletion of whole segments. What to append, which segments may go and what is remote
//! are [`super::UnifiedLog`]'s decisions.
//!
//! It is synchronous and single-writer: the caller holds it behind a lock and does fsyncs
//! outside that lock with the handles [`LocalLog::flush_target`] hands out, so a slow fsync
//! never blocks appends (group commit).
//!
//! Invariants, checked after every change in debug builds: `local_log_start_offset <=
//! recovery_point <= log_end_offset`, segments are ordered and the last one is the active one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::batch::{BatchHeader, HEADER_SIZE};
use super::cleaner::{self, CleanedSegment};
use super::config::LogConfig;
use super::error::{LogError, Result};
use super::loader::{self, segment_settings};
use super::segment::{FileSlice, LogSegment};
use super::segments::LogSegments;

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

/// A partition's segments on local disk.
#[derive(Debug)]
pub struct LocalLog {
    dir: PathBuf,
    segments: LogSegments,
    local_log_start_offset: u64,
    log_end_offset: u64,
    recovery_point: u64,
    /// Segment files created in the directory (by rolls) since it was opened, and how many
    /// of them a directory fsync has made durable: rolls leave that fsync to the next flush.
    dir_changes: u64,
    dir_synced: u64,
    unflushed_messages: u64,
    last_flush: SystemTime,
}

impl LocalLog {
    /// Opens the segments in `dir` (see [`loader::load`]); the whole log is durable then.
    pub fn open(dir: &Path, config: &LogConfig, recovery_point: u64, clean: bool) -> Result<Self> {
        let segments = loader::load(dir, config, recovery_point, clean)?;
        let log_end_offset = segments.active().next_offset();
        let local_log_start_offset = segments.first_base_offset();
        let log = Self {
            dir: dir.to_owned(),
            segments,
            local_log_start_offset,
            log_end_offset,
            // Clean: everything was flushed at shutdown. Unclean: recovered segments were
            // flushed by the loader. Either way the whole log is durable now.
            recovery_point: log_end_offset,
            dir_changes: 0,
            dir_synced: 0,
            unflushed_messages: 0,
            last_flush: SystemTime::now(),
        };
        log.check_invariants();
        Ok(log)
    }

    /// The segments.
    pub fn segments(&self) -> &LogSegments {
        &self.segments
    }

    /// The segments, to change their transaction indexes.
    pub(super) fn segments_mut(&mut self) -> &mut LogSegments {
        &mut self.segments
    }

    /// Appends one batch whose header (`head`, with its offsets assigned) the caller wrote
    /// and checked, beside its records, which are never copied.
    pub fn append(
        &mut self,
        head: &[u8; HEADER_SIZE],
        records: &[u8],
        header: &BatchHeader,
    ) -> Result<()> {
        // A follower copies a compacted leader's batches, which may leave offsets out.
        debug_assert!(header.base_offset >= self.log_end_offset);
        self.segments.active_mut().append([head, records], header)?;
        self.log_end_offset = header.next_offset();
        self.unflushed_messages += header.records_count as u64;
        self.check_invariants();
        Ok(())
    }

    /// Rolls to a new segment when the active one is full or old enough to take
    /// `incoming_bytes` more.
    pub fn maybe_roll(
        &mut self,
        config: &LogConfig,
        incoming_bytes: u64,
        now_ms: i64,
    ) -> Result<()> {
        let active = self.segments.active();
        if active.size() == 0 {
            return Ok(());
        }
        let too_big = active.size() + incoming_bytes > config.segment_bytes;
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
        let too_old = now
            .duration_since(active.created())
            .is_ok_and(|age| age.as_millis() >= config.segment_ms as u128);
        if too_big || too_old || active.indexes_full() {
            self.roll(config)?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, config: &LogConfig) -> Result<()> {
        let base = self.log_end_offset;
        if self.segments.active().base_offset() == base {
            return Ok(());
        }
        self.segments.active_mut().close()?;
        let segment = LogSegment::open(&self.dir, base, segment_settings(config), false)?;
        self.segments.insert(segment);
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
        if offset < self.local_log_start_offset as i64 || offset > self.log_end_offset as i64 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.local_log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        for segment in self.segments.from_offset(offset as u64) {
            if let Some(slice) = segment.read(offset as u64, max_bytes, max_offset, min_one)? {
                return Ok(Some(slice));
            }
        }
        Ok(None)
    }

    /// The earliest offset whose timestamp is at or above `timestamp`, with that timestamp.
    pub fn find_offset_by_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        for segment in self.segments.iter() {
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp, self.local_log_start_offset)?
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
            .iter()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| s.max_timestamp())?;
        segment
            .find_offset_by_timestamp(segment.max_timestamp(), self.local_log_start_offset)
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
            .iter()
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
        if let Some(changes) = target.dir_changes {
            self.dir_synced = self.dir_synced.max(changes);
        }
        if target.offset > self.recovery_point {
            self.recovery_point = target.offset.min(self.log_end_offset);
        }
        if self.recovery_point == self.log_end_offset {
            self.unflushed_messages = 0;
        }
        self.last_flush = now;
        self.check_invariants();
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now (or a roll left its
    /// directory entry to make durable).
    pub fn flush_due(&self, config: &LogConfig, now: SystemTime) -> bool {
        if self.dir_synced < self.dir_changes {
            return true;
        }
        if self.recovery_point >= self.log_end_offset {
            return false;
        }
        let age = now.duration_since(self.last_flush).unwrap_or_default();
        self.unflushed_messages >= config.flush_messages
            || age.as_millis() >= config.flush_ms.max(0) as u128
    }

    /// Deletes the closed segments at `base_offsets` (oldest ones); the local log then starts
    /// at the first segment left.
    pub fn delete_segments(&mut self, base_offsets: &[u64]) -> Result<()> {
        let active = self.segments.active().base_offset();
        for &base in base_offsets.iter().filter(|&&b| b != active) {
            if let Some(segment) = self.segments.remove(base) {
                tracing::info!(segment = %segment.path().display(), "retention deletes segment");
                segment.delete()?;
            }
        }
        self.local_log_start_offset = self.segments.first_base_offset();
        self.recovery_point = self.recovery_point.max(self.local_log_start_offset);
        self.check_invariants();
        Ok(())
    }

    /// Swaps a cleaned segment in for the one it was made from, unless that one changed (was
    /// deleted by retention meanwhile). Returns whether it was swapped in.
    pub fn replace_with_cleaned(
        &mut self,
        config: &LogConfig,
        cleaned: CleanedSegment,
    ) -> Result<bool> {
        let active_base = self.segments.active().base_offset();
        let current = self.segments.get(cleaned.base_offset);
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
        drop(self.segments.remove(cleaned.base_offset));
        cleaner::install_swap(&self.dir, &stem, &swap)?;
        sync_dir(&self.dir)?;
        let mut segment = LogSegment::open(
            &self.dir,
            cleaned.base_offset,
            segment_settings(config),
            true,
        )?;
        segment.close()?;
        self.segments.insert(segment);
        self.check_invariants();
        Ok(true)
    }

    /// Starts the empty log at `offset`. Refused unless the log is empty.
    pub fn start_empty_at(&mut self, config: &LogConfig, offset: u64) -> Result<()> {
        if self.log_end_offset != self.local_log_start_offset || self.size() > 0 {
            return Err(LogError::Unsupported(format!(
                "the log of {} is not empty",
                self.dir.display()
            )));
        }
        if self.log_end_offset == offset {
            return Ok(());
        }
        let old = self.segments.base_offsets();
        let segment = LogSegment::open(&self.dir, offset, segment_settings(config), false)?;
        self.segments.insert(segment);
        for base in old {
            if let Some(segment) = self.segments.remove(base) {
                segment.delete()?;
            }
        }
        sync_dir(&self.dir)?;
        self.local_log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        tracing::info!(dir = %self.dir.display(), offset, "empty log starts at {offset}");
        self.check_invariants();
        Ok(())
    }

    /// Removes every batch at or above `offset` (a follower or former leader whose log went
    /// past the committed history): later segments are deleted, the one holding `offset` is
    /// cut, and the result is fsync'd before it returns. At or below the local log start the
    /// log becomes empty and starts at `offset`.
    pub fn truncate_to(&mut self, config: &LogConfig, offset: u64) -> Result<()> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset <= self.local_log_start_offset {
            return self.truncate_fully_and_start_at(config, offset);
        }
        {
            for base in self.segments.base_offsets().into_iter().rev() {
                if base < offset {
                    break;
                }
                if let Some(segment) = self.segments.remove(base) {
                    segment.delete()?;
                }
            }
            let active = self.segments.active_mut();
            active.truncate_to(offset)?;
            active.flush()?;
        }
        sync_dir(&self.dir)?;
        self.log_end_offset = self.segments.active().next_offset();
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        tracing::info!(dir = %self.dir.display(), offset, "log truncated");
        self.check_invariants();
        Ok(())
    }

    /// Deletes every segment and starts the log, empty, at `offset` (a follower far behind a
    /// leader whose log starts later, or one whose whole log diverged).
    pub fn truncate_fully_and_start_at(&mut self, config: &LogConfig, offset: u64) -> Result<()> {
        // Past the old segments, the new one is created before they go, so a crash in between
        // leaves a log that starts at `offset` at the latest; below them, they go first, so a
        // crash never leaves them overlapping it. One already at `offset` is emptied in place.
        let after_all = offset > self.segments.active().base_offset();
        let mut fresh = match self.segments.remove(offset) {
            Some(mut same) => {
                same.truncate_to(offset)?;
                same.flush()?;
                Some(same)
            }
            None if after_all => Some(LogSegment::open(
                &self.dir,
                offset,
                segment_settings(config),
                false,
            )?),
            None => None,
        };
        for base in self.segments.base_offsets() {
            if let Some(segment) = self.segments.remove(base) {
                segment.delete()?;
            }
        }
        let fresh = match fresh.take() {
            Some(segment) => segment,
            None => LogSegment::open(&self.dir, offset, segment_settings(config), false)?,
        };
        self.segments.insert(fresh);
        sync_dir(&self.dir)?;
        self.local_log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied: starts at {offset}");
        self.check_invariants();
        Ok(())
    }

    /// Trims the active segment's indexes; the log must not be appended to afterwards.
    pub fn close(&mut self) -> Result<()> {
        self.segments.active_mut().close()
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments.size()
    }

    /// First offset on local disk.
    pub fn local_log_start_offset(&self) -> u64 {
        self.local_log_start_offset
    }

    /// Offset the next record will get.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset
    }

    /// Offsets below this are known durable.
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_invariants(&self) {
        debug_assert!(
            self.local_log_start_offset <= self.recovery_point,
            "{self:?}"
        );
        debug_assert!(self.recovery_point <= self.log_end_offset, "{self:?}");
        debug_assert_eq!(self.segments.active().next_offset(), self.log_end_offset);
        debug_assert!(self.segments.ordered(), "segments overlap: {self:?}");
    }
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
