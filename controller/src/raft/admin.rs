//! Requests only the active controller serves: topic and partition changes, topic configs,
//! producer id blocks and voter changes. Each is validated against the image and becomes
//! records committed through raft; they run one at a time (like Kafka's controller event
//! queue), so a request never validates against an image another one is about to change.

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::active::{ActiveState, commit, leads};
use super::network::WriteRefusal;
use super::{NodeId, StateMachine, TypeConfig};
use crate::placement::{PlacementError, records_for_new_partitions};
use crate::reassignment::{
    MoveError, record_for_preferred_leader, record_for_reassignment, record_for_unclean_leader,
    records_for_completed_reassignments,
};
use crate::record::{ConfigResource, MetadataRecord};

/// Producer ids handed to a broker at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Name (validated by the broker that received the request).
    pub name: String,
    /// Partition count.
    pub partitions: usize,
    /// Replicas per partition.
    pub replication_factor: usize,
    /// Manual replica lists, one per partition; empty to place them.
    #[serde(default)]
    pub assignments: Vec<Vec<i32>>,
    /// Config overrides (validated by the broker).
    pub configs: BTreeMap<String, String>,
    /// Check only; commit nothing.
    #[serde(default)]
    pub validate_only: bool,
    /// The topic id to use (restoring a topic from the object store); a fresh one if `None`.
    #[serde(default)]
    pub topic_id: Option<Uuid>,
}

/// A request for the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Create a topic with its partitions.
    CreateTopic(NewTopic),
    /// Delete a topic and its partitions.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Raise a topic's partition count.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// The new total count.
        count: usize,
        /// Replica lists of the new partitions; empty to place them.
        assignments: Vec<Vec<i32>>,
        /// Check only.
        validate_only: bool,
    },
    /// Replace a topic's config overrides.
    SetTopicConfigs {
        /// Topic name.
        name: String,
        /// The complete new overrides.
        configs: BTreeMap<String, String>,
    },
    /// Hand a block of producer ids to a broker.
    AllocateProducerIds {
        /// The asking broker.
        broker_id: i32,
    },
    /// Make a controller a voter (it catches up as a learner first).
    AddVoter {
        /// Its node id.
        id: NodeId,
        /// Its controller listener.
        addr: String,
    },
    /// Take a voter out of the quorum.
    RemoveVoter {
        /// Its node id.
        id: NodeId,
    },
    /// Partition leaders' new ISRs (Kafka's AlterPartition, batched as Kafka's brokers send
    /// it): each applied only if the leader and partition epochs it was decided under are
    /// still current.
    AlterPartitions(Vec<IsrChange>),
    /// Set (`Some`) or remove (`None`) dynamic broker configs, for one broker or (`None`) the
    /// cluster default.
    SetBrokerConfigs {
        /// The broker, or the cluster default.
        broker: Option<i32>,
        /// Config changes.
        changes: BTreeMap<String, Option<String>>,
    },
    /// Start or cancel partition reassignments (AlterPartitionReassignments).
    ReassignPartitions(Vec<PartitionMove>),
    /// Reserve producer ids up to `above` (the largest a mirror holds): this cluster never
    /// hands them to its own producers.
    ReserveProducerIds {
        /// The largest id to reserve.
        above: i64,
    },
    /// Create a cluster link.
    CreateLink {
        /// Its name.
        name: String,
        /// What it mirrors.
        config: crate::link::LinkConfig,
    },
    /// Point a cluster link at new bootstrap servers of its source (the source cluster moved
    /// or was rebuilt).
    SetLinkSource {
        /// Its name.
        name: String,
        /// Bootstrap servers of the source cluster.
        source: String,
        /// New security settings to reach it with, if they change.
        #[serde(default)]
        security: Option<crate::link::ClientProperties>,
    },
    /// Delete a cluster link; refused while topics still mirror through it.
    DeleteLink {
        /// Its name.
        name: String,
    },
    /// Pause (or resume) a cluster link.
    PauseLink {
        /// Its name.
        name: String,
        /// Paused when true.
        paused: bool,
    },
    /// Create a topic that mirrors a source topic through a link.
    CreateMirrorTopic {
        /// The topic.
        topic: NewTopic,
        /// What it mirrors.
        mirror: crate::link::MirrorOf,
    },
    /// Stop mirror topics of a link (failover or promote): each becomes writable, its
    /// partitions' leader epochs raised so that new batches carry a newer epoch.
    StopMirrors {
        /// The link.
        link: String,
        /// Topics to stop; every mirroring topic of the link when `None`.
        topics: Option<Vec<String>>,
        /// Failover or promote.
        reason: crate::link::StopReason,
    },
    /// Turn topics of this cluster into mirrors of the link's source (failback, reverse):
    /// each follows the source topic named after it (the link's prefix taken off), and its
    /// leader cuts off, into a side topic, whatever its history has that the source's lacks.
    RestoreMirrors {
        /// The link.
        link: String,
        /// Local topic names.
        topics: Vec<String>,
    },
    /// A leader asks for a leader epoch above `above` (the newest epoch in its log, a
    /// source's, once a mirror stops), fenced by the epoch it leads in.
    RaiseLeaderEpoch {
        /// The leader asking.
        broker_id: i32,
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// The leader epoch it leads in.
        leader_epoch: i32,
        /// The epoch the new one must exceed.
        above: i32,
    },
    /// Set or remove users' SCRAM credentials (AlterUserScramCredentials).
    AlterScram(Vec<ScramChange>),
    /// Add ACLs (CreateAcls); one that exists already is not added twice.
    CreateAcls(Vec<crate::record::AclRecord>),
    /// Remove ACLs by id (DeleteAcls); ids already gone are skipped.
    DeleteAcls(Vec<Uuid>),
    /// Elect leaders (ElectLeaders): the preferred replica, or with `unclean` any alive
    /// replica of a leaderless partition; every partition when `partitions` is `None`.
    ElectLeaders {
        /// Unclean election instead of preferred.
        unclean: bool,
        /// (topic, partition) pairs.
        partitions: Option<Vec<(String, i32)>>,
    },
}

