//! `LogLoader`: opens a log directory's segments after a clean or an unclean stop.
//!
//! After an unclean shutdown every segment that may hold data above the checkpointed recovery
//! point is recovered: CRCs checked, a torn tail truncated, indexes rebuilt, and the recovered
//! bytes fsync'd before they count; segments after one whose tail was cut are deleted, as in
//! Kafka, since what followed is no longer contiguous. A compaction interrupted mid-swap is
//! finished or discarded first.

use std::path::Path;

use super::cleaner;
use super::config::LogConfig;
use super::error::{LogError, Result};
use super::segment::{LogSegment, SegmentSettings};
use super::segments::LogSegments;

/// The segment settings a topic config asks for.
pub fn segment_settings(config: &LogConfig) -> SegmentSettings {
    SegmentSettings {
        index_bytes: config.segment_index_bytes,
        index_interval_bytes: config.index_interval_bytes,
    }
}

/// Opens (creating if needed) the segments of the log in `dir`. A new or empty directory gets
/// one empty segment at offset 0. The segments returned are durable up to their end.
pub fn load(
    dir: &Path,
    config: &LogConfig,
    recovery_point: u64,
    clean: bool,
) -> Result<LogSegments> {
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
    let settings = segment_settings(config);
    let mut segments = LogSegments::default();
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
            // What survived the crash may sit only in the page cache: make it durable before
            // it counts as recovered, as Kafka flushes after recovery.
            segment.flush()?;
        }
        if base_offsets.get(n + 1).is_some() {
            segment.close()?;
            // Compaction leaves gaps between segments; only a cut tail breaks the chain.
            cut_short = segment.truncated_by_recovery();
        }
        segments.insert(segment);
    }
    Ok(segments)
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

/// Removes the files of the segment at `base` without opening it.
fn delete_segment_files(dir: &Path, base: u64) -> Result<()> {
    let stem = super::segment::file_stem(base);
    for ext in ["log", "index", "timeindex", "txnindex"] {
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
