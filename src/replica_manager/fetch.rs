//! The fetch path: reads of partitions this broker leads, from the local log or the remote
//! tier, ListOffsets and OffsetForLeaderEpoch.

use std::sync::Arc;

use bytes::Bytes;
use strata_api::BrokerError;
use strata_api::broker::{
    Isolation, OffsetAndTimestamp, OffsetSpec, PartitionRead, ProducerInfo, Reader, Records,
    ReplicaFetch,
};

use super::ReplicaManager;
use super::errors::{from_log, remote_error};
use crate::log::LogError;
use crate::partition::{PartitionRef, ReadBound};

impl ReplicaManager {
    /// The first remote batch at or after `timestamp` below the local log, as ListOffsets
    /// answers it.
    async fn remote_offset_for_timestamp(
        &self,
        partition: &PartitionRef,
        timestamp: i64,
    ) -> Result<Option<(u64, i64)>, BrokerError> {
        let (Some(remote), Some(start)) = (&self.remote, partition.log().remote_log_start_offset())
        else {
            return Ok(None);
        };
        let remote = remote
            .remote_for(&self.metadata.cluster_id(), partition)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?;
        let Some(batch) = remote
            .log
            .batch_for_timestamp(timestamp)
            .await
            .map_err(|e| BrokerError::Storage(e.to_string()))?
        else {
            return Ok(None);
        };
        crate::log::batch::record_at_timestamp(batch, timestamp, start).map_err(from_log)
    }

    /// KIP-392: the replica a consumer in `client_rack` should fetch `topic`/`partition`
    /// from instead of this leader: an in-sync, live replica in the consumer's rack, when this
    /// broker is not in it (Kafka's `RackAwareReplicaSelector`).
    pub fn preferred_read_replica(
        &self,
        topic: &str,
        partition: i32,
        client_rack: &str,
    ) -> Option<i32> {
        if client_rack.is_empty() || self.config.rack.as_deref() == Some(client_rack) {
            return None;
        }
        self.get(topic, partition).filter(|p| p.is_leader())?;
        let image = self.metadata.image();
        let registration = image.topic(topic)?.partitions.get(&partition)?;
        registration.replicas.iter().copied().find(|r| {
            *r != self.config.node_id
                && registration.isr.contains(r)
                && image
                    .brokers
                    .get(r)
                    .is_some_and(|b| !b.fenced && b.rack.as_deref() == Some(client_rack))
        })
    }

