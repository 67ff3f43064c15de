//! Replication, leader side: a partition with two replicas on a three-broker cluster, with the
//! test acting as the follower over the wire (Fetch v12 with a replica id), as a follower
//! broker will. `acks=all` waits for the follower; consumers see only what the in-sync
//! replicas have; a follower whose log went past the leader's is told where to truncate.

mod common;

use std::time::Duration;

use common::BrokerProcess;
use common::cluster::{three_nodes_env, wait_until};
use common::wire::Conn;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "replicated";

/// A Fetch v12 of partition 0 of [`TOPIC`] as broker `replica_id` (-1: a consumer).
fn fetch(replica_id: i32, offset: i64, last_fetched_epoch: i32, epoch: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(epoch)
                        .with_fetch_offset(offset)
                        .with_last_fetched_epoch(last_fetched_epoch)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

fn partition(response: &FetchResponse) -> &kafka_protocol::messages::fetch_response::PartitionData {
    &response.responses[0].partitions[0]
}

/// Leader, follower and the broker that holds no replica, by node id.
fn placement(nodes: &[BrokerProcess]) -> (i32, i32, i32) {
    wait_until("the topic's leader", Duration::from_secs(20), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&nodes[0].addr).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
            .ok()?;
        let p = metadata.topics()[0].partitions().first()?;
        if p.leader() < 0 {
            return None;
        }
        let follower = *p.replicas().iter().find(|r| **r != p.leader())?;
        let other = (1..=3).find(|n| !p.replicas().contains(n))?;
        Some((p.leader(), follower, other))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_commits_what_the_in_sync_follower_has() {
    let root = tempfile::tempdir().unwrap();
    let env = [("STRATA_UNSTABLE_REPLICATION".to_owned(), "1".to_owned())];
    let (mut nodes, _) = three_nodes_env(root.path(), &[], &env);
    let admin: AdminClient<DefaultClientContext> = common::client(&nodes[0].addr).create().unwrap();
    for (name, min_isr) in [(TOPIC, "2"), ("strict", "3")] {
        let topic =
            NewTopic::new(name, 1, TopicReplication::Fixed(2)).set("min.insync.replicas", min_isr);
        let created = admin
            .create_topics(&[topic], &AdminOptions::new())
            .await
            .unwrap();
        created[0].as_ref().expect("RF 2 topic created");
    }
    let (leader, follower, other) = placement(&nodes);
    let leader_addr = nodes[leader as usize - 1].addr.clone();
    let producer: FutureProducer = common::client(&leader_addr)
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    let produced = tokio::spawn({
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(TOPIC).key("k").payload("v"),
                    Duration::from_secs(5),
                )
                .await
        }
    });
    let mut conn = Conn::open(&leader_addr).await;
    // The record is appended but not committed: the follower has not fetched it.
    let response = wait_until("the record appended", Duration::from_secs(10), || {
        let response = futures_block(conn.call(12, &fetch(follower, 0, -1, -1)))?;
        let r = partition(&response);
        (r.records.as_ref().is_some_and(|b| !b.is_empty())).then_some(response)
    });
    let data = partition(&response);
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 0, "nothing committed yet");
    let records = data.records.clone().unwrap();
    let batch = strata_record::BatchHeader::parse(&records).unwrap();
    assert_eq!(batch.base_offset, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !produced.is_finished(),
        "acks=all answered before the follower had the record"
    );
    let consumer_view = conn.call(12, &fetch(-1, 0, -1, -1)).await.unwrap();
    assert!(
        partition(&consumer_view)
            .records
            .as_ref()
            .is_none_or(|r| r.is_empty()),
        "a consumer read an uncommitted record"
    );
    // The follower has it: it asks for the next offset. The record commits.
    // (The leader's own fsync may finish after this fetch: the next one sees it.)
    wait_until("the record committed", Duration::from_secs(10), || {
        let response =
            futures_block(conn.call(12, &fetch(follower, 1, batch.partition_leader_epoch, -1)))?;
        (partition(&response).high_watermark == 1).then_some(())
    });
    let delivery = tokio::time::timeout(Duration::from_secs(10), produced)
        .await
        .expect("acks=all answered once committed")
        .unwrap()
        .expect("produced");
    assert_eq!((delivery.partition, delivery.offset), (0, 0));
    let consumer_view = conn.call(12, &fetch(-1, 0, -1, -1)).await.unwrap();
    assert_eq!(
        partition(&consumer_view).records.as_deref(),
        Some(&records[..])
    );
    // A follower whose log went past the leader's under the same epoch is told where the
    // epoch ends: it truncates there.
    let epoch = batch.partition_leader_epoch;
    let response = conn.call(12, &fetch(follower, 5, epoch, -1)).await.unwrap();
    let diverging = &partition(&response).diverging_epoch;
    assert_eq!((diverging.epoch, diverging.end_offset), (epoch, 1));
    assert!(
        partition(&response)
            .records
            .as_ref()
            .is_none_or(|r| r.is_empty())
    );
    // A broker that holds no replica does not fetch as one.
    let response = conn.call(12, &fetch(other, 0, -1, -1)).await.unwrap();
    assert_eq!(partition(&response).error_code, 6, "NOT_LEADER_OR_FOLLOWER");
    // min.insync.replicas above the replica count: acks=all is refused before appending.
    let strict = wait_until("the strict topic's leader", Duration::from_secs(20), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&nodes[0].addr).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some("strict"), Duration::from_secs(5))
            .ok()?;
        let leader = metadata.topics()[0].partitions().first()?.leader();
        (leader > 0).then_some(leader)
    });
    let producer: FutureProducer = common::client(&nodes[strict as usize - 1].addr)
        .set("acks", "all")
        .set("message.timeout.ms", "2000")
        .set("retries", "0")
        .create()
        .unwrap();
    let refused = producer
        .send(
            FutureRecord::to("strict").key("k").payload("v"),
            Duration::from_secs(5),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        refused.0.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::NotEnoughReplicas),
        "{refused:?}"
    );
    for node in &mut nodes {
        node.stop();
    }
}

/// Runs a future to completion from a synchronous closure on this multi-threaded runtime.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}
