//! Proves that incremental fetch sessions (KIP-227) follow Kafka's rules on the wire: epoch 0
//! opens a session and is answered in full; each next epoch sends only what changed and is
//! answered only the partitions with news; a stale epoch, an unknown session and forgotten
//! partitions are handled as Kafka does; epoch -1 closes the session. Then the Java consumer,
//! which opens sessions on its own, reads 200 partitions through one.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::BrokerProcess;
use common::wire::{Conn, encode_batch};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC: &str = "sessions";
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

async fn produce(conn: &mut Conn, partition: i32, value: &str) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(TOPIC))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(encode_batch(
                            &[Bytes::from(value.to_owned())],
                            (-1, -1),
                            -1,
                            1_000,
                        ))),
                ]),
        ]);
    let response = conn.call(9, &request).await.expect("Produce answered");
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

fn fetch(session: (i32, i32), partitions: &[(i32, i64)], forget: &[i32]) -> FetchRequest {
    let mut request = FetchRequest::default()
        .with_max_wait_ms(300)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(session.0)
        .with_session_epoch(session.1);
    if !partitions.is_empty() {
        request = request.with_topics(vec![
            FetchTopic::default()
                .with_topic(name(TOPIC))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|(index, offset)| {
                            FetchPartition::default()
                                .with_partition(*index)
                                .with_fetch_offset(*offset)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                ),
        ]);
    }
    if !forget.is_empty() {
        request = request.with_forgotten_topics_data(vec![
            ForgottenTopic::default()
                .with_topic(name(TOPIC))
                .with_partitions(forget.to_vec()),
        ]);
    }
    request
}

/// The partitions a response answered, with whether each carried records.
fn answered(response: &FetchResponse) -> Vec<(i32, bool)> {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            (
                p.partition_index,
                p.records.as_ref().is_some_and(|r| !r.is_empty()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_answer_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    common::create_topic(&broker.addr, TOPIC, 3, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;
    produce(&mut conn, 0, "first").await;

    // Epoch 0 opens a session, answered in full.
    let all = [(0, 0), (1, 0), (2, 0)];
    let opened = conn.call(12, &fetch((0, 0), &all, &[])).await.unwrap();
    assert_eq!(opened.error_code, 0);
    let id = opened.session_id;
    assert!(id > 0, "a session was opened");
    assert_eq!(answered(&opened), [(0, true), (1, false), (2, false)]);

    // Epoch 1: partition 0 moved past its record; nothing is new, so nothing is answered
    // (after the long poll).
    let quiet = conn
        .call(12, &fetch((id, 1), &[(0, 1)], &[]))
        .await
        .unwrap();
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert_eq!(answered(&quiet), []);

    // A record on partition 2 (which the session still fetches from 0): only it is answered.
    produce(&mut conn, 2, "second").await;
    let news = conn.call(12, &fetch((id, 2), &[], &[])).await.unwrap();
    assert_eq!(answered(&news), [(2, true)]);

    // The same epoch again is stale; another session id is unknown.
    let stale = conn.call(12, &fetch((id, 2), &[], &[])).await.unwrap();
    assert_eq!(
        (stale.error_code, stale.session_id),
        (INVALID_FETCH_SESSION_EPOCH, 0)
    );
    let unknown = conn.call(12, &fetch((id ^ 1, 3), &[], &[])).await.unwrap();
    assert_eq!(unknown.error_code, FETCH_SESSION_ID_NOT_FOUND);

    // Epoch 3 forgets partition 2 and moves partition 0 on: a new record on 2 is not answered,
    // one on 0 is.
    produce(&mut conn, 2, "third").await;
    produce(&mut conn, 0, "fourth").await;
    let forgot = conn
        .call(12, &fetch((id, 3), &[(0, 1)], &[2]))
        .await
        .unwrap();
    assert_eq!(answered(&forgot), [(0, true)]);

    // Topic ids (v13+) in a session opened with names are refused.
    let by_id = conn.call(13, &fetch((id, 4), &[], &[])).await.unwrap();
    assert_ne!(by_id.error_code, 0);

    // Epoch -1 closes the session: a full fetch without one.
    let closed = conn.call(12, &fetch((id, -1), &all, &[])).await.unwrap();
    assert_eq!((closed.error_code, closed.session_id), (0, 0));
    assert_eq!(answered(&closed), [(0, true), (1, false), (2, true)]);
    let gone = conn.call(12, &fetch((id, 4), &[], &[])).await.unwrap();
    assert_eq!(gone.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

/// The Java consumer opens a session and reads 200 partitions through it: every record, and
/// the broker holds the session's 200 partitions while it polls.
#[test]
fn the_java_consumer_reads_200_partitions_through_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(common::create_topic(&broker.addr, TOPIC, 200, &[]));
    let classpath = common::java::classpath("4.1.0");
    let output = Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataFetchSessionCheck")
        .arg(&broker.addr)
        .arg(TOPIC)
        .arg(format!("http://{}/metrics", broker.admin_addr))
        .output()
        .expect("java runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("OK sessions"),
        "{text}\nbroker log:\n{}",
        broker.log()
    );
}
