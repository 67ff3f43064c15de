//! Moving replicas and leadership on a live cluster (three combined nodes and a broker-only
//! fourth): a partition reassigned from brokers {1,2,3} to {2,3,4} under acks=all load with
//! the `strata partitions reassign` CLI and a throttle, a broker emptied by
//! `strata cluster decommission`, and preferred leaders elected back with
//! `strata partitions elect-leaders` — nothing acknowledged lost or duplicated.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use common::cluster::{log_bytes, three_nodes, wait_until};
use common::wire::Conn;
use kafka_protocol::messages::ListPartitionReassignmentsRequest;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Every partition's (leader, replicas) of `topic`.
fn placement(bootstrap: &str, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>)> {
    let consumer: BaseConsumer = common::client(bootstrap).create().unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return BTreeMap::new();
    };
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| (p.id(), (p.leader(), p.replicas().to_vec())))
        .collect()
}

/// Runs `strata` with `args`; panics unless it succeeds, returns its stdout.
fn strata(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "strata {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Produces to `topic` with an idempotent acks=all producer until `stop`, recording the
/// values acknowledged: as fast as it can for the first `fast` records, then 50 records every
/// 100 ms.
fn produce_until(
    bootstrap: String,
    topic: &'static str,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u32>>>,
    (payload, fast): (usize, u32),
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let producer: FutureProducer = common::client(&bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "60000")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let mut v = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let sends: Vec<_> = (v..v + 50)
                .map(|n| {
                    let producer = producer.clone();
                    let value = format!("{n:0>width$}", width = payload);
                    tokio::spawn(async move {
                        producer
                            .send(
                                FutureRecord::to(topic).key(&n.to_string()).payload(&value),
                                Duration::from_secs(60),
                            )
                            .await
                            .map(|_| n)
                            .unwrap_or_else(|(e, _)| panic!("record {n} not acknowledged: {e}"))
                    })
                })
                .collect();
            for send in sends {
                let n = send.await.unwrap();
                acked.lock().unwrap().push(n);
            }
            v += 50;
            if v >= fast {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_move_under_load_and_a_broker_is_decommissioned() {
    const MOVING: &str = "moving";
    const SPREAD: &str = "spread";
    let root = tempfile::tempdir().unwrap();
    let no_auto = vec!["auto.leader.rebalance.enable=false".to_owned()];
    let (mut nodes, voters) = three_nodes(root.path(), &no_auto);
    let node4 = BrokerProcess::start(
        &root.path().join("node4"),
        &[
            "process.roles=broker",
            "node.id=4",
            &format!("controller.quorum.voters={voters}"),
            "broker.heartbeat.interval.ms=300",
        ],
    );
    nodes.push(node4);
    let bootstrap = nodes[0].addr.clone();
    wait_until("four live brokers", Duration::from_secs(20), || {
        (common::cluster::broker_count(&bootstrap) == 4).then_some(())
    });
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    let topic = NewTopic::new(MOVING, 1, TopicReplication::Variable(&[&[1, 2, 3]]))
        .set("min.insync.replicas", "2")
        .set("segment.bytes", "1000000");
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("topic created on 1,2,3");

    // Load: 4 MB before the move, and writes (under 0.5 MB/s) all through it.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let producer = produce_until(
        bootstrap.clone(),
        MOVING,
        Arc::clone(&stop),
        Arc::clone(&acked),
        (1000, 4000),
    );
    wait_until("4 MB written", Duration::from_secs(60), || {
        (acked.lock().unwrap().len() >= 4000).then_some(())
    });

    // The generated plan keeps 2 and 3 and adds 4; the throttle holds the new replica to
    // 2 MB/s, so it takes seconds to catch up and the reassignment can be seen in progress.
    let shown = strata(&[
        "partitions",
        "reassign",
        "--bootstrap",
        &bootstrap,
        "--topics",
        MOVING,
        "--brokers",
        "2,3,4",
    ]);
    assert!(
        shown.contains("1,2,3") && shown.contains("2,3,4"),
        "{shown}"
    );
    let plan_file = root.path().join("plan.json");
    let json = &shown[shown.find('{').expect("the plan's JSON")..];
    std::fs::write(&plan_file, json).unwrap();
    let plan_path = plan_file.to_str().unwrap();
    let started = Instant::now();
    strata(&[
        "partitions",
        "reassign",
        "--bootstrap",
        &bootstrap,
        "--plan",
        plan_path,
        "--execute",
        "--throttle",
        "1000000",
    ]);
    let mut conn = Conn::open(&bootstrap).await;
    let listed = conn
        .call(
            0,
            &ListPartitionReassignmentsRequest::default().with_topics(None),
        )
        .await
        .expect("ListPartitionReassignments answered");
    let ongoing = &listed.topics[0].partitions[0];
    assert_eq!(listed.topics[0].name.0.as_str(), MOVING);
    let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    assert_eq!(ids(&ongoing.adding_replicas), vec![4]);
    assert_eq!(ids(&ongoing.removing_replicas), vec![1]);
    strata(&[
        "partitions",
        "reassign",
        "--bootstrap",
        &bootstrap,
        "--plan",
        plan_path,
        "--wait",
    ]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "4 MB at 2 MB/s took only {took:?}: the throttle did not hold"
    );
    let (leader, replicas) = placement(&bootstrap, MOVING)[&0].clone();
    assert_eq!(replicas, vec![2, 3, 4]);
    assert_ne!(leader, 1, "the removed broker no longer leads");
    // Broker 1 drops its replica.
    wait_until(
        "broker 1's replica removed",
        Duration::from_secs(20),
        || (!nodes[0].data_dir.join(format!("{MOVING}-0")).exists()).then_some(()),
    );
    // Writes go on to the new leader; then everything acknowledged is there once, and the
    // three replicas are byte for byte the same.
    let before = acked.lock().unwrap().len();
    wait_until("writes after the move", Duration::from_secs(60), || {
        (acked.lock().unwrap().len() >= before + 500).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    let acked_all = acked.lock().unwrap().clone();
    let reader = nodes[1].addr.clone();
    let check = acked_all.clone();
    tokio::task::spawn_blocking(move || common::check_acked_once(&reader, MOVING, &check))
        .await
        .unwrap();
    wait_until(
        "identical replicas on 2, 3, 4",
        Duration::from_secs(30),
        || {
            let logs: Vec<Vec<u8>> = nodes[1..].iter().map(|n| log_bytes(n, MOVING)).collect();
            (!logs[0].is_empty() && logs.iter().all(|l| *l == logs[0])).then_some(())
        },
    );

    // Decommission broker 4: a topic spread over all four brokers moves off it.
    let topic = NewTopic::new(
        SPREAD,
        4,
        TopicReplication::Variable(&[&[4, 1], &[1, 4], &[2, 3], &[3, 4]]),
    );
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .expect("topic created");
    let producer: FutureProducer = common::client(&bootstrap)
        .set("acks", "all")
        .create()
        .unwrap();
    for p in 0..4 {
        for n in 0..50 {
            producer
                .send(
                    FutureRecord::to(SPREAD)
                        .partition(p)
                        .key("k")
                        .payload(&n.to_string()),
                    Duration::from_secs(30),
                )
                .await
                .expect("acknowledged");
        }
    }
    let out = strata(&[
        "cluster",
        "decommission",
        "--bootstrap",
        &bootstrap,
        "--broker",
        "4",
    ]);
    assert!(out.contains("broker 4 holds no replicas"), "{out}");
    let after = placement(&bootstrap, SPREAD);
    assert!(
        after.values().all(|(_, r)| !r.contains(&4) && r.len() == 2),
        "{after:?}"
    );
    assert!(
        placement(&bootstrap, MOVING)[&0].1.iter().all(|r| *r != 4),
        "the moved partition left broker 4 too"
    );
    assert_eq!(after[&2].1, vec![2, 3], "partitions without broker 4 stay");
    let reader = bootstrap.clone();
    let counts = tokio::task::spawn_blocking(move || {
        common::consume_all(&reader, SPREAD, 4, 200, Duration::from_secs(60)).len()
    })
    .await
    .unwrap();
    assert_eq!(
        counts, 200,
        "every record of every partition is still there"
    );

    // Preferred leaders: partition 2 of SPREAD prefers broker 2; stop it, its follower 3
    // leads, and once 2 is back in sync an election hands leadership back.
    nodes[1].stop();
    wait_until(
        "broker 3 leads partition 2",
        Duration::from_secs(20),
        || (placement(&bootstrap, SPREAD)[&2].0 == 3).then_some(()),
    );
    nodes[1].restart("127.0.0.1:0");
    wait_until("broker 2 in sync again", Duration::from_secs(30), || {
        let consumer: BaseConsumer = common::client(&bootstrap).create().unwrap();
        let m = consumer
            .fetch_metadata(Some(SPREAD), Duration::from_secs(5))
            .ok()?;
        let p = m.topics()[0].partitions().iter().find(|p| p.id() == 2)?;
        (p.isr().len() == 2).then_some(())
    });
    assert_eq!(
        placement(&bootstrap, SPREAD)[&2].0,
        3,
        "no automatic rebalance here"
    );
    let out = strata(&[
        "partitions",
        "elect-leaders",
        "--bootstrap",
        &bootstrap,
        "--topic",
        SPREAD,
    ]);
    assert!(out.contains("spread-2: leader elected"), "{out}");
    assert_eq!(placement(&bootstrap, SPREAD)[&2].0, 2);
    let again = strata(&[
        "partitions",
        "elect-leaders",
        "--bootstrap",
        &bootstrap,
        "--topic",
        SPREAD,
        "--partition",
        "2",
    ]);
    assert!(
        again.contains("error code 84"),
        "ELECTION_NOT_NEEDED: {again}"
    );
    for node in &mut nodes {
        node.stop();
    }
}
