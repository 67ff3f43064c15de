//! DescribeProducers (key 61, KIP-664): the producers a partition's leader knows, with their
//! epochs and last sequences, for finding the producer behind a hanging transaction.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::{Ctx, HandleError, error_parts};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeProducersRequest,
) -> Result<Reply, HandleError> {
    let mut topics = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let access = ctx.check(Operation::Read, ResourceType::Topic, &name);
        let partitions = topic
            .partition_indexes
            .into_iter()
            .map(|index| {
                let result = access
                    .clone()
                    .and_then(|()| ctx.broker.producers(&name, index));
                let (error_code, error_message) = error_parts(&result);
                let producers = result
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| {
                        ProducerState::default()
                            .with_producer_id(ProducerId(p.producer_id))
                            .with_producer_epoch(i32::from(p.epoch))
                            .with_last_sequence(p.last_sequence)
                            .with_last_timestamp(p.last_timestamp)
                            .with_coordinator_epoch(p.coordinator_epoch)
                            .with_current_txn_start_offset(p.current_txn_start_offset)
                    })
                    .collect();
                PartitionResponse::default()
                    .with_partition_index(index)
                    .with_error_code(error_code)
                    .with_error_message(error_message)
                    .with_active_producers(producers)
            })
            .collect();
        topics.push(
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ctx.respond(&DescribeProducersResponse::default().with_topics(topics))
}
