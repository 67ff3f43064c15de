//! `MetadataImage`: the cluster metadata as of one offset of the metadata log.
//!
//! Every controller and broker applies the same records in the same order and so holds the same
//! image. [`MetadataImage::apply`] is deterministic: a record that does not fit the image (which
//! the active controller never appends) changes nothing, identically everywhere, and each
//! applied record reports the [`Change`] a broker acts on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::link::{ClusterLink, MirrorOf};
use crate::record::{AclRecord, ConfigResource, Endpoint, MetadataRecord, ScramCredential};

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Broker id.
    pub id: i32,
    /// The process start that registered.
    pub incarnation: Uuid,
    /// Rack.
    pub rack: Option<String>,
    /// Where clients reach it.
    pub listeners: Vec<Endpoint>,
    /// Fenced brokers lead nothing.
    pub fenced: bool,
}

/// One partition's replicas, leader and epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    /// Replica broker ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader, -1 for none.
    pub leader: i32,
    /// Bumped whenever the leader changes.
    pub leader_epoch: i32,
    /// Bumped with every change.
    pub partition_epoch: i32,
    /// Replicas a reassignment is adding (they are in `replicas` and catching up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    /// Replicas a reassignment drops once the added ones are in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionRegistration {
    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment ends with (the replicas when none is in progress).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// The replicas before the reassignment in progress started.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding_replicas.contains(r))
            .collect()
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Id.
    pub id: Uuid,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionRegistration>,
    /// The source topic it mirrors, if it is a mirror topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorOf>,
}

impl TopicImage {
    /// Whether it follows a source topic (and refuses producers).
    pub fn is_mirroring(&self) -> bool {
        self.mirror.as_ref().is_some_and(MirrorOf::is_mirroring)
    }
}

/// What one applied record changed, for brokers to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A broker registered (again).
    BrokerRegistered(i32),
    /// A user's SCRAM credentials changed.
    ScramChanged(String),
    /// ACLs were added or removed.
    AclsChanged,
    /// A broker left.
    BrokerUnregistered(i32),
    /// A broker was fenced.
    BrokerFenced(i32),
    /// A broker was unfenced.
    BrokerUnfenced(i32),
    /// A topic appeared.
    TopicCreated {
        /// Name.
        name: String,
        /// Id.
        id: Uuid,
    },
    /// A topic went, with its partitions.
    TopicDeleted {
        /// Name.
        name: String,
        /// Id.
        id: Uuid,
    },
    /// A partition appeared.
    PartitionCreated {
        /// Topic id.
        topic_id: Uuid,
        /// Index.
        partition: i32,
    },
    /// A partition's registration changed.
    PartitionChanged {
        /// Topic id.
        topic_id: Uuid,
        /// Index.
        partition: i32,
        /// Whether the leader (and so the leader epoch) changed.
        leader_changed: bool,
    },
    /// The cluster id was set.
    ClusterInitialized,
    /// Producer ids were handed out.
    ProducerIdsAllocated,
    /// A cluster link was created, changed or deleted.
    LinkChanged(String),
    /// A topic's mirror state changed.
    MirrorChanged {
        /// Topic id.
        topic_id: Uuid,
    },
    /// A config was set or removed.
    ConfigChanged {
        /// What it applies to.
        resource: ConfigResource,
        /// Config name.
        name: String,
    },
}

/// Why a record did not apply (the image is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// No such broker.
    #[error("unknown broker {0}")]
    UnknownBroker(i32),
    /// No such topic.
    #[error("unknown topic {0}")]
    UnknownTopic(Uuid),
    /// No such partition.
    #[error("unknown partition {1} of topic {0}")]
    UnknownPartition(Uuid, i32),
    /// A topic name or id that exists already.
    #[error("topic {0} exists already")]
    DuplicateTopic(String),
    /// A partition that exists already.
    #[error("partition {1} of topic {0} exists already")]
    DuplicatePartition(Uuid, i32),
    /// Replicas, ISR or leader that do not fit together.
    #[error("{0}")]
    InvalidAssignment(String),
    /// No such cluster link.
    #[error("unknown cluster link {0}")]
    UnknownLink(String),
    /// The cluster id is set once.
    #[error("the cluster id is {0} already")]
    ClusterIdSet(String),
}

