//! `ReplicaManager`: every partition hosted by this broker — which it hosts and leads (applied
//! from the metadata image), the produce and fetch paths, their directories, recovery
//! checkpoints, the flush scheduler and retention.
//!
//! On-disk layout of the data directory (Kafka's):
//!
//! ```text
//! <data dir>/
//!   meta.properties                    cluster id and node id this directory belongs to
//!   __cluster_metadata/                controllers only: the raft log, vote and snapshots
//!   recovery-point-offset-checkpoint   per partition, offsets below which the log is fsync'd
//!   replication-offset-checkpoint      per partition, the high watermark as last known
//!   .strata_clean_shutdown             present only between a clean stop and the next start
//!   <topic>-<partition>/               one directory per partition, 20-digit segment files,
//!                                      partition.metadata naming the topic id,
//!                                      leader-epoch-checkpoint (epoch → start offset)
//!   <topic>-<partition>.<id>-delete/   a deleted partition awaiting removal
//! ```
//!
//! Which partitions a broker hosts is the metadata image's decision: the broker opens the
//! replicas assigned to it and removes directories of topics that were deleted (or deleted and
//! recreated, told apart by topic id) while it was away.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use strata_api::BrokerError;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::log::local_log::sync_dir;
use crate::log::{LogConfig, LogError, UnifiedLog};
use crate::metadata_cache::MetadataCache;
use crate::partition::{Partition, PartitionRef};
use crate::remote_log_manager::RemoteLogManager;

mod apply;
pub(crate) mod errors;
mod fetch;
pub mod fetcher;
mod produce;
pub mod replica_set;

/// Marker file written by a clean shutdown.
pub const CLEAN_SHUTDOWN_FILE: &str = ".strata_clean_shutdown";
/// Kafka's name for the recovery point checkpoint.
pub const RECOVERY_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Kafka's name for the high watermark checkpoint.
pub const HIGH_WATERMARK_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";

/// All partitions on this broker.
#[derive(Debug)]
pub struct ReplicaManager {
    config: Arc<BrokerConfig>,
    metadata: Arc<MetadataCache>,
    /// The remote tier, when tiered storage is on.
    remote: Option<Arc<RemoteLogManager>>,
    /// Fetchers of the partitions this broker follows.
    fetchers: fetcher::ReplicaFetcherManager,
    data_dir: PathBuf,
    /// Whether the previous run ended cleanly (decides recovery on open).
    clean_start: bool,
    recovery_points: HashMap<(String, i32), u64>,
    /// High watermarks as last checkpointed: a replicated partition starts from its own
    /// (never from its log end, which may hold records the ISR never had).
    high_watermarks: HashMap<(String, i32), u64>,
    partitions: RwLock<HashMap<String, BTreeMap<i32, PartitionRef>>>,
}

