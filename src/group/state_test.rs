//! The rebalance state machine, driven directly with a controlled clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_api::broker::BrokerError;
use strata_api::group::{GroupState, JoinGroup, JoinedGroup, LeavingMember, SyncGroup};
use tokio::sync::oneshot;

use super::{Group, GroupConfig, Outcome};

const CONFIG: GroupConfig = GroupConfig {
    min_session_timeout: Duration::from_millis(100),
    max_session_timeout: Duration::from_secs(60),
    initial_rebalance_delay: Duration::ZERO,
    max_size: 10,
};

fn join(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinGroup {
    JoinGroup {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_owned),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| ((*p).to_owned(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn sync(member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncGroup {
    SyncGroup {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: None,
        generation,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| ((*m).to_owned(), Bytes::from(a.to_string())))
            .collect(),
    }
}

fn waiting<T>(outcome: Outcome<T>) -> oneshot::Receiver<Result<T, BrokerError>> {
    match outcome {
        Outcome::Wait(rx) => rx,
        Outcome::Now(result) => panic!("expected to wait, got {:?}", result.err()),
    }
}

fn ready<T>(rx: &mut oneshot::Receiver<Result<T, BrokerError>>) -> Result<T, BrokerError> {
    rx.try_recv().expect("answered")
}

/// Joins a new dynamic member through KIP-394's two steps; returns its id and pending join.
fn new_member(
    group: &mut Group,
    now: Instant,
    protocols: &[&str],
) -> (String, oneshot::Receiver<Result<JoinedGroup, BrokerError>>) {
    let id = match group.join(join("", None, protocols), now, 0) {
        Outcome::Now(Err(BrokerError::MemberIdRequired(id))) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    let rx = waiting(group.join(join(&id, None, protocols), now, 0));
    (id, rx)
}

#[test]
fn two_members_join_sync_and_get_their_assignments() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), CONFIG, 0);
    let (a, mut a_join) = new_member(&mut group, now, &["range"]);
    // a alone completes the first rebalance at once (no initial delay here).
    let joined = ready(&mut a_join).unwrap();
    assert_eq!((joined.generation, joined.leader.as_str()), (1, a.as_str()));
    assert_eq!(joined.members.len(), 1);
    let mut a_sync = waiting(group.sync(sync(&a, 1, &[(&a, "all")]), now, 0));
    assert_eq!(ready(&mut a_sync).unwrap(), Bytes::from("all"));
    assert_eq!(group.state, GroupState::Stable);

    // b joins: a learns of the rebalance from its heartbeat and rejoins.
    let (b, mut b_join) = new_member(&mut group, now, &["range"]);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(b_join.try_recv().is_err(), "b waits for a");
    assert_eq!(
        group.heartbeat(&a, None, 1, now),
        Err(BrokerError::RebalanceInProgress)
    );
    let mut a_join = waiting(group.join(join(&a, None, &["range"]), now, 0));
    let (ja, jb) = (ready(&mut a_join).unwrap(), ready(&mut b_join).unwrap());
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.leader, a, "the longest-standing member stays leader");
    assert_eq!((ja.members.len(), jb.members.len()), (2, 0));

    // The follower's sync waits for the leader's.
    let mut b_sync = waiting(group.sync(sync(&b, 2, &[]), now, 0));
    assert!(b_sync.try_recv().is_err());
    let mut a_sync = waiting(group.sync(sync(&a, 2, &[(&a, "p0"), (&b, "p1")]), now, 0));
    assert_eq!(ready(&mut a_sync).unwrap(), Bytes::from("p0"));
    assert_eq!(ready(&mut b_sync).unwrap(), Bytes::from("p1"));
    assert_eq!(group.heartbeat(&b, None, 2, now), Ok(()));
    assert!(matches!(
        group.heartbeat(&b, None, 1, now),
        Err(BrokerError::IllegalGeneration(_))
    ));
    assert!(matches!(
        group.heartbeat("ghost", None, 2, now),
        Err(BrokerError::UnknownMemberId(_))
    ));
}

#[test]
fn a_silent_member_expires_and_the_rest_rebalance() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), CONFIG, 0);
    let (a, mut a_join) = new_member(&mut group, now, &["range"]);
    ready(&mut a_join).unwrap();
    let (b, mut b_join) = new_member(&mut group, now, &["range"]);
    let mut a_join = waiting(group.join(join(&a, None, &["range"]), now, 0));
    ready(&mut a_join).unwrap();
    ready(&mut b_join).unwrap();
    let _b_sync = waiting(group.sync(sync(&b, 2, &[]), now, 0));
    let _a_sync = waiting(group.sync(sync(&a, 2, &[]), now, 0));
    assert_eq!(group.state, GroupState::Stable);

    // a keeps heartbeating, b goes silent past its 10 s session.
    let later = now + Duration::from_secs(8);
    group.heartbeat(&a, None, 2, later).unwrap();
    assert!(group.tick(now + Duration::from_secs(11), 0));
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.members().count(), 1);
    let mut a_join = waiting(group.join(join(&a, None, &["range"]), later, 0));
    assert_eq!(ready(&mut a_join).unwrap().generation, 3);
    let _ = b;
}

