//! strata-tiering: closed segments offloaded to object storage, read back transparently.
//!
//! A closed segment is uploaded as independent zstd frames of whole batches ([`chunk`]) with
//! a chunk index, and named in the partition's manifest in the bucket ([`remote`]); remote
//! offsets are read one chunk at a time through a bounded on-disk cache with read-ahead
//! ([`cache`]). It works on segment bytes and an `ObjectStore` ([`store`]) only: no Kafka
//! protocol, no knowledge of the broker.

pub mod cache;
pub mod chunk;
pub mod metrics;
mod reader;
pub mod remote;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timed;

pub use cache::ChunkCache;
pub use object_store;
pub use remote::{AbortedTxn, PartitionKey, RemoteLog, RemoteSegment};

/// Why a tiering operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TieringError {
    /// The object store failed or refused (after its own retries).
    #[error("object store: {0}")]
    Store(String),
    /// Remote data that does not parse.
    #[error("remote data: {0}")]
    Format(String),
    /// Stored data that is damaged: a batch CRC or a zstd checksum does not match. Never
    /// served; Kafka clients get KAFKA_STORAGE_ERROR.
    #[error("{object} is damaged: {detail}")]
    Corrupt {
        /// The object (or cache file) holding the data.
        object: String,
        /// What does not match.
        detail: String,
    },
    /// A local file (the cache) failed.
    #[error("{0}")]
    Io(String),
    /// A configuration that cannot work.
    #[error("{0}")]
    Config(String),
}

impl From<object_store::Error> for TieringError {
    fn from(e: object_store::Error) -> Self {
        Self::Store(e.to_string())
    }
}