/// One user's SCRAM credential set (`Some`) or removed (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramChange {
    /// The user name.
    pub user: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The new credential.
    pub credential: Option<crate::record::ScramCredential>,
}

/// One partition's ISR change, as its leader asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChange {
    /// The leader asking.
    pub broker_id: i32,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The leader epoch the leader holds.
    pub leader_epoch: i32,
    /// The partition epoch the change was made from.
    pub partition_epoch: i32,
    /// The ISR wanted.
    pub isr: Vec<i32>,
}

/// One partition's reassignment: its new replicas, or `None` to cancel the one in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Target replicas, the preferred leader first.
    pub target: Option<Vec<i32>>,
}

/// What an admin request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminAnswer {
    /// A topic exists (or would, when only validated).
    Topic {
        /// Its id.
        topic_id: Uuid,
        /// Partitions.
        partitions: usize,
        /// Replication factor.
        replication_factor: usize,
    },
    /// Producer ids `start..end` are the broker's.
    ProducerIds {
        /// First id.
        start: i64,
        /// One past the last id.
        end: i64,
    },
    /// Done, nothing to report.
    Done,
    /// The voters after a change: id → controller address.
    Voters(BTreeMap<NodeId, String>),
    /// Per ISR change, in order: why it was refused, if it was.
    IsrResults(Vec<Option<String>>),
    /// Per partition of a reassignment or election: (topic, partition, refusal if any).
    Moves(Vec<(String, i32, Option<MoveError>)>),
    /// The topics a request acted on.
    Topics(Vec<String>),
    /// Per SCRAM change, in order: why it was refused, if it was.
    ScramResults(Vec<Option<String>>),
}

