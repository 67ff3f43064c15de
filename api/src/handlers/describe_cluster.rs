//! DescribeCluster (key 60): the cluster id, controller and brokers, for admin clients.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{CLUSTER_OPERATIONS, Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// Endpoint type 1 asks for brokers; 2 (controllers, KIP-919) is not served by brokers.
const BROKER_ENDPOINTS: i8 = 1;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeClusterRequest,
) -> Result<Reply, HandleError> {
    let cluster = ctx.broker.cluster(&ctx.session.listener.name);
    let operations = if request.include_cluster_authorized_operations {
        ctx.authorized_operations(CLUSTER_OPERATIONS, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        i32::MIN
    };
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(cluster.cluster_id))
        .with_controller_id(BrokerId(cluster.controller_id))
        .with_endpoint_type(BROKER_ENDPOINTS)
        .with_cluster_authorized_operations(operations);
    if let Err(e) = ctx.check(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return ctx.respond(
            &response
                .with_error_code(e.code())
                .with_error_message(e.message().map(str_bytes)),
        );
    }
    if ctx.version >= 1 && request.endpoint_type != BROKER_ENDPOINTS {
        let e = BrokerError::Unsupported(format!(
            "endpoint type {} is not served by brokers",
            request.endpoint_type
        ));
        response = response
            .with_error_code(e.code())
            .with_error_message(e.message().map(str_bytes));
    } else {
        response = response.with_brokers(
            cluster
                .brokers
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.node_id))
                        .with_host(str_bytes(b.host))
                        .with_port(b.port)
                        .with_rack(b.rack.map(str_bytes))
                })
                .collect(),
        );
    }
    ctx.respond(&response)
}
