//! Proves the transaction coordinator with librdkafka's transactional producer: committed
//! transactions are read by read_committed consumers and aborted ones are not; a second
//! producer with the same transactional.id fences the first (its open transaction is aborted
//! and it can commit nothing more); a transaction left open past transaction.timeout.ms is
//! aborted by the coordinator, which frees the last stable offset.

mod common;

use std::time::Duration;

use common::{BrokerProcess, eos};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "orders";
const TIMEOUT: Duration = Duration::from_secs(20);

fn broker(dir: &std::path::Path) -> BrokerProcess {
    BrokerProcess::start(
        dir,
        &[
            "transaction.state.log.num.partitions=3",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=200",
        ],
    )
}

fn producer(addr: &str, transactional_id: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut config: ClientConfig = common::client(addr);
    config.set("transactional.id", transactional_id);
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: BaseProducer = config.create().expect("producer");
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");
    producer
}

fn send(producer: &BaseProducer, values: impl IntoIterator<Item = String>) {
    for value in values {
        producer
            .send(
                BaseRecord::<(), String>::to(TOPIC)
                    .partition(0)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("enqueued");
    }
    producer.flush(TIMEOUT).expect("flushed");
}

/// What a read_committed consumer reads from the start (until `count` or 10 s), and then
/// nothing more within half a second.
fn committed(addr: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = common::client(addr)
        .set("group.id", "checker")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut values = Vec::new();
    while values.len() < count && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consumed");
            values.push(String::from_utf8_lossy(message.payload().unwrap()).into_owned());
        }
    }
    if let Some(Ok(extra)) = consumer.poll(Duration::from_millis(500)) {
        panic!(
            "read more than {count}: {values:?} then offset {}",
            extra.offset()
        );
    }
    values
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn transactions_commit_abort_fence_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("data"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(common::create_topic(&broker.addr, TOPIC, 1, &[]));

    let first = producer(&broker.addr, "orders-tx", &[]);
    first.begin_transaction().unwrap();
    send(&first, values("c1", 10));
    first.commit_transaction(TIMEOUT).expect("commit");
    first.begin_transaction().unwrap();
    send(&first, values("a1", 10));
    first.abort_transaction(TIMEOUT).expect("abort");
    first.begin_transaction().unwrap();
    send(&first, values("c2", 10));
    first.commit_transaction(TIMEOUT).expect("commit");
    let mut expected = values("c1", 10);
    expected.extend(values("c2", 10));
    assert_eq!(committed(&broker.addr, 20), expected);

    // A zombie: the first producer opens a transaction, a new instance of the same id starts
    // (aborting it), and the zombie can no longer commit.
    first.begin_transaction().unwrap();
    send(&first, values("zombie", 5));
    let second = producer(&broker.addr, "orders-tx", &[]);
    let fenced = first.commit_transaction(TIMEOUT);
    assert!(
        matches!(&fenced, Err(KafkaError::Transaction(e)) if e.is_fatal()),
        "the zombie is fenced: {fenced:?}"
    );
    second.begin_transaction().unwrap();
    send(&second, values("c3", 5));
    second
        .commit_transaction(TIMEOUT)
        .expect("the new instance commits");
    expected.extend(values("c3", 5));
    assert_eq!(committed(&broker.addr, 25), expected);

    // A transaction left open past its timeout is aborted by the coordinator: what others
    // commit after it becomes readable.
    let stuck = producer(
        &broker.addr,
        "stuck-tx",
        &[("transaction.timeout.ms", "2000")],
    );
    stuck.begin_transaction().unwrap();
    send(&stuck, values("stuck", 3));
    second.begin_transaction().unwrap();
    send(&second, values("c4", 2));
    second.commit_transaction(TIMEOUT).expect("commit");
    expected.extend(values("c4", 2));
    assert_eq!(committed(&broker.addr, 27), expected, "aborted after 2 s");
}