/// An admin answer with the metadata offset that includes its effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminReply {
    /// What the request did.
    pub answer: AdminAnswer,
    /// A broker whose image reached this offset sees the change.
    pub offset: u64,
}

/// Why the controller refused a request, by the Kafka error a client should see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Invalid {
    /// TOPIC_ALREADY_EXISTS.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// INVALID_PARTITIONS.
    #[error("{0}")]
    Partitions(String),
    /// INVALID_REPLICATION_FACTOR.
    #[error("{0}")]
    ReplicationFactor(String),
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("{0}")]
    Assignment(String),
    /// INCONSISTENT_CLUSTER_ID.
    #[error("{0}")]
    ClusterId(String),
    /// INVALID_REQUEST.
    #[error("{0}")]
    Request(String),
}

impl From<PlacementError> for Invalid {
    fn from(e: PlacementError) -> Self {
        match e {
            PlacementError::NotEnoughBrokers { .. } => Self::ReplicationFactor(e.to_string()),
            PlacementError::InvalidAssignment(m) => Self::Assignment(m),
        }
    }
}

pub(super) fn invalid(e: impl Into<Invalid>) -> WriteRefusal {
    WriteRefusal::Invalid(e.into())
}

/// Serves one admin request on the active controller.
pub async fn handle(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    active: &ActiveState,
    request: AdminRequest,
) -> Result<AdminReply, WriteRefusal> {
    if !leads(raft) {
        return Err(WriteRefusal::NotLeader(None));
    }
    let _one_at_a_time = active.admin.lock().await;
    let answer = serve(raft, state, request).await?;
    // A write returns once applied here, so the image offset covers it.
    Ok(AdminReply {
        answer,
        offset: state.with_image(|i| i.offset),
    })
}

