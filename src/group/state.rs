//! One consumer group under the classic rebalance protocol: Kafka's `GroupMetadata` with the
//! rebalance logic of its `GroupCoordinator`.
//!
//! Pure state, no I/O and no clock: callers pass `now`, and JoinGroup/SyncGroup requests that
//! must wait for the rebalance leave a oneshot sender in their member, answered by the
//! transition that completes them. The coordinator calls [`Group::tick`] periodically to expire
//! sessions, pending member ids and the join and sync phases.
//!
//! States: `Empty` (no members, offsets only) → `PreparingRebalance` (members (re)join) →
//! `CompletingRebalance` (the leader computes the assignment) → `Stable`; `Dead` once deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_api::broker::BrokerError;
use strata_api::group::{
    GroupState, JoinGroup, JoinedGroup, JoinedMember, LeavingMember, SyncGroup,
};
use tokio::sync::oneshot;

use super::consumer::{ClassicSeat, Downgrade};
use super::records::GroupValue;

/// The answer to a JoinGroup that waited for the rebalance.
pub type JoinReply = Result<JoinedGroup, BrokerError>;
/// The answer to a SyncGroup that waited for the leader: the member's assignment.
pub type SyncReply = Result<Bytes, BrokerError>;

/// What a JoinGroup or SyncGroup gets: an answer now, or one when the rebalance moves on.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Answered at once.
    Now(Result<T, BrokerError>),
    /// Answered by a later transition.
    Wait(oneshot::Receiver<Result<T, BrokerError>>),
}

/// Broker settings that shape rebalances (Kafka's `group.*` configs).
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, so that a starting fleet does not rebalance once per member.
    pub initial_rebalance_delay: Duration,
    /// `group.max.size`.
    pub max_size: usize,
}

