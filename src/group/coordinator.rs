//! The group coordinator of this node: Kafka's `GroupCoordinator` and `GroupMetadataManager`.
//!
//! Every group lives in memory (membership and committed offsets) and in `__consumer_offsets`,
//! the partition chosen by the hash of its id. An OffsetCommit is acknowledged once its records
//! are fsync'd; the cache changes only then, so an OffsetFetch never returns an offset that a
//! crash could take back. Membership is written after each completed rebalance (not waited
//! for: after a crash, members rejoin). On start the topic is replayed to rebuild both.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_api::broker::BrokerError;
use strata_api::group::GroupState;

use super::consumer::{ConsumerGroup, ConsumerGroupConfig};
use super::records::{GroupValue, MemberValue, OffsetValue, RecordKey};
use super::state::{Group, GroupConfig};

/// The internal topic of committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Longest group id accepted: ids are record keys and log lines, not documents.
pub const MAX_GROUP_ID_LEN: usize = 255;

/// Coordinator settings (Kafka's `offsets.*` and `group.*` broker configs).
#[derive(Debug, Clone, Copy)]
pub struct CoordinatorConfig {
    /// Rebalance settings.
    pub group: GroupConfig,
    /// Consumer-protocol (KIP-848) group settings.
    pub consumer: ConsumerGroupConfig,
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: i32,
    /// `offsets.topic.replication.factor` (at most the live brokers when the topic is made).
    pub offsets_replication_factor: i16,
    /// `offset.metadata.max.bytes`.
    pub metadata_max_bytes: usize,
    /// `offsets.retention.minutes`: offsets of a group empty for this long are dropped.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check: Duration,
}

/// A group with its committed offsets.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) group: Group,
    /// The group's consumer-protocol members (KIP-848); empty for a classic group.
    pub(super) consumer: ConsumerGroup,
    pub(super) offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Offsets committed in open transactions (TxnOffsetCommit), by producer id: they replace
    /// `offsets` when the transaction commits, and go when it aborts.
    pub(super) pending: HashMap<i64, BTreeMap<(String, i32), OffsetValue>>,
}

impl Entry {
    /// Turns a consumer group whose last consumer-protocol member just left back into a
    /// classic group, when only classic members remain (KIP-848's online downgrade).
    pub(super) fn maybe_downgrade(&mut self, config: &CoordinatorConfig, now: Instant) {
        let Some(downgrade) = self
            .consumer
            .take_downgrade(config.consumer.migration, config.group.max_size)
        else {
            return;
        };
        tracing::info!(group = %self.group.id, "downgraded to a classic group: its last consumer-protocol member left");
        self.group = Group::adopt(
            self.group.id.clone(),
            config.group,
            downgrade,
            now,
            now_ms(),
        );
    }
}

/// All groups of this coordinator.
#[derive(Debug)]
pub struct Groups {
    entries: Mutex<HashMap<String, Entry>>,
    config: CoordinatorConfig,
    /// The `__consumer_offsets` partitions whose groups are loaded: those this broker leads.
    loaded: Mutex<BTreeSet<i32>>,
}

