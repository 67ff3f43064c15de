//! `strata groups`: consumer groups and their lag, as `kafka-consumer-groups.sh` shows them,
//! read over the Kafka protocol from any broker of a cluster (each group from its coordinator,
//! each log end from the partition's leader).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolAssignment, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::kafka_client::Client;

/// Which member owns a partition.
#[derive(Debug, Clone)]
struct Owner {
    member_id: String,
    host: String,
    client_id: String,
}

/// One line of the describe table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// Log end offset (high watermark).
    pub log_end: i64,
    /// Owning member (`-` when none).
    pub member: String,
    /// Its host.
    pub host: String,
    /// Its client id.
    pub client_id: String,
}

impl LagRow {
    /// `log_end - committed`; unknown without a commit.
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end - c).max(0))
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn check(code: i16, what: &str) -> anyhow::Result<()> {
    if code != 0 {
        let error = ResponseError::try_from_code(code)
            .map_or(format!("error code {code}"), |e| format!("{e:?}"));
        bail!("{what}: {error}");
    }
    Ok(())
}

/// The cluster as `bootstrap` sees it: broker addresses by id, and the leader of each
/// partition of `topics` (all topics for `None`).
async fn cluster_view(
    client: &mut Client,
    topics: Option<Vec<String>>,
) -> anyhow::Result<(BTreeMap<i32, String>, BTreeMap<(String, i32), i32>)> {
    let request = MetadataRequest::default().with_topics(topics.map(|names| {
        names
            .into_iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(text(&n)))))
            .collect()
    }));
    let response = client.call(1, &request).await?;
    let brokers = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let mut leaders = BTreeMap::new();
    for topic in &response.topics {
        let Some(name) = &topic.name else { continue };
        for p in &topic.partitions {
            leaders.insert((name.to_string(), p.partition_index), p.leader_id.0);
        }
    }
    Ok((brokers, leaders))
}

/// `strata groups list`: every broker's groups (each lists those it coordinates).
pub async fn list(bootstrap: &str) -> anyhow::Result<String> {
    let mut client = Client::connect(bootstrap).await?;
    let (brokers, _) = cluster_view(&mut client, Some(Vec::new())).await?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for addr in brokers.values() {
        let mut broker = Client::connect(addr).await?;
        let response = broker.call(4, &ListGroupsRequest::default()).await?;
        check(response.error_code, &format!("ListGroups at {addr}"))?;
        for g in &response.groups {
            groups.insert(
                g.group_id.to_string(),
                vec![
                    g.group_id.to_string(),
                    g.group_state.to_string(),
                    g.protocol_type.to_string(),
                ],
            );
        }
    }
    let rows: Vec<Vec<String>> = groups.into_values().collect();
    Ok(super::table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows))
}

