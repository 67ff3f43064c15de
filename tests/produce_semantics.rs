//! Proves produce and fetch semantics at the wire level, where clients hide them: idempotent
//! duplicates answered with the original offset, OUT_OF_ORDER_SEQUENCE_NUMBER for a gap,
//! INVALID_PRODUCER_EPOCH after an epoch bump, LogAppendTime stamping, and a long-polling
//! Fetch woken by an append instead of waiting out `max_wait_ms`.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::BrokerProcess;
use common::wire::{Conn, encode_batch};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// One batch of `count` records from producer `(id, epoch)` starting at `sequence`.
fn batch(producer: (i64, i16), sequence: i32, count: i32, timestamp: i64) -> Bytes {
    let values: Vec<Bytes> = (0..count)
        .map(|i| Bytes::from(format!("seq-{}", sequence + i)))
        .collect();
    encode_batch(&values, producer, sequence, timestamp)
}

async fn produce(conn: &mut Conn, topic: &str, records: Bytes) -> (i16, i64, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let response = conn.call(9, &request).await.expect("Produce answered");
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset, p.log_append_time_ms)
}

async fn create(conn: &mut Conn, topic: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string((*k).into()))
                .with_value(Some(StrBytes::from_string((*v).into())))
        })
        .collect();
    let request = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs),
    ]);
    let response = conn.call(7, &request).await.unwrap();
    assert_eq!(response.topics[0].error_code, 0);
}

async fn init_producer(conn: &mut Conn, existing: Option<(i64, i16)>) -> (i64, i16) {
    let (id, epoch) = existing.unwrap_or((-1, -1));
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    let response = conn.call(4, &request).await.unwrap();
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotence_errors_log_append_time_and_long_polls() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let mut conn = Conn::open(&broker.addr).await;
    create(&mut conn, "idem", &[]).await;

    let producer = init_producer(&mut conn, None).await;
    assert_eq!(producer.1, 0);
    assert_eq!(
        produce(&mut conn, "idem", batch(producer, 0, 3, 1)).await.0,
        0
    );
    assert_eq!(
        produce(&mut conn, "idem", batch(producer, 3, 2, 1)).await,
        (0, 3, -1)
    );
    // A retry of the first batch: acknowledged with its original offset, not appended.
    assert_eq!(
        produce(&mut conn, "idem", batch(producer, 0, 3, 1)).await,
        (0, 0, -1)
    );
    // A gap in sequences.
    assert_eq!(
        produce(&mut conn, "idem", batch(producer, 9, 1, 1)).await.0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    // KIP-360 epoch bump; the old epoch is fenced and the new one starts at sequence 0.
    let bumped = init_producer(&mut conn, Some(producer)).await;
    assert_eq!(bumped, (producer.0, producer.1 + 1));
    assert_eq!(
        produce(&mut conn, "idem", batch(bumped, 0, 1, 1)).await,
        (0, 5, -1)
    );
    assert_eq!(
        produce(&mut conn, "idem", batch(producer, 5, 1, 1)).await.0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
    assert_eq!(
        produce(&mut conn, "idem", batch(bumped, 3, 1, 1)).await.0,
        45
    );
    let list = ListOffsetsRequest::default().with_topics(vec![
        kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
            .with_name(name("idem"))
            .with_partitions(vec![
                kafka_protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ]),
    ]);
    let end = conn.call(8, &list).await.unwrap();
    assert_eq!(
        end.topics[0].partitions[0].offset, 6,
        "nothing appended twice or out of order"
    );

    // LogAppendTime: the broker's clock replaces the producer's timestamps.
    create(
        &mut conn,
        "stamped",
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (code, _, append_time) = produce(&mut conn, "stamped", batch((-1, -1), -1, 2, 42)).await;
    assert_eq!(code, 0);
    assert!(
        append_time >= before,
        "log append time {append_time} is the broker's clock"
    );
    let fetch = |offset: i64, wait: i32| {
        FetchRequest::default()
            .with_max_wait_ms(wait)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name("stamped"))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    };
    let response = conn.call(12, &fetch(0, 0)).await.unwrap();
    let records = response.responses[0].partitions[0].records.clone().unwrap();
    // Clients take a LogAppendTime batch's max timestamp (bytes 35..43) for all its records.
    let max_timestamp = i64::from_be_bytes(records[35..43].try_into().unwrap());
    assert_eq!(max_timestamp, append_time);
    let set = RecordBatchDecoder::decode(&mut records.clone()).unwrap();
    assert!(
        set.records
            .iter()
            .all(|r| r.timestamp_type == TimestampType::LogAppend)
    );

    // Long polling: a fetch at the log end parks until an append wakes it.
    let mut poller = Conn::open(&broker.addr).await;
    let started = Instant::now();
    let parked = tokio::spawn(async move {
        let response = poller.call(12, &fetch(2, 10_000)).await.unwrap();
        (response, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!parked.is_finished(), "the fetch waits for data");
    produce(&mut conn, "stamped", batch((-1, -1), -1, 1, 42)).await;
    let (response, waited) = parked.await.unwrap();
    assert!(
        waited < Duration::from_secs(5),
        "woken by the append after {waited:?}, not by max_wait_ms"
    );
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.high_watermark, 3);
    assert!(!partition.records.as_ref().unwrap().is_empty());

    // Pipelining: requests sent back to back are answered in order, even when a later one is
    // ready before an earlier long poll.
    let mut pipelined = Conn::open(&broker.addr).await;
    pipelined
        .send_as(1, 3, &ApiVersionsRequest::default())
        .await;
    pipelined.send_as(2, 12, &fetch(3, 500)).await;
    pipelined
        .send_as(3, 12, &MetadataRequest::default().with_topics(None))
        .await;
    pipelined
        .send_as(4, 3, &ApiVersionsRequest::default())
        .await;
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(pipelined.next_correlation_id().await.expect("answered"));
    }
    assert_eq!(order, vec![1, 2, 3, 4]);

    // With no data, max_wait_ms bounds the wait.
    let started = Instant::now();
    let response = conn.call(12, &fetch(3, 400)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "waited {:?}",
        started.elapsed()
    );
    assert!(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .is_none_or(|r| r.is_empty())
    );
}

/// With acks=0 nobody waits for the fsync, yet on fsync-before-ack topics the high watermark
/// follows the fsync: the records must become readable without waiting for the flush
/// scheduler (set to run hourly here, so only the produce path can make them visible).
#[tokio::test(flavor = "multi_thread")]
async fn acks_0_records_become_readable_without_the_flush_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["log.flush.scheduler.interval.ms=3600000"],
    );
    let mut conn = Conn::open(&broker.addr).await;
    create(&mut conn, "fire-and-forget", &[]).await;
    let request = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("fire-and-forget"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch((-1, -1), -1, 3, 1))),
                ]),
        ]);
    conn.send(9, &request).await;
    let latest = ListOffsetsRequest::default().with_topics(vec![
        kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
            .with_name(name("fire-and-forget"))
            .with_partitions(vec![
                kafka_protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ]),
    ]);
    let started = Instant::now();
    loop {
        // acks=0 gets no response, so the next answer on this connection is the ListOffsets one.
        let response = conn.call(8, &latest).await.expect("ListOffsets answered");
        if response.topics[0].partitions[0].offset == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "acks=0 records never became readable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
