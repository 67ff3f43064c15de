//! ListGroups (key 16): every group, filtered by state (v4+) and type (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ListGroupsRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let all = ctx.visible(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    let groups = ctx
        .broker
        .groups()
        .list_groups()
        .into_iter()
        .filter(|g| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(g.state))
        })
        .filter(|g| all || ctx.visible(Operation::Describe, ResourceType::Group, &g.group_id))
        .filter(|g| {
            request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(g.group_type))
        })
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type))
                .with_group_state(str_bytes(if version >= 4 { g.state } else { "" }))
                .with_group_type(str_bytes(if version >= 5 { g.group_type } else { "" }))
        })
        .collect();
    ctx.respond(&ListGroupsResponse::default().with_groups(groups))
}
