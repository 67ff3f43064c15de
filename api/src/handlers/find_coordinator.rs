//! FindCoordinator (key 10): this node coordinates every group (and, later, every
//! transactional id); one key before v4, a batch of keys from v4.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{Ctx, HandleError, error_parts, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::GroupCoordinator;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: FindCoordinatorRequest,
) -> Result<Reply, HandleError> {
    let cluster = ctx.broker.cluster();
    let find = |key: &str| -> Result<(), BrokerError> {
        match request.key_type {
            GROUP_KEY => ctx.broker.groups().find_coordinator(key),
            // One node: it will coordinate transactions too once they exist.
            TRANSACTION_KEY if !key.is_empty() => Ok(()),
            TRANSACTION_KEY => Err(BrokerError::InvalidRequest("empty transactional id".into())),
            other => Err(BrokerError::InvalidRequest(format!(
                "coordinator key type {other} is not served"
            ))),
        }
    };
    let mut response = FindCoordinatorResponse::default();
    if ctx.version < 4 {
        let result = find(&request.key);
        let (code, message) = error_parts(&result);
        response = response
            .with_error_code(code)
            .with_error_message(if ctx.version >= 1 { message } else { None });
        if result.is_ok() {
            response = response
                .with_node_id(BrokerId(cluster.node_id))
                .with_host(str_bytes(cluster.host.clone()))
                .with_port(cluster.port);
        } else {
            response = response.with_node_id(BrokerId(-1)).with_port(-1);
        }
    } else {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let result = find(key);
                let (code, message) = error_parts(&result);
                let ok = result.is_ok();
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(if ok { cluster.node_id } else { -1 }))
                    .with_host(if ok {
                        str_bytes(cluster.host.clone())
                    } else {
                        str_bytes("")
                    })
                    .with_port(if ok { cluster.port } else { -1 })
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        response = response.with_coordinators(coordinators);
    }
    ctx.respond(&response)
}
