//! A transactional id's state and Kafka's transitions between states (transaction versions 1
//! and 2), as pure functions of the current state and a request: the service writes what they
//! decide to `__transaction_state` and applies it once durable.
//!
//! ```text
//! Empty ──add partitions──▶ Ongoing ──EndTxn──▶ PrepareCommit/Abort ──markers──▶ Complete*
//!   ▲                          │ timeout or fenced by InitProducerId: PrepareAbort (epoch + 1)
//!   └──────── InitProducerId (epoch + 1) from Empty or Complete* ◀─────────────────┘
//! ```
//!
//! Transaction version 2 (KIP-890 part 2, EndTxn v5+) bumps the epoch at every EndTxn: the
//! markers carry the new epoch, so a late batch of the ended transaction is refused by the
//! partition instead of opening a transaction nobody will end. When the epoch runs out, the
//! producer continues under a new producer id, allocated at the EndTxn.

use std::collections::BTreeSet;

use strata_api::BrokerError;

/// Kafka's transaction states, with their codes in `__transaction_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// No transaction in progress.
    Empty,
    /// Partitions added: records may be written.
    Ongoing,
    /// Committing: markers are being written.
    PrepareCommit,
    /// Aborting: markers are being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
    /// Expired; its record is deleted.
    Dead,
    /// Fencing the producer before an abort.
    PrepareEpochFence,
}

impl TxnState {
    /// The code in `__transaction_state`.
    pub fn code(self) -> i8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
            Self::Dead => 6,
            Self::PrepareEpochFence => 7,
        }
    }

    /// The state of a code.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => Self::Empty,
            1 => Self::Ongoing,
            2 => Self::PrepareCommit,
            3 => Self::PrepareAbort,
            4 => Self::CompleteCommit,
            5 => Self::CompleteAbort,
            6 => Self::Dead,
            7 => Self::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    fn completing(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort)
    }
}

