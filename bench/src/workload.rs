//! Throughput workloads through librdkafka: produce a topic, then consume it from the start.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::broker::CpuMeter;
use crate::limits::Limits;
use crate::report::{Row, median};

/// Longest a consumer may wait for the next record before the run is declared stalled.
const STALL: Duration = Duration::from_secs(10);

/// How long a producer whose local queue is full waits before trying again.
const QUEUE_FULL_PAUSE: Duration = Duration::from_micros(200);

/// Longest the producer may take to have every queued record acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// Producer acknowledgement mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// The leader appended the batch.
    One,
    /// Every in-sync replica has it (on Strata's single node: fsync'd).
    All,
}

impl Acks {
    /// The value of librdkafka's `acks` setting.
    pub fn setting(self) -> &'static str {
        match self {
            Acks::One => "1",
            Acks::All => "all",
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1" => Ok(Acks::One),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("acks must be 1 or all, not {other:?}")),
        }
    }
}

/// Producer batching knobs, as librdkafka names them.
#[derive(Debug, Clone, clap::Args)]
pub struct Knobs {
    /// librdkafka `linger.ms` of the throughput producers.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// librdkafka `batch.size` (bytes) of the throughput producers.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: u64,
    /// librdkafka `compression.type` of the throughput producers.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: String,
    /// Any other librdkafka producer setting, as key=value (repeatable).
    #[arg(long = "producer-prop", value_parser = key_value)]
    pub producer_props: Vec<(String, String)>,
    /// Any librdkafka consumer setting, as key=value (repeatable).
    #[arg(long = "consumer-prop", value_parser = key_value)]
    pub consumer_props: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, not {s:?}"))
}

/// Applies extra `key=value` settings over a client configuration.
fn with_props(mut config: ClientConfig, props: &[(String, String)]) -> ClientConfig {
    for (key, value) in props {
        config.set(key, value);
    }
    config
}

/// How the clients of a workload reach the broker when not in plaintext: the listener and the
/// librdkafka settings (`security.protocol`, SASL and TLS) for it.
#[derive(Debug, Clone)]
pub struct ClientSecurity {
    /// The security protocol, as rows name it (`SASL_SSL`).
    pub label: &'static str,
    /// The listener's address.
    pub bootstrap: String,
    /// librdkafka settings.
    pub settings: Vec<(String, String)>,
}

/// One throughput workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Payload size of each record.
    pub record_bytes: usize,
    /// Acknowledgement mode.
    pub acks: Acks,
    /// Producer batching.
    pub knobs: Knobs,
    /// Clients over TLS and SASL instead of plaintext.
    pub security: Option<ClientSecurity>,
    /// Records per transaction of a transactional producer (`None`: not transactional).
    pub transaction_records: Option<u64>,
    /// The consumer's `isolation.level`.
    pub isolation: Isolation,
}

/// A consumer's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// librdkafka's default: up to the last stable offset, aborted records dropped.
    ReadCommitted,
    /// Up to the high watermark, everything.
    ReadUncommitted,
}

impl Isolation {
    /// The librdkafka setting.
    pub fn setting(self) -> &'static str {
        match self {
            Self::ReadCommitted => "read_committed",
            Self::ReadUncommitted => "read_uncommitted",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} B records, acks={}",
            self.record_bytes,
            self.acks.setting()
        )?;
        if self.knobs.compression != "none" {
            write!(f, ", {}", self.knobs.compression)?;
        }
        if let Some(security) = &self.security {
            write!(f, ", {}", security.label)?;
        }
        if let Some(records) = self.transaction_records {
            write!(f, ", transactions of {records}")?;
        }
        if self.isolation != Isolation::ReadCommitted {
            write!(f, ", {}", self.isolation.setting())?;
        }
        Ok(())
    }
}

/// One direction of a workload: how long it took and the CPU each side used.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Wall-clock seconds.
    pub secs: f64,
    /// CPU seconds of the broker (when the bench started it).
    pub broker_cpu: Option<f64>,
    /// CPU seconds of this process, where librdkafka runs.
    pub client_cpu: f64,
}

