//! AlterConfigs (key 33): replaces all of a topic's config overrides.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::describe_configs::alter_topic_resource;
use super::{Ctx, HandleError, error_parts};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AlterConfigsRequest,
) -> Result<Reply, HandleError> {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = alter_topic_resource(resource.resource_type, || {
                resource
                    .configs
                    .into_iter()
                    .map(|c| match c.value {
                        Some(value) => Ok((c.name.to_string(), value.to_string())),
                        None => Err(BrokerError::InvalidConfig(format!(
                            "config '{}' has a null value",
                            c.name.as_str()
                        ))),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .and_then(|configs| {
                        ctx.broker.replace_topic_configs(
                            &resource.resource_name,
                            configs,
                            request.validate_only,
                        )
                    })
            });
            let (code, message) = error_parts(&result);
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    ctx.respond(&AlterConfigsResponse::default().with_responses(responses))
}
