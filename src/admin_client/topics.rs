//! Topics: create, delete, configs, partitions, and a topic's partitions with their offsets
//! and sizes.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, DescribeLogDirsRequest, IncrementalAlterConfigsRequest,
    ListOffsetsRequest, TopicName,
};
use strata_api::model::{PartitionDetail, TopicConfig, TopicDetail};

use super::{AdminClient, ClusterMetadata, check, text};

/// Kafka's resource type of topics in config requests.
const TOPIC_RESOURCE: i8 = 2;
/// How long the controller may take to create or delete a topic.
const OPERATION_TIMEOUT_MS: i32 = 30_000;

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopicSpec {
    /// Its name.
    pub name: String,
    /// Partitions (`num.partitions` when absent).
    pub partitions: Option<i32>,
    /// Replication factor (`default.replication.factor` when absent).
    pub replication_factor: Option<i16>,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
}

fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

impl AdminClient {
    /// CreateTopics.
    pub async fn create_topic(&mut self, spec: &NewTopicSpec) -> anyhow::Result<()> {
        let topic = CreatableTopic::default()
            .with_name(TopicName(text(&spec.name)))
            .with_num_partitions(spec.partitions.unwrap_or(-1))
            .with_replication_factor(spec.replication_factor.unwrap_or(-1))
            .with_configs(
                spec.configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(OPERATION_TIMEOUT_MS);
        let response = self.call_any(5, &request).await?;
        for result in &response.topics {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("creating topic '{}'", spec.name)
            })?;
        }
        Ok(())
    }

    /// DeleteTopics.
    pub async fn delete_topic(&mut self, name: &str) -> anyhow::Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(text(name))])
            .with_timeout_ms(OPERATION_TIMEOUT_MS);
        let response = self.call_any(4, &request).await?;
        for result in &response.responses {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("deleting topic '{name}'")
            })?;
        }
        Ok(())
    }

    /// CreatePartitions: the topic grows to `total` partitions.
    pub async fn add_partitions(&mut self, name: &str, total: i32) -> anyhow::Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_count(total),
            ])
            .with_timeout_ms(OPERATION_TIMEOUT_MS);
        let response = self.call_any(3, &request).await?;
        for result in &response.results {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("growing topic '{name}' to {total} partitions")
            })?;
        }
        Ok(())
    }

    /// DescribeConfigs of a topic: every config with its value and source.
    pub async fn topic_configs(&mut self, name: &str) -> anyhow::Result<Vec<TopicConfig>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(text(name))
                .with_configuration_keys(None),
        ]);
        let response = self.call_any(4, &request).await?;
        let mut out = Vec::new();
        for result in response.results {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("describing the configs of topic '{name}'")
            })?;
            for c in result.configs {
                out.push(TopicConfig {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source: source_name(c.config_source).to_owned(),
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// IncrementalAlterConfigs of a topic: `set` these, `delete` those (back to defaults).
    pub async fn alter_topic_configs(
        &mut self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> anyhow::Result<()> {
        let mut configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(text(k))
                    .with_config_operation(0)
                    .with_value(Some(text(v)))
            })
            .collect();
        configs.extend(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(text(k))
                .with_config_operation(1)
                .with_value(None)
        }));
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(text(name))
                .with_configs(configs),
        ]);
        let response = self.call_any(1, &request).await?;
        for result in &response.responses {
            check(result.error_code, result.error_message.as_ref(), || {
                format!("altering the configs of topic '{name}'")
            })?;
        }
        Ok(())
    }

    /// ListOffsets at `timestamp` (-1 latest, -2 earliest, or a time in ms) of `partitions`,
    /// each from its leader. Partitions whose leader does not answer are left out.
    pub async fn list_offsets(
        &mut self,
        metadata: &ClusterMetadata,
        partitions: &[(String, i32)],
        timestamp: i64,
    ) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        let by_leader = Self::by_leader(metadata, partitions.iter().map(|(t, p)| (t.as_str(), *p)));
        let mut out = BTreeMap::new();
        for (addr, partitions) in by_leader {
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in &partitions {
                topics.entry(t).or_default().push(*p);
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(text(t)))
                                .with_partitions(
                                    ps.iter()
                                        .map(|p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(*p)
                                                .with_timestamp(timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let Ok(response) = self.call(&addr, 7, &request).await else {
                continue;
            };
            for topic in response.topics {
                for p in topic.partitions {
                    if p.error_code == 0 {
                        out.insert((topic.name.to_string(), p.partition_index), p.offset);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Bytes of each replica of `topics`, by (topic, partition, broker): DescribeLogDirs to
    /// every broker. Brokers that do not answer are left out.
    pub async fn replica_sizes(
        &mut self,
        metadata: &ClusterMetadata,
        topics: &[String],
    ) -> BTreeMap<(String, i32, i32), i64> {
        let request = DescribeLogDirsRequest::default().with_topics(Some(
            topics
                .iter()
                .filter_map(|t| metadata.topic(t))
                .map(|t| {
                    DescribableLogDirTopic::default()
                        .with_topic(TopicName(text(&t.name)))
                        .with_partitions(t.partitions.iter().map(|p| p.partition).collect())
                })
                .collect(),
        ));
        let mut out = BTreeMap::new();
        for broker in &metadata.brokers {
            let Ok(response) = self.call(&broker.addr, 4, &request).await else {
                continue;
            };
            for dir in response.results {
                for topic in dir.topics {
                    for p in topic.partitions {
                        out.insert(
                            (topic.name.to_string(), p.partition_index, broker.id),
                            p.partition_size,
                        );
                    }
                }
            }
        }
        out
    }

    /// A topic's partitions with their replicas, offsets and the leader's log size.
    pub async fn describe_topic(&mut self, name: &str) -> anyhow::Result<TopicDetail> {
        let metadata = self.metadata(Some(&[name.to_owned()])).await?;
        let topic = metadata
            .topic(name)
            .ok_or_else(|| anyhow::anyhow!("Metadata did not list topic '{name}'"))?
            .clone();
        let keys: Vec<(String, i32)> = topic
            .partitions
            .iter()
            .map(|p| (name.to_owned(), p.partition))
            .collect();
        let starts = self.list_offsets(&metadata, &keys, -2).await?;
        let ends = self.list_offsets(&metadata, &keys, -1).await?;
        let sizes = self.replica_sizes(&metadata, &[name.to_owned()]).await;
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let key = (name.to_owned(), p.partition);
                PartitionDetail {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    offline_replicas: p.offline.clone(),
                    log_start_offset: starts.get(&key).copied().unwrap_or(-1),
                    high_watermark: ends.get(&key).copied().unwrap_or(-1),
                    local_bytes: sizes
                        .get(&(name.to_owned(), p.partition, p.leader))
                        .copied()
                        .unwrap_or(-1),
                    remote_bytes: None,
                }
            })
            .collect();
        Ok(TopicDetail {
            name: topic.name.clone(),
            id: topic.id.to_string(),
            internal: topic.internal,
            replication_factor: topic.partitions.first().map_or(0, |p| p.replicas.len()),
            partitions,
            configs: Vec::new(),
        })
    }
}
