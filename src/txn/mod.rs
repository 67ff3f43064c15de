//! The transaction coordinator (KIP-98; transaction versions 1 and 2, KIP-890): Kafka's
//! `TransactionCoordinator`, `TransactionStateManager` and `TransactionMarkerChannelManager`.
//!
//! A transactional id is coordinated by the leader of its `__transaction_state` partition (the
//! hash of the id, as for groups). Its metadata lives in memory and in that partition; every
//! change is written (acks=all) before it is applied or answered. Ending a transaction writes
//! PrepareCommit or PrepareAbort, answers the producer, then writes a marker to each of the
//! transaction's partitions through their leaders (WriteTxnMarkers) and finally
//! CompleteCommit or CompleteAbort. A coordinator that takes over a partition replays it and
//! finishes what was prepared. Markers carry the coordinator epoch (the partition's leader
//! epoch), so a replaced coordinator's late markers are refused.

mod load;
pub mod markers;
pub mod records;
pub mod service;
pub mod state;
mod verify;

use std::time::Duration;

pub use service::TransactionCoordinatorService;

/// The internal topic of transactional ids' metadata.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Transaction coordinator settings (Kafka's `transaction.*` broker configs).
#[derive(Debug, Clone, Copy)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
    /// `transaction.state.log.replication.factor` (at most the live brokers when made).
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub min_isr: i16,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_check: Duration,
    /// `transactional.id.expiration.ms`.
    pub id_expiration: Duration,
}

/// `partitions` grouped by topic, topics in first-seen order (as requests list them).
pub(crate) fn by_topic(partitions: &[(String, i32)]) -> Vec<(String, Vec<i32>)> {
    let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
    for (topic, index) in partitions {
        match topics.iter_mut().find(|(name, _)| name == topic) {
            Some((_, indexes)) => indexes.push(*index),
            None => topics.push((topic.clone(), vec![*index])),
        }
    }
    topics
}
