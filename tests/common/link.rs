//! Helpers of the cluster-link tests: the bytes a consumer fetches, a group's committed
//! offsets, numbered records, the `strata` CLI.

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::wire::Conn;

/// Runs the `strata` CLI with `args`.
pub fn strata(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap()
}

/// Every whole batch of `topic`'s `partition` below its high watermark, as a consumer's Fetch
/// (v12) returns the bytes: what a mirror must hold identically.
pub async fn fetched_batches(addr: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut conn = Conn::open(addr).await;
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(4 << 20),
                    ]),
            ]);
        let response = conn.call(12, &request).await.expect("Fetch answered");
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch {topic}-{partition} at {offset}");
        let records = data.records.clone().unwrap_or_default();
        // Whole batches only (a response may end in part of one); the offset after the last.
        let mut whole = 0;
        let mut next = offset;
        while records.len() >= whole + 27 {
            let len = i32::from_be_bytes(records[whole + 8..whole + 12].try_into().unwrap());
            let end = whole + 12 + len as usize;
            if end > records.len() {
                break;
            }
            let base = i64::from_be_bytes(records[whole..whole + 8].try_into().unwrap());
            let delta = i32::from_be_bytes(records[whole + 23..whole + 27].try_into().unwrap());
            next = base + i64::from(delta) + 1;
            whole = end;
        }
        out.extend_from_slice(&records[..whole]);
        if whole == 0 || next >= data.high_watermark {
            return out;
        }
        offset = next;
    }
}

/// `group`'s committed offset of each of `topic`'s `partitions`, -1 where it has none.
pub fn committed_offsets(addr: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = super::client(addr).set("group.id", group).create().unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let Ok(found) = consumer.committed_offsets(list, Duration::from_secs(5)) else {
        return Vec::new();
    };
    (0..partitions)
        .map(|p| {
            found
                .find_partition(topic, p)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0)
                .unwrap_or(-1)
        })
        .collect()
}

/// Produces `values` (key and value the number, to `partition` when given) with an
/// idempotent acks=all producer, one at a time; panics unless each is acknowledged.
pub async fn produce_numbers(
    addr: &str,
    topic: &str,
    values: std::ops::Range<u32>,
    partition: Option<i32>,
) {
    let producer: FutureProducer = super::client(addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    for v in values {
        let text = v.to_string();
        let mut record = FutureRecord::to(topic).key(&text).payload(&text);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(e, _)| panic!("record {v} not acknowledged: {e}"));
    }
}

/// The high watermark of `topic`'s `partition` at `addr`, if it answers.
pub fn end_offset(addr: &str, topic: &str, partition: i32) -> Option<i64> {
    let consumer: BaseConsumer = super::client(addr).create().ok()?;
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(5))
        .ok()
        .map(|w| w.1)
}
