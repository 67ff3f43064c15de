//! Fetch (key 1): record bytes straight from segment files, with long polling.
//!
//! The response waits up to `max_wait_ms` until `min_bytes` are available, woken only by
//! changes of its own partitions (see [`crate::broker::DataChanges`]).
//! `max_bytes` (at most the broker's `fetch.max.bytes`) bounds the response and
//! `partition_max_bytes` each partition, except that the
//! first batch of the first partition with data is always returned whole (KIP-74), so a batch
//! larger than the limits cannot stall a consumer. Fetch sessions (KIP-227) are not created:
//! the response's session id 0 tells clients to send full fetches, which every client supports.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use tokio::time::Instant;
use uuid::Uuid;

use super::fetch_encode::{self, EncodeCtx};
use super::{Ctx, HandleError};
use crate::broker::{Broker, BrokerError, DataChanges, FetchWaker, Reader, Records, ReplicaFetch};
use crate::connection::Reply;
use crate::metrics::{KAFKA, Purgatory};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// Longest a fetch may park, whatever the client asks: bounds how long shutdown can wait.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

/// First Fetch version that names topics by id.
const FIRST_TOPIC_ID_VERSION: i16 = 13;

struct PlannedTopic {
    name: Option<String>,
    /// Refused by the authorizer.
    denied: bool,
    request_name: TopicName,
    topic_id: Uuid,
    partitions: Vec<PlannedPartition>,
}

struct PlannedPartition {
    index: i32,
    fetch_offset: i64,
    partition_max_bytes: u64,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    log_start_offset: i64,
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: FetchRequest,
) -> Result<Reply, HandleError> {
    let encode_ctx = EncodeCtx::from(ctx);
    let version = ctx.version;
    if request.session_id != 0 {
        let response = FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return ctx.respond(&response);
    }
    let by_id = ctx.version >= FIRST_TOPIC_ID_VERSION;
    // Followers name themselves in `replica_id` up to v14 and in `replica_state` from v15.
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    // Replica fetches need CLUSTER_ACTION: a client can never pose as a replica, which
    // would move the high watermark and the ISR (CVE-2018-1288).
    let replica_allowed = replica_id < 0
        || ctx.allowed(
            Operation::ClusterAction,
            ResourceType::Cluster,
            CLUSTER_NAME,
        );
    let plan: Vec<PlannedTopic> = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = if by_id {
                ctx.broker.topic_name(topic.topic_id)
            } else {
                Some(topic.topic.0.to_string())
            };
            let denied = match (&name, replica_id < 0) {
                (_, false) => !replica_allowed,
                (Some(name), true) => !ctx.allowed(Operation::Read, ResourceType::Topic, name),
                (None, true) => false,
            };
            (topic, name, denied)
        })
        .map(|(topic, name, denied)| PlannedTopic {
            name,
            denied,
            request_name: topic.topic,
            topic_id: topic.topic_id,
            partitions: topic
                .partitions
                .into_iter()
                .map(|p| PlannedPartition {
                    index: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes.max(0) as u64,
                    current_leader_epoch: p.current_leader_epoch,
                    last_fetched_epoch: p.last_fetched_epoch,
                    log_start_offset: p.log_start_offset,
                })
                .collect(),
        })
        .collect();
    // KIP-392: a consumer's rack, from v11.
    let rack = (version >= 11 && replica_id < 0)
        .then(|| request.rack_id.to_string())
        .filter(|r| !r.is_empty());
    let broker = Arc::clone(ctx.broker);
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as u64
    } else {
        request.max_bytes as u64
    }
    .min(broker.fetch_max_bytes());
    let min_bytes = request.min_bytes.max(0) as u64;
    let deadline = Instant::now()
        + Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_FETCH_WAIT);
    let remote_wait = ctx.config.remote_fetch_max_wait;
    Ok(Reply::Later(Box::pin(async move {
        loop {
            // Each read registers this fetch with its partition before it looks at the high
            // watermark, so a change between the read and the wait still wakes it; only
            // changes of its own partitions do.
            let waker = Arc::new(FetchWaker::default());
            let changes = DataChanges::new(Arc::clone(&waker));
            let (mut response, mut regions, counts, bytes, errors) = read_all(
                broker.as_ref(),
                &plan,
                (max_bytes, version, replica_id),
                (&waker, rack.as_deref()),
            );
            let remote = regions.iter().any(|r| matches!(r, Some(Records::Remote)));
            if remote {
                read_remote(
                    broker.as_ref(),
                    &plan,
                    &mut response,
                    &mut regions,
                    (max_bytes.saturating_sub(bytes), remote_wait),
                )
                .await;
            }
            if remote || bytes >= min_bytes || errors || Instant::now() >= deadline {
                if replica_id < 0 {
                    count_fetched(&plan, &regions, &counts);
                }
                return fetch_encode::encode(&encode_ctx, response, regions);
            }
            let _waiting = KAFKA.waiting(Purgatory::Fetch);
            tokio::select! {
                _ = changes.changed() => {}
                // Nothing changed in these partitions since the read: it is the answer, as
                // Kafka completes an expired delayed fetch.
                _ = tokio::time::sleep_until(deadline) => {
                    if replica_id < 0 {
                        count_fetched(&plan, &regions, &counts);
                    }
                    return fetch_encode::encode(&encode_ctx, response, regions);
                }
            }
        }
    })))
}

