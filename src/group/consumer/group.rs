//! A KIP-848 consumer group: members heartbeat their subscriptions, the coordinator computes
//! the target assignment with a server-side assignor whenever the group epoch moves, and
//! brings each member to its target one heartbeat at a time. A member first gives up the
//! partitions it no longer keeps (its epoch stays until it reports them gone), then gets the
//! new ones that no other member still owns, at the new epoch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use strata_api::broker::BrokerError;
use strata_api::group::{
    ConsumerGroupDescription, ConsumerHeartbeat, ConsumerHeartbeatAnswer, ConsumerMemberDescription,
};

use super::assignor::{self, ASSIGNORS, Assignment, MemberSpec};
use super::classic::{ClassicMember, MigrationPolicy};

/// Where a member is on its way to its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberState {
    /// At its target.
    Stable,
    /// Waiting for it to give up partitions it no longer keeps.
    UnrevokedPartitions,
    /// Waiting for other members to give up partitions of its target.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) instance_id: Option<String>,
    pub(super) rack_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) rebalance_timeout: Duration,
    pub(super) topics: Vec<String>,
    pub(super) regex: Option<String>,
    pub(super) assignor: Option<String>,
    pub(super) epoch: i32,
    pub(super) previous_epoch: i32,
    pub(super) state: MemberState,
    pub(super) assigned: Assignment,
    pub(super) revoking: Assignment,
    pub(super) last_heartbeat: Instant,
    /// When it must have given up its revoked partitions.
    pub(super) revoke_by: Option<Instant>,
    /// Set for a member that speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat)
    /// in this group: one not yet upgraded.
    pub(super) classic: Option<ClassicMember>,
}

impl Member {
    /// A member joining with nothing assigned yet, at epoch 0.
    pub(super) fn joining(
        instance_id: Option<String>,
        rebalance_timeout: Duration,
        now: Instant,
    ) -> Self {
        Self {
            instance_id,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout,
            topics: Vec::new(),
            regex: None,
            assignor: None,
            epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            last_heartbeat: now,
            revoke_by: None,
            classic: None,
        }
    }
}

/// What the topics look like to the group: the partition count of every topic that exists,
/// and every topic name (for regular expressions).
pub trait TopicView {
    /// The partition count of `topic`, if it exists.
    fn partitions(&self, topic: &str) -> Option<i32>;
    /// Every topic.
    fn names(&self) -> Vec<String>;
}

/// A consumer group's members and assignment.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub(super) epoch: i32,
    pub(super) assignment_epoch: i32,
    pub(super) members: BTreeMap<String, Member>,
    pub(super) target: BTreeMap<String, Assignment>,
    /// Partition → the member holding it (assigned or being revoked).
    pub(super) owners: HashMap<(String, i32), String>,
    /// The subscribed topics that exist, with their partition counts, when last computed.
    pub(super) subscribed: BTreeMap<String, i32>,
    /// The group epoch before a consumer-protocol member last left: the generation of the
    /// classic group this one turns back into if only classic members remain.
    pub(super) downgrade_from: Option<i32>,
}

/// Limits of the group's coordinator.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `group.consumer.max.size`.
    pub max_size: usize,
    /// `group.consumer.migration.policy`: whether groups change protocol while in use.
    pub migration: MigrationPolicy,
}

pub(super) fn flat(a: &Assignment) -> impl Iterator<Item = (String, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
}

pub(super) fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, p) in flat(a) {
        if !b.get(&t).is_some_and(|s| s.contains(&p)) {
            out.entry(t).or_default().insert(p);
        }
    }
    out
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    flat(a).any(|(t, p)| b.get(&t).is_some_and(|s| s.contains(&p)))
}

/// A subscription's regular expression (RE2 syntax, as Kafka's RE2/J), matching whole names.
fn whole_match(regex: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{regex})$")).ok()
}

impl ConsumerGroup {
    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// How many members it has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The existing topics its members subscribe to (OffsetDelete keeps their offsets).
    pub fn subscribed_topics(&self) -> std::collections::BTreeSet<String> {
        self.subscribed.keys().cloned().collect()
    }

