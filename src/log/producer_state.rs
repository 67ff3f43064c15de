//! `ProducerStateManager`: per-partition idempotent producer state (KIP-98).
//!
//! For each producer id the log remembers the current epoch and the last few batches it wrote
//! (first/last sequence and offsets), so that a retried batch is acknowledged with its original
//! offsets instead of being appended twice, and a gap in sequences is refused. The state is a
//! pure function of the batch headers in the log: it is rebuilt by scanning them on start.

use std::collections::{HashMap, VecDeque};

use super::batch::{BatchHeader, wrapping_sequence};
use super::error::{LogError, Result};

/// Batches remembered per producer for duplicate detection: librdkafka and the Java client keep
/// at most 5 requests in flight per connection when idempotence is on, so a retry is always of
/// one of the last 5 batches.
pub const MAX_REMEMBERED_BATCHES: usize = 5;

/// A batch as remembered for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_sequence: i32,
    /// Sequence of the last record.
    pub last_sequence: i32,
    /// Offset the batch was written at.
    pub first_offset: u64,
    /// The batch's max timestamp (returned again for a duplicate).
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
}

/// What checking a batch against producer state decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log: acknowledge with the original metadata, do not append.
    Duplicate(BatchMetadata),
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    /// Checks an incoming batch (before its offsets are assigned) against the producer's state.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck> {
        if !header.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        if header.is_transactional() {
            return Err(LogError::Unsupported(
                "transactional batches: transactions are not implemented yet".into(),
            ));
        }
        let producer_id = header.producer_id;
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer: its state may have been lost with deleted segments, so any
            // sequence is accepted, as Kafka does.
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                got: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            if header.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got: header.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(duplicate) = entry.batches.iter().find(|b| {
            b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence()
        }) {
            return Ok(SequenceCheck::Duplicate(*duplicate));
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |last| wrapping_sequence(last.last_sequence, 1));
        if header.base_sequence != expected {
            return Err(LogError::OutOfOrderSequence {
                producer_id,
                expected,
                got: header.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch written to the log (at append, and when rebuilding from the log).
    pub fn update(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() || header.is_control() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = header.producer_epoch;
        }
        if entry.batches.len() == MAX_REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            max_timestamp: header.max_timestamp,
        });
    }

    /// Forgets everything (before a rebuild after truncation).
    pub fn clear(&mut self) {
        self.producers.clear();
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchHeader, assign_offset, tests::sample_batch};

    fn header(pid: i64, epoch: i16, seq: i32, count: u32, offset: u64) -> BatchHeader {
        let mut batch = sample_batch(count, 0, Some((pid, epoch, seq)));
        assign_offset(&mut batch, offset, 0);
        BatchHeader::parse(&batch).unwrap()
    }

    #[test]
    fn in_order_then_duplicate_then_gap() {
        let mut state = ProducerStateManager::default();
        let first = header(1, 0, 0, 5, 0);
        assert_eq!(state.check(&first).unwrap(), SequenceCheck::Append);
        state.update(&first);
        let second = header(1, 0, 5, 5, 5);
        assert_eq!(state.check(&second).unwrap(), SequenceCheck::Append);
        state.update(&second);
        match state.check(&header(1, 0, 0, 5, 99)).unwrap() {
            SequenceCheck::Duplicate(meta) => assert_eq!(meta.first_offset, 0),
            other => panic!("expected a duplicate, got {other:?}"),
        }
        assert!(matches!(
            state.check(&header(1, 0, 12, 1, 99)),
            Err(LogError::OutOfOrderSequence {
                expected: 10,
                got: 12,
                ..
            })
        ));
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut state = ProducerStateManager::default();
        state.update(&header(9, 3, 0, 1, 0));
        assert!(matches!(
            state.check(&header(9, 2, 1, 1, 1)),
            Err(LogError::InvalidProducerEpoch { current: 3, .. })
        ));
        assert_eq!(
            state.check(&header(9, 4, 0, 1, 1)).unwrap(),
            SequenceCheck::Append
        );
        assert!(state.check(&header(9, 4, 7, 1, 1)).is_err());
    }

    #[test]
    fn only_last_batches_are_remembered() {
        let mut state = ProducerStateManager::default();
        for n in 0..10 {
            state.update(&header(1, 0, n, 1, n as u64));
        }
        assert!(matches!(
            state.check(&header(1, 0, 9, 1, 0)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
        assert!(state.check(&header(1, 0, 2, 1, 0)).is_err());
    }
}
