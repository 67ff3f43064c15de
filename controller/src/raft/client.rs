//! A client of the metadata quorum: commits records through whichever controller leads, and
//! asks any controller for its view of the quorum.

use std::io;
use std::time::{Duration, Instant};

use super::network::{Reply, Rpc, client_call};
use super::{ApplyResult, QuorumStatus, RecordBatch, WriteRefusal};
use crate::record::MetadataRecord;

/// How long a write keeps looking for a leader.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No controller could be reached.
    #[error("no controller reachable: {0}")]
    Unreachable(io::Error),
    /// The quorum refused or failed.
    #[error("{0}")]
    Refused(WriteRefusal),
    /// No leader accepted the write in time.
    #[error("no active controller accepted the write within {0:?}")]
    NoLeader(Duration),
    /// A reply of the wrong kind.
    #[error("unexpected reply from {0}")]
    Protocol(String),
}

/// The status of the controller at `addr`.
pub async fn status(addr: &str) -> Result<QuorumStatus, ClientError> {
    match client_call(addr, &Rpc::Status).await {
        Ok(Reply::Status(status)) => Ok(status),
        Ok(_) => Err(ClientError::Protocol(addr.to_owned())),
        Err(e) => Err(ClientError::Unreachable(e)),
    }
}

/// Commits `records` as one entry, trying `controllers` and following leader hints.
pub async fn write(
    controllers: &[String],
    records: Vec<MetadataRecord>,
) -> Result<ApplyResult, ClientError> {
    let batch = RecordBatch { records };
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut candidates: Vec<String> = controllers.to_vec();
    let mut last_error = None;
    while Instant::now() < deadline {
        let mut hinted = None;
        for addr in &candidates {
            match client_call(addr, &Rpc::Write(batch.clone())).await {
                Ok(Reply::Write(Ok(result))) => return Ok(result),
                Ok(Reply::Write(Err(WriteRefusal::NotLeader(leader)))) => {
                    hinted = leader.map(|(_, addr)| addr);
                    if hinted.is_some() {
                        break;
                    }
                }
                Ok(Reply::Write(Err(refusal))) => return Err(ClientError::Refused(refusal)),
                Ok(_) => return Err(ClientError::Protocol(addr.clone())),
                Err(e) => last_error = Some(e),
            }
        }
        candidates = match hinted {
            Some(leader) => {
                let mut next = vec![leader];
                next.extend(controllers.iter().cloned());
                next
            }
            None => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                controllers.to_vec()
            }
        };
    }
    Err(last_error.map_or(
        ClientError::NoLeader(WRITE_TIMEOUT),
        ClientError::Unreachable,
    ))
}
