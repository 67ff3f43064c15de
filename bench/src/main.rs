//! strata-bench: measures a Kafka-compatible broker the way the Kafka world does (librdkafka
//! producers and consumers) and sets each figure beside the limits of the same machine measured
//! in the same run, so that results read as ratios rather than as absolute numbers.
//!
//! It starts its own `strata dev` on a temporary directory (or, with `--brokers N`, a cluster
//! of N combined nodes on loopback, topics replicated `--replication-factor` times), or
//! measures any broker given with `--bootstrap`.

mod broker;
mod chart;
mod latency;
mod limits;
mod many;
mod mirror;
mod parked;
mod report;
mod security;
mod workload;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use crate::workload::{Acks, Workload};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Options {
    /// Measure this broker (host:port) instead of starting `strata dev`.
    #[arg(long)]
    bootstrap: Option<String>,
    /// The `strata` binary to start (default: next to this one).
    #[arg(long)]
    strata: Option<PathBuf>,
    /// A run of about two minutes instead of the full one.
    #[arg(long)]
    quick: bool,
    /// A few seconds only: checks that every step works (CI), figures are meaningless.
    #[arg(long, conflicts_with = "quick")]
    smoke: bool,
    /// Write the markdown report here as well as to stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write an SVG chart of throughput and latency here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Runs of each throughput workload, reported as their median (default: 3 in a full run,
    /// 1 otherwise).
    #[arg(long)]
    repeats: Option<usize>,
    /// Record sizes of the throughput workloads, in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [1024, 100])]
    sizes: Vec<usize>,
    /// Acknowledgement modes of the throughput workloads.
    #[arg(long, value_delimiter = ',', default_values = ["1", "all"])]
    acks: Vec<Acks>,
    /// Producer knobs of the throughput workloads.
    #[command(flatten)]
    knobs: workload::Knobs,
    /// Start a cluster of this many combined nodes (broker and controller each) instead of one
    /// `strata dev`; the CPU figures are their sum.
    #[arg(long, default_value_t = 1, conflicts_with = "bootstrap")]
    brokers: usize,
    /// Replicas of the topics the runs create (`default.replication.factor` of the nodes the
    /// bench starts).
    #[arg(long, default_value_t = 1, conflicts_with = "bootstrap")]
    replication_factor: usize,
    /// `min.insync.replicas` of the nodes the bench starts.
    #[arg(long, default_value_t = 1, conflicts_with = "bootstrap")]
    min_insync: usize,
    /// Also produce to a topic of this many partitions with one producer per broker
    /// (throughput and acknowledgement latency); 0 skips it.
    #[arg(long, default_value_t = 0)]
    many_partitions: usize,
    /// Pace the many-partition run at this many MB/s in all (latency then counts from each
    /// record's scheduled send); unpaced when omitted.
    #[arg(long)]
    many_rate_mb: Option<u64>,
    /// Skip the machine-limit probes (ratios are then left blank).
    #[arg(long)]
    skip_limits: bool,
    /// Skip the produce and consume throughput workloads.
    #[arg(long)]
    skip_throughput: bool,
    /// Skip the end-to-end latency run.
    #[arg(long)]
    skip_latency: bool,
    /// Skip the parked-fetch run (idle consumers long-polling while another partition takes
    /// writes).
    #[arg(long)]
    skip_parked: bool,
    /// Also measure a cluster link between two nodes the bench starts: mirror throughput
    /// beside a plain consumer, and mirror lag at `--mirror-rate-mb`.
    #[arg(long, conflicts_with = "bootstrap")]
    mirror: bool,
    /// The steady rate of the mirror lag run, MB/s.
    #[arg(long, default_value_t = 50)]
    mirror_rate_mb: u64,
    /// Security protocols of the throughput workloads' clients: `plaintext`, and `sasl_ssl`
    /// (SCRAM-SHA-512 over TLS, on a second listener of the broker the bench starts).
    #[arg(long, value_delimiter = ',', default_values = ["plaintext"],
          value_parser = ["plaintext", "sasl_ssl"])]
    security: Vec<String>,
    /// Records per transaction of the throughput workloads' producers: 0 is not
    /// transactional (with `--producer-prop enable.idempotence=true`, idempotent); a
    /// transactional producer needs acks=all.
    #[arg(long, value_delimiter = ',', default_values_t = [0])]
    transactions: Vec<u64>,
    /// `isolation.level` of the throughput workloads' consumers.
    #[arg(long, value_delimiter = ',', value_enum, default_values = ["read-committed"])]
    isolation: Vec<workload::Isolation>,
}

