//! The admin API's link operations on a broker: they go to the controller like any metadata
//! change, and a link's lag is measured over the Kafka protocol, from the mirror's leaders and
//! the source's, so any node can answer for the whole cluster.

use std::collections::HashMap;
use std::time::Duration;

use strata_api::links::{
    AdminError, LinkAdmin, LinkStatus, LinkSummary, MirrorPartition, MirrorStatus, NewLink,
    StopMirrors, Stopped,
};
use strata_controller::link::ClientProperties;
use strata_controller::raft::admin::{AdminAnswer, AdminRequest};
use strata_controller::{ClusterLink, LinkConfig, LinkStart, MirrorState, StopReason};

use super::discovery::compile;
use super::source::{self, CLIENT_ID, LATEST, MAX_TIMESTAMP, SOURCE_TIMEOUT};
use crate::broker::StrataBroker;
use crate::kafka_client::Client;
use crate::metadata_cache::live_node;
use strata_api::broker::BrokerError;

/// How long `promote` waits for its mirrors to catch up with the source.
const PROMOTE_TIMEOUT: Duration = Duration::from_secs(60);

fn summary(link: &ClusterLink, mirroring: usize) -> LinkSummary {
    LinkSummary {
        name: link.name.clone(),
        source: link.config.source.clone(),
        state: if link.paused { "paused" } else { "active" }.to_owned(),
        topics: link.config.topics.clone(),
        exclude_topics: link.config.exclude_topics.clone(),
        groups: link.config.groups.clone(),
        start: match link.config.start {
            LinkStart::Earliest => "earliest",
            LinkStart::Latest => "latest",
        }
        .to_owned(),
        prefix: link.config.prefix.clone(),
        offset_sync_ms: link.config.offset_sync_ms,
        source_config: (link.config.source_security.0.iter())
            .map(|(k, v)| {
                let shown = match crate::config::is_sensitive(k) {
                    true => "(hidden)".to_owned(),
                    false => v.clone(),
                };
                (k.clone(), shown)
            })
            .collect(),
        mirroring_topics: mirroring,
    }
}

fn from_broker(e: BrokerError) -> AdminError {
    match e {
        BrokerError::ControllerUnavailable(m) => AdminError::unavailable(m),
        BrokerError::UnknownTopicOrPartition => AdminError::not_found("unknown topic"),
        other => AdminError::bad_request(other.to_string()),
    }
}

impl StrataBroker {
    fn link_summary(&self, name: &str) -> Option<LinkSummary> {
        let image = self.image();
        let link = image.links.get(name)?;
        let mirroring = image
            .topics
            .values()
            .filter(|t| t.is_mirroring() && t.mirror.as_ref().is_some_and(|m| m.link == name))
            .count();
        Some(summary(link, mirroring))
    }

    fn known_link(&self, name: &str) -> Result<(), AdminError> {
        if self.image().links.contains_key(name) {
            Ok(())
        } else {
            Err(AdminError::not_found(format!(
                "cluster link '{name}' does not exist"
            )))
        }
    }

    /// The mirror's high watermark and newest timestamp for each partition of `topic`.
    pub(super) async fn mirror_ends(
        &self,
        topic: &str,
        partitions: &[(i32, i32)],
    ) -> HashMap<i32, (i64, i64)> {
        let mut out = HashMap::new();
        let mut clients: HashMap<i32, Client> = HashMap::new();
        for (index, leader) in partitions {
            let addr = {
                let image = self.image();
                live_node(&image, *leader).map(|n| format!("{}:{}", n.host, n.port))
            };
            let Some(addr) = addr else { continue };
            if !clients.contains_key(leader) {
                match Client::connect_as(&addr, CLIENT_ID, SOURCE_TIMEOUT).await {
                    Ok(c) => {
                        clients.insert(*leader, c);
                    }
                    Err(_) => continue,
                }
            }
            let client = clients.get_mut(leader).expect("connected above");
            if let (Ok((end, _)), Ok((_, ts))) = (
                source::list_offset(client, topic, *index, LATEST).await,
                source::list_offset(client, topic, *index, MAX_TIMESTAMP).await,
            ) {
                out.insert(*index, (end, ts));
            }
        }
        out
    }

