//! Proves the transaction coordinator with librdkafka's transactional producer: committed
//! transactions are read by read_committed consumers and aborted ones are not; a second
//! producer with the same transactional.id fences the first (its open transaction is aborted
//! and it can commit nothing more); a transaction left open past transaction.timeout.ms is
//! aborted by the coordinator, which frees the last stable offset.

mod common;

use std::time::Duration;

use common::BrokerProcess;
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
