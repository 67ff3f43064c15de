//! The `Broker` trait: everything the protocol handlers need from the broker, in domain terms.
//!
//! The API crate knows no storage. Handlers translate Kafka requests into calls on this trait and
//! its results back into Kafka responses; Kafka error codes are chosen in exactly one place,
//! [`BrokerError::code`].

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::Notify;
use uuid::Uuid;

/// A byte range of a file to send to a client with `sendfile`.
#[derive(Debug, Clone)]
pub struct FileRegion {
    /// The open file; holding it keeps the range readable even if the file is deleted.
    pub file: Arc<File>,
    /// Start of the range.
    pub position: u64,
    /// Length of the range.
    pub len: u64,
}

/// Identity of this broker and its cluster, as clients see it.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// The cluster id.
    pub cluster_id: String,
    /// This broker's node id.
    pub node_id: i32,
    /// Host clients of the listener are told to connect to (`advertised.listeners`).
    pub host: String,
    /// Port clients are told to connect to.
    pub port: i32,
    /// The node id clients send controller-bound requests to (a live broker, as in KRaft).
    pub controller_id: i32,
    /// The live (unfenced) brokers.
    pub brokers: Vec<BrokerNode>,
}

/// A broker as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerNode {
    /// Node id.
    pub node_id: i32,
    /// Host of its Kafka listener.
    pub host: String,
    /// Port of its Kafka listener.
    pub port: i32,
    /// Rack, if set.
    pub rack: Option<String>,
}

/// One partition's leader and replicas, for Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub index: i32,
    /// Leader broker, -1 when the partition has none (LEADER_NOT_AVAILABLE).
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica brokers.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on fenced brokers.
    pub offline_replicas: Vec<i32>,
}

/// A topic and its partitions, for Metadata.
#[derive(Debug, Clone)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partitions in index order.
    pub partitions: Vec<PartitionMetadata>,
    /// Internal topics (`__consumer_offsets`) are flagged to clients.
    pub is_internal: bool,
}

impl TopicMetadata {
    /// Replicas per partition.
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map_or(0, |p| p.replicas.len() as i16)
    }
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Topic name (validated by the broker).
    pub name: String,
    /// Partitions; `None` takes the broker default.
    pub partitions: Option<i32>,
    /// Replication factor; `None` takes the broker default.
    pub replication_factor: Option<i16>,
    /// Manual assignment: partition → replica broker ids.
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Topic config overrides.
    pub configs: BTreeMap<String, String>,
}

/// A change to one user's SCRAM credential: set (`Some`) or removed (`None`).
#[derive(Debug, Clone)]
pub struct ScramUpdate {
    /// The user.
    pub user: String,
    /// The mechanism.
    pub mechanism: crate::security::scram::ScramMechanism,
    /// The new credential.
    pub credential: Option<crate::security::scram::ScramCredential>,
}

/// A config entry as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    /// Kafka name of the config.
    pub name: String,
    /// Effective value.
    pub value: Option<String>,
    /// Where the value comes from (Kafka's `ConfigSource` codes).
    pub source: ConfigSource,
    /// Whether the value can be altered.
    pub read_only: bool,
    /// Value type code (DescribeConfigs v3+).
    pub config_type: i8,
    /// One line of documentation.
    pub documentation: Option<String>,
    /// A secret: its value is never sent.
    pub sensitive: bool,
}

/// Kafka's `ConfigSource` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic = 1,
    /// Set in the broker's configuration file or flags.
    StaticBroker = 4,
    /// Kafka's default.
    Default = 5,
}

/// One change of IncrementalAlterConfigs (op codes 0 set, 1 delete, 2 append, 3 subtract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set the value.
    Set(String, String),
    /// Remove the override.
    Delete(String),
    /// Add entries to a list config.
    Append(String, String),
    /// Remove entries from a list config.
    Subtract(String, String),
}

/// Result of appending one batch.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Broker timestamp for LogAppendTime topics, -1 otherwise.
    pub log_append_time: i64,
    /// First offset of the log.
    pub log_start_offset: i64,
    /// Offset after the batch: the acknowledgement waits for it if `must_wait`.
    pub next_offset: i64,
    /// Whether the acknowledgement waits ([`Broker::wait_acked`]): for an fsync the topic's
    /// flush policy requires, or for the in-sync replicas (`acks=all`).
    pub must_wait: bool,
}

