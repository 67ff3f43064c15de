//! A controller's state as health checks see it: is its raft core alive, and does it know an
//! active controller that a majority of voters follows.

use openraft::error::Fatal;
use openraft::{BasicNode, RaftMetrics, ServerState};
use tokio::sync::watch;

use super::NodeId;

/// A leader not acknowledged by a majority for longer than this leads nothing: followers hear
/// from it every 100 ms and call an election after 0.5–1 s of silence.
pub const LEADER_SILENCE_MS: u64 = 2_000;

/// A cheap, cloneable view of one controller.
#[derive(Debug, Clone)]
pub struct ControllerProbe {
    pub(crate) metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
    pub(crate) retired: watch::Receiver<bool>,
}

impl ControllerProbe {
    /// Whether the raft core runs: a description, or what stopped it.
    pub fn core(&self) -> Result<String, String> {
        if *self.retired.borrow() {
            return Ok("removed from the quorum: takes no part in it".into());
        }
        let metrics = self.metrics.borrow();
        match &metrics.running_state {
            Ok(()) => Ok(format!(
                "{} in term {}, applied {}",
                role(metrics.state),
                metrics.current_term,
                metrics.last_applied.map_or(0, |l| l.index)
            )),
            Err(Fatal::Stopped) => Err("the raft core is stopped".into()),
            Err(fatal) => Err(format!("the raft core stopped on a fault: {fatal}")),
        }
    }

    /// Whether an active controller with a majority behind it is known.
    pub fn quorum(&self) -> Result<String, String> {
        if *self.retired.borrow() {
            return Ok("removed from the quorum".into());
        }
        let metrics = self.metrics.borrow();
        match metrics.current_leader {
            None => Err(
                "no active controller known (an election under way, or no majority of voters up)"
                    .into(),
            ),
            Some(leader) if leader == metrics.id => match metrics.millis_since_quorum_ack {
                Some(ms) if ms > LEADER_SILENCE_MS => Err(format!(
                    "this controller leads, but no majority of voters has answered it for {:.1} s",
                    ms as f64 / 1000.0
                )),
                _ => Ok("this controller is the active controller".into()),
            },
            Some(leader) => Ok(format!("the active controller is {leader}")),
        }
    }
}

/// A controller's numbers, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerStats {
    /// This controller is the active controller (the raft leader).
    pub active: bool,
    /// Its role: a leader, follower, candidate or learner.
    pub role: &'static str,
    /// Its raft term.
    pub term: u64,
    /// The last entry of its metadata log.
    pub last_log_index: u64,
    /// The last entry applied to its metadata image.
    pub last_applied: u64,
    /// The last entry of its latest snapshot.
    pub snapshot_index: u64,
    /// On the active controller: the entries the slowest voter or learner lacks.
    pub max_follower_lag: Option<u64>,
}

impl ControllerProbe {
    /// Its numbers now.
    pub fn stats(&self) -> ControllerStats {
        let metrics = self.metrics.borrow();
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let max_follower_lag = metrics.replication.as_ref().map(|followers| {
            followers
                .iter()
                .filter(|(id, _)| **id != metrics.id)
                .map(|(_, matched)| last_log_index.saturating_sub(matched.map_or(0, |m| m.index)))
                .max()
                .unwrap_or(0)
        });
        ControllerStats {
            active: metrics.current_leader == Some(metrics.id)
                && metrics.state == ServerState::Leader,
            role: role(metrics.state),
            term: metrics.current_term,
            last_log_index,
            last_applied: metrics.last_applied.map_or(0, |l| l.index),
            snapshot_index: metrics.snapshot.map_or(0, |l| l.index),
            max_follower_lag,
        }
    }
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shut down",
    }
}
