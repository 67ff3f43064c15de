//! The metadata quorum's raft layer on openraft 0.9 (the stable line; 0.10 is alpha): type
//! configuration, the durable log and vote ([`LogStore`]) and the state machine applying
//! metadata records to the image ([`StateMachine`]).

pub mod active;
pub mod admin;
pub mod client;
pub mod follower;
mod links;
mod log_store;
mod network;
mod node;
mod probe;
mod state_machine;
pub mod tls;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub use log_store::LogStore;
pub use network::{BrokerStatus, QuorumStatus, VoterStatus, WriteRefusal};
pub use node::{Controller, QuorumConfig, StartError, WriteError};
pub use probe::{ControllerProbe, ControllerStats, LEADER_SILENCE_MS};
pub use state_machine::{MetadataUpdate, SNAPSHOT_FILE, StateMachine};

use crate::record::MetadataRecord;

/// Controllers are numbered like Kafka's node ids.
pub type NodeId = u64;

/// The records one raft entry carries: a whole change (a topic with its partitions) commits
/// at once or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch {
    /// Records, applied in order.
    pub records: Vec<MetadataRecord>,
}

/// What applying one entry did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    /// The entry's log index (the image offset after it).
    pub index: u64,
    /// Records that did not fit the image (none, when the controller validated them).
    pub errors: Vec<String>,
}

openraft::declare_raft_types!(
    /// The raft types of the metadata quorum.
    pub TypeConfig:
        D = RecordBatch,
        R = ApplyResult,
);

#[cfg(test)]
mod tests;
