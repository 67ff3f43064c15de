use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
use kafka_protocol::protocol::{Encodable, StrBytes};
use strata_api::broker::BrokerError;
use strata_api::group::{ConsumerHeartbeat, JoinGroup, LeavingMember, SyncGroup};

use super::super::group::{ConsumerGroupConfig, TopicView};
use super::*;

struct Topics(BTreeMap<String, i32>);

impl TopicView for Topics {
    fn partitions(&self, topic: &str) -> Option<i32> {
        self.0.get(topic).copied()
    }
    fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

const CONFIG: ConsumerGroupConfig = ConsumerGroupConfig {
    heartbeat_interval: Duration::from_secs(5),
    session_timeout: Duration::from_secs(45),
    max_size: 10,
    migration: MigrationPolicy::Bidirectional,
};

fn topics() -> Topics {
    Topics([("t".to_owned(), 4)].into())
}

/// A ConsumerProtocolSubscription (v1) of topic `t`, owning `owned`.
fn subscription(owned: &[i32]) -> Bytes {
    let message = ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_static_str("t")])
        .with_owned_partitions(if owned.is_empty() {
            Vec::new()
        } else {
            vec![
                TopicPartition::default()
                    .with_topic(StrBytes::from_static_str("t").into())
                    .with_partitions(owned.to_vec()),
            ]
        });
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    message.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

fn assignment(partitions: &[i32]) -> Bytes {
    encode_assignment(
        &[("t".to_owned(), partitions.iter().copied().collect())].into(),
        1,
    )
}

fn partitions_of(bytes: &Bytes) -> Vec<i32> {
    decode_assignment(bytes)
        .get("t")
        .map(|ps| ps.iter().copied().collect())
        .unwrap_or_default()
}

fn join(member: &str, owned: &[i32]) -> JoinGroup {
    JoinGroup {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(owned))],
        require_known_member_id: true,
    }
}

fn sync(member: &str, generation: i32) -> SyncGroup {
    SyncGroup {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: None,
        generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: Vec::new(),
    }
}

fn consumer_join(member: &str) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: Some(Vec::new()),
        client_id: "new".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn consumer_beat(member: &str, epoch: i32, owned: &[i32]) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        owned: Some(vec![("t".into(), owned.to_vec())]),
        ..consumer_join(member)
    }
}

fn seat(member: &str, partitions: &[i32]) -> ClassicSeat {
    ClassicSeat {
        member_id: member.into(),
        instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocols: vec![("range".into(), subscription(&[]))],
        assignment: assignment(partitions),
    }
}

fn assigned(answer: &strata_api::group::ConsumerHeartbeatAnswer) -> Option<Vec<i32>> {
    answer.assignment.as_ref().map(|a| {
        a.iter()
            .filter(|(t, _)| t == "t")
            .flat_map(|(_, ps)| ps.clone())
            .collect()
    })
}

#[test]
fn an_upgrade_keeps_the_classic_generation_and_assignments() {
    let now = Instant::now();
    let group = ConsumerGroup::from_classic(
        7,
        Some("range"),
        vec![seat("a", &[0, 1]), seat("b", &[2, 3])],
        &topics(),
        now,
    );
    let described = group.describe();
    assert_eq!((described.epoch, described.assignment_epoch), (7, 7));
    assert_eq!(described.state, "Stable");
    for m in &described.members {
        assert!(m.classic);
        assert_eq!(m.member_epoch, 7);
        assert_eq!(m.subscribed_topic_names, vec!["t".to_owned()]);
    }
    assert_eq!(
        described.members[0].assignment,
        vec![("t".into(), vec![0, 1])]
    );
    // Its members commit with their generation, as before the upgrade.
    group.check_commit("a", 7).unwrap();
    assert!(matches!(
        group.check_commit("a", 6),
        Err(BrokerError::IllegalGeneration(_))
    ));
}

