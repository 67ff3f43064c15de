//! `LeaderEpochCache`: leader epoch → the first offset written in it (Kafka's
//! `LeaderEpochFileCache`, KIP-101), kept in `leader-epoch-checkpoint` in Kafka's format:
//!
//! ```text
//! 0            version
//! 2            number of entries
//! 0 0          epoch start offset
//! 3 1520
//! ```
//!
//! It answers OffsetForLeaderEpoch and the Fetch divergence check: where a replica's history
//! under an epoch ends, so a follower or a returning leader truncates exactly the records the
//! committed history does not contain. The file is written (and fsync'd) whenever an entry is
//! added or removed, which happens at leader changes only; after a crash, entries past the
//! recovered log end are dropped and the batches on disk fill in any entry not yet written.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{LogError, Result};
use super::local_log::sync_dir;

/// The checkpoint's file name in a partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// Its first offset.
    pub start_offset: u64,
}

/// The epochs of one partition's log, ascending in both epoch and start offset.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Reads the checkpoint in `dir` (none: an empty cache).
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|m| {
                LogError::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, m),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        Ok(Self { path, entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest epoch.
    /// Returns whether the cache changed (and was written).
    pub fn assign(&mut self, epoch: i32, start_offset: u64) -> Result<bool> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return Ok(false);
        }
        // A start below an existing entry's means those entries were never really written
        // (a follower re-fetching after truncation): they go.
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.write()?;
        Ok(true)
    }

    /// Records, without writing the file, the epochs of batches found on disk; call
    /// [`Self::flush`] after. Used when the log is opened.
    pub fn observe(&mut self, epoch: i32, start_offset: u64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// The epoch that wrote `offset`, if known.
    pub fn epoch_for_offset(&self, offset: u64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }

    /// Kafka's `endOffsetFor`: the largest epoch not above `epoch` and the offset where it
    /// ended (the next epoch's start, or the log end for the latest epoch). `None` (UNDEFINED)
    /// when `epoch` is above every epoch here or the cache is empty. An epoch below the first
    /// answers with itself and the first epoch's start offset.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: u64) -> Option<(i32, u64)> {
        let latest = self.entries.last()?;
        if epoch == latest.epoch {
            return Some((epoch, log_end_offset));
        }
        let higher = self.entries.iter().position(|e| e.epoch > epoch)?;
        let end = self.entries[higher].start_offset;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].epoch, end)),
            None => Some((epoch, end)),
        }
    }

    /// Drops the entries that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: u64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    /// Drops the entries wholly below `start_offset` (retention moved the log start); the
    /// epoch in force there now starts at it.
    pub fn truncate_from_start(&mut self, start_offset: u64) -> Result<()> {
        let Some(floor) = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= start_offset)
        else {
            return Ok(());
        };
        if floor == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..floor);
        self.entries[0].start_offset = start_offset;
        self.write()
    }

    /// Adds history older than this cache knows (a replica that started its log at the
    /// leader's local log start learns the epochs below it from the remote tier, as KIP-405
    /// followers do): entries of lower epochs starting before the first entry, and an earlier
    /// start for the first epoch itself. Returns whether the cache changed (and was written).
    pub fn merge_history(&mut self, older: &[EpochEntry]) -> Result<bool> {
        let Some(first) = self.entries.first().copied() else {
            return Ok(false);
        };
        let mut prefix: Vec<EpochEntry> = Vec::new();
        let mut first_start = first.start_offset;
        for e in older {
            if e.start_offset >= first.start_offset || e.epoch > first.epoch {
                continue;
            }
            if e.epoch == first.epoch {
                first_start = first_start.min(e.start_offset);
            } else if prefix
                .last()
                .is_none_or(|p| p.epoch < e.epoch && p.start_offset < e.start_offset)
            {
                prefix.push(*e);
            }
        }
        if prefix.is_empty() && first_start == first.start_offset {
            return Ok(false);
        }
        self.entries[0].start_offset = first_start;
        prefix.retain(|p| p.start_offset < first_start);
        prefix.append(&mut self.entries);
        self.entries = prefix;
        self.write()?;
        Ok(true)
    }

    /// Writes the checkpoint if `observe` changed it.
    pub fn flush(&self) -> Result<()> {
        self.write()
    }

    /// Writes the checkpoint atomically: a temporary file, fsync'd, renamed over the old one.
    fn write(&self) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        let mut file = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| LogError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Parses Kafka's checkpoint format (version 0).
