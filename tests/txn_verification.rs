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
    // A new instance of the producer fences this one: its next batch is told so, fatally
    // (INVALID_PRODUCER_EPOCH), not to retry.
    let fencer = init_transactional(&mut conn, id).await;
    assert!(fencer.1 > producer.1);
    assert_eq!(
        produce(&mut conn, 11, id, 1, batch(0)).await,
        47,
        "a fenced producer's batch"
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

/// EndTxn v5 (transaction version 2): the error code and the id and epoch to continue with.
async fn end_v5(conn: &mut Conn, id: &str, producer: (i64, i16), commit: bool) -> (i16, i64, i16) {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit);
    let response = conn.call(5, &request).await.unwrap();
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// DescribeTransactions of `id`: its state, epoch and partitions.
async fn described(conn: &mut Conn, id: &str) -> (String, i16, Vec<String>) {
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(id))]);
    let response = conn.call(0, &request).await.unwrap();
    let state = &response.transaction_states[0];
    assert_eq!(state.error_code, 0);
    let mut partitions: Vec<String> = state
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{p}", t.topic.0))
        })
        .collect();
    partitions.sort();
    (
        state.transaction_state.to_string(),
        state.producer_epoch,
        partitions,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_2_producer_joins_by_producing_and_each_end_bumps_its_epoch() {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "transaction.state.log.num.partitions=1",
            "offsets.topic.num.partitions=1",
        ],
    );
    common::create_topic(&broker.addr, TOPIC, 2, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;
    let id = "tv2-tx";
    let (pid, epoch) = init_transactional(&mut conn, id).await;
    let batch = |epoch: i16, sequence: i32| {
        encode_txn_batch(&[&format!("e{epoch}s{sequence}")], (pid, epoch), sequence)
    };

    // Produce v12 adds the partition itself; TxnOffsetCommit v5 the group's offsets partition.
    assert_eq!(produce(&mut conn, 12, id, 0, batch(epoch, 0)).await, 0);
    let group = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![s("tv2-group")]);
    conn.call(4, &group).await.unwrap();
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_group_id(GroupId(s("tv2-group")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default().with_committed_offset(7),
                ]),
        ]);
    let mut code = -1;
    for _ in 0..100 {
        // COORDINATOR_LOAD_IN_PROGRESS / NOT_AVAILABLE while __consumer_offsets is made.
        code = conn.call(5, &commit).await.unwrap().topics[0].partitions[0].error_code;
        if code != 14 && code != 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, 0, "TxnOffsetCommit v5");
    let (state, _, partitions) = described(&mut conn, id).await;
    assert_eq!(state, "Ongoing");
    assert_eq!(partitions, vec!["__consumer_offsets-0", "verified-0"]);
    assert!(
        latest(&mut conn, 1).await < latest(&mut conn, 0).await,
        "open"
    );

    // EndTxn v5 commits at a new epoch, and says which.
    assert_eq!(
        end_v5(&mut conn, id, (pid, epoch), true).await,
        (0, pid, epoch + 1)
    );
    // A retry with the epoch it had is answered the same, once the markers are written.
    let mut retried = (-1, 0, 0);
    for _ in 0..100 {
        retried = end_v5(&mut conn, id, (pid, epoch), true).await;
        if retried.0 != 51 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(retried, (0, pid, epoch + 1), "a retried commit");
    assert_eq!(
        end_v5(&mut conn, id, (pid, epoch), false).await.0,
        INVALID_TXN_STATE,
        "an abort at the old epoch"
    );
    assert_eq!(
        latest(&mut conn, 1).await,
        2,
        "a record and its commit marker"
    );

    // A late batch of the ended transaction: its marker carried the new epoch, so it cannot
    // open a transaction.
    assert_eq!(
        produce(&mut conn, 12, id, 0, batch(epoch, 1)).await,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
    // The next transaction, at the new epoch from sequence 0, on both partitions.
    let next = epoch + 1;
    assert_eq!(produce(&mut conn, 12, id, 0, batch(next, 0)).await, 0);
    assert_eq!(produce(&mut conn, 12, id, 1, batch(next, 0)).await, 0);
    let (state, described_epoch, partitions) = described(&mut conn, id).await;
    assert_eq!(
        (state.as_str(), described_epoch),
        ("Ongoing", next),
        "{partitions:?}"
    );
    assert_eq!(partitions, vec!["verified-0", "verified-1"]);
    assert_eq!(
        end_v5(&mut conn, id, (pid, next), false).await,
        (0, pid, next + 1)
    );
    // Aborting with nothing open still bumps the epoch: the producer cannot know whether its
    // batches were written.
    let mut empty = (-1, 0, 0);
    for _ in 0..100 {
        empty = end_v5(&mut conn, id, (pid, next + 1), false).await;
        if empty.0 != 51 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(empty, (0, pid, next + 2));
    assert_eq!(
        latest(&mut conn, 1).await,
        latest(&mut conn, 0).await,
        "nothing is left open"
    );
    assert_eq!(
        latest(&mut conn, 0).await,
        4,
        "two commits' worth, an abort marker"
    );

    // The next transaction's first batch, sent as soon as EndTxn answers, usually reaches the
    // leader before the last one's marker: it waits for the marker, then is written.
    let mut epoch = next + 2;
    let mut written = 0;
    for round in 0..20 {
        assert_eq!(
            produce(&mut conn, 12, id, 0, batch(epoch, 0)).await,
            0,
            "round {round}"
        );
        written += 1;
        let (code, _, bumped) = end_v5(&mut conn, id, (pid, epoch), true).await;
        assert_eq!((code, bumped), (0, epoch + 1), "round {round}");
        epoch = bumped;
    }
    assert_eq!(produce(&mut conn, 12, id, 0, batch(epoch, 0)).await, 0);
    assert_eq!(end_v5(&mut conn, id, (pid, epoch), false).await.0, 0);
    let mut settled = 0;
    for _ in 0..100 {
        settled = latest(&mut conn, 1).await;
        if settled == latest(&mut conn, 0).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each round: a record and its commit marker; then one aborted record and its marker.
    assert_eq!(settled, 4 + 2 * written + 2);
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

/// librdkafka with one record per batch: a transaction's first batch on the partition waits
/// for its coordinator while the next ones are already pipelined on the same connection. They
/// must not overtake it (an overtaking batch is out of sequence, which is fatal to the
/// producer), as librdkafka's own tests 0103 and 0137 check.
#[test]
fn pipelined_batches_wait_behind_a_batch_being_verified() {
    const TRANSACTIONS: usize = 30;
    const PER_TRANSACTION: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["transaction.state.log.num.partitions=1"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(common::create_topic(&broker.addr, TOPIC, 1, &[]));
    let producer: BaseProducer = common::client(&broker.addr)
        .set("transactional.id", "pipelined-tx")
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    for round in 0..TRANSACTIONS {
        producer.begin_transaction().unwrap();
        for i in 0..PER_TRANSACTION {
            let value = format!("{round}-{i}");
            producer
                .send(
                    BaseRecord::<(), String>::to(TOPIC)
                        .partition(0)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("enqueued");
            producer.poll(Duration::ZERO);
        }
        producer
            .commit_transaction(timeout)
            .unwrap_or_else(|e| panic!("transaction {round}: {e}"));
    }
    let consumer: BaseConsumer = common::client(&broker.addr)
        .set("group.id", "pipelined-check")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut read = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read.len() < TRANSACTIONS * PER_TRANSACTION && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            read.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
        }
    }
    let expected: Vec<String> = (0..TRANSACTIONS)
        .flat_map(|round| (0..PER_TRANSACTION).map(move |i| format!("{round}-{i}")))
        .collect();
    assert_eq!(read, expected, "every record once, in the order sent");
}