pub(crate) fn now_ms() -> i64 {
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

pub(super) fn validate_group_id(group_id: &str) -> Result<(), BrokerError> {
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
            loaded: Mutex::default(),
        }
    }

    /// Whether the groups of `__consumer_offsets` partition `index` are loaded here.
    pub fn is_loaded(&self, index: i32) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&index)
    }

    /// The loaded partitions.
    pub fn loaded(&self) -> Vec<i32> {
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.iter().copied().collect()
    }

    /// Marks partition `index` loaded (after its replay).
    pub fn mark_loaded(&self, index: i32) {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index);
    }

    /// Forgets the groups of partition `index` (Kafka's resignation: another broker leads it
    /// now); their waiting members are told to find the new coordinator.
    pub fn unload(&self, index: i32) {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index);
        let partitions = self.config.offsets_partitions;
        let mut entries = self.lock();
        entries.retain(|id, entry| {
            let keep = partition_for(id, partitions) != index;
            if !keep {
                entry.group.fail_waiters(&BrokerError::NotCoordinator);
            }
            keep
        });
    }

    /// The settings.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn entry<'a>(
        &self,
        entries: &'a mut HashMap<String, Entry>,
        group_id: &str,
    ) -> &'a mut Entry {
        entries.entry(group_id.to_owned()).or_insert_with(|| Entry {
            group: Group::new(group_id.to_owned(), self.config.group, now_ms()),
            consumer: ConsumerGroup::default(),
            offsets: BTreeMap::new(),
            pending: HashMap::new(),
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
                    let (offsets, pending) = entries
                        .remove(&group)
                        .map(|e| (e.offsets, e.pending))
                        .unwrap_or_default();
                    let mut restored = Group::new(group.clone(), self.config.group, now_ms());
                    restored.restore(value, Instant::now());
                    entries.insert(
                        group,
                        Entry {
                            group: restored,
                            consumer: ConsumerGroup::default(),
                            offsets,
                            pending,
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

    /// Records offsets of `producer_id`'s open transaction (replayed, or committed through
    /// TxnOffsetCommit once written).
    pub fn add_pending(
        &self,
        group_id: &str,
        producer_id: i64,
        offsets: Vec<((String, i32), OffsetValue)>,
    ) {
        let mut entries = self.lock();
        let entry = self.entry(&mut entries, group_id);
        entry
            .pending
            .entry(producer_id)
            .or_default()
            .extend(offsets);
    }

    /// Ends `producer_id`'s transaction for the groups of `__consumer_offsets` partition
    /// `index`: its offsets become the committed ones, or are dropped.
    pub fn complete_txn(&self, index: i32, producer_id: i64, commit: bool) {
        let partitions = self.config.offsets_partitions;
        let mut entries = self.lock();
        for (id, entry) in entries.iter_mut() {
            if partition_for(id, partitions) != index {
                continue;
            }
            if let Some(offsets) = entry.pending.remove(&producer_id)
                && commit
            {
                entry.offsets.extend(offsets);
            }
        }
    }

    /// Drops groups that ended up with neither members nor offsets after a replay.
    pub fn finish_replay(&self) -> usize {
        let mut entries = self.lock();
        entries
            .retain(|_, e| !e.group.is_empty() || !e.offsets.is_empty() || !e.pending.is_empty());
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
            if entry
                .consumer
                .expire(self.config.consumer.session_timeout, now)
            {
                entry.maybe_downgrade(&self.config, now);
            }
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
            if entry.group.state != GroupState::Empty
                || !entry.consumer.is_empty()
                || entry.offsets.is_empty()
            {
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
    pub(super) fn forget(&self, group_id: &str, keys: &[RecordKey]) {
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
        if entry.group.is_empty() && entry.consumer.is_empty() && entry.offsets.is_empty() {
            entries.remove(group_id);
        }
    }

    /// Every live group's id, state and member count, sorted by id: for metrics.
    pub fn summaries(&self) -> Vec<(String, &'static str, usize)> {
        let mut out: Vec<(String, &'static str, usize)> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.group.state != GroupState::Dead)
            .map(|(id, e)| {
                if e.consumer.is_empty() {
                    (id.clone(), e.group.state.name(), e.group.members().count())
                } else {
                    (id.clone(), e.consumer.state(), e.consumer.len())
                }
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
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
pub(super) fn group_value(group: &Group) -> GroupValue {
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
    encode_batch(records, None)
}

/// The records of a TxnOffsetCommit as one batch of `producer_id`'s transaction (no
/// sequence: the coordinator writes it, not the producer).
pub fn encode_txn_records(
    records: &[(Bytes, Option<Bytes>)],
    producer_id: i64,
    epoch: i16,
) -> Result<Bytes, BrokerError> {
    encode_batch(records, Some((producer_id, epoch)))
}

fn encode_batch(
    records: &[(Bytes, Option<Bytes>)],
    transaction: Option<(i64, i16)>,
) -> Result<Bytes, BrokerError> {
    let now = now_ms();
    let (producer_id, producer_epoch) = transaction.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: transaction.is_some(),
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
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

#[cfg(test)]
#[path = "coordinator_test.rs"]
mod tests;
