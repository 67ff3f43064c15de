//! The metadata scale bench: create many partitions through the raft log of three in-process
//! controllers (real TCP, real disks), snapshot, restart a voter from its snapshot, and stop
//! the active controller with everything in the image.
//!
//! `cargo run --release -p strata-controller --example metadata_scale -- [partitions]`
//! (default 1,000,000; topics of 1,000 partitions, one raft entry per topic).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_controller::raft::{Controller, QuorumConfig};
use strata_controller::{MetadataImage, MetadataRecord};
use tokio::net::TcpListener;
use uuid::Uuid;

const PER_TOPIC: usize = 1_000;
const BROKERS: i32 = 30;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn topic_records(n: usize) -> Vec<MetadataRecord> {
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::CreateTopic {
        name: format!("topic-{n:06}"),
        topic_id,
        configs: BTreeMap::new(),
    }];
    for p in 0..PER_TOPIC {
        let a = ((n * PER_TOPIC + p) % BROKERS as usize) as i32 + 1;
        let b = a % BROKERS + 1;
        let c = b % BROKERS + 1;
        records.push(MetadataRecord::CreatePartition {
            topic_id,
            partition: p as i32,
            replicas: vec![a, b, c],
            isr: vec![a, b, c],
            leader: a,
        });
    }
    records
}

fn brokers() -> Vec<MetadataRecord> {
    (1..=BROKERS)
        .flat_map(|id| {
            [
                MetadataRecord::RegisterBroker {
                    broker_id: id,
                    incarnation: Uuid::new_v4(),
                    rack: None,
                    listeners: Vec::new(),
                },
                MetadataRecord::UnfenceBroker { broker_id: id },
            ]
        })
        .collect()
}

async fn start(id: u64, dir: &Path, listener: TcpListener, quorum: QuorumConfig) -> Controller {
    Controller::start(id, &dir.join(format!("c{id}")), listener, quorum)
        .await
        .expect("controller starts")
}

async fn leader(nodes: &[Option<Controller>]) -> usize {
    loop {
        for (n, node) in nodes.iter().enumerate() {
            if let Some(c) = node
                && c.leader() == Some(c.id)
            {
                return n;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let partitions: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let topics = partitions.div_ceil(PER_TOPIC);

    // Memory per partition, from the image alone.
    let before = rss_bytes();
    let mut image = MetadataImage::default();
    let mut offset = 0;
    for record in brokers() {
        offset += 1;
        image.apply(offset, &record).unwrap();
    }
    for n in 0..topics {
        offset += 1;
        for record in topic_records(n) {
            image.apply(offset, &record).unwrap();
        }
    }
    let image_bytes = rss_bytes().saturating_sub(before);
    let snapshot = image.to_snapshot();
    let started = Instant::now();
    let loaded = MetadataImage::from_snapshot(&snapshot).unwrap();
    let load = started.elapsed();
    assert_eq!(loaded.partition_count(), image.partition_count());
    println!(
        "image: {} partitions, {:.0} bytes per partition (RSS), snapshot {:.1} MB, parsed in {:.2} s",
        image.partition_count(),
        image_bytes as f64 / image.partition_count() as f64,
        snapshot.len() as f64 / 1e6,
        load.as_secs_f64()
    );
    drop((image, loaded, snapshot));

    // Three voters on real sockets and disks.
    let tmp = tempfile::tempdir().unwrap();
    let quorum = QuorumConfig {
        snapshot_every: 200,
        keep_behind_snapshot: 10,
        ..QuorumConfig::default()
    };
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        voters.insert(id, l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let mut nodes: Vec<Option<Controller>> = Vec::new();
    for (id, l) in (1..=3).zip(listeners) {
        nodes.push(Some(start(id, tmp.path(), l, quorum).await));
    }
    nodes[0].as_ref().unwrap().bootstrap(&voters).await.unwrap();
    let l = leader(&nodes).await;
    nodes[l].as_ref().unwrap().write(brokers()).await.unwrap();

    let started = Instant::now();
    for n in 0..topics {
        let l = leader(&nodes).await;
        let result = nodes[l]
            .as_ref()
            .unwrap()
            .write(topic_records(n))
            .await
            .expect("committed");
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        if (n + 1) % 100 == 0 {
            eprintln!("{} partitions committed", (n + 1) * PER_TOPIC);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let records = topics * (PER_TOPIC + 1);
    println!(
        "committed {records} records ({} partitions) through 3 voters in {secs:.1} s: {:.0} records/s",
        topics * PER_TOPIC,
        records as f64 / secs
    );

    // Stop the active controller: how long until another accepts writes?
    let l = leader(&nodes).await;
    let stopped = Instant::now();
    let old = nodes[l].take().unwrap();
    let old_id = old.id;
    old.shutdown().await;
    loop {
        let n = leader(&nodes).await;
        if nodes[n]
            .as_ref()
            .unwrap()
            .write(vec![MetadataRecord::FenceBroker { broker_id: 1 }])
            .await
            .is_ok()
        {
            break;
        }
    }
    println!(
        "failover with {} partitions: {:.2} s from stopping the active controller to a committed write",
        topics * PER_TOPIC,
        stopped.elapsed().as_secs_f64()
    );

    // Restart the stopped voter from its snapshot and log.
    let snapshot_file = tmp
        .path()
        .join(format!("c{old_id}/raft-state/snapshot.json"));
    let size = std::fs::metadata(&snapshot_file).map_or(0, |m| m.len());
    let listener = TcpListener::bind(&voters[&old_id]).await.unwrap();
    let started = Instant::now();
    let restarted = start(old_id, tmp.path(), listener, quorum).await;
    println!(
        "restart from a {:.1} MB snapshot: {:.2} s to open ({} partitions in its image)",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        restarted.state.with_image(|i| i.partition_count())
    );
    restarted.shutdown().await;
    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}
