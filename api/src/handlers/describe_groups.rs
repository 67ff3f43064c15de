//! DescribeGroups (key 15): state, protocol and members (with their assignments) of each group.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{Ctx, HandleError, opt_str, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{Operation, ResourceType};

/// The group operations KIP-430 reports.
const GROUP_OPERATIONS: &[Operation] = &[Operation::Read, Operation::Describe, Operation::Delete];

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeGroupsRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let include = request.include_authorized_operations;
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            // KIP-430: the operations the principal may do on the group, when asked (v3+).
            let operations = if version >= 3 && include {
                ctx.authorized_operations(GROUP_OPERATIONS, ResourceType::Group, &group_id)
            } else {
                i32::MIN
            };
            let described = DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_authorized_operations(operations);
            let result = ctx
                .check(Operation::Describe, ResourceType::Group, &group_id)
                .and_then(|()| ctx.broker.groups().describe_group(&group_id));
            match result {
                Err(e) => described
                    .with_error_code(e.code())
                    .with_error_message(if version >= 6 {
                        e.message().map(str_bytes)
                    } else {
                        None
                    }),
                Ok(d) => described
                    .with_group_state(str_bytes(d.state))
                    .with_protocol_type(str_bytes(d.protocol_type))
                    .with_protocol_data(str_bytes(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_group_instance_id(if version >= 4 {
                                        opt_str(m.group_instance_id)
                                    } else {
                                        None
                                    })
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ctx.respond(&DescribeGroupsResponse::default().with_groups(groups))
}
