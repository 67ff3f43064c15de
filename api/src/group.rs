//! Consumer groups as the protocol handlers see them: the [`GroupCoordinator`] trait and the
//! domain types of its requests and answers (the classic rebalance protocol, committed offsets).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::broker::BrokerError;

/// A classic group's state, named as DescribeGroups and ListGroups report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; committed offsets may remain.
    Empty,
    /// Members are (re)joining.
    PreparingRebalance,
    /// The leader is computing the assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone)]
pub struct JoinGroup {
    /// The group.
    pub group_id: String,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// How long the member may go without a heartbeat.
    pub session_timeout: Duration,
    /// How long the member may take to rejoin during a rebalance.
    pub rebalance_timeout: Duration,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// Assignment protocols with their metadata, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first get its id (KIP-394).
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A successful JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedGroup {
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen assignment protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The joining member's id.
    pub member_id: String,
    /// KIP-814: a static leader rejoining a stable group must not assign again.
    pub skip_assignment: bool,
    /// Every member, for the leader only.
    pub members: Vec<JoinedMember>,
}

/// A SyncGroup request.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    /// The group.
    pub group_id: String,
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// The generation the member joined.
    pub generation: i32,
    /// v5+: the protocol type the member expects.
    pub protocol_type: Option<String>,
    /// v5+: the protocol the member expects.
    pub protocol_name: Option<String>,
    /// The leader's assignment: member id → assignment bytes.
    pub assignments: Vec<(String, Bytes)>,
}

/// One member of a LeaveGroup request.
#[derive(Debug, Clone)]
pub struct LeavingMember {
    /// Member id (may be empty for a static member named by instance id).
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
}

/// Who commits offsets: a member of the current generation, or nobody (a standalone consumer
/// or an admin tool, allowed only while the group has no members).
#[derive(Debug, Clone)]
pub struct Committer {
    /// Member id; empty for a standalone commit.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Generation; -1 for a standalone commit.
    pub generation: i32,
    /// TxnOffsetCommit: the transactional producer (id, epoch) whose transaction the offsets
    /// belong to; they count once it commits.
    pub transaction: Option<(i64, i16)>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume, -1 if none is committed.
    pub offset: i64,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

impl CommittedOffset {
    /// What OffsetFetch answers for a partition without a commit.
    pub fn none() -> Self {
        Self {
            offset: -1,
            leader_epoch: -1,
            metadata: Some(String::new()),
        }
    }
}

/// A group in a ListGroups answer.
#[derive(Debug, Clone)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer`), empty for a group with offsets only.
    pub protocol_type: String,
    /// Kafka's name of its state (a classic [`GroupState`], or a consumer group's).
    pub state: &'static str,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: &'static str,
}

/// A member in a DescribeGroups answer.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Its metadata for the group's protocol.
    pub metadata: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// A DescribeGroups answer for one group.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// Kafka's name of its state (a classic [`GroupState`], or a consumer group's).
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol (empty unless stable or completing).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// The server assignors of consumer-protocol groups (KIP-848), the default first.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// A ConsumerGroupHeartbeat (KIP-848), topics by name. `None` fields are unchanged since the
/// member's last heartbeat.
#[derive(Debug, Clone)]
pub struct ConsumerHeartbeat {
    /// The group.
    pub group_id: String,
    /// The member (empty: the coordinator names it, v0).
    pub member_id: String,
    /// 0 joins, -1 leaves, -2 leaves for a while (static members), else the member's epoch.
    pub member_epoch: i32,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// The member's rack.
    pub rack_id: Option<String>,
    /// How long it may take to give up partitions (-1: unchanged).
    pub rebalance_timeout_ms: i32,
    /// Topics it subscribes to by name.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Topics it subscribes to by regular expression (v1).
    pub subscribed_topic_regex: Option<String>,
    /// The server assignor it asks for.
    pub server_assignor: Option<String>,
    /// The partitions it owns now.
    pub owned: Option<Vec<(String, Vec<i32>)>>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone)]
