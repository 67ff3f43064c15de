//! What only the active controller does: registering brokers from their heartbeats, fencing
//! those whose lease lapsed (and moving their leadership away), electing leaders for offline
//! partitions when a broker returns, and setting the cluster id once. Everything it decides
//! becomes records committed through raft.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::Raft;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::admin::Invalid;
use super::network::WriteRefusal;
use super::{ApplyResult, RecordBatch, StateMachine, TypeConfig};
use crate::image::new_cluster_id;
use crate::placement::{records_for_fenced, records_for_new_incarnation, records_for_unfenced};
use crate::reassignment::{
    imbalanced_partitions, record_for_preferred_leader, records_for_completed_reassignments,
};
use crate::record::{Endpoint, MetadataRecord};

/// A broker's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Broker id.
    pub broker_id: i32,
    /// Its process start.
    pub incarnation: Uuid,
    /// Rack.
    pub rack: Option<String>,
    /// Client listeners.
    pub listeners: Vec<Endpoint>,
    /// The cluster the broker's data belongs to (`None` for an empty data directory).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// The broker has not caught up with the metadata yet: keep it fenced.
    #[serde(default)]
    pub want_fence: bool,
    /// The broker is stopping: fence it now and move its leadership away.
    #[serde(default)]
    pub want_shutdown: bool,
    /// The last metadata offset the broker applied (it observes the quorum, as KRaft brokers
    /// do); DescribeQuorum reports it.
    #[serde(default)]
    pub metadata_offset: Option<u64>,
}

/// A broker as the active controller last heard from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observer {
    /// Broker id.
    pub id: i32,
    /// The metadata offset it had applied, if it said.
    pub metadata_offset: Option<u64>,
    /// When its last heartbeat arrived, in milliseconds since the Unix epoch.
    pub last_heartbeat_ms: i64,
}

/// What a broker learns from a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// Whether it may lead partitions.
    pub fenced: bool,
    /// The metadata offset it should have applied.
    pub metadata_offset: u64,
    /// The cluster id.
    pub cluster_id: String,
}

/// Broker leases as the active controller sees them. Kept in memory: a controller that
/// becomes active gives every broker a whole lease before fencing it.
#[derive(Debug, Clone)]
pub struct Leases {
    last: Arc<Mutex<HashMap<i32, Instant>>>,
    observed: Arc<Mutex<HashMap<i32, Observer>>>,
    /// How long a broker stays unfenced without a heartbeat.
    pub lease: Duration,
}

impl Leases {
    /// Leases of `lease` each.
    pub fn new(lease: Duration) -> Self {
        Self {
            last: Arc::default(),
            observed: Arc::default(),
            lease,
        }
    }

    /// The brokers that heartbeat to this controller while it was active, by id.
    pub fn observers(&self) -> Vec<Observer> {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let mut observers: Vec<Observer> = observed.values().cloned().collect();
        observers.sort_by_key(|o| o.id);
        observers
    }

    fn observe(&self, beat: &Heartbeat) {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                beat.broker_id,
                Observer {
                    id: beat.broker_id,
                    metadata_offset: beat.metadata_offset,
                    last_heartbeat_ms: at_ms,
                },
            );
    }

    /// Whether `broker` heartbeat within the lease (as far as this controller knows).
    fn live(&self, broker: i32) -> bool {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&broker).is_some_and(|t| t.elapsed() <= self.lease)
    }

    fn forget(&self, broker: i32) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&broker);
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&broker);
    }

    fn renew(&self, broker: i32) {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(broker, Instant::now());
    }

    /// Brokers whose lease ran out, given when this controller became active.
    fn expired(&self, active: &[i32], active_since: Instant) -> Vec<i32> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        active
            .iter()
            .copied()
            .filter(|id| {
                let seen = last
                    .get(id)
                    .copied()
                    .unwrap_or(active_since)
                    .max(active_since);
                now.duration_since(seen) > self.lease
            })
            .collect()
    }
}

