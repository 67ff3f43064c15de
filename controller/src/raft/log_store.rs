//! The raft log and vote on disk.
//!
//! `raft.log` is a sequence of frames — `[u32 length][u32 CRC-32C][JSON entry]` — appended and
//! fdatasync'd before openraft hears that an append is durable. Opening it replays the frames
//! and cuts the file at the first torn or corrupt one (a crash mid-write). The vote, the
//! committed log id and the last purged log id live in small JSON files replaced atomically
//! (write, fsync, rename, fsync the directory). Purging rewrites the log without the purged
//! prefix, the same atomic way. Entries not yet purged are also kept in memory.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";
const PURGED_FILE: &str = "purged.json";
/// Largest frame accepted when reading the log back: anything larger is corruption.
const MAX_FRAME: usize = 64 << 20;

/// Entries by index, each with its frame's byte position in the log file.
type Positioned = BTreeMap<u64, (u64, Entry<TypeConfig>)>;

/// What the log store keeps, shared with its readers.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    file: File,
    /// Entries by index, with each frame's byte position in the file.
    entries: Positioned,
    /// Bytes of the file.
    len: u64,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
}

/// The raft log storage of one controller.
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl Into<io::Error>,
) -> StorageError<NodeId> {
    // The message alone: `AnyError::new` would prefix the Rust type name.
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.into())).into()
}

/// `e`, naming the file it concerns.
pub(crate) fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn log_err(verb: ErrorVerb, e: impl Into<io::Error>) -> StorageError<NodeId> {
    io_err(ErrorSubject::Logs, verb, e)
}

/// Writes `value` as JSON to `dir/name`, atomically and durably.
pub(crate) fn write_atomic<T: Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(value)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    };
    write().map_err(|e| at(&tmp, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(dir, e))
}

/// Reads `dir/name` as JSON, `None` when absent.
pub(crate) fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> io::Result<Option<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).map_err(|e| at(&path, e.into()))?,
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(at(&path, e)),
    }
}

fn frame(entry: &Entry<TypeConfig>) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(entry)?;
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads every whole, intact frame of `bytes`; returns the entries and the valid length.
fn parse_frames(bytes: &[u8]) -> (Vec<(u64, Entry<TypeConfig>)>, u64) {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= 8 {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > MAX_FRAME || bytes.len() - at - 8 < len {
            break;
        }
        let body = &bytes[at + 8..at + 8 + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(body) else {
            break;
        };
        entries.push((at as u64, entry));
        at += 8 + len;
    }
    (entries, at as u64)
}

impl LogStore {
    /// Bytes of log entries after `index` (what a snapshot at `index` does not cover).
    pub fn bytes_after(&self, index: u64) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .range(index + 1..)
            .next()
            .map_or(0, |(_, (position, _))| inner.len.saturating_sub(*position))
    }

    /// Opens (or creates) the log in `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| at(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| at(&path, e))?;
        let (parsed, valid) = parse_frames(&bytes);
        if valid < bytes.len() as u64 {
            tracing::warn!(
                file = %path.display(),
                valid,
                len = bytes.len(),
                "cutting a torn or corrupt tail off the raft log"
            );
            file.set_len(valid)
                .and_then(|()| file.sync_all())
                .map_err(|e| at(&path, e))?;
        }
        let purged: Option<LogId<NodeId>> = read_json(dir, PURGED_FILE)?;
        let entries = parsed
            .into_iter()
            .filter(|(_, e)| purged.is_none_or(|p| e.log_id.index > p.index))
            .map(|(pos, e)| (e.log_id.index, (pos, e)))
            .collect();
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_owned(),
                file,
                entries,
                len: valid,
                vote: read_json(dir, VOTE_FILE)?,
                committed: read_json(dir, COMMITTED_FILE)?,
                purged,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
impl LogStore {
    /// Appends and fsyncs entries outside openraft (tests only).
    pub(crate) fn blocking_append_for_test(&mut self, entries: Vec<Entry<TypeConfig>>) {
        let mut inner = self.lock();
        for entry in entries {
            let bytes = frame(&entry).unwrap();
            let position = inner.len;
            inner.file.write_all(&bytes).unwrap();
            inner.len += bytes.len() as u64;
            inner.entries.insert(entry.log_id.index, (position, entry));
        }
        inner.file.sync_data().unwrap();
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.lock();
        Ok(inner
            .entries
            .range(range)
            .map(|(_, (_, e))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|(_, e)| *e.get_log_id())
            .or(inner.purged);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        write_atomic(&inner.dir, VOTE_FILE, vote)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        write_atomic(&inner.dir, COMMITTED_FILE, &committed)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut buf = Vec::new();
        let mut added = Vec::new();
        for entry in entries {
            let position = inner.len + buf.len() as u64;
            buf.extend_from_slice(&frame(&entry).map_err(|e| log_err(ErrorVerb::Write, e))?);
            added.push((entry.log_id.index, (position, entry)));
        }
        let result = inner
            .file
            .write_all(&buf)
            .and_then(|()| inner.file.sync_data())
            .map_err(|e| at(&inner.dir.join(LOG_FILE), e));
        match result {
            Ok(()) => {
                inner.len += buf.len() as u64;
                inner.entries.extend(added);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                // A partial write is cut off by the next open; this process must not go on.
                let kind = e.kind();
                callback.log_io_completed(Err(io::Error::new(kind, e.to_string())));
                Err(log_err(ErrorVerb::Write, e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let Some((&first, &(position, _))) = inner.entries.range(log_id.index..).next() else {
            return Ok(());
        };
        inner
            .file
            .set_len(position)
            .and_then(|()| inner.file.sync_all())
            .map_err(|e| log_err(ErrorVerb::Delete, e))?;
        inner.len = position;
        inner.entries.split_off(&first);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        // The purge point first, so that a crash mid-rewrite still ignores purged entries.
        write_atomic(&inner.dir, PURGED_FILE, &log_id)
            .map_err(|e| log_err(ErrorVerb::Delete, e))?;
        inner.purged = Some(log_id);
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        // Rewrite the file without the purged prefix.
        let dir = inner.dir.clone();
        let tmp = dir.join(format!("{LOG_FILE}.tmp"));
        let rewrite = || -> io::Result<(File, u64, Positioned)> {
            let mut out = File::create(&tmp)?;
            let mut entries = BTreeMap::new();
            let mut len = 0u64;
            for (index, (_, entry)) in &inner.entries {
                let bytes = frame(entry)?;
                out.write_all(&bytes)?;
                entries.insert(*index, (len, entry.clone()));
                len += bytes.len() as u64;
            }
            out.sync_all()?;
            std::fs::rename(&tmp, dir.join(LOG_FILE))?;
            File::open(&dir)?.sync_all()?;
            let file = OpenOptions::new().append(true).open(dir.join(LOG_FILE))?;
            Ok((file, len, entries))
        };
        let (file, len, entries) =
            rewrite().map_err(|e| log_err(ErrorVerb::Delete, at(&tmp, e)))?;
        inner.file = file;
        inner.len = len;
        inner.entries = entries;
        Ok(())
    }
}
