//! The chunks of remote reads, decompressed, in two bounded tiers.
//!
//! - **In memory**: the chunks just ahead of (read-ahead) and just behind sequential readers,
//!   so a fetch finds its batches ready while decompression and disk reads run on other
//!   threads, in parallel with the consumer. Fetches return slices of these, never copies.
//! - **On disk**: every chunk read, so a replay fetches and decompresses each chunk once and
//!   later replays read it from local disk at disk speed. Files are written and read with
//!   direct I/O (`O_DIRECT`), bypassing the page cache: a replay of old history must not evict
//!   the hot tail that live consumers read from it, and creating page cache is costly (on this
//!   project's VM, ~10 µs per 4 KiB page: more than decompressing it). Where the filesystem
//!   refuses `O_DIRECT` (tmpfs), buffered I/O is used.
//!
//! In both tiers each entry belongs to a partition; when a tier is full the partition holding
//! the most bytes gives up its least recently used chunk, so partitions replaying at once share
//! the cache about equally instead of the fastest evicting the rest. Concurrent requests for a
//! chunk wait for one fetch and one decompression.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::TieringError;

/// Alignment of direct I/O buffers, offsets and lengths (the largest common block size).
const ALIGN: usize = 4096;

fn padded(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// A decompressed chunk, in a buffer aligned for direct I/O.
#[derive(Debug)]
pub struct ChunkBuf {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

/// Buffers of dropped chunks, for the next ones: a fresh 4 MiB buffer costs a thousand page
/// faults, more CPU than reading it from disk.
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// At most this many bytes of spare buffers are kept.
const SPARE_BYTES: usize = 32 << 20;

fn spare() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    SPARE.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChunkBuf {
    /// A chunk of `len` bytes, to be filled (its contents are unspecified until then).
    pub fn new(len: usize) -> Self {
        let need = padded(len) + ALIGN;
        let reused = {
            let mut spare = spare();
            let fit = spare
                .iter()
                .position(|b| (need..=2 * need).contains(&b.len()));
            fit.map(|at| spare.swap_remove(at))
        };
        let buf = reused.unwrap_or_else(|| vec![0; need]);
        let start = buf.as_ptr().align_offset(ALIGN);
        Self { buf, start, len }
    }

    /// The chunk's bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    fn padded(&self) -> &[u8] {
        &self.buf[self.start..self.start + padded(self.len)]
    }

    fn padded_mut(&mut self) -> &mut [u8] {
        let end = self.start + padded(self.len);
        &mut self.buf[self.start..end]
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        let mut spare = spare();
        if spare.iter().map(Vec::len).sum::<usize>() + self.buf.len() <= SPARE_BYTES {
            spare.push(std::mem::take(&mut self.buf));
        }
    }
}

impl std::ops::Deref for ChunkBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// A decompressed chunk, shared.
pub type Decoded = Arc<ChunkBuf>;

/// Why a chunk is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A reader needs it now.
    Read,
    /// Read ahead of a reader: kept in memory in preference to chunks already read, until a
    /// reader gets it.
    ReadAhead,
}

type Cell = Arc<OnceCell<Result<Decoded, TieringError>>>;

/// How a chunk is made from its stored frame, and checked when read back from the disk tier.
pub trait ChunkCodec: Send + Sync + 'static {
    /// Decompresses (and checks) a frame fetched from the store.
    fn decode(&self, frame: &[u8]) -> Result<ChunkBuf, TieringError>;
    /// Checks a chunk read back from a cache file: a damaged file fails here and the chunk is
    /// fetched again instead of served.
    fn verify(&self, _raw: &[u8]) -> Result<(), TieringError> {
        Ok(())
    }
}

impl<F> ChunkCodec for F
where
    F: Fn(&[u8]) -> Result<ChunkBuf, TieringError> + Send + Sync + 'static,
{
    fn decode(&self, frame: &[u8]) -> Result<ChunkBuf, TieringError> {
        self(frame)
    }
}

