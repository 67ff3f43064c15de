//! The active controller's side of cluster links: creating, pausing and deleting links, and
//! stopping mirror topics (failover, promote) in one committed change.

use openraft::Raft;
use uuid::Uuid;

use super::admin::{AdminAnswer, Invalid, commit_all, invalid};
use super::network::WriteRefusal;
use super::{StateMachine, TypeConfig};
use crate::link::{ClusterLink, LinkConfig, MirrorOf, MirrorState, StopReason};
use crate::record::MetadataRecord;

/// Link names: what Kafka allows in topic names, so they can be part of one (prefixes).
fn check_name(name: &str) -> Result<(), WriteRefusal> {
    let valid = !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(invalid(Invalid::Request(format!(
            "link name '{name}' must be 1 to 249 characters of ASCII letters, digits, '.', '_' and '-'"
        ))))
    }
}

pub(super) async fn create_link(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    name: String,
    config: LinkConfig,
) -> Result<AdminAnswer, WriteRefusal> {
    check_name(&name)?;
    if config.source.trim().is_empty() {
        return Err(invalid(Invalid::Request(format!(
            "link '{name}' needs a source (host:port of the source cluster)"
        ))));
    }
    if state.with_image(|i| i.links.contains_key(&name)) {
        return Err(invalid(Invalid::Request(format!(
            "cluster link '{name}' already exists"
        ))));
    }
    let link = ClusterLink {
        name: name.clone(),
        id: Uuid::new_v4(),
        config,
        paused: false,
    };
    commit_all(raft, vec![MetadataRecord::CreateLink { link }]).await?;
    tracing::info!(link = %name, "cluster link created");
    Ok(AdminAnswer::Done)
}

fn known(state: &StateMachine, name: &str) -> Result<(), WriteRefusal> {
    if state.with_image(|i| i.links.contains_key(name)) {
        Ok(())
    } else {
        Err(invalid(Invalid::Request(format!(
            "cluster link '{name}' does not exist"
        ))))
    }
}

pub(super) async fn delete_link(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    name: String,
) -> Result<AdminAnswer, WriteRefusal> {
    known(state, &name)?;
    let mirroring: Vec<String> = state.with_image(|i| {
        i.topics
            .values()
            .filter(|t| t.is_mirroring() && t.mirror.as_ref().is_some_and(|m| m.link == name))
            .map(|t| t.name.clone())
            .collect()
    });
    if !mirroring.is_empty() {
        return Err(invalid(Invalid::Request(format!(
            "cluster link '{name}' still has mirroring topics ({}): fail them over or promote them first",
            mirroring.join(", ")
        ))));
    }
    commit_all(
        raft,
        vec![MetadataRecord::DeleteLink { name: name.clone() }],
    )
    .await?;
    tracing::info!(link = %name, "cluster link deleted");
    Ok(AdminAnswer::Done)
}

pub(super) async fn set_link_source(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    name: String,
    source: String,
    security: Option<crate::link::ClientProperties>,
) -> Result<AdminAnswer, WriteRefusal> {
    known(state, &name)?;
    if source.trim().is_empty() {
        return Err(invalid(Invalid::Request(format!(
            "link '{name}' needs a source (host:port of the source cluster)"
        ))));
    }
    let mut link = state.with_image(|i| i.links[&name].clone());
    link.config.source = source;
    if let Some(security) = security {
        link.config.source_security = security;
    }
    commit_all(raft, vec![MetadataRecord::CreateLink { link }]).await?;
    tracing::info!(link = %name, "cluster link source changed");
    Ok(AdminAnswer::Done)
}

pub(super) async fn pause_link(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    name: String,
    paused: bool,
) -> Result<AdminAnswer, WriteRefusal> {
    known(state, &name)?;
    commit_all(
        raft,
        vec![MetadataRecord::PauseLink {
            name: name.clone(),
            paused,
        }],
    )
    .await?;
    tracing::info!(link = %name, paused, "cluster link paused or resumed");
    Ok(AdminAnswer::Done)
}

