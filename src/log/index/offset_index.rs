//! `OffsetIndex`: sparse map from offset to byte position in the segment's `.log` file.
//!
//! Entry format (8 bytes, big endian): offset relative to the segment's base offset (u32),
//! byte position in the log file (u32). Entries are strictly increasing in both fields; one is
//! added every `index.interval.bytes` of appended batches.

use std::path::Path;

use super::entry_file::EntryFile;
use crate::log::error::Result;

const ENTRY: usize = 8;

/// The offset index of one segment.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: u64,
    file: EntryFile<ENTRY>,
}

impl OffsetIndex {
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

    /// Whether the preallocated file is full (the segment must roll).
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    fn entry(&self, n: usize) -> (u64, u32) {
        let raw = self.file.entry(n);
        let relative = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let position = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        (self.base_offset + relative as u64, position)
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<(u64, u32)> {
        (!self.is_empty()).then(|| self.entry(self.len() - 1))
    }

    /// Records that the batch starting at `offset` begins at `position`.
    pub fn append(&mut self, offset: u64, position: u32) -> Result<()> {
        if self.last().is_some_and(|(last, _)| last >= offset) {
            return Ok(());
        }
        let relative = (offset - self.base_offset) as u32;
        let mut entry = [0u8; ENTRY];
        entry[..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(entry)
    }

    /// The largest indexed offset not above `offset` and its position; the segment start if none.
    pub fn lookup(&self, offset: u64) -> (u64, u32) {
        let count = self.len();
        // Index of the first entry whose offset is above the target.
        let (mut low, mut high) = (0, count);
        while low < high {
            let mid = (low + high) / 2;
            if self.entry(mid).0 <= offset {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if low == 0 {
            (self.base_offset, 0)
        } else {
            self.entry(low - 1)
        }
    }

    /// An offset every record below which lies before `position`: one past the last offset
    /// of an indexed batch that ends at or before it (entries name a batch's last offset and
    /// where it starts, so the batch of the last entry below `position` may cross it: the one
    /// before that does not). Short by at most about two index intervals; the segment start
    /// if none.
    pub fn offset_before_position(&self, position: u32) -> u64 {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            if self.entry(mid).1 <= position {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if low < 2 {
            self.base_offset
        } else {
            self.entry(low - 2).0 + 1
        }
    }

    /// Drops every entry at or above `offset`.
    pub fn truncate_to(&mut self, offset: u64) {
        let keep = (0..self.len())
            .position(|n| self.entry(n).0 >= offset)
            .unwrap_or(self.len());
        self.file.truncate_entries(keep);
    }

    /// Whether the entries are increasing and inside `[base_offset, next_offset)` and the log size.
    pub fn is_consistent(&self, next_offset: u64, log_size: u64) -> bool {
        let mut previous: Option<(u64, u32)> = None;
        for n in 0..self.len() {
            let (offset, position) = self.entry(n);
            if offset >= next_offset.max(self.base_offset + 1) || position as u64 >= log_size.max(1)
            {
                return false;
            }
            if previous.is_some_and(|(o, p)| o >= offset || p >= position) {
                return false;
            }
            previous = Some((offset, position));
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
    fn lookup_finds_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path, 100, 1024).unwrap();
        assert_eq!(index.lookup(150), (100, 0));
        index.append(110, 4096).unwrap();
        index.append(130, 8192).unwrap();
        assert_eq!(index.lookup(105), (100, 0));
        assert_eq!(index.lookup(110), (110, 4096));
        assert_eq!(index.lookup(129), (110, 4096));
        assert_eq!(index.lookup(1_000), (130, 8192));
        index.truncate_to(130);
        assert_eq!(index.lookup(1_000), (110, 4096));
    }

    #[test]
    fn trimmed_index_reopens_with_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::open(&path, 0, 1024).unwrap();
        for n in 1..=5u64 {
            index.append(n * 10, (n * 100) as u32).unwrap();
        }
        index.trim().unwrap();
        drop(index);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 40);
        let index = OffsetIndex::open(&path, 0, 1024).unwrap();
        assert_eq!(index.len(), 5);
        assert!(index.is_consistent(51, 501));
        assert!(!index.is_consistent(45, 501));
    }

    #[test]
    fn full_index_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::open(&dir.path().join("0.index"), 0, 16).unwrap();
        index.append(1, 1).unwrap();
        assert!(!index.is_full());
        index.append(2, 2).unwrap();
        assert!(index.is_full());
    }
}
