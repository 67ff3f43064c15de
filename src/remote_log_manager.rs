//! `RemoteLogManager`: per broker, uploads the closed segments of the tiered partitions it
//! leads, applies total retention to the remote tier, removes a deleted topic's objects and
//! serves reads of remote offsets.
//!
//! Uploads run in the background every `remote.log.manager.task.interval.ms`, a bounded number
//! of partitions at a time and within a byte rate, never on the produce path. A failed upload
//! (5xx, throttling, timeouts, an unreachable store) is retried with backoff: the segment stays
//! on local disk until it is safely in the manifest, so an outage only lets the disk grow.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata_tiering::object_store::ObjectStore;
use strata_tiering::remote::{self, ProducerSnapshot, RemoteRead, SnapshotBatch, TopicDescriptor};
use strata_tiering::{ChunkCache, PartitionKey, RemoteLog, TieringError};
use tokio::sync::{Semaphore, watch};

use crate::log::producer_state::{BatchMetadata, ProducerStateManager};
use crate::partition::PartitionRef;

/// Objects older than this that no manifest names are from interrupted uploads.
const ORPHAN_AGE_MS: i64 = 10 * 60 * 1000;
/// How often a partition's directory in the store is swept for orphans.
const ORPHAN_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest pause between attempts of a failing partition.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A remote read that failed after its fetch stopped waiting is reported to the fetches of
/// the same offset for this long: a client retrying a slow, failing store hears the error.
const READ_FAILURE_MEMORY: Duration = Duration::from_secs(10);

/// How a remote read bounded in time ended.
#[derive(Debug)]
pub enum RemoteOutcome {
    /// Whole batches, as slices of cached chunks.
    Read(RemoteRead),
    /// The offset is not in the remote tier.
    NotRemote,
    /// Not done in time; the read goes on in the background.
    Pending,
}

/// Settings (`remote.log.*`).
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// Uncompressed bytes per chunk.
    pub chunk_bytes: usize,
    /// zstd level.
    pub compression_level: i32,
    /// Partitions served at once.
    pub concurrency: usize,
    /// Upload rate limit in bytes per second (`None`: unlimited).
    pub bytes_per_second: Option<u64>,
    /// `remote.log.max.lag.ms`: the acknowledged tail of the active segment is uploaded at
    /// least this often (`None`: closed segments only).
    pub max_lag: Option<Duration>,
}

/// Upload state of one partition, for status and metrics.
#[derive(Debug, Clone, Default)]
pub struct UploadStatus {
    /// The last failure, until an upload succeeds.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub failures: u32,
    /// When the last segment was uploaded (ms since the epoch).
    pub last_upload_ms: Option<i64>,
    /// Segments uploaded by this process.
    pub uploaded_segments: u64,
}

/// One partition's remote log and upload state.
#[derive(Debug)]
pub struct RemotePartition {
    /// The leader epoch it was opened in: a later leadership opens it again.
    pub leader_epoch: i32,
    /// The remote log.
    pub log: RemoteLog,
    status: Mutex<UploadStatus>,
    retry_at: Mutex<Option<Instant>>,
    swept_at: Mutex<Option<Instant>>,
    /// One upload pass at a time per partition.
    busy: tokio::sync::Mutex<()>,
    /// The last remote read that failed in the background: when, at which offset, why.
    read_failure: Mutex<Option<(Instant, u64, TieringError)>>,
    /// Reads in flight, by (offset, max bytes, min one): a client asking again while its read
    /// runs waits for the same one instead of starting another.
    reads: Mutex<HashMap<ReadKey, watch::Receiver<Option<ReadOutcome>>>>,
    /// When the active segment's tail was last uploaded (`remote.log.max.lag.ms`).
    partial_at: Mutex<Option<Instant>>,
}

/// A remote read's parameters: (offset, max bytes, at least one batch).
type ReadKey = (u64, u64, bool);
/// What a remote read gave.
type ReadOutcome = Result<Option<RemoteRead>, TieringError>;

