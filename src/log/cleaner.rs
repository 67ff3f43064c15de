//! Log compaction (`cleanup.policy=compact`): keep the latest record of every key.
//!
//! As in Kafka, a pass has two steps, both outside the partition's lock. First it maps each key
//! of the *dirty* part of the log (closed segments not yet compacted) to its latest offset.
//! Then it rewrites every closed segment up to the end of that part, keeping a record only if
//! no later record has its key, and dropping tombstones (records without a value) once they
//! are older than `delete.retention.ms`. The active segment is never touched and offsets never
//! change: a cleaned log has gaps.
//!
//! Transactions: nothing at or above the first offset of a transaction not yet decided is
//! cleaned (Kafka's first uncleanable offset), and records of aborted transactions are
//! dropped, never counted as a key's latest value: an aborted overwrite must not remove the
//! committed value it would have replaced. Markers are kept.
//!
//! Crash safety: a segment's replacement is written to `<base>.log.cleaned` and fsync'd, then
//! renamed to `<base>.log.swap`, and only then renamed over `<base>.log`. Opening a log
//! deletes `.cleaned` leftovers (the pass had not finished) and completes `.swap` ones (it
//! had), so a crash leaves either the old segment or the new one, never neither.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{self, BatchHeader, HEADER_SIZE};
use super::error::{LogError, Result};
use super::scanner::BatchScanner;

/// Suffix of a segment being written by the cleaner.
pub const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of a cleaned segment ready to replace the original.
pub const SWAP_SUFFIX: &str = "swap";

/// A closed segment as the cleaner reads it, outside the log's lock.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    /// First offset the segment may hold.
    pub base_offset: u64,
    /// Its `.log` file.
    pub path: PathBuf,
    /// The open file (closed segments never change).
    pub file: Arc<File>,
    /// Bytes.
    pub size: u64,
    /// Largest timestamp in it.
    pub max_timestamp: i64,
}

/// What a pass should do, decided under the log's lock.
#[derive(Debug, Clone)]
pub struct CleaningPlan {
    /// The partition directory.
    pub dir: PathBuf,
    /// Every closed segment, in offset order.
    pub segments: Vec<SegmentSnapshot>,
    /// First offset not yet compacted.
    pub first_dirty: u64,
    /// Base offset of the active segment, which is never compacted.
    pub active_base: u64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// Tombstones kept by an earlier pass have expired: rewrite the clean part even if
    /// nothing is dirty (KIP-534).
    pub tombstones_due: bool,
    /// The first offset of a transaction not decided yet (or the active segment's base):
    /// nothing from there on is cleaned.
    pub uncleanable_from: u64,
    /// The aborted transactions of the closed segments.
    pub aborted: Vec<super::index::AbortedTxn>,
}

impl CleaningPlan {
    /// Whether the record at `offset` of a transactional batch of `producer_id` belongs to
    /// an aborted transaction.
    fn aborted(&self, header: &BatchHeader, offset: u64) -> bool {
        header.is_transactional()
            && self.aborted.iter().any(|t| {
                t.producer_id == header.producer_id
                    && (t.first_offset..=t.last_offset).contains(&offset)
            })
    }
}

/// The latest offset of every key in the dirty part of the log.
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Bytes, u64>,
    bytes: usize,
}

/// Approximate memory per map entry besides the key bytes.
const ENTRY_OVERHEAD: usize = 64;

impl OffsetMap {
    fn insert(&mut self, key: Bytes, offset: u64) {
        let len = key.len();
        if self.latest.insert(key, offset).is_none() {
            self.bytes += len + ENTRY_OVERHEAD;
        }
    }

