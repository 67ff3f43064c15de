//! Every advertised version of every group API answers, with a response the client's decoder
//! accepts: a full join → sync → heartbeat → commit → fetch → leave cycle per JoinGroup
//! version, then the listing and deleting APIs at each of theirs.

mod common;

use bytes::Bytes;
use common::wire::Conn;
use common::{BrokerProcess, create_topic};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, DeleteGroupsRequest,
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strata_api::versions::SUPPORTED_APIS;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let api = SUPPORTED_APIS
        .iter()
        .find(|a| a.key == key)
        .expect("advertised");
    api.min..=api.max
}

fn clamp(key: ApiKey, version: i16) -> i16 {
    let range = versions(key);
    version.clamp(*range.start(), *range.end())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_group_api_version_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=0"],
    );
    create_topic(&broker.addr, "t", 1, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;

    for v in versions(ApiKey::FindCoordinator) {
        let request = if v < 4 {
            FindCoordinatorRequest::default().with_key(s("g"))
        } else {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g"), s("")])
        };
        let response = conn.call(v, &request).await.expect("answered");
        if v < 4 {
            assert_eq!((response.error_code, response.port > 0), (0, true), "v{v}");
        } else {
            assert_eq!(response.coordinators[0].error_code, 0, "v{v}");
            assert_eq!(
                response.coordinators[1].error_code,
                ResponseError::InvalidGroupId.code(),
                "v{v}"
            );
        }
    }

    for v in versions(ApiKey::JoinGroup) {
        let group = format!("g{v}");
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(s(member))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(if v >= 1 { 10_000 } else { -1 })
                .with_group_instance_id(if v >= 5 { Some(s("instance")) } else { None })
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::from_static(b"meta")),
                ])
        };
        let mut joined = conn.call(v, &join("")).await.expect("answered");
        if joined.error_code == ResponseError::MemberIdRequired.code() {
            assert!(v >= 4, "v{v} must not ask for a member id");
            joined = conn
                .call(v, &join(&joined.member_id.to_string()))
                .await
                .unwrap();
        }
        assert_eq!(joined.error_code, 0, "JoinGroup v{v}");
        assert_eq!(joined.generation_id, 1, "JoinGroup v{v}");
        let member = joined.member_id.to_string();
        let instance = (v >= 5).then(|| s("instance"));

        let sv = clamp(ApiKey::SyncGroup, v);
        let synced = conn
            .call(
                sv,
                &SyncGroupRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_member_id(s(&member))
                    .with_generation_id(1)
                    .with_group_instance_id(if sv >= 3 { instance.clone() } else { None })
                    .with_protocol_type(if sv >= 5 { Some(s("consumer")) } else { None })
                    .with_protocol_name(if sv >= 5 { Some(s("range")) } else { None })
                    .with_assignments(vec![
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(&member))
                            .with_assignment(Bytes::from_static(b"all")),
                    ]),
            )
            .await
            .unwrap();
        assert_eq!(
            (synced.error_code, &synced.assignment[..]),
            (0, &b"all"[..]),
            "SyncGroup v{sv}"
        );

        let hv = clamp(ApiKey::Heartbeat, v);
        let beat = conn
            .call(
                hv,
                &HeartbeatRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_member_id(s(&member))
                    .with_generation_id(1)
                    .with_group_instance_id(if hv >= 3 { instance.clone() } else { None }),
            )
            .await
            .unwrap();
        assert_eq!(beat.error_code, 0, "Heartbeat v{hv}");

        let cv = clamp(ApiKey::OffsetCommit, v);
        let committed = conn
            .call(
                cv,
                &OffsetCommitRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_member_id(s(&member))
                    .with_generation_id_or_member_epoch(1)
                    .with_group_instance_id(if cv >= 7 { instance.clone() } else { None })
                    .with_topics(vec![
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(v as i64)
                                    .with_committed_metadata(Some(s("m"))),
                            ]),
                    ]),
            )
            .await
            .unwrap();
        assert_eq!(
            committed.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{cv}"
        );

        let lv = clamp(ApiKey::LeaveGroup, v);
        let leave = if lv < 3 {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(s(&member))
        } else {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_members(vec![
                    MemberIdentity::default()
                        .with_member_id(s(&member))
                        .with_group_instance_id(if lv >= 3 { instance.clone() } else { None }),
                ])
        };
        let left = conn.call(lv, &leave).await.unwrap();
        assert_eq!(left.error_code, 0, "LeaveGroup v{lv}");
        if lv >= 3 {
            assert_eq!(left.members[0].error_code, 0, "LeaveGroup v{lv}");
        }
    }

    for v in versions(ApiKey::OffsetFetch) {
        let response = if v < 8 {
            let request = OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g5")))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0]),
                ]));
            let response = conn.call(v, &request).await.expect("answered");
            response.topics[0].partitions[0].committed_offset
        } else {
            let request = OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("g5")))
                    .with_member_epoch(-1)
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(TopicName(s("t")))
                            .with_partition_indexes(vec![0]),
                    ])),
            ]);
            let response = conn.call(v, &request).await.expect("answered");
            response.groups[0].topics[0].partitions[0].committed_offset
        };
        // JoinGroup v5's cycle committed offset 5 (OffsetCommit clamped to v5).
        assert_eq!(response, 5, "OffsetFetch v{v}");
    }

    for v in versions(ApiKey::ListGroups) {
        let response = conn
            .call(v, &ListGroupsRequest::default())
            .await
            .expect("answered");
        assert_eq!(response.error_code, 0, "ListGroups v{v}");
        assert!(
            response.groups.iter().any(|g| g.group_id.as_str() == "g0"),
            "v{v}"
        );
    }
    for v in versions(ApiKey::DescribeGroups) {
        let response = conn
            .call(
                v,
                &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g0"))]),
            )
            .await
            .expect("answered");
        assert_eq!(response.groups[0].group_state.as_str(), "Empty", "v{v}");
    }
    for v in versions(ApiKey::OffsetDelete) {
        let response = conn
            .call(
                v,
                &OffsetDeleteRequest::default()
                    .with_group_id(GroupId(s("g1")))
                    .with_topics(vec![
                        OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s("t")))
                            .with_partitions(vec![
                                OffsetDeleteRequestPartition::default().with_partition_index(0),
                            ]),
                    ]),
            )
            .await
            .expect("answered");
        assert_eq!(response.error_code, 0, "OffsetDelete v{v}");
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "OffsetDelete v{v}"
        );
    }
    for v in versions(ApiKey::DeleteGroups) {
        let group = format!("g{}", 2 + v);
        let response = conn
            .call(
                v,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]),
            )
            .await
            .expect("answered");
        assert_eq!(response.results[0].error_code, 0, "DeleteGroups v{v}");
    }
}

