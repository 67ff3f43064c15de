//! AddPartitionsToTxn v4+ (KIP-890): the batched form brokers send to a transaction
//! coordinator, several producers' transactions per request. With `verify_only` it changes
//! nothing and answers whether each partition is in its producer's open transaction (a
//! partition leader asking before it writes a transaction's first batch); without, it adds
//! them for a transaction-version-2 producer, which sends no AddPartitionsToTxn of its own
//! (KIP-890 part 2). Brokers only: it needs CLUSTER_ACTION.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::{Ctx, HandleError, later};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};
use crate::txn::TransactionCoordinator;

/// The code of a partition the coordinator gave no answer for: not verified.
const UNVERIFIED: i16 = 120;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AddPartitionsToTxnRequest,
) -> Result<Reply, HandleError> {
    if let Err(e) = ctx.check(
        Operation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        return Ok(later(ctx, async move {
            AddPartitionsToTxnResponse::default().with_error_code(e.code())
        }));
    }
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let mut results = Vec::new();
        for txn in request.transactions {
            let id = txn.transactional_id.0.to_string();
            let producer = (txn.producer_id.0, txn.producer_epoch);
            let partitions: Vec<(String, i32)> = txn
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
                .collect();
            let codes: Vec<i16> = if txn.verify_only {
                broker
                    .txns()
                    .verify_partitions(&id, producer, &partitions)
                    .unwrap_or_else(|e| vec![e.code(); partitions.len()])
            } else {
                let added = broker
                    .txns()
                    .add_partitions(id.clone(), producer, partitions.clone(), true)
                    .await;
                vec![added.err().map_or(0, |e: BrokerError| e.code()); partitions.len()]
            };
            let mut codes = codes.into_iter();
            let topic_results = txn
                .topics
                .into_iter()
                .map(|topic| {
                    let results = topic
                        .partitions
                        .into_iter()
                        .map(|index| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(index)
                                .with_partition_error_code(codes.next().unwrap_or(UNVERIFIED))
                        })
                        .collect();
                    AddPartitionsToTxnTopicResult::default()
                        .with_name(topic.name)
                        .with_results_by_partition(results)
                })
                .collect();
            results.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(txn.transactional_id)
                    .with_topic_results(topic_results),
            );
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
    }))
}
