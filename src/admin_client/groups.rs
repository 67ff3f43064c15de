//! Consumer groups: list, describe with lag, reset offsets, delete — each group at its
//! coordinator, as `kafka-consumer-groups.sh` does.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::Decodable;
use strata_api::model::{GroupDetail, GroupMember, GroupOffset, GroupSummary, TopicPartitions};

use super::{AdminClient, KafkaError, check, text};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// Where `reset-offsets` moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The partitions' log start.
    Earliest,
    /// The partitions' high watermark.
    Latest,
    /// This offset (clamped into the log).
    Offset(i64),
    /// The first offset at or after this time (ms); the end when none.
    Timestamp(i64),
    /// The committed offset moved by this much (clamped into the log).
    ShiftBy(i64),
}

impl AdminClient {
    /// The group's coordinator: its id and address.
    async fn coordinator(&mut self, group: &str) -> anyhow::Result<(i32, String)> {
        let found = self
            .call_any(3, &FindCoordinatorRequest::default().with_key(text(group)))
            .await?;
        check(found.error_code, found.error_message.as_ref(), || {
            format!("finding the coordinator of group '{group}'")
        })?;
        Ok((found.node_id.0, format!("{}:{}", found.host, found.port)))
    }

    /// DescribeGroups of one group at its coordinator.
    async fn described(
        &mut self,
        coordinator: &str,
        group: &str,
    ) -> anyhow::Result<DescribedGroup> {
        self.call(
            coordinator,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]),
        )
        .await?
        .groups
        .into_iter()
        .next()
        .context("DescribeGroups answered no group")
    }

    /// ListGroups at every broker (each lists those it coordinates).
    pub async fn list_groups(&mut self) -> anyhow::Result<Vec<GroupSummary>> {
        let metadata = self.metadata(Some(&[])).await?;
        let mut out = Vec::new();
        for broker in &metadata.brokers {
            let response = self
                .call(&broker.addr, 4, &ListGroupsRequest::default())
                .await
                .with_context(|| format!("ListGroups at broker {}", broker.id))?;
            check(response.error_code, None, || {
                format!("listing the groups of broker {}", broker.id)
            })?;
            out.extend(response.groups.iter().map(|g| GroupSummary {
                group: g.group_id.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
                coordinator: broker.id,
            }));
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }

    /// A group's members, committed offsets and lag. A group that does not exist is a
    /// GROUP_ID_NOT_FOUND error.
    pub async fn describe_group(&mut self, group: &str) -> anyhow::Result<GroupDetail> {
        let (coordinator, addr) = self.coordinator(group).await?;
        let described = self.described(&addr, group).await?;
        check(
            described.error_code,
            described.error_message.as_ref(),
            || format!("describing group '{group}'"),
        )?;
        let mut members = Vec::new();
        let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
        for member in &described.members {
            let assignment = decode_assignment(&member.member_assignment);
            for tp in &assignment {
                for p in &tp.partitions {
                    owners.insert((tp.topic.clone(), *p), member.member_id.to_string());
                }
            }
            members.push(GroupMember {
                member_id: member.member_id.to_string(),
                instance_id: member.group_instance_id.as_ref().map(|i| i.to_string()),
                client_id: member.client_id.to_string(),
                host: member.client_host.to_string(),
                assignment,
            });
        }
        let committed = self.committed(&addr, group).await?;
        if committed.is_empty() && described.group_state.as_str() == "Dead" {
            return Err(KafkaError::refusal(
                GROUP_ID_NOT_FOUND,
                format!("describing group '{group}'"),
            ));
        }
        let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
        keys.extend(
            owners
                .keys()
                .filter(|k| !committed.contains_key(*k))
                .cloned(),
        );
        keys.sort();
        let topics: Vec<String> = keys
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let ends = if topics.is_empty() {
            BTreeMap::new()
        } else {
            let metadata = self.metadata(Some(&topics)).await.unwrap_or_default();
            self.list_offsets(&metadata, &keys, -1).await?
        };
        let offsets: Vec<GroupOffset> = keys
            .into_iter()
            .map(|key| {
                let committed = committed.get(&key).copied();
                let log_end = ends.get(&key).copied().unwrap_or(-1);
                GroupOffset {
                    lag: committed
                        .filter(|_| log_end >= 0)
                        .map(|c| (log_end - c).max(0)),
                    member: owners.get(&key).cloned(),
                    topic: key.0,
                    partition: key.1,
                    committed,
                    log_end,
                }
            })
            .collect();
        Ok(GroupDetail {
            group: group.to_owned(),
            state: described.group_state.to_string(),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            coordinator,
            lag: offsets.iter().filter_map(|o| o.lag).sum(),
            members,
            offsets,
        })
    }

    /// The group's committed offsets, at its coordinator.
    async fn committed(
        &mut self,
        coordinator: &str,
        group: &str,
    ) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        let fetched = self
            .call(
                coordinator,
                7,
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(text(group)))
                    .with_topics(None),
            )
            .await?;
        check(fetched.error_code, None, || {
            format!("fetching the offsets of group '{group}'")
        })?;
        let mut out = BTreeMap::new();
        for topic in &fetched.topics {
            for p in &topic.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    out.insert(
                        (topic.name.to_string(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Moves the group's offsets of `topic` (every partition, or `partitions`; every topic
    /// it has offsets for when `None`) to `to`. The group must have no members, as Kafka
    /// requires. Returns the new offsets; with `dry_run`, nothing is committed.
    pub async fn reset_offsets(
        &mut self,
        group: &str,
        topic: Option<&str>,
        partitions: Option<&[i32]>,
        to: OffsetReset,
        dry_run: bool,
    ) -> anyhow::Result<Vec<GroupOffset>> {
        let (_, addr) = self.coordinator(group).await?;
        let described = self.described(&addr, group).await?;
        if !described.members.is_empty() {
            return Err(KafkaError::refusal(
                NON_EMPTY_GROUP,
                format!(
                    "group '{group}' has {} active member(s) (state {}): stop its consumers first",
                    described.members.len(),
                    described.group_state
                ),
            ));
        }
        let committed = self.committed(&addr, group).await?;
        let metadata = match topic {
            Some(t) => self.metadata(Some(&[t.to_owned()])).await?,
            None => {
                let names: Vec<String> = committed
                    .keys()
                    .map(|(t, _)| t.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if names.is_empty() {
                    return Err(KafkaError::refusal(
                        INVALID_REQUEST,
                        format!("group '{group}' has no committed offsets; name a topic"),
                    ));
                }
                self.metadata(Some(&names)).await?
            }
        };
        let mut keys: Vec<(String, i32)> = Vec::new();
        for t in &metadata.topics {
            if topic.is_none_or(|name| name == t.name) {
                for p in &t.partitions {
                    let wanted = partitions.is_none_or(|ps| ps.contains(&p.partition));
                    let has =
                        topic.is_some() || committed.contains_key(&(t.name.clone(), p.partition));
                    if wanted && has {
                        keys.push((t.name.clone(), p.partition));
                    }
                }
            }
        }
        if let Some(ps) = partitions
            && let Some(missing) = ps.iter().find(|p| !keys.iter().any(|(_, k)| k == *p))
        {
            return Err(KafkaError::refusal(
                UNKNOWN_TOPIC_OR_PARTITION,
                format!(
                    "topic '{}' has no partition {missing}",
                    topic.unwrap_or_default()
                ),
            ));
        }
        let starts = self.list_offsets(&metadata, &keys, -2).await?;
        let ends = self.list_offsets(&metadata, &keys, -1).await?;
        let at_time = match to {
            OffsetReset::Timestamp(ts) => self.list_offsets(&metadata, &keys, ts).await?,
            _ => BTreeMap::new(),
        };
        let mut out = Vec::new();
        for key in keys {
            let (start, end) = match (starts.get(&key), ends.get(&key)) {
                (Some(s), Some(e)) => (*s, *e),
                _ => bail!("the leader of {}-{} did not answer", key.0, key.1),
            };
            let current = committed.get(&key).copied();
            let target = match to {
                OffsetReset::Earliest => start,
                OffsetReset::Latest => end,
                OffsetReset::Offset(o) => o,
                OffsetReset::Timestamp(_) => at_time
                    .get(&key)
                    .copied()
                    .filter(|o| *o >= 0)
                    .unwrap_or(end),
                OffsetReset::ShiftBy(n) => current.unwrap_or(start).saturating_add(n),
            }
            .clamp(start, end);
            out.push(GroupOffset {
                topic: key.0,
                partition: key.1,
                committed: Some(target),
                log_end: end,
                lag: Some(end - target),
                member: None,
            });
        }
        if !dry_run {
            self.commit(&addr, group, &out).await?;
        }
        Ok(out)
    }

    /// Commits `offsets` for `group` as a standalone consumer (not a member: generation -1),
    /// which Kafka accepts while the group has no members.
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[GroupOffset],
    ) -> anyhow::Result<()> {
        let (_, addr) = self.coordinator(group).await?;
        self.commit(&addr, group, offsets).await
    }

    /// OffsetCommit as a standalone (generation -1) committer.
    async fn commit(
        &mut self,
        coordinator: &str,
        group: &str,
        offsets: &[GroupOffset],
    ) -> anyhow::Result<()> {
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for o in offsets {
            topics.entry(&o.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(o.partition)
                    .with_committed_offset(o.committed.unwrap_or(0))
                    .with_committed_leader_epoch(-1),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(text(""))
            .with_retention_time_ms(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(text(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let response = self.call(coordinator, 8, &request).await?;
        for topic in &response.topics {
            for p in &topic.partitions {
                check(p.error_code, None, || {
                    format!(
                        "committing {}-{} for group '{group}'",
                        topic.name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }

    /// DeleteGroups: the group and its offsets. It must have no members.
    pub async fn delete_group(&mut self, group: &str) -> anyhow::Result<()> {
        let (_, addr) = self.coordinator(group).await?;
        let response = self
            .call(
                &addr,
                2,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(group))]),
            )
            .await?;
        for result in &response.results {
            check(result.error_code, None, || {
                format!("deleting group '{group}'")
            })?;
        }
        Ok(())
    }
}

/// A consumer member's assignment (Kafka's ConsumerProtocolAssignment, its version first).
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<TopicPartitions> {
    let mut bytes = bytes.clone();
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    bytes::Buf::advance(&mut bytes, 2);
    let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3)) else {
        return Vec::new();
    };
    assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| TopicPartitions {
            topic: tp.topic.to_string(),
            partitions: tp.partitions,
        })
        .collect()
}
