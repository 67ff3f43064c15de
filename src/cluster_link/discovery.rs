//! Discovery: the source topics a link's filters match get mirror topics of the same name
//! (after the link's prefix) and partition count, and mirrors follow the source's partition
//! additions.

use regex::Regex;
use strata_controller::raft::admin::{AdminRequest, NewTopic};
use strata_controller::{ClusterLink, MirrorOf, MirrorState};

use std::collections::BTreeMap;

use super::source;
use crate::broker::StrataBroker;
use crate::cluster::configs::{LOCAL_CONFIGS, effective_config, synced_config};

/// A link's topic filter: a regular expression matching whole names.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// Whether `link` mirrors the source topic `name`.
pub fn selects(link: &ClusterLink, name: &str) -> bool {
    let matches = |pattern: &Option<String>, default: bool| {
        pattern
            .as_deref()
            .map_or(default, |p| compile(p).is_ok_and(|re| re.is_match(name)))
    };
    matches(&link.config.topics, true) && !matches(&link.config.exclude_topics, false)
}

/// One pass over every active link.
pub(super) async fn discover(broker: &StrataBroker) {
    let links: Vec<ClusterLink> = broker
        .image()
        .links
        .values()
        .filter(|l| !l.paused)
        .cloned()
        .collect();
    for link in links {
        if let Err(e) = discover_link(broker, &link).await {
            broker
                .links()
                .failed(&link.name, format!("discovering source topics: {e:#}"));
        }
    }
}

/// The mirror's overrides: its own for [`LOCAL_CONFIGS`], the source's for the others that
/// this broker accepts.
fn mirror_configs(
    broker: &StrataBroker,
    current: &BTreeMap<String, String>,
    source: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = current
        .iter()
        .filter(|(k, _)| LOCAL_CONFIGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, value) in source {
        if !synced_config(key) {
            continue;
        }
        let one = BTreeMap::from([(key.clone(), value.clone())]);
        if effective_config(broker.config(), &one).is_ok() {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

async fn discover_link(broker: &StrataBroker, link: &ClusterLink) -> anyhow::Result<()> {
    let source = source::Source::of(&link.config)?;
    let metadata = source.metadata().await?;
    let selected: Vec<String> = metadata
        .topics
        .keys()
        .filter(|name| selects(link, name))
        .cloned()
        .collect();
    let mut client = source.connect_any().await?;
    let configs = source::topic_configs(&mut client, &selected).await?;
    for name in &selected {
        let topic = &metadata.topics[name];
        let Some(found) = configs.get(name) else {
            continue;
        };
        if let Some(of) = &found.mirror_of {
            // A mirror on the source (the other link of an active-active pair): never back.
            tracing::debug!(link = %link.name, topic = %name, mirror_of = %of, "a mirror topic on the source: not mirrored");
            continue;
        }
        let partitions = topic.leaders.len();
        let local = format!("{}{name}", link.config.prefix);
        let existing = broker.image().topic(&local).map(|t| {
            (
                t.partitions.len(),
                t.mirror
                    .as_ref()
                    .map(|m| m.link == link.name && m.is_mirroring()),
                t.configs.clone(),
            )
        });
        match existing {
            None => {
                let replication_factor = super::replication_factor(broker);
                let request = AdminRequest::CreateMirrorTopic {
                    topic: NewTopic {
                        name: local.clone(),
                        partitions,
                        replication_factor,
                        assignments: Vec::new(),
                        configs: mirror_configs(broker, &BTreeMap::new(), &found.overrides),
                        validate_only: false,
                        topic_id: None,
                    },
                    mirror: MirrorOf {
                        link: link.name.clone(),
                        source_topic: name.clone(),
                        state: MirrorState::Mirroring,
                    },
                };
                broker.admin().request(request).await?;
                tracing::info!(link = %link.name, topic = %local, source = %name, partitions, "mirror topic created");
            }
            Some((count, Some(true), current)) => {
                if count < partitions {
                    broker
                        .admin()
                        .request(AdminRequest::CreatePartitions {
                            name: local.clone(),
                            count: partitions,
                            assignments: Vec::new(),
                            validate_only: false,
                        })
                        .await?;
                    tracing::info!(link = %link.name, topic = %local, partitions, "mirror topic follows the source's new partitions");
                }
                let wanted = mirror_configs(broker, &current, &found.overrides);
                if wanted != current {
                    broker
                        .admin()
                        .request(AdminRequest::SetTopicConfigs {
                            name: local.clone(),
                            configs: wanted,
                        })
                        .await?;
                    tracing::info!(link = %link.name, topic = %local, "mirror topic configs follow the source's");
                }
            }
            Some(_) => {
                tracing::debug!(link = %link.name, topic = %local, "a local topic of this name is not this link's mirror: left alone");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_controller::{LinkConfig, LinkStart};

    fn link(topics: Option<&str>, exclude: Option<&str>) -> ClusterLink {
        ClusterLink {
            name: "east".into(),
            id: uuid::Uuid::new_v4(),
            config: LinkConfig {
                source: "127.0.0.1:9092".into(),
                topics: topics.map(str::to_owned),
                exclude_topics: exclude.map(str::to_owned),
                groups: None,
                start: LinkStart::Earliest,
                prefix: String::new(),
                offset_sync_ms: 5_000,
                source_security: Default::default(),
            },
            paused: false,
        }
    }

    #[test]
    fn filters_match_whole_names() {
        assert!(selects(&link(None, None), "anything"));
        let orders = link(Some("ord.*|payments"), Some("orders-tmp"));
        assert!(selects(&orders, "orders"));
        assert!(selects(&orders, "payments"));
        assert!(!selects(&orders, "orders-tmp"), "excluded");
        assert!(
            !selects(&orders, "old-orders"),
            "a whole-name match, not a search"
        );
        assert!(!selects(&orders, "payments2"));
        assert!(compile("(").is_err());
    }
}
