//! Object store metrics: every request the tier makes, timed and counted by operation, and
//! the bytes it moved. Recorded by [`crate::timed::TimedStore`], through which every request
//! passes; process-wide, as one node has one store.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The node's object store metrics.
pub static STORE: LazyLock<StoreMetrics> = LazyLock::new(StoreMetrics::default);

/// Labels of per-operation series: `put`, `get`, `head`, `get_ranges`, `list`, `delete`, …
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OpLabels {
    /// The operation.
    pub op: &'static str,
}

/// What the object store client counts.
#[derive(Debug)]
pub struct StoreMetrics {
    seconds: Family<OpLabels, Histogram, fn() -> Histogram>,
    errors: Family<OpLabels, Counter>,
    uploaded: Counter,
    downloaded: Counter,
}

fn store_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            seconds: Family::new_with_constructor(store_histogram),
            errors: Family::default(),
            uploaded: Counter::default(),
            downloaded: Counter::default(),
        }
    }
}

impl StoreMetrics {
    /// A request of `op` that began at `started` ended; `failed` when it failed (a missing
    /// object is an answer, not a failure).
    pub fn request(&self, op: &'static str, started: Instant, failed: bool) {
        let labels = OpLabels { op };
        self.seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if failed {
            self.errors.get_or_create(&labels).inc();
        }
    }

    /// A failed item of a streamed request (a listing page, a delete).
    pub fn stream_error(&self, op: &'static str) {
        self.errors.get_or_create(&OpLabels { op }).inc();
    }

    /// Bytes written to the store.
    pub fn uploaded(&self, bytes: u64) {
        self.uploaded.inc_by(bytes);
    }

    /// Bytes read from the store.
    pub fn downloaded(&self, bytes: u64) {
        self.downloaded.inc_by(bytes);
    }

    /// Registers these metrics in `registry` (whose prefix is `strata`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "object_store_request_duration_seconds",
            "Object store requests by operation, timed to their end (retries included)",
            self.seconds.clone(),
        );
        registry.register(
            "object_store_request_errors",
            "Object store requests that failed, by operation (a missing object is not a failure)",
            self.errors.clone(),
        );
        registry.register(
            "tiering_uploaded_bytes",
            "Bytes written to the object store (compressed segments, indexes, manifests)",
            self.uploaded.clone(),
        );
        registry.register(
            "tiering_downloaded_bytes",
            "Bytes read back from the object store",
            self.downloaded.clone(),
        );
    }
}