/// The cluster metadata as of [`MetadataImage::offset`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Offset of the last record applied (its raft log index).
    pub offset: u64,
    /// Registered brokers.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by id.
    pub topics: BTreeMap<Uuid, TopicImage>,
    /// Topic ids by name.
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Cluster-wide config overrides.
    pub cluster_configs: BTreeMap<String, String>,
    /// Per-broker config overrides.
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// The cluster id, once the first active controller set it.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Producer ids below this were handed to brokers.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Cluster links by name.
    #[serde(default)]
    pub links: BTreeMap<String, ClusterLink>,
    /// Producer ids below this may be in use by mirrored producers (a source cluster's): a
    /// broker hands out none of them, even from a block it already holds.
    #[serde(default)]
    pub producer_id_floor: i64,
    /// SCRAM credentials: user → mechanism → credential.
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<String, ScramCredential>>,
    /// ACLs by id.
    #[serde(default)]
    pub acls: BTreeMap<Uuid, AclRecord>,
    /// Bumped by every ACL change, so that brokers know when to index them again.
    #[serde(default)]
    pub acl_version: u64,
}

impl MetadataImage {
    /// Applies the record at `offset`; a record that does not fit changes nothing but the
    /// offset.
    pub fn apply(&mut self, offset: u64, record: &MetadataRecord) -> Result<Change, ApplyError> {
        self.offset = self.offset.max(offset);
        match record {
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation,
                rack,
                listeners,
            } => {
                // A new incarnation starts fenced until it proves it is alive.
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        id: *broker_id,
                        incarnation: *incarnation,
                        rack: rack.clone(),
                        listeners: listeners.clone(),
                        fenced: true,
                    },
                );
                Ok(Change::BrokerRegistered(*broker_id))
            }
            MetadataRecord::UnregisterBroker { broker_id } => {
                self.brokers
                    .remove(broker_id)
                    .ok_or(ApplyError::UnknownBroker(*broker_id))?;
                Ok(Change::BrokerUnregistered(*broker_id))
            }
            MetadataRecord::FenceBroker { broker_id } => {
                self.broker_mut(*broker_id)?.fenced = true;
                Ok(Change::BrokerFenced(*broker_id))
            }
            MetadataRecord::UnfenceBroker { broker_id } => {
                self.broker_mut(*broker_id)?.fenced = false;
                Ok(Change::BrokerUnfenced(*broker_id))
            }
            MetadataRecord::CreateTopic {
                name,
                topic_id,
                configs,
            } => {
                if self.topic_ids.contains_key(name) || self.topics.contains_key(topic_id) {
                    return Err(ApplyError::DuplicateTopic(name.clone()));
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        configs: configs.clone(),
                        partitions: BTreeMap::new(),
                        mirror: None,
                    },
                );
                Ok(Change::TopicCreated {
                    name: name.clone(),
                    id: *topic_id,
                })
            }
            MetadataRecord::DeleteTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or(ApplyError::UnknownTopic(*topic_id))?;
                self.topic_ids.remove(&topic.name);
                Ok(Change::TopicDeleted {
                    name: topic.name,
                    id: *topic_id,
                })
            }
            MetadataRecord::CreatePartition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
            } => {
                check_assignment(replicas, isr, *leader)?;
                let topic = self
                    .topics
                    .get_mut(topic_id)
                    .ok_or(ApplyError::UnknownTopic(*topic_id))?;
                if topic.partitions.contains_key(partition) {
                    return Err(ApplyError::DuplicatePartition(*topic_id, *partition));
                }
                topic.partitions.insert(
                    *partition,
                    PartitionRegistration {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: 0,
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                    },
                );
                Ok(Change::PartitionCreated {
                    topic_id: *topic_id,
                    partition: *partition,
                })
            }
            MetadataRecord::ChangePartition {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
                adding_replicas,
                removing_replicas,
            } => {
                let current = self
                    .topics
                    .get(topic_id)
                    .ok_or(ApplyError::UnknownTopic(*topic_id))?
                    .partitions
                    .get(partition)
                    .ok_or(ApplyError::UnknownPartition(*topic_id, *partition))?;
                let new_replicas = replicas.clone().unwrap_or_else(|| current.replicas.clone());
                let new_isr = isr.clone().unwrap_or_else(|| current.isr.clone());
                let new_leader = leader.unwrap_or(current.leader);
                let new_adding = adding_replicas
                    .clone()
                    .unwrap_or_else(|| current.adding_replicas.clone());
                let new_removing = removing_replicas
                    .clone()
                    .unwrap_or_else(|| current.removing_replicas.clone());
                check_assignment(&new_replicas, &new_isr, new_leader)?;
                check_reassignment(&new_replicas, &new_adding, &new_removing)?;
                let leader_changed = new_leader != current.leader;
                let registration = self
                    .topics
                    .get_mut(topic_id)
                    .and_then(|t| t.partitions.get_mut(partition))
                    .expect("checked above");
                registration.replicas = new_replicas;
                registration.isr = new_isr;
                registration.leader = new_leader;
                registration.adding_replicas = new_adding;
                registration.removing_replicas = new_removing;
                registration.partition_epoch += 1;
                if leader_changed {
                    registration.leader_epoch += 1;
                }
                Ok(Change::PartitionChanged {
                    topic_id: *topic_id,
                    partition: *partition,
                    leader_changed,
                })
            }
            MetadataRecord::InitCluster { cluster_id } => {
                if let Some(existing) = &self.cluster_id {
                    return Err(ApplyError::ClusterIdSet(existing.clone()));
                }
                self.cluster_id = Some(cluster_id.clone());
                Ok(Change::ClusterInitialized)
            }
            MetadataRecord::AllocateProducerIds {
                broker_id,
                next_producer_id,
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
                if *broker_id < 0 {
                    self.producer_id_floor = self.producer_id_floor.max(*next_producer_id);
                }
                Ok(Change::ProducerIdsAllocated)
            }
            MetadataRecord::CreateLink { link } => {
                self.links.insert(link.name.clone(), link.clone());
                Ok(Change::LinkChanged(link.name.clone()))
            }
            MetadataRecord::DeleteLink { name } => {
                self.links
                    .remove(name)
                    .ok_or_else(|| ApplyError::UnknownLink(name.clone()))?;
                Ok(Change::LinkChanged(name.clone()))
            }
            MetadataRecord::PauseLink { name, paused } => {
                self.links
                    .get_mut(name)
                    .ok_or_else(|| ApplyError::UnknownLink(name.clone()))?
                    .paused = *paused;
                Ok(Change::LinkChanged(name.clone()))
            }
            MetadataRecord::SetMirror { topic_id, mirror } => {
                self.topics
                    .get_mut(topic_id)
                    .ok_or(ApplyError::UnknownTopic(*topic_id))?
                    .mirror = mirror.clone();
                Ok(Change::MirrorChanged {
                    topic_id: *topic_id,
                })
            }
            MetadataRecord::RaiseLeaderEpoch {
                topic_id,
                partition,
                leader_epoch,
            } => {
                let registration = self
                    .topics
                    .get_mut(topic_id)
                    .ok_or(ApplyError::UnknownTopic(*topic_id))?
                    .partitions
                    .get_mut(partition)
                    .ok_or(ApplyError::UnknownPartition(*topic_id, *partition))?;
                if *leader_epoch > registration.leader_epoch {
                    registration.leader_epoch = *leader_epoch;
                    registration.partition_epoch += 1;
                }
                Ok(Change::PartitionChanged {
                    topic_id: *topic_id,
                    partition: *partition,
                    leader_changed: false,
                })
            }
            MetadataRecord::SetConfig {
                resource,
                name,
                value,
            } => {
                let configs = match resource {
                    ConfigResource::Topic(topic) => {
                        let id = self
                            .topic_ids
                            .get(topic)
                            .copied()
                            .ok_or(ApplyError::UnknownTopic(Uuid::nil()))?;
                        &mut self.topics.get_mut(&id).expect("indexed topic").configs
                    }
                    ConfigResource::Broker(id) => self.broker_configs.entry(*id).or_default(),
                    ConfigResource::Cluster => &mut self.cluster_configs,
                };
                match value {
                    Some(value) => configs.insert(name.clone(), value.clone()),
                    None => configs.remove(name),
                };
                Ok(Change::ConfigChanged {
                    resource: resource.clone(),
                    name: name.clone(),
                })
            }
            MetadataRecord::SetScramCredential {
                user,
                mechanism,
                credential,
            } => {
                match credential {
                    Some(credential) => {
                        self.scram
                            .entry(user.clone())
                            .or_default()
                            .insert(mechanism.clone(), credential.clone());
                    }
                    None => {
                        if let Some(mechanisms) = self.scram.get_mut(user) {
                            mechanisms.remove(mechanism);
                            if mechanisms.is_empty() {
                                self.scram.remove(user);
                            }
                        }
                    }
                }
                Ok(Change::ScramChanged(user.clone()))
            }
            MetadataRecord::CreateAcl { id, acl } => {
                self.acls.insert(*id, acl.clone());
                self.acl_version += 1;
                Ok(Change::AclsChanged)
            }
            MetadataRecord::RemoveAcl { id } => {
                if self.acls.remove(id).is_some() {
                    self.acl_version += 1;
                }
                Ok(Change::AclsChanged)
            }
        }
    }

    fn broker_mut(&mut self, id: i32) -> Result<&mut BrokerRegistration, ApplyError> {
        self.brokers
            .get_mut(&id)
            .ok_or(ApplyError::UnknownBroker(id))
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// Whether `broker` is registered and unfenced.
    pub fn is_active(&self, broker: i32) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Number of partitions in the image.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// The image as bytes, for a snapshot.
    pub fn to_snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the image always serializes")
    }

    /// An image from snapshot bytes.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Replicas without duplicates, an ISR within them, and a leader in the ISR (or none).
