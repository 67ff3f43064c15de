//! Parked fetches: what idle consumers cost the broker while other partitions take writes.
//!
//! 100 connections long-poll 300 partitions of one topic (Fetch v12, `max_wait_ms` 500,
//! `min_bytes` 1, as an idle consumer does) while a producer sends 2,000 records a second to a
//! partition of another topic. The broker's CPU over the run is the figure: a broker that wakes
//! every parked fetch on every append pays (parked fetches × appends × partitions); one that
//! wakes a fetch only for its own partitions pays for the fetches' own deadlines alone.
//! Raw protocol clients keep the client side cheap on a small machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::CpuMeter;
use crate::report::Row;

/// Connections long-polling.
pub const CONSUMERS: usize = 100;
/// Partitions each one polls.
pub const PARTITIONS: i32 = 300;
/// Records per second into the other topic.
pub const RECORDS_PER_SECOND: u64 = 2_000;
/// How long each long poll waits.
const MAX_WAIT_MS: i32 = 500;

/// What the run measured.
#[derive(Debug, Clone, Copy)]
pub struct Parked {
    /// Broker CPU seconds per wall-clock second.
    pub broker_cores: Option<f64>,
    /// Long polls answered per second.
    pub fetches_per_second: f64,
}

impl Parked {
    /// The report's row.
    pub fn rows(&self) -> Vec<Row> {
        let value = match self.broker_cores {
            Some(cores) => format!(
                "{cores:.3} cores of broker CPU ({:.0} fetches/s answered)",
                self.fetches_per_second
            ),
            None => format!("{:.0} fetches/s answered", self.fetches_per_second),
        };
        vec![Row::plain(
            format!(
                "parked fetches: {CONSUMERS} connections × {PARTITIONS} partitions, {RECORDS_PER_SECOND} records/s to another partition"
            ),
            value,
        )]
    }
}

fn create_topics(bootstrap: &str, names: [(&str, i32); 2]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("admin client")?;
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    for result in runtime.block_on(admin.create_topics(&topics, &options))? {
        if let Err((topic, code)) = result {
            bail!("creating topic {topic}: {code}");
        }
    }
    Ok(())
}

/// One encoded long poll of every partition of `topic` from offset 0.
fn long_poll(topic: &str, correlation_id: i32) -> anyhow::Result<Vec<u8>> {
    let request = FetchRequest::default()
        .with_max_wait_ms(MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(
                    (0..PARTITIONS)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(0)
                                .with_partition_max_bytes(1 << 16)
                        })
                        .collect(),
                ),
        ]);
    let version = 12;
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(1)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("strata-bench-parked")))
        .encode(&mut body, FetchRequest::header_version(version))?;
    request.encode(&mut body, version)?;
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Runs the workload for `secs` (after a short warm-up) against `bootstrap`.
pub fn run(bootstrap: &str, cpu: &CpuMeter, secs: u64) -> anyhow::Result<Parked> {
    let suffix = std::process::id();
    let (parked, hot) = (format!("parked-{suffix}"), format!("hot-{suffix}"));
    create_topics(bootstrap, [(&parked, PARTITIONS), (&hot, 1)])?;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let frame = Arc::new(long_poll(&parked, 1)?);
    let mut pollers = Vec::new();
    for _ in 0..CONSUMERS {
        let (addr, frame) = (bootstrap.to_owned(), Arc::clone(&frame));
        let (stop, answered) = (Arc::clone(&stop), Arc::clone(&answered));
        pollers.push(runtime.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            let mut response = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                stream.write_all(&frame).await?;
                let size = stream.read_i32().await?;
                response.resize(size.max(0) as usize, 0);
                stream.read_exact(&mut response).await?;
                answered.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .context("producer")?;
    let payload = [b'p'; 100];
    let warm_up = Duration::from_secs(2);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut measuring = None;
    while started.elapsed() < warm_up + Duration::from_secs(secs) {
        if measuring.is_none() && started.elapsed() >= warm_up {
            measuring = Some((
                Instant::now(),
                cpu.sample()?,
                answered.load(Ordering::Relaxed),
            ));
        }
        // Paced: the records due by now.
        let due = (started.elapsed().as_secs_f64() * RECORDS_PER_SECOND as f64) as u64;
        while sent < due {
            let record = BaseRecord::<(), [u8]>::to(&hot).payload(&payload[..]);
            producer
                .send(record)
                .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (since, before, answered_before) = measuring.context("the run was too short")?;
    let phase = cpu.phase(since, before)?;
    let fetches = answered.load(Ordering::Relaxed) - answered_before;
    stop.store(true, Ordering::Relaxed);
    producer.flush(Duration::from_secs(10))?;
    runtime.block_on(async {
        for poller in pollers {
            if let Ok(Err(e)) = poller.await {
                eprintln!("a parked fetch connection failed: {e}");
            }
        }
    });
    Ok(Parked {
        broker_cores: phase.broker_cpu.map(|cpu| cpu / phase.secs),
        fetches_per_second: fetches as f64 / phase.secs,
    })
}