impl RemotePartition {
    /// Deletes objects left by interrupted uploads: on the first pass, then hourly.
    async fn sweep_if_due(&self) {
        let due = {
            let mut swept = self.swept_at.lock().unwrap_or_else(|p| p.into_inner());
            let due = swept.is_none_or(|at| at.elapsed() >= ORPHAN_SWEEP_INTERVAL);
            if due {
                *swept = Some(Instant::now());
            }
            due
        };
        if !due {
            return;
        }
        match self.log.sweep_orphans(ORPHAN_AGE_MS).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(partition = %self.log.key().root(), n, "removed orphaned objects")
            }
            Err(e) => tracing::warn!("orphan sweep failed: {e}"),
        }
    }

    /// The upload state.
    pub fn status(&self) -> UploadStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed(&self, error: &TieringError) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.failures += 1;
        status.last_error = Some(error.to_string());
        let backoff =
            Duration::from_millis(500 * 2u64.pow(status.failures.min(7))).min(MAX_BACKOFF);
        *self.retry_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + backoff);
    }

    fn succeeded(&self) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.failures = 0;
        status.last_error = None;
        status.last_upload_ms = Some(now_ms());
        status.uploaded_segments += 1;
        *self.retry_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The broker's remote tier.
#[derive(Debug)]
pub struct RemoteLogManager {
    store: Arc<dyn ObjectStore>,
    cache: Arc<ChunkCache>,
    settings: RemoteSettings,
    partitions: tokio::sync::Mutex<HashMap<(String, i32), Arc<RemotePartition>>>,
    throttle: tokio::sync::Mutex<Instant>,
    /// Topic descriptors written to the store, to write each change once.
    described: tokio::sync::Mutex<HashMap<uuid::Uuid, TopicDescriptor>>,
    /// Topics deleted in this process: never opened or uploaded again.
    deleted: Mutex<std::collections::HashSet<uuid::Uuid>>,
}