/// ConsumerGroupHeartbeat and ConsumerGroupDescribe (KIP-848) at every version: a member
/// joins (v0: the coordinator names it; v1: it names itself), is given the topic's partitions
/// by id, and is described with them; a bad join is INVALID_REQUEST; it leaves.
#[tokio::test(flavor = "multi_thread")]
async fn every_consumer_group_protocol_version_answers() {
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    create_topic(&broker.addr, "cg", 3, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;
    for v in versions(ApiKey::ConsumerGroupHeartbeat) {
        let group = format!("cg-v{v}");
        let found = conn
            .call(
                4,
                &FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(vec![s(&group)]),
            )
            .await
            .unwrap();
        assert_eq!(found.coordinators[0].error_code, 0);
        let join = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(if v >= 1 { s("self-named") } else { s("") })
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s("cg"))]))
            .with_topic_partitions(Some(Vec::<TopicPartitions>::new()));
        let bad = conn
            .call(v, &join.clone().with_topic_partitions(None))
            .await
            .unwrap();
        assert_eq!(
            bad.error_code, 42,
            "ConsumerGroupHeartbeat v{v}: INVALID_REQUEST"
        );
        let joined = conn.call(v, &join).await.unwrap();
        assert_eq!(
            joined.error_code, 0,
            "ConsumerGroupHeartbeat v{v}: {:?}",
            joined.error_message
        );
        let member = joined.member_id.clone().expect("named");
        if v >= 1 {
            assert_eq!(member.as_str(), "self-named");
        } else {
            assert!(!member.is_empty());
        }
        let assigned = joined.assignment.expect("a join gets its assignment");
        assert_eq!(assigned.topic_partitions[0].partitions.len(), 3);
        for d in versions(ApiKey::ConsumerGroupDescribe) {
            let described = conn
                .call(
                    d,
                    &ConsumerGroupDescribeRequest::default()
                        .with_group_ids(vec![GroupId(s(&group)), GroupId(s("no-such"))]),
                )
                .await
                .unwrap();
            let g = &described.groups[0];
            assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
            assert_eq!(g.members[0].member_id, member);
            assert_eq!(
                g.members[0].assignment.topic_partitions[0]
                    .topic_name
                    .0
                    .as_str(),
                "cg"
            );
            assert_eq!(described.groups[1].error_code, 69, "GROUP_ID_NOT_FOUND");
        }
        let left = conn
            .call(
                v,
                &ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_member_id(member)
                    .with_member_epoch(-1),
            )
            .await
            .unwrap();
        assert_eq!((left.error_code, left.member_epoch), (0, -1));
    }
}
