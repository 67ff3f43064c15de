//! Topic changes a broker receives (CreateTopics, DeleteTopics, CreatePartitions, configs) and
//! producer id blocks, sent to the active controller. The broker validates what only it can
//! (topic names, config values) and waits until its own image shows the change, so a client
//! that changed something sees it on the next request to the same broker.

use std::sync::Arc;

use strata_api::BrokerError;
use strata_api::broker::{NewTopic, PartitionMetadata, TopicMetadata};
use strata_controller::raft::WriteRefusal;
use strata_controller::raft::admin::{self, AdminAnswer, AdminRequest, Invalid, IsrChange};
use strata_controller::raft::client::{self, ClientError};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::metadata_cache::{MetadataCache, topic_metadata};
use crate::remote_log_manager::RemoteLogManager;

/// Longest topic name Kafka allows (so that `<topic>-<partition>` fits a file name).
const MAX_TOPIC_NAME_LEN: usize = 249;
/// Most partitions one topic may have: each costs a directory, open files and index mappings,
/// so an unchecked request could exhaust the broker.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Sends topic, config and producer id changes to the active controller.
#[derive(Debug)]
pub struct ClusterAdmin {
    pub(super) config: Arc<BrokerConfig>,
    /// Controller listeners to reach the quorum through.
    controllers: Vec<String>,
    pub(super) metadata: Arc<MetadataCache>,
    /// The producer id block handed to this broker: next id, end of the block.
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
}

/// The Kafka error a client should see for a failed quorum call.
fn from_client(e: ClientError) -> BrokerError {
    match e {
        ClientError::Refused(WriteRefusal::Invalid(invalid)) => match invalid {
            Invalid::TopicExists(name) => BrokerError::TopicAlreadyExists(name),
            Invalid::UnknownTopic(_) => BrokerError::UnknownTopicOrPartition,
            Invalid::Partitions(m) => BrokerError::InvalidPartitions(m),
            Invalid::ReplicationFactor(m) => BrokerError::InvalidReplicationFactor(m),
            Invalid::Assignment(m) => BrokerError::InvalidReplicaAssignment(m),
            Invalid::ClusterId(m) => BrokerError::InconsistentClusterId(m),
            Invalid::Request(m) => BrokerError::InvalidRequest(m),
        },
        other => BrokerError::ControllerUnavailable(format!("metadata quorum: {other}")),
    }
}

impl ClusterAdmin {
    /// An admin for the quorum behind `controllers`.
    pub fn new(
        config: Arc<BrokerConfig>,
        controllers: Vec<String>,
        metadata: Arc<MetadataCache>,
    ) -> Self {
        Self {
            config,
            controllers,
            metadata,
            producer_ids: tokio::sync::Mutex::new((0, 0)),
        }
    }

    /// The controller listeners.
    pub fn controllers(&self) -> &[String] {
        &self.controllers
    }

    /// Sends `request` to the active controller and waits until this broker applied it.
    pub(super) async fn admin(&self, request: AdminRequest) -> Result<AdminAnswer, BrokerError> {
        let reply = client::admin(&self.controllers, request)
            .await
            .map_err(from_client)?;
        self.metadata.wait_applied(reply.offset).await;
        Ok(reply.answer)
    }

    /// Sends `request` to the active controller (cluster links, epoch raises).
    pub(crate) async fn request(&self, request: AdminRequest) -> Result<AdminAnswer, BrokerError> {
        self.admin(request).await
    }

