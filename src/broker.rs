//! `StrataBroker`: a broker of the cluster behind the Kafka API.
//!
//! Its view of the cluster is the metadata image it follows from the controller quorum (see
//! [`crate::cluster`]); it hosts the partitions the image assigns to it in the
//! [`ReplicaManager`], serves reads and writes for those it leads, sends topic changes to the
//! active controller, and maps log errors to the API's [`BrokerError`]s.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use strata_api::broker::{
    Appended, BrokerNode, ClusterInfo, ConfigEntry, ConfigOp, ConfigSource, NewTopic,
    OffsetAndTimestamp, OffsetSpec, PartitionMetadata, PartitionRead, Records, TopicMetadata,
};
use strata_api::{Broker, BrokerError};
use strata_controller::{MetadataImage, TopicImage};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::group::Groups;
use crate::log::config::{ConfigType, TOPIC_CONFIGS};
use crate::log::{LogConfig, LogError};
use crate::meta_properties::MetaProperties;
use crate::partition::PartitionRef;
use crate::remote_log_manager::RemoteLogManager;
use crate::replica_manager::ReplicaManager;

/// Longest topic name Kafka allows (so that `<topic>-<partition>` fits a file name).
const MAX_TOPIC_NAME_LEN: usize = 249;
/// Most partitions one topic may have: each costs a directory, open files and index mappings,
/// so an unchecked request could exhaust the broker.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// The broker.
#[derive(Debug)]
pub struct StrataBroker {
    config: BrokerConfig,
    /// Controller listeners to reach the quorum through.
    pub(crate) controllers: Vec<String>,
    /// This process start, as the controllers tell restarts apart.
    pub(crate) incarnation: Uuid,
    /// The identity the data directory had when the broker started.
    pub(crate) meta_properties: Option<MetaProperties>,
    image: RwLock<MetadataImage>,
    /// The image's offset, for requests waiting to see their own change.
    pub(crate) applied: watch::Sender<u64>,
    /// The producer id block handed to this broker: next id, end of the block.
    pub(crate) producer_ids: tokio::sync::Mutex<(i64, i64)>,
    replicas: ReplicaManager,
    pub(crate) groups: Groups,
    /// The remote tier, when tiered storage is on.
    pub(crate) remote: Option<Arc<RemoteLogManager>>,
    /// What `/v1/health` and `/v1/ready` report.
    health: crate::health::NodeHealth,
}