    /// The source's high watermark and newest timestamp for each partition of `topic`.
    async fn source_ends(
        &self,
        (source, metadata): (&source::Source, &source::SourceMetadata),
        topic: &str,
        partitions: &[i32],
    ) -> HashMap<i32, (i64, i64)> {
        let mut out = HashMap::new();
        let mut clients: HashMap<String, Client> = HashMap::new();
        for index in partitions {
            let Some(addr) = metadata.leader_of(topic, *index) else {
                continue;
            };
            if !clients.contains_key(addr) {
                match source.connect(addr).await {
                    Ok(c) => {
                        clients.insert(addr.to_owned(), c);
                    }
                    Err(_) => continue,
                }
            }
            let client = clients.get_mut(addr).expect("connected above");
            if let (Ok((end, _)), Ok((_, ts))) = (
                source::list_offset(client, topic, *index, LATEST).await,
                source::list_offset(client, topic, *index, MAX_TIMESTAMP).await,
            ) {
                out.insert(*index, (end, ts));
            }
        }
        out
    }
}

/// A mirror topic: its name, its source topic's, its state, and (partition, leader) pairs.
type MirrorTopic = (String, String, MirrorState, Vec<(i32, i32)>);

fn state_name(state: MirrorState) -> String {
    match state {
        MirrorState::Mirroring => "mirroring".into(),
        MirrorState::Stopped(StopReason::Failover) => "stopped (failover)".into(),
        MirrorState::Stopped(StopReason::Promote) => "stopped (promote)".into(),
    }
}

impl LinkAdmin for StrataBroker {
    async fn links(&self) -> Vec<LinkSummary> {
        let names: Vec<String> = self.image().links.keys().cloned().collect();
        names.iter().filter_map(|n| self.link_summary(n)).collect()
    }

    async fn link_status(&self, name: String) -> Result<LinkStatus, AdminError> {
        let link = self.link_summary(&name).ok_or_else(|| {
            AdminError::not_found(format!("cluster link '{name}' does not exist"))
        })?;
        let mirrors: Vec<MirrorTopic> = {
            let image = self.image();
            image
                .topics
                .values()
                .filter_map(|t| {
                    let m = t.mirror.as_ref().filter(|m| m.link == name)?;
                    let partitions = t.partitions.iter().map(|(i, p)| (*i, p.leader)).collect();
                    Some((t.name.clone(), m.source_topic.clone(), m.state, partitions))
                })
                .collect()
        };
        let reached = {
            let image = self.image();
            image
                .links
                .get(&name)
                .map(|l| source::Source::of(&l.config))
        };
        let reached = match reached {
            Some(Ok(source)) => Some(source),
            _ => None,
        };
        let metadata = match (
            &reached,
            mirrors.iter().any(|m| m.2 == MirrorState::Mirroring),
        ) {
            (Some(source), true) => source.metadata().await.ok().map(|m| (source, m)),
            _ => None,
        };
        let activity = self.links().activity_of(&name);
        let mut status = LinkStatus {
            link: link.clone(),
            bytes_mirrored: activity.bytes,
            last_error: activity.last_error.clone(),
            lag_records: 0,
            lag_seconds: 0.0,
            mirrors: Vec::new(),
        };
        for (topic, source_topic, state, partitions) in mirrors {
            let ends = self.mirror_ends(&topic, &partitions).await;
            let sources = match (&metadata, state) {
                (Some((source, md)), MirrorState::Mirroring) => {
                    let indexes: Vec<i32> = partitions.iter().map(|(i, _)| *i).collect();
                    self.source_ends((source, md), &source_topic, &indexes)
                        .await
                }
                _ => HashMap::new(),
            };
            let mut rows = Vec::new();
            for (index, _) in &partitions {
                let mirror = ends.get(index).copied();
                let source = sources.get(index).copied();
                let (lag_records, lag_seconds) = match (mirror, source) {
                    (Some((m_end, m_ts)), Some((s_end, s_ts))) => {
                        let records = (s_end - m_end).max(0);
                        let seconds = if records == 0 {
                            0.0
                        } else {
                            ((s_ts - m_ts.max(0)).max(0) as f64) / 1000.0
                        };
                        (Some(records), Some(seconds))
                    }
                    _ => (None, None),
                };
                status.lag_records += lag_records.unwrap_or(0);
                status.lag_seconds = status.lag_seconds.max(lag_seconds.unwrap_or(0.0));
                rows.push(MirrorPartition {
                    partition: *index,
                    mirror_end: mirror.map(|m| m.0),
                    source_end: source.map(|s| s.0),
                    lag_records,
                    lag_seconds,
                });
            }
            status.mirrors.push(MirrorStatus {
                topic,
                source_topic,
                state: state_name(state),
                partitions: rows,
            });
        }
        if metadata.is_none() && status.mirrors.iter().any(|m| m.state == "mirroring") {
            status.last_error.get_or_insert_with(|| {
                format!("the source cluster at {} does not answer", link.source)
            });
        }
        Ok(status)
    }

