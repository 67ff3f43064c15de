//! The transactional side of a [`UnifiedLog`] (KIP-98): transaction markers, the last stable
//! offset and the aborted transactions a `read_committed` fetch is told of.
//!
//! A transaction is open on a partition from its producer's first transactional batch until
//! the marker its coordinator writes (commit or abort). The last stable offset is the first
//! offset of the earliest open transaction, or of the earliest ended one whose marker is not
//! yet below the high watermark (a consumer must not see a transaction's records before its
//! outcome is replicated), and never above the high watermark. An abort is recorded in the
//! transaction index of the segment that receives its marker, with the last stable offset of
//! that moment, so that a fetch can find every aborted transaction overlapping what it reads
//! by scanning forward from the segment it starts in (Kafka's `collectAbortedTransactions`).

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_record::control::{Marker, marker_key_value};

use super::batch::{self, BatchHeader};
use super::error::{LogError, Result};
use super::index::AbortedTxn;
use super::unified_log::{AppendInfo, UnifiedLog};

/// A transaction whose marker is written, kept until the marker is below the high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CompletedTxn {
    pub first_offset: u64,
    pub marker_offset: u64,
}

/// The marker batch a coordinator asks for, as Kafka encodes it (before its offset).
fn marker_batch(producer_id: i64, epoch: i16, marker: Marker, now_ms: i64) -> Result<Bytes> {
    let (key, value) = marker_key_value(marker);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(Bytes::copy_from_slice(&key)),
        value: Some(Bytes::copy_from_slice(&value)),
        headers: Default::default(),
    };
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::InvalidRecord(format!("marker batch: {e}")))?;
    Ok(out.freeze())
}

impl UnifiedLog {
    /// The last stable offset under `high_watermark`; completed transactions whose markers
    /// are below it are forgotten.
    pub fn last_stable_offset(&mut self, high_watermark: u64) -> u64 {
        self.completed_txns
            .retain(|t| t.marker_offset >= high_watermark);
        let mut lso = high_watermark;
        if let Some(first) = self.producer_state.first_ongoing_offset() {
            lso = lso.min(first);
        }
        for txn in &self.completed_txns {
            lso = lso.min(txn.first_offset);
        }
        lso
    }

    /// Appends a transaction marker on the leader (WriteTxnMarkers): refused if its producer
    /// epoch is older than the producer's or its coordinator epoch older than the last
    /// marker's.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        marker: Marker,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.producer_state
            .check_marker(producer_id, epoch, marker.coordinator_epoch)?;
        let bumped = self
            .producer_state
            .epoch_of(producer_id)
            .is_some_and(|current| epoch > current);
        let bytes = marker_batch(producer_id, epoch, marker, now_ms)?;
        let header = BatchHeader::parse(&bytes)?;
        self.local.maybe_roll(&self.config, header.size(), now_ms)?;
        let base_offset = self.local.log_end_offset();
        let (mut head, records) = batch::split_header(&bytes);
        let leader_epoch = self.leader_epoch();
        batch::assign_offset(&mut head, base_offset, leader_epoch);
        let header = BatchHeader::parse(&head)?;
        self.epochs.assign(leader_epoch, base_offset)?;
        self.local.append(&head, records, &header)?;
        self.complete_txn(producer_id, epoch, marker, base_offset)?;
        self.verifications.end_txn(producer_id, epoch, bumped);
        Ok(AppendInfo {
            base_offset,
            next_offset: self.local.log_end_offset(),
            log_append_time: -1,
            duplicate: false,
        })
    }

    /// Records a marker appended at `marker_offset` (written here, or replicated): the
    /// producer's transaction ends, and an abort goes into the active segment's index.
    pub(super) fn complete_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        marker: Marker,
        marker_offset: u64,
    ) -> Result<()> {
        let Some(first_offset) =
            self.producer_state
                .end_txn(producer_id, epoch, marker.coordinator_epoch)
        else {
            return Ok(());
        };
        self.completed_txns.push(CompletedTxn {
            first_offset,
            marker_offset,
        });
        if !marker.commit {
            let aborted = self.aborted_entry(producer_id, first_offset, marker_offset);
            self.local
                .segments_mut()
                .active_mut()
                .txn_index_mut()
                .append(aborted)?;
        }
        Ok(())
    }

    /// The index entry of an abort: the last stable offset once it ended is the first offset
    /// of the earliest transaction still open, or the marker's offset + 1.
    pub(super) fn aborted_entry(
        &self,
        producer_id: i64,
        first_offset: u64,
        marker_offset: u64,
    ) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset: marker_offset,
            last_stable_offset: self
                .producer_state
                .first_ongoing_offset()
                .unwrap_or(marker_offset + 1),
        }
    }

    /// The aborted transactions overlapping `[from, upper)`: those whose markers are at or
    /// after `from` and which began below `upper`. Segments are scanned from the one holding
    /// `from` until an abort whose last stable offset reaches `upper` shows that no later
    /// one can have begun below it.
    pub fn aborted_txns(&self, from: u64, upper: u64) -> Vec<AbortedTxn> {
        let mut found = Vec::new();
        for segment in self.local.segments().from_offset(from) {
            for entry in segment.txn_index().entries() {
                if entry.last_offset >= from && entry.first_offset < upper {
                    found.push(*entry);
                }
                if entry.last_stable_offset >= upper {
                    return found;
                }
            }
        }
        found
    }

    /// The aborted transactions whose markers are in `[from, to)`, for an upload.
    pub fn aborted_between(&self, from: u64, to: u64) -> Vec<AbortedTxn> {
        self.local
            .segments()
            .from_offset(from)
            .flat_map(|s| s.txn_index().entries().iter().copied())
            .filter(|t| (from..to).contains(&t.last_offset))
            .collect()
    }

    /// The marker of a control batch at `position` of a segment being scanned.
    pub(super) fn marker_at(
        segment: &super::segment::LogSegment,
        position: u64,
        header: &BatchHeader,
    ) -> Result<Option<Marker>> {
        let bytes = segment.read_batch(position, header)?;
        Ok(strata_record::control::marker(&bytes))
    }
}

#[cfg(test)]
#[path = "txn_test.rs"]
mod tests;
