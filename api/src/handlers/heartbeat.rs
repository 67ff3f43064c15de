//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{Ctx, HandleError};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: HeartbeatRequest,
) -> Result<Reply, HandleError> {
    let result = ctx
        .check(Operation::Read, ResourceType::Group, &request.group_id)
        .and_then(|()| {
            ctx.broker.groups().heartbeat(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id,
            )
        });
    let code = result.err().map_or(0, |e| e.code());
    ctx.respond(&HeartbeatResponse::default().with_error_code(code))
}
