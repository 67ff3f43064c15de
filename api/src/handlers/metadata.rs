//! Metadata (key 3): brokers, cluster id, controller, topics and their partitions' leaders.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::{
    CLUSTER_OPERATIONS, Ctx, HandleError, TOPIC_OPERATIONS, authorized_operations, later, opt_str,
    str_bytes,
};
use crate::broker::{Broker, BrokerError, TopicMetadata};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: MetadataRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let all = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    // Before v4 clients could not opt out, and auto-creation was on whenever the broker allowed it.
    let auto_create =
        ctx.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let mut topics = Vec::new();
    let mut names = Vec::new();
    if !all {
        for topic in request.topics.unwrap_or_default() {
            // A topic asked for by id may come with an empty name rather than none (the Java
            // consumer resolving the topic ids of its assignment does that).
            match topic
                .name
                .filter(|n| !n.is_empty() || topic.topic_id.is_nil())
            {
                Some(name) => names.push(name.0.to_string()),
                None => match ctx.broker.topic_name(topic.topic_id) {
                    Some(name) => names.push(name),
                    None => topics.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(topic.topic_id)
                            .with_error_code(BrokerError::UnknownTopicId.code()),
                    ),
                },
            }
        }
    }
    // A named topic the principal may not describe is refused whether it exists or not, so
    // that refusals say nothing about which topics exist; auto-creation needs CREATE too.
    let may_create_any = ctx.visible(Operation::Create, ResourceType::Cluster, CLUSTER_NAME);
    let mut creatable = Vec::new();
    let mut existing_only = Vec::new();
    for name in names {
        if !ctx.allowed(Operation::Describe, ResourceType::Topic, &name) {
            topics.push(topic_entry(
                name,
                Err(BrokerError::TopicAuthorizationFailed),
                version,
            ));
        } else if auto_create
            && (may_create_any || ctx.visible(Operation::Create, ResourceType::Topic, &name))
        {
            creatable.push(name);
        } else {
            existing_only.push(name);
        }
    }
    let include_topic_operations = version >= 8 && request.include_topic_authorized_operations;
    let cluster_operations =
        if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
            ctx.authorized_operations(CLUSTER_OPERATIONS, ResourceType::Cluster, CLUSTER_NAME)
        } else {
            i32::MIN
        };
    let session = ctx.session.clone();
    let broker = Arc::clone(ctx.broker);
    let listener = session.listener.name.clone();
    Ok(later(ctx, async move {
        let found = if all {
            // Every topic the principal may describe.
            broker
                .topics(None, false)
                .await
                .into_iter()
                .filter(|(name, _)| {
                    broker.authorize(&session, Operation::Describe, ResourceType::Topic, name)
                })
                .collect()
        } else {
            let mut found = Vec::new();
            if !creatable.is_empty() {
                found.extend(broker.topics(Some(creatable), true).await);
            }
            if !existing_only.is_empty() {
                found.extend(broker.topics(Some(existing_only), false).await);
            }
            found
        };
        topics.extend(found.into_iter().map(|(name, result)| {
            let operations = match (&result, include_topic_operations) {
                (Ok(_), true) => authorized_operations(
                    broker.as_ref(),
                    &session,
                    TOPIC_OPERATIONS,
                    ResourceType::Topic,
                    &name,
                ),
                _ => i32::MIN,
            };
            topic_entry(name, result, version).with_topic_authorized_operations(operations)
        }));
        let cluster = broker.cluster(&listener);
        let brokers = cluster
            .brokers
            .into_iter()
            .map(|b| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(str_bytes(b.host))
                    .with_port(b.port)
                    .with_rack(if version >= 1 { opt_str(b.rack) } else { None })
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id((version >= 2).then(|| str_bytes(cluster.cluster_id)))
            .with_controller_id(BrokerId(if version >= 1 {
                cluster.controller_id
            } else {
                -1
            }))
            .with_topics(topics)
            .with_cluster_authorized_operations(cluster_operations)
    }))
}

/// Fields are set only on versions that carry them: the encoder refuses the others.
fn topic_entry(
    name: String,
    result: Result<TopicMetadata, BrokerError>,
    version: i16,
) -> MetadataResponseTopic {
    let topic = MetadataResponseTopic::default().with_name(Some(TopicName(str_bytes(name))));
    match result {
        Err(e) => topic.with_error_code(e.code()).with_topic_id(Uuid::nil()),
        Ok(meta) => {
            let partitions = meta
                .partitions
                .into_iter()
                .map(|p| {
                    let error = if p.leader < 0 {
                        BrokerError::LeaderNotAvailable.code()
                    } else {
                        0
                    };
                    let ids = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
                    MetadataResponsePartition::default()
                        .with_error_code(error)
                        .with_partition_index(p.index)
                        .with_leader_id(BrokerId(p.leader))
                        .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                        .with_replica_nodes(ids(p.replicas))
                        .with_isr_nodes(ids(p.isr))
                        .with_offline_replicas(if version >= 5 {
                            ids(p.offline_replicas)
                        } else {
                            Vec::new()
                        })
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
