//! Reads of one partition's remote segments: chunk indexes, chunks through the [`ChunkCache`],
//! and read-ahead that keeps a sequential reader's next chunks fetched and decompressed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::TieringError;
use crate::cache::{ChunkBuf, ChunkCache, ChunkCodec, Decoded, Purpose};
use crate::chunk::{self, Chunk};
use crate::remote::{RemoteRead, RemoteSegment, SegmentIndex};

/// Chunks fetched and decompressed ahead of a sequential reader, across segment boundaries
/// (fewer when many partitions share the memory tier).
const READ_AHEAD: usize = 8;

/// Sequential readers of one partition remembered, to ramp their read-ahead up.
const STREAMS: usize = 8;

/// A sequential reader: where its last read started and the end of the last chunk it read.
#[derive(Debug, Clone, Copy)]
struct Stream {
    start: u64,
    horizon: u64,
    reads: u32,
}

/// Larger chunks in an index are corrupt: chunks are at most `remote.log.chunk.bytes`
/// (256 MiB at most) plus one batch.
const MAX_CHUNK_BYTES: u64 = 1 << 30;

/// A range of a decompressed chunk, kept alive by the chunk it borrows from.
struct ChunkSlice {
    chunk: Decoded,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for ChunkSlice {
    fn as_ref(&self) -> &[u8] {
        &self.chunk[self.range.clone()]
    }
}

/// Decompresses a chunk of one object and checks every batch in it (CRC-32C, offsets within
/// the chunk), also when it is read back from the disk cache.
struct ChunkDecoder {
    chunk: Chunk,
    object: String,
}

impl ChunkCodec for ChunkDecoder {
    fn decode(&self, frame: &[u8]) -> Result<ChunkBuf, TieringError> {
        if self.chunk.raw_length > MAX_CHUNK_BYTES {
            return Err(TieringError::Format(format!(
                "chunk at offset {} claims {} bytes",
                self.chunk.base_offset, self.chunk.raw_length
            )));
        }
        let mut raw = ChunkBuf::new(self.chunk.raw_length as usize);
        chunk::decompress(frame, &self.chunk, raw.as_mut_slice()).map_err(|e| {
            TieringError::Corrupt {
                object: format!("object {} (bytes {}..)", self.object, self.chunk.position),
                detail: e.to_string(),
            }
        })?;
        Ok(raw)
    }

    fn verify(&self, raw: &[u8]) -> Result<(), TieringError> {
        chunk::verify(raw, &self.chunk)
    }
}

/// Reads one partition's remote segments; cheap to clone into background tasks.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    store: Arc<dyn ObjectStore>,
    cache: Arc<ChunkCache>,
    root: Path,
    owner: Arc<str>,
    indexes: Arc<Mutex<HashMap<String, Arc<SegmentIndex>>>>,
    streams: Arc<Mutex<Vec<Stream>>>,
}