#[test]
fn a_consumer_member_joining_makes_the_classic_members_rejoin_and_give_up_partitions() {
    let now = Instant::now();
    let mut group = ConsumerGroup::from_classic(
        3,
        Some("range"),
        vec![seat("a", &[0, 1, 2, 3])],
        &topics(),
        now,
    );
    let joined = group
        .heartbeat(consumer_join("new"), &topics(), &CONFIG, now)
        .unwrap();
    assert_eq!(joined.member_epoch, 4);
    // Every partition is still a's: nothing is granted yet.
    assert_eq!(assigned(&joined), Some(vec![]));
    // a is told to rejoin; a cooperative client rejoins still owning everything.
    assert!(matches!(
        group.classic_heartbeat("a", None, 3, now),
        Err(BrokerError::RebalanceInProgress)
    ));
    let rejoined = group
        .classic_join(join("a", &[0, 1, 2, 3]), &topics(), &CONFIG, now)
        .unwrap();
    // It keeps its epoch until it has given up what it loses.
    assert_eq!(rejoined.generation, 3);
    assert_eq!(rejoined.leader, "");
    assert_eq!(rejoined.protocol_name.as_deref(), Some("range"));
    let kept = partitions_of(&group.classic_sync(&sync("a", 3), now).unwrap());
    assert_eq!(kept.len(), 2);
    // Revoked, it rejoins owning only what it kept and moves to the new epoch.
    let rejoined = group
        .classic_join(join("a", &kept), &topics(), &CONFIG, now)
        .unwrap();
    assert_eq!(rejoined.generation, 4);
    assert_eq!(
        partitions_of(&group.classic_sync(&sync("a", 4), now).unwrap()),
        kept
    );
    group.classic_heartbeat("a", None, 4, now).unwrap();
    let beat = group
        .heartbeat(consumer_beat("new", 4, &[]), &topics(), &CONFIG, now)
        .unwrap();
    let mut theirs = assigned(&beat).unwrap();
    theirs.extend(&kept);
    theirs.sort();
    assert_eq!(theirs, vec![0, 1, 2, 3]);
    assert_eq!(group.state(), "Stable");
}

#[test]
fn an_eager_classic_member_that_gave_up_everything_moves_on_at_once() {
    let now = Instant::now();
    let mut group = ConsumerGroup::from_classic(
        3,
        Some("range"),
        vec![seat("a", &[0, 1, 2, 3])],
        &topics(),
        now,
    );
    group
        .heartbeat(consumer_join("new"), &topics(), &CONFIG, now)
        .unwrap();
    // An eager client revokes everything before it rejoins.
    let rejoined = group
        .classic_join(join("a", &[]), &topics(), &CONFIG, now)
        .unwrap();
    assert_eq!(rejoined.generation, 4);
    assert_eq!(
        partitions_of(&group.classic_sync(&sync("a", 4), now).unwrap()).len(),
        2
    );
}

#[test]
fn a_classic_member_joins_a_consumer_group() {
    let now = Instant::now();
    let mut group = ConsumerGroup::default();
    group
        .heartbeat(consumer_join("new"), &topics(), &CONFIG, now)
        .unwrap();
    // KIP-394 first, then the join proper.
    let Err(BrokerError::MemberIdRequired(id)) =
        group.classic_join(join("", &[]), &topics(), &CONFIG, now)
    else {
        panic!("a new member is asked to come back with an id");
    };
    let mut wrong = join(&id, &[]);
    wrong.protocol_type = "connect".into();
    assert!(matches!(
        group.classic_join(wrong, &topics(), &CONFIG, now),
        Err(BrokerError::InconsistentGroupProtocol(_))
    ));
    let joined = group
        .classic_join(join(&id, &[]), &topics(), &CONFIG, now)
        .unwrap();
    assert_eq!(joined.member_id, id);
    assert_eq!(joined.generation, 2);
    assert!(joined.members.is_empty());
    assert!(matches!(
        group.classic_sync(&sync(&id, 1), now),
        Err(BrokerError::IllegalGeneration(_))
    ));
    assert!(matches!(
        group.classic_sync(&sync("stranger", 2), now),
        Err(BrokerError::UnknownMemberId(_))
    ));
    // Its partitions are still the other member's until that one gives them up.
    assert!(partitions_of(&group.classic_sync(&sync(&id, 2), now).unwrap()).is_empty());
    group
        .heartbeat(
            consumer_beat("new", 1, &[0, 1, 2, 3]),
            &topics(),
            &CONFIG,
            now,
        )
        .unwrap();
    let beat = group
        .heartbeat(consumer_beat("new", 1, &[0, 1]), &topics(), &CONFIG, now)
        .unwrap();
    assert_eq!(beat.member_epoch, 2);
    // Now free: the classic member is told to rejoin for them.
    assert!(matches!(
        group.classic_heartbeat(&id, None, 2, now),
        Err(BrokerError::RebalanceInProgress)
    ));
    group
        .classic_join(join(&id, &[]), &topics(), &CONFIG, now)
        .unwrap();
    assert_eq!(
        partitions_of(&group.classic_sync(&sync(&id, 2), now).unwrap()),
        vec![2, 3]
    );
    group.classic_heartbeat(&id, None, 2, now).unwrap();
    let described = group.describe();
    assert_eq!(
        described
            .members
            .iter()
            .map(|m| m.classic)
            .collect::<Vec<_>>(),
        if described.members[0].member_id == id {
            vec![true, false]
        } else {
            vec![false, true]
        }
    );
}

