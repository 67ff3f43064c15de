//! `strata partitions`: partitions of a running cluster (any Kafka-compatible one) as Metadata
//! shows them, like `kafka-topics.sh --describe --under-replicated-partitions`.

use anyhow::bail;
use kafka_protocol::messages::MetadataRequest;

use crate::kafka_client::Client;

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionState {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Leader id, -1 for none.
    pub leader: i32,
    /// Replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on brokers that are down.
    pub offline: Vec<i32>,
}

impl PartitionState {
    /// Fewer in-sync replicas than replicas, or no leader.
    pub fn under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len() || self.leader < 0
    }
}

/// Every partition of the cluster behind `bootstrap`.
pub async fn all(bootstrap: &str) -> anyhow::Result<Vec<PartitionState>> {
    let mut client = Client::connect(bootstrap).await?;
    let response = client
        .call(9, &MetadataRequest::default().with_topics(None))
        .await?;
    let mut out = Vec::new();
    for topic in &response.topics {
        let Some(name) = &topic.name else { continue };
        if topic.error_code != 0 {
            bail!(
                "Metadata of topic {}: error code {}",
                name.0,
                topic.error_code
            );
        }
        for p in &topic.partitions {
            out.push(PartitionState {
                topic: name.to_string(),
                partition: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                offline: p.offline_replicas.iter().map(|b| b.0).collect(),
            });
        }
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}

/// `strata partitions under-replicated`: the partitions whose ISR lacks a replica or that
/// have no leader, as a table (a sentence when there are none).
pub async fn under_replicated(bootstrap: &str) -> anyhow::Result<String> {
    let rows: Vec<Vec<String>> = all(bootstrap)
        .await?
        .into_iter()
        .filter(PartitionState::under_replicated)
        .map(|p| {
            vec![
                p.topic,
                p.partition.to_string(),
                if p.leader < 0 {
                    "none".to_owned()
                } else {
                    p.leader.to_string()
                },
                ids(&p.replicas),
                ids(&p.isr),
                ids(&p.offline),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok("every partition has all its replicas in sync\n".to_owned());
    }
    Ok(super::table(
        &["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"],
        &rows,
    ))
}

fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