async fn serve(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    request: AdminRequest,
) -> Result<AdminAnswer, WriteRefusal> {
    match request {
        AdminRequest::CreateTopic(topic) => create_topic(raft, state, topic, None).await,
        AdminRequest::CreateMirrorTopic { topic, mirror } => {
            create_topic(raft, state, topic, Some(mirror)).await
        }
        AdminRequest::ReserveProducerIds { above } => {
            if above >= state.with_image(|i| i.next_producer_id) {
                commit_all(
                    raft,
                    vec![MetadataRecord::AllocateProducerIds {
                        broker_id: -1,
                        next_producer_id: above + 1,
                    }],
                )
                .await?;
                tracing::info!(above, "producer ids reserved for mirrored producers");
            }
            Ok(AdminAnswer::Done)
        }
        AdminRequest::CreateLink { name, config } => {
            super::links::create_link(raft, state, name, config).await
        }
        AdminRequest::DeleteLink { name } => super::links::delete_link(raft, state, name).await,
        AdminRequest::SetLinkSource {
            name,
            source,
            security,
        } => super::links::set_link_source(raft, state, name, source, security).await,
        AdminRequest::PauseLink { name, paused } => {
            super::links::pause_link(raft, state, name, paused).await
        }
        AdminRequest::StopMirrors {
            link,
            topics,
            reason,
        } => super::links::stop_mirrors(raft, state, link, topics, reason).await,
        AdminRequest::RestoreMirrors { link, topics } => {
            super::links::restore_mirrors(raft, state, link, topics).await
        }
        AdminRequest::RaiseLeaderEpoch {
            broker_id,
            topic_id,
            partition,
            leader_epoch,
            above,
        } => {
            super::links::raise_leader_epoch(
                raft,
                state,
                broker_id,
                (topic_id, partition),
                leader_epoch,
                above,
            )
            .await
        }
        AdminRequest::DeleteTopic { name } => {
            let topic_id = state
                .with_image(|i| i.topic_ids.get(&name).copied())
                .ok_or_else(|| invalid(Invalid::UnknownTopic(name.clone())))?;
            commit_all(raft, vec![MetadataRecord::DeleteTopic { topic_id }]).await?;
            tracing::info!(topic = %name, "deleted topic");
            Ok(AdminAnswer::Done)
        }
        AdminRequest::CreatePartitions {
            name,
            count,
            assignments,
            validate_only,
        } => {
            let (records, topic_id, rf) = state.with_image(|image| {
                let topic = image
                    .topic(&name)
                    .ok_or_else(|| invalid(Invalid::UnknownTopic(name.clone())))?;
                let current = topic.partitions.len();
                if count <= current {
                    return Err(invalid(Invalid::Partitions(format!(
                        "topic '{name}' has {current} partitions; the new count {count} must be larger"
                    ))));
                }
                let rf = topic.partitions.values().next().map_or(1, |p| p.replicas.len());
                let records = records_for_new_partitions(
                    image,
                    topic.id,
                    current as i32,
                    count - current,
                    rf,
                    &assignments,
                )
                .map_err(invalid)?;
                Ok((records, topic.id, rf))
            })?;
            if !validate_only {
                commit_all(raft, records).await?;
                tracing::info!(topic = %name, count, "added partitions");
            }
            Ok(AdminAnswer::Topic {
                topic_id,
                partitions: count,
                replication_factor: rf,
            })
        }
        AdminRequest::SetTopicConfigs { name, configs } => {
            let records = state.with_image(|image| {
                let topic = image
                    .topic(&name)
                    .ok_or_else(|| invalid(Invalid::UnknownTopic(name.clone())))?;
                Ok(config_records(&name, &topic.configs, &configs))
            })?;
            if !records.is_empty() {
                commit_all(raft, records).await?;
                tracing::info!(topic = %name, "topic configs changed");
            }
            Ok(AdminAnswer::Done)
        }
        AdminRequest::AllocateProducerIds { broker_id } => {
            let start = state.with_image(|i| i.next_producer_id);
            let end = start + PRODUCER_ID_BLOCK;
            commit_all(
                raft,
                vec![MetadataRecord::AllocateProducerIds {
                    broker_id,
                    next_producer_id: end,
                }],
            )
            .await?;
            Ok(AdminAnswer::ProducerIds { start, end })
        }
        AdminRequest::AddVoter { id, addr } => {
            raft.add_learner(id, BasicNode { addr: addr.clone() }, true)
                .await
                .map_err(|e| refusal(e, &format!("adding {id} as a learner")))?;
            let mut voters = voter_ids(raft);
            voters.insert(id);
            change_voters(raft, voters).await?;
            tracing::info!(node = id, %addr, "voter added");
            Ok(AdminAnswer::Voters(voter_addresses(raft)))
        }
        AdminRequest::AlterPartitions(changes) => alter_partitions(raft, state, changes).await,
        AdminRequest::SetBrokerConfigs { broker, changes } => {
            let resource = broker.map_or(ConfigResource::Cluster, ConfigResource::Broker);
            let records: Vec<MetadataRecord> = changes
                .into_iter()
                .map(|(name, value)| MetadataRecord::SetConfig {
                    resource: resource.clone(),
                    name,
                    value,
                })
                .collect();
            if !records.is_empty() {
                commit_all(raft, records).await?;
                tracing::info!(?resource, "broker configs changed");
            }
            Ok(AdminAnswer::Done)
        }
        AdminRequest::ReassignPartitions(moves) => reassign(raft, state, moves).await,
        AdminRequest::CreateAcls(acls) => {
            let records: Vec<MetadataRecord> = state.with_image(|image| {
                let mut seen: std::collections::BTreeSet<&crate::record::AclRecord> =
                    image.acls.values().collect();
                acls.iter()
                    .filter(|acl| seen.insert(acl))
                    .map(|acl| MetadataRecord::CreateAcl {
                        id: Uuid::new_v4(),
                        acl: acl.clone(),
                    })
                    .collect()
            });
            if !records.is_empty() {
                commit_all(raft, records).await?;
                tracing::info!(count = acls.len(), "ACLs created");
            }
            Ok(AdminAnswer::Done)
        }
        AdminRequest::DeleteAcls(ids) => {
            let records: Vec<MetadataRecord> = state.with_image(|image| {
                ids.iter()
                    .filter(|id| image.acls.contains_key(id))
                    .map(|id| MetadataRecord::RemoveAcl { id: *id })
                    .collect()
            });
            if !records.is_empty() {
                commit_all(raft, records).await?;
                tracing::info!(count = ids.len(), "ACLs deleted");
            }
            Ok(AdminAnswer::Done)
        }
        AdminRequest::AlterScram(changes) => {
            let mut records = Vec::new();
            let results = state.with_image(|image| {
                changes
                    .into_iter()
                    .map(|change| {
                        let exists = image
                            .scram
                            .get(&change.user)
                            .is_some_and(|m| m.contains_key(&change.mechanism));
                        if change.credential.is_none() && !exists {
                            return Some(format!(
                                "user '{}' has no {} credential",
                                change.user, change.mechanism
                            ));
                        }
                        records.push(MetadataRecord::SetScramCredential {
                            user: change.user,
                            mechanism: change.mechanism,
                            credential: change.credential,
                        });
                        None
                    })
                    .collect()
            });
            if !records.is_empty() {
                commit_all(raft, records).await?;
                tracing::info!("SCRAM credentials changed");
            }
            Ok(AdminAnswer::ScramResults(results))
        }
        AdminRequest::ElectLeaders {
            unclean,
            partitions,
        } => elect_leaders(raft, state, unclean, partitions).await,
        AdminRequest::RemoveVoter { id } => {
            let mut voters = voter_ids(raft);
            if !voters.remove(&id) {
                return Err(invalid(Invalid::Request(format!("{id} is not a voter"))));
            }
            if voters.is_empty() {
                return Err(invalid(Invalid::Request(
                    "the last voter cannot be removed".into(),
                )));
            }
            let removed_addr = voter_addresses(raft).remove(&id);
            change_voters(raft, voters).await?;
            tracing::info!(node = id, "voter removed");
            // It may never hear of its removal through the log (it is no longer replicated
            // to), and would campaign forever: tell it.
            if let Some(addr) = removed_addr {
                super::network::tell_removed(&addr, id).await;
            }
            Ok(AdminAnswer::Voters(voter_addresses(raft)))
        }
    }
}