impl RemoteLogManager {
    /// A manager over `store`, caching chunks in `cache`.
    pub fn new(store: Arc<dyn ObjectStore>, cache: ChunkCache, settings: RemoteSettings) -> Self {
        Self {
            store,
            cache: Arc::new(cache),
            settings,
            partitions: tokio::sync::Mutex::default(),
            throttle: tokio::sync::Mutex::new(Instant::now()),
            described: tokio::sync::Mutex::default(),
            deleted: Mutex::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The chunk cache.
    pub fn cache(&self) -> &ChunkCache {
        &self.cache
    }

    /// The remote log of `partition`, opened (manifest loaded, local log told what is remote)
    /// on first use.
    pub async fn remote_for(
        &self,
        cluster_id: &str,
        partition: &PartitionRef,
    ) -> Result<Arc<RemotePartition>, TieringError> {
        let name = (partition.topic.clone(), partition.index);
        let mut partitions = self.partitions.lock().await;
        if self.is_deleted(partition.topic_id) {
            return Err(TieringError::Config(format!(
                "topic {} was deleted",
                partition.topic
            )));
        }
        // A new leadership reloads the manifest: another leader may have changed it since.
        if let Some(found) = partitions.get(&name)
            && found.log.key().topic_id == partition.topic_id
            && found.leader_epoch == partition.leader_epoch()
        {
            partition.set_remote_opened();
            return Ok(Arc::clone(found));
        }
        let key = PartitionKey {
            cluster_id: cluster_id.to_owned(),
            topic: partition.topic.clone(),
            topic_id: partition.topic_id,
            partition: partition.index,
        };
        let log = RemoteLog::open(Arc::clone(&self.store), Arc::clone(&self.cache), key).await?;
        {
            let mut local = partition.log();
            let end = log.end_offset().unwrap_or(0);
            let floor = log.offset_floor();
            let local_end = local.log_end_offset();
            // An empty disk (a new broker, a lost disk, a restore): the local log is behind the
            // remote tier, or has nothing while the manifest knows acknowledged offsets.
            // Continue after both: offsets up to the floor may have been acknowledged after the
            // last pass and lost with the disk, and must never be handed out again.
            if local_end < end || (local_end == 0 && floor > 0) {
                let start = end.max(floor);
                if start > end {
                    tracing::warn!(
                        topic = %partition.topic,
                        partition = partition.index,
                        remote_end = end,
                        start,
                        "starting the local log above offsets that may have been acknowledged before the disk was lost"
                    );
                }
                local
                    .start_empty_at(start)
                    .map_err(|e| TieringError::Io(e.to_string()))?;
            }
            local.set_remote_tier(
                log.start_offset(),
                log.end_offset().unwrap_or(0),
                log.bytes().0,
            );
        }
        load_producer_history(partition, &log).await;
        // A replica that started its log at a leader's local log start lacks the epochs
        // below it: the remote tier has them (KIP-405), for OffsetForLeaderEpoch and the
        // divergence checks it answers as leader.
        let lacks_history = {
            let local = partition.log();
            let first = local.epoch_entries().first().map(|e| e.start_offset);
            first.is_some_and(|first| log.start_offset().is_some_and(|start| start < first))
        };
        if lacks_history {
            let older: Vec<crate::log::leader_epoch::EpochEntry> = log
                .epochs()
                .await?
                .into_iter()
                .map(|e| crate::log::leader_epoch::EpochEntry {
                    epoch: e.epoch,
                    start_offset: e.start_offset,
                })
                .collect();
            partition
                .log()
                .merge_epoch_history(&older)
                .map_err(|e| TieringError::Io(e.to_string()))?;
        }
        partition.set_remote_opened();
        let opened = Arc::new(RemotePartition {
            leader_epoch: partition.leader_epoch(),
            log,
            status: Mutex::default(),
            retry_at: Mutex::default(),
            swept_at: Mutex::default(),
            busy: tokio::sync::Mutex::new(()),
            read_failure: Mutex::default(),
            reads: Mutex::default(),
            partial_at: Mutex::default(),
        });
        partitions.insert(name, Arc::clone(&opened));
        Ok(opened)
    }

    /// For a partition this broker follows: reads the manifest the leader keeps and tells the
    /// local log what is remote, so local retention can delete what the bucket holds.
    pub async fn refresh_follower(
        &self,
        cluster_id: &str,
        partition: &PartitionRef,
    ) -> Result<(), TieringError> {
        let key = PartitionKey {
            cluster_id: cluster_id.to_owned(),
            topic: partition.topic.clone(),
            topic_id: partition.topic_id,
            partition: partition.index,
        };
        let log = RemoteLog::open(Arc::clone(&self.store), Arc::clone(&self.cache), key).await?;
        tell_local(partition, &log);
        // A replica that started at the leader's local log start learns the producers below
        // it before it may be elected.
        load_producer_history(partition, &log).await;
        Ok(())
    }

    fn is_deleted(&self, topic_id: uuid::Uuid) -> bool {
        self.deleted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&topic_id)
    }

    /// The remote log of a partition if already opened.
    pub async fn opened(&self, topic: &str, index: i32) -> Option<Arc<RemotePartition>> {
        self.partitions
            .lock()
            .await
            .get(&(topic.to_owned(), index))
            .cloned()
    }

    /// Records in the store the topics this broker tiers (name, id, partition count, configs),
    /// so that a cluster rebuilt from the bucket can restore them.
    pub async fn describe_topics(&self, cluster_id: &str, topics: Vec<TopicDescriptor>) {
        let mut described = self.described.lock().await;
        for topic in topics {
            if described.get(&topic.topic_id) == Some(&topic) || self.is_deleted(topic.topic_id) {
                continue;
            }
            match remote::write_topic(self.store.as_ref(), cluster_id, &topic).await {
                Ok(()) => {
                    described.insert(topic.topic_id, topic);
                }
                Err(e) => {
                    tracing::warn!(topic = %topic.name, "writing the topic descriptor failed: {e}")
                }
            }
        }
    }

    /// One pass over `partitions` (the tiered ones this broker leads): uploads and remote
    /// retention, a bounded number at a time.
    pub async fn run_once(self: &Arc<Self>, cluster_id: &str, partitions: Vec<PartitionRef>) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for partition in partitions {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let (manager, cluster_id) = (Arc::clone(self), cluster_id.to_owned());
            tasks.spawn(async move {
                manager.serve_partition(&cluster_id, &partition).await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn serve_partition(&self, cluster_id: &str, partition: &PartitionRef) {
        let remote = match self.remote_for(cluster_id, partition).await {
            Ok(remote) => remote,
            Err(e) => {
                tracing::warn!(topic = %partition.topic, partition = partition.index, "remote log unavailable: {e}");
                return;
            }
        };
        let Ok(_busy) = remote.busy.try_lock() else {
            return;
        };
        if !partition.log().producer_history_complete() {
            load_producer_history(partition, &remote.log).await;
        }
        if self.is_deleted(partition.topic_id) {
            return;
        }
        let waiting = *remote.retry_at.lock().unwrap_or_else(|p| p.into_inner());
        if waiting.is_some_and(|at| Instant::now() < at) {
            return;
        }
        // The high watermark first, so that a failing upload does not keep the bucket's
        // offset floor behind the acknowledged records.
        if let Err(e) = remote
            .log
            .record_high_watermark(partition.high_watermark())
            .await
        {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "recording the high watermark failed, will retry: {e}");
            remote.failed(&e);
            return;
        }
        if let Err(e) = self.upload_ready(partition, &remote).await {
            tracing::warn!(
                topic = %partition.topic,
                partition = partition.index,
                failures = remote.status().failures,
                "upload failed, will retry: {e}"
            );
            remote.failed(&e);
            return;
        }
        if let Err(e) = self.upload_tail(partition, &remote).await {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "uploading the active segment's tail failed, will retry: {e}");
            remote.failed(&e);
            return;
        }
        if let Err(e) = self.apply_retention(partition, &remote).await {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "remote retention failed: {e}");
            remote.failed(&e);
        }
        remote.sweep_if_due().await;
    }

    /// Uploads every closed segment below the last stable offset that is not remote yet:
    /// what the remote tier holds is decided, so a `read_committed` read of it never passes
    /// an open transaction.
    async fn upload_ready(
        &self,
        partition: &PartitionRef,
        remote: &RemotePartition,
    ) -> Result<(), TieringError> {
        let last_stable_offset = partition.last_stable_offset();
        let candidates = partition.log().upload_candidates(last_stable_offset);
        for segment in candidates {
            if self.is_deleted(partition.topic_id) {
                break;
            }
            let producers = partition
                .log()
                .producer_state_below(segment.next_offset)
                .map(|state| snapshot_of(&state));
            let file = Arc::clone(&segment.file);
            let size = segment.size as usize;
            let aborted = remote_aborted(
                &partition
                    .log()
                    .aborted_between(segment.base_offset, segment.next_offset),
            );
            // The segment's tail may be in the bucket as partial uploads: the whole segment
            // from their start replaces them.
            let remote_end = match remote.log.partial_start() {
                Some(start) if (segment.base_offset..segment.next_offset).contains(&start) => start,
                _ => remote.log.end_offset().unwrap_or(0),
            };
            let bytes = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; size];
                file.read_exact_at(&mut buf, 0)?;
                buf.drain(..position_of(&buf, remote_end));
                Ok::<_, std::io::Error>(buf)
            })
            .await
            .map_err(|e| TieringError::Io(e.to_string()))?
            .map_err(|e| {
                TieringError::Io(format!("reading segment {}: {e}", segment.base_offset))
            })?;
            self.throttle(segment.size).await;
            let started = Instant::now();
            let uploaded = remote
                .log
                .upload(
                    bytes,
                    self.settings.chunk_bytes,
                    self.settings.compression_level,
                    (producers, aborted),
                )
                .await?;
            tell_local(partition, &remote.log);
            remote.succeeded();
            if let Some(uploaded) = uploaded {
                tracing::info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    base = uploaded.base_offset,
                    next = uploaded.next_offset,
                    raw = uploaded.raw_bytes,
                    stored = uploaded.stored_bytes,
                    took_ms = started.elapsed().as_millis() as u64,
                    "segment uploaded"
                );
            }
        }
        Ok(())
    }

    /// With `remote.log.max.lag.ms`, uploads what the active segment holds below the high
    /// watermark that the bucket lacks, at least every half of that lag.
    async fn upload_tail(
        &self,
        partition: &PartitionRef,
        remote: &RemotePartition,
    ) -> Result<(), TieringError> {
        let Some(max_lag) = self.settings.max_lag else {
            return Ok(());
        };
        let due = remote
            .partial_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| at.elapsed() >= max_lag / 2);
        // The tail up to the last stable offset, as for whole segments.
        let high_watermark = partition.last_stable_offset();
        let remote_end = remote.log.end_offset().unwrap_or(0);
        if !due || high_watermark <= remote_end {
            return Ok(());
        }
        // Off the async workers, and the log locked only to find each piece: produces to the
        // partition go on while its tail is read.
        let reading = Arc::clone(partition);
        let tail = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::new();
            let mut at = remote_end.max(reading.log().local_log_start_offset());
            while at < high_watermark && bytes.len() < MAX_PARTIAL_BYTES {
                let slice = reading
                    .log()
                    .read(at as i64, 8 << 20, high_watermark, true)
                    .map_err(|e| TieringError::Io(e.to_string()))?;
                let Some(slice) = slice else { break };
                let mut chunk = vec![0; slice.len as usize];
                slice
                    .file
                    .read_exact_at(&mut chunk, slice.position)
                    .map_err(|e| TieringError::Io(e.to_string()))?;
                let Some(next) = strata_record::batches(&chunk)
                    .last()
                    .map(|(_, h)| h.next_offset())
                else {
                    break;
                };
                bytes.extend_from_slice(&chunk);
                at = next;
            }
            Ok::<_, TieringError>(bytes)
        })
        .await
        .map_err(|e| TieringError::Io(e.to_string()))??;
        let producers = partition
            .log()
            .producer_state_below(high_watermark)
            .map(|state| snapshot_of(&state));
        let aborted = remote_aborted(&partition.log().aborted_between(remote_end, high_watermark));
        let uploaded = remote
            .log
            .upload_partial(
                tail,
                self.settings.chunk_bytes,
                self.settings.compression_level,
                (producers, aborted),
            )
            .await?;
        *remote.partial_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        tell_local(partition, &remote.log);
        if let Some(uploaded) = uploaded {
            tracing::debug!(topic = %partition.topic, partition = partition.index, base = uploaded.base_offset, next = uploaded.next_offset, "active segment's tail uploaded");
        }
        Ok(())
    }

    /// Waits so that uploads stay within `bytes_per_second`.
    async fn throttle(&self, bytes: u64) {
        let Some(rate) = self.settings.bytes_per_second.filter(|r| *r > 0) else {
            return;
        };
        let mut next_free = self.throttle.lock().await;
        let now = Instant::now();
        let start = (*next_free).max(now);
        *next_free = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
        drop(next_free);
        tokio::time::sleep_until(start.into()).await;
    }

    /// Total retention (`retention.ms`, `retention.bytes` over both tiers) and the log start
    /// DeleteRecords set, on the remote tier.
    async fn apply_retention(
        &self,
        partition: &PartitionRef,
        remote: &RemotePartition,
    ) -> Result<(), TieringError> {
        let (config, local_only, log_start) = {
            let log = partition.log();
            let uploaded_end = log.remote_log_end_offset();
            let local_only: u64 = log
                .upload_candidates(u64::MAX)
                .iter()
                .filter(|s| s.base_offset >= uploaded_end)
                .map(|s| s.size)
                .sum();
            (log.config().clone(), local_only, log.log_start_offset())
        };
        let now = now_ms();
        let deleted = remote
            .log
            .delete_oldest(|segment, remaining| {
                let by_time = config.retention_ms >= 0
                    && segment.max_timestamp >= 0
                    && now - segment.max_timestamp > config.retention_ms;
                let by_size = config.retention_bytes >= 0
                    && remaining + local_only > config.retention_bytes as u64;
                // Wholly below the log start: deleted by DeleteRecords.
                let deleted = segment.next_offset <= log_start;
                by_time || by_size || deleted
            })
            .await?;
        if deleted > 0 {
            tracing::info!(topic = %partition.topic, partition = partition.index, segments = deleted, "remote retention deleted segments");
            tell_local(partition, &remote.log);
        }
        Ok(())
    }

    /// Reads remote offsets of a partition, waiting at most `wait`: a read not done by then
    /// goes on in the background (its chunks land in the cache for the client's next fetch),
    /// and its failure is reported to the next fetches of the same offset.
    pub async fn read_within(
        &self,
        cluster_id: &str,
        partition: &PartitionRef,
        (offset, max_bytes, min_one): (u64, u64, bool),
        wait: Duration,
    ) -> Result<RemoteOutcome, TieringError> {
        let remote = self.remote_for(cluster_id, partition).await?;
        let key = (offset, max_bytes, min_one);
        let mut outcome = {
            let mut reads = remote.reads.lock().unwrap_or_else(|p| p.into_inner());
            match reads.get(&key) {
                Some(running) => running.clone(),
                None => {
                    let (done, outcome) = watch::channel(None);
                    reads.insert(key, outcome.clone());
                    let reading = Arc::clone(&remote);
                    tokio::spawn(async move {
                        let result = reading.log.read(offset, max_bytes, min_one).await;
                        {
                            let mut failure = reading
                                .read_failure
                                .lock()
                                .unwrap_or_else(|p| p.into_inner());
                            match &result {
                                Ok(_) => *failure = None,
                                Err(e) => *failure = Some((Instant::now(), offset, e.clone())),
                            }
                        }
                        reading
                            .reads
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&key);
                        let _ = done.send(Some(result));
                    });
                    outcome
                }
            }
        };
        match tokio::time::timeout(wait, outcome.wait_for(Option::is_some)).await {
            Ok(Ok(done)) => match done.clone() {
                Some(Ok(Some(read))) => Ok(RemoteOutcome::Read(read)),
                Some(Ok(None)) => Ok(RemoteOutcome::NotRemote),
                Some(Err(e)) => Err(e),
                None => Err(TieringError::Io("remote read lost".into())),
            },
            Ok(Err(_)) => Err(TieringError::Io("remote read task ended".into())),
            Err(_) => {
                let failure = remote
                    .read_failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                match failure {
                    Some((at, failed, error))
                        if failed == offset && at.elapsed() < READ_FAILURE_MEMORY =>
                    {
                        Err(error)
                    }
                    _ => Ok(RemoteOutcome::Pending),
                }
            }
        }
    }

    /// Deletes a topic's objects and forgets its partitions.
    pub async fn delete_topic(&self, cluster_id: &str, topic: &str, topic_id: uuid::Uuid) {
        self.deleted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic_id);
        let mut doomed = Vec::new();
        self.partitions.lock().await.retain(|(name, _), p| {
            let keep = !(name == topic && p.log.key().topic_id == topic_id);
            if !keep {
                doomed.push(Arc::clone(p));
            }
            keep
        });
        // An upload in flight would write objects after the deletion: wait for it (the next
        // passes see the topic deleted).
        for partition in &doomed {
            drop(partition.busy.lock().await);
        }
        // Likewise a topic descriptor being written.
        let mut described = self.described.lock().await;
        described.remove(&topic_id);
        match remote::delete_topic(self.store.as_ref(), cluster_id, topic, topic_id).await {
            Ok(n) => tracing::info!(topic, objects = n, "deleted topic's remote objects"),
            Err(e) => tracing::warn!(topic, "deleting remote objects failed: {e}"),
        }
    }
}

