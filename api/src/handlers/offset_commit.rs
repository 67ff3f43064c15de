//! OffsetCommit (key 8): acknowledged once the offsets are fsync'd in `__consumer_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::{Committer, GroupCoordinator, OffsetToCommit};
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: OffsetCommitRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let group_id = request.group_id.to_string();
    let committer = Committer {
        transaction: None,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id_or_member_epoch,
    };
    let offsets: Vec<OffsetToCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let shape: Vec<(String, i32)> = offsets
        .iter()
        .map(|o| (o.topic.clone(), o.partition))
        .collect();
    if let Err(e) = ctx.check(Operation::Read, ResourceType::Group, &group_id) {
        let results = vec![Err(e); shape.len()];
        return ctx.respond(&response(shape, results));
    }
    // Offsets of topics the principal may not read are refused, the others committed.
    let mut readable = std::collections::HashMap::new();
    let allowed: Vec<bool> = offsets
        .iter()
        .map(|o| {
            *readable
                .entry(o.topic.clone())
                .or_insert_with(|| ctx.allowed(Operation::Read, ResourceType::Topic, &o.topic))
        })
        .collect();
    let offsets: Vec<OffsetToCommit> = offsets
        .into_iter()
        .zip(&allowed)
        .filter_map(|(o, ok)| ok.then_some(o))
        .collect();
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let committed = if offsets.is_empty() {
            Ok(Vec::new())
        } else {
            let count = offsets.len();
            broker
                .groups()
                .commit_offsets(&group_id, committer, offsets)
                .await
                .map_err(|e| (e, count))
        };
        let mut committed = match committed {
            Ok(results) => results.into_iter(),
            Err((e, count)) => vec![Err(e); count].into_iter(),
        };
        let results = allowed
            .into_iter()
            .map(|ok| match ok {
                true => committed.next().unwrap_or(Ok(())),
                false => Err(BrokerError::TopicAuthorizationFailed),
            })
            .collect();
        response(shape, results)
    }))
}

fn response(
    shape: Vec<(String, i32)>,
    results: Vec<Result<(), BrokerError>>,
) -> OffsetCommitResponse {
    let mut topics: Vec<OffsetCommitResponseTopic> = Vec::new();
    for ((topic, partition), result) in shape.into_iter().zip(results) {
        let entry = OffsetCommitResponsePartition::default()
            .with_partition_index(partition)
            .with_error_code(result.err().map_or(0, |e| e.code()));
        match topics.last_mut() {
            Some(last) if *last.name == *topic => last.partitions.push(entry),
            _ => topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}