/// A log directory as DescribeLogDirs reports it.
#[derive(Debug, Clone, Default)]
pub struct LogDir {
    /// Its path.
    pub path: String,
    /// Size of its volume, if known.
    pub total_bytes: Option<u64>,
    /// Free space on its volume for this process, if known.
    pub usable_bytes: Option<u64>,
    /// The partition replicas in it.
    pub replicas: Vec<ReplicaLog>,
}

/// One partition replica's log in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLog {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Bytes on local disk.
    pub size: u64,
    /// How far its log end is behind the high watermark.
    pub offset_lag: u64,
}

/// A fetch from a follower replica (Fetch with a replica id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaFetch {
    /// The follower's broker id.
    pub replica_id: i32,
    /// The epoch of the last batch in the follower's log (-1: unknown), for the divergence
    /// check (KIP-320).
    pub last_fetched_epoch: i32,
    /// The follower's log start offset (-1: not sent), for the leader's low watermark.
    pub log_start_offset: i64,
}

/// Who reads a partition, which decides what it may see and from which replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A consumer: only the leader serves it, up to the high watermark.
    Consumer,
    /// A consumer that named its rack (KIP-392): a follower may serve it too, up to the high
    /// watermark it learned.
    ConsumerWithRack,
    /// A consumer that sent the epoch of the last batch it holds (a cluster link's mirror):
    /// the leader checks it against its history as for a follower (KIP-320) and answers a
    /// diverging epoch when the consumer's log went another way.
    ConsumerAtEpoch(i32),
    /// A follower replica: the leader serves it up to the log end.
    Follower(ReplicaFetch),
}

/// Which records a consumer may see (Fetch and ListOffsets `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Only up to the last stable offset, told which transactions were aborted.
    ReadCommitted,
}

impl Isolation {
    /// From Kafka's `isolation_level` (1: read_committed).
    pub fn from_level(level: i8) -> Self {
        if level == 1 {
            Self::ReadCommitted
        } else {
            Self::ReadUncommitted
        }
    }
}

/// Where the records of a read are.
#[derive(Debug, Clone)]
pub enum Records {
    /// A range of a segment file, sent with `sendfile`.
    File(FileRegion),
    /// Bytes in memory (read from the remote tier), in consecutive pieces.
    Memory(Vec<Bytes>),
    /// The offset is in the remote tier: ask [`Broker::read_remote`].
    Remote,
}

impl Records {
    /// Bytes known so far (a pending remote read counts as none).
    pub fn len(&self) -> u64 {
        match self {
            Self::File(region) => region.len,
            Self::Memory(pieces) => pieces.iter().map(|b| b.len() as u64).sum(),
            Self::Remote => 0,
        }
    }

    /// Whether no bytes are known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a fetch of one partition found.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// First offset of the log (the remote tier's first offset when it has one).
    pub log_start_offset: i64,
    /// Record bytes, if any.
    pub records: Option<Records>,
    /// Records in `records` from the fetch offset on, for metrics (counted by offsets, to
    /// within one index interval; 0 for a remote read, counted once its bytes are in).
    pub record_count: u64,
    /// For a follower whose log diverged from the leader's: the epoch and end offset to
    /// truncate to (Fetch v12+ `DivergingEpoch`), with no records.
    pub diverging_epoch: Option<(i32, i64)>,
    /// For a `read_committed` read: the aborted transactions it overlaps, as (producer id,
    /// first offset).
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
}

/// An offset and its timestamp, for ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset, -1 if none.
    pub offset: i64,
    /// The timestamp, -1 if not applicable.
    pub timestamp: i64,
    /// Leader epoch of the offset.
    pub leader_epoch: i32,
}

/// What ListOffsets asks for, from Kafka's special timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// -1: the next offset to be written.
    Latest,
    /// -2: the first offset.
    Earliest,
    /// -3: the offset with the largest timestamp.
    MaxTimestamp,
    /// -4: the first offset on local disk.
    EarliestLocal,
    /// The first offset whose timestamp is at or above this one.
    Timestamp(i64),
}

