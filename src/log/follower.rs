//! The replica side of a [`UnifiedLog`]: appending a leader's batches byte for byte at the
//! offsets the leader gave them (the one "append at given offsets" path, for followers and
//! cluster links), truncating to the committed history after a leader change, and answering
//! where an epoch's history ends.

use super::batch::{self, BatchHeader};
use super::error::{LogError, Result};
use super::leader_epoch::EpochEntry;
use super::unified_log::UnifiedLog;

/// What a follower append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaAppend {
    /// Whole batches appended.
    pub batches: usize,
    /// Record bytes appended.
    pub bytes: u64,
}

impl UnifiedLog {
    /// Appends the whole batches at the start of `records` (a fetch response may end with a
    /// partial one, which is left for the next fetch), keeping their offsets, epochs and
    /// bytes. Each batch's CRC is checked, and its base offset must not go back below the log
    /// end. Producer state and the leader epoch cache follow what is appended.
    pub fn append_as_follower(&mut self, records: &[u8], now_ms: i64) -> Result<ReplicaAppend> {
        let mut appended = ReplicaAppend::default();
        for (position, header) in strata_record::batches(records) {
            let bytes = &records[position..position + header.size() as usize];
            strata_record::verify_crc(bytes)
                .map_err(|e| LogError::CorruptRecord(format!("replicated batch: {e}")))?;
            if header.base_offset < self.local.log_end_offset() {
                return Err(LogError::CorruptRecord(format!(
                    "replicated batch at offset {} is below the log end offset {}",
                    header.base_offset,
                    self.local.log_end_offset()
                )));
            }
            self.local.maybe_roll(&self.config, header.size(), now_ms)?;
            let (head, body) = batch::split_header(bytes);
            self.epochs
                .assign(header.partition_leader_epoch, header.base_offset)?;
            self.local.append(&head, body, &header)?;
            self.producer_state.update(&header);
            if header.is_control()
                && let Some(marker) = strata_record::control::marker(bytes)
            {
                self.complete_txn(
                    header.producer_id,
                    header.producer_epoch,
                    marker,
                    header.base_offset,
                )?;
            }
            appended.batches += 1;
            appended.bytes += header.size();
        }
        Ok(appended)
    }

    /// Removes every record at or above `offset` (Kafka's `truncateTo`): the local log, the
    /// leader epochs that start there and the producer state built from them go.
    pub fn truncate_to(&mut self, offset: u64) -> Result<()> {
        if offset >= self.local.log_end_offset() {
            return Ok(());
        }
        let config = self.config.clone();
        self.local.truncate_to(&config, offset)?;
        self.epochs.truncate_from_end(self.local.log_end_offset())?;
        self.first_dirty = self.first_dirty.min(self.local.log_end_offset());
        self.rebuild_producer_state()
    }

    /// Forgets the leader epochs that start at or above `offset` (a mirror's own epoch from
    /// before it followed a source, with no batch of it left after the cut).
    pub fn forget_epochs_from(&mut self, offset: u64) -> Result<()> {
        self.epochs.truncate_from_end(offset)
    }

    /// Empties the log and starts it at `offset` (Kafka's `truncateFullyAndStartAt`).
    pub fn truncate_fully_and_start_at(&mut self, offset: u64) -> Result<()> {
        let config = self.config.clone();
        self.local.truncate_fully_and_start_at(&config, offset)?;
        self.epochs.truncate_from_end(0)?;
        self.first_dirty = offset;
        // The leader's producers below `offset` come from the remote tier, if any.
        self.producer_base.clear();
        self.producer_history_complete = !self.config.tiered() || offset == 0;
        self.save_producer_base()?;
        self.rebuild_producer_state()
    }

    /// The largest epoch not above `epoch` and where this log's history under it ends
    /// (OffsetForLeaderEpoch, and the Fetch divergence check); `None` when unknown.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        self.epochs
            .end_offset_for(epoch, self.local.log_end_offset())
    }

    /// Where `epoch` starts in this log, if it has it.
    pub fn epoch_start_offset(&self, epoch: i32) -> Option<u64> {
        self.epochs
            .entries()
            .iter()
            .find(|e| e.epoch == epoch)
            .map(|e| e.start_offset)
    }

    /// Adds leader epochs older than this log's first (from the remote tier); see
    /// [`LeaderEpochCache::merge_history`](super::leader_epoch::LeaderEpochCache::merge_history).
    pub fn merge_epoch_history(
        &mut self,
        older: &[super::leader_epoch::EpochEntry],
    ) -> Result<bool> {
        self.epochs.merge_history(older)
    }

    /// The epoch of the last batch in the log, if any (a follower's `last_fetched_epoch`).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The leader epoch entries, oldest first.
    pub fn epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }
}

/// The header of the first whole batch in `records`, if any.
pub fn first_batch(records: &[u8]) -> Option<BatchHeader> {
    strata_record::batches(records).next().map(|(_, h)| h)
}

#[cfg(test)]
#[path = "follower_test.rs"]
mod tests;
