//! A link's view of its source cluster, over the Kafka protocol only (the source may be
//! another Strata or Apache Kafka): its topics and partition leaders from Metadata, and
//! offsets from ListOffsets.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, bail};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ListOffsetsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use strata_controller::link::LinkConfig;

use crate::kafka_client::{Client, ClientSecurity};

/// How long connecting to a source broker or one request may take.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(10);
/// The client id a link's connections announce (source operators see it in their logs).
pub const CLIENT_ID: &str = "strata-cluster-link";

/// ListOffsets timestamps.
pub const EARLIEST: i64 = -2;
/// The high watermark (read_uncommitted).
pub const LATEST: i64 = -1;
/// The record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;

/// A source topic: its partitions' leaders (broker ids, -1 for none).
#[derive(Debug, Clone, Default)]
pub struct SourceTopic {
    /// Leader per partition index.
    pub leaders: BTreeMap<i32, i32>,
}

/// The source cluster's topics and brokers, as one Metadata answer gave them.
#[derive(Debug, Clone, Default)]
pub struct SourceMetadata {
    /// Broker id → `host:port`.
    pub brokers: HashMap<i32, String>,
    /// Topics by name (internal ones left out).
    pub topics: BTreeMap<String, SourceTopic>,
}

impl SourceMetadata {
    /// The address of the leader of `topic`'s `partition`, if it has one.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<&str> {
        let leader = *self.topics.get(topic)?.leaders.get(&partition)?;
        self.brokers.get(&leader).map(String::as_str)
    }
}

/// A link's source cluster: where it is and how to reach it (the link's `source_security`,
/// not this process's own client security, which is for its own cluster).
#[derive(Debug, Clone)]
pub struct Source {
    /// Bootstrap servers, comma-separated.
    pub bootstrap: String,
    /// TLS and SASL, as the link's settings say.
    pub security: ClientSecurity,
}

impl Source {
    /// The source of a link's settings; the error names the setting that does not work.
    pub fn of(config: &LinkConfig) -> anyhow::Result<Self> {
        Self::new(&config.source, &config.source_security.0)
    }

    /// The source at `bootstrap`, reached with the client properties `security`.
    pub fn new(bootstrap: &str, security: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        Ok(Self {
            bootstrap: bootstrap.to_owned(),
            security: ClientSecurity::from_properties(security)
                .context("the link's source settings")?,
        })
    }

    /// Connects to one of its brokers.
    pub async fn connect(&self, addr: &str) -> anyhow::Result<Client> {
        Client::connect_with(addr, CLIENT_ID, SOURCE_TIMEOUT, &self.security).await
    }

    /// Connects to the first bootstrap server that answers.
    pub async fn connect_any(&self) -> anyhow::Result<Client> {
        let mut last = None;
        for addr in (self.bootstrap.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match self.connect(addr).await {
                Ok(client) => return Ok(client),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no source address in '{}'", self.bootstrap)))
    }

    /// Every topic with its partition leaders.
    pub async fn metadata(&self) -> anyhow::Result<SourceMetadata> {
        metadata(self.connect_any().await?).await
    }
}

/// Every topic of the source cluster `client` talks to, with its partition leaders.
async fn metadata(mut client: Client) -> anyhow::Result<SourceMetadata> {
    let response = client
        .call(12, &MetadataRequest::default().with_topics(None))
        .await
        .context("Metadata from the source cluster")?;
    let mut out = SourceMetadata::default();
    for broker in &response.brokers {
        out.brokers
            .insert(broker.node_id.0, format!("{}:{}", broker.host, broker.port));
    }
    for topic in &response.topics {
        let Some(name) = topic.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        if topic.error_code != 0 || topic.is_internal || name.starts_with("__") {
            continue;
        }
        let leaders = topic
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        out.topics.insert(name, SourceTopic { leaders });
    }
    Ok(out)
}

/// What DescribeConfigs says of a source topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceConfigs {
    /// Its overrides (configs set on the topic, not defaults).
    pub overrides: BTreeMap<String, String>,
    /// The link and source topic it follows, when the source is a Strata mirror.
    pub mirror_of: Option<String>,
}

/// The configs of `topics` on the source, one DescribeConfigs for all.
pub async fn topic_configs(
    client: &mut Client,
    topics: &[String],
) -> anyhow::Result<BTreeMap<String, SourceConfigs>> {
    use kafka_protocol::messages::DescribeConfigsRequest;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    /// DescribeConfigs' resource type of a topic, and the config source of a topic override.
    const TOPIC: i8 = 2;
    const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let request = DescribeConfigsRequest::default().with_resources(
        topics
            .iter()
            .map(|t| {
                DescribeConfigsResource::default()
                    .with_resource_type(TOPIC)
                    .with_resource_name(StrBytes::from_string(t.clone()))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let response = client.call(4, &request).await?;
    let mut out = BTreeMap::new();
    for result in response.results {
        if result.error_code != 0 {
            continue;
        }
        let mut found = SourceConfigs::default();
        for entry in result.configs {
            let Some(value) = entry.value.map(|v| v.to_string()) else {
                continue;
            };
            if entry.name.as_str() == crate::cluster::configs::MIRROR_CONFIG {
                found.mirror_of = Some(value);
            } else if entry.config_source == DYNAMIC_TOPIC_CONFIG && !entry.is_sensitive {
                found.overrides.insert(entry.name.to_string(), value);
            }
        }
        out.insert(result.resource_name.to_string(), found);
    }
    Ok(out)
}

/// The offset ListOffsets answers for `timestamp` on `topic`'s `partition`, asked of its
/// leader over `client`: with the record's timestamp for [`MAX_TIMESTAMP`].
pub async fn list_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> anyhow::Result<(i64, i64)> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response = client.call(7, &request).await?;
    let data = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("ListOffsets answered no partition")?;
    if data.error_code != 0 {
        bail!(
            "ListOffsets for {topic}-{partition} answered error code {}",
            data.error_code
        );
    }
    Ok((data.offset, data.timestamp))
}