    /// Whether a record at `offset` with `key` is superseded by a later one.
    fn superseded(&self, key: &[u8], offset: u64) -> bool {
        self.latest.get(key).is_some_and(|&latest| latest > offset)
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether it maps no key.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// One rewritten segment, waiting to be swapped in.
#[derive(Debug)]
pub struct CleanedSegment {
    /// Base offset of the segment it replaces.
    pub base_offset: u64,
    /// Size of the segment it replaces (to check that it did not change meanwhile).
    pub original_size: u64,
    /// The `.log.cleaned` file.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Records dropped.
    pub records_removed: u64,
}

/// Totals of one pass, for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct CleanerStats {
    /// Segments rewritten.
    pub segments: usize,
    /// Bytes read (mapping and rewriting).
    pub bytes_read: u64,
    /// Bytes before the rewrite.
    pub bytes_before: u64,
    /// Bytes after it.
    pub bytes_after: u64,
    /// Records dropped.
    pub records_removed: u64,
    /// When the earliest tombstone this pass kept may go, ms since the epoch.
    pub next_tombstone_expiry: Option<i64>,
}

/// One batch of a segment, read whole.
struct StoredBatch {
    header: BatchHeader,
    bytes: Bytes,
}

/// Every batch of `segment`, in order.
fn batches(segment: &SegmentSnapshot) -> Result<Vec<StoredBatch>> {
    let mut scanner = BatchScanner::new(&segment.file, &segment.path, 0, segment.size, false);
    let mut out = Vec::new();
    while let Some(found) = scanner.next_batch()? {
        let mut raw = vec![0u8; found.header.size() as usize];
        segment
            .file
            .read_exact_at(&mut raw, found.position)
            .map_err(|e| LogError::io(&segment.path, e))?;
        out.push(StoredBatch {
            header: found.header,
            bytes: Bytes::from(raw),
        });
    }
    Ok(out)
}

/// Decodes a batch's records (inflating at most 64 MiB, see the vendored kafka-protocol).
fn decode(batch: &StoredBatch, path: &Path) -> Result<kafka_protocol::records::RecordSet> {
    let mut bytes = batch.bytes.clone();
    RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
        LogError::CorruptRecord(format!(
            "{}: batch at offset {} does not decode: {e}",
            path.display(),
            batch.header.base_offset
        ))
    })
}

/// Maps keys of the dirty segments to their latest offsets, whole segments at a time, until
/// the map would pass `budget` bytes or a segment is younger than the compaction lag. Returns
/// the map and the first offset it does not cover (the end of this pass).
pub fn build_offset_map(
    plan: &CleaningPlan,
    budget: usize,
    now_ms: i64,
    stats: &mut CleanerStats,
) -> Result<(OffsetMap, u64)> {
    let mut map = OffsetMap::default();
    let mut end = plan.first_dirty;
    for (n, segment) in plan.segments.iter().enumerate() {
        let next_base = plan
            .segments
            .get(n + 1)
            .map_or(plan.active_base, |s| s.base_offset);
        if next_base <= plan.first_dirty {
            continue;
        }
        if next_base > plan.uncleanable_from
            || segment.max_timestamp > now_ms - plan.min_compaction_lag_ms.max(0)
        {
            break;
        }
        let mut segment_map = OffsetMap::default();
        for batch in batches(segment)? {
            stats.bytes_read += batch.bytes.len() as u64;
            if batch.header.is_control() {
                continue;
            }
            for record in decode(&batch, &segment.path)?.records {
                if plan.aborted(&batch.header, record.offset as u64) {
                    continue;
                }
                if let Some(key) = record.key {
                    segment_map.insert(key, record.offset as u64);
                }
            }
        }
        if !map.is_empty() && map.bytes + segment_map.bytes > budget {
            break;
        }
        for (key, offset) in segment_map.latest {
            map.insert(key, offset);
        }
        end = next_base;
    }
    Ok((map, end))
}

