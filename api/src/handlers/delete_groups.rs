//! DeleteGroups (key 42): removes empty groups and their committed offsets.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{Ctx, HandleError, later};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DeleteGroupsRequest,
) -> Result<Reply, HandleError> {
    let allowed: Vec<_> = request
        .groups_names
        .iter()
        .map(|g| ctx.check(Operation::Delete, ResourceType::Group, g))
        .collect();
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let mut results = Vec::with_capacity(request.groups_names.len());
        for (group_id, allowed) in request.groups_names.into_iter().zip(allowed) {
            let result = match allowed {
                Ok(()) => broker.groups().delete_group(&group_id).await,
                Err(e) => Err(e),
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id)
                    .with_error_code(result.err().map_or(0, |e| e.code())),
            );
        }
        DeleteGroupsResponse::default().with_results(results)
    }))
}