    async fn create_link(&self, link: NewLink) -> Result<LinkSummary, AdminError> {
        if self.image().links.contains_key(&link.name) {
            return Err(AdminError::conflict(format!(
                "cluster link '{}' already exists",
                link.name
            )));
        }
        for (what, pattern) in [
            ("topics", &link.topics),
            ("exclude_topics", &link.exclude_topics),
            ("groups", &link.groups),
        ] {
            if let Some(p) = pattern
                && let Err(e) = compile(p)
            {
                return Err(AdminError::bad_request(format!(
                    "{what}: '{p}' is not a regular expression: {e}"
                )));
            }
        }
        let start = match link.start.as_deref() {
            None | Some("earliest") => LinkStart::Earliest,
            Some("latest") => LinkStart::Latest,
            Some(other) => {
                return Err(AdminError::bad_request(format!(
                    "start must be 'earliest' or 'latest', not '{other}'"
                )));
            }
        };
        let config = LinkConfig {
            source: link.source.clone(),
            topics: link.topics,
            exclude_topics: link.exclude_topics,
            groups: link.groups,
            start,
            prefix: link.prefix.unwrap_or_default(),
            offset_sync_ms: link
                .offset_sync_ms
                .unwrap_or(strata_controller::link::DEFAULT_OFFSET_SYNC_MS)
                .max(100),
            source_security: ClientProperties(link.source_config.unwrap_or_default()),
        };
        let source =
            source::Source::of(&config).map_err(|e| AdminError::bad_request(format!("{e:#}")))?;
        // The source must answer now: a typo is reported here, not as a silent idle link.
        source.metadata().await.map_err(|e| {
            AdminError::bad_request(format!(
                "the source cluster at '{}' does not answer: {e:#}",
                config.source
            ))
        })?;
        self.admin()
            .request(AdminRequest::CreateLink {
                name: link.name.clone(),
                config,
            })
            .await
            .map_err(from_broker)?;
        self.link_summary(&link.name)
            .ok_or_else(|| AdminError::unavailable("the link is not in the metadata yet"))
    }

    async fn delete_link(&self, name: String) -> Result<(), AdminError> {
        self.known_link(&name)?;
        self.admin()
            .request(AdminRequest::DeleteLink { name })
            .await
            .map_err(|e| match from_broker(e) {
                e if e.status == 400 => AdminError::conflict(e.message),
                e => e,
            })?;
        Ok(())
    }

    async fn set_link_source(
        &self,
        name: String,
        source: String,
        security: Option<std::collections::BTreeMap<String, String>>,
    ) -> Result<LinkSummary, AdminError> {
        self.known_link(&name)?;
        let kept = (self.image().links.get(&name))
            .map(|l| l.config.source_security.0.clone())
            .ok_or_else(|| {
                AdminError::not_found(format!("cluster link '{name}' does not exist"))
            })?;
        let reached = source::Source::new(&source, security.as_ref().unwrap_or(&kept))
            .map_err(|e| AdminError::bad_request(format!("{e:#}")))?;
        reached.metadata().await.map_err(|e| {
            AdminError::bad_request(format!(
                "the source cluster at '{source}' does not answer: {e:#}"
            ))
        })?;
        self.admin()
            .request(AdminRequest::SetLinkSource {
                name: name.clone(),
                source,
                security: security.map(ClientProperties),
            })
            .await
            .map_err(from_broker)?;
        self.link_summary(&name)
            .ok_or_else(|| AdminError::unavailable("the link is not in the metadata yet"))
    }