#[derive(Debug)]
struct Entry {
    owner: String,
    size: u64,
    last_used: u64,
    /// Served to a reader, not only read ahead.
    read: bool,
}

/// Entries with sizes and owners, evicted fairly between owners.
#[derive(Debug, Default)]
struct Shares {
    entries: HashMap<String, Entry>,
    by_owner: HashMap<String, u64>,
    used: u64,
    tick: u64,
}

impl Shares {
    fn touch(&mut self, key: &str, read: bool) -> bool {
        self.tick += 1;
        let tick = self.tick;
        match self.entries.get_mut(key) {
            Some(entry) => {
                entry.last_used = tick;
                entry.read |= read;
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        let Some(entry) = self.entries.remove(key) else {
            return false;
        };
        self.used -= entry.size;
        if let Some(owned) = self.by_owner.get_mut(&entry.owner) {
            *owned -= entry.size;
            if *owned == 0 {
                self.by_owner.remove(&entry.owner);
            }
        }
        true
    }

    /// Adds an entry, first evicting others until it fits in `capacity`; returns the evicted.
    fn insert(
        &mut self,
        owner: &str,
        key: &str,
        size: u64,
        capacity: u64,
        read: bool,
    ) -> Vec<String> {
        self.remove(key);
        let mut evicted = Vec::new();
        while self.used + size > capacity {
            let Some(victim) = self.victim() else { break };
            self.remove(&victim);
            evicted.push(victim);
        }
        self.tick += 1;
        let entry = Entry {
            owner: owner.to_owned(),
            size,
            last_used: self.tick,
            read,
        };
        self.entries.insert(key.to_owned(), entry);
        self.used += size;
        *self.by_owner.entry(owner.to_owned()).or_default() += size;
        evicted
    }

    /// The least recently used entry of the owner holding the most bytes, preferring one
    /// already read to one read ahead and still waiting for its reader.
    fn victim(&self) -> Option<String> {
        let (owner, _) = self.by_owner.iter().max_by_key(|(_, bytes)| **bytes)?;
        self.entries
            .iter()
            .filter(|(_, e)| e.owner == *owner)
            .min_by_key(|(_, e)| (!e.read, e.last_used))
            .map(|(k, _)| k.clone())
    }
}

/// Decompressed chunks: those being made (not evictable) and those made (in `shares`).
#[derive(Debug, Default)]
struct Memory {
    cells: HashMap<String, Cell>,
    shares: Shares,
}

/// The chunk cache of one broker.
#[derive(Debug)]
pub struct ChunkCache {
    dir: PathBuf,
    direct: bool,
    disk_capacity: u64,
    memory_capacity: u64,
    disk: Mutex<Shares>,
    memory: Mutex<Memory>,
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    /// Background writes not yet indexed.
    writing: AtomicU64,
}

/// Cache counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes on disk.
    pub used: u64,
    /// Chunks on disk.
    pub entries: usize,
    /// Bytes in memory.
    pub memory_used: u64,
    /// Chunks read from disk.
    pub hits: u64,
    /// Chunks fetched from the store.
    pub misses: u64,
}

impl ChunkCache {
    /// A cache of at most `disk_capacity` bytes in `dir` (emptied: entries do not outlive the
    /// process that indexed them) and `memory_capacity` bytes in memory.
    pub fn new(
        dir: PathBuf,
        disk_capacity: u64,
        memory_capacity: u64,
    ) -> Result<Self, TieringError> {
        let io =
            |e: std::io::Error| TieringError::Io(format!("chunk cache {}: {e}", dir.display()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io)?;
        }
        std::fs::create_dir_all(&dir).map_err(io)?;
        let direct = supports_direct_io(&dir);
        if !direct {
            tracing::info!(dir = %dir.display(), "chunk cache: no direct I/O here, buffered");
        }
        Ok(Self::with_io(dir, direct, disk_capacity, memory_capacity))
    }

