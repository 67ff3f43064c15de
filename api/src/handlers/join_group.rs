//! JoinGroup (key 11): answered when the rebalance the member joins completes, which can take
//! up to the group's rebalance timeout; the connection's later requests wait behind it, as on
//! Kafka.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{Ctx, HandleError, later, opt_str, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::{GroupCoordinator, JoinGroup};
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: JoinGroupRequest,
) -> Result<Reply, HandleError> {
    let version = ctx.version;
    let session = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    let join = JoinGroup {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout: session,
        // v0 has no rebalance timeout: Kafka takes the session timeout.
        rebalance_timeout: if version >= 1 {
            Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
        } else {
            session
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    if let Err(e) = ctx.check(Operation::Read, ResourceType::Group, &join.group_id) {
        return ctx.respond(&response(Err(e), version));
    }
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let result = broker.groups().join_group(join).await;
        response(result, version)
    }))
}

fn response(
    result: Result<crate::group::JoinedGroup, BrokerError>,
    version: i16,
) -> JoinGroupResponse {
    match result {
        Ok(joined) => JoinGroupResponse::default()
            .with_generation_id(joined.generation)
            .with_protocol_type(if version >= 7 {
                opt_str(joined.protocol_type)
            } else {
                None
            })
            // Nullable only from v7.
            .with_protocol_name(
                opt_str(joined.protocol_name).or((version < 7).then(|| str_bytes(""))),
            )
            .with_leader(str_bytes(joined.leader))
            .with_skip_assignment(version >= 9 && joined.skip_assignment)
            .with_member_id(str_bytes(joined.member_id))
            .with_members(
                joined
                    .members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(str_bytes(m.member_id))
                            .with_group_instance_id(if version >= 5 {
                                opt_str(m.group_instance_id)
                            } else {
                                None
                            })
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        Err(e) => {
            let member_id = match &e {
                BrokerError::MemberIdRequired(id) => id.clone(),
                _ => String::new(),
            };
            JoinGroupResponse::default()
                .with_error_code(e.code())
                .with_generation_id(-1)
                .with_protocol_name(if version >= 7 {
                    None
                } else {
                    Some(str_bytes(""))
                })
                .with_member_id(str_bytes(member_id))
        }
    }
}
