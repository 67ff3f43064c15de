//! KIP-890 from the partition leader's side: asking a transactional id's coordinator, on
//! another broker, whether partitions are in the producer's open transaction
//! (AddPartitionsToTxn v5 with `verify_only`, the batched broker version), or, for a
//! version-2 producer, to add them (without `verify_only`).

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use strata_api::broker::BrokerError;

use crate::kafka_client::pool::BrokerConnections;
use crate::metadata_cache::MetadataCache;

/// The AddPartitionsToTxn version brokers send: v5 answers TRANSACTION_ABORTABLE.
const VERSION: i16 = 5;

/// The request verifying (or adding) `partitions` for one producer.
pub(super) fn request(
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
    partitions: &[(String, i32)],
    add: bool,
) -> AddPartitionsToTxnRequest {
    let topics = super::by_topic(partitions)
        .into_iter()
        .map(|(topic, indexes)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(indexes)
        })
        .collect();
    AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_owned(),
            )))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(!add)
            .with_topics(topics),
    ])
}

/// Asks `coordinator` (a broker id) to verify (or add) `partitions`: each partition's error
/// code, in order. `Err` when no answer came (the leader then tells its producer to retry).
pub(super) async fn ask(
    connections: &BrokerConnections,
    metadata: &MetadataCache,
    coordinator: i32,
    transactional_id: &str,
    producer: (i64, i16),
    partitions: &[(String, i32)],
    add: bool,
) -> Result<Vec<i16>, BrokerError> {
    let request = request(transactional_id, producer, partitions, add);
    let response = connections
        .call(metadata, coordinator, VERSION, &request)
        .await
        .map_err(|e| {
            tracing::debug!(coordinator, "transaction verification got no answer: {e:#}");
            BrokerError::CoordinatorNotAvailable
        })?;
    if response.error_code != 0 {
        return Ok(vec![response.error_code; partitions.len()]);
    }
    let results = response
        .results_by_transaction
        .iter()
        .find(|t| t.transactional_id.0.as_str() == transactional_id);
    Ok(partitions
        .iter()
        .map(|(topic, index)| {
            results
                .into_iter()
                .flat_map(|t| &t.topic_results)
                .filter(|t| t.name.0.as_str() == topic)
                .flat_map(|t| &t.results_by_partition)
                .find(|p| p.partition_index == *index)
                .map_or(BrokerError::CoordinatorNotAvailable.code(), |p| {
                    p.partition_error_code
                })
        })
        .collect())
}