    fn with_io(dir: PathBuf, direct: bool, disk_capacity: u64, memory_capacity: u64) -> Self {
        Self {
            dir,
            direct,
            disk_capacity,
            memory_capacity,
            disk: Mutex::default(),
            memory: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            writing: AtomicU64::new(0),
        }
    }

    fn disk(&self) -> std::sync::MutexGuard<'_, Shares> {
        self.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key.replace('/', "%"))
    }

    /// Counters for metrics.
    pub fn stats(&self) -> CacheStats {
        let disk = self.disk();
        CacheStats {
            used: disk.used,
            entries: disk.entries.len(),
            memory_used: self.memory().shares.used,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The memory `owner` may fill with read-ahead: an equal share among the partitions
    /// holding chunks in memory, so that read-ahead is not evicted before it is read.
    pub fn read_ahead_share(&self, owner: &str) -> u64 {
        let memory = self.memory();
        let others = memory
            .shares
            .by_owner
            .keys()
            .filter(|o| *o != owner)
            .count() as u64;
        self.memory_capacity / (others + 1)
    }

    /// Whether chunk `key` is in memory or on its way there.
    pub fn in_memory(&self, key: &str) -> bool {
        self.memory().cells.contains_key(key)
    }

    /// The chunk `key` (of partition `owner`), for a reader or read ahead of one (`purpose`).
    /// On a miss in memory it is read from disk (and checked by `codec`), or else its frame
    /// comes from `fetch` and `codec` decompresses it on a blocking thread (and it is written
    /// to disk in the background). Each runs once however many readers ask meanwhile.
    pub async fn get<F, Fut, D>(
        self: &Arc<Self>,
        owner: &str,
        key: &str,
        fetch: F,
        codec: D,
        purpose: Purpose,
    ) -> Result<Decoded, TieringError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, TieringError>>,
        D: ChunkCodec,
    {
        let read = purpose == Purpose::Read;
        let cell = {
            let mut memory = self.memory();
            memory.shares.touch(key, read);
            Arc::clone(memory.cells.entry(key.to_owned()).or_default())
        };
        let outcome = cell
            .get_or_init(|| async {
                let (chunk, fetched) = self.make(key, fetch, codec).await?;
                let chunk = Arc::new(chunk);
                if fetched {
                    self.write_behind(owner, key, Arc::clone(&chunk));
                }
                Ok(chunk)
            })
            .await
            .clone();
        let mut memory = self.memory();
        let current = memory.cells.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell));
        match outcome {
            Ok(chunk) => {
                if memory.shares.entries.contains_key(key) {
                    memory.shares.touch(key, read);
                } else if current {
                    let size = chunk.len() as u64;
                    let capacity = self.memory_capacity;
                    for evicted in memory.shares.insert(owner, key, size, capacity, read) {
                        memory.cells.remove(&evicted);
                    }
                }
                Ok(chunk)
            }
            Err(e) => {
                if current {
                    memory.cells.remove(key);
                }
                Err(e)
            }
        }
    }

    /// The chunk from disk, or fetched and decompressed (then `true`).
    async fn make<F, Fut, D>(
        self: &Arc<Self>,
        key: &str,
        fetch: F,
        codec: D,
    ) -> Result<(ChunkBuf, bool), TieringError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, TieringError>>,
        D: ChunkCodec,
    {
        let codec = Arc::new(codec);
        let held = {
            let mut disk = self.disk();
            disk.touch(key, true);
            disk.entries.get(key).map(|e| e.size)
        };
        if let Some(len) = held {
            let (path, direct) = (self.path(key), self.direct);
            let checker = Arc::clone(&codec);
            let read = tokio::task::spawn_blocking(move || {
                let chunk = read_entry(&path, len, direct)?;
                match checker.verify(&chunk) {
                    Ok(()) => Ok(chunk),
                    Err(e) => Err(TieringError::Corrupt {
                        object: path.display().to_string(),
                        detail: e.to_string(),
                    }),
                }
            })
            .await
            .map_err(|e| TieringError::Io(format!("chunk cache read: {e}")))?;
            match read {
                Ok(chunk) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((chunk, false));
                }
                Err(e @ TieringError::Corrupt { .. }) => {
                    // A damaged cache file is not the data: drop it and fetch the chunk again.
                    tracing::warn!("{e}: fetching the chunk again from the object store");
                    if self.disk().remove(key) {
                        let _ = std::fs::remove_file(self.path(key));
                    }
                }
                // Evicted meanwhile (or unreadable): fetch it again.
                Err(e) => tracing::debug!("chunk cache: {e}"),
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let frame = fetch().await?;
        let chunk = tokio::task::spawn_blocking(move || codec.decode(&frame))
            .await
            .map_err(|e| TieringError::Io(format!("decompressing: {e}")))??;
        Ok((chunk, true))
    }

    /// Writes a chunk just made to disk, off the reader's path.
    fn write_behind(self: &Arc<Self>, owner: &str, key: &str, chunk: Decoded) {
        let (cache, owner, key) = (Arc::clone(self), owner.to_owned(), key.to_owned());
        self.writing.fetch_add(1, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            let n = cache.writes.fetch_add(1, Ordering::Relaxed);
            match write_entry(&cache.path(&key), n, &chunk, cache.direct) {
                Ok(()) => cache.index_entry(&owner, &key, chunk.len() as u64),
                Err(e) => tracing::warn!("chunk cache: {e}"),
            }
            cache.writing.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Indexes a chunk written to its file, evicting others to make room.
    fn index_entry(&self, owner: &str, key: &str, size: u64) {
        let mut disk = self.disk();
        for victim in disk.insert(owner, key, size, self.disk_capacity, true) {
            let _ = std::fs::remove_file(self.path(&victim));
        }
    }
}

fn open_direct(options: &mut OpenOptions, path: &Path, direct: bool) -> std::io::Result<File> {
    if direct {
        options.custom_flags(nix::fcntl::OFlag::O_DIRECT.bits());
    }
    options.open(path)
}

/// Whether files in `dir` can be written and read with `O_DIRECT`.
fn supports_direct_io(dir: &Path) -> bool {
    let path = dir.join("direct-io-probe");
    let mut block = ChunkBuf::new(ALIGN);
    let works = open_direct(
        OpenOptions::new().create(true).truncate(true).write(true),
        &path,
        true,
    )
    .and_then(|mut file| file.write_all(block.padded()))
    .and_then(|()| open_direct(OpenOptions::new().read(true), &path, true))
    .and_then(|mut file| file.read_exact(block.padded_mut()))
    .is_ok();
    let _ = std::fs::remove_file(&path);
    works
}

/// Writes a cache file under a unique temporary name first, so that a reader never sees a
/// partial one, even while the same chunk is written twice.
fn write_entry(path: &Path, n: u64, chunk: &ChunkBuf, direct: bool) -> Result<(), TieringError> {
    // Not `with_extension`: keys of one segment differ only after their last dot.
    let tmp = PathBuf::from(format!("{}.{n}.tmp", path.display()));
    let written = open_direct(
        OpenOptions::new().create(true).truncate(true).write(true),
        &tmp,
        direct,
    )
    .and_then(|mut file| {
        if direct {
            // Direct writes are whole blocks: write the padding, then cut it off.
            file.write_all(chunk.padded())?;
            file.set_len(chunk.len() as u64)
        } else {
            file.write_all(chunk)
        }
    })
    .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(TieringError::Io(format!(
            "chunk cache {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// Reads a cache file of `len` bytes.
fn read_entry(path: &Path, len: u64, direct: bool) -> Result<ChunkBuf, TieringError> {
    let failed =
        |e: std::io::Error| TieringError::Io(format!("chunk cache {}: {e}", path.display()));
    let mut file = open_direct(OpenOptions::new().read(true), path, direct).map_err(failed)?;
    let mut chunk = ChunkBuf::new(len as usize);
    if !direct {
        file.read_exact(chunk.as_mut_slice()).map_err(failed)?;
        return Ok(chunk);
    }
    // Whole blocks into the padded buffer; the last read stops at the end of the file.
    let mut filled = 0;
    let room = chunk.padded_mut();
    while filled < len as usize {
        match file.read(&mut room[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(failed(e)),
        }
    }
    if filled != len as usize {
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("{filled} bytes, expected {len}"),
        )));
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Waits until the background writes are done, and checks `entries` chunks are on disk.
    async fn settled(cache: &ChunkCache, entries: usize) {
        for _ in 0..400 {
            if cache.writing.load(Ordering::SeqCst) == 0 {
                assert_eq!(cache.stats().entries, entries);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("cache writes did not settle");
    }

    /// "Decompresses" a frame of one repeated byte into ten times as many.
    fn widen(frame: &[u8]) -> Result<ChunkBuf, TieringError> {
        let mut chunk = ChunkBuf::new(frame.len() * 10);
        chunk.as_mut_slice().fill(frame[0]);
        Ok(chunk)
    }

    /// Caches with direct I/O (where this filesystem has it) and buffered.
    fn caches(dir: &Path, disk: u64, memory: u64) -> Vec<Arc<ChunkCache>> {
        let mut out = vec![Arc::new(ChunkCache::with_io(
            dir.join("b"),
            false,
            disk,
            memory,
        ))];
        std::fs::create_dir_all(dir.join("b")).unwrap();
        let direct = ChunkCache::new(dir.join("d"), disk, memory).unwrap();
        if direct.direct {
            out.push(Arc::new(direct));
        }
        out
    }

    #[tokio::test]
    async fn evicts_from_the_largest_partition_and_fetches_once() {
        let dir = tempfile::tempdir().unwrap();
        for cache in caches(dir.path(), 4000, 4000) {
            let fetches = AtomicUsize::new(0);
            let fetch = |n: u8| {
                fetches.fetch_add(1, Ordering::SeqCst);
                async move { Ok(Bytes::from(vec![n; 100])) }
            };
            for n in 0..3u8 {
                let read = cache
                    .get("a", &format!("a/{n}"), || fetch(n), widen, Purpose::Read)
                    .await
                    .unwrap();
                assert_eq!((read[0], read.len()), (n, 1000));
                settled(&cache, n as usize + 1).await;
            }
            cache
                .get("b", "b/0", || fetch(9), widen, Purpose::Read)
                .await
                .unwrap();
            settled(&cache, 4).await;
            // Both tiers full: the next chunk of b evicts a's oldest, not b's.
            cache
                .get("b", "b/1", || fetch(8), widen, Purpose::Read)
                .await
                .unwrap();
            settled(&cache, 4).await;
            assert!(!cache.in_memory("a/0") && cache.in_memory("a/1") && cache.in_memory("b/0"));
            let stats = cache.stats();
            assert_eq!(
                (stats.used, stats.memory_used, stats.misses),
                (4000, 4000, 5)
            );
            let read = cache
                .get("b", "b/0", || fetch(0), widen, Purpose::Read)
                .await
                .unwrap();
            assert_eq!(read[0], 9, "served from memory");
            assert_eq!(fetches.load(Ordering::SeqCst), 5);
            let read = cache
                .get("a", "a/0", || fetch(7), widen, Purpose::Read)
                .await
                .unwrap();
            assert_eq!(read[0], 7, "evicted from both tiers: fetched again");
            assert_eq!(fetches.load(Ordering::SeqCst), 6);
        }
    }

    /// Gets chunk `key` (owned by the partition named before its `/`) of 1000 bytes.
    async fn hold(cache: &Arc<ChunkCache>, key: &str, purpose: Purpose) {
        let owner = key.split('/').next().unwrap();
        let frame = || async { Ok(Bytes::from(vec![1u8; 100])) };
        cache.get(owner, key, frame, widen, purpose).await.unwrap();
    }

    #[tokio::test]
    async fn read_ahead_outlives_chunks_already_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ChunkCache::new(dir.path().join("cache"), 100_000, 3000).unwrap());
        hold(&cache, "a/1", Purpose::ReadAhead).await;
        hold(&cache, "a/2", Purpose::ReadAhead).await;
        hold(&cache, "a/0", Purpose::Read).await;
        // Full: the chunk read goes first, though the read-ahead is older.
        hold(&cache, "a/3", Purpose::ReadAhead).await;
        assert!(!cache.in_memory("a/0"));
        assert!(cache.in_memory("a/1") && cache.in_memory("a/2") && cache.in_memory("a/3"));
        // Once read, read-ahead is an ordinary chunk again: least recently used first.
        for key in ["a/1", "a/2", "a/4"] {
            hold(&cache, key, Purpose::Read).await;
        }
        assert!(!cache.in_memory("a/1") && cache.in_memory("a/2") && cache.in_memory("a/3"));
    }

    #[tokio::test]
    async fn read_ahead_shares_memory_between_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ChunkCache::new(dir.path().join("cache"), 10_000, 9000).unwrap());
        assert_eq!(cache.read_ahead_share("a"), 9000);
        hold(&cache, "a/0", Purpose::Read).await;
        let own = cache.read_ahead_share("a");
        assert_eq!(own, 9000, "its own chunks do not count");
        hold(&cache, "b/0", Purpose::Read).await;
        hold(&cache, "c/0", Purpose::Read).await;
        assert_eq!(cache.read_ahead_share("a"), 3000);
        assert_eq!(cache.read_ahead_share("d"), 2250);
    }

    #[tokio::test]
    async fn a_chunk_evicted_from_memory_is_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        for cache in caches(dir.path(), 100_000, 9000) {
            let fetches = AtomicUsize::new(0);
            let fetch = |n: u8, len: usize| {
                fetches.fetch_add(1, Ordering::SeqCst);
                async move { Ok(Bytes::from(vec![n; len])) }
            };
            // Sizes that are not whole blocks, for direct I/O.
            cache
                .get("a", "a/0", || fetch(1, 777), widen, Purpose::Read)
                .await
                .unwrap();
            settled(&cache, 1).await;
            cache
                .get("a", "a/1", || fetch(2, 500), widen, Purpose::Read)
                .await
                .unwrap();
            settled(&cache, 2).await;
            assert!(!cache.in_memory("a/0"), "memory holds one of these");
            let read = cache
                .get("a", "a/0", || fetch(3, 1), widen, Purpose::Read)
                .await
                .unwrap();
            assert_eq!(read.len(), 7770);
            assert!(read.iter().all(|b| *b == 1), "from disk, whole");
            assert_eq!(fetches.load(Ordering::SeqCst), 2);
            assert_eq!(cache.stats().hits, 1);
        }
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_fetch_and_a_failure_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ChunkCache::new(dir.path().join("cache"), 10_000, 10_000).unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let slow = |fetches: Arc<AtomicUsize>| async move {
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok(Bytes::from(vec![5u8; 100]))
        };
        let (one, two) = tokio::join!(
            cache.get(
                "a",
                "a/0",
                || slow(Arc::clone(&fetches)),
                widen,
                Purpose::Read
            ),
            cache.get(
                "a",
                "a/0",
                || slow(Arc::clone(&fetches)),
                widen,
                Purpose::Read
            ),
        );
        assert!(Arc::ptr_eq(&one.unwrap(), &two.unwrap()));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let failed = cache
            .get(
                "a",
                "a/1",
                || async { Err(TieringError::Store("503".into())) },
                widen,
                Purpose::Read,
            )
            .await;
        assert!(failed.is_err() && !cache.in_memory("a/1"));
        let read = cache
            .get(
                "a",
                "a/1",
                || async { Ok(Bytes::from(vec![6u8; 10])) },
                widen,
                Purpose::Read,
            )
            .await
            .unwrap();
        assert_eq!(read.len(), 100, "retried after the failure");
    }
}
