//! `MetadataCache`: the metadata image as this broker has applied it (Kafka's
//! `KRaftMetadataCache`), and the offset up to which the broker acted on it, for requests that
//! wait to see their own change.

use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use strata_api::broker::{BrokerNode, PartitionMetadata, TopicMetadata};
use strata_controller::{MetadataImage, TopicImage};
use tokio::sync::watch;

/// How long a request waits for this broker's image to show its change.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// The applied metadata image.
#[derive(Debug)]
pub struct MetadataCache {
    image: RwLock<MetadataImage>,
    /// The image's offset once the broker acted on it.
    applied: watch::Sender<u64>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self {
            image: RwLock::new(MetadataImage::default()),
            applied: watch::Sender::new(0),
        }
    }
}

impl MetadataCache {
    /// The image.
    pub fn image(&self) -> RwLockReadGuard<'_, MetadataImage> {
        self.image.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the image (the metadata follower only).
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut MetadataImage) -> T) -> T {
        let mut image = self.image.write().unwrap_or_else(|p| p.into_inner());
        change(&mut image)
    }

    /// Tells waiting requests that the image, and what the broker did about it, reached
    /// `offset`.
    pub(crate) fn publish_applied(&self, offset: u64) {
        self.applied.send_replace(offset);
    }

    /// Waits (bounded) until the broker has acted on the image up to `offset`.
    pub(crate) async fn wait_applied(&self, offset: u64) {
        let mut applied = self.applied.subscribe();
        if tokio::time::timeout(APPLY_WAIT, applied.wait_for(|o| *o >= offset))
            .await
            .is_err()
        {
            tracing::warn!(offset, "metadata change committed but not applied here yet");
        }
    }

    /// The cluster id (empty before the broker registered).
    pub fn cluster_id(&self) -> String {
        self.image().cluster_id.clone().unwrap_or_default()
    }

    /// Whether the cluster has this partition (wherever it is hosted).
    pub fn partition_exists(&self, topic: &str, index: i32) -> bool {
        self.image()
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&index))
    }
}

/// A topic as Metadata reports it.
pub(crate) fn topic_metadata(image: &MetadataImage, topic: &TopicImage) -> TopicMetadata {
    TopicMetadata {
        name: topic.name.clone(),
        topic_id: topic.id,
        partitions: topic
            .partitions
            .iter()
            .map(|(index, p)| PartitionMetadata {
                index: *index,
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline_replicas: p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !image.is_active(*r))
                    .collect(),
            })
            .collect(),
        is_internal: topic.name.starts_with("__"),
    }
}

/// The name brokers register their admin HTTP API under, beside their Kafka listener.
pub const ADMIN_LISTENER: &str = "ADMIN";

/// The admin API (`host:port`) broker `id` registered, if any.
pub(crate) fn admin_endpoint(image: &MetadataImage, id: i32) -> Option<String> {
    let broker = image.brokers.get(&id)?;
    let endpoint = broker.listeners.iter().find(|e| e.name == ADMIN_LISTENER)?;
    Some(format!("{}:{}", endpoint.host, endpoint.port))
}

/// Broker `id` as other brokers reach it (its inter-broker listener, registered first), if
/// registered and unfenced.
pub(crate) fn live_node(image: &MetadataImage, id: i32) -> Option<BrokerNode> {
    let broker = image.brokers.get(&id).filter(|b| !b.fenced)?;
    node(broker, broker.listeners.first()?)
}

/// Broker `id` as clients of listener `listener` reach it, if registered and unfenced; a
/// broker without that listener is not reachable there (Kafka leaves it out too).
pub(crate) fn live_node_on(image: &MetadataImage, id: i32, listener: &str) -> Option<BrokerNode> {
    let broker = image.brokers.get(&id).filter(|b| !b.fenced)?;
    node(
        broker,
        broker.listeners.iter().find(|e| e.name == listener)?,
    )
}

fn node(
    broker: &strata_controller::image::BrokerRegistration,
    endpoint: &strata_controller::record::Endpoint,
) -> Option<BrokerNode> {
    Some(BrokerNode {
        node_id: broker.id,
        host: endpoint.host.clone(),
        port: endpoint.port as i32,
        rack: broker.rack.clone(),
    })
}
