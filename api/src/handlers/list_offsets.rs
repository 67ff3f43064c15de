//! ListOffsets (key 2): earliest, latest, max-timestamp, earliest-local and by-timestamp lookups.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{Ctx, HandleError, check_leader_epoch, later};
use crate::broker::{Broker, BrokerError, Isolation, OffsetSpec};
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};

/// Maps Kafka's special timestamps to a lookup, refusing those newer than the request version.
fn spec(timestamp: i64, version: i16) -> Result<OffsetSpec, BrokerError> {
    Ok(match timestamp {
        -1 => OffsetSpec::Latest,
        -2 => OffsetSpec::Earliest,
        -3 if version >= 7 => OffsetSpec::MaxTimestamp,
        -4 if version >= 8 => OffsetSpec::EarliestLocal,
        t if t >= 0 => OffsetSpec::Timestamp(t),
        t => {
            return Err(BrokerError::InvalidRequest(format!(
                "timestamp {t} is not valid for ListOffsets v{version}"
            )));
        }
    })
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ListOffsetsRequest,
) -> Result<Reply, HandleError> {
    let (broker, version) = (Arc::clone(ctx.broker), ctx.version);
    // read_committed consumers are answered within the last stable offset (v2+).
    let isolation = Isolation::from_level(request.isolation_level);
    let allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| ctx.allowed(Operation::Describe, ResourceType::Topic, &t.name))
        .collect();
    Ok(later(ctx, async move {
        let mut topics = Vec::with_capacity(request.topics.len());
        for (topic, allowed) in request.topics.into_iter().zip(allowed) {
            let name = topic.name.0.to_string();
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in topic.partitions {
                let response =
                    ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                let checked = if allowed {
                    Ok(())
                } else {
                    Err(BrokerError::TopicAuthorizationFailed)
                };
                let checked = checked
                    .and_then(|()| spec(p.timestamp, version))
                    .and_then(|spec| {
                        check_leader_epoch(
                            broker.as_ref(),
                            &name,
                            p.partition_index,
                            p.current_leader_epoch,
                        )
                        .map(|_| spec)
                    });
                let result = match checked {
                    Ok(spec) => {
                        broker
                            .list_offset(&name, p.partition_index, spec, isolation)
                            .await
                    }
                    Err(e) => Err(e),
                };
                partitions.push(match result {
                    Ok(found) => {
                        let response = response
                            .with_offset(found.offset)
                            .with_timestamp(found.timestamp);
                        // Leader epochs exist in ListOffsets from v4 (KIP-320).
                        if version >= 4 {
                            response.with_leader_epoch(found.leader_epoch)
                        } else {
                            response
                        }
                    }
                    Err(e) => response
                        .with_error_code(e.code())
                        .with_offset(-1)
                        .with_timestamp(-1),
                });
            }
            topics.push(
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        ListOffsetsResponse::default().with_topics(topics)
    }))
}
