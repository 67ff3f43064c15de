//! Topic and broker configs as DescribeConfigs, AlterConfigs and IncrementalAlterConfigs see
//! them: the broker validates a change against its defaults before the controller commits it.

use std::collections::BTreeMap;
use std::future::Future;

use strata_api::BrokerError;
use strata_api::broker::{ConfigEntry, ConfigOp, ConfigSource};
use strata_controller::raft::admin::AdminRequest;

use super::admin::ClusterAdmin;
use crate::config::BrokerConfig;
use crate::log::LogConfig;
use crate::log::config::{ConfigType, TOPIC_CONFIGS};

/// The read-only topic config a mirror topic carries: `<link>/<source topic>`.
pub const MIRROR_CONFIG: &str = "strata.mirror.of";

/// Topic configs a mirror keeps its own rather than the source's: durability, tiering and
/// replication throttles are decisions of the destination cluster.
pub const LOCAL_CONFIGS: &[&str] = &[
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "remote.storage.enable",
    "local.retention.ms",
    "local.retention.bytes",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
    "flush.messages",
    "flush.ms",
];

/// Whether a source topic's config is copied to its mirror: one Strata knows, not local.
pub fn synced_config(name: &str) -> bool {
    !LOCAL_CONFIGS.contains(&name) && TOPIC_CONFIGS.iter().any(|k| k.name == name)
}

