//! Metadata (key 3): brokers, cluster id, controller, topics and their partitions' leaders.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError, TopicMetadata};
use crate::connection::Reply;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: MetadataRequest,
) -> Result<Reply, HandleError> {
    let cluster = ctx.broker.cluster();
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let all = match &request.topics {
        None => true,
        Some(topics) => ctx.version == 0 && topics.is_empty(),
    };
    // Before v4 clients could not opt out, and auto-creation was on whenever the broker allowed it.
    let auto_create =
        ctx.config.auto_create_topics && (ctx.version < 4 || request.allow_auto_topic_creation);
    let mut topics = Vec::new();
    if all {
        for (name, result) in ctx.broker.topics(None, false) {
            topics.push(topic_entry(name, result, cluster.node_id, ctx.version));
        }
    } else {
        let mut names = Vec::new();
        for topic in request.topics.unwrap_or_default() {
            match topic.name {
                Some(name) => names.push(name.0.to_string()),
                None => {
                    let result = ctx
                        .broker
                        .topic_name(topic.topic_id)
                        .ok_or(BrokerError::UnknownTopicId);
                    match result {
                        Ok(name) => names.push(name),
                        Err(e) => topics.push(
                            MetadataResponseTopic::default()
                                .with_topic_id(topic.topic_id)
                                .with_error_code(e.code()),
                        ),
                    }
                }
            }
        }
        for (name, result) in ctx.broker.topics(Some(&names), auto_create) {
            topics.push(topic_entry(name, result, cluster.node_id, ctx.version));
        }
    }
    let version = ctx.version;
    let response = MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(cluster.node_id))
                .with_host(str_bytes(cluster.host))
                .with_port(cluster.port),
        ])
        .with_cluster_id((version >= 2).then(|| str_bytes(cluster.cluster_id)))
        .with_controller_id(BrokerId(if version >= 1 {
            cluster.controller_id
        } else {
            -1
        }))
        .with_topics(topics);
    ctx.respond(&response)
}

/// Fields are set only on versions that carry them: the encoder refuses the others.
fn topic_entry(
    name: String,
    result: Result<TopicMetadata, BrokerError>,
    node_id: i32,
    version: i16,
) -> MetadataResponseTopic {
    let topic = MetadataResponseTopic::default().with_name(Some(TopicName(str_bytes(name))));
    match result {
        Err(e) => topic.with_error_code(e.code()).with_topic_id(Uuid::nil()),
        Ok(meta) => {
            let partitions = (0..meta.partitions)
                .map(|index| {
                    MetadataResponsePartition::default()
                        .with_partition_index(index)
                        .with_leader_id(BrokerId(node_id))
                        .with_leader_epoch(if version >= 7 { meta.leader_epoch } else { -1 })
                        .with_replica_nodes(vec![BrokerId(node_id)])
                        .with_isr_nodes(vec![BrokerId(node_id)])
                })
                .collect();
            topic
                .with_topic_id(if version >= 10 {
                    meta.topic_id
                } else {
                    Uuid::nil()
                })
                .with_is_internal(version >= 1 && meta.is_internal)
                .with_partitions(partitions)
        }
    }
}
