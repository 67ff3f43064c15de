//! Decisions the active controller makes from its image: where the replicas of new partitions
//! go, and who leads a partition when its leader is fenced.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::image::{MetadataImage, PartitionRegistration, TopicImage};
use crate::record::MetadataRecord;

/// Why replicas could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer active brokers than the replication factor.
    #[error("replication factor {wanted} is larger than the {active} available brokers")]
    NotEnoughBrokers {
        /// Replicas asked for.
        wanted: usize,
        /// Unfenced brokers.
        active: usize,
    },
    /// A manual assignment that cannot be used.
    #[error("{0}")]
    InvalidAssignment(String),
}

/// Replicas for `count` new partitions of `replication_factor` replicas each, on unfenced
/// brokers: each replica goes to the broker holding the fewest replicas so far (leaders, the
/// first replica, to the one leading the fewest), and the replicas of one partition spread
/// over as many racks as there are.
pub fn place_replicas(
    image: &MetadataImage,
    count: usize,
    replication_factor: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    let active: Vec<(i32, Option<&str>)> = image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| (b.id, b.rack.as_deref()))
        .collect();
    if replication_factor == 0 || replication_factor > active.len() {
        return Err(PlacementError::NotEnoughBrokers {
            wanted: replication_factor,
            active: active.len(),
        });
    }
    let mut replicas: BTreeMap<i32, usize> = active.iter().map(|(id, _)| (*id, 0)).collect();
    let mut leaders: BTreeMap<i32, usize> = replicas.clone();
    for topic in image.topics.values() {
        for partition in topic.partitions.values() {
            for (n, broker) in partition.replicas.iter().enumerate() {
                if let Some(count) = replicas.get_mut(broker) {
                    *count += 1;
                }
                if n == 0
                    && let Some(count) = leaders.get_mut(broker)
                {
                    *count += 1;
                }
            }
        }
    }
    let rack_of: BTreeMap<i32, Option<&str>> = active.iter().copied().collect();
    let racks: BTreeSet<Option<&str>> = rack_of.values().copied().collect();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut chosen: Vec<i32> = Vec::with_capacity(replication_factor);
        let mut used_racks: BTreeSet<Option<&str>> = BTreeSet::new();
        for slot in 0..replication_factor {
            // While unused racks remain, only brokers on them qualify.
            let fresh_racks = used_racks.len() < racks.len();
            let best = rack_of
                .iter()
                .filter(|(id, rack)| {
                    !chosen.contains(id) && (!fresh_racks || !used_racks.contains(*rack))
                })
                .min_by_key(|(id, _)| {
                    let load = if slot == 0 {
                        (leaders[*id], replicas[*id])
                    } else {
                        (replicas[*id], leaders[*id])
                    };
                    (load, **id)
                })
                .map(|(id, rack)| (*id, *rack))
                .expect("enough brokers were checked");
            chosen.push(best.0);
            used_racks.insert(best.1);
            *replicas.get_mut(&best.0).expect("active broker") += 1;
            if slot == 0 {
                *leaders.get_mut(&best.0).expect("active broker") += 1;
            }
        }
        out.push(chosen);
    }
    Ok(out)
}

/// The leader a partition should have when brokers for which `active` is false cannot lead:
/// the current leader if still active, else the first active in-sync replica in replica order,
/// else (only with unclean election) the first active replica, else none (-1).
pub fn elect_leader(
    partition: &PartitionRegistration,
    active: impl Fn(i32) -> bool,
    unclean: bool,
) -> i32 {
    if partition.leader != -1 && active(partition.leader) {
        return partition.leader;
    }
    let in_sync = partition
        .replicas
        .iter()
        .copied()
        .find(|r| partition.isr.contains(r) && active(*r));
    if let Some(leader) = in_sync {
        return leader;
    }
    if unclean {
        return partition
            .replicas
            .iter()
            .copied()
            .find(|r| active(*r))
            .unwrap_or(-1);
    }
    -1
}

/// Whether the topic allows an out-of-sync replica to lead (`unclean.leader.election.enable`).
fn unclean_election(topic: &TopicImage) -> bool {
    topic
        .configs
        .get("unclean.leader.election.enable")
        .is_some_and(|v| v == "true")
}

/// The records that take a fenced broker out of leadership and out of every ISR it is in
/// (except where it is the last in-sync replica: that ISR is kept, so that an unclean choice
/// stays visible, and the partition goes offline).
pub fn records_for_fenced(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    let active = |id: i32| id != broker && image.is_active(id);
    let mut out = Vec::new();
    for topic in image.topics.values() {
        let unclean = unclean_election(topic);
        for (index, partition) in &topic.partitions {
            if partition.leader != broker && !partition.isr.contains(&broker) {
                continue;
            }
            let isr: Vec<i32> = if partition.isr.len() > 1 {
                partition
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| *r != broker)
                    .collect()
            } else {
                partition.isr.clone()
            };
            let shrunk = PartitionRegistration {
                isr: isr.clone(),
                ..partition.clone()
            };
            let leader = elect_leader(&shrunk, active, unclean);
            let mut isr = isr;
            if leader != -1 && !isr.contains(&leader) {
                // Unclean: the new leader's log is the truth now.
                isr = vec![leader];
            }
            if leader == partition.leader && isr == partition.isr {
                continue;
            }
            out.push(MetadataRecord::ChangePartition {
                topic_id: topic.id,
                partition: *index,
                leader: (leader != partition.leader).then_some(leader),
                isr: (isr != partition.isr).then_some(isr),
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            });
        }
    }
    out
}

