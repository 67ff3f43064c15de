//! The JSON shapes of the admin HTTP API's cluster, topic, group and record routes, shared
//! with the CLI's `--output json` so that both say the same things the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BrokerView {
    /// Its id.
    pub id: i32,
    /// Host of its Kafka listener.
    pub host: String,
    /// Port of its Kafka listener.
    pub port: u16,
    /// Its admin API, `host:port`, when it registered one.
    pub admin: Option<String>,
    /// Its rack.
    pub rack: Option<String>,
    /// `active`, or `fenced` (registered, not serving).
    pub state: String,
    /// Partitions it leads.
    pub leaders: usize,
    /// Replicas it hosts.
    pub replicas: usize,
    /// Record batch bytes producers appended to it since it started (from its `/metrics`;
    /// absent when it did not answer).
    #[serde(default)]
    pub bytes_in: Option<u64>,
    /// Record batch bytes it sent to consumers since it started.
    #[serde(default)]
    pub bytes_out: Option<u64>,
    /// Records producers appended to it since it started.
    #[serde(default)]
    pub records_in: Option<u64>,
    /// Records it sent to consumers since it started.
    #[serde(default)]
    pub records_out: Option<u64>,
}

/// A controller of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ControllerView {
    /// Its node id.
    pub id: i32,
    /// Its controller listener, `host:port`.
    pub address: String,
    /// Whether it is the active controller.
    pub active: bool,
}

/// The cluster at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// The cluster id.
    pub cluster_id: String,
    /// The node answering.
    pub node_id: i32,
    /// The active controller, when known.
    pub active_controller: Option<i32>,
    /// The voters of the metadata quorum.
    pub controllers: Vec<ControllerView>,
    /// The registered brokers.
    pub brokers: Vec<BrokerView>,
    /// Topics.
    pub topics: usize,
    /// Partitions.
    pub partitions: usize,
    /// Partitions whose ISR lacks a replica.
    pub under_replicated: usize,
    /// Partitions without a live leader.
    pub offline: usize,
}

/// A topic as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicSummary {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: usize,
    /// Its replication factor.
    pub replication_factor: usize,
    /// Whether it is internal (`__consumer_offsets`).
    pub internal: bool,
    /// Its partitions whose ISR lacks a replica.
    pub under_replicated: usize,
    /// The cluster link it mirrors, if it is a mirror.
    pub mirror_of: Option<String>,
}

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Partitions (`num.partitions` when absent).
    #[serde(default)]
    pub partitions: Option<i32>,
    /// Replication factor (`default.replication.factor` when absent).
    #[serde(default)]
    pub replication_factor: Option<i16>,
    /// Topic configs, e.g. `{"retention.ms": "86400000"}`.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// One config of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicConfig {
    /// Its name.
    pub name: String,
    /// Its value (none for a sensitive one).
    pub value: Option<String>,
    /// Where the value comes from, as Kafka names it (`DYNAMIC_TOPIC_CONFIG`,
    /// `DEFAULT_CONFIG`, …).
    pub source: String,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether it is secret.
    pub sensitive: bool,
}

/// Config changes of a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConfigChanges {
    /// Configs to set.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Configs to remove (back to their defaults).
    #[serde(default)]
    pub delete: Vec<String>,
}

/// A topic's new partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartitionCount {
    /// The new total (partitions are never removed).
    pub count: i32,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartitionDetail {
    /// Its index.
    pub partition: i32,
    /// Its leader, -1 for none.
    pub leader: i32,
    /// Its replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// Its in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on brokers that are down.
    pub offline_replicas: Vec<i32>,
    /// Its log start offset (-1 when the leader did not answer).
    pub log_start_offset: i64,
    /// Its high watermark: the offset after the last record consumers can read.
    pub high_watermark: i64,
    /// Bytes of the leader's local log (-1 when unknown).
    pub local_bytes: i64,
    /// Bytes in the remote tier, before compression (when tiered and known).
    #[serde(default)]
    pub remote_bytes: Option<u64>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicDetail {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Whether it is internal.
    pub internal: bool,
    /// Its replication factor (of its first partition).
    pub replication_factor: usize,
    /// Its partitions.
    pub partitions: Vec<PartitionDetail>,
    /// Its configs (with the CLI: only `topic describe`).
    #[serde(default)]
    pub configs: Vec<TopicConfig>,
}

/// A group as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupSummary {
    /// Its id.
    pub group: String,
    /// Its state (`Stable`, `Empty`, …).
    pub state: String,
    /// Its protocol type (`consumer`).
    pub protocol_type: String,
    /// The broker coordinating it.
    pub coordinator: i32,
}

/// Partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopicPartitions {
    /// The topic.
    pub topic: String,
    /// Its partitions.
    pub partitions: Vec<i32>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupMember {
    /// Its member id.
    pub member_id: String,
    /// Its static instance id, if any.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its host.
    pub host: String,
    /// What it was assigned.
    pub assignment: Vec<TopicPartitions>,
}

/// A group's committed offset of one partition and its lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset (the next record the group reads), if any.
    pub committed: Option<i64>,
    /// The partition's high watermark (-1 when its leader did not answer).
    pub log_end: i64,
    /// `log_end - committed`, when both are known.
    pub lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub member: Option<String>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupDetail {
    /// Its id.
    pub group: String,
    /// Its state.
    pub state: String,
    /// Its protocol type.
    pub protocol_type: String,
    /// Its assignor (`range`, …).
    pub protocol: String,
    /// The broker coordinating it.
    pub coordinator: i32,
    /// Its members.
    pub members: Vec<GroupMember>,
    /// Its committed offsets (and assigned partitions without one).
    pub offsets: Vec<GroupOffset>,
    /// The sum of its partitions' lag.
    pub lag: i64,
}

/// Where to move a group's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OffsetReset {
    /// The topic (every topic the group has offsets for when absent).
    #[serde(default)]
    pub topic: Option<String>,
    /// Only these partitions of `topic`.
    #[serde(default)]
    pub partitions: Option<Vec<i32>>,
    /// `earliest`, `latest`, `offset`, `timestamp` (ms since the epoch) or `shift` (by
    /// `value` records, negative: back).
    pub to: String,
    /// The offset, timestamp or shift for `to` = `offset`, `timestamp`, `shift`.
    #[serde(default)]
    pub value: Option<i64>,
    /// Only compute the new offsets.
    #[serde(default)]
    pub dry_run: bool,
}

/// A record read back, its key and value as text (UTF-8, lossy) or pretty JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordView {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp, ms since the epoch.
    pub timestamp: i64,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its value, as text.
    pub value: Option<String>,
    /// Whether the value parses as JSON.
    pub value_is_json: bool,
    /// Its size in bytes (key and value).
    pub bytes: usize,
    /// Its headers, as text.
    pub headers: BTreeMap<String, Option<String>>,
}

/// Records of one partition from an offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordPage {
    /// The partition.
    pub partition: i32,
    /// The offset asked for (or found for the timestamp).
    pub from: i64,
    /// The offset after the last record returned, to ask for the next page.
    pub next: i64,
    /// The partition's log start offset.
    pub log_start_offset: i64,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The records.
    pub records: Vec<RecordView>,
}

/// Which records to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordQuery {
    /// The partition (0 when absent).
    #[serde(default)]
    pub partition: Option<i32>,
    /// The first offset (the log start when absent and no timestamp is given).
    #[serde(default)]
    pub offset: Option<i64>,
    /// The first record at or after this time, ms since the epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Records at most (50 when absent, 500 at most).
    #[serde(default)]
    pub limit: Option<usize>,
}
