//! Metrics of the Kafka protocol server, and the Prometheus / OpenMetrics encoding of
//! `/metrics`.
//!
//! Events are counted where they happen (a request answered, a connection opened) into the
//! process-wide [`KAFKA`] set: a process is one node, so one set is the node's, as Kafka's
//! metrics registry is. Each scrape registers handles to these metrics (clones share the
//! values) beside the gauges the broker computes at scrape time, and encodes the lot.
//!
//! Label values are bounded: `api` by the APIs served, `error` by Kafka's error codes.

mod error_codes;

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Instant;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use error_codes::ErrorCodes;

/// The node's Kafka server metrics.
pub static KAFKA: LazyLock<KafkaMetrics> = LazyLock::new(KafkaMetrics::default);

/// A Kafka API as a label value: its name as Kafka's request metrics give it (`Produce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Api(pub ApiKey);

impl EncodeLabelValue for Api {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        write!(encoder, "{:?}", self.0)
    }
}

/// A Kafka error code as a label value: its name as Kafka's `Errors` enum spells it
/// (`NOT_LEADER_OR_FOLLOWER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorName(pub i16);

impl EncodeLabelValue for ErrorName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(&error_name(self.0))
    }
}

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`); `NONE` for 0, `UNKNOWN_<code>`
/// for a code this build does not know.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_{code}"),
        Some(known) => screaming_snake(&known.to_string()),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Labels of per-API series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ApiLabels {
    /// The API.
    pub api: Api,
}

/// Labels of per-topic series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TopicLabels {
    /// The topic.
    pub topic: String,
}

/// A delayed operation's kind, as Kafka's purgatories are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Purgatory {
    /// Produces waiting for their acknowledgement (fsync, or the ISR with acks=all).
    Produce,
    /// Fetches waiting for data (long polling, `fetch.min.bytes`).
    Fetch,
}

/// Labels of purgatory sizes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PurgatoryLabels {
    /// Which one.
    pub purgatory: Purgatory,
}

/// Labels of per-listener series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ListenerLabels {
    /// The listener's name.
    pub listener: String,
}

/// Labels of TLS handshake outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HandshakeLabels {
    /// The listener's name.
    pub listener: String,
    /// `ok`, `failed` (bad certificate, not TLS, …) or `timeout`.
    pub result: &'static str,
}

/// Labels of SASL authentication outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SaslLabels {
    /// The listener's name.
    pub listener: String,
    /// The SASL mechanism.
    pub mechanism: &'static str,
    /// `ok` or `failed`.
    pub result: &'static str,
}

/// One waiting operation, counted while it lives.
#[derive(Debug)]
pub struct Waiting(Gauge);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Records in the record batches `pieces` holds (split anywhere), from `fetch_offset` on.
/// Only the batch headers are read, where they lie; nothing is copied.
pub fn records_in(pieces: &[bytes::Bytes], fetch_offset: i64) -> u64 {
    // A batch header begins: base offset (8), length (4), partition leader epoch (4),
    // magic (1), crc (4), attributes (2), last offset delta (4).
    const HEADER: usize = 27;
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let header_at = |at: usize| -> Option<[u8; HEADER]> {
        if at + HEADER > total {
            return None;
        }
        let mut head = [0u8; HEADER];
        let (mut filled, mut start) = (0, 0);
        for piece in pieces {
            let end = start + piece.len();
            if end > at + filled && filled < HEADER {
                let from = at + filled - start;
                let n = (piece.len() - from).min(HEADER - filled);
                head[filled..filled + n].copy_from_slice(&piece[from..from + n]);
                filled += n;
            }
            start = end;
        }
        Some(head)
    };
    let (mut at, mut end) = (0usize, None);
    while let Some(head) = header_at(at) {
        let base = i64::from_be_bytes(head[..8].try_into().unwrap_or_default());
        let len = u32::from_be_bytes(head[8..12].try_into().unwrap_or_default()) as usize;
        let delta = i32::from_be_bytes(head[23..27].try_into().unwrap_or_default());
        end = Some(base + i64::from(delta) + 1);
        at += 12 + len;
    }
    end.map_or(0, |end| (end - fetch_offset).max(0) as u64)
}

/// Labels of error counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The API.
    pub api: Api,
    /// The error.
    pub error: ErrorName,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from 100 µs to about 26 s, doubling.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// What the Kafka server counts.
#[derive(Debug)]
pub struct KafkaMetrics {
    request_seconds: HistogramFamily<ApiLabels>,
    errors: Family<ErrorLabels, Counter>,
    connections: Gauge,
    accepted: Counter,
    refused: Counter,
    request_memory: Gauge,
    request_memory_limit: Gauge,
    bytes_in: Family<TopicLabels, Counter>,
    records_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    records_out: Family<TopicLabels, Counter>,
    purgatory: Family<PurgatoryLabels, Gauge>,
    tls_handshakes: Family<HandshakeLabels, Counter>,
    tls_reload_failures: Family<ListenerLabels, Counter>,
    tls_expiry: Family<ListenerLabels, Gauge>,
    sasl: Family<SaslLabels, Counter>,
    denied: Family<ApiLabels, Counter>,
    admin_auth_failures: Counter,
    fetch_sessions: Gauge,
    fetch_session_partitions: Gauge,
    fetch_session_evictions: Counter,
}

impl Default for KafkaMetrics {
    fn default() -> Self {
        Self {
            request_seconds: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            connections: Gauge::default(),
            accepted: Counter::default(),
            refused: Counter::default(),
            request_memory: Gauge::default(),
            request_memory_limit: Gauge::default(),
            bytes_in: Family::default(),
            records_in: Family::default(),
            bytes_out: Family::default(),
            records_out: Family::default(),
            purgatory: Family::default(),
            tls_handshakes: Family::default(),
            tls_reload_failures: Family::default(),
            tls_expiry: Family::default(),
            sasl: Family::default(),
            denied: Family::default(),
            admin_auth_failures: Counter::default(),
            fetch_sessions: Gauge::default(),
            fetch_session_partitions: Gauge::default(),
            fetch_session_evictions: Counter::default(),
        }
    }
}

impl KafkaMetrics {
    /// A request of `api` answered (or, with acks=0, done) `started` ago.
    pub fn request_done(&self, api: ApiKey, started: Instant) {
        self.request_seconds
            .get_or_create(&ApiLabels { api: Api(api) })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts the non-zero error codes of a response of `api`.
    pub fn count_errors(&self, api: ApiKey, response: &impl ErrorCodes) {
        response.error_codes(&mut |code| {
            if code != 0 {
                self.count_error(api, code);
            }
        });
    }

    /// Counts one error code answered to a request of `api`.
    pub fn count_error(&self, api: ApiKey, code: i16) {
        self.errors
            .get_or_create(&ErrorLabels {
                api: Api(api),
                error: ErrorName(code),
            })
            .inc();
    }

    /// A connection was accepted; it is open until [`Self::connection_closed`].
    pub fn connection_opened(&self) {
        self.accepted.inc();
        self.connections.inc();
    }

    /// An accepted connection closed.
    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// The incremental fetch sessions cached now, and their partitions.
    pub fn fetch_sessions(&self, sessions: usize, partitions: usize) {
        self.fetch_sessions.set(sessions as i64);
        self.fetch_session_partitions.set(partitions as i64);
    }

    /// A fetch session was evicted for a new one.
    pub fn fetch_session_evicted(&self) {
        self.fetch_session_evictions.inc();
    }

    /// A connection was refused (`max.connections.per.ip`).
    pub fn connection_refused(&self) {
        self.refused.inc();
    }

    /// Request bytes reserved (positive) or released (negative).
    pub fn request_memory(&self, delta: i64) {
        self.request_memory.inc_by(delta);
    }

    /// The request memory budget (`queued.max.request.bytes`).
    pub fn set_request_memory_limit(&self, bytes: usize) {
        self.request_memory_limit
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Records appended to `topic` by producers.
    pub fn produced(&self, topic: &str, bytes: u64, records: u64) {
        let labels = TopicLabels {
            topic: topic.to_owned(),
        };
        self.bytes_in.get_or_create(&labels).inc_by(bytes);
        self.records_in.get_or_create(&labels).inc_by(records);
    }

    /// Records of `topic` answered to consumers.
    pub fn fetched(&self, topic: &str, bytes: u64, records: u64) {
        let labels = TopicLabels {
            topic: topic.to_owned(),
        };
        self.bytes_out.get_or_create(&labels).inc_by(bytes);
        self.records_out.get_or_create(&labels).inc_by(records);
    }

    /// Drops the series of a deleted topic, so that topics created and deleted over time do
    /// not pile up series.
    pub fn forget_topic(&self, topic: &str) {
        let labels = TopicLabels {
            topic: topic.to_owned(),
        };
        for family in [
            &self.bytes_in,
            &self.records_in,
            &self.bytes_out,
            &self.records_out,
        ] {
            family.remove(&labels);
        }
    }

    /// An operation enters `purgatory`; it leaves when the guard drops.
    pub fn waiting(&self, purgatory: Purgatory) -> Waiting {
        let gauge = self
            .purgatory
            .get_or_create_owned(&PurgatoryLabels { purgatory });
        gauge.inc();
        Waiting(gauge)
    }

    /// A TLS handshake on `listener` ended with `result` (`ok`, `failed`, `timeout`).
    pub fn tls_handshake(&self, listener: &str, result: &'static str) {
        self.tls_handshakes
            .get_or_create(&HandshakeLabels {
                listener: listener.to_owned(),
                result,
            })
            .inc();
    }

    /// A request of `api` was refused something by the authorizer.
    pub fn authorization_denied(&self, api: ApiKey) {
        self.denied
            .get_or_create(&ApiLabels { api: Api(api) })
            .inc();
    }

    /// A request to the admin API carried wrong credentials.
    pub fn admin_auth_failed(&self) {
        self.admin_auth_failures.inc();
    }

    /// A SASL authentication on `listener` with `mechanism` ended with `result`.
    pub fn sasl_authentication(
        &self,
        listener: &str,
        mechanism: &'static str,
        result: &'static str,
    ) {
        self.sasl
            .get_or_create(&SaslLabels {
                listener: listener.to_owned(),
                mechanism,
                result,
            })
            .inc();
    }

    /// The certificates of `listener` changed on disk but could not be loaded.
    pub fn tls_reload_failed(&self, listener: &str) {
        self.tls_reload_failures
            .get_or_create(&ListenerLabels {
                listener: listener.to_owned(),
            })
            .inc();
    }

    /// `listener` now serves a certificate that expires at `not_after` (Unix seconds).
    pub fn tls_certificate(&self, listener: &str, not_after: i64) {
        self.tls_expiry
            .get_or_create(&ListenerLabels {
                listener: listener.to_owned(),
            })
            .set(not_after);
    }

    /// Registers these metrics in `registry` (whose prefix is `strata`).
    pub fn register(&self, registry: &mut Registry) {
        self.register_traffic(registry);
        self.register_server(registry);
    }

    /// Registers the per-topic traffic counters only.
    pub fn register_traffic(&self, registry: &mut Registry) {
        registry.register(
            "topic_bytes_in",
            "Bytes of record batches appended by producers, per topic",
            self.bytes_in.clone(),
        );
        registry.register(
            "topic_records_in",
            "Records appended by producers, per topic",
            self.records_in.clone(),
        );
        registry.register(
            "topic_bytes_out",
            "Bytes of record batches sent to consumers, per topic (replication excluded)",
            self.bytes_out.clone(),
        );
        registry.register(
            "topic_records_out",
            "Records sent to consumers, per topic, counted by offsets (to within one index interval)",
            self.records_out.clone(),
        );
    }

    fn register_server(&self, registry: &mut Registry) {
        registry.register(
            "tls_handshakes",
            "TLS handshakes on Kafka listeners and the admin API (ADMIN), per listener and result (ok, failed, timeout)",
            self.tls_handshakes.clone(),
        );
        registry.register(
            "authorization_denied",
            "Authorizer denials, per API (each denied resource of a request counts)",
            self.denied.clone(),
        );
        registry.register(
            "admin_authentication_failures",
            "Admin API requests refused for wrong credentials (missing ones are not counted)",
            self.admin_auth_failures.clone(),
        );
        registry.register(
            "sasl_authentications",
            "SASL authentications, per listener, mechanism and result (ok, failed); re-authentications count too",
            self.sasl.clone(),
        );
        registry.register(
            "tls_reload_failures",
            "Changed TLS certificate files that could not be loaded (the previous ones stay in use)",
            self.tls_reload_failures.clone(),
        );
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the certificate a listener serves expires, in Unix seconds",
            self.tls_expiry.clone(),
        );
        registry.register(
            "purgatory_size",
            "Requests waiting in a purgatory: produces for their acknowledgement, fetches for data",
            self.purgatory.clone(),
        );
        registry.register(
            "kafka_request_duration_seconds",
            "Time from a Kafka request's arrival to its response's last byte written, per API (its _count counts requests)",
            self.request_seconds.clone(),
        );
        registry.register(
            "kafka_request_errors",
            "Error codes answered, per API and error (every per-partition and per-group code counts)",
            self.errors.clone(),
        );
        registry.register(
            "kafka_connections",
            "Open Kafka client connections",
            self.connections.clone(),
        );
        registry.register(
            "kafka_connections_accepted",
            "Kafka client connections accepted",
            self.accepted.clone(),
        );
        registry.register(
            "kafka_connections_refused",
            "Kafka client connections refused at max.connections.per.ip",
            self.refused.clone(),
        );
        registry.register(
            "kafka_request_memory_bytes",
            "Bytes of requests being received or queued (the queued.max.request.bytes budget in use)",
            self.request_memory.clone(),
        );
        registry.register(
            "kafka_request_memory_limit_bytes",
            "The request memory budget, queued.max.request.bytes",
            self.request_memory_limit.clone(),
        );
        registry.register(
            "kafka_fetch_sessions",
            "Incremental fetch sessions cached (KIP-227)",
            self.fetch_sessions.clone(),
        );
        registry.register(
            "kafka_fetch_session_partitions",
            "Partitions held by the cached fetch sessions",
            self.fetch_session_partitions.clone(),
        );
        registry.register(
            "kafka_fetch_session_evictions",
            "Fetch sessions evicted to make room for new ones",
            self.fetch_session_evictions.clone(),
        );
    }
}

/// The `Content-Type` of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of Prometheus text (0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Whether a scraper's `Accept` header asks for OpenMetrics, as Prometheus does when it may.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// `registry` as OpenMetrics or Prometheus text.
pub fn encode(registry: &Registry, openmetrics: bool) -> String {
    let mut out = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
    };
    // Writing to a String cannot fail; a failure here would be a bug in the encoder.
    if let Err(e) = encoded {
        tracing::error!("cannot encode metrics: {e}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_across_pieces() {
        let mut batch = vec![0u8; 61];
        batch[..8].copy_from_slice(&10i64.to_be_bytes());
        batch[8..12].copy_from_slice(&49u32.to_be_bytes());
        batch[23..27].copy_from_slice(&4i32.to_be_bytes());
        let mut second = batch.clone();
        second[..8].copy_from_slice(&15i64.to_be_bytes());
        let all = [batch, second].concat();
        let pieces = [
            bytes::Bytes::copy_from_slice(&all[..70]),
            bytes::Bytes::copy_from_slice(&all[70..]),
        ];
        assert_eq!(records_in(&pieces, 12), 8, "offsets 12 to 19");
        let bytes: Vec<bytes::Bytes> = all.chunks(5).map(bytes::Bytes::copy_from_slice).collect();
        assert_eq!(records_in(&bytes, 12), 8, "headers across many pieces");
        assert_eq!(
            records_in(&pieces[..1], 10),
            5,
            "a torn second batch is not counted"
        );
    }

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_9999");
    }

    #[test]
    fn both_formats_encode_a_request() {
        let metrics = KafkaMetrics::default();
        metrics.request_done(ApiKey::Produce, Instant::now());
        metrics.count_error(ApiKey::Fetch, 1);
        let mut registry = Registry::with_prefix("strata");
        metrics.register(&mut registry);
        let text = encode(&registry, false);
        assert!(text.contains("strata_kafka_request_duration_seconds_count{api=\"Produce\"} 1"));
        assert!(text.contains(
            "strata_kafka_request_errors_total{api=\"Fetch\",error=\"OFFSET_OUT_OF_RANGE\"} 1"
        ));
        assert!(!text.contains("# EOF"));
        let open = encode(&registry, true);
        assert!(open.ends_with("# EOF\n"));
    }
}
