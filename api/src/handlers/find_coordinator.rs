//! FindCoordinator (key 10): the leader of a group's `__consumer_offsets` partition
//! coordinates it, and of a transactional id's `__transaction_state` partition; one key
//! before v4, a batch of keys from v4.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{Ctx, HandleError, error_parts, later, str_bytes};
use crate::broker::{Broker, BrokerError, BrokerNode};
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::TransactionCoordinator;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: FindCoordinatorRequest,
) -> Result<Reply, HandleError> {
    let (broker, version) = (Arc::clone(ctx.broker), ctx.version);
    let listener = ctx.session.listener.name.clone();
    // DESCRIBE on the group, or on the transactional id, for each key asked about.
    let resource_type = match request.key_type {
        TRANSACTION_KEY => ResourceType::TransactionalId,
        _ => ResourceType::Group,
    };
    let keys: Vec<String> = if version < 4 {
        vec![request.key.to_string()]
    } else {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    };
    let allowed: HashMap<String, Result<(), BrokerError>> = keys
        .into_iter()
        .map(|key| {
            let allowed = ctx.check(Operation::Describe, resource_type, &key);
            (key, allowed)
        })
        .collect();
    Ok(later(ctx, async move {
        let find = async |key: String| -> Result<BrokerNode, BrokerError> {
            if let Some(Err(e)) = allowed.get(&key) {
                return Err(e.clone());
            }
            match request.key_type {
                GROUP_KEY => {
                    let node = broker.groups().find_coordinator(key).await?;
                    // The coordinator as this listener's clients reach it.
                    broker
                        .cluster(&listener)
                        .brokers
                        .into_iter()
                        .find(|b| b.node_id == node.node_id)
                        .ok_or(BrokerError::CoordinatorNotAvailable)
                }
                TRANSACTION_KEY if !key.is_empty() => {
                    let node = broker.txns().find_coordinator(key).await?;
                    broker
                        .cluster(&listener)
                        .brokers
                        .into_iter()
                        .find(|b| b.node_id == node.node_id)
                        .ok_or(BrokerError::CoordinatorNotAvailable)
                }
                TRANSACTION_KEY => {
                    Err(BrokerError::InvalidRequest("empty transactional id".into()))
                }
                other => Err(BrokerError::InvalidRequest(format!(
                    "coordinator key type {other} is not served"
                ))),
            }
        };
        let mut response = FindCoordinatorResponse::default();
        if version < 4 {
            let result = find(request.key.to_string()).await;
            let (code, message) = error_parts(&result);
            response = response
                .with_error_code(code)
                .with_error_message(if version >= 1 { message } else { None });
            response = match result {
                Ok(node) => response
                    .with_node_id(BrokerId(node.node_id))
                    .with_host(str_bytes(node.host))
                    .with_port(node.port),
                Err(_) => response.with_node_id(BrokerId(-1)).with_port(-1),
            };
        } else {
            let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
            for key in &request.coordinator_keys {
                let result = find(key.to_string()).await;
                let (code, message) = error_parts(&result);
                let (node_id, host, port) = match result {
                    Ok(node) => (node.node_id, node.host, node.port),
                    Err(_) => (-1, String::new(), -1),
                };
                coordinators.push(
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(node_id))
                        .with_host(str_bytes(host))
                        .with_port(port)
                        .with_error_code(code)
                        .with_error_message(message),
                );
            }
            response = response.with_coordinators(coordinators);
        }
        response
    }))
}
