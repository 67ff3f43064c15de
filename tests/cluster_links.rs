//! Cluster links between two clusters on this machine: mirror topics follow a source topic
//! byte for byte at its offsets while it takes acks=all writes, refuse producers, report
//! their lag, and take writes after a failover with the source killed.

mod common;

use std::time::Duration;

use common::BrokerProcess;
use common::cluster::wait_until;
use common::link::{end_offset, fetched_batches, produce_numbers, strata};
use common::metrics::scrape;
use common::wire::Conn;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 2;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// Produces `values` (key and value the number) with an idempotent acks=all producer, each
/// to partition `value % PARTITIONS`; panics unless every one is acknowledged.
async fn produce(bootstrap: &str, values: std::ops::Range<u32>) {
    let producer: FutureProducer = common::client(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let sends: Vec<_> = values
        .map(|v| {
            let producer = producer.clone();
            tokio::spawn(async move {
                let text = v.to_string();
                producer
                    .send(
                        FutureRecord::to(TOPIC)
                            .key(&text)
                            .payload(&text)
                            .partition((v % PARTITIONS as u32) as i32)
                            .headers(rdkafka::message::OwnedHeaders::new().insert(
                                rdkafka::message::Header {
                                    key: "origin",
                                    value: Some("source"),
                                },
                            )),
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("record {v} not acknowledged: {e}"))
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
}

fn high_watermarks(addr: &str, topic: &str) -> Option<Vec<i64>> {
    let consumer: BaseConsumer = common::client(addr).create().unwrap();
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .ok()
                .map(|w| w.1)
        })
        .collect()
}

/// Joins `group`, reads `count` records and commits; the committed offsets per partition.
fn consume_and_commit(addr: &str, group: &str, count: usize) -> Vec<i64> {
    use rdkafka::consumer::CommitMode;
    let consumer: BaseConsumer = common::client(addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut read = 0;
    while read < count {
        assert!(
            std::time::Instant::now() < deadline,
            "read {read} of {count}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => read += 1,
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    committed_offsets(addr, group)
}

/// `group`'s committed offset per partition of `TOPIC` (-1 where none).
fn committed_offsets(addr: &str, group: &str) -> Vec<i64> {
    common::link::committed_offsets(addr, group, TOPIC, PARTITIONS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_follows_its_source_byte_for_byte_and_takes_writes_after_failover() {
    let root = tempfile::tempdir().unwrap();
    let mut source = BrokerProcess::start(&root.path().join("source"), &[]);
    let dest = BrokerProcess::start(&root.path().join("dest"), &[]);
    let admin: AdminClient<DefaultClientContext> = common::client(&source.addr).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created");
    produce(&source.addr, 0..2000).await;
    // A consumer group on the source reads 1,000 records and commits.
    let committed = tokio::task::spawn_blocking({
        let addr = source.addr.clone();
        move || consume_and_commit(&addr, "billing", 1000)
    })
    .await
    .unwrap();
    assert_eq!(committed.iter().map(|o| o.max(&0)).sum::<i64>(), 1000);

    // A link that names a source nobody listens on is refused at once, with the reason.
    let refused = strata(&[
        "link",
        "create",
        "nowhere",
        "--source",
        "127.0.0.1:1",
        "--admin",
        &dest.admin_addr,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not answer"),
        "{refused:?}"
    );
    let created = strata(&[
        "link",
        "create",
        "east",
        "--source",
        &source.addr,
        "--topics",
        "ord.*",
        "--groups",
        "bill.*",
        "--offset-sync-ms",
        "500",
        "--admin",
        &dest.admin_addr,
    ]);
    assert!(created.status.success(), "{created:?}");

    // Mirroring goes on while the source takes more writes.
    produce(&source.addr, 2000..4000).await;
    let source_ends = high_watermarks(&source.addr, TOPIC).unwrap();
    assert_eq!(source_ends.iter().sum::<i64>(), 4000);
    wait_until("the mirror caught up", Duration::from_secs(60), || {
        (high_watermarks(&dest.addr, TOPIC)? == source_ends).then_some(())
    });
    for partition in 0..PARTITIONS {
        let mirrored = fetched_batches(&dest.addr, TOPIC, partition).await;
        let original = fetched_batches(&source.addr, TOPIC, partition).await;
        assert!(!original.is_empty());
        assert!(
            mirrored == original,
            "partition {partition}: the mirror's batches differ from the source's ({} and {} bytes)",
            mirrored.len(),
            original.len()
        );
    }
    let status = strata(&["link", "status", "east", "--admin", &dest.admin_addr]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(text.contains("0 records behind"), "{text}");
    assert!(
        text.contains("orders") && text.contains("mirroring"),
        "{text}"
    );
    // The mirror's lag, as Prometheus scrapes it: every partition caught up.
    let m = wait_until("mirror lag metrics", Duration::from_secs(30), || {
        let m = scrape(&dest.admin_addr, false);
        let lag = [("link", "east"), ("topic", TOPIC)];
        let partitions = m.matching("strata_link_mirror_lag_records", &lag).count();
        (partitions == PARTITIONS as usize && m.sum("strata_link_mirror_lag_records", &lag) == 0.0)
            .then_some(m)
    });
    assert_eq!(
        m.sum("strata_link_mirror_lag_seconds", &[("link", "east")]),
        0.0
    );
    assert!(m.sum("strata_link_mirrored_bytes_total", &[("link", "east")]) > 0.0);

    // The group's offsets are copied unchanged (the offsets are the same on both sides).
    wait_until(
        "the group's offsets synced",
        Duration::from_secs(30),
        || (committed_offsets(&dest.addr, "billing") == committed).then_some(()),
    );

    // While the group is active here, its offsets here are its own: the sync waits.
    let member: BaseConsumer = common::client(&dest.addr)
        .set("group.id", "billing")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&[TOPIC]).unwrap();
    wait_until("the member joined", Duration::from_secs(30), || {
        member.poll(Duration::from_millis(100));
        (!member.assignment().ok()?.elements().is_empty()).then_some(())
    });
    let moved = tokio::task::spawn_blocking({
        let addr = source.addr.clone();
        move || consume_and_commit(&addr, "billing", 500)
    })
    .await
    .unwrap();
    assert_ne!(moved, committed);
    for _ in 0..20 {
        member.poll(Duration::from_millis(100));
    }
    assert_eq!(
        committed_offsets(&dest.addr, "billing"),
        committed,
        "offsets of a group active here are left alone"
    );
    drop(member);
    wait_until(
        "the sync resumed once the group left",
        Duration::from_secs(30),
        || (committed_offsets(&dest.addr, "billing") == moved).then_some(()),
    );

    // A mirror refuses producers, naming its link.
    let mut conn = Conn::open(&dest.addr).await;
    let batch = common::wire::encode_batch(
        &[bytes::Bytes::from_static(b"refused")],
        (-1, -1),
        -1,
        1_000,
    );
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(TOPIC))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch)),
                ]),
        ]);
    let response = conn.call(9, &request).await.unwrap();
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 42, "INVALID_REQUEST");
    let message = answer.error_message.as_ref().map(|m| m.to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("east")),
        "{message:?}"
    );

    // The source region is lost; the mirror fails over and takes the writes.
    source.kill();
    let failover = strata(&[
        "mirror",
        "failover",
        "--all",
        "--link",
        "east",
        "--admin",
        &dest.admin_addr,
    ]);
    assert!(failover.status.success(), "{failover:?}");
    assert!(
        String::from_utf8_lossy(&failover.stdout).contains("orders: writable"),
        "{failover:?}"
    );
    produce(&dest.addr, 4000..4100).await;
    let consumed = tokio::task::spawn_blocking({
        let addr = dest.addr.clone();
        move || common::consume_all(&addr, TOPIC, PARTITIONS, 4100, Duration::from_secs(60))
    })
    .await
    .unwrap();
    let mut values: Vec<u32> = common::numbers(&consumed);
    values.sort_unstable();
    assert_eq!(values, (0..4100).collect::<Vec<u32>>(), "every record once");
    // The writes after the failover continue the source's offsets.
    let ends = high_watermarks(&dest.addr, TOPIC).unwrap();
    assert_eq!(ends.iter().sum::<i64>(), 4100);
    // The group resumes on the destination where it was on the source.
    let remaining = 4100 - moved.iter().map(|o| o.max(&0)).sum::<i64>() as usize;
    let resumed = tokio::task::spawn_blocking({
        let addr = dest.addr.clone();
        move || consume_and_commit(&addr, "billing", remaining)
    })
    .await
    .unwrap();
    assert_eq!(resumed, ends, "read from the synced offsets to the end");
    let deleted = strata(&["link", "delete", "east", "--admin", &dest.admin_addr]);
    assert!(deleted.status.success(), "{deleted:?}");
}

