//! The group coordinator of this node: Kafka's `GroupCoordinator` and `GroupMetadataManager`.
//!
//! Every group lives in memory (membership and committed offsets) and in `__consumer_offsets`,
//! the partition chosen by the hash of its id. An OffsetCommit is acknowledged once its records
//! are fsync'd; the cache changes only then, so an OffsetFetch never returns an offset that a
//! crash could take back. Membership is written after each completed rebalance (not waited
//! for: after a crash, members rejoin). On start the topic is replayed to rebuild both.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_api::broker::{BrokerError, BrokerNode, NewTopic};
use strata_api::group::{
    CommittedOffset, Committer, GroupCoordinator, GroupDescription, GroupListing, GroupState,
    JoinGroup, JoinedGroup, LeavingMember, MemberDescription, OffsetToCommit, PartitionResults,
    SyncGroup,
};

use super::records::{GroupValue, MemberValue, OffsetValue, RecordKey};
use super::state::{Group, GroupConfig, Outcome};
use crate::broker::StrataBroker;

/// The internal topic of committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Longest group id accepted: ids are record keys and log lines, not documents.
pub const MAX_GROUP_ID_LEN: usize = 255;

/// Coordinator settings (Kafka's `offsets.*` and `group.*` broker configs).
#[derive(Debug, Clone, Copy)]
pub struct CoordinatorConfig {
    /// Rebalance settings.
    pub group: GroupConfig,
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: i32,
    /// `offset.metadata.max.bytes`.
    pub metadata_max_bytes: usize,
    /// `offsets.retention.minutes`: offsets of a group empty for this long are dropped.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check: Duration,
}

/// A group with its committed offsets.
#[derive(Debug)]
struct Entry {
    group: Group,
    offsets: BTreeMap<(String, i32), OffsetValue>,
}

