//! Proves that retention deletes whole old segments by size and by time, moves the log start
//! offset, and that consumers starting from the beginning begin at the new start.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{BrokerProcess, client, consume_all, create_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn produce(addr: &str, topic: &str, count: usize, timestamp: i64) {
    let producer: FutureProducer = client(addr).set("linger.ms", "0").create().unwrap();
    for i in 0..count {
        let value = format!("{i:04}-{}", "r".repeat(200));
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .payload(&value)
                    .timestamp(timestamp),
                Duration::from_secs(5),
            )
            .await
            .expect("acknowledged");
    }
}

fn watermarks(addr: &str, topic: &str) -> (i64, i64) {
    let consumer: BaseConsumer = client(addr).create().unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .unwrap()
}

/// Waits until the log start is at least `at_least` and retention (every 200 ms) has stopped
/// moving it, so that what follows sees the settled log.
async fn wait_for_log_start(addr: &str, topic: &str, at_least: i64) -> (i64, i64) {
    let mut previous = None;
    for _ in 0..100 {
        let marks = watermarks(addr, topic);
        if marks.0 >= at_least && previous == Some(marks) {
            return marks;
        }
        previous = Some(marks);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    watermarks(addr, topic)
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_old_segments_by_size_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["log.retention.check.interval.ms=200"],
    );

    // By size: 1 KiB segments, keep about 4 KiB.
    create_topic(
        &broker.addr,
        "sized",
        1,
        &[("segment.bytes", "1024"), ("retention.bytes", "4096")],
    )
    .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    produce(&broker.addr, "sized", 100, now).await;
    let (low, high) = wait_for_log_start(&broker.addr, "sized", 50).await;
    assert_eq!(high, 100);
    assert!(
        (50..100).contains(&low),
        "log start after size retention: {low}"
    );
    let consumed = consume_all(
        &broker.addr,
        "sized",
        1,
        (high - low) as usize,
        Duration::from_secs(10),
    );
    assert_eq!(
        consumed.first().map(|r| r.offset),
        Some(low),
        "a consumer from the beginning starts at the log start"
    );
    assert_eq!(consumed.len() as i64, high - low);
    let segments = std::fs::read_dir(dir.path().join("data/sized-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert!(segments <= 6, "{segments} segments left");

    // By time: records an hour old under a one-minute retention go, the active segment too.
    create_topic(
        &broker.addr,
        "timed",
        1,
        &[("segment.bytes", "2048"), ("retention.ms", "60000")],
    )
    .await;
    produce(&broker.addr, "timed", 40, now - 3_600_000).await;
    let (low, high) = wait_for_log_start(&broker.addr, "timed", 40).await;
    assert_eq!((low, high), (40, 40), "everything expired");
    // Infinite retention keeps everything.
    create_topic(
        &broker.addr,
        "forever",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "-1")],
    )
    .await;
    produce(&broker.addr, "forever", 40, now - 3_600_000_000).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(watermarks(&broker.addr, "forever"), (0, 40));
}