    /// Fetch: reads a partition this broker leads (or, for a consumer, follows: KIP-392),
    /// registering `waker` for its changes.
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        (max_bytes, min_one): (u64, bool),
        (current_leader_epoch, waker): (i32, Option<&Arc<strata_api::broker::FetchWaker>>),
        (reader, isolation): (Reader, Isolation),
    ) -> Result<PartitionRead, BrokerError> {
        // As in Kafka, only a consumer that named its rack may read from a follower: one
        // with stale metadata is sent back to the leader, not served a follower's shorter log.
        let partition = match reader {
            Reader::ConsumerWithRack => self.replica_ref(topic, partition)?,
            Reader::Consumer | Reader::ConsumerAtEpoch(_) | Reader::Follower(_) => {
                self.leader_ref(topic, partition)?
            }
        };
        strata_api::broker::check_epoch(current_leader_epoch, partition.leader_epoch())?;
        if let Some(waker) = waker {
            partition.register_fetch(waker, matches!(reader, Reader::Follower(_)));
        }
        if let Reader::Follower(replica) = reader {
            return read_for_follower(&partition, offset, (max_bytes, min_one), replica);
        }
        let bound = match isolation {
            Isolation::ReadCommitted => ReadBound::LastStable,
            Isolation::ReadUncommitted => ReadBound::HighWatermark,
        };
        if !partition.is_leader() {
            return read_on_follower(&partition, offset, (max_bytes, min_one), bound);
        }
        if let Reader::ConsumerAtEpoch(epoch) = reader
            && let Some(diverged) = divergence(&partition, epoch, offset.max(0) as u64)
        {
            return Ok(diverged);
        }
        let (
            log_start_offset,
            local_log_start_offset,
            remote_log_start_offset,
            remote_log_end_offset,
        ) = {
            let log = partition.log();
            (
                log.log_start_offset(),
                log.local_log_start_offset(),
                log.remote_log_start_offset(),
                log.remote_log_end_offset(),
            )
        };
        // Below the log start (deleted by retention or DeleteRecords), even where a segment
        // still holds the records.
        if offset < log_start_offset as i64 {
            return Err(from_log(LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset: partition.log().log_end_offset(),
            }));
        }
        if offset < local_log_start_offset as i64
            && remote_log_start_offset.is_some_and(|start| offset >= start as i64)
            && offset < remote_log_end_offset as i64
            && self.remote.is_some()
        {
            let high_watermark = partition.high_watermark() as i64;
            return Ok(PartitionRead {
                high_watermark,
                last_stable_offset: partition.last_stable_offset() as i64,
                log_start_offset: log_start_offset as i64,
                records: Some(Records::Remote),
                record_count: 0,
                diverging_epoch: None,
                aborted_transactions: (isolation == Isolation::ReadCommitted).then(Vec::new),
            });
        }
        // Past the remote tier and below the local log: no records there, read on locally.
        let offset = if (log_start_offset as i64..local_log_start_offset as i64).contains(&offset) {
            local_log_start_offset as i64
        } else {
            offset
        };
        let read = partition
            .read(offset, max_bytes, min_one, bound)
            .map_err(|e| match e {
                LogError::OffsetOutOfRange {
                    offset,
                    log_end_offset,
                    ..
                } => from_log(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset,
                    log_end_offset,
                }),
                e => from_log(e),
            })?;
        Ok(PartitionRead {
            high_watermark: read.high_watermark as i64,
            last_stable_offset: read.last_stable_offset as i64,
            log_start_offset: log_start_offset.min(read.log_start_offset) as i64,
            record_count: record_count(&read, offset),
            aborted_transactions: aborted_list(&read),
            records: read.records.map(file_region),
            diverging_epoch: None,
        })
    }

    /// Fetch below the local log: reads the remote tier, waiting at most `wait`.
    pub async fn read_remote(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        (max_bytes, min_one, isolation): (u64, bool, Isolation),
        wait: std::time::Duration,
    ) -> Result<Option<(Vec<Bytes>, Option<Vec<(i64, i64)>>)>, BrokerError> {
        use crate::remote_log_manager::RemoteOutcome;
        let partition = self.leader_ref(topic, partition)?;
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| BrokerError::OffsetOutOfRange("no remote tier".into()))?;
        let read = remote
            .read_within(
                &self.metadata.cluster_id(),
                &partition,
                (offset.max(0) as u64, max_bytes, min_one),
                wait,
            )
            .await
            .map_err(|e| remote_error(&partition, e))?;
        match read {
            RemoteOutcome::Read(read) if isolation == Isolation::ReadCommitted => {
                let aborted = self
                    .remote_aborted(&partition, offset.max(0) as u64, &read.records)
                    .await?;
                Ok(Some((read.records, Some(aborted))))
            }
            RemoteOutcome::Read(read) => Ok(Some((read.records, None))),
            RemoteOutcome::Pending => Ok(None),
            RemoteOutcome::NotRemote => Err(BrokerError::OffsetOutOfRange(format!(
                "offset {offset} is not in the remote tier"
            ))),
        }
    }

    /// The aborted transactions a `read_committed` remote read of `records` from `from`
    /// overlaps: the remote segments' indexes, then the local log's if they may not be all.
    async fn remote_aborted(
        &self,
        partition: &PartitionRef,
        from: u64,
        records: &[Bytes],
    ) -> Result<Vec<(i64, i64)>, BrokerError> {
        let upper = records
            .iter()
            .flat_map(|piece| strata_record::batches(piece).map(|(_, h)| h.next_offset()))
            .max()
            .unwrap_or(from);
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| BrokerError::OffsetOutOfRange("no remote tier".into()))?;
        let log = remote
            .remote_for(&self.metadata.cluster_id(), partition)
            .await
            .map_err(|e| remote_error(partition, e))?;
        let (mut aborted, complete) = log
            .log
            .aborted_txns(from, upper)
            .await
            .map_err(|e| remote_error(partition, e))?;
        if !complete {
            let local = partition.log().aborted_txns(from, upper);
            aborted.extend(local.into_iter().map(|t| strata_tiering::AbortedTxn {
                producer_id: t.producer_id,
                first_offset: t.first_offset,
                last_offset: t.last_offset,
                last_stable_offset: t.last_stable_offset,
            }));
        }
        aborted.dedup();
        Ok(aborted
            .into_iter()
            .map(|t| (t.producer_id, t.first_offset as i64))
            .collect())
    }

    /// ListOffsets.
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<OffsetAndTimestamp, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        // What the asker may read up to: Kafka's `lastFetchableOffset`.
        let high_watermark = match isolation {
            Isolation::ReadCommitted => partition.last_stable_offset(),
            Isolation::ReadUncommitted => partition.high_watermark(),
        };
        let epoch = partition.leader_epoch();
        if let OffsetSpec::Timestamp(ts) = spec
            && let Some((offset, timestamp)) =
                self.remote_offset_for_timestamp(&partition, ts).await?
            && offset < partition.log().local_log_start_offset()
        {
            return Ok(OffsetAndTimestamp {
                offset: offset.max(partition.log().log_start_offset()) as i64,
                timestamp,
                leader_epoch: epoch,
            });
        }
        let log = partition.log();
        let found = |offset: u64, timestamp: i64| OffsetAndTimestamp {
            offset: offset as i64,
            timestamp,
            leader_epoch: epoch,
        };
        let none = OffsetAndTimestamp {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        };
        Ok(match spec {
            OffsetSpec::Latest => found(high_watermark, -1),
            OffsetSpec::Earliest => found(log.log_start_offset(), -1),
            OffsetSpec::EarliestLocal => found(log.local_log_start_offset(), -1),
            OffsetSpec::MaxTimestamp => log
                .max_timestamp()
                .filter(|(o, _)| *o < high_watermark)
                .map_or(none, |(o, t)| found(o, t)),
            // Deleted records are never an answer: the first one after them is.
            OffsetSpec::Timestamp(ts) => log
                .find_offset_by_timestamp(ts)
                .map_err(from_log)?
                .map(|(o, t)| (o.max(log.log_start_offset()), t))
                .filter(|(o, _)| *o < high_watermark)
                .map_or(none, |(o, t)| found(o, t)),
        })
    }

    /// The producers a partition this broker leads knows, by id (DescribeProducers).
    pub fn producers(&self, topic: &str, partition: i32) -> Result<Vec<ProducerInfo>, BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        let mut producers: Vec<ProducerInfo> = partition
            .log()
            .active_producers()
            .into_iter()
            .map(|p| ProducerInfo {
                producer_id: p.producer_id,
                epoch: p.epoch,
                last_sequence: p.last_sequence,
                last_timestamp: p.last_timestamp,
                coordinator_epoch: p.coordinator_epoch,
                current_txn_start_offset: p.current_txn_first_offset.map_or(-1, |o| o as i64),
            })
            .collect();
        producers.sort_by_key(|p| p.producer_id);
        Ok(producers)
    }

    /// The leader epoch of a partition this broker leads.
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> Result<i32, BrokerError> {
        self.leader_ref(topic, partition).map(|p| p.leader_epoch())
    }

    /// OffsetForLeaderEpoch: the end offset of `epoch` (Kafka's `endOffsetForEpoch`).
    pub fn end_offset_for_epoch(
        &self,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> Result<(i32, i64), BrokerError> {
        let partition = self.leader_ref(topic, partition)?;
        // UNDEFINED (-1, -1) for an epoch above every epoch of the log, as in Kafka.
        Ok(partition
            .log()
            .end_offset_for_epoch(epoch)
            .map_or((-1, -1), |(epoch, end)| (epoch, end as i64)))
    }
}

