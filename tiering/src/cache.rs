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

type Pending = Arc<OnceCell<Result<(), String>>>;

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
    /// runs once however many readers ask meanwhile.
    pub async fn get<F, Fut>(
        &self,
        owner: &str,
        key: &str,
        fetch: F,
    ) -> Result<Arc<Mmap>, TieringError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, TieringError>>,
    {
        if let Some(map) = self.open_held(key) {
            self.lock().hits += 1;
            return Ok(map);
        }
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(pending.entry(key.to_owned()).or_default())
        };
        let outcome = pending
            .get_or_init(|| async {
                self.lock().misses += 1;
                let bytes = fetch().await.map_err(|e| e.to_string())?;
                self.insert(owner, key, &bytes).map_err(|e| e.to_string())
            })
            .await
            .clone();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        outcome.map_err(TieringError::Store)?;
        self.open_held(key).ok_or_else(|| {
            TieringError::Io(format!("chunk {key} was evicted before it could be read"))
        })
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

    fn insert(&self, owner: &str, key: &str, bytes: &[u8]) -> Result<(), TieringError> {
        let size = bytes.len() as u64;
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| TieringError::Io(format!("chunk cache {}: {e}", path.display())))?;
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
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn evicts_from_the_largest_partition_and_fetches_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(dir.path().join("cache"), 4000).unwrap();
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |n: u8| {
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(vec![n; 1000]) }
        };
        for n in 0..3 {
            cache
                .get("a", &format!("a/{n}"), || fetch(n))
                .await
                .unwrap();
        }
        cache.get("b", "b/0", || fetch(9)).await.unwrap();
        // Full: the next chunk of b evicts a's oldest, not b's.
        cache.get("b", "b/1", || fetch(8)).await.unwrap();
        assert!(!cache.contains("a/0") && cache.contains("a/1") && cache.contains("b/0"));
        let read = cache.get("b", "b/0", || fetch(0)).await.unwrap();
        assert_eq!(read[0], 9, "served from the cache");
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 5);
        let stats = cache.stats();
        assert_eq!((stats.used, stats.entries, stats.hits), (4000, 4, 1));
    }
}
