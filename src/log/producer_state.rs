//! `ProducerStateManager`: per-partition idempotent producer state (KIP-98).
//!
//! For each producer id the log remembers the current epoch and the last few batches it wrote
//! (first/last sequence and offsets), so that a retried batch is acknowledged with its original
//! offsets instead of being appended twice, and a gap in sequences is refused. The state is a
//! pure function of the batch headers in the log: it is rebuilt by scanning them on start.
//!
//! Transactions (KIP-98): a producer's first transactional batch opens its transaction at that
//! offset, and the marker a coordinator writes ends it (`end_txn`). The open transactions'
//! first offsets bound the last stable offset; the coordinator epoch of the last marker fences
//! markers from a coordinator that was replaced.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::batch::{BatchHeader, wrapping_sequence};
use super::error::{LogError, Result};

/// Batches remembered per producer for duplicate detection: librdkafka and the Java client keep
/// at most 5 requests in flight per connection when idempotence is on, so a retry is always of
/// one of the last 5 batches.
pub const MAX_REMEMBERED_BATCHES: usize = 5;

/// A batch as remembered for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// Epoch of the coordinator that wrote this producer's last marker (-1: none).
    coordinator_epoch: i32,
    /// First offset of its open transaction.
    current_txn_first_offset: Option<u64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> Self {
        Self {
            epoch,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }
}

/// What checking a batch against producer state decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log: acknowledge with the original metadata, do not append.
    Duplicate(BatchMetadata),
}

/// The producer snapshot file: the state of the batches below `offset`.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotFile {
    offset: u64,
    producers: Vec<(i64, i16, Vec<BatchMetadata>)>,
    /// Producers' open transactions and coordinator epochs: (id, first offset, coordinator
    /// epoch).
    #[serde(default)]
    transactions: Vec<(i64, Option<u64>, i32)>,
}

/// Producer state of one partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// The open transactions: first offset → producer.
    ongoing: BTreeMap<u64, i64>,
}