/// All groups of this coordinator.
#[derive(Debug)]
pub struct Groups {
    entries: Mutex<HashMap<String, Entry>>,
    config: CoordinatorConfig,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Java's `String.hashCode`, which Kafka uses to place a group in `__consumer_offsets`.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The `__consumer_offsets` partition of a group, as Kafka computes it.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let hash = java_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

fn validate_group_id(group_id: &str) -> Result<(), BrokerError> {
    if group_id.is_empty() {
        return Err(BrokerError::InvalidGroupId("the group id is empty".into()));
    }
    if group_id.len() > MAX_GROUP_ID_LEN {
        return Err(BrokerError::InvalidGroupId(format!(
            "group id of {} bytes is longer than {MAX_GROUP_ID_LEN}",
            group_id.len()
        )));
    }
    Ok(())
}

impl Groups {
    /// No groups yet.
    pub fn new(config: CoordinatorConfig) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn entry<'a>(&self, entries: &'a mut HashMap<String, Entry>, group_id: &str) -> &'a mut Entry {
        entries.entry(group_id.to_owned()).or_insert_with(|| Entry {
            group: Group::new(group_id.to_owned(), self.config.group, now_ms()),
            offsets: BTreeMap::new(),
        })
    }

    /// Applies one replayed `__consumer_offsets` record (`None` value: a tombstone).
    pub fn replay(&self, key: RecordKey, value: Option<&[u8]>) -> Result<(), String> {
        let mut entries = self.lock();
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let entry = self.entry(&mut entries, &group);
                match value {
                    Some(bytes) => {
                        let value = OffsetValue::decode(bytes).map_err(|e| e.to_string())?;
                        entry.offsets.insert((topic, partition), value);
                    }
                    None => {
                        entry.offsets.remove(&(topic, partition));
                    }
                }
            }
            RecordKey::Group { group } => match value {
                Some(bytes) => {
                    let value = GroupValue::decode(bytes).map_err(|e| e.to_string())?;
                    let offsets = entries
                        .remove(&group)
                        .map(|e| e.offsets)
                        .unwrap_or_default();
                    let mut restored = Group::new(group.clone(), self.config.group, now_ms());
                    restored.restore(value, Instant::now());
                    entries.insert(
                        group,
                        Entry {
                            group: restored,
                            offsets,
                        },
                    );
                }
                None => {
                    entries.remove(&group);
                }
            },
        }
        Ok(())
    }

    /// Drops groups that ended up with neither members nor offsets after a replay.
    pub fn finish_replay(&self) -> usize {
        let mut entries = self.lock();
        entries.retain(|_, e| !e.group.is_empty() || !e.offsets.is_empty());
        entries.len()
    }

    /// Runs the timers of every group; returns the membership records to write for groups
    /// whose membership changed.
    pub fn tick(&self) -> Vec<(String, Bytes)> {
        let now = Instant::now();
        let now_ms = now_ms();
        let mut changed = Vec::new();
        let mut entries = self.lock();
        for (id, entry) in entries.iter_mut() {
            if entry.group.tick(now, now_ms) && entry.group.state == GroupState::Empty {
                changed.push((id.clone(), group_value(&entry.group).encode()));
            }
        }
        changed
    }

    /// Answers every JoinGroup and SyncGroup still waiting: the broker is shutting down.
    pub fn shutdown(&self) {
        for entry in self.lock().values_mut() {
            entry
                .group
                .fail_waiters(&BrokerError::CoordinatorNotAvailable);
        }
    }

    /// Offsets of empty groups past `offsets.retention.minutes`: keys to delete.
    pub fn expired_offsets(&self) -> Vec<(String, Vec<RecordKey>)> {
        let now_ms = now_ms();
        let retention = self.config.offsets_retention.as_millis() as i64;
        let entries = self.lock();
        let mut expired = Vec::new();
        for (id, entry) in entries.iter() {
            if entry.group.state != GroupState::Empty || entry.offsets.is_empty() {
                continue;
            }
            let last_commit = entry
                .offsets
                .values()
                .map(|v| v.commit_timestamp)
                .max()
                .unwrap_or(0);
            if now_ms - last_commit.max(entry.group.state_changed_ms) > retention {
                let mut keys: Vec<RecordKey> = entry
                    .offsets
                    .keys()
                    .map(|(topic, partition)| RecordKey::Offset {
                        group: id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .collect();
                keys.push(RecordKey::Group { group: id.clone() });
                expired.push((id.clone(), keys));
            }
        }
        expired
    }

    /// Forgets the given keys after their tombstones are durable.
    fn forget(&self, group_id: &str, keys: &[RecordKey]) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(group_id) else {
            return;
        };
        for key in keys {
            if let RecordKey::Offset {
                topic, partition, ..
            } = key
            {
                entry.offsets.remove(&(topic.clone(), *partition));
            }
        }
        if entry.group.is_empty() && entry.offsets.is_empty() {
            entries.remove(group_id);
        }
    }

    /// Committed offsets of every group, for lag reports: group → (topic, partition) → offset.
    pub fn committed(&self) -> BTreeMap<String, BTreeMap<(String, i32), i64>> {
        self.lock()
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    e.offsets
                        .iter()
                        .map(|(k, v)| (k.clone(), v.offset))
                        .collect(),
                )
            })
            .collect()
    }
}

