//! Proves the transactional data plane with real consumers: transactional batches of two
//! producers written on the wire, ended by WriteTxnMarkers (one aborted, one committed, one
//! left open); librdkafka's consumer (read_committed by default) and the Java consumer with
//! `isolation.level=read_committed` see only committed records and stop at the open
//! transaction, read_uncommitted consumers see everything, ListOffsets answers the last stable
//! offset to read_committed askers, and all of it holds after a kill -9 and restart.
//!
//! No coordinator knows these producers, so the brokers run without KIP-890's verification
//! (`transaction.partition.verification.enable=false`), which would refuse their batches.

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::BrokerProcess;
use common::wire::{Conn, encode_batch, encode_txn_batch};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "txn";
const A: i64 = 1001;
const B: i64 = 1002;
/// Transactional batches are taken without asking a coordinator.
const UNVERIFIED: &str = "transaction.partition.verification.enable=false";

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

async fn produce(conn: &mut Conn, records: Bytes, transactional_id: Option<&str>) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_owned()))),
        )
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(TOPIC))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let response = conn.call(9, &request).await.expect("Produce answered");
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
}

async fn marker(conn: &mut Conn, producer_id: i64, commit: bool) {
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(0)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![
                WritableTxnMarkerTopic::default()
                    .with_name(name(TOPIC))
                    .with_partition_indexes(vec![0]),
            ]),
    ]);
    let response = conn
        .call(1, &request)
        .await
        .expect("WriteTxnMarkers answered");
    assert_eq!(response.markers[0].topics[0].partitions[0].error_code, 0);
}

async fn latest(conn: &mut Conn, isolation_level: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(TOPIC))
                .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)]),
        ]);
    let response = conn.call(7, &request).await.expect("ListOffsets answered");
    response.topics[0].partitions[0].offset
}

/// Values read from the start with librdkafka at `isolation` until `count` arrived (or 10 s).
fn read(addr: &str, isolation: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = common::client(addr)
        .set("group.id", "txn-readers")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut values = Vec::new();
    while values.len() < count && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consumed");
            values.push(String::from_utf8_lossy(message.payload().unwrap()).into_owned());
        }
    }
    // Nothing more arrives: a read that stops short of more is what is being checked.
    let extra = consumer.poll(Duration::from_millis(500));
    assert!(
        extra.is_none(),
        "more than {count} at {isolation}: {values:?} {:?}",
        extra.map(|m| m.map(|m| m.offset()))
    );
    values
}

fn java_read_committed(addr: &str, expected: &[&str]) {
    let classpath = common::java::classpath("4.1.0");
    let output = Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataReadCommittedCheck")
        .arg(addr)
        .arg(TOPIC)
        .arg(expected.join(","))
        .output()
        .expect("java runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("OK read_committed"),
        "{text}"
    );
}

