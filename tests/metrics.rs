//! Proves that `GET /metrics` serves what a Prometheus operator needs in both formats
//! (Prometheus text, and OpenMetrics when asked), that both parse with the Prometheus
//! project's own parsers, and that the values count what real clients did: records and bytes
//! per topic in and out, requests and error codes per API, log sizes and offsets, consumer
//! group lag, the controller, fsyncs; that per-partition series can be switched off; and
//! that a controller-only node serves its own health and metrics.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::metrics::{Scrape, scrape};
use common::{BrokerProcess, client, consume_all, create_topic};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "metered";
const PER_PARTITION: usize = 100;

/// 100 records to each of the topic's 3 partitions, acknowledged by all replicas.
async fn produce(addr: &str) {
    let producer: FutureProducer = client(addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for partition in 0..3 {
        for n in 0..PER_PARTITION {
            let value = format!("record-{n}");
            producer
                .send(
                    FutureRecord::<(), _>::to(TOPIC)
                        .partition(partition)
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .expect("acknowledged");
        }
    }
}

/// Commits offsets 50, 50 and 0 for group `lagging`: 50 + 50 + 100 records of lag.
fn commit_lagging_group(addr: &str) {
    let consumer: BaseConsumer = client(addr)
        .set("group.id", "lagging")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in [(0, 50), (1, 50), (2, 0)] {
        offsets
            .add_partition_offset(TOPIC, partition, Offset::Offset(offset))
            .unwrap();
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("offsets committed");
}

/// Deletes a topic that does not exist: one UNKNOWN_TOPIC_OR_PARTITION for DeleteTopics.
async fn delete_missing_topic(addr: &str) {
    let admin: AdminClient<DefaultClientContext> = client(addr).create().expect("admin");
    let results = admin
        .delete_topics(&["no-such-topic"], &AdminOptions::new())
        .await
        .expect("DeleteTopics answered");
    assert!(results[0].is_err(), "the topic does not exist");
}

fn check_counts(m: &Scrape) {
    let topic = [("topic", TOPIC)];
    let records = (3 * PER_PARTITION) as f64;
    assert_eq!(m.sum("strata_topic_records_in_total", &topic), records);
    let bytes_in = m.sum("strata_topic_bytes_in_total", &topic);
    assert!(bytes_in > records * 8.0, "bytes in: {bytes_in}");
    assert_eq!(m.sum("strata_topic_records_out_total", &topic), records);
    assert_eq!(m.sum("strata_topic_bytes_out_total", &topic), bytes_in);
    assert!(
        m.sum(
            "strata_kafka_request_duration_seconds_count",
            &[("api", "Produce")]
        ) >= 1.0
    );
    assert!(
        m.sum(
            "strata_kafka_request_duration_seconds_count",
            &[("api", "Fetch")]
        ) >= 1.0
    );
    assert_eq!(
        m.sum(
            "strata_kafka_request_errors_total",
            &[
                ("api", "DeleteTopics"),
                ("error", "UNKNOWN_TOPIC_OR_PARTITION")
            ]
        ),
        1.0
    );
    assert!(m.sum("strata_kafka_connections_accepted_total", &[]) >= 3.0);
    assert!(m.sum("strata_log_flush_duration_seconds_count", &[]) >= 1.0);
    assert!(m.sum("strata_log_flush_records_sum", &[]) >= records);
    assert!(
        m.sum(
            "strata_log_size_bytes",
            &[("topic", TOPIC), ("tier", "local")]
        ) >= bytes_in
    );
    assert_eq!(m.sum("strata_log_end_offset", &topic), records);
    assert_eq!(m.sum("strata_controller_active", &[]), 1.0);
    assert!(m.sum("strata_controller_last_applied_index", &[]) >= 1.0);
    assert_eq!(m.sum("strata_offline_partitions", &[]), 0.0);
    assert_eq!(m.sum("strata_under_replicated_partitions", &[]), 0.0);
    assert_eq!(
        m.sum("strata_group_lag_records", &[("group", "lagging")]),
        200.0
    );
    assert_eq!(
        m.sum("strata_group_lag_max_records", &[("group", "lagging")]),
        100.0
    );
    assert_eq!(
        m.sum(
            "strata_group_partition_lag_records",
            &[("group", "lagging"), ("partition", "2")]
        ),
        100.0
    );
    assert_eq!(
        m.sum(
            "strata_group_state",
            &[("group", "lagging"), ("state", "Empty")]
        ),
        1.0
    );
    assert_eq!(
        m.sum("strata_purgatory_size", &[("purgatory", "Produce")]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scrapes_parse_in_both_formats_and_count_what_clients_did() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    create_topic(&broker.addr, TOPIC, 3, &[]).await;
    produce(&broker.addr).await;
    let consumed = consume_all(
        &broker.addr,
        TOPIC,
        3,
        3 * PER_PARTITION,
        Duration::from_secs(30),
    );
    assert_eq!(consumed.len(), 3 * PER_PARTITION);
    commit_lagging_group(&broker.addr);
    delete_missing_topic(&broker.addr).await;

    let text = scrape(&broker.admin_addr, false);
    check_counts(&text);
    assert!(!text.text.contains("# EOF"));
    let open = scrape(&broker.admin_addr, true);
    check_counts(&open);
    assert!(open.text.ends_with("# EOF\n"));
    // Every family served is documented in the README's table, and every documented one is
    // served, but those with no series yet on this node: no link, no failed object store
    // request, no snapshot.
    let served = families(&text.text);
    let documented = readme_metrics();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in the README: {undocumented:?}"
    );
    let not_yet = [
        "strata_controller_snapshot_age_seconds",
        "strata_link_mirror_lag_records",
        "strata_link_mirror_lag_seconds",
        "strata_link_mirrored_bytes_total",
        "strata_object_store_request_errors_total",
        // Only with TLS and SASL listeners; tests/tls.rs and tests/sasl.rs read them.
        "strata_sasl_authentications_total",
        "strata_authorization_denied_total",
        "strata_tls_certificate_expiry_timestamp_seconds",
        "strata_tls_handshakes_total",
        "strata_tls_reload_failures_total",
    ];
    let missing: Vec<_> = documented
        .difference(&served)
        .filter(|m| !not_yet.contains(&m.as_str()))
        .collect();
    assert!(missing.is_empty(), "in the README, not served: {missing:?}");
}

/// Metric family names of a Prometheus text scrape, from its `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The metric names of the README's table.
fn readme_metrics() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let names: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `strata_"))
        .filter_map(|l| l.split('`').next())
        .map(|name| format!("strata_{name}"))
        .collect();
    assert!(names.len() > 40, "the README's metrics table: {names:?}");
    names
}

#[test]
fn a_controller_only_node_serves_its_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("controller");
    let node = common::RunningNode::start(
        &[
            "run",
            "--data-dir",
            data.to_str().unwrap(),
            "--set",
            "process.roles=controller",
            "--set",
            // As Kafka's controllers: no Kafka listener.
            "listeners=CONTROLLER://127.0.0.1:0,ADMIN://127.0.0.1:0",
        ],
        &dir.path().join("controller.log"),
    );
    // Elected first, then its first entry applied: wait for both.
    let m = common::cluster::wait_until("an active controller", Duration::from_secs(30), || {
        let m = scrape(&node.admin, true);
        let applied = m.sum("strata_controller_last_applied_index", &[]) >= 1.0;
        (m.sum("strata_controller_active", &[]) == 1.0 && applied).then_some(m)
    });
    assert!(m.sum("strata_controller_term", &[]) >= 1.0);
    assert!(m.sum("strata_controller_last_applied_index", &[]) >= 1.0);
    assert_eq!(m.sum("strata_controller_apply_lag", &[]), 0.0);
    let (status, body) = common::http_get(&node.admin, "/v1/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("metadata_quorum"), "{body}");
    let (status, body) = common::http_get(&node.admin, "/v1/topics");
    assert_eq!(status, 404, "a controller serves no topics: {body}");
}

#[test]
fn the_grafana_dashboard_asks_only_for_documented_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/monitoring/grafana/strata.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
    let documented = readme_metrics();
    let metric = regex::Regex::new(r"strata_[a-z_]+").unwrap();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            for m in metric.find_iter(expr) {
                let name = m.as_str();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| documented.contains(*base))
                    .unwrap_or(name);
                assert!(
                    documented.contains(family),
                    "panel {:?} asks for {name}, which is not served",
                    panel["title"]
                );
                used.insert(family.to_owned());
            }
        }
    }
    assert!(
        used.len() >= 30,
        "the dashboard shows most metrics: {used:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn per_partition_series_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["metrics.per.partition=false"]);
    create_topic(&broker.addr, TOPIC, 3, &[]).await;
    produce(&broker.addr).await;
    commit_lagging_group(&broker.addr);
    let m = scrape(&broker.admin_addr, false);
    let with_partition: Vec<_> = m
        .samples
        .iter()
        .filter(|s| s.labels.contains_key("partition"))
        .map(|s| s.name.clone())
        .collect();
    assert!(
        with_partition.is_empty(),
        "series per partition: {with_partition:?}"
    );
    // Per-topic sums remain.
    assert!(
        m.sum(
            "strata_log_size_bytes",
            &[("topic", TOPIC), ("tier", "local")]
        ) > 0.0
    );
    assert_eq!(
        m.matching(
            "strata_log_size_bytes",
            &[("topic", TOPIC), ("tier", "local")]
        )
        .count(),
        1
    );
    assert_eq!(
        m.sum("strata_group_lag_records", &[("group", "lagging")]),
        200.0
    );
    assert!(!m.has("strata_log_end_offset"));
}
