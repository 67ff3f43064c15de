//! `strata consume TOPIC`: records as lines on stdout, like `kafka-console-consumer.sh`,
//! `kcat -C` and `rpk topic consume`, from any Kafka cluster.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};
use serde_json::json;

use super::Output;
use strata_api::model::GroupOffset;

use crate::admin_client::{AdminClient, FetchedRecord};

/// Bytes per partition per fetch.
const PARTITION_MAX_BYTES: i32 = 1 << 20;
/// How long a fetch waits for records.
const MAX_WAIT_MS: i32 = 500;

/// `strata consume …`.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The topic.
    pub topic: String,
    /// Only these partitions (repeatable; all when omitted).
    #[arg(long = "partition", short)]
    pub partitions: Vec<i32>,
    /// Where to start: beginning, end, an offset, or @TIMESTAMP (ms since the epoch).
    #[arg(long, short = 'o', default_value = "beginning")]
    pub from: String,
    /// Stop after this many records.
    #[arg(long = "count", short = 'n')]
    pub count: Option<usize>,
    /// Stop once every partition is read to its end (otherwise wait for more).
    #[arg(long, short = 'e')]
    pub exit: bool,
    /// Start from this group's committed offsets (where it has them) and commit what is
    /// read, as a standalone consumer (the group must have no active members).
    #[arg(long, short)]
    pub group: Option<String>,
    /// Line format: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp,
    /// %h headers (k=v,…), %% a percent sign; \n and \t as escapes.
    #[arg(long, short, default_value = "%v\\n")]
    pub format: String,
}

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    Timestamp(i64),
}

fn start(text: &str) -> anyhow::Result<Start> {
    Ok(match text {
        "beginning" | "start" | "earliest" => Start::Beginning,
        "end" | "latest" => Start::End,
        t => match t.strip_prefix('@') {
            Some(ts) => Start::Timestamp(
                ts.parse()
                    .with_context(|| format!("--from {t}: @ takes ms since the epoch"))?,
            ),
            None => Start::Offset(t.parse().ok().filter(|o: &i64| *o >= 0).with_context(|| {
                format!("--from {t}: give beginning, end, an offset or @TIMESTAMP")
            })?),
        },
    })
}

/// `text` with the record's fields in place of the format's specifiers.
pub fn format_record(format: &str, topic: &str, r: &FetchedRecord) -> String {
    let text = |b: &Option<bytes::Bytes>| {
        b.as_ref()
            .map_or(String::new(), |b| String::from_utf8_lossy(b).into_owned())
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.push_str(topic),
                Some('p') => out.push_str(&r.partition.to_string()),
                Some('o') => out.push_str(&r.offset.to_string()),
                Some('k') => out.push_str(&text(&r.key)),
                Some('v') => out.push_str(&text(&r.value)),
                Some('T') => out.push_str(&r.timestamp.to_string()),
                Some('h') => out.push_str(
                    &r.headers
                        .iter()
                        .map(|(k, v)| format!("{k}={}", text(v)))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Bytes as a JSON string when they are UTF-8, else as hex under `<field>_hex`.
fn bytes_field(
    map: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
    bytes: &Option<bytes::Bytes>,
) {
    match bytes {
        None => {
            map.insert(field.into(), serde_json::Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => {
                map.insert(field.into(), s.into());
            }
            Err(_) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                map.insert(format!("{field}_hex"), hex.into());
            }
        },
    }
}

/// One record as a JSON line.
pub fn record_json(topic: &str, r: &FetchedRecord) -> String {
    let mut map = serde_json::Map::new();
    map.insert("topic".into(), topic.into());
    map.insert("partition".into(), r.partition.into());
    map.insert("offset".into(), r.offset.into());
    map.insert("timestamp".into(), r.timestamp.into());
    bytes_field(&mut map, "key", &r.key);
    bytes_field(&mut map, "value", &r.value);
    let headers: serde_json::Map<String, serde_json::Value> = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())),
            )
        })
        .collect();
    map.insert("headers".into(), headers.into());
    serde_json::Value::Object(map).to_string()
}

