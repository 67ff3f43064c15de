//! strata-tiering-bench: tiered storage at scale on this machine. A `strata dev` process tiers to
//! an S3-protocol server (s3s-fs, in this process, on 127.0.0.1); 1 KiB JSON-like records are
//! produced to a tiered topic and to a local-only one. Reported: the compression ratio and
//! upload throughput (from the broker's own upload log lines), and consume throughput
//! replaying the tiered topic from the bucket with a cold chunk cache (just restarted), then a
//! warm one, beside consuming the same data from local disk.
//!
//! `cargo build --release -p strata -p strata-bench --bins &&
//!  ./target/release/strata-tiering-bench --mib 1024`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use strata_tiering::testing::{self, ACCESS_KEY, SECRET_KEY};

/// Options.
#[derive(Parser, Debug)]
#[command(about = "Tiered storage: compression, upload and replay throughput")]
struct Options {
    /// MiB of records per topic.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Segment size (MiB).
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Tier to a local directory instead of the S3-protocol server.
    #[arg(long)]
    local_store: bool,
    /// Partitions per topic, replayed at once by one consumer.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// The `strata` binary (default: next to this one).
    #[arg(long)]
    strata: Option<PathBuf>,
}

const RECORD: usize = 1024;

struct Broker {
    child: Child,
    addr: String,
    admin: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start(binary: &Path, dir: &Path, endpoint: &str, segment: u64) -> anyhow::Result<Broker> {
    let url = if endpoint.is_empty() {
        format!("{}", dir.with_extension("objects").display())
    } else {
        "s3://bench/strata".to_owned()
    };
    let mut child = Command::new(binary)
        .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--set", &format!("remote.log.storage.url={url}")])
        .args(["--set", "remote.log.manager.task.interval.ms=500"])
        .args(["--set", "log.retention.check.interval.ms=1000"])
        .args(["--set", &format!("log.segment.bytes={segment}")])
        .args(["--set", "cluster.id=TieringBenchAAAAAAAAAAA"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.with_extension("log"))?)
        .spawn()
        .context("starting strata")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut admin = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(a) = line.strip_prefix("strata admin listening on ") {
            admin = a.to_owned();
        }
        if let Some(addr) = line.strip_prefix("strata listening on ") {
            return Ok(Broker {
                child,
                addr: addr.to_owned(),
                admin,
            });
        }
    }
    bail!(
        "strata exited before listening; see {}",
        dir.with_extension("log").display()
    )
}

/// A 1 KiB order event: repeated keys, ids and amounts that vary, as JSON events do.
fn record(n: u64) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut text = format!(
        "{{\"event_id\":\"{:016x}\",\"seq\":{n},\"ts\":\"2026-11-25T{:02}:{:02}:{:02}.{:03}Z\",\"type\":\"{}\",\"customer\":{{\"id\":{},\"country\":\"{}\",\"tier\":\"{}\"}},\"items\":[",
        next(u64::MAX),
        next(24),
        next(60),
        next(60),
        next(1000),
        [
            "order_created",
            "order_paid",
            "order_shipped",
            "order_cancelled"
        ][next(4) as usize],
        next(1_000_000),
        ["DE", "FR", "US", "JP", "BR", "IN"][next(6) as usize],
        ["free", "plus", "pro"][next(3) as usize],
    );
    while text.len() < RECORD - 120 {
        text.push_str(&format!(
            "{{\"sku\":\"SKU-{:06}\",\"qty\":{},\"price\":{}.{:02},\"warehouse\":\"wh-{}\"}},",
            next(200_000),
            1 + next(5),
            next(500),
            next(100),
            next(12)
        ));
    }
    text.pop();
    text.push_str("],\"currency\":\"EUR\",\"channel\":\"web\"}");
    while text.len() < RECORD {
        text.push(' ');
    }
    text.truncate(RECORD);
    text.into_bytes()
}

