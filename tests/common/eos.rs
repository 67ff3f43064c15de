//! The exactly-once check shared by the transaction tests: an input topic of `in-N` records, the
//! Java consume-transform-produce loop (`tests/java/StrataEosCheck.java`) turning each into
//! `out-in-N` in transactions that commit its group's offsets, and the proof afterwards that
//! the committed output holds every result once and the group committed the whole input.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// The transactional id and the group of the Java loop.
pub const LOOP_ID: &str = "eos-transform";

/// Writes `in-0` … `in-{records-1}` to `topic` with an idempotent producer, all acknowledged.
pub async fn produce_input(bootstrap: &str, topic: &str, records: usize) {
    let producer: FutureProducer = super::client(bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let deliveries: Vec<_> = (0..records)
        .map(|i| {
            let value = format!("in-{i}");
            producer
                .send_result(FutureRecord::to(topic).key(&value).payload(&value))
                .map_err(|(e, _)| e)
                .expect("enqueued")
        })
        .collect();
    for delivery in deliveries {
        delivery.await.expect("delivered").expect("acknowledged");
    }
}

/// Starts the Java loop (client 4.1) from `input` to `output`.
pub fn spawn_loop(bootstrap: &str, input: &str, output: &str, records: usize) -> Child {
    let classpath = super::java::classpath("4.1.0");
    Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataEosCheck")
        .arg(bootstrap)
        .arg(input)
        .arg(output)
        .arg(records.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java runs")
}

/// The sum of `topic`'s high watermarks (its `partitions`) as `bootstrap` reports them.
pub fn written(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    let Ok(consumer) = super::client(bootstrap).create::<BaseConsumer>() else {
        return 0;
    };
    (0..partitions)
        .filter_map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(2))
                .ok()
        })
        .map(|(_, high)| high)
        .sum()
}

/// Waits for the loop to finish; its output, and the transactions it committed.
pub fn finish(java: Child, context: impl FnOnce() -> String) -> (String, i16) {
    let output = java.wait_with_output().expect("java finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("OK eos"),
        "{text}\n{}",
        context()
    );
    eprintln!("{}", text.lines().last().unwrap_or_default());
    let transactions = text
        .split("OK eos ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the loop reports its transactions");
    (text, transactions)
}

/// Exactly once: every input's result, once, in `output`'s committed records, and the loop's
/// group committed the input's end.
pub fn check_exactly_once(
    bootstrap: &str,
    input: &str,
    output: &str,
    partitions: i32,
    records: usize,
) {
    let consumer: BaseConsumer = super::client(bootstrap)
        .set("group.id", "eos-checker")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(output, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Transient errors (a connection to a node that just restarted) are reported as
    // messages; the consumer carries on, as applications' do.
    let mut record = |message: rdkafka::error::KafkaResult<
        rdkafka::message::BorrowedMessage<'_>,
    >| match message {
        Ok(message) => {
            let value = String::from_utf8_lossy(message.payload().unwrap()).into_owned();
            *seen.entry(value).or_insert(0) += 1;
            1
        }
        Err(e) => {
            eprintln!("consumer: {e}");
            0
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut count = 0;
    while count < records && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            count += record(message);
        }
    }
    while let Some(message) = consumer.poll(Duration::from_millis(500)) {
        record(message);
    }
    let missing: Vec<usize> = (0..records)
        .filter(|i| !seen.contains_key(&format!("out-in-{i}")))
        .collect();
    let repeated: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && seen.len() == records,
        "{} distinct results; missing {:?}…; repeated {:?}…",
        seen.len(),
        &missing[..missing.len().min(10)],
        &repeated[..repeated.len().min(10)]
    );
    let group: BaseConsumer = super::client(bootstrap)
        .set("group.id", LOOP_ID)
        .create()
        .unwrap();
    let mut wanted = TopicPartitionList::new();
    for p in 0..partitions {
        wanted.add_partition(input, p);
    }
    let committed = group
        .committed_offsets(wanted, Duration::from_secs(10))
        .unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            other => panic!("no committed offset: {other:?}"),
        })
        .sum();
    assert_eq!(total, records as i64, "the group committed the whole input");
}

/// The producer epoch of the loop's transactional id, from its coordinator at `addr`.
pub async fn loop_epoch(addr: &str) -> i16 {
    use kafka_protocol::messages::{DescribeTransactionsRequest, TransactionalId};
    use kafka_protocol::protocol::StrBytes;
    let mut conn = super::wire::Conn::open(addr).await;
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_static_str(LOOP_ID))]);
    let described = conn.call(0, &request).await.expect("described");
    assert_eq!(described.transaction_states[0].error_code, 0);
    described.transaction_states[0].producer_epoch
}
