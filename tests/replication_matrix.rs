//! Kafka's ReplicationTest matrix on three brokers: RF 3, `min.insync.replicas=2`, an
//! idempotent acks=all producer and a consumer running throughout, while {clean shutdown,
//! kill -9} × {partition leader, follower, active controller} each bounce a node several
//! times. Afterwards no acknowledged record is missing, none is read twice, every offset is
//! read in order, and the three replicas are byte-identical.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::BrokerProcess;
use common::cluster::{log_bytes, three_nodes, wait_until};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "matrix";
/// The first errors the producer saw, for a failure report.
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The first errors the consumer saw (with the offset it had reached), for a failure report.
static CONSUMER_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Bounces of each (shutdown kind, role) pair.
const BOUNCES: usize = 5;

#[derive(Debug, Clone, Copy)]
enum Role {
    Leader,
    Follower,
    Controller,
}

/// Partition 0's leader and replicas by node id, with its ISR.
fn partition(bootstrap: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let consumer: BaseConsumer = common::client(bootstrap).create().ok()?;
    let metadata = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
        .ok()?;
    let p = metadata.topics().first()?.partitions().first()?;
    (p.leader() > 0).then(|| (p.leader(), p.replicas().to_vec(), p.isr().to_vec()))
}

/// The active controller's node id, from `strata cluster status`.
fn active_controller(controller: &str) -> Option<usize> {
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["cluster", "status", "--controllers", controller])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let rest = text.strip_prefix("active controller: ")?;
    rest.split_whitespace().next()?.parse().ok()
}

fn bootstrap(nodes: &[BrokerProcess]) -> String {
    nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints every panic in the nodes' logs with the message after it (an openraft core that
/// panicked stops ISR changes and fencing), then each log's tail.
fn report(nodes: &[BrokerProcess]) {
    for node in nodes {
        let log = node.log();
        let lines: Vec<&str> = log.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("panicked at") {
                for line in &lines[i..(i + 3).min(lines.len())] {
                    eprintln!(
                        "{}: {}",
                        node.data_dir.display(),
                        &line[..line.len().min(400)]
                    );
                }
            }
        }
    }
    for node in nodes {
        let log = node.log();
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("openraft"))
            .rev()
            .take(40)
            .collect();
        eprintln!("--- {}", node.data_dir.display());
        for line in tail.into_iter().rev() {
            eprintln!("{}", &line[..line.len().min(240)]);
        }
    }
}

