//! Disaster recovery with a cluster link: a source node under continuous acks=all load and a
//! consumer group, mirrored into a three-node destination (RF 3); every source process is
//! killed with SIGKILL, `strata mirror failover --all` runs, producers move to the destination
//! and the group resumes at its synced offsets. Prints RPO (acknowledged on the source,
//! missing on the destination) and RTO (failover command to first produce accepted and to
//! first record consumed).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use common::cluster::{three_nodes, wait_until};
use common::link::strata;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "events";
const PARTITIONS: i32 = 3;
const GROUP: &str = "app";

/// Sends records `0..` to `addr` until `stop`, about 1,000 a second, acks=all and idempotent;
/// each acknowledged value with when its acknowledgement came.
async fn load(addr: String, stop: Arc<AtomicBool>) -> Vec<(u32, Instant)> {
    let producer: FutureProducer = common::client(&addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut sends = Vec::new();
    let mut n = 0u32;
    while !stop.load(Ordering::Acquire) {
        for _ in 0..10 {
            let (producer, acked) = (producer.clone(), Arc::clone(&acked));
            let value = n;
            sends.push(tokio::spawn(async move {
                let text = value.to_string();
                let sent = producer
                    .send(
                        FutureRecord::to(TOPIC).key(&text).payload(&text),
                        Duration::from_secs(5),
                    )
                    .await;
                if sent.is_ok() {
                    acked.lock().unwrap().push((value, Instant::now()));
                }
            }));
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for send in sends {
        let _ = send.await;
    }
    acked.lock().unwrap().clone()
}

/// A member of `GROUP` on `addr` reading (auto commit every 200 ms) until `stop`.
fn group_member(addr: String, stop: Arc<AtomicBool>) -> usize {
    let consumer: BaseConsumer = common::client(&addr)
        .set("group.id", GROUP)
        .set("auto.commit.interval.ms", "200")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut read = 0;
    while !stop.load(Ordering::Acquire) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            read += 1;
        }
    }
    read
}

fn committed(addr: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = common::client(addr)
        .set("group.id", GROUP)
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(TOPIC, p);
    }
    let Ok(found) = consumer.committed_offsets(list, Duration::from_secs(5)) else {
        return BTreeMap::new();
    };
    (0..PARTITIONS)
        .filter_map(|p| {
            let offset = found.find_partition(TOPIC, p)?.offset().to_raw()?;
            (offset >= 0).then_some((p, offset))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_after_the_source_region_is_killed_loses_little_and_resumes_fast() {
    let root = tempfile::tempdir().unwrap();
    let mut source = BrokerProcess::start(&root.path().join("source"), &[]);
    let (dest, _) = three_nodes(
        &root.path().join("dest"),
        &[
            "default.replication.factor=3".to_owned(),
            "min.insync.replicas=2".to_owned(),
        ],
    );
    let dest_bootstrap = dest
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
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
    let created = strata(&[
        "link",
        "create",
        "dr",
        "--source",
        &source.addr,
        "--groups",
        GROUP,
        "--offset-sync-ms",
        "500",
        "--admin",
        &dest[0].admin_addr,
    ]);
    assert!(created.status.success(), "{created:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let stop_reading = Arc::new(AtomicBool::new(false));
    let producing = tokio::spawn(load(source.addr.clone(), Arc::clone(&stop)));
    let consuming = tokio::task::spawn_blocking({
        let (addr, stop) = (source.addr.clone(), Arc::clone(&stop_reading));
        move || group_member(addr, stop)
    });
    tokio::time::sleep(Duration::from_secs(6)).await;
    // The group's member leaves just before the loss: librdkafka's consumer close can wait
    // forever for a coordinator that died, which hung this test once.
    stop_reading.store(true, Ordering::Release);
    let read_on_source = consuming.await.unwrap();
    // Its last commits reach the destination (offset sync every 500 ms) before the loss.
    wait_until(
        "the group's offsets synced",
        Duration::from_secs(30),
        || (!committed(&dest_bootstrap).is_empty()).then_some(()),
    );
    // The region is lost: the source process dies mid-load.
    source.kill();
    let killed_at = Instant::now();
    stop.store(true, Ordering::Release);
    let acked = producing.await.unwrap();
    assert!(acked.len() > 1000, "{} acknowledged", acked.len());
    assert!(read_on_source > 0);
    let synced = committed(&dest_bootstrap);
    assert!(
        !synced.is_empty(),
        "the group's offsets were synced before the loss"
    );

    let failover_started = Instant::now();
    let failover = strata(&[
        "mirror",
        "failover",
        "--all",
        "--link",
        "dr",
        "--admin",
        &dest[1].admin_addr,
    ]);
    assert!(failover.status.success(), "{failover:?}");
    // Producers move to the destination.
    let producer: FutureProducer = common::client(&dest_bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(TOPIC).key("after").payload("after"),
            Duration::from_secs(30),
        )
        .await
        .expect("a produce accepted after failover");
    let first_produce = failover_started.elapsed();
    // The group resumes where its offsets were synced.
    let consumer: BaseConsumer = common::client(&dest_bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut first_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let first_consume = wait_until("a record consumed", Duration::from_secs(30), || {
        let message = consumer.poll(Duration::from_millis(100))?.ok()?;
        first_offsets.insert(message.partition(), message.offset());
        Some(failover_started.elapsed())
    });
    for (partition, offset) in &first_offsets {
        if let Some(synced) = synced.get(partition) {
            assert_eq!(
                offset, synced,
                "partition {partition} resumes at its synced offset"
            );
        }
    }

    // RPO: what the source acknowledged that the destination lacks.
    let ends: i64 = {
        let probe: BaseConsumer = common::client(&dest_bootstrap).create().unwrap();
        (0..PARTITIONS)
            .map(|p| {
                probe
                    .fetch_watermarks(TOPIC, p, Duration::from_secs(5))
                    .unwrap()
                    .1
            })
            .sum()
    };
    let mirrored: HashSet<u32> = common::consume_all(
        &dest_bootstrap,
        TOPIC,
        PARTITIONS,
        ends as usize,
        Duration::from_secs(60),
    )
    .iter()
    .filter_map(|c| String::from_utf8_lossy(c.value.as_deref()?).parse().ok())
    .collect();
    let missing: Vec<&(u32, Instant)> = acked
        .iter()
        .filter(|(v, _)| !mirrored.contains(v))
        .collect();
    let rpo = missing
        .iter()
        .map(|(_, at)| killed_at.saturating_duration_since(*at))
        .max()
        .unwrap_or_default();
    println!(
        "cluster link failover: {} acknowledged on the source, {} missing on the destination (RPO {} ms); RTO: first produce {} ms, first record consumed {} ms after `strata mirror failover`",
        acked.len(),
        missing.len(),
        rpo.as_millis(),
        first_produce.as_millis(),
        first_consume.as_millis()
    );
    assert!(rpo < Duration::from_secs(5), "RPO {rpo:?}");
    assert!(
        first_consume < Duration::from_secs(30),
        "RTO {first_consume:?}"
    );
    for mut node in dest {
        node.stop();
    }
}
