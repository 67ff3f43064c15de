//! Metadata records: every change to cluster metadata is one of these, appended to the raft log
//! and applied in log order to a [`crate::MetadataImage`] on every controller and broker.
//!
//! Records carry facts, not requests: the active controller validates a request against its
//! image and appends only records that apply cleanly, so applying is deterministic everywhere.

use std::collections::BTreeMap;

use crate::link::{ClusterLink, MirrorOf};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A listener a broker accepts clients on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name (`PLAINTEXT`).
    pub name: String,
    /// Host clients connect to.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// What the cluster keeps of a SCRAM password (RFC 5802): never the password itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// One ACL as Kafka's protocol codes it (`kafka-acls.sh` semantics; brokers interpret it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclRecord {
    /// Resource type code (2 topic, 3 group, 4 cluster, 5 transactional id).
    pub resource_type: i8,
    /// Resource name, or `*`.
    pub name: String,
    /// Pattern type code (3 literal, 4 prefixed).
    pub pattern: i8,
    /// `User:alice` or `User:*`.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    /// Operation code (2 all … 12 idempotent write).
    pub operation: i8,
    /// Permission code (2 deny, 3 allow).
    pub permission: i8,
}

/// What a config record changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    /// A topic's override, by name.
    Topic(String),
    /// A broker's dynamic setting.
    Broker(i32),
    /// A cluster-wide default.
    Cluster,
}

/// One metadata change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker (re)started and registered; a new incarnation replaces the previous one.
    RegisterBroker {
        /// Broker id.
        broker_id: i32,
        /// Unique per process start: tells a restart from a duplicate id.
        incarnation: Uuid,
        /// Rack, for rack-aware placement.
        rack: Option<String>,
        /// Where clients reach it.
        listeners: Vec<Endpoint>,
    },
    /// A broker left for good.
    UnregisterBroker {
        /// Broker id.
        broker_id: i32,
    },
    /// A broker's lease lapsed: it may not lead partitions.
    FenceBroker {
        /// Broker id.
        broker_id: i32,
    },
    /// A registered broker is alive and caught up: it may lead partitions.
    UnfenceBroker {
        /// Broker id.
        broker_id: i32,
    },
    /// A topic with its configs (its partitions follow as `CreatePartition` records).
    CreateTopic {
        /// Name.
        name: String,
        /// Id.
        topic_id: Uuid,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// A topic and all its partitions go.
    DeleteTopic {
        /// Id.
        topic_id: Uuid,
    },
    /// One partition of a topic, with its replicas and first leader.
    CreatePartition {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// Replica broker ids, the preferred leader first.
        replicas: Vec<i32>,
        /// In-sync replicas.
        isr: Vec<i32>,
        /// Leader, -1 for none.
        leader: i32,
    },
    /// A partition's leader, ISR or replicas change. Applying bumps the partition epoch, and
    /// the leader epoch when the leader changes.
    ChangePartition {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// New leader (-1: none), if it changes.
        leader: Option<i32>,
        /// New ISR, if it changes.
        isr: Option<Vec<i32>>,
        /// New replicas, if they change.
        replicas: Option<Vec<i32>>,
        /// Replicas a reassignment is adding, if they change (empty: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding_replicas: Option<Vec<i32>>,
        /// Replicas a reassignment is removing, if they change (empty: none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing_replicas: Option<Vec<i32>>,
    },
    /// The cluster's id, committed once by the first active controller; brokers and
    /// controllers of another cluster are refused.
    InitCluster {
        /// Kafka-style cluster id (22 characters of URL-safe base64).
        cluster_id: String,
    },
    /// A block of producer ids was handed to a broker: ids below `next_producer_id` are taken.
    AllocateProducerIds {
        /// The broker that received the block; -1 for ids reserved for mirrored producers
        /// (no broker may hand out any id below `next_producer_id` from then on).
        broker_id: i32,
        /// The first id not handed out yet.
        next_producer_id: i64,
    },
    /// A cluster link was created (or replaced: same name, new id).
    CreateLink {
        /// The link.
        link: ClusterLink,
    },
    /// A cluster link went (its mirror topics stay, as they are).
    DeleteLink {
        /// Its name.
        name: String,
    },
    /// A link is paused or resumed.
    PauseLink {
        /// Its name.
        name: String,
        /// Paused when true.
        paused: bool,
    },
    /// A topic becomes a mirror, changes mirror state, or (`None`) forgets its link.
    SetMirror {
        /// Topic id.
        topic_id: Uuid,
        /// What it mirrors.
        mirror: Option<MirrorOf>,
    },
    /// A partition's leader epoch is raised to `leader_epoch` (bumping the partition epoch),
    /// its leader unchanged: a mirror made writable stamps its batches with an epoch above
    /// every epoch of the source's batches it holds.
    RaiseLeaderEpoch {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// The new leader epoch (ignored unless above the current one).
        leader_epoch: i32,
    },
    /// A user's SCRAM credential for one mechanism is set (`Some`) or removed (`None`).
    SetScramCredential {
        /// The user name.
        user: String,
        /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
        mechanism: String,
        /// The credential.
        credential: Option<ScramCredential>,
    },
    /// An ACL is added.
    CreateAcl {
        /// Its id.
        id: Uuid,
        /// The ACL.
        acl: AclRecord,
    },
    /// An ACL goes.
    RemoveAcl {
        /// Its id.
        id: Uuid,
    },
    /// A config is set (`Some`) or removed (`None`).
    SetConfig {
        /// What it applies to.
        resource: ConfigResource,
        /// Kafka name of the config.
        name: String,
        /// New value.
        value: Option<String>,
    },
}

impl MetadataRecord {
    /// Encodes the record for the raft log.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records always serialize")
    }

    /// Decodes a record from the raft log.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