fn create(
    addr: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for result in runtime.block_on(admin.create_topics(&[new], &AdminOptions::new()))? {
        result.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

fn produce(addr: &str, topic: &str, partitions: i32, records: u64) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()?;
    for n in 0..records {
        let value = record(n);
        let mut pending = BaseRecord::<(), [u8]>::to(topic)
            .payload(&value[..])
            .partition((n % partitions as u64) as i32);
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((_, back)) => {
                    pending = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// Consumes `records` from offset 0 of every partition; MB/s from the first record.
fn consume(addr: &str, topic: &str, partitions: i32, records: u64) -> anyhow::Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "tiering-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("fetch.queue.backoff.ms", "1")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    // When each partition delivered its last record, to see that they progress together.
    let per_partition = records / partitions as u64;
    let mut counts = vec![0u64; partitions as usize];
    let mut finished = vec![None; partitions as usize];
    let mut started = None;
    let (mut count, mut bytes) = (0u64, 0u64);
    let (mut last, mut longest) = (Instant::now(), (Duration::ZERO, 0));
    while count < records {
        match consumer.poll(Duration::from_secs(30)) {
            Some(message) => {
                let message = message?;
                started.get_or_insert_with(Instant::now);
                if count > 0 && last.elapsed() > longest.0 {
                    longest = (last.elapsed(), count);
                }
                last = Instant::now();
                let at = message.partition() as usize;
                counts[at] += 1;
                if counts[at] == per_partition {
                    finished[at] = started.map(|s| s.elapsed());
                }
                bytes += message.payload().map_or(0, <[u8]>::len) as u64;
                count += 1;
            }
            None => bail!("consumer stalled at {count} of {records}"),
        }
    }
    let took = started.map_or(1e-9, |s| s.elapsed().as_secs_f64());
    if partitions > 1 {
        let done: Vec<f64> = finished
            .iter()
            .flatten()
            .map(Duration::as_secs_f64)
            .collect();
        let (first, last) = done
            .iter()
            .fold((f64::MAX, 0f64), |(a, b), t| (a.min(*t), b.max(*t)));
        eprintln!("  partitions finished between {first:.2} s and {last:.2} s");
    }
    eprintln!(
        "  {count} records in {took:.2} s; longest wait {:?} before record {}",
        longest.0, longest.1
    );
    Ok(bytes as f64 / 1e6 / took)
}

/// `GET /v1/tiering` rows of the topic: (remote end, local start) per partition.
fn tiering(admin: &str, topic: &str) -> anyhow::Result<Vec<(u64, u64)>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = runtime.block_on(strata::cli::tiering::status_rows(admin))?;
    let rows: Vec<(u64, u64)> = rows
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| (r.remote_end.unwrap_or(0), r.local_start))
        .collect();
    anyhow::ensure!(!rows.is_empty(), "no tiering row");
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let binary = match options.strata {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("strata"),
    };
    let tmp = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(testing::start(&tmp.path().join("s3"), "bench"));
    let dir = tmp.path().join("broker");
    let segment = options.segment_mib << 20;
    let records = (options.mib << 20) / RECORD as u64;
    let endpoint = if options.local_store {
        String::new()
    } else {
        server.endpoint()
    };
    let mut broker = start(&binary, &dir, &endpoint, segment)?;
    let partitions = options.partitions.max(1);
    create(
        &broker.addr,
        "tiered",
        partitions,
        &[("local.retention.bytes", "0")],
    )?;
    create(
        &broker.addr,
        "local",
        partitions,
        &[("remote.storage.enable", "false")],
    )?;
    eprintln!("producing {records} records of {RECORD} B to each topic");
    produce(&broker.addr, "tiered", partitions, records)?;
    produce(&broker.addr, "local", partitions, records)?;
    // Everything but the active segments uploaded and gone from local disk.
    let per_partition = records / partitions as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rows = tiering(&broker.admin, "tiered")?;
        let done = rows.iter().all(|(remote_end, local_start)| {
            remote_end + segment / RECORD as u64 >= per_partition && local_start >= remote_end
        });
        if rows.len() == partitions as usize && done {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "uploads did not finish");
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(dir.with_extension("log"))?;
    let (mut raw, mut stored, mut took_ms, mut segments) = (0u64, 0u64, 0u64, 0);
    for line in log.lines().filter(|l| l.contains("segment uploaded")) {
        let field = |name: &str| -> u64 {
            line.split(&format!("{name}\u{1b}[0m\u{1b}[2m=\u{1b}[0m"))
                .nth(1)
                .or_else(|| line.split(&format!("{name}=")).nth(1))
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        raw += field("raw");
        stored += field("stored");
        took_ms += field("took_ms");
        segments += 1;
    }
    // Replay the same number of records from every partition: what each has remote.
    let remote_end = tiering(&broker.admin, "tiered")?
        .iter()
        .map(|(end, _)| *end)
        .min()
        .unwrap_or(0);
    let replayed = remote_end * partitions as u64;
    drop(broker);
    // A fresh process: the chunk cache starts empty.
    broker = start(&binary, &dir, &endpoint, segment)?;
    let explain = |phase: &str| {
        let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!(
            "{phase} failed; broker log tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    };
    let pid = broker.child.id();
    eprintln!("replaying from the bucket, cold cache (broker pid {pid})");
    let cold =
        consume(&broker.addr, "tiered", partitions, replayed).inspect_err(|_| explain("cold"))?;
    eprintln!("replaying from the bucket, warm cache");
    let warm =
        consume(&broker.addr, "tiered", partitions, replayed).inspect_err(|_| explain("warm"))?;
    eprintln!("replaying from local disk");
    let local =
        consume(&broker.addr, "local", partitions, replayed).inspect_err(|_| explain("local"))?;
    eprintln!("done");
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| data | {:.0} MB of 1 KiB JSON-like records per topic in {partitions} partition(s); {segments} segments of {} MiB uploaded |",
        (records * RECORD as u64) as f64 / 1e6,
        options.segment_mib
    );
    println!(
        "| compression (zstd level 3, 4 MiB chunks) | {:.0} MB → {:.0} MB: ratio {:.2} |",
        raw as f64 / 1e6,
        stored as f64 / 1e6,
        raw as f64 / stored.max(1) as f64
    );
    println!(
        "| upload throughput (read + compress + PUT, per segment) | {:.0} MB/s of log |",
        raw as f64 / 1e3 / took_ms.max(1) as f64
    );
    println!("| replay from the bucket, cold chunk cache | {cold:.0} MB/s |");
    println!("| replay from the bucket, warm chunk cache | {warm:.0} MB/s |");
    println!("| the same data from local disk | {local:.0} MB/s |");
    println!(
        "| cold / local, warm / local | {:.0}%, {:.0}% |",
        100.0 * cold / local,
        100.0 * warm / local
    );
    drop(broker);
    Ok(())
}
