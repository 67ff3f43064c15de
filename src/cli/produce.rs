//! `strata produce TOPIC`: one record per line of stdin, like `kafka-console-producer.sh` and
//! `rpk topic produce`, to any Kafka cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use kafka_protocol::records::Compression;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::Output;
use crate::admin_client::{AdminClient, NewRecord, ProduceOptions};

/// Lines sent per Produce request at most.
const LINES_PER_REQUEST: usize = 1_000;
/// How long lines arriving together are gathered into one request.
const LINGER: Duration = Duration::from_millis(10);
/// How often a long run reports its progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `strata produce …`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// The topic.
    pub topic: String,
    /// Split each line at the first SEP into key and value (no key otherwise).
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header as KEY=VALUE on every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Acknowledgements: all (-1), 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Compression of the batches: none, gzip, snappy, lz4, zstd.
    #[arg(long, short = 'z', default_value = "none")]
    pub compression: String,
    /// Every record to this partition (by key, or round robin, otherwise).
    #[arg(long, short)]
    pub partition: Option<i32>,
}

fn acks(text: &str) -> anyhow::Result<i16> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => bail!("--acks {other}: give all, 1 or 0"),
    }
}

/// A codec by its Kafka name.
pub fn compression(text: &str) -> anyhow::Result<Compression> {
    Ok(match text {
        "none" | "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => bail!("--compression {other}: give none, gzip, snappy, lz4 or zstd"),
    })
}

/// What a run produced.
#[derive(Debug, Default, Serialize)]
struct Summary {
    topic: String,
    records: usize,
    /// Per partition: the first offset written and the records written.
    partitions: BTreeMap<i32, (i64, usize)>,
}

fn record(line: &str, args: &ProduceArgs, headers: &[(String, Bytes)]) -> NewRecord {
    let (key, value) = match args.key_separator.as_deref() {
        Some(sep) if !sep.is_empty() => match line.split_once(sep) {
            Some((k, v)) => (Some(Bytes::from(k.to_owned())), v),
            None => (None, line),
        },
        _ => (None, line),
    };
    NewRecord {
        key,
        value: Some(Bytes::from(value.to_owned())),
        headers: headers.to_vec(),
        partition: args.partition,
    }
}

/// Reads stdin to its end, producing as lines arrive; the summary when done.
pub async fn run(bootstrap: &str, args: ProduceArgs, output: Output) -> anyhow::Result<String> {
    let options = ProduceOptions {
        acks: acks(&args.acks)?,
        compression: compression(&args.compression)?,
    };
    let headers: Vec<(String, Bytes)> = super::topic::key_values(&args.headers)?
        .into_iter()
        .map(|(k, v)| (k, Bytes::from(v)))
        .collect();
    let mut admin = AdminClient::new(bootstrap);
    // Fail before reading stdin when the topic is not there.
    let metadata = admin
        .metadata(Some(std::slice::from_ref(&args.topic)))
        .await?;
    let partitions = metadata
        .topic(&args.topic)
        .map_or(0, |t| t.partitions.len());
    if let Some(p) = args
        .partition
        .filter(|p| !(0..partitions as i32).contains(p))
    {
        bail!(
            "topic '{}' has no partition {p} ({partitions} partitions)",
            args.topic
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut summary = Summary {
        topic: args.topic.clone(),
        ..Summary::default()
    };
    let mut next_partition = -1;
    let mut reported = Instant::now();
    let mut done = false;
    while !done {
        let mut batch = Vec::new();
        match lines.next_line().await.context("reading stdin")? {
            Some(line) => batch.push(record(&line, &args, &headers)),
            None => break,
        }
        while batch.len() < LINES_PER_REQUEST {
            match tokio::time::timeout(LINGER, lines.next_line()).await {
                Ok(Ok(Some(line))) => batch.push(record(&line, &args, &headers)),
                Ok(Ok(None)) => {
                    done = true;
                    break;
                }
                Ok(Err(e)) => return Err(e).context("reading stdin"),
                Err(_) => break,
            }
        }
        let written = admin
            .produce(&args.topic, &batch, options, &mut next_partition)
            .await?;
        summary.records += batch.len();
        for (partition, (offset, count)) in written {
            let entry = summary.partitions.entry(partition).or_insert((offset, 0));
            entry.1 += count;
        }
        if reported.elapsed() >= PROGRESS_EVERY {
            eprintln!("{} records produced to {}", summary.records, args.topic);
            reported = Instant::now();
        }
    }
    Ok(match output {
        Output::Json => output.json(&summary)?,
        Output::Text => format!(
            "produced {} records to {} ({} partitions)\n",
            summary.records,
            args.topic,
            summary.partitions.len()
        ),
    })
}