fn record_count(read: &crate::partition::ReadResult, offset: i64) -> u64 {
    read.records
        .as_ref()
        .map_or(0, |slice| slice.records_from(offset.max(0) as u64))
}

/// A `read_committed` read's aborted transactions as Fetch lists them.
fn aborted_list(read: &crate::partition::ReadResult) -> Option<Vec<(i64, i64)>> {
    read.aborted.as_ref().map(|aborted| {
        aborted
            .iter()
            .map(|t| (t.producer_id, t.first_offset as i64))
            .collect()
    })
}

fn file_region(slice: crate::log::FileSlice) -> Records {
    Records::File(strata_api::broker::FileRegion {
        file: slice.file,
        position: slice.position,
        len: slice.len,
    })
}

/// A consumer's read of a partition this broker follows (KIP-392): what it has up to the high
/// watermark it learned from the leader. Offsets outside its local log are out of range, which
/// sends the consumer back to the leader.
fn read_on_follower(
    partition: &PartitionRef,
    offset: i64,
    (max_bytes, min_one): (u64, bool),
    bound: ReadBound,
) -> Result<PartitionRead, BrokerError> {
    let (local_start, log_start, log_end) = {
        let log = partition.log();
        (
            log.local_log_start_offset(),
            log.log_start_offset(),
            log.log_end_offset(),
        )
    };
    let first = local_start.max(log_start);
    if offset < first as i64 || offset > log_end as i64 {
        return Err(from_log(LogError::OffsetOutOfRange {
            offset,
            log_start_offset: first,
            log_end_offset: log_end,
        }));
    }
    let read = partition
        .read(offset, max_bytes, min_one, bound)
        .map_err(from_log)?;
    Ok(PartitionRead {
        high_watermark: read.high_watermark as i64,
        last_stable_offset: read.last_stable_offset as i64,
        log_start_offset: log_start as i64,
        record_count: record_count(&read, offset),
        aborted_transactions: aborted_list(&read),
        records: read.records.map(file_region),
        diverging_epoch: None,
    })
}