impl ProducerStateManager {
    /// Checks an incoming batch (before its offsets are assigned) against the producer's state.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck> {
        if !header.has_producer_id() {
            return Ok(SequenceCheck::Append);
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
        if !header.is_transactional()
            && header.producer_epoch == entry.epoch
            && entry.current_txn_first_offset.is_some()
        {
            return Err(LogError::InvalidTxnState(format!(
                "producer {producer_id} wrote a non-transactional batch inside its open transaction"
            )));
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

    /// Checks only the epoch of a batch a coordinator writes for a producer (TxnOffsetCommit):
    /// it carries no sequence, but a fenced producer's batch must not open a transaction.
    pub fn check_epoch(&self, header: &BatchHeader) -> Result<()> {
        match self.producers.get(&header.producer_id) {
            Some(entry) if header.has_producer_id() && header.producer_epoch < entry.epoch => {
                Err(LogError::InvalidProducerEpoch {
                    producer_id: header.producer_id,
                    got: header.producer_epoch,
                    current: entry.epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a batch written to the log (at append, and when rebuilding from the log); a
    /// transactional one opens its producer's transaction if none is open. Markers are
    /// recorded by [`Self::end_txn`].
    pub fn update(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() || header.is_control() {
            return;
        }
        self.record(
            header.producer_id,
            header.producer_epoch,
            BatchMetadata {
                first_sequence: header.base_sequence,
                last_sequence: header.last_sequence(),
                first_offset: header.base_offset,
                max_timestamp: header.max_timestamp,
            },
        );
        if header.is_transactional()
            && let Some(entry) = self.producers.get_mut(&header.producer_id)
            && entry.epoch == header.producer_epoch
            && entry.current_txn_first_offset.is_none()
        {
            entry.current_txn_first_offset = Some(header.base_offset);
            self.ongoing.insert(header.base_offset, header.producer_id);
        }
    }

    /// Checks a marker a coordinator asks to write: its producer epoch must not be older than
    /// the producer's, nor its coordinator epoch older than the last marker's.
    pub fn check_marker(&self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Result<()> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                got: epoch,
                current: entry.epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(LogError::CoordinatorFenced {
                producer_id,
                got: coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a marker of `producer_id` (written, replicated or replayed): its transaction
    /// ends; returns the transaction's first offset if one was open. A marker of a newer epoch
    /// (a producer fenced by its coordinator) moves the producer to that epoch.
    pub fn end_txn(&mut self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Option<u64> {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch));
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        let first = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&first);
        Some(first)
    }

    /// The producer's epoch here, if it wrote anything.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// First offset of the earliest open transaction.
    pub fn first_ongoing_offset(&self) -> Option<u64> {
        self.ongoing.keys().next().copied()
    }

    /// The producer's open transaction's first offset and its coordinator epoch.
    pub fn txn_of(&self, producer_id: i64) -> (Option<u64>, i32) {
        self.producers.get(&producer_id).map_or((None, -1), |e| {
            (e.current_txn_first_offset, e.coordinator_epoch)
        })
    }

    /// Whether `producer_id` has a transaction open here at `epoch`.
    pub fn ongoing_at(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.epoch == epoch && e.current_txn_first_offset.is_some())
    }

    /// Records a batch of `producer_id` at `epoch`: a new epoch forgets the old one's batches.
    /// A batch from an older epoch, or not after the last one remembered, changes nothing.
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchMetadata) {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch));
        if epoch < entry.epoch
            || (epoch == entry.epoch
                && entry
                    .batches
                    .back()
                    .is_some_and(|last| last.first_offset >= batch.first_offset))
        {
            return;
        }
        if epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = epoch;
        }
        if entry.batches.len() == MAX_REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
    }

    /// The state of the batches below `offset`, from this state of a longer log. A producer
    /// may have fewer batches here than it had at `offset` (later ones pushed them out), but
    /// never the ones that matter: replaying the log from `offset` onto it gives this state.
    pub fn below(&self, offset: u64) -> ProducerStateManager {
        // A transaction still open now that began below `offset` was open there too.
        let producers: HashMap<i64, ProducerEntry> = self
            .producers
            .iter()
            .filter_map(|(id, entry)| {
                let batches: VecDeque<BatchMetadata> = entry
                    .batches
                    .iter()
                    .filter(|b| b.first_offset < offset)
                    .copied()
                    .collect();
                let txn = entry.current_txn_first_offset.filter(|f| *f < offset);
                (!batches.is_empty() || txn.is_some()).then_some((
                    *id,
                    ProducerEntry {
                        epoch: entry.epoch,
                        batches,
                        coordinator_epoch: entry.coordinator_epoch,
                        current_txn_first_offset: txn,
                    },
                ))
            })
            .collect();
        let ongoing = producers
            .iter()
            .filter_map(|(id, e)| Some((e.current_txn_first_offset?, *id)))
            .collect();
        ProducerStateManager { producers, ongoing }
    }

    /// `self` replayed onto `older`, the state of an earlier part of the log.
    pub fn replayed_onto(&self, mut older: ProducerStateManager) -> ProducerStateManager {
        for (id, entry) in &self.producers {
            for batch in &entry.batches {
                older.record(*id, entry.epoch, *batch);
            }
            let merged = older
                .producers
                .entry(*id)
                .or_insert_with(|| ProducerEntry::new(entry.epoch));
            merged.coordinator_epoch = merged.coordinator_epoch.max(entry.coordinator_epoch);
            if entry.current_txn_first_offset.is_some() {
                merged.current_txn_first_offset = entry.current_txn_first_offset;
            }
        }
        older.ongoing = older
            .producers
            .iter()
            .filter_map(|(id, e)| Some((e.current_txn_first_offset?, *id)))
            .collect();
        older
    }

    /// This state as the producer snapshot file of a log starting at `offset`.
    pub fn to_json(&self, offset: u64) -> Vec<u8> {
        let file = SnapshotFile {
            offset,
            producers: self
                .producers
                .iter()
                .map(|(id, e)| (*id, e.epoch, e.batches.iter().copied().collect()))
                .collect(),
            transactions: self
                .producers
                .iter()
                .filter(|(_, e)| e.current_txn_first_offset.is_some() || e.coordinator_epoch >= 0)
                .map(|(id, e)| (*id, e.current_txn_first_offset, e.coordinator_epoch))
                .collect(),
        };
        serde_json::to_vec(&file).expect("producer state serializes")
    }

    /// The state in a snapshot file, if it is one of a log starting at `offset`.
    pub fn from_json(bytes: &[u8], offset: u64) -> Option<ProducerStateManager> {
        let file: SnapshotFile = serde_json::from_slice(bytes).ok()?;
        (file.offset == offset).then(|| {
            let mut state = ProducerStateManager::default();
            for (id, epoch, batches) in file.producers {
                state
                    .producers
                    .entry(id)
                    .or_insert_with(|| ProducerEntry::new(epoch));
                batches.into_iter().for_each(|b| state.record(id, epoch, b));
            }
            for (id, first, coordinator_epoch) in file.transactions {
                if let Some(entry) = state.producers.get_mut(&id) {
                    entry.coordinator_epoch = coordinator_epoch;
                    entry.current_txn_first_offset = first;
                    if let Some(first) = first {
                        state.ongoing.insert(first, id);
                    }
                }
            }
            state
        })
    }

    /// Every producer: id, epoch and remembered batches, oldest first.
    pub fn producers(&self) -> impl Iterator<Item = (i64, i16, &VecDeque<BatchMetadata>)> {
        self.producers
            .iter()
            .map(|(id, entry)| (*id, entry.epoch, &entry.batches))
    }

    /// Forgets everything (before a rebuild after truncation).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
    }

    /// The largest producer id tracked.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.producers.keys().max().copied()
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

    fn listed(state: &ProducerStateManager) -> Vec<(i64, i16, Vec<BatchMetadata>)> {
        let mut out: Vec<_> = state
            .producers()
            .map(|(id, epoch, batches)| (id, epoch, batches.iter().copied().collect()))
            .collect();
        out.sort_by_key(|(id, _, _)| *id);
        out
    }

    #[test]
    fn a_log_cut_anywhere_rebuilds_from_the_state_below_the_cut() {
        // Three producers interleaved over 40 offsets; producer 2 bumps its epoch at 20.
        let mut headers = Vec::new();
        let mut sequences = [0i32; 3];
        for offset in 0..40u64 {
            let pid = (offset % 3) as i64;
            let epoch = if pid == 2 && offset >= 20 { 1 } else { 0 };
            if pid == 2 && offset == 20 {
                sequences[2] = 0;
            }
            headers.push(header(pid, epoch, sequences[pid as usize], 1, offset));
            sequences[pid as usize] += 1;
        }
        let mut whole = ProducerStateManager::default();
        headers.iter().for_each(|h| whole.update(h));
        for cut in 0..=40u64 {
            let mut tail = ProducerStateManager::default();
            headers[cut as usize..].iter().for_each(|h| tail.update(h));
            let rebuilt = tail.replayed_onto(whole.below(cut));
            assert_eq!(listed(&rebuilt), listed(&whole), "cut at {cut}");
        }
        // Nothing below the first batch; everything below the end.
        assert!(whole.below(0).is_empty());
        assert_eq!(listed(&whole.below(40)), listed(&whole));
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
