//! The produce path: appends to partitions this broker leads and waits for durability.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use strata_api::BrokerError;
use strata_api::broker::Appended;

use super::ReplicaManager;
use super::errors::{from_log, storage};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ReplicaManager {
    /// Produce: appends a batch to a partition this broker leads.
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> Result<Appended, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        if !partition.takes_writes(self.remote.is_some()) {
            // Retriable: the client refreshes its metadata and tries again.
            return Err(BrokerError::LeaderNotAvailable);
        }
        let (info, log_start_offset, must_flush) =
            partition.append(&records, now_ms()).map_err(from_log)?;
        Ok(Appended {
            base_offset: info.base_offset as i64,
            log_append_time: info.log_append_time,
            log_start_offset: log_start_offset as i64,
            next_offset: info.next_offset as i64,
            must_flush,
        })
    }

    /// Waits until the partition's records below `offset` are durable.
    pub fn wait_durable(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send + 'static {
        let partition = self.partition_ref(topic, partition);
        async move {
            partition?
                .wait_durable(offset.max(0) as u64)
                .await
                .map_err(storage)
        }
    }
}
