//! OffsetDelete (key 47): forgets a group's offsets for partitions it no longer consumes.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, TopicName};

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::GroupCoordinator;

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
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        match broker.groups().delete_offsets(&group_id, &partitions).await {
            Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
            Ok(results) => {
                let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
                for (topic, partition, result) in results {
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