/// A transaction marker to write (WriteTxnMarkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction's producer.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// Commit, or abort.
    pub commit: bool,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
}

/// A member of the metadata quorum, as DescribeQuorum reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    /// Node id.
    pub id: i32,
    /// The offset after the last metadata record it holds, -1 if unknown.
    pub log_end_offset: i64,
    /// When it last fetched from the leader (ms since the Unix epoch), -1 if unknown.
    pub last_fetch_ms: i64,
    /// When it was last known to have caught up with the leader, -1 if unknown.
    pub last_caught_up_ms: i64,
}

/// The metadata quorum as its active controller sees it (DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// The active controller, -1 if none.
    pub leader_id: i32,
    /// The leader's epoch (its raft term).
    pub leader_epoch: i32,
    /// The offset after the last committed metadata record.
    pub high_watermark: i64,
    /// The controllers that vote.
    pub voters: Vec<QuorumReplica>,
    /// The brokers, which only follow the metadata log.
    pub observers: Vec<QuorumReplica>,
    /// The voters' addresses: id, host, port.
    pub endpoints: Vec<(i32, String, u16)>,
}

/// A producer a partition's leader knows (DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// Sequence number of its last record.
    pub last_sequence: i32,
    /// Largest timestamp of its last batch.
    pub last_timestamp: i64,
    /// Epoch of the transaction coordinator that last wrote a marker for it, -1 if none.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, -1 if none.
    pub current_txn_start_offset: i64,
}

/// The KIP-890 guard of a transactional batch whose transaction was already open on the
/// partition when checked (Kafka's `VerificationGuard.SENTINEL`): no verification guard is
/// ever this, so the append refuses the batch if the transaction ended in between.
pub const OPEN_TXN_GUARD: u64 = 0;

