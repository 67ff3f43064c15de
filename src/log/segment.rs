//! `LogSegment`: one `.log` file of record batches with its `.index` and `.timeindex`.
//!
//! Files are named by the segment's base offset, zero-padded to 20 digits as in Kafka
//! (`00000000000000000042.log`). Batches are appended with positional writes; readers get byte
//! ranges of the shared file handle and send them with `sendfile`, so the handle is reference
//! counted and stays valid for an in-flight read even after the segment is deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::batch::BatchHeader;
use super::error::{LogError, Result};
use super::index::{OffsetIndex, TimeIndex, TransactionIndex};
use super::scanner::{BatchScanner, ScanStop};

/// Per-segment settings taken from the topic config when the segment is opened.
#[derive(Debug, Clone, Copy)]
pub struct SegmentSettings {
    /// Preallocated size of each index file (`segment.index.bytes`).
    pub index_bytes: u64,
    /// Bytes of batches between two offset-index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
}

/// A range of a segment file to send to a client.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment's file.
    pub file: Arc<File>,
    /// Start of the range.
    pub position: u64,
    /// Length of the range.
    pub len: u64,
    /// Offsets from the read's offset to this one are in the range: exact when the range ends
    /// at the segment's end or the read's limit, otherwise short by about two index intervals
    /// at most (the offset index tells, without reading the file). For metrics.
    pub end_offset: u64,
}

impl FileSlice {
    /// Records (offsets) the range holds from `offset` on, as [`Self::end_offset`] counts.
    pub fn records_from(&self, offset: u64) -> u64 {
        self.end_offset.saturating_sub(offset)
    }
}

/// One segment of a partition's log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: u64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: u64,
    max_timestamp: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TransactionIndex,
    bytes_since_index_entry: u64,
    settings: SegmentSettings,
    /// When the segment was created, for `segment.ms` rolls.
    created: SystemTime,
    truncated_by_recovery: bool,
}

/// The file name stem of a segment.
pub fn file_stem(base_offset: u64) -> String {
    format!("{base_offset:020}")
}

