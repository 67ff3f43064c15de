//! Replaying `__consumer_offsets` records and expiring the offsets of empty groups.

use std::time::Duration;

use bytes::Bytes;

use super::{CoordinatorConfig, Groups, partition_for};
use crate::group::records::{GroupValue, MemberValue, OffsetValue, RecordKey};
use crate::group::state::GroupConfig;

fn config(retention: Duration) -> CoordinatorConfig {
    CoordinatorConfig {
        group: GroupConfig {
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(60),
            initial_rebalance_delay: Duration::ZERO,
            max_size: 100,
        },
        consumer: crate::group::consumer::ConsumerGroupConfig {
            heartbeat_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            max_size: 100,
            migration: crate::group::consumer::MigrationPolicy::Bidirectional,
        },
        offsets_partitions: 50,
        offsets_replication_factor: 1,
        metadata_max_bytes: 4096,
        offsets_retention: retention,
        offsets_retention_check: Duration::from_secs(1),
    }
}

fn offset_key(group: &str, partition: i32) -> RecordKey {
    RecordKey::Offset {
        group: group.into(),
        topic: "t".into(),
        partition,
    }
}

fn offset(value: i64, at: i64) -> Bytes {
    OffsetValue {
        offset: value,
        leader_epoch: 0,
        metadata: String::new(),
        commit_timestamp: at,
    }
    .encode()
}

#[test]
fn replay_keeps_the_latest_record_of_each_key() {
    let groups = Groups::new(config(Duration::from_secs(3600)));
    groups
        .replay(offset_key("a", 0), Some(&offset(5, 1)))
        .unwrap();
    groups
        .replay(offset_key("a", 0), Some(&offset(9, 2)))
        .unwrap();
    groups
        .replay(offset_key("a", 1), Some(&offset(3, 2)))
        .unwrap();
    groups.replay(offset_key("a", 1), None).unwrap();
    groups
        .replay(offset_key("gone", 0), Some(&offset(1, 1)))
        .unwrap();
    groups
        .replay(
            RecordKey::Group {
                group: "gone".into(),
            },
            None,
        )
        .unwrap();
    let member = MemberValue {
        member_id: "m-1".into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout: 30_000,
        session_timeout: 10_000,
        subscription: Bytes::new(),
        assignment: Bytes::from_static(b"a"),
    };
    let membership = GroupValue {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        state_timestamp: 0,
        members: vec![member],
    };
    groups
        .replay(
            RecordKey::Group { group: "a".into() },
            Some(&membership.encode()),
        )
        .unwrap();
    assert!(groups.replay(offset_key("a", 2), Some(b"\x00")).is_err());
    assert_eq!(groups.finish_replay(), 1, "'gone' was deleted");
    let committed = groups.committed();
    assert_eq!(committed["a"].len(), 1);
    assert_eq!(committed["a"][&("t".to_owned(), 0)], 9);
}

#[test]
fn offsets_of_long_empty_groups_expire() {
    let groups = Groups::new(config(Duration::from_millis(10)));
    groups
        .replay(offset_key("old", 0), Some(&offset(4, 0)))
        .unwrap();
    groups.finish_replay();
    std::thread::sleep(Duration::from_millis(20));
    let expired = groups.expired_offsets();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].0, "old");
    assert!(expired[0].1.contains(&offset_key("old", 0)));
    groups.forget("old", &expired[0].1);
    assert!(groups.committed().is_empty());

    // A group that keeps committing keeps its offsets.
    let groups = Groups::new(config(Duration::from_secs(3600)));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    groups
        .replay(offset_key("busy", 0), Some(&offset(4, now)))
        .unwrap();
    assert!(groups.expired_offsets().is_empty());
}

#[test]
fn groups_land_on_kafkas_partitions() {
    // Kafka's Utils.abs(groupId.hashCode()) % 50, computed with Java 17.
    assert_eq!(partition_for("test-group", 50), 12);
    assert_eq!(partition_for("console-consumer-1", 50), 24);
    assert_eq!(partition_for("ü-group-ñ", 50), 38);
    // Its hashCode is Integer.MIN_VALUE, which Utils.abs maps to 0.
    assert_eq!(partition_for("polygenelubricants", 50), 0);
}
