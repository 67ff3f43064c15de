//! strata-bench: measures a Kafka-compatible broker the way the Kafka world does (librdkafka
//! producers and consumers) and sets each figure beside the limits of the same machine measured
//! in the same run, so that results read as ratios rather than as absolute numbers.
//!
//! It starts its own `strata dev` on a temporary directory, or measures any broker given with
//! `--bootstrap`.

mod broker;
mod latency;
mod limits;
mod report;
mod workload;

use std::path::PathBuf;

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
}

/// The fixed rate of the latency run: well below saturation on a small machine, as the
/// targets ask (p99 under 5 ms at 10 MB/s).
const LATENCY_RATE: u64 = 10_000_000;

/// How much work each step does.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Bytes moved by each machine-limit probe.
    limit_bytes: u64,
    /// Payload bytes produced by each throughput workload.
    workload_bytes: u64,
    /// How long the latency run produces.
    latency_secs: u64,
}

impl Scale {
    fn from(options: &Options) -> Self {
        if options.smoke {
            Self {
                limit_bytes: 16 << 20,
                workload_bytes: 4 << 20,
                latency_secs: 1,
            }
        } else if options.quick {
            Self {
                limit_bytes: 512 << 20,
                workload_bytes: 256 << 20,
                latency_secs: 10,
            }
        } else {
            Self {
                limit_bytes: 2 << 30,
                workload_bytes: 1 << 30,
                latency_secs: 30,
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let scale = Scale::from(&options);
    let scratch = tempfile::tempdir()?;
    eprintln!(
        "measuring this machine's limits ({} MiB per probe)…",
        scale.limit_bytes >> 20
    );
    let limits = limits::measure(scale.limit_bytes, scratch.path())?;

    let mut own_broker = None;
    let bootstrap = match &options.bootstrap {
        Some(addr) => addr.clone(),
        None => {
            let started =
                broker::Broker::start(options.strata.clone(), &scratch.path().join("strata-data"))?;
            let addr = started.addr.clone();
            own_broker = Some(started);
            addr
        }
    };
    eprintln!("broker: {bootstrap}");
    let workloads = [
        Workload {
            record_bytes: 1024,
            acks: Acks::One,
        },
        Workload {
            record_bytes: 1024,
            acks: Acks::All,
        },
        Workload {
            record_bytes: 100,
            acks: Acks::One,
        },
        Workload {
            record_bytes: 100,
            acks: Acks::All,
        },
    ];
    let mut rows = limits.rows();
    for workload in workloads {
        let cpu_before = own_broker.as_ref().map(|b| b.cpu_seconds()).transpose()?;
        // librdkafka runs inside this process, so its CPU time is the client's.
        let client_before = broker::process_cpu_seconds("self")?;
        eprintln!(
            "{workload}: producing {} MiB, then consuming it…",
            scale.workload_bytes >> 20
        );
        let result = workload::run(&bootstrap, workload, scale.workload_bytes)?;
        let cpu = match (own_broker.as_ref(), cpu_before) {
            (Some(b), Some(before)) => Some(b.cpu_seconds()? - before),
            _ => None,
        };
        let client = broker::process_cpu_seconds("self")? - client_before;
        rows.extend(result.rows(workload, &limits, cpu, client));
    }
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
    rows.extend(latency::run(&bootstrap, latency_run)?.rows());
    if let Some(broker) = own_broker.as_mut() {
        broker.stop()?;
    }
    let table = report::markdown(&rows, &options, scale);
    println!("{table}");
    if let Some(path) = &options.out {
        std::fs::write(path, &table)?;
    }
    Ok(())
}