/// Errors the broker reports to handlers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// No such topic or partition.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// No topic with this id.
    #[error("unknown topic id")]
    UnknownTopicId,
    /// An illegal topic name.
    #[error("{0}")]
    InvalidTopic(String),
    /// The topic exists already.
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    /// Bad partition count.
    #[error("{0}")]
    InvalidPartitions(String),
    /// Bad replication factor.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// Bad manual replica assignment.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// Bad config name or value.
    #[error("{0}")]
    InvalidConfig(String),
    /// A batch that fails its checks (CRC, sizes).
    #[error("{0}")]
    CorruptMessage(String),
    /// A well-formed batch the broker refuses.
    #[error("{0}")]
    InvalidRecord(String),
    /// A batch refused for some of its records (KIP-467), with each one's index and why.
    #[error("{message}")]
    InvalidRecords {
        /// What the whole batch is told.
        message: String,
        /// The records at fault: index in the batch, and why.
        records: Vec<(i32, String)>,
    },
    /// A batch larger than the topic allows.
    #[error("{0}")]
    MessageTooLarge(String),
    /// Old message format.
    #[error("{0}")]
    UnsupportedForMessageFormat(String),
    /// Offset outside the log.
    #[error("{0}")]
    OffsetOutOfRange(String),
    /// Idempotent sequence gap.
    #[error("{0}")]
    OutOfOrderSequence(String),
    /// Fenced producer epoch.
    #[error("{0}")]
    InvalidProducerEpoch(String),
    /// Leader epoch in the request is older than the broker's.
    #[error("fenced leader epoch")]
    FencedLeaderEpoch,
    /// Leader epoch in the request is newer than the broker's.
    #[error("unknown leader epoch")]
    UnknownLeaderEpoch,
    /// Something the request asks that Strata does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// A malformed request.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request's own deadline passed.
    #[error("{0}")]
    RequestTimedOut(String),
    /// Fewer in-sync replicas than `min.insync.replicas`: nothing was appended.
    #[error("{0}")]
    NotEnoughReplicas(String),
    /// Appended, but the ISR shrank below `min.insync.replicas` before it was committed.
    #[error("{0}")]
    NotEnoughReplicasAfterAppend(String),
    /// A disk error.
    #[error("storage error: {0}")]
    Storage(String),
    /// The remote tier (object store) failed.
    #[error("remote storage: {0}")]
    RemoteStorage(String),
    /// This broker does not lead the partition.
    #[error("this broker is not the leader of the partition")]
    NotLeaderOrFollower,
    /// The partition has no leader now.
    #[error("the partition has no leader")]
    LeaderNotAvailable,
    /// This broker does not coordinate the group.
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    /// A newer producer of the same transactional id exists (older request versions see
    /// INVALID_PRODUCER_EPOCH).
    #[error("{0}")]
    ProducerFenced(String),
    /// The transactional id is busy ending or fencing a transaction: retry.
    #[error("the transactional id has a transaction being completed; retry")]
    ConcurrentTransactions,
    /// The producer id is not the transactional id's.
    #[error("{0}")]
    InvalidProducerIdMapping(String),
    /// A transaction timeout above `transaction.max.timeout.ms`.
    #[error("{0}")]
    InvalidTransactionTimeout(String),
    /// No such transactional id.
    #[error("no such transactional id")]
    TransactionalIdNotFound,
    /// Offsets of an open transaction are pending for the partition (KIP-447).
    #[error("the partition has offsets of a transaction not yet ended")]
    UnstableOffsetCommit,
    /// A batch or request that goes against the state of a transaction.
    #[error("{0}")]
    InvalidTxnState(String),
    /// The transaction cannot go on, but its producer may abort it and carry on (KIP-890).
    #[error("{0}")]
    TransactionAbortable(String),
    /// A transaction marker from a coordinator that has been replaced.
    #[error("{0}")]
    TransactionCoordinatorFenced(String),
    /// The request goes against a configured policy (DeleteRecords on a compacted topic).
    #[error("{0}")]
    PolicyViolation(String),
    /// The metadata quorum could not be reached or did not answer in time.
    #[error("{0}")]
    ControllerUnavailable(String),
    /// The metadata quorum belongs to another cluster.
    #[error("{0}")]
    InconsistentClusterId(String),
    /// The group coordinator cannot serve the group now.
    #[error("the group coordinator is not available")]
    CoordinatorNotAvailable,
    /// The coordinator is loading the group's partition of `__consumer_offsets`.
    #[error("the coordinator is loading its groups")]
    CoordinatorLoadInProgress,
    /// An empty or over-long group id.
    #[error("{0}")]
    InvalidGroupId(String),
    /// The member id is not (or no longer) in the group.
    #[error("{0}")]
    UnknownMemberId(String),
    /// The request's generation is not the group's.
    #[error("{0}")]
    IllegalGeneration(String),
    /// The group is rebalancing: the member must rejoin.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// Protocol type or protocols that do not match the group's.
    #[error("{0}")]
    InconsistentGroupProtocol(String),
    /// A session timeout outside the broker's bounds.
    #[error("{0}")]
    InvalidSessionTimeout(String),
    /// KIP-394: the coordinator assigned this member id; join again with it.
    #[error("join again with the member id the coordinator assigned")]
    MemberIdRequired(String),
    /// KIP-345: another member took over this `group.instance.id`.
    #[error("{0}")]
    FencedInstanceId(String),
    /// The group has as many members as `group.max.size` allows.
    #[error("the group has reached group.max.size")]
    GroupMaxSizeReached,
    /// A consumer group member's epoch is not its current one: it must rejoin (KIP-848).
    #[error("{0}")]
    FencedMemberEpoch(String),
    /// The static instance id is held by another consumer group member (KIP-848).
    #[error("{0}")]
    UnreleasedInstanceId(String),
    /// The server assignor asked for is not one this coordinator runs (KIP-848).
    #[error("{0}")]
    UnsupportedAssignor(String),
    /// An offset commit or fetch at an old member epoch: retry after the next heartbeat.
    #[error("{0}")]
    StaleMemberEpoch(String),
    /// No such group.
    #[error("group not found")]
    GroupIdNotFound,
    /// The group has members, so it cannot be deleted.
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// Offset metadata longer than `offset.metadata.max.bytes`.
    #[error("{0}")]
    OffsetMetadataTooLarge(String),
    /// OffsetDelete of a partition the group's members still consume.
    #[error("the group is subscribed to this topic")]
    GroupSubscribedToTopic,
    /// Cancelling a reassignment where none is in progress.
    #[error("no partition reassignment is in progress")]
    NoReassignmentInProgress,
    /// The partition already has the leader an election would give it.
    #[error("leader election not needed for the partition")]
    ElectionNotNeeded,
    /// The preferred replica cannot lead now.
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// No replica can be elected.
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    /// The principal may not do this to the topic (or the topic is hidden from it).
    #[error("not authorized to access the topic")]
    TopicAuthorizationFailed,
    /// The principal may not do this to the group.
    #[error("not authorized to access the group")]
    GroupAuthorizationFailed,
    /// The principal may not do this to the cluster.
    #[error("not authorized to do this on the cluster")]
    ClusterAuthorizationFailed,
    /// The principal may not use the transactional id.
    #[error("not authorized to use the transactional id")]
    TransactionalIdAuthorizationFailed,
    /// No authorizer is configured, so there are no ACLs to manage.
    #[error("{0}")]
    SecurityDisabled(String),
}

