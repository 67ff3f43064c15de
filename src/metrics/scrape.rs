//! One scrape: the event metrics' handles and gauges read from the broker now, encoded.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use strata_api::admin::{AdminState, TieringStatus};

use super::{BROKER, MAX_GROUP_SERIES};
use crate::broker::StrataBroker;

type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// The registry of one scrape, with the way partitions are labelled.
struct Scrape {
    registry: Registry,
    per_partition: bool,
}

impl Scrape {
    /// Labels of a partition's series: topic and partition, or the topic alone when
    /// per-partition series are off (values are then summed per topic, or their maximum
    /// kept, as each metric says).
    fn partition(&self, topic: &str, partition: i32) -> Labels {
        let mut labels = vec![("topic", topic.to_owned())];
        if self.per_partition {
            labels.push(("partition", partition.to_string()));
        }
        labels
    }

    /// Registers a gauge family whose series with equal labels are summed.
    fn sum(&mut self, name: &str, help: &str, values: impl IntoIterator<Item = (Labels, f64)>) {
        let family = Gauges::default();
        for (labels, value) in values {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    /// Registers a gauge family whose series with equal labels keep their maximum.
    fn max(&mut self, name: &str, help: &str, values: impl IntoIterator<Item = (Labels, f64)>) {
        let mut by_labels: HashMap<Labels, f64> = HashMap::new();
        for (labels, value) in values {
            let entry = by_labels.entry(labels).or_insert(value);
            *entry = entry.max(value);
        }
        self.sum(name, help, by_labels);
    }

    /// Registers a counter family read at scrape time (a count kept elsewhere).
    fn counter(&mut self, name: &str, help: &str, values: impl IntoIterator<Item = (Labels, u64)>) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    /// Registers one unlabelled gauge.
    fn one(&mut self, name: &str, help: &str, value: f64) {
        self.sum(name, help, [(Vec::new(), value)]);
    }
}

/// Every metric of the node, encoded as OpenMetrics or Prometheus text.
pub async fn render(broker: &StrataBroker, openmetrics: bool) -> String {
    let mut scrape = Scrape {
        registry: Registry::with_prefix("strata"),
        per_partition: broker.config().metrics_per_partition,
    };
    strata_api::metrics::KAFKA.register(&mut scrape.registry);
    strata_tiering::metrics::STORE.register(&mut scrape.registry);
    BROKER.register(&mut scrape.registry);
    let tiered = match broker.remote() {
        Some(_) => <StrataBroker as AdminState>::tiering(broker).await,
        None => Vec::new(),
    };
    partitions(broker, &mut scrape, &tiered);
    cluster(broker, &mut scrape);
    controller(broker, &mut scrape);
    groups(broker, &mut scrape);
    tiering(broker, &mut scrape, &tiered);
    links(broker, &mut scrape);
    strata_api::metrics::encode(&scrape.registry, openmetrics)
}

/// Log sizes and offsets of every replica here; replication state of those it leads.
fn partitions(broker: &StrataBroker, scrape: &mut Scrape, tiered: &[TieringStatus]) {
    let (mut sizes, mut ends, mut segments) = (Vec::new(), Vec::new(), Vec::new());
    let (mut leaders, mut followers) = (0, 0);
    for t in tiered {
        let mut labels = scrape.partition(&t.topic, t.partition);
        labels.push(("tier", "remote".into()));
        sizes.push((labels, t.remote_bytes as f64));
    }
    let (mut under_replicated, mut under_min_isr) = (0, 0);
    for p in broker.replicas().all() {
        let labels = scrape.partition(&p.topic, p.index);
        let (size, end, count, min_isr) = {
            let log = p.log();
            (
                log.size(),
                log.log_end_offset(),
                log.segment_count(),
                log.config().min_insync_replicas.max(1) as usize,
            )
        };
        let mut local = labels.clone();
        local.push(("tier", "local".into()));
        sizes.push((local, size as f64));
        segments.push((labels.clone(), count as f64));
        if scrape.per_partition {
            ends.push((labels, end as f64));
        }
        if p.is_leader() {
            leaders += 1;
            let set = p.replica_set();
            if set.isr.len() < set.replicas.len() {
                under_replicated += 1;
            }
            if set.replicas.len() >= min_isr && set.isr.len() < min_isr {
                under_min_isr += 1;
            }
        } else {
            followers += 1;
        }
    }
    scrape.sum(
        "log_size_bytes",
        "Bytes of a partition's log on local disk (tier=local, every replica here) and in the object store (tier=remote, counted by its leader, as batches before compression)",
        sizes,
    );
    scrape.sum(
        "log_segments",
        "Segments of a partition's local log",
        segments,
    );
    scrape.sum(
        "log_end_offset",
        "The offset the next record of a partition gets (per-partition series only)",
        ends,
    );
    scrape.sum(
        "partitions",
        "Partition replicas on this broker, by role",
        [
            (vec![("role", "leader".into())], leaders as f64),
            (vec![("role", "follower".into())], followers as f64),
        ],
    );
    scrape.one(
        "under_replicated_partitions",
        "Partitions this broker leads whose ISR lacks a replica",
        under_replicated as f64,
    );
    scrape.one(
        "under_min_isr_partitions",
        "Partitions this broker leads whose ISR is below min.insync.replicas (acks=all produces fail)",
        under_min_isr as f64,
    );
}

/// The cluster as this broker's metadata shows it.
fn cluster(broker: &StrataBroker, scrape: &mut Scrape) {
    let image = broker.image();
    let mut offline = 0;
    let mut total = 0;
    for topic in image.topics.values() {
        for p in topic.partitions.values() {
            total += 1;
            if p.leader < 0 || !image.is_active(p.leader) {
                offline += 1;
            }
        }
    }
    let live = image
        .brokers
        .keys()
        .filter(|id| image.is_active(**id))
        .count();
    let brokers = image.brokers.len();
    drop(image);
    scrape.one(
        "cluster_partitions",
        "Partitions in the cluster (this broker's metadata; the same on every broker)",
        f64::from(total),
    );
    scrape.one(
        "offline_partitions",
        "Partitions with no live leader (cluster-wide, from this broker's metadata: take the max over brokers)",
        f64::from(offline),
    );
    scrape.sum(
        "cluster_brokers",
        "Registered brokers, by state (active: unfenced and alive)",
        [
            (vec![("state", "active".into())], live as f64),
            (vec![("state", "inactive".into())], (brokers - live) as f64),
        ],
    );
}

/// The controller of this node, if it has that role.
fn controller(broker: &StrataBroker, scrape: &mut Scrape) {
    if let Some(probe) = broker.health().controller() {
        controller_of(probe, &broker.config().data_dir, scrape);
    }
}

/// The metrics of a controller-only node: its controller's, and the object store's (none).
pub fn render_controller(
    probe: &strata_controller::raft::ControllerProbe,
    data_dir: &std::path::Path,
    openmetrics: bool,
) -> String {
    let mut scrape = Scrape {
        registry: Registry::with_prefix("strata"),
        per_partition: false,
    };
    controller_of(probe, data_dir, &mut scrape);
    strata_api::metrics::encode(&scrape.registry, openmetrics)
}

fn controller_of(
    probe: &strata_controller::raft::ControllerProbe,
    data_dir: &std::path::Path,
    scrape: &mut Scrape,
) {
    let stats = probe.stats();
    scrape.one(
        "controller_active",
        "1 on the active controller (the metadata quorum's leader)",
        f64::from(u8::from(stats.active)),
    );
    scrape.one(
        "controller_term",
        "The controller's raft term",
        stats.term as f64,
    );
    scrape.one(
        "controller_last_log_index",
        "The last entry of this controller's metadata log",
        stats.last_log_index as f64,
    );
    scrape.one(
        "controller_last_applied_index",
        "The last entry applied to this controller's metadata image",
        stats.last_applied as f64,
    );
    scrape.one(
        "controller_apply_lag",
        "Entries of this controller's log not applied yet",
        stats.last_log_index.saturating_sub(stats.last_applied) as f64,
    );
    if let Some(lag) = stats.max_follower_lag {
        scrape.one(
            "controller_commit_lag",
            "On the active controller: entries the slowest other voter or learner lacks",
            lag as f64,
        );
    }
    scrape.one(
        "controller_snapshot_index",
        "The last entry of this controller's latest snapshot",
        stats.snapshot_index as f64,
    );
    let snapshot = data_dir
        .join(crate::server::CONTROLLER_DIR)
        .join(strata_controller::raft::SNAPSHOT_FILE);
    if let Ok(age) = std::fs::metadata(snapshot)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default())
    {
        scrape.one(
            "controller_snapshot_age_seconds",
            "Seconds since this controller last wrote a snapshot",
            age.as_secs_f64(),
        );
    }
}

/// Groups this broker coordinates: state, members, lag.
fn groups(broker: &StrataBroker, scrape: &mut Scrape) {
    let summaries = broker.groups_state().summaries();
    let kept: std::collections::BTreeSet<&str> = summaries
        .iter()
        .take(MAX_GROUP_SERIES)
        .map(|s| s.0.as_str())
        .collect();
    let group = |id: &str| vec![("group", id.to_owned())];
    scrape.sum(
        "group_members",
        "Members of a consumer group this broker coordinates",
        summaries
            .iter()
            .take(MAX_GROUP_SERIES)
            .map(|(id, _, members)| (group(id), *members as f64)),
    );
    scrape.sum(
        "group_state",
        "1 for the state a consumer group is in (classic: Empty, PreparingRebalance, CompletingRebalance, Stable; consumer protocol: Empty, Assigning, Reconciling, Stable)",
        summaries.iter().take(MAX_GROUP_SERIES).map(|(id, state, _)| {
            let mut labels = group(id);
            labels.push(("state", (*state).into()));
            (labels, 1.0)
        }),
    );
    let mut sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut partitions = Vec::new();
    let lags = crate::group::lag::lags(broker, None);
    for lag in &lags {
        let Some(id) = kept.get(lag.group.as_str()) else {
            continue;
        };
        let entry = sums.entry(id).or_default();
        entry.0 += lag.lag as f64;
        entry.1 = entry.1.max(lag.lag as f64);
        if scrape.per_partition {
            let mut labels = group(id);
            labels.push(("topic", lag.topic.clone()));
            labels.push(("partition", lag.partition.to_string()));
            partitions.push((labels, lag.lag as f64));
        }
    }
    scrape.sum(
        "group_lag_records",
        "Records a consumer group has not committed, summed over its partitions",
        sums.iter().map(|(id, (sum, _))| (group(id), *sum)),
    );
    scrape.sum(
        "group_lag_max_records",
        "The largest lag of a consumer group's partitions",
        sums.iter().map(|(id, (_, max))| (group(id), *max)),
    );
    scrape.sum(
        "group_partition_lag_records",
        "Records a consumer group has not committed in one partition (per-partition series only)",
        partitions,
    );
    scrape.one(
        "group_series_dropped",
        "Consumer groups left out of the per-group series (over the cap)",
        summaries.len().saturating_sub(MAX_GROUP_SERIES) as f64,
    );
}

/// Upload backlog, bucket usage and the chunk cache.
fn tiering(broker: &StrataBroker, scrape: &mut Scrape, status: &[TieringStatus]) {
    let Some(remote) = broker.remote() else {
        return;
    };
    let mut lag_bytes = Vec::new();
    let mut lag_segments = Vec::new();
    let mut stored = Vec::new();
    for s in status {
        let labels = scrape.partition(&s.topic, s.partition);
        lag_bytes.push((labels.clone(), s.upload_lag_bytes as f64));
        lag_segments.push((labels.clone(), s.upload_lag_segments as f64));
        stored.push((labels, s.remote_stored_bytes as f64));
    }
    scrape.sum(
        "tiering_upload_lag_bytes",
        "Bytes of closed segments waiting for upload, per partition this broker leads",
        lag_bytes,
    );
    scrape.sum(
        "tiering_upload_lag_segments",
        "Closed segments waiting for upload",
        lag_segments,
    );
    scrape.sum(
        "tiering_stored_bytes",
        "Bytes the object store holds for a partition (compressed)",
        stored,
    );
    let cache = remote.cache().stats();
    scrape.sum(
        "tiering_cache_bytes",
        "Bytes in the chunk cache of remote reads, by medium",
        [
            (vec![("medium", "disk".into())], cache.used as f64),
            (vec![("medium", "memory".into())], cache.memory_used as f64),
        ],
    );
    scrape.counter(
        "tiering_cache_reads",
        "Chunk reads of remote data, by result (hit: from the cache; miss: from the object store)",
        [
            (vec![("result", "hit".into())], cache.hits),
            (vec![("result", "miss".into())], cache.misses),
        ],
    );
}

/// Mirror lag of the links' partitions this broker leads.
fn links(broker: &StrataBroker, scrape: &mut Scrape) {
    let lags = broker.links().lags(|topic, partition| {
        broker
            .replicas()
            .get(topic, partition)
            .is_some_and(|p| p.is_leader() && p.is_mirror())
    });
    let series = |scrape: &Scrape, link: &str, topic: &str, partition: i32| {
        let mut labels = vec![("link", link.to_owned())];
        labels.extend(scrape.partition(topic, partition));
        labels
    };
    let records: Vec<(Labels, f64)> = lags
        .iter()
        .map(|((topic, partition), lag)| {
            (
                series(scrape, &lag.link, topic, *partition),
                lag.records as f64,
            )
        })
        .collect();
    let seconds: Vec<(Labels, f64)> = lags
        .iter()
        .map(|((topic, partition), lag)| {
            (series(scrape, &lag.link, topic, *partition), lag.seconds())
        })
        .collect();
    scrape.sum(
        "link_mirror_lag_records",
        "Records a mirror partition lacks of its source (source high watermark minus mirror log end, at the last fetch)",
        records,
    );
    scrape.max(
        "link_mirror_lag_seconds",
        "Seconds since the source held the oldest record a mirror partition lacks; 0 when caught up",
        seconds,
    );
    let names: Vec<String> = broker.image().links.keys().cloned().collect();
    scrape.counter(
        "link_mirrored_bytes",
        "Bytes this broker's mirrors appended from the link's source",
        names.iter().map(|name| {
            (
                vec![("link", name.clone())],
                broker.links().activity_of(name).bytes,
            )
        }),
    );
}
