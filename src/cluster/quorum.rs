//! DescribeQuorum's answer: the metadata quorum as its active controller sees it, in KRaft's
//! terms.
//!
//! Raft log indexes play KRaft's metadata offsets: a voter that matched index `i` holds the
//! log up to offset `i + 1`, and the high watermark is the offset after the last record the
//! leader applied (a committed one). The brokers are KRaft's observers: they follow the log
//! without voting, and tell the active controller in each heartbeat how far they applied it.
//! The broker of a combined node is its voter, as in KRaft.

use std::time::Duration;

use strata_api::BrokerError;
use strata_api::broker::{QuorumInfo, QuorumReplica};
use strata_controller::raft::QuorumStatus;
use strata_controller::raft::client;

/// Longest one controller may take to answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

async fn ask(addr: &str) -> Option<QuorumStatus> {
    match tokio::time::timeout(STATUS_TIMEOUT, client::status(addr)).await {
        Ok(Ok(status)) => Some(status),
        _ => None,
    }
}

/// The leader's status, asked of the leader the first controller that answers names.
async fn leader_status(controllers: &[String]) -> Option<QuorumStatus> {
    for addr in controllers {
        let Some(status) = ask(addr).await else {
            continue;
        };
        if status.leader == Some(status.id) {
            return Some(status);
        }
        let leader_addr = status
            .leader
            .and_then(|l| status.voters.iter().find(|v| v.id == l))
            .map(|v| v.addr.clone());
        if let Some(leader) = leader_addr
            && let Some(status) = ask(&leader).await.filter(|s| s.leader == Some(s.id))
        {
            return Some(status);
        }
    }
    None
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The quorum's state from its active controller, or why it could not be had.
pub async fn describe(controllers: &[String]) -> Result<QuorumInfo, BrokerError> {
    let status = leader_status(controllers).await.ok_or_else(|| {
        BrokerError::ControllerUnavailable("no active controller answered".into())
    })?;
    Ok(from_status(&status, now_ms()))
}

fn from_status(status: &QuorumStatus, now_ms: i64) -> QuorumInfo {
    let leader_end = status.last_log_index.map_or(0, |i| i as i64 + 1);
    let voters = status
        .voters
        .iter()
        .map(|v| {
            // The leader knows its own log; of the others it knows only what they matched.
            let is_leader = Some(v.id) == status.leader;
            let log_end_offset = if is_leader {
                leader_end
            } else {
                v.matched.map_or(-1, |m| m as i64 + 1)
            };
            let seen = if is_leader { now_ms } else { -1 };
            QuorumReplica {
                id: v.id as i32,
                log_end_offset,
                last_fetch_ms: seen,
                last_caught_up_ms: seen,
            }
        })
        .collect();
    // A combined node's broker is the voter of the same id, as in KRaft: not an observer.
    let observers = status
        .observers
        .iter()
        .filter(|o| !status.voters.iter().any(|v| v.id as i32 == o.id))
        .map(|o| QuorumReplica {
            id: o.id,
            log_end_offset: o.metadata_offset.map_or(-1, |m| m as i64 + 1),
            last_fetch_ms: o.last_heartbeat_ms,
            // A broker that had applied everything at its heartbeat had caught up then.
            last_caught_up_ms: if o.metadata_offset.map(|m| m as i64 + 1) == Some(leader_end) {
                o.last_heartbeat_ms
            } else {
                -1
            },
        })
        .collect();
    let endpoints = status
        .voters
        .iter()
        .filter_map(|v| {
            let (host, port) = v.addr.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some((v.id as i32, host.to_owned(), port.parse().ok()?))
        })
        .collect();
    QuorumInfo {
        leader_id: status.leader.map_or(-1, |l| l as i32),
        leader_epoch: status.term as i32,
        high_watermark: status.applied.map_or(0, |a| a as i64 + 1),
        voters,
        observers,
        endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_controller::raft::VoterStatus;
    use strata_controller::raft::active::Observer;

    #[test]
    fn indexes_become_offsets_and_brokers_observers() {
        let status = QuorumStatus {
            id: 1,
            role: "Leader".into(),
            leader: Some(1),
            quorum_ack_ms: Some(3),
            term: 4,
            last_log_index: Some(41),
            applied: Some(40),
            snapshot: None,
            voters: vec![
                VoterStatus {
                    id: 1,
                    addr: "127.0.0.1:9093".into(),
                    matched: Some(41),
                },
                VoterStatus {
                    id: 2,
                    addr: "[::1]:9094".into(),
                    matched: None,
                },
            ],
            topics: 0,
            partitions: 0,
            brokers: Vec::new(),
            under_replicated: 0,
            offline: Vec::new(),
            offline_count: 0,
            reassigning: 0,
            observers: vec![
                Observer {
                    id: 2,
                    metadata_offset: Some(41),
                    last_heartbeat_ms: 1000,
                },
                Observer {
                    id: 7,
                    metadata_offset: Some(41),
                    last_heartbeat_ms: 1000,
                },
                Observer {
                    id: 8,
                    metadata_offset: Some(30),
                    last_heartbeat_ms: 900,
                },
            ],
        };
        let info = from_status(&status, 5000);
        assert_eq!(
            (info.leader_id, info.leader_epoch, info.high_watermark),
            (1, 4, 41)
        );
        assert_eq!(
            info.voters,
            vec![
                QuorumReplica {
                    id: 1,
                    log_end_offset: 42,
                    last_fetch_ms: 5000,
                    last_caught_up_ms: 5000
                },
                QuorumReplica {
                    id: 2,
                    log_end_offset: -1,
                    last_fetch_ms: -1,
                    last_caught_up_ms: -1
                },
            ]
        );
        assert_eq!(info.observers.len(), 2, "voter 2 is no observer");
        assert_eq!(info.observers[0].last_caught_up_ms, 1000);
        assert_eq!(info.observers[1].log_end_offset, 31);
        assert_eq!(info.observers[1].last_caught_up_ms, -1);
        assert_eq!(
            info.endpoints,
            vec![(1, "127.0.0.1".into(), 9093), (2, "::1".into(), 9094)]
        );
    }
}
