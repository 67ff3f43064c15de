//! A Kafka admin client over the protocol: what `kafka-topics.sh`, `kafka-consumer-groups.sh`
//! and the Java AdminClient do, for the CLI (`strata topic`, `strata produce`, …) and the
//! admin HTTP API. It speaks only the Kafka protocol, so it works against any Kafka cluster:
//! metadata from any broker, each partition's offsets from its leader, each group from its
//! coordinator, log sizes from each broker.
//!
//! Errors the cluster answers are [`KafkaError`]s (a Kafka error code and what was asked),
//! so that callers can map them: the HTTP API to a status, the CLI to a message.

mod acls;
mod groups;
mod records;
mod topics;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::protocol::StrBytes;

use crate::kafka_client::Client;

pub use groups::OffsetReset;
pub use records::{Fetched, FetchedRecord, NewRecord, ProduceOptions};
pub use topics::NewTopicSpec;
pub use users::ScramUser;

/// How long connecting and one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The client id brokers see.
const CLIENT_ID: &str = "strata-admin";

/// An error code a broker answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{context}: {name}{}", message.as_ref().map_or(String::new(), |m| format!(" ({m})")))]
pub struct KafkaError {
    /// The Kafka error code.
    pub code: i16,
    /// Its name (`UNKNOWN_TOPIC_OR_PARTITION`).
    pub name: String,
    /// What was asked.
    pub context: String,
    /// The broker's message, if any.
    pub message: Option<String>,
}

impl KafkaError {
    /// A refusal decided on this side, with the code a broker would answer.
    pub fn refusal(code: i16, context: impl Into<String>) -> anyhow::Error {
        Self {
            code,
            name: strata_api::metrics::error_name(code),
            context: context.into(),
            message: None,
        }
        .into()
    }

    /// Whether it says the thing asked about does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            ResponseError::try_from_code(self.code),
            Some(
                ResponseError::UnknownTopicOrPartition
                    | ResponseError::GroupIdNotFound
                    | ResponseError::UnknownTopicId
            )
        )
    }

    /// Whether it says the request conflicts with the current state.
    pub fn is_conflict(&self) -> bool {
        matches!(
            ResponseError::try_from_code(self.code),
            Some(
                ResponseError::TopicAlreadyExists
                    | ResponseError::NonEmptyGroup
                    | ResponseError::UnknownMemberId
                    | ResponseError::RebalanceInProgress
                    | ResponseError::IllegalGeneration
            )
        )
    }

    /// Whether the request itself is wrong.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            ResponseError::try_from_code(self.code),
            Some(
                ResponseError::InvalidTopicException
                    | ResponseError::InvalidPartitions
                    | ResponseError::InvalidReplicationFactor
                    | ResponseError::InvalidReplicaAssignment
                    | ResponseError::InvalidConfig
                    | ResponseError::InvalidRequest
                    | ResponseError::PolicyViolation
                    | ResponseError::InvalidGroupId
                    | ResponseError::UnsupportedVersion
                    | ResponseError::TopicDeletionDisabled
                    | ResponseError::OffsetOutOfRange
                    | ResponseError::MessageTooLarge
                    | ResponseError::RecordListTooLarge
                    | ResponseError::CorruptMessage
                    | ResponseError::InvalidRecord
            )
        )
    }
}

/// `Err` with a [`KafkaError`] when `code` is not 0.
pub fn check(
    code: i16,
    message: Option<&StrBytes>,
    context: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    Err(KafkaError {
        code,
        name: strata_api::metrics::error_name(code),
        context: context(),
        message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
    }
    .into())
}

/// A protocol string.
pub(crate) fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// One broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Its id.
    pub id: i32,
    /// `host:port` of its Kafka listener.
    pub addr: String,
    /// Its rack.
    pub rack: Option<String>,
}

