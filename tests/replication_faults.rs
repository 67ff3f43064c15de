//! Faults Kafka users fear, on three brokers behind per-broker TCP proxies, with an idempotent
//! acks=all producer running throughout (RF 3, `min.insync.replicas=2`):
//! - the links from the leader to its followers cut and healed: the followers leave the ISR,
//!   nothing is acknowledged while only the leader has it, and all resumes once healed (the
//!   leader's `/metrics` show the ISR shrink, the under-replicated and under-min-ISR
//!   partitions, then the expansion);
//! - a follower's log directory wiped (kill -9, data gone, restart): it leaves the ISR at
//!   once, rebuilds from the leader and rejoins.
//!
//! After each, every acknowledged record is read back once at increasing offsets and the three
//! replicas' logs are byte-identical.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::BrokerProcess;
use common::cluster::{log_bytes, node_settings, voters, wait_until};
use common::metrics::scrape;
use common::proxy::LinkProxy;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: &str = "faults";

/// Partition 0's (leader, ISR).
fn state(bootstrap: &str) -> Option<(i32, Vec<i32>)> {
    let consumer: BaseConsumer = common::client(bootstrap).create().unwrap();
    let m = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
        .ok()?;
    let p = m.topics()[0].partitions().first()?;
    let mut isr = p.isr().to_vec();
    isr.sort_unstable();
    Some((p.leader(), isr))
}

/// Produces 20 records every 50 ms until `stop`, recording those acknowledged.
fn produce_until(
    bootstrap: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u32>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let producer: FutureProducer = common::client(&bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "120000")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let mut v = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let sends: Vec<_> = (v..v + 20)
                .map(|n| {
                    let producer = producer.clone();
                    tokio::spawn(async move {
                        producer
                            .send(
                                FutureRecord::to(TOPIC)
                                    .key(&n.to_string())
                                    .payload(&n.to_string()),
                                Duration::from_secs(120),
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
            v += 20;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn acked_count(acked: &Mutex<Vec<u32>>) -> usize {
    acked.lock().unwrap().len()
}

/// Every acknowledged record once, offsets increasing, and identical replicas.
fn check(bootstrap: &str, nodes: &[BrokerProcess], acked: &[u32]) {
    common::check_acked_once(bootstrap, TOPIC, acked);
    wait_until("identical replicas", Duration::from_secs(30), || {
        let logs: Vec<Vec<u8>> = nodes.iter().map(|n| log_bytes(n, TOPIC)).collect();
        (!logs[0].is_empty() && logs.iter().all(|l| *l == logs[0])).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_links_and_a_wiped_follower_lose_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (controllers, voters) = voters(3);
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(LinkProxy::start().await);
    }
    let starts: Vec<_> = (0..3)
        .map(|n| {
            let dir = root.path().join(format!("node{}", n + 1));
            let mut settings = node_settings(n as u64 + 1, &controllers[n], &voters);
            settings.push("replica.lag.time.max.ms=2000".into());
            let advertised = proxies[n].addr.clone();
            std::thread::spawn(move || {
                let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
                BrokerProcess::start_with(&dir, "127.0.0.1:0", Some(&advertised), &settings)
            })
        })
        .collect();
    let mut nodes: Vec<BrokerProcess> = starts.into_iter().map(|h| h.join().unwrap()).collect();
    for (proxy, node) in proxies.iter().zip(&nodes) {
        proxy.set_target(&node.addr);
    }
    let bootstrap = proxies
        .iter()
        .map(|p| p.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
    admin
        .create_topics(
            &[
                NewTopic::new(TOPIC, 1, TopicReplication::Variable(&[&[1, 2, 3]]))
                    .set("min.insync.replicas", "2"),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap()[0]
        .as_ref()
        .expect("topic created");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let producer = produce_until(bootstrap.clone(), Arc::clone(&stop), Arc::clone(&acked));
    wait_until("writes", Duration::from_secs(30), || {
        (acked_count(&acked) >= 200).then_some(())
    });

    // Cut the leader (broker 1) off from its followers.
    proxies[0].cut_replication(true);
    wait_until(
        "the ISR shrinks to the leader",
        Duration::from_secs(30),
        || (state(&bootstrap) == Some((1, vec![1]))).then_some(()),
    );
    // The leader's metrics show it (scraped as Prometheus would).
    let m = scrape(&nodes[0].admin_addr, false);
    assert!(m.sum("strata_isr_shrinks_total", &[]) >= 1.0);
    assert!(m.sum("strata_under_replicated_partitions", &[]) >= 1.0);
    assert!(m.sum("strata_under_min_isr_partitions", &[]) >= 1.0);
    assert_eq!(m.sum("strata_offline_partitions", &[]), 0.0);
    // Give writes acknowledged before the shrink a moment to land, then none may be.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = acked_count(&acked);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        acked_count(&acked),
        during,
        "acks=all writes were acknowledged with only the leader in sync"
    );
    proxies[0].cut_replication(false);
    wait_until(
        "the followers back in the ISR",
        Duration::from_secs(30),
        || (state(&bootstrap) == Some((1, vec![1, 2, 3]))).then_some(()),
    );
    wait_until("writes resume", Duration::from_secs(60), || {
        (acked_count(&acked) >= during + 200).then_some(())
    });
    let m = scrape(&nodes[0].admin_addr, false);
    assert!(m.sum("strata_isr_expands_total", &[]) >= 1.0);
    assert_eq!(m.sum("strata_under_min_isr_partitions", &[]), 0.0);

    // Wipe follower 3's log directory (its metadata log stays): it leaves the ISR as soon
    // as it registers again, rebuilds its replica from the leader and rejoins.
    nodes[2].kill();
    for entry in std::fs::read_dir(&nodes[2].data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "__cluster_metadata" || name == "meta.properties" {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    assert!(log_bytes(&nodes[2], TOPIC).is_empty());
    nodes[2].restart("127.0.0.1:0");
    proxies[2].set_target(&nodes[2].addr);
    wait_until(
        "the wiped follower back in the ISR",
        Duration::from_secs(60),
        || (state(&bootstrap).is_some_and(|(_, isr)| isr == vec![1, 2, 3])).then_some(()),
    );
    let before = acked_count(&acked);
    wait_until("writes go on", Duration::from_secs(60), || {
        (acked_count(&acked) >= before + 200).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    let all = acked.lock().unwrap().clone();
    tokio::task::block_in_place(|| check(&bootstrap, &nodes, &all));
    for node in &mut nodes {
        node.stop();
    }
}
