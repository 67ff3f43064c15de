//! OffsetFetch (key 9): committed offsets of one group before v8, of several from v8; a null
//! topic list asks for every committed partition.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::{CommittedOffset, GroupCoordinator, PartitionResults};
use crate::security::acl::{Operation, ResourceType};

type Fetched = Result<PartitionResults<CommittedOffset>, BrokerError>;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: OffsetFetchRequest,
) -> Result<Reply, HandleError> {
    let groups = ctx.broker.groups();
    let version = ctx.version;
    if version < 8 {
        let wanted: Option<Vec<(String, i32)>> = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                .collect()
        });
        let fetched = authorized(ctx, &request.group_id, wanted.is_some(), || {
            groups.fetch_offsets(&request.group_id, wanted.as_deref(), request.require_stable)
        });
        let mut response = OffsetFetchResponse::default();
        match fetched {
            Ok(results) => {
                let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
                for (topic, partition, result) in results {
                    let entry = old_partition(partition, result, version);
                    match topics.last_mut() {
                        Some(last) if *last.name == *topic => last.partitions.push(entry),
                        _ => topics.push(
                            OffsetFetchResponseTopic::default()
                                .with_name(TopicName(str_bytes(topic)))
                                .with_partitions(vec![entry]),
                        ),
                    }
                }
                response = response.with_topics(topics);
            }
            // The top-level error code exists from v2.
            Err(e) if version >= 2 => response = response.with_error_code(e.code()),
            Err(_) => {}
        }
        return ctx.respond(&response);
    }
    let results = request
        .groups
        .iter()
        .map(|group| {
            let wanted: Option<Vec<(String, i32)>> = group.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                    .collect()
            });
            let fetched: Fetched = authorized(ctx, &group.group_id, wanted.is_some(), || {
                groups.fetch_offsets(&group.group_id, wanted.as_deref(), request.require_stable)
            });
            new_group(group.group_id.clone(), fetched)
        })
        .collect();
    ctx.respond(&OffsetFetchResponse::default().with_groups(results))
}

/// The offsets `fetch` finds, if the principal may describe the group: partitions of topics
/// it may not describe are refused when named (`explicit`) and left out otherwise, as Kafka does.
fn authorized<B: Broker>(
    ctx: &Ctx<'_, B>,
    group: &str,
    explicit: bool,
    fetch: impl FnOnce() -> Fetched,
) -> Fetched {
    ctx.check(Operation::Describe, ResourceType::Group, group)?;
    let mut visible = std::collections::HashMap::new();
    let results = fetch()?
        .into_iter()
        .filter_map(|(topic, partition, result)| {
            let ok = *visible.entry(topic.clone()).or_insert_with(|| {
                if explicit {
                    ctx.allowed(Operation::Describe, ResourceType::Topic, &topic)
                } else {
                    ctx.visible(Operation::Describe, ResourceType::Topic, &topic)
                }
            });
            match (ok, explicit) {
                (true, _) => Some((topic, partition, result)),
                (false, true) => {
                    Some((topic, partition, Err(BrokerError::TopicAuthorizationFailed)))
                }
                (false, false) => None,
            }
        })
        .collect();
    Ok(results)
}

fn old_partition(
    partition: i32,
    result: Result<CommittedOffset, BrokerError>,
    version: i16,
) -> OffsetFetchResponsePartition {
    let entry = OffsetFetchResponsePartition::default().with_partition_index(partition);
    match result {
        Ok(c) => entry
            .with_committed_offset(c.offset)
            .with_committed_leader_epoch(if version >= 5 { c.leader_epoch } else { -1 })
            .with_metadata(c.metadata.map(str_bytes)),
        Err(e) => entry
            .with_committed_offset(-1)
            .with_committed_leader_epoch(-1)
            .with_error_code(e.code()),
    }
}

fn new_group(group_id: GroupId, fetched: Fetched) -> OffsetFetchResponseGroup {
    let group = OffsetFetchResponseGroup::default().with_group_id(group_id);
    match fetched {
        Err(e) => group.with_error_code(e.code()),
        Ok(results) => {
            let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
            for (topic, partition, result) in results {
                let entry =
                    OffsetFetchResponsePartitions::default().with_partition_index(partition);
                let entry = match result {
                    Ok(c) => entry
                        .with_committed_offset(c.offset)
                        .with_committed_leader_epoch(c.leader_epoch)
                        .with_metadata(c.metadata.map(str_bytes)),
                    Err(e) => entry
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_error_code(e.code()),
                };
                match topics.last_mut() {
                    Some(last) if *last.name == *topic => last.partitions.push(entry),
                    _ => topics.push(
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(vec![entry]),
                    ),
                }
            }
            group.with_topics(topics)
        }
    }
}
