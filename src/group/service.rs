//! `GroupCoordinatorService`: the group coordinator as clients reach it. It answers the group
//! APIs from the in-memory [`Groups`] and writes every change to the group's partition of
//! `__consumer_offsets` through the [`ReplicaManager`], so it coordinates exactly the groups
//! whose partition this broker leads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_api::broker::{BrokerError, BrokerNode, NewTopic};
use strata_api::group::{
    CommittedOffset, Committer, ConsumerGroupDescription, ConsumerHeartbeat,
    ConsumerHeartbeatAnswer, GroupCoordinator, GroupDescription, GroupListing, GroupState,
    JoinGroup, JoinedGroup, LeavingMember, MemberDescription, OffsetToCommit, PartitionResults,
    SyncGroup,
};

use super::consumer::{ConsumerGroup, TopicView};
use super::coordinator::{
    Groups, OFFSETS_TOPIC, encode_records, encode_txn_records, group_value, now_ms, partition_for,
    validate_group_id,
};
use super::records::{OffsetValue, RecordKey};
use super::state::{Group, Outcome, check_session_timeout};
use crate::cluster::admin::ClusterAdmin;
use crate::metadata_cache::{MetadataCache, live_node};
use crate::replica_manager::ReplicaManager;

/// The group coordinator of this broker.
#[derive(Debug)]
pub struct GroupCoordinatorService {
    groups: Groups,
    replicas: Arc<ReplicaManager>,
    metadata: Arc<MetadataCache>,
    admin: Arc<ClusterAdmin>,
}

impl GroupCoordinatorService {
    /// A coordinator over `groups`, writing through `replicas`.
    pub fn new(
        groups: Groups,
        replicas: Arc<ReplicaManager>,
        metadata: Arc<MetadataCache>,
        admin: Arc<ClusterAdmin>,
    ) -> Self {
        Self {
            groups,
            replicas,
            metadata,
            admin,
        }
    }

    /// The replication factor `__consumer_offsets` is created with: the configured one, at
    /// most the live brokers (as Kafka's default of 3 would fail on a smaller cluster).
    fn offsets_replication_factor(&self) -> i16 {
        let live = {
            let image = self.metadata.image();
            image.brokers.values().filter(|b| !b.fenced).count()
        };
        self.groups
            .config()
            .offsets_replication_factor
            .min(live.max(1) as i16)
    }

    /// The groups' state.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }
}

