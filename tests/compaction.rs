//! Log compaction with a real client: a compacted topic with many overwrites shrinks to about
//! one record per key, tombstones vanish after `delete.retention.ms`, and kill -9 in the middle
//! of cleaning loses nothing.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{BrokerProcess, client, create_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "profiles";

/// Produces `rounds` values for each of `keys` keys (`None`: tombstones), acks=all.
async fn overwrite(addr: &str, prefix: &str, keys: usize, rounds: usize, tombstone: bool) {
    let producer: FutureProducer = client(addr)
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    // A round at a time, so that rounds land in batches (and segments) of their own.
    for round in 0..rounds {
        let mut pending = Vec::new();
        for k in 0..keys {
            let key = format!("{prefix}{k}");
            let value = format!("{prefix}{k}-round{round}-{}", "x".repeat(64));
            let mut record = FutureRecord::to(TOPIC).key(&key);
            if !tombstone {
                record = record.payload(&value);
            }
            pending.push(producer.send_result(record).expect("queued"));
        }
        for delivery in pending {
            delivery.await.unwrap().expect("acknowledged");
        }
    }
}

/// Everything in the topic from the start: (offset, key, value) in order.
fn read_all(addr: &str) -> Vec<(i64, String, Option<String>)> {
    let consumer: BaseConsumer = client(addr)
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut position = 0;
    while position < high {
        assert!(
            Instant::now() < deadline,
            "reading stalled at {position} of {high}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume");
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            out.push((
                message.offset(),
                text(message.key()).unwrap_or_default(),
                text(message.payload()),
            ));
            position = message.offset() + 1;
        }
    }
    out
}

fn latest(records: &[(i64, String, Option<String>)]) -> BTreeMap<String, Option<String>> {
    records
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrites_shrink_and_tombstones_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["log.cleaner.backoff.ms=100"]);
    create_topic(
        &broker.addr,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "1000"),
        ],
    )
    .await;
    overwrite(&broker.addr, "k", 50, 40, false).await;
    let expected = latest(&read_all(&broker.addr));
    assert_eq!(expected.len(), 50);
    // 2000 records of 50 keys: compaction leaves the latest of each, plus whatever still sits
    // in the active segment (the last round).
    wait_until("compaction", Duration::from_secs(30), || {
        read_all(&broker.addr).len() <= 100
    });
    let compacted = read_all(&broker.addr);
    assert_eq!(
        latest(&compacted),
        expected,
        "every key keeps its latest value"
    );
    assert!(
        compacted.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets stay in order"
    );
    assert!(
        broker.log().contains("compacted"),
        "the cleaner logged its pass"
    );

    // Tombstones for ten keys, then more data so that they end up in cleaned segments.
    overwrite(&broker.addr, "k", 10, 1, true).await;
    overwrite(&broker.addr, "filler", 50, 10, false).await;
    wait_until(
        "the deleted keys to vanish",
        Duration::from_secs(30),
        || {
            let records = read_all(&broker.addr);
            !records.iter().any(|(_, k, _)| {
                k.strip_prefix('k')
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n < 10)
            })
        },
    );
    let now = latest(&read_all(&broker.addr));
    for k in 10..50 {
        let key = format!("k{k}");
        assert_eq!(now.get(&key), expected.get(&key), "{key} survived");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_cleaning_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &["log.cleaner.backoff.ms=50"]);
    create_topic(
        &broker.addr,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "16384"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    let mut expected = BTreeMap::new();
    for crash in 0..5u64 {
        overwrite(&broker.addr, "key", 200, 10, false).await;
        expected = latest(&read_all(&broker.addr));
        // Kill at a different moment of the cleaner's work each time.
        std::thread::sleep(Duration::from_millis(20 + 37 * crash));
        broker.kill();
        broker.restart("127.0.0.1:0");
        let after = latest(&read_all(&broker.addr));
        assert_eq!(after, expected, "crash {crash} changed what a reader sees");
    }
    wait_until(
        "compaction after the crashes",
        Duration::from_secs(30),
        || read_all(&broker.addr).len() < 2 * 200 + 300,
    );
    assert_eq!(latest(&read_all(&broker.addr)), expected);
}