impl Reader {
    /// A reader of the partition stored under `root`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, cache: Arc<ChunkCache>, root: Path) -> Self {
        Self {
            store,
            cache,
            owner: root.to_string().into(),
            root,
            indexes: Arc::default(),
            streams: Arc::default(),
        }
    }

    /// How many chunks to read ahead of a read at `offset`: 2 for a new reader, doubling with
    /// each read that continues where the last one of a reader stopped, up to `READ_AHEAD`.
    /// A burst of new readers (a consumer of many partitions starting) so does not queue
    /// dozens of chunks in front of the ones they need next.
    fn read_ahead_depth(&self, offset: u64) -> usize {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        match streams
            .iter()
            .find(|s| s.start < offset && offset <= s.horizon)
        {
            Some(stream) => (4usize << stream.reads.min(3)).min(READ_AHEAD),
            None => 2,
        }
    }

    /// Records a read from `start` whose last chunk ends at `horizon`.
    fn remember_read(&self, start: u64, horizon: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        match streams
            .iter_mut()
            .position(|s| s.start < start && start <= s.horizon)
        {
            Some(at) => {
                let mut stream = streams.remove(at);
                stream.start = start;
                stream.horizon = horizon;
                stream.reads = stream.reads.saturating_add(1);
                streams.push(stream);
            }
            None => {
                if streams.len() == STREAMS {
                    streams.remove(0);
                }
                streams.push(Stream {
                    start,
                    horizon,
                    reads: 0,
                });
            }
        }
    }

    fn indexes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SegmentIndex>>> {
        self.indexes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the index of a segment just uploaded.
    pub(crate) fn remember(&self, segment: &RemoteSegment, index: SegmentIndex) {
        self.indexes().insert(segment.data.clone(), Arc::new(index));
    }

    /// Forgets the index of a deleted segment.
    pub(crate) fn forget(&self, segment: &RemoteSegment) {
        self.indexes().remove(&segment.data);
    }

    /// The chunk index of `segment`, fetched once.
    pub(crate) async fn index(
        &self,
        segment: &RemoteSegment,
    ) -> Result<Arc<SegmentIndex>, TieringError> {
        if let Some(index) = self.indexes().get(&segment.data) {
            return Ok(Arc::clone(index));
        }
        let bytes = self
            .store
            .get(&self.root.clone().join(segment.index.as_str()))
            .await?
            .bytes()
            .await?;
        let mut index: SegmentIndex = serde_json::from_slice(&bytes)
            .map_err(|e| TieringError::Format(format!("index {}: {e}", segment.index)))?;
        // Reads need only the chunks; the producer state is read once, when a log starts.
        index.producers = None;
        let index = Arc::new(index);
        self.indexes()
            .insert(segment.data.clone(), Arc::clone(&index));
        Ok(index)
    }

    fn chunk_key(&self, segment: &RemoteSegment, chunk: &Chunk) -> String {
        format!("{}/{}/{}", self.root, segment.data, chunk.position)
    }

    /// One chunk of `segment`, decompressed and checked.
    async fn chunk(
        &self,
        segment: &RemoteSegment,
        chunk: &Chunk,
        purpose: Purpose,
    ) -> Result<Decoded, TieringError> {
        let path = self.root.clone().join(segment.data.as_str());
        let range = chunk.position..chunk.position + chunk.length;
        let store = Arc::clone(&self.store);
        let codec = ChunkDecoder {
            chunk: chunk.clone(),
            object: path.to_string(),
        };
        let key = self.chunk_key(segment, chunk);
        let fetch = || async move { Ok(store.get_range(&path, range).await?) };
        self.cache
            .get(&self.owner, &key, fetch, codec, purpose)
            .await
    }

    /// Starts fetching and decompressing the `depth` chunks after chunk `position` of
    /// `segments[0]` (fewer if the partition's memory share is smaller), continuing into the
    /// next segments, each in its own task.
    fn read_ahead(&self, segments: &[RemoteSegment], position: usize, depth: usize) {
        let reader = self.clone();
        let segments: Vec<RemoteSegment> = segments.iter().take(READ_AHEAD + 1).cloned().collect();
        tokio::spawn(async move {
            let mut share = reader.cache.read_ahead_share(&reader.owner);
            let mut left = depth;
            let mut skip = position + 1;
            for segment in segments {
                let index = match reader.index(&segment).await {
                    Ok(index) => index,
                    Err(e) => {
                        tracing::debug!("read-ahead of {}: {e}", segment.index);
                        return;
                    }
                };
                for chunk in index.chunks.iter().skip(skip) {
                    // At least one chunk ahead, however many partitions share the memory.
                    if left == 0 || (left < depth && share < chunk.raw_length) {
                        return;
                    }
                    left -= 1;
                    share = share.saturating_sub(chunk.raw_length);
                    if reader.cache.in_memory(&reader.chunk_key(&segment, chunk)) {
                        continue;
                    }
                    let (reader, segment, chunk) = (reader.clone(), segment.clone(), chunk.clone());
                    tokio::spawn(async move {
                        if let Err(e) = reader.chunk(&segment, &chunk, Purpose::ReadAhead).await {
                            tracing::debug!("read-ahead of {}: {e}", segment.data);
                        }
                    });
                }
                skip = 0;
            }
        });
    }

    /// Whole batches of `segments` (those ending after `offset`, in order) from the one
    /// holding `offset` (or the first after it), up to `max_bytes` (at least one batch with
    /// `min_one`), across chunks and segments.
    pub(crate) async fn read(
        &self,
        segments: &[RemoteSegment],
        offset: u64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<RemoteRead, TieringError> {
        let mut out: Vec<Bytes> = Vec::new();
        let mut read: u64 = 0;
        let mut next = offset;
        let depth = self.read_ahead_depth(offset);
        'segments: for (at, segment) in segments.iter().enumerate() {
            let index = self.index(segment).await?;
            for (position, chunk) in index.chunks.iter().enumerate() {
                if chunk.next_offset <= next {
                    continue;
                }
                let budget = max_bytes.saturating_sub(read);
                let first = read == 0;
                if budget == 0 && !(first && min_one) {
                    break 'segments;
                }
                if first {
                    self.read_ahead(&segments[at..], position, depth);
                }
                let raw = self.chunk(segment, chunk, Purpose::Read).await?;
                let range = chunk::slice_from(&raw, next, budget, first && min_one);
                if range.is_empty() {
                    break 'segments;
                }
                let whole = range.end == raw.len();
                read += range.len() as u64;
                out.push(Bytes::from_owner(ChunkSlice { chunk: raw, range }));
                next = chunk.next_offset;
                if !whole {
                    break 'segments;
                }
            }
        }
        if !out.is_empty() {
            self.remember_read(offset, next);
        }
        Ok(RemoteRead { records: out })
    }

    /// The first batch of `segments` whose max timestamp is at or after `timestamp`.
    pub(crate) async fn batch_for_timestamp(
        &self,
        segments: &[RemoteSegment],
        timestamp: i64,
    ) -> Result<Option<Bytes>, TieringError> {
        for segment in segments.iter().filter(|s| s.max_timestamp >= timestamp) {
            let index = self.index(segment).await?;
            for chunk in index.chunks.iter().filter(|c| c.max_timestamp >= timestamp) {
                let raw = self.chunk(segment, chunk, Purpose::Read).await?;
                if let Some((at, batch)) =
                    chunk::batches(&raw).find(|(_, b)| b.max_timestamp >= timestamp)
                {
                    let end = at + batch.size() as usize;
                    return Ok(Some(Bytes::copy_from_slice(&raw[at..end])));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_ramps_up_for_sequential_readers() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(dir.path().join("cache"), 1 << 20, 1 << 20).unwrap();
        let store = Arc::new(object_store::memory::InMemory::new());
        let reader = Reader::new(store, Arc::new(cache), Path::from("p"));
        assert_eq!(reader.read_ahead_depth(0), 2, "a new reader");
        reader.remember_read(0, 100);
        assert_eq!(reader.read_ahead_depth(60), 4, "it continues");
        reader.remember_read(60, 200);
        assert_eq!(reader.read_ahead_depth(150), 8);
        reader.remember_read(150, 300);
        assert_eq!(reader.read_ahead_depth(250), READ_AHEAD, "capped");
        assert_eq!(reader.read_ahead_depth(150), 2, "a read that went back");
        assert_eq!(reader.read_ahead_depth(1000), 2, "another reader");
        reader.remember_read(1000, 1100);
        assert_eq!(
            reader.read_ahead_depth(250),
            READ_AHEAD,
            "the first is remembered"
        );
        assert_eq!(reader.read_ahead_depth(1050), 4);
    }
}
