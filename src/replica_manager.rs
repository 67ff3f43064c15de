//! `ReplicaManager`: every partition hosted by this broker, their directories, recovery
//! checkpoints, the flush scheduler and retention.
//!
//! On-disk layout of the data directory (Kafka's):
//!
//! ```text
//! <data dir>/
//!   metadata.json                      topics, cluster id (see metadata.rs)
//!   recovery-point-offset-checkpoint   per partition, offsets below which the log is fsync'd
//!   .strata_clean_shutdown             present only between a clean stop and the next start
//!   <topic>-<partition>/               one directory per partition, 20-digit segment files
//!   <topic>-<partition>.<id>-delete/   a deleted partition awaiting removal
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::log::partition_log::sync_dir;
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::partition::{Partition, PartitionRef};

/// Marker file written by a clean shutdown.
pub const CLEAN_SHUTDOWN_FILE: &str = ".strata_clean_shutdown";
/// Kafka's name for the recovery point checkpoint.
pub const RECOVERY_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";

/// All partitions on this broker.
#[derive(Debug)]
pub struct ReplicaManager {
    data_dir: PathBuf,
    /// Whether the previous run ended cleanly (decides recovery on open).
    clean_start: bool,
    recovery_points: HashMap<(String, i32), u64>,
    partitions: RwLock<HashMap<String, Vec<PartitionRef>>>,
    appends: Arc<watch::Sender<u64>>,
}

impl ReplicaManager {
    /// Prepares the data directory: notes whether the last shutdown was clean, reads the
    /// recovery checkpoint and removes partitions whose deletion was interrupted.
    pub fn new(data_dir: &Path) -> Result<Self, LogError> {
        std::fs::create_dir_all(data_dir).map_err(|e| LogError::io(data_dir, e))?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_start = marker.exists();
        if clean_start {
            std::fs::remove_file(&marker).map_err(|e| LogError::io(&marker, e))?;
            sync_dir(data_dir)?;
        }
        let recovery_points = read_checkpoint(&data_dir.join(RECOVERY_CHECKPOINT_FILE))?;
        for entry in std::fs::read_dir(data_dir).map_err(|e| LogError::io(data_dir, e))? {
            let path = entry.map_err(|e| LogError::io(data_dir, e))?.path();
            if path.is_dir() && path.to_string_lossy().ends_with("-delete") {
                std::fs::remove_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
            }
        }
        Ok(Self {
            data_dir: data_dir.to_owned(),
            clean_start,
            recovery_points,
            partitions: RwLock::new(HashMap::new()),
            appends: Arc::new(watch::Sender::new(0)),
        })
    }

    /// Whether the previous run shut down cleanly.
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{index}"))
    }

    /// Opens (creating if needed) partitions `from..to` of a topic.
    pub fn open_partitions(
        &self,
        topic: &str,
        from: i32,
        to: i32,
        config: &LogConfig,
    ) -> Result<(), LogError> {
        let mut opened = Vec::new();
        for index in from..to {
            let dir = self.partition_dir(topic, index);
            let recovery_point = self
                .recovery_points
                .get(&(topic.to_owned(), index))
                .copied()
                .unwrap_or(0);
            let log = PartitionLog::open(&dir, config.clone(), recovery_point, self.clean_start)?;
            opened.push(Arc::new(Partition::new(topic.to_owned(), index, log)));
        }
        sync_dir(&self.data_dir)?;
        let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        let entry = partitions.entry(topic.to_owned()).or_default();
        entry.truncate(from as usize);
        entry.extend(opened);
        Ok(())
    }

    /// The partition, if hosted here.
    pub fn get(&self, topic: &str, index: i32) -> Option<PartitionRef> {
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        partitions
            .get(topic)?
            .get(usize::try_from(index).ok()?)
            .cloned()
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<PartitionRef> {
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        partitions.values().flatten().cloned().collect()
    }

    /// Applies a topic's new config to its partitions.
    pub fn set_config(&self, topic: &str, config: &LogConfig) {
        let partitions = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        for partition in partitions.get(topic).into_iter().flatten() {
            partition.set_config(config.clone());
        }
    }

    /// Stops hosting a topic: its directories are renamed at once and removed in the background.
    pub fn delete_topic(&self, topic: &str, topic_id: uuid::Uuid) -> Result<(), LogError> {
        let removed = {
            let mut partitions = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            partitions.remove(topic).unwrap_or_default()
        };
        let mut doomed = Vec::new();
        for partition in removed {
            let dir = self.partition_dir(topic, partition.index);
            let target = self.data_dir.join(format!(
                "{topic}-{}.{}-delete",
                partition.index,
                topic_id.simple()
            ));
            std::fs::rename(&dir, &target).map_err(|e| LogError::io(&dir, e))?;
            doomed.push(target);
        }
        sync_dir(&self.data_dir)?;
        tokio::task::spawn_blocking(move || {
            for dir in doomed {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), "cannot remove deleted partition: {e}");
                }
            }
        });
        Ok(())
    }

    /// Signals long-polling fetches that data may have become readable.
    pub fn notify_appended(&self) {
        self.appends.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The notifier itself, for futures that outlive a borrow of the manager.
    pub fn appends_sender(&self) -> Arc<watch::Sender<u64>> {
        Arc::clone(&self.appends)
    }

    /// A receiver for [`Self::notify_appended`].
    pub fn appends(&self) -> watch::Receiver<u64> {
        self.appends.subscribe()
    }

    /// Runs the fsyncs that `flush.ms`/`flush.messages` ask for.
    pub async fn flush_due(&self) {
        for partition in self.all() {
            match partition.flush_if_due().await {
                Ok(true) => self.notify_appended(),
                Ok(false) => {}
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
        for partition in self.all() {
            points.insert(
                (partition.topic.clone(), partition.index),
                partition.log().recovery_point(),
            );
        }
        let path = self.data_dir.join(RECOVERY_CHECKPOINT_FILE);
        let tmp = path.with_extension("tmp");
        let mut text = format!("0\n{}\n", points.len());
        for ((topic, index), offset) in &points {
            text.push_str(&format!("{topic} {index} {offset}\n"));
        }
        let mut file = std::fs::File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        file.write_all(text.as_bytes())
            .map_err(|e| LogError::io(&tmp, e))?;
        file.sync_all().map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
        sync_dir(&self.data_dir)
    }

    /// Flushes and closes every log, writes the checkpoint and the clean-shutdown marker.
    pub async fn shutdown(&self) -> Result<(), LogError> {
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

/// Reads a recovery checkpoint; a missing file means no partition is known to be flushed.
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