impl StrataBroker {
    /// Prepares the data directory; partitions are opened once the broker has joined the
    /// cluster and knows which are its own ([`crate::cluster::join`]).
    pub fn open(
        config: BrokerConfig,
        controllers: Vec<String>,
        remote: Option<Arc<RemoteLogManager>>,
    ) -> Result<Self, LogError> {
        let replicas = ReplicaManager::new(&config.data_dir)?;
        let meta_properties = MetaProperties::read(&config.data_dir)?;
        if let Some(props) = &meta_properties {
            props.check_node(&config.data_dir, config.node_id)?;
            if let Some(configured) = config
                .cluster_id
                .as_ref()
                .filter(|c| **c != props.cluster_id)
            {
                return Err(LogError::io(
                    &config.data_dir,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "data belongs to cluster {} but cluster.id is {configured}",
                            props.cluster_id
                        ),
                    ),
                ));
            }
        }
        if replicas.clean_start() {
            tracing::info!("opening data directory {}", config.data_dir.display());
        } else {
            tracing::info!(
                "opening data directory {} after an unclean shutdown: recovering the segments \
                 past the recovery checkpoint",
                config.data_dir.display()
            );
        }
        let groups = Groups::new(config.coordinator());
        Ok(Self {
            config,
            controllers,
            incarnation: Uuid::new_v4(),
            meta_properties,
            image: RwLock::new(MetadataImage::default()),
            applied: watch::Sender::new(0),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            replicas,
            groups,
            remote,
            health: crate::health::NodeHealth::default(),
        })
    }

    /// The node's health state.
    pub fn health(&self) -> &crate::health::NodeHealth {
        &self.health
    }

    /// The remote tier, if on.
    pub fn remote(&self) -> Option<&Arc<RemoteLogManager>> {
        self.remote.as_ref()
    }

    fn cluster_id(&self) -> String {
        self.image().cluster_id.clone().unwrap_or_default()
    }

    /// The first remote batch at or after `timestamp` below the local log, as ListOffsets
    /// answers it.
    async fn remote_offset_for_timestamp(
        &self,
        partition: &PartitionRef,
        timestamp: i64,
    ) -> Result<Option<(u64, i64)>, BrokerError> {
        let (Some(remote), Some(start)) = (&self.remote, partition.log().remote_log_start_offset())
        else {
            return Ok(None);
        };
        let remote = remote
            .remote_for(&self.cluster_id(), partition)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?;
        let Some(batch) = remote
            .log
            .batch_for_timestamp(timestamp)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?
        else {
            return Ok(None);
        };
        crate::log::batch::record_at_timestamp(batch, timestamp, start).map_err(from_log)
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

    /// The metadata image as this broker has applied it.
    pub fn image(&self) -> RwLockReadGuard<'_, MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the image (the metadata follower only).
    pub(crate) fn update_image<T>(&self, change: impl FnOnce(&mut MetadataImage) -> T) -> T {
        let mut image = self.image.write().unwrap_or_else(|p| p.into_inner());
        change(&mut image)
    }

    /// Tells waiting requests that the image, and what the broker did about it, reached
    /// `offset`.
    pub(crate) fn publish_applied(&self, offset: u64) {
        self.applied.send_replace(offset);
    }

    /// The partition if hosted here, led or not (else UNKNOWN_TOPIC_OR_PARTITION).
    pub(crate) fn partition_ref(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<PartitionRef, BrokerError> {
        self.replicas
            .get(topic, index)
            .ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// The partition if this broker leads it: NOT_LEADER_OR_FOLLOWER if another broker does
    /// (or none), UNKNOWN_TOPIC_OR_PARTITION if the cluster has no such partition.
    pub(crate) fn leader_ref(&self, topic: &str, index: i32) -> Result<PartitionRef, BrokerError> {
        match self.replicas.get(topic, index) {
            Some(p) if p.is_leader() => Ok(p),
            Some(_) => Err(BrokerError::NotLeaderOrFollower),
            None if self.partition_exists(topic, index) => Err(BrokerError::NotLeaderOrFollower),
            None => Err(BrokerError::UnknownTopicOrPartition),
        }
    }

    /// Whether the cluster has this partition (wherever it is hosted).
    pub(crate) fn partition_exists(&self, topic: &str, index: i32) -> bool {
        self.image()
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&index))
    }

    /// A topic as Metadata reports it.
    pub(crate) fn topic_metadata(image: &MetadataImage, topic: &TopicImage) -> TopicMetadata {
        TopicMetadata {
            name: topic.name.clone(),
            topic_id: topic.id,
            partitions: topic
                .partitions
                .iter()
                .map(|(index, p)| PartitionMetadata {
                    index: *index,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    offline_replicas: p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| !image.is_active(*r))
                        .collect(),
                })
                .collect(),
            is_internal: topic.name.starts_with("__"),
        }
    }

    /// The topic's effective log config: broker defaults overlaid with its overrides.
    pub(crate) fn log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, BrokerError> {
        effective_config(&self.config, overrides)
    }
}

/// Broker `id` as clients reach it, if registered and unfenced.
pub(crate) fn live_node(image: &MetadataImage, id: i32) -> Option<BrokerNode> {
    let broker = image.brokers.get(&id).filter(|b| !b.fenced)?;
    let endpoint = broker.listeners.first()?;
    Some(BrokerNode {
        node_id: broker.id,
        host: endpoint.host.clone(),
        port: endpoint.port as i32,
        rack: broker.rack.clone(),
    })
}

