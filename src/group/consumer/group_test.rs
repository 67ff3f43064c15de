use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strata_api::broker::BrokerError;
use strata_api::group::{ConsumerHeartbeat, ConsumerHeartbeatAnswer};

use super::*;
use crate::group::consumer::MigrationPolicy;

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
    max_size: 3,
    migration: MigrationPolicy::Bidirectional,
};

fn topics() -> Topics {
    Topics([("t".to_owned(), 4), ("other".to_owned(), 2)].into())
}

fn join(member: &str) -> ConsumerHeartbeat {
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
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn beat(member: &str, epoch: i32, owned: &[i32]) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        owned: Some(vec![("t".into(), owned.to_vec())]),
        ..join(member)
    }
}

fn partitions(answer: &ConsumerHeartbeatAnswer) -> Option<Vec<i32>> {
    answer.assignment.as_ref().map(|a| {
        a.iter()
            .filter(|(t, _)| t == "t")
            .flat_map(|(_, ps)| ps.clone())
            .collect()
    })
}

#[test]
fn a_member_gives_up_partitions_before_another_gets_them() {
    let (mut g, now, t) = (ConsumerGroup::default(), Instant::now(), topics());
    let a = g.heartbeat(join("a"), &t, &CONFIG, now).unwrap();
    assert_eq!(
        (a.member_epoch, partitions(&a)),
        (1, Some(vec![0, 1, 2, 3]))
    );
    // b joins: the group moves to epoch 2; b waits for a's partitions.
    let b = g.heartbeat(join("b"), &t, &CONFIG, now).unwrap();
    assert_eq!((b.member_epoch, partitions(&b)), (2, Some(vec![])));
    assert_eq!(g.state(), "Reconciling");
    // a is told to keep two; its epoch stays until it reports the others gone.
    let a = g
        .heartbeat(beat("a", 1, &[0, 1, 2, 3]), &t, &CONFIG, now)
        .unwrap();
    assert_eq!(a.member_epoch, 1);
    let kept = partitions(&a).unwrap();
    assert_eq!(kept.len(), 2);
    // Commits at its epoch still count while it revokes.
    assert!(g.check_commit("a", 1).is_ok());
    let a = g.heartbeat(beat("a", 1, &kept), &t, &CONFIG, now).unwrap();
    assert_eq!((a.member_epoch, a.assignment), (2, None));
    let b = g.heartbeat(beat("b", 2, &[]), &t, &CONFIG, now).unwrap();
    let got = partitions(&b).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| !kept.contains(p)));
    assert_eq!(g.state(), "Stable");
    assert!(matches!(
        g.check_commit("a", 1),
        Err(BrokerError::StaleMemberEpoch(_))
    ));
    // b leaves: a gets everything back at the next epoch.
    g.heartbeat(beat("b", -1, &got), &t, &CONFIG, now).unwrap();
    let a = g.heartbeat(beat("a", 2, &kept), &t, &CONFIG, now).unwrap();
    assert_eq!(
        (a.member_epoch, partitions(&a)),
        (3, Some(vec![0, 1, 2, 3]))
    );
}

#[test]
fn stale_and_unknown_members_are_fenced() {
    let (mut g, now, t) = (ConsumerGroup::default(), Instant::now(), topics());
    g.heartbeat(join("a"), &t, &CONFIG, now).unwrap();
    assert!(matches!(
        g.heartbeat(beat("a", 7, &[]), &t, &CONFIG, now),
        Err(BrokerError::FencedMemberEpoch(_))
    ));
    assert!(matches!(
        g.heartbeat(beat("nobody", 1, &[]), &t, &CONFIG, now),
        Err(BrokerError::UnknownMemberId(_))
    ));
    g.heartbeat(join("b"), &t, &CONFIG, now).unwrap();
    g.heartbeat(join("c"), &t, &CONFIG, now).unwrap();
    assert_eq!(
        g.heartbeat(join("d"), &t, &CONFIG, now).unwrap_err(),
        BrokerError::GroupMaxSizeReached
    );
    // Silent past the session timeout: fenced, its partitions reassigned.
    let later = now + Duration::from_secs(46);
    g.heartbeat(
        beat("b", 2, &[]),
        &t,
        &CONFIG,
        now + Duration::from_secs(40),
    )
    .ok();
    assert!(g.expire(CONFIG.session_timeout, later));
    assert_eq!(g.describe().members.len(), 1, "only b heartbeated in time");
}

#[test]
fn a_regular_expression_subscribes_to_every_matching_topic() {
    let (mut g, now, t) = (ConsumerGroup::default(), Instant::now(), topics());
    let hb = ConsumerHeartbeat {
        subscribed_topic_names: Some(Vec::new()),
        subscribed_topic_regex: Some("t|oth.*".into()),
        ..join("a")
    };
    let a = g.heartbeat(hb, &t, &CONFIG, now).unwrap();
    let total: usize = a.assignment.unwrap().iter().map(|(_, ps)| ps.len()).sum();
    assert_eq!(total, 6);
}
