//! `TimeIndex`: sparse map from timestamp to the first offset whose batch reaches it.
//!
//! Entry format (12 bytes, big endian): timestamp in ms (i64), offset relative to the segment's
//! base offset (u32). Timestamps strictly increase: an entry is added beside an offset-index entry
//! only when the segment's max timestamp has grown.

use std::path::Path;

use super::entry_file::EntryFile;
use crate::log::error::Result;

const ENTRY: usize = 12;

/// The time index of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: u64,
    file: EntryFile<ENTRY>,
}

impl TimeIndex {
    /// Opens or creates the index file of the segment starting at `base_offset`.
    pub fn open(path: &Path, base_offset: u64, max_bytes: u64) -> Result<Self> {
        Ok(Self {
            base_offset,
            file: EntryFile::open(path, max_bytes)?,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.file.len()
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.file.len() == 0
    }

    /// Whether the preallocated file is full.
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    fn entry(&self, n: usize) -> (i64, u64) {
        let raw = self.file.entry(n);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let relative = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
        (i64::from_be_bytes(ts), self.base_offset + relative as u64)
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<(i64, u64)> {
        (!self.is_empty()).then(|| self.entry(self.len() - 1))
    }

    /// Records that offsets from `offset` on have timestamps up to `timestamp`, if it is new.
    pub fn maybe_append(&mut self, timestamp: i64, offset: u64) -> Result<()> {
        if self
            .last()
            .is_some_and(|(last_ts, last_offset)| last_ts >= timestamp || last_offset >= offset)
        {
            return Ok(());
        }
        let relative = (offset - self.base_offset) as u32;
        let mut entry = [0u8; ENTRY];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&relative.to_be_bytes());
        self.file.push(entry)
    }

    /// An offset from which to scan for the first batch reaching `timestamp`: the offset of the
    /// last entry whose timestamp is below it, or the segment start.
    pub fn lookup(&self, timestamp: i64) -> u64 {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            if self.entry(mid).0 < timestamp {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if low == 0 {
            self.base_offset
        } else {
            self.entry(low - 1).1
        }
    }

    /// Drops every entry at or above `offset`.
    pub fn truncate_to(&mut self, offset: u64) {
        let keep = (0..self.len())
            .position(|n| self.entry(n).1 >= offset)
            .unwrap_or(self.len());
        self.file.truncate_entries(keep);
    }

    /// Whether timestamps and offsets increase and stay below `next_offset`.
    pub fn is_consistent(&self, next_offset: u64) -> bool {
        let mut previous: Option<(i64, u64)> = None;
        for n in 0..self.len() {
            let (ts, offset) = self.entry(n);
            if offset >= next_offset.max(self.base_offset + 1) {
                return false;
            }
            if previous.is_some_and(|(t, o)| t >= ts || o >= offset) {
                return false;
            }
            previous = Some((ts, offset));
        }
        true
    }

    /// Shrinks the file to its entries (segment closed).
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }

    /// Removes the index file.
    pub fn delete(self) -> Result<()> {
        self.file.delete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_returns_scan_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::open(&dir.path().join("0.timeindex"), 0, 1200).unwrap();
        assert_eq!(index.lookup(5), 0);
        index.maybe_append(100, 10).unwrap();
        index.maybe_append(100, 20).unwrap(); // not newer: ignored
        index.maybe_append(200, 30).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(100), 0);
        assert_eq!(index.lookup(150), 10);
        assert_eq!(index.lookup(500), 30);
        assert!(index.is_consistent(31));
        index.truncate_to(30);
        assert_eq!(index.len(), 1);
    }
}