/// The lag rows and state of `group`.
pub async fn describe_rows(bootstrap: &str, group: &str) -> anyhow::Result<(String, Vec<LagRow>)> {
    let mut client = Client::connect(bootstrap).await?;
    let found = client
        .call(3, &FindCoordinatorRequest::default().with_key(text(group)))
        .await?;
    check(found.error_code, "FindCoordinator")?;
    let mut coordinator = if found.node_id == BrokerId(-1) {
        bail!("no coordinator for group {group}");
    } else {
        let addr = format!("{}:{}", found.host, found.port);
        Client::connect(&addr)
            .await
            .with_context(|| format!("the coordinator of {group} at {addr}"))?
    };
    let described = coordinator
        .call(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]),
        )
        .await?;
    let described = described
        .groups
        .into_iter()
        .next()
        .context("DescribeGroups answered no group")?;
    check(described.error_code, "DescribeGroups")?;
    let mut owners: BTreeMap<(String, i32), Owner> = BTreeMap::new();
    for member in &described.members {
        let mut bytes = member.member_assignment.clone();
        if bytes.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        bytes::Buf::advance(&mut bytes, 2);
        let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))
        else {
            continue;
        };
        for topic in assignment.assigned_partitions {
            for partition in topic.partitions {
                owners.insert(
                    (topic.topic.to_string(), partition),
                    Owner {
                        member_id: member.member_id.to_string(),
                        host: member.client_host.to_string(),
                        client_id: member.client_id.to_string(),
                    },
                );
            }
        }
    }
    let fetched = coordinator
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(text(group)))
                .with_topics(None),
        )
        .await?;
    check(fetched.error_code, "OffsetFetch")?;
    let mut committed: BTreeMap<(String, i32), Option<i64>> =
        owners.keys().map(|k| (k.clone(), None)).collect();
    for topic in &fetched.topics {
        for p in &topic.partitions {
            if p.error_code == 0 && p.committed_offset >= 0 {
                committed.insert(
                    (topic.name.to_string(), p.partition_index),
                    Some(p.committed_offset),
                );
            }
        }
    }
    if committed.is_empty() && described.group_state.as_str() == "Dead" {
        bail!("consumer group '{group}' does not exist");
    }
    let ends = log_ends(&mut client, committed.keys()).await?;
    let rows = committed
        .into_iter()
        .map(|((topic, partition), committed)| {
            let owner = owners.get(&(topic.clone(), partition));
            LagRow {
                log_end: ends.get(&(topic.clone(), partition)).copied().unwrap_or(-1),
                member: owner.map_or("-".into(), |o| o.member_id.clone()),
                host: owner.map_or("-".into(), |o| o.host.clone()),
                client_id: owner.map_or("-".into(), |o| o.client_id.clone()),
                topic,
                partition,
                committed,
            }
        })
        .collect();
    Ok((described.group_state.to_string(), rows))
}

/// Latest offsets of the partitions: one ListOffsets to each partition's leader.
async fn log_ends<'a>(
    client: &mut Client,
    partitions: impl Iterator<Item = &'a (String, i32)>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let partitions: Vec<&(String, i32)> = partitions.collect();
    let names: Vec<String> = partitions
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (brokers, leaders) = cluster_view(client, Some(names)).await?;
    let mut by_leader: BTreeMap<&str, Vec<&(String, i32)>> = BTreeMap::new();
    for key in partitions {
        let leader = leaders.get(key).and_then(|id| brokers.get(id));
        if let Some(addr) = leader {
            by_leader.entry(addr).or_default().push(key);
        }
    }
    let mut ends = BTreeMap::new();
    for (addr, partitions) in by_leader {
        let mut leader = Client::connect(addr).await?;
        ends.extend(leader_log_ends(&mut leader, partitions.into_iter()).await?);
    }
    Ok(ends)
}

/// Latest offsets of partitions led by the broker behind `client`.
async fn leader_log_ends<'a>(
    client: &mut Client,
    partitions: impl Iterator<Item = &'a (String, i32)>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(text(topic)))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_timestamp(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = client.call(7, &request).await?;
    let mut ends = BTreeMap::new();
    for topic in response.topics {
        for p in topic.partitions {
            if p.error_code == 0 {
                ends.insert((topic.name.to_string(), p.partition_index), p.offset);
            }
        }
    }
    Ok(ends)
}

/// `strata groups describe GROUP`.
pub async fn describe(bootstrap: &str, group: &str) -> anyhow::Result<String> {
    let (state, rows) = describe_rows(bootstrap, group).await?;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                group.to_owned(),
                r.topic.clone(),
                r.partition.to_string(),
                r.committed.map_or("-".into(), |c| c.to_string()),
                r.log_end.to_string(),
                r.lag().map_or("-".into(), |l| l.to_string()),
                r.member.clone(),
                r.host.clone(),
                r.client_id.clone(),
            ]
        })
        .collect();
    let total: i64 = rows.iter().filter_map(LagRow::lag).sum();
    Ok(format!(
        "Group {group} is {state}; total lag {total}.\n\n{}",
        super::table(
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
    ))
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