/// The records a broker's new incarnation (`register`, a `RegisterBroker`) brings: the new
/// process may have lost what the old one had (a wiped disk), so, like Kafka with broker
/// epochs in the ISR (KIP-903), it leaves every ISR and its leadership at once and rejoins
/// only by catching up.
pub fn records_for_new_incarnation(
    image: &MetadataImage,
    register: &MetadataRecord,
) -> Vec<MetadataRecord> {
    let MetadataRecord::RegisterBroker { broker_id, .. } = register else {
        return Vec::new();
    };
    let mut after = image.clone();
    let _ = after.apply(image.offset + 1, register);
    records_for_fenced(&after, *broker_id)
}

/// The records that give leaderless partitions a leader now that `broker` is active again:
/// partitions with no leader whose in-sync replicas (or, with unclean election, replicas)
/// include an active broker.
pub fn records_for_unfenced(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for topic in image.topics.values() {
        let unclean = unclean_election(topic);
        for (index, partition) in &topic.partitions {
            if partition.leader != -1 || !partition.replicas.contains(&broker) {
                continue;
            }
            let leader = elect_leader(partition, |id| image.is_active(id), unclean);
            if leader == -1 {
                continue;
            }
            let isr = (!partition.isr.contains(&leader)).then(|| vec![leader]);
            out.push(MetadataRecord::ChangePartition {
                topic_id: topic.id,
                partition: *index,
                leader: Some(leader),
                isr,
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
            });
        }
    }
    out
}

/// The records that create a topic of `count` partitions placed by [`place_replicas`].
pub fn records_for_new_topic(
    image: &MetadataImage,
    name: &str,
    topic_id: Uuid,
    count: usize,
    replication_factor: usize,
    configs: BTreeMap<String, String>,
) -> Result<Vec<MetadataRecord>, PlacementError> {
    let mut records = vec![MetadataRecord::CreateTopic {
        name: name.to_owned(),
        topic_id,
        configs,
    }];
    records.extend(records_for_new_partitions(
        image,
        topic_id,
        0,
        count,
        replication_factor,
        &[],
    )?);
    Ok(records)
}

/// The records that create partitions `first..first + count` of a topic: placed by
/// [`place_replicas`], or on `manual` replica lists (one per partition) when given. A manual
/// partition's ISR is its unfenced replicas and the first of them leads, as in Kafka.
pub fn records_for_new_partitions(
    image: &MetadataImage,
    topic_id: Uuid,
    first: i32,
    count: usize,
    replication_factor: usize,
    manual: &[Vec<i32>],
) -> Result<Vec<MetadataRecord>, PlacementError> {
    if manual.is_empty() {
        let placed = place_replicas(image, count, replication_factor)?;
        return Ok(placed
            .into_iter()
            .enumerate()
            .map(|(n, replicas)| MetadataRecord::CreatePartition {
                topic_id,
                partition: first + n as i32,
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
            })
            .collect());
    }
    if manual.len() != count {
        return Err(PlacementError::InvalidAssignment(format!(
            "{} replica lists for {count} partitions",
            manual.len()
        )));
    }
    let mut out = Vec::with_capacity(count);
    for (n, replicas) in manual.iter().enumerate() {
        let partition = first + n as i32;
        let mut seen = BTreeSet::new();
        if replicas.is_empty() || !replicas.iter().all(|r| seen.insert(*r)) {
            return Err(PlacementError::InvalidAssignment(format!(
                "partition {partition}: replicas {replicas:?} are empty or repeat a broker"
            )));
        }
        if replicas.len() != replication_factor {
            return Err(PlacementError::InvalidAssignment(format!(
                "partition {partition} has {} replicas, the others {replication_factor}",
                replicas.len()
            )));
        }
        if let Some(unknown) = replicas.iter().find(|r| !image.brokers.contains_key(r)) {
            return Err(PlacementError::InvalidAssignment(format!(
                "partition {partition}: broker {unknown} is not registered"
            )));
        }
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| image.is_active(*r))
            .collect();
        let Some(&leader) = isr.first() else {
            return Err(PlacementError::InvalidAssignment(format!(
                "partition {partition}: every broker of {replicas:?} is fenced"
            )));
        };
        out.push(MetadataRecord::CreatePartition {
            topic_id,
            partition,
            replicas: replicas.clone(),
            isr,
            leader,
        });
    }
    Ok(out)
}
