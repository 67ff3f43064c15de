//! Topic changes a broker receives (CreateTopics, DeleteTopics, CreatePartitions, configs) and
//! producer id blocks, sent to the active controller. The broker validates what only it can
//! (topic names, config values) and waits until its own image shows the change, so a client
//! that changed something sees it on the next request to the same broker.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_api::BrokerError;
use strata_api::broker::{NewTopic, PartitionMetadata, TopicMetadata};
use strata_controller::raft::WriteRefusal;
use strata_controller::raft::admin::{self, AdminAnswer, AdminRequest, Invalid};
use strata_controller::raft::client::{self, ClientError};
use uuid::Uuid;

use crate::broker::{
    MAX_PARTITIONS_PER_TOPIC, StrataBroker, check_partition_limit, validate_topic_name,
};

/// How long a request waits for this broker's image to show its change.
const APPLY_WAIT: Duration = Duration::from_secs(10);

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

impl StrataBroker {
    /// Sends `request` to the active controller and waits until this broker applied it.
    async fn admin(&self, request: AdminRequest) -> Result<AdminAnswer, BrokerError> {
        let reply = client::admin(&self.controllers, request)
            .await
            .map_err(from_client)?;
        self.wait_applied(reply.offset).await;
        Ok(reply.answer)
    }

    /// Waits (bounded) until the image has reached `offset`.
    pub(crate) async fn wait_applied(&self, offset: u64) {
        let mut applied = self.applied.subscribe();
        if tokio::time::timeout(APPLY_WAIT, applied.wait_for(|o| *o >= offset))
            .await
            .is_err()
        {
            tracing::warn!(offset, "metadata change committed but not applied here yet");
        }
    }

    pub(crate) async fn create_topic_in_quorum(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<TopicMetadata, BrokerError> {
        validate_topic_name(&topic.name)?;
        let partitions = topic.partitions.unwrap_or(self.config().num_partitions);
        if partitions <= 0 {
            return Err(BrokerError::InvalidPartitions(format!(
                "number of partitions must be larger than 0, got {partitions}"
            )));
        }
        check_partition_limit(partitions)?;
        let replication_factor = topic
            .replication_factor
            .unwrap_or(self.config().default_replication_factor);
        if replication_factor <= 0 {
            return Err(BrokerError::InvalidReplicationFactor(format!(
                "replication factor must be larger than 0, got {replication_factor}"
            )));
        }
        if replication_factor > 1 {
            return Err(BrokerError::InvalidReplicationFactor(format!(
                "replication factor {replication_factor}: Strata does not replicate partition \
                 data between brokers yet, so every partition has one replica; use 1"
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
        self.log_config(&topic.configs)?;
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
            let image = self.image();
            if let Some(created) = image.topic(&topic.name).filter(|t| t.id == topic_id) {
                return Ok(Self::topic_metadata(&image, created));
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

    pub(crate) async fn delete_topic_in_quorum(&self, name: String) -> Result<Uuid, BrokerError> {
        let topic_id = self
            .image()
            .topic_ids
            .get(&name)
            .copied()
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        self.admin(AdminRequest::DeleteTopic { name }).await?;
        Ok(topic_id)
    }

    pub(crate) async fn create_partitions_in_quorum(
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
        if !self.image().topic_ids.contains_key(&name) {
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

    /// Applies `change` to a topic's overrides, validates the result and commits it.
    pub(crate) async fn update_topic_configs(
        &self,
        name: String,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), BrokerError>,
    ) -> Result<(), BrokerError> {
        let mut overrides = self
            .image()
            .topic(&name)
            .map(|t| t.configs.clone())
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        change(&mut overrides)?;
        self.log_config(&overrides)?;
        if validate_only {
            return Ok(());
        }
        self.admin(AdminRequest::SetTopicConfigs {
            name,
            configs: overrides,
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
            && (0..self.image().next_producer_id).contains(&id)
        {
            return Ok((id, epoch + 1));
        }
        let mut block = self.producer_ids.lock().await;
        if block.0 >= block.1 {
            let answer = self
                .admin(AdminRequest::AllocateProducerIds {
                    broker_id: self.config().node_id,
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

impl StrataBroker {
    /// Recreates, with their ids, the topics the object store holds for this cluster but the
    /// metadata does not (`remote.log.restore.enable`): a new cluster rebuilt from the bucket
    /// alone serves their history. Returns the metadata offset that includes them.
    pub(crate) async fn restore_topics(&self) -> Result<u64, BrokerError> {
        let Some(remote) = self.remote().cloned() else {
            return Ok(0);
        };
        let cluster_id = self.image().cluster_id.clone().unwrap_or_default();
        let topics = strata_tiering::remote::list_topics(remote.store().as_ref(), &cluster_id)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?;
        let mut restored = 0;
        for topic in topics {
            if self.image().topic_ids.contains_key(&topic.name) {
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
