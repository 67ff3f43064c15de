//! Sequential scans over the batches of a `.log` file, with positional reads in large chunks.
//!
//! Used by recovery (which checks every CRC), by the producer-state rebuild (headers only) and by
//! reads that must find the batch holding an offset after an index lookup.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::batch::{self, BatchHeader, HEADER_SIZE};
use super::error::{LogError, Result};

/// How much of the file one positional read brings in; large enough that header-only scans cost
/// a syscall per many batches, small enough to live on the stack of every scan.
const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// One batch found by a scan.
#[derive(Debug, Clone, Copy)]
pub struct ScannedBatch {
    /// Byte position of the batch in the file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
}

/// Why a scan stopped before the end of the file.
#[derive(Debug)]
pub enum ScanStop {
    /// The remaining bytes do not form a valid batch (a torn or corrupt tail).
    Invalid {
        /// Where the invalid bytes start.
        position: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Iterates over the batches of `file` between `start` and `end`.
pub struct BatchScanner<'a> {
    file: &'a File,
    path: &'a Path,
    position: u64,
    end: u64,
    verify_crc: bool,
    buffer: Vec<u8>,
    buffer_start: u64,
    chunk: usize,
    /// Set when the scan met bytes that are not a valid batch.
    pub stop: Option<ScanStop>,
}

impl<'a> BatchScanner<'a> {
    /// A scan of `[start, end)`; with `verify_crc` every batch is read whole and its CRC checked.
    pub fn new(file: &'a File, path: &'a Path, start: u64, end: u64, verify_crc: bool) -> Self {
        Self {
            file,
            path,
            position: start,
            end,
            verify_crc,
            buffer: Vec::new(),
            buffer_start: start,
            chunk: SCAN_CHUNK_BYTES,
            stop: None,
        }
    }

    /// Reads the file `bytes` at a time instead of 64 KiB: for a lookup that expects to meet
    /// its batch within a few headers (an index entry is at most `index.interval.bytes` away).
    pub fn chunk(mut self, bytes: usize) -> Self {
        self.chunk = bytes.max(HEADER_SIZE);
        self
    }

    /// Makes `[position, position + len)` available in the buffer; false past the end.
    fn fill(&mut self, len: usize) -> Result<bool> {
        if self.position + len as u64 > self.end {
            return Ok(false);
        }
        let have_start = self.position >= self.buffer_start;
        let have_end = self.position + len as u64 <= self.buffer_start + self.buffer.len() as u64;
        if have_start && have_end {
            return Ok(true);
        }
        let want = len.max(self.chunk).min((self.end - self.position) as usize);
        self.buffer.resize(want, 0);
        self.file
            .read_exact_at(&mut self.buffer, self.position)
            .map_err(|e| LogError::io(self.path, e))?;
        self.buffer_start = self.position;
        Ok(true)
    }

    fn slice(&self, len: usize) -> &[u8] {
        let at = (self.position - self.buffer_start) as usize;
        &self.buffer[at..at + len]
    }

    /// The next batch, `Ok(None)` at the end or when the scan stopped on invalid bytes.
    pub fn next_batch(&mut self) -> Result<Option<ScannedBatch>> {
        if self.stop.is_some() || self.position >= self.end {
            return Ok(None);
        }
        if !self.fill(HEADER_SIZE)? {
            return self.invalid("truncated batch header".into());
        }
        let header = match BatchHeader::parse(self.slice(HEADER_SIZE)) {
            Ok(header) => header,
            Err(e) => return self.invalid(e.to_string()),
        };
        let size = header.size();
        if self.position + size > self.end {
            return self.invalid(format!(
                "batch of {size} bytes runs past the end of the log"
            ));
        }
        if self.verify_crc {
            self.fill(size as usize)?;
            if let Err(e) = batch::verify_crc(self.slice(size as usize)) {
                return self.invalid(e.to_string());
            }
        }
        let found = ScannedBatch {
            position: self.position,
            header,
        };
        self.position += size;
        Ok(Some(found))
    }

    fn invalid(&mut self, reason: String) -> Result<Option<ScannedBatch>> {
        self.stop = Some(ScanStop::Invalid {
            position: self.position,
            reason,
        });
        Ok(None)
    }
}
