//! Broker configuration: Kafka's property names, from a TOML file and command-line overrides.
//!
//! The TOML file may write names flat and quoted (`"log.retention.ms" = 1000`), as dotted keys
//! (`log.retention.ms = 1000`) or in tables (`[log] retention.ms = 1000`): all are flattened to
//! Kafka's dotted names. Unknown names are refused, naming the key, so a typo never silently
//! falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::group::{CoordinatorConfig, GroupConfig};
use crate::log::config::TOPIC_CONFIGS;

/// A configuration problem, with the key or file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key Strata does not know.
    #[error("unknown config '{0}'")]
    UnknownKey(String),
    /// A value that does not parse or is out of range.
    #[error("invalid value for '{key}': {message}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Broker-level keys besides the topic defaults (`log.*`, `message.max.bytes`, ...).
const BROKER_KEYS: &[(&str, &str, &str)] = &[
    (
        "node.id",
        "1",
        "this node's id (broker id and controller id)",
    ),
    (
        "process.roles",
        "broker,controller",
        "broker, controller, or both (combined mode)",
    ),
    ("log.dirs", "./strata-data", "the data directory"),
    (
        "listeners",
        "PLAINTEXT://127.0.0.1:9092",
        "Kafka listener (PLAINTEXT://host:port) and controller listener (CONTROLLER://host:port; \
         defaults to port 9093 of the Kafka listener's host, or port 0 if that one is 0)",
    ),
    (
        "controller.quorum.voters",
        "",
        "every voter as id@host:port, comma-separated; empty: this node alone (needs the controller role)",
    ),
    (
        "broker.rack",
        "",
        "rack of this broker, for rack-aware replica placement",
    ),
    (
        "broker.heartbeat.interval.ms",
        "2000",
        "how often a broker heartbeats to the active controller",
    ),
    (
        "broker.session.timeout.ms",
        "9000",
        "a broker without a heartbeat for this long is fenced (controller setting)",
    ),
    (
        "remote.log.storage.system.enable",
        "true",
        "tiered storage on this broker (topics opt in or out with remote.storage.enable)",
    ),
    (
        "remote.log.storage.url",
        "",
        "object store for closed segments: s3://bucket/prefix (AWS environment) or a directory; empty: <log.dirs>/objects",
    ),
    (
        "remote.log.restore.enable",
        "false",
        "at startup, recreate the topics the object store holds for this cluster id but the metadata lacks",
    ),
    (
        "remote.log.manager.task.interval.ms",
        "30000",
        "how often closed segments are looked for and uploaded",
    ),
    (
        "remote.log.manager.copier.thread.pool.size",
        "2",
        "partitions uploading at once",
    ),
    (
        "remote.log.manager.copy.max.bytes.per.second",
        "-1",
        "upload bandwidth limit; -1 = unlimited",
    ),
    (
        "remote.log.chunk.bytes",
        "4194304",
        "bytes of whole batches per independently compressed chunk",
    ),
    (
        "remote.log.chunk.compression.level",
        "3",
        "zstd level of uploaded chunks",
    ),
    (
        "remote.log.chunk.cache.bytes",
        "1073741824",
        "on-disk cache of chunks read back from the object store (compressed, as stored)",
    ),
    (
        "remote.log.chunk.memory.bytes",
        "268435456",
        "decompressed chunks held in memory for remote reads (read-ahead and just read)",
    ),
    (
        "metadata.log.max.snapshot.interval.entries",
        "20000",
        "the controller snapshots its metadata image after this many log entries",
    ),
    (
        "metadata.log.max.record.bytes.between.snapshots",
        "20971520",
        "... or once the log since the last snapshot holds this many bytes",
    ),
    (
        "advertised.listeners",
        "",
        "address sent to clients in Metadata; defaults to listeners",
    ),
    (
        "cluster.id",
        "",
        "cluster id; generated and stored on first start when empty",
    ),
    (
        "auto.create.topics.enable",
        "true",
        "create topics on Metadata requests for unknown names",
    ),
    (
        "num.partitions",
        "1",
        "partitions of auto-created topics and of CreateTopics without a count",
    ),
    (
        "default.replication.factor",
        "1",
        "replication factor when CreateTopics gives none",
    ),
    (
        "socket.request.max.bytes",
        "104857600",
        "largest request frame accepted",
    ),
    (
        "queued.max.request.bytes",
        "536870912",
        "bytes of requests being received or queued, broker-wide; a quarter is kept for requests of at most 2 MiB",
    ),
    (
        "request.receive.timeout.ms",
        "30000",
        "a request must arrive within this long of its first byte, or the connection is closed",
    ),
    (
        "connections.max.idle.ms",
        "600000",
        "a connection with nothing received and nothing in flight for this long is closed",
    ),
    (
        "max.connections",
        "",
        "Kafka connections served at once, more wait to be accepted; empty: half the file descriptor limit",
    ),
    (
        "max.connections.per.ip",
        "2147483647",
        "Kafka connections from one address; more are closed at once",
    ),
    (
        "fetch.max.bytes",
        "57671680",
        "most bytes of records one Fetch response returns (beyond the first batch), whatever the request asks",
    ),
    (
        "log.retention.check.interval.ms",
        "300000",
        "how often retention runs",
    ),
    (
        "log.flush.scheduler.interval.ms",
        "1000",
        "how often flush.ms/flush.messages are checked",
    ),
    (
        "log.cleaner.enable",
        "true",
        "run log compaction for topics with cleanup.policy=compact",
    ),
    (
        "log.cleaner.backoff.ms",
        "15000",
        "how often the cleaner looks for logs to compact",
    ),
    (
        "log.cleaner.dedupe.buffer.size",
        "134217728",
        "memory for one compaction pass's key map; larger logs take several passes",
    ),
    (
        "group.min.session.timeout.ms",
        "6000",
        "shortest session timeout a group member may ask for",
    ),
    (
        "group.max.session.timeout.ms",
        "1800000",
        "longest session timeout a group member may ask for",
    ),
    (
        "group.initial.rebalance.delay.ms",
        "3000",
        "how long the first rebalance of an empty group waits for more members",
    ),
    (
        "group.max.size",
        "2147483647",
        "most members one group may have",
    ),
    (
        "offsets.topic.num.partitions",
        "50",
        "partitions of __consumer_offsets (fixed once it exists)",
    ),
    (
        "offset.metadata.max.bytes",
        "4096",
        "longest metadata string of a committed offset",
    ),
    (
        "offsets.retention.minutes",
        "10080",
        "how long offsets of an empty group are kept",
    ),
    (
        "offsets.retention.check.interval.ms",
        "600000",
        "how often offsets past retention are looked for",
    ),
];

