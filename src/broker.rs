//! `StrataBroker`: the single-node broker behind the Kafka API.
//!
//! It owns the topic metadata (until the quorum takes it over) and the [`ReplicaManager`], and
//! maps log errors to the API's [`BrokerError`]s. Topic changes are persisted before they take
//! effect on disk, so a crash between the two is repaired on the next start.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use strata_api::broker::{
    Appended, ClusterInfo, ConfigEntry, ConfigOp, ConfigSource, NewTopic, OffsetAndTimestamp,
    OffsetSpec, PartitionRead, TopicMetadata,
};
use strata_api::{Broker, BrokerError};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::group::Groups;
use crate::log::config::{ConfigType, TOPIC_CONFIGS};
use crate::log::{LogConfig, LogError};
use crate::metadata::{MetadataStore, PRODUCER_ID_BLOCK, TopicRecord};
use crate::partition::PartitionRef;
use crate::replica_manager::ReplicaManager;

/// Longest topic name Kafka allows (so that `<topic>-<partition>` fits a file name).
const MAX_TOPIC_NAME_LEN: usize = 249;
/// Most partitions one topic may have: each costs a directory, open files and index mappings,
/// so an unchecked request could exhaust the broker.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
/// The leader epoch of every partition on a single node.
const LEADER_EPOCH: i32 = 0;

/// The broker.
#[derive(Debug)]
pub struct StrataBroker {
    config: BrokerConfig,
    metadata: Mutex<MetadataStore>,
    next_producer_id: Mutex<i64>,
    replicas: ReplicaManager,
    pub(crate) groups: Groups,
}

impl StrataBroker {
    /// Opens the data directory: metadata, then every partition (recovering if needed).
    pub fn open(config: BrokerConfig) -> Result<Self, LogError> {
        let replicas = ReplicaManager::new(&config.data_dir)?;
        let metadata = MetadataStore::open(&config.data_dir, config.cluster_id.as_deref())?;
        tracing::info!(
            cluster_id = %metadata.doc.cluster_id,
            topics = metadata.doc.topics.len(),
            clean = replicas.clean_start(),
            "opening data directory {}",
            config.data_dir.display()
        );
        for (name, topic) in &metadata.doc.topics {
            let log_config = effective_config(&config, &topic.configs).map_err(|e| {
                LogError::io(
                    &config.data_dir,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("topic {name}: {e}"),
                    ),
                )
            })?;
            replicas.open_partitions(name, 0, topic.partitions, &log_config)?;
        }
        let next_producer_id = metadata.doc.producer_id_block_end;
        let groups = Groups::new(config.coordinator());
        let broker = Self {
            config,
            metadata: Mutex::new(metadata),
            next_producer_id: Mutex::new(next_producer_id),
            replicas,
            groups,
        };
        crate::group::load(&broker)?;
        Ok(broker)
    }

    /// The consumer groups.
    pub fn groups_state(&self) -> &Groups {
        &self.groups
    }

    /// The partitions and their background work.
    pub fn replicas(&self) -> &ReplicaManager {
        &self.replicas
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    fn metadata(&self) -> MutexGuard<'_, MetadataStore> {
        self.metadata.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition, or UNKNOWN_TOPIC_OR_PARTITION.
    pub(crate) fn partition_ref(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<PartitionRef, BrokerError> {
        self.replicas
            .get(topic, index)
            .ok_or(BrokerError::UnknownTopicOrPartition)
    }

    fn topic_metadata(name: &str, record: &TopicRecord) -> TopicMetadata {
        TopicMetadata {
            name: name.to_owned(),
            topic_id: record.topic_id,
            partitions: record.partitions,
            leader_epoch: LEADER_EPOCH,
            is_internal: name.starts_with("__"),
        }
    }

    fn update_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), BrokerError>,
    ) -> Result<(), BrokerError> {
        let mut metadata = self.metadata();
        let record = metadata
            .doc
            .topics
            .get(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let mut overrides = record.configs.clone();
        change(&mut overrides)?;
        let log_config = effective_config(&self.config, &overrides)?;
        if validate_only {
            return Ok(());
        }
        metadata
            .update(|doc| {
                if let Some(record) = doc.topics.get_mut(name) {
                    record.configs = overrides;
                }
            })
            .map_err(storage)?;
        drop(metadata);
        self.replicas.set_config(name, &log_config);
        tracing::info!(topic = name, "topic configs changed");
        Ok(())
    }
}

/// Broker topic defaults overlaid with a topic's overrides, validated.
fn effective_config(
    config: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, BrokerError> {
    let mut merged = config.topic_defaults.clone();
    merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    LogConfig::from_map(&merged).map_err(|e| BrokerError::InvalidConfig(e.0))
}

/// Refuses partition counts above [`MAX_PARTITIONS_PER_TOPIC`].
fn check_partition_limit(count: i32) -> Result<(), BrokerError> {
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(BrokerError::InvalidPartitions(format!(
            "{count} partitions is more than the {MAX_PARTITIONS_PER_TOPIC} a topic may have"
        )));
    }
    Ok(())
}

