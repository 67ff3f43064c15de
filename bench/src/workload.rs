//! Throughput workloads through librdkafka: produce a topic, then consume it from the start.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::limits::Limits;
use crate::report::Row;

/// Longest a consumer may wait for the next record before the run is declared stalled.
const STALL: Duration = Duration::from_secs(10);

/// Producer acknowledgement mode.
#[derive(Debug, Clone, Copy)]
pub enum Acks {
    /// The leader appended the batch.
    One,
    /// Every in-sync replica has it (on Strata's single node: fsync'd).
    All,
}

/// One throughput workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Payload size of each record.
    pub record_bytes: usize,
    /// Acknowledgement mode.
    pub acks: Acks,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acks = match self.acks {
            Acks::One => "1",
            Acks::All => "all",
        };
        write!(f, "{} B records, acks={acks}", self.record_bytes)
    }
}

/// What one workload measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    records: u64,
    bytes: u64,
    produce_secs: f64,
    consume_secs: f64,
}

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct Counting(Arc<Deliveries>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.0.ok
        } else {
            &self.0.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Produces about `bytes` of payload as `workload` records to a new topic, then consumes them.
pub fn run(bootstrap: &str, workload: Workload, bytes: u64) -> anyhow::Result<Measured> {
    let records = (bytes / workload.record_bytes as u64).max(1);
    let topic = format!(
        "bench-{}-{}",
        workload.record_bytes,
        std::process::id() as u64 * 1000 + records % 1000 + rand_suffix()
    );
    let payload = vec![b'x'; workload.record_bytes];
    let deliveries = Arc::new(Deliveries::default());
    let acks = match workload.acks {
        Acks::One => "1",
        Acks::All => "all",
    };
    let producer: BaseProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Counting(Arc::clone(&deliveries)))
        .context("producer")?;
    let started = Instant::now();
    for _ in 0..records {
        send(&producer, BaseRecord::to(&topic).payload(&payload))?;
    }
    producer.flush(Duration::from_secs(300)).context("flush")?;
    let produce_secs = started.elapsed().as_secs_f64();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} records were not acknowledged");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strata-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .context("consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut consumed = 0u64;
    while consumed < records {
        match consumer.poll(STALL) {
            Some(message) => {
                message?;
                consumed += 1;
            }
            None => bail!("consumer stalled at {consumed} of {records} records"),
        }
    }
    Ok(Measured {
        records,
        bytes: records * workload.record_bytes as u64,
        produce_secs,
        consume_secs: started.elapsed().as_secs_f64(),
    })
}

/// Queues one record, waiting while librdkafka's local queue is full.
pub fn send<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, (), [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("produce failed: {e}"),
        }
    }
}

/// A few bits of the clock, so that topics of repeated runs against one broker differ.
fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64 % 997)
}

impl Measured {
    /// Report rows for this workload; `broker_cpu` and `client_cpu` are the CPU seconds each
    /// side used during it, so that a run limited by the client shows as such.
    pub fn rows(
        &self,
        workload: Workload,
        limits: &Limits,
        broker_cpu: Option<f64>,
        client_cpu: f64,
    ) -> Vec<Row> {
        let mb = self.bytes as f64 / 1e6;
        let loopback = Some(("loopback write/read", limits.loopback_read_write));
        let mut rows = vec![
            Row::throughput(
                format!("produce, {workload}"),
                mb / self.produce_secs,
                self.records as f64 / self.produce_secs,
                loopback,
            ),
            Row::throughput(
                format!(
                    "consume from local log, {} B records",
                    workload.record_bytes
                ),
                mb / self.consume_secs,
                self.records as f64 / self.consume_secs,
                loopback,
            ),
        ];
        // Every byte crosses the broker twice: in with produce, out with consume.
        let gb_moved = 2.0 * self.bytes as f64 / 1e9;
        let broker = broker_cpu.map_or("not measured".to_owned(), |cpu| {
            format!("broker {:.2}", cpu / gb_moved)
        });
        rows.push(Row::plain(
            format!("CPU per GB moved, {workload}"),
            format!("{broker}, client {:.2} CPU-s/GB", client_cpu / gb_moved),
        ));
        rows
    }
}