/// State the active controller keeps beside raft.
#[derive(Debug, Clone)]
pub struct ActiveState {
    /// Broker leases.
    pub leases: Leases,
    /// Admin requests run one at a time.
    pub admin: Arc<tokio::sync::Mutex<()>>,
    /// The cluster id to set if the image has none yet (a fresh one if `None`).
    pub cluster_id: Arc<Mutex<Option<String>>>,
}

impl ActiveState {
    /// State with leases of `lease`.
    pub fn new(lease: Duration) -> Self {
        Self {
            leases: Leases::new(lease),
            admin: Arc::default(),
            cluster_id: Arc::default(),
        }
    }
}

pub(crate) async fn commit(
    raft: &Raft<TypeConfig>,
    records: Vec<MetadataRecord>,
) -> Result<ApplyResult, WriteRefusal> {
    super::network::write(raft, RecordBatch { records }).await
}

/// Handles a heartbeat on the active controller: registers a new incarnation (fenced), unfences
/// a broker that caught up, fences one that is stopping, and renews the lease.
pub async fn heartbeat(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    active: &ActiveState,
    beat: Heartbeat,
) -> Result<HeartbeatAnswer, WriteRefusal> {
    if !leads(raft) {
        return Err(WriteRefusal::NotLeader(None));
    }
    let _one_at_a_time = active.admin.lock().await;
    let (cluster_id, registered) = state.with_image(|i| {
        (
            i.cluster_id.clone(),
            i.brokers.get(&beat.broker_id).cloned(),
        )
    });
    let Some(cluster_id) = cluster_id else {
        return Err(WriteRefusal::Failed("the cluster id is not set yet".into()));
    };
    if let Some(theirs) = beat.cluster_id.as_ref().filter(|c| **c != cluster_id) {
        return Err(WriteRefusal::Invalid(Invalid::ClusterId(format!(
            "broker {} has data of cluster {theirs}, but this quorum runs cluster {cluster_id}",
            beat.broker_id
        ))));
    }
    let leases = &active.leases;
    let mut records = Vec::new();
    let same_incarnation = registered
        .as_ref()
        .is_some_and(|b| b.incarnation == beat.incarnation);
    let mut fenced = registered.as_ref().is_none_or(|b| b.fenced);
    if !same_incarnation {
        if registered.as_ref().is_some_and(|b| !b.fenced) && leases.live(beat.broker_id) {
            return Err(WriteRefusal::Invalid(Invalid::Request(format!(
                "broker id {} is registered by another process whose lease has not expired",
                beat.broker_id
            ))));
        }
        if registered.is_some() {
            tracing::info!(broker = beat.broker_id, "broker restarted: new incarnation");
        }
        let register = MetadataRecord::RegisterBroker {
            broker_id: beat.broker_id,
            incarnation: beat.incarnation,
            rack: beat.rack.clone(),
            listeners: beat.listeners.clone(),
        };
        records.push(register.clone());
        if registered.is_some() {
            records.extend(state.with_image(|image| records_for_new_incarnation(image, &register)));
        }
        fenced = true;
    }
    if beat.want_shutdown {
        if !fenced {
            records.extend(fence_records(state, beat.broker_id));
            tracing::info!(broker = beat.broker_id, "broker shutting down: fenced");
        }
        fenced = true;
    } else if fenced && !beat.want_fence {
        let unfence = MetadataRecord::UnfenceBroker {
            broker_id: beat.broker_id,
        };
        records.push(unfence.clone());
        records.extend(state.with_image(|image| {
            let mut after = image.clone();
            for record in &records {
                let _ = after.apply(image.offset + 1, record);
            }
            records_for_unfenced(&after, beat.broker_id)
        }));
        tracing::info!(broker = beat.broker_id, "broker unfenced");
        fenced = false;
    }
    let offset = if records.is_empty() {
        state.with_image(|i| i.offset)
    } else {
        commit(raft, records).await?.index
    };
    if beat.want_shutdown {
        leases.forget(beat.broker_id);
    } else {
        leases.renew(beat.broker_id);
        leases.observe(&beat);
    }
    Ok(HeartbeatAnswer {
        fenced,
        metadata_offset: offset,
        cluster_id,
    })
}

