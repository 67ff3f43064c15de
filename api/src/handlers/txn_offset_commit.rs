//! TxnOffsetCommit (key 28, KIP-98/KIP-447): a transactional producer commits a consumer
//! group's offsets inside its transaction (`sendOffsetsToTransaction`). They are written to
//! `__consumer_offsets` in the transaction and count once it commits; until then, an
//! OffsetFetch that requires stable offsets is told UNSTABLE_OFFSET_COMMIT. From v5
//! (transaction version 2) the producer sends no AddOffsetsToTxn: the offsets partition joins
//! the transaction here, before the offsets are written.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TopicName, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::txn::fenced_code;
use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::{Committer, GroupCoordinator, OffsetToCommit};
use crate::security::acl::{Operation, ResourceType};
use crate::txn::TransactionCoordinator;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: TxnOffsetCommitRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let group_id = request.group_id.to_string();
    let transactional_id = request.transactional_id.to_string();
    // Generation and member exist from v3 (KIP-447); before, the commit is not checked
    // against the group.
    let committer = Committer {
        transaction: Some((request.producer_id.0, request.producer_epoch)),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id,
    };
    let offsets: Vec<OffsetToCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 2 {
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
    let refused = ctx
        .check(
            Operation::Write,
            ResourceType::TransactionalId,
            &transactional_id,
        )
        .and_then(|()| ctx.check(Operation::Read, ResourceType::Group, &group_id));
    if let Err(e) = refused {
        let results = vec![Err(e); shape.len()];
        return ctx.respond(&response(shape, results, version));
    }
    let allowed: Vec<bool> = offsets
        .iter()
        .map(|o| ctx.allowed(Operation::Read, ResourceType::Topic, &o.topic))
        .collect();
    let offsets: Vec<OffsetToCommit> = offsets
        .into_iter()
        .zip(&allowed)
        .filter_map(|(o, ok)| ok.then_some(o))
        .collect();
    let broker = Arc::clone(ctx.broker);
    let producer = (request.producer_id.0, request.producer_epoch);
    Ok(later(ctx, async move {
        let committed = if offsets.is_empty() {
            Ok(Vec::new())
        } else {
            let count = offsets.len();
            let joined = if version >= 5 {
                broker
                    .txns()
                    .add_offsets_partition(transactional_id, producer, group_id.clone())
                    .await
            } else {
                Ok(())
            };
            match joined {
                Ok(()) => broker
                    .groups()
                    .commit_offsets(&group_id, committer, offsets)
                    .await
                    .map_err(|e| (e, count)),
                Err(e) => Err((e, count)),
            }
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
        response(shape, results, version)
    }))
}

fn response(
    shape: Vec<(String, i32)>,
    results: Vec<Result<(), BrokerError>>,
    version: i16,
) -> TxnOffsetCommitResponse {
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = Vec::new();
    for ((topic, partition), result) in shape.into_iter().zip(results) {
        let entry = TxnOffsetCommitResponsePartition::default()
            .with_partition_index(partition)
            .with_error_code(result.err().map_or(0, |e| fenced_code(&e, version, 3)));
        match topics.last_mut() {
            Some(last) if *last.name == *topic => last.partitions.push(entry),
            _ => topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}
