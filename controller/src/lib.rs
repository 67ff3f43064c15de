//! strata-controller: the KRaft-style metadata quorum.
//!
//! Cluster metadata (brokers, topics, partitions, configs) is a log of [`MetadataRecord`]s,
//! applied in order to a [`MetadataImage`] by every controller and broker. The active
//! controller decides with [`placement`] and appends records; the raft quorum (openraft, to
//! come in this crate) replicates and commits them, and snapshots of the image let standbys
//! and new voters start hot. It never depends on the data plane (`src/`, `api/`, `tiering/`).

pub mod image;
pub mod link;
pub mod placement;
pub mod raft;
pub mod reassignment;
pub mod record;

pub use image::{
    ApplyError, BrokerRegistration, Change, MetadataImage, PartitionRegistration, TopicImage,
    new_cluster_id, uuid_base64,
};
pub use link::{ClusterLink, LinkConfig, LinkStart, MirrorOf, MirrorState, StopReason};
pub use record::{ConfigResource, Endpoint, MetadataRecord};

#[cfg(test)]
mod reassignment_tests;
#[cfg(test)]
mod tests;
