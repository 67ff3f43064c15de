//! The node's metrics, for `GET /metrics` on the admin listener.
//!
//! Two kinds. Events (an fsync, an ISR change, a request, an object store call) are counted
//! where they happen into process-wide sets: [`BROKER`] here, the Kafka server's
//! [`strata_api::metrics::KAFKA`], the object store's [`strata_tiering::metrics::STORE`].
//! States (log sizes, under-replicated partitions, group lag, mirror lag, the controller's
//! log) are read from the broker at each scrape ([`scrape`]), so they cost nothing between
//! scrapes and are never stale.
//!
//! Names follow Prometheus conventions under the `strata_` prefix (units in the name,
//! `_total` on counters); the README maps them to Kafka's JMX names. Label values are
//! bounded: per-partition series can be turned off (`metrics.per.partition=false`, for large
//! clusters: series then carry the topic only), and per-group series are capped.

mod scrape;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use scrape::{render, render_controller};

/// The broker's event metrics.
pub static BROKER: LazyLock<BrokerMetrics> = LazyLock::new(BrokerMetrics::default);

/// Consumer groups given their own series; the others are counted in
/// `strata_group_series_dropped`.
pub const MAX_GROUP_SERIES: usize = 1_000;

/// What the broker counts as it goes.
#[derive(Debug)]
pub struct BrokerMetrics {
    flush_seconds: Histogram,
    flush_records: Histogram,
    isr_shrinks: Counter,
    isr_expands: Counter,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self {
            flush_seconds: strata_api::metrics::latency_histogram(),
            // 1 to 65,536 records, doubling.
            flush_records: Histogram::new(exponential_buckets(1.0, 2.0, 17)),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
        }
    }
}

impl BrokerMetrics {
    /// One fsync of a partition's log took `took` and made `records` offsets durable (the
    /// records of every produce that shared it: the group commit's size).
    pub fn flushed(&self, took: Duration, records: u64) {
        self.flush_seconds.observe(took.as_secs_f64());
        self.flush_records.observe(records as f64);
    }

    /// The controller accepted an ISR change of a partition this broker leads.
    pub fn isr_changed(&self, before: usize, after: usize) {
        if after < before {
            self.isr_shrinks.inc();
        } else if after > before {
            self.isr_expands.inc();
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "log_flush_duration_seconds",
            "Time of each fsync of a partition's log",
            self.flush_seconds.clone(),
        );
        registry.register(
            "log_flush_records",
            "Offsets made durable by each fsync: the size of a group commit",
            self.flush_records.clone(),
        );
        registry.register(
            "isr_shrinks",
            "ISR shrinks of partitions this broker leads",
            self.isr_shrinks.clone(),
        );
        registry.register(
            "isr_expands",
            "ISR expansions of partitions this broker leads",
            self.isr_expands.clone(),
        );
    }
}
