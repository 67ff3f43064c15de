//! DescribeQuorum (key 55, KIP-595/KIP-853): the metadata quorum's leader, voters and
//! observers, as `kafka-metadata-quorum.sh` and `Admin.describeMetadataQuorum` show them.
//! Brokers answer it from the active controller, as KRaft brokers forward it there.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use uuid::Uuid;

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::{Broker, BrokerError, QuorumReplica};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// The only partition of the quorum: KRaft's metadata log.
const METADATA_TOPIC: &str = "__cluster_metadata";

fn replica(r: &QuorumReplica) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(r.id))
        .with_replica_directory_id(Uuid::nil())
        .with_log_end_offset(r.log_end_offset)
        .with_last_fetch_timestamp(r.last_fetch_ms)
        .with_last_caught_up_timestamp(r.last_caught_up_ms)
}

/// Error messages exist from v2 on.
fn message(e: &BrokerError, version: i16) -> Option<kafka_protocol::protocol::StrBytes> {
    e.message().filter(|_| version >= 2).map(str_bytes)
}

fn failed(e: &BrokerError, version: i16) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default()
        .with_error_code(e.code())
        .with_error_message(message(e, version))
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeQuorumRequest,
) -> Result<Reply, HandleError> {
    if let Err(e) = ctx.check(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return ctx.respond(&failed(&e, ctx.version));
    }
    // Kafka answers a request for anything but the metadata partition as a bad request.
    let asks_metadata_log = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_metadata_log {
        return ctx.respond(&failed(
            &BrokerError::InvalidRequest(format!(
                "DescribeQuorum describes only {METADATA_TOPIC} partition 0"
            )),
            ctx.version,
        ));
    }
    let broker = Arc::clone(ctx.broker);
    let version = ctx.version;
    Ok(later(ctx, async move {
        let partition = PartitionData::default().with_partition_index(0);
        let (partition, nodes) = match broker.quorum().await {
            Err(e) => (
                partition
                    .with_error_code(e.code())
                    .with_error_message(message(&e, version)),
                Vec::new(),
            ),
            Ok(quorum) => (
                partition
                    .with_leader_id(BrokerId(quorum.leader_id))
                    .with_leader_epoch(quorum.leader_epoch)
                    .with_high_watermark(quorum.high_watermark)
                    .with_current_voters(quorum.voters.iter().map(replica).collect())
                    .with_observers(quorum.observers.iter().map(replica).collect()),
                quorum
                    .endpoints
                    .into_iter()
                    .map(|(id, host, port)| {
                        Node::default()
                            .with_node_id(BrokerId(id))
                            .with_listeners(vec![
                                Listener::default()
                                    .with_name(str_bytes("CONTROLLER"))
                                    .with_host(str_bytes(host))
                                    .with_port(port),
                            ])
                    })
                    .collect(),
            ),
        };
        DescribeQuorumResponse::default()
            .with_topics(vec![
                TopicData::default()
                    .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
                    .with_partitions(vec![partition]),
            ])
            .with_nodes(if version >= 2 { nodes } else { Vec::new() })
    }))
}
