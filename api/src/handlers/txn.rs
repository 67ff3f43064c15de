//! The transactional producer's APIs (KIP-98): AddPartitionsToTxn (key 24, client versions
//! 0–3), AddOffsetsToTxn (25), EndTxn (26; v5+ is KIP-890's transaction version 2, which
//! bumps the epoch at every commit or abort), and the admin's
//! DescribeTransactions (65) and ListTransactions (66, KIP-664). InitProducerId's
//! transactional path is in `init_producer_id`.
//!
//! PRODUCER_FENCED exists from AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2; older
//! versions are told INVALID_PRODUCER_EPOCH instead, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::*;

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::{TransactionCoordinator, TxnDescription};

/// An error's code for a request version without PRODUCER_FENCED.
pub(super) fn fenced_code(e: &BrokerError, version: i16, first_fenced_version: i16) -> i16 {
    match e {
        BrokerError::ProducerFenced(_) if version < first_fenced_version => {
            kafka_protocol::error::ResponseError::InvalidProducerEpoch.code()
        }
        e => e.code(),
    }
}

const OPERATION_NOT_ATTEMPTED: i16 = 55;

pub(super) fn add_partitions<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AddPartitionsToTxnRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let id = request.v3_and_below_transactional_id.0.to_string();
    let id_access = ctx.check(Operation::Write, ResourceType::TransactionalId, &id);
    let topics: Vec<(TopicName, Vec<i32>, Result<(), BrokerError>)> = request
        .v3_and_below_topics
        .into_iter()
        .map(|t| {
            let access = ctx.check(Operation::Write, ResourceType::Topic, t.name.0.as_str());
            (t.name, t.partitions, access)
        })
        .collect();
    let producer = (
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
    );
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let names: Vec<String> = topics.iter().map(|(n, _, _)| n.0.to_string()).collect();
        let known = broker.topics(Some(names), false).await;
        let exists = |topic: &str, partition: i32| {
            known.iter().any(|(name, found)| {
                name == topic
                    && found
                        .as_ref()
                        .is_ok_and(|m| m.partitions.iter().any(|p| p.index == partition))
            })
        };
        // Per partition: an error of its own, or None while the request may go on.
        let mut own: Vec<Vec<Option<i16>>> = Vec::new();
        for (name, partitions, access) in &topics {
            own.push(
                partitions
                    .iter()
                    .map(|p| match (&id_access, access) {
                        (Err(e), _) | (_, Err(e)) => Some(e.code()),
                        _ if !exists(name.0.as_str(), *p) => {
                            Some(BrokerError::UnknownTopicOrPartition.code())
                        }
                        _ => None,
                    })
                    .collect(),
            );
        }
        let any_error = own.iter().flatten().any(Option::is_some);
        let outcome = if any_error {
            None
        } else {
            let partitions = topics
                .iter()
                .flat_map(|(n, ps, _)| ps.iter().map(move |p| (n.0.to_string(), *p)))
                .collect();
            Some(
                broker
                    .txns()
                    .add_partitions(id.clone(), producer, partitions, false)
                    .await,
            )
        };
        let results = topics
            .into_iter()
            .zip(own)
            .map(|((name, partitions, _), own)| {
                let results = partitions
                    .into_iter()
                    .zip(own)
                    .map(|(index, own)| {
                        let code = match (&outcome, own) {
                            (_, Some(code)) => code,
                            (None, None) => OPERATION_NOT_ATTEMPTED,
                            (Some(Ok(())), None) => 0,
                            (Some(Err(e)), None) => fenced_code(e, version, 2),
                        };
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(index)
                            .with_partition_error_code(code)
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default()
                    .with_name(name)
                    .with_results_by_partition(results)
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
    }))
}

pub(super) fn add_offsets<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AddOffsetsToTxnRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let access = ctx
        .check(Operation::Write, ResourceType::TransactionalId, &id)
        .and_then(|()| ctx.check(Operation::Read, ResourceType::Group, &group));
    let producer = (request.producer_id.0, request.producer_epoch);
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let result = match access {
            Ok(()) => broker.txns().add_offsets(id, producer, group).await,
            Err(e) => Err(e),
        };
        AddOffsetsToTxnResponse::default()
            .with_error_code(result.err().map_or(0, |e| fenced_code(&e, version, 2)))
    }))
}

pub(super) fn end_txn<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: EndTxnRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let id = request.transactional_id.0.to_string();
    let access = ctx.check(Operation::Write, ResourceType::TransactionalId, &id);
    let producer = (request.producer_id.0, request.producer_epoch);
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        // v5+ is transaction version 2: the epoch is bumped, and the answer carries it.
        let tv2 = version >= 5;
        let result = match access {
            Ok(()) => {
                broker
                    .txns()
                    .end_txn(id, producer, request.committed, tv2)
                    .await
            }
            Err(e) => Err(e),
        };
        let (producer_id, epoch) = match &result {
            Ok(next) if tv2 => *next,
            _ => (-1, -1),
        };
        EndTxnResponse::default()
            .with_error_code(result.err().map_or(0, |e| fenced_code(&e, version, 2)))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
    }))
}

fn described(t: &TxnDescription) -> DescribedState {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, partition) in &t.partitions {
        match topics.iter_mut().find(|d| d.topic.0.as_str() == topic) {
            Some(d) => d.partitions.push(*partition),
            None => topics.push(
                TopicData::default()
                    .with_topic(TopicName(str_bytes(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    DescribedState::default()
        .with_transactional_id(TransactionalId(str_bytes(t.transactional_id.clone())))
        .with_transaction_state(str_bytes(t.state))
        .with_transaction_timeout_ms(t.timeout_ms)
        .with_transaction_start_time_ms(t.start_ms)
        .with_producer_id(ProducerId(t.producer_id))
        .with_producer_epoch(t.producer_epoch)
        .with_topics(topics)
}

pub(super) fn describe<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeTransactionsRequest,
) -> Result<Reply, HandleError> {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let name = id.0.to_string();
            let found = ctx
                .check(Operation::Describe, ResourceType::TransactionalId, &name)
                .and_then(|()| ctx.broker.txns().describe(&name));
            match found {
                Ok(t) => described(&t),
                Err(e) => DescribedState::default()
                    .with_transactional_id(id)
                    .with_error_code(e.code()),
            }
        })
        .collect();
    ctx.respond(&DescribeTransactionsResponse::default().with_transaction_states(states))
}

pub(super) fn list<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ListTransactionsRequest,
) -> Result<Reply, HandleError> {
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    let producers: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let pattern = match request
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(re),
            Err(e) => {
                return ctx.respond(&ListTransactionsResponse::default().with_error_code(
                    BrokerError::InvalidRequest(format!("transactional id pattern: {e}")).code(),
                ));
            }
        },
        None => None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let listed = ctx
        .broker
        .txns()
        .list()
        .into_iter()
        .filter(|t| states.is_empty() || states.iter().any(|s| s == t.state))
        .filter(|t| producers.is_empty() || producers.contains(&t.producer_id))
        // v1+: only transactions running longer than this.
        .filter(|t| {
            request.duration_filter < 0
                || (t.start_ms >= 0 && now - t.start_ms >= request.duration_filter)
        })
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|re| re.is_match(&t.transactional_id))
        })
        .filter(|t| {
            ctx.visible(
                Operation::Describe,
                ResourceType::TransactionalId,
                &t.transactional_id,
            )
        })
        .map(|t| {
            ListedState::default()
                .with_transactional_id(TransactionalId(str_bytes(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str_bytes(t.state))
        })
        .collect();
    ctx.respond(&ListTransactionsResponse::default().with_transaction_states(listed))
}