    /// CreateTopics (and auto-creation): validated here, placed by the controller.
    pub(crate) async fn create_topic(
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
        let assignments = if topic.assignments.is_empty() {
            Vec::new()
        } else {
            if !topic.assignments.keys().copied().eq(0..partitions) {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "the assignment must name partitions 0..{partitions} exactly once"
                )));
            }
            topic.assignments.into_values().collect()
        };
        super::configs::effective_config(&self.config, &topic.configs)?;
        let answer = self
            .admin(AdminRequest::CreateTopic(admin::NewTopic {
                name: topic.name.clone(),
                partitions: partitions as usize,
                replication_factor: replication_factor as usize,
                assignments,
                configs: topic.configs,
                validate_only,
                topic_id: None,
            }))
            .await?;
        let AdminAnswer::Topic { topic_id, .. } = answer else {
            return Err(BrokerError::ControllerUnavailable(
                "unexpected answer to CreateTopic".into(),
            ));
        };
        if !validate_only {
            let image = self.metadata.image();
            if let Some(created) = image.topic(&topic.name).filter(|t| t.id == topic_id) {
                return Ok(topic_metadata(&image, created));
            }
        }
        // Validated only (or not applied here yet): the shape without placement.
        Ok(TopicMetadata {
            name: topic.name.clone(),
            topic_id,
            partitions: (0..partitions)
                .map(|index| PartitionMetadata {
                    index,
                    leader: -1,
                    leader_epoch: 0,
                    replicas: vec![-1; replication_factor as usize],
                    isr: Vec::new(),
                    offline_replicas: Vec::new(),
                })
                .collect(),
            is_internal: topic.name.starts_with("__"),
        })
    }

    /// AlterPartition for the partitions this broker leads: asks the controller for their
    /// new ISRs in one request; returns, per change in order, why it was refused, if it was,
    /// once this broker's image has the accepted ones.
    pub(crate) async fn alter_partitions(
        &self,
        changes: Vec<IsrChange>,
    ) -> Result<Vec<Option<String>>, BrokerError> {
        match self.admin(AdminRequest::AlterPartitions(changes)).await? {
            AdminAnswer::IsrResults(results) => Ok(results),
            other => Err(BrokerError::ControllerUnavailable(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    /// DeleteTopics.
    pub(crate) async fn delete_topic(&self, name: String) -> Result<Uuid, BrokerError> {
        let topic_id = self
            .metadata
            .image()
            .topic_ids
            .get(&name)
            .copied()
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        self.admin(AdminRequest::DeleteTopic { name }).await?;
        Ok(topic_id)
    }

    /// CreatePartitions.
    pub(crate) async fn create_partitions(
        &self,
        name: String,
        count: i32,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        if count <= 0 || count > MAX_PARTITIONS_PER_TOPIC {
            check_partition_limit(count)?;
            return Err(BrokerError::InvalidPartitions(format!(
                "the new partition count {count} must be positive"
            )));
        }
        if !self.metadata.image().topic_ids.contains_key(&name) {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        self.admin(AdminRequest::CreatePartitions {
            name,
            count: count as usize,
            assignments,
            validate_only,
        })
        .await
        .map(|_| ())
    }

    /// A new producer id (from a block the controller handed this broker) or, for an existing
    /// producer, its next epoch (KIP-360).
    pub(crate) async fn next_producer_id(
        &self,
        existing: Option<(i64, i16)>,
    ) -> Result<(i64, i16), BrokerError> {
        if let Some((id, epoch)) = existing
            && (0..i16::MAX - 1).contains(&epoch)
            && (0..self.metadata.image().next_producer_id).contains(&id)
        {
            return Ok((id, epoch + 1));
        }
        let mut block = self.producer_ids.lock().await;
        // Ids reserved since the block was handed out belong to mirrored producers.
        if block.0 >= block.1 || block.0 < self.metadata.image().producer_id_floor {
            let answer = self
                .admin(AdminRequest::AllocateProducerIds {
                    broker_id: self.config.node_id,
                })
                .await?;
            let AdminAnswer::ProducerIds { start, end } = answer else {
                return Err(BrokerError::ControllerUnavailable(
                    "unexpected answer to AllocateProducerIds".into(),
                ));
            };
            *block = (start, end);
        }
        let id = block.0;
        block.0 += 1;
        Ok((id, 0))
    }
}

impl ClusterAdmin {
    /// Recreates, with their ids, the topics the object store holds for this cluster but the
    /// metadata does not (`remote.log.restore.enable`): a new cluster rebuilt from the bucket
    /// alone serves their history. Returns the metadata offset that includes them.
    pub(crate) async fn restore_topics(
        &self,
        remote: &RemoteLogManager,
    ) -> Result<u64, BrokerError> {
        let cluster_id = self.metadata.image().cluster_id.clone().unwrap_or_default();
        let topics = strata_tiering::remote::list_topics(remote.store().as_ref(), &cluster_id)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?;
        let mut restored = 0;
        for topic in topics {
            if self.metadata.image().topic_ids.contains_key(&topic.name) {
                continue;
            }
            let request = AdminRequest::CreateTopic(admin::NewTopic {
                name: topic.name.clone(),
                partitions: topic.partitions.max(1) as usize,
                replication_factor: 1,
                assignments: Vec::new(),
                configs: topic.configs.clone(),
                validate_only: false,
                topic_id: Some(topic.topic_id),
            });
            // Not `self.admin`: this runs while joining, before the metadata is followed.
            match client::admin(&self.controllers, request)
                .await
                .map_err(from_client)
            {
                Ok(reply) => {
                    tracing::info!(topic = %topic.name, id = %topic.topic_id, "restored topic from the object store");
                    restored = restored.max(reply.offset);
                }
                Err(BrokerError::TopicAlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(restored)
    }
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
