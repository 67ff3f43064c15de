//! IncrementalAlterConfigs (key 44): set, delete, append to or subtract from topic configs.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::describe_configs::alter_topic_resource;
use super::{Ctx, HandleError, error_parts};
use crate::broker::{Broker, BrokerError, ConfigOp};
use crate::connection::Reply;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: IncrementalAlterConfigsRequest,
) -> Result<Reply, HandleError> {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = alter_topic_resource(resource.resource_type, || {
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
                    .and_then(|ops| {
                        ctx.broker.alter_topic_configs(
                            &resource.resource_name,
                            ops,
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
    ctx.respond(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}
