//! Writing a transaction's markers to its partitions: WriteTxnMarkers to each partition's
//! leader, this broker included (one path for all, so a marker always lands through the leader's
//! produce path and its hooks), retried through leader changes until every partition has its
//! marker or is gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::kafka_client::pool::BrokerConnections;
use crate::metadata_cache::MetadataCache;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

/// Longest one WriteTxnMarkers may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before retrying partitions whose leader could not take their marker.
const RETRY: Duration = Duration::from_millis(100);
/// Error codes after which a partition needs no marker: its topic is gone.
const GONE: [i16; 2] = [3, 100];
/// Error codes no retry can change: the partition's producer moved to a newer epoch, or a
/// newer coordinator wrote to it (Kafka's coordinator gives up these markers too).
const REFUSED: [i16; 2] = [47, 52];

/// One marker: whose transaction, how it ends, and from which coordinator.
#[derive(Debug, Clone, Copy)]
pub struct MarkerSpec {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Commit or abort.
    pub commit: bool,
    /// The coordinator's epoch.
    pub coordinator_epoch: i32,
}

/// Connections to the brokers markers go to, one request at a time per broker.
#[derive(Debug)]
pub struct MarkerSender {
    connections: BrokerConnections,
}

impl Default for MarkerSender {
    fn default() -> Self {
        Self {
            connections: BrokerConnections::new("strata-txn-markers", REQUEST_TIMEOUT),
        }
    }
}

fn request(spec: MarkerSpec, partitions: &[(String, i32)]) -> WriteTxnMarkersRequest {
    let topics = super::by_topic(partitions)
        .into_iter()
        .map(|(topic, indexes)| {
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partition_indexes(indexes)
        })
        .collect();
    WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(spec.producer_id))
            .with_producer_epoch(spec.producer_epoch)
            .with_transaction_result(spec.commit)
            .with_coordinator_epoch(spec.coordinator_epoch)
            .with_topics(topics),
    ])
}

impl MarkerSender {
    /// Writes the marker to every partition; returns once all have it (or are gone), or
    /// `false` as soon as `still_coordinator` says this broker no longer coordinates the
    /// transaction (the next coordinator finishes it).
    pub async fn write_all(
        &self,
        metadata: &Arc<MetadataCache>,
        spec: MarkerSpec,
        partitions: &BTreeSet<(String, i32)>,
        still_coordinator: impl Fn() -> bool,
    ) -> bool {
        let mut remaining: Vec<(String, i32)> = partitions.iter().cloned().collect();
        while !remaining.is_empty() {
            if !still_coordinator() {
                return false;
            }
            let by_leader = {
                let image = metadata.image();
                let mut by_leader: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
                remaining.retain(|(topic, index)| {
                    let Some(p) = image.topic(topic).and_then(|t| t.partitions.get(index)) else {
                        return false;
                    };
                    by_leader
                        .entry(p.leader)
                        .or_default()
                        .push((topic.clone(), *index));
                    true
                });
                by_leader
            };
            let mut failed = Vec::new();
            for (leader, partitions) in by_leader {
                match self.send(metadata, leader, spec, &partitions).await {
                    Ok(results) => {
                        for (partition, code) in partitions.into_iter().zip(results) {
                            if REFUSED.contains(&code) {
                                tracing::warn!(topic = %partition.0, partition = partition.1, code, producer_id = spec.producer_id, "transaction marker refused for good");
                            } else if code != 0 && !GONE.contains(&code) {
                                failed.push(partition);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(leader, "transaction markers not written yet: {e:#}");
                        failed.extend(partitions);
                    }
                }
            }
            remaining = failed;
            if !remaining.is_empty() {
                tokio::time::sleep(RETRY).await;
            }
        }
        true
    }

    /// One WriteTxnMarkers to `leader`; each partition's error code, in order.
    async fn send(
        &self,
        metadata: &Arc<MetadataCache>,
        leader: i32,
        spec: MarkerSpec,
        partitions: &[(String, i32)],
    ) -> anyhow::Result<Vec<i16>> {
        let response = self
            .connections
            .call(metadata, leader, 1, &request(spec, partitions))
            .await?;
        let codes = partitions
            .iter()
            .map(|(topic, index)| {
                response
                    .markers
                    .iter()
                    .flat_map(|m| &m.topics)
                    .filter(|t| t.name.0.as_str() == topic)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == *index)
                    .map_or(-1, |p| p.error_code)
            })
            .collect();
        Ok(codes)
    }
}
