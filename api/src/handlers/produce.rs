//! Produce (key 0): appends each partition's batch now, acknowledges once durable.
//!
//! Appends happen in the request's first phase, so batches of pipelined requests land in
//! order. A transactional batch that opens its transaction on a partition waits for the
//! coordinator (KIP-890) and is appended in the second phase, which runs request after
//! request; while one of a connection's requests waits so, that connection's later
//! transactional batches are appended in their second phase too, so that none overtakes it.
//! The acknowledgement waits for the fsync that the topic's flush policy requires; one fsync
//! covers every batch appended before it began (group commit). With `acks=0` no response is
//! sent at all, as Kafka does.

use std::time::Duration;

use bytes::Bytes;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Appended, Broker, BrokerError};
use crate::connection::Reply;
use crate::response::ResponseFrame;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::TransactionCoordinator;

/// Longest a produce waits for its fsync when the client's `timeout_ms` asks for more: a disk
/// that cannot fsync in this time is failing, and the client should hear about it.
use crate::metrics::{KAFKA, Purgatory};

const MAX_DURABLE_WAIT: Duration = Duration::from_secs(60);

/// Whether a produced batch is transactional (attribute bit 4 of its header).
fn is_transactional(records: &[u8]) -> bool {
    records.get(21..23).is_some_and(|a| a[1] & 0x10 != 0)
}

/// The producer id and epoch of a batch (none if too short to be one: the append refuses it).
fn producer_of(records: &[u8]) -> Option<(i64, i16)> {
    let id = i64::from_be_bytes(records.get(43..51)?.try_into().ok()?);
    let epoch = i16::from_be_bytes(records.get(51..53)?.try_into().ok()?);
    Some((id, epoch))
}

/// What the first phase did with a partition's batch.
enum Outcome {
    /// Appended, or refused.
    Done(Result<Appended, BrokerError>),
    /// A transactional batch opening its producer's transaction here: appended under `guard`
    /// once the coordinator confirms the partition is in the transaction (KIP-890).
    Verify { records: Bytes, guard: u64 },
    /// A batch of a transaction open here, appended in the second phase behind an earlier
    /// request of the connection that waits for verification.
    Deferred { records: Bytes },
}

