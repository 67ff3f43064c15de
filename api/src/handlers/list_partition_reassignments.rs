//! ListPartitionReassignments (key 46, KIP-455): the reassignments in progress, with the
//! replicas being added and removed.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

fn ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().map(|b| BrokerId(*b)).collect()
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ListPartitionReassignmentsRequest,
) -> Result<Reply, HandleError> {
    if let Err(e) = ctx.check(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return ctx.respond(
            &ListPartitionReassignmentsResponse::default()
                .with_error_code(e.code())
                .with_error_message(e.message().map(str_bytes)),
        );
    }
    // Null topics: every reassignment; otherwise only the partitions named.
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for r in ctx.broker.reassignments() {
        if let Some(wanted) = &wanted
            && !wanted
                .iter()
                .any(|(t, ps)| *t == r.topic && ps.contains(&r.partition))
        {
            continue;
        }
        let entry = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(&r.replicas))
            .with_adding_replicas(ids(&r.adding))
            .with_removing_replicas(ids(&r.removing));
        match topics.iter_mut().find(|t| t.name.0.as_str() == r.topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(r.topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    ctx.respond(&ListPartitionReassignmentsResponse::default().with_topics(topics))
}
