//! Three `strata controller` processes: kill -9 the active controller while topics are being
//! created → another takes over within seconds and no acknowledged topic is lost; the killed
//! one, its log torn mid-write, restarts and catches up by snapshot (its gap was purged).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::controller::ControllerProcess;
use strata_controller::Endpoint;
use strata_controller::MetadataRecord;
use strata_controller::raft::active::Heartbeat;
use strata_controller::raft::admin::NewTopic;
use strata_controller::raft::{QuorumStatus, client};
use uuid::Uuid;

/// Frequent snapshots, few entries kept behind them: a restarted voter catches up by snapshot.
const SNAPSHOTS: &[&str] = &["--snapshot-every", "40", "--keep-behind-snapshot", "5"];

async fn create_topic(addrs: &[String], name: &str) {
    let record = MetadataRecord::CreateTopic {
        name: name.to_owned(),
        topic_id: Uuid::new_v4(),
        configs: BTreeMap::new(),
    };
    let result = client::write(addrs, vec![record]).await.expect("committed");
    // A retried write whose first attempt committed finds its topic there: that is success.
    assert!(
        result.errors.iter().all(|e| e.contains("exists already")),
        "{:?}",
        result.errors
    );
}

/// The controller that says it leads, once every reachable controller agrees on it.
async fn leader(addrs: &[String]) -> Option<(u64, String)> {
    let mut views = Vec::new();
    for addr in addrs {
        if let Ok(status) = client::status(addr).await {
            views.push((addr.clone(), status));
        }
    }
    let (addr, own) = views.iter().find(|(_, s)| s.leader == Some(s.id))?;
    views
        .iter()
        .all(|(_, s)| s.leader == Some(own.id))
        .then(|| (own.id, addr.clone()))
}

async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_the_active_controller_while_creating_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_owned();
    let (addrs, voters) = common::cluster::voters(3);
    let mut processes: Vec<Option<ControllerProcess>> = addrs
        .iter()
        .enumerate()
        .map(|(n, a)| {
            Some(ControllerProcess::start(
                n as u64 + 1,
                a,
                &dir,
                &voters,
                SNAPSHOTS,
            ))
        })
        .collect();
    let (first, _) = wait_until("a leader", Duration::from_secs(15), async || {
        leader(&addrs).await
    })
    .await;

    let mut acknowledged = Vec::new();
    for n in 0..20 {
        let name = format!("before-{n}");
        create_topic(&addrs, &name).await;
        acknowledged.push(name);
    }
    let before_kill = client::status(&addrs[(first - 1) as usize])
        .await
        .unwrap()
        .last_log_index
        .unwrap();

    // kill -9 the active controller in the middle of the stream of creations.
    let killed_at = Instant::now();
    processes[(first - 1) as usize].take().unwrap().kill();
    let survivors: Vec<String> = addrs
        .iter()
        .enumerate()
        .filter(|(n, _)| *n as u64 + 1 != first)
        .map(|(_, a)| a.clone())
        .collect();
    create_topic(&survivors, "first-after-kill").await;
    let failover = killed_at.elapsed();
    let (second, _) = wait_until(
        "the survivors' leader",
        Duration::from_secs(15),
        async || leader(&survivors).await,
    )
    .await;
    assert_ne!(second, first, "a new controller leads");
    acknowledged.push("first-after-kill".into());
    eprintln!("active controller {first} killed; a new one committed a write after {failover:?}");
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    for n in 0..150 {
        let name = format!("after-{n}");
        create_topic(&survivors, &name).await;
        acknowledged.push(name);
    }

    // Every acknowledged topic is in the survivors' images.
    let expected = acknowledged.len();
    for addr in &survivors {
        wait_until(
            "the survivors to apply everything",
            Duration::from_secs(15),
            async || {
                let status = client::status(addr).await.ok()?;
                (status.topics == expected).then_some(())
            },
        )
        .await;
    }

    // Tear the killed voter's log mid-write, then restart it: it cuts the tail and catches
    // up by snapshot, because the entries it missed were purged behind snapshots.
    let log = dir.join(format!("c{first}/raft-log/raft.log"));
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[0, 0, 0, 200, 1, 2, 3, 4, 5]).unwrap();
    drop(file);
    let restarted = ControllerProcess::start(
        first,
        &addrs[(first - 1) as usize],
        &dir,
        &voters,
        SNAPSHOTS,
    );
    // Its applied image and its snapshot metric move in separate steps: wait for both.
    wait_until(
        "the restarted voter to catch up by a snapshot past its old log",
        Duration::from_secs(30),
        async || {
            let status = client::status(&addrs[(first - 1) as usize]).await.ok()?;
            (status.topics == expected && status.snapshot.is_some_and(|s| s > before_kill))
                .then_some(())
        },
    )
    .await;
    processes[(first - 1) as usize] = Some(restarted);

    // `strata cluster status` shows one active controller and the three voters.
    let output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["cluster", "status", "--controllers", &addrs.join(",")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("active controller:"), "{text}");
    let leaders = text
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("leader"))
        .count();
    assert_eq!(leaders, 1, "{text}");
    drop(processes);
}

