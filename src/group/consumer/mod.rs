//! Consumer-protocol groups (KIP-848): the coordinator assigns, members heartbeat.

pub mod assignor;
mod group;

pub use group::{ConsumerGroup, ConsumerGroupConfig, TopicView};
