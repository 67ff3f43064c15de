//! The produce path: appends to partitions this broker leads and waits for durability.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use strata_api::BrokerError;
use strata_api::broker::Appended;

use super::ReplicaManager;
use super::errors::{from_log, storage};
use crate::log::LogError;
use crate::log::config::TopicCompression;
use crate::log::recompress::recompress;
use crate::partition::PartitionRef;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ReplicaManager {
    /// Why a mirror topic refuses a producer, naming its link.
    fn mirror_refusal(&self, topic: &str) -> String {
        let image = self.metadata.image();
        match image.topic(topic).and_then(|t| t.mirror.as_ref()) {
            Some(m) => format!(
                "topic '{topic}' is a read-only mirror of '{}' through cluster link '{}'; it takes writes after `strata mirror failover` or `strata mirror promote`",
                m.source_topic, m.link
            ),
            None => format!("topic '{topic}' is a read-only mirror topic"),
        }
    }

    /// Produce: appends a batch to a partition this broker leads. `acks=all` is refused while
    /// the ISR is smaller than `min.insync.replicas` (Kafka's NOT_ENOUGH_REPLICAS).
    pub fn append(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
        guard: Option<u64>,
    ) -> Result<Appended, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        if partition.is_mirror() {
            return Err(BrokerError::InvalidRequest(self.mirror_refusal(topic)));
        }
        if !partition.takes_writes(self.remote.is_some()) || partition.epoch_behind_log().is_some()
        {
            // Retriable: the client refreshes its metadata and tries again. (A mirror just
            // made writable waits for a leader epoch above its source's.)
            return Err(BrokerError::LeaderNotAvailable);
        }
        let replicated = partition.is_replicated();
        if acks == -1 && replicated {
            check_min_isr(&partition, false)?;
        }
        // A topic that names a codec gets its batches in it. The work is done before the log
        // is locked, so that readers and other producers of the partition do not wait on it.
        let compression = partition.log().config().compression;
        let records = match compression {
            TopicCompression::Producer => records,
            TopicCompression::Codec(codec) => recompress(&records, codec)
                .map_err(from_log)?
                .unwrap_or(records),
        };
        let (info, log_start_offset, must_flush) = partition
            .append_guarded(&records, now_ms(), guard)
            .map_err(from_log)?;
        Ok(Appended {
            base_offset: info.base_offset as i64,
            log_append_time: info.log_append_time,
            log_start_offset: log_start_offset as i64,
            next_offset: info.next_offset as i64,
            must_wait: must_flush || (acks == -1 && replicated),
        })
    }

    /// KIP-890: whether a transactional batch of `producer_id` at `epoch` must be verified
    /// with its coordinator before it is appended here, and if so under which guard.
    pub fn start_txn_verification(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<Option<u64>, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        let guard = partition.log().start_verification(producer_id, epoch);
        Ok(guard)
    }

    /// TxnOffsetCommit: appends the group coordinator's batch of a producer's transaction to a
    /// `__consumer_offsets` partition this broker leads, as an `acks=all` write.
    pub fn append_as_coordinator(
        &self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> Result<Appended, BrokerError> {
        self.append_coordinated(topic, partition, |p| {
            p.append_as_coordinator(&records, now_ms())
        })
    }

    /// WriteTxnMarkers: appends a coordinator's marker to a partition this broker leads, as
    /// an `acks=all` write (the coordinator then waits for it with [`Self::wait_acked`]).
    pub fn append_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        marker: strata_record::control::Marker,
    ) -> Result<Appended, BrokerError> {
        self.append_coordinated(topic, partition, |p| {
            p.append_marker(producer_id, epoch, marker, now_ms())
        })
    }

    /// A coordinator's `acks=all` append to a partition this broker leads.
    fn append_coordinated(
        &self,
        topic: &str,
        partition: i32,
        append: impl FnOnce(&PartitionRef) -> Result<(crate::log::AppendInfo, u64, bool), LogError>,
    ) -> Result<Appended, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        let replicated = partition.is_replicated();
        if replicated {
            check_min_isr(&partition, false)?;
        }
        let (info, log_start_offset, must_flush) = append(&partition).map_err(from_log)?;
        Ok(Appended {
            base_offset: info.base_offset as i64,
            log_append_time: -1,
            log_start_offset: log_start_offset as i64,
            next_offset: info.next_offset as i64,
            must_wait: must_flush || replicated,
        })
    }

    /// Waits until the partition's records below `offset` are acknowledged as `acks` asks:
    /// durable here, or (-1, replicated) below the high watermark, that is durable on every
    /// in-sync replica; then the ISR must still have `min.insync.replicas` members.
    pub fn wait_acked(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        acks: i16,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send + 'static {
        let partition = self.partition_ref(topic, partition);
        async move {
            let partition = partition?;
            let epoch = partition.leader_epoch();
            let offset = offset.max(0) as u64;
            if partition.log().config().fsync_before_ack() {
                // The leader's own fsync (group commit); the high watermark needs it too.
                partition.wait_durable(offset).await.map_err(storage)?;
            }
            if acks == -1 && partition.is_replicated() {
                if !partition.wait_committed(offset, epoch).await {
                    return Err(BrokerError::NotLeaderOrFollower);
                }
                return check_min_isr(&partition, true);
            }
            Ok(())
        }
    }
}

