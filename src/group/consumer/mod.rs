//! Consumer-protocol groups (KIP-848): the coordinator assigns, members heartbeat.

pub mod assignor;
mod classic;
mod group;

pub use classic::{ClassicSeat, Downgrade, MigrationPolicy};
pub use group::{ConsumerGroup, ConsumerGroupConfig, TopicView};