/// A transactional id's metadata (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// Its producer id.
    pub producer_id: i64,
    /// The producer id before the last change (-1: none), to recognise a retried
    /// InitProducerId.
    pub last_producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1: none).
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` of its producer.
    pub timeout_ms: i32,
    /// Its state.
    pub state: TxnState,
    /// The partitions of its transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the transaction began (ms since the epoch; -1: none).
    pub start_ms: i64,
    /// When the metadata last changed.
    pub last_update_ms: i64,
    /// The producer id it continues under once its prepared transaction completes, when the
    /// epoch ran out at a version-2 EndTxn (-1: none).
    pub next_producer_id: i64,
    /// Whether its producer runs transaction version 2 (Kafka's `clientTransactionVersion`).
    pub client_tv2: bool,
}

/// What InitProducerId decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitDecision {
    /// The id is new, or its epochs ran out: a new producer id is needed (epoch 0, Empty).
    NewProducerId,
    /// The producer starts again at this epoch.
    Ready(TxnMetadata),
    /// An open transaction is aborted first, its producer fenced (epoch + 1): the client is
    /// told to retry.
    AbortOngoing(TxnMetadata),
}

/// What EndTxn decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndDecision {
    /// Write this PrepareCommit/PrepareAbort, then the markers. For a version-2 EndTxn whose
    /// epoch ran out, its `next_producer_id` is still to be allocated ([`NEW_PRODUCER_ID`]).
    Prepare(TxnMetadata),
    /// A retry of an EndTxn already done: answer success with the producer's id and epoch.
    Done((i64, i16)),
}

impl TxnMetadata {
    /// The producer id and epoch its producer continues with once the prepared transaction
    /// completes (what EndTxn v5 answers).
    pub fn continues_as(&self) -> (i64, i16) {
        if self.next_producer_id >= 0 {
            (self.next_producer_id, 0)
        } else {
            (self.producer_id, self.producer_epoch)
        }
    }
}

/// The epoch after which a producer needs a new id (Kafka keeps one in reserve for fencing).
const LAST_EPOCH: i16 = i16::MAX - 1;

/// `next_producer_id` of a version-2 EndTxn whose epoch ran out, until the service has
/// allocated the new id.
pub const NEW_PRODUCER_ID: i64 = -2;

/// Checks that a request comes from the transactional id's current producer.
fn check_producer(meta: &TxnMetadata, producer_id: i64, epoch: i16) -> Result<(), BrokerError> {
    if producer_id != meta.producer_id {
        return Err(BrokerError::InvalidProducerIdMapping(format!(
            "producer id {producer_id} is not the transactional id's ({})",
            meta.producer_id
        )));
    }
    if epoch != meta.producer_epoch {
        return Err(BrokerError::ProducerFenced(format!(
            "producer epoch {epoch} is not the current epoch {}",
            meta.producer_epoch
        )));
    }
    Ok(())
}

/// InitProducerId for an id with metadata `meta` (`expected`: the producer's own id and
/// epoch, from v3, KIP-360).
pub fn init(
    meta: Option<&TxnMetadata>,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<InitDecision, BrokerError> {
    let Some(meta) = meta else {
        return Ok(InitDecision::NewProducerId);
    };
    if meta.state.completing() || meta.state == TxnState::PrepareEpochFence {
        return Err(BrokerError::ConcurrentTransactions);
    }
    if let Some((id, epoch)) = expected {
        // A producer that knows its id may continue, or retry an InitProducerId whose answer
        // it lost; anything else is a zombie.
        let current = id == meta.producer_id && epoch == meta.producer_epoch;
        let retried = id == meta.last_producer_id && epoch == meta.last_producer_epoch;
        if !current && !retried {
            return Err(BrokerError::ProducerFenced(format!(
                "producer {id} epoch {epoch} is not the transactional id's current producer"
            )));
        }
        if retried && meta.state != TxnState::Ongoing {
            return Ok(InitDecision::Ready(meta.clone()));
        }
    }
    if meta.state == TxnState::Ongoing {
        let mut aborting = meta.clone();
        aborting.last_producer_epoch = meta.producer_epoch;
        aborting.producer_epoch = meta.producer_epoch.saturating_add(1);
        aborting.state = TxnState::PrepareAbort;
        aborting.last_update_ms = now_ms;
        return Ok(InitDecision::AbortOngoing(aborting));
    }
    if meta.producer_epoch >= LAST_EPOCH {
        return Ok(InitDecision::NewProducerId);
    }
    let mut ready = meta.clone();
    ready.last_producer_id = meta.producer_id;
    ready.last_producer_epoch = meta.producer_epoch;
    ready.producer_epoch = meta.producer_epoch + 1;
    ready.timeout_ms = timeout_ms;
    ready.state = TxnState::Empty;
    ready.partitions.clear();
    ready.start_ms = -1;
    ready.last_update_ms = now_ms;
    Ok(InitDecision::Ready(ready))
}

/// The metadata of a new producer id for `transactional_id`.
pub fn fresh(
    producer_id: i64,
    previous: Option<&TxnMetadata>,
    timeout_ms: i32,
    now_ms: i64,
) -> TxnMetadata {
    TxnMetadata {
        producer_id,
        last_producer_id: previous.map_or(-1, |p| p.producer_id),
        producer_epoch: 0,
        last_producer_epoch: -1,
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_ms: -1,
        last_update_ms: now_ms,
        next_producer_id: -1,
        client_tv2: false,
    }
}

/// AddPartitionsToTxn (or AddOffsetsToTxn's partition): the metadata to write, `None` when
/// every partition is in the transaction already. `tv2`: added by a partition leader for a
/// version-2 producer (Produce v12, TxnOffsetCommit v5), which sends no AddPartitionsToTxn.
pub fn add_partitions(
    meta: &TxnMetadata,
    (producer_id, epoch): (i64, i16),
    partitions: &[(String, i32)],
    tv2: bool,
    now_ms: i64,
) -> Result<Option<TxnMetadata>, BrokerError> {
    // A version-2 producer starts its next transaction, with the id and epoch EndTxn gave it,
    // while the last one's markers are still being written.
    if meta.state.completing() && (producer_id, epoch) == meta.continues_as() {
        return Err(BrokerError::ConcurrentTransactions);
    }
    check_producer(meta, producer_id, epoch)?;
    if meta.state.completing() || meta.state == TxnState::PrepareEpochFence {
        return Err(BrokerError::ConcurrentTransactions);
    }
    if meta.state == TxnState::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p)) {
        return Ok(None);
    }
    let mut next = meta.clone();
    if meta.state != TxnState::Ongoing {
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.partitions.extend(partitions.iter().cloned());
    next.state = TxnState::Ongoing;
    next.client_tv2 = tv2;
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// KIP-890's check for a partition leader (AddPartitionsToTxn v4+ with `verify_only`): for
/// each partition, whether it is in the producer's open transaction (0) or not
/// (TRANSACTION_ABORTABLE). The producer must be the id's current one; a transaction being
/// completed answers CONCURRENT_TRANSACTIONS, which the leader's client retries.
pub fn verify(
    meta: Option<&TxnMetadata>,
    (producer_id, epoch): (i64, i16),
    partitions: &[(String, i32)],
) -> Result<Vec<i16>, BrokerError> {
    let meta = meta.ok_or_else(|| {
        BrokerError::InvalidProducerIdMapping("no producer for this transactional id".into())
    })?;
    check_producer(meta, producer_id, epoch)?;
    if meta.state.completing() || meta.state == TxnState::PrepareEpochFence {
        return Err(BrokerError::ConcurrentTransactions);
    }
    let abortable = BrokerError::TransactionAbortable(String::new()).code();
    Ok(partitions
        .iter()
        .map(|p| {
            if meta.state == TxnState::Ongoing && meta.partitions.contains(p) {
                0
            } else {
                abortable
            }
        })
        .collect())
}

/// EndTxn; `tv2`: a version-2 EndTxn (v5+), which bumps the producer's epoch.
pub fn end(
    meta: &TxnMetadata,
    producer: (i64, i16),
    commit: bool,
    tv2: bool,
    now_ms: i64,
) -> Result<EndDecision, BrokerError> {
    if tv2 {
        return end_v2(meta, producer, commit, now_ms);
    }
    check_producer(meta, producer.0, producer.1)?;
    let wrong = || wrong_state(meta, commit);
    match (meta.state, commit) {
        (TxnState::Ongoing, _) => {
            let mut next = meta.clone();
            next.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            next.client_tv2 = false;
            next.last_update_ms = now_ms;
            Ok(EndDecision::Prepare(next))
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndDecision::Done((meta.producer_id, meta.producer_epoch)))
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(BrokerError::ConcurrentTransactions)
        }
        _ => Err(wrong()),
    }
}

fn wrong_state(meta: &TxnMetadata, commit: bool) -> BrokerError {
    BrokerError::InvalidTxnState(format!(
        "cannot {} a transaction in state {}",
        if commit { "commit" } else { "abort" },
        meta.state.name()
    ))
}

/// A version-2 EndTxn (Kafka's `endTransaction` with epoch bumps). The producer may retry with
/// the epoch it had before the bump, or with its old id after the id was replaced; an abort is
/// also accepted with no transaction open (the producer cannot know whether its batches
/// opened one), and still bumps the epoch.
fn end_v2(
    meta: &TxnMetadata,
    (producer_id, epoch): (i64, i16),
    commit: bool,
    now_ms: i64,
) -> Result<EndDecision, BrokerError> {
    // The producer ends its next transaction, with the id and epoch the last EndTxn gave it,
    // before that one's markers are written: it retries once they are.
    if meta.state.completing() && (producer_id, epoch) == meta.continues_as() {
        return Err(BrokerError::ConcurrentTransactions);
    }
    let current = producer_id == meta.producer_id && epoch == meta.producer_epoch;
    let retry_on_bump =
        producer_id == meta.producer_id && i32::from(epoch) + 1 == i32::from(meta.producer_epoch);
    let retry_on_new_id = producer_id != meta.producer_id
        && producer_id == meta.last_producer_id
        && epoch == LAST_EPOCH
        && meta.producer_epoch == 0;
    let retry = retry_on_bump || retry_on_new_id;
    if producer_id != meta.producer_id && !retry_on_new_id {
        return Err(BrokerError::InvalidProducerIdMapping(format!(
            "producer id {producer_id} is not the transactional id's ({})",
            meta.producer_id
        )));
    }
    let valid = match meta.state {
        TxnState::Ongoing | TxnState::Empty => current,
        TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
        TxnState::CompleteCommit | TxnState::CompleteAbort => current || retry,
        TxnState::PrepareEpochFence | TxnState::Dead => {
            return Err(BrokerError::ConcurrentTransactions);
        }
    };
    if !valid {
        return Err(BrokerError::ProducerFenced(format!(
            "producer epoch {epoch} is not the current epoch {}",
            meta.producer_epoch
        )));
    }
    let ending = if commit {
        TxnState::PrepareCommit
    } else {
        TxnState::PrepareAbort
    };
    match (meta.state, commit) {
        (TxnState::Ongoing, _) => Ok(EndDecision::Prepare(bumped(meta, ending, now_ms))),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(BrokerError::ConcurrentTransactions)
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => {
            Ok(EndDecision::Done((meta.producer_id, meta.producer_epoch)))
        }
        (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
            if current =>
        {
            Ok(EndDecision::Prepare(bumped(meta, ending, now_ms)))
        }
        _ => Err(wrong_state(meta, commit)),
    }
}

/// `meta` moved to `ending` with its epoch bumped: the markers carry the new epoch. An epoch
/// that ran out asks for a new producer id ([`NEW_PRODUCER_ID`] until allocated).
fn bumped(meta: &TxnMetadata, ending: TxnState, now_ms: i64) -> TxnMetadata {
    let mut next = meta.clone();
    next.last_producer_id = meta.producer_id;
    next.last_producer_epoch = meta.producer_epoch;
    next.producer_epoch = meta.producer_epoch.saturating_add(1);
    next.next_producer_id = if meta.producer_epoch >= LAST_EPOCH {
        NEW_PRODUCER_ID
    } else {
        -1
    };
    if meta.state != TxnState::Ongoing {
        // An abort with nothing open: no partition gets a marker.
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.state = ending;
    next.client_tv2 = true;
    next.last_update_ms = now_ms;
    next
}

/// The metadata once every marker of a prepared transaction is written: a producer whose
/// epoch ran out continues under its new id.
pub fn complete(meta: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut next = meta.clone();
    next.state = match meta.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        _ => TxnState::CompleteAbort,
    };
    if meta.next_producer_id >= 0 {
        next.last_producer_id = meta.producer_id;
        next.producer_id = meta.next_producer_id;
        next.producer_epoch = 0;
        next.next_producer_id = -1;
    }
    next.partitions.clear();
    next.start_ms = -1;
    next.last_update_ms = now_ms;
    next
}

/// Whether an open transaction has outlived its timeout: the coordinator aborts it, fencing
/// its producer.
pub fn timed_out(meta: &TxnMetadata, now_ms: i64) -> Option<TxnMetadata> {
    if meta.state != TxnState::Ongoing || now_ms - meta.start_ms <= i64::from(meta.timeout_ms) {
        return None;
    }
    let mut aborting = meta.clone();
    aborting.last_producer_epoch = meta.producer_epoch;
    aborting.producer_epoch = meta.producer_epoch.saturating_add(1);
    aborting.state = TxnState::PrepareAbort;
    aborting.last_update_ms = now_ms;
    Some(aborting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> TxnMetadata {
        fresh(7, None, 60_000, 0)
    }

    fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn verification_names_the_partitions_of_the_open_transaction_only() {
        let ongoing = add_partitions(&empty(), (7, 0), &parts(&[("t", 0)]), false, 10)
            .unwrap()
            .unwrap();
        let asked = parts(&[("t", 0), ("t", 1)]);
        assert_eq!(verify(Some(&ongoing), (7, 0), &asked), Ok(vec![0, 120]));
        assert!(matches!(
            verify(Some(&ongoing), (7, 1), &asked),
            Err(BrokerError::ProducerFenced(_))
        ));
        assert!(matches!(
            verify(Some(&ongoing), (8, 0), &asked),
            Err(BrokerError::InvalidProducerIdMapping(_))
        ));
        assert!(matches!(
            verify(None, (7, 0), &asked),
            Err(BrokerError::InvalidProducerIdMapping(_))
        ));
        let EndDecision::Prepare(prepared) = end(&ongoing, (7, 0), false, false, 12).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            verify(Some(&prepared), (7, 0), &asked),
            Err(BrokerError::ConcurrentTransactions)
        );
        // Once ended, no partition is in a transaction: a late batch would open a new one.
        let done = complete(&prepared, 14);
        assert_eq!(verify(Some(&done), (7, 0), &asked), Ok(vec![120, 120]));
    }

    #[test]
    fn a_transaction_goes_empty_ongoing_prepare_complete() {
        let meta = empty();
        let ongoing = add_partitions(&meta, (7, 0), &parts(&[("t", 0)]), false, 10)
            .unwrap()
            .unwrap();
        assert_eq!((ongoing.state, ongoing.start_ms), (TxnState::Ongoing, 10));
        assert_eq!(
            add_partitions(&ongoing, (7, 0), &parts(&[("t", 0)]), false, 11),
            Ok(None)
        );
        let EndDecision::Prepare(prepared) = end(&ongoing, (7, 0), true, false, 12).unwrap() else {
            panic!()
        };
        assert_eq!(prepared.state, TxnState::PrepareCommit);
        assert_eq!(
            end(&prepared, (7, 0), true, false, 13),
            Err(BrokerError::ConcurrentTransactions)
        );
        assert!(matches!(
            end(&prepared, (7, 0), false, false, 13),
            Err(BrokerError::InvalidTxnState(_))
        ));
        let done = complete(&prepared, 14);
        assert_eq!(
            (done.state, done.partitions.len()),
            (TxnState::CompleteCommit, 0)
        );
        assert_eq!(
            end(&done, (7, 0), true, false, 15),
            Ok(EndDecision::Done((7, 0)))
        );
        assert!(matches!(
            end(&done, (7, 0), false, false, 15),
            Err(BrokerError::InvalidTxnState(_))
        ));
        assert!(matches!(
            end(&empty(), (7, 0), false, false, 15),
            Err(BrokerError::InvalidTxnState(_))
        ));
    }

    #[test]
    fn zombies_are_fenced_and_open_transactions_aborted() {
        let ongoing = add_partitions(&empty(), (7, 0), &parts(&[("t", 0)]), false, 10)
            .unwrap()
            .unwrap();
        // A new instance of the producer: the open transaction is aborted at epoch 1 first.
        let InitDecision::AbortOngoing(aborting) = init(Some(&ongoing), 60_000, None, 20).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (aborting.state, aborting.producer_epoch),
            (TxnState::PrepareAbort, 1)
        );
        assert_eq!(
            init(Some(&aborting), 60_000, None, 21),
            Err(BrokerError::ConcurrentTransactions)
        );
        let aborted = complete(&aborting, 22);
        let InitDecision::Ready(ready) = init(Some(&aborted), 60_000, None, 23).unwrap() else {
            panic!()
        };
        assert_eq!((ready.state, ready.producer_epoch), (TxnState::Empty, 2));
        // The old instance, at epoch 0, is fenced everywhere.
        assert!(matches!(
            add_partitions(&ready, (7, 0), &parts(&[("t", 0)]), false, 24),
            Err(BrokerError::ProducerFenced(_))
        ));
        assert!(matches!(
            init(Some(&ready), 60_000, Some((7, 0)), 24),
            Err(BrokerError::ProducerFenced(_))
        ));
        // The new one may retry an InitProducerId whose answer it lost.
        assert_eq!(
            init(Some(&ready), 60_000, Some((7, 1)), 25),
            Ok(InitDecision::Ready(ready.clone()))
        );
    }

    #[test]
    fn an_expired_transaction_is_aborted_with_its_producer_fenced() {
        let ongoing = add_partitions(&empty(), (7, 0), &parts(&[("t", 0)]), false, 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(timed_out(&ongoing, 61_000), None);
        let aborting = timed_out(&ongoing, 61_001).unwrap();
        assert_eq!(
            (aborting.state, aborting.producer_epoch),
            (TxnState::PrepareAbort, 1)
        );
    }

    #[test]
    fn a_version_2_end_bumps_the_epoch_and_answers_retries() {
        let ongoing = add_partitions(&empty(), (7, 0), &parts(&[("t", 0)]), true, 10)
            .unwrap()
            .unwrap();
        assert!(ongoing.client_tv2);
        let EndDecision::Prepare(prepared) = end(&ongoing, (7, 0), true, true, 12).unwrap() else {
            panic!()
        };
        // The markers carry epoch 1; the producer continues at epoch 1.
        assert_eq!(
            (
                prepared.state,
                prepared.producer_epoch,
                prepared.last_producer_epoch
            ),
            (TxnState::PrepareCommit, 1, 0)
        );
        assert_eq!(prepared.continues_as(), (7, 1));
        // A retry while the markers are written, at the epoch it had: try again later.
        assert_eq!(
            end(&prepared, (7, 0), true, true, 13),
            Err(BrokerError::ConcurrentTransactions)
        );
        assert!(matches!(
            end(&prepared, (7, 0), false, true, 13),
            Err(BrokerError::InvalidTxnState(_))
        ));
        // The next transaction's first batch waits for the markers.
        assert_eq!(
            add_partitions(&prepared, (7, 1), &parts(&[("t", 0)]), true, 13),
            Err(BrokerError::ConcurrentTransactions)
        );
        assert_eq!(
            end(&prepared, (7, 1), false, true, 13),
            Err(BrokerError::ConcurrentTransactions)
        );
        let done = complete(&prepared, 14);
        assert_eq!((done.producer_id, done.producer_epoch), (7, 1));
        // A retry after completion succeeds with the new epoch; the old epoch is otherwise a
        // zombie's.
        assert_eq!(
            end(&done, (7, 0), true, true, 15),
            Ok(EndDecision::Done((7, 1)))
        );
        assert!(matches!(
            end(&done, (7, 0), false, true, 15),
            Err(BrokerError::InvalidTxnState(_))
        ));
        assert!(matches!(
            add_partitions(&done, (7, 0), &parts(&[("t", 0)]), true, 15),
            Err(BrokerError::ProducerFenced(_))
        ));
        assert!(matches!(
            end(&done, (7, 1), true, true, 15),
            Err(BrokerError::InvalidTxnState(_))
        ));
        // An abort with nothing open still bumps the epoch, and writes no marker.
        let EndDecision::Prepare(aborting) = end(&done, (7, 1), false, true, 16).unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                aborting.state,
                aborting.producer_epoch,
                aborting.partitions.len()
            ),
            (TxnState::PrepareAbort, 2, 0)
        );
        let EndDecision::Prepare(_) = end(&empty(), (7, 0), false, true, 16).unwrap() else {
            panic!()
        };
        assert!(matches!(
            end(&empty(), (7, 0), true, true, 16),
            Err(BrokerError::InvalidTxnState(_))
        ));
        assert!(matches!(
            end(&empty(), (8, 0), false, true, 16),
            Err(BrokerError::InvalidProducerIdMapping(_))
        ));
    }

    #[test]
    fn a_version_2_producer_whose_epoch_runs_out_continues_under_a_new_id() {
        let mut meta = add_partitions(&empty(), (7, 0), &parts(&[("t", 0)]), true, 10)
            .unwrap()
            .unwrap();
        meta.producer_epoch = LAST_EPOCH;
        let EndDecision::Prepare(mut prepared) =
            end(&meta, (7, LAST_EPOCH), false, true, 11).unwrap()
        else {
            panic!()
        };
        // Markers at the last epoch of the old id; the service allocates the new one.
        assert_eq!(
            (prepared.producer_epoch, prepared.next_producer_id),
            (i16::MAX, NEW_PRODUCER_ID)
        );
        prepared.next_producer_id = 9;
        assert_eq!(prepared.continues_as(), (9, 0));
        // Starting the next transaction under the new id waits for the markers.
        assert_eq!(
            add_partitions(&prepared, (9, 0), &parts(&[("t", 0)]), true, 12),
            Err(BrokerError::ConcurrentTransactions)
        );
        let done = complete(&prepared, 12);
        assert_eq!(
            (done.producer_id, done.producer_epoch, done.next_producer_id),
            (9, 0, -1)
        );
        // A retry with the old id and epoch is recognised.
        assert_eq!(
            end(&done, (7, LAST_EPOCH), false, true, 13),
            Ok(EndDecision::Done((9, 0)))
        );
        assert!(matches!(
            add_partitions(&done, (9, 0), &parts(&[("t", 0)]), true, 13),
            Ok(Some(_))
        ));
    }
}
