//! Local log storage: Kafka's segmented log, record batch v2 bytes as producers sent them.
//!
//! `UnifiedLog` is one partition's log across both tiers, over its `LocalLog` (the segments on
//! disk, `LogSegments`, opened by the `loader`); `LogSegment` is one `.log` file with its
//! memory-mapped indexes. Everything here is synchronous; the broker decides where blocking
//! work (fsync) runs. No Kafka error codes here: the API handlers map [`LogError`]s to them.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod error;
pub mod follower;
pub mod index;
pub mod leader_epoch;
pub mod loader;
pub mod local_log;
pub mod producer_state;
pub mod recompress;
pub mod scanner;
pub mod segment;
pub mod segments;
pub mod txn;
pub mod unified_log;
pub mod verification;

pub use config::LogConfig;
pub use error::LogError;
pub use segment::FileSlice;
pub use unified_log::{AppendInfo, UnifiedLog};