/// Where the first batch at or after `offset` starts in a segment's bytes (their length if
/// none does): batches the remote tier already has, uploaded by an earlier leader that cut its
/// segments elsewhere, are left out of an upload.
/// Merges into a log that starts above the remote tier's start the producer state kept with
/// the remote segment below its local start (Kafka builds it from the remote producer
/// snapshot in `buildRemoteLogAuxState`). A failure leaves the state incomplete for the next
/// pass: duplicates of those producers' old batches are not recognised meanwhile.
async fn load_producer_history(partition: &PartitionRef, log: &RemoteLog) {
    let local_start = {
        let local = partition.log();
        if local.producer_history_complete() {
            return;
        }
        local.local_log_start_offset()
    };
    if log.start_offset().is_none_or(|start| start >= local_start) {
        mark_complete(partition);
        return;
    }
    match log.producers_before(local_start).await {
        Ok(Some((end, producers))) => {
            let mut older = ProducerStateManager::default();
            for p in producers {
                for b in p.batches {
                    older.record(
                        p.id,
                        p.epoch,
                        BatchMetadata {
                            first_sequence: b.first_sequence,
                            last_sequence: b.last_sequence,
                            first_offset: b.first_offset,
                            max_timestamp: b.max_timestamp,
                        },
                    );
                }
            }
            let mut local = partition.log();
            if local.local_log_start_offset() != local_start {
                return;
            }
            tracing::info!(
                topic = %partition.topic,
                partition = partition.index,
                producers = older.len(),
                remote_end = end,
                "producer state below the local log start loaded from the remote tier"
            );
            if let Err(e) = local.merge_producer_history(older) {
                tracing::warn!(topic = %partition.topic, partition = partition.index, "saving the producer state failed: {e}");
            }
        }
        Ok(None) => {
            tracing::warn!(
                topic = %partition.topic,
                partition = partition.index,
                local_start,
                "the remote tier kept no producer state below the local log start (segments uploaded by an older version): producers whose last batches are older are not recognised"
            );
            mark_complete(partition);
        }
        Err(e) => {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "loading the producer state from the remote tier failed, will retry: {e}");
        }
    }
}

