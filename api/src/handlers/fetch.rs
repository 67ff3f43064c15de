//! Fetch (key 1): record bytes straight from segment files, with long polling.
//!
//! The response waits up to `max_wait_ms` until `min_bytes` are available, woken only by
//! changes of its own partitions (see [`crate::broker::DataChanges`]).
//! `max_bytes` (at most the broker's `fetch.max.bytes`) bounds the response and
//! `partition_max_bytes` each partition, except that the
//! first batch of the first partition with data is always returned whole (KIP-74), so a batch
//! larger than the limits cannot stall a consumer. Clients that open a fetch session (KIP-227,
//! see [`crate::fetch_session`]) then send only what changed, and are answered only the
//! partitions with news.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use tokio::time::Instant;
use uuid::Uuid;

use super::fetch_encode::{self, EncodeCtx};
use super::{Ctx, HandleError};
use crate::broker::{
    Broker, BrokerError, DataChanges, FetchWaker, Isolation, Reader, Records, ReplicaFetch,
};
use crate::connection::Reply;
use crate::fetch_session::{FetchPartitionState, FetchSessions, Sent, SessionFetch};
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
    /// In a fetch session: what its last answer told the client, if it was answered.
    sent: Option<Sent>,
}

/// Partitions grouped by topic, in the order each topic first appears.
fn group(
    partitions: Vec<(FetchPartitionState, Option<Sent>)>,
) -> Vec<(FetchPartitionState, Vec<PlannedPartition>)> {
    let mut topics: Vec<(FetchPartitionState, Vec<PlannedPartition>)> = Vec::new();
    // Index of each topic in `topics`: a follower's fetch names many partitions.
    let mut at: std::collections::HashMap<(TopicName, Uuid), usize> =
        std::collections::HashMap::new();
    for (p, sent) in partitions {
        let planned = PlannedPartition {
            index: p.index,
            fetch_offset: p.fetch_offset,
            partition_max_bytes: p.partition_max_bytes,
            current_leader_epoch: p.current_leader_epoch,
            last_fetched_epoch: p.last_fetched_epoch,
            log_start_offset: p.log_start_offset,
            sent,
        };
        match at.entry((p.topic.clone(), p.topic_id)) {
            std::collections::hash_map::Entry::Occupied(found) => {
                topics[*found.get()].1.push(planned)
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(topics.len());
                topics.push((p, vec![planned]));
            }
        }
    }
    topics
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: FetchRequest,
) -> Result<Reply, HandleError> {
    let encode_ctx = EncodeCtx::from(ctx);
    let version = ctx.version;
    let by_id = ctx.version >= FIRST_TOPIC_ID_VERSION;
    let requested: Vec<FetchPartitionState> = request
        .topics
        .into_iter()
        .flat_map(|topic| {
            let (name, id) = (topic.topic, topic.topic_id);
            topic
                .partitions
                .into_iter()
                .map(move |p| FetchPartitionState {
                    topic: name.clone(),
                    topic_id: id,
                    index: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes.max(0) as u64,
                    current_leader_epoch: p.current_leader_epoch,
                    last_fetched_epoch: p.last_fetched_epoch,
                    log_start_offset: p.log_start_offset,
                })
        })
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .into_iter()
        .flat_map(|t| {
            let (name, id) = (t.topic, t.topic_id);
            t.partitions.into_iter().map(move |p| (name.clone(), id, p))
        })
        .collect();
    // Before v7 there are no sessions: the defaults (0, -1) ask for none.
    let sessions = Arc::clone(&ctx.config.fetch_sessions);
    let (session, partitions) = match sessions.begin(
        (request.session_id, request.session_epoch),
        by_id,
        requested,
        forgotten,
    ) {
        Ok((SessionFetch::Full { id }, requested)) => (
            SessionFetch::Full { id },
            requested.into_iter().map(|p| (p, None)).collect(),
        ),
        Ok((SessionFetch::Incremental { id, partitions }, _)) => (
            SessionFetch::Incremental {
                id,
                partitions: Vec::new(),
            },
            partitions,
        ),
        Err(e) => {
            let response = FetchResponse::default()
                .with_error_code(e.code())
                .with_session_id(0);
            return ctx.respond(&response);
        }
    };
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
    let plan: Vec<PlannedTopic> = group(partitions)
        .into_iter()
        .map(|(topic, partitions)| {
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
            PlannedTopic {
                name,
                denied,
                request_name: topic.topic,
                topic_id: topic.topic_id,
                partitions,
            }
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
    let isolation = Isolation::from_level(request.isolation_level);
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
                (max_bytes, version, replica_id, isolation),
                (&waker, rack.as_deref()),
            );
            let remote = regions.iter().any(|r| matches!(r, Some(Records::Remote)));
            if remote {
                read_remote(
                    broker.as_ref(),
                    &plan,
                    &mut response,
                    &mut regions,
                    (max_bytes.saturating_sub(bytes), remote_wait, isolation),
                )
                .await;
            }
            if remote || bytes >= min_bytes || errors || Instant::now() >= deadline {
                if replica_id < 0 {
                    count_fetched(&plan, &regions, &counts);
                }
                let (response, regions) =
                    answer_session(&sessions, &session, &plan, response, regions);
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
                    let (response, regions) = answer_session(&sessions, &session, &plan, response, regions);
                    return fetch_encode::encode(&encode_ctx, response, regions);
                }
            }
        }
    })))
}