impl LogSegment {
    /// Opens the segment at `base_offset` in `dir`, creating empty files when missing.
    ///
    /// With `recover`, every batch's CRC is checked, a torn or corrupt tail is truncated and
    /// both indexes are rebuilt. Without it, the indexes are trusted if consistent and only the
    /// tail after the last index entry is scanned (a full recovery runs if anything is off).
    pub fn open(
        dir: &Path,
        base_offset: u64,
        settings: SegmentSettings,
        recover: bool,
    ) -> Result<Self> {
        let stem = file_stem(base_offset);
        let path = dir.join(format!("{stem}.log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let metadata = file.metadata().map_err(|e| LogError::io(&path, e))?;
        let size = metadata.len();
        let created = metadata.modified().unwrap_or_else(|_| SystemTime::now());
        let offset_index = OffsetIndex::open(
            &dir.join(format!("{stem}.index")),
            base_offset,
            settings.index_bytes,
        )?;
        let time_index = TimeIndex::open(
            &dir.join(format!("{stem}.timeindex")),
            base_offset,
            settings.index_bytes,
        )?;
        let txn_index = TransactionIndex::open(&dir.join(format!("{stem}.txnindex")))?;
        let mut segment = Self {
            base_offset,
            path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_index,
            time_index,
            txn_index,
            bytes_since_index_entry: 0,
            settings,
            created,
            truncated_by_recovery: false,
        };
        if recover || !segment.load_tail()? {
            segment.recover()?;
        }
        Ok(segment)
    }

    /// Scans from the last index entry to the end; false if the indexes or tail look wrong.
    fn load_tail(&mut self) -> Result<bool> {
        let (start_offset, start_position) = self.offset_index.lookup(u64::MAX);
        if start_position as u64 > self.size {
            return Ok(false);
        }
        let mut scanner = BatchScanner::new(
            &self.file,
            &self.path,
            start_position as u64,
            self.size,
            false,
        );
        let mut next_offset = start_offset.max(self.base_offset);
        let mut max_timestamp = self.time_index.last().map_or(-1, |(ts, _)| ts);
        let mut first = true;
        while let Some(found) = scanner.next_batch()? {
            if first && found.header.last_offset() < start_offset && !self.offset_index.is_empty() {
                return Ok(false);
            }
            first = false;
            next_offset = found.header.next_offset();
            max_timestamp = max_timestamp.max(found.header.max_timestamp);
        }
        if scanner.stop.is_some() {
            return Ok(false);
        }
        self.next_offset = next_offset;
        self.max_timestamp = max_timestamp;
        Ok(self.offset_index.is_consistent(next_offset, self.size)
            && self.time_index.is_consistent(next_offset))
    }

    /// Rebuilds the indexes from the log, truncating at the first invalid batch. Returns the
    /// number of bytes truncated.
    pub fn recover(&mut self) -> Result<u64> {
        self.offset_index.truncate_to(self.base_offset);
        self.time_index.truncate_to(self.base_offset);
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.bytes_since_index_entry = 0;
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        let mut scanner = BatchScanner::new(&file, &path, 0, self.size, true);
        let mut valid_bytes = 0;
        while let Some(found) = scanner.next_batch()? {
            // The base offset is outside the CRC: check it is plausible for this segment.
            let last = found.header.last_offset();
            if found.header.base_offset < self.next_offset
                || last - self.base_offset > u32::MAX as u64
            {
                scanner.stop = Some(ScanStop::Invalid {
                    position: found.position,
                    reason: format!(
                        "batch offsets {}..={last} do not follow {} in a segment based at {}",
                        found.header.base_offset, self.next_offset, self.base_offset
                    ),
                });
                break;
            }
            self.index_batch(&found.header, found.position)?;
            valid_bytes = found.position + found.header.size();
        }
        let truncated = self.size - valid_bytes;
        if let Some(ScanStop::Invalid { position, reason }) = scanner.stop {
            tracing::warn!(
                segment = %self.path.display(),
                position,
                truncated,
                "truncating log segment at invalid batch: {reason}"
            );
        }
        if truncated > 0 {
            self.file
                .set_len(valid_bytes)
                .map_err(|e| LogError::io(&self.path, e))?;
            self.size = valid_bytes;
            self.truncated_by_recovery = true;
        }
        Ok(truncated)
    }

    /// Updates in-memory state and indexes for a batch written at `position`.
    fn index_batch(&mut self, header: &BatchHeader, position: u64) -> Result<()> {
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        if self.bytes_since_index_entry >= self.settings.index_interval_bytes || position == 0 {
            self.offset_index
                .append(header.last_offset(), position as u32)?;
            self.time_index
                .maybe_append(self.max_timestamp, header.last_offset())?;
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.size();
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Appends one validated batch whose offsets were already assigned, given as its header
    /// and its records, written with one pwritev.
    pub fn append(&mut self, parts: [&[u8]; 2], header: &BatchHeader) -> Result<()> {
        let len = (parts[0].len() + parts[1].len()) as u64;
        debug_assert_eq!(header.size(), len);
        debug_assert!(header.base_offset >= self.next_offset);
        let position = self.size;
        write_all_vectored_at(&self.file, parts, position)
            .map_err(|e| LogError::io(&self.path, e))?;
        self.size += len;
        self.index_batch(header, position)
    }

    /// Finds the batch holding `offset` (or the first after it) and returns up to `max_bytes`
    /// from its start, ending before `max_offset` (the high watermark). With `min_one` a first
    /// batch larger than `max_bytes` is returned whole (KIP-74); without it, an empty slice.
    pub fn read(
        &self,
        offset: u64,
        max_bytes: u64,
        max_offset: u64,
        min_one: bool,
    ) -> Result<Option<FileSlice>> {
        let Some((position, first_size)) = self.locate(offset)? else {
            return Ok(None);
        };
        let end = if max_offset >= self.next_offset {
            self.size
        } else {
            self.locate(max_offset)?.map_or(self.size, |(at, _)| at)
        };
        let available = end.saturating_sub(position);
        let len = if available == 0 {
            0
        } else if first_size > max_bytes {
            if min_one {
                first_size.min(available)
            } else {
                0
            }
        } else {
            available.min(max_bytes)
        };
        let end_offset = if len == 0 {
            offset
        } else if position + len >= self.size {
            self.next_offset
        } else if len == available {
            max_offset
        } else {
            let end = u32::try_from(position + len).unwrap_or(u32::MAX);
            self.offset_index.offset_before_position(end).max(offset)
        };
        Ok(Some(FileSlice {
            file: Arc::clone(&self.file),
            position,
            len,
            end_offset,
        }))
    }

    /// Position and size of the first batch whose last offset is at or above `offset`.
    fn locate(&self, offset: u64) -> Result<Option<(u64, u64)>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let (_, start) = self.offset_index.lookup(offset);
        // The batch is within about an index interval of the entry: read little at a time (a
        // follower or consumer of hundreds of partitions locates two offsets per partition
        // per fetch).
        let chunk = (self.settings.index_interval_bytes as usize).clamp(4096, 64 * 1024);
        let mut scanner =
            BatchScanner::new(&self.file, &self.path, start as u64, self.size, false).chunk(chunk);
        while let Some(found) = scanner.next_batch()? {
            if found.header.last_offset() >= offset {
                return Ok(Some((found.position, found.header.size())));
            }
        }
        Ok(None)
    }

    /// The earliest offset whose timestamp is at or above `timestamp`, with that timestamp.
    ///
    /// Uncompressed batches are searched record by record. A compressed batch is not inflated
    /// here (a small batch can inflate without bound): its base offset and max timestamp stand
    /// for it, so a lookup can land a few records early, never late.
    pub fn find_offset_by_timestamp(
        &self,
        timestamp: i64,
        from_offset: u64,
    ) -> Result<Option<(u64, i64)>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let start_offset = self.time_index.lookup(timestamp).max(from_offset);
        let (_, start) = self.offset_index.lookup(start_offset);
        let mut scanner = BatchScanner::new(&self.file, &self.path, start as u64, self.size, false);
        while let Some(found) = scanner.next_batch()? {
            let header = found.header;
            if header.last_offset() < from_offset || header.max_timestamp < timestamp {
                continue;
            }
            let mut raw = vec![0u8; header.size() as usize];
            self.file
                .read_exact_at(&mut raw, found.position)
                .map_err(|e| LogError::io(&self.path, e))?;
            if let Some(found) =
                super::batch::record_at_timestamp(Bytes::from(raw), timestamp, from_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Removes every batch at or above `offset`.
    pub fn truncate_to(&mut self, offset: u64) -> Result<()> {
        if offset >= self.next_offset {
            return Ok(());
        }
        let position = match self.locate(offset)? {
            Some((position, _)) => position,
            None => self.size,
        };
        self.file
            .set_len(position)
            .map_err(|e| LogError::io(&self.path, e))?;
        self.size = position;
        self.txn_index.truncate_to(offset)?;
        self.recover()?;
        Ok(())
    }

    /// Makes every appended byte durable.
    pub fn flush(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.path, e))
    }

    /// Trims the indexes to their entries; called when the segment stops taking appends.
    pub fn close(&mut self) -> Result<()> {
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// Deletes the segment's files; readers holding its file handle can still finish.
    pub fn delete(self) -> Result<()> {
        std::fs::remove_file(&self.path).map_err(|e| LogError::io(&self.path, e))?;
        self.offset_index.delete()?;
        self.time_index.delete()?;
        self.txn_index.delete()
    }

    /// The aborted transactions whose markers this segment holds.
    pub fn txn_index(&self) -> &TransactionIndex {
        &self.txn_index
    }

    /// The same, to add to or rebuild.
    pub fn txn_index_mut(&mut self) -> &mut TransactionIndex {
        &mut self.txn_index
    }

    /// Whether recovery cut this segment's tail (what follows it is then not contiguous).
    pub fn truncated_by_recovery(&self) -> bool {
        self.truncated_by_recovery
    }

    /// A handle for flushing outside the partition lock.
    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// The first offset of the segment.
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// The offset after the last batch (the base offset when empty).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Size of the `.log` file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Largest batch timestamp in the segment, -1 when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// When the segment was created (file mtime after a restart).
    pub fn created(&self) -> SystemTime {
        self.created
    }

    /// Whether an index file has no room left.
    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// The path of the `.log` file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Iterates the batch headers of the whole segment (no CRC check).
    pub fn scan_headers(&self, mut visit: impl FnMut(&BatchHeader)) -> Result<()> {
        self.scan_batches(|header, _| {
            visit(header);
            Ok(())
        })
    }

    /// Iterates the batch headers of the whole segment with their positions (no CRC check).
    pub fn scan_batches(
        &self,
        mut visit: impl FnMut(&BatchHeader, u64) -> Result<()>,
    ) -> Result<()> {
        let mut scanner = BatchScanner::new(&self.file, &self.path, 0, self.size, false);
        while let Some(found) = scanner.next_batch()? {
            visit(&found.header, found.position)?;
        }
        Ok(())
    }

    /// The bytes of the batch at `position` (a control batch, which is small).
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; header.size() as usize];
        self.file
            .read_exact_at(&mut bytes, position)
            .map_err(|e| LogError::io(&self.path, e))?;
        Ok(bytes)
    }
}

/// Writes every byte of `parts` at `position`, resuming after short writes.
fn write_all_vectored_at(file: &File, mut parts: [&[u8]; 2], mut position: u64) -> io::Result<()> {
    while !parts[0].is_empty() || !parts[1].is_empty() {
        let slices = [IoSlice::new(parts[0]), IoSlice::new(parts[1])];
        let written = match nix::sys::uio::pwritev(file, &slices, position as i64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        position += written as u64;
        let first = written.min(parts[0].len());
        parts[0] = &parts[0][first..];
        parts[1] = &parts[1][written - first..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{
        HEADER_SIZE, assign_offset, tests::sample_batch, validate_single_batch,
    };

    const SETTINGS: SegmentSettings = SegmentSettings {
        index_bytes: 4096,
        index_interval_bytes: 100,
    };

    fn append(segment: &mut LogSegment, count: u32, ts: i64) -> u64 {
        let mut batch = sample_batch(count, ts, None);
        let base = segment.next_offset();
        assign_offset(&mut batch, base, 0);
        let header = validate_single_batch(&batch).unwrap();
        let (head, records) = batch.split_at(HEADER_SIZE);
        segment.append([head, records], &header).unwrap();
        base
    }

    #[test]
    fn reads_by_offset_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::open(dir.path(), 10, SETTINGS, false).unwrap();
        for n in 0..50 {
            append(&mut segment, 3, 1_000 + n);
        }
        assert_eq!(segment.next_offset(), 160);
        segment.close().unwrap();
        let size = segment.size();
        drop(segment);
        let segment = LogSegment::open(dir.path(), 10, SETTINGS, false).unwrap();
        assert_eq!((segment.next_offset(), segment.size()), (160, size));
        let slice = segment.read(100, 1, u64::MAX, true).unwrap().unwrap();
        let mut head = [0u8; 61];
        slice.file.read_exact_at(&mut head, slice.position).unwrap();
        let header = BatchHeader::parse(&head).unwrap();
        assert!(header.base_offset <= 100 && header.last_offset() >= 100);
        assert_eq!(slice.len, header.size());
        assert!(segment.read(160, 1000, u64::MAX, true).unwrap().is_none());
        assert_eq!(
            segment.read(100, 1, u64::MAX, false).unwrap().unwrap().len,
            0
        );
        assert_eq!(
            segment.read(100, 10_000, 100, true).unwrap().unwrap().len,
            0
        );
        let capped = segment.read(10, 10_000, 100, true).unwrap().unwrap();
        assert_eq!(capped.len, 30 * header.size());
        assert_eq!(capped.records_from(10), 90, "up to the read's limit");
        let all = segment.read(10, u64::MAX, u64::MAX, true).unwrap().unwrap();
        assert_eq!(all.records_from(10), 150, "to the segment's end");
        // Cut by size: counted to an indexed batch inside the range, never beyond it.
        let cut = segment
            .read(10, 10 * header.size() + 5, u64::MAX, true)
            .unwrap()
            .unwrap();
        assert!(
            (24..=30).contains(&cut.records_from(10)),
            "{}",
            cut.records_from(10)
        );
    }

    #[test]
    fn recovery_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::open(dir.path(), 0, SETTINGS, false).unwrap();
        for _ in 0..10 {
            append(&mut segment, 2, 5);
        }
        let good = segment.size();
        // A torn write: half a batch at the end.
        let batch = sample_batch(4, 5, None);
        segment
            .file
            .write_all_at(&batch[..batch.len() / 2], good)
            .unwrap();
        drop(segment);
        let segment = LogSegment::open(dir.path(), 0, SETTINGS, true).unwrap();
        assert_eq!(segment.size(), good);
        assert_eq!(segment.next_offset(), 20);
    }

    #[test]
    fn recovery_stops_at_bad_crc() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::open(dir.path(), 0, SETTINGS, false).unwrap();
        let mut ends = Vec::new();
        for _ in 0..5 {
            append(&mut segment, 1, 5);
            ends.push(segment.size());
        }
        segment.file.write_all_at(&[0xAB], ends[2] + 30).unwrap();
        drop(segment);
        let segment = LogSegment::open(dir.path(), 0, SETTINGS, true).unwrap();
        assert_eq!((segment.size(), segment.next_offset()), (ends[2], 3));
    }

    #[test]
    fn recovery_stops_at_implausible_base_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::open(dir.path(), 0, SETTINGS, false).unwrap();
        let mut ends = Vec::new();
        for _ in 0..5 {
            append(&mut segment, 1, 5);
            ends.push(segment.size());
        }
        segment.file.write_all_at(&[0x7f], ends[2] + 2).unwrap();
        drop(segment);
        let segment = LogSegment::open(dir.path(), 0, SETTINGS, true).unwrap();
        assert_eq!((segment.size(), segment.next_offset()), (ends[2], 3));
    }

    #[test]
    fn timestamp_lookup_finds_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::open(dir.path(), 0, SETTINGS, false).unwrap();
        for n in 0..20 {
            append(&mut segment, 1, 100 * n);
        }
        assert_eq!(
            segment.find_offset_by_timestamp(0, 0).unwrap(),
            Some((0, 0))
        );
        assert_eq!(
            segment.find_offset_by_timestamp(450, 0).unwrap(),
            Some((5, 500))
        );
        assert_eq!(
            segment.find_offset_by_timestamp(1_900, 0).unwrap(),
            Some((19, 1_900))
        );
        assert_eq!(segment.find_offset_by_timestamp(1_901, 0).unwrap(), None);
    }

    #[test]
    fn truncate_drops_later_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::open(dir.path(), 0, SETTINGS, false).unwrap();
        for _ in 0..10 {
            append(&mut segment, 2, 1);
        }
        segment.truncate_to(7).unwrap();
        assert_eq!(segment.next_offset(), 6);
        assert_eq!(append(&mut segment, 1, 1), 6);
    }
}