/// Kafka's AlterPartition checks: the asker leads the partition in the epoch it names, the
/// partition has not changed since (partition epoch), and the new ISR holds the leader and
/// only replicas; a replica may join only while it is unfenced. The record to commit (none
/// when the ISR is already that), or why the change is refused.
fn isr_change_record(
    image: &crate::MetadataImage,
    change: &IsrChange,
) -> Result<Option<MetadataRecord>, String> {
    let IsrChange {
        broker_id,
        topic_id,
        partition,
        leader_epoch,
        partition_epoch,
        isr,
    } = change;
    let registration = image
        .topics
        .get(topic_id)
        .and_then(|t| t.partitions.get(partition))
        .ok_or_else(|| format!("unknown partition {topic_id}/{partition}"))?;
    if registration.leader != *broker_id || registration.leader_epoch != *leader_epoch {
        return Err(format!(
            "broker {broker_id} does not lead {topic_id}/{partition} in epoch {leader_epoch} \
             (leader {} in epoch {})",
            registration.leader, registration.leader_epoch
        ));
    }
    if registration.partition_epoch != *partition_epoch {
        return Err(format!(
            "partition epoch {partition_epoch} is stale (now {})",
            registration.partition_epoch
        ));
    }
    if !isr.contains(broker_id) || isr.iter().any(|r| !registration.replicas.contains(r)) {
        return Err(format!(
            "ISR {isr:?} must hold the leader and only replicas of {:?}",
            registration.replicas
        ));
    }
    if let Some(joining) = isr
        .iter()
        .find(|r| !registration.isr.contains(r) && !image.is_active(**r))
    {
        return Err(format!(
            "broker {joining} is fenced: it cannot join the ISR"
        ));
    }
    if registration.isr == *isr {
        return Ok(None);
    }
    Ok(Some(MetadataRecord::ChangePartition {
        topic_id: *topic_id,
        partition: *partition,
        leader: None,
        isr: Some(isr.clone()),
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
    }))
}

