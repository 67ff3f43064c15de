//! Produces N records of a given size through librdkafka, then consumes them back, and prints
//! records/s and MB/s for both directions. A quick measurement until the bench suite exists.
//!
//! ```sh
//! cargo run --release -- dev --data-dir /tmp/perf &
//! cargo run --release --example produce_consume -- 127.0.0.1:9092 1000000 1024 all
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Default)]
struct Counter {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct Deliveries(Arc<Counter>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args.get(1).map_or("127.0.0.1:9092", String::as_str);
    let records: u64 = args
        .get(2)
        .map_or(1_000_000, |a| a.parse().expect("record count"));
    let size: usize = args
        .get(3)
        .map_or(1024, |a| a.parse().expect("record size"));
    let acks = args.get(4).map_or("all", String::as_str);
    let topic = format!("perf-{}", std::process::id());
    let payload = vec![b'x'; size];

    let counter = Arc::new(Counter::default());
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Deliveries(Arc::clone(&counter)))
        .expect("producer");
    let started = Instant::now();
    for _ in 0..records {
        let mut record = BaseRecord::<(), [u8]>::to(&topic).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("produce failed: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let produce_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        counter.failed.load(Ordering::Relaxed),
        0,
        "failed deliveries"
    );
    assert_eq!(counter.ok.load(Ordering::Relaxed), records);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "perf")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let started = Instant::now();
    let mut consumed = 0u64;
    let mut bytes = 0u64;
    while consumed < records {
        if let Some(message) = consumer.poll(Duration::from_secs(5)) {
            bytes += message.expect("consume").payload_len() as u64;
            consumed += 1;
        } else {
            panic!("consumer stalled at {consumed} records");
        }
    }
    let consume_secs = started.elapsed().as_secs_f64();
    let mb = (records * size as u64) as f64 / 1e6;
    println!("records: {records} x {size} B, acks={acks}, one partition");
    println!(
        "produce: {:>10.0} records/s {:>8.1} MB/s ({produce_secs:.2} s)",
        records as f64 / produce_secs,
        mb / produce_secs
    );
    println!(
        "consume: {:>10.0} records/s {:>8.1} MB/s ({consume_secs:.2} s, {bytes} payload bytes)",
        records as f64 / consume_secs,
        mb / consume_secs
    );
}