/// Every named topic (or every mirroring topic of the link) stops mirroring, and each of its
/// partitions gets a new leader epoch: replicas apply the leadership again as a writable
/// topic, and its leader stamps new batches with an epoch no mirrored batch had (it asks for
/// a higher one if the source's epochs were higher).
pub(super) async fn stop_mirrors(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    link: String,
    topics: Option<Vec<String>>,
    reason: StopReason,
) -> Result<AdminAnswer, WriteRefusal> {
    known(state, &link)?;
    let (records, stopped) = state.with_image(|image| {
        let chosen: Vec<&crate::TopicImage> = match &topics {
            None => image
                .topics
                .values()
                .filter(|t| t.is_mirroring() && t.mirror.as_ref().is_some_and(|m| m.link == link))
                .collect(),
            Some(names) => {
                let mut chosen = Vec::new();
                for name in names {
                    let topic = image
                        .topic(name)
                        .ok_or_else(|| invalid(Invalid::UnknownTopic(name.clone())))?;
                    match &topic.mirror {
                        Some(m) if m.link == link && m.is_mirroring() => chosen.push(topic),
                        _ => {
                            return Err(invalid(Invalid::Request(format!(
                                "topic '{name}' is not a mirroring topic of link '{link}'"
                            ))));
                        }
                    }
                }
                chosen
            }
        };
        let mut records = Vec::new();
        for topic in &chosen {
            let mut mirror = topic.mirror.clone().expect("chosen mirrors");
            mirror.state = MirrorState::Stopped(reason);
            records.push(MetadataRecord::SetMirror {
                topic_id: topic.id,
                mirror: Some(mirror),
            });
            for (index, partition) in &topic.partitions {
                records.push(MetadataRecord::RaiseLeaderEpoch {
                    topic_id: topic.id,
                    partition: *index,
                    leader_epoch: partition.leader_epoch + 1,
                });
            }
        }
        let names = chosen.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        Ok((records, names))
    })?;
    if !records.is_empty() {
        commit_all(raft, records).await?;
        tracing::info!(link = %link, ?reason, topics = ?stopped, "mirror topics stopped");
    }
    Ok(AdminAnswer::Topics(stopped))
}

pub(super) async fn restore_mirrors(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    link: String,
    topics: Vec<String>,
) -> Result<AdminAnswer, WriteRefusal> {
    known(state, &link)?;
    let records = state.with_image(|image| {
        let prefix = image.links[&link].config.prefix.clone();
        let mut records = Vec::new();
        for name in &topics {
            let topic = image
                .topic(name)
                .ok_or_else(|| invalid(Invalid::UnknownTopic(name.clone())))?;
            if topic.is_mirroring() {
                return Err(invalid(Invalid::Request(format!(
                    "topic '{name}' already mirrors a source"
                ))));
            }
            let source_topic = name.strip_prefix(&prefix).ok_or_else(|| {
                invalid(Invalid::Request(format!(
                    "topic '{name}' lacks the link's prefix '{prefix}'"
                )))
            })?;
            records.push(MetadataRecord::SetMirror {
                topic_id: topic.id,
                mirror: Some(MirrorOf {
                    link: link.clone(),
                    source_topic: source_topic.to_owned(),
                    state: MirrorState::Mirroring,
                }),
            });
        }
        Ok(records)
    })?;
    if !records.is_empty() {
        commit_all(raft, records).await?;
        tracing::info!(link = %link, ?topics, "topics restored as mirrors");
    }
    Ok(AdminAnswer::Topics(topics))
}

pub(super) async fn raise_leader_epoch(
    raft: &Raft<TypeConfig>,
    state: &StateMachine,
    broker_id: i32,
    (topic_id, partition): (Uuid, i32),
    leader_epoch: i32,
    above: i32,
) -> Result<AdminAnswer, WriteRefusal> {
    let current = state.with_image(|image| {
        image
            .topics
            .get(&topic_id)
            .and_then(|t| t.partitions.get(&partition))
            .map(|p| (p.leader, p.leader_epoch))
    });
    match current {
        Some((leader, epoch)) if leader == broker_id && epoch == leader_epoch => {}
        _ => {
            return Err(invalid(Invalid::Request(format!(
                "broker {broker_id} does not lead {topic_id}/{partition} in epoch {leader_epoch}"
            ))));
        }
    }
    if above >= leader_epoch {
        commit_all(
            raft,
            vec![MetadataRecord::RaiseLeaderEpoch {
                topic_id,
                partition,
                leader_epoch: above + 1,
            }],
        )
        .await?;
    }
    Ok(AdminAnswer::Done)
}
