//! A bounded on-disk cache of decompressed chunks, so that a replay from the bucket reads each
//! chunk once and consumers re-reading recent remote data hit local disk.
//!
//! Entries are files named by chunk, mapped (memmap2) when read, so that a fetch copies only
//! the batches it returns. Each entry belongs to a partition; when the cache is full the
//! partition holding the most bytes gives up its least recently used chunk, so partitions
//! replaying at once share the cache about equally instead of the fastest evicting the rest.
//! Concurrent requests for a chunk being fetched wait for that one fetch.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use memmap2::Mmap;
use tokio::sync::OnceCell;

use crate::TieringError;

/// A chunk's bytes: mapped from the cache, or in memory while being written to it.
#[derive(Debug, Clone)]
pub enum ChunkBytes {
    /// Mapped from its cache file.
    Mapped(Arc<Mmap>),
    /// Just fetched.
    Memory(Arc<Vec<u8>>),
}

impl std::ops::Deref for ChunkBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(map) => map,
            Self::Memory(bytes) => bytes,
        }
    }
}

#[derive(Debug)]
struct Entry {
    owner: String,
    size: u64,
    last_used: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    by_owner: HashMap<String, u64>,
    used: u64,
    tick: u64,
    hits: u64,
    misses: u64,
}

type Pending = Arc<OnceCell<Result<Arc<Vec<u8>>, String>>>;

/// The chunk cache of one broker.
#[derive(Debug)]
pub struct ChunkCache {
    dir: PathBuf,
    capacity: u64,
    state: Mutex<State>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// Cache counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes held.
    pub used: u64,
    /// Chunks held.
    pub entries: usize,
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads that fetched from the store.
    pub misses: u64,
}

impl ChunkCache {
    /// A cache of at most `capacity` bytes in `dir` (emptied: entries do not outlive the
    /// process that indexed them).
    pub fn new(dir: PathBuf, capacity: u64) -> Result<Self, TieringError> {
        let io =
            |e: std::io::Error| TieringError::Io(format!("chunk cache {}: {e}", dir.display()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io)?;
        }
        std::fs::create_dir_all(&dir).map_err(io)?;
        Ok(Self {
            dir,
            capacity,
            state: Mutex::default(),
            pending: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key.replace('/', "%"))
    }

    /// Counters for metrics.
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            used: state.used,
            entries: state.entries.len(),
            hits: state.hits,
            misses: state.misses,
        }
    }

    /// Whether `key` is held.
    pub fn contains(&self, key: &str) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// The chunk `key` (of partition `owner`), from the cache or else from `fetch`, which
    /// runs once however many readers ask meanwhile. A fetched chunk is served from memory at
    /// once and written to the cache in the background.
    pub async fn get<F, Fut>(
        self: &Arc<Self>,
        owner: &str,
        key: &str,
        fetch: F,
    ) -> Result<ChunkBytes, TieringError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, TieringError>>,
    {
        if let Some(map) = self.open_held(key) {
            self.lock().hits += 1;
            return Ok(ChunkBytes::Mapped(map));
        }
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(pending.entry(key.to_owned()).or_default())
        };
        let outcome = pending
            .get_or_init(|| async {
                self.lock().misses += 1;
                let bytes = Arc::new(fetch().await.map_err(|e| e.to_string())?);
                // Writing a few MiB is blocking work: off the runtime's threads, and off the
                // reader's path. The chunk stays pending (served from memory) until indexed.
                let (cache, owner, key) = (Arc::clone(self), owner.to_owned(), key.to_owned());
                let written = Arc::clone(&bytes);
                tokio::task::spawn_blocking(move || {
                    match write_entry(&cache.path(&key), &written) {
                        Ok(()) => cache.index_entry(&owner, &key, written.len() as u64),
                        Err(e) => tracing::warn!("chunk cache: {e}"),
                    }
                    cache.forget_pending(&key);
                });
                Ok(bytes)
            })
            .await
            .clone();
        match outcome {
            Ok(bytes) => Ok(ChunkBytes::Memory(bytes)),
            Err(e) => {
                self.forget_pending(key);
                Err(TieringError::Store(e))
            }
        }
    }

    fn forget_pending(&self, key: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn open_held(&self, key: &str) -> Option<Arc<Mmap>> {
        {
            let mut state = self.lock();
            state.tick += 1;
            let tick = state.tick;
            state.entries.get_mut(key)?.last_used = tick;
        }
        let file = std::fs::File::open(self.path(key)).ok()?;
        // Safety: cache files are written once, before they are indexed, and never modified;
        // eviction unlinks them, which leaves existing mappings valid.
        let map = unsafe { Mmap::map(&file) }.ok()?;
        Some(Arc::new(map))
    }

    /// Indexes a chunk written to its file, evicting to make room.
    fn index_entry(&self, owner: &str, key: &str, size: u64) {
        let mut state = self.lock();
        while state.used + size > self.capacity && !state.entries.is_empty() {
            let Some(victim) = Self::victim(&state) else {
                break;
            };
            if let Some(entry) = state.entries.remove(&victim) {
                state.used -= entry.size;
                if let Some(owned) = state.by_owner.get_mut(&entry.owner) {
                    *owned -= entry.size;
                }
                let _ = std::fs::remove_file(self.path(&victim));
            }
        }
        state.tick += 1;
        let tick = state.tick;
        state.entries.insert(
            key.to_owned(),
            Entry {
                owner: owner.to_owned(),
                size,
                last_used: tick,
            },
        );
        state.used += size;
        *state.by_owner.entry(owner.to_owned()).or_default() += size;
    }

    /// The least recently used chunk of the partition holding the most bytes.
    fn victim(state: &State) -> Option<String> {
        let (owner, _) = state
            .by_owner
            .iter()
            .filter(|(_, bytes)| **bytes > 0)
            .max_by_key(|(_, bytes)| **bytes)?;
        state
            .entries
            .iter()
            .filter(|(_, e)| e.owner == *owner)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(k, _)| k.clone())
    }
}

