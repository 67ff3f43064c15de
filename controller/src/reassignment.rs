//! Moving replicas and leadership, as the active controller decides them from its image:
//! partition reassignment (KIP-455 in its KRaft form), its completion once the new replicas
//! are in sync, and leader elections asked for by an operator (ElectLeaders) or by the
//! controller itself to rebalance leadership.
//!
//! A reassignment from replicas `O` to target `T` first widens the replicas to `T` followed by
//! the rest of `O`, marking `T \ O` as adding and `O \ T` as removing. The leader replicates to
//! the added replicas like to any follower and lets them into the ISR once caught up; when
//! every target replica is in the ISR the controller narrows the replicas to `T` (electing a
//! leader from `T` if the old one is being removed). Cancelling returns to `O`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::image::{MetadataImage, PartitionRegistration};
use crate::record::MetadataRecord;

/// Why a partition's reassignment or election was refused, by the Kafka error it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MoveError {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("unknown topic or partition")]
    UnknownPartition,
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("{0}")]
    InvalidAssignment(String),
    /// NO_REASSIGNMENT_IN_PROGRESS.
    #[error("no reassignment of this partition is in progress")]
    NoReassignment,
    /// ELECTION_NOT_NEEDED.
    #[error("the partition already has the leader asked for")]
    ElectionNotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE.
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE.
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
}

fn registration(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
) -> Result<&PartitionRegistration, MoveError> {
    image
        .topics
        .get(&topic_id)
        .and_then(|t| t.partitions.get(&partition))
        .ok_or(MoveError::UnknownPartition)
}

/// A change of the whole registration of one partition.
fn change(
    topic_id: Uuid,
    partition: i32,
    current: &PartitionRegistration,
    next: PartitionRegistration,
) -> MetadataRecord {
    MetadataRecord::ChangePartition {
        topic_id,
        partition,
        leader: (next.leader != current.leader).then_some(next.leader),
        isr: (next.isr != current.isr).then_some(next.isr),
        replicas: (next.replicas != current.replicas).then_some(next.replicas),
        adding_replicas: (next.adding_replicas != current.adding_replicas)
            .then_some(next.adding_replicas),
        removing_replicas: (next.removing_replicas != current.removing_replicas)
            .then_some(next.removing_replicas),
    }
}

/// `replicas` narrowed to `keep`: the ISR within them, the leader kept if it stays, else the
/// first active in-sync replica of `keep`. `None` when no such leader exists.
fn narrowed(
    image: &MetadataImage,
    current: &PartitionRegistration,
    keep: Vec<i32>,
) -> Option<PartitionRegistration> {
    let isr: Vec<i32> = current
        .isr
        .iter()
        .copied()
        .filter(|r| keep.contains(r))
        .collect();
    let leader = if isr.contains(&current.leader) {
        current.leader
    } else {
        keep.iter()
            .copied()
            .find(|r| isr.contains(r) && image.is_active(*r))?
    };
    Some(PartitionRegistration {
        replicas: keep,
        isr,
        leader,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..current.clone()
    })
}

/// The record that starts (or, with `target == None`, cancels) the reassignment of one
/// partition; `None` when nothing changes. A target the partition is already in sync on
/// completes at once.
pub fn record_for_reassignment(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    target: Option<&[i32]>,
) -> Result<Option<MetadataRecord>, MoveError> {
    let current = registration(image, topic_id, partition)?;
    let original = current.original_replicas();
    let Some(target) = target else {
        if !current.reassigning() {
            return Err(MoveError::NoReassignment);
        }
        let back = narrowed(image, current, original).ok_or_else(|| {
            MoveError::EligibleLeadersNotAvailable(
                "no original replica is in sync and alive to lead: the reassignment cannot be \
                 cancelled now"
                    .into(),
            )
        })?;
        return Ok(Some(change(topic_id, partition, current, back)));
    };
    let mut seen = BTreeSet::new();
    if target.is_empty() || !target.iter().all(|r| seen.insert(*r)) {
        return Err(MoveError::InvalidAssignment(format!(
            "replicas {target:?} are empty or repeat a broker"
        )));
    }
    if let Some(unknown) = target.iter().find(|r| !image.brokers.contains_key(r)) {
        return Err(MoveError::InvalidAssignment(format!(
            "broker {unknown} is not registered"
        )));
    }
    let mut replicas = target.to_vec();
    replicas.extend(original.iter().filter(|r| !target.contains(r)));
    let next = PartitionRegistration {
        isr: current
            .isr
            .iter()
            .copied()
            .filter(|r| replicas.contains(r))
            .collect(),
        adding_replicas: target
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect(),
        removing_replicas: original
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect(),
        replicas,
        ..current.clone()
    };
    let next = if next.isr.contains(&next.leader) || next.leader == -1 {
        next
    } else {
        // The leader was a replica the previous reassignment was adding.
        let leader = next
            .replicas
            .iter()
            .copied()
            .find(|r| next.isr.contains(r) && image.is_active(*r))
            .ok_or_else(|| {
                MoveError::EligibleLeadersNotAvailable(
                    "no replica that stays is in sync and alive to lead".into(),
                )
            })?;
        PartitionRegistration { leader, ..next }
    };
    let next = completed(image, &next).unwrap_or(next);
    if next == *current {
        return Ok(None);
    }
    Ok(Some(change(topic_id, partition, current, next)))
}

