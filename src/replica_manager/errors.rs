//! Log and remote tier errors as the Kafka errors clients see.

use strata_api::BrokerError;

use crate::log::LogError;
use crate::partition::PartitionRef;

pub(crate) fn storage(e: LogError) -> BrokerError {
    tracing::error!("storage error: {e}");
    BrokerError::Storage(e.to_string())
}

/// The error a client gets for a failed remote read: KAFKA_STORAGE_ERROR for damaged data
/// (logged with the object, for an operator to look at), UNKNOWN_SERVER_ERROR otherwise, as
/// Kafka answers a RemoteStorageException.
pub(crate) fn remote_error(
    partition: &PartitionRef,
    error: strata_tiering::TieringError,
) -> BrokerError {
    match error {
        strata_tiering::TieringError::Corrupt { .. } => {
            tracing::error!(
                topic = %partition.topic,
                partition = partition.index,
                "refusing to serve remote data: {error}"
            );
            BrokerError::Storage(error.to_string())
        }
        other => BrokerError::RemoteStorage(other.to_string()),
    }
}

/// Maps a log error to the API error a client should see.
pub(crate) fn from_log(e: LogError) -> BrokerError {
    match e {
        LogError::CorruptRecord(m) => BrokerError::CorruptMessage(m),
        LogError::InvalidRecord(m) => BrokerError::InvalidRecord(m),
        LogError::InvalidRecords { message, records } => {
            BrokerError::InvalidRecords { message, records }
        }
        e @ LogError::UnsupportedMagic(_) => {
            BrokerError::UnsupportedForMessageFormat(e.to_string())
        }
        e @ LogError::RecordTooLarge { .. } => BrokerError::MessageTooLarge(e.to_string()),
        e @ LogError::OffsetOutOfRange { .. } => BrokerError::OffsetOutOfRange(e.to_string()),
        e @ LogError::OutOfOrderSequence { .. } => BrokerError::OutOfOrderSequence(e.to_string()),
        e @ LogError::InvalidProducerEpoch { .. } => {
            BrokerError::InvalidProducerEpoch(e.to_string())
        }
        LogError::Unsupported(m) => BrokerError::Unsupported(m),
        e @ LogError::InvalidTxnState(_) => BrokerError::InvalidTxnState(e.to_string()),
        e @ LogError::CoordinatorFenced { .. } => {
            BrokerError::TransactionCoordinatorFenced(e.to_string())
        }
        e @ LogError::Io { .. } => storage(e),
    }
}
