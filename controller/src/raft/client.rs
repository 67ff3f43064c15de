//! A client of the metadata quorum: commits records through whichever controller leads, and
//! asks any controller for its view of the quorum.

use std::io;
use std::time::{Duration, Instant};

use super::network::{CLIENT_CALL_TIMEOUT, Reply, Rpc, client_call, client_call_within};
use uuid::Uuid;

use super::active::{Heartbeat, HeartbeatAnswer};
use super::admin::{AdminAnswer, AdminReply, AdminRequest, NewTopic};
use super::{ApplyResult, MetadataUpdate, QuorumStatus, RecordBatch, WriteRefusal};
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

/// The metadata log after `after`, from the first controller that answers, waiting up to
/// `wait` for something new.
pub async fn fetch_metadata(
    controllers: &[String],
    after: u64,
    wait: Duration,
) -> Result<MetadataUpdate, ClientError> {
    let mut last_error = None;
    let rpc = Rpc::FetchMetadata {
        after,
        wait_ms: wait.as_millis() as u64,
    };
    for addr in &answered_first(controllers) {
        match client_call_within(addr, &rpc, wait + CLIENT_CALL_TIMEOUT).await {
            Ok(Reply::FetchMetadata(update)) => {
                remember_answer(addr);
                return Ok(update);
            }
            Ok(_) => return Err(ClientError::Protocol(addr.clone())),
            Err(e) => last_error = Some(e),
        }
    }
    Err(ClientError::Unreachable(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "no controller given")
    })))
}

/// Commits `records` as one entry, trying `controllers` and following leader hints.
pub async fn write(
    controllers: &[String],
    records: Vec<MetadataRecord>,
) -> Result<ApplyResult, ClientError> {
    let rpc = Rpc::Write(RecordBatch { records });
    call_leader(controllers, &rpc, |reply| match reply {
        Reply::Write(result) => Some(result),
        _ => None,
    })
    .await
}

/// Sends a broker heartbeat to the active controller.
pub async fn heartbeat(
    controllers: &[String],
    beat: Heartbeat,
) -> Result<HeartbeatAnswer, ClientError> {
    call_leader(
        controllers,
        &Rpc::BrokerHeartbeat(beat),
        |reply| match reply {
            Reply::BrokerHeartbeat(result) => Some(result),
            _ => None,
        },
    )
    .await
}

/// Sends an admin request to the active controller.
pub async fn admin(
    controllers: &[String],
    request: AdminRequest,
) -> Result<AdminReply, ClientError> {
    call_leader(controllers, &Rpc::Admin(request), |reply| match reply {
        Reply::Admin(result) => Some(result),
        _ => None,
    })
    .await
}

/// Creates a topic through the active controller; returns its id.
pub async fn create_topic(controllers: &[String], topic: NewTopic) -> Result<Uuid, ClientError> {
    match admin(controllers, AdminRequest::CreateTopic(topic))
        .await?
        .answer
    {
        AdminAnswer::Topic { topic_id, .. } => Ok(topic_id),
        _ => Err(ClientError::Protocol("CreateTopic".into())),
    }
}

/// Sends `rpc` to the active controller: tries `controllers`, follows leader hints, retries
/// while leadership moves.
async fn call_leader<T>(
    controllers: &[String],
    rpc: &Rpc,
    answer: impl Fn(Reply) -> Option<Result<T, WriteRefusal>>,
) -> Result<T, ClientError> {
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut candidates: Vec<String> = answered_first(controllers);
    let mut last_error = None;
    while Instant::now() < deadline {
        let mut hinted = None;
        for addr in &candidates {
            match client_call(addr, rpc).await {
                Ok(reply) => match answer(reply) {
                    Some(Ok(value)) => {
                        remember_answer(addr);
                        return Ok(value);
                    }
                    Some(Err(WriteRefusal::NotLeader(leader))) => {
                        hinted = leader.map(|(_, addr)| addr);
                        if hinted.is_some() {
                            break;
                        }
                    }
                    Some(Err(refusal)) => return Err(ClientError::Refused(refusal)),
                    None => return Err(ClientError::Protocol(addr.clone())),
                },
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
                answered_first(controllers)
            }
        };
    }
    Err(last_error.map_or(
        ClientError::NoLeader(WRITE_TIMEOUT),
        ClientError::Unreachable,
    ))
}

/// The controller that last answered a call from this process: tried first, so that a paused
/// or unreachable controller early in the list costs one timeout, not one per call.
static LAST_ANSWERED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn remember_answer(addr: &str) {
    *LAST_ANSWERED.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr.to_owned());
}

/// `controllers`, the last one that answered first.
fn answered_first(controllers: &[String]) -> Vec<String> {
    let last = LAST_ANSWERED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut ordered = controllers.to_vec();
    if let Some(at) = last.and_then(|l| ordered.iter().position(|c| *c == l)) {
        let first = ordered.remove(at);
        ordered.insert(0, first);
    }
    ordered
}
