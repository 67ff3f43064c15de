//! Proves that records produced with acks=all by librdkafka come back unchanged — keys, values,
//! headers, timestamps, offsets, per-partition order — before and after a broker restart, and
//! that ListOffsets by timestamp finds the first record at or after a time.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{BrokerProcess, Consumed, client, consume_all, create_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const RECORDS: usize = 2_000;
const PARTITIONS: i32 = 4;
const BASE_TS: i64 = 1_700_000_000_000;

struct Sent {
    key: String,
    value: String,
    header: String,
    timestamp: i64,
}

async fn produce(addr: &str, topic: &str) -> HashMap<(i32, i64), Sent> {
    let producer: FutureProducer = client(addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let mut pending = Vec::new();
    for i in 0..RECORDS {
        let sent = Sent {
            key: format!("key-{}", i % 97),
            value: format!("value-{i}-{}", "x".repeat(i % 300)),
            header: format!("h{i}"),
            timestamp: BASE_TS + i as i64,
        };
        let record = FutureRecord::to(topic)
            .key(&sent.key)
            .payload(&sent.value)
            .timestamp(sent.timestamp)
            .headers(OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(sent.header.as_bytes()),
            }));
        let delivery = producer.send_result(record).expect("queued");
        pending.push((delivery, sent));
    }
    let mut acked = HashMap::new();
    for (delivery, sent) in pending {
        let delivery = delivery
            .await
            .expect("delivery report")
            .expect("acknowledged");
        assert!(
            acked
                .insert((delivery.partition, delivery.offset), sent)
                .is_none(),
            "offset acknowledged twice"
        );
    }
    acked
}

fn check(consumed: &[Consumed], acked: &HashMap<(i32, i64), Sent>) {
    assert_eq!(
        consumed.len(),
        acked.len(),
        "every acknowledged record is read once"
    );
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    for record in consumed {
        let expected_offset = next_offset.entry(record.partition).or_insert(0);
        assert_eq!(
            record.offset, *expected_offset,
            "offsets are dense and in order"
        );
        *expected_offset += 1;
        let sent = &acked[&(record.partition, record.offset)];
        assert_eq!(record.key.as_deref(), Some(sent.key.as_bytes()));
        assert_eq!(record.value.as_deref(), Some(sent.value.as_bytes()));
        assert_eq!(
            record.headers,
            vec![("seq".to_owned(), sent.header.as_bytes().to_vec())]
        );
        assert_eq!(record.timestamp, Some(sent.timestamp));
    }
    let keys_per_partition: HashMap<&str, i32> = acked
        .iter()
        .map(|((p, _), s)| (s.key.as_str(), *p))
        .collect();
    for ((partition, _), sent) in acked {
        assert_eq!(
            keys_per_partition[sent.key.as_str()],
            *partition,
            "a key always lands on one partition"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_all_records_round_trip_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    create_topic(&broker.addr, "orders", PARTITIONS, &[]).await;
    let acked = produce(&broker.addr, "orders").await;
    let consumed = consume_all(
        &broker.addr,
        "orders",
        PARTITIONS,
        RECORDS,
        Duration::from_secs(30),
    );
    check(&consumed, &acked);

    assert!(broker.stop(), "SIGTERM exits 0; log:\n{}", broker.log());
    broker.restart("127.0.0.1:0");
    let consumed = consume_all(
        &broker.addr,
        "orders",
        PARTITIONS,
        RECORDS,
        Duration::from_secs(30),
    );
    check(&consumed, &acked);

    // ListOffsets by timestamp: the first record at or after the time, per partition.
    let target = BASE_TS + 1_000;
    let consumer: BaseConsumer = client(&broker.addr)
        .set("group.id", "lookup")
        .create()
        .unwrap();
    let mut query = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        query
            .add_partition_offset("orders", partition, Offset::Offset(target))
            .unwrap();
    }
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .expect("ListOffsets answered");
    for element in found.elements() {
        let expected = acked
            .iter()
            .filter(|((p, _), s)| *p == element.partition() && s.timestamp >= target)
            .map(|((_, offset), _)| *offset)
            .min()
            .expect("records after the target exist");
        assert_eq!(
            element.offset(),
            Offset::Offset(expected),
            "partition {}",
            element.partition()
        );
    }
    let mut late = TopicPartitionList::new();
    late.add_partition_offset("orders", 0, Offset::Offset(BASE_TS + 10 * RECORDS as i64))
        .unwrap();
    let found = consumer
        .offsets_for_times(late, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        found.elements()[0].offset(),
        Offset::End,
        "no record that late: end of log"
    );
    assert!(broker.stop());
}
