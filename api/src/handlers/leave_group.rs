//! LeaveGroup (key 13): one member before v3, a batch of members (static ones by instance id)
//! from v3.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{Ctx, HandleError, opt_str, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::{GroupCoordinator, LeavingMember};
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: LeaveGroupRequest,
) -> Result<Reply, HandleError> {
    let members: Vec<LeavingMember> = if ctx.version < 3 {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
        }]
    } else {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            })
            .collect()
    };
    let left = ctx
        .check(Operation::Read, ResourceType::Group, &request.group_id)
        .and_then(|()| ctx.broker.groups().leave_group(&request.group_id, &members));
    let response = match left {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(results) if ctx.version < 3 => LeaveGroupResponse::default().with_error_code(
            results
                .first()
                .and_then(|r| r.as_ref().err())
                .map_or(0, |e| e.code()),
        ),
        Ok(results) => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(results)
                .map(|(m, result)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(opt_str(m.group_instance_id))
                        .with_error_code(result.err().map_or(0, |e| e.code()))
                })
                .collect(),
        ),
    };
    ctx.respond(&response)
}
