//! ConsumerGroupDescribe (key 69, KIP-848): consumer-protocol groups with their epochs, the
//! assignor in use, and each member's subscription, assignment and target.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::group::GroupCoordinator;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's MemberType of a classic-protocol member in a consumer group (v1).
const CLASSIC_MEMBER: i8 = 0;
/// Kafka's MemberType of a consumer-protocol member (v1).
const CONSUMER_MEMBER: i8 = 1;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: ConsumerGroupDescribeRequest,
) -> Result<Reply, HandleError> {
    let assignment = |topics: Vec<(String, Vec<i32>)>| {
        Assignment::default().with_topic_partitions(
            super::consumer_group_heartbeat::with_ids(ctx.broker.as_ref(), topics)
                .map(|(id, name, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_topic_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
    };
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            let described = if group_id.is_empty() {
                Err(BrokerError::InvalidGroupId("the group id is empty".into()))
            } else {
                ctx.check(Operation::Describe, ResourceType::Group, &group_id)
                    .and_then(|()| ctx.broker.groups().describe_consumer_group(&group_id))
            };
            let group = DescribedGroup::default().with_group_id(group_id);
            match described {
                Ok(d) => group
                    .with_group_state(str_bytes(d.state.to_owned()))
                    .with_group_epoch(d.epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(str_bytes(d.assignor.to_owned()))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(str_bytes(m.member_id))
                                    .with_instance_id(m.instance_id.map(str_bytes))
                                    .with_rack_id(m.rack_id.map(str_bytes))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(str_bytes(m.client_id))
                                    .with_client_host(str_bytes(m.client_host))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .into_iter()
                                            .map(|t| TopicName(str_bytes(t)))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.map(str_bytes),
                                    )
                                    .with_assignment(assignment(m.assignment))
                                    .with_target_assignment(assignment(m.target))
                                    .with_member_type(match (ctx.version, m.classic) {
                                        (0, _) => -1,
                                        (_, true) => CLASSIC_MEMBER,
                                        (_, false) => CONSUMER_MEMBER,
                                    })
                            })
                            .collect(),
                    ),
                Err(e) => group
                    .with_error_code(e.code())
                    .with_error_message(e.message().map(str_bytes)),
            }
        })
        .collect();
    ctx.respond(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
