//! `TransactionIndex`: the aborted transactions whose abort markers a segment holds, in Kafka's
//! `.txnindex` format, so that a `read_committed` fetch can be told which records to drop.
//!
//! Entries are 34 bytes, big endian: version (int16, 0), producer id, first offset, last offset
//! (the abort marker's) and the last stable offset when the transaction ended (the first
//! offset of the next transaction still open then, or the marker's offset + 1). The file is
//! created with its first entry. Like the other indexes it is a hint rebuilt from the log when
//! the log is opened, so it is written without fsync.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::log::error::{LogError, Result};

const ENTRY_SIZE: usize = 34;

/// One aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Its producer.
    pub producer_id: i64,
    /// Its first offset.
    pub first_offset: u64,
    /// The offset of its abort marker.
    pub last_offset: u64,
    /// The last stable offset once it ended.
    pub last_stable_offset: u64,
}

impl AbortedTxn {
    fn to_bytes(self) -> [u8; ENTRY_SIZE] {
        let mut bytes = [0u8; ENTRY_SIZE];
        bytes[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        bytes[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        bytes[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        bytes[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let long = |at: usize| {
            bytes
                .get(at..at + 8)?
                .try_into()
                .ok()
                .map(i64::from_be_bytes)
        };
        if bytes.get(..2)? != [0, 0] {
            return None;
        }
        Some(Self {
            producer_id: long(2)?,
            first_offset: long(10)? as u64,
            last_offset: long(18)? as u64,
            last_stable_offset: long(26)? as u64,
        })
    }
}

/// The aborted transactions of one segment.
#[derive(Debug)]
pub struct TransactionIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
}

impl TransactionIndex {
    /// Opens the index at `path`; a missing file is an empty index, and a torn last entry is
    /// left out.
    pub fn open(path: &Path) -> Result<Self> {
        let entries = match std::fs::read(path) {
            Ok(bytes) => bytes
                .chunks_exact(ENTRY_SIZE)
                .map_while(AbortedTxn::from_bytes)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io(path, e)),
        };
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The entries, in the order their markers were written.
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Adds an aborted transaction.
    pub fn append(&mut self, entry: AbortedTxn) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| LogError::io(&self.path, e))?;
        file.write_all(&entry.to_bytes())
            .map_err(|e| LogError::io(&self.path, e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Replaces every entry (a rebuild from the log); no file for none.
    pub fn replace(&mut self, entries: Vec<AbortedTxn>) -> Result<()> {
        if entries == self.entries {
            return Ok(());
        }
        self.entries = entries;
        self.rewrite()
    }

    /// Forgets the transactions whose markers are at or above `offset`.
    pub fn truncate_to(&mut self, offset: u64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.last_offset < offset);
        if self.entries.len() == before {
            return Ok(());
        }
        self.rewrite()
    }

    fn rewrite(&self) -> Result<()> {
        if self.entries.is_empty() {
            return self.remove_file();
        }
        let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.to_bytes()).collect();
        std::fs::write(&self.path, bytes).map_err(|e| LogError::io(&self.path, e))
    }

    fn remove_file(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io(&self.path, e)),
            _ => Ok(()),
        }
    }

    /// Deletes the file.
    pub fn delete(self) -> Result<()> {
        self.remove_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(producer_id: i64, first: u64, last: u64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_survive_reopen_in_kafkas_format_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TransactionIndex::open(&path).unwrap();
        assert!(!path.exists(), "no file until the first entry");
        index.append(entry(7, 0, 10)).unwrap();
        index.append(entry(8, 5, 20)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[..2], &[0, 0], "version 0");
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        // A torn entry at the end (a crash mid-write) is left out.
        std::fs::write(&path, [bytes.as_slice(), &[0, 0, 1]].concat()).unwrap();
        let mut index = TransactionIndex::open(&path).unwrap();
        assert_eq!(index.entries(), [entry(7, 0, 10), entry(8, 5, 20)]);
        index.truncate_to(15).unwrap();
        assert_eq!(
            TransactionIndex::open(&path).unwrap().entries(),
            [entry(7, 0, 10)]
        );
        index.truncate_to(0).unwrap();
        assert!(!path.exists());
    }
}