fn check_assignment(replicas: &[i32], isr: &[i32], leader: i32) -> Result<(), ApplyError> {
    let mut seen = std::collections::BTreeSet::new();
    if replicas.is_empty() || !replicas.iter().all(|r| seen.insert(*r)) {
        return Err(ApplyError::InvalidAssignment(format!(
            "replicas {replicas:?} are empty or repeat a broker"
        )));
    }
    if !isr.iter().all(|r| replicas.contains(r)) {
        return Err(ApplyError::InvalidAssignment(format!(
            "ISR {isr:?} is not within replicas {replicas:?}"
        )));
    }
    if leader != -1 && !isr.contains(&leader) {
        return Err(ApplyError::InvalidAssignment(format!(
            "leader {leader} is not in the ISR {isr:?}"
        )));
    }
    Ok(())
}

/// Adding and removing replicas within the replicas, never both at once.
fn check_reassignment(
    replicas: &[i32],
    adding: &[i32],
    removing: &[i32],
) -> Result<(), ApplyError> {
    if let Some(r) = adding
        .iter()
        .chain(removing)
        .find(|r| !replicas.contains(r))
    {
        return Err(ApplyError::InvalidAssignment(format!(
            "reassigned replica {r} is not within replicas {replicas:?}"
        )));
    }
    if let Some(r) = adding.iter().find(|r| removing.contains(r)) {
        return Err(ApplyError::InvalidAssignment(format!(
            "replica {r} cannot be added and removed at once"
        )));
    }
    if replicas.iter().all(|r| removing.contains(r)) {
        return Err(ApplyError::InvalidAssignment(
            "a reassignment cannot remove every replica".into(),
        ));
    }
    Ok(())
}

/// A cluster id in Kafka's format: a random UUID in URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    uuid_base64(Uuid::new_v4())
}

/// A UUID as Kafka prints it (`Uuid.toString()`): URL-safe base64 without padding.
pub fn uuid_base64(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.into_bytes();
    let mut out = String::with_capacity(22);
    let mut bits = 0u32;
    let mut count = 0;
    for byte in bytes {
        bits = (bits << 8) | byte as u32;
        count += 8;
        while count >= 6 {
            count -= 6;
            out.push(ALPHABET[((bits >> count) & 63) as usize] as char);
        }
    }
    if count > 0 {
        out.push(ALPHABET[((bits << (6 - count)) & 63) as usize] as char);
    }
    out
}
