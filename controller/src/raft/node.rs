//! One controller: its raft instance over the on-disk log and state machine, answering peers on
//! the controller listener.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::active::{ActiveState, active_duties};
use super::network::{Network, serve};
use super::{ApplyResult, LogStore, NodeId, RecordBatch, StateMachine, TypeConfig};
use crate::record::MetadataRecord;

/// Raft timing and snapshot settings.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// How often the leader heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears nothing for between this and twice this starts an election.
    pub election_timeout: Duration,
    /// A snapshot is taken after this many log entries since the last one.
    pub snapshot_every: u64,
    /// A snapshot is also taken once the entries since the last one exceed this many bytes
    /// (Kafka's `metadata.log.max.record.bytes.between.snapshots`).
    pub snapshot_bytes: u64,
    /// Entries kept behind a snapshot (for followers slightly behind).
    pub keep_behind_snapshot: u64,
    /// A broker without a heartbeat for this long is fenced.
    pub broker_lease: Duration,
    /// How often leadership is moved back to preferred replicas (`None`: never), Kafka's
    /// `auto.leader.rebalance.enable` with `leader.imbalance.check.interval.seconds`.
    pub leader_rebalance: Option<Duration>,
    /// A broker's leadership is rebalanced when more than this percentage of the partitions
    /// it prefers are led elsewhere (`leader.imbalance.per.broker.percentage`).
    pub leader_imbalance_percent: u32,
    /// Records the first active controller of a new cluster writes with its cluster id
    /// (SCRAM users of `bootstrap.scram.users.file`, as Kafka's `--add-scram` at format).
    pub bootstrap_records: Vec<crate::record::MetadataRecord>,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(500),
            snapshot_every: 20_000,
            snapshot_bytes: 20 << 20,
            keep_behind_snapshot: 1_000,
            broker_lease: Duration::from_secs(9),
            leader_rebalance: Some(Duration::from_secs(300)),
            leader_imbalance_percent: 10,
            bootstrap_records: Vec::new(),
        }
    }
}

/// Why a write did not commit.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This controller is not the leader; the leader, if known, is given.
    #[error("not the active controller (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    /// Raft failed (shut down, storage error).
    #[error("{0}")]
    Raft(String),
}

/// A running controller.
pub struct Controller {
    /// Its id.
    pub id: NodeId,
    /// The raft instance.
    pub raft: Raft<TypeConfig>,
    /// The applied metadata.
    pub state: StateMachine,
    active: ActiveState,
    retired: Arc<watch::Sender<bool>>,
    server: JoinHandle<()>,
    duties: JoinHandle<()>,
    sizer: JoinHandle<()>,
}

/// Takes a snapshot whenever the log since the last one outgrows `limit` bytes: openraft counts
/// entries only, and one entry can carry a topic with thousands of partitions.
async fn snapshot_by_size(raft: Raft<TypeConfig>, log: LogStore, limit: u64) {
    let mut asked_at = None;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        let metrics = raft.metrics().borrow().clone();
        if metrics.running_state.is_err() {
            return;
        }
        let snapshot = metrics.snapshot.map_or(0, |l| l.index);
        let applied = metrics.last_applied.map_or(0, |l| l.index);
        if log.bytes_after(snapshot) > limit && asked_at != Some(snapshot) && applied > snapshot {
            tracing::info!(
                bytes = log.bytes_after(snapshot),
                limit,
                "metadata log outgrew its snapshot: taking one"
            );
            asked_at = Some(snapshot);
            let _ = raft.trigger().snapshot().await;
        }
    }
}