fn mark_complete(partition: &PartitionRef) {
    if let Err(e) = partition.log().mark_producer_history_complete() {
        tracing::warn!(topic = %partition.topic, partition = partition.index, "saving the producer state failed: {e}");
    }
}

/// The aborted transactions kept with an uploaded segment.
fn remote_aborted(aborted: &[crate::log::index::AbortedTxn]) -> Vec<strata_tiering::AbortedTxn> {
    aborted
        .iter()
        .map(|t| strata_tiering::AbortedTxn {
            producer_id: t.producer_id,
            first_offset: t.first_offset,
            last_offset: t.last_offset,
            last_stable_offset: t.last_stable_offset,
        })
        .collect()
}

/// The producer state kept with an uploaded segment.
fn snapshot_of(state: &ProducerStateManager) -> Vec<ProducerSnapshot> {
    state
        .producers()
        .map(|(id, epoch, batches)| ProducerSnapshot {
            id,
            epoch,
            batches: batches
                .iter()
                .map(|b| SnapshotBatch {
                    first_sequence: b.first_sequence,
                    last_sequence: b.last_sequence,
                    first_offset: b.first_offset,
                    max_timestamp: b.max_timestamp,
                })
                .collect(),
        })
        .collect()
}

/// Tells the partition's local log what the remote tier holds now.
fn tell_local(partition: &PartitionRef, log: &RemoteLog) {
    partition.log().set_remote_tier(
        log.start_offset(),
        log.end_offset().unwrap_or(0),
        log.bytes().0,
    );
}

