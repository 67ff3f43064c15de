//! Three combined nodes (broker + controller voter each) form a cluster: librdkafka producers
//! and a consumer group work against partitions led by different brokers, a topic created on
//! one broker is visible on all, a broker killed with kill -9 is fenced and Metadata shows it,
//! and when it returns it leads its partitions again with nothing lost. A broker whose data
//! belongs to another cluster is refused at registration.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{self, wait_until};
use common::{BrokerProcess, client};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "spread";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 600;

/// Objects under `dir` (none if it does not exist). A kill -9 during a put leaves a staging
/// file (`<name>#<n>`) that the store does not list as an object: not counted.
fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    files_under(&path)
                } else {
                    usize::from(!e.file_name().to_string_lossy().contains('#'))
                }
            })
            .sum()
    })
}

/// Files of the topic named `topic` in the cluster's object store.
fn topic_objects(store: &Path, topic: &str) -> usize {
    std::fs::read_dir(store.join("clusters")).map_or(0, |clusters| {
        clusters
            .flatten()
            .map(|c| files_under(&c.path().join("topics").join(topic)))
            .sum()
    })
}

fn start_node(dir: &Path, settings: &[String]) -> BrokerProcess {
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    BrokerProcess::start(dir, &settings)
}

fn metadata(addr: &str) -> Metadata {
    let consumer: BaseConsumer = client(addr).create().expect("client");
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("Metadata answered")
}

/// The leader of each partition of `topic` as `addr` reports it (-1: none).
fn leaders(addr: &str, topic: &str) -> BTreeMap<i32, i32> {
    let metadata = metadata(addr);
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| {
            t.partitions()
                .iter()
                .map(|p| (p.id(), p.leader()))
                .collect()
        })
        .unwrap_or_default()
}

fn broker_ids(addr: &str) -> BTreeSet<i32> {
    metadata(addr).brokers().iter().map(|b| b.id()).collect()
}