/// What one run of a workload measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Payload bytes produced and consumed.
    pub bytes: u64,
    /// Producing every record until the last is acknowledged.
    pub produce: Phase,
    /// Consuming them all, from the first record's arrival.
    pub consume: Phase,
}

impl Measured {
    /// Produce throughput in MB/s.
    pub fn produce_mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.produce.secs
    }

    /// Consume throughput in MB/s.
    pub fn consume_mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.consume.secs
    }
}

/// Counts records the broker refused (with `delivery.report.only.error`, the only reports).
#[derive(Default)]
struct Failures(AtomicU64);

struct Counting(Arc<Failures>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Produces about `bytes` of payload as `workload` records to a new topic, then consumes them.
pub fn run(
    bootstrap: &str,
    workload: &Workload,
    bytes: u64,
    cpu: &CpuMeter,
) -> anyhow::Result<Measured> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let (bootstrap, secured): (&str, &[(String, String)]) = match &workload.security {
        Some(security) => (&security.bootstrap, &security.settings),
        None => (bootstrap, &[]),
    };
    let records = (bytes / workload.record_bytes as u64).max(1);
    let topic = format!(
        "bench-{}-{}-{}-{}",
        workload.record_bytes,
        std::process::id(),
        clock_suffix(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let payload = vec![b'x'; workload.record_bytes];
    let failures = Arc::new(Failures::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", workload.acks.setting())
        .set("linger.ms", workload.knobs.linger_ms.to_string())
        .set("batch.size", workload.knobs.batch_size.to_string())
        .set("compression.type", &workload.knobs.compression)
        .set("queue.buffering.max.kbytes", "1048576")
        // A delivery report per record cost the client more CPU than the broker spends on the
        // record; failures are still reported, and the in-flight count says when all are in.
        .set("delivery.report.only.error", "true");
    if workload.transaction_records.is_some() {
        config.set("transactional.id", format!("{topic}-tx"));
    }
    let producer: BaseProducer<Counting> =
        with_props(with_props(config, secured), &workload.knobs.producer_props)
            .create_with_context(Counting(Arc::clone(&failures)))
            .with_context(|| format!("librdkafka refused the producer settings of {workload}"))?;
    let per_txn = workload.transaction_records.map(|n| n.max(1));
    if per_txn.is_some() {
        producer.init_transactions(FLUSH_TIMEOUT)?;
    }
    let cpu_before = cpu.sample()?;
    let started = Instant::now();
    for n in 0..records {
        if per_txn.is_some_and(|per| n % per == 0) {
            producer.begin_transaction()?;
        }
        send(&producer, BaseRecord::to(&topic).payload(&payload))?;
        // Committing waits for the transaction's records, then for the coordinator: the cost
        // a transactional application pays per transaction.
        if per_txn.is_some_and(|per| (n + 1) % per == 0 || n + 1 == records) {
            producer.commit_transaction(FLUSH_TIMEOUT)?;
        }
    }
    // rdkafka's flush() polls in 100 ms slices, which would round the end of the run up.
    let flush_deadline = Instant::now() + FLUSH_TIMEOUT;
    loop {
        producer.poll(Duration::ZERO);
        let outstanding = producer.in_flight_count();
        if outstanding == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < flush_deadline,
            "{outstanding} of {records} records unacknowledged after {FLUSH_TIMEOUT:?}"
        );
        std::thread::sleep(QUEUE_FULL_PAUSE);
    }
    let produce = cpu.phase(started, cpu_before)?;
    let failed = failures.0.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} records were not acknowledged");

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strata-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        // librdkafka 2.x pauses a partition's fetching for a whole second once its local queue
        // passes queued.min.messages; one 10 MB fetch of 100 B records does, and the consumer
        // then sat idle ~90% of the time. Resume as soon as the application drains the queue.
        .set("fetch.queue.backoff.ms", "1")
        .set("isolation.level", workload.isolation.setting());
    let consumer: BaseConsumer =
        with_props(with_props(config, secured), &workload.knobs.consumer_props)
            .create()
            .context("librdkafka refused the consumer settings")?;
    let cpu_before = cpu.sample()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    // Timed from the first record, so that the consumer's own start (connecting, looking up
    // the log start) is not counted as broker throughput; a short run would be mostly that.
    let mut started = None;
    let mut consumed = 0u64;
    while consumed < records {
        match consumer.poll(STALL) {
            Some(message) => {
                message?;
                started.get_or_insert_with(Instant::now);
                consumed += 1;
            }
            None => bail!("consumer stalled at {consumed} of {records} records"),
        }
    }
    let consume = cpu.phase(started.unwrap_or_else(Instant::now), cpu_before)?;
    drop(consumer);
    delete_topic(bootstrap, secured, &topic)?;
    Ok(Measured {
        bytes: records * workload.record_bytes as u64,
        produce,
        consume,
    })
}

/// Deletes a workload's topic, so that a run leaves the broker (and its page cache) as it
/// found it, as a broker under retention would be, and one run's data cannot slow the next.
fn delete_topic(bootstrap: &str, secured: &[(String, String)], topic: &str) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<DefaultClientContext> = with_props(config, secured)
        .create()
        .context("admin client")?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    // rdkafka's admin calls are futures, answered from its own thread: any executor will do.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let results = runtime.block_on(admin.delete_topics(&[topic], &options))?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("deleting topic {topic}: {code}");
        }
    }
    Ok(())
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
                // Not poll(1 ms): rdkafka turns a sub-millisecond remainder into a zero
                // timeout and spins, which took a tenth of the CPU from the broker.
                producer.poll(Duration::ZERO);
                std::thread::sleep(QUEUE_FULL_PAUSE);
            }
            Err((e, _)) => bail!("produce failed: {e}"),
        }
    }
}

