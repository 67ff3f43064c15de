//! Errors of the log layer. Kafka error codes are chosen later, at the API boundary.

use std::path::PathBuf;

/// Everything that can go wrong appending to, reading from or opening a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed validation (CRC, sizes, counts).
    #[error("corrupt record batch: {0}")]
    CorruptRecord(String),
    /// A well-formed batch the broker will not accept.
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// A batch refused for some of its records (KIP-467): each one's index in the batch and
    /// why.
    #[error("{message}")]
    InvalidRecords {
        /// What the whole batch is told.
        message: String,
        /// The records at fault: index in the batch, and why.
        records: Vec<(i32, String)>,
    },
    /// A batch of an old message format (magic 0 or 1, removed in Kafka 4.0 by KIP-724).
    #[error("record batch magic {0} is not supported: only magic 2 exists since Kafka 4.0")]
    UnsupportedMagic(i8),
    /// A batch larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// Size of the batch.
        size: u64,
        /// The topic's limit.
        max: u64,
    },
    /// An offset outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// First offset of the log.
        log_start_offset: u64,
        /// Next offset to be written.
        log_end_offset: u64,
    },
    /// An idempotent batch whose sequence does not follow the last one.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The next sequence the log expected.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// A batch from an epoch older than the producer's current one.
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        got: i16,
        /// The latest epoch seen.
        current: i16,
    },
    /// A batch that goes against the producer's transaction: non-transactional while one is
    /// open.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A transaction marker from a coordinator older than one that already wrote to the
    /// partition.
    #[error(
        "transaction marker of coordinator epoch {got} for producer {producer_id} is older than {current}"
    )]
    CoordinatorFenced {
        /// The producer.
        producer_id: i64,
        /// The marker's coordinator epoch.
        got: i32,
        /// The latest coordinator epoch seen.
        current: i32,
    },
    /// A producer feature Strata does not implement yet.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A file operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl LogError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of the log layer.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl From<strata_record::RecordError> for LogError {
    fn from(e: strata_record::RecordError) -> Self {
        match e {
            strata_record::RecordError::Corrupt(message) => Self::CorruptRecord(message),
            strata_record::RecordError::UnsupportedMagic(magic) => Self::UnsupportedMagic(magic),
        }
    }
}