/// The answer of a fetch in a session: the session's id, and for an incremental fetch only
/// the partitions with news (an error, records, or a high watermark, last stable offset or
/// log start offset the client was not told yet). What each included partition told is
/// recorded in the session.
fn answer_session(
    sessions: &FetchSessions,
    session: &SessionFetch,
    plan: &[PlannedTopic],
    mut response: FetchResponse,
    regions: Vec<Option<Records>>,
) -> (FetchResponse, Vec<Option<Records>>) {
    let (id, incremental) = match session {
        SessionFetch::Full { id } => (*id, false),
        SessionFetch::Incremental { id, .. } => (*id, true),
    };
    response.session_id = id;
    if id == 0 {
        return (response, regions);
    }
    let mut regions = regions.into_iter();
    let mut kept_regions = Vec::new();
    let mut sent = Vec::new();
    for (topic, planned) in response.responses.iter_mut().zip(plan) {
        let partitions = std::mem::take(&mut topic.partitions);
        for (data, p) in partitions.into_iter().zip(&planned.partitions) {
            let region = regions.next().flatten();
            let has_records = region.as_ref().is_some_and(|r| !r.is_empty());
            let now = Sent {
                high_watermark: data.high_watermark,
                last_stable_offset: data.last_stable_offset,
                log_start_offset: data.log_start_offset,
            };
            let news = data.error_code != 0
                || has_records
                || data.preferred_read_replica.0 >= 0
                || data.diverging_epoch.epoch >= 0
                || data.diverging_epoch.end_offset >= 0
                || p.sent != Some(now);
            if incremental && !news {
                continue;
            }
            if data.error_code == 0 {
                sent.push((
                    (planned.request_name.0.as_str(), planned.topic_id, p.index),
                    now,
                    has_records,
                ));
            }
            topic.partitions.push(data);
            kept_regions.push(region);
        }
    }
    response.responses.retain(|t| !t.partitions.is_empty());
    sessions.answered(id, &sent);
    (response, kept_regions)
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
    (budget, wait, isolation): (u64, Duration, Isolation),
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
        broker.read_remote(
            name,
            p.index,
            p.fetch_offset,
            (limit, first == Some(n), isolation),
            wait,
        )
    });
    let reads = futures::future::join_all(reads).await;
    for ((index, t, i, name, p), read) in pending.into_iter().zip(reads) {
        regions[index] = match read {
            Ok(Some((records, aborted))) if !records.is_empty() => {
                response.responses[t].partitions[i].aborted_transactions = aborted.map(|list| {
                    list.into_iter()
                        .map(|(producer_id, first_offset)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(producer_id))
                                .with_first_offset(first_offset)
                        })
                        .collect()
                });
                Some(Records::Memory(records))
            }
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
    (max_bytes, version, replica_id, isolation): (u64, i16, i32, Isolation),
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
                        (
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
                            isolation,
                        ),
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
                            .with_aborted_transactions(read.aborted_transactions.map(|list| {
                                list.into_iter()
                                    .map(|(producer_id, first_offset)| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(producer_id))
                                            .with_first_offset(first_offset)
                                    })
                                    .collect()
                            })),
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