impl GroupCoordinatorService {
    /// Creates `__consumer_offsets` on first use.
    async fn ensure_offsets_topic(&self) -> Result<(), BrokerError> {
        if self.metadata.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_owned(),
            partitions: Some(self.groups.config().offsets_partitions),
            replication_factor: Some(self.offsets_replication_factor()),
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("segment.bytes".to_owned(), (100 << 20).to_string()),
            ]),
        };
        match self.admin.create_topic(topic, false).await {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks the group id, and that this broker coordinates the group: it leads the group's
    /// `__consumer_offsets` partition.
    fn coordinates(&self, group_id: &str) -> Result<(), BrokerError> {
        validate_group_id(group_id)?;
        let index = partition_for(group_id, self.groups.config().offsets_partitions);
        self.replicas
            .leader_ref(OFFSETS_TOPIC, index)
            .map_err(|_| BrokerError::NotCoordinator)?;
        if !self.groups.is_loaded(index) {
            return Err(BrokerError::CoordinatorLoadInProgress);
        }
        Ok(())
    }

    /// Loads the groups of the `__consumer_offsets` partitions this broker has come to lead
    /// and forgets those of partitions it no longer leads (Kafka's `onElection` and
    /// `onResignation`). Blocking (it reads the log): called after the image is applied.
    pub fn sync_leadership(&self) -> Result<(), crate::log::LogError> {
        let hosted: Vec<_> = self
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.topic == OFFSETS_TOPIC)
            .collect();
        for index in self.groups.loaded() {
            if !hosted.iter().any(|p| p.index == index && p.is_leader()) {
                self.groups.unload(index);
                tracing::info!(
                    partition = index,
                    "no longer coordinating this partition's groups"
                );
            }
        }
        for partition in hosted {
            if partition.is_leader() && !self.groups.is_loaded(partition.index) {
                // Whatever was replayed of it before (as a follower) is stale.
                self.groups.unload(partition.index);
                super::load::load_partition(&self.groups, &partition)?;
                self.groups.mark_loaded(partition.index);
            }
        }
        Ok(())
    }

    /// Appends records to the group's `__consumer_offsets` partition and waits until durable.
    async fn write_group_records(
        &self,
        group_id: &str,
        records: &[(Bytes, Option<Bytes>)],
    ) -> Result<(), BrokerError> {
        let index = partition_for(group_id, self.groups.config().offsets_partitions);
        let batch = encode_records(records)?;
        let appended = self
            .replicas
            .append(OFFSETS_TOPIC, index, batch, -1, None)?;
        self.replicas
            .wait_acked(OFFSETS_TOPIC, index, appended.next_offset, -1)
            .await
    }

    /// Writes a group's membership in the background (members rejoin if it is lost).
    fn persist_membership(&self, group_id: &str, value: Bytes) {
        let key = RecordKey::Group {
            group: group_id.to_owned(),
        }
        .encode();
        let index = partition_for(group_id, self.groups.config().offsets_partitions);
        let result = encode_records(&[(key, Some(value))])
            .and_then(|batch| self.replicas.append(OFFSETS_TOPIC, index, batch, -1, None));
        if let Err(e) = result {
            tracing::warn!(group = group_id, "writing group membership failed: {e}");
        }
    }

    /// Every topic's partition count, copied out so that the image's lock is never held with
    /// the groups' one.
    fn topic_counts(&self) -> TopicCounts {
        let image = self.metadata.image();
        TopicCounts(
            image
                .topics
                .values()
                .map(|t| (t.name.clone(), t.partitions.len() as i32))
                .collect(),
        )
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

impl GroupCoordinator for GroupCoordinatorService {
    async fn find_coordinator(&self, group_id: String) -> Result<BrokerNode, BrokerError> {
        validate_group_id(&group_id)?;
        self.ensure_offsets_topic().await?;
        let index = partition_for(&group_id, self.groups.config().offsets_partitions);
        let image = self.metadata.image();
        let leader = image
            .topic(OFFSETS_TOPIC)
            .and_then(|t| t.partitions.get(&index))
            .map_or(-1, |p| p.leader);
        live_node(&image, leader).ok_or(BrokerError::CoordinatorNotAvailable)
    }

    async fn join_group(&self, request: JoinGroup) -> Result<JoinedGroup, BrokerError> {
        self.coordinates(&request.group_id)?;
        let group_id = request.group_id.clone();
        let topics = self.topic_counts();
        let outcome = {
            let mut entries = self.groups.lock();
            let entry = self.groups.entry(&mut entries, &group_id);
            if !entry.consumer.is_empty() {
                // A classic member of a group being upgraded: the coordinator assigns.
                check_session_timeout(&self.groups.config().group, request.session_timeout)?;
                let config = self.groups.config().consumer;
                return entry
                    .consumer
                    .classic_join(request, &topics, &config, Instant::now());
            }
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
            if !entry.consumer.is_empty() {
                return entry.consumer.classic_sync(&request, Instant::now());
            }
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
        if !entry.consumer.is_empty() {
            return entry.consumer.classic_heartbeat(
                member_id,
                group_instance_id,
                generation,
                Instant::now(),
            );
        }
        entry
            .group
            .heartbeat(member_id, group_instance_id, generation, Instant::now())
    }

    fn consumer_heartbeat(
        &self,
        heartbeat: ConsumerHeartbeat,
    ) -> Result<ConsumerHeartbeatAnswer, BrokerError> {
        self.coordinates(&heartbeat.group_id)?;
        let topics = self.topic_counts();
        let config = *self.groups.config();
        let now = Instant::now();
        let mut entries = self.groups.lock();
        let group_id = heartbeat.group_id.clone();
        if heartbeat.member_epoch != 0 && !entries.contains_key(&group_id) {
            return Err(BrokerError::UnknownMemberId(format!(
                "group {group_id} has no members"
            )));
        }
        let entry = self.groups.entry(&mut entries, &group_id);
        let mut upgraded = None;
        if !entry.group.is_empty() {
            // A classic group in use: its first consumer-protocol member upgrades it.
            let group = &entry.group;
            if heartbeat.member_epoch != 0
                || !config.consumer.migration.upgrades()
                || group.protocol_type.as_deref() != Some("consumer")
                || group.members().count() > config.consumer.max_size
            {
                return Err(BrokerError::GroupIdNotFound);
            }
            let generation = group.generation;
            let protocol = group.protocol.clone();
            let seats = entry.group.hand_over();
            entry.consumer =
                ConsumerGroup::from_classic(generation, protocol.as_deref(), seats, &topics, now);
            let mut retired = Group::new(group_id.clone(), config.group, now_ms());
            retired.generation = generation;
            entry.group = retired;
            // So that a replay does not bring the classic members back.
            upgraded = Some(group_value(&entry.group).encode());
            tracing::info!(group = %group_id, "upgraded to a consumer group: a consumer-protocol member joined");
        }
        let answer = entry
            .consumer
            .heartbeat(heartbeat, &topics, &config.consumer, now);
        entry.maybe_downgrade(&config, now);
        drop(entries);
        if let Some(value) = upgraded {
            self.persist_membership(&group_id, value);
        }
        answer
    }

    fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, BrokerError> {
        self.coordinates(group_id)?;
        let entries = self.groups.lock();
        match entries.get(group_id) {
            Some(entry) if entry.group.state == GroupState::Empty => Ok(entry.consumer.describe()),
            _ => Err(BrokerError::GroupIdNotFound),
        }
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
            let results: Vec<_> = if entry.consumer.is_empty() {
                members
                    .iter()
                    .map(|m| entry.group.leave(m, now, now_ms))
                    .collect()
            } else {
                members
                    .iter()
                    .map(|m| entry.consumer.classic_leave(m))
                    .collect()
            };
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
        // A transactional commit without a member (TxnOffsetCommit before v3, or a producer
        // outside the group) is not checked against the group's generation, as in Kafka.
        let unchecked = committer.transaction.is_some()
            && committer.member_id.is_empty()
            && committer.generation < 0;
        if !unchecked {
            let mut entries = self.groups.lock();
            let entry = self.groups.entry(&mut entries, group_id);
            if entry.consumer.is_empty() {
                entry.group.check_commit(
                    &committer.member_id,
                    committer.group_instance_id.as_deref(),
                    committer.generation,
                )?;
            } else {
                // OffsetCommit v9+ carries the member epoch as its generation.
                entry
                    .consumer
                    .check_commit(&committer.member_id, committer.generation)?;
            }
        }
        let commit_timestamp = now_ms();
        let max_metadata = self.groups.config().metadata_max_bytes;
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for offset in offsets {
            let metadata = offset.metadata.unwrap_or_default();
            let result = if !self
                .metadata
                .partition_exists(&offset.topic, offset.partition)
            {
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
        if let Some((producer_id, epoch)) = committer.transaction {
            // Written in the producer's transaction; counted once its marker commits it.
            let index = partition_for(group_id, self.groups.config().offsets_partitions);
            let written = async {
                let batch = encode_txn_records(&records, producer_id, epoch)?;
                let appended = self
                    .replicas
                    .append_as_coordinator(OFFSETS_TOPIC, index, batch)?;
                self.replicas
                    .wait_acked(OFFSETS_TOPIC, index, appended.next_offset, -1)
                    .await
            };
            if let Err(e) = written.await {
                return Ok(results.into_iter().map(|r| r.and(Err(e.clone()))).collect());
            }
            self.groups.add_pending(group_id, producer_id, accepted);
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
        require_stable: bool,
    ) -> Result<PartitionResults<CommittedOffset>, BrokerError> {
        self.coordinates(group_id)?;
        let entries = self.groups.lock();
        let offsets = entries.get(group_id).map(|e| &e.offsets);
        let unstable = |topic: &String, partition: i32| {
            require_stable
                && entries.get(group_id).is_some_and(|e| {
                    e.pending
                        .values()
                        .any(|p| p.contains_key(&(topic.clone(), partition)))
                })
        };
        let committed = |value: &OffsetValue| CommittedOffset {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: Some(value.metadata.clone()),
        };
        Ok(match partitions {
            Some(partitions) => partitions
                .iter()
                .map(|(topic, partition)| {
                    if unstable(topic, *partition) {
                        return (
                            topic.clone(),
                            *partition,
                            Err(BrokerError::UnstableOffsetCommit),
                        );
                    }
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
            .map(|(id, e)| {
                if e.consumer.is_empty() {
                    GroupListing {
                        group_id: id.clone(),
                        protocol_type: e.group.protocol_type.clone().unwrap_or_default(),
                        state: e.group.state.name(),
                        group_type: "classic",
                    }
                } else {
                    GroupListing {
                        group_id: id.clone(),
                        protocol_type: "consumer".to_owned(),
                        state: e.consumer.state(),
                        group_type: "consumer",
                    }
                }
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
                state: GroupState::Dead.name(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        if !entry.consumer.is_empty() {
            return Ok(entry.consumer.as_described());
        }
        let group = &entry.group;
        let protocol = group.protocol.clone().unwrap_or_default();
        let describe_protocol = matches!(
            group.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        Ok(GroupDescription {
            state: group.state.name(),
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
            if !entry.consumer.is_empty() {
                return Err(BrokerError::NonEmptyGroup);
            }
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
            let subscribed = if entry.consumer.is_empty() {
                entry.group.subscribed_topics()
            } else {
                Some(entry.consumer.subscribed_topics())
            };
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

/// Every topic's partition count, as a consumer group sees them.
struct TopicCounts(BTreeMap<String, i32>);

impl TopicView for TopicCounts {
    fn partitions(&self, topic: &str) -> Option<i32> {
        self.0.get(topic).copied()
    }

    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}