pub struct ConsumerHeartbeatAnswer {
    /// The member's id.
    pub member_id: String,
    /// Its epoch now.
    pub member_epoch: i32,
    /// When to heartbeat next.
    pub heartbeat_interval_ms: i32,
    /// Its whole assignment, when it changed (or the request was a full one).
    pub assignment: Option<Vec<(String, Vec<i32>)>>,
}

/// A member in a ConsumerGroupDescribe answer.
#[derive(Debug, Clone)]
pub struct ConsumerMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Topics it subscribes to by name.
    pub subscribed_topic_names: Vec<String>,
    /// Its regular expression subscription.
    pub subscribed_topic_regex: Option<String>,
    /// Whether it speaks the classic protocol (a group being upgraded).
    pub classic: bool,
    /// What it owns.
    pub assignment: Vec<(String, Vec<i32>)>,
    /// What it is headed for.
    pub target: Vec<(String, Vec<i32>)>,
}

/// A ConsumerGroupDescribe answer for one group.
#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    /// `Empty`, `Assigning`, `Reconciling` or `Stable`.
    pub state: &'static str,
    /// The group epoch.
    pub epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The assignor in use.
    pub assignor: &'static str,
    /// Members.
    pub members: Vec<ConsumerMemberDescription>,
}

/// Per-partition results: topic, partition, outcome.
pub type PartitionResults<T> = Vec<(String, i32, Result<T, BrokerError>)>;

/// The coordinator of consumer groups.
pub trait GroupCoordinator: Send + Sync + 'static {
    /// FindCoordinator: the broker coordinating `group_id` (the leader of its
    /// `__consumer_offsets` partition, which is created on first use).
    fn find_coordinator(
        &self,
        group_id: String,
    ) -> impl std::future::Future<Output = Result<crate::broker::BrokerNode, BrokerError>> + Send;

    /// JoinGroup; resolves when the rebalance it joins completes.
    fn join_group(
        &self,
        request: JoinGroup,
    ) -> impl Future<Output = Result<JoinedGroup, BrokerError>> + Send;

    /// SyncGroup; resolves with the member's assignment once the leader has sent it.
    fn sync_group(
        &self,
        request: SyncGroup,
    ) -> impl Future<Output = Result<Bytes, BrokerError>> + Send;

    /// Heartbeat.
    fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), BrokerError>;

    /// LeaveGroup: one result per member.
    fn leave_group(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError>;

    /// OffsetCommit: durable (fsync'd) when it resolves; one result per offset.
    fn commit_offsets(
        &self,
        group_id: &str,
        committer: Committer,
        offsets: Vec<OffsetToCommit>,
    ) -> impl Future<Output = Result<Vec<Result<(), BrokerError>>, BrokerError>> + Send;

    /// OffsetFetch of the given partitions, or of every partition with a commit (`None`).
    /// With `require_stable` (OffsetFetch v7+, KIP-447), a partition with offsets of an open
    /// transaction answers UNSTABLE_OFFSET_COMMIT.
    fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
        require_stable: bool,
    ) -> Result<PartitionResults<CommittedOffset>, BrokerError>;

    /// ListGroups.
    fn list_groups(&self) -> Vec<GroupListing>;

    /// DescribeGroups of one group (an unknown group is described as Dead, as Kafka does).
    fn describe_group(&self, group_id: &str) -> Result<GroupDescription, BrokerError>;

    /// DeleteGroups of one group: only an empty group can go; its offsets go with it.
    fn delete_group(&self, group_id: &str) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// ConsumerGroupHeartbeat (KIP-848).
    fn consumer_heartbeat(
        &self,
        heartbeat: ConsumerHeartbeat,
    ) -> Result<ConsumerHeartbeatAnswer, BrokerError>;

    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND unless it is a consumer group.
    fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, BrokerError>;

    /// OffsetDelete: forgets committed offsets the group no longer consumes.
    fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> impl Future<Output = Result<PartitionResults<()>, BrokerError>> + Send;
}
