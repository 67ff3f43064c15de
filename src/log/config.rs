//! `LogConfig`: the topic-level configs a log obeys, under Kafka's names and with Kafka's defaults.
//!
//! A topic config is the broker default for each key, overridden by the topic's own entries.
//! Unknown keys and unparsable values are refused when a topic is created or altered, so an
//! effective config is always complete and valid.

use std::collections::BTreeMap;
use std::fmt;

/// Whether a batch keeps its producer timestamps or gets the broker's append time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Keep the producer's timestamps (Kafka's default).
    CreateTime,
    /// Stamp each batch with the broker's clock when it is appended.
    LogAppendTime,
}

/// A topic's `compression.type`: keep the producer's codec, or store batches in this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCompression {
    /// Batches are stored as the producer compressed them (the default).
    Producer,
    /// Batches are stored in this codec, recompressed on append when they come in another.
    Codec(kafka_protocol::records::Compression),
}

impl std::str::FromStr for TopicCompression {
    type Err = InvalidConfig;

    fn from_str(value: &str) -> Result<Self, InvalidConfig> {
        use kafka_protocol::records::Compression;
        Ok(match value {
            "producer" => Self::Producer,
            "uncompressed" => Self::Codec(Compression::None),
            "gzip" => Self::Codec(Compression::Gzip),
            "snappy" => Self::Codec(Compression::Snappy),
            "lz4" => Self::Codec(Compression::Lz4),
            "zstd" => Self::Codec(Compression::Zstd),
            other => {
                return Err(InvalidConfig(format!(
                    "compression.type={other} is not one of producer, uncompressed, gzip, snappy, lz4, zstd"
                )));
            }
        })
    }
}

/// What happens to old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Delete whole segments by time and size.
    Delete,
    /// Keep the latest record per key.
    Compact,
    /// Both: compact, and delete whole segments by time and size.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether retention deletes old segments.
    pub fn deletes(self) -> bool {
        matches!(self, Self::Delete | Self::CompactDelete)
    }

    /// Whether the cleaner compacts the log.
    pub fn compacts(self) -> bool {
        matches!(self, Self::Compact | Self::CompactDelete)
    }
}

/// One config key: its Kafka name, its type, and the doc shown by DescribeConfigs.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    /// Kafka's topic-level name.
    pub name: &'static str,
    /// The broker-level name whose value is the default.
    pub broker_name: &'static str,
    /// Value type, as DescribeConfigs v3+ reports it.
    pub kind: ConfigType,
    /// Kafka's default value.
    pub default: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// Config value types with the codes DescribeConfigs uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// true/false.
    Boolean = 1,
    /// A string.
    String = 2,
    /// 32-bit integer.
    Int = 3,
    /// 64-bit integer.
    Long = 5,
    /// Floating point.
    Double = 6,
    /// Comma-separated list.
    List = 7,
}

/// Every topic config Strata understands. Values are validated by [`LogConfig::from_map`].
pub const TOPIC_CONFIGS: &[ConfigKey] = &[
    key(
        "cleanup.policy",
        "log.cleanup.policy",
        ConfigType::List,
        "delete",
        "delete or compact old segments",
    ),
    key(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        ConfigType::Long,
        "86400000",
        "how long tombstones of a compacted topic stay readable",
    ),
    key(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        ConfigType::Double,
        "0.5",
        "share of not-yet-compacted bytes that triggers compaction",
    ),
    key(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        ConfigType::Long,
        "0",
        "records younger than this are never compacted",
    ),
    key(
        "compression.type",
        "compression.type",
        ConfigType::String,
        "producer",
        "producer (batches stored as sent), or the codec batches are stored in: uncompressed, gzip, snappy, lz4, zstd",
    ),
    key(
        "flush.messages",
        "log.flush.interval.messages",
        ConfigType::Long,
        "1",
        "fsync after this many messages; 1 = fsync before acknowledging, with group commit",
    ),
    key(
        "flush.ms",
        "log.flush.interval.ms",
        ConfigType::Long,
        "9223372036854775807",
        "fsync when data is older than this",
    ),
    key(
        "index.interval.bytes",
        "log.index.interval.bytes",
        ConfigType::Int,
        "4096",
        "bytes of batches between offset-index entries",
    ),
    key(
        "max.message.bytes",
        "message.max.bytes",
        ConfigType::Int,
        "1048588",
        "largest record batch accepted",
    ),
    key(
        "message.timestamp.type",
        "log.message.timestamp.type",
        ConfigType::String,
        "CreateTime",
        "CreateTime or LogAppendTime",
    ),
    key(
        "min.insync.replicas",
        "min.insync.replicas",
        ConfigType::Int,
        "1",
        "replicas that must acknowledge acks=all",
    ),
    key(
        "leader.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        ConfigType::List,
        "",
        "replicas ('partition:broker' or '*') whose followers fetching from this leader are held to leader.replication.throttled.rate",
    ),
    key(
        "follower.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
        ConfigType::List,
        "",
        "replicas ('partition:broker' or '*') held to follower.replication.throttled.rate; replicas a reassignment adds always are",
    ),
    key(
        "local.retention.bytes",
        "log.local.retention.bytes",
        ConfigType::Long,
        "-2",
        "local size beyond which uploaded segments leave local disk; -2 = retention.bytes",
    ),
    key(
        "local.retention.ms",
        "log.local.retention.ms",
        ConfigType::Long,
        "-2",
        "age beyond which uploaded segments leave local disk; -2 = retention.ms",
    ),
    key(
        "remote.storage.enable",
        "log.remote.storage.enable",
        ConfigType::Boolean,
        "true",
        "upload closed segments to the object store (not for compacted topics); Strata's default is on",
    ),
    key(
        "retention.bytes",
        "log.retention.bytes",
        ConfigType::Long,
        "-1",
        "partition size beyond which old segments are deleted; -1 = no limit",
    ),
    key(
        "retention.ms",
        "log.retention.ms",
        ConfigType::Long,
        "604800000",
        "age beyond which segments are deleted; -1 = forever",
    ),
    key(
        "segment.bytes",
        "log.segment.bytes",
        ConfigType::Int,
        "1073741824",
        "segment size at which the log rolls",
    ),
    key(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        ConfigType::Int,
        "10485760",
        "preallocated size of each index file",
    ),
    key(
        "segment.ms",
        "log.roll.ms",
        ConfigType::Long,
        "604800000",
        "segment age at which the log rolls",
    ),
    key(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        ConfigType::Boolean,
        "false",
        "allow out-of-sync replicas to become leader",
    ),
];