/// Broker topic defaults overlaid with a topic's overrides, validated.
pub(crate) fn effective_config(
    config: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, BrokerError> {
    let mut merged = config.topic_defaults.clone();
    merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    LogConfig::from_map(&merged).map_err(|e| BrokerError::InvalidConfig(e.0))
}

/// The current entries of a list config, for APPEND and SUBTRACT.
fn list_items(overrides: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>, BrokerError> {
    let config = TOPIC_CONFIGS
        .iter()
        .find(|k| k.name == key && k.kind == ConfigType::List)
        .ok_or_else(|| {
            BrokerError::InvalidConfig(format!(
                "'{key}' is not a list config: APPEND and SUBTRACT apply to lists only"
            ))
        })?;
    let current = overrides.get(key).map_or(config.default, String::as_str);
    Ok(current
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Applies IncrementalAlterConfigs operations to a topic's overrides.
fn apply_config_ops(
    overrides: &mut BTreeMap<String, String>,
    ops: Vec<ConfigOp>,
) -> Result<(), BrokerError> {
    for op in ops {
        match op {
            ConfigOp::Set(key, value) => {
                overrides.insert(key, value);
            }
            ConfigOp::Delete(key) => {
                overrides.remove(&key);
            }
            ConfigOp::Append(key, value) => {
                let mut items = list_items(overrides, &key)?;
                for item in value.split(',').filter(|s| !s.is_empty()) {
                    if !items.iter().any(|existing| existing == item) {
                        items.push(item.to_owned());
                    }
                }
                overrides.insert(key, items.join(","));
            }
            ConfigOp::Subtract(key, value) => {
                let mut items = list_items(overrides, &key)?;
                let removed: Vec<&str> = value.split(',').collect();
                items.retain(|existing| !removed.contains(&existing.as_str()));
                overrides.insert(key, items.join(","));
            }
        }
    }
    Ok(())
}

impl ClusterAdmin {
    /// A topic's configs with where each value comes from.
    pub(crate) fn topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, BrokerError> {
        let image = self.metadata.image();
        let record = image
            .topic(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let mut entries: Vec<ConfigEntry> = TOPIC_CONFIGS
            .iter()
            .map(|key| {
                let (value, source) = if let Some(value) = record.configs.get(key.name) {
                    (value.clone(), ConfigSource::DynamicTopic)
                } else if let Some(value) = self.config.topic_defaults.get(key.name) {
                    (value.clone(), ConfigSource::StaticBroker)
                } else {
                    (key.default.to_owned(), ConfigSource::Default)
                };
                ConfigEntry {
                    name: key.name.to_owned(),
                    value: Some(value),
                    source,
                    read_only: false,
                    config_type: key.kind as i8,
                    documentation: Some(key.doc.to_owned()),
                    sensitive: false,
                }
            })
            .collect();
        // A mirror says so, read-only: a cluster link on the other side never mirrors it
        // back (active-active links would loop).
        if let Some(m) = record.mirror.as_ref().filter(|m| m.is_mirroring()) {
            entries.push(ConfigEntry {
                name: MIRROR_CONFIG.to_owned(),
                value: Some(format!("{}/{}", m.link, m.source_topic)),
                source: ConfigSource::DynamicTopic,
                read_only: true,
                config_type: ConfigType::String as i8,
                documentation: Some(
                    "The cluster link and source topic this mirror topic follows (read-only)."
                        .to_owned(),
                ),
                sensitive: false,
            });
        }
        Ok(entries)
    }

    /// The broker's static configs.
    pub(crate) fn broker_configs(&self) -> Vec<ConfigEntry> {
        self.config
            .describe()
            .into_iter()
            .map(|(name, value, explicit, doc)| ConfigEntry {
                sensitive: crate::config::is_sensitive(&name),
                value: (!crate::config::is_sensitive(&name)).then_some(value),
                name,
                source: if explicit {
                    ConfigSource::StaticBroker
                } else {
                    ConfigSource::Default
                },
                read_only: true,
                config_type: ConfigType::String as i8,
                documentation: Some(doc.to_owned()),
            })
            .collect()
    }

    /// AlterConfigs: a topic's overrides replaced.
    pub(crate) fn replace_topic_configs(
        &self,
        name: String,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.update_topic_configs(name, validate_only, |overrides| {
            *overrides = configs;
            Ok(())
        })
    }

    /// IncrementalAlterConfigs.
    pub(crate) fn alter_topic_configs(
        &self,
        name: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send {
        self.update_topic_configs(name, validate_only, |overrides| {
            apply_config_ops(overrides, ops)
        })
    }

    /// Applies `change` to a topic's overrides, validates the result and commits it.
    pub(crate) async fn update_topic_configs(
        &self,
        name: String,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), BrokerError>,
    ) -> Result<(), BrokerError> {
        let mut overrides = self
            .metadata
            .image()
            .topic(&name)
            .map(|t| t.configs.clone())
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        change(&mut overrides)?;
        effective_config(&self.config, &overrides)?;
        if validate_only {
            return Ok(());
        }
        self.admin(AdminRequest::SetTopicConfigs {
            name,
            configs: overrides,
        })
        .await
        .map(|_| ())
    }

    /// IncrementalAlterConfigs on a BROKER resource: the dynamic replication throttle rates,
    /// for broker `resource` or (empty) the cluster default.
    pub(crate) async fn alter_broker_configs(
        &self,
        resource: String,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let broker = if resource.is_empty() {
            None
        } else {
            let id: i32 = resource.parse().map_err(|_| {
                BrokerError::InvalidRequest(format!("'{resource}' is not a broker id"))
            })?;
            if !self.metadata.image().brokers.contains_key(&id) {
                return Err(BrokerError::InvalidRequest(format!(
                    "broker {id} is not registered"
                )));
            }
            Some(id)
        };
        let mut changes = BTreeMap::new();
        for op in ops {
            let (name, value) = match op {
                ConfigOp::Set(name, value) => (name, Some(value)),
                ConfigOp::Delete(name) => (name, None),
                ConfigOp::Append(name, _) | ConfigOp::Subtract(name, _) => {
                    return Err(BrokerError::InvalidRequest(format!(
                        "'{name}' is not a list: only SET and DELETE apply"
                    )));
                }
            };
            if !DYNAMIC_BROKER_CONFIGS.contains(&name.as_str()) {
                return Err(BrokerError::InvalidConfig(format!(
                    "'{name}' cannot be changed without a restart; the dynamic broker configs \
                     are {}",
                    DYNAMIC_BROKER_CONFIGS.join(", ")
                )));
            }
            if let Some(v) = &value
                && v.trim().parse::<u64>().is_err()
            {
                return Err(BrokerError::InvalidConfig(format!(
                    "{name}={v} is not a rate in bytes per second"
                )));
            }
            changes.insert(name, value);
        }
        if validate_only {
            return Ok(());
        }
        self.admin(AdminRequest::SetBrokerConfigs { broker, changes })
            .await
            .map(|_| ())
    }
}

/// Broker configs that change without a restart (IncrementalAlterConfigs), in bytes/s.
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// A dynamic broker rate as set for `broker`, else as the cluster default; `None` when unset
/// (unlimited).
pub fn dynamic_rate(
    image: &strata_controller::MetadataImage,
    broker: i32,
    name: &str,
) -> Option<u64> {
    image
        .broker_configs
        .get(&broker)
        .and_then(|c| c.get(name))
        .or_else(|| image.cluster_configs.get(name))
        .and_then(|v| v.trim().parse().ok())
}