    async fn pause_link(&self, name: String, paused: bool) -> Result<(), AdminError> {
        self.known_link(&name)?;
        self.admin()
            .request(AdminRequest::PauseLink { name, paused })
            .await
            .map_err(from_broker)?;
        Ok(())
    }

    async fn restore_mirrors(
        &self,
        link: String,
        which: StopMirrors,
    ) -> Result<Stopped, AdminError> {
        self.known_link(&link)?;
        let (reached, prefix, filter) = {
            let image = self.image();
            // Deleted since `known_link` looked: as if it had never been.
            let l = image.links.get(&link).ok_or_else(|| {
                AdminError::not_found(format!("cluster link '{link}' does not exist"))
            })?;
            (
                source::Source::of(&l.config),
                l.config.prefix.clone(),
                l.clone(),
            )
        };
        let reached = reached.map_err(|e| AdminError::bad_request(format!("{e:#}")))?;
        let source = &reached.bootstrap;
        let metadata = reached.metadata().await.map_err(|e| {
            AdminError::unavailable(format!(
                "the source cluster at {source} does not answer: {e:#}"
            ))
        })?;
        let topics: Vec<String> = match which.topics {
            Some(topics) => {
                for t in &topics {
                    let there = t.strip_prefix(&prefix).unwrap_or(t);
                    if !metadata.topics.contains_key(there) {
                        return Err(AdminError::bad_request(format!(
                            "the source cluster has no topic '{there}' for '{t}' to follow"
                        )));
                    }
                }
                topics
            }
            None => {
                let image = self.image();
                image
                    .topics
                    .values()
                    .filter(|t| !t.is_mirroring() && !t.name.starts_with("__"))
                    .filter(|t| !t.name.ends_with(super::truncated::SUFFIX))
                    .filter_map(|t| {
                        let there = t.name.strip_prefix(&prefix)?;
                        (metadata.topics.contains_key(there)
                            && super::discovery::selects(&filter, there))
                        .then(|| t.name.clone())
                    })
                    .collect()
            }
        };
        let answer = self
            .admin()
            .request(AdminRequest::RestoreMirrors { link, topics })
            .await
            .map_err(from_broker)?;
        match answer {
            AdminAnswer::Topics(topics) => Ok(Stopped { topics }),
            _ => Ok(Stopped { topics: Vec::new() }),
        }
    }

    async fn stop_mirrors(
        &self,
        link: String,
        which: StopMirrors,
        promote: bool,
    ) -> Result<Stopped, AdminError> {
        self.known_link(&link)?;
        if promote {
            self.wait_caught_up(&link, which.topics.as_deref()).await?;
        }
        let answer = self
            .admin()
            .request(AdminRequest::StopMirrors {
                link,
                topics: which.topics,
                reason: if promote {
                    StopReason::Promote
                } else {
                    StopReason::Failover
                },
            })
            .await
            .map_err(from_broker)?;
        match answer {
            AdminAnswer::Topics(topics) => Ok(Stopped { topics }),
            _ => Ok(Stopped { topics: Vec::new() }),
        }
    }
}

impl StrataBroker {
    /// Waits until every chosen mirroring partition of `link` has the source's high watermark.
    async fn wait_caught_up(
        &self,
        link: &str,
        topics: Option<&[String]>,
    ) -> Result<(), AdminError> {
        let deadline = tokio::time::Instant::now() + PROMOTE_TIMEOUT;
        loop {
            let status = self.link_status(link.to_owned()).await?;
            let chosen: Vec<&MirrorStatus> = status
                .mirrors
                .iter()
                .filter(|m| m.state == "mirroring")
                .filter(|m| topics.is_none_or(|t| t.contains(&m.topic)))
                .collect();
            let unknown = chosen
                .iter()
                .flat_map(|m| &m.partitions)
                .any(|p| p.lag_records.is_none());
            let behind: i64 = chosen
                .iter()
                .flat_map(|m| &m.partitions)
                .map(|p| p.lag_records.unwrap_or(0))
                .sum();
            if !unknown && behind == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdminError::conflict(if unknown {
                    format!(
                        "cannot promote: the source or a mirror leader of link '{link}' does not answer; use failover if the source is lost"
                    )
                } else {
                    format!(
                        "cannot promote: link '{link}' is still {behind} records behind the source after {} s (stop the source's producers first)",
                        PROMOTE_TIMEOUT.as_secs()
                    )
                }));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
