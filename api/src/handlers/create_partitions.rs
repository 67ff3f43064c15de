//! CreatePartitions (key 37): raises a topic's partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{Ctx, HandleError, error_parts};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: CreatePartitionsRequest,
) -> Result<Reply, HandleError> {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let result = match &topic.assignments {
                Some(assignments) if assignments.len() as i64 > topic.count as i64 => {
                    Err(BrokerError::InvalidReplicaAssignment(
                        "more assignments than new partitions".into(),
                    ))
                }
                _ => ctx.broker.create_partitions(
                    topic.name.as_str(),
                    topic.count,
                    request.validate_only,
                ),
            };
            let (code, message) = error_parts(&result);
            CreatePartitionsTopicResult::default()
                .with_name(topic.name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    ctx.respond(&CreatePartitionsResponse::default().with_results(results))
}
