//! What only the active controller does: registering brokers from their heartbeats, fencing
//! those whose lease lapsed (and moving their leadership away), and creating topics with
//! placed replicas. Everything it decides becomes records committed through raft.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::Raft;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::network::WriteRefusal;
use super::{ApplyResult, RecordBatch, StateMachine, TypeConfig};
use crate::placement::{records_for_fenced, records_for_new_topic};
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
}

/// What a broker learns from a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// Whether it may lead partitions.
    pub fenced: bool,
    /// The metadata offset it should have applied.
    pub metadata_offset: u64,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: usize,
    /// Replicas per partition.
    pub replication_factor: usize,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// Broker leases as the active controller sees them. Kept in memory: a controller that
/// becomes active gives every broker a whole lease before fencing it.
#[derive(Debug, Clone)]
pub struct Leases {
    last: Arc<Mutex<HashMap<i32, Instant>>>,
    /// How long a broker stays unfenced without a heartbeat.
    pub lease: Duration,
}

impl Leases {
    /// Leases of `lease` each.
    pub fn new(lease: Duration) -> Self {
        Self {
            last: Arc::default(),
            lease,
        }
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

async fn commit(
    raft: &Raft<TypeConfig>,
    records: Vec<MetadataRecord>,
) -> Result<ApplyResult, WriteRefusal> {
    super::network::write(raft, RecordBatch { records }).await
}

/// Handles a heartbeat on the active controller: registers a new incarnation, unfences it,
/// and renews its lease.
pub async fn heartbeat(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    leases: &Leases,
    beat: Heartbeat,
) -> Result<HeartbeatAnswer, WriteRefusal> {
    let registered = state.with_image(|i| i.brokers.get(&beat.broker_id).cloned());
    let mut records = Vec::new();
    match &registered {
        Some(b) if b.incarnation == beat.incarnation => {
            if b.fenced {
                records.push(MetadataRecord::UnfenceBroker {
                    broker_id: beat.broker_id,
                });
            }
        }
        _ => {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: beat.broker_id,
                incarnation: beat.incarnation,
                rack: beat.rack.clone(),
                listeners: beat.listeners.clone(),
            });
            records.push(MetadataRecord::UnfenceBroker {
                broker_id: beat.broker_id,
            });
        }
    }
    let offset = if records.is_empty() {
        // Only the leader answers heartbeats: a write with no records checks that.
        if !leads(raft) {
            return Err(WriteRefusal::NotLeader(None));
        }
        state.with_image(|i| i.offset)
    } else {
        if registered.is_some_and(|b| b.incarnation != beat.incarnation) {
            tracing::info!(broker = beat.broker_id, "broker restarted: new incarnation");
        }
        commit(raft, records).await?.index
    };
    leases.renew(beat.broker_id);
    Ok(HeartbeatAnswer {
        fenced: false,
        metadata_offset: offset,
    })
}

/// Creates a topic with its partitions placed on the active brokers.
pub async fn create_topic(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    topic: NewTopic,
) -> Result<Uuid, WriteRefusal> {
    if !leads(raft) {
        return Err(WriteRefusal::NotLeader(None));
    }
    let topic_id = Uuid::new_v4();
    let records = state.with_image(|image| {
        if image.topic(&topic.name).is_some() {
            return Err(WriteRefusal::Failed(format!(
                "topic {} exists already",
                topic.name
            )));
        }
        records_for_new_topic(
            image,
            &topic.name,
            topic_id,
            topic.partitions,
            topic.replication_factor,
            topic.configs.clone(),
        )
        .map_err(|e| WriteRefusal::Failed(e.to_string()))
    })?;
    let result = commit(raft, records).await?;
    if let Some(error) = result.errors.first() {
        return Err(WriteRefusal::Failed(error.clone()));
    }
    Ok(topic_id)
}

/// Fences brokers whose lease lapsed, while this controller is active. Runs until raft stops.
pub async fn fence_expired(raft: Raft<TypeConfig>, state: StateMachine, leases: Leases) {
    let mut active_since: Option<Instant> = None;
    let mut ticks = tokio::time::interval(leases.lease / 4);
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
        let unfenced: Vec<i32> = state.with_image(|i| {
            i.brokers
                .values()
                .filter(|b| !b.fenced)
                .map(|b| b.id)
                .collect()
        });
        for broker in leases.expired(&unfenced, since) {
            let fence = MetadataRecord::FenceBroker { broker_id: broker };
            let mut records = vec![fence.clone()];
            records.extend(state.with_image(|image| {
                let mut after = image.clone();
                let _ = after.apply(image.offset + 1, &fence);
                records_for_fenced(&after, broker)
            }));
            tracing::warn!(
                broker,
                moves = records.len() - 1,
                "broker lease expired: fencing"
            );
            if let Err(e) = commit(&raft, records).await {
                tracing::warn!(broker, "fencing failed: {e}");
            }
        }
    }
}

/// Whether this controller is the active one (by its own metrics; a stale answer only delays
/// a write, which raft refuses anyway if leadership moved).
fn leads(raft: &Raft<TypeConfig>) -> bool {
    let metrics = raft.metrics().borrow().clone();
    metrics.current_leader == Some(metrics.id)
}
