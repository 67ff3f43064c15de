//! ListConfigResources (key 74; v0 was KIP-714's ListClientMetricsResources, v1 is KIP-1142):
//! the resources that have configs, by type, so tools can list and then describe them.

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// Client-metrics subscriptions (KIP-714): Strata has none to configure.
const RESOURCE_CLIENT_METRICS: i8 = 16;
/// Groups with dynamic configs: Strata has none to configure.
const RESOURCE_GROUP: i8 = 32;

/// The types served, per version. Broker loggers (8) are not: DescribeConfigs does not
/// serve them either.
fn served(version: i16) -> &'static [i8] {
    if version == 0 {
        &[RESOURCE_CLIENT_METRICS]
    } else {
        &[
            RESOURCE_TOPIC,
            RESOURCE_BROKER,
            RESOURCE_CLIENT_METRICS,
            RESOURCE_GROUP,
        ]
    }
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ListConfigResourcesRequest,
) -> Result<Reply, HandleError> {
    let response = ListConfigResourcesResponse::default();
    if let Err(e) = ctx.check(
        Operation::DescribeConfigs,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        return ctx.respond(&response.with_error_code(e.code()));
    }
    let served = served(ctx.version);
    // An empty list (and v0, which has none) asks for every type served.
    let wanted: Vec<i8> = if request.resource_types.is_empty() {
        served.to_vec()
    } else {
        request.resource_types
    };
    if wanted.iter().any(|t| !served.contains(t)) {
        let e = BrokerError::Unsupported("a resource type that is not listed".into());
        return ctx.respond(&response.with_error_code(e.code()));
    }
    let mut resources = Vec::new();
    let mut add = |resource_type: i8, names: Vec<String>| {
        resources.extend(names.into_iter().map(|name| {
            ConfigResource::default()
                .with_resource_name(str_bytes(name))
                .with_resource_type(resource_type)
        }));
    };
    if wanted.contains(&RESOURCE_TOPIC) {
        let mut topics = ctx.broker.topic_names();
        topics.sort_unstable();
        add(RESOURCE_TOPIC, topics);
    }
    if wanted.contains(&RESOURCE_BROKER) {
        let cluster = ctx.broker.cluster(&ctx.session.listener.name);
        let mut ids: Vec<i32> = cluster.brokers.iter().map(|b| b.node_id).collect();
        ids.sort_unstable();
        add(RESOURCE_BROKER, ids.iter().map(i32::to_string).collect());
    }
    ctx.respond(&response.with_config_resources(resources))
}