#[test]
fn a_member_that_misses_the_rebalance_is_dropped_at_its_timeout() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), CONFIG, 0);
    let (a, mut a_join) = new_member(&mut group, now, &["range"]);
    ready(&mut a_join).unwrap();
    let _a_sync = waiting(group.sync(sync(&a, 1, &[]), now, 0));
    let (_b, mut b_join) = new_member(&mut group, now, &["range"]);
    // a never rejoins: after the 30 s rebalance timeout the join completes without it.
    group
        .heartbeat(&a, None, 1, now + Duration::from_secs(5))
        .unwrap_err();
    group.tick(now + Duration::from_secs(31), 0);
    let joined = ready(&mut b_join).unwrap();
    assert_eq!(joined.members.len(), 1, "only b is left");
    assert_eq!(group.state, GroupState::CompletingRebalance);
}

#[test]
fn leaving_and_protocol_checks() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), CONFIG, 0);
    let (a, mut a_join) = new_member(&mut group, now, &["range", "roundrobin"]);
    ready(&mut a_join).unwrap();
    let _ = group.sync(sync(&a, 1, &[]), now, 0);
    // No protocol in common, or another protocol type: refused, nothing disturbed.
    let refused = group.join(join("", None, &["sticky"]), now, 0);
    assert!(matches!(
        refused,
        Outcome::Now(Err(BrokerError::InconsistentGroupProtocol(_)))
    ));
    let mut other = join("", None, &["range"]);
    other.protocol_type = "connect".into();
    assert!(matches!(
        group.join(other, now, 0),
        Outcome::Now(Err(BrokerError::InconsistentGroupProtocol(_)))
    ));
    let mut short = join("", None, &["range"]);
    short.session_timeout = Duration::from_millis(1);
    assert!(matches!(
        group.join(short, now, 0),
        Outcome::Now(Err(BrokerError::InvalidSessionTimeout(_)))
    ));
    assert_eq!(group.state, GroupState::Stable);
    // The last member leaves: Empty, generation bumped.
    let leaving = LeavingMember {
        member_id: a.clone(),
        group_instance_id: None,
    };
    group.leave(&leaving, now, 0).unwrap();
    assert_eq!(group.state, GroupState::Empty);
    assert_eq!(group.generation, 2);
    assert!(matches!(
        group.leave(&leaving, now, 0),
        Err(BrokerError::UnknownMemberId(_))
    ));
    assert_eq!(group.delete(0), Ok(()));
    assert_eq!(group.state, GroupState::Dead);
}

#[test]
fn a_restarted_static_member_takes_over_without_a_rebalance() {
    let now = Instant::now();
    let mut group = Group::new("g".into(), CONFIG, 0);
    let mut a_join = waiting(group.join(join("", Some("a-1"), &["range"]), now, 0));
    let a = ready(&mut a_join).unwrap().member_id;
    let _ = group.sync(sync(&a, 1, &[(&a, "mine")]), now, 0);
    assert_eq!(group.state, GroupState::Stable);
    // Restarted: new process, no member id, same instance id and subscription.
    let joined = match group.join(join("", Some("a-1"), &["range"]), now, 0) {
        Outcome::Now(Ok(joined)) => joined,
        other => panic!("expected an immediate answer, got {other:?}"),
    };
    assert_eq!(joined.generation, 1, "no rebalance");
    assert_ne!(joined.member_id, a);
    assert!(
        joined.skip_assignment,
        "the static leader must not assign again"
    );
    assert_eq!(group.state, GroupState::Stable);
    // The old incarnation is fenced; the new one gets the old assignment.
    let mut old = sync(&a, 1, &[]);
    old.group_instance_id = Some("a-1".into());
    assert!(matches!(
        group.sync(old, now, 0),
        Outcome::Now(Err(BrokerError::FencedInstanceId(_)))
    ));
    match group.sync(sync(&joined.member_id, 1, &[]), now, 0) {
        Outcome::Now(Ok(assignment)) => assert_eq!(assignment, Bytes::from("mine")),
        other => panic!("expected the assignment, got {other:?}"),
    }
}

#[test]
fn the_first_rebalance_waits_for_the_fleet() {
    let config = GroupConfig {
        initial_rebalance_delay: Duration::from_secs(3),
        ..CONFIG
    };
    let now = Instant::now();
    let mut group = Group::new("g".into(), config, 0);
    let (_a, mut a_join) = new_member(&mut group, now, &["range"]);
    assert!(a_join.try_recv().is_err(), "held for the initial delay");
    let (_b, mut b_join) = new_member(&mut group, now + Duration::from_secs(2), &["range"]);
    // b extended the delay to t=5 s.
    group.tick(now + Duration::from_secs(4), 0);
    assert!(a_join.try_recv().is_err());
    group.tick(now + Duration::from_secs(5), 0);
    assert_eq!(ready(&mut a_join).unwrap().members.len(), 2);
    assert_eq!(ready(&mut b_join).unwrap().generation, 1);
}
