//! Transactions as the protocol handlers see them: the [`TransactionCoordinator`] trait and
//! what it describes (KIP-98's coordinator, reached by a transactional id).

use std::future::Future;

use crate::broker::{BrokerError, BrokerNode};

/// A transactional id's state (DescribeTransactions, ListTransactions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Kafka's name of its state (`Ongoing`, `CompleteCommit`, …).
    pub state: &'static str,
    /// Its producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When its open transaction began (ms since the epoch; -1: none open).
    pub start_ms: i64,
    /// Its producer id.
    pub producer_id: i64,
    /// Its producer epoch.
    pub producer_epoch: i16,
    /// The partitions of its open transaction.
    pub partitions: Vec<(String, i32)>,
}

/// The transaction coordinator of this broker. Each call answers for a transactional id whose
/// `__transaction_state` partition this broker leads (else NOT_COORDINATOR).
pub trait TransactionCoordinator: Send + Sync + 'static {
    /// The broker coordinating `transactional_id` (creating `__transaction_state` on first
    /// use).
    fn find_coordinator(
        &self,
        transactional_id: String,
    ) -> impl Future<Output = Result<BrokerNode, BrokerError>> + Send;

    /// InitProducerId for a transactional producer: its id and new epoch. An open transaction
    /// of the id is aborted first (CONCURRENT_TRANSACTIONS until done). `expected` is the
    /// producer's own id and epoch (KIP-360).
    fn init_producer_id(
        &self,
        transactional_id: String,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> impl Future<Output = Result<(i64, i16), BrokerError>> + Send;

    /// AddPartitionsToTxn: the partitions join the producer's transaction. `tv2`: a
    /// partition leader adds them for a transaction-version-2 producer (the broker versions,
    /// v4+, without `verify_only`).
    fn add_partitions(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
        tv2: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
    fn add_offsets(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        group_id: String,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// TxnOffsetCommit v5 (transaction version 2): the group's `__consumer_offsets`
    /// partition joins the transaction through the id's coordinator, on this broker or
    /// another, before the offsets are written. Errors are in TxnOffsetCommit's terms.
    fn add_offsets_partition(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        group_id: String,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// EndTxn: commits or aborts; answers once the decision is durable (markers follow).
    /// `tv2` (EndTxn v5+) bumps the producer's epoch; the answer is the id and epoch the
    /// producer continues with.
    fn end_txn(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        commit: bool,
        tv2: bool,
    ) -> impl Future<Output = Result<(i64, i16), BrokerError>> + Send;

    /// KIP-890, answered as `transactional_id`'s coordinator (AddPartitionsToTxn v4+ with
    /// `verify_only`): per partition, 0 if it is in the producer's open transaction, else
    /// TRANSACTION_ABORTABLE.
    fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, BrokerError>;

    /// KIP-890, asked by a partition leader: [`Self::verify_partitions`] from the id's
    /// coordinator, on this broker or another; with `add` (Produce v12, transaction version
    /// 2), the partitions are added instead, each answered 0 once in the transaction. `Err`
    /// when none answered.
    fn verify_with_coordinator(
        &self,
        transactional_id: String,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
        add: bool,
    ) -> impl Future<Output = Result<Vec<i16>, BrokerError>> + Send;

    /// DescribeTransactions of one id.
    fn describe(&self, transactional_id: &str) -> Result<TxnDescription, BrokerError>;

    /// ListTransactions: every id this broker coordinates.
    fn list(&self) -> Vec<TxnDescription>;
}
