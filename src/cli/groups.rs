//! `strata groups`: consumer groups and their lag, as `kafka-consumer-groups.sh` shows them,
//! over the Kafka protocol from any broker of a cluster (each group from its coordinator,
//! each log end from the partition's leader); resetting a group's offsets and deleting it.

use anyhow::{Context, bail};
use clap::Subcommand;

use super::{Output, table};
use strata_api::model::GroupDetail;

use crate::admin_client::{AdminClient, OffsetReset};

/// `strata groups …`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Every group with its state.
    List,
    /// One group's committed offsets, log end offsets, lag and owners, per partition.
    Describe {
        /// The group id.
        group: String,
    },
    /// Move a group's committed offsets (the group must have no active members). Shows the
    /// new offsets; commits them only with --execute.
    ResetOffsets {
        /// The group id.
        group: String,
        /// The topic (every topic the group has offsets for when omitted).
        #[arg(long)]
        topic: Option<String>,
        /// Only these partitions of --topic (repeatable).
        #[arg(long = "partition", requires = "topic")]
        partitions: Vec<i32>,
        /// To each partition's log start.
        #[arg(long, group = "to")]
        to_earliest: bool,
        /// To each partition's end.
        #[arg(long, group = "to")]
        to_latest: bool,
        /// To this offset (kept within the log).
        #[arg(long, group = "to")]
        to_offset: Option<i64>,
        /// To the first offset at or after this time, ms since the epoch.
        #[arg(long, group = "to")]
        to_timestamp: Option<i64>,
        /// By this many records (negative: back).
        #[arg(long, group = "to", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Commit the new offsets (otherwise only show them).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups and their committed offsets (they must have no active members).
    Delete {
        /// The group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// Runs `command` against the cluster behind `bootstrap`.
pub async fn run(
    bootstrap: &str,
    command: GroupsCommand,
    output: Output,
) -> anyhow::Result<String> {
    let mut admin = AdminClient::new(bootstrap);
    match command {
        GroupsCommand::List => {
            let groups = admin.list_groups().await?;
            Ok(match output {
                Output::Json => output.json(&groups)?,
                Output::Text => {
                    let rows: Vec<Vec<String>> = groups
                        .iter()
                        .map(|g| vec![g.group.clone(), g.state.clone(), g.protocol_type.clone()])
                        .collect();
                    table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)
                }
            })
        }
        GroupsCommand::Describe { group } => {
            let overview = admin.describe_group(&group).await.map_err(|e| {
                match e.downcast_ref::<crate::admin_client::KafkaError>() {
                    Some(k) if k.is_not_found() => {
                        anyhow::anyhow!("consumer group '{group}' does not exist")
                    }
                    _ => e,
                }
            })?;
            Ok(match output {
                Output::Json => output.json(&overview)?,
                Output::Text => describe_text(&overview),
            })
        }
        GroupsCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to_earliest,
            to_latest,
            to_offset,
            to_timestamp,
            shift_by,
            execute,
        } => {
            let to = match (to_earliest, to_latest, to_offset, to_timestamp, shift_by) {
                (true, ..) => OffsetReset::Earliest,
                (_, true, ..) => OffsetReset::Latest,
                (_, _, Some(o), ..) => OffsetReset::Offset(o),
                (_, _, _, Some(t), _) => OffsetReset::Timestamp(t),
                (.., Some(n)) => OffsetReset::ShiftBy(n),
                _ => bail!(
                    "say where to: --to-earliest, --to-latest, --to-offset, --to-timestamp or --shift-by"
                ),
            };
            let partitions = (!partitions.is_empty()).then_some(partitions.as_slice());
            let offsets = admin
                .reset_offsets(&group, topic.as_deref(), partitions, to, !execute)
                .await
                .with_context(|| format!("resetting the offsets of group '{group}'"))?;
            Ok(match output {
                Output::Json => output.json(&offsets)?,
                Output::Text => {
                    let rows: Vec<Vec<String>> = offsets
                        .iter()
                        .map(|o| {
                            vec![
                                group.clone(),
                                o.topic.clone(),
                                o.partition.to_string(),
                                o.committed.map_or("-".into(), |c| c.to_string()),
                            ]
                        })
                        .collect();
                    let mut text = table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
                    if !execute {
                        text.push_str("\n(dry run: add --execute to commit these offsets)\n");
                    }
                    text
                }
            })
        }
        GroupsCommand::Delete { groups } => {
            for group in &groups {
                admin.delete_group(group).await?;
            }
            Ok(match output {
                Output::Json => output.json(&groups)?,
                Output::Text => groups
                    .iter()
                    .map(|g| format!("deleted group {g}\n"))
                    .collect(),
            })
        }
    }
}

fn describe_text(g: &GroupDetail) -> String {
    let cells: Vec<Vec<String>> = g
        .offsets
        .iter()
        .map(|o| {
            let member = o
                .member
                .as_ref()
                .and_then(|id| g.members.iter().find(|m| &m.member_id == id));
            vec![
                g.group.clone(),
                o.topic.clone(),
                o.partition.to_string(),
                o.committed.map_or("-".into(), |c| c.to_string()),
                o.log_end.to_string(),
                o.lag.map_or("-".into(), |l| l.to_string()),
                member.map_or("-".into(), |m| m.member_id.clone()),
                member.map_or("-".into(), |m| m.host.clone()),
                member.map_or("-".into(), |m| m.client_id.clone()),
            ]
        })
        .collect();
    format!(
        "Group {} is {}; total lag {}.\n\n{}",
        g.group,
        g.state,
        g.lag,
        table(
            &[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ],
            &cells,
        )
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align_columns() {
        let out = super::super::table(
            &["A", "LONG-HEADER"],
            &[
                vec!["wide-cell".into(), "x".into()],
                vec!["y".into(), "z".into()],
            ],
        );
        assert_eq!(out, "A          LONG-HEADER\nwide-cell  x\ny          z\n");
    }
}