/// The active controller's status, once some controller names itself leader.
async fn leader_status(addrs: &[String]) -> Option<QuorumStatus> {
    for addr in addrs {
        if let Ok(status) = client::status(addr).await
            && status.leader == Some(status.id)
        {
            return Some(status);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_register_by_heartbeat_and_are_fenced_when_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let (addrs, voters) = common::cluster::voters(3);
    let _processes: Vec<ControllerProcess> = addrs
        .iter()
        .enumerate()
        .map(|(n, a)| {
            ControllerProcess::start(
                n as u64 + 1,
                a,
                tmp.path(),
                &voters,
                &[SNAPSHOTS, &["--broker-session-timeout-ms", "1500"]].concat(),
            )
        })
        .collect();

    // Three brokers heartbeat every 300 ms; broker 2 stops when told to.
    let stop_broker_2 = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut beating = Vec::new();
    for id in 1..=3 {
        let (addrs, stop) = (addrs.clone(), stop_broker_2.clone());
        beating.push(tokio::spawn(async move {
            let beat = Heartbeat {
                broker_id: id,
                incarnation: Uuid::new_v4(),
                rack: None,
                listeners: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9000 + id as u16,
                }],
                cluster_id: None,
                want_fence: false,
                want_shutdown: false,
                metadata_offset: None,
            };
            loop {
                if id == 2 && stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let _ = client::heartbeat(&addrs, beat.clone()).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }));
    }
    wait_until(
        "three active brokers",
        Duration::from_secs(15),
        async || {
            let status = leader_status(&addrs).await?;
            (status.brokers.len() == 3 && status.brokers.iter().all(|b| !b.fenced)).then_some(())
        },
    )
    .await;

    // A topic created through the quorum lands on all three brokers.
    client::create_topic(
        &addrs,
        NewTopic {
            name: "orders".into(),
            partitions: 6,
            replication_factor: 2,
            assignments: Vec::new(),
            configs: BTreeMap::new(),
            validate_only: false,
            topic_id: None,
        },
    )
    .await
    .expect("created");
    let status = leader_status(&addrs).await.unwrap();
    assert_eq!(status.partitions, 6);
    for broker in &status.brokers {
        assert_eq!((broker.leaders, broker.replicas), (2, 4), "{broker:?}");
    }
    let duplicate = client::create_topic(
        &addrs,
        NewTopic {
            name: "orders".into(),
            partitions: 1,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: BTreeMap::new(),
            validate_only: false,
            topic_id: None,
        },
    )
    .await;
    assert!(duplicate.is_err(), "a second 'orders' was created");

    // Broker 2 goes silent: fenced after its lease, its leadership moves to in-sync replicas.
    stop_broker_2.store(true, std::sync::atomic::Ordering::SeqCst);
    let silent = Instant::now();
    let status = wait_until(
        "broker 2 to be fenced",
        Duration::from_secs(15),
        async || {
            let status = leader_status(&addrs).await?;
            let b2 = status.brokers.iter().find(|b| b.id == 2)?;
            (b2.fenced && b2.leaders == 0).then_some(status)
        },
    )
    .await;
    eprintln!(
        "broker 2 fenced {:?} after its last heartbeat",
        silent.elapsed()
    );
    assert!(
        silent.elapsed() >= Duration::from_millis(1000),
        "fenced too early"
    );
    let led: usize = status.brokers.iter().map(|b| b.leaders).sum();
    assert_eq!(led, 6, "every partition still has a leader: {status:?}");
    for handle in beating {
        handle.abort();
    }
}