impl BrokerError {
    /// The Kafka error code for this error.
    pub fn code(&self) -> i16 {
        let error = match self {
            Self::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            Self::UnknownTopicId => ResponseError::UnknownTopicId,
            Self::InvalidTopic(_) => ResponseError::InvalidTopicException,
            Self::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            Self::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Self::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Self::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Self::InvalidConfig(_) => ResponseError::InvalidConfig,
            Self::CorruptMessage(_) => ResponseError::CorruptMessage,
            Self::InvalidRecord(_) | Self::InvalidRecords { .. } => ResponseError::InvalidRecord,
            Self::MessageTooLarge(_) => ResponseError::MessageTooLarge,
            Self::UnsupportedForMessageFormat(_) => ResponseError::UnsupportedForMessageFormat,
            Self::OffsetOutOfRange(_) => ResponseError::OffsetOutOfRange,
            Self::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
            Self::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
            Self::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
            Self::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
            Self::Unsupported(_) => ResponseError::UnsupportedVersion,
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
            Self::RequestTimedOut(_) => ResponseError::RequestTimedOut,
            Self::NotEnoughReplicas(_) => ResponseError::NotEnoughReplicas,
            Self::NotEnoughReplicasAfterAppend(_) => ResponseError::NotEnoughReplicasAfterAppend,
            Self::Storage(_) => ResponseError::KafkaStorageError,
            // As Kafka: a RemoteStorageException is an unknown server error to clients, which
            // back off and fetch again.
            Self::RemoteStorage(_) => ResponseError::UnknownServerError,
            Self::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
            Self::LeaderNotAvailable => ResponseError::LeaderNotAvailable,
            Self::NotCoordinator => ResponseError::NotCoordinator,
            Self::ControllerUnavailable(_) => ResponseError::RequestTimedOut,
            Self::PolicyViolation(_) => ResponseError::PolicyViolation,
            Self::InvalidTxnState(_) => ResponseError::InvalidTxnState,
            Self::TransactionAbortable(_) => ResponseError::TransactionAbortable,
            Self::ProducerFenced(_) => ResponseError::ProducerFenced,
            Self::UnstableOffsetCommit => ResponseError::UnstableOffsetCommit,
            Self::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            Self::InvalidProducerIdMapping(_) => ResponseError::InvalidProducerIdMapping,
            Self::InvalidTransactionTimeout(_) => ResponseError::InvalidTransactionTimeout,
            Self::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
            Self::TransactionCoordinatorFenced(_) => ResponseError::TransactionCoordinatorFenced,
            Self::InconsistentClusterId(_) => ResponseError::InconsistentClusterId,
            Self::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            Self::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
            Self::InvalidGroupId(_) => ResponseError::InvalidGroupId,
            Self::UnknownMemberId(_) => ResponseError::UnknownMemberId,
            Self::IllegalGeneration(_) => ResponseError::IllegalGeneration,
            Self::RebalanceInProgress => ResponseError::RebalanceInProgress,
            Self::InconsistentGroupProtocol(_) => ResponseError::InconsistentGroupProtocol,
            Self::InvalidSessionTimeout(_) => ResponseError::InvalidSessionTimeout,
            Self::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            Self::FencedInstanceId(_) => ResponseError::FencedInstanceId,
            Self::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            Self::FencedMemberEpoch(_) => ResponseError::FencedMemberEpoch,
            Self::UnreleasedInstanceId(_) => ResponseError::UnreleasedInstanceId,
            Self::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
            Self::StaleMemberEpoch(_) => ResponseError::StaleMemberEpoch,
            Self::GroupIdNotFound => ResponseError::GroupIdNotFound,
            Self::NonEmptyGroup => ResponseError::NonEmptyGroup,
            Self::OffsetMetadataTooLarge(_) => ResponseError::OffsetMetadataTooLarge,
            Self::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            Self::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
            Self::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
            Self::PreferredLeaderNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
            Self::EligibleLeadersNotAvailable(_) => ResponseError::EligibleLeadersNotAvailable,
            Self::TopicAuthorizationFailed => ResponseError::TopicAuthorizationFailed,
            Self::GroupAuthorizationFailed => ResponseError::GroupAuthorizationFailed,
            Self::ClusterAuthorizationFailed => ResponseError::ClusterAuthorizationFailed,
            Self::TransactionalIdAuthorizationFailed => {
                ResponseError::TransactionalIdAuthorizationFailed
            }
            Self::SecurityDisabled(_) => ResponseError::SecurityDisabled,
        };
        error.code()
    }

