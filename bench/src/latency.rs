//! End-to-end latency at a fixed rate below saturation, without coordinated omission: every
//! record carries the time it was *scheduled* to be sent, and its latency is measured from that
//! time. A producer that stalls therefore shows its stall as latency, instead of quietly sending
//! later and hiding the stall from the histogram.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::report::Row;
use crate::workload::send;

/// Largest latency the histogram records (longer ones are clamped to it): 60 s in µs.
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long the consumer waits for stragglers after the last scheduled send.
const DRAIN: Duration = Duration::from_secs(10);

/// A latency run: `rate` payload bytes per second of `record_bytes` records for `duration`.
#[derive(Debug, Clone, Copy)]
pub struct LatencyRun {
    /// Payload bytes per second.
    pub rate: u64,
    /// Payload size of each record (at least 8: the schedule stamp).
    pub record_bytes: usize,
    /// How long to produce.
    pub duration: Duration,
}

/// Percentiles in microseconds.
pub struct Latencies {
    run: LatencyRun,
    histogram: Histogram<u64>,
}

/// Produces at the run's rate with acks=all and measures scheduled-send → consumed latency.
pub fn run(bootstrap: &str, run: LatencyRun) -> anyhow::Result<Latencies> {
    let topic = format!("latency-{}", std::process::id());
    run_between(bootstrap, bootstrap, &topic, run)
}

/// [`run`] producing to `topic` at `produce_to` and consuming it at `consume_from` (a mirror of
/// it on another cluster: the latency is then the mirror's lag, end to end).
pub fn run_between(
    produce_to: &str,
    consume_from: &str,
    topic: &str,
    run: LatencyRun,
) -> anyhow::Result<Latencies> {
    let record_bytes = run.record_bytes.max(8);
    let count =
        (run.rate as f64 * run.duration.as_secs_f64() / record_bytes as f64).max(1.0) as u64;
    let interval_ns = 1e9 * record_bytes as f64 / run.rate as f64;
    let topic = topic.to_owned();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", produce_to)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .context("producer")?;
    // The producer's metadata request creates the topic, so the consumer can be assigned first.
    producer
        .client()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", consume_from)
        .set("group.id", "strata-bench-latency")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .context("consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    // Warm up: the schedule starts only once the consumer has fetched a first record, so that
    // its start-up (metadata, offsets, first fetch) is not measured as latency.
    let warm_up = vec![0xffu8; record_bytes];
    producer
        .send(BaseRecord::<(), [u8]>::to(&topic).payload(&warm_up))
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(10))?;
    let started = Instant::now();
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
            break;
        }
        if started.elapsed() > DRAIN {
            bail!("the consumer received nothing within {DRAIN:?}");
        }
    }

    let origin = Instant::now();
    let receiver = std::thread::spawn(move || -> anyhow::Result<Histogram<u64>> {
        let mut histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?;
        let mut received = 0;
        let deadline = origin + Duration::from_nanos((count as f64 * interval_ns) as u64) + DRAIN;
        while received < count {
            if Instant::now() > deadline {
                bail!("only {received} of {count} records arrived");
            }
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message?;
            let stamp = message
                .payload()
                .and_then(|p| p.get(..8))
                .context("record without a schedule stamp")?;
            let scheduled = u64::from_le_bytes(stamp.try_into()?);
            let latency_ns = (origin.elapsed().as_nanos() as u64).saturating_sub(scheduled);
            histogram.saturating_record((latency_ns / 1_000).clamp(1, MAX_LATENCY_US));
            received += 1;
        }
        Ok(histogram)
    });

    let mut payload = vec![b'l'; record_bytes];
    for n in 0..count {
        let scheduled = (n as f64 * interval_ns) as u64;
        let due = origin + Duration::from_nanos(scheduled);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        payload[..8].copy_from_slice(&scheduled.to_le_bytes());
        send(&producer, BaseRecord::to(&topic).payload(&payload))?;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30))?;
    let histogram = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("consumer thread panicked"))??;
    Ok(Latencies { run, histogram })
}

impl Latencies {
    /// p50, p99, p99.9 and max, in milliseconds.
    pub fn percentiles(&self) -> [(&'static str, f64); 4] {
        let ms = |us: u64| us as f64 / 1_000.0;
        let at = |q: f64| ms(self.histogram.value_at_quantile(q));
        [
            ("p50", at(0.50)),
            ("p99", at(0.99)),
            ("p99.9", at(0.999)),
            ("max", ms(self.histogram.max())),
        ]
    }

    /// The rate and record size of the run, for labels.
    pub fn describe(&self) -> String {
        format!(
            "{} MB/s of {} B records, acks=all",
            self.run.rate / 1_000_000,
            self.run.record_bytes
        )
    }

    /// Report rows: p50, p99, p99.9 and max.
    pub fn rows(&self) -> Vec<Row> {
        self.rows_named(&format!(
            "end-to-end latency at {} MB/s, {} B records, acks=all",
            self.run.rate / 1_000_000,
            self.run.record_bytes
        ))
    }

    /// Report rows under `label`.
    pub fn rows_named(&self, label: &str) -> Vec<Row> {
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1_000.0);
        vec![
            Row::plain(
                format!("{label}, p50"),
                ms(self.histogram.value_at_quantile(0.50)),
            ),
            Row::plain(
                format!("{label}, p99"),
                ms(self.histogram.value_at_quantile(0.99)),
            ),
            Row::plain(
                format!("{label}, p99.9"),
                ms(self.histogram.value_at_quantile(0.999)),
            ),
            Row::plain(
                format!("{label}, max ({} records)", self.histogram.len()),
                ms(self.histogram.max()),
            ),
        ]
    }
}
