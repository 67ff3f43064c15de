//! KIP-392: a librdkafka consumer with `client.rack` reads from the in-sync replica in its
//! rack rather than from the leader in another, sees every record, and goes back to the
//! leader when that replica is gone.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{node_settings, start_nodes, voters, wait_until};
use common::wire::Conn;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "racks";

/// Keeps librdkafka's latest statistics: per partition, the broker it fetches from.
#[derive(Default, Clone)]
struct Stats(Arc<Mutex<Option<Statistics>>>);

impl ClientContext for Stats {
    fn stats(&self, statistics: Statistics) {
        *self.0.lock().unwrap() = Some(statistics);
    }
}

impl ConsumerContext for Stats {}

impl Stats {
    /// (broker fetched from, leader) of partition 0, as librdkafka last reported them.
    fn fetching_from(&self) -> Option<(i32, i32)> {
        let stats = self.0.lock().unwrap();
        let p = stats.as_ref()?.topics.get(TOPIC)?.partitions.get(&0)?;
        Some((p.broker, p.leader))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_from_the_replica_in_its_rack() {
    let root = tempfile::tempdir().unwrap();
    // Node n is in rack "rack-n".
    let (controllers, voters) = voters(3);
    let dirs = (1..=3)
        .map(|n| root.path().join(format!("node{n}")))
        .collect();
    let settings = (0..3)
        .map(|n| {
            let mut s = node_settings(n as u64 + 1, &controllers[n], &voters);
            s.push(format!("broker.rack=rack-{}", n + 1));
            s
        })
        .collect();
    let mut nodes = start_nodes(dirs, settings);
    let bootstrap = nodes[0].addr.clone();
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(
                TOPIC,
                1,
                TopicReplication::Variable(&[&[1, 2, 3]]),
            )],
            &AdminOptions::new(),
        )
        .await
        .unwrap()[0]
        .as_ref()
        .expect("topic created");
    let producer: FutureProducer = common::client(&bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    send_values(&producer, 0..300).await;

    // Over the wire: a follower serves a consumer that names its rack, and sends one that
    // does not (stale metadata, say) back to the leader.
    let follower_fetch = |rack: &str| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_rack_id(StrBytes::from_string(rack.to_owned()))
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(-1)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    };
    let mut conn = Conn::open(&nodes[1].addr).await;
    let answer = |r: FetchResponse| {
        let p = &r.responses[0].partitions[0];
        (p.error_code, p.records.as_ref().map_or(0, |b| b.len()))
    };
    let no_rack = conn.call(12, &follower_fetch("")).await.unwrap();
    assert_eq!(
        answer(no_rack).0,
        6,
        "NOT_LEADER_OR_FOLLOWER without a rack"
    );
    wait_until(
        "the follower has the records",
        Duration::from_secs(10),
        || {
            let r = futures_block(conn.call(12, &follower_fetch("rack-2")))?;
            let (code, bytes) = answer(r);
            (code == 0 && bytes > 0).then_some(())
        },
    );

    let stats = Stats::default();
    let consumer: BaseConsumer<Stats> = common::client(&bootstrap)
        .set("group.id", "rack-2-readers")
        .set("client.rack", "rack-2")
        .set("statistics.interval.ms", "200")
        .set("enable.auto.commit", "false")
        .create_with_context(stats.clone())
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let mut from_follower = false;
    let read = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline && (values.len() < 300 || !from_follower) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                values.push(
                    String::from_utf8_lossy(m.payload().unwrap())
                        .parse::<u32>()
                        .unwrap(),
                );
            }
            from_follower |= stats.fetching_from() == Some((2, 1));
        }
        values.clone()
    });
    assert_eq!(
        read,
        (0..300).collect::<Vec<u32>>(),
        "every record once, in order"
    );
    assert!(
        from_follower,
        "the consumer fetched from broker 2 while 1 leads: {:?}",
        stats.fetching_from()
    );

    // New records reach the consumer through its replica too.
    send_values(&producer, 300..350).await;
    let more = read_values(&consumer, 50, Duration::from_secs(30));
    assert_eq!(more, (300..350).collect::<Vec<u32>>());

    // Its replica stops: the consumer goes back to the leader and reads on.
    nodes[1].stop();
    send_values(&producer, 350..400).await;
    let rest = read_values(&consumer, 50, Duration::from_secs(60));
    assert_eq!(rest, (350..400).collect::<Vec<u32>>());
    // Statistics arrive through poll.
    wait_until("fetching from the leader", Duration::from_secs(10), || {
        tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(100)));
        (stats.fetching_from().map(|(b, _)| b) == Some(1)).then_some(())
    });
    drop(consumer);
    for node in &mut nodes {
        node.stop();
    }
}

/// Runs a future to completion from a synchronous closure on this multi-threaded runtime.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// Produces each value of `values` as a record and waits for its acknowledgement.
async fn send_values(producer: &FutureProducer, values: std::ops::Range<u32>) {
    for n in values {
        producer
            .send(
                FutureRecord::to(TOPIC).key("k").payload(&n.to_string()),
                Duration::from_secs(30),
            )
            .await
            .expect("acknowledged");
    }
}

/// Polls up to `count` values within `timeout`.
fn read_values(consumer: &BaseConsumer<Stats>, count: usize, timeout: Duration) -> Vec<u32> {
    tokio::task::block_in_place(|| {
        let mut values = Vec::new();
        let deadline = std::time::Instant::now() + timeout;
        while values.len() < count && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                values.push(
                    String::from_utf8_lossy(m.payload().unwrap())
                        .parse::<u32>()
                        .unwrap(),
                );
            }
        }
        values
    })
}