impl ReplicaManager {
    /// Prepares the data directory: notes whether the last shutdown was clean, reads the
    /// recovery checkpoint and removes partitions whose deletion was interrupted.
    pub fn new(
        config: Arc<BrokerConfig>,
        metadata: Arc<MetadataCache>,
        remote: Option<Arc<RemoteLogManager>>,
    ) -> Result<Self, LogError> {
        let data_dir = &config.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|e| LogError::io(data_dir, e))?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_FILE);
        // A directory that never held a partition has nothing to recover: it starts clean.
        let marked = marker.exists();
        let clean_start = marked || !holds_partitions(data_dir)?;
        if marked {
            std::fs::remove_file(&marker).map_err(|e| LogError::io(&marker, e))?;
            sync_dir(data_dir)?;
        }
        let recovery_points = read_checkpoint(&data_dir.join(RECOVERY_CHECKPOINT_FILE))?;
        let high_watermarks = read_checkpoint(&data_dir.join(HIGH_WATERMARK_CHECKPOINT_FILE))?;
        for entry in std::fs::read_dir(data_dir).map_err(|e| LogError::io(data_dir, e))? {
            let path = entry.map_err(|e| LogError::io(data_dir, e))?.path();
            if path.is_dir() && path.to_string_lossy().ends_with("-delete") {
                std::fs::remove_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
            }
        }
        Ok(Self {
            data_dir: data_dir.to_owned(),
            fetchers: fetcher::ReplicaFetcherManager::new(config.node_id, Arc::clone(&metadata)),
            config,
            metadata,
            remote,
            clean_start,
            recovery_points,
            high_watermarks,
            partitions: RwLock::new(HashMap::new()),
        })
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The applied metadata.
    pub fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    /// The remote tier, if on.
    pub fn remote(&self) -> Option<&Arc<RemoteLogManager>> {
        self.remote.as_ref()
    }

    /// The data directory, its volume and the replicas in it, for DescribeLogDirs.
    pub fn log_dir(&self) -> strata_api::broker::LogDir {
        let volume = nix::sys::statvfs::statvfs(&self.data_dir).ok();
        let mut replicas: Vec<strata_api::broker::ReplicaLog> = self
            .all()
            .into_iter()
            .map(|p| {
                let high_watermark = p.high_watermark();
                let log = p.log();
                strata_api::broker::ReplicaLog {
                    topic: p.topic.clone(),
                    partition: p.index,
                    size: log.size(),
                    offset_lag: high_watermark.saturating_sub(log.log_end_offset()),
                }
            })
            .collect();
        replicas.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        strata_api::broker::LogDir {
            path: self.data_dir.display().to_string(),
            total_bytes: volume.as_ref().map(|v| v.blocks() * v.fragment_size()),
            usable_bytes: volume
                .as_ref()
                .map(|v| v.blocks_available() * v.fragment_size()),
            replicas,
        }
    }

    /// The partition if hosted here, led or not (else UNKNOWN_TOPIC_OR_PARTITION).
    pub fn partition_ref(&self, topic: &str, index: i32) -> Result<PartitionRef, BrokerError> {
        self.get(topic, index)
            .ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// The partition if this broker leads it: NOT_LEADER_OR_FOLLOWER if another broker does
    /// (or none), UNKNOWN_TOPIC_OR_PARTITION if the cluster has no such partition.
    pub fn leader_ref(&self, topic: &str, index: i32) -> Result<PartitionRef, BrokerError> {
        match self.get(topic, index) {
            Some(p) if p.is_leader() => Ok(p),
            Some(_) => Err(BrokerError::NotLeaderOrFollower),
            None if self.metadata.partition_exists(topic, index) => {
                Err(BrokerError::NotLeaderOrFollower)
            }
            None => Err(BrokerError::UnknownTopicOrPartition),
        }
    }

    /// A partition this broker hosts, as leader or follower.
    pub fn replica_ref(&self, topic: &str, index: i32) -> Result<PartitionRef, BrokerError> {
        match self.get(topic, index) {
            Some(p) => Ok(p),
            None if self.metadata.partition_exists(topic, index) => {
                Err(BrokerError::NotLeaderOrFollower)
            }
            None => Err(BrokerError::UnknownTopicOrPartition),
        }
    }

    /// Whether the previous run shut down cleanly.
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{index}"))
    }

    /// Opens (creating if needed) one partition of a topic, replacing the directory of an
    /// earlier topic of the same name (another topic id). Hosting it already is a no-op.
    pub fn open_partition(
        &self,
        topic: &str,
        topic_id: Uuid,
        index: i32,
        config: &LogConfig,
    ) -> Result<PartitionRef, LogError> {
        if let Some(existing) = self.get(topic, index) {
            if existing.topic_id == topic_id {
                return Ok(existing);
            }
            self.remove_partition(topic, index)?;
        }
        let dir = self.partition_dir(topic, index);
        let id_text = strata_controller::uuid_base64(topic_id);
        match read_topic_id(&dir)? {
            Some(found) if found != id_text => {
                tracing::info!(
                    topic,
                    partition = index,
                    "removing the data of an earlier topic of this name"
                );
                self.doom(&dir, &found)?;
            }
            _ => {}
        }
        let recovery_point = self
            .recovery_points
            .get(&(topic.to_owned(), index))
            .copied()
            .unwrap_or(0);
        let log = UnifiedLog::open(&dir, config.clone(), recovery_point, self.clean_start)?;
        write_topic_id(&dir, &id_text)?;
        sync_dir(&self.data_dir)?;
        let partition = Arc::new(Partition::new(topic.to_owned(), index, topic_id, log));
        let high_watermark = self.high_watermarks.get(&(topic.to_owned(), index));
        partition.start_high_watermark_at(high_watermark.copied().unwrap_or(0));
        let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        partitions
            .entry(topic.to_owned())
            .or_default()
            .insert(index, Arc::clone(&partition));
        Ok(partition)
    }

    /// Stops hosting one partition and removes its data.
    pub fn remove_partition(&self, topic: &str, index: i32) -> Result<(), LogError> {
        let removed = {
            let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            let removed = partitions.get_mut(topic).and_then(|t| t.remove(&index));
            if partitions.get(topic).is_some_and(BTreeMap::is_empty) {
                partitions.remove(topic);
            }
            removed
        };
        if let Some(partition) = removed {
            self.fetchers.unfollow(topic, index);
            let id = strata_controller::uuid_base64(partition.topic_id);
            self.doom(&self.partition_dir(topic, index), &id)?;
        }
        Ok(())
    }

    /// Partition directories on disk as (topic, index), hosted or not.
    pub fn partition_dirs(&self) -> Result<Vec<(String, i32)>, LogError> {
        let mut found = Vec::new();
        let entries =
            std::fs::read_dir(&self.data_dir).map_err(|e| LogError::io(&self.data_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io(&self.data_dir, e))?;
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((topic, index)) = name.rsplit_once('-')
                && let Ok(index) = index.parse::<i32>()
                && !topic.is_empty()
            {
                found.push((topic.to_owned(), index));
            }
        }
        Ok(found)
    }

    /// Renames a partition directory for removal and removes it in the background.
    fn doom(&self, dir: &Path, topic_id: &str) -> Result<(), LogError> {
        let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Ok(());
        };
        if !dir.exists() {
            return Ok(());
        }
        let target = self.data_dir.join(format!("{name}.{topic_id}-delete"));
        std::fs::rename(dir, &target).map_err(|e| LogError::io(dir, e))?;
        sync_dir(&self.data_dir)?;
        let remove = move || {
            if let Err(e) = std::fs::remove_dir_all(&target) {
                tracing::warn!(dir = %target.display(), "cannot remove deleted partition: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
        Ok(())
    }

    /// Removes the directory of a partition this broker does not host (a stray).
    pub fn remove_stray(&self, topic: &str, index: i32) -> Result<(), LogError> {
        let dir = self.partition_dir(topic, index);
        let id = read_topic_id(&dir)?.unwrap_or_else(|| "stray".into());
        self.doom(&dir, &id)
    }

    /// The partition, if hosted here.
    pub fn get(&self, topic: &str, index: i32) -> Option<PartitionRef> {
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        partitions.get(topic)?.get(&index).cloned()
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<PartitionRef> {
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        partitions
            .values()
            .flat_map(|t| t.values())
            .cloned()
            .collect()
    }

    /// Applies a topic's new config to its partitions.
    pub fn set_config(&self, topic: &str, config: &LogConfig) {
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        for partition in partitions.get(topic).into_iter().flat_map(|t| t.values()) {
            partition.set_config(config.clone());
        }
    }

    /// Stops hosting a topic: its directories are renamed at once and removed in the background.
    pub fn delete_topic(&self, topic: &str) -> Result<(), LogError> {
        let removed = {
            let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            partitions.remove(topic).unwrap_or_default()
        };
        strata_api::metrics::KAFKA.forget_topic(topic);
        for partition in removed.values() {
            self.fetchers.unfollow(topic, partition.index);
            let id = strata_controller::uuid_base64(partition.topic_id);
            self.doom(&self.partition_dir(topic, partition.index), &id)?;
        }
        Ok(())
    }

    /// Runs the fsyncs that `flush.ms`/`flush.messages` ask for.
    pub async fn flush_due(&self) {
        for partition in self.all() {
            match partition.flush_if_due().await {
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, "flush failed: {e}")
                }
            }
        }
    }

    /// One compaction pass over every compacted partition; `budget` bounds each key map.
    pub fn clean_logs(&self, budget: usize, now_ms: i64) {
        for partition in self.all() {
            let started = std::time::Instant::now();
            match partition.clean(budget, now_ms) {
                Ok(Some(stats)) => tracing::info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    segments = stats.segments,
                    bytes_before = stats.bytes_before,
                    bytes_after = stats.bytes_after,
                    records_removed = stats.records_removed,
                    mb_per_s = stats.bytes_read as f64 / 1e6 / started.elapsed().as_secs_f64().max(1e-9),
                    "compacted"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    topic = %partition.topic,
                    partition = partition.index,
                    "compaction failed: {e}"
                ),
            }
        }
    }

    /// Deletes segments beyond retention in every partition.
    pub fn apply_retention(&self, now_ms: i64) {
        for partition in self.all() {
            match partition.log().apply_retention(now_ms) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, segments = n, "retention deleted segments")
                }
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, "retention failed: {e}")
                }
            }
        }
    }

    /// Writes every partition's recovery point (Kafka's checkpoint format).
    pub fn write_checkpoint(&self) -> Result<(), LogError> {
        let mut points: BTreeMap<(String, i32), u64> = BTreeMap::new();
        let mut high_watermarks: BTreeMap<(String, i32), u64> = BTreeMap::new();
        for partition in self.all() {
            let key = (partition.topic.clone(), partition.index);
            points.insert(key.clone(), partition.log().recovery_point());
            high_watermarks.insert(key, partition.high_watermark());
        }
        write_offsets(&self.data_dir, RECOVERY_CHECKPOINT_FILE, &points)?;
        write_offsets(
            &self.data_dir,
            HIGH_WATERMARK_CHECKPOINT_FILE,
            &high_watermarks,
        )
    }

    /// Flushes and closes every log, writes the checkpoint and the clean-shutdown marker.
    pub async fn shutdown(&self) -> Result<(), LogError> {
        self.fetchers.shutdown();
        for partition in self.all() {
            partition.flush().await?;
            partition.log().close()?;
        }
        self.write_checkpoint()?;
        let marker = self.data_dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(|e| LogError::io(&marker, e))?;
        sync_dir(&self.data_dir)
    }
}

