//! Proves KIP-890's server-side defense against hanging transactions: a transactional batch
//! that would open its producer's transaction on a partition is written only once the
//! coordinator confirms the partition is in that transaction. A batch sent without
//! AddPartitionsToTxn, or arriving after its transaction was aborted, is refused
//! (INVALID_TXN_STATE up to Produce v10, TRANSACTION_ABORTABLE from v11) instead of opening a
//! transaction no coordinator will ever end, which would hold every read_committed consumer
//! of the partition. The coordinator's side is AddPartitionsToTxn v4+ with `verify_only`; with
//! partitions led away from the coordinator, leaders ask it over the wire, and librdkafka's
//! transactions commit and abort through that path.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::BrokerProcess;
use common::wire::{Conn, encode_txn_batch, init_transactional};
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "verified";
const INVALID_TXN_STATE: i16 = 48;
const TRANSACTION_ABORTABLE: i16 = 120;
const NOT_ENOUGH_REPLICAS: i16 = 19;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// Produces `records` to partition `index` at `version`; the partition's error code.
async fn produce(conn: &mut Conn, version: i16, id: &str, index: i32, records: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(index)
                        .with_records(Some(records)),
                ]),
        ]);
    let response = conn
        .call(version, &request)
        .await
        .expect("Produce answered");
    response.responses[0].partition_responses[0].error_code
}

/// AddPartitionsToTxn v3 (the client's) of partition `index`.
async fn add(conn: &mut Conn, id: &str, producer: (i64, i16), index: i32) {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partitions(vec![index]),
        ]);
    let response = conn.call(3, &request).await.unwrap();
    let code =
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
    assert_eq!(code, 0, "AddPartitionsToTxn");
}

/// AddPartitionsToTxn v5 with `verify_only` (the brokers'): each partition's code.
async fn verify(conn: &mut Conn, id: &str, producer: (i64, i16), partitions: &[i32]) -> Vec<i16> {
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_verify_only(true)
            .with_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s(TOPIC)))
                    .with_partitions(partitions.to_vec()),
            ]),
    ]);
    let response = conn.call(5, &request).await.unwrap();
    assert_eq!(response.error_code, 0);
    response.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

/// ListOffsets latest of partition 0 for `isolation_level` (1: read_committed).
async fn latest(conn: &mut Conn, isolation_level: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let response = conn.call(5, &request).await.unwrap();
    response.topics[0].partitions[0].offset
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_outside_its_transaction_is_refused_and_cannot_hang_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["transaction.state.log.num.partitions=1"],
    );
    common::create_topic(&broker.addr, TOPIC, 2, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;
    let id = "verified-tx";
    let producer = init_transactional(&mut conn, id).await;

    // Never added to the transaction: refused, with the error each version knows.
    let batch = |sequence: i32| encode_txn_batch(&[&format!("v{sequence}")], producer, sequence);
    assert_eq!(
        produce(&mut conn, 10, id, 0, batch(0)).await,
        INVALID_TXN_STATE
    );
    assert_eq!(
        produce(&mut conn, 11, id, 0, batch(0)).await,
        TRANSACTION_ABORTABLE
    );
    assert_eq!(latest(&mut conn, 0).await, 0, "nothing was written");

    // Added: written, and the next batch of the open transaction needs no verifying.
    add(&mut conn, id, producer, 0).await;
    assert_eq!(produce(&mut conn, 11, id, 0, batch(0)).await, 0);
    assert_eq!(produce(&mut conn, 11, id, 0, batch(1)).await, 0);

    // The coordinator's answers to a leader.
    assert_eq!(
        verify(&mut conn, id, producer, &[0, 1]).await,
        vec![0, TRANSACTION_ABORTABLE]
    );
    assert_eq!(
        verify(&mut conn, id, (producer.0, producer.1 + 1), &[0]).await,
        vec![90],
        "PRODUCER_FENCED"
    );
    assert_eq!(
        verify(&mut conn, "nobody", producer, &[0]).await,
        vec![49],
        "INVALID_PRODUCER_ID_MAPPING"
    );

    // Aborted: a batch of that transaction arriving late cannot open a new one.
    let ended = conn
        .call(
            3,
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(false),
        )
        .await
        .unwrap();
    assert_eq!(ended.error_code, 0);
    // Once the marker is written (before it, a batch would join the transaction the marker
    // then aborts, which is harmless).
    for _ in 0..100 {
        if latest(&mut conn, 1).await == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut late = NOT_ENOUGH_REPLICAS;
    for _ in 0..100 {
        // Retriable while the abort's markers are being written.
        late = produce(&mut conn, 11, id, 0, batch(2)).await;
        if late != NOT_ENOUGH_REPLICAS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(late, TRANSACTION_ABORTABLE);
    let end = latest(&mut conn, 0).await;
    assert_eq!(end, 3, "two records and the abort marker");
    assert_eq!(
        latest(&mut conn, 1).await,
        end,
        "no transaction is left open: read_committed consumers read to the end"
    );
    drop(broker);

    // Turned off, the broker takes the batch as Kafka before 3.6 did.
    let broker = BrokerProcess::start(
        &dir.path().join("unverified"),
        &["transaction.partition.verification.enable=false"],
    );
    common::create_topic(&broker.addr, TOPIC, 1, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;
    let producer = init_transactional(&mut conn, id).await;
    let batch = encode_txn_batch(&["unverified"], producer, 0);
    assert_eq!(produce(&mut conn, 11, id, 0, batch).await, 0);
    assert_eq!(
        latest(&mut conn, 1).await,
        0,
        "the transaction it opened holds readers"
    );
}

#[test]
fn transactions_commit_and_abort_through_leaders_away_from_their_coordinator() {
    let root = tempfile::tempdir().unwrap();
    let (nodes, _) = common::cluster::three_nodes(
        root.path(),
        &["transaction.state.log.num.partitions=1".to_owned()],
    );
    let bootstrap: String = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // One partition per broker, so that two of three are led away from the coordinator.
    runtime.block_on(common::create_topic(&bootstrap, TOPIC, 3, &[]));
    let producer: BaseProducer = common::client(&bootstrap)
        .set("transactional.id", "away-tx")
        .create()
        .expect("producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    for (round, commit) in [(0, true), (1, false), (2, true)] {
        producer.begin_transaction().unwrap();
        for i in 0..30 {
            let value = format!("{round}-{i}");
            producer
                .send(
                    BaseRecord::<(), String>::to(TOPIC)
                        .partition(i % 3)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("enqueued");
        }
        producer.flush(timeout).expect("flushed");
        if commit {
            producer.commit_transaction(timeout).expect("committed");
        } else {
            producer.abort_transaction(timeout).expect("aborted");
        }
    }
    let consumer: BaseConsumer = common::client(&bootstrap)
        .set("group.id", "away-check")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut read = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read.len() < 60 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            read.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
        }
    }
    while let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
        read.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
    }
    read.sort();
    let mut expected: Vec<String> = [0, 2]
        .iter()
        .flat_map(|round| (0..30).map(move |i| format!("{round}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(read, expected, "each committed record once, no aborted one");
    // The path under test was taken: some partition is led away from the coordinator.
    let metadata = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let leaders = |topic: &str| -> Vec<i32> {
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().iter().map(|p| p.leader()).collect())
            .unwrap_or_default()
    };
    let coordinator = leaders("__transaction_state");
    assert_eq!(coordinator.len(), 1);
    assert!(
        leaders(TOPIC).iter().any(|l| *l != coordinator[0]),
        "every partition is led by the coordinator: {:?}",
        leaders(TOPIC)
    );
}
