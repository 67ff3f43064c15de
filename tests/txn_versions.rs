//! Proves that every transactional API answers at every version it is advertised at: each
//! request is encoded by kafka-protocol at that version, sent to the broker, and its response
//! decodes at that version with the expected outcome (a transaction opened, offsets added,
//! committed, described and listed).

mod common;

use common::BrokerProcess;
use common::wire::{Conn, init_transactional};
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strata_api::versions::SUPPORTED_APIS;

const TOPIC: &str = "sweep";

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let api = SUPPORTED_APIS
        .iter()
        .find(|a| a.key == key)
        .expect("served");
    api.min..=api.max
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

async fn add_partition(conn: &mut Conn, version: i16, id: &str, producer: (i64, i16)) -> i16 {
    if version >= 4 {
        // The brokers' batched form (KIP-890), adding rather than verifying.
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_topics(vec![
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s(TOPIC)))
                        .with_partitions(vec![0]),
                ]),
        ]);
        let response = conn.call(version, &request).await.unwrap();
        assert_eq!(response.error_code, 0);
        return response.results_by_transaction[0].topic_results[0].results_by_partition[0]
            .partition_error_code;
    }
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partitions(vec![0]),
        ]);
    let response = conn.call(version, &request).await.unwrap();
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn every_transactional_api_answers_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "transaction.state.log.num.partitions=1",
            "offsets.topic.num.partitions=1",
        ],
    );
    common::create_topic(&broker.addr, TOPIC, 1, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;
    // FindCoordinator of a transactional id (creates __transaction_state), and of a group.
    for (key_type, key) in [(1, "sweep-tx"), (0, "sweep-group")] {
        let found = conn
            .call(
                4,
                &FindCoordinatorRequest::default()
                    .with_key_type(key_type)
                    .with_coordinator_keys(vec![s(key)]),
            )
            .await
            .unwrap();
        assert_eq!(found.coordinators[0].error_code, 0, "{key}");
    }
    for v in versions(ApiKey::InitProducerId) {
        let id = format!("init-v{v}");
        init_transactional(&mut conn, &id).await;
        let response = conn
            .call(
                v,
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(s(&id))))
                    .with_transaction_timeout_ms(60_000),
            )
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        assert_eq!(
            response.producer_epoch, 1,
            "InitProducerId v{v}: the epoch is bumped"
        );
    }
    for v in versions(ApiKey::AddPartitionsToTxn) {
        let id = format!("add-v{v}");
        let producer = init_transactional(&mut conn, &id).await;
        assert_eq!(
            add_partition(&mut conn, v, &id, producer).await,
            0,
            "AddPartitionsToTxn v{v}"
        );
        // A zombie's epoch: fenced (PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before).
        let fenced = add_partition(&mut conn, v, &id, (producer.0, producer.1 - 1)).await;
        assert_eq!(
            fenced,
            if v >= 2 { 90 } else { 47 },
            "AddPartitionsToTxn v{v}"
        );
    }
    let (id, producer) = (
        "offsets-tx",
        init_transactional(&mut conn, "offsets-tx").await,
    );
    for v in versions(ApiKey::AddOffsetsToTxn) {
        let response = conn
            .call(
                v,
                &AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(id)))
                    .with_producer_id(ProducerId(producer.0))
                    .with_producer_epoch(producer.1)
                    .with_group_id(GroupId(s("sweep-group"))),
            )
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "AddOffsetsToTxn v{v}");
    }
    for v in versions(ApiKey::TxnOffsetCommit) {
        let response = conn
            .call(
                v,
                &TxnOffsetCommitRequest::default()
                    .with_transactional_id(TransactionalId(s(id)))
                    .with_group_id(GroupId(s("sweep-group")))
                    .with_producer_id(ProducerId(producer.0))
                    .with_producer_epoch(producer.1)
                    .with_generation_id(-1)
                    .with_topics(vec![
                        TxnOffsetCommitRequestTopic::default()
                            .with_name(TopicName(s(TOPIC)))
                            .with_partitions(vec![
                                TxnOffsetCommitRequestPartition::default()
                                    .with_committed_offset(i64::from(v)),
                            ]),
                    ]),
            )
            .await
            .unwrap();
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "TxnOffsetCommit v{v}"
        );
    }
    for v in versions(ApiKey::EndTxn) {
        let id = format!("end-v{v}");
        let producer = init_transactional(&mut conn, &id).await;
        assert_eq!(add_partition(&mut conn, 1, &id, producer).await, 0);
        let response = conn
            .call(
                v,
                &EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(&id)))
                    .with_producer_id(ProducerId(producer.0))
                    .with_producer_epoch(producer.1)
                    .with_committed(true),
            )
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "EndTxn v{v}");
        // v5+ (transaction version 2) bumps the epoch and says so.
        let expected = if v >= 5 {
            (producer.0, producer.1 + 1)
        } else {
            (-1, -1)
        };
        assert_eq!(
            (response.producer_id.0, response.producer_epoch),
            expected,
            "EndTxn v{v}"
        );
    }
    for v in versions(ApiKey::DescribeTransactions) {
        let response = conn
            .call(
                v,
                &DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![TransactionalId(s(id))]),
            )
            .await
            .unwrap();
        let state = &response.transaction_states[0];
        assert_eq!(state.error_code, 0, "DescribeTransactions v{v}");
        assert_eq!(state.transaction_state.as_str(), "Ongoing");
    }
    for v in versions(ApiKey::ListTransactions) {
        let response = conn
            .call(
                v,
                &ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing")]),
            )
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "ListTransactions v{v}");
        let ids: Vec<&str> = response
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.0.as_str())
            .collect();
        assert!(ids.contains(&id), "ListTransactions v{v}: {ids:?}");
    }
}