/// AlterPartition for many partitions at once: the changes that pass are committed together
/// (one metadata log entry), then the reassignments they complete.
async fn alter_partitions(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    changes: Vec<IsrChange>,
) -> Result<AdminAnswer, WriteRefusal> {
    let (records, results) = state.with_image(|image| {
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(changes.len());
        for change in &changes {
            match isr_change_record(image, change) {
                Ok(record) => {
                    records.extend(record);
                    results.push(None);
                }
                Err(why) => results.push(Some(why)),
            }
        }
        (records, results)
    });
    if !records.is_empty() {
        let count = records.len();
        commit_all(raft, records).await?;
        tracing::info!(partitions = count, "ISRs changed");
        // A replica a reassignment was adding may just have joined.
        let completions = state.with_image(records_for_completed_reassignments);
        if !completions.is_empty() {
            let count = completions.len();
            commit_all(raft, completions).await?;
            tracing::info!(partitions = count, "reassignments completed");
        }
    }
    Ok(AdminAnswer::IsrResults(results))
}

/// Starts or cancels reassignments, all validated against one image and committed together.
async fn reassign(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    moves: Vec<PartitionMove>,
) -> Result<AdminAnswer, WriteRefusal> {
    let (records, results) = state.with_image(|image| {
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(moves.len());
        for m in &moves {
            let outcome = image
                .topic_ids
                .get(&m.topic)
                .ok_or(MoveError::UnknownPartition)
                .and_then(|id| {
                    record_for_reassignment(image, *id, m.partition, m.target.as_deref())
                });
            match outcome {
                Ok(record) => {
                    records.extend(record);
                    results.push((m.topic.clone(), m.partition, None));
                }
                Err(e) => results.push((m.topic.clone(), m.partition, Some(e))),
            }
        }
        (records, results)
    });
    if !records.is_empty() {
        let count = records.len();
        commit_all(raft, records).await?;
        tracing::info!(partitions = count, "reassignments changed");
    }
    Ok(AdminAnswer::Moves(results))
}

/// Elects preferred (or, with `unclean`, any alive) leaders.
async fn elect_leaders(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    unclean: bool,
    partitions: Option<Vec<(String, i32)>>,
) -> Result<AdminAnswer, WriteRefusal> {
    let (records, results) = state.with_image(|image| {
        let asked = partitions.clone().unwrap_or_else(|| {
            image
                .topics
                .values()
                .flat_map(|t| t.partitions.keys().map(|i| (t.name.clone(), *i)))
                .collect()
        });
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(asked.len());
        for (topic, partition) in asked {
            let outcome = image
                .topic_ids
                .get(&topic)
                .ok_or(MoveError::UnknownPartition)
                .and_then(|id| {
                    if unclean {
                        record_for_unclean_leader(image, *id, partition)
                    } else {
                        record_for_preferred_leader(image, *id, partition)
                    }
                });
            match outcome {
                Ok(record) => {
                    records.push(record);
                    results.push((topic, partition, None));
                }
                // Asked for everything: only the partitions that changed are reported.
                Err(_) if partitions.is_none() => {}
                Err(e) => results.push((topic, partition, Some(e))),
            }
        }
        (records, results)
    });
    if !records.is_empty() {
        let count = records.len();
        commit_all(raft, records).await?;
        tracing::info!(partitions = count, unclean, "leaders elected");
    }
    Ok(AdminAnswer::Moves(results))
}

