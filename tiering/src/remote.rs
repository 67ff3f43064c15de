//! One partition's remote log: its manifest in the bucket, uploads of closed segments, reads
//! of remote offsets through the chunk cache, and retention.
//!
//! Layout under the store (one directory per partition incarnation):
//!
//! ```text
//! clusters/<cluster id>/topics/<topic>/<topic id>/<partition>/
//!   manifest.json                       the remote segments, in offset order
//!   <base offset>-<upload id>.zst       a segment's chunks: independent zstd frames
//!   <base offset>-<upload id>.idx.json  its chunk index and leader epochs
//! ```
//!
//! The manifest is the commit point: a segment's objects are written first and the manifest
//! names them only once both exist, so a crash mid-upload leaves unreferenced objects (swept
//! later), never a manifest entry without data. Retention edits the manifest before deleting.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TieringError;
use crate::cache::ChunkCache;
use crate::chunk::{self, Chunk, EpochStart};
use crate::reader::Reader;

/// A segment in the remote tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    /// First offset.
    pub base_offset: u64,
    /// Offset after its last record.
    pub next_offset: u64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Bytes of batches (as on local disk).
    pub raw_bytes: u64,
    /// Bytes stored (compressed).
    pub stored_bytes: u64,
    /// Object name of the chunks, within the partition directory.
    pub data: String,
    /// Object name of the chunk index.
    pub index: String,
    /// When it was uploaded (ms since the epoch).
    pub uploaded_ms: i64,
    /// The acknowledged tail of a segment still being written (`remote.log.max.lag.ms`):
    /// the segment's upload once it is closed replaces it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// A segment's chunk index object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentIndex {
    /// Chunks in offset order.
    pub chunks: Vec<Chunk>,
    /// Leader epochs the segment covers.
    pub epochs: Vec<EpochStart>,
    /// The idempotent producers' state below the segment's end (Kafka's producer snapshot,
    /// KIP-405), so that a replica whose log starts after it still detects their retries and
    /// fences their old epochs. Absent in segments uploaded before it was kept; not cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producers: Option<Vec<ProducerSnapshot>>,
    /// The aborted transactions whose markers the segment holds (its `.txnindex`), so that a
    /// `read_committed` read of the remote tier is told of them. Absent in segments uploaded
    /// before transactions existed: they have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted: Vec<AbortedTxn>,
}

/// One aborted transaction in a [`SegmentIndex`] (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    /// Its producer.
    pub producer_id: i64,
    /// Its first offset.
    pub first_offset: u64,
    /// Its abort marker's offset.
    pub last_offset: u64,
    /// The last stable offset once it ended.
    pub last_stable_offset: u64,
}

/// One idempotent producer's state in a [`SegmentIndex`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    /// Producer id.
    pub id: i64,
    /// Its current epoch.
    pub epoch: i16,
    /// Its last batches, oldest first.
    pub batches: Vec<SnapshotBatch>,
}

/// A batch remembered for duplicate detection, in a [`ProducerSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotBatch {
    /// Sequence of the first record.
    pub first_sequence: i32,
    /// Sequence of the last record.
    pub last_sequence: i32,
    /// Offset of the first record.
    pub first_offset: u64,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
}

/// A partition's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Remote segments in offset order.
    pub segments: Vec<RemoteSegment>,
    /// The leader's high watermark when the manifest was last written: offsets below it were
    /// acknowledged, whether or not their segments are remote yet.
    #[serde(default)]
    pub high_watermark: u64,
    /// The log of a partition restored from the bucket (an empty disk) starts no lower than
    /// this, so that it never hands out again an offset that may have been acknowledged: the
    /// high watermark plus twice what it grew by since it was last recorded, and at least
    /// [`MIN_FLOOR_GAP`] more.
    #[serde(default)]
    pub offset_floor: u64,
}

/// The least gap between the recorded high watermark and the offset floor. Offsets are
/// plentiful (2^63) and consumers step over gaps, so the floor is far above anything a
/// partition could take between two passes, even after hours idle: a billion offsets is 16
/// minutes at a million records a second.
pub const MIN_FLOOR_GAP: u64 = 1_000_000_000;

/// Identifies a partition in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    /// Cluster id.
    pub cluster_id: String,
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
}

