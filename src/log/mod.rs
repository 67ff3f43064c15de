//! Local log storage: Kafka's segmented log, record batch v2 bytes as producers sent them.
//!
//! `PartitionLog` owns the segments of one partition; `LogSegment` one `.log` file with its
//! memory-mapped indexes. Everything here is synchronous; the broker decides where blocking
//! work (fsync) runs. No Kafka error codes here: the API handlers map [`LogError`]s to them.

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod error;
pub mod index;
pub mod partition_log;
pub mod producer_state;
pub mod scanner;
pub mod segment;

pub use config::LogConfig;
pub use error::LogError;
pub use partition_log::{AppendInfo, PartitionLog};
pub use segment::FileSlice;