impl Controller {
    /// Starts controller `id` on `dir`, answering peers on `listener`.
    pub async fn start(
        id: NodeId,
        dir: &Path,
        listener: TcpListener,
        quorum: QuorumConfig,
    ) -> Result<Self, StartError> {
        let heartbeat = quorum.heartbeat.as_millis() as u64;
        let election = quorum.election_timeout.as_millis() as u64;
        let config = Config {
            cluster_name: "strata-metadata".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(quorum.snapshot_every),
            max_in_snapshot_log_to_keep: quorum.keep_behind_snapshot,
            purge_batch_size: 256,
            // Metadata entries can be large (a topic with its partitions): keep one
            // AppendEntries well under the RPC timeout.
            max_payload_entries: 64,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let log = LogStore::open(&dir.join("raft-log"))?;
        let state = StateMachine::open(&dir.join("raft-state"))?;
        let raft = Raft::new(id, Arc::new(config), Network, log.clone(), state.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let sizer = tokio::spawn(snapshot_by_size(raft.clone(), log, quorum.snapshot_bytes));
        let active = ActiveState::new(quorum.broker_lease);
        let rebalance = quorum
            .leader_rebalance
            .map(|every| (every, quorum.leader_imbalance_percent));
        let retired = Arc::new(watch::Sender::new(false));
        let server = tokio::spawn(serve(
            listener,
            raft.clone(),
            state.clone(),
            active.clone(),
            Arc::clone(&retired),
        ));
        let duties = tokio::spawn(active_duties(
            raft.clone(),
            state.clone(),
            active.clone(),
            (rebalance, quorum.bootstrap_records),
        ));
        Ok(Self {
            id,
            raft,
            state,
            active,
            retired,
            server,
            duties,
            sizer,
        })
    }

    /// Sets the cluster id this controller expects: the first active controller of a new
    /// quorum commits it, and a quorum that has another is refused.
    pub fn expect_cluster_id(&self, cluster_id: &str) -> Result<(), StartError> {
        if let Some(existing) = self.state.with_image(|i| i.cluster_id.clone())
            && existing != cluster_id
        {
            return Err(StartError::ClusterId(format!(
                "the metadata log belongs to cluster {existing}, but cluster.id is {cluster_id}"
            )));
        }
        *self
            .active
            .cluster_id
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(cluster_id.to_owned());
        Ok(())
    }

    /// Forms the quorum of `voters` (id → controller address). Done once, on one voter; a
    /// quorum that already exists is left as it is.
    pub async fn bootstrap(&self, voters: &BTreeMap<NodeId, String>) -> Result<(), StartError> {
        let members: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        // Initializing a formed quorum is refused anyway, but openraft logs that at ERROR:
        // every restart would look like a failure.
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(StartError::Raft(e.to_string())),
        }
    }

    /// Appends records as one entry and waits until committed and applied here.
    pub async fn write(&self, records: Vec<MetadataRecord>) -> Result<ApplyResult, WriteError> {
        match self.raft.client_write(RecordBatch { records }).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(WriteError::NotLeader(forward.leader_id))
            }
            Err(e) => Err(WriteError::Raft(e.to_string())),
        }
    }

    /// Resolves, with the cause, once the raft core has stopped by itself: a storage fault
    /// (the log or vote could not be written) ends it for good, and openraft cannot restart it
    /// in place. The node must then exit so that a supervisor restarts it (DESIGN.md, decision
    /// 10): a broker whose controller is dead would otherwise serve on, unable to change any
    /// metadata. Never resolves once the controller is shut down on purpose.
    pub fn failure(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut metrics = self.raft.metrics();
        async move {
            loop {
                let failed = match &metrics.borrow_and_update().running_state {
                    Ok(()) => None,
                    Err(Fatal::Stopped) => break,
                    Err(fatal) => Some(fatal.to_string()),
                };
                if let Some(failed) = failed {
                    return failed;
                }
                if metrics.changed().await.is_err() {
                    break;
                }
            }
            std::future::pending().await
        }
    }

    /// Resolves once the active controller has removed this one from the quorum (its raft
    /// core is then stopped: it no longer campaigns).
    pub fn retired(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut retired = self.retired.subscribe();
        async move {
            let _ = retired.wait_for(|r| *r).await;
        }
    }

    /// A view of this controller for health checks.
    pub fn probe(&self) -> super::ControllerProbe {
        super::ControllerProbe {
            metrics: self.raft.metrics(),
            retired: self.retired.subscribe(),
        }
    }

    /// The current leader, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Voter ids of the current membership.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// Stops raft and the listener (the on-disk state stays).
    pub async fn shutdown(self) {
        // The tasks that call into raft stop first: a call that meets a stopped core makes
        // openraft log an ERROR on every clean shutdown that races it.
        for task in [self.server, self.duties, self.sizer] {
            task.abort();
            let _ = task.await;
        }
        let _ = self.raft.shutdown().await;
    }
}

/// Why a controller could not start or form its quorum.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Raft settings that do not hold together.
    #[error("raft configuration: {0}")]
    Config(String),
    /// The log or state machine could not be opened.
    #[error("controller storage: {0}")]
    Storage(#[from] std::io::Error),
    /// Raft refused.
    #[error("{0}")]
    Raft(String),
    /// The data belongs to another cluster.
    #[error("{0}")]
    ClusterId(String),
}
