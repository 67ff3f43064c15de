//! Produce (key 0): appends each partition's batch now, acknowledges once durable.
//!
//! Appends happen in the request's first phase, so batches of pipelined requests land in
//! order. The acknowledgement waits for the fsync that the topic's flush policy requires; one
//! fsync covers every batch appended before it began (group commit). With `acks=0` no response
//! is sent at all, as Kafka does.

use std::time::Duration;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Appended, Broker, BrokerError};
use crate::connection::Reply;
use crate::response::ResponseFrame;
use crate::security::acl::{Operation, ResourceType};

/// Longest a produce waits for its fsync when the client's `timeout_ms` asks for more: a disk
/// that cannot fsync in this time is failing, and the client should hear about it.
use crate::metrics::{KAFKA, Purgatory};

const MAX_DURABLE_WAIT: Duration = Duration::from_secs(60);

/// Whether a produced batch is transactional (attribute bit 4 of its header).
fn is_transactional(records: &[u8]) -> bool {
    records.get(21..23).is_some_and(|a| a[1] & 0x10 != 0)
}

/// A partition index and what appending its batch gave.
type PartitionOutcome = (i32, Result<Appended, BrokerError>);

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ProduceRequest,
) -> Result<Reply, HandleError> {
    let acks = request.acks;
    let transactional_allowed = request.transactional_id.as_ref().is_some_and(|id| {
        ctx.allowed(Operation::Write, ResourceType::TransactionalId, id.as_str())
    });
    let invalid_acks = !matches!(acks, -1..=1);
    let mut results: Vec<(String, Vec<PartitionOutcome>)> = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let writable = ctx.allowed(Operation::Write, ResourceType::Topic, &name);
        let mut partitions = Vec::new();
        for partition in topic.partition_data {
            let result = if !writable {
                Err(BrokerError::TopicAuthorizationFailed)
            } else if invalid_acks {
                Err(BrokerError::InvalidRequest(format!(
                    "acks={acks} is not one of -1, 0, 1"
                )))
            } else if partition
                .records
                .as_ref()
                .is_some_and(|r| is_transactional(r))
                && !transactional_allowed
            {
                // Transactional batches need WRITE on the producer's transactional id.
                Err(BrokerError::TransactionalIdAuthorizationFailed)
            } else {
                match partition.records {
                    Some(records) => {
                        let bytes = records.len() as u64;
                        let appended = ctx.broker.append(&name, partition.index, records, acks);
                        if let Ok(a) = &appended {
                            let count = (a.next_offset - a.base_offset).max(0) as u64;
                            KAFKA.produced(&name, bytes, count);
                        }
                        appended
                    }
                    None => Err(BrokerError::CorruptMessage(
                        "produce request without records".into(),
                    )),
                }
            };
            partitions.push((partition.index, result));
        }
        results.push((name, partitions));
    }
    if acks == 0 {
        // Nobody waits for these fsyncs, but the high watermark of fsync-before-ack topics
        // only moves with them: start them now rather than at the next scheduled flush.
        for (name, partitions) in results {
            for (index, result) in partitions {
                if let Some(appended) = result.ok().filter(|a| a.must_wait) {
                    let broker = std::sync::Arc::clone(ctx.broker);
                    let name = name.clone();
                    tokio::spawn(async move {
                        if let Err(e) = broker
                            .wait_acked(&name, index, appended.next_offset, 0)
                            .await
                        {
                            tracing::warn!(topic = %name, partition = index, "fsync after acks=0 produce failed: {e}");
                        }
                    });
                }
            }
        }
        return Ok(Reply::None);
    }
    let broker = std::sync::Arc::clone(ctx.broker);
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64).min(MAX_DURABLE_WAIT);
    let (key, version, correlation_id) = (ctx.key, ctx.version, ctx.correlation_id);
    Ok(Reply::Later(Box::pin(async move {
        // Every partition's wait runs at once: each fsyncs its own log (group commit), and a
        // request for hundreds of partitions must not queue their fsyncs one after another.
        let waits = results.into_iter().map(|(name, partitions)| {
            let broker = &broker;
            async move {
                let waits = partitions.into_iter().map(|(index, result)| {
                    let name = &name;
                    async move {
                        let result = match result {
                            Ok(appended) if appended.must_wait => {
                                let _waiting = KAFKA.waiting(Purgatory::Produce);
                                match tokio::time::timeout(
                                    timeout,
                                    broker.wait_acked(name, index, appended.next_offset, acks),
                                )
                                .await
                                {
                                    Ok(Ok(())) => Ok(appended),
                                    Ok(Err(e)) => Err(e),
                                    Err(_) => Err(BrokerError::RequestTimedOut(format!(
                                        "not acknowledged within {} ms",
                                        timeout.as_millis()
                                    ))),
                                }
                            }
                            other => other,
                        };
                        partition_response(index, result, version)
                    }
                });
                let partition_responses = futures::future::join_all(waits).await;
                TopicProduceResponse::default()
                    .with_name(kafka_protocol::messages::TopicName(str_bytes(name)))
                    .with_partition_responses(partition_responses)
            }
        });
        let responses = futures::future::join_all(waits).await;
        let response = ProduceResponse::default().with_responses(responses);
        KAFKA.count_errors(key, &response);
        let bytes = super::encode_response(key, version, correlation_id, &response)?;
        Ok(ResponseFrame::bytes(bytes.freeze()))
    })))
}

/// Log start offsets exist from v5 and error messages from v8; the encoder refuses them before.
fn partition_response(
    index: i32,
    result: Result<Appended, BrokerError>,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(appended) => response
            .with_base_offset(appended.base_offset)
            .with_log_append_time_ms(appended.log_append_time)
            .with_log_start_offset(if version >= 5 {
                appended.log_start_offset
            } else {
                -1
            }),
        Err(e) => {
            // KIP-467 (v8+): which records of the batch were at fault.
            let record_errors = match &e {
                BrokerError::InvalidRecords { records, .. } if version >= 8 => records
                    .iter()
                    .map(|(index, message)| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(*index)
                            .with_batch_index_error_message(Some(str_bytes(message.clone())))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            response
                .with_error_code(e.code())
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_record_errors(record_errors)
                .with_error_message(if version >= 8 {
                    e.message().map(str_bytes)
                } else {
                    None
                })
        }
    }
}
