//! Acting on the metadata image: the replicas this broker hosts, which it leads, their
//! configs, and the removal of deleted topics.

use strata_controller::{Change, ConfigResource, MetadataImage};
use uuid::Uuid;

use super::ReplicaManager;
use crate::cluster::configs::effective_config;
use crate::log::LogError;

/// What this broker must do for one partition of the image.
struct Assignment {
    topic: String,
    topic_id: Uuid,
    index: i32,
    hosted_here: bool,
    leader: bool,
    /// The leader's id (-1: none).
    leader_id: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    partition_epoch: i32,
    /// The topic follows a source cluster through a link.
    mirror: bool,
    /// The topic was a mirror and was failed over or promoted.
    stopped_mirror: bool,
}

fn assignment(image: &MetadataImage, me: i32, topic_id: Uuid, index: i32) -> Option<Assignment> {
    let topic = image.topics.get(&topic_id)?;
    let partition = topic.partitions.get(&index)?;
    Some(Assignment {
        topic: topic.name.clone(),
        topic_id,
        index,
        hosted_here: partition.replicas.contains(&me),
        leader: partition.leader == me,
        leader_id: partition.leader,
        leader_epoch: partition.leader_epoch,
        replicas: partition.replicas.clone(),
        isr: partition.isr.clone(),
        partition_epoch: partition.partition_epoch,
        mirror: topic.is_mirroring(),
        stopped_mirror: topic.mirror.is_some() && !topic.is_mirroring(),
    })
}

impl ReplicaManager {
    /// Makes the hosted partitions match the whole image. With `remove_strays`, partition
    /// directories the image does not assign here are removed (the directory is known to
    /// belong to this cluster, so they are topics deleted while the broker was away).
    pub(crate) fn apply_all(&self, remove_strays: bool) -> Result<(), LogError> {
        let me = self.config.node_id;
        let wanted: Vec<Assignment> = {
            let image = self.metadata.image();
            image
                .topics
                .values()
                .flat_map(|t| t.partitions.keys().map(move |i| (t.id, *i)))
                .filter_map(|(id, index)| assignment(&image, me, id, index))
                .filter(|a| a.hosted_here)
                .collect()
        };
        for hosted in self.all() {
            let keep = wanted.iter().any(|a| {
                a.topic == hosted.topic && a.index == hosted.index && a.topic_id == hosted.topic_id
            });
            if !keep {
                tracing::info!(topic = %hosted.topic, partition = hosted.index, "no longer a replica: removing");
                self.remove_partition(&hosted.topic, hosted.index)?;
            }
        }
        for a in &wanted {
            self.host(a)?;
        }
        let dirs = self.partition_dirs()?;
        for (topic, index) in dirs {
            if self.get(&topic, index).is_some() {
                continue;
            }
            if remove_strays {
                tracing::info!(%topic, partition = index, "removing a partition deleted while this broker was away");
                self.remove_stray(&topic, index)?;
            } else {
                tracing::warn!(%topic, partition = index, "a partition directory the cluster does not know; left alone");
            }
        }
        Ok(())
    }

    /// Acts on the changes of newly applied records.
    pub(crate) fn apply_changes(&self, changes: &[Change]) -> Result<(), LogError> {
        let me = self.config.node_id;
        for change in changes {
            match change {
                Change::PartitionCreated {
                    topic_id,
                    partition,
                }
                | Change::PartitionChanged {
                    topic_id,
                    partition,
                    ..
                } => {
                    let Some(a) = assignment(&self.metadata.image(), me, *topic_id, *partition)
                    else {
                        continue;
                    };
                    if a.hosted_here {
                        self.host(&a)?;
                    } else if self.get(&a.topic, a.index).is_some() {
                        tracing::info!(topic = %a.topic, partition = a.index, "no longer a replica: removing");
                        self.remove_partition(&a.topic, a.index)?;
                    }
                }
                Change::MirrorChanged { topic_id } => {
                    let image = self.metadata.image();
                    let Some(topic) = image.topics.get(topic_id) else {
                        continue;
                    };
                    let wanted: Vec<Assignment> = topic
                        .partitions
                        .keys()
                        .filter_map(|i| assignment(&image, me, *topic_id, *i))
                        .filter(|a| a.hosted_here)
                        .collect();
                    drop(image);
                    for a in &wanted {
                        self.host(a)?;
                    }
                }
                Change::TopicDeleted { name, id } => {
                    let hosted = self
                        .all()
                        .into_iter()
                        .any(|p| p.topic == *name && p.topic_id == *id);
                    if hosted {
                        self.delete_topic(name)?;
                        tracing::info!(topic = %name, "deleted topic's partitions removed");
                    }
                    // The topic's replicas may all be down: the live broker with the lowest id
                    // deletes its objects too (deleting twice is harmless).
                    let lowest_live = {
                        let image = self.metadata.image();
                        image
                            .brokers
                            .values()
                            .filter(|b| !b.fenced)
                            .map(|b| b.id)
                            .min()
                    };
                    if (hosted || lowest_live == Some(me))
                        && let Some(remote) = self.remote.clone()
                    {
                        let cluster_id =
                            self.metadata.image().cluster_id.clone().unwrap_or_default();
                        let (name, id) = (name.clone(), *id);
                        tokio::spawn(async move {
                            remote.delete_topic(&cluster_id, &name, id).await;
                        });
                    }
                }
                Change::ConfigChanged {
                    resource: ConfigResource::Topic(name),
                    ..
                } => {
                    let overrides = self.metadata.image().topic(name).map(|t| t.configs.clone());
                    if let Some(overrides) = overrides {
                        match effective_config(&self.config, &overrides) {
                            Ok(config) => self.set_config(name, &config),
                            Err(e) => tracing::error!(topic = %name, "topic config refused: {e}"),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens the partition if needed and applies its leadership.
    fn host(&self, a: &Assignment) -> Result<(), LogError> {
        let partition = match self.get(&a.topic, a.index) {
            Some(p) if p.topic_id == a.topic_id => p,
            _ => {
                let overrides = self
                    .metadata
                    .image()
                    .topics
                    .get(&a.topic_id)
                    .map(|t| t.configs.clone())
                    .unwrap_or_default();
                let config = effective_config(&self.config, &overrides).map_err(|e| {
                    LogError::io(
                        &self.config.data_dir,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("topic {}: {e}", a.topic),
                        ),
                    )
                })?;
                self.open_partition(&a.topic, a.topic_id, a.index, &config)?
            }
        };
        partition.set_mirror(a.mirror, a.stopped_mirror);
        if partition.is_leader() != a.leader || partition.leader_epoch() != a.leader_epoch {
            tracing::info!(
                topic = %a.topic,
                partition = a.index,
                leader = a.leader,
                epoch = a.leader_epoch,
                "partition leadership"
            );
            partition.set_leadership(a.leader, a.leader_epoch)?;
        }
        partition.set_replicas(
            self.config.node_id,
            a.replicas.clone(),
            a.isr.clone(),
            a.partition_epoch,
        );
        if a.leader || a.leader_id < 0 {
            self.fetchers.unfollow(&a.topic, a.index);
        } else {
            self.fetchers
                .follow(&partition, a.leader_id, a.leader_epoch);
        }
        Ok(())
    }
}
