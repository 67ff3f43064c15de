//! Proves that transactions survive their coordinator failing over: on three nodes, with
//! `__transaction_state`, `__consumer_offsets` and the data replicated three ways, the Java
//! consume-transform-produce loop (transaction version 2) keeps exactly-once output while the
//! broker coordinating its transactional id is killed (kill -9) mid-run, twice: the new
//! coordinator loads the id from its replica of `__transaction_state`, finishes what was
//! prepared, and fences nothing the producer did right.

mod common;

use std::time::Duration;

use common::cluster::{three_nodes, wait_until};
use common::eos;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

const RECORDS: usize = 2000;

/// The node leading partition 0 of `topic`, as `bootstrap` reports it (-1: none).
fn leader_of(bootstrap: &str, topic: &str) -> i32 {
    let Ok(consumer) = common::client(bootstrap).create::<BaseConsumer>() else {
        return -1;
    };
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|m| {
            let topic = m.topics().first()?;
            Some(topic.partitions().first()?.leader())
        })
        .unwrap_or(-1)
}

#[test]
fn java_exactly_once_survives_its_transaction_coordinator_failing_over() {
    let root = tempfile::tempdir().unwrap();
    let (mut nodes, _) = three_nodes(
        root.path(),
        &[
            "transaction.state.log.num.partitions=1".to_owned(),
            "offsets.topic.num.partitions=1".to_owned(),
            "group.initial.rebalance.delay.ms=0".to_owned(),
        ],
    );
    let bootstrap: String = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> = common::client(&bootstrap).create().unwrap();
        let topics: Vec<NewTopic> = ["input", "output"]
            .iter()
            .map(|name| {
                NewTopic::new(name, 3, TopicReplication::Fixed(3)).set("min.insync.replicas", "2")
            })
            .collect();
        for created in admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .unwrap()
        {
            created.expect("topic created");
        }
        eos::produce_input(&bootstrap, "input", RECORDS).await;
    });
    let mut java = Some(eos::spawn_loop(&bootstrap, "input", "output", RECORDS));
    let mut coordinators = Vec::new();
    for after in [400i64, 1200] {
        wait_until("output written", Duration::from_secs(120), || {
            (eos::written(&bootstrap, "output", 3) >= after).then_some(())
        });
        assert!(
            java.as_mut().unwrap().try_wait().unwrap().is_none(),
            "the transform loop was still running when its coordinator was killed"
        );
        let coordinator = wait_until("a coordinator", Duration::from_secs(30), || {
            let leader = leader_of(&bootstrap, "__transaction_state");
            (leader > 0).then_some(leader)
        });
        let node = &mut nodes[coordinator as usize - 1];
        node.kill();
        eprintln!("killed node {coordinator}, the transaction coordinator");
        coordinators.push(coordinator);
        // Down long enough for the id to move, then back on its own port, so that the next
        // kill leaves two of three replicas again.
        let others: String = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as i32 + 1 != coordinator)
            .map(|(_, n)| n.addr.clone())
            .collect::<Vec<_>>()
            .join(",");
        let moved = wait_until("the coordinator moved", Duration::from_secs(60), || {
            let leader = leader_of(&others, "__transaction_state");
            (leader > 0 && leader != coordinator).then_some(leader)
        });
        eprintln!("node {moved} coordinates now");
        let node = &mut nodes[coordinator as usize - 1];
        let addr = node.addr.clone();
        node.restart(&addr);
    }
    let (_, transactions) = eos::finish(java.take().unwrap(), || {
        nodes
            .iter()
            .map(|n| format!("node log:\n{}", n.log()))
            .collect::<Vec<_>>()
            .join("\n")
    });
    eos::check_exactly_once(&bootstrap, "input", "output", 3, RECORDS);
    // Version 2 throughout: the epoch grew with every transaction, across both coordinators.
    let coordinator = leader_of(&bootstrap, "__transaction_state");
    let epoch = runtime.block_on(eos::loop_epoch(&nodes[coordinator as usize - 1].addr));
    eprintln!(
        "{transactions} transactions, producer epoch {epoch}, coordinators killed {coordinators:?}"
    );
    assert!(
        epoch >= transactions,
        "{transactions} transactions committed, producer epoch {epoch}"
    );
}
