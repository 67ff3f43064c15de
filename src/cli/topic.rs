//! `strata topic`: create, list, describe, alter configs, add partitions, delete — over the
//! Kafka protocol, like `kafka-topics.sh` and `rpk topic`, against any Kafka cluster.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;

use super::{Output, table};
use strata_api::model::{TopicConfig, TopicDetail};

use crate::admin_client::{AdminClient, NewTopicSpec};

/// `strata topic …`.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Its name.
        name: String,
        /// Partitions (the cluster's `num.partitions` when omitted).
        #[arg(long, short)]
        partitions: Option<i32>,
        /// Replicas per partition (the cluster's `default.replication.factor` when omitted).
        #[arg(long, short)]
        replication_factor: Option<i16>,
        /// A topic config as KEY=VALUE (repeatable), e.g. `retention.ms=86400000`.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Every topic with its partitions and replication factor.
    List {
        /// Internal topics too (`__consumer_offsets`).
        #[arg(long)]
        internal: bool,
    },
    /// A topic's partitions (leader, replicas, ISR, offsets, size) and configs.
    Describe {
        /// Its name.
        name: String,
    },
    /// Set or remove topic configs.
    AlterConfig {
        /// The topic.
        name: String,
        /// A config to set, KEY=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// A config to remove, back to its default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Grow a topic to this many partitions (partitions are never removed).
    AddPartitions {
        /// The topic.
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        count: i32,
    },
    /// Delete topics.
    Delete {
        /// Their names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `KEY=VALUE` pairs into a map, naming a malformed one.
pub fn key_values(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("'{pair}' is not KEY=VALUE"))?;
            if k.trim().is_empty() {
                bail!("'{pair}' has no key");
            }
            Ok((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

/// A topic as `topic list` shows it.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    partitions: usize,
    replication_factor: usize,
    internal: bool,
}

/// Runs `command` against the cluster behind `bootstrap`.
pub async fn run(bootstrap: &str, command: TopicCommand, output: Output) -> anyhow::Result<String> {
    let mut admin = AdminClient::new(bootstrap);
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let spec = NewTopicSpec {
                name: name.clone(),
                partitions,
                replication_factor,
                configs: key_values(&configs)?,
            };
            admin.create_topic(&spec).await?;
            let topic = admin.describe_topic(&name).await?;
            Ok(match output {
                Output::Json => output.json(&topic)?,
                Output::Text => format!(
                    "created topic {name}: {} partitions, replication factor {}\n",
                    topic.partitions.len(),
                    topic.replication_factor
                ),
            })
        }
        TopicCommand::List { internal } => {
            let metadata = admin.metadata(None).await?;
            let topics: Vec<Listed> = metadata
                .topics
                .iter()
                .filter(|t| internal || !t.internal)
                .map(|t| Listed {
                    name: t.name.clone(),
                    partitions: t.partitions.len(),
                    replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len()),
                    internal: t.internal,
                })
                .collect();
            Ok(match output {
                Output::Json => output.json(&topics)?,
                Output::Text => {
                    let rows: Vec<Vec<String>> = topics
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                t.partitions.to_string(),
                                t.replication_factor.to_string(),
                            ]
                        })
                        .collect();
                    table(&["NAME", "PARTITIONS", "REPLICAS"], &rows)
                }
            })
        }
        TopicCommand::Describe { name } => {
            let mut topic = admin.describe_topic(&name).await?;
            topic.configs = admin.topic_configs(&name).await?;
            Ok(match output {
                Output::Json => output.json(&topic)?,
                Output::Text => describe_text(&topic),
            })
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
            }
            admin
                .alter_topic_configs(&name, &key_values(&set)?, &delete)
                .await?;
            let configs = admin.topic_configs(&name).await?;
            let changed: Vec<&TopicConfig> = configs
                .iter()
                .filter(|c| {
                    set.iter().any(|s| s.split('=').next() == Some(&c.name))
                        || delete.contains(&c.name)
                })
                .collect();
            Ok(match output {
                Output::Json => output.json(&changed)?,
                Output::Text => changed
                    .iter()
                    .map(|c| {
                        format!(
                            "{name}: {} = {} ({})\n",
                            c.name,
                            c.value.as_deref().unwrap_or("-"),
                            c.source
                        )
                    })
                    .collect(),
            })
        }
        TopicCommand::AddPartitions { name, count } => {
            admin.add_partitions(&name, count).await?;
            Ok(match output {
                Output::Json => output.json(&admin.describe_topic(&name).await?)?,
                Output::Text => format!("topic {name} has {count} partitions\n"),
            })
        }
        TopicCommand::Delete { names } => {
            for name in &names {
                admin.delete_topic(name).await?;
            }
            Ok(match output {
                Output::Json => output.json(&names)?,
                Output::Text => names
                    .iter()
                    .map(|n| format!("deleted topic {n}\n"))
                    .collect(),
            })
        }
    }
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn describe_text(topic: &TopicDetail) -> String {
    let mut out = format!(
        "NAME {}  ID {}  PARTITIONS {}  REPLICAS {}{}\n\n",
        topic.name,
        topic.id,
        topic.partitions.len(),
        topic.replication_factor,
        if topic.internal { "  (internal)" } else { "" }
    );
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                p.leader.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                p.log_start_offset.to_string(),
                p.high_watermark.to_string(),
                if p.local_bytes < 0 {
                    "-".into()
                } else {
                    p.local_bytes.to_string()
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "LOG-START",
            "HIGH-WATERMARK",
            "BYTES",
        ],
        &rows,
    ));
    let overrides: Vec<Vec<String>> = topic
        .configs
        .iter()
        .filter(|c| c.source != "DEFAULT_CONFIG" && c.source != "STATIC_BROKER_CONFIG")
        .map(|c| {
            vec![
                c.name.clone(),
                c.value.clone().unwrap_or_else(|| "-".into()),
                c.source.clone(),
            ]
        })
        .collect();
    if !overrides.is_empty() {
        out.push('\n');
        out.push_str(&table(&["CONFIG", "VALUE", "SOURCE"], &overrides));
    }
    out
}