/// Proves exactly-once consume-transform-produce with the Java client across kill -9: a Java
/// loop (`tests/java/StrataEosCheck.java`) turns each input record into one output record in
/// transactions that also commit its consumer group's offsets, while the broker is killed and
/// restarted twice under it. The committed output holds every input record's result exactly
/// once, and the group's committed offsets are the input's end.
#[test]
fn java_consume_transform_produce_is_exactly_once_across_kill_9() {
    const RECORDS: usize = 3000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Clients reach the broker through a proxy that follows it across restarts.
    let proxy = runtime.block_on(common::proxy::LinkProxy::start());
    let mut broker = BrokerProcess::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        Some(&proxy.addr),
        &[
            "transaction.state.log.num.partitions=3",
            "offsets.topic.num.partitions=3",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    proxy.set_target(&broker.addr);
    runtime.block_on(async {
        common::create_topic(&proxy.addr, "input", 3, &[]).await;
        common::create_topic(&proxy.addr, "output", 3, &[]).await;
        eos::produce_input(&proxy.addr, "input", RECORDS).await;
    });
    let java = eos::spawn_loop(&proxy.addr, "input", "output", RECORDS);
    let mut java = Some(java);
    // Kill the broker twice while transactions run: once some output is written, and again
    // a little later.
    for (n, after) in [(1, 600i64), (2, 1800)].iter().copied() {
        common::cluster::wait_until("output written", Duration::from_secs(120), || {
            (eos::written(&broker.addr, "output", 3) >= after).then_some(())
        });
        assert!(
            java.as_mut().unwrap().try_wait().unwrap().is_none(),
            "the transform loop was still running when the broker was killed"
        );
        broker.kill();
        std::thread::sleep(Duration::from_millis(500));
        broker.restart("127.0.0.1:0");
        proxy.set_target(&broker.addr);
        eprintln!("broker killed and restarted ({n})");
    }
    let (_, transactions) = eos::finish(java.take().unwrap(), || {
        format!("broker log:\n{}", broker.log())
    });
    eos::check_exactly_once(&broker.addr, "input", "output", 3, RECORDS);

    // The 4.1 client ran transaction version 2 (the broker finalizes it): every EndTxn bumped
    // its epoch, where version 1 bumps it only at initTransactions.
    let epoch = runtime.block_on(eos::loop_epoch(&broker.addr));
    eprintln!("{transactions} transactions, producer epoch {epoch}");
    assert!(
        transactions >= 10 && epoch >= transactions,
        "{transactions} transactions committed, producer epoch {epoch}"
    );
}

/// Proves DescribeTransactions and ListTransactions, and that an id unused for
/// transactional.id.expiration.ms is forgotten.
#[test]
fn transactions_are_described_listed_and_expire() {
    use common::wire::Conn;
    use kafka_protocol::messages::{
        DescribeTransactionsRequest, ListTransactionsRequest, TransactionalId,
    };
    use kafka_protocol::protocol::StrBytes;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "transaction.state.log.num.partitions=1",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
            "transactional.id.expiration.ms=1500",
        ],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(common::create_topic(&broker.addr, TOPIC, 1, &[]));
    let producer = producer(&broker.addr, "short-lived", &[]);
    producer.begin_transaction().unwrap();
    send(&producer, values("x", 1));
    let describe = || {
        runtime.block_on(async {
            let mut conn = Conn::open(&broker.addr).await;
            let described = conn
                .call(
                    0,
                    &DescribeTransactionsRequest::default().with_transactional_ids(vec![
                        TransactionalId(StrBytes::from_static_str("short-lived")),
                    ]),
                )
                .await
                .unwrap();
            let listed = conn
                .call(1, &ListTransactionsRequest::default())
                .await
                .unwrap();
            (
                described.transaction_states[0].clone(),
                listed.transaction_states,
            )
        })
    };
    let (open, listed) = describe();
    assert_eq!(open.error_code, 0);
    assert_eq!(open.transaction_state.as_str(), "Ongoing");
    assert_eq!(open.topics[0].partitions, [0]);
    assert_eq!(listed.len(), 1);
    producer.commit_transaction(TIMEOUT).unwrap();
    // EndTxn answers once PrepareCommit is durable; the markers, then CompleteCommit, follow.
    common::cluster::wait_until("the commit to complete", Duration::from_secs(10), || {
        let (done, _) = describe();
        (done.transaction_state.as_str() == "CompleteCommit").then_some(())
    });
    common::cluster::wait_until("the id to expire", Duration::from_secs(20), || {
        let (gone, listed) = describe();
        (gone.error_code == 105 && listed.is_empty()).then_some(())
    });
}
