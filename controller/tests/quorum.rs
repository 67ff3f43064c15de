//! Three controllers on real TCP sockets and disks (in one process): a leader is elected,
//! records commit on all, the leader stops and another takes over without losing a committed
//! record, and the old one restarts and catches up — by snapshot once the log it missed is
//! purged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use strata_controller::MetadataRecord;
use strata_controller::raft::{Controller, QuorumConfig, WriteError};
use tokio::net::TcpListener;
use uuid::Uuid;

const QUORUM: QuorumConfig = QuorumConfig {
    heartbeat: Duration::from_millis(50),
    election_timeout: Duration::from_millis(300),
    snapshot_every: 50,
    snapshot_bytes: 20 << 20,
    keep_behind_snapshot: 5,
    broker_lease: Duration::from_secs(9),
    leader_rebalance: None,
    leader_imbalance_percent: 10,
    bootstrap_records: Vec::new(),
};

async fn start(id: u64, dir: &Path, addr: &str) -> Controller {
    let listener = TcpListener::bind(addr).await.expect("bind");
    Controller::start(id, &dir.join(format!("c{id}")), listener, QUORUM)
        .await
        .expect("controller starts")
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn topic(n: usize) -> Vec<MetadataRecord> {
    vec![MetadataRecord::CreateTopic {
        name: format!("topic-{n}"),
        topic_id: Uuid::new_v4(),
        configs: BTreeMap::new(),
    }]
}

/// Writes through whichever controller leads, retrying while leadership moves.
async fn write(controllers: &[&Controller], records: Vec<MetadataRecord>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for c in controllers {
            match c.write(records.clone()).await {
                Ok(result) => {
                    assert!(result.errors.is_empty(), "{:?}", result.errors);
                    return;
                }
                Err(WriteError::NotLeader(_)) => {}
                Err(e) => panic!("write failed: {e}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "no controller accepted the write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn live(nodes: &[Option<Controller>]) -> Vec<&Controller> {
    nodes.iter().flatten().collect()
}

fn topics(c: &Controller) -> usize {
    c.state.with_image(|image| image.topics.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_commit_fail_over_and_catch_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Reserve three ports.
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        addrs.push(l.local_addr().unwrap().to_string());
    }
    let voters: BTreeMap<u64, String> = (1..=3).zip(addrs.iter().cloned()).collect();
    let mut nodes = Vec::new();
    for (id, addr) in &voters {
        nodes.push(Some(start(*id, dir, addr).await));
    }
    nodes[0].as_ref().unwrap().bootstrap(&voters).await.unwrap();
    let first = wait_for("a leader", || nodes[0].as_ref().unwrap().leader()).await;
    assert_eq!(nodes[0].as_ref().unwrap().voters().len(), 3);

    for n in 0..30 {
        write(&live(&nodes), topic(n)).await;
    }
    wait_for("all three to apply 30 topics", || {
        live(&nodes).iter().all(|c| topics(c) == 30).then_some(())
    })
    .await;

    // The leader stops; the other two elect a new one and keep committing.
    let stopped_at = Instant::now();
    let old = nodes[(first - 1) as usize].take().unwrap();
    old.shutdown().await;
    let second = wait_for("a new leader", || {
        live(&nodes)
            .iter()
            .find_map(|c| c.leader().filter(|l| *l != first))
    })
    .await;
    write(&live(&nodes), topic(1000)).await;
    eprintln!(
        "leader {first} stopped; leader {second} committed a write {:?} later",
        stopped_at.elapsed()
    );
    // Enough writes that snapshots purge the log the stopped voter missed.
    for n in 30..150 {
        write(&live(&nodes), topic(n)).await;
    }
    wait_for("both live voters to apply 151 topics", || {
        live(&nodes).iter().all(|c| topics(c) == 151).then_some(())
    })
    .await;

    // The old leader restarts from its disk and catches up (by snapshot: its gap is purged).
    let restarted = start(first, dir, &voters[&first]).await;
    assert!(
        topics(&restarted) <= 30,
        "it had only what it applied before"
    );
    wait_for("the restarted voter to catch up", || {
        (topics(&restarted) == 151).then_some(())
    })
    .await;
    let snapshot = restarted.raft.metrics().borrow().snapshot;
    assert!(
        snapshot.is_some_and(|s| s.index > 30),
        "caught up by snapshot: {snapshot:?}"
    );
    nodes[(first - 1) as usize] = Some(restarted);
    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_is_added_and_another_removed() {
    use strata_controller::raft::admin::AdminRequest;
    use strata_controller::raft::client;

    let tmp = tempfile::tempdir().unwrap();
    let mut addrs = Vec::new();
    let mut nodes = Vec::new();
    for id in 1..=4u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap().to_string());
        nodes.push(
            Controller::start(id, &tmp.path().join(format!("c{id}")), listener, QUORUM)
                .await
                .unwrap(),
        );
    }
    // Voters 1..=3 form the quorum; node 4 starts empty and joins later.
    let voters: BTreeMap<u64, String> = (1..=3)
        .map(|id| (id, addrs[id as usize - 1].clone()))
        .collect();
    nodes[0].bootstrap(&voters).await.unwrap();
    let refs: Vec<&Controller> = nodes[..3].iter().collect();
    for n in 0..10 {
        write(&refs, topic(n)).await;
    }
    let controllers = addrs[..3].to_vec();
    client::admin(
        &controllers,
        AdminRequest::AddVoter {
            id: 4,
            addr: addrs[3].clone(),
        },
    )
    .await
    .expect("voter 4 added");
    wait_for("node 4 to be a voter with the whole log", || {
        (nodes[3].voters() == [1, 2, 3, 4].into() && topics(&nodes[3]) == 10).then_some(())
    })
    .await;
    client::admin(&controllers, AdminRequest::RemoveVoter { id: 1 })
        .await
        .expect("voter 1 removed");
    wait_for("voters 2, 3, 4 everywhere", || {
        nodes[1..]
            .iter()
            .all(|n| n.voters() == [2, 3, 4].into())
            .then_some(())
    })
    .await;
    // The new quorum commits without node 1.
    let remaining: Vec<&Controller> = nodes[1..].iter().collect();
    write(&remaining, topic(10)).await;
    wait_for("the write on node 4", || {
        (topics(&nodes[3]) == 11).then_some(())
    })
    .await;
    let refused = client::admin(&addrs[1..], AdminRequest::RemoveVoter { id: 9 }).await;
    assert!(refused.is_err(), "removing a non-voter must fail");
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_taken_when_the_log_outgrows_the_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Never by entry count: only the 64 KiB size limit can trigger it.
    let quorum = QuorumConfig {
        snapshot_every: 1_000_000,
        snapshot_bytes: 64 << 10,
        ..QUORUM
    };
    let node = Controller::start(1, tmp.path(), listener, quorum)
        .await
        .unwrap();
    node.bootstrap(&BTreeMap::from([(1, addr)])).await.unwrap();
    // Ten entries of a topic with 100 partitions each: far more than 64 KiB of log.
    for n in 0..10 {
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::CreateTopic {
            name: format!("big-{n}"),
            topic_id,
            configs: BTreeMap::new(),
        }];
        records.extend((0..100).map(|p| MetadataRecord::CreatePartition {
            topic_id,
            partition: p,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
        }));
        write(&[&node], records).await;
    }
    let snapshot = wait_for("a snapshot by size", || {
        node.raft.metrics().borrow().snapshot
    })
    .await;
    assert!(snapshot.index >= 5, "snapshot at {snapshot:?}");
    node.shutdown().await;
}
