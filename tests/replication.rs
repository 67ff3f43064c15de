//! Replication on three-broker clusters: the leader's side checked over the wire with the test
//! fetching in a stopped follower's place (Fetch v12 with a replica id): `acks=all` waits for
//! the follower, consumers see only what the in-sync replicas have, a follower whose log went
//! past the leader's is told where to truncate; then real followers: byte-identical replicas
//! through a leader kill, and the ISR shrinking without a stalled follower and growing back.

mod common;

use std::time::Duration;

use common::BrokerProcess;
use common::cluster::{log_bytes, three_nodes, three_nodes_env, wait_until};
use common::wire::{Conn, idle_batch, produce_to_leader};
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
    // The real follower is stopped below and the test fetches in its place: a long session
    // keeps it registered meanwhile.
    let extra = ["broker.session.timeout.ms=60000".to_owned()];
    let (mut nodes, _) = three_nodes(root.path(), &extra);
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
    let stopped = nodes[follower as usize - 1].pid().to_string();
    signal("-STOP", &stopped);
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
    signal("-CONT", &stopped);
    for node in &mut nodes {
        node.stop();
    }
}

/// `strata partitions under-replicated` against `bootstrap`, its standard output.
fn under_replicated(bootstrap: &str) -> String {
    let first = bootstrap.split(',').next().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["partitions", "under-replicated", "--bootstrap", first])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Sends `signal` to process `pid`.
