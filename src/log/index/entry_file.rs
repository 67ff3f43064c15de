//! A file of fixed-size entries mapped into memory with memmap2.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::log::error::{LogError, Result};

/// A preallocated, memory-mapped file of `ENTRY`-byte entries.
#[derive(Debug)]
pub(super) struct EntryFile<const ENTRY: usize> {
    path: PathBuf,
    file: File,
    /// `None` while the file is empty: a zero-length file cannot be mapped.
    mmap: Option<MmapMut>,
    entries: usize,
    max_entries: usize,
}

impl<const ENTRY: usize> EntryFile<ENTRY> {
    /// Opens (or creates) the file. Its current length must be whole entries, all valid: files
    /// are trimmed when closed, and rebuilt after an unclean shutdown.
    pub(super) fn open(path: &Path, max_bytes: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| LogError::io(path, e))?;
        let len = file.metadata().map_err(|e| LogError::io(path, e))?.len();
        let entries = (len / ENTRY as u64) as usize;
        let max_entries = ((max_bytes / ENTRY as u64) as usize).max(entries).max(1);
        let mut index = Self {
            path: path.to_owned(),
            file,
            mmap: None,
            entries,
            max_entries,
        };
        index.remap(entries)?;
        Ok(index)
    }

    /// Number of valid entries.
    pub(super) fn len(&self) -> usize {
        self.entries
    }

    /// Whether no further entry fits.
    pub(super) fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    /// The raw bytes of entry `n`.
    pub(super) fn entry(&self, n: usize) -> &[u8] {
        debug_assert!(n < self.entries);
        let mmap = self.mmap.as_ref().expect("a non-empty index is mapped");
        &mmap[n * ENTRY..(n + 1) * ENTRY]
    }

    /// Appends one entry, growing the mapping to the preallocated size on first use.
    pub(super) fn push(&mut self, entry: [u8; ENTRY]) -> Result<()> {
        if self.is_full() {
            return Ok(());
        }
        let mapped = self.mmap.as_ref().map_or(0, |m| m.len() / ENTRY);
        if mapped <= self.entries {
            self.remap(self.max_entries)?;
        }
        let at = self.entries * ENTRY;
        let mmap = self.mmap.as_mut().expect("mapped above");
        mmap[at..at + ENTRY].copy_from_slice(&entry);
        self.entries += 1;
        Ok(())
    }

    /// Drops entries from `n` on.
    pub(super) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Shrinks the file to its entries so that a reopen knows how many are valid.
    pub(super) fn trim(&mut self) -> Result<()> {
        self.remap(self.entries)
    }

    /// Removes the file.
    pub(super) fn delete(self) -> Result<()> {
        let path = self.path.clone();
        drop(self);
        std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))
    }

    fn remap(&mut self, entries: usize) -> Result<()> {
        self.mmap = None;
        let bytes = (entries * ENTRY) as u64;
        self.file
            .set_len(bytes)
            .map_err(|e| LogError::io(&self.path, e))?;
        if bytes > 0 {
            // SAFETY: the file is private to this process's log directory and only this struct
            // resizes it; the mapping is dropped before every resize.
            let mmap =
                unsafe { MmapMut::map_mut(&self.file) }.map_err(|e| LogError::io(&self.path, e))?;
            // The file is preallocated sparse and filled an entry at a time: readahead on a
            // page fault would read (zero) up to megabytes of holes for each new page. With
            // a thousand partitions appending, that was nine tenths of the brokers' CPU.
            let _ = mmap.advise(memmap2::Advice::Random);
            self.mmap = Some(mmap);
        }
        Ok(())
    }
}