/// Kafka's `min.insync.replicas` check of an `acks=all` produce, before appending or once
/// the records are committed.
fn check_min_isr(partition: &PartitionRef, appended: bool) -> Result<(), BrokerError> {
    let min = partition.log().config().min_insync_replicas.max(1) as usize;
    let isr = partition.replica_set().isr.len();
    if isr >= min {
        return Ok(());
    }
    let message = format!(
        "{}-{} has {isr} in-sync replicas, fewer than min.insync.replicas={min}",
        partition.topic, partition.index
    );
    Err(if appended {
        BrokerError::NotEnoughReplicasAfterAppend(message)
    } else {
        BrokerError::NotEnoughReplicas(message)
    })
}

impl ReplicaManager {
    /// DeleteRecords (KIP-107) on a partition this broker leads: records below `offset` (-1:
    /// the high watermark) are deleted. Resolves with the low watermark once every in-sync
    /// replica's log starts at `offset` or later, or fails with REQUEST_TIMED_OUT after
    /// `timeout`, as Kafka's delayed DeleteRecords does.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<i64, BrokerError>> + Send + use<> {
        let started = self.leader_ref(topic, partition).and_then(|partition| {
            if partition.is_mirror() {
                return Err(BrokerError::InvalidRequest(self.mirror_refusal(topic)));
            }
            if !partition.log().config().cleanup_policy.deletes() {
                return Err(BrokerError::PolicyViolation(format!(
                    "records of {topic}-{} cannot be deleted: its cleanup.policy does not include delete",
                    partition.index
                )));
            }
            let high_watermark = partition.high_watermark();
            let target = match offset {
                -1 => high_watermark,
                o if o < 0 || o as u64 > high_watermark => {
                    return Err(BrokerError::OffsetOutOfRange(format!(
                        "cannot delete records of {topic}-{} below offset {o}: the high watermark is {high_watermark}",
                        partition.index
                    )));
                }
                o => o as u64,
            };
            let low_watermark = partition.delete_records(target).map_err(from_log)?;
            Ok((target, low_watermark))
        });
        async move {
            let (target, mut low_watermark) = started?;
            let reached =
                tokio::time::timeout(timeout, low_watermark.wait_for(|low| *low >= target));
            match reached.await {
                Ok(Ok(low)) => Ok(*low as i64),
                Ok(Err(_)) => Err(BrokerError::NotLeaderOrFollower),
                Err(_) => Err(BrokerError::RequestTimedOut(format!(
                    "records below {target} are not yet deleted from every in-sync replica"
                ))),
            }
        }
    }
}