/// Replaces each pending remote read by its bytes, or by the partition's error if it failed.
/// The reads run concurrently (each may wait for the object store), sharing `budget` equally;
/// the first of them returns at least one batch if no partition before it has records.
///
/// A read not done within `wait` (`remote.fetch.max.wait.ms`) leaves its partition empty,
/// without an error, as Kafka answers an expired remote fetch (KIP-1018): the client asks
/// again, and the read goes on in the background, so the chunks it fetches are cached by then.
async fn read_remote<B: Broker>(
    broker: &B,
    plan: &[PlannedTopic],
    response: &mut FetchResponse,
    regions: &mut [Option<Records>],
    (budget, wait): (u64, Duration),
) {
    // (slot, topic index, partition index, topic name, partition) of each pending read.
    let mut pending = Vec::new();
    let mut first = None;
    let mut records_before = false;
    let mut slot = 0;
    for (t, topic) in plan.iter().enumerate() {
        for (i, p) in topic.partitions.iter().enumerate() {
            let index = slot;
            slot += 1;
            if !matches!(regions[index], Some(Records::Remote)) {
                records_before |= regions[index].as_ref().is_some_and(|r| !r.is_empty());
                continue;
            }
            let Some(name) = topic.name.as_deref() else {
                regions[index] = None;
                continue;
            };
            if first.is_none() && !records_before {
                first = Some(pending.len());
            }
            pending.push((index, t, i, name, p));
        }
    }
    let share = budget / pending.len().max(1) as u64;
    let reads = pending.iter().enumerate().map(|(n, (_, _, _, name, p))| {
        let limit = p.partition_max_bytes.min(share);
        broker.read_remote(name, p.index, p.fetch_offset, limit, first == Some(n), wait)
    });
    let reads = futures::future::join_all(reads).await;
    for ((index, t, i, name, p), read) in pending.into_iter().zip(reads) {
        regions[index] = match read {
            Ok(Some(records)) if !records.is_empty() => Some(Records::Memory(records)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(topic = name, partition = p.index, "remote read failed: {e}");
                let data = &mut response.responses[t].partitions[i];
                data.error_code = e.code();
                data.high_watermark = -1;
                data.last_stable_offset = -1;
                data.log_start_offset = -1;
                None
            }
        };
    }
}