/// The current entries of a list config, for APPEND and SUBTRACT.
fn list_items(overrides: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>, BrokerError> {
    let config = TOPIC_CONFIGS
        .iter()
        .find(|k| k.name == key && k.kind == ConfigType::List)
        .ok_or_else(|| {
            BrokerError::InvalidConfig(format!(
                "'{key}' is not a list config: APPEND and SUBTRACT apply to lists only"
            ))
        })?;
    let current = overrides.get(key).map_or(config.default, String::as_str);
    Ok(current
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Kafka's topic name rule: 1..=249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(BrokerError::InvalidTopic(format!(
            "topic name '{name}' is illegal"
        )));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(BrokerError::InvalidTopic(format!(
            "topic name is {} characters, more than {MAX_TOPIC_NAME_LEN}",
            name.len()
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(BrokerError::InvalidTopic(format!(
            "topic name '{}' contains '{}'; only ASCII letters, digits, '.', '_' and '-' are allowed",
            name.escape_default(),
            bad.escape_default()
        )));
    }
    Ok(())
}

fn storage(e: LogError) -> BrokerError {
    tracing::error!("storage error: {e}");
    BrokerError::Storage(e.to_string())
}

/// Maps a log error to the API error a client should see.
fn from_log(e: LogError) -> BrokerError {
    match e {
        LogError::CorruptRecord(m) => BrokerError::CorruptMessage(m),
        LogError::InvalidRecord(m) => BrokerError::InvalidRecord(m),
        e @ LogError::UnsupportedMagic(_) => {
            BrokerError::UnsupportedForMessageFormat(e.to_string())
        }
        e @ LogError::RecordTooLarge { .. } => BrokerError::MessageTooLarge(e.to_string()),
        e @ LogError::OffsetOutOfRange { .. } => BrokerError::OffsetOutOfRange(e.to_string()),
        e @ LogError::OutOfOrderSequence { .. } => BrokerError::OutOfOrderSequence(e.to_string()),
        e @ LogError::InvalidProducerEpoch { .. } => {
            BrokerError::InvalidProducerEpoch(e.to_string())
        }
        LogError::Unsupported(m) => BrokerError::Unsupported(m),
        e @ LogError::Io { .. } => storage(e),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Broker for StrataBroker {
    type Groups = Self;

    fn groups(&self) -> &Self {
        self
    }

    fn cluster(&self) -> ClusterInfo {
        ClusterInfo {
            cluster_id: self.metadata().doc.cluster_id.clone(),
            node_id: self.config.node_id,
            host: self.config.advertised.0.clone(),
            port: self.config.advertised.1 as i32,
            controller_id: self.config.node_id,
        }
    }

    fn topics(
        &self,
        names: Option<&[String]>,
        auto_create: bool,
    ) -> Vec<(String, Result<TopicMetadata, BrokerError>)> {
        let Some(names) = names else {
            let metadata = self.metadata();
            return metadata
                .doc
                .topics
                .iter()
                .map(|(name, record)| (name.clone(), Ok(Self::topic_metadata(name, record))))
                .collect();
        };
        names
            .iter()
            .map(|name| {
                let existing = self
                    .metadata()
                    .doc
                    .topics
                    .get(name)
                    .map(|record| Self::topic_metadata(name, record));
                let result = match existing {
                    Some(meta) => Ok(meta),
                    None if auto_create && self.config.auto_create_topics => {
                        let topic = NewTopic {
                            name: name.clone(),
                            partitions: None,
                            replication_factor: None,
                            assignments: BTreeMap::new(),
                            configs: BTreeMap::new(),
                        };
                        match self.create_topic(topic, false) {
                            Err(BrokerError::TopicAlreadyExists(_)) => self
                                .metadata()
                                .doc
                                .topics
                                .get(name)
                                .map(|record| Self::topic_metadata(name, record))
                                .ok_or(BrokerError::UnknownTopicOrPartition),
                            other => other,
                        }
                    }
                    None => {
                        validate_topic_name(name).and(Err(BrokerError::UnknownTopicOrPartition))
                    }
                };
                (name.clone(), result)
            })
            .collect()
    }

    fn topic_name(&self, topic_id: Uuid) -> Option<String> {
        self.metadata()
            .doc
            .topics
            .iter()
            .find(|(_, t)| t.topic_id == topic_id)
            .map(|(name, _)| name.clone())
    }

    fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<TopicMetadata, BrokerError> {
        validate_topic_name(&topic.name)?;
        let partitions = topic.partitions.unwrap_or(self.config.num_partitions);
        if partitions <= 0 {
            return Err(BrokerError::InvalidPartitions(format!(
                "number of partitions must be larger than 0, got {partitions}"
            )));
        }
        check_partition_limit(partitions)?;
        let replication_factor = topic
            .replication_factor
            .unwrap_or(self.config.default_replication_factor);
        if replication_factor <= 0 {
            return Err(BrokerError::InvalidReplicationFactor(format!(
                "replication factor must be larger than 0, got {replication_factor}"
            )));
        }
        if replication_factor > 1 {
            return Err(BrokerError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor} is larger than the 1 available broker"
            )));
        }
        for (index, replicas) in &topic.assignments {
            if !(0..partitions).contains(index) || replicas.as_slice() != [self.config.node_id] {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "partition {index} assigned to {replicas:?}; the only broker is {}",
                    self.config.node_id
                )));
            }
        }
        let log_config = effective_config(&self.config, &topic.configs)?;
        let mut metadata = self.metadata();
        if metadata.doc.topics.contains_key(&topic.name) {
            return Err(BrokerError::TopicAlreadyExists(topic.name));
        }
        let record = TopicRecord {
            topic_id: Uuid::new_v4(),
            partitions,
            configs: topic.configs,
        };
        let meta = Self::topic_metadata(&topic.name, &record);
        if validate_only {
            return Ok(meta);
        }
        metadata
            .update(|doc| {
                doc.topics.insert(topic.name.clone(), record);
            })
            .map_err(storage)?;
        // Opened under the metadata lock so that no request sees the topic without partitions.
        self.replicas
            .open_partitions(&topic.name, 0, partitions, &log_config)
            .map_err(storage)?;
        drop(metadata);
        tracing::info!(topic = %topic.name, partitions, "created topic");
        Ok(meta)
    }

    fn delete_topic(&self, name: &str) -> Result<Uuid, BrokerError> {
        let mut metadata = self.metadata();
        let record = metadata
            .doc
            .topics
            .get(name)
            .cloned()
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        metadata
            .update(|doc| {
                doc.topics.remove(name);
            })
            .map_err(storage)?;
        self.replicas
            .delete_topic(name, record.topic_id)
            .map_err(storage)?;
        drop(metadata);
        tracing::info!(topic = name, "deleted topic");
        Ok(record.topic_id)
    }

    fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let mut metadata = self.metadata();
        let record = metadata
            .doc
            .topics
            .get(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let current = record.partitions;
        if count <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic '{name}' has {current} partitions; the new count {count} must be larger"
            )));
        }
        check_partition_limit(count)?;
        let log_config = effective_config(&self.config, &record.configs)?;
        if validate_only {
            return Ok(());
        }
        metadata
            .update(|doc| {
                if let Some(record) = doc.topics.get_mut(name) {
                    record.partitions = count;
                }
            })
            .map_err(storage)?;
        self.replicas
            .open_partitions(name, current, count, &log_config)
            .map_err(storage)?;
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    fn topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        let metadata = self.metadata();
        let record = metadata
            .doc
            .topics
            .get(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        Ok(TOPIC_CONFIGS
            .iter()
            .map(|key| {
                let (value, source) = if let Some(value) = record.configs.get(key.name) {
                    (value.clone(), ConfigSource::DynamicTopic)
                } else if let Some(value) = self.config.topic_defaults.get(key.name) {
                    (value.clone(), ConfigSource::StaticBroker)
                } else {
                    (key.default.to_owned(), ConfigSource::Default)
                };
                ConfigEntry {
                    name: key.name.to_owned(),
                    value: Some(value),
                    source,
                    read_only: false,
                    config_type: key.kind as i8,
                    documentation: Some(key.doc.to_owned()),
                }
            })
            .collect())
    }

    fn broker_configs(&self) -> Vec<ConfigEntry> {
        self.config
            .describe()
            .into_iter()
            .map(|(name, value, explicit, doc)| ConfigEntry {
                name,
                value: Some(value),
                source: if explicit {
                    ConfigSource::StaticBroker
                } else {
                    ConfigSource::Default
                },
                read_only: true,
                config_type: ConfigType::String as i8,
                documentation: Some(doc.to_owned()),
            })
            .collect()
    }

    fn replace_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        self.update_topic_configs(name, validate_only, |overrides| {
            *overrides = configs;
            Ok(())
        })
    }

    fn alter_topic_configs(
        &self,
        name: &str,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        self.update_topic_configs(name, validate_only, |overrides| {
            for op in ops {
                match op {
                    ConfigOp::Set(key, value) => {
                        overrides.insert(key, value);
                    }
                    ConfigOp::Delete(key) => {
                        overrides.remove(&key);
                    }
                    ConfigOp::Append(key, value) => {
                        let mut items = list_items(overrides, &key)?;
                        for item in value.split(',').filter(|s| !s.is_empty()) {
                            if !items.iter().any(|existing| existing == item) {
                                items.push(item.to_owned());
                            }
                        }
                        overrides.insert(key, items.join(","));
                    }
                    ConfigOp::Subtract(key, value) => {
                        let mut items = list_items(overrides, &key)?;
                        let removed: Vec<&str> = value.split(',').collect();
                        items.retain(|existing| !removed.contains(&existing.as_str()));
                        overrides.insert(key, items.join(","));
                    }
                }
            }
            Ok(())
        })
    }

    fn append(&self, topic: &str, partition: i32, records: Bytes) -> Result<Appended, BrokerError> {
        let partition = self.partition_ref(topic, partition)?;
        let (info, log_start_offset, must_flush) =
            partition.append(&records, now_ms()).map_err(from_log)?;
        if !must_flush {
            self.replicas.notify_appended();
        }
        Ok(Appended {
            base_offset: info.base_offset as i64,
            log_append_time: info.log_append_time,
            log_start_offset: log_start_offset as i64,
            next_offset: info.next_offset as i64,
            must_flush,
        })
    }

    fn wait_durable(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        let partition = self.partition_ref(topic, partition);
        let appends = self.replicas.appends_sender();
        async move {
            let partition = partition?;
            partition
                .wait_durable(offset.max(0) as u64)
                .await
                .map_err(storage)?;
            appends.send_modify(|n| *n = n.wrapping_add(1));
            Ok(())
        }
    }

    fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
    ) -> Result<PartitionRead, BrokerError> {
        let partition = self.partition_ref(topic, partition)?;
        let read = partition
            .read(offset, max_bytes, min_one)
            .map_err(from_log)?;
        Ok(PartitionRead {
            high_watermark: read.high_watermark as i64,
            last_stable_offset: read.high_watermark as i64,
            log_start_offset: read.log_start_offset as i64,
            records: read.records.map(|slice| strata_api::broker::FileRegion {
                file: slice.file,
                position: slice.position,
                len: slice.len,
            }),
        })
    }

    fn appends(&self) -> watch::Receiver<u64> {
        self.replicas.appends()
    }

    fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<OffsetAndTimestamp, BrokerError> {
        let partition = self.partition_ref(topic, partition)?;
        let high_watermark = partition.high_watermark();
        let log = partition.log();
        let found = |offset: u64, timestamp: i64| OffsetAndTimestamp {
            offset: offset as i64,
            timestamp,
            leader_epoch: LEADER_EPOCH,
        };
        let none = OffsetAndTimestamp {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        };
        Ok(match spec {
            OffsetSpec::Latest => found(high_watermark, -1),
            OffsetSpec::Earliest | OffsetSpec::EarliestLocal => found(log.log_start_offset(), -1),
            OffsetSpec::MaxTimestamp => log
                .max_timestamp()
                .filter(|(o, _)| *o < high_watermark)
                .map_or(none, |(o, t)| found(o, t)),
            OffsetSpec::Timestamp(ts) => log
                .find_offset_by_timestamp(ts)
                .map_err(from_log)?
                .filter(|(o, _)| *o < high_watermark)
                .map_or(none, |(o, t)| found(o, t)),
        })
    }

    fn leader_epoch(&self, topic: &str, partition: i32) -> Result<i32, BrokerError> {
        self.partition_ref(topic, partition).map(|_| LEADER_EPOCH)
    }

    fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Result<(i32, i64), BrokerError> {
        let partition = self.partition_ref(topic, partition)?;
        // One epoch exists on a single node; Kafka answers later epochs with UNDEFINED (-1, -1).
        if epoch == LEADER_EPOCH {
            Ok((LEADER_EPOCH, partition.log().log_end_offset() as i64))
        } else {
            Ok((-1, -1))
        }
    }

    fn init_producer_id(&self, existing: Option<(i64, i16)>) -> Result<(i64, i16), BrokerError> {
        if let Some((id, epoch)) = existing {
            // KIP-360: an idempotent producer bumps its epoch to reset sequences after an error.
            if (0..i16::MAX - 1).contains(&epoch)
                && id
                    < *self
                        .next_producer_id
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
            {
                return Ok((id, epoch + 1));
            }
        }
        let mut next = self
            .next_producer_id
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut metadata = self.metadata();
        if *next >= metadata.doc.producer_id_block_end {
            let block_end = *next + PRODUCER_ID_BLOCK;
            metadata
                .update(|doc| doc.producer_id_block_end = block_end)
                .map_err(storage)?;
        }
        let id = *next;
        *next += 1;
        Ok((id, 0))
    }
}
