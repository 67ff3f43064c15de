//! Broker configuration: Kafka's property names, from a TOML file and command-line overrides
//! (`--set key=value` and the flags that stand for keys), applied in that order.
//!
//! Unknown names are refused, naming the key, where it was given and the closest known name,
//! so a typo never silently falls back to a default; every invalid value is reported with its
//! key as the user wrote it and its origin (file and line, or flag).

mod keys;
mod listeners;
mod security;
pub mod source;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::group::consumer::{ConsumerGroupConfig, MigrationPolicy};
use crate::group::{CoordinatorConfig, GroupConfig};
use crate::log::config::TOPIC_CONFIGS;
pub use keys::BROKER_KEYS;
pub use listeners::parse_voters;
use listeners::{parse_listeners, parse_roles};
pub use security::{AdminApi, BootstrapUsers, InterBrokerClient, KafkaListener, is_sensitive};
pub use source::{Origin, Override, Setting};

/// A configuration problem, with the key or file it concerns and where it was given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} line {line} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where the parser stopped.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key Strata does not know.
    #[error(
        "unknown config '{key}' ({origin}){hint}",
        hint = suggestion.as_ref().map_or(String::new(), |s| format!("; did you mean '{s}'?"))
    )]
    UnknownKey {
        /// The key.
        key: String,
        /// Where it was given.
        origin: Origin,
        /// The closest known key, if one is close.
        suggestion: Option<String>,
    },
    /// A value that does not parse or is out of range.
    #[error("invalid {key} ({origin}): {message}")]
    Invalid {
        /// The key.
        key: String,
        /// Where it was given (`default` when it was not).
        origin: Origin,
        /// What is wrong.
        message: String,
    },
}

/// The settings given, with the defaults of those that were not.
struct Settings<'a> {
    entries: &'a BTreeMap<String, Setting>,
}

impl Settings<'_> {
    /// The value of `key`, or its default.
    fn get(&self, key: &str) -> String {
        self.entries.get(key).map_or_else(
            || {
                BROKER_KEYS
                    .iter()
                    .find(|(k, _, _)| *k == key)
                    .map_or(String::new(), |(_, d, _)| (*d).to_owned())
            },
            |s| s.value.clone(),
        )
    }

    /// An error about `key`, naming where it was set.
    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.to_owned(),
            origin: self
                .entries
                .get(key)
                .map_or(Origin::Default, |s| s.origin.clone()),
            message: message.into(),
        }
    }

    fn parse(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
        let raw = self.get(key);
        let value: i64 = raw
            .trim()
            .parse()
            .map_err(|_| self.invalid(key, format!("'{raw}' is not a number")))?;
        if !range.contains(&value) {
            return Err(self.invalid(
                key,
                format!("{value} is outside {}..={}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }

    fn millis(&self, key: &str) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(
            self.parse(key, 0..=i32::MAX as i64)? as u64
        ))
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key).trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(self.invalid(key, format!("'{other}' is not true or false"))),
        }
    }
}

/// Tiered storage settings (`remote.log.*`).
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// `remote.log.storage.url` (resolved: a directory by default).
    pub url: String,
    /// `remote.log.manager.task.interval.ms`.
    pub interval: Duration,
    /// `remote.log.manager.copier.thread.pool.size`.
    pub concurrency: usize,
    /// `remote.log.max.lag.ms` (`None`: only closed segments are uploaded).
    pub max_lag: Option<Duration>,
    /// `remote.log.manager.copy.max.bytes.per.second` (`None`: unlimited).
    pub bytes_per_second: Option<u64>,
    /// `remote.log.chunk.bytes`.
    pub chunk_bytes: usize,
    /// `remote.log.chunk.compression.level`.
    pub compression_level: i32,
    /// `remote.log.chunk.cache.bytes`.
    pub cache_bytes: u64,
    /// `remote.log.chunk.memory.bytes`.
    pub memory_bytes: u64,
    /// `remote.log.restore.enable`.
    pub restore: bool,
    /// `remote.log.storage.timeout.ms`.
    pub store_timeout: Duration,
}

