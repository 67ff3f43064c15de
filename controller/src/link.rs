//! Cluster links (DESIGN.md decision 7): a destination cluster's record of a source cluster it
//! mirrors, and of which of its topics are mirrors. Both live in the metadata log, so every
//! broker knows which partitions take the source's batches instead of producers' and a
//! failover is one committed change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Kafka client properties a link reaches its source with (`security.protocol`, `ssl.*`,
/// `sasl.*`). Kept in the metadata log so that every broker can mirror; never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientProperties(pub BTreeMap<String, String>);

impl std::fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Where a new mirror partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStart {
    /// The source's log start offset (its tiered history included).
    #[default]
    Earliest,
    /// The source's high watermark when the mirror is created.
    Latest,
}

/// What a link mirrors, as its creator set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkConfig {
    /// Bootstrap servers of the source cluster (`host:port[,host:port…]`).
    pub source: String,
    /// Source topics to mirror: a regular expression matching whole names (`None`: all).
    #[serde(default)]
    pub topics: Option<String>,
    /// Source topics never to mirror, matched like `topics`.
    #[serde(default)]
    pub exclude_topics: Option<String>,
    /// Consumer groups whose committed offsets are copied, matched like `topics`.
    #[serde(default)]
    pub groups: Option<String>,
    /// Where new mirror partitions start.
    #[serde(default)]
    pub start: LinkStart,
    /// Prepended to mirror topic names (active-active: `east.`).
    #[serde(default)]
    pub prefix: String,
    /// How often matching groups' committed offsets are copied (`consumer.offset.sync.ms`).
    #[serde(default = "default_offset_sync_ms")]
    pub offset_sync_ms: u64,
    /// How to reach the source: TLS and SASL settings (empty: plaintext).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub source_security: ClientProperties,
}

fn is_empty(p: &ClientProperties) -> bool {
    p.0.is_empty()
}

/// Kafka cluster linking's default `consumer.offset.sync.ms`.
pub const DEFAULT_OFFSET_SYNC_MS: u64 = 5_000;

fn default_offset_sync_ms() -> u64 {
    DEFAULT_OFFSET_SYNC_MS
}

/// A cluster link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterLink {
    /// Name, unique in the cluster.
    pub name: String,
    /// Id, new for each creation of the name.
    pub id: Uuid,
    /// What it mirrors.
    pub config: LinkConfig,
    /// Paused links fetch nothing and create no mirrors.
    pub paused: bool,
}

/// Why a mirror stopped following its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// The source was lost: writable at the mirror's end, whatever it had.
    Failover,
    /// Planned: the mirror had caught up with the source first.
    Promote,
}

/// A mirror topic's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorState {
    /// Following the source; producers are refused.
    Mirroring,
    /// No longer following; a normal, writable topic that remembers its link.
    Stopped(StopReason),
}

/// What a mirror topic follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorOf {
    /// The link it belongs to.
    pub link: String,
    /// The topic's name on the source cluster.
    pub source_topic: String,
    /// Whether it still follows it.
    pub state: MirrorState,
}

impl MirrorOf {
    /// Whether the topic takes the source's batches (and refuses producers).
    pub fn is_mirroring(&self) -> bool {
        self.state == MirrorState::Mirroring
    }
}