/// The answer to a fetch at `fetch_offset` whose last batch has `last_fetched_epoch`, when
/// this log's history under that epoch ends before the offset or the epoch is unknown here:
/// where the fetcher must truncate to (KIP-320). `None` when the histories agree.
fn divergence(
    partition: &PartitionRef,
    last_fetched_epoch: i32,
    fetch_offset: u64,
) -> Option<PartitionRead> {
    let end = partition.log().end_offset_for_epoch(last_fetched_epoch);
    let diverged = match end {
        Some((epoch, end)) => epoch < last_fetched_epoch || end < fetch_offset,
        None => true,
    };
    if !diverged {
        return None;
    }
    let (epoch, end) = end.map_or((-1, -1), |(e, o)| (e, o as i64));
    let log_start_offset = partition.log().log_start_offset() as i64;
    let high_watermark = partition.high_watermark() as i64;
    Some(PartitionRead {
        high_watermark,
        last_stable_offset: high_watermark,
        log_start_offset,
        records: None,
        record_count: 0,
        diverging_epoch: Some((epoch, end)),
        aborted_transactions: None,
    })
}

/// A follower's fetch (Kafka's `readFromLog` for a replica): the divergence check against the
/// follower's last fetched epoch (KIP-320), its progress recorded (which may advance the high
/// watermark), and records up to the log end.
fn read_for_follower(
    partition: &PartitionRef,
    offset: i64,
    (max_bytes, min_one): (u64, bool),
    replica: ReplicaFetch,
) -> Result<PartitionRead, BrokerError> {
    if !partition.replica_set().is_follower(replica.replica_id) {
        return Err(BrokerError::NotLeaderOrFollower);
    }
    let fetch_offset = offset.max(0) as u64;
    if replica.last_fetched_epoch >= 0
        && let Some(diverged) = divergence(partition, replica.last_fetched_epoch, fetch_offset)
    {
        return Ok(diverged);
    }
    partition.follower_fetched(replica.replica_id, fetch_offset);
    if replica.log_start_offset >= 0 {
        partition.follower_log_start(replica.replica_id, replica.log_start_offset as u64);
    }
    let read = partition
        .read(offset, max_bytes, min_one, ReadBound::LogEnd)
        .map_err(from_log)?;
    Ok(PartitionRead {
        high_watermark: read.high_watermark as i64,
        last_stable_offset: read.last_stable_offset as i64,
        log_start_offset: read.log_start_offset as i64,
        record_count: record_count(&read, offset),
        records: read.records.map(file_region),
        diverging_epoch: None,
        aborted_transactions: None,
    })
}
