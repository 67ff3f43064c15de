//! Consumer offset sync: the committed offsets of the source's groups that a link's `groups`
//! filter matches are committed here, on the mirror topics, unchanged (the offsets are the
//! same on both sides), unless the group is active here. A consumer that fails over resumes
//! where its group was on the source, or earlier if the mirror had not caught up: an offset
//! is never committed above the mirror's high watermark.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strata_controller::ClusterLink;

use super::discovery::compile;
use super::source::{self, CLIENT_ID, SOURCE_TIMEOUT};
use crate::broker::StrataBroker;
use crate::kafka_client::Client;

/// (local topic, partition) → (offset, metadata).
type Offsets = BTreeMap<(String, i32), (i64, Option<StrBytes>)>;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A connection to a broker of this cluster (with this broker's client security).
async fn connect(addr: &str) -> anyhow::Result<Client> {
    Client::connect_as(addr, CLIENT_ID, SOURCE_TIMEOUT).await
}

/// Which cluster a connection goes to.
#[derive(Clone, Copy)]
enum Side<'a> {
    Source(&'a source::Source),
    Here,
}

/// The coordinator of `group` in the cluster `client` talks to.
async fn coordinator(client: &mut Client, group: &str, side: Side<'_>) -> anyhow::Result<Client> {
    let found = client
        .call(3, &FindCoordinatorRequest::default().with_key(text(group)))
        .await?;
    if found.error_code != 0 || found.node_id == BrokerId(-1) {
        bail!(
            "no coordinator for group {group} (error code {})",
            found.error_code
        );
    }
    let addr = format!("{}:{}", found.host, found.port);
    match side {
        Side::Source(source) => source.connect(&addr).await,
        Side::Here => connect(&addr).await,
    }
}

/// Copies the offsets of the link's groups once; returns how many groups were synced.
pub(super) async fn sync(broker: &StrataBroker, link: &ClusterLink) -> anyhow::Result<usize> {
    let Some(pattern) = &link.config.groups else {
        return Ok(0);
    };
    let groups_filter = compile(pattern).context("the link's groups filter")?;
    // Source topic → (mirror topic, partition leaders here), for mirrors still following.
    let mirrors: HashMap<String, (String, Vec<(i32, i32)>)> = {
        let image = broker.image();
        image
            .topics
            .values()
            .filter(|t| t.is_mirroring())
            .filter_map(|t| {
                let m = t.mirror.as_ref().filter(|m| m.link == link.name)?;
                let leaders = t.partitions.iter().map(|(i, p)| (*i, p.leader)).collect();
                Some((m.source_topic.clone(), (t.name.clone(), leaders)))
            })
            .collect()
    };
    if mirrors.is_empty() {
        return Ok(0);
    }
    let source = source::Source::of(&link.config)?;
    let metadata = source.metadata().await?;
    let mut groups = Vec::new();
    for addr in metadata.brokers.values() {
        let mut client = source.connect(addr).await?;
        let listed = client.call(4, &ListGroupsRequest::default()).await?;
        groups.extend(
            listed
                .groups
                .iter()
                .map(|g| g.group_id.0.to_string())
                .filter(|g| groups_filter.is_match(g)),
        );
    }
    let mut source_client = source.connect_any().await?;
    let (host, port) = &broker.config().advertised;
    let mut own = connect(&format!("{host}:{port}")).await?;
    // Mirror high watermarks, read once per pass.
    let mut ends: HashMap<String, HashMap<i32, i64>> = HashMap::new();
    let mut synced = 0;
    for group in groups {
        let mut coordinator_there =
            coordinator(&mut source_client, &group, Side::Source(&source)).await?;
        let fetched = coordinator_there
            .call(
                7,
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(text(&group)))
                    .with_topics(None),
            )
            .await?;
        if fetched.error_code != 0 {
            continue;
        }
        let mut offsets = Offsets::new();
        for topic in &fetched.topics {
            let Some((local, leaders)) = mirrors.get(topic.name.0.as_str()) else {
                continue;
            };
            if !ends.contains_key(local) {
                let found = broker.mirror_ends(local, leaders).await;
                ends.insert(
                    local.clone(),
                    found.into_iter().map(|(p, (end, _))| (p, end)).collect(),
                );
            }
            for p in &topic.partitions {
                if p.error_code != 0 || p.committed_offset < 0 {
                    continue;
                }
                let Some(end) = ends[local].get(&p.partition_index) else {
                    continue;
                };
                offsets.insert(
                    (local.clone(), p.partition_index),
                    (p.committed_offset.min(*end), p.metadata.clone()),
                );
            }
        }
        if offsets.is_empty() {
            continue;
        }
        let mut coordinator_here = coordinator(&mut own, &group, Side::Here).await?;
        let described = coordinator_here
            .call(
                5,
                &DescribeGroupsRequest::default().with_groups(vec![GroupId(text(&group))]),
            )
            .await?;
        let state = described
            .groups
            .first()
            .map(|g| g.group_state.to_string())
            .unwrap_or_default();
        if !matches!(state.as_str(), "Empty" | "Dead" | "") {
            // Consumers use the group here: their commits win.
            continue;
        }
        commit(&mut coordinator_here, &group, offsets).await?;
        synced += 1;
    }
    Ok(synced)
}

async fn commit(client: &mut Client, group: &str, offsets: Offsets) -> anyhow::Result<()> {
    let mut topics: BTreeMap<String, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), (offset, metadata)) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(metadata),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(text(&name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = client.call(8, &request).await?;
    for topic in &response.topics {
        for p in &topic.partitions {
            if p.error_code != 0 {
                bail!(
                    "committing {group}'s offset of {}-{} answered error code {}",
                    topic.name.0,
                    p.partition_index,
                    p.error_code
                );
            }
        }
    }
    Ok(())
}
