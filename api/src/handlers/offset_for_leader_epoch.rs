//! OffsetForLeaderEpoch (key 23): where a leader epoch ended, for truncation checks (KIP-320).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{Ctx, HandleError, check_leader_epoch};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: OffsetForLeaderEpochRequest,
) -> Result<Reply, HandleError> {
    // Followers ask with CLUSTER_ACTION; consumers (KIP-320) need DESCRIBE on the topic.
    let replica = ctx.visible(
        Operation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let allowed = replica || ctx.allowed(Operation::Describe, ResourceType::Topic, &name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = EpochEndOffset::default().with_partition(p.partition);
                    let result = if allowed {
                        check_leader_epoch(
                            ctx.broker.as_ref(),
                            &name,
                            p.partition,
                            p.current_leader_epoch,
                        )
                    } else {
                        Err(crate::broker::BrokerError::TopicAuthorizationFailed)
                    };
                    let result = result.and_then(|_| {
                        ctx.broker
                            .end_offset_for_epoch(&name, p.partition, p.leader_epoch)
                    });
                    match result {
                        Ok((epoch, end_offset)) => response
                            .with_leader_epoch(epoch)
                            .with_end_offset(end_offset),
                        Err(e) => response
                            .with_error_code(e.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    ctx.respond(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