#[test]
fn read_committed_consumers_see_only_committed_records() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[UNVERIFIED]);
    let addr = broker.addr.clone();
    runtime.block_on(async {
        common::create_topic(&addr, TOPIC, 1, &[]).await;
        let mut conn = Conn::open(&addr).await;
        // Offsets: a0 a1 | b0 | a2 | n0 | abort(A) | commit(B) | a3 (open) | n1
        produce(
            &mut conn,
            encode_txn_batch(&["a0", "a1"], (A, 0), 0),
            Some("ta"),
        )
        .await;
        produce(&mut conn, encode_txn_batch(&["b0"], (B, 0), 0), Some("tb")).await;
        produce(&mut conn, encode_txn_batch(&["a2"], (A, 0), 2), Some("ta")).await;
        produce(
            &mut conn,
            encode_batch(&[Bytes::from("n0")], (-1, -1), -1, 1_000),
            None,
        )
        .await;
        marker(&mut conn, A, false).await;
        marker(&mut conn, B, true).await;
        produce(&mut conn, encode_txn_batch(&["a3"], (A, 0), 3), Some("ta")).await;
        produce(
            &mut conn,
            encode_batch(&[Bytes::from("n1")], (-1, -1), -1, 1_000),
            None,
        )
        .await;
        assert_eq!(
            latest(&mut conn, 1).await,
            7,
            "the last stable offset: a3's"
        );
        assert_eq!(latest(&mut conn, 0).await, 9, "the high watermark");
    });
    assert_eq!(read(&addr, "read_committed", 2), ["b0", "n0"]);
    assert_eq!(
        read(&addr, "read_uncommitted", 7),
        ["a0", "a1", "b0", "a2", "n0", "a3", "n1"]
    );
    java_read_committed(&addr, &["b0", "n0"]);

    // A crash with the transaction open: the restarted broker knows it, and the abort.
    broker.kill();
    broker.restart("127.0.0.1:0");
    let addr = broker.addr.clone();
    assert_eq!(read(&addr, "read_committed", 2), ["b0", "n0"]);
    runtime.block_on(async {
        let mut conn = Conn::open(&addr).await;
        assert_eq!(latest(&mut conn, 1).await, 7);
        // Its commit releases a3 and what follows.
        marker(&mut conn, A, true).await;
        assert_eq!(latest(&mut conn, 1).await, 10);
    });
    assert_eq!(read(&addr, "read_committed", 4), ["b0", "n0", "a3", "n1"]);
    java_read_committed(&addr, &["b0", "n0", "a3", "n1"]);
}

/// Proves read_committed reads of the remote tier: transactions committed and aborted in a
/// tiered topic are uploaded with their segments' aborted transactions, the local copies are
/// deleted, and librdkafka's read_committed consumer, reading from the bucket, still sees
/// only the committed records.
#[test]
fn read_committed_reads_of_the_remote_tier_drop_aborted_records() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = runtime.block_on(strata_tiering::testing::start(
        &dir.path().join("s3"),
        "tiered",
    ));
    let broker = BrokerProcess::start_env(
        &dir.path().join("data"),
        &[
            "remote.log.storage.url=s3://tiered/strata",
            "remote.log.manager.task.interval.ms=200",
            "log.retention.check.interval.ms=200",
            UNVERIFIED,
        ],
        &common::s3_env(&server),
    );
    let addr = broker.addr.clone();
    let mut expected = Vec::new();
    runtime.block_on(async {
        common::create_topic(
            &addr,
            TOPIC,
            1,
            &[
                ("remote.storage.enable", "true"),
                ("segment.bytes", "1024"),
                ("local.retention.bytes", "0"),
                ("retention.ms", "-1"),
            ],
        )
        .await;
        let mut conn = Conn::open(&addr).await;
        // Rounds of: A writes and aborts, B writes and commits, interleaved.
        for round in 0..20 {
            let (a, b) = (format!("a{round}"), format!("b{round}"));
            produce(
                &mut conn,
                encode_txn_batch(&[a.as_str()], (A, 0), round),
                Some("ta"),
            )
            .await;
            produce(
                &mut conn,
                encode_txn_batch(&[b.as_str()], (B, 0), round),
                Some("tb"),
            )
            .await;
            marker(&mut conn, A, false).await;
            marker(&mut conn, B, true).await;
            expected.push(b);
        }
        // A last committed transaction keeps the stable offset past the rest.
        produce(
            &mut conn,
            encode_txn_batch(&["last"], (B, 0), 20),
            Some("tb"),
        )
        .await;
        marker(&mut conn, B, true).await;
        expected.push("last".to_owned());
    });
    // Everything but the active segment goes to the bucket and leaves the disk.
    common::cluster::wait_until(
        "uploads and local deletion",
        Duration::from_secs(60),
        || {
            let logs = std::fs::read_dir(broker.data_dir.join(format!("{TOPIC}-0")))
                .ok()?
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count();
            (logs <= 2).then_some(())
        },
    );
    let read = read(&addr, "read_committed", expected.len());
    assert_eq!(read, expected);
}