/// Polls `check` for 30 s; on timeout reports the nodes' logs and panics.
fn wait_or_report<T>(
    nodes: &[BrokerProcess],
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        if std::time::Instant::now() > deadline {
            report(nodes);
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// Kafka's ReplicationTest: {clean shutdown, kill -9} x {leader, follower, active controller},
// 5 bounces each, with an idempotent acks=all producer and a consumer running throughout.
#[test]
fn bounces_of_leaders_followers_and_controllers_lose_and_repeat_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, voters) = three_nodes(root.path(), &[]);
    let controllers: Vec<String> = voters
        .split(',')
        .map(|v| v.split_once('@').unwrap().1.to_owned())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            common::client(&bootstrap(&nodes)).create().unwrap();
        let topic =
            NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
        admin
            .create_topics(&[topic], &AdminOptions::new())
            .await
            .unwrap()[0]
            .as_ref()
            .expect("created");
    });
    let stop = Arc::new(AtomicBool::new(false));
    // The producer: one record at a time, each value acknowledged is remembered.
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let producer = {
        let (stop, acked, bootstrap) = (stop.clone(), acked.clone(), bootstrap(&nodes));
        let handle = runtime.handle().clone();
        std::thread::spawn(move || {
            handle.block_on(async move {
                let producer: FutureProducer = common::client(&bootstrap)
                    .set("enable.idempotence", "true")
                    .set("acks", "all")
                    .set("message.timeout.ms", "120000")
                    .set("linger.ms", "1")
                    .create()
                    .unwrap();
                let mut next = 0u64;
                let mut in_flight = tokio::task::JoinSet::new();
                while !stop.load(Ordering::Relaxed) {
                    while in_flight.len() < 20 {
                        let producer = producer.clone();
                        let value = next;
                        next += 1;
                        in_flight.spawn(async move {
                            let result = producer
                                .send(
                                    FutureRecord::to(TOPIC).key("k").payload(&value.to_string()),
                                    Duration::from_secs(120),
                                )
                                .await;
                            if let Err((e, _)) = &result {
                                let mut errors = ERRORS.lock().unwrap();
                                if errors.len() < 20 {
                                    errors.push(format!("{value}: {e}"));
                                }
                            }
                            (value, result.is_ok())
                        });
                    }
                    if let Some(Ok((value, true))) = in_flight.join_next().await {
                        acked.lock().unwrap().push(value);
                    }
                }
                while let Some(done) = in_flight.join_next().await {
                    if let Ok((value, true)) = done {
                        acked.lock().unwrap().push(value);
                    }
                }
            })
        })
    };
    // The consumer: from the beginning, throughout.
    let consumed = Arc::new(Mutex::new(Vec::<(i64, u64)>::new()));
    let consumer = {
        let (stop, consumed, bootstrap) = (stop.clone(), consumed.clone(), bootstrap(&nodes));
        std::thread::spawn(move || {
            let consumer: BaseConsumer = common::client(&bootstrap)
                .set("group.id", "matrix-readers")
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(TOPIC, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&assignment).unwrap();
            let mut idle_after_stop = 0;
            loop {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        let value = String::from_utf8_lossy(m.payload().unwrap())
                            .parse()
                            .unwrap();
                        consumed.lock().unwrap().push((m.offset(), value));
                        idle_after_stop = 0;
                    }
                    Some(Err(e)) => {
                        let reached = consumed.lock().unwrap().last().copied();
                        let mut errors = CONSUMER_ERRORS.lock().unwrap();
                        // Transport failures are expected while nodes bounce and would crowd
                        // out the rare error that explains a failure (an offset reset).
                        let transport = e.to_string().contains("transport failure");
                        if errors.len() < 50 && !(transport && errors.len() >= 10) {
                            errors.push(format!("after {reached:?}: {e}"));
                        }
                    }
                    None if stop.load(Ordering::Relaxed) => {
                        idle_after_stop += 1;
                        if idle_after_stop > 50 {
                            break;
                        }
                    }
                    None => {}
                }
            }
        })
    };
    let mut bounces = 0;
    for clean in [true, false] {
        for role in [Role::Leader, Role::Follower, Role::Controller] {
            for _ in 0..BOUNCES {
                let before = acked.lock().unwrap().len();
                let target = wait_or_report(&nodes, "a node to bounce", || {
                    let (leader, replicas, isr) = partition(&bootstrap(&nodes))?;
                    if isr.len() < 3 {
                        return None;
                    }
                    let id = match role {
                        Role::Leader => leader,
                        Role::Follower => *replicas.iter().find(|r| **r != leader)?,
                        Role::Controller => {
                            controllers.iter().find_map(|c| active_controller(c))? as i32
                        }
                    };
                    Some(id as usize - 1)
                });
                if clean && !nodes[target].stop() {
                    let log = nodes[target].log();
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    panic!(
                        "node {} did not shut down cleanly:\n{}",
                        target + 1,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                } else if !clean {
                    nodes[target].kill();
                }
                std::thread::sleep(Duration::from_millis(500));
                nodes[target].restart("127.0.0.1:0");
                bounces += 1;
                // Writes go on: more records are acknowledged after each bounce.
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while acked.lock().unwrap().len() <= before + 10 {
                    if std::time::Instant::now() > deadline {
                        report(&nodes);
                        eprintln!("producer errors: {:?}", ERRORS.lock().unwrap());
                        eprintln!("consumer errors: {:?}", CONSUMER_ERRORS.lock().unwrap());
                        panic!(
                            "no acknowledgements for 60 s after bounce {bounces} ({role:?}, clean: {clean}) of node {}",
                            target + 1
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    wait_until("a full ISR at the end", Duration::from_secs(30), || {
        let (_, _, isr) = partition(&bootstrap(&nodes))?;
        (isr.len() == 3).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    consumer.join().unwrap();
    let acked: BTreeSet<u64> = acked.lock().unwrap().iter().copied().collect();
    let consumed = consumed.lock().unwrap().clone();
    // What the consumer saw, for a failure: where it stopped and what it was told.
    let report = || {
        format!(
            "read {} records, the last {:?}; consumer errors: {:?}; epochs: {}",
            consumed.len(),
            consumed.last(),
            CONSUMER_ERRORS.lock().unwrap(),
            std::fs::read_to_string(
                nodes[0]
                    .data_dir
                    .join(format!("{TOPIC}-0/leader-epoch-checkpoint"))
            )
            .unwrap_or_default()
            .replace('\n', " ")
        )
    };
    if let Some(at) = consumed.windows(2).position(|w| w[0].0 >= w[1].0) {
        panic!(
            "offsets read out of order: {:?} then {:?}; {}",
            consumed[at],
            consumed[at + 1],
            report()
        );
    }
    let values: Vec<u64> = consumed.iter().map(|(_, v)| *v).collect();
    let unique: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(unique.len(), values.len(), "no record read twice");
    let missing: Vec<&u64> = acked.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing, e.g. {:?}; {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        report()
    );
    wait_until("byte-identical replicas", Duration::from_secs(30), || {
        let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(n, TOPIC)).collect();
        logs.iter().all(|l| *l == logs[0]).then_some(())
    });
    eprintln!(
        "{bounces} bounces: {} records acknowledged, {} read",
        acked.len(),
        values.len()
    );
    for node in &mut nodes {
        node.stop();
    }
}