/// One partition as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Its index.
    pub partition: i32,
    /// Its leader, -1 for none.
    pub leader: i32,
    /// Its leader epoch.
    pub leader_epoch: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on brokers that are down.
    pub offline: Vec<i32>,
}

/// One topic as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: uuid::Uuid,
    /// Whether it is internal (`__consumer_offsets`).
    pub internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionMetadata>,
}

/// The cluster as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterMetadata {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller id Metadata gives (Kafka's KRaft brokers give a random broker).
    pub controller_id: i32,
    /// Live brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics, by name.
    pub topics: Vec<TopicMetadata>,
}

impl ClusterMetadata {
    /// A broker's address.
    pub fn addr_of(&self, id: i32) -> Option<&str> {
        self.brokers
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.addr.as_str())
    }

    /// A topic.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A connection pool to one cluster.
pub struct AdminClient {
    bootstrap: String,
    connections: HashMap<String, Client>,
}

impl AdminClient {
    /// A client of the cluster behind `bootstrap` (`host:port`, or several comma-separated).
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_owned(),
            connections: HashMap::new(),
        }
    }

    /// A connection to `addr`, opened once.
    pub(crate) async fn broker(&mut self, addr: &str) -> anyhow::Result<&mut Client> {
        if !self.connections.contains_key(addr) {
            let client = Client::connect_as(addr, CLIENT_ID, TIMEOUT).await?;
            self.connections.insert(addr.to_owned(), client);
        }
        self.connections
            .get_mut(addr)
            .context("the connection just opened")
    }

    /// A connection to any bootstrap server that answers.
    pub(crate) async fn any(&mut self) -> anyhow::Result<&mut Client> {
        let servers: Vec<String> = self
            .bootstrap
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let mut last = None;
        for addr in &servers {
            match Client::connect_as(addr, CLIENT_ID, TIMEOUT).await {
                Ok(client) => {
                    self.connections.insert(addr.clone(), client);
                    return self.broker(addr).await;
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no bootstrap server given")))
    }

    /// A call to any bootstrap server; a failed connection is dropped so the next call
    /// opens a new one.
    pub(crate) async fn call_any<R: kafka_protocol::protocol::Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        let result = self.any().await?.call(version, request).await;
        if result.is_err() {
            self.connections.clear();
        }
        result
    }

    /// A call to the broker at `addr`.
    pub(crate) async fn call<R: kafka_protocol::protocol::Request>(
        &mut self,
        addr: &str,
        version: i16,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        let result = self.broker(addr).await?.call(version, request).await;
        if result.is_err() {
            self.connections.remove(addr);
        }
        result
    }

    /// The cluster's brokers and `topics` (every topic for `None`).
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> anyhow::Result<ClusterMetadata> {
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(text(n)))))
                    .collect()
            }));
        let response = self.call_any(12, &request).await?;
        let mut out = ClusterMetadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .iter()
                .map(|b| BrokerInfo {
                    id: b.node_id.0,
                    addr: format!("{}:{}", b.host, b.port),
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
            topics: Vec::new(),
        };
        out.brokers.sort_by_key(|b| b.id);
        for topic in response.topics {
            let name = topic.name.as_ref().map_or(String::new(), |n| n.to_string());
            check(topic.error_code, None, || format!("topic '{name}'"))?;
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            out.topics.push(TopicMetadata {
                name,
                id: topic.topic_id,
                internal: topic.is_internal,
                partitions,
            });
        }
        out.topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The addresses of the leaders of `partitions`, grouping the partitions by leader.
    pub(crate) fn by_leader<'a>(
        metadata: &ClusterMetadata,
        partitions: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> BTreeMap<String, Vec<(String, i32)>> {
        let mut out: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let leader = metadata
                .topic(topic)
                .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
                .map(|p| p.leader);
            if let Some(addr) = leader.and_then(|l| metadata.addr_of(l)) {
                out.entry(addr.to_owned())
                    .or_default()
                    .push((topic.to_owned(), partition));
            }
        }
        out
    }
}