fn read_all<B: Broker>(
    broker: &B,
    plan: &[PlannedTopic],
    (max_bytes, version, replica_id): (u64, i16, i32),
    (waker, rack): (&Arc<FetchWaker>, Option<&str>),
) -> (FetchResponse, Vec<Option<Records>>, Vec<u64>, u64, bool) {
    let by_id = version >= FIRST_TOPIC_ID_VERSION;
    let mut total = 0u64;
    let mut errors = false;
    let mut regions = Vec::new();
    let mut counts = Vec::new();
    let mut topics = Vec::with_capacity(plan.len());
    for topic in plan {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let mut data = PartitionData::default().with_partition_index(p.index);
            // A consumer in another rack than this leader is sent to a replica in its own
            // (KIP-392): no records, the replica to fetch from, and an answer at once.
            let preferred = match (&topic.name, rack) {
                (Some(name), Some(rack)) if !topic.denied => {
                    broker.preferred_read_replica(name, p.index, rack)
                }
                _ => None,
            };
            if let Some(replica) = preferred {
                data = data.with_preferred_read_replica(BrokerId(replica));
                errors = true;
            }
            let read = match &topic.name {
                _ if topic.denied => Err(BrokerError::TopicAuthorizationFailed),
                None => Err(BrokerError::UnknownTopicId),
                Some(name) => {
                    let budget = if preferred.is_some() {
                        0
                    } else {
                        p.partition_max_bytes.min(max_bytes.saturating_sub(total))
                    };
                    broker.read(
                        name,
                        p.index,
                        p.fetch_offset,
                        (budget, total == 0 && preferred.is_none()),
                        (p.current_leader_epoch, Some(waker)),
                        if replica_id >= 0 {
                            Reader::Follower(ReplicaFetch {
                                replica_id,
                                last_fetched_epoch: p.last_fetched_epoch,
                                log_start_offset: p.log_start_offset,
                            })
                        } else if rack.is_some() {
                            Reader::ConsumerWithRack
                        } else if p.last_fetched_epoch >= 0 {
                            Reader::ConsumerAtEpoch(p.last_fetched_epoch)
                        } else {
                            Reader::Consumer
                        },
                    )
                }
            };
            match read {
                Ok(read) => {
                    total += read.records.as_ref().map_or(0, Records::len);
                    // Log start offsets exist in Fetch from v5.
                    let log_start_offset = if version >= 5 {
                        read.log_start_offset
                    } else {
                        -1
                    };
                    // A diverging epoch exists in Fetch from v12; older followers are not served.
                    let data = match read.diverging_epoch {
                        Some((epoch, end_offset)) if version >= 12 => data.with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        ),
                        _ => data,
                    };
                    partitions.push(
                        data.with_high_watermark(read.high_watermark)
                            .with_last_stable_offset(read.last_stable_offset)
                            .with_log_start_offset(log_start_offset)
                            .with_aborted_transactions(Some(Vec::new())),
                    );
                    regions.push(read.records);
                    counts.push(read.record_count);
                }
                Err(e) => {
                    errors = true;
                    partitions.push(
                        data.with_error_code(e.code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1),
                    );
                    regions.push(None);
                    counts.push(0);
                }
            }
        }
        let entry = FetchableTopicResponse::default().with_partitions(partitions);
        topics.push(if by_id {
            entry.with_topic_id(topic.topic_id)
        } else {
            entry.with_topic(topic.request_name.clone())
        });
    }
    (
        FetchResponse::default().with_responses(topics),
        regions,
        counts,
        total,
        errors,
    )
}

/// Counts a consumer fetch's bytes and records per topic, once its answer is final.
/// `counts` holds the broker's record count of each local read; remote reads are counted
/// from their batch headers.
fn count_fetched(plan: &[PlannedTopic], regions: &[Option<Records>], counts: &[u64]) {
    let mut index = 0;
    for topic in plan {
        let (mut bytes, mut records) = (0, 0);
        for p in &topic.partitions {
            match regions.get(index).and_then(Option::as_ref) {
                Some(Records::Memory(pieces)) => {
                    bytes += pieces.iter().map(|b| b.len() as u64).sum::<u64>();
                    records += crate::metrics::records_in(pieces, p.fetch_offset);
                }
                Some(r) => {
                    bytes += r.len();
                    records += counts.get(index).copied().unwrap_or(0);
                }
                None => {}
            }
            index += 1;
        }
        if let Some(name) = topic.name.as_deref().filter(|_| bytes > 0) {
            KAFKA.fetched(name, bytes, records);
        }
    }
}