    /// The message sent beside the code where the response has room for one.
    pub fn message(&self) -> Option<String> {
        Some(self.to_string())
    }
}

/// Per (topic, partition): what an admin request did to it.
pub type PartitionResults = Vec<(String, i32, Result<(), BrokerError>)>;

/// One partition's reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// All replicas now: the target first, then those being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

/// The broker as the protocol handlers see it.
///
/// Contract: `append` has finished writing (to the page cache at least) when it returns, so
/// appends are ordered by call order and a later `read` on any connection sees them;
/// `wait_acked` resolves once the offset is acknowledged as asked. Synchronous methods never block on the
/// network; metadata changes go through the controller quorum and so return futures.
/// Checks a request's `current_leader_epoch` against the partition's `epoch` (KIP-320): -1
/// skips the check.
pub fn check_epoch(current_leader_epoch: i32, epoch: i32) -> Result<(), BrokerError> {
    if current_leader_epoch < 0 {
        return Ok(());
    }
    match current_leader_epoch.cmp(&epoch) {
        std::cmp::Ordering::Less => Err(BrokerError::FencedLeaderEpoch),
        std::cmp::Ordering::Greater => Err(BrokerError::UnknownLeaderEpoch),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// The waker of one parked fetch, registered with each of its partitions (Kafka's delayed
/// fetch purgatory, keyed by partition): an append wakes only the fetches registered with its
/// partition, however many others are parked.
#[derive(Debug, Default)]
pub struct FetchWaker {
    notify: Notify,
    done: AtomicBool,
}

impl FetchWaker {
    /// Wakes the fetch (or, if it is not waiting yet, its next wait returns at once).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Whether the fetch no longer waits: its registrations can be dropped.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// A parked fetch's registration with its partitions, taken before it reads them.
#[derive(Debug)]
pub struct DataChanges {
    waker: Arc<FetchWaker>,
}

impl DataChanges {
    /// The registration of `waker`, which the broker's reads register with each partition.
    pub fn new(waker: Arc<FetchWaker>) -> Self {
        Self { waker }
    }

    /// Resolves once one of the partitions changed since the registration.
    pub async fn changed(&self) {
        self.waker.notify.notified().await;
    }
}

impl Drop for DataChanges {
    fn drop(&mut self) {
        self.waker.done.store(true, Ordering::Release);
    }
}

pub trait Broker: Send + Sync + 'static {
    /// The consumer group coordinator.
    type Groups: crate::group::GroupCoordinator;

    /// The transaction coordinator.
    type Txns: crate::txn::TransactionCoordinator;

    /// The transaction coordinator.
    fn txns(&self) -> &Self::Txns;

    /// A user's SCRAM credential for `mechanism`, from the metadata log.
    fn scram_credential(
        &self,
        user: &str,
        mechanism: crate::security::scram::ScramMechanism,
    ) -> Option<crate::security::scram::ScramCredential>;

    /// Whether an authorizer is configured (`authorizer.class.name`).
    fn authorizer_enabled(&self) -> bool;

    /// Whether `session` may do `operation` on the resource; always without an authorizer.
    fn authorize(
        &self,
        session: &crate::security::Session,
        operation: crate::security::acl::Operation,
        resource_type: crate::security::acl::ResourceType,
        name: &str,
    ) -> bool;

    /// Whether `session` may write to some topic (KIP-679); always without an authorizer.
    fn may_write_some_topic(&self, session: &crate::security::Session) -> bool;

    /// Every ACL with its id.
    fn acls(&self) -> Vec<(uuid::Uuid, crate::security::acl::Acl)>;

    /// Adds ACLs through the controller.
    fn create_acls(
        &self,
        acls: Vec<crate::security::acl::Acl>,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Removes ACLs by id through the controller.
    fn delete_acls(
        &self,
        ids: Vec<uuid::Uuid>,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Every user with SCRAM credentials, with their mechanisms and iterations.
    fn scram_users(&self) -> BTreeMap<String, Vec<(crate::security::scram::ScramMechanism, i32)>>;

    /// Sets or removes SCRAM credentials through the controller; per update, in order, why it
    /// was refused (the credential to remove does not exist), if it was.
    fn alter_scram(
        &self,
        updates: Vec<ScramUpdate>,
    ) -> impl Future<Output = Result<Vec<Option<String>>, BrokerError>> + Send;

    /// This broker's identity and the live brokers, as clients of `listener` reach them.
    fn cluster(&self, listener: &str) -> ClusterInfo;

    /// Most bytes of records one Fetch response returns (`fetch.max.bytes`): remote records
    /// are held in memory until sent, so this bounds what one request can pin.
    fn fetch_max_bytes(&self) -> u64 {
        57_671_680
    }

    /// The consumer group coordinator.
    fn groups(&self) -> &Self::Groups;

    /// Metadata of the named topics (all topics for `None`), creating missing ones when
    /// `auto_create` is set and the broker allows it. Unknown names come back as errors.
    fn topics(
        &self,
        names: Option<Vec<String>>,
        auto_create: bool,
    ) -> impl Future<Output = Vec<(String, Result<TopicMetadata, BrokerError>)>> + Send;

    /// The id of the topic called `name`.
    fn topic_id(&self, name: &str) -> Option<Uuid>;

    /// The name of the topic with this id.
    fn topic_name(&self, topic_id: Uuid) -> Option<String>;

    /// The names of every topic, in no particular order.
    fn topic_names(&self) -> Vec<String>;

    /// The metadata quorum as its active controller sees it (DescribeQuorum).
    fn quorum(&self) -> impl Future<Output = Result<QuorumInfo, BrokerError>> + Send;

    /// Deletes the records of a partition below `offset` (-1: the high watermark); resolves
    /// with the low watermark once every in-sync replica deleted them, within `timeout`.
    fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<i64, BrokerError>> + Send;

    /// Appends a transaction marker to a partition this broker leads and waits until the
    /// in-sync replicas have it.
    fn write_txn_marker(
        &self,
        topic: &str,
        partition: i32,
        marker: TxnMarker,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// The producers the leader of a partition knows (DescribeProducers).
    fn producers(&self, topic: &str, partition: i32) -> Result<Vec<ProducerInfo>, BrokerError>;

    /// Creates a topic (or only validates the request).
    fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> impl Future<Output = Result<TopicMetadata, BrokerError>> + Send;

    /// Deletes a topic and its data; returns its id.
    fn delete_topic(&self, name: String) -> impl Future<Output = Result<Uuid, BrokerError>> + Send;

    /// Raises a topic's partition count, optionally on given replicas (one list per new
    /// partition).
    fn create_partitions(
        &self,
        name: String,
        count: i32,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// The effective configs of a topic.
    fn topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError>;

    /// This broker's configs.
    fn broker_configs(&self) -> Vec<ConfigEntry>;

    /// Replaces all of a topic's overrides (AlterConfigs).
    fn replace_topic_configs(
        &self,
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Applies incremental changes to a topic's overrides (IncrementalAlterConfigs).
    fn alter_topic_configs(
        &self,
        name: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Sets or deletes dynamic broker configs (IncrementalAlterConfigs on a BROKER resource):
    /// `resource` is a broker id, or empty for the cluster-wide default.
    fn alter_broker_configs(
        &self,
        resource: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Validates and appends one record batch to a partition. With `acks` -1 it is refused
    /// (NOT_ENOUGH_REPLICAS) while the ISR is smaller than `min.insync.replicas`. `guard` is
    /// the KIP-890 verification a transactional batch passed
    /// ([`Self::start_txn_verification`]).
    fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
        guard: Option<u64>,
    ) -> Result<Appended, BrokerError>;

    /// KIP-890, on the partition's leader: `None` when a transactional batch of `producer_id`
    /// at `epoch` may be appended at once (its transaction is open on the partition), else
    /// the guard to append it with once its coordinator has confirmed the partition.
    fn start_txn_verification(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<Option<u64>, BrokerError>;

    /// Resolves when every offset below `offset` of the partition is acknowledged as `acks`
    /// asks: durable on the leader, or (-1) committed by the ISR (below the high watermark).
    fn wait_acked(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        acks: i16,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Reads from `offset` up to `limits.0` bytes; with `limits.1` (min one), a first batch
    /// larger than that is returned whole (KIP-74). `check.0`, the request's current leader
    /// epoch, must be the partition's when 0 or more (FENCED_LEADER_EPOCH if older,
    /// UNKNOWN_LEADER_EPOCH if newer, KIP-320). A waker given in `check.1` is registered with
    /// the partition before its high watermark is read: the partition's next change wakes it.
    /// A `replica` fetch reads up to the log end, reports the follower's progress and may
    /// answer a diverging epoch instead of records.
    fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: (u64, bool),
        check: (i32, Option<&Arc<FetchWaker>>),
        reader: (Reader, Isolation),
    ) -> Result<PartitionRead, BrokerError>;

    /// Reads from `offset` in the remote tier (after `read` answered [`Records::Remote`]):
    /// whole batches up to `max_bytes`, at least one with `min_one`, and for a
    /// `read_committed` read the aborted transactions they overlap. `None` when the read is
    /// not done within `wait` (`remote.fetch.max.wait.ms`): it goes on in the background.
    #[allow(clippy::type_complexity)]
    fn read_remote(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: (u64, bool, Isolation),
        wait: std::time::Duration,
    ) -> impl Future<Output = Result<Option<(Vec<Bytes>, Option<Vec<(i64, i64)>>)>, BrokerError>> + Send;
    /// Offset lookup for ListOffsets (timestamps may be looked up in the remote tier); a
    /// `read_committed` lookup answers within the last stable offset.
    fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> impl Future<Output = Result<OffsetAndTimestamp, BrokerError>> + Send;

    /// The partition's current leader epoch.
    fn leader_epoch(&self, topic: &str, partition: i32) -> Result<i32, BrokerError>;

    /// The largest epoch not above `epoch` and the offset where it ended (OffsetForLeaderEpoch).
    fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Result<(i32, i64), BrokerError>;

    /// The broker's log directory and the replicas in it (DescribeLogDirs).
    fn log_dir(&self) -> LogDir;

    /// KIP-392: the replica a consumer in `client_rack` should fetch from instead of this
    /// leader, if one is in its rack and this broker is not.
    fn preferred_read_replica(&self, topic: &str, partition: i32, client_rack: &str)
    -> Option<i32>;

    /// Starts (target replicas) or cancels (`None`) partition reassignments
    /// (AlterPartitionReassignments); the outcome per partition.
    /// Unless `allow_rf_change` (KIP-860), a target of another size than the partition's
    /// replication factor is refused.
    fn reassign_partitions(
        &self,
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
        allow_rf_change: bool,
    ) -> impl Future<Output = Result<PartitionResults, BrokerError>> + Send;

    /// Reassignments in progress (ListPartitionReassignments).
    fn reassignments(&self) -> Vec<Reassignment>;

    /// Elects preferred leaders, or with `unclean` a leader for leaderless partitions
    /// (ElectLeaders); every partition when `partitions` is `None`.
    fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> impl Future<Output = Result<PartitionResults, BrokerError>> + Send;

    /// A new producer id and epoch, or the epoch bump of an existing producer (KIP-360).
    fn init_producer_id(
        &self,
        existing: Option<(i64, i16)>,
    ) -> impl Future<Output = Result<(i64, i16), BrokerError>> + Send;
}