/// Consumes `topic` in group `group` until `expected` distinct records arrived; commits.
fn consume_group(addr: &str, group: &str, expected: usize) -> BTreeSet<(i32, i64, Vec<u8>)> {
    let consumer: BaseConsumer = client(addr)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                seen.insert((
                    m.partition(),
                    m.offset(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("offsets committed");
    seen
}

async fn produce(addr: &str, from: usize, to: usize) {
    produce_to(addr, TOPIC, PARTITIONS, from, to).await;
}

async fn produce_to(addr: &str, topic: &str, partitions: i32, from: usize, to: usize) {
    let producer: FutureProducer = client(addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let mut deliveries = Vec::new();
    for n in from..to {
        let value = format!("record-{n:0>100}");
        let partition = (n % partitions as usize) as i32;
        let record = FutureRecord::<(), _>::to(topic)
            .payload(&value)
            .partition(partition);
        let delivery = producer
            .send_result(record)
            .unwrap_or_else(|(e, _)| panic!("queueing record {n}: {e}"));
        deliveries.push((partition, delivery));
    }
    for (partition, delivery) in deliveries {
        let delivered = delivery
            .await
            .expect("delivery reported")
            .unwrap_or_else(|(e, _)| panic!("partition {partition}: {e}"));
        assert_eq!(delivered.partition, partition);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_spread_partitions_and_fence_a_dead_one() {
    let tmp = tempfile::tempdir().unwrap();
    // One object store for the cluster, as in production.
    let store = tmp.path().join("objects");
    let (mut nodes, voters) = cluster::three_nodes(
        tmp.path(),
        &[
            format!("remote.log.storage.url={}", store.display()),
            "remote.log.manager.task.interval.ms=200".into(),
        ],
    );
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    wait_until("three live brokers", Duration::from_secs(20), || {
        (broker_ids(&addrs[0]).len() == 3).then_some(())
    });

    // A topic created through broker 1 is placed over all three and visible on every broker.
    let admin: AdminClient<DefaultClientContext> = client(&addrs[0]).create().unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics answered");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    for addr in &addrs {
        let leaders = wait_until("the topic on every broker", Duration::from_secs(10), || {
            let leaders = leaders(addr, TOPIC);
            (leaders.len() == PARTITIONS as usize).then_some(leaders)
        });
        let mut per_broker: BTreeMap<i32, usize> = BTreeMap::new();
        for leader in leaders.values() {
            *per_broker.entry(*leader).or_default() += 1;
        }
        assert_eq!(
            per_broker,
            BTreeMap::from([(1, 2), (2, 2), (3, 2)]),
            "{addr}: leaders {leaders:?}"
        );
    }

    // Producers and a consumer group bootstrapped from different brokers.
    produce(&addrs[1], 0, RECORDS).await;
    let seen = consume_group(&addrs[2], "readers", RECORDS);
    assert_eq!(seen.len(), RECORDS, "every record consumed once");
    let values: BTreeSet<Vec<u8>> = seen.iter().map(|(_, _, v)| v.clone()).collect();
    assert_eq!(values.len(), RECORDS);

    // `strata groups` finds the group's coordinator and each partition's leader.
    let described = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["groups", "--bootstrap", &addrs[0], "describe", "readers"])
        .output()
        .expect("strata groups runs");
    let out = String::from_utf8_lossy(&described.stdout);
    assert!(
        described.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&described.stderr)
    );
    assert!(out.contains("total lag 0"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("readers ")).count(),
        PARTITIONS as usize,
        "{out}"
    );

    // A tiered topic whose only replica is on broker 3.
    let doomed = NewTopic::new("doomed", 1, TopicReplication::Variable(&[&[3]]))
        .set("segment.bytes", "16384")
        .set("local.retention.bytes", "0");
    let created = admin
        .create_topics(
            &[doomed],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics answered");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // In rounds, so that batches are smaller than segments and segments roll.
    for round in 0..20 {
        produce_to(&addrs[2], "doomed", 1, round * 100, round * 100 + 100).await;
    }
    wait_until(
        "doomed's segments uploaded",
        Duration::from_secs(30),
        || (topic_objects(&store, "doomed") >= 10).then_some(()),
    );

    // kill -9 node 3: its broker is fenced, Metadata drops it and its partitions lose their
    // leader (one replica each: no other broker has their data).
    let before = leaders(&addrs[0], TOPIC);
    let on_3: Vec<i32> = before
        .iter()
        .filter(|(_, l)| **l == 3)
        .map(|(p, _)| *p)
        .collect();
    nodes[2].kill();
    let killed = Instant::now();
    wait_until("broker 3 fenced", Duration::from_secs(20), || {
        let ids = broker_ids(&addrs[0]);
        let now = leaders(&addrs[0], TOPIC);
        (ids == BTreeSet::from([1, 2]) && on_3.iter().all(|p| now[p] == -1)).then_some(())
    });
    eprintln!("broker 3 fenced {:?} after kill -9", killed.elapsed());
    // The others keep working (the quorum has two of three voters).
    for addr in &addrs[..2] {
        assert_eq!(broker_ids(addr), BTreeSet::from([1, 2]), "{addr}");
    }

    // A tiered topic deleted while its only replica is down: a live broker deletes its
    // objects (broker 3 removes its local copy when it returns).
    let deleted = admin
        .delete_topics(
            &["doomed"],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("DeleteTopics answered");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while topic_objects(&store, "doomed") > 0 {
        if Instant::now() > deadline {
            let listing = Command::new("find").arg(&store).output().unwrap();
            panic!(
                "doomed's objects were not deleted:\n{}",
                String::from_utf8_lossy(&listing.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Node 3 returns: it leads its partitions again and every record is still there.
    nodes[2].restart("127.0.0.1:0");
    let restarted = nodes[2].addr.clone();
    wait_until("broker 3 back as leader", Duration::from_secs(20), || {
        let now = leaders(&addrs[0], TOPIC);
        (now == before).then_some(())
    });
    produce(&restarted, RECORDS, RECORDS + 60).await;
    let all = consume_group(&addrs[0], "late-readers", RECORDS + 60);
    assert_eq!(all.len(), RECORDS + 60, "nothing lost across the kill");

    // A broker-only node joins: it is listed, and new partitions are placed on it first (it
    // holds the fewest).
    let broker_only = tmp.path().join("node4");
    let settings4 = vec![
        "process.roles=broker".to_owned(),
        "node.id=4".to_owned(),
        format!("controller.quorum.voters={voters}"),
        "broker.heartbeat.interval.ms=300".to_owned(),
    ];
    let node4 = start_node(&broker_only, &settings4);
    wait_until("four live brokers", Duration::from_secs(20), || {
        (broker_ids(&addrs[0]) == BTreeSet::from([1, 2, 3, 4])).then_some(())
    });
    let admin4: AdminClient<DefaultClientContext> = client(&node4.addr).create().unwrap();
    let created = admin4
        .create_topics(
            &[NewTopic::new("fresh", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("CreateTopics answered");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    assert_eq!(leaders(&addrs[1], "fresh"), BTreeMap::from([(0, 4)]));

    // A broker whose data belongs to another cluster is refused, naming the problem.
    let stranger = tmp.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(
        stranger.join("meta.properties"),
        "version=1\ncluster.id=AnotherClusterAAAAAAAA\nnode.id=4\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["run", "--data-dir"])
        .arg(&stranger)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--set",
            "process.roles=broker",
            "--set",
            "node.id=4",
            "--set",
        ])
        .arg(format!("controller.quorum.voters={voters}"))
        .output()
        .expect("strata runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a stranger joined: {stderr}");
    assert!(
        stderr.contains("AnotherClusterAAAAAAAA") && stderr.contains("cluster"),
        "{stderr}"
    );
}