async fn create_topic(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    topic: NewTopic,
    mirror: Option<crate::link::MirrorOf>,
) -> Result<AdminAnswer, WriteRefusal> {
    if topic.partitions == 0 {
        return Err(invalid(Invalid::Partitions(
            "number of partitions must be larger than 0".into(),
        )));
    }
    let topic_id = topic.topic_id.unwrap_or_else(Uuid::new_v4);
    let records = state.with_image(|image| {
        if image.topic(&topic.name).is_some() {
            return Err(invalid(Invalid::TopicExists(topic.name.clone())));
        }
        if image.topics.contains_key(&topic_id) {
            return Err(invalid(Invalid::Request(format!(
                "topic id {topic_id} is taken"
            ))));
        }
        let mut records = vec![MetadataRecord::CreateTopic {
            name: topic.name.clone(),
            topic_id,
            configs: topic.configs.clone(),
        }];
        if let Some(mirror) = &mirror {
            if !image.links.contains_key(&mirror.link) {
                return Err(invalid(Invalid::Request(format!(
                    "cluster link '{}' does not exist",
                    mirror.link
                ))));
            }
            // Before the partitions: no broker may ever see them take a producer's batch.
            records.push(MetadataRecord::SetMirror {
                topic_id,
                mirror: Some(mirror.clone()),
            });
        }
        records.extend(
            records_for_new_partitions(
                image,
                topic_id,
                0,
                topic.partitions,
                topic.replication_factor,
                &topic.assignments,
            )
            .map_err(invalid)?,
        );
        Ok(records)
    })?;
    if !topic.validate_only {
        commit_all(raft, records).await?;
        tracing::info!(topic = %topic.name, partitions = topic.partitions, "created topic");
    }
    Ok(AdminAnswer::Topic {
        topic_id,
        partitions: topic.partitions,
        replication_factor: topic.replication_factor,
    })
}

/// Commits records that were validated against the image: all of them must apply.
pub(super) async fn commit_all(
    raft: &Raft<TypeConfig>,
    records: Vec<MetadataRecord>,
) -> Result<u64, WriteRefusal> {
    let result = commit(raft, records).await?;
    match result.errors.first() {
        Some(error) => Err(WriteRefusal::Failed(error.clone())),
        None => Ok(result.index),
    }
}

/// `SetConfig` records turning `current` overrides into `wanted`.
fn config_records(
    topic: &str,
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let resource = ConfigResource::Topic(topic.to_owned());
    let removed = current
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| MetadataRecord::SetConfig {
            resource: resource.clone(),
            name: k.clone(),
            value: None,
        });
    let set = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(v))
        .map(|(k, v)| MetadataRecord::SetConfig {
            resource: resource.clone(),
            name: k.clone(),
            value: Some(v.clone()),
        });
    removed.chain(set).collect()
}

fn voter_ids(raft: &Raft<TypeConfig>) -> BTreeSet<NodeId> {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

/// The current voters and their controller addresses.
fn voter_addresses(raft: &Raft<TypeConfig>) -> BTreeMap<NodeId, String> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    membership
        .voter_ids()
        .map(|id| {
            let addr = membership
                .get_node(&id)
                .map_or(String::new(), |n| n.addr.clone());
            (id, addr)
        })
        .collect()
}

async fn change_voters(
    raft: &Raft<TypeConfig>,
    voters: BTreeSet<NodeId>,
) -> Result<(), WriteRefusal> {
    raft.change_membership(voters, false)
        .await
        .map(|_| ())
        .map_err(|e| refusal(e, "changing the voters"))
}

/// A membership change that failed: "ask the leader" when leadership moved meanwhile (the
/// client retries there), otherwise the failure with what was being done.
fn refusal(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>, doing: &str) -> WriteRefusal {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            WriteRefusal::NotLeader(forward.leader_id.zip(forward.leader_node.map(|n| n.addr)))
        }
        other => WriteRefusal::Failed(format!("{doing}: {other}")),
    }
}