/// Most bytes of the active segment's tail one partial upload takes.
const MAX_PARTIAL_BYTES: usize = 64 << 20;

fn position_of(segment: &[u8], offset: u64) -> usize {
    strata_record::batches(segment)
        .find(|(_, h)| h.base_offset >= offset)
        .map_or(segment.len(), |(at, _)| at)
}

impl crate::replica_manager::ReplicaManager {
    /// One pass of the remote log manager over the tiered partitions this broker leads,
    /// after recording their topics in the store.
    pub async fn tiering_pass(&self) {
        let Some(remote) = self.remote().cloned() else {
            return;
        };
        let (tiered, followed): (Vec<PartitionRef>, Vec<PartitionRef>) = self
            .all()
            .into_iter()
            .filter(|p| p.log().config().tiered())
            .partition(|p| p.is_leader());
        let (cluster_id, topics) = {
            let image = self.metadata().image();
            let mut topics: Vec<TopicDescriptor> = Vec::new();
            for p in &tiered {
                if topics.iter().any(|t| t.topic_id == p.topic_id) {
                    continue;
                }
                if let Some(t) = image.topics.get(&p.topic_id) {
                    topics.push(TopicDescriptor {
                        name: t.name.clone(),
                        topic_id: t.id,
                        partitions: t.partitions.len() as i32,
                        configs: t.configs.clone(),
                    });
                }
            }
            (image.cluster_id.clone().unwrap_or_default(), topics)
        };
        remote.describe_topics(&cluster_id, topics).await;
        remote.run_once(&cluster_id, tiered).await;
        for partition in followed {
            if let Err(e) = remote.refresh_follower(&cluster_id, &partition).await {
                tracing::debug!(topic = %partition.topic, partition = partition.index, "reading the leader's manifest failed: {e}");
            }
        }
    }
}

