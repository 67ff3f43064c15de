//! AlterConfigs (key 33): replaces all of a topic's config overrides.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::describe_configs::{config_access, topic_resource};
use super::{Ctx, HandleError, error_parts, later};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::Operation;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: AlterConfigsRequest,
) -> Result<Reply, HandleError> {
    let planned: Vec<_> = request
        .resources
        .into_iter()
        .map(|resource| {
            let access = config_access(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                Operation::AlterConfigs,
            );
            let configs = access
                .and_then(|()| topic_resource(resource.resource_type))
                .and_then(|()| {
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
                });
            (resource.resource_type, resource.resource_name, configs)
        })
        .collect();
    let (broker, validate_only) = (Arc::clone(ctx.broker), request.validate_only);
    Ok(later(ctx, async move {
        let mut responses = Vec::with_capacity(planned.len());
        for (resource_type, resource_name, configs) in planned {
            let result = match configs {
                Ok(configs) => {
                    broker
                        .replace_topic_configs(resource_name.to_string(), configs, validate_only)
                        .await
                }
                Err(e) => Err(e),
            };
            let (code, message) = error_parts(&result);
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(resource_name)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        AlterConfigsResponse::default().with_responses(responses)
    }))
}