/// The membership record of a group.
fn group_value(group: &Group) -> GroupValue {
    let protocol = group.protocol.clone().unwrap_or_default();
    GroupValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        state_timestamp: group.state_changed_ms,
        members: group
            .members()
            .map(|m| MemberValue {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout: m.rebalance_timeout.as_millis() as i32,
                session_timeout: m.session_timeout.as_millis() as i32,
                subscription: m
                    .protocols
                    .iter()
                    .find(|(name, _)| *name == protocol)
                    .map(|(_, metadata)| metadata.clone())
                    .unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// One record batch of `__consumer_offsets` records (`None` values are tombstones).
pub fn encode_records(records: &[(Bytes, Option<Bytes>)]) -> Result<Bytes, BrokerError> {
    let now = now_ms();
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|e| BrokerError::Storage(format!("encoding __consumer_offsets records: {e}")))?;
    Ok(buf.freeze())
}

impl StrataBroker {
    /// Creates `__consumer_offsets` on first use.
    async fn ensure_offsets_topic(&self) -> Result<(), BrokerError> {
        if self.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_owned(),
            partitions: Some(self.groups.config().offsets_partitions),
            replication_factor: Some(1),
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("segment.bytes".to_owned(), (100 << 20).to_string()),
            ]),
        };
        match self.create_topic_in_quorum(topic, false).await {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks the group id, and that this broker coordinates the group: it leads the group's
    /// `__consumer_offsets` partition.
    fn coordinates(&self, group_id: &str) -> Result<(), BrokerError> {
        validate_group_id(group_id)?;
        let index = partition_for(group_id, self.groups.config().offsets_partitions);
        self.leader_ref(OFFSETS_TOPIC, index)
            .map(|_| ())
            .map_err(|_| BrokerError::NotCoordinator)
    }

    /// Appends records to the group's `__consumer_offsets` partition and waits until durable.
    async fn write_group_records(
        &self,
        group_id: &str,
        records: &[(Bytes, Option<Bytes>)],
    ) -> Result<(), BrokerError> {
        let index = partition_for(group_id, self.groups.config().offsets_partitions);
        let batch = encode_records(records)?;
        let appended = strata_api::Broker::append(self, OFFSETS_TOPIC, index, batch)?;
        strata_api::Broker::wait_durable(self, OFFSETS_TOPIC, index, appended.next_offset).await
    }

    /// Writes a group's membership in the background (members rejoin if it is lost).
    fn persist_membership(&self, group_id: &str, value: Bytes) {
        let key = RecordKey::Group {
            group: group_id.to_owned(),
        }
        .encode();
        let index = partition_for(group_id, self.groups.config().offsets_partitions);
        let result = encode_records(&[(key, Some(value))])
            .and_then(|batch| strata_api::Broker::append(self, OFFSETS_TOPIC, index, batch));
        if let Err(e) = result {
            tracing::warn!(group = group_id, "writing group membership failed: {e}");
        }
    }

    /// Runs the groups' timers (sessions, join and sync phases) and writes the membership of
    /// groups they emptied. Called every few hundred milliseconds.
    pub fn run_group_timers(&self) {
        for (group_id, value) in self.groups.tick() {
            self.persist_membership(&group_id, value);
        }
    }

    /// Deletes the offsets of groups empty for longer than `offsets.retention.minutes`.
    pub async fn expire_offsets(&self) {
        for (group_id, keys) in self.groups.expired_offsets() {
            let records: Vec<(Bytes, Option<Bytes>)> =
                keys.iter().map(|k| (k.encode(), None)).collect();
            match self.write_group_records(&group_id, &records).await {
                Ok(()) => {
                    tracing::info!(group = %group_id, "offsets expired (offsets.retention.minutes)");
                    self.groups.forget(&group_id, &keys);
                }
                Err(e) => tracing::warn!(group = %group_id, "expiring offsets failed: {e}"),
            }
        }
    }
}

impl GroupCoordinator for StrataBroker {
    async fn find_coordinator(&self, group_id: String) -> Result<BrokerNode, BrokerError> {
        validate_group_id(&group_id)?;
        self.ensure_offsets_topic().await?;
        let index = partition_for(&group_id, self.groups.config().offsets_partitions);
        let image = self.image();
        let leader = image
            .topic(OFFSETS_TOPIC)
            .and_then(|t| t.partitions.get(&index))
            .map_or(-1, |p| p.leader);
        crate::broker::live_node(&image, leader).ok_or(BrokerError::CoordinatorNotAvailable)
    }

    async fn join_group(&self, request: JoinGroup) -> Result<JoinedGroup, BrokerError> {
        self.coordinates(&request.group_id)?;
        let group_id = request.group_id.clone();
        let outcome = {
            let mut entries = self.groups.lock();
            let entry = self.groups.entry(&mut entries, &group_id);
            entry.group.join(request, Instant::now(), now_ms())
        };
        match outcome {
            Outcome::Now(result) => result,
            // A dropped sender means the member was replaced or the group deleted.
            Outcome::Wait(rx) => rx.await.unwrap_or(Err(BrokerError::UnknownMemberId(
                "the member left the group while joining".into(),
            ))),
        }
    }

    async fn sync_group(&self, request: SyncGroup) -> Result<Bytes, BrokerError> {
        self.coordinates(&request.group_id)?;
        let group_id = request.group_id.clone();
        let (outcome, completed) = {
            let mut entries = self.groups.lock();
            let Some(entry) = entries.get_mut(&group_id) else {
                return Err(BrokerError::UnknownMemberId(format!(
                    "group {group_id} does not exist"
                )));
            };
            let was_stable = entry.group.state == GroupState::Stable;
            let outcome = entry.group.sync(request, Instant::now(), now_ms());
            // Only the leader's sync that completes a rebalance changes the membership.
            let completed = (!was_stable && entry.group.state == GroupState::Stable)
                .then(|| group_value(&entry.group).encode());
            (outcome, completed)
        };
        if let Some(value) = completed {
            self.persist_membership(&group_id, value);
        }
        match outcome {
            Outcome::Now(result) => result,
            Outcome::Wait(rx) => rx.await.unwrap_or(Err(BrokerError::RebalanceInProgress)),
        }
    }

    fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), BrokerError> {
        self.coordinates(group_id)?;
        let mut entries = self.groups.lock();
        let Some(entry) = entries.get_mut(group_id) else {
            return Err(BrokerError::UnknownMemberId(format!(
                "group {group_id} does not exist"
            )));
        };
        entry
            .group
            .heartbeat(member_id, group_instance_id, generation, Instant::now())
    }

    fn leave_group(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        self.coordinates(group_id)?;
        let (results, emptied) = {
            let mut entries = self.groups.lock();
            let Some(entry) = entries.get_mut(group_id) else {
                return Err(BrokerError::UnknownMemberId(format!(
                    "group {group_id} does not exist"
                )));
            };
            let (now, now_ms) = (Instant::now(), now_ms());
            let results: Vec<_> = members
                .iter()
                .map(|m| entry.group.leave(m, now, now_ms))
                .collect();
            let emptied = (entry.group.state == GroupState::Empty)
                .then(|| group_value(&entry.group).encode());
            (results, emptied)
        };
        if let Some(value) = emptied {
            self.persist_membership(group_id, value);
        }
        Ok(results)
    }

    async fn commit_offsets(
        &self,
        group_id: &str,
        committer: Committer,
        offsets: Vec<OffsetToCommit>,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        self.coordinates(group_id)?;
        {
            let mut entries = self.groups.lock();
            let entry = self.groups.entry(&mut entries, group_id);
            entry.group.check_commit(
                &committer.member_id,
                committer.group_instance_id.as_deref(),
                committer.generation,
            )?;
        }
        let commit_timestamp = now_ms();
        let max_metadata = self.groups.config().metadata_max_bytes;
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for offset in offsets {
            let metadata = offset.metadata.unwrap_or_default();
            let result = if !self.partition_exists(&offset.topic, offset.partition) {
                Err(BrokerError::UnknownTopicOrPartition)
            } else if metadata.len() > max_metadata {
                Err(BrokerError::OffsetMetadataTooLarge(format!(
                    "offset metadata of {} bytes is longer than offset.metadata.max.bytes={max_metadata}",
                    metadata.len()
                )))
            } else {
                let key = RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: offset.topic.clone(),
                    partition: offset.partition,
                };
                let value = OffsetValue {
                    offset: offset.offset,
                    leader_epoch: offset.leader_epoch,
                    metadata,
                    commit_timestamp,
                };
                records.push((key.encode(), Some(value.encode())));
                accepted.push(((offset.topic, offset.partition), value));
                Ok(())
            };
            results.push(result);
        }
        if records.is_empty() {
            return Ok(results);
        }
        if let Err(e) = self.write_group_records(group_id, &records).await {
            return Ok(results.into_iter().map(|r| r.and(Err(e.clone()))).collect());
        }
        let mut entries = self.groups.lock();
        let entry = self.groups.entry(&mut entries, group_id);
        for (key, value) in accepted {
            entry.offsets.insert(key, value);
        }
        Ok(results)
    }

    fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<PartitionResults<CommittedOffset>, BrokerError> {
        self.coordinates(group_id)?;
        let entries = self.groups.lock();
        let offsets = entries.get(group_id).map(|e| &e.offsets);
        let committed = |value: &OffsetValue| CommittedOffset {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: Some(value.metadata.clone()),
        };
        Ok(match partitions {
            Some(partitions) => partitions
                .iter()
                .map(|(topic, partition)| {
                    let value = offsets
                        .and_then(|o| o.get(&(topic.clone(), *partition)))
                        .map_or_else(CommittedOffset::none, committed);
                    (topic.clone(), *partition, Ok(value))
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((topic, partition), value)| {
                    (topic.clone(), *partition, Ok(committed(value)))
                })
                .collect(),
        })
    }

    fn list_groups(&self) -> Vec<GroupListing> {
        let entries = self.groups.lock();
        let mut groups: Vec<GroupListing> = entries
            .iter()
            .filter(|(_, e)| e.group.state != GroupState::Dead)
            .map(|(id, e)| GroupListing {
                group_id: id.clone(),
                protocol_type: e.group.protocol_type.clone().unwrap_or_default(),
                state: e.group.state,
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups
    }

    fn describe_group(&self, group_id: &str) -> Result<GroupDescription, BrokerError> {
        self.coordinates(group_id)?;
        let entries = self.groups.lock();
        let Some(entry) = entries.get(group_id) else {
            return Ok(GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let group = &entry.group;
        let protocol = group.protocol.clone().unwrap_or_default();
        let describe_protocol = matches!(
            group.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        Ok(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if describe_protocol {
                protocol.clone()
            } else {
                String::new()
            },
            members: group
                .members()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if describe_protocol {
                        m.protocols
                            .iter()
                            .find(|(name, _)| *name == protocol)
                            .map(|(_, metadata)| metadata.clone())
                            .unwrap_or_default()
                    } else {
                        Bytes::new()
                    },
                    assignment: if group.state == GroupState::Stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    async fn delete_group(&self, group_id: &str) -> Result<(), BrokerError> {
        self.coordinates(group_id)?;
        let keys: Vec<RecordKey> = {
            let mut entries = self.groups.lock();
            let Some(entry) = entries.get_mut(group_id) else {
                return Err(BrokerError::GroupIdNotFound);
            };
            entry.group.delete(now_ms())?;
            let mut keys: Vec<RecordKey> = entry
                .offsets
                .keys()
                .map(|(topic, partition)| RecordKey::Offset {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect();
            keys.push(RecordKey::Group {
                group: group_id.to_owned(),
            });
            keys
        };
        let records: Vec<(Bytes, Option<Bytes>)> =
            keys.iter().map(|k| (k.encode(), None)).collect();
        let written = self.write_group_records(group_id, &records).await;
        let mut entries = self.groups.lock();
        match written {
            Ok(()) => {
                if entries
                    .get(group_id)
                    .is_some_and(|e| e.group.state == GroupState::Dead)
                {
                    entries.remove(group_id);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(entry) = entries.get_mut(group_id) {
                    entry.group.revive(now_ms());
                }
                Err(e)
            }
        }
    }

    async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<PartitionResults<()>, BrokerError> {
        self.coordinates(group_id)?;
        let (results, keys) = {
            let entries = self.groups.lock();
            let Some(entry) = entries.get(group_id) else {
                return Err(BrokerError::GroupIdNotFound);
            };
            let subscribed = entry.group.subscribed_topics();
            let mut results = Vec::new();
            let mut keys = Vec::new();
            for (topic, partition) in partitions {
                let result = if subscribed.as_ref().is_some_and(|s| s.contains(topic)) {
                    Err(BrokerError::GroupSubscribedToTopic)
                } else {
                    if entry.offsets.contains_key(&(topic.clone(), *partition)) {
                        keys.push(RecordKey::Offset {
                            group: group_id.to_owned(),
                            topic: topic.clone(),
                            partition: *partition,
                        });
                    }
                    Ok(())
                };
                results.push((topic.clone(), *partition, result));
            }
            (results, keys)
        };
        if !keys.is_empty() {
            let records: Vec<(Bytes, Option<Bytes>)> =
                keys.iter().map(|k| (k.encode(), None)).collect();
            self.write_group_records(group_id, &records).await?;
            self.groups.forget(group_id, &keys);
        }
        Ok(results)
    }
}

#[cfg(test)]
#[path = "coordinator_test.rs"]
mod tests;
