//! ElectLeaders (key 43, KIP-460): moves leadership to preferred replicas, or elects an
//! out-of-sync leader for leaderless partitions when asked for an unclean election
//! (`kafka-leader-election.sh`, `strata partitions elect-leaders`).

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::{Ctx, HandleError, error_parts, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// Kafka's election types.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ElectLeadersRequest,
) -> Result<Reply, HandleError> {
    // v0 has no election type: preferred.
    let election = if ctx.version == 0 {
        PREFERRED
    } else {
        request.election_type
    };
    let partitions: Option<Vec<(String, i32)>> = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let allowed = ctx.check(Operation::Alter, ResourceType::Cluster, CLUSTER_NAME);
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let response = ElectLeadersResponse::default();
        let outcome = match election {
            _ if allowed.is_err() => allowed.map(|()| Vec::new()),
            PREFERRED | UNCLEAN => broker.elect_leaders(election == UNCLEAN, partitions).await,
            other => Err(BrokerError::InvalidRequest(format!(
                "unknown election type {other}"
            ))),
        };
        let results = match outcome {
            Ok(results) => results,
            Err(e) => return response.with_error_code(e.code()),
        };
        let mut topics: Vec<ReplicaElectionResult> = Vec::new();
        for (topic, partition, result) in results {
            let (code, message) = error_parts(&result);
            let entry = PartitionResult::default()
                .with_partition_id(partition)
                .with_error_code(code)
                .with_error_message(message);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                Some(t) => t.partition_result.push(entry),
                None => topics.push(
                    ReplicaElectionResult::default()
                        .with_topic(TopicName(str_bytes(topic)))
                        .with_partition_result(vec![entry]),
                ),
            }
        }
        response.with_replica_election_results(topics)
    }))
}
