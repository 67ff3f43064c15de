//! Many partitions at once: one topic of `partitions` partitions (replicated as the cluster's
//! default), written by one producer per broker at full speed with keyless 1 KiB records
//! spread by librdkafka's sticky partitioner. Reports the throughput and the acknowledgement
//! latency of every record (from the send call to its delivery report).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

use crate::broker::CpuMeter;
use crate::report::Row;

/// Largest latency recorded: 60 s in µs.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Longest the producers may take to have every record acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// The run's shape.
#[derive(Debug, Clone, Copy)]
pub struct ManyPartitions {
    /// Partitions of the topic.
    pub partitions: usize,
    /// Producers, each in its own thread.
    pub producers: usize,
    /// Payload bytes in all.
    pub bytes: u64,
    /// Payload bytes per record.
    pub record_bytes: usize,
    /// Payload bytes per second in all, paced (records are sent on a schedule, and latency
    /// counts from the scheduled time); `None`: as fast as the producers go.
    pub rate: Option<u64>,
}

/// Records each record's acknowledgement latency; counts failures.
struct Timing {
    histogram: Mutex<Histogram<u64>>,
    failed: std::sync::atomic::AtomicU64,
}

struct Timed(Arc<Timing>);

impl ClientContext for Timed {}

impl ProducerContext for Timed {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        if result.is_err() {
            self.0
                .failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let us = sent.elapsed().as_micros() as u64;
        if let Ok(mut h) = self.0.histogram.lock() {
            h.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }
}

fn create_topic(bootstrap: &str, topic: &str, partitions: usize) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("admin client")?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    // Replication factor -1: the cluster's default.
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(-1));
    for result in runtime.block_on(admin.create_topics(&[new], &options))? {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic}: {code}");
        }
    }
    Ok(())
}

/// Runs the producers; report rows of throughput, broker CPU and latency percentiles.
pub fn run(bootstrap: &str, run: ManyPartitions, cpu: &CpuMeter) -> anyhow::Result<Vec<Row>> {
    let topic = format!("many-{}", std::process::id());
    create_topic(bootstrap, &topic, run.partitions)?;
    // Leaders and replicas take a moment to open a thousand partitions.
    std::thread::sleep(Duration::from_secs(2));
    let timing = Arc::new(Timing {
        histogram: Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?),
        failed: Default::default(),
    });
    let per_producer = run.bytes / run.record_bytes as u64 / run.producers as u64;
    let before = cpu.sample()?;
    let started = Instant::now();
    let threads: Vec<_> = (0..run.producers)
        .map(|_| {
            let (bootstrap, topic, timing) =
                (bootstrap.to_owned(), topic.clone(), Arc::clone(&timing));
            std::thread::spawn(move || -> anyhow::Result<()> {
                let producer: BaseProducer<Timed> = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("acks", "all")
                    .set("linger.ms", "5")
                    .set("batch.size", "1000000")
                    .set("queue.buffering.max.kbytes", "262144")
                    .create_with_context(Timed(timing))?;
                let payload = vec![b'm'; run.record_bytes];
                // Each producer's share of the rate, as a gap between records.
                let gap = run.rate.map(|rate| {
                    Duration::from_secs_f64(
                        run.record_bytes as f64 * run.producers as f64 / rate as f64,
                    )
                });
                let origin = Instant::now();
                for n in 0..per_producer {
                    let scheduled = match gap {
                        Some(gap) => {
                            let due = origin + gap.mul_f64(n as f64);
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                            due
                        }
                        None => Instant::now(),
                    };
                    let mut record: BaseRecord<'_, (), [u8], Box<Instant>> =
                        BaseRecord::with_opaque_to(&topic, Box::new(scheduled))
                            .payload(&payload[..]);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((_, back)) => {
                                record = back;
                                producer.poll(Duration::from_millis(1));
                            }
                        }
                    }
                    producer.poll(Duration::ZERO);
                }
                let deadline = Instant::now() + FLUSH_TIMEOUT;
                while producer.in_flight_count() > 0 {
                    anyhow::ensure!(Instant::now() < deadline, "records unacknowledged");
                    producer.poll(Duration::from_millis(1));
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("producer thread panicked"))??;
    }
    let phase = cpu.phase(started, before)?;
    let failed = timing.failed.load(std::sync::atomic::Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} records were not acknowledged");
    let bytes = per_producer * run.producers as u64 * run.record_bytes as u64;
    let mb_s = bytes as f64 / 1e6 / phase.secs;
    let h = timing
        .histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let what = format!(
        "{} partitions, {} producers, 1 KiB acks=all{}",
        run.partitions,
        run.producers,
        run.rate
            .map_or(String::new(), |r| format!(", at {} MB/s", r / 1_000_000))
    );
    let gb = bytes as f64 / 1e9;
    Ok(vec![
        Row::plain(
            format!("produce, {what}"),
            format!(
                "{mb_s:.0} MB/s; broker {} CPU-s/GB",
                phase
                    .broker_cpu
                    .map_or("not measured".to_owned(), |c| format!("{:.2}", c / gb))
            ),
        ),
        Row::plain(
            format!(
                "acknowledgement latency, {what}{}",
                if run.rate.is_none() {
                    " (at full speed: mostly time queued in the producer)"
                } else {
                    ""
                }
            ),
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
                ms(0.5),
                ms(0.99),
                ms(0.999),
                h.max() as f64 / 1000.0
            ),
        ),
    ])
}