fn parse(text: &str) -> std::result::Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("0") => {}
        other => return Err(format!("unknown leader epoch checkpoint version {other:?}")),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("leader epoch checkpoint without an entry count")?;
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count.min(1024));
    for line in lines.by_ref().take(count) {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("malformed leader epoch entry '{line}'"));
        };
        let entry = EpochEntry {
            epoch: epoch
                .parse()
                .map_err(|_| format!("malformed epoch in '{line}'"))?,
            start_offset: start
                .parse()
                .map_err(|_| format!("malformed offset in '{line}'"))?,
        };
        if entries
            .last()
            .is_some_and(|l| l.epoch >= entry.epoch || l.start_offset > entry.start_offset)
        {
            return Err(format!("leader epoch entry '{line}' out of order"));
        }
        entries.push(entry);
    }
    if entries.len() != count {
        return Err(format!(
            "leader epoch checkpoint names {count} entries but has {}",
            entries.len()
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, u64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::open(dir.path()).unwrap();
        for &(epoch, start) in entries {
            assert!(cache.assign(epoch, start).unwrap());
        }
        (dir, cache)
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let (_dir, cache) = cache(&[(1, 0), (3, 100), (5, 250)]);
        assert_eq!(cache.end_offset_for(5, 400), Some((5, 400)));
        assert_eq!(cache.end_offset_for(3, 400), Some((3, 250)));
        // An epoch this replica never saw: the one before it, ending where the next began.
        assert_eq!(cache.end_offset_for(4, 400), Some((3, 250)));
        assert_eq!(cache.end_offset_for(2, 400), Some((1, 100)));
        assert_eq!(cache.end_offset_for(0, 400), Some((0, 0)));
        assert_eq!(cache.end_offset_for(6, 400), None);
        let (_dir, empty) = cache_empty();
        assert_eq!(empty.end_offset_for(0, 10), None);
    }

    fn cache_empty() -> (tempfile::TempDir, LeaderEpochCache) {
        cache(&[])
    }

    #[test]
    fn the_checkpoint_survives_a_reopen_in_kafkas_format() {
        let (dir, mut cache) = cache(&[(0, 0), (2, 10), (7, 30)]);
        assert!(!cache.assign(7, 40).unwrap(), "same epoch again");
        assert!(!cache.assign(1, 40).unwrap(), "an older epoch");
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n3\n0 0\n2 10\n7 30\n");
        cache.truncate_from_end(30).unwrap();
        let reopened = LeaderEpochCache::open(dir.path()).unwrap();
        assert_eq!(reopened.latest_epoch(), Some(2));
        assert_eq!(reopened.epoch_for_offset(9), Some(0));
        assert_eq!(reopened.epoch_for_offset(10), Some(2));
    }

    #[test]
    fn history_from_the_remote_tier_goes_before_what_the_replica_copied() {
        // A replica that started at offset 500 inside epoch 4 learns epochs 1..4 from below.
        let (dir, mut cache) = cache(&[(4, 500), (6, 900)]);
        let remote = [(1, 0), (2, 120), (4, 300)].map(|(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        });
        assert!(cache.merge_history(&remote).unwrap());
        let starts: Vec<(i32, u64)> = cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        assert_eq!(starts, vec![(1, 0), (2, 120), (4, 300), (6, 900)]);
        assert_eq!(cache.end_offset_for(2, 1000), Some((2, 300)));
        assert!(
            !cache.merge_history(&remote).unwrap(),
            "nothing new the second time"
        );
        let reopened = LeaderEpochCache::open(dir.path()).unwrap();
        assert_eq!(reopened.entries().len(), 4);
        // Remote entries at or past what the replica has are never taken.
        let (_dir, mut newer) = cache_with(&[(4, 500)]);
        let later = [EpochEntry {
            epoch: 5,
            start_offset: 450,
        }];
        assert!(!newer.merge_history(&later).unwrap());
    }

    fn cache_with(entries: &[(i32, u64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        cache(entries)
    }

    #[test]
    fn truncation_from_the_start_keeps_the_epoch_in_force() {
        let (_dir, mut cache) = cache(&[(0, 0), (2, 10), (7, 30)]);
        cache.truncate_from_start(15).unwrap();
        assert_eq!(
            cache.entries(),
            &[
                EpochEntry {
                    epoch: 2,
                    start_offset: 15
                },
                EpochEntry {
                    epoch: 7,
                    start_offset: 30
                }
            ]
        );
        assert_eq!(cache.end_offset_for(1, 50), Some((1, 15)));
    }

    #[test]
    fn a_damaged_checkpoint_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        for text in ["1\n0\n", "0\n2\n0 0\n", "0\n2\n3 0\n2 5\n", "0\n1\nx 0\n"] {
            std::fs::write(&path, text).unwrap();
            let e = LeaderEpochCache::open(dir.path()).unwrap_err().to_string();
            assert!(e.contains(LEADER_EPOCH_CHECKPOINT), "{text:?}: {e}");
        }
    }
}