/// One member of a group.
#[derive(Debug)]
pub struct Member {
    /// Coordinator-assigned id.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout the member asked for.
    pub session_timeout: Duration,
    /// Rebalance timeout the member asked for.
    pub rebalance_timeout: Duration,
    /// Supported protocols with their metadata, in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation.
    pub assignment: Bytes,
    heartbeat_deadline: Instant,
    awaiting_join: Option<oneshot::Sender<JoinReply>>,
    awaiting_sync: Option<oneshot::Sender<SyncReply>>,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

/// One consumer group's membership state (committed offsets are kept beside it).
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// Generation of the last completed join; bumps with every rebalance.
    pub generation: i32,
    /// `consumer` for Kafka consumers; fixed by the first member.
    pub protocol_type: Option<String>,
    /// The assignment protocol chosen for this generation.
    pub protocol: Option<String>,
    /// Member id of the leader, which computes assignments.
    pub leader: Option<String>,
    /// When the state last changed, ms since the epoch (for the group metadata record).
    pub state_changed_ms: i64,
    members: BTreeMap<String, Member>,
    /// Join order, so that a new leader is the longest-standing member.
    join_order: Vec<String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) and not yet used.
    pending: BTreeMap<String, Instant>,
    /// End of the join phase (rebalance timeout, or the initial delay of an empty group).
    join_deadline: Option<Instant>,
    /// While the first rebalance of an empty group waits for more members: the latest end
    /// of that wait, which each new member extends.
    initial_delay_limit: Option<Instant>,
    config: GroupConfig,
    /// End of the sync phase: members that have not synced by then are removed.
    sync_deadline: Option<Instant>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: String, config: GroupConfig, now_ms: i64) -> Self {
        Self {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            state_changed_ms: now_ms,
            members: BTreeMap::new(),
            join_order: Vec::new(),
            pending: BTreeMap::new(),
            join_deadline: None,
            initial_delay_limit: None,
            sync_deadline: None,
            config,
        }
    }

    /// A consumer group left with classic members only, as a classic group: stable at the
    /// consumer group's epoch with each member's target assignment, and rebalancing at once
    /// so that the members rejoin under the classic protocol.
    pub fn adopt(
        id: String,
        config: GroupConfig,
        downgrade: Downgrade,
        now: Instant,
        now_ms: i64,
    ) -> Self {
        let mut group = Self::new(id, config, now_ms);
        group.generation = downgrade.generation;
        group.protocol_type = Some("consumer".to_owned());
        for seat in downgrade.members {
            group.join_order.push(seat.member_id.clone());
            group.members.insert(
                seat.member_id.clone(),
                Member {
                    member_id: seat.member_id,
                    group_instance_id: seat.instance_id,
                    client_id: seat.client_id,
                    client_host: seat.client_host,
                    session_timeout: seat.session_timeout,
                    rebalance_timeout: seat.rebalance_timeout,
                    protocols: seat.protocols,
                    assignment: seat.assignment,
                    heartbeat_deadline: now + seat.session_timeout,
                    awaiting_join: None,
                    awaiting_sync: None,
                },
            );
        }
        group.protocol = Some(group.select_protocol());
        group.leader = group.join_order.first().cloned();
        group.set_state(GroupState::Stable, now_ms);
        group.prepare_rebalance(now, now_ms);
        group
    }

    /// The members as a consumer group takes them over (an upgrade); waiting JoinGroup and
    /// SyncGroup requests are told to rejoin.
    pub fn hand_over(&mut self) -> Vec<ClassicSeat> {
        self.fail_waiters(&BrokerError::RebalanceInProgress);
        self.members()
            .map(|m| ClassicSeat {
                member_id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout: m.session_timeout,
                rebalance_timeout: m.rebalance_timeout,
                protocols: m.protocols.clone(),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// Members by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.join_order.iter().filter_map(|id| self.members.get(id))
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether the group holds nothing worth keeping: no members, no member ids handed out.
    pub fn is_unused(&self) -> bool {
        self.state == GroupState::Empty && self.members.is_empty() && self.pending.is_empty()
    }

    /// Restores the membership written to `__consumer_offsets` before a restart. Sessions
    /// start now, so members that died meanwhile expire and the rest carry on without a
    /// rebalance.
    pub fn restore(&mut self, value: GroupValue, now: Instant) {
        self.generation = value.generation;
        self.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        self.protocol = value.protocol.clone();
        self.leader = value.leader;
        self.state_changed_ms = value.state_timestamp;
        self.members.clear();
        self.join_order.clear();
        let protocol = value.protocol.unwrap_or_default();
        for m in value.members {
            let session_timeout = Duration::from_millis(m.session_timeout.max(0) as u64);
            self.join_order.push(m.member_id.clone());
            self.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout,
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout.max(0) as u64),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    heartbeat_deadline: now + session_timeout,
                    awaiting_join: None,
                    awaiting_sync: None,
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    /// Whether `member_id` of `generation` may commit offsets now. A commit from outside the
    /// group (generation -1: a standalone consumer or an admin tool) is allowed only while the
    /// group has no members.
    pub fn check_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), BrokerError> {
        match self.state {
            GroupState::Dead => Err(BrokerError::CoordinatorNotAvailable),
            GroupState::Empty if generation < 0 => Ok(()),
            GroupState::CompletingRebalance => {
                self.validate_member(member_id, group_instance_id, generation)?;
                Err(BrokerError::RebalanceInProgress)
            }
            _ => self.validate_member(member_id, group_instance_id, generation),
        }
    }

    /// Undoes [`Group::delete`] when its tombstones could not be written.
    pub fn revive(&mut self, now_ms: i64) {
        if self.state == GroupState::Dead {
            self.set_state(GroupState::Empty, now_ms);
        }
    }

    /// Topics the members subscribe to, from their `consumer` protocol metadata; `None` when
    /// the group is not a consumer group with members.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.members.is_empty() {
            return None;
        }
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            for (_, metadata) in &member.protocols {
                topics.extend(subscription_topics(metadata)?);
            }
        }
        Some(topics)
    }

    /// JoinGroup.
    pub fn join(&mut self, request: JoinGroup, now: Instant, now_ms: i64) -> Outcome<JoinedGroup> {
        match self.try_join(request, now, now_ms) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Now(Err(e)),
        }
    }

    fn try_join(
        &mut self,
        request: JoinGroup,
        now: Instant,
        now_ms: i64,
    ) -> Result<Outcome<JoinedGroup>, BrokerError> {
        let config = self.config;
        if self.state == GroupState::Dead {
            return Err(BrokerError::CoordinatorNotAvailable);
        }
        check_session_timeout(&config, request.session_timeout)?;
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(BrokerError::InconsistentGroupProtocol(
                "a member must name a protocol type and at least one protocol".into(),
            ));
        }
        if !self.supports(&request) {
            return Err(BrokerError::InconsistentGroupProtocol(format!(
                "protocol type {} with protocols [{}] does not match the group's members",
                request.protocol_type,
                request
                    .protocols
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if request.member_id.is_empty() {
            return self.join_unknown(request, now, now_ms);
        }
        self.check_fenced(&request.member_id, request.group_instance_id.as_deref())?;
        if self.pending.remove(&request.member_id).is_some() {
            if self.members.len() >= config.max_size {
                return Err(BrokerError::GroupMaxSizeReached);
            }
            let member_id = request.member_id.clone();
            return Ok(self.add_member_and_rebalance(member_id, request, now, now_ms));
        }
        let Some(member) = self.members.get(&request.member_id) else {
            return Err(BrokerError::UnknownMemberId(format!(
                "{} is not a member of group {}",
                request.member_id, self.id
            )));
        };
        let unchanged = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                let member_id = request.member_id.clone();
                Ok(self.update_member_and_rebalance(member_id, request, now, now_ms))
            }
            // Same metadata: it lost our JoinGroup response; answer it again.
            GroupState::CompletingRebalance if unchanged => {
                Ok(Outcome::Now(Ok(self.joined(&request.member_id))))
            }
            GroupState::Stable if unchanged && !is_leader => {
                Ok(Outcome::Now(Ok(self.joined(&request.member_id))))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let member_id = request.member_id.clone();
                Ok(self.update_member_and_rebalance(member_id, request, now, now_ms))
            }
            GroupState::Empty | GroupState::Dead => Err(BrokerError::UnknownMemberId(format!(
                "group {} has no members",
                self.id
            ))),
        }
    }

    /// A member without a member id: a new dynamic member, or a static member (re)starting.
    fn join_unknown(
        &mut self,
        request: JoinGroup,
        now: Instant,
        now_ms: i64,
    ) -> Result<Outcome<JoinedGroup>, BrokerError> {
        let config = self.config;
        let new_id = format!(
            "{}-{}",
            request
                .group_instance_id
                .as_deref()
                .unwrap_or(&request.client_id),
            uuid::Uuid::new_v4()
        );
        if let Some(instance) = request.group_instance_id.clone() {
            if let Some(old_id) = self.static_member(&instance).map(str::to_owned) {
                return Ok(self.replace_static_member(old_id, new_id, request, now, now_ms));
            }
            if self.members.len() >= config.max_size {
                return Err(BrokerError::GroupMaxSizeReached);
            }
            return Ok(self.add_member_and_rebalance(new_id, request, now, now_ms));
        }
        if self.members.len() + self.pending.len() >= config.max_size {
            return Err(BrokerError::GroupMaxSizeReached);
        }
        if request.require_known_member_id {
            // KIP-394: hand out the id first, so that a client retrying a JoinGroup it lost
            // cannot leave ghost members behind.
            self.pending
                .insert(new_id.clone(), now + request.session_timeout);
            return Err(BrokerError::MemberIdRequired(new_id));
        }
        Ok(self.add_member_and_rebalance(new_id, request, now, now_ms))
    }

    /// KIP-345: a static member restarted with a new member id. In a stable group with the
    /// same subscription it takes over its predecessor's assignment without a rebalance.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        request: JoinGroup,
        now: Instant,
        now_ms: i64,
    ) -> Outcome<JoinedGroup> {
        let mut member = self.members.remove(&old_id).expect("static member exists");
        if let Some(waiting) = member.awaiting_join.take() {
            let _ = waiting.send(Err(BrokerError::FencedInstanceId(
                "a newer member took over this group.instance.id".into(),
            )));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            let _ = waiting.send(Err(BrokerError::FencedInstanceId(
                "a newer member took over this group.instance.id".into(),
            )));
        }
        let unchanged = member.protocols == request.protocols;
        member.member_id = new_id.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.heartbeat_deadline = now + request.session_timeout;
        for id in &mut self.join_order {
            if *id == old_id {
                id.clone_from(&new_id);
            }
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        match self.state {
            GroupState::Stable if unchanged => {
                let mut joined = self.joined(&new_id);
                // The leader already assigned this generation; it must not assign again.
                joined.skip_assignment = self.leader.as_deref() == Some(new_id.as_str());
                Outcome::Now(Ok(joined))
            }
            _ => self.update_member_and_rebalance(new_id, request, now, now_ms),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinGroup,
        now: Instant,
        now_ms: i64,
    ) -> Outcome<JoinedGroup> {
        let (tx, rx) = oneshot::channel();
        if self.protocol_type.is_none() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.join_order.push(member_id.clone());
        self.members.insert(
            member_id.clone(),
            Member {
                member_id,
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: request.protocols,
                assignment: Bytes::new(),
                heartbeat_deadline: now + request.session_timeout,
                awaiting_join: Some(tx),
                awaiting_sync: None,
            },
        );
        if let Some(limit) = self.initial_delay_limit {
            // A fleet is still starting: wait a little longer for the rest of it.
            self.join_deadline = Some((now + self.config.initial_rebalance_delay).min(limit));
        }
        self.prepare_rebalance(now, now_ms);
        self.maybe_complete_join(now, now_ms);
        Outcome::Wait(rx)
    }

    fn update_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinGroup,
        now: Instant,
        now_ms: i64,
    ) -> Outcome<JoinedGroup> {
        let (tx, rx) = oneshot::channel();
        let member = self.members.get_mut(&member_id).expect("member exists");
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.heartbeat_deadline = now + request.session_timeout;
        if let Some(previous) = member.awaiting_join.replace(tx) {
            // The client gave up on its previous JoinGroup and sent a new one.
            drop(previous);
        }
        self.prepare_rebalance(now, now_ms);
        self.maybe_complete_join(now, now_ms);
        Outcome::Wait(rx)
    }

    /// Enters `PreparingRebalance` (unless already there), failing pending syncs.
    fn prepare_rebalance(&mut self, now: Instant, now_ms: i64) {
        match self.state {
            GroupState::PreparingRebalance | GroupState::Dead => return,
            GroupState::CompletingRebalance => {
                for member in self.members.values_mut() {
                    member.assignment = Bytes::new();
                    if let Some(waiting) = member.awaiting_sync.take() {
                        let _ = waiting.send(Err(BrokerError::RebalanceInProgress));
                    }
                }
            }
            GroupState::Empty | GroupState::Stable => {}
        }
        let rebalance_end = now + self.max_rebalance_timeout();
        let delay = self.config.initial_rebalance_delay;
        if self.state == GroupState::Empty && !delay.is_zero() {
            self.initial_delay_limit = Some(rebalance_end);
            self.join_deadline = Some((now + delay).min(rebalance_end));
        } else {
            self.join_deadline = Some(rebalance_end);
        }
        self.sync_deadline = None;
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    /// Completes the join phase once every member has rejoined and no member id is pending.
    fn maybe_complete_join(&mut self, now: Instant, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_limit.is_some() {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some());
        if all_joined && self.pending.is_empty() {
            self.complete_join(now, now_ms);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the generation advances,
    /// and every waiting JoinGroup is answered (the leader's with everyone's metadata).
    fn complete_join(&mut self, now: Instant, now_ms: i64) {
        let dropped: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in dropped {
            self.remove_member(&id);
        }
        self.join_deadline = None;
        self.initial_delay_limit = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty, now_ms);
            return;
        }
        self.protocol = Some(self.select_protocol());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.join_order.first().cloned();
        }
        self.set_state(GroupState::CompletingRebalance, now_ms);
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.join_order.clone();
        for id in ids {
            let joined = self.joined(&id);
            let member = self.members.get_mut(&id).expect("member exists");
            member.heartbeat_deadline = now + member.session_timeout;
            if let Some(waiting) = member.awaiting_join.take() {
                let _ = waiting.send(Ok(joined));
            }
        }
    }

    /// The JoinGroup response of `member_id` for the current generation.
    fn joined(&self, member_id: &str) -> JoinedGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinedGroup {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            skip_assignment: false,
            members: if is_leader {
                self.members()
                    .map(|m| JoinedMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    fn select_protocol(&self) -> String {
        let mut candidates: Vec<&str> = Vec::new();
        if let Some(first) = self.members.values().next() {
            for (name, _) in &first.protocols {
                if self
                    .members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
                {
                    candidates.push(name);
                }
            }
        }
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        // Most votes wins; a tie goes to the first member's preference.
        let mut best: Option<(&str, usize)> = None;
        for name in candidates {
            let count = votes.get(name).copied().unwrap_or(0);
            if best.is_none_or(|(_, most)| count > most) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned()).unwrap_or_default()
    }

    /// Whether a joining member's protocols fit the group.
    fn supports(&self, request: &JoinGroup) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        // Every existing member (other than the joiner's own old self) must share a protocol
        // with the joiner.
        request.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| m.member_id != request.member_id)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn static_member(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.group_instance_id.as_deref() == Some(instance))
            .map(|m| m.member_id.as_str())
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_changed_ms = now_ms;
    }

    /// Removes a member, answering any request it has waiting.
    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let mut member = self.members.remove(member_id)?;
        self.join_order.retain(|id| id != member_id);
        if let Some(waiting) = member.awaiting_join.take() {
            let _ = waiting.send(Err(BrokerError::UnknownMemberId(format!(
                "{member_id} was removed from the group"
            ))));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            let _ = waiting.send(Err(BrokerError::UnknownMemberId(format!(
                "{member_id} was removed from the group"
            ))));
        }
        Some(member)
    }

    /// A member left or expired: the others must rebalance.
    fn member_gone(&mut self, member_id: &str, now: Instant, now_ms: i64) {
        if self.remove_member(member_id).is_none() {
            return;
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, now_ms);
                self.maybe_complete_join(now, now_ms);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// KIP-345: a request naming a static instance now held by another member id is fenced.
    fn check_fenced(&self, member_id: &str, instance: Option<&str>) -> Result<(), BrokerError> {
        match instance {
            Some(instance)
                if self
                    .static_member(instance)
                    .is_some_and(|id| id != member_id) =>
            {
                Err(BrokerError::FencedInstanceId(format!(
                    "instance {instance} has a newer member id"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks the member id, instance id and generation of a request from a member.
    fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), BrokerError> {
        self.check_fenced(member_id, group_instance_id)?;
        if !self.members.contains_key(member_id) {
            return Err(BrokerError::UnknownMemberId(format!(
                "{member_id} is not a member of group {}",
                self.id
            )));
        }
        if generation != self.generation {
            return Err(BrokerError::IllegalGeneration(format!(
                "generation {generation} is not the group's current {}",
                self.generation
            )));
        }
        Ok(())
    }

    /// SyncGroup.
    pub fn sync(&mut self, request: SyncGroup, now: Instant, now_ms: i64) -> Outcome<Bytes> {
        match self.try_sync(request, now, now_ms) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Now(Err(e)),
        }
    }

    fn try_sync(
        &mut self,
        request: SyncGroup,
        now: Instant,
        now_ms: i64,
    ) -> Result<Outcome<Bytes>, BrokerError> {
        match self.state {
            GroupState::Dead => return Err(BrokerError::CoordinatorNotAvailable),
            GroupState::Empty => {
                return Err(BrokerError::UnknownMemberId(format!(
                    "group {} has no members",
                    self.id
                )));
            }
            _ => {}
        }
        self.validate_member(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation,
        )?;
        if request
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || request
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            return Err(BrokerError::InconsistentGroupProtocol(
                "protocol type or name differs from the group's".into(),
            ));
        }
        match self.state {
            GroupState::PreparingRebalance => Err(BrokerError::RebalanceInProgress),
            GroupState::Stable => {
                let member = &self.members[&request.member_id];
                Ok(Outcome::Now(Ok(member.assignment.clone())))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
                let member = self.members.get_mut(&request.member_id).expect("validated");
                member.awaiting_sync = Some(tx);
                member.heartbeat_deadline = now + member.session_timeout;
                if is_leader {
                    let mut assignments: BTreeMap<String, Bytes> =
                        request.assignments.into_iter().collect();
                    for member in self.members.values_mut() {
                        member.assignment =
                            assignments.remove(&member.member_id).unwrap_or_default();
                        if let Some(waiting) = member.awaiting_sync.take() {
                            let _ = waiting.send(Ok(member.assignment.clone()));
                        }
                    }
                    self.sync_deadline = None;
                    self.set_state(GroupState::Stable, now_ms);
                }
                Ok(Outcome::Wait(rx))
            }
            GroupState::Empty | GroupState::Dead => unreachable!("checked above"),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), BrokerError> {
        match self.state {
            GroupState::Dead => return Err(BrokerError::CoordinatorNotAvailable),
            GroupState::Empty => {
                return Err(BrokerError::UnknownMemberId(format!(
                    "group {} has no members",
                    self.id
                )));
            }
            _ => {}
        }
        self.validate_member(member_id, group_instance_id, generation)?;
        let member = self.members.get_mut(member_id).expect("validated");
        member.heartbeat_deadline = now + member.session_timeout;
        if self.state == GroupState::PreparingRebalance {
            return Err(BrokerError::RebalanceInProgress);
        }
        Ok(())
    }

    /// LeaveGroup of one member (by member id, or by instance id for static members).
    pub fn leave(
        &mut self,
        leaving: &LeavingMember,
        now: Instant,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        if self.state == GroupState::Dead {
            return Err(BrokerError::CoordinatorNotAvailable);
        }
        let member_id = match &leaving.group_instance_id {
            Some(instance) => {
                let Some(current) = self.static_member(instance).map(str::to_owned) else {
                    return Err(BrokerError::UnknownMemberId(format!(
                        "no member with group.instance.id {instance}"
                    )));
                };
                if !leaving.member_id.is_empty() && leaving.member_id != current {
                    return Err(BrokerError::FencedInstanceId(format!(
                        "instance {instance} has a newer member id"
                    )));
                }
                current
            }
            None => leaving.member_id.clone(),
        };
        if self.pending.remove(&member_id).is_some() {
            self.maybe_complete_join(now, now_ms);
            return Ok(());
        }
        if !self.members.contains_key(&member_id) {
            return Err(BrokerError::UnknownMemberId(format!(
                "{member_id} is not a member of group {}",
                self.id
            )));
        }
        self.member_gone(&member_id, now, now_ms);
        Ok(())
    }

    /// Expires sessions, pending member ids, and the join and sync phases. Returns whether the
    /// membership changed.
    pub fn tick(&mut self, now: Instant, now_ms: i64) -> bool {
        let generation = self.generation;
        let state = self.state;
        let before = self.members.len();
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                // Members waiting in a rebalance are kept alive by their request.
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.heartbeat_deadline <= now
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "session expired");
            self.member_gone(&id, now, now_ms);
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline.is_some_and(|d| d <= now)
        {
            self.complete_join(now, now_ms);
        } else {
            self.maybe_complete_join(now, now_ms);
        }
        if self.state == GroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| d <= now)
        {
            let unsynced: Vec<String> = self
                .members
                .values()
                .filter(|m| m.awaiting_sync.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for id in unsynced {
                self.member_gone(&id, now, now_ms);
            }
        }
        generation != self.generation || state != self.state || before != self.members.len()
    }

    /// Answers every waiting JoinGroup and SyncGroup with `error`.
    pub fn fail_waiters(&mut self, error: &BrokerError) {
        for member in self.members.values_mut() {
            if let Some(waiting) = member.awaiting_join.take() {
                let _ = waiting.send(Err(error.clone()));
            }
            if let Some(waiting) = member.awaiting_sync.take() {
                let _ = waiting.send(Err(error.clone()));
            }
        }
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self, now_ms: i64) -> Result<(), BrokerError> {
        match self.state {
            GroupState::Empty => {
                self.set_state(GroupState::Dead, now_ms);
                Ok(())
            }
            GroupState::Dead => Err(BrokerError::GroupIdNotFound),
            _ => Err(BrokerError::NonEmptyGroup),
        }
    }
}

/// Checks a JoinGroup's session timeout against `group.min/max.session.timeout.ms`.
pub fn check_session_timeout(config: &GroupConfig, timeout: Duration) -> Result<(), BrokerError> {
    if timeout < config.min_session_timeout || timeout > config.max_session_timeout {
        return Err(BrokerError::InvalidSessionTimeout(format!(
            "session timeout {} ms is outside [{}, {}] ms",
            timeout.as_millis(),
            config.min_session_timeout.as_millis(),
            config.max_session_timeout.as_millis()
        )));
    }
    Ok(())
}

/// The topics of a `ConsumerProtocolSubscription` (its version is the first two bytes).
fn subscription_topics(metadata: &Bytes) -> Option<Vec<String>> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut bytes = metadata.clone();
    if bytes.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    bytes::Buf::advance(&mut bytes, 2);
    let subscription =
        ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3)).ok()?;
    Some(
        subscription
            .topics
            .into_iter()
            .map(|t| t.to_string())
            .collect(),
    )
}

#[cfg(test)]
#[path = "state_test.rs"]
mod tests;