/// One of a connection's requests with batches for its second phase; counted in the session
/// until it is settled (or dropped with its connection).
struct DeferredProduce(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl DeferredProduce {
    fn new(count: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(std::sync::Arc::clone(count))
    }
}

impl Drop for DeferredProduce {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A partition index and what became of its batch.
type PartitionOutcome = (i32, Outcome);

/// The error a produce gets for a coordinator's verification code (Kafka's mapping: what the
/// producer may retry is NOT_ENOUGH_REPLICAS; TRANSACTION_ABORTABLE only from v11).
fn verification_error(code: i16, version: i16) -> Option<BrokerError> {
    match code {
        0 => None,
        31 | 48 | 120 => {
            let message = "the partition was not added to the transaction".to_owned();
            Some(if version >= 11 {
                BrokerError::TransactionAbortable(message)
            } else {
                BrokerError::InvalidTxnState(message)
            })
        }
        47 | 90 => Some(BrokerError::InvalidProducerEpoch(
            "the producer epoch is not its transactional id's current one".into(),
        )),
        49 => Some(BrokerError::InvalidProducerIdMapping(
            "the producer id is not its transactional id's".into(),
        )),
        code => Some(BrokerError::NotEnoughReplicas(format!(
            "unable to verify the partition has been added to the transaction (error {code})"
        ))),
    }
}

/// Appends `records` (verified under `guard` if they were) and counts what was appended.
fn append_counted<B: Broker>(
    broker: &B,
    name: &str,
    index: i32,
    records: Bytes,
    acks: i16,
    guard: Option<u64>,
) -> Result<Appended, BrokerError> {
    let bytes = records.len() as u64;
    let appended = broker.append(name, index, records, acks, guard);
    if let Ok(a) = &appended {
        KAFKA.produced(name, bytes, (a.next_offset - a.base_offset).max(0) as u64);
    }
    appended
}

/// The second phase, in request order: each batch waiting on verification is appended if its
/// partition is in the transaction, else refused; each deferred batch is appended.
async fn settle<B: Broker>(
    broker: &B,
    results: &mut [(String, Vec<PartitionOutcome>)],
    verdict: Option<Result<Vec<i16>, BrokerError>>,
    acks: i16,
    version: i16,
) {
    let mut codes = match verdict {
        Some(Ok(codes)) => Ok(codes.into_iter()),
        Some(Err(e)) => Err(BrokerError::NotEnoughReplicas(format!(
            "unable to verify the partition has been added to the transaction: {e}"
        ))),
        None => Ok(Vec::new().into_iter()),
    };
    for (name, partitions) in results.iter_mut() {
        for (index, outcome) in partitions.iter_mut() {
            let result = match (&*outcome, &mut codes) {
                (Outcome::Done(_), _) => continue,
                (Outcome::Verify { .. }, Err(e)) => Err(e.clone()),
                (Outcome::Verify { records, guard }, Ok(codes)) => {
                    match verification_error(codes.next().unwrap_or(-1), version) {
                        Some(e) => Err(e),
                        None => append_counted(
                            broker,
                            name,
                            *index,
                            records.clone(),
                            acks,
                            Some(*guard),
                        ),
                    }
                }
                (Outcome::Deferred { records }, _) => append_counted(
                    broker,
                    name,
                    *index,
                    records.clone(),
                    acks,
                    Some(crate::broker::OPEN_TXN_GUARD),
                ),
            };
            *outcome = Outcome::Done(result);
        }
    }
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ProduceRequest,
) -> Result<Reply, HandleError> {
    let acks = request.acks;
    let transactional_allowed = request.transactional_id.as_ref().is_some_and(|id| {
        ctx.allowed(Operation::Write, ResourceType::TransactionalId, id.as_str())
    });
    let invalid_acks = !matches!(acks, -1..=1);
    // From v12 (transaction version 2) the producer sends no AddPartitionsToTxn: the
    // coordinator is asked to add the partition, whatever the verification setting.
    let add = ctx.version >= 12;
    let verify = ctx.config.txn_partition_verification || add;
    let deferred_produces = &ctx.session.deferred_produces;
    let behind = deferred_produces.load(std::sync::atomic::Ordering::Acquire) > 0;
    // The partitions awaiting verification, and their one producer.
    let mut to_verify: Vec<(String, i32)> = Vec::new();
    let mut verifying: Option<(i64, i16)> = None;
    // Whether a batch waits behind an earlier request, for the second phase.
    let mut any_deferred = false;
    let mut results: Vec<(String, Vec<PartitionOutcome>)> = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let writable = ctx.allowed(Operation::Write, ResourceType::Topic, &name);
        let mut partitions = Vec::new();
        for partition in topic.partition_data {
            let transactional = partition
                .records
                .as_ref()
                .is_some_and(|r| is_transactional(r));
            let result = if !writable {
                Err(BrokerError::TopicAuthorizationFailed)
            } else if invalid_acks {
                Err(BrokerError::InvalidRequest(format!(
                    "acks={acks} is not one of -1, 0, 1"
                )))
            } else if transactional && !transactional_allowed {
                // Transactional batches need WRITE on the producer's transactional id.
                Err(BrokerError::TransactionalIdAuthorizationFailed)
            } else if let Some((records, producer)) = partition
                .records
                .as_ref()
                .filter(|_| transactional && verify)
                .and_then(|r| Some((r.clone(), producer_of(r)?)))
            {
                match ctx.broker.start_txn_verification(
                    &name,
                    partition.index,
                    producer.0,
                    producer.1,
                ) {
                    Ok(Some(_)) if verifying.is_some_and(|v| v != producer) => {
                        Err(BrokerError::InvalidProducerIdMapping(
                            "a produce request carries batches of several producers".into(),
                        ))
                    }
                    Ok(Some(guard)) => {
                        verifying = Some(producer);
                        to_verify.push((name.clone(), partition.index));
                        partitions.push((partition.index, Outcome::Verify { records, guard }));
                        continue;
                    }
                    Ok(None) if behind => {
                        any_deferred = true;
                        partitions.push((partition.index, Outcome::Deferred { records }));
                        continue;
                    }
                    Ok(None) => append_counted(
                        &**ctx.broker,
                        &name,
                        partition.index,
                        records,
                        acks,
                        Some(crate::broker::OPEN_TXN_GUARD),
                    ),
                    Err(e) => Err(e),
                }
            } else {
                match partition.records {
                    Some(records) => {
                        append_counted(&**ctx.broker, &name, partition.index, records, acks, None)
                    }
                    None => Err(BrokerError::CorruptMessage(
                        "produce request without records".into(),
                    )),
                }
            };
            partitions.push((partition.index, Outcome::Done(result)));
        }
        results.push((name, partitions));
    }
    // The coordinator is asked at once; the batches are appended in the second phase, which
    // runs after every earlier request's, so a producer's pipelined batches stay in order.
    let verdict = verifying.map(|producer| {
        let broker = std::sync::Arc::clone(ctx.broker);
        let id = request
            .transactional_id
            .as_ref()
            .map(|id| id.0.to_string())
            .unwrap_or_default();
        tokio::spawn(async move {
            broker
                .txns()
                .verify_with_coordinator(id, producer, to_verify, add)
                .await
        })
    });
    let version = ctx.version;
    // Verified batches (their producer is `verifying`) and deferred ones settle in the second
    // phase.
    let second_phase = verifying.is_some() || any_deferred;
    let deferred = second_phase.then(|| DeferredProduce::new(deferred_produces));
    if acks == 0 {
        if let Some(deferred) = deferred {
            // Nobody hears the outcome; the batches are still only written once verified.
            let broker = std::sync::Arc::clone(ctx.broker);
            tokio::spawn(async move {
                let verdict = match verdict {
                    Some(v) => Some(v.await.unwrap_or(Err(BrokerError::CoordinatorNotAvailable))),
                    None => None,
                };
                settle(&*broker, &mut results, verdict, acks, version).await;
                drop(deferred);
            });
            return Ok(Reply::None);
        }
        // Nobody waits for these fsyncs, but the high watermark of fsync-before-ack topics
        // only moves with them: start them now rather than at the next scheduled flush.
        for (name, partitions) in results {
            for (index, outcome) in partitions {
                let Outcome::Done(result) = outcome else {
                    continue;
                };
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
    let (key, correlation_id) = (ctx.key, ctx.correlation_id);
    Ok(Reply::Later(Box::pin(async move {
        let mut results = results;
        if let Some(deferred) = deferred {
            let verdict = match verdict {
                Some(v) => Some(v.await.unwrap_or(Err(BrokerError::CoordinatorNotAvailable))),
                None => None,
            };
            settle(&*broker, &mut results, verdict, acks, version).await;
            drop(deferred);
        }
        // Every partition's wait runs at once: each fsyncs its own log (group commit), and a
        // request for hundreds of partitions must not queue their fsyncs one after another.
        let waits = results.into_iter().map(|(name, partitions)| {
            let broker = &broker;
            async move {
                let waits = partitions.into_iter().map(|(index, outcome)| {
                    let name = &name;
                    async move {
                        let result = match outcome {
                            Outcome::Done(result) => result,
                            Outcome::Verify { .. } | Outcome::Deferred { .. } => {
                                Err(BrokerError::NotEnoughReplicas(
                                    "the partition was not verified".into(),
                                ))
                            }
                        };
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
