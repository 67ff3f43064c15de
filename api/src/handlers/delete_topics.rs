//! DeleteTopics (key 20): by name, or by topic id from v6.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::{Ctx, HandleError, error_parts, later, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DeleteTopicsRequest,
) -> Result<Reply, HandleError> {
    // Before v6 topics come as names; from v6 as (name or id) states.
    let targets: Vec<(Option<String>, Uuid)> = if ctx.version < 6 {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    } else {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    };
    type Target = (Uuid, Result<String, BrokerError>, Result<(), BrokerError>);
    let names: Vec<Target> = targets
        .into_iter()
        .map(|(name, topic_id)| {
            let name = match name {
                Some(name) => Ok(name),
                None => ctx
                    .broker
                    .topic_name(topic_id)
                    .ok_or(BrokerError::UnknownTopicId),
            };
            let allowed = match &name {
                Ok(name) => ctx.check(Operation::Delete, ResourceType::Topic, name),
                Err(_) => Ok(()),
            };
            (topic_id, name, allowed)
        })
        .collect();
    let (broker, version) = (Arc::clone(ctx.broker), ctx.version);
    Ok(later(ctx, async move {
        let mut responses = Vec::with_capacity(names.len());
        for (topic_id, name, allowed) in names {
            let result = match (name.clone(), allowed) {
                (Ok(n), Ok(())) => broker.delete_topic(n).await,
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            let (code, message) = error_parts(&result);
            // Topic ids exist from v6, error messages from v5.
            responses.push(
                DeletableTopicResult::default()
                    .with_name(name.ok().map(|n| TopicName(str_bytes(n))))
                    .with_topic_id(if version >= 6 {
                        result.unwrap_or(topic_id)
                    } else {
                        Uuid::nil()
                    })
                    .with_error_code(code)
                    .with_error_message(if version >= 5 { message } else { None }),
            );
        }
        DeleteTopicsResponse::default().with_responses(responses)
    }))
}