/// The broker's effective configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `log.dirs` (one directory).
    pub data_dir: PathBuf,
    /// `process.roles`: whether this process is a broker.
    pub broker_role: bool,
    /// `process.roles`: whether this process is a controller (a voter of the metadata quorum).
    pub controller_role: bool,
    /// `listeners`: the Kafka listeners with their security, the inter-broker listener
    /// (`inter.broker.listener.name`, by default the first) first.
    pub kafka_listeners: Vec<KafkaListener>,
    /// `listeners` (`CONTROLLER://`): where the controller listener binds.
    pub controller_listener: SocketAddr,
    /// `listeners` (`ADMIN://`): where the admin HTTP API binds.
    pub admin_listener: SocketAddr,
    /// `controller.quorum.voters`: voter id → controller address (empty: this node alone).
    pub voters: BTreeMap<u64, String>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max: Duration,
    /// How often leadership returns to preferred replicas (`auto.leader.rebalance.enable`,
    /// `leader.imbalance.check.interval.seconds`); `None`: never.
    pub leader_rebalance: Option<Duration>,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_percent: u32,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `metadata.log.max.snapshot.interval.entries`.
    pub snapshot_every: u64,
    /// `remote.log.*`: tiered storage, `None` when disabled.
    pub remote: Option<RemoteConfig>,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_bytes: u64,
    /// `advertised.listeners` of the inter-broker listener: where other nodes, and this node's
    /// own clients, reach this broker.
    pub advertised: (String, u16),
    /// `ssl.handshake.timeout.ms`.
    pub tls_handshake_timeout: Duration,
    /// The controller listener's mutual TLS (CONTROLLER:SSL): its settings, and the node's
    /// keystore and truststore files, which it also connects to controllers with.
    pub controller_tls: Option<(strata_api::security::TlsSettings, PathBuf, PathBuf)>,
    /// How this broker connects to the others: the inter-broker listener's client properties
    /// (`sasl.mechanism.inter.broker.protocol`, `listener.name.<l>.<mechanism>.sasl.jaas.config`).
    pub inter_broker_client: InterBrokerClient,
    /// The admin HTTP API's https, authentication and roles.
    pub admin_api: security::AdminApi,
    /// SCRAM users a new cluster starts with (`bootstrap.scram.users.file`): read only when
    /// this node's controller starts with no metadata, so the file may go once it has.
    pub bootstrap_users_file: Option<PathBuf>,
    /// `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`: `None`
    /// when no authorizer is configured (everything is allowed).
    pub authorizer: Option<strata_api::security::acl::AuthorizerConfig>,
    /// `cluster.id`, if fixed by configuration.
    pub cluster_id: Option<String>,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `transaction.partition.verification.enable` (KIP-890).
    pub txn_partition_verification: bool,
    /// `metrics.per.partition`: `/metrics` has series per partition, not only per topic.
    pub metrics_per_partition: bool,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `socket.request.max.bytes`.
    pub max_request_bytes: usize,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: u64,
    /// `queued.max.request.bytes`.
    pub queued_max_request_bytes: usize,
    /// `request.receive.timeout.ms`.
    pub request_receive_timeout: Duration,
    /// `connections.max.idle.ms`.
    pub connections_max_idle: Duration,
    /// `max.connections` (`None`: half the file descriptor limit).
    pub max_connections: Option<usize>,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: usize,
    /// `remote.fetch.max.wait.ms`.
    pub remote_fetch_max_wait: Duration,
    /// `max.incremental.fetch.session.cache.slots`.
    pub fetch_session_slots: usize,
    /// `min.incremental.fetch.session.eviction.ms`.
    pub fetch_session_eviction: Duration,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`.
    pub flush_check_interval_ms: u64,
    /// `log.cleaner.enable`.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`.
    pub cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`.
    pub cleaner_buffer_bytes: usize,
    /// Consumer group coordinator settings (`group.*`, `offsets.*`).
    pub coordinator: CoordinatorConfig,
    /// Transaction coordinator settings (`transaction.*`).
    pub transactions: crate::txn::TxnConfig,
    /// Topic-config defaults set at broker level, under topic-level names.
    pub topic_defaults: BTreeMap<String, String>,
    /// Every key set explicitly, for DescribeConfigs.
    pub explicit: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::from_entries(BTreeMap::new()).expect("defaults are valid")
    }
}

impl BrokerConfig {
    /// Reads a TOML file and applies `overrides` on top.
    pub fn load(file: Option<&Path>, overrides: &[Override]) -> Result<Self, ConfigError> {
        let mut entries = match file {
            Some(path) => source::read_file(path)?,
            None => BTreeMap::new(),
        };
        for o in overrides {
            entries.insert(
                o.key.clone(),
                Setting {
                    value: o.value.clone(),
                    origin: Origin::Flag(o.flag.clone()),
                },
            );
        }
        Self::from_settings(entries)
    }

    /// Builds the config from flat Kafka-named entries (as if each was given with `--set`).
    pub fn from_entries(entries: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_settings(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let origin = Origin::Flag(format!("--set {key}={value}"));
                    (key, Setting { value, origin })
                })
                .collect(),
        )
    }

    /// Builds the config from flat Kafka-named settings.
    pub fn from_settings(entries: BTreeMap<String, Setting>) -> Result<Self, ConfigError> {
        let settings = Settings { entries: &entries };
        let mut topic_defaults = BTreeMap::new();
        for (key, setting) in &entries {
            if BROKER_KEYS.iter().any(|(k, _, _)| k == key)
                || security::per_listener_key(key).is_some()
            {
                continue;
            }
            let Some(topic_key) = broker_to_topic_key(key) else {
                let known = BROKER_KEYS
                    .iter()
                    .map(|(k, _, _)| *k)
                    .chain(TOPIC_CONFIGS.iter().map(|k| k.broker_name));
                return Err(ConfigError::UnknownKey {
                    key: key.clone(),
                    origin: setting.origin.clone(),
                    suggestion: source::did_you_mean(key, known).map(str::to_owned),
                });
            };
            // Each alone, so that an error names the key the user wrote.
            let single = BTreeMap::from([(topic_key.to_owned(), setting.value.clone())]);
            crate::log::LogConfig::from_map(&single).map_err(|e| {
                let message = e.0.replace(&format!("{topic_key}="), "");
                settings.invalid(key, message)
            })?;
            topic_defaults.insert(topic_key.to_owned(), setting.value.clone());
        }
        crate::log::LogConfig::from_map(&topic_defaults)
            .map_err(|e| settings.invalid("log.*", e.0))?;
        let get = |key: &str| settings.get(key);
        let listeners =
            parse_listeners(&get("listeners")).map_err(|e| settings.invalid("listeners", e))?;
        let (controller_listener, admin_listener) = (listeners.controller, listeners.admin);
        let (broker_role, controller_role) =
            parse_roles(&get("process.roles")).map_err(|e| settings.invalid("process.roles", e))?;
        let kafka_listeners = security::kafka_listeners(&settings, &listeners.kafka)?;
        // Only a controller-only node, which serves no Kafka clients, may have none: it
        // advertises nothing and connects to no broker.
        let (advertised, inter_broker_client) = match kafka_listeners.first() {
            Some(first) => (
                first.advertised.clone(),
                security::inter_broker_client(&settings, first)?,
            ),
            None if !broker_role => (
                (controller_listener.ip().to_string(), 0),
                security::InterBrokerClient(BTreeMap::new()),
            ),
            None => {
                return Err(settings.invalid(
                    "listeners",
                    "a broker needs a Kafka listener (PLAINTEXT://host:port, SSL://…); only a \
                     controller-only node (process.roles = \"controller\") may have none",
                ));
            }
        };
        let voters = parse_voters(&get("controller.quorum.voters"))
            .map_err(|e| settings.invalid("controller.quorum.voters", e))?;
        if !controller_role && voters.is_empty() {
            return Err(settings.invalid(
                "controller.quorum.voters",
                "a broker without the controller role needs the voters to reach",
            ));
        }
        let cluster_id = Some(get("cluster.id")).filter(|id| !id.is_empty());
        let node_id = settings.parse("node.id", 0..=i32::MAX as i64)? as i32;
        if controller_role && !voters.is_empty() && !voters.contains_key(&(node_id as u64)) {
            return Err(settings.invalid(
                "controller.quorum.voters",
                format!("node {node_id} has the controller role but is not a voter"),
            ));
        }
        let rack = Some(get("broker.rack")).filter(|r| !r.is_empty());
        let data_dir = PathBuf::from(get("log.dirs"));
        let remote = if settings.bool("remote.log.storage.system.enable")? {
            let url = get("remote.log.storage.url");
            let rate = settings.parse(
                "remote.log.manager.copy.max.bytes.per.second",
                -1..=i64::MAX,
            )?;
            Some(RemoteConfig {
                url: if url.is_empty() {
                    data_dir.join("objects").display().to_string()
                } else {
                    url
                },
                interval: settings
                    .millis("remote.log.manager.task.interval.ms")?
                    .max(Duration::from_millis(10)),
                concurrency: settings.parse("remote.log.manager.copier.thread.pool.size", 1..=64)?
                    as usize,
                max_lag: {
                    let ms = settings.parse("remote.log.max.lag.ms", -1..=i64::MAX)?;
                    (ms >= 0).then(|| Duration::from_millis(ms.max(100) as u64))
                },
                bytes_per_second: (rate > 0).then_some(rate as u64),
                chunk_bytes: settings.parse("remote.log.chunk.bytes", 4096..=(256 << 20))? as usize,
                compression_level: settings.parse("remote.log.chunk.compression.level", 1..=19)?
                    as i32,
                cache_bytes: settings.parse("remote.log.chunk.cache.bytes", 1 << 20..=i64::MAX)?
                    as u64,
                memory_bytes: settings.parse("remote.log.chunk.memory.bytes", 1 << 20..=i64::MAX)?
                    as u64,
                restore: settings.bool("remote.log.restore.enable")?,
                store_timeout: settings
                    .millis("remote.log.storage.timeout.ms")?
                    .max(Duration::from_millis(100)),
            })
        } else {
            None
        };
        let max_request_bytes =
            settings.parse("socket.request.max.bytes", 1024..=i32::MAX as i64)? as usize;
        let queued_max_request_bytes =
            settings.parse("queued.max.request.bytes", 1 << 20..=i64::MAX)? as usize;
        if max_request_bytes > strata_api::memory::largest_admissible(queued_max_request_bytes) {
            return Err(settings.invalid(
                "queued.max.request.bytes",
                format!(
                    "{queued_max_request_bytes} cannot hold a request of socket.request.max.bytes \
                     ({max_request_bytes}): large requests may use three quarters of it"
                ),
            ));
        }
        Ok(Self {
            node_id,
            data_dir,
            remote,
            broker_role,
            controller_role,
            kafka_listeners,
            controller_listener,
            admin_listener,
            voters,
            rack,
            heartbeat_interval: settings
                .millis("broker.heartbeat.interval.ms")?
                .max(Duration::from_millis(10)),
            replica_lag_time_max: settings
                .millis("replica.lag.time.max.ms")?
                .max(Duration::from_millis(100)),
            leader_rebalance: settings.bool("auto.leader.rebalance.enable")?.then_some(
                Duration::from_secs(
                    settings.parse("leader.imbalance.check.interval.seconds", 1..=i64::MAX)? as u64,
                ),
            ),
            leader_imbalance_percent: settings
                .parse("leader.imbalance.per.broker.percentage", 0..=100)?
                as u32,
            session_timeout: settings
                .millis("broker.session.timeout.ms")?
                .max(Duration::from_millis(100)),
            snapshot_every: settings
                .parse("metadata.log.max.snapshot.interval.entries", 1..=i64::MAX)?
                as u64,
            snapshot_bytes: settings.parse(
                "metadata.log.max.record.bytes.between.snapshots",
                1024..=i64::MAX,
            )? as u64,
            advertised,
            authorizer: security::authorizer(&settings)?,
            admin_api: security::admin_api(&settings, Some(&inter_broker_client))?,
            bootstrap_users_file: Some(get("bootstrap.scram.users.file"))
                .filter(|p| !p.trim().is_empty())
                .map(|p| PathBuf::from(p.trim())),
            inter_broker_client,
            controller_tls: security::controller_tls(&settings)?,
            tls_handshake_timeout: settings
                .millis("ssl.handshake.timeout.ms")?
                .max(Duration::from_millis(100)),
            cluster_id,
            auto_create_topics: settings.bool("auto.create.topics.enable")?,
            txn_partition_verification: settings
                .bool("transaction.partition.verification.enable")?,
            metrics_per_partition: settings.bool("metrics.per.partition")?,
            num_partitions: settings.parse("num.partitions", 1..=1_000_000)? as i32,
            default_replication_factor: settings
                .parse("default.replication.factor", 1..=i16::MAX as i64)?
                as i16,
            fetch_max_bytes: settings.parse("fetch.max.bytes", 1024..=i32::MAX as i64)? as u64,
            max_request_bytes,
            queued_max_request_bytes,
            request_receive_timeout: settings
                .millis("request.receive.timeout.ms")?
                .max(Duration::from_millis(1)),
            connections_max_idle: settings
                .millis("connections.max.idle.ms")?
                .max(Duration::from_millis(1)),
            max_connections: match get("max.connections").trim() {
                "" => None,
                _ => Some(settings.parse("max.connections", 1..=i32::MAX as i64)? as usize),
            },
            max_connections_per_ip: settings.parse("max.connections.per.ip", 1..=i32::MAX as i64)?
                as usize,
            remote_fetch_max_wait: settings
                .millis("remote.fetch.max.wait.ms")?
                .max(Duration::from_millis(1)),
            fetch_session_slots: settings.parse(
                "max.incremental.fetch.session.cache.slots",
                0..=i32::MAX as i64,
            )? as usize,
            fetch_session_eviction: settings.millis("min.incremental.fetch.session.eviction.ms")?,
            retention_check_interval_ms: settings
                .parse("log.retention.check.interval.ms", 1..=i64::MAX)?
                as u64,
            flush_check_interval_ms: settings
                .parse("log.flush.scheduler.interval.ms", 1..=i64::MAX)?
                as u64,
            cleaner_enable: settings.bool("log.cleaner.enable")?,
            cleaner_backoff_ms: settings.parse("log.cleaner.backoff.ms", 1..=i64::MAX)? as u64,
            cleaner_buffer_bytes: settings
                .parse("log.cleaner.dedupe.buffer.size", 1 << 20..=i64::MAX)?
                as usize,
            coordinator: CoordinatorConfig {
                group: GroupConfig {
                    min_session_timeout: settings.millis("group.min.session.timeout.ms")?,
                    max_session_timeout: settings.millis("group.max.session.timeout.ms")?,
                    initial_rebalance_delay: settings.millis("group.initial.rebalance.delay.ms")?,
                    max_size: settings.parse("group.max.size", 1..=i32::MAX as i64)? as usize,
                },
                consumer: ConsumerGroupConfig {
                    heartbeat_interval: settings
                        .millis("group.consumer.heartbeat.interval.ms")?
                        .max(Duration::from_millis(1)),
                    session_timeout: settings
                        .millis("group.consumer.session.timeout.ms")?
                        .max(Duration::from_millis(1)),
                    max_size: settings.parse("group.consumer.max.size", 1..=i32::MAX as i64)?
                        as usize,
                    migration: {
                        let raw = settings.get("group.consumer.migration.policy");
                        MigrationPolicy::parse(&raw).ok_or_else(|| {
                            settings.invalid(
                                "group.consumer.migration.policy",
                                format!(
                                    "'{raw}' is not disabled, upgrade, downgrade or bidirectional"
                                ),
                            )
                        })?
                    },
                },
                offsets_partitions: settings.parse("offsets.topic.num.partitions", 1..=1000)?
                    as i32,
                offsets_replication_factor: settings
                    .parse("offsets.topic.replication.factor", 1..=i16::MAX as i64)?
                    as i16,
                metadata_max_bytes: settings
                    .parse("offset.metadata.max.bytes", 0..=i32::MAX as i64)?
                    as usize,
                offsets_retention: Duration::from_secs(
                    60 * settings.parse("offsets.retention.minutes", 1..=i32::MAX as i64)? as u64,
                ),
                offsets_retention_check: settings
                    .millis("offsets.retention.check.interval.ms")?
                    .max(Duration::from_millis(1)),
            },
            transactions: crate::txn::TxnConfig {
                partitions: settings.parse("transaction.state.log.num.partitions", 1..=1000)?
                    as i32,
                replication_factor: settings.parse(
                    "transaction.state.log.replication.factor",
                    1..=i16::MAX as i64,
                )? as i16,
                min_isr: settings.parse("transaction.state.log.min.isr", 1..=i16::MAX as i64)?
                    as i16,
                max_timeout_ms: settings.parse("transaction.max.timeout.ms", 1..=i32::MAX as i64)?
                    as i32,
                abort_check: settings
                    .millis("transaction.abort.timed.out.transaction.cleanup.interval.ms")?
                    .max(Duration::from_millis(10)),
                id_expiration: settings.millis("transactional.id.expiration.ms")?,
            },
            topic_defaults,
            explicit: entries
                .iter()
                .map(|(k, s)| (k.clone(), s.value.clone()))
                .collect(),
        })
    }

    /// The group coordinator's settings.
    pub fn coordinator(&self) -> CoordinatorConfig {
        self.coordinator
    }

    /// Every broker-level key with its effective value, and whether it was set explicitly.
    pub fn describe(&self) -> Vec<(String, String, bool, &'static str)> {
        let mut out = Vec::new();
        for (key, default, doc) in BROKER_KEYS {
            let value = match self.explicit.get(*key) {
                Some(value) if is_sensitive(key) && !value.is_empty() => "(hidden)".to_owned(),
                Some(value) => value.clone(),
                None => (*default).to_owned(),
            };
            out.push((
                (*key).to_owned(),
                value,
                self.explicit.contains_key(*key),
                *doc,
            ));
        }
        for topic_key in TOPIC_CONFIGS {
            let value = self
                .topic_defaults
                .get(topic_key.name)
                .cloned()
                .unwrap_or_else(|| topic_key.default.to_owned());
            out.push((
                topic_key.broker_name.to_owned(),
                value,
                self.explicit.contains_key(topic_key.broker_name),
                topic_key.doc,
            ));
        }
        out
    }
}

/// The topic-level name of a broker-level topic default (`log.retention.ms` → `retention.ms`).
fn broker_to_topic_key(key: &str) -> Option<&'static str> {
    TOPIC_CONFIGS
        .iter()
        .find(|k| k.broker_name == key)
        .map(|k| k.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_tables_flatten_to_kafka_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "listeners = \"127.0.0.1:19092\"\nadvertised.listeners = \"PLAINTEXT://broker.example:9092\"\n[log]\nretention.ms = 1000\nsegment.bytes = 4096\n",
        )
        .unwrap();
        let config =
            BrokerConfig::load(Some(&path), &[Override::set("num.partitions", "3")]).unwrap();
        assert_eq!(config.kafka_listeners[0].bind.port(), 19092);
        assert_eq!(config.advertised, ("broker.example".to_owned(), 9092));
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.topic_defaults.get("retention.ms").unwrap(), "1000");
        assert_eq!(config.topic_defaults.get("segment.bytes").unwrap(), "4096");
    }

    #[test]
    fn only_a_controller_only_node_may_have_no_kafka_listener() {
        let load = |roles: &str| {
            BrokerConfig::load(
                None,
                &[
                    Override::set("process.roles", roles),
                    Override::set("node.id", "1"),
                    Override::set(
                        "listeners",
                        "CONTROLLER://0.0.0.0:9093,ADMIN://0.0.0.0:9644",
                    ),
                    Override::set("controller.quorum.voters", "1@10.0.1.10:9093"),
                ],
            )
        };
        let controller = load("controller").unwrap();
        assert!(controller.kafka_listeners.is_empty());
        assert_eq!(controller.admin_listener.port(), 9644);
        let broker = load("broker,controller").unwrap_err().to_string();
        assert!(
            broker.contains("a broker needs a Kafka listener"),
            "{broker}"
        );
    }

    #[test]
    fn brokers_log_in_to_each_other_as_the_listener_says() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "broker:pw\n").unwrap();
        let users = format!("sasl.plain.users.file={}", users.display());
        let jaas = "listener.name.internal.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"pw\";";
        let settings = |extra: &[&str]| {
            let mut o = vec![
                Override::set("listeners", "INTERNAL://127.0.0.1:0"),
                Override::set("listener.security.protocol.map", "INTERNAL:SASL_PLAINTEXT"),
                Override::set("sasl.enabled.mechanisms", "PLAIN"),
            ];
            let (k, v) = users.split_once('=').unwrap();
            o.push(Override::set(k, v));
            for e in extra {
                let (k, v) = e.split_once('=').unwrap();
                o.push(Override::set(k, v));
            }
            BrokerConfig::load(None, &o)
        };
        let config = settings(&[jaas]).unwrap();
        let props = &config.inter_broker_client.0;
        assert_eq!(props["security.protocol"], "SASL_PLAINTEXT");
        assert_eq!(props["sasl.mechanism"], "PLAIN");
        assert!(!format!("{:?}", config.inter_broker_client).contains("pw"));
        let missing = settings(&[]).unwrap_err().to_string();
        assert!(
            missing.contains("listener.name.internal.plain.sasl.jaas.config"),
            "{missing}"
        );
    }

    #[test]
    fn the_admin_api_is_secured_as_its_keys_say() {
        let load = |pairs: &[(&str, &str)]| {
            let o: Vec<Override> = pairs.iter().map(|(k, v)| Override::set(k, v)).collect();
            BrokerConfig::load(None, &o)
        };
        let open = load(&[]).unwrap();
        assert!(!open.admin_api.auth.enabled() && open.admin_api.tls.is_none());
        let basic = load(&[
            ("admin.api.authentication", "basic"),
            ("super.users", "User:root;User:ops"),
        ])
        .unwrap();
        assert!(basic.admin_api.auth.basic && basic.admin_api.auth.tokens.is_none());
        assert!(basic.admin_api.auth.admin_principals.contains("User:ops"));
        let named = load(&[
            ("admin.api.authentication", "basic"),
            ("super.users", "User:root"),
            ("admin.api.admin.principals", "User:alice"),
        ])
        .unwrap();
        let admins = &named.admin_api.auth.admin_principals;
        assert!(admins.contains("User:alice") && !admins.contains("User:root"));
        for (pairs, wanted) in [
            (
                &[("admin.api.authentication", "digest")][..],
                "'digest' is not a method",
            ),
            (
                &[("admin.api.authentication", "basic,token")][..],
                "invalid admin.api.tokens.file",
            ),
            (
                &[
                    ("admin.api.tokens.file", "/nonexistent"),
                    ("admin.api.authentication", "token"),
                ][..],
                "cannot read /nonexistent",
            ),
            (
                &[(
                    "listener.security.protocol.map",
                    "PLAINTEXT:PLAINTEXT,ADMIN:SASL_SSL",
                )][..],
                "the ADMIN listener is PLAINTEXT (http) or SSL (https)",
            ),
            (
                &[("admin.api.admin.principals", "alice")][..],
                "invalid admin.api.admin.principals",
            ),
        ] {
            let e = load(pairs).unwrap_err().to_string();
            assert!(e.contains(wanted), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn bootstrap_users_are_read_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(&file, "# users\nbroker:s3cret:with:colons\n\nalice:pw\n").unwrap();
        let users = BootstrapUsers::load(&file).unwrap();
        assert_eq!(users.0[0], ("broker".into(), "s3cret:with:colons".into()));
        assert_eq!(users.0.len(), 2);
        assert!(!format!("{users:?}").contains("s3cret"));
        std::fs::write(&file, "broker:pw\nnopassword\n").unwrap();
        let e = BootstrapUsers::load(&file).unwrap_err();
        assert!(e.ends_with("line 2: expected name:password"), "{e}");
    }

    #[test]
    fn secrets_are_never_shown() {
        let config =
            BrokerConfig::load(None, &[Override::set("ssl.keystore.key", "secret")]).unwrap();
        let described = config.describe();
        let (_, value, _, _) = described
            .iter()
            .find(|(k, _, _, _)| k == "ssl.keystore.key")
            .unwrap();
        assert_eq!(value, "(hidden)");
        assert!(is_sensitive("listener.name.external.ssl.key.password"));
        assert!(!is_sensitive("ssl.keystore.location"));
    }

    fn error(overrides: &[Override]) -> String {
        BrokerConfig::load(None, overrides).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key_as_written_and_where() {
        assert_eq!(
            error(&[Override::set("log.retention.ms", "-5")]),
            "invalid log.retention.ms (--set log.retention.ms=-5): -5 is below the minimum -1"
        );
        assert_eq!(
            error(&[Override::set("log.retention.msec", "1")]),
            "unknown config 'log.retention.msec' (--set log.retention.msec=1); \
             did you mean 'log.retention.ms'?"
        );
        assert_eq!(
            error(&[Override::set("num.partitions", "zero")]),
            "invalid num.partitions (--set num.partitions=zero): 'zero' is not a number"
        );
        let message = error(&[Override::flag(
            "--listen",
            "listeners",
            "PLAINTEXT://1.2.3.4",
        )]);
        assert!(
            message.starts_with("invalid listeners (--listen PLAINTEXT://1.2.3.4): ")
                && message.contains("host:port"),
            "{message}"
        );
        let message = error(&[
            Override::set("listeners", "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"),
            Override::set(
                "listener.name.ssl.ssl.keystore.location",
                "/nonexistent.pem",
            ),
        ]);
        assert!(
            message.starts_with("invalid listener.name.ssl.ssl.keystore.location (--set ")
                && message.contains("cannot read /nonexistent.pem"),
            "{message}"
        );
        let message = error(&[
            Override::set("listeners", "PLAINTEXT://127.0.0.1:0"),
            Override::set("listener.name.other.ssl.client.auth", "required"),
        ]);
        assert!(
            message.contains("OTHER is not a Kafka listener"),
            "{message}"
        );
        let message = error(&[Override::set("listeners", "SSL://127.0.0.1:0")]);
        assert!(message.contains("needs a certificate"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "node.id = 1\n\n[log]\nretention.ms = \"soon\"\n").unwrap();
        let message = BrokerConfig::load(Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!(
                "invalid log.retention.ms ({} line 4): soon is not a number",
                path.display()
            )
        );
        std::fs::write(&path, "num.partition = 3\n").unwrap();
        let message = BrokerConfig::load(Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 1") && message.contains("did you mean 'num.partitions'"),
            "{message}"
        );
    }
}
