//! AlterPartitionReassignments (key 45, KIP-455): starts or cancels moving partitions to new
//! replicas (`kafka-reassign-partitions.sh`, `strata partitions reassign`).

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};

use super::{Ctx, HandleError, error_parts, later, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AlterPartitionReassignmentsRequest,
) -> Result<Reply, HandleError> {
    let moves: Vec<(String, i32, Option<Vec<i32>>)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                )
            })
        })
        .collect();
    // Before v1 the replication factor may change (KIP-860 added the choice).
    let allow_rf_change = ctx.version < 1 || request.allow_replication_factor_change;
    let allowed = ctx.check(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME);
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let response = AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(allow_rf_change);
        let reassigned = match allowed {
            Ok(()) => broker.reassign_partitions(moves, allow_rf_change).await,
            Err(e) => Err(e),
        };
        let results = match reassigned {
            Ok(results) => results,
            Err(e) => {
                return response
                    .with_error_code(e.code())
                    .with_error_message(e.message().map(str_bytes));
            }
        };
        let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
        for (topic, partition, result) in results {
            let (code, message) = error_parts(&result);
            let entry = ReassignablePartitionResponse::default()
                .with_partition_index(partition)
                .with_error_code(code)
                .with_error_message(message);
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    ReassignableTopicResponse::default()
                        .with_name(TopicName(str_bytes(topic)))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        response.with_responses(topics)
    }))
}