/// Tiered storage settings (`remote.log.*`).
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// `remote.log.storage.url` (resolved: a directory by default).
    pub url: String,
    /// `remote.log.manager.task.interval.ms`.
    pub interval: Duration,
    /// `remote.log.manager.copier.thread.pool.size`.
    pub concurrency: usize,
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
    /// `listeners`: where the Kafka listener binds.
    pub listener: SocketAddr,
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
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `metadata.log.max.snapshot.interval.entries`.
    pub snapshot_every: u64,
    /// `remote.log.*`: tiered storage, `None` when disabled.
    pub remote: Option<RemoteConfig>,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_bytes: u64,
    /// `advertised.listeners`: host and port given to clients.
    pub advertised: (String, u16),
    /// `cluster.id`, if fixed by configuration.
    pub cluster_id: Option<String>,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
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
    /// Reads a TOML file and applies `overrides` (`key=value`) on top.
    pub fn load(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut entries = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.to_owned(),
                        message: e.message().to_owned(),
                    })?;
            flatten("", &toml::Value::Table(table), &mut entries);
        }
        for (key, value) in overrides {
            entries.insert(key.clone(), value.clone());
        }
        Self::from_entries(entries)
    }

    /// Builds the config from flat Kafka-named entries.
    pub fn from_entries(entries: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut topic_defaults = BTreeMap::new();
        for (key, value) in &entries {
            if BROKER_KEYS.iter().any(|(k, _, _)| k == key) {
                continue;
            }
            let topic_key =
                broker_to_topic_key(key).ok_or_else(|| ConfigError::UnknownKey(key.clone()))?;
            topic_defaults.insert(topic_key.to_owned(), value.clone());
        }
        crate::log::LogConfig::from_map(&topic_defaults).map_err(|e| ConfigError::Invalid {
            key: "log defaults".into(),
            message: e.0,
        })?;
        let get = |key: &str| -> String {
            entries.get(key).cloned().unwrap_or_else(|| {
                BROKER_KEYS
                    .iter()
                    .find(|(k, _, _)| *k == key)
                    .map_or(String::new(), |(_, d, _)| (*d).to_owned())
            })
        };
        let (listener, controller_listener, admin_listener) = parse_listeners(&get("listeners"))?;
        let (broker_role, controller_role) = parse_roles(&get("process.roles"))?;
        let voters = parse_voters(&get("controller.quorum.voters"))?;
        if !controller_role && voters.is_empty() {
            return Err(ConfigError::Invalid {
                key: "controller.quorum.voters".into(),
                message: "a broker without the controller role needs the voters to reach".into(),
            });
        }
        let advertised_text = get("advertised.listeners");
        let advertised = if advertised_text.is_empty() {
            (listener.ip().to_string(), listener.port())
        } else {
            let raw = strip_scheme("advertised.listeners", &advertised_text)?;
            let (host, port) = raw.rsplit_once(':').ok_or_else(|| ConfigError::Invalid {
                key: "advertised.listeners".into(),
                message: format!("'{advertised_text}' is not host:port"),
            })?;
            let port = port.parse().map_err(|_| ConfigError::Invalid {
                key: "advertised.listeners".into(),
                message: format!("'{port}' is not a port"),
            })?;
            (host.trim_matches(['[', ']']).to_owned(), port)
        };
        let cluster_id = Some(get("cluster.id")).filter(|id| !id.is_empty());
        let node_id = parse(&get, "node.id", 0..=i32::MAX as i64)? as i32;
        if controller_role && !voters.is_empty() && !voters.contains_key(&(node_id as u64)) {
            return Err(ConfigError::Invalid {
                key: "controller.quorum.voters".into(),
                message: format!("node {node_id} has the controller role but is not a voter"),
            });
        }
        let rack = Some(get("broker.rack")).filter(|r| !r.is_empty());
        let data_dir = PathBuf::from(get("log.dirs"));
        let remote = if parse_bool(&get, "remote.log.storage.system.enable")? {
            let url = get("remote.log.storage.url");
            let rate = parse(
                &get,
                "remote.log.manager.copy.max.bytes.per.second",
                -1..=i64::MAX,
            )?;
            Some(RemoteConfig {
                url: if url.is_empty() {
                    data_dir.join("objects").display().to_string()
                } else {
                    url
                },
                interval: millis(&get, "remote.log.manager.task.interval.ms")?
                    .max(Duration::from_millis(10)),
                concurrency: parse(&get, "remote.log.manager.copier.thread.pool.size", 1..=64)?
                    as usize,
                bytes_per_second: (rate > 0).then_some(rate as u64),
                chunk_bytes: parse(&get, "remote.log.chunk.bytes", 4096..=(256 << 20))? as usize,
                compression_level: parse(&get, "remote.log.chunk.compression.level", 1..=19)?
                    as i32,
                cache_bytes: parse(&get, "remote.log.chunk.cache.bytes", 1 << 20..=i64::MAX)?
                    as u64,
                memory_bytes: parse(&get, "remote.log.chunk.memory.bytes", 1 << 20..=i64::MAX)?
                    as u64,
                restore: parse_bool(&get, "remote.log.restore.enable")?,
            })
        } else {
            None
        };
        let max_request_bytes =
            parse(&get, "socket.request.max.bytes", 1024..=i32::MAX as i64)? as usize;
        let queued_max_request_bytes =
            parse(&get, "queued.max.request.bytes", 1 << 20..=i64::MAX)? as usize;
        if max_request_bytes > strata_api::memory::largest_admissible(queued_max_request_bytes) {
            return Err(ConfigError::Invalid {
                key: "queued.max.request.bytes".into(),
                message: format!(
                    "{queued_max_request_bytes} cannot hold a request of socket.request.max.bytes \
                     ({max_request_bytes}): large requests may use three quarters of it"
                ),
            });
        }
        Ok(Self {
            node_id,
            data_dir,
            remote,
            broker_role,
            controller_role,
            listener,
            controller_listener,
            admin_listener,
            voters,
            rack,
            heartbeat_interval: millis(&get, "broker.heartbeat.interval.ms")?
                .max(Duration::from_millis(10)),
            session_timeout: millis(&get, "broker.session.timeout.ms")?
                .max(Duration::from_millis(100)),
            snapshot_every: parse(
                &get,
                "metadata.log.max.snapshot.interval.entries",
                1..=i64::MAX,
            )? as u64,
            snapshot_bytes: parse(
                &get,
                "metadata.log.max.record.bytes.between.snapshots",
                1024..=i64::MAX,
            )? as u64,
            advertised,
            cluster_id,
            auto_create_topics: parse_bool(&get, "auto.create.topics.enable")?,
            num_partitions: parse(&get, "num.partitions", 1..=1_000_000)? as i32,
            default_replication_factor: parse(
                &get,
                "default.replication.factor",
                1..=i16::MAX as i64,
            )? as i16,
            fetch_max_bytes: parse(&get, "fetch.max.bytes", 1024..=i32::MAX as i64)? as u64,
            max_request_bytes,
            queued_max_request_bytes,
            request_receive_timeout: millis(&get, "request.receive.timeout.ms")?
                .max(Duration::from_millis(1)),
            connections_max_idle: millis(&get, "connections.max.idle.ms")?
                .max(Duration::from_millis(1)),
            max_connections: match get("max.connections").trim() {
                "" => None,
                _ => Some(parse(&get, "max.connections", 1..=i32::MAX as i64)? as usize),
            },
            max_connections_per_ip: parse(&get, "max.connections.per.ip", 1..=i32::MAX as i64)?
                as usize,
            retention_check_interval_ms: parse(
                &get,
                "log.retention.check.interval.ms",
                1..=i64::MAX,
            )? as u64,
            flush_check_interval_ms: parse(&get, "log.flush.scheduler.interval.ms", 1..=i64::MAX)?
                as u64,
            cleaner_enable: parse_bool(&get, "log.cleaner.enable")?,
            cleaner_backoff_ms: parse(&get, "log.cleaner.backoff.ms", 1..=i64::MAX)? as u64,
            cleaner_buffer_bytes: parse(&get, "log.cleaner.dedupe.buffer.size", 1 << 20..=i64::MAX)?
                as usize,
            coordinator: CoordinatorConfig {
                group: GroupConfig {
                    min_session_timeout: millis(&get, "group.min.session.timeout.ms")?,
                    max_session_timeout: millis(&get, "group.max.session.timeout.ms")?,
                    initial_rebalance_delay: millis(&get, "group.initial.rebalance.delay.ms")?,
                    max_size: parse(&get, "group.max.size", 1..=i32::MAX as i64)? as usize,
                },
                offsets_partitions: parse(&get, "offsets.topic.num.partitions", 1..=1000)? as i32,
                metadata_max_bytes: parse(&get, "offset.metadata.max.bytes", 0..=i32::MAX as i64)?
                    as usize,
                offsets_retention: Duration::from_secs(
                    60 * parse(&get, "offsets.retention.minutes", 1..=i32::MAX as i64)? as u64,
                ),
                offsets_retention_check: millis(&get, "offsets.retention.check.interval.ms")?
                    .max(Duration::from_millis(1)),
            },
            topic_defaults,
            explicit: entries,
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
            let value = self
                .explicit
                .get(*key)
                .cloned()
                .unwrap_or_else(|| (*default).to_owned());
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

fn strip_scheme<'a>(key: &str, value: &'a str) -> Result<&'a str, ConfigError> {
    let first = value.split(',').next().unwrap_or_default().trim();
    match first.split_once("://") {
        None => Ok(first),
        Some(("PLAINTEXT", rest)) => Ok(rest),
        Some((scheme, _)) => Err(ConfigError::Invalid {
            key: key.into(),
            message: format!("listener security protocol {scheme} is not supported; use PLAINTEXT"),
        }),
    }
}

/// The Kafka (PLAINTEXT), controller (CONTROLLER) and admin HTTP (ADMIN) listeners of
/// `listeners`. A bare host:port is the Kafka listener; the controller one defaults to port
/// 9093 of its host and the admin one to 9644 (both 0 if the Kafka port is 0, so that tests
/// on ephemeral ports never collide).
fn parse_listeners(text: &str) -> Result<(SocketAddr, SocketAddr, SocketAddr), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "listeners".into(),
        message,
    };
    let mut kafka = None;
    let mut controller = None;
    let mut admin = None;
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (scheme, address) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let slot = match scheme {
            "PLAINTEXT" => &mut kafka,
            "CONTROLLER" => &mut controller,
            "ADMIN" => &mut admin,
            other => {
                return Err(invalid(format!(
                    "listener security protocol {other} is not supported; use PLAINTEXT (and CONTROLLER, ADMIN)"
                )));
            }
        };
        let addr: SocketAddr = address
            .parse()
            .map_err(|e| invalid(format!("'{address}' is not host:port with an IP host: {e}")))?;
        if slot.replace(addr).is_some() {
            return Err(invalid(format!("two {scheme} listeners")));
        }
    }
    let kafka = kafka.ok_or_else(|| invalid(format!("'{text}' has no PLAINTEXT listener")))?;
    let default = |port: u16| SocketAddr::new(kafka.ip(), if kafka.port() == 0 { 0 } else { port });
    let controller = controller.unwrap_or_else(|| default(9093));
    let admin = admin.unwrap_or_else(|| default(9644));
    Ok((kafka, controller, admin))
}

