//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions a page at a time,
//! so that an admin client can describe topics with more partitions than one response holds.
//! Topics come in name order; a cursor (topic, partition) says where the next page starts.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use uuid::Uuid;

use super::{Ctx, HandleError, TOPIC_OPERATIONS, authorized_operations, later, str_bytes};
use crate::broker::{Broker, BrokerError, PartitionMetadata};
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};

/// Most partitions one response describes (Kafka's `max.request.partition.size.limit`).
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

fn topic_error(name: String, e: &BrokerError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(name))))
        .with_topic_id(Uuid::nil())
        .with_error_code(e.code())
}

fn partition(p: PartitionMetadata) -> DescribeTopicPartitionsResponsePartition {
    let ids = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
    let error = if p.leader < 0 {
        BrokerError::LeaderNotAvailable.code()
    } else {
        0
    };
    DescribeTopicPartitionsResponsePartition::default()
        .with_error_code(error)
        .with_partition_index(p.index)
        .with_leader_id(BrokerId(p.leader))
        .with_leader_epoch(p.leader_epoch)
        .with_replica_nodes(ids(p.replicas))
        .with_isr_nodes(ids(p.isr))
        // Strata elects leaders from the ISR only: no eligible leader replicas (KIP-966).
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
        .with_offline_replicas(ids(p.offline_replicas))
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeTopicPartitionsRequest,
) -> Result<Reply, HandleError> {
    let all = request.topics.is_empty();
    let requested: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let cursor = request
        .cursor
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let cursor_topic = cursor.as_ref().map_or("", |c| c.0.as_str());
    let mut names = if all {
        ctx.broker.topic_names()
    } else {
        requested.clone()
    };
    names.retain(|n| n.as_str() >= cursor_topic);
    names.sort_unstable();
    names.dedup();
    let bad_cursor = match &cursor {
        Some((topic, _)) if !all && !names.contains(topic) => Some(format!(
            "the cursor's topic {topic} is not among the topics asked for"
        )),
        Some((_, partition)) if *partition < 0 => {
            Some(format!("the cursor's partition {partition} is negative"))
        }
        _ => None,
    };
    if let Some(why) = bad_cursor {
        // As Kafka answers a request it cannot serve: each topic asked for, with the error.
        let e = BrokerError::InvalidRequest(why);
        let topics = requested.into_iter().map(|n| topic_error(n, &e)).collect();
        return ctx.respond(&DescribeTopicPartitionsResponse::default().with_topics(topics));
    }
    // Topics named but not describable are refused whether they exist or not; when listing
    // all topics they are left out.
    let mut refused = Vec::new();
    names.retain(|name| {
        let allowed = ctx.allowed(Operation::Describe, ResourceType::Topic, name);
        if !allowed && !all {
            refused.push(topic_error(
                name.clone(),
                &BrokerError::TopicAuthorizationFailed,
            ));
        }
        allowed
    });
    let limit = request
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE) as usize;
    let broker = Arc::clone(ctx.broker);
    let session = ctx.session.clone();
    Ok(later(ctx, async move {
        let mut topics = Vec::new();
        let mut next_cursor = None;
        let mut remaining = limit;
        for name in names {
            if remaining == 0 {
                next_cursor = Some((name, 0));
                break;
            }
            let start = match &cursor {
                Some((topic, partition)) if *topic == name => *partition,
                _ => 0,
            };
            let Some((_, found)) = broker.topics(Some(vec![name.clone()]), false).await.pop()
            else {
                continue;
            };
            let meta = match found {
                Ok(meta) => meta,
                // A topic gone since the names were read is skipped when listing all.
                Err(e) if !all => {
                    topics.push(topic_error(name, &e));
                    continue;
                }
                Err(_) => continue,
            };
            let mut partitions: Vec<PartitionMetadata> = meta
                .partitions
                .into_iter()
                .filter(|p| p.index >= start)
                .collect();
            partitions.sort_unstable_by_key(|p| p.index);
            if partitions.len() > remaining {
                next_cursor = Some((name.clone(), partitions[remaining].index));
                partitions.truncate(remaining);
            }
            remaining -= partitions.len();
            let operations = authorized_operations(
                broker.as_ref(),
                &session,
                TOPIC_OPERATIONS,
                ResourceType::Topic,
                &name,
            );
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(TopicName(str_bytes(name))))
                    .with_topic_id(meta.topic_id)
                    .with_is_internal(meta.is_internal)
                    .with_partitions(partitions.into_iter().map(partition).collect())
                    .with_topic_authorized_operations(operations),
            );
            if next_cursor.is_some() {
                break;
            }
        }
        topics.extend(refused);
        DescribeTopicPartitionsResponse::default()
            .with_topics(topics)
            .with_next_cursor(next_cursor.map(|(topic, partition)| {
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(topic)))
                    .with_partition_index(partition)
            }))
    }))
}
