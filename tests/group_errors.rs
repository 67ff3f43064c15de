//! Bad group requests over the raw protocol: each gets its Kafka error code, and the group they
//! aimed at carries on undisturbed.

mod common;

use bytes::Bytes;
use common::wire::Conn;
use common::{BrokerProcess, create_topic};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

fn join(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x00")),
        ])
}

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    metadata: &str,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5)
                        .with_committed_metadata(Some(s(metadata))),
                ]),
        ])
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_group_requests_get_their_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=0"],
    );
    create_topic(&broker.addr, "t", 1, &[]).await;
    let mut conn = Conn::open(&broker.addr).await;

    // Group ids: empty and too long.
    let found = conn
        .call(3, &FindCoordinatorRequest::default().with_key(s("")))
        .await
        .unwrap();
    assert_eq!(found.error_code, code(ResponseError::InvalidGroupId));
    let long = "g".repeat(300);
    let joined = conn.call(5, &join(&long, "")).await.unwrap();
    assert_eq!(joined.error_code, code(ResponseError::InvalidGroupId));
    let found = conn
        .call(3, &FindCoordinatorRequest::default().with_key(s("g")))
        .await
        .unwrap();
    assert_eq!(found.error_code, 0);

    // A real member: MEMBER_ID_REQUIRED, then a join with its id completes generation 1.
    let first = conn.call(5, &join("g", "")).await.unwrap();
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let member = first.member_id.to_string();
    assert!(!member.is_empty());
    let joined = conn.call(5, &join("g", &member)).await.unwrap();
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    let synced = conn
        .call(
            3,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s(&member))
                .with_generation_id(1)
                .with_assignments(vec![
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(Bytes::from_static(b"assigned")),
                ]),
        )
        .await
        .unwrap();
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"assigned"[..])
    );

    // Unknown member, stale generation.
    let beat = |member: &str, generation: i32| {
        HeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
            .with_generation_id(generation)
    };
    let hb = conn.call(3, &beat("nobody", 1)).await.unwrap();
    assert_eq!(hb.error_code, code(ResponseError::UnknownMemberId));
    let hb = conn.call(3, &beat(&member, 0)).await.unwrap();
    assert_eq!(hb.error_code, code(ResponseError::IllegalGeneration));
    let joined = conn.call(5, &join("g", "nobody")).await.unwrap();
    assert_eq!(joined.error_code, code(ResponseError::UnknownMemberId));

    // Commits: unknown topic, oversized metadata, stale generation, outsider on a live group.
    let committed = conn
        .call(7, &commit("g", &member, 1, "missing", ""))
        .await
        .unwrap();
    assert_eq!(
        committed.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    let big = "m".repeat(5000);
    let committed = conn
        .call(7, &commit("g", &member, 1, "t", &big))
        .await
        .unwrap();
    assert_eq!(
        committed.topics[0].partitions[0].error_code,
        code(ResponseError::OffsetMetadataTooLarge)
    );
    let committed = conn
        .call(7, &commit("g", &member, 0, "t", ""))
        .await
        .unwrap();
    assert_eq!(
        committed.topics[0].partitions[0].error_code,
        code(ResponseError::IllegalGeneration)
    );
    let committed = conn.call(7, &commit("g", "", -1, "t", "")).await.unwrap();
    assert_eq!(
        committed.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    let deleted = conn
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
        )
        .await
        .unwrap();
    assert_eq!(
        deleted.results[0].error_code,
        code(ResponseError::NonEmptyGroup)
    );

    // None of that disturbed the group: the member still heartbeats and commits.
    let hb = conn.call(3, &beat(&member, 1)).await.unwrap();
    assert_eq!(hb.error_code, 0);
    let committed = conn
        .call(7, &commit("g", &member, 1, "t", "ok"))
        .await
        .unwrap();
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let fetched = conn
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(None),
        )
        .await
        .unwrap();
    let partition = &fetched.topics[0].partitions[0];
    assert_eq!(
        (partition.committed_offset, partition.metadata.as_deref()),
        (5, Some("ok"))
    );
    let described = conn
        .call(
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
        )
        .await
        .unwrap();
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 1);

    // It leaves; the empty group with its offsets can then be deleted, offsets and all.
    let left = conn
        .call(
            1,
            &LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s(&member)),
        )
        .await
        .unwrap();
    assert_eq!(left.error_code, 0);
    let deleted = conn
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
        )
        .await
        .unwrap();
    assert_eq!(deleted.results[0].error_code, 0);
    let fetched = conn
        .call(
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_topics(None),
        )
        .await
        .unwrap();
    assert!(fetched.topics.is_empty());
    let deleted = conn
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
        )
        .await
        .unwrap();
    assert_eq!(
        deleted.results[0].error_code,
        code(ResponseError::GroupIdNotFound)
    );
}
