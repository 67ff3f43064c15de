//! Proves that every record acknowledged before a `kill -9` is readable after restart, at the
//! offset it was acknowledged with, while producers were writing to several partitions.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BrokerProcess, client, consume_all, create_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments so that the crash also lands near rolls.
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &["log.segment.bytes=65536"]);
    create_topic(&broker.addr, "crash", PARTITIONS, &[]).await;

    let acked: Arc<Mutex<Vec<(i32, i64, String)>>> = Arc::default();
    let producer: FutureProducer = client(&broker.addr)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "1500")
        .create()
        .expect("producer");
    let mut writers = Vec::new();
    for writer in 0..4 {
        let producer = producer.clone();
        let acked = Arc::clone(&acked);
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let value = format!("w{writer}-r{i}-{}", "p".repeat(200));
                match producer
                    .send(
                        FutureRecord::<(), _>::to("crash").payload(&value),
                        Duration::from_secs(1),
                    )
                    .await
                {
                    Ok(delivery) => {
                        acked
                            .lock()
                            .unwrap()
                            .push((delivery.partition, delivery.offset, value))
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the load run, then crash the broker mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    drop(producer);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the load produced too little before the crash: {}",
        acked.len()
    );

    broker.restart("127.0.0.1:0");
    // The log may also hold records appended but never acknowledged: read to the end.
    let watermarks: BaseConsumer = client(&broker.addr).create().unwrap();
    let total: i64 = (0..PARTITIONS)
        .map(|p| {
            watermarks
                .fetch_watermarks("crash", p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum();
    assert!(
        total >= acked.len() as i64,
        "{total} records in the log, {} acknowledged",
        acked.len()
    );
    let consumed = consume_all(
        &broker.addr,
        "crash",
        PARTITIONS,
        total as usize,
        Duration::from_secs(30),
    );
    let by_position: std::collections::HashMap<(i32, i64), &Option<Vec<u8>>> = consumed
        .iter()
        .map(|r| ((r.partition, r.offset), &r.value))
        .collect();
    let log = broker.log();
    let log_tail = &log[log.len().saturating_sub(4000)..];
    for (partition, offset, value) in &acked {
        let found = by_position.get(&(*partition, *offset));
        assert_eq!(
            found.and_then(|v| v.as_deref()),
            Some(value.as_bytes()),
            "acknowledged record at {partition}/{offset} is missing or different after kill -9 ({} acked, {} read); broker log:\n{log_tail}",
            acked.len(),
            consumed.len()
        );
    }
    assert!(
        broker.log().contains("opening data directory"),
        "{}",
        broker.log()
    );
    assert!(broker.stop());
}
