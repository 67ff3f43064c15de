//! Consumer groups: the classic rebalance protocol, committed offsets kept in
//! `__consumer_offsets`, and the lag of each group.

pub mod consumer;
pub mod coordinator;
pub mod lag;
pub mod load;
pub mod records;
pub mod service;
pub mod state;

pub use coordinator::{CoordinatorConfig, Groups, OFFSETS_TOPIC, partition_for};
pub use load::load_partition;
pub use service::GroupCoordinatorService;
pub use state::GroupConfig;