impl PartitionKey {
    /// The partition's directory in the store.
    pub fn root(&self) -> Path {
        Path::from(format!(
            "{}/{}",
            topic_root(&self.cluster_id, &self.topic, self.topic_id),
            self.partition
        ))
    }
}

/// A topic's directory in the store.
pub fn topic_root(cluster_id: &str, topic: &str, topic_id: Uuid) -> String {
    format!("clusters/{cluster_id}/topics/{topic}/{topic_id}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a remote read returned.
#[derive(Debug, Clone)]
pub struct RemoteRead {
    /// Whole batches from the one holding the offset, in consecutive pieces (one per chunk),
    /// each a slice of a cached chunk rather than a copy.
    pub records: Vec<Bytes>,
}

impl RemoteRead {
    /// Bytes read.
    pub fn len(&self) -> usize {
        self.records.iter().map(Bytes::len).sum()
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One partition's remote log.
#[derive(Debug)]
pub struct RemoteLog {
    store: Arc<dyn ObjectStore>,
    key: PartitionKey,
    root: Path,
    manifest: Mutex<Manifest>,
    reader: Reader,
}

impl RemoteLog {
    /// Loads the partition's manifest (an empty one if the bucket has none).
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        cache: Arc<ChunkCache>,
        key: PartitionKey,
    ) -> Result<Self, TieringError> {
        let root = key.root();
        let manifest = match store.get(&root.clone().join("manifest.json")).await {
            Ok(found) => {
                let bytes = found.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| TieringError::Format(format!("manifest of {root}: {e}")))?
            }
            Err(object_store::Error::NotFound { .. }) => Manifest {
                version: 1,
                topic: key.topic.clone(),
                topic_id: key.topic_id,
                partition: key.partition,
                segments: Vec::new(),
                high_watermark: 0,
                offset_floor: 0,
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            reader: Reader::new(Arc::clone(&store), cache, root.clone()),
            store,
            key,
            root,
            manifest: Mutex::new(manifest),
        })
    }

    fn manifest(&self) -> std::sync::MutexGuard<'_, Manifest> {
        self.manifest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition this is.
    pub fn key(&self) -> &PartitionKey {
        &self.key
    }

    /// The remote segments.
    pub fn segments(&self) -> Vec<RemoteSegment> {
        self.manifest().segments.clone()
    }

    /// First remote offset, if any segment is remote.
    pub fn start_offset(&self) -> Option<u64> {
        self.manifest().segments.first().map(|s| s.base_offset)
    }

    /// Offset after the last remote record, if any segment is remote.
    pub fn end_offset(&self) -> Option<u64> {
        self.manifest().segments.last().map(|s| s.next_offset)
    }

    /// The lowest offset a log restored from the bucket may start at (see [`Manifest`]).
    pub fn offset_floor(&self) -> u64 {
        let manifest = self.manifest();
        manifest.offset_floor.max(manifest.high_watermark)
    }

    /// Records the leader's `high_watermark` in the manifest, when it moved since it was last
    /// recorded (one small write per pass of a partition that takes writes).
    pub async fn record_high_watermark(&self, high_watermark: u64) -> Result<(), TieringError> {
        let mut next = self.manifest().clone();
        if high_watermark <= next.high_watermark {
            return Ok(());
        }
        let grew = if next.high_watermark == 0 {
            0
        } else {
            high_watermark - next.high_watermark
        };
        next.high_watermark = high_watermark;
        next.offset_floor = next
            .offset_floor
            .max(high_watermark.saturating_add(grew.saturating_mul(2).max(MIN_FLOOR_GAP)));
        self.save_manifest(&next).await?;
        *self.manifest() = next;
        Ok(())
    }

    /// Bytes of batches in the remote tier, and bytes stored.
    pub fn bytes(&self) -> (u64, u64) {
        let manifest = self.manifest();
        manifest.segments.iter().fold((0, 0), |(r, s), seg| {
            (r + seg.raw_bytes, s + seg.stored_bytes)
        })
    }

    async fn save_manifest(&self, manifest: &Manifest) -> Result<(), TieringError> {
        let bytes = serde_json::to_vec(manifest).expect("the manifest serializes");
        self.store
            .put(&self.root.clone().join("manifest.json"), bytes.into())
            .await?;
        Ok(())
    }

    /// Uploads one closed segment (its bytes from the local file) and records it in the
    /// manifest. Uploading a segment the manifest already has is a no-op, so a retry after a
    /// crash is safe. `producers` is the producer state below the segment's end, kept in its
    /// index (see [`SegmentIndex::producers`]).
    pub async fn upload(
        &self,
        segment: Vec<u8>,
        chunk_bytes: usize,
        level: i32,
        (producers, aborted): (Option<Vec<ProducerSnapshot>>, Vec<AbortedTxn>),
    ) -> Result<Option<RemoteSegment>, TieringError> {
        self.put(segment, (chunk_bytes, level), (producers, aborted), false)
            .await
    }

    /// Uploads the acknowledged tail of the active segment (batches the bucket lacks) as a
    /// partial segment, which the segment's own upload replaces once it is closed.
    pub async fn upload_partial(
        &self,
        batches: Vec<u8>,
        chunk_bytes: usize,
        level: i32,
        (producers, aborted): (Option<Vec<ProducerSnapshot>>, Vec<AbortedTxn>),
    ) -> Result<Option<RemoteSegment>, TieringError> {
        self.put(batches, (chunk_bytes, level), (producers, aborted), true)
            .await
    }

    /// The aborted transactions overlapping `[from, upper)` that the remote segments from the
    /// one holding `from` on know of, and whether that is all of them (an abort whose last
    /// stable offset reaches `upper` shows no later one began below it; otherwise the local
    /// log's must be asked too). Kafka's `collectAbortedTransactions` over remote indexes.
    pub async fn aborted_txns(
        &self,
        from: u64,
        upper: u64,
    ) -> Result<(Vec<AbortedTxn>, bool), TieringError> {
        let segments: Vec<RemoteSegment> = self
            .manifest()
            .segments
            .iter()
            .filter(|s| s.next_offset > from)
            .cloned()
            .collect();
        let mut found = Vec::new();
        for segment in &segments {
            let index = self.reader.index(segment).await?;
            for entry in &index.aborted {
                if entry.last_offset >= from && entry.first_offset < upper {
                    found.push(*entry);
                }
                if entry.last_stable_offset >= upper {
                    return Ok((found, true));
                }
            }
        }
        Ok((found, false))
    }

    /// The first offset of the partial segments at the end of the manifest, if any.
    pub fn partial_start(&self) -> Option<u64> {
        let manifest = self.manifest();
        let first_partial = manifest
            .segments
            .iter()
            .rposition(|s| !s.partial)
            .map_or(0, |i| i + 1);
        manifest.segments.get(first_partial).map(|s| s.base_offset)
    }

    async fn put(
        &self,
        segment: Vec<u8>,
        (chunk_bytes, level): (usize, i32),
        (producers, aborted): (Option<Vec<ProducerSnapshot>>, Vec<AbortedTxn>),
        partial: bool,
    ) -> Result<Option<RemoteSegment>, TieringError> {
        let Some(first) = chunk::batch_at(&segment) else {
            return Ok(None);
        };
        // A whole segment replaces the partial uploads of its tail; anything else goes after
        // what the bucket has.
        let replaces = !partial && self.partial_start() == Some(first.base_offset);
        if let Some(end) = self.end_offset()
            && first.base_offset < end
            && !replaces
        {
            return Ok(None);
        }
        let chunked =
            tokio::task::spawn_blocking(move || chunk::build(&segment, chunk_bytes, level))
                .await
                .map_err(|e| TieringError::Io(format!("chunking: {e}")))??;
        let (Some(head), Some(tail)) = (chunked.chunks.first(), chunked.chunks.last()) else {
            return Ok(None);
        };
        let name = format!("{:020}-{}", head.base_offset, Uuid::new_v4().simple());
        let data = format!("{name}.zst");
        let index = format!("{name}.idx.json");
        let entry = RemoteSegment {
            base_offset: head.base_offset,
            next_offset: tail.next_offset,
            max_timestamp: chunked
                .chunks
                .iter()
                .map(|c| c.max_timestamp)
                .max()
                .unwrap_or(-1),
            raw_bytes: chunked.raw_length,
            stored_bytes: chunked.object.len() as u64,
            data: data.clone(),
            index: index.clone(),
            uploaded_ms: now_ms(),
            partial,
        };
        let mut segment_index = SegmentIndex {
            chunks: chunked.chunks,
            epochs: chunked.epochs,
            producers,
            aborted,
        };
        self.store
            .put(
                &self.root.clone().join(data.as_str()),
                Bytes::from(chunked.object).into(),
            )
            .await?;
        let index_bytes = serde_json::to_vec(&segment_index).expect("the index serializes");
        self.store
            .put(&self.root.clone().join(index.as_str()), index_bytes.into())
            .await?;
        let mut next = self.manifest().clone();
        let mut replaced = Vec::new();
        if replaces {
            let keep = next
                .segments
                .iter()
                .position(|s| s.partial && s.base_offset >= entry.base_offset)
                .unwrap_or(next.segments.len());
            replaced = next.segments.split_off(keep);
        }
        next.segments.push(entry.clone());
        self.save_manifest(&next).await?;
        *self.manifest() = next;
        segment_index.producers = None;
        self.reader.remember(&entry, segment_index);
        // Objects no manifest names any more; an orphan sweep finds them if this fails.
        for old in &replaced {
            self.reader.forget(old);
            for name in [&old.data, &old.index] {
                let _ = self
                    .store
                    .delete(&self.root.clone().join(name.as_str()))
                    .await;
            }
        }
        Ok(Some(entry))
    }

    /// The producer state kept with the remote segment holding `offset - 1` (or the last one
    /// below it), and that segment's end: what a log starting at `offset` lacks. `None` when
    /// no segment is below `offset` or the segment kept none (uploaded before it was kept).
    pub async fn producers_before(
        &self,
        offset: u64,
    ) -> Result<Option<(u64, Vec<ProducerSnapshot>)>, TieringError> {
        let Some(segment) = self
            .segments()
            .into_iter()
            .take_while(|s| s.base_offset < offset)
            .last()
        else {
            return Ok(None);
        };
        let bytes = self
            .store
            .get(&self.root.clone().join(segment.index.as_str()))
            .await?
            .bytes()
            .await?;
        let index: SegmentIndex = serde_json::from_slice(&bytes)
            .map_err(|e| TieringError::Format(format!("index {}: {e}", segment.index)))?;
        Ok(index.producers.map(|p| (segment.next_offset, p)))
    }

    /// Whole batches from the one holding `offset` (or the first after it), up to `max_bytes`
    /// (at least one batch with `min_one`), across chunks and segments. `None` if the offset is
    /// not in the remote tier.
    pub async fn read(
        &self,
        offset: u64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<Option<RemoteRead>, TieringError> {
        let segments = {
            let manifest = self.manifest();
            if manifest
                .segments
                .first()
                .is_none_or(|s| offset < s.base_offset)
            {
                return Ok(None);
            }
            manifest
                .segments
                .iter()
                .filter(|s| s.next_offset > offset)
                .cloned()
                .collect::<Vec<_>>()
        };
        if segments.is_empty() {
            return Ok(None);
        }
        let read = self
            .reader
            .read(&segments, offset, max_bytes, min_one)
            .await?;
        Ok(Some(read))
    }

    /// The first remote batch whose max timestamp is at or after `timestamp` (the caller finds
    /// the exact record in it); `None` if no remote record is that late.
    pub async fn batch_for_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>, TieringError> {
        self.reader
            .batch_for_timestamp(&self.segments(), timestamp)
            .await
    }

    /// Leader epochs of the remote segments, in offset order.
    pub async fn epochs(&self) -> Result<Vec<EpochStart>, TieringError> {
        let mut out: Vec<EpochStart> = Vec::new();
        for segment in self.segments() {
            for epoch in &self.reader.index(&segment).await?.epochs {
                if out.last().is_none_or(|e| e.epoch != epoch.epoch) {
                    out.push(*epoch);
                }
            }
        }
        Ok(out)
    }

    /// Removes the oldest segments that `expired` says go (given each segment and the remote
    /// bytes that would remain after it), first from the manifest, then their objects.
    /// Returns how many went.
    pub async fn delete_oldest(
        &self,
        mut expired: impl FnMut(&RemoteSegment, u64) -> bool,
    ) -> Result<usize, TieringError> {
        let mut next = self.manifest().clone();
        let mut remaining: u64 = next.segments.iter().map(|s| s.raw_bytes).sum();
        let mut doomed = Vec::new();
        while let Some(first) = next.segments.first() {
            remaining -= first.raw_bytes;
            if !expired(first, remaining) {
                break;
            }
            doomed.push(next.segments.remove(0));
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        self.save_manifest(&next).await?;
        *self.manifest() = next;
        for segment in &doomed {
            self.reader.forget(segment);
            for name in [&segment.data, &segment.index] {
                match self
                    .store
                    .delete(&self.root.clone().join(name.as_str()))
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => tracing::warn!("deleting {name}: {e} (left for the orphan sweep)"),
                }
            }
        }
        Ok(doomed.len())
    }

    /// Deletes objects in the partition directory that the manifest does not name and that
    /// are older than `min_age_ms` (left by uploads interrupted by a crash). Returns how many.
    pub async fn sweep_orphans(&self, min_age_ms: i64) -> Result<usize, TieringError> {
        let referenced: std::collections::HashSet<String> = self
            .segments()
            .iter()
            .flat_map(|s| [s.data.clone(), s.index.clone()])
            .chain(["manifest.json".to_owned()])
            .collect();
        let cutoff = now_ms() - min_age_ms;
        let mut listing = self.store.list(Some(&self.root));
        let mut orphans = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let name = meta.location.filename().unwrap_or_default().to_owned();
            if !referenced.contains(&name) && meta.last_modified.timestamp_millis() < cutoff {
                orphans.push(meta.location);
            }
        }
        for path in &orphans {
            match self.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(orphans.len())
    }
}

/// What the bucket records of a topic, so that a new cluster can restore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescriptor {
    /// Name.
    pub name: String,
    /// Id.
    pub topic_id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Config overrides.
    pub configs: std::collections::BTreeMap<String, String>,
}

/// Writes `topic.json` of a topic.
pub async fn write_topic(
    store: &dyn ObjectStore,
    cluster_id: &str,
    topic: &TopicDescriptor,
) -> Result<(), TieringError> {
    let path = Path::from(format!(
        "{}/topic.json",
        topic_root(cluster_id, &topic.name, topic.topic_id)
    ));
    let bytes = serde_json::to_vec(topic).expect("the descriptor serializes");
    store.put(&path, bytes.into()).await?;
    Ok(())
}

/// Every topic the bucket holds for `cluster_id`: for a name with several incarnations, the
/// one whose descriptor was written last.
pub async fn list_topics(
    store: &dyn ObjectStore,
    cluster_id: &str,
) -> Result<Vec<TopicDescriptor>, TieringError> {
    let root = Path::from(format!("clusters/{cluster_id}/topics"));
    let mut found = Vec::new();
    for name in store
        .list_with_delimiter(Some(&root))
        .await?
        .common_prefixes
    {
        let mut latest: Option<(i64, TopicDescriptor)> = None;
        for id in store
            .list_with_delimiter(Some(&name))
            .await?
            .common_prefixes
        {
            let path = id.clone().join("topic.json");
            let meta = match store.head(&path).await {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let bytes = store.get(&path).await?.bytes().await?;
            let topic: TopicDescriptor = serde_json::from_slice(&bytes)
                .map_err(|e| TieringError::Format(format!("{path}: {e}")))?;
            let written = meta.last_modified.timestamp_millis();
            if latest.as_ref().is_none_or(|(at, _)| written > *at) {
                latest = Some((written, topic));
            }
        }
        found.extend(latest.map(|(_, t)| t));
    }
    Ok(found)
}

/// Deletes every object of a topic (all its partitions).
pub async fn delete_topic(
    store: &dyn ObjectStore,
    cluster_id: &str,
    topic: &str,
    topic_id: Uuid,
) -> Result<usize, TieringError> {
    let root = Path::from(topic_root(cluster_id, topic, topic_id));
    let mut listing = store.list(Some(&root));
    let mut paths = Vec::new();
    while let Some(meta) = listing.next().await {
        paths.push(meta?.location);
    }
    for path in &paths {
        match store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(paths.len())
}