/// The registration a reassignment ends with, once every target replica is in the ISR and one
/// of them can lead.
fn completed(
    image: &MetadataImage,
    current: &PartitionRegistration,
) -> Option<PartitionRegistration> {
    if !current.reassigning() {
        return None;
    }
    let target = current.target_replicas();
    if !target.iter().all(|r| current.isr.contains(r)) {
        return None;
    }
    narrowed(image, current, target)
}

/// The records that complete every reassignment whose target replicas are all in sync.
pub fn records_for_completed_reassignments(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for topic in image.topics.values() {
        for (index, current) in &topic.partitions {
            if let Some(next) = completed(image, current) {
                out.push(change(topic.id, *index, current, next));
            }
        }
    }
    out
}

/// Reassignments in progress: (topic id, partition, registration).
pub fn reassignments(image: &MetadataImage) -> Vec<(Uuid, i32, PartitionRegistration)> {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.iter().map(move |(i, p)| (t.id, *i, p)))
        .filter(|(_, _, p)| p.reassigning())
        .map(|(id, i, p)| (id, i, p.clone()))
        .collect()
}

/// The record that makes the preferred replica (the first) lead, if it is alive and in sync.
pub fn record_for_preferred_leader(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
) -> Result<MetadataRecord, MoveError> {
    let current = registration(image, topic_id, partition)?;
    let preferred = current.replicas[0];
    if current.leader == preferred {
        return Err(MoveError::ElectionNotNeeded);
    }
    if !current.isr.contains(&preferred) || !image.is_active(preferred) {
        return Err(MoveError::PreferredLeaderNotAvailable(format!(
            "preferred leader {preferred} is not {} (ISR {:?})",
            if image.is_active(preferred) {
                "in sync"
            } else {
                "alive"
            },
            current.isr
        )));
    }
    let next = PartitionRegistration {
        leader: preferred,
        ..current.clone()
    };
    Ok(change(topic_id, partition, current, next))
}

/// The record that gives a leaderless partition an out-of-sync leader (unclean election,
/// asked for explicitly): the first alive replica, whose log becomes the truth.
pub fn record_for_unclean_leader(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
) -> Result<MetadataRecord, MoveError> {
    let current = registration(image, topic_id, partition)?;
    if current.leader != -1 {
        return Err(MoveError::ElectionNotNeeded);
    }
    let leader = current
        .replicas
        .iter()
        .copied()
        .find(|r| image.is_active(*r))
        .ok_or_else(|| {
            MoveError::EligibleLeadersNotAvailable("no replica of the partition is alive".into())
        })?;
    let isr = if current.isr.contains(&leader) {
        current.isr.clone()
    } else {
        vec![leader]
    };
    let next = PartitionRegistration {
        leader,
        isr,
        ..current.clone()
    };
    Ok(change(topic_id, partition, current, next))
}

/// Partitions whose preferred replica should lead again: on each broker whose share of
/// partitions it prefers but does not lead is above `imbalance_percent`, those it could lead
/// now (Kafka's `auto.leader.rebalance.enable`). As (topic id, partition).
pub fn imbalanced_partitions(image: &MetadataImage, imbalance_percent: u32) -> Vec<(Uuid, i32)> {
    use std::collections::BTreeMap;
    // Per preferred broker: partitions, those it does not lead, those it could lead now.
    type Tally = (usize, usize, Vec<(Uuid, i32)>);
    let mut preferred: BTreeMap<i32, Tally> = BTreeMap::new();
    for topic in image.topics.values() {
        for (index, p) in &topic.partitions {
            if p.reassigning() {
                continue;
            }
            let first = p.replicas[0];
            let entry = preferred.entry(first).or_default();
            entry.0 += 1;
            if p.leader != first {
                entry.1 += 1;
                if p.isr.contains(&first) && image.is_active(first) {
                    entry.2.push((topic.id, *index));
                }
            }
        }
    }
    preferred
        .into_values()
        .filter(|(total, not_led, _)| not_led * 100 > total * imbalance_percent as usize)
        .flat_map(|(_, _, movable)| movable)
        .collect()
}