/// Writes a cache file under a temporary name first, so that a reader never maps a partial one.
fn write_entry(path: &std::path::Path, bytes: &[u8]) -> Result<(), TieringError> {
    // Not `with_extension`: keys of one segment differ only after their last dot.
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| TieringError::Io(format!("chunk cache {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until the background writes have indexed `entries` chunks.
    async fn settled(cache: &ChunkCache, entries: usize) {
        for _ in 0..400 {
            let idle = cache.pending.lock().unwrap().is_empty();
            if idle && cache.stats().entries == entries {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("cache writes did not settle");
    }

    #[tokio::test]
    async fn evicts_from_the_largest_partition_and_fetches_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ChunkCache::new(dir.path().join("cache"), 4000).unwrap());
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |n: u8| {
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(vec![n; 1000]) }
        };
        for n in 0..3u8 {
            let read = cache
                .get("a", &format!("a/{n}"), || fetch(n))
                .await
                .unwrap();
            assert_eq!(read[0], n, "served from memory while written");
            settled(&cache, n as usize + 1).await;
        }
        cache.get("b", "b/0", || fetch(9)).await.unwrap();
        settled(&cache, 4).await;
        // Full: the next chunk of b evicts a's oldest, not b's.
        cache.get("b", "b/1", || fetch(8)).await.unwrap();
        settled(&cache, 4).await;
        assert!(!cache.contains("a/0") && cache.contains("a/1") && cache.contains("b/0"));
        let read = cache.get("b", "b/0", || fetch(0)).await.unwrap();
        assert_eq!(read[0], 9, "served from the cache");
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 5);
        let stats = cache.stats();
        assert_eq!((stats.used, stats.entries, stats.hits), (4000, 4, 1));
    }
}