/// A fence record followed by the leadership moves it causes.
fn fence_records(state: &StateMachine, broker: i32) -> Vec<MetadataRecord> {
    let fence = MetadataRecord::FenceBroker { broker_id: broker };
    let mut records = vec![fence.clone()];
    records.extend(state.with_image(|image| {
        let mut after = image.clone();
        let _ = after.apply(image.offset + 1, &fence);
        records_for_fenced(&after, broker)
    }));
    records
}

/// The active controller's duties while it leads: set the cluster id once, fence brokers
/// whose lease lapsed, and every `rebalance.0` move leadership back to preferred replicas on
/// brokers whose imbalance exceeds `rebalance.1` percent. Runs until raft stops.
pub async fn active_duties(
    raft: Raft<TypeConfig>,
    state: StateMachine,
    active: ActiveState,
    (rebalance, bootstrap): (Option<(Duration, u32)>, Vec<MetadataRecord>),
) {
    let leases = &active.leases;
    let mut active_since: Option<Instant> = None;
    let mut last_rebalance = Instant::now();
    let mut ticks = tokio::time::interval((leases.lease / 4).min(Duration::from_millis(500)));
    loop {
        ticks.tick().await;
        if raft.metrics().borrow().running_state.is_err() {
            return;
        }
        if !leads(&raft) {
            active_since = None;
            continue;
        }
        let since = *active_since.get_or_insert_with(Instant::now);
        if state.with_image(|i| i.cluster_id.is_none()) {
            let cluster_id = active
                .cluster_id
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(new_cluster_id);
            match commit(
                &raft,
                std::iter::once(MetadataRecord::InitCluster {
                    cluster_id: cluster_id.clone(),
                })
                .chain(bootstrap.iter().cloned())
                .collect(),
            )
            .await
            {
                Ok(_) => tracing::info!(%cluster_id, "cluster id set"),
                Err(e) => tracing::warn!("setting the cluster id failed: {e}"),
            }
        }
        let unfenced: Vec<i32> = state.with_image(|i| {
            i.brokers
                .values()
                .filter(|b| !b.fenced)
                .map(|b| b.id)
                .collect()
        });
        for broker in leases.expired(&unfenced, since) {
            let _one_at_a_time = active.admin.lock().await;
            let records = fence_records(&state, broker);
            tracing::warn!(
                broker,
                moves = records.len() - 1,
                "broker lease expired: fencing"
            );
            if let Err(e) = commit(&raft, records).await {
                tracing::warn!(broker, "fencing failed: {e}");
            }
        }
        if let Some((every, percent)) = rebalance
            && last_rebalance.elapsed() >= every
        {
            last_rebalance = Instant::now();
            let _one_at_a_time = active.admin.lock().await;
            rebalance_leaders(&raft, &state, percent).await;
        }
    }
}

/// Moves leadership back to preferred replicas where brokers are imbalanced, and completes
/// reassignments that became complete without an ISR change (a target leader came back).
async fn rebalance_leaders(raft: &Raft<TypeConfig>, state: &StateMachine, percent: u32) {
    let records = state.with_image(|image| {
        let mut records = records_for_completed_reassignments(image);
        for (topic_id, partition) in imbalanced_partitions(image, percent) {
            if let Ok(record) = record_for_preferred_leader(image, topic_id, partition) {
                records.push(record);
            }
        }
        records
    });
    if records.is_empty() {
        return;
    }
    let count = records.len();
    match commit(raft, records).await {
        Ok(_) => tracing::info!(partitions = count, "leadership rebalanced"),
        Err(e) => tracing::warn!("rebalancing leadership failed: {e}"),
    }
}

/// Whether this controller is the active one (by its own metrics; a stale answer only delays
/// a write, which raft refuses anyway if leadership moved).
pub(crate) fn leads(raft: &Raft<TypeConfig>) -> bool {
    let metrics = raft.metrics().borrow().clone();
    metrics.current_leader == Some(metrics.id)
}