/// `process.roles`: (broker, controller).
fn parse_roles(text: &str) -> Result<(bool, bool), ConfigError> {
    let (mut broker, mut controller) = (false, false);
    for role in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" => broker = true,
            "controller" => controller = true,
            other => {
                return Err(ConfigError::Invalid {
                    key: "process.roles".into(),
                    message: format!("'{other}' is not a role; use broker, controller or both"),
                });
            }
        }
    }
    if !broker && !controller {
        return Err(ConfigError::Invalid {
            key: "process.roles".into(),
            message: "no role given; use broker, controller or both".into(),
        });
    }
    Ok((broker, controller))
}

/// `id@host:port` voter specs, comma-separated.
pub fn parse_voters(text: &str) -> Result<BTreeMap<u64, String>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "controller.quorum.voters".into(),
        message,
    };
    let mut voters = BTreeMap::new();
    for spec in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = spec
            .split_once('@')
            .ok_or_else(|| invalid(format!("voter '{spec}' is not id@host:port")))?;
        let id: u64 = id
            .parse()
            .map_err(|_| invalid(format!("voter '{spec}': '{id}' is not a node id")))?;
        if !addr.contains(':') {
            return Err(invalid(format!(
                "voter '{spec}': '{addr}' is not host:port"
            )));
        }
        if voters.insert(id, addr.to_owned()).is_some() {
            return Err(invalid(format!("voter {id} is listed twice")));
        }
    }
    Ok(voters)
}