/// Broker topic defaults overlaid with a topic's overrides, validated.
pub(crate) fn effective_config(
    config: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, BrokerError> {
    let mut merged = config.topic_defaults.clone();
    merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    LogConfig::from_map(&merged).map_err(|e| BrokerError::InvalidConfig(e.0))
}

/// Refuses partition counts above [`MAX_PARTITIONS_PER_TOPIC`].
pub(crate) fn check_partition_limit(count: i32) -> Result<(), BrokerError> {
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

/// Applies IncrementalAlterConfigs operations to a topic's overrides.
fn apply_config_ops(
    overrides: &mut BTreeMap<String, String>,
    ops: Vec<ConfigOp>,
) -> Result<(), BrokerError> {
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

pub(crate) fn storage(e: LogError) -> BrokerError {
    tracing::error!("storage error: {e}");
    BrokerError::Storage(e.to_string())
}

/// The error a client gets for a failed remote read: KAFKA_STORAGE_ERROR for damaged data
/// (logged with the object, for an operator to look at), UNKNOWN_SERVER_ERROR otherwise, as
/// Kafka answers a RemoteStorageException.
fn remote_error(partition: &PartitionRef, error: strata_tiering::TieringError) -> BrokerError {
    match error {
        strata_tiering::TieringError::Corrupt { .. } => {
            tracing::error!(
                topic = %partition.topic,
                partition = partition.index,
                "refusing to serve remote data: {error}"
            );
            BrokerError::Storage(error.to_string())
        }
        other => BrokerError::RemoteStorage(other.to_string()),
    }
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
        let image = self.image();
        let brokers = image
            .brokers
            .keys()
            .filter_map(|id| live_node(&image, *id))
            .collect();
        ClusterInfo {
            cluster_id: image.cluster_id.clone().unwrap_or_default(),
            node_id: self.config.node_id,
            host: self.config.advertised.0.clone(),
            port: self.config.advertised.1 as i32,
            // As in KRaft: clients send controller-bound requests to any live broker, which
            // forwards them to the quorum.
            controller_id: self.config.node_id,
            brokers,
        }
    }

    async fn topics(
        &self,
        names: Option<Vec<String>>,
        auto_create: bool,
    ) -> Vec<(String, Result<TopicMetadata, BrokerError>)> {
        {
            let Some(names) = names else {
                let image = self.image();
                return image
                    .topics
                    .values()
                    .map(|t| (t.name.clone(), Ok(Self::topic_metadata(&image, t))))
                    .collect();
            };
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let existing = {
                    let image = self.image();
                    image.topic(&name).map(|t| Self::topic_metadata(&image, t))
                };
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
                        match self.create_topic_in_quorum(topic, false).await {
                            Err(BrokerError::TopicAlreadyExists(_)) => {
                                let image = self.image();
                                image
                                    .topic(&name)
                                    .map(|t| Self::topic_metadata(&image, t))
                                    .ok_or(BrokerError::LeaderNotAvailable)
                            }
                            other => other,
                        }
                    }
                    None => {
                        validate_topic_name(&name).and(Err(BrokerError::UnknownTopicOrPartition))
                    }
                };
                out.push((name, result));
            }
            out
        }
    }

    fn topic_name(&self, topic_id: Uuid) -> Option<String> {
        self.image().topics.get(&topic_id).map(|t| t.name.clone())
    }

    fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> impl Future<Output = Result<TopicMetadata, BrokerError>> + Send {
        self.create_topic_in_quorum(topic, validate_only)
    }

    fn delete_topic(&self, name: String) -> impl Future<Output = Result<Uuid, BrokerError>> + Send {
        self.delete_topic_in_quorum(name)
    }

    fn create_partitions(
        &self,
        name: String,
        count: i32,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.create_partitions_in_quorum(name, count, assignments, validate_only)
    }

    fn topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        let image = self.image();
        let record = image
            .topic(name)
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

    fn fetch_max_bytes(&self) -> u64 {
        self.config.fetch_max_bytes
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
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.update_topic_configs(name, validate_only, |overrides| {
            *overrides = configs;
            Ok(())
        })
    }

    fn alter_topic_configs(
        &self,
        name: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.update_topic_configs(name, validate_only, |overrides| {
            apply_config_ops(overrides, ops)
        })
    }

    fn append(&self, topic: &str, partition: i32, records: Bytes) -> Result<Appended, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        if !partition.takes_writes(self.remote.is_some()) {
            // Retriable: the client refreshes its metadata and tries again.
            return Err(BrokerError::LeaderNotAvailable);
        }
        let (info, log_start_offset, must_flush) =
            partition.append(&records, now_ms()).map_err(from_log)?;
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
        async move {
            partition?
                .wait_durable(offset.max(0) as u64)
                .await
                .map_err(storage)
        }
    }

    fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        (max_bytes, min_one): (u64, bool),
        (current_leader_epoch, waker): (i32, Option<&Arc<strata_api::broker::FetchWaker>>),
    ) -> Result<PartitionRead, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        strata_api::broker::check_epoch(current_leader_epoch, partition.leader_epoch())?;
        if let Some(waker) = waker {
            partition.register_fetch(waker);
        }
        let (
            log_start_offset,
            local_log_start_offset,
            remote_log_start_offset,
            remote_log_end_offset,
        ) = {
            let log = partition.log();
            (
                log.log_start_offset(),
                log.local_log_start_offset(),
                log.remote_log_start_offset(),
                log.remote_log_end_offset(),
            )
        };
        if offset < local_log_start_offset as i64
            && remote_log_start_offset.is_some_and(|start| offset >= start as i64)
            && offset < remote_log_end_offset as i64
            && self.remote.is_some()
        {
            let high_watermark = partition.high_watermark() as i64;
            return Ok(PartitionRead {
                high_watermark,
                last_stable_offset: high_watermark,
                log_start_offset: log_start_offset as i64,
                records: Some(Records::Remote),
            });
        }
        // Past the remote tier and below the local log: no records there, read on locally.
        let offset = if (log_start_offset as i64..local_log_start_offset as i64).contains(&offset) {
            local_log_start_offset as i64
        } else {
            offset
        };
        let read = partition
            .read(offset, max_bytes, min_one)
            .map_err(|e| match e {
                LogError::OffsetOutOfRange {
                    offset,
                    log_end_offset,
                    ..
                } => from_log(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset,
                    log_end_offset,
                }),
                e => from_log(e),
            })?;
        Ok(PartitionRead {
            high_watermark: read.high_watermark as i64,
            last_stable_offset: read.high_watermark as i64,
            log_start_offset: log_start_offset.min(read.log_start_offset) as i64,
            records: read.records.map(|slice| {
                Records::File(strata_api::broker::FileRegion {
                    file: slice.file,
                    position: slice.position,
                    len: slice.len,
                })
            }),
        })
    }

    async fn read_remote(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: u64,
        min_one: bool,
        wait: std::time::Duration,
    ) -> Result<Option<Vec<Bytes>>, BrokerError> {
        use crate::remote_log_manager::RemoteOutcome;
        let partition = self.leader_ref(topic, partition)?;
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| BrokerError::OffsetOutOfRange("no remote tier".into()))?;
        let read = remote
            .read_within(
                &self.cluster_id(),
                &partition,
                (offset.max(0) as u64, max_bytes, min_one),
                wait,
            )
            .await
            .map_err(|e| remote_error(&partition, e))?;
        match read {
            RemoteOutcome::Read(read) => Ok(Some(read.records)),
            RemoteOutcome::Pending => Ok(None),
            RemoteOutcome::NotRemote => Err(BrokerError::OffsetOutOfRange(format!(
                "offset {offset} is not in the remote tier"
            ))),
        }
    }

    async fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<OffsetAndTimestamp, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        let high_watermark = partition.high_watermark();
        let epoch = partition.leader_epoch();
        if let OffsetSpec::Timestamp(ts) = spec
            && let Some((offset, timestamp)) =
                self.remote_offset_for_timestamp(&partition, ts).await?
            && offset < partition.log().local_log_start_offset()
        {
            return Ok(OffsetAndTimestamp {
                offset: offset as i64,
                timestamp,
                leader_epoch: epoch,
            });
        }
        let log = partition.log();
        let found = |offset: u64, timestamp: i64| OffsetAndTimestamp {
            offset: offset as i64,
            timestamp,
            leader_epoch: epoch,
        };
        let none = OffsetAndTimestamp {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        };
        Ok(match spec {
            OffsetSpec::Latest => found(high_watermark, -1),
            OffsetSpec::Earliest => found(log.log_start_offset(), -1),
            OffsetSpec::EarliestLocal => found(log.local_log_start_offset(), -1),
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
        self.leader_ref(topic, partition).map(|p| p.leader_epoch())
    }

    fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Result<(i32, i64), BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        // One replica per partition: its log is never truncated by a leader change, so every
        // epoch up to the current one is answered with the log end (no client ever sees a
        // false truncation); later epochs are UNDEFINED (-1, -1), as in Kafka.
        if epoch <= partition.leader_epoch() {
            Ok((epoch, partition.log().log_end_offset() as i64))
        } else {
            Ok((-1, -1))
        }
    }

    fn init_producer_id(
        &self,
        existing: Option<(i64, i16)>,
    ) -> impl Future<Output = Result<(i64, i16), BrokerError>> + Send {
        self.next_producer_id(existing)
    }
}
