//! CreatePartitions (key 37): raises a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{Ctx, HandleError, error_parts, later};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: CreatePartitionsRequest,
) -> Result<Reply, HandleError> {
    let planned: Vec<_> = request
        .topics
        .into_iter()
        .map(|topic| {
            let assignments: Vec<Vec<i32>> = topic
                .assignments
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
                .collect();
            let allowed = ctx.check(Operation::Alter, ResourceType::Topic, &topic.name);
            (topic.name, topic.count, assignments, allowed)
        })
        .collect();
    let (broker, validate_only) = (Arc::clone(ctx.broker), request.validate_only);
    Ok(later(ctx, async move {
        let mut results = Vec::with_capacity(planned.len());
        for (name, count, assignments, allowed) in planned {
            let result = if let Err(e) = allowed {
                Err(e)
            } else if assignments.len() as i64 > count as i64 {
                Err(BrokerError::InvalidReplicaAssignment(
                    "more assignments than new partitions".into(),
                ))
            } else {
                broker
                    .create_partitions(name.to_string(), count, assignments, validate_only)
                    .await
            };
            let (code, message) = error_parts(&result);
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(name)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        CreatePartitionsResponse::default().with_results(results)
    }))
}
