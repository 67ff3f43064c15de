//! DescribeConfigs (key 32): effective topic and broker configs with their sources.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError, ConfigEntry};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// Kafka's `ConfigResource.Type` codes.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// Runs `alter` for a topic resource. Broker configs are static (set at start), and other
/// resource types do not exist here: both are refused with a message saying so.
/// Checks that an alter request names a topic, the only resource with dynamic configs.
pub(super) fn topic_resource(resource_type: i8) -> Result<(), BrokerError> {
    match resource_type {
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER => Err(BrokerError::InvalidRequest(
            "dynamic broker configs are not supported; restart with the new value".into(),
        )),
        other => Err(BrokerError::InvalidRequest(format!(
            "resource type {other} is not supported"
        ))),
    }
}

/// Whether the principal may do `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS) on a config
/// resource: a topic's configs are the topic's, a broker's the cluster's.
pub(super) fn config_access<B: Broker>(
    ctx: &Ctx<'_, B>,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Result<(), BrokerError> {
    match resource_type {
        RESOURCE_TOPIC => ctx.check(operation, ResourceType::Topic, name),
        RESOURCE_BROKER => ctx.check(operation, ResourceType::Cluster, CLUSTER_NAME),
        _ => Ok(()),
    }
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeConfigsRequest,
) -> Result<Reply, HandleError> {
    let cluster = ctx.broker.cluster(&ctx.session.listener.name);
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let access = config_access(
                ctx,
                resource.resource_type,
                &name,
                Operation::DescribeConfigs,
            );
            let configs = match resource.resource_type {
                _ if access.is_err() => access.map(|()| Vec::new()),
                RESOURCE_TOPIC => ctx.broker.topic_configs(&name),
                RESOURCE_BROKER if name.is_empty() || name == cluster.node_id.to_string() => {
                    Ok(ctx.broker.broker_configs())
                }
                RESOURCE_BROKER => Err(BrokerError::InvalidRequest(format!(
                    "broker '{name}' is not this broker ({})",
                    cluster.node_id
                ))),
                other => Err(BrokerError::InvalidRequest(format!(
                    "resource type {other} is not supported"
                ))),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match configs {
                Ok(configs) => {
                    let wanted = resource
                        .configuration_keys
                        .map(|keys| keys.into_iter().map(|k| k.to_string()).collect::<Vec<_>>());
                    let entries = configs
                        .into_iter()
                        .filter(|c| wanted.as_ref().is_none_or(|w| w.contains(&c.name)))
                        .map(|c| entry(c, request.include_documentation, ctx.version))
                        .collect();
                    result.with_configs(entries)
                }
                Err(e) => result
                    .with_error_code(e.code())
                    .with_error_message(e.message().map(str_bytes)),
            }
        })
        .collect();
    ctx.respond(&DescribeConfigsResponse::default().with_results(results))
}

/// Types and documentation exist from v3.
fn entry(
    config: ConfigEntry,
    include_documentation: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let entry = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(config.name))
        .with_value(config.value.map(str_bytes))
        .with_read_only(config.read_only)
        .with_is_sensitive(config.sensitive)
        .with_config_source(config.source as i8);
    if version < 3 {
        return entry;
    }
    entry
        .with_config_type(config.config_type)
        .with_documentation(if include_documentation {
            config.documentation.map(str_bytes)
        } else {
            None
        })
}