/// `count` records to partition 0 of `topic`, keys `k0`..`k{keys-1}` in turn, values padded
/// to `pad` bytes; acks=all, idempotent.
async fn produce_keyed(bootstrap: &str, topic: &str, count: u32, keys: u32, pad: usize) {
    let producer: FutureProducer = common::client(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "2048")
        .create()
        .unwrap();
    let sends: Vec<_> = (0..count)
        .map(|n| {
            let producer = producer.clone();
            let topic = topic.to_owned();
            tokio::spawn(async move {
                let key = format!("k{}", n % keys);
                let value = format!("{n:0>pad$}");
                producer
                    .send(
                        FutureRecord::to(&topic)
                            .key(&key)
                            .payload(&value)
                            .partition(0),
                        Duration::from_secs(30),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("record {n} not acknowledged: {e}"))
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
}

async fn topic_configs(addr: &str, topic: &str) -> std::collections::BTreeMap<String, String> {
    use rdkafka::admin::{ConfigSource, ResourceSpecifier};
    let admin: AdminClient<DefaultClientContext> = common::client(addr).create().unwrap();
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .unwrap();
    let resource = described[0].as_ref().expect("described");
    resource
        .entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

fn topic_exists(addr: &str, topic: &str) -> bool {
    let consumer: BaseConsumer = common::client(addr).create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .is_ok_and(|m| m.topics().iter().any(|t| t.name() == topic))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_gaps_tiered_history_and_configs_mirror_and_links_never_loop() {
    let root = tempfile::tempdir().unwrap();
    let source = BrokerProcess::start(
        &root.path().join("source"),
        &[
            "log.cleaner.backoff.ms=100",
            "remote.log.manager.task.interval.ms=200",
            "log.retention.check.interval.ms=200",
        ],
    );
    // The destination compacts nothing while the bytes are compared.
    let dest = BrokerProcess::start(&root.path().join("dest"), &["log.cleaner.enable=false"]);
    let admin: AdminClient<DefaultClientContext> = common::client(&source.addr).create().unwrap();
    let compacted = NewTopic::new("compacted", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("max.message.bytes", "500000")
        .set("min.insync.replicas", "1");
    let history = NewTopic::new("history", 1, TopicReplication::Fixed(1))
        .set("remote.storage.enable", "true")
        .set("segment.bytes", "16384")
        .set("local.retention.bytes", "0")
        .set("retention.ms", "-1");
    for created in admin
        .create_topics(&[compacted, history], &AdminOptions::new())
        .await
        .unwrap()
    {
        created.expect("created");
    }
    produce_keyed(&source.addr, "compacted", 2000, 50, 20).await;
    produce_keyed(&source.addr, "history", 2000, 2000, 200).await;
    // The source compacts (offsets with gaps) and tiers (the early history only in its bucket).
    wait_until("compaction on the source", Duration::from_secs(60), || {
        let read = common::consume_all(&source.addr, "compacted", 1, 2000, Duration::from_secs(3));
        (read.len() < 1000).then_some(())
    });
    wait_until(
        "the early history only in the bucket",
        Duration::from_secs(60),
        || {
            (!source
                .data_dir
                .join("history-0/00000000000000000000.log")
                .exists())
            .then_some(())
        },
    );

    let created = strata(&[
        "link",
        "create",
        "west",
        "--source",
        &source.addr,
        "--topics",
        "compacted|history",
        "--admin",
        &dest.admin_addr,
    ]);
    assert!(created.status.success(), "{created:?}");
    let ends = |addr: &str, topic: &str| {
        let consumer: BaseConsumer = common::client(addr).create().unwrap();
        consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(5))
            .ok()
    };
    for topic in ["compacted", "history"] {
        let wanted = ends(&source.addr, topic).unwrap();
        wait_until("the mirror caught up", Duration::from_secs(60), || {
            (ends(&dest.addr, topic)?.1 == wanted.1).then_some(())
        });
        let mirrored = fetched_batches(&dest.addr, topic, 0).await;
        let original = fetched_batches(&source.addr, topic, 0).await;
        assert!(!original.is_empty());
        assert!(
            mirrored == original,
            "{topic}: the mirror's batches differ from the source's ({} and {} bytes)",
            mirrored.len(),
            original.len()
        );
    }
    let consumed = common::consume_all(&dest.addr, "compacted", 1, 2000, Duration::from_secs(5));
    // Compaction left a gap between the log start and the first record; the mirror has it.
    let (low, _) = ends(&dest.addr, "compacted").unwrap();
    let first = consumed.first().expect("records").offset;
    assert!(
        first > low + 1,
        "the compacted source's offset gap is kept (log start {low}, first record {first})"
    );
    // Configs follow the source's, except those the destination decides.
    let configs = topic_configs(&dest.addr, "compacted").await;
    assert_eq!(
        configs.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    assert_eq!(
        configs.get("max.message.bytes").map(String::as_str),
        Some("500000")
    );
    assert_eq!(configs.get("min.insync.replicas"), None, "{configs:?}");
    assert_eq!(
        configs.get("strata.mirror.of").map(String::as_str),
        Some("west/compacted")
    );

    // A link that starts at the latest offsets copies no history, only what comes after.
    let late = strata(&[
        "link",
        "create",
        "late",
        "--source",
        &source.addr,
        "--topics",
        "history",
        "--start",
        "latest",
        "--prefix",
        "late.",
        "--admin",
        &dest.admin_addr,
    ]);
    assert!(late.status.success(), "{late:?}");
    wait_until(
        "the latest-start mirror placed",
        Duration::from_secs(30),
        || (ends(&dest.addr, "late.history")? == (2000, 2000)).then_some(()),
    );
    produce_keyed(&source.addr, "history", 10, 10, 20).await;
    wait_until("the new records mirrored", Duration::from_secs(30), || {
        (ends(&dest.addr, "late.history")?.1 == 2010).then_some(())
    });
    let fresh = common::consume_all(&dest.addr, "late.history", 1, 10, Duration::from_secs(10));
    assert_eq!(fresh.len(), 10, "only the records after the link was made");
    assert_eq!(fresh[0].offset, 2000, "at the source's offsets");

    // A link back (active-active, with a prefix) mirrors the destination's own topics but
    // never its mirrors.
    let local = NewTopic::new("local-only", 1, TopicReplication::Fixed(1));
    let dest_admin: AdminClient<DefaultClientContext> =
        common::client(&dest.addr).create().unwrap();
    dest_admin
        .create_topics(&[local], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created");
    let back = strata(&[
        "link",
        "create",
        "back",
        "--source",
        &dest.addr,
        "--prefix",
        "west.",
        "--admin",
        &source.admin_addr,
    ]);
    assert!(back.status.success(), "{back:?}");
    wait_until(
        "the destination's own topic mirrored back",
        Duration::from_secs(30),
        || topic_exists(&source.addr, "west.local-only").then_some(()),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !topic_exists(&source.addr, "west.compacted"),
        "a mirror was mirrored back"
    );
    assert!(
        !topic_exists(&source.addr, "west.history"),
        "a mirror was mirrored back"
    );
}

/// Values of every record in `topic` (one partition) on `addr`.
fn values_in(addr: &str, topic: &str, expected: usize) -> Vec<u32> {
    common::numbers(&common::consume_all(
        addr,
        topic,
        1,
        expected,
        Duration::from_secs(30),
    ))
}

/// Two single-node regions under `root`, `east` with a one-partition `topic`.
async fn two_regions(root: &std::path::Path, topic: &str) -> (BrokerProcess, BrokerProcess) {
    let east = BrokerProcess::start(&root.join("east"), &[]);
    let west = BrokerProcess::start(&root.join("west"), &[]);
    common::create_topic(&east.addr, topic, 1, &[]).await;
    (east, west)
}

/// `strata link create <name>` of `topic` from `source`, on the node at `admin`.
fn link_create(name: &str, source: &str, topic: &str, admin: &str) -> std::process::Output {
    strata(&[
        "link", "create", name, "--source", source, "--topics", topic, "--admin", admin,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_truncates_the_old_primary_and_keeps_what_it_cut_off() {
    const T: &str = "ledger";
    let root = tempfile::tempdir().unwrap();
    let (mut east, west) = two_regions(root.path(), T).await;
    produce_numbers(&east.addr, T, 0..1000, Some(0)).await;
    let link = |name: &str, source: &str, admin: &str| link_create(name, source, T, admin);
    assert!(
        link("from-east", &east.addr, &west.admin_addr)
            .status
            .success()
    );
    let end = |addr: &str| end_offset(addr, T, 0);
    wait_until("west mirrored east", Duration::from_secs(30), || {
        (end(&west.addr)? == 1000).then_some(())
    });
    // The link is cut; east accepts 100 more records west never sees, then east is lost.
    let paused = strata(&["link", "pause", "from-east", "--admin", &west.admin_addr]);
    assert!(paused.status.success(), "{paused:?}");
    std::thread::sleep(Duration::from_millis(1500));
    produce_numbers(&east.addr, T, 1000..1100, Some(0)).await;
    east.kill();
    assert_eq!(
        end(&west.addr),
        Some(1000),
        "the cut link brought nothing more"
    );
    let failover = strata(&[
        "mirror",
        "failover",
        "--all",
        "--link",
        "from-east",
        "--admin",
        &west.admin_addr,
    ]);
    assert!(failover.status.success(), "{failover:?}");
    produce_numbers(&west.addr, T, 2000..2200, Some(0)).await;

    // East returns with its 1,100 records and fails back: it mirrors west from where the
    // histories part (offset 1000), and keeps the 100 records west never had aside.
    east.restart("127.0.0.1:0");
    assert!(
        link("from-west", &west.addr, &east.admin_addr)
            .status
            .success()
    );
    let restored = strata(&[
        "mirror",
        "truncate-and-restore",
        "--all",
        "--link",
        "from-west",
        "--admin",
        &east.admin_addr,
    ]);
    assert!(restored.status.success(), "{restored:?}");
    assert!(
        String::from_utf8_lossy(&restored.stdout).contains("ledger: mirrors"),
        "{restored:?}"
    );
    wait_until("east converged to west", Duration::from_secs(30), || {
        (end(&east.addr)? == 1200).then_some(())
    });
    let mirrored = fetched_batches(&east.addr, T, 0).await;
    let primary = fetched_batches(&west.addr, T, 0).await;
    assert!(mirrored == primary, "east's log is west's, byte for byte");
    let mut values = values_in(&east.addr, T, 1200);
    values.sort_unstable();
    let expected: Vec<u32> = (0..1000).chain(2000..2200).collect();
    assert_eq!(values, expected);
    let mut cut = values_in(&east.addr, "ledger.strata-truncated", 100);
    cut.sort_unstable();
    assert_eq!(
        cut,
        (1000..1100).collect::<Vec<u32>>(),
        "exactly what east accepted after the cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_reverse_swaps_primary_and_mirror_without_loss() {
    const T: &str = "payments";
    let root = tempfile::tempdir().unwrap();
    let (east, west) = two_regions(root.path(), T).await;
    let link = |name: &str, source: &str, admin: &str| link_create(name, source, T, admin);
    assert!(
        link("from-east", &east.addr, &west.admin_addr)
            .status
            .success()
    );
    // The way back exists from the start: east never mirrors west's mirror (no loop).
    assert!(
        link("from-west", &west.addr, &east.admin_addr)
            .status
            .success()
    );
    produce_numbers(&east.addr, T, 0..1000, Some(0)).await;
    let reversed = strata(&[
        "mirror",
        "reverse",
        "--link",
        "from-east",
        "--admin",
        &west.admin_addr,
        "--peer-admin",
        &east.admin_addr,
        "--peer-link",
        "from-west",
    ]);
    assert!(reversed.status.success(), "{reversed:?}");
    // West is the primary now; east follows it.
    produce_numbers(&west.addr, T, 1000..1500, Some(0)).await;
    let end = |addr: &str| end_offset(addr, T, 0);
    wait_until("east follows west", Duration::from_secs(30), || {
        (end(&east.addr)? == 1500).then_some(())
    });
    let on_east = fetched_batches(&east.addr, T, 0).await;
    let on_west = fetched_batches(&west.addr, T, 0).await;
    assert!(on_east == on_west, "byte-identical after the swap");
    let mut values = values_in(&east.addr, T, 1500);
    values.sort_unstable();
    assert_eq!(
        values,
        (0..1500).collect::<Vec<u32>>(),
        "nothing lost or repeated"
    );
    assert!(
        !topic_exists(&east.addr, "payments.strata-truncated"),
        "a planned reverse cuts nothing off"
    );
}

/// A link reaches a source whose only listener it may use is SASL_SSL: `--source-config`
/// gives it the SCRAM user and the CA (sent inline, kept in the metadata log), the mirror
/// follows, the password is never shown, and without the settings, or with a wrong password,
/// the link is refused at creation, as a change of them with `set-source` is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_reaches_a_sasl_ssl_source_with_its_own_credentials() {
    use common::certs::{Ca, Request};
    const T: &str = "payments";
    let root = tempfile::tempdir().unwrap();
    let ca = Ca::new(root.path(), "ca");
    let server = ca.issue(&Request {
        name: "east",
        subject: &[("CN", "localhost")],
        server: true,
        days: 30,
        serial: 1,
    });
    let east = BrokerProcess::start(
        &root.path().join("east"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
            &format!("ssl.keystore.location={}", server.keystore.display()),
        ],
    );
    let west = BrokerProcess::start(&root.path().join("west"), &[]);
    let made = common::strata_tool(&east.addr, &["user", "create", "linker"], "linker-secret");
    assert!(made.status.success(), "{made:?}");
    common::create_topic(&east.addr, T, 1, &[]).await;
    produce_numbers(&east.addr, T, 0..50, Some(0)).await;
    let secured = east.listeners["SASL_SSL"].clone();
    let config = |password: &str| {
        let path = root.path().join(format!("source-{password}.properties"));
        std::fs::write(
            &path,
            format!(
                "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
                 sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"linker\" password=\"{password}\";\n\
                 ssl.truststore.location={}\n",
                ca.pem.display()
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let create = |extra: &[&str]| {
        let mut args = vec![
            "link", "create", "east", "--source", &secured, "--topics", T, "--admin",
        ];
        args.push(&west.admin_addr);
        args.extend_from_slice(extra);
        strata(&args)
    };
    for refused in [create(&[]), create(&["--source-config", &config("wrong")])] {
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("does not answer"),
            "{stderr}"
        );
    }
    let created = create(&["--source-config", &config("linker-secret")]);
    assert!(created.status.success(), "{created:?}");
    wait_until("west mirrored east", Duration::from_secs(30), || {
        (end_offset(&west.addr, T, 0)? == 50).then_some(())
    });
    assert_eq!(values_in(&west.addr, T, 50), (0..50).collect::<Vec<_>>());
    let (status, shown) = common::http_get(&west.admin_addr, "/v1/links/east");
    assert_eq!(status, 200);
    assert!(
        shown.contains(r#""sasl.jaas.config":"(hidden)""#)
            && shown.contains(r#""security.protocol":"SASL_SSL""#)
            && shown.contains("BEGIN CERTIFICATE")
            && !shown.contains("linker-secret"),
        "{shown}"
    );
    // The settings change with the source's address, and are checked as at creation.
    let set_source = |config: &str| {
        strata(&[
            "link",
            "set-source",
            "east",
            "--source",
            &secured,
            "--source-config",
            config,
            "--admin",
            &west.admin_addr,
        ])
    };
    let refused = set_source(&config("wrong"));
    assert!(!refused.status.success(), "{refused:?}");
    let changed = set_source(&config("linker-secret"));
    assert!(changed.status.success(), "{changed:?}");
    produce_numbers(&east.addr, T, 50..60, Some(0)).await;
    wait_until("west mirrors on", Duration::from_secs(30), || {
        (end_offset(&west.addr, T, 0)? == 60).then_some(())
    });
}