/// Prints records until `--count`, `--exit` at the end, or forever.
pub async fn run(bootstrap: &str, args: ConsumeArgs, output: Output) -> anyhow::Result<String> {
    let from = start(&args.from)?;
    let mut admin = AdminClient::new(bootstrap);
    let mut metadata = admin
        .metadata(Some(std::slice::from_ref(&args.topic)))
        .await?;
    let all: Vec<i32> = metadata
        .topic(&args.topic)
        .map(|t| t.partitions.iter().map(|p| p.partition).collect())
        .unwrap_or_default();
    let partitions = if args.partitions.is_empty() {
        all.clone()
    } else {
        if let Some(p) = args.partitions.iter().find(|p| !all.contains(p)) {
            bail!("topic '{}' has no partition {p}", args.topic);
        }
        args.partitions.clone()
    };
    let keys: Vec<(String, i32)> = partitions
        .iter()
        .map(|p| (args.topic.clone(), *p))
        .collect();
    let mut positions: BTreeMap<i32, i64> = match from {
        Start::Beginning => admin.list_offsets(&metadata, &keys, -2).await?,
        Start::End => admin.list_offsets(&metadata, &keys, -1).await?,
        Start::Timestamp(ts) => {
            let ends = admin.list_offsets(&metadata, &keys, -1).await?;
            let mut at = admin.list_offsets(&metadata, &keys, ts).await?;
            for (k, end) in ends {
                at.entry(k.clone())
                    .and_modify(|o| {
                        if *o < 0 {
                            *o = end
                        }
                    })
                    .or_insert(end);
            }
            at
        }
        Start::Offset(o) => keys.iter().map(|k| (k.clone(), o)).collect(),
    }
    .into_iter()
    .map(|((_, p), o)| (p, o))
    .collect();
    if let Some(group) = &args.group {
        // A group that has never committed starts where --from says.
        if let Ok(overview) = admin.describe_group(group).await {
            for o in overview.offsets.iter().filter(|o| o.topic == args.topic) {
                if let (Some(c), true) = (o.committed, positions.contains_key(&o.partition)) {
                    positions.insert(o.partition, c);
                }
            }
        }
    }
    if positions.len() != partitions.len() {
        bail!(
            "the leaders of some partitions of '{}' did not answer",
            args.topic
        );
    }
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0usize;
    loop {
        let asked: Vec<(i32, i64)> = positions.iter().map(|(p, o)| (*p, *o)).collect();
        let fetched = match admin
            .fetch(
                &metadata,
                &args.topic,
                &asked,
                (MAX_WAIT_MS, PARTITION_MAX_BYTES),
            )
            .await
        {
            Ok(f) => f,
            Err(e) => {
                eprintln!("fetch failed, retrying: {e:#}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                metadata = admin
                    .metadata(Some(std::slice::from_ref(&args.topic)))
                    .await?;
                continue;
            }
        };
        let mut at_end = true;
        let mut stale = false;
        for f in &fetched {
            if let Some(error) = &f.error {
                if error.contains("OFFSET_OUT_OF_RANGE") {
                    bail!("{error}: the partition does not hold that offset");
                }
                stale = true;
                continue;
            }
            for r in &f.records {
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
                let line = match output {
                    Output::Json => record_json(&args.topic, r) + "\n",
                    Output::Text => format_record(&args.format, &args.topic, r),
                };
                stdout.write_all(line.as_bytes())?;
                printed += 1;
                positions.insert(f.partition, r.offset + 1);
            }
            if positions
                .get(&f.partition)
                .is_some_and(|o| *o < f.high_watermark)
            {
                at_end = false;
            }
        }
        stdout.flush()?;
        if let Some(group) = &args.group {
            let offsets: Vec<GroupOffset> = positions
                .iter()
                .map(|(p, o)| GroupOffset {
                    topic: args.topic.clone(),
                    partition: *p,
                    committed: Some(*o),
                    log_end: -1,
                    lag: None,
                    member: None,
                })
                .collect();
            admin.commit_offsets(group, &offsets).await?;
        }
        if args.count.is_some_and(|n| printed >= n) || (args.exit && at_end && !stale) {
            break;
        }
        if stale {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            metadata = admin
                .metadata(Some(std::slice::from_ref(&args.topic)))
                .await?;
        }
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_kcat_does() {
        let r = FetchedRecord {
            partition: 2,
            offset: 7,
            timestamp: 1000,
            key: Some(bytes::Bytes::from_static(b"k")),
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: vec![("h".into(), Some(bytes::Bytes::from_static(b"x")))],
        };
        assert_eq!(
            format_record("%t/%p@%o %k=%v %T [%h] 100%%\\n", "t", &r),
            "t/2@7 k=v 1000 [h=x] 100%\n"
        );
        assert_eq!(
            record_json("t", &r),
            r#"{"headers":{"h":"x"},"key":"k","offset":7,"partition":2,"timestamp":1000,"topic":"t","value":"v"}"#
        );
    }
}
