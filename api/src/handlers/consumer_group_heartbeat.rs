//! ConsumerGroupHeartbeat (key 68, KIP-848): a consumer-protocol member joins, heartbeats its
//! subscription and owned partitions, and is told its epoch and, when it changed, its
//! assignment. Topics travel by id on the wire and by name inside the coordinator.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::{ConsumerHeartbeat, GroupCoordinator};
use crate::security::acl::{Operation, ResourceType};

/// Kafka's checks of a heartbeat's fields (INVALID_REQUEST), in its order.
fn validate(request: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<(), String> {
    let blank = |s: &str| s.trim().is_empty();
    let epoch = request.member_epoch;
    if (version >= 1 || epoch > 0 || epoch == -1) && blank(&request.member_id) {
        return Err("MemberId can't be empty.".into());
    }
    if blank(&request.group_id) {
        return Err("GroupId can't be empty.".into());
    }
    if request.instance_id.as_deref().is_some_and(blank) {
        return Err("InstanceId can't be empty.".into());
    }
    if request.rack_id.as_deref().is_some_and(blank) {
        return Err("RackId can't be empty.".into());
    }
    if epoch == 0 {
        if request.rebalance_timeout_ms == -1 {
            return Err("RebalanceTimeoutMs must be provided in first request.".into());
        }
        if request
            .topic_partitions
            .as_ref()
            .is_none_or(|t| !t.is_empty())
        {
            return Err("TopicPartitions must be empty when (re-)joining.".into());
        }
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null \
                        when (re-)joining."
                    .into(),
            );
        }
    }
    if epoch == -2 && request.instance_id.is_none() {
        return Err("InstanceId can't be null.".into());
    }
    if epoch < -2 {
        return Err("MemberEpoch is invalid.".into());
    }
    if let Some(regex) = &request.subscribed_topic_regex
        && regex::Regex::new(&format!("^(?:{regex})$")).is_err()
    {
        return Err(format!(
            "SubscribedTopicRegex {regex} is not a valid regular expression."
        ));
    }
    Ok(())
}

/// `topics` (by name) with their ids; a topic deleted meanwhile is left out.
pub(super) fn with_ids<B: Broker>(
    broker: &B,
    topics: Vec<(String, Vec<i32>)>,
) -> impl Iterator<Item = (uuid::Uuid, String, Vec<i32>)> + '_ {
    topics
        .into_iter()
        .filter_map(|(name, partitions)| Some((broker.topic_id(&name)?, name, partitions)))
}

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<Reply, HandleError> {
    let response = ConsumerGroupHeartbeatResponse::default();
    let refuse = |e: BrokerError| {
        let message = e.message().map(str_bytes);
        response
            .clone()
            .with_error_code(e.code())
            .with_error_message(message)
            .with_member_id(Some(request.member_id.clone()))
    };
    if let Err(message) = validate(&request, ctx.version) {
        return ctx.respond(&refuse(BrokerError::InvalidRequest(message)));
    }
    if let Some(assignor) = &request.server_assignor
        && !crate::group::ASSIGNORS.contains(&assignor.as_str())
    {
        return ctx.respond(&refuse(BrokerError::UnsupportedAssignor(format!(
            "ServerAssignor {assignor} is not supported. Supported assignors: {}.",
            crate::group::ASSIGNORS.join(", ")
        ))));
    }
    if let Err(e) = ctx.check(Operation::Read, ResourceType::Group, &request.group_id) {
        return ctx.respond(&refuse(e));
    }
    if let Some(names) = &request.subscribed_topic_names
        && names
            .iter()
            .any(|t| !ctx.allowed(Operation::Describe, ResourceType::Topic, t))
    {
        return ctx.respond(&refuse(BrokerError::TopicAuthorizationFailed));
    }
    let owned = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .filter_map(|t| Some((ctx.broker.topic_name(t.topic_id)?, t.partitions.clone())))
            .collect()
    });
    let heartbeat = ConsumerHeartbeat {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: request.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: request
            .subscribed_topic_regex
            .as_ref()
            .map(|s| s.to_string()),
        server_assignor: request.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
    };
    match ctx.broker.groups().consumer_heartbeat(heartbeat) {
        Ok(answer) => {
            let assignment = answer.assignment.map(|topics| {
                Assignment::default().with_topic_partitions(
                    with_ids(ctx.broker.as_ref(), topics)
                        .map(|(id, _, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
            });
            ctx.respond(
                &response
                    .with_member_id(Some(str_bytes(answer.member_id)))
                    .with_member_epoch(answer.member_epoch)
                    .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
                    .with_assignment(assignment),
            )
        }
        Err(e) => ctx.respond(&refuse(e)),
    }
}