/// Rewrites `segment` without superseded records and expired tombstones into
/// `<base>.log.cleaned`; `None` when nothing would be removed.
pub fn clean_segment(
    plan: &CleaningPlan,
    segment: &SegmentSnapshot,
    map: &OffsetMap,
    now_ms: i64,
    stats: &mut CleanerStats,
) -> Result<Option<CleanedSegment>> {
    let tombstone_horizon = now_ms.saturating_sub(plan.delete_retention_ms);
    let mut out: Vec<Bytes> = Vec::new();
    let mut removed = 0u64;
    for batch in batches(segment)? {
        stats.bytes_read += batch.bytes.len() as u64;
        if batch.header.is_control() {
            out.push(batch.bytes);
            continue;
        }
        let set = decode(&batch, &segment.path)?;
        let before = set.records.len();
        let kept: Vec<_> = set
            .records
            .into_iter()
            .filter(|r| match &r.key {
                _ if plan.aborted(&batch.header, r.offset as u64) => false,
                // Kafka discards records without a key from compacted logs.
                None => false,
                Some(key) => {
                    let expired_tombstone =
                        r.value.is_none() && batch.header.max_timestamp < tombstone_horizon;
                    !map.superseded(key, r.offset as u64) && !expired_tombstone
                }
            })
            .collect();
        if kept.iter().any(|r| r.value.is_none()) {
            let expiry = batch
                .header
                .max_timestamp
                .saturating_add(plan.delete_retention_ms)
                .saturating_add(1);
            stats.next_tombstone_expiry = Some(
                stats
                    .next_tombstone_expiry
                    .map_or(expiry, |e| e.min(expiry)),
            );
        }
        removed += (before - kept.len()) as u64;
        if kept.len() == before {
            out.push(batch.bytes);
        } else if !kept.is_empty() {
            out.push(reencode(&batch, set.compression, &kept)?);
        }
    }
    if removed == 0 {
        return Ok(None);
    }
    let stem = super::segment::file_stem(segment.base_offset);
    let path = plan.dir.join(format!("{stem}.log.{CLEANED_SUFFIX}"));
    let file = File::create(&path).map_err(|e| LogError::io(&path, e))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut size = 0u64;
    for bytes in &out {
        writer
            .write_all(bytes)
            .map_err(|e| LogError::io(&path, e))?;
        size += bytes.len() as u64;
    }
    let file = writer
        .into_inner()
        .map_err(|e| LogError::io(&path, e.into_error()))?;
    file.sync_all().map_err(|e| LogError::io(&path, e))?;
    stats.segments += 1;
    stats.bytes_before += segment.size;
    stats.bytes_after += size;
    stats.records_removed += removed;
    Ok(Some(CleanedSegment {
        base_offset: segment.base_offset,
        original_size: segment.size,
        path,
        size,
        records_removed: removed,
    }))
}

/// Encodes the kept records of a batch as one batch with the same compression, producer and
/// leader epoch; records keep their offsets, sequences and timestamps.
fn reencode(
    batch: &StoredBatch,
    compression: Compression,
    kept: &[kafka_protocol::records::Record],
) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, kept, &options)
        .map_err(|e| LogError::CorruptRecord(format!("re-encoding a cleaned batch: {e}")))?;
    let mut bytes = buf.to_vec();
    // The decoder hands out records whose offset - sequence is constant within a batch, so
    // they come back as exactly one batch.
    let header = BatchHeader::parse(&bytes)?;
    if header.size() as usize != bytes.len() {
        return Err(LogError::CorruptRecord(
            "a cleaned batch was split in two".into(),
        ));
    }
    if batch.header.attributes & (1 << 3) != 0 {
        // LogAppendTime: readers take the batch max timestamp for every record; keep it.
        let (mut head, records) = batch::split_header(&bytes);
        batch::set_log_append_time(&mut head, records, batch.header.max_timestamp);
        bytes[..HEADER_SIZE].copy_from_slice(&head);
    }
    Ok(Bytes::from(bytes))
}

/// Finishes or discards a cleaner's leftovers in `dir` after a crash: `.cleaned` files are
/// incomplete and deleted; `.swap` files are complete and replace their segment.
pub fn recover_leftovers(dir: &Path) -> Result<()> {
    let mut swapped = false;
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.ends_with(&format!(".log.{CLEANED_SUFFIX}")) {
            tracing::warn!(file = %path.display(), "deleting an unfinished cleaned segment");
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        } else if let Some(stem) = name.strip_suffix(&format!(".log.{SWAP_SUFFIX}")) {
            tracing::warn!(file = %path.display(), "completing an interrupted segment swap");
            install_swap(dir, stem, &path)?;
            swapped = true;
        }
    }
    if swapped {
        super::local_log::sync_dir(dir)?;
    }
    Ok(())
}

/// Renames a `.swap` file over its segment's `.log`, dropping the stale indexes first so
/// that they are rebuilt from the new file.
pub fn install_swap(dir: &Path, stem: &str, swap: &Path) -> Result<()> {
    for ext in ["index", "timeindex"] {
        let path = dir.join(format!("{stem}.{ext}"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io(&path, e));
            }
            _ => {}
        }
    }
    let log = dir.join(format!("{stem}.log"));
    std::fs::rename(swap, &log).map_err(|e| LogError::io(&log, e))
}

#[cfg(test)]
#[path = "cleaner_test.rs"]
mod tests;