#[test]
fn the_last_consumer_member_leaving_turns_the_group_back_to_classic() {
    let now = Instant::now();
    let mut group = ConsumerGroup::from_classic(
        5,
        Some("range"),
        vec![seat("a", &[0, 1]), seat("b", &[2, 3])],
        &topics(),
        now,
    );
    group
        .heartbeat(consumer_join("new"), &topics(), &CONFIG, now)
        .unwrap();
    assert!(group.take_downgrade(CONFIG.migration, 100).is_none());
    let mut leave = consumer_beat("new", 6, &[]);
    leave.member_epoch = -1;
    group
        .heartbeat(leave.clone(), &topics(), &CONFIG, now)
        .unwrap();
    // Not allowed by the policy: it stays a consumer group.
    let mut kept = group.clone();
    assert!(kept.take_downgrade(MigrationPolicy::Upgrade, 100).is_none());
    assert!(!kept.is_empty());
    let downgrade = group.take_downgrade(CONFIG.migration, 100).unwrap();
    assert_eq!(downgrade.generation, 6);
    let mut seats: Vec<(String, Vec<i32>)> = downgrade
        .members
        .iter()
        .map(|s| (s.member_id.clone(), partitions_of(&s.assignment)))
        .collect();
    seats.sort();
    // Each keeps its target; what the leaver had is handed out by the classic rebalance.
    assert_eq!(
        seats,
        vec![("a".to_owned(), vec![0, 1]), ("b".to_owned(), vec![2])]
    );
    assert!(group.is_empty());
}

#[test]
fn a_classic_member_leaves_and_expires_on_its_own_timers() {
    let now = Instant::now();
    let mut group = ConsumerGroup::from_classic(
        1,
        Some("range"),
        vec![seat("a", &[0, 1]), seat("b", &[2, 3])],
        &topics(),
        now,
    );
    group
        .classic_leave(&LeavingMember {
            member_id: "a".into(),
            group_instance_id: None,
        })
        .unwrap();
    assert!(matches!(
        group.classic_leave(&LeavingMember {
            member_id: "a".into(),
            group_instance_id: None,
        }),
        Err(BrokerError::UnknownMemberId(_))
    ));
    // b's session is 10 s, not the consumer protocol's 45 s.
    assert!(group.expire(Duration::from_secs(45), now + Duration::from_secs(11)));
    assert!(group.is_empty());
    // A classic member that joined but never synced is fenced after its rebalance timeout.
    let mut group = ConsumerGroup::default();
    group
        .heartbeat(consumer_join("new"), &topics(), &CONFIG, now)
        .unwrap();
    let mut patient = join("c", &[]);
    patient.session_timeout = Duration::from_secs(60);
    let joined = group
        .classic_join(patient, &topics(), &CONFIG, now)
        .unwrap();
    group
        .classic_heartbeat("c", None, joined.generation, now + Duration::from_secs(25))
        .unwrap();
    assert!(!group.expire(Duration::from_secs(45), now + Duration::from_secs(29)));
    assert!(group.expire(Duration::from_secs(45), now + Duration::from_secs(31)));
    assert_eq!(group.describe().members.len(), 1);
}
