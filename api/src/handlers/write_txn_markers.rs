//! WriteTxnMarkers (key 27): a transaction coordinator (or an admin aborting a hanging
//! transaction, KIP-664) ends a producer's transaction on partitions this broker leads, by
//! appending a commit or abort marker to each. Each partition answers once its marker is
//! replicated to the in-sync replicas.

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::{Ctx, HandleError, later};
use crate::broker::{Broker, BrokerError, TxnMarker};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: WriteTxnMarkersRequest,
) -> Result<Reply, HandleError> {
    // Only brokers (and admins acting as one) end transactions.
    let access = ctx.check(
        Operation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let mut results = Vec::new();
        for marker in request.markers {
            let written = TxnMarker {
                producer_id: marker.producer_id.0,
                producer_epoch: marker.producer_epoch,
                commit: marker.transaction_result,
                coordinator_epoch: marker.coordinator_epoch,
            };
            let mut topics = Vec::new();
            for topic in marker.topics {
                let name = topic.name.0.to_string();
                let partitions = join_all(topic.partition_indexes.iter().copied().map(|index| {
                    let (broker, name, access) = (&broker, &name, access.clone());
                    async move {
                        let result: Result<(), BrokerError> = match access {
                            Ok(()) => broker.write_txn_marker(name, index, written).await,
                            Err(e) => Err(e),
                        };
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(index)
                            .with_error_code(result.err().map_or(0, |e| e.code()))
                    }
                }))
                .await;
                topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name)
                        .with_partitions(partitions),
                );
            }
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(marker.producer_id)
                    .with_topics(topics),
            );
        }
        WriteTxnMarkersResponse::default().with_markers(results)
    }))
}