/// The fixed rate of the latency run: well below saturation on a small machine, as the
/// targets ask (p99 under 5 ms at 10 MB/s).
const LATENCY_RATE: u64 = 10_000_000;

/// How much work each step does.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Payload bytes of each throughput workload, and bytes moved by each limit probe: the
    /// same, so that probes meet the page cache and the disk as the workloads do.
    workload_bytes: u64,
    /// Runs of each throughput workload.
    repeats: usize,
    /// How long the latency run produces.
    latency_secs: u64,
    /// How long the parked-fetch run measures.
    parked_secs: u64,
}

impl Scale {
    fn from(options: &Options) -> Self {
        let (workload_bytes, repeats, latency_secs, parked_secs) = if options.smoke {
            (4 << 20, 1, 1, 1)
        } else if options.quick {
            (256 << 20, 1, 10, 10)
        } else {
            (1 << 30, 3, 30, 30)
        };
        Self {
            workload_bytes,
            repeats: options.repeats.unwrap_or(repeats).max(1),
            latency_secs,
            parked_secs,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let scale = Scale::from(&options);
    let scratch = tempfile::tempdir()?;
    let limits = if options.skip_limits {
        None
    } else {
        eprintln!(
            "measuring this machine's limits ({} MiB per probe)…",
            scale.workload_bytes >> 20
        );
        Some(limits::measure(scale.workload_bytes, scratch.path())?)
    };

    let sasl_ssl = options.security.iter().any(|s| s == "sasl_ssl");
    anyhow::ensure!(
        !sasl_ssl
            || (options.bootstrap.is_none()
                && options.brokers == 1
                && options.replication_factor == 1),
        "--security sasl_ssl measures a broker the bench starts alone (no --bootstrap, --brokers or --replication-factor)"
    );
    let (tls_settings, tls) = if sasl_ssl {
        let (settings, ca) = security::broker_settings(&scratch.path().join("tls"))?;
        (settings, Some(ca))
    } else {
        (Vec::new(), None)
    };
    let mut own_brokers = Vec::new();
    let bootstrap = match &options.bootstrap {
        Some(addr) => addr.clone(),
        None if options.brokers > 1 || options.replication_factor > 1 => {
            anyhow::ensure!(
                options.replication_factor <= options.brokers,
                "--replication-factor {} needs as many --brokers",
                options.replication_factor
            );
            let settings = vec![
                format!("default.replication.factor={}", options.replication_factor),
                format!("min.insync.replicas={}", options.min_insync),
                format!(
                    "offsets.topic.replication.factor={}",
                    options.replication_factor
                ),
            ];
            own_brokers = broker::Broker::start_cluster(
                options.strata.clone(),
                &scratch.path().join("strata-data"),
                options.brokers,
                &settings,
            )?;
            own_brokers
                .iter()
                .map(|b| b.addr.clone())
                .collect::<Vec<_>>()
                .join(",")
        }
        None => {
            let started = broker::Broker::start_with(
                options.strata.clone(),
                &scratch.path().join("strata-data"),
                &tls_settings,
            )?;
            let addr = started.addr.clone();
            own_brokers.push(started);
            addr
        }
    };
    let secured = match &tls {
        Some(ca) => {
            let broker = own_brokers.first().context("a broker of the bench's own")?;
            security::create_user(&broker::Broker::binary(options.strata.clone())?, &bootstrap)?;
            let listener = broker
                .listeners
                .get("SASL_SSL")
                .context("the broker's SASL_SSL listener")?;
            Some(security::client(listener, ca))
        }
        None => None,
    };
    eprintln!("broker: {bootstrap}");
    let sizes = if options.skip_throughput {
        &[][..]
    } else {
        &options.sizes[..]
    };
    let mut workloads: Vec<Workload> = Vec::new();
    for protocol in &options.security {
        for &record_bytes in sizes {
            for &acks in &options.acks {
                for &per_txn in &options.transactions {
                    if per_txn > 0 && acks != Acks::All {
                        continue;
                    }
                    for &isolation in &options.isolation {
                        workloads.push(Workload {
                            record_bytes,
                            acks,
                            knobs: options.knobs.clone(),
                            security: (protocol == "sasl_ssl").then(|| secured.clone()).flatten(),
                            transaction_records: (per_txn > 0).then_some(per_txn),
                            isolation,
                        });
                    }
                }
            }
        }
    }
    let mut rows = limits.as_ref().map_or(Vec::new(), |l| l.rows());
    let cpu = broker::CpuMeter::new(&own_brokers);
    let mut measured = Vec::new();
    for workload in workloads {
        let mut runs = Vec::new();
        for repeat in 1..=scale.repeats {
            eprint!(
                "{workload}, run {repeat} of {}: producing {} MiB, then consuming it… ",
                scale.repeats,
                scale.workload_bytes >> 20
            );
            let run = workload::run(&bootstrap, &workload, scale.workload_bytes, &cpu)?;
            eprintln!(
                "{:.0} MB/s in, {:.0} MB/s out",
                run.produce_mb_s(),
                run.consume_mb_s()
            );
            runs.push(run);
        }
        rows.extend(workload::rows(&workload, &runs, limits.as_ref()));
        measured.push((workload, runs));
    }
    let mut latencies = None;
    if !options.skip_latency {
        let latency_run = latency::LatencyRun {
            rate: LATENCY_RATE,
            record_bytes: 1024,
            duration: std::time::Duration::from_secs(scale.latency_secs),
        };
        eprintln!(
            "end-to-end latency at {} MB/s for {} s…",
            LATENCY_RATE / 1_000_000,
            scale.latency_secs
        );
        let result = latency::run(&bootstrap, latency_run)?;
        rows.extend(result.rows());
        latencies = Some(result);
    }
    if options.many_partitions > 0 {
        let producers = options.brokers.max(1);
        eprintln!(
            "{} partitions, {producers} producers, {} MiB of 1 KiB records…",
            options.many_partitions,
            scale.workload_bytes >> 20
        );
        let run = many::ManyPartitions {
            partitions: options.many_partitions,
            producers,
            bytes: scale.workload_bytes,
            record_bytes: 1024,
            rate: options.many_rate_mb.map(|mb| mb * 1_000_000),
        };
        rows.extend(many::run(&bootstrap, run, &cpu)?);
    }
    if !options.skip_parked {
        eprintln!(
            "parked fetches: {} connections × {} partitions, {} records/s elsewhere, for {} s…",
            parked::CONSUMERS,
            parked::PARTITIONS,
            parked::RECORDS_PER_SECOND,
            scale.parked_secs
        );
        rows.extend(parked::run(&bootstrap, &cpu, scale.parked_secs)?.rows());
    }
    for broker in &mut own_brokers {
        broker.stop()?;
    }
    if options.mirror {
        eprintln!(
            "cluster link: mirroring {} MiB, then lag at {} MB/s for {} s…",
            scale.workload_bytes >> 20,
            options.mirror_rate_mb,
            scale.latency_secs
        );
        rows.extend(mirror::run(
            options.strata.clone(),
            scratch.path(),
            mirror::MirrorRun {
                bytes: scale.workload_bytes,
                rate: options.mirror_rate_mb * 1_000_000,
                duration: std::time::Duration::from_secs(scale.latency_secs),
            },
        )?);
    }
    let table = report::markdown(&rows, &options, scale);
    println!("{table}");
    if let Some(path) = &options.out {
        std::fs::write(path, &table)?;
    }
    if let Some(path) = &options.chart {
        chart::write(path, &measured, limits.as_ref(), latencies.as_ref())?;
    }
    Ok(())
}
