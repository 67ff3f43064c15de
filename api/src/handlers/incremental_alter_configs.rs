//! IncrementalAlterConfigs (key 44): set, delete, append to or subtract from topic configs,
//! and set or delete the dynamic broker configs (the replication throttle rates), for one
//! broker or (empty name) the cluster default.

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::{RESOURCE_BROKER, config_access, topic_resource};
use super::{Ctx, HandleError, error_parts, later};
use crate::broker::{Broker, BrokerError, ConfigOp};
use crate::connection::Reply;
use crate::security::acl::Operation;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: IncrementalAlterConfigsRequest,
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
            let checked = access.and_then(|()| {
                if resource.resource_type == RESOURCE_BROKER {
                    Ok(())
                } else {
                    topic_resource(resource.resource_type)
                }
            });
            let ops = checked.and_then(|()| {
                resource
                    .configs
                    .into_iter()
                    .map(|c| {
                        let name = c.name.to_string();
                        let value = c.value.map(|v| v.to_string());
                        match (c.config_operation, value) {
                            (0, Some(v)) => Ok(ConfigOp::Set(name, v)),
                            (1, _) => Ok(ConfigOp::Delete(name)),
                            (2, Some(v)) => Ok(ConfigOp::Append(name, v)),
                            (3, Some(v)) => Ok(ConfigOp::Subtract(name, v)),
                            (0 | 2 | 3, None) => Err(BrokerError::InvalidConfig(format!(
                                "config '{name}' has a null value"
                            ))),
                            (op, _) => Err(BrokerError::InvalidRequest(format!(
                                "unknown config operation {op}"
                            ))),
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
            (resource.resource_type, resource.resource_name, ops)
        })
        .collect();
    let (broker, validate_only) = (Arc::clone(ctx.broker), request.validate_only);
    Ok(later(ctx, async move {
        let mut responses = Vec::with_capacity(planned.len());
        for (resource_type, resource_name, ops) in planned {
            let result = match ops {
                Ok(ops) if resource_type == RESOURCE_BROKER => {
                    broker
                        .alter_broker_configs(resource_name.to_string(), ops, validate_only)
                        .await
                }
                Ok(ops) => {
                    broker
                        .alter_topic_configs(resource_name.to_string(), ops, validate_only)
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
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    }))
}
