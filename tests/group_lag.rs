//! `strata groups list|describe`: committed offsets, log end offsets and lag, exact, from the
//! CLI against a running broker.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::{BrokerProcess, client, create_topic};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

async fn produce(addr: &str, partition: i32, count: usize) {
    let producer: FutureProducer = client(addr).set("acks", "all").create().unwrap();
    for i in 0..count {
        let value = format!("v{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("metrics")
                    .partition(partition)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("acknowledged");
    }
}

fn cli(addr: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("groups")
        .args(args)
        .args(["--bootstrap", addr])
        .output()
        .expect("strata runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// The (CURRENT-OFFSET, LOG-END-OFFSET, LAG, CLIENT-ID) of a partition in `describe` output.
fn row(out: &str, partition: i32) -> (String, String, String, String) {
    let line = out
        .lines()
        .find(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() >= 9 && cells[1] == "metrics" && cells[2] == partition.to_string()
        })
        .unwrap_or_else(|| panic!("no row for partition {partition} in:\n{out}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    (
        cells[3].to_owned(),
        cells[4].to_owned(),
        cells[5].to_owned(),
        cells[8].to_owned(),
    )
}

fn commit(addr: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = client(addr).set("group.id", "dashboards").create().unwrap();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset("metrics", *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_shows_exact_lag_and_owners() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=0"],
    );
    create_topic(&broker.addr, "metrics", 2, &[]).await;
    produce(&broker.addr, 0, 50).await;
    produce(&broker.addr, 1, 50).await;

    // No such group yet: a clear message and a failing exit status.
    let (ok, out) = cli(&broker.addr, &["describe", "dashboards"]);
    assert!(!ok && out.contains("does not exist"), "{out}");

    commit(&broker.addr, &[(0, 30), (1, 20)]);
    let (ok, out) = cli(&broker.addr, &["describe", "dashboards"]);
    assert!(ok, "{out}");
    assert!(out.contains("total lag 50"), "{out}");
    assert_eq!(
        row(&out, 0),
        ("30".into(), "50".into(), "20".into(), "-".into())
    );
    assert_eq!(
        row(&out, 1),
        ("20".into(), "50".into(), "30".into(), "-".into())
    );

    // Producers move the end, commits move the start: the lag follows both exactly.
    produce(&broker.addr, 0, 10).await;
    commit(&broker.addr, &[(1, 45)]);
    let (_, out) = cli(&broker.addr, &["describe", "dashboards"]);
    assert_eq!(
        row(&out, 0),
        ("30".into(), "60".into(), "30".into(), "-".into())
    );
    assert_eq!(
        row(&out, 1),
        ("45".into(), "50".into(), "5".into(), "-".into())
    );

    // A live member shows as the owner of its partitions; it commits nothing.
    let member: BaseConsumer = client(&broker.addr)
        .set("group.id", "dashboards")
        .set("client.id", "dash-1")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&["metrics"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        member.poll(Duration::from_millis(100));
        if member.assignment().map(|a| a.count()).unwrap_or(0) == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "member never got its partitions");
    }
    let (_, out) = cli(&broker.addr, &["describe", "dashboards"]);
    assert!(out.contains("is Stable"), "{out}");
    assert_eq!(
        row(&out, 0),
        ("30".into(), "60".into(), "30".into(), "dash-1".into())
    );
    let (ok, listed) = cli(&broker.addr, &["list"]);
    assert!(
        ok && listed.contains("dashboards") && listed.contains("Stable"),
        "{listed}"
    );
    drop(member);

    // While a producer runs, every answer is exact: the end it shows lies between the records
    // acknowledged before the call and after it (plus the one in flight), and lag = end - commit.
    let acked = Arc::new(AtomicI64::new(60));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn({
        let (addr, acked, stop) = (broker.addr.clone(), acked.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                produce(&addr, 0, 1).await;
                acked.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    for _ in 0..5 {
        let before = acked.load(Ordering::SeqCst);
        let addr = broker.addr.clone();
        let (_, out) = tokio::task::spawn_blocking(move || cli(&addr, &["describe", "dashboards"]))
            .await
            .unwrap();
        let after = acked.load(Ordering::SeqCst);
        let (committed, end, lag, _) = row(&out, 0);
        let end: i64 = end.parse().unwrap();
        assert_eq!(committed, "30");
        assert!(
            (before..=after + 1).contains(&end),
            "end {end} outside {before}..={after}+1"
        );
        assert_eq!(lag.parse::<i64>().unwrap(), end - 30);
    }
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    assert!(acked.load(Ordering::SeqCst) > 60, "the producer ran");
}