fn signal(signal: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Runs a future to completion from a synchronous closure on this multi-threaded runtime.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// The Kafka addresses of every node but node `id`, comma-separated.
fn addrs_except(nodes: &[BrokerProcess], id: usize) -> String {
    nodes
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != id - 1)
        .map(|(_, node)| node.addr.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Partition 0's ISR as Metadata shows it.
fn isr(bootstrap: &str, topic: &str) -> Vec<i32> {
    let consumer: rdkafka::consumer::BaseConsumer = common::client(bootstrap).create().unwrap();
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|m| m.topics()[0].partitions().first().map(|p| p.isr().to_vec()))
        .unwrap_or_default()
}

/// Produces `values` with an idempotent acks=all producer; panics unless all are acknowledged.
async fn produce_all(bootstrap: &str, topic: &str, values: std::ops::Range<u32>) {
    let producer: FutureProducer = common::client(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let sends: Vec<_> = values
        .map(|v| {
            let producer = producer.clone();
            let topic = topic.to_owned();
            tokio::spawn(async move {
                producer
                    .send(
                        FutureRecord::to(&topic)
                            .key(&v.to_string())
                            .payload(&v.to_string()),
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap_or_else(|(e, _)| panic!("record {v} not acknowledged: {e}"))
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_stay_identical_through_a_leader_kill() {
    const TOPIC3: &str = "rf3";
    let root = tempfile::tempdir().unwrap();
    // The controller rebalances leadership every second (Kafka's default: 5 minutes).
    let extra = ["leader.imbalance.check.interval.seconds=1".to_owned()];
    let (mut nodes, _) = three_nodes(root.path(), &extra);
    let bootstrap = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic = NewTopic::new(TOPIC3, 1, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2")
        .set("segment.bytes", "20000");
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("RF 3 topic created");
    produce_all(&bootstrap, TOPIC3, 0..500).await;
    let identical = |nodes: &[BrokerProcess]| {
        let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(n, TOPIC3)).collect();
        (!logs[0].is_empty() && logs.iter().all(|l| *l == logs[0])).then_some(())
    };
    wait_until("three identical replicas", Duration::from_secs(20), || {
        identical(&nodes)
    });
    // Kill the leader: a follower in the ISR takes over, and the writes go on.
    let leader = wait_until("the leader", Duration::from_secs(10), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&bootstrap).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(TOPIC3), Duration::from_secs(5))
            .ok()?;
        let leader = metadata.topics()[0].partitions().first()?.leader();
        (leader > 0).then_some(leader as usize)
    });
    nodes[leader - 1].kill();
    let alive = addrs_except(&nodes, leader);
    produce_all(&alive, TOPIC3, 500..1000).await;
    // The old leader comes back as a follower and catches up to the same bytes.
    nodes[leader - 1].restart("127.0.0.1:0");
    wait_until("the old leader caught up", Duration::from_secs(30), || {
        identical(&nodes)
    });
    wait_until(
        "the old leader back in the ISR",
        Duration::from_secs(30),
        || (isr(&alive, TOPIC3).len() == 3).then_some(()),
    );
    // It is the preferred replica (the first): auto.leader.rebalance.enable gives it back
    // the leadership once it is in sync.
    wait_until(
        "the preferred replica leads again",
        Duration::from_secs(20),
        || {
            let consumer: rdkafka::consumer::BaseConsumer =
                common::client(&alive).create().unwrap();
            let metadata = consumer
                .fetch_metadata(Some(TOPIC3), Duration::from_secs(5))
                .ok()?;
            let p = metadata.topics()[0].partitions().first()?;
            (p.leader() as usize == leader && p.replicas()[0] as usize == leader).then_some(())
        },
    );
    // DescribeLogDirs: every broker reports its replica, at the size it has on disk.
    for node in &nodes {
        let mut conn = Conn::open(&node.addr).await;
        let response = conn
            .call(
                4,
                &kafka_protocol::messages::DescribeLogDirsRequest::default().with_topics(None),
            )
            .await
            .expect("DescribeLogDirs answered");
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0);
        assert!(dir.total_bytes > 0 && dir.usable_bytes > 0, "{dir:?}");
        let replica = dir
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == TOPIC3)
            .and_then(|t| t.partitions.first())
            .expect("the replica is listed");
        assert_eq!(replica.partition_size, log_bytes(node, TOPIC3).len() as i64);
        assert_eq!(replica.offset_lag, 0);
    }
    let consumed = tokio::task::spawn_blocking(move || {
        common::consume_all(&alive, TOPIC3, 1, 1000, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let values: Vec<u32> = common::numbers(&consumed);
    let mut sorted = values.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 1000, "every acknowledged record once");
    assert!(
        consumed.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets in order"
    );
    for node in &mut nodes {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_follower_leaves_the_isr_and_rejoins() {
    const TOPIC3: &str = "stall";
    let root = tempfile::tempdir().unwrap();
    // Heartbeats would fence a stopped broker after the session timeout: make it long, so
    // that only the leader's lag check can take the follower out.
    let extra = [
        "broker.session.timeout.ms=60000".to_owned(),
        "replica.lag.time.max.ms=2000".to_owned(),
    ];
    let (mut nodes, voters) = three_nodes(root.path(), &extra);
    let bootstrap = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic =
        NewTopic::new(TOPIC3, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("RF 3 topic created");
    produce_all(&bootstrap, TOPIC3, 0..100).await;
    wait_until("a full ISR", Duration::from_secs(10), || {
        (isr(&bootstrap, TOPIC3).len() == 3).then_some(())
    });
    let (leader, follower) = wait_until("the replicas", Duration::from_secs(10), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&bootstrap).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(TOPIC3), Duration::from_secs(5))
            .ok()?;
        let p = metadata.topics()[0].partitions().first()?;
        let follower = *p.replicas().iter().find(|r| **r != p.leader())?;
        (p.leader() > 0).then_some((p.leader() as usize, follower as usize))
    });
    let others = addrs_except(&nodes, follower);
    let stopped = nodes[follower - 1].pid().to_string();
    signal("-STOP", &stopped);
    // acks=all goes on without the stalled follower once the leader drops it.
    produce_all(&others, TOPIC3, 100..200).await;
    let shrunk = isr(&others, TOPIC3);
    assert!(!shrunk.contains(&(follower as i32)), "ISR {shrunk:?}");
    assert!(shrunk.contains(&(leader as i32)));
    // The operator sees it.
    let listed = under_replicated(&others);
    let row = listed
        .lines()
        .find(|l| l.starts_with(TOPIC3))
        .unwrap_or_else(|| panic!("{TOPIC3} not listed:\n{listed}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "0", "{row}");
    assert_eq!(cells[3].split(',').count(), 3, "three replicas: {row}");
    assert!(
        !cells[4].split(',').any(|r| r == follower.to_string()),
        "{row}"
    );
    // `strata cluster status` counts it, and the follower's replica outside the ISR.
    let leader_controller = voters
        .split(',')
        .nth(leader - 1)
        .and_then(|v| v.split_once('@'))
        .map(|(_, addr)| addr.to_owned())
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["cluster", "status", "--controllers", &leader_controller])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.contains("partitions: 1 under-replicated, 0 offline"),
        "{status}"
    );
    let broker_row: Vec<&str> = status
        .lines()
        .find(|l| {
            l.split_whitespace().next() == Some(&follower.to_string()) && l.contains("active")
        })
        .unwrap_or_else(|| panic!("no row for broker {follower}:\n{status}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        broker_row.last(),
        Some(&"1"),
        "one replica out of sync: {status}"
    );
    signal("-CONT", &stopped);
    wait_until(
        "the follower back in the ISR",
        Duration::from_secs(30),
        || (isr(&others, TOPIC3).len() == 3).then_some(()),
    );
    let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(n, TOPIC3)).collect();
    assert!(
        logs.iter().all(|l| *l == logs[0]),
        "replicas differ once back in sync"
    );
    wait_until(
        "no under-replicated partition",
        Duration::from_secs(30),
        || {
            under_replicated(&others)
                .contains("every partition has all its replicas in sync")
                .then_some(())
        },
    );
    for node in &mut nodes {
        node.stop();
    }
}

/// Kafka's placement of a group in `__consumer_offsets` (Java's `String.hashCode`).
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    (if hash == i32::MIN { 0 } else { hash.abs() }) % partitions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_the_loss_of_the_group_coordinator() {
    use rdkafka::consumer::{BaseConsumer, CommitMode};
    use rdkafka::{Offset, TopicPartitionList};

    const GROUP: &str = "survivors";
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, _) = three_nodes(root.path(), &[]);
    let bootstrap = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic = NewTopic::new("work", 1, TopicReplication::Fixed(3));
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created");
    let mut at = TopicPartitionList::new();
    at.add_partition_offset("work", 0, Offset::Offset(42))
        .unwrap();
    let commit = {
        let bootstrap = bootstrap.clone();
        move |at: TopicPartitionList| {
            let consumer: BaseConsumer = common::client(&bootstrap)
                .set("group.id", GROUP)
                .create()
                .unwrap();
            consumer.commit(&at, CommitMode::Sync)
        }
    };
    wait_until("the offset committed", Duration::from_secs(30), || {
        commit(at.clone()).ok()
    });
    // The coordinator is the leader of the group's __consumer_offsets partition (three of
    // them in test clusters), replicated on all three brokers.
    let partition = offsets_partition(GROUP, 3);
    let coordinator = wait_until("the coordinator", Duration::from_secs(10), || {
        let consumer: BaseConsumer = common::client(&bootstrap).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(5))
            .ok()?;
        let p = metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)?;
        assert_eq!(p.replicas().len(), 3, "offsets.topic.replication.factor");
        (p.leader() > 0 && p.isr().len() == 3).then_some(p.leader() as usize)
    });
    nodes[coordinator - 1].kill();
    let alive = addrs_except(&nodes, coordinator);
    let committed = tokio::task::spawn_blocking(move || {
        wait_until(
            "the committed offset from the new coordinator",
            Duration::from_secs(30),
            || {
                let consumer: BaseConsumer = common::client(&alive)
                    .set("group.id", GROUP)
                    .create()
                    .unwrap();
                let mut wanted = TopicPartitionList::new();
                wanted.add_partition("work", 0);
                let found = consumer
                    .committed_offsets(wanted, Duration::from_secs(5))
                    .ok()?;
                let offset = found.elements()[0].offset();
                (offset != Offset::Invalid).then_some(offset)
            },
        )
    })
    .await
    .unwrap();
    assert_eq!(committed, Offset::Offset(42));
    for node in &mut nodes {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_leader_truncates_what_was_never_committed() {
    const TOPIC3: &str = "diverge";
    let root = tempfile::tempdir().unwrap();
    let extra = ["broker.session.timeout.ms=4000".to_owned()];
    let (mut nodes, _) = three_nodes(root.path(), &extra);
    let bootstrap = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic =
        NewTopic::new(TOPIC3, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created");
    produce_all(&bootstrap, TOPIC3, 0..100).await;
    let (leader, followers) = wait_until("a full ISR", Duration::from_secs(10), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&bootstrap).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(TOPIC3), Duration::from_secs(5))
            .ok()?;
        let p = metadata.topics()[0].partitions().first()?;
        let followers: Vec<usize> = p
            .replicas()
            .iter()
            .filter(|r| **r != p.leader())
            .map(|r| *r as usize)
            .collect();
        (p.leader() > 0 && p.isr().len() == 3).then_some((p.leader() as usize, followers))
    });
    // The followers stop fetching (their parked fetches drain first); the leader takes ten
    // acks=1 records only it has, and dies.
    let stopped: Vec<String> = followers
        .iter()
        .map(|f| nodes[f - 1].pid().to_string())
        .collect();
    for pid in &stopped {
        signal("-STOP", pid);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let producer: FutureProducer = common::client(&nodes[leader - 1].addr)
        .set("acks", "1")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    for v in 1000..1010 {
        producer
            .send(
                FutureRecord::to(TOPIC3).key("lost").payload(&v.to_string()),
                Duration::from_secs(5),
            )
            .await
            .expect("acks=1 answered by the leader alone");
    }
    nodes[leader - 1].kill();
    for pid in &stopped {
        signal("-CONT", pid);
    }
    // A follower takes over in a new epoch and commits new records at the same offsets.
    let alive = followers
        .iter()
        .map(|f| nodes[f - 1].addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    produce_all(&alive, TOPIC3, 100..150).await;
    // The old leader returns: the batches of its old epoch past the new leader's start of
    // epoch are cut, and it copies the new leader's.
    nodes[leader - 1].restart("127.0.0.1:0");
    wait_until("identical replicas", Duration::from_secs(30), || {
        let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(n, TOPIC3)).collect();
        logs.iter().all(|l| *l == logs[0]).then_some(())
    });
    assert!(
        nodes[leader - 1].log().contains("truncated"),
        "the old leader truncated its log"
    );
    let consumed = tokio::task::spawn_blocking(move || {
        common::consume_all(&alive, TOPIC3, 1, 150, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let mut values: Vec<u32> = common::numbers(&consumed);
    assert!(
        consumed.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets in order"
    );
    // (The producer sends concurrently: the values need not be in order.)
    values.sort_unstable();
    assert_eq!(
        values,
        (0..150).collect::<Vec<u32>>(),
        "the committed records, once each"
    );
    for node in &mut nodes {
        node.stop();
    }
}

/// The `.log` files of a partition on one node.
fn segment_count(node: &BrokerProcess, topic: &str) -> usize {
    std::fs::read_dir(node.data_dir.join(format!("{topic}-0")))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_replicas_share_one_bucket_across_leaders() {
    const TIERED: &str = "tiered";
    let root = tempfile::tempdir().unwrap();
    let server = strata_tiering::testing::start(&root.path().join("s3"), "shared").await;
    let env = common::s3_env(&server);
    let extra = [
        "remote.log.storage.url=s3://shared/strata".to_owned(),
        "remote.log.manager.task.interval.ms=200".to_owned(),
        "log.retention.check.interval.ms=200".to_owned(),
        "remote.log.chunk.bytes=16384".to_owned(),
    ];
    let (mut nodes, _) = three_nodes_env(&root.path().join("nodes"), &extra, &env);
    let bootstrap = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic = NewTopic::new(TIERED, 1, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2")
        .set("segment.bytes", "16384")
        .set("local.retention.bytes", "0")
        .set("retention.ms", "-1");
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created");
    // An idempotent producer writes offsets 0..3 and is idle from then on: its state is
    // below every later local log start.
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    for n in 0..3 {
        assert_eq!(
            produce_to_leader(&addrs, TIERED, idle_batch(n)).await,
            (0, i64::from(n))
        );
    }
    produce_all(&bootstrap, TIERED, 0..3000).await;
    // The leader uploads; every replica, followers too, keeps only what the bucket lacks.
    wait_until(
        "uploads and local retention on every replica",
        Duration::from_secs(60),
        || {
            nodes
                .iter()
                .all(|n| (1..=2).contains(&segment_count(n, TIERED)))
                .then_some(())
        },
    );
    let leader = wait_until("the leader", Duration::from_secs(10), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&bootstrap).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(TIERED), Duration::from_secs(5))
            .ok()?;
        let leader = metadata.topics()[0].partitions().first()?.leader();
        (leader > 0).then_some(leader as usize)
    });
    nodes[leader - 1].kill();
    let alive = addrs_except(&nodes, leader);
    // The new leader continues the same remote log in the same bucket.
    produce_all(&alive, TIERED, 3000..6000).await;
    // Its segments are cut elsewhere than the old leader's: the one straddling the remote
    // end is uploaded from there on, and uploads and local retention go on.
    let survivors: Vec<&BrokerProcess> = nodes
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != leader - 1)
        .map(|(_, node)| node)
        .collect();
    wait_until(
        "uploads go on under the new leader",
        Duration::from_secs(60),
        || {
            survivors
                .iter()
                .all(|n| (1..=2).contains(&segment_count(n, TIERED)))
                .then_some(())
        },
    );
    // The old leader comes back with its replica wiped: it starts at the new leader's local
    // log start, and once elected again (it is the preferred replica) it has the whole epoch
    // history from the bucket (KIP-405), not only the epochs it copied.
    wait_until(
        "epoch 0's segment gone from local disks",
        Duration::from_secs(60),
        || {
            survivors
                .iter()
                .all(|n| {
                    !n.data_dir
                        .join(format!("{TIERED}-0/00000000000000000000.log"))
                        .exists()
                })
                .then_some(())
        },
    );
    std::fs::remove_dir_all(nodes[leader - 1].data_dir.join(format!("{TIERED}-0"))).unwrap();
    nodes[leader - 1].restart("127.0.0.1:0");
    wait_until(
        "the wiped replica back in the ISR",
        Duration::from_secs(60),
        || (isr(&alive, TIERED).len() == 3).then_some(()),
    );
    let elected = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "partitions",
            "elect-leaders",
            "--bootstrap",
            &nodes[leader - 1].addr,
        ])
        .args(["--topic", TIERED])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&elected.stdout).contains("tiered-0: leader elected"),
        "{elected:?}"
    );
    let checkpoint = nodes[leader - 1]
        .data_dir
        .join(format!("{TIERED}-0/leader-epoch-checkpoint"));
    let epochs = wait_until("the epoch history", Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&checkpoint).ok()?;
        let entries: Vec<String> = text.lines().skip(2).map(str::to_owned).collect();
        (entries.len() == 3).then_some(entries)
    });
    assert_eq!(epochs[0], "0 0", "epoch 0 from the bucket: {epochs:?}");
    assert!(
        !checkpoint
            .with_file_name("00000000000000000000.log")
            .exists(),
        "the replica copied the whole history instead of starting at the local log start"
    );
    assert!(epochs[1].starts_with("1 "), "{epochs:?}");
    // It has the idle producer's state from the bucket too: a retry of its last batch is
    // acknowledged with the original offset, not written again, and a gap is refused.
    let elected = [nodes[leader - 1].addr.clone()];
    assert_eq!(
        produce_to_leader(&elected, TIERED, idle_batch(2)).await,
        (0, 2)
    );
    assert_eq!(
        produce_to_leader(&elected, TIERED, idle_batch(5)).await.0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    let alive = nodes[leader - 1].addr.clone();
    let consumed = tokio::task::spawn_blocking(move || {
        common::consume_all(&alive, TIERED, 1, 6003, Duration::from_secs(60))
    })
    .await
    .unwrap();
    let mut values: Vec<u32> = common::numbers(&consumed);
    assert!(
        consumed.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets in order"
    );
    values.sort_unstable();
    assert_eq!(
        values,
        (0..6003).collect::<Vec<u32>>(),
        "the whole history, once each"
    );
    for node in &mut nodes {
        node.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_replaced_and_rejoins_as_a_follower() {
    const TOPIC3: &str = "paused";
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, _) = three_nodes(root.path(), &[]);
    let bootstrap = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic =
        NewTopic::new(TOPIC3, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created");
    produce_all(&bootstrap, TOPIC3, 0..200).await;
    let leader = wait_until("a full ISR", Duration::from_secs(10), || {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(&bootstrap).create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(TOPIC3), Duration::from_secs(5))
            .ok()?;
        let p = metadata.topics()[0].partitions().first()?;
        (p.leader() > 0 && p.isr().len() == 3).then_some(p.leader() as usize)
    });
    // Paused for longer than the session timeout (2 s here): the controller fences it (if it
    // was the active controller too, the other voters elect another) and a follower leads.
    let paused = nodes[leader - 1].pid().to_string();
    signal("-STOP", &paused);
    let others = addrs_except(&nodes, leader);
    produce_all(&others, TOPIC3, 200..400).await;
    signal("-CONT", &paused);
    wait_until(
        "identical replicas, ISR back to 3",
        Duration::from_secs(30),
        || {
            let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(n, TOPIC3)).collect();
            (logs.iter().all(|l| *l == logs[0]) && isr(&others, TOPIC3).len() == 3).then_some(())
        },
    );
    let consumed = tokio::task::spawn_blocking(move || {
        common::consume_all(&bootstrap, TOPIC3, 1, 400, Duration::from_secs(30))
    })
    .await
    .unwrap();
    let mut values: Vec<u32> = common::numbers(&consumed);
    values.sort_unstable();
    assert_eq!(values, (0..400).collect::<Vec<u32>>(), "every record once");
    for node in &mut nodes {
        node.stop();
    }
}