/// A few bits of the clock, so that topics of repeated runs against one broker differ.
fn clock_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64 % 997)
}

/// Report rows of the repeated runs of one workload: the median throughput of each direction
/// beside the machine's limits, and the CPU each side spent per GB in that median run, so that
/// a run limited by the client shows as such.
pub fn rows(workload: &Workload, runs: &[Measured], limits: Option<&Limits>) -> Vec<Row> {
    let records_per_mb = 1e6 / workload.record_bytes as f64;
    let produce: Vec<f64> = runs.iter().map(Measured::produce_mb_s).collect();
    let consume: Vec<f64> = runs.iter().map(Measured::consume_mb_s).collect();
    let produce_limits: Vec<_> = limits.map_or(Vec::new(), |l| {
        vec![
            ("loopback write/read", l.loopback_read_write),
            ("null broker produce", l.null_broker_append),
        ]
    });
    let consume_limits: Vec<_> = limits.map_or(Vec::new(), |l| {
        vec![
            ("loopback write/read", l.loopback_read_write),
            ("null broker fetch", l.loopback_sendfile),
        ]
    });
    let median_run = |rates: &[f64], phase: fn(&Measured) -> Phase| {
        let median = median(rates);
        let at = rates.iter().position(|&r| r == median).unwrap_or(0);
        phase(&runs[at])
    };
    vec![
        Row::throughput(
            format!("produce, {workload}"),
            &produce,
            records_per_mb,
            &produce_limits,
        ),
        cpu_row(
            format!("CPU per GB produced, {workload}"),
            median_run(&produce, |m| m.produce),
            runs[0].bytes,
        ),
        Row::throughput(
            format!("consume from local log, {workload}"),
            &consume,
            records_per_mb,
            &consume_limits,
        ),
        cpu_row(
            format!("CPU per GB consumed, {workload}"),
            median_run(&consume, |m| m.consume),
            runs[0].bytes,
        ),
    ]
}

fn cpu_row(figure: String, phase: Phase, bytes: u64) -> Row {
    let gb = bytes as f64 / 1e9;
    let broker = phase
        .broker_cpu
        .map_or("broker not measured".to_owned(), |cpu| {
            format!("broker {:.2}", cpu / gb)
        });
    Row::plain(
        figure,
        format!("{broker}, client {:.2} CPU-s/GB", phase.client_cpu / gb),
    )
}