const fn key(
    name: &'static str,
    broker_name: &'static str,
    kind: ConfigType,
    default: &'static str,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        broker_name,
        kind,
        default,
        doc,
    }
}

/// Looks up a topic config key by name.
pub fn config_key(name: &str) -> Option<&'static ConfigKey> {
    TOPIC_CONFIGS.iter().find(|k| k.name == name)
}

/// Smallest `segment.bytes` Kafka accepts: a segment must hold at least one batch header.
const MIN_SEGMENT_BYTES: i64 = 14;

/// A rejected config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig(pub String);

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The effective configuration of one topic's logs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `flush.messages`.
    pub flush_messages: u64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`.
    pub max_message_bytes: u64,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `compression.type`.
    pub compression: TopicCompression,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `retention.bytes`; negative means no limit.
    pub retention_bytes: i64,
    /// `retention.ms`; negative means forever.
    pub retention_ms: i64,
    /// `local.retention.bytes`; -2 means `retention.bytes`.
    pub local_retention_bytes: i64,
    /// `local.retention.ms`; -2 means `retention.ms`.
    pub local_retention_ms: i64,
    /// `remote.storage.enable`.
    pub remote_storage_enable: bool,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `leader.replication.throttled.replicas`.
    pub leader_throttled_replicas: ThrottledReplicas,
    /// `follower.replication.throttled.replicas`.
    pub follower_throttled_replicas: ThrottledReplicas,
}

/// Replicas a replication throttle applies to: none, all (`*`) or listed (partition, broker).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ThrottledReplicas {
    /// None.
    #[default]
    None,
    /// Every replica.
    All,
    /// These (partition, broker) pairs.
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Whether the replica of `partition` on `broker` is throttled.
    pub fn contains(&self, partition: i32, broker: i32) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Listed(pairs) => pairs.contains(&(partition, broker)),
        }
    }

    fn parse(name: &str, raw: &str) -> Result<Self, InvalidConfig> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::None);
        }
        if raw == "*" {
            return Ok(Self::All);
        }
        raw.split(',')
            .map(|item| {
                let (p, b) = item.trim().split_once(':').unwrap_or((item, ""));
                match (p.trim().parse(), b.trim().parse()) {
                    (Ok(p), Ok(b)) => Ok((p, b)),
                    _ => Err(InvalidConfig(format!(
                        "{name}: '{item}' is not 'partition:broker' (or use '*' alone)"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::Listed)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self::from_map(&BTreeMap::new()).expect("Kafka's defaults are valid")
    }
}

impl LogConfig {
    /// Builds a config from `key → value` entries; keys not present take Kafka's defaults.
    pub fn from_map(entries: &BTreeMap<String, String>) -> Result<Self, InvalidConfig> {
        for name in entries.keys() {
            if config_key(name).is_none() {
                return Err(InvalidConfig(format!("unknown topic config '{name}'")));
            }
        }
        let get = |name: &str| -> &str {
            entries
                .get(name)
                .map(String::as_str)
                .unwrap_or_else(|| config_key(name).map_or("", |k| k.default))
        };
        let long = |name: &str, min: i64| -> Result<i64, InvalidConfig> {
            let raw = get(name);
            let value: i64 = raw
                .trim()
                .parse()
                .map_err(|_| InvalidConfig(format!("{name}={raw} is not a number")))?;
            if value < min {
                return Err(InvalidConfig(format!(
                    "{name}={value} is below the minimum {min}"
                )));
            }
            Ok(value)
        };
        let int = |name: &str, min: i64| -> Result<i64, InvalidConfig> {
            let value = long(name, min)?;
            if value > i32::MAX as i64 {
                return Err(InvalidConfig(format!(
                    "{name}={value} does not fit a 32-bit integer"
                )));
            }
            Ok(value)
        };
        let cleanup_policy = match get("cleanup.policy").trim() {
            "delete" => CleanupPolicy::Delete,
            "compact" => CleanupPolicy::Compact,
            "compact,delete" | "delete,compact" => CleanupPolicy::CompactDelete,
            other => {
                return Err(InvalidConfig(format!(
                    "cleanup.policy={other} is not one of delete, compact"
                )));
            }
        };
        let compression: TopicCompression = get("compression.type").parse()?;
        let timestamp_type = match get("message.timestamp.type") {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => {
                return Err(InvalidConfig(format!(
                    "message.timestamp.type={other} is not one of CreateTime, LogAppendTime"
                )));
            }
        };
        let remote_storage_enable = match get("remote.storage.enable") {
            "true" => true,
            "false" => false,
            other => {
                return Err(InvalidConfig(format!(
                    "remote.storage.enable={other} is not a boolean"
                )));
            }
        };
        match get("unclean.leader.election.enable") {
            "true" | "false" => {}
            other => {
                return Err(InvalidConfig(format!(
                    "unclean.leader.election.enable={other} is not a boolean"
                )));
            }
        }
        let ratio_text = get("min.cleanable.dirty.ratio");
        let min_cleanable_dirty_ratio = ratio_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                InvalidConfig(format!(
                    "min.cleanable.dirty.ratio={ratio_text} is not a number between 0 and 1"
                ))
            })?;
        Ok(Self {
            cleanup_policy,
            delete_retention_ms: long("delete.retention.ms", 0)?,
            min_cleanable_dirty_ratio,
            min_compaction_lag_ms: long("min.compaction.lag.ms", 0)?,
            flush_messages: long("flush.messages", 1)? as u64,
            flush_ms: long("flush.ms", 0)?,
            index_interval_bytes: int("index.interval.bytes", 0)? as u64,
            max_message_bytes: int("max.message.bytes", 0)? as u64,
            timestamp_type,
            compression,
            min_insync_replicas: int("min.insync.replicas", 1)? as i32,
            retention_bytes: long("retention.bytes", i64::MIN)?,
            retention_ms: long("retention.ms", -1)?,
            local_retention_bytes: long("local.retention.bytes", -2)?,
            local_retention_ms: long("local.retention.ms", -2)?,
            remote_storage_enable,
            segment_bytes: int("segment.bytes", MIN_SEGMENT_BYTES)? as u64,
            segment_index_bytes: int("segment.index.bytes", 4)? as u64,
            segment_ms: long("segment.ms", 1)?,
            leader_throttled_replicas: ThrottledReplicas::parse(
                "leader.replication.throttled.replicas",
                get("leader.replication.throttled.replicas"),
            )?,
            follower_throttled_replicas: ThrottledReplicas::parse(
                "follower.replication.throttled.replicas",
                get("follower.replication.throttled.replicas"),
            )?,
        })
    }

    /// Whether closed segments go to the object store: asked for, and not a compacted topic
    /// (compaction rewrites segments, which the remote tier never does, as in Kafka).
    pub fn tiered(&self) -> bool {
        self.remote_storage_enable && !self.cleanup_policy.compacts()
    }

    /// Local retention by time: `local.retention.ms`, or `retention.ms` when -2.
    pub fn local_retention_limit_ms(&self) -> i64 {
        if self.local_retention_ms == -2 {
            self.retention_ms
        } else {
            self.local_retention_ms
        }
    }

    /// Local retention by size: `local.retention.bytes`, or `retention.bytes` when -2.
    pub fn local_retention_limit_bytes(&self) -> i64 {
        if self.local_retention_bytes == -2 {
            self.retention_bytes
        } else {
            self.local_retention_bytes
        }
    }

    /// Whether acknowledging an append must wait for its fsync.
    pub fn fsync_before_ack(&self) -> bool {
        self.flush_messages <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas() {
        let config = LogConfig::default();
        assert_eq!(config.segment_bytes, 1 << 30);
        assert_eq!(config.retention_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert!(config.fsync_before_ack());
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let err = LogConfig::from_map(&map(&[("retention.ms", "soon")])).unwrap_err();
        assert!(err.0.contains("retention.ms"), "{err}");
        let err = LogConfig::from_map(&map(&[("no.such.key", "1")])).unwrap_err();
        assert!(err.0.contains("no.such.key"), "{err}");
        let err = LogConfig::from_map(&map(&[("segment.bytes", "3000000000")])).unwrap_err();
        assert!(err.0.contains("32-bit"), "{err}");
    }

    #[test]
    fn overrides_apply() {
        let config = LogConfig::from_map(&map(&[
            ("message.timestamp.type", "LogAppendTime"),
            ("flush.messages", "1000"),
        ]))
        .unwrap();
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert!(!config.fsync_before_ack());
    }
}