impl strata_api::admin::AdminState for crate::broker::StrataBroker {
    async fn metrics(&self, openmetrics: bool) -> String {
        crate::metrics::render(self, openmetrics).await
    }

    fn health(&self) -> strata_api::admin::Health {
        let config = self.config();
        self.health().report(
            config.node_id,
            config.session_timeout,
            self.remote().is_some(),
        )
    }

    fn ready(&self) -> strata_api::admin::Readiness {
        let (host, port) = &self.config().advertised;
        self.health()
            .readiness(self.config().session_timeout, &format!("{host}:{port}"))
    }

    async fn tiering(&self) -> Vec<strata_api::admin::TieringStatus> {
        let mut out = Vec::new();
        for partition in self.replicas().all() {
            if !(partition.is_leader() && partition.log().config().tiered()) {
                continue;
            }
            let high_watermark = partition.high_watermark();
            let (local_start, log_end, local_bytes, lag) = {
                let log = partition.log();
                let lag = log.upload_candidates(high_watermark);
                (
                    log.local_log_start_offset(),
                    log.log_end_offset(),
                    log.size(),
                    (lag.len() as u64, lag.iter().map(|s| s.size).sum::<u64>()),
                )
            };
            let remote = match self.remote() {
                Some(remote) => remote.opened(&partition.topic, partition.index).await,
                None => None,
            };
            let (remote_bytes, remote_stored_bytes) =
                remote.as_ref().map_or((0, 0), |r| r.log.bytes());
            let status = remote.as_ref().map(|r| r.status()).unwrap_or_default();
            out.push(strata_api::admin::TieringStatus {
                topic: partition.topic.clone(),
                partition: partition.index,
                local_start,
                log_end,
                local_bytes,
                remote_start: remote.as_ref().and_then(|r| r.log.start_offset()),
                remote_end: remote.as_ref().and_then(|r| r.log.end_offset()),
                remote_bytes,
                remote_stored_bytes,
                upload_lag_segments: lag.0,
                upload_lag_bytes: lag.1,
                last_error: status.last_error,
                last_upload_ms: status.last_upload_ms,
            });
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        out
    }
}

#[cfg(test)]
mod tests {
    use strata_record::testing::batch;

    #[test]
    fn an_upload_starts_at_the_first_batch_the_remote_tier_lacks() {
        let mut segment = Vec::new();
        for base in [10u64, 12, 15] {
            segment.extend(batch(base, if base == 12 { 3 } else { 2 }, 0, 0, 20, b"x"));
        }
        let size = segment.len() / 3;
        assert_eq!(super::position_of(&segment, 0), 0);
        assert_eq!(super::position_of(&segment, 10), 0);
        assert_eq!(super::position_of(&segment, 11), size);
        assert_eq!(super::position_of(&segment, 15), 2 * size);
        assert_eq!(super::position_of(&segment, 17), segment.len());
    }
}
