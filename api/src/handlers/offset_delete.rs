//! OffsetDelete (key 47): forgets a group's offsets for partitions it no longer consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: OffsetDeleteRequest,
) -> Result<Reply, HandleError> {
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let group_id = request.group_id.to_string();
    if let Err(e) = ctx.check(Operation::Delete, ResourceType::Group, &group_id) {
        return ctx.respond(&OffsetDeleteResponse::default().with_error_code(e.code()));
    }
    // Partitions of topics the principal may not read keep their offsets.
    let mut readable = std::collections::HashMap::new();
    let (partitions, denied): (Vec<_>, Vec<_>) = partitions.into_iter().partition(|(topic, _)| {
        *readable
            .entry(topic.clone())
            .or_insert_with(|| ctx.allowed(Operation::Read, ResourceType::Topic, topic))
    });
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let deleted = if partitions.is_empty() {
            Ok(Vec::new())
        } else {
            broker.groups().delete_offsets(&group_id, &partitions).await
        };
        match deleted {
            Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
            Ok(results) => {
                let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
                let refused = denied
                    .into_iter()
                    .map(|(t, p)| (t, p, Err(BrokerError::TopicAuthorizationFailed)));
                for (topic, partition, result) in results.into_iter().chain(refused) {
                    let entry = OffsetDeleteResponsePartition::default()
                        .with_partition_index(partition)
                        .with_error_code(result.err().map_or(0, |e| e.code()));
                    match topics.last_mut() {
                        Some(last) if *last.name == *topic => last.partitions.push(entry),
                        _ => topics.push(
                            OffsetDeleteResponseTopic::default()
                                .with_name(TopicName(str_bytes(topic)))
                                .with_partitions(vec![entry]),
                        ),
                    }
                }
                OffsetDeleteResponse::default().with_topics(topics)
            }
        }
    }))
}