    /// Kafka's name of the group's state.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Checks an offset commit (or fetch) of `member_id` at `epoch` (OffsetCommit v9+ carries
    /// the member epoch as its generation). Commits without a member are accepted only while
    /// the group has none.
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> Result<(), BrokerError> {
        if epoch < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or_else(|| {
            BrokerError::UnknownMemberId(format!("{member_id} is not a member of the group"))
        })?;
        if epoch != member.epoch && member.classic.is_some() {
            return Err(BrokerError::IllegalGeneration(format!(
                "generation {epoch} is not the member's current {}",
                member.epoch
            )));
        }
        if epoch != member.epoch {
            return Err(BrokerError::StaleMemberEpoch(format!(
                "member epoch {epoch} is not the member's current epoch {}",
                member.epoch
            )));
        }
        Ok(())
    }

    /// One ConsumerGroupHeartbeat (validated by the caller).
    pub fn heartbeat(
        &mut self,
        hb: ConsumerHeartbeat,
        topics: &dyn TopicView,
        config: &ConsumerGroupConfig,
        now: Instant,
    ) -> Result<ConsumerHeartbeatAnswer, BrokerError> {
        let interval = config.heartbeat_interval.as_millis() as i32;
        let member_id = if hb.member_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            hb.member_id.clone()
        };
        if hb.member_epoch < 0 {
            // -1 leaves; -2 (a static member leaving for a while) leaves too: its
            // partitions go to the others until it is back.
            if self.members.contains_key(&member_id) {
                self.remove(&member_id);
            }
            return Ok(ConsumerHeartbeatAnswer {
                member_id,
                member_epoch: hb.member_epoch,
                heartbeat_interval_ms: interval,
                assignment: None,
            });
        }
        let owned = hb.owned.map(|o| {
            o.into_iter()
                .map(|(t, ps)| (t, ps.into_iter().collect()))
                .collect::<Assignment>()
        });
        let mut bump = false;
        if hb.member_epoch == 0 {
            if self.members.contains_key(&member_id) {
                // A member rejoining after it was fenced has lost its partitions.
                self.remove(&member_id);
            } else if self.members.len() >= config.max_size {
                return Err(BrokerError::GroupMaxSizeReached);
            }
            if let Some(instance) = &hb.instance_id
                && self
                    .members
                    .values()
                    .any(|m| m.instance_id.as_ref() == Some(instance))
            {
                return Err(BrokerError::UnreleasedInstanceId(format!(
                    "instance id {instance} is in use by another member"
                )));
            }
            self.members.insert(
                member_id.clone(),
                Member {
                    client_id: hb.client_id.clone(),
                    client_host: hb.client_host.clone(),
                    ..Member::joining(
                        hb.instance_id.clone(),
                        Duration::from_millis(hb.rebalance_timeout_ms.max(0) as u64),
                        now,
                    )
                },
            );
            bump = true;
        } else {
            let member = self.members.get(&member_id).ok_or_else(|| {
                BrokerError::UnknownMemberId(format!("{member_id} is not a member of the group"))
            })?;
            let tolerated = hb.member_epoch == member.previous_epoch
                && owned
                    .as_ref()
                    .is_some_and(|o| minus(o, &member.assigned).is_empty());
            if hb.member_epoch != member.epoch && !tolerated {
                return Err(BrokerError::FencedMemberEpoch(format!(
                    "member epoch {} is not the member's epoch {}",
                    hb.member_epoch, member.epoch
                )));
            }
        }
        let member = self
            .members
            .get_mut(&member_id)
            .expect("member added above");
        member.last_heartbeat = now;
        if let Some(rack) = hb.rack_id {
            member.rack_id = Some(rack);
        }
        if hb.rebalance_timeout_ms > 0 {
            member.rebalance_timeout = Duration::from_millis(hb.rebalance_timeout_ms as u64);
        }
        if let Some(topics) = hb.subscribed_topic_names {
            bump |= topics != member.topics;
            member.topics = topics;
        }
        if let Some(regex) = hb.subscribed_topic_regex {
            let regex = Some(regex).filter(|r| !r.is_empty());
            bump |= regex != member.regex;
            member.regex = regex;
        }
        if let Some(assignor) = hb.server_assignor {
            member.assignor = Some(assignor);
        }
        let before = self.members[&member_id].assigned.clone();
        self.assign_and_reconcile(&member_id, bump, owned.as_ref(), topics, now);
        let member = &self.members[&member_id];
        let full = hb.member_epoch == 0 || (hb.rebalance_timeout_ms != -1 && owned.is_some());
        Ok(ConsumerHeartbeatAnswer {
            member_id,
            member_epoch: member.epoch,
            heartbeat_interval_ms: interval,
            assignment: (full || member.assigned != before).then(|| {
                member
                    .assigned
                    .iter()
                    .map(|(t, ps)| (t.clone(), ps.iter().copied().collect()))
                    .collect()
            }),
        })
    }

    /// After a member's join or heartbeat: bumps the group epoch if its subscription (or the
    /// topics subscribed) changed, recomputes the target assignment for a new epoch, and
    /// moves the member toward its target.
    pub(super) fn assign_and_reconcile(
        &mut self,
        member_id: &str,
        mut bump: bool,
        owned: Option<&Assignment>,
        topics: &dyn TopicView,
        now: Instant,
    ) {
        let subscribed = self.subscription(topics);
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            bump = true;
        }
        if bump {
            self.epoch += 1;
        }
        if self.epoch > self.assignment_epoch {
            self.compute_target(topics);
        }
        self.reconcile(member_id, owned, now);
    }

    /// The topics each member subscribes to that exist, by name or regular expression.
    pub(super) fn topics_of(
        member: &Member,
        topics: &dyn TopicView,
        names: &[String],
    ) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = member
            .topics
            .iter()
            .filter(|t| topics.partitions(t).is_some())
            .cloned()
            .collect();
        if let Some(regex) = member.regex.as_deref().and_then(whole_match) {
            out.extend(names.iter().filter(|n| regex.is_match(n)).cloned());
        }
        out
    }

    pub(super) fn subscription(&self, topics: &dyn TopicView) -> BTreeMap<String, i32> {
        let names = if self.members.values().any(|m| m.regex.is_some()) {
            topics.names()
        } else {
            Vec::new()
        };
        let mut out = BTreeMap::new();
        for member in self.members.values() {
            for topic in Self::topics_of(member, topics, &names) {
                if let Some(count) = topics.partitions(&topic) {
                    out.insert(topic, count);
                }
            }
        }
        out
    }

    /// The assignor most members ask for, else the default.
    pub(super) fn assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(name) = m.assignor.as_deref()
                && let Some(known) = ASSIGNORS.iter().find(|a| **a == name)
            {
                *votes.entry(known).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map_or(ASSIGNORS[0], |(name, _)| {
                ASSIGNORS
                    .iter()
                    .find(|a| **a == name)
                    .copied()
                    .unwrap_or(ASSIGNORS[0])
            })
    }

    pub(super) fn compute_target(&mut self, topics: &dyn TopicView) {
        let names = if self.members.values().any(|m| m.regex.is_some()) {
            topics.names()
        } else {
            Vec::new()
        };
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    MemberSpec {
                        topics: Self::topics_of(m, topics, &names),
                        previous: self.target.get(id).cloned().unwrap_or_default(),
                    },
                )
            })
            .collect();
        self.target = assignor::assign(self.assignor(), &specs, &self.subscribed);
        self.assignment_epoch = self.epoch;
    }

    /// Moves `member_id` toward its target (Kafka's CurrentAssignmentBuilder). `owned` is what
    /// the member reports holding (`None`: not reported).
    pub(super) fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Instant) {
        let member = &self.members[member_id];
        if member.state == MemberState::UnrevokedPartitions {
            let still_owns = owned.is_none_or(|o| intersects(o, &member.revoking));
            if still_owns {
                return;
            }
            let released: Vec<(String, i32)> = flat(&member.revoking).collect();
            for p in released {
                self.owners.remove(&p);
            }
            let member = self.members.get_mut(member_id).expect("member");
            member.revoking.clear();
            member.revoke_by = None;
        } else if member.state == MemberState::Stable && member.epoch == self.assignment_epoch {
            return;
        }
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let member = &self.members[member_id];
        let revoke = minus(&member.assigned, &target);
        let kept = minus(&member.assigned, &revoke);
        if !revoke.is_empty() && owned.is_none_or(|o| intersects(o, &revoke)) {
            let member = self.members.get_mut(member_id).expect("member");
            member.assigned = kept;
            member.revoking = revoke;
            member.state = MemberState::UnrevokedPartitions;
            member.revoke_by = Some(now + member.rebalance_timeout);
            return;
        }
        // Whatever it no longer keeps, it says it has already given up.
        for p in flat(&revoke) {
            if self.owners.get(&p).is_some_and(|o| o == member_id) {
                self.owners.remove(&p);
            }
        }
        self.members
            .get_mut(member_id)
            .expect("member")
            .assigned
            .clone_from(&kept);
        let mut granted = Assignment::new();
        let mut unreleased = false;
        for (t, p) in flat(&minus(&target, &kept)) {
            match self.owners.get(&(t.clone(), p)) {
                Some(owner) if owner != member_id => unreleased = true,
                _ => {
                    granted.entry(t).or_default().insert(p);
                }
            }
        }
        for p in flat(&granted) {
            self.owners.insert(p, member_id.to_owned());
        }
        let epoch = self.assignment_epoch;
        let member = self.members.get_mut(member_id).expect("member");
        for (t, ps) in granted {
            member.assigned.entry(t).or_default().extend(ps);
        }
        if member.epoch != epoch {
            member.previous_epoch = member.epoch;
            member.epoch = epoch;
        }
        member.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    /// Takes `member_id` out of the group: its partitions are free for the others.
    pub(super) fn remove(&mut self, member_id: &str) {
        if let Some(member) = self.members.remove(member_id) {
            for p in flat(&member.assigned).chain(flat(&member.revoking)) {
                if self.owners.get(&p).is_some_and(|o| o == member_id) {
                    self.owners.remove(&p);
                }
            }
            self.target.remove(member_id);
            if member.classic.is_none() {
                self.downgrade_from = Some(self.epoch);
            }
            self.epoch += 1;
        }
    }

    /// Fences members past their session timeout, or past their rebalance timeout with
    /// partitions still to give up; whether any was.
    pub fn expire(&mut self, session_timeout: Duration, now: Instant) -> bool {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                let session = m
                    .classic
                    .as_ref()
                    .map_or(session_timeout, |c| c.session_timeout);
                now.duration_since(m.last_heartbeat) > session
                    || m.revoke_by.is_some_and(|by| now > by)
                    || m.classic
                        .as_ref()
                        .and_then(|c| c.deadline)
                        .is_some_and(|by| now > by)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(member = %id, "consumer group member fenced: no heartbeat, rejoin or revocation in time");
            self.remove(id);
        }
        !expired.is_empty()
    }

    /// ConsumerGroupDescribe.
    pub fn describe(&self) -> ConsumerGroupDescription {
        let list = |a: &Assignment| -> Vec<(String, Vec<i32>)> {
            a.iter()
                .map(|(t, ps)| (t.clone(), ps.iter().copied().collect()))
                .collect()
        };
        ConsumerGroupDescription {
            state: self.state(),
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor(),
            members: self
                .members
                .iter()
                .map(|(id, m)| ConsumerMemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.topics.clone(),
                    classic: m.classic.is_some(),
                    subscribed_topic_regex: m.regex.clone(),
                    assignment: list(&m.assigned),
                    target: list(&self.target.get(id).cloned().unwrap_or_default()),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "group_test.rs"]
mod tests;
