//! A cluster link between two `strata dev` nodes on this machine: how fast a mirror copies a
//! topic's backlog beside a plain consumer reading the same topic, and how far behind the
//! mirror stays while the source takes a steady rate (scheduled send on the source to record
//! read from the mirror, without coordinated omission).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::broker::Broker;
use crate::latency::{self, LatencyRun};
use crate::report::Row;
use crate::workload::send;

/// The backlog topic and the steady-rate topic, both mirrored.
const BACKLOG: &str = "mirror-backlog";
const STEADY: &str = "mirror-steady";
/// Record size of both runs.
const RECORD_BYTES: usize = 1024;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct MirrorRun {
    /// Payload bytes of the backlog.
    pub bytes: u64,
    /// Payload bytes per second of the steady run.
    pub rate: u64,
    /// How long the steady run produces.
    pub duration: Duration,
}

fn watermark(bootstrap: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .ok()
        .map(|w| w.1)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Produces `bytes` of 1 KiB records to `topic` (acks=1, large batches); the record count.
fn produce_backlog(bootstrap: &str, topic: &str, bytes: u64) -> anyhow::Result<u64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()?;
    let count = (bytes / RECORD_BYTES as u64).max(1);
    let payload = vec![b'm'; RECORD_BYTES];
    for _ in 0..count {
        send(
            &producer,
            BaseRecord::<(), [u8]>::to(topic).payload(&payload),
        )?;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(count)
}

/// Reads `count` records of `topic` from the start; how long it took.
fn consume(bootstrap: &str, topic: &str, count: u64) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strata-bench-mirror")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut read = 0;
    while read < count {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("read {read} of {count} records");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message?;
            read += 1;
        }
    }
    Ok(started.elapsed())
}

/// Starts a source and a destination node under `root`, runs both measurements and stops them.
pub fn run(binary: Option<PathBuf>, root: &Path, run: MirrorRun) -> anyhow::Result<Vec<Row>> {
    let mut source = Broker::start(binary.clone(), &root.join("mirror-source"))?;
    let mut dest = Broker::start(binary, &root.join("mirror-dest"))?;
    // Both topics exist on the source before the link lists it (auto-created by metadata).
    let count = produce_backlog(&source.addr, BACKLOG, run.bytes)?;
    produce_backlog(&source.addr, STEADY, RECORD_BYTES as u64)?;
    let plain = consume(&source.addr, BACKLOG, count)?;
    let body = format!(
        r#"{{"name":"bench","source":"{}","topics":"mirror-.*"}}"#,
        source.addr
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    runtime
        .block_on(strata::cli::http::call(
            &dest.admin,
            "POST",
            "/v1/links",
            Some(body.as_bytes()),
        ))
        .context("creating the link")?;
    let end = watermark(&source.addr, BACKLOG).context("the source's end")?;
    wait_for(
        "the mirror of the backlog",
        Duration::from_secs(600),
        || watermark(&dest.addr, BACKLOG) == Some(end),
    )?;
    let mirrored = started.elapsed();
    wait_for("the steady topic's mirror", Duration::from_secs(30), || {
        watermark(&dest.addr, STEADY).is_some_and(|w| w > 0)
    })?;
    let lag = latency::run_between(
        &source.addr,
        &dest.addr,
        STEADY,
        LatencyRun {
            rate: run.rate,
            record_bytes: RECORD_BYTES,
            duration: run.duration,
        },
    )?;
    dest.stop()?;
    source.stop()?;
    let mb_s = |d: Duration| format!("{:.0} MB/s", run.bytes as f64 / d.as_secs_f64() / 1e6);
    let mut rows = vec![
        Row::plain(
            format!(
                "plain consumer of the source, {} MiB of 1 KiB records",
                run.bytes >> 20
            ),
            mb_s(plain),
        ),
        Row::plain(
            format!(
                "cluster link mirroring the same backlog (link created to mirror caught up), {} MiB",
                run.bytes >> 20
            ),
            mb_s(mirrored),
        ),
    ];
    rows.extend(lag.rows_named(&format!(
        "mirror lag (send on the source to read from the mirror) at {} MB/s, 1 KiB records",
        run.rate / 1_000_000
    )));
    Ok(rows)
}
