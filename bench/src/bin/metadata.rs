//! strata-metadata-bench: the metadata quorum at scale, as separate processes. Three
//! `strata controller` processes take N partitions through their raft log; then the active
//! one is killed with kill -9 and the time until another commits a write is measured, and the
//! killed voter is restarted from its snapshot.
//!
//! `cargo build --release -p strata -p strata-bench --bins &&
//!  ./target/release/strata-metadata-bench --partitions 1000000`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use strata_controller::raft::client;
use strata_controller::{MetadataImage, MetadataRecord};
use uuid::Uuid;

/// Options.
#[derive(Parser, Debug)]
#[command(about = "The metadata quorum at scale: partitions through raft, kill -9 failover")]
struct Options {
    /// Partitions to create (in topics of 1,000).
    #[arg(long, default_value_t = 1_000_000)]
    partitions: usize,
    /// The `strata` binary (default: next to this one).
    #[arg(long)]
    strata: Option<PathBuf>,
}

const PER_TOPIC: usize = 1_000;
const BROKERS: i32 = 30;

struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &Path, id: u64, addr: &str, dir: &Path, voters: &str) -> anyhow::Result<Process> {
    let mut child = Command::new(binary)
        .args(["controller", "--node-id", &id.to_string(), "--listen", addr])
        .arg("--data-dir")
        .arg(dir.join(format!("c{id}")))
        .args(["--voters", voters, "--snapshot-every", "200"])
        .args(["--broker-session-timeout-ms", "3600000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let line = BufReader::new(stdout).lines().next().transpose()?;
    if !line.is_some_and(|l| l.starts_with("strata controller listening")) {
        bail!("controller {id} did not start");
    }
    Ok(Process { child })
}

fn rss_bytes(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn topic(n: usize) -> Vec<MetadataRecord> {
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::CreateTopic {
        name: format!("topic-{n:06}"),
        topic_id,
        configs: BTreeMap::new(),
    }];
    for p in 0..PER_TOPIC {
        let a = ((n * PER_TOPIC + p) % BROKERS as usize) as i32 + 1;
        let b = a % BROKERS + 1;
        let c = b % BROKERS + 1;
        records.push(MetadataRecord::CreatePartition {
            topic_id,
            partition: p as i32,
            replicas: vec![a, b, c],
            isr: vec![a, b, c],
            leader: a,
        });
    }
    records
}

async fn leader(addrs: &[String]) -> Option<(u64, usize)> {
    for (n, addr) in addrs.iter().enumerate() {
        if let Ok(s) = client::status(addr).await
            && s.leader == Some(s.id)
        {
            return Some((s.id, n));
        }
    }
    None
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let binary = match options.strata {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("strata"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    image_alone(options.partitions);
    runtime.block_on(run(&binary, options.partitions))
}

/// The image by itself, in this process: memory per partition, snapshot size and parse time.
fn image_alone(partitions: usize) {
    let before = rss_bytes("self");
    let mut image = MetadataImage::default();
    let mut offset = 0;
    for id in 1..=BROKERS {
        for record in [
            MetadataRecord::RegisterBroker {
                broker_id: id,
                incarnation: Uuid::new_v4(),
                rack: None,
                listeners: Vec::new(),
            },
            MetadataRecord::UnfenceBroker { broker_id: id },
        ] {
            offset += 1;
            image.apply(offset, &record).expect("brokers register");
        }
    }
    for n in 0..partitions.div_ceil(PER_TOPIC) {
        offset += 1;
        for record in topic(n) {
            image.apply(offset, &record).expect("partitions apply");
        }
    }
    let grown = rss_bytes("self").saturating_sub(before);
    let snapshot = image.to_snapshot();
    let started = Instant::now();
    let parsed = MetadataImage::from_snapshot(&snapshot).expect("snapshot parses");
    println!(
        "image alone: {:.0} bytes per partition (RSS), snapshot {:.1} MB parsed in {:.2} s",
        grown as f64 / image.partition_count().max(1) as f64,
        snapshot.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(parsed.partition_count(), image.partition_count());
}

async fn run(binary: &Path, partitions: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let addrs: Vec<String> = (0..3)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            Ok(l.local_addr()?.to_string())
        })
        .collect::<std::io::Result<_>>()?;
    let voters = addrs
        .iter()
        .enumerate()
        .map(|(n, a)| format!("{}@{a}", n + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut processes: Vec<Option<Process>> = Vec::new();
    for (n, addr) in addrs.iter().enumerate() {
        processes.push(Some(start(
            binary,
            n as u64 + 1,
            addr,
            tmp.path(),
            &voters,
        )?));
    }
    let baseline: Vec<u64> = processes
        .iter()
        .flatten()
        .map(|p| rss_bytes(&p.child.id().to_string()))
        .collect();

    let topics = partitions.div_ceil(PER_TOPIC);
    let started = Instant::now();
    for n in 0..topics {
        client::write(&addrs, topic(n)).await?;
        if (n + 1) % 100 == 0 {
            eprintln!("{} partitions committed", (n + 1) * PER_TOPIC);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let records = topics * (PER_TOPIC + 1);
    println!(
        "committed {records} records ({} partitions) through 3 controller processes in {secs:.1} s: {:.0} records/s",
        topics * PER_TOPIC,
        records as f64 / secs
    );
    let rss: Vec<u64> = processes
        .iter()
        .flatten()
        .map(|p| rss_bytes(&p.child.id().to_string()))
        .collect();
    let per_partition = rss
        .iter()
        .zip(&baseline)
        .map(|(a, b)| a.saturating_sub(*b) as f64 / (topics * PER_TOPIC) as f64)
        .fold(0.0, f64::max);
    println!("controller memory: up to {per_partition:.0} bytes per partition (RSS growth)");

    let (old_id, index) = leader(&addrs).await.context("no active controller")?;
    let killed = Instant::now();
    drop(processes[index].take());
    let survivors: Vec<String> = addrs
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != index)
        .map(|(_, a)| a.clone())
        .collect();
    client::write(
        &survivors,
        vec![MetadataRecord::FenceBroker { broker_id: 1 }],
    )
    .await
    .context("no controller took over")?;
    println!(
        "failover with {} partitions: {:.2} s from kill -9 of the active controller to a committed write",
        topics * PER_TOPIC,
        killed.elapsed().as_secs_f64()
    );

    let snapshot = tmp
        .path()
        .join(format!("c{old_id}/raft-state/snapshot.json"));
    let size = std::fs::metadata(&snapshot).map_or(0, |m| m.len());
    let restart = Instant::now();
    let restarted = start(binary, old_id, &addrs[index], tmp.path(), &voters)?;
    println!(
        "restart of the killed voter from its {:.1} MB snapshot: listening after {:.2} s",
        size as f64 / 1e6,
        restart.elapsed().as_secs_f64()
    );
    processes[index] = Some(restarted);
    Ok(())
}