/// Whether `data_dir` holds any partition directory (`<topic>-<partition>`).
fn holds_partitions(data_dir: &Path) -> Result<bool, LogError> {
    let entries = std::fs::read_dir(data_dir).map_err(|e| LogError::io(data_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(data_dir, e))?;
        let name = entry.file_name();
        let is_partition = name
            .to_str()
            .and_then(|n| n.rsplit_once('-'))
            .is_some_and(|(_, index)| index.parse::<u32>().is_ok());
        if is_partition && entry.path().is_dir() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a recovery checkpoint; a missing file means no partition is known to be flushed.
/// Writes a per-partition offsets file in Kafka's checkpoint format, atomically.
fn write_offsets(
    dir: &Path,
    name: &str,
    points: &BTreeMap<(String, i32), u64>,
) -> Result<(), LogError> {
    let path = dir.join(name);
    let tmp = path.with_extension("tmp");
    let mut text = format!("0\n{}\n", points.len());
    for ((topic, index), offset) in points {
        text.push_str(&format!("{topic} {index} {offset}\n"));
    }
    let mut file = std::fs::File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| LogError::io(&tmp, e))?;
    file.sync_all().map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
    sync_dir(dir)
}

fn read_checkpoint(path: &Path) -> Result<HashMap<(String, i32), u64>, LogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(LogError::io(path, e)),
    };
    let mut points = HashMap::new();
    // Line 1 is the format version, line 2 the count; a malformed line only costs recovery work.
    for line in text.lines().skip(2) {
        let mut fields = line.split(' ');
        if let (Some(topic), Some(Ok(index)), Some(Ok(offset))) = (
            fields.next(),
            fields.next().map(str::parse),
            fields.next().map(str::parse),
        ) {
            points.insert((topic.to_owned(), index), offset);
        }
    }
    Ok(points)
}

/// Kafka's per-partition file naming the topic id.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The topic id recorded in a partition directory, if any.
fn read_topic_id(dir: &Path) -> Result<Option<String>, LogError> {
    let path = dir.join(PARTITION_METADATA_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("topic_id: "))
            .map(|id| id.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(&path, e)),
    }
}

/// Records the topic id in a partition directory (Kafka's `partition.metadata` format).
fn write_topic_id(dir: &Path, id: &str) -> Result<(), LogError> {
    if read_topic_id(dir)?.as_deref() == Some(id) {
        return Ok(());
    }
    let path = dir.join(PARTITION_METADATA_FILE);
    let tmp = dir.join("partition.metadata.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
    file.write_all(format!("version: 0\ntopic_id: {id}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
    sync_dir(dir)
}