fn parse(
    get: &impl Fn(&str) -> String,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ConfigError> {
    let raw = get(key);
    let value: i64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        key: key.into(),
        message: format!("'{raw}' is not a number"),
    })?;
    if !range.contains(&value) {
        return Err(ConfigError::Invalid {
            key: key.into(),
            message: format!("{value} is outside {}..={}", range.start(), range.end()),
        });
    }
    Ok(value)
}

fn millis(get: &impl Fn(&str) -> String, key: &str) -> Result<Duration, ConfigError> {
    Ok(Duration::from_millis(
        parse(get, key, 0..=i32::MAX as i64)? as u64
    ))
}

fn parse_bool(get: &impl Fn(&str) -> String, key: &str) -> Result<bool, ConfigError> {
    match get(key).trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ConfigError::Invalid {
            key: key.into(),
            message: format!("'{other}' is not true or false"),
        }),
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_owned(), text.clone());
        }
        toml::Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_owned(), joined.join(","));
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
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
            BrokerConfig::load(Some(&path), &[("num.partitions".into(), "3".into())]).unwrap();
        assert_eq!(config.listener.port(), 19092);
        assert_eq!(config.advertised, ("broker.example".to_owned(), 9092));
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.topic_defaults.get("retention.ms").unwrap(), "1000");
        assert_eq!(config.topic_defaults.get("segment.bytes").unwrap(), "4096");
    }

    #[test]
    fn unknown_and_invalid_keys_are_named() {
        let err =
            BrokerConfig::load(None, &[("log.retention.msec".into(), "1".into())]).unwrap_err();
        assert!(err.to_string().contains("log.retention.msec"), "{err}");
        let err =
            BrokerConfig::load(None, &[("num.partitions".into(), "zero".into())]).unwrap_err();
        assert!(err.to_string().contains("num.partitions"), "{err}");
        let err = BrokerConfig::load(None, &[("listeners".into(), "SSL://1.2.3.4:9093".into())])
            .unwrap_err();
        assert!(err.to_string().contains("SSL"), "{err}");
    }
}
