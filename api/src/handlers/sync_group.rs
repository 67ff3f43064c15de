//! SyncGroup (key 14): the leader hands in the assignment; every member gets its own share
//! once the leader's has arrived.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{Ctx, HandleError, later, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::{GroupCoordinator, SyncGroup};
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: SyncGroupRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let sync = SyncGroup {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let (protocol_type, protocol_name) = (sync.protocol_type.clone(), sync.protocol_name.clone());
    let allowed = ctx.check(Operation::Read, ResourceType::Group, &sync.group_id);
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let result = match allowed {
            Ok(()) => broker.groups().sync_group(sync).await,
            Err(e) => Err(e),
        };
        let response = SyncGroupResponse::default();
        let response = if version >= 5 {
            response
                .with_protocol_type(protocol_type.map(str_bytes))
                .with_protocol_name(protocol_name.map(str_bytes))
        } else {
            response
        };
        match result {
            Ok(assignment) => response.with_assignment(assignment),
            Err(e) => response.with_error_code(e.code()),
        }
    }))
}
