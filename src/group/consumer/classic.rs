//! Classic members inside a consumer-protocol group: KIP-848's online migration. A group can
//! be upgraded while in use (its first consumer-protocol member turns the classic group into
//! a consumer group, keeping every member and its partitions) and downgraded when the last
//! consumer-protocol member leaves. Meanwhile classic members keep their protocol: JoinGroup
//! runs the same assign-and-reconcile step as a ConsumerGroupHeartbeat (with the owned
//! partitions their subscription reports), answers at once with the member's epoch as the
//! generation and no leader, and SyncGroup hands out the server's assignment encoded as a
//! ConsumerProtocolAssignment. A Heartbeat answers REBALANCE_IN_PROGRESS whenever the member
//! has something to give up or gain, which makes it rejoin.

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strata_api::broker::BrokerError;
use strata_api::group::{
    GroupDescription, JoinGroup, JoinedGroup, LeavingMember, MemberDescription, SyncGroup,
};

use super::assignor::Assignment;
use super::group::{
    ConsumerGroup, ConsumerGroupConfig, Member, MemberState, TopicView, flat, minus,
};

/// The only protocol type a consumer group's classic members may use.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// `group.consumer.migration.policy`: which way groups may change protocol while they have
/// members (an empty group always takes the protocol of whoever joins it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Neither way.
    Disabled,
    /// Classic to consumer only.
    Upgrade,
    /// Consumer to classic only.
    Downgrade,
    /// Both ways (Kafka's default).
    Bidirectional,
}

impl MigrationPolicy {
    /// The policy named `name` (case-insensitive), as Kafka spells it.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "disabled" => Some(Self::Disabled),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "bidirectional" => Some(Self::Bidirectional),
            _ => None,
        }
    }

    /// Whether a classic group may become a consumer group while it has members.
    pub fn upgrades(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }

    /// Whether a consumer group left with classic members only turns back into a classic one.
    pub fn downgrades(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

/// What a classic member of a consumer group keeps of its protocol.
#[derive(Debug, Clone)]
pub(crate) struct ClassicMember {
    pub(super) session_timeout: Duration,
    /// Its protocols with their metadata, most preferred first.
    pub(super) protocols: Vec<(String, Bytes)>,
    /// When it must next SyncGroup (after a join) or rejoin (after being told to), or be
    /// fenced: Kafka's sync and join timers.
    pub(super) deadline: Option<Instant>,
}

/// A classic member carried across a change of protocol, either way.
#[derive(Debug, Clone)]
pub struct ClassicSeat {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Its session timeout.
    pub session_timeout: Duration,
    /// Its rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Its protocols with their metadata, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// Its assignment, a serialized ConsumerProtocolAssignment.
    pub assignment: Bytes,
}

/// A consumer group turning back into a classic one.
#[derive(Debug)]
pub struct Downgrade {
    /// The classic group's generation.
    pub generation: i32,
    /// Its members, each with its target assignment.
    pub members: Vec<ClassicSeat>,
}

/// What a classic member's ConsumerProtocolSubscription says.
#[derive(Debug, Default)]
struct Subscription {
    topics: Vec<String>,
    owned: Assignment,
    rack: Option<String>,
}

/// The version prefix of a consumer protocol message, and its body.
fn versioned(bytes: &Bytes) -> Option<(i16, Bytes)> {
    if bytes.len() < 2 {
        return None;
    }
    let mut body = bytes.clone();
    let version = body.get_i16();
    // Newer versions only add fields at the end: read them as the newest we know.
    Some((version.clamp(0, 3), body))
}

fn decode_subscription(metadata: &Bytes) -> Option<Subscription> {
    let (version, mut body) = versioned(metadata)?;
    let s = ConsumerProtocolSubscription::decode(&mut body, version).ok()?;
    Some(Subscription {
        topics: s.topics.into_iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .into_iter()
            .filter(|tp| !tp.partitions.is_empty())
            .map(|tp| (tp.topic.to_string(), tp.partitions.into_iter().collect()))
            .collect(),
        rack: s.rack_id.map(|r| r.to_string()),
    })
}

/// A ConsumerProtocolAssignment's partitions (empty if it does not decode).
pub(crate) fn decode_assignment(bytes: &Bytes) -> Assignment {
    let Some((version, mut body)) = versioned(bytes) else {
        return Assignment::new();
    };
    ConsumerProtocolAssignment::decode(&mut body, version)
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .filter(|tp| !tp.partitions.is_empty())
                .map(|tp| (tp.topic.to_string(), tp.partitions.into_iter().collect()))
                .collect()
        })
        .unwrap_or_default()
}

/// `assignment` as a ConsumerProtocolAssignment of `version` (that of the member's
/// subscription), version first.
fn encode_assignment(assignment: &Assignment, version: i16) -> Bytes {
    let message = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    if message.encode(&mut buf, version).is_err() {
        // Every version 0-3 encodes these two fields; nothing here can fail.
        return Bytes::new();
    }
    buf.freeze()
}

/// A consumer-protocol member's subscription as a classic ConsumerProtocolSubscription (v3).
fn encode_subscription(member: &Member) -> Bytes {
    let message = ConsumerProtocolSubscription::default()
        .with_topics(
            member
                .topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_rack_id(member.rack_id.clone().map(StrBytes::from_string));
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    if message.encode(&mut buf, 3).is_err() {
        return Bytes::new();
    }
    buf.freeze()
}

/// The version of a member's subscription metadata, which its assignment is encoded with.
fn protocol_version(protocols: &[(String, Bytes)]) -> i16 {
    protocols
        .first()
        .and_then(|(_, m)| versioned(m))
        .map_or(0, |(v, _)| v)
}

impl ConsumerGroup {
    /// Upgrade: a classic group's members become members of a consumer group at its
    /// generation, each keeping the partitions the classic leader gave it.
    pub fn from_classic(
        generation: i32,
        protocol: Option<&str>,
        seats: Vec<ClassicSeat>,
        topics: &dyn TopicView,
        now: Instant,
    ) -> Self {
        let mut group = ConsumerGroup {
            epoch: generation,
            assignment_epoch: generation,
            ..ConsumerGroup::default()
        };
        for seat in seats {
            let metadata = seat
                .protocols
                .iter()
                .find(|(name, _)| Some(name.as_str()) == protocol)
                .or(seat.protocols.first())
                .map(|(_, m)| m.clone())
                .unwrap_or_default();
            let subscription = decode_subscription(&metadata).unwrap_or_default();
            let mut assigned = decode_assignment(&seat.assignment);
            // Two members never own one partition; should a classic leader have said so,
            // the first keeps it.
            for (t, p) in flat(&assigned.clone()) {
                match group.owners.entry((t.clone(), p)) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        if let Some(ps) = assigned.get_mut(&t) {
                            ps.remove(&p);
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(seat.member_id.clone());
                    }
                }
            }
            assigned.retain(|_, ps| !ps.is_empty());
            group
                .target
                .insert(seat.member_id.clone(), assigned.clone());
            group.members.insert(
                seat.member_id.clone(),
                Member {
                    instance_id: seat.instance_id,
                    rack_id: subscription.rack,
                    client_id: seat.client_id,
                    client_host: seat.client_host,
                    rebalance_timeout: seat.rebalance_timeout,
                    topics: subscription.topics,
                    regex: None,
                    assignor: None,
                    epoch: generation,
                    previous_epoch: generation,
                    state: MemberState::Stable,
                    assigned,
                    revoking: Assignment::new(),
                    last_heartbeat: now,
                    revoke_by: None,
                    classic: Some(ClassicMember {
                        session_timeout: seat.session_timeout,
                        protocols: seat.protocols,
                        deadline: None,
                    }),
                },
            );
        }
        group.subscribed = group.subscription(topics);
        group
    }

    /// A classic member's JoinGroup: answered at once, with its epoch as the generation.
    pub fn classic_join(
        &mut self,
        request: JoinGroup,
        topics: &dyn TopicView,
        config: &ConsumerGroupConfig,
        now: Instant,
    ) -> Result<JoinedGroup, BrokerError> {
        let unknown = request.member_id.is_empty();
        let member_id = if unknown {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.member_id.clone()
        };
        let static_holder = request.group_instance_id.as_ref().and_then(|instance| {
            self.members
                .iter()
                .find(|(_, m)| m.instance_id.as_ref() == Some(instance))
                .map(|(id, _)| id.clone())
        });
        if !self.members.contains_key(&member_id)
            && static_holder.is_none()
            && self.members.len() >= config.max_size
        {
            return Err(BrokerError::GroupMaxSizeReached);
        }
        self.check_classic_protocols(&member_id, &request)?;
        if unknown && request.require_known_member_id && request.group_instance_id.is_none() {
            // KIP-394: hand out the id first; nothing is kept until the member comes back.
            return Err(BrokerError::MemberIdRequired(member_id));
        }
        if let Some(holder) = static_holder
            && holder != member_id
        {
            if !unknown {
                return Err(BrokerError::FencedInstanceId(format!(
                    "instance {} has a newer member id",
                    request.group_instance_id.as_deref().unwrap_or_default()
                )));
            }
            // A static member restarted: the new id takes over its seat and partitions.
            self.rename(&holder, &member_id);
        }
        if self
            .members
            .get(&member_id)
            .is_some_and(|m| m.classic.is_none())
        {
            return Err(BrokerError::UnknownMemberId(format!(
                "{member_id} uses the consumer protocol, not JoinGroup"
            )));
        }
        let subscription = request
            .protocols
            .first()
            .and_then(|(_, metadata)| decode_subscription(metadata))
            .ok_or_else(|| {
                BrokerError::InconsistentGroupProtocol(
                    "the member's subscription is not a ConsumerProtocolSubscription".into(),
                )
            })?;
        let mut bump = false;
        if !self.members.contains_key(&member_id) {
            self.members.insert(
                member_id.clone(),
                Member::joining(
                    request.group_instance_id.clone(),
                    request.rebalance_timeout,
                    now,
                ),
            );
            bump = true;
        }
        let member = self
            .members
            .get_mut(&member_id)
            .expect("member added above");
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.rebalance_timeout = request.rebalance_timeout;
        member.last_heartbeat = now;
        if subscription.rack.is_some() {
            member.rack_id = subscription.rack;
        }
        bump |= member.topics != subscription.topics;
        member.topics = subscription.topics;
        let protocol_name = request
            .protocols
            .first()
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        member.classic = Some(ClassicMember {
            session_timeout: request.session_timeout,
            protocols: request.protocols,
            // It must SyncGroup within its rebalance timeout.
            deadline: Some(now + request.rebalance_timeout),
        });
        self.assign_and_reconcile(&member_id, bump, Some(&subscription.owned), topics, now);
        let epoch = self.members[&member_id].epoch;
        Ok(JoinedGroup {
            generation: epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: Some(protocol_name),
            // Every classic member is a follower: the coordinator assigns.
            leader: String::new(),
            member_id,
            skip_assignment: false,
            members: Vec::new(),
        })
    }

    /// A classic member's SyncGroup: its current assignment, unless it must rejoin first.
    pub fn classic_sync(
        &mut self,
        request: &SyncGroup,
        now: Instant,
    ) -> Result<Bytes, BrokerError> {
        self.check_classic_member(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation,
        )?;
        let epoch = self.epoch;
        let member = self.members.get_mut(&request.member_id).expect("checked");
        let classic = member.classic.as_mut().expect("checked");
        let first = classic.protocols.first().map(|(name, _)| name.as_str());
        if request
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE)
            || request
                .protocol_name
                .as_deref()
                .is_some_and(|p| Some(p) != first)
        {
            return Err(BrokerError::InconsistentGroupProtocol(
                "protocol type or name differs from the member's".into(),
            ));
        }
        member.last_heartbeat = now;
        if epoch > member.epoch && member.state != MemberState::UnrevokedPartitions {
            classic
                .deadline
                .get_or_insert(now + member.rebalance_timeout);
            return Err(BrokerError::RebalanceInProgress);
        }
        classic.deadline = None;
        Ok(encode_assignment(
            &member.assigned,
            protocol_version(&classic.protocols),
        ))
    }

    /// A classic member's Heartbeat: REBALANCE_IN_PROGRESS when it has partitions to give up
    /// or to gain, so that it rejoins.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), BrokerError> {
        self.check_classic_member(member_id, instance_id, generation)?;
        let member = &self.members[member_id];
        let waiting = member.state == MemberState::UnreleasedPartitions && {
            let target = self.target.get(member_id).cloned().unwrap_or_default();
            flat(&minus(&target, &member.assigned))
                .any(|p| self.owners.get(&p).is_some_and(|o| o != member_id))
        };
        let rejoin = member.epoch < self.epoch
            || member.state == MemberState::UnrevokedPartitions
            || (member.state == MemberState::UnreleasedPartitions && !waiting);
        let member = self.members.get_mut(member_id).expect("checked");
        member.last_heartbeat = now;
        if rejoin {
            let by = now + member.rebalance_timeout;
            member
                .classic
                .as_mut()
                .expect("checked")
                .deadline
                .get_or_insert(by);
            return Err(BrokerError::RebalanceInProgress);
        }
        Ok(())
    }

    /// A classic member's LeaveGroup (by member id, or by instance id for static members).
    pub fn classic_leave(&mut self, leaving: &LeavingMember) -> Result<(), BrokerError> {
        let member_id = match &leaving.group_instance_id {
            Some(instance) => {
                let Some(current) = self
                    .members
                    .iter()
                    .find(|(_, m)| m.instance_id.as_ref() == Some(instance))
                    .map(|(id, _)| id.clone())
                else {
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
        match self.members.get(&member_id) {
            Some(m) if m.classic.is_some() => {
                self.remove(&member_id);
                Ok(())
            }
            Some(_) => Err(BrokerError::UnknownMemberId(format!(
                "{member_id} uses the consumer protocol, not LeaveGroup"
            ))),
            None => Err(BrokerError::UnknownMemberId(format!(
                "{member_id} is not a member of the group"
            ))),
        }
    }

    /// DescribeGroups of a consumer group, as Kafka answers it: its state and assignor, and
    /// each member's subscription and assignment in the classic encoding.
    pub fn as_described(&self) -> GroupDescription {
        GroupDescription {
            state: self.state(),
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
            protocol: self.assignor().to_owned(),
            members: self
                .members
                .iter()
                .map(|(id, m)| {
                    let (metadata, version) = match &m.classic {
                        Some(c) => (
                            c.protocols
                                .first()
                                .map(|(_, meta)| meta.clone())
                                .unwrap_or_default(),
                            protocol_version(&c.protocols),
                        ),
                        None => (encode_subscription(m), 3),
                    };
                    MemberDescription {
                        member_id: id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata,
                        assignment: encode_assignment(&m.assigned, version),
                    }
                })
                .collect(),
        }
    }

    /// After a consumer-protocol member left: the classic group to turn into, if only
    /// classic members remain and `policy` and the classic group's `max_size` allow it.
    pub fn take_downgrade(
        &mut self,
        policy: MigrationPolicy,
        max_size: usize,
    ) -> Option<Downgrade> {
        let generation = self.downgrade_from.take()?;
        if !policy.downgrades()
            || self.members.is_empty()
            || self.members.len() > max_size
            || self.members.values().any(|m| m.classic.is_none())
        {
            return None;
        }
        let members = std::mem::take(&mut self.members)
            .into_iter()
            .map(|(id, m)| {
                let classic = m.classic.expect("every member is classic");
                let target = self.target.get(&id).unwrap_or(&m.assigned);
                ClassicSeat {
                    assignment: encode_assignment(target, protocol_version(&classic.protocols)),
                    member_id: id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: classic.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols: classic.protocols,
                }
            })
            .collect();
        *self = ConsumerGroup::default();
        Some(Downgrade {
            generation,
            members,
        })
    }

    /// Checks a classic member's SyncGroup or Heartbeat.
    fn check_classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), BrokerError> {
        if let Some(instance) = instance_id
            && self.members.iter().any(|(id, m)| {
                m.instance_id.as_deref() == Some(instance) && id.as_str() != member_id
            })
        {
            return Err(BrokerError::FencedInstanceId(format!(
                "instance {instance} has a newer member id"
            )));
        }
        let member = match self.members.get(member_id) {
            Some(m) if m.classic.is_some() => m,
            _ => {
                return Err(BrokerError::UnknownMemberId(format!(
                    "{member_id} is not a classic member of the group"
                )));
            }
        };
        if generation != member.epoch {
            return Err(BrokerError::IllegalGeneration(format!(
                "generation {generation} is not the member's current {}",
                member.epoch
            )));
        }
        Ok(())
    }

    /// The protocols of a joining classic member must be the consumer protocol and share a
    /// name with every other classic member's.
    fn check_classic_protocols(
        &self,
        member_id: &str,
        request: &JoinGroup,
    ) -> Result<(), BrokerError> {
        let shared = request.protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .filter(|(id, _)| id.as_str() != member_id)
                .filter_map(|(_, m)| m.classic.as_ref())
                .all(|c| c.protocols.iter().any(|(n, _)| n == name))
        });
        if request.protocol_type != CONSUMER_PROTOCOL_TYPE || !shared {
            return Err(BrokerError::InconsistentGroupProtocol(format!(
                "protocol type {} with protocols [{}] does not match the consumer group's members",
                request.protocol_type,
                request
                    .protocols
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(())
    }

    /// Moves a member's seat (epoch, partitions, target) to a new member id.
    fn rename(&mut self, old: &str, new: &str) {
        let Some(member) = self.members.remove(old) else {
            return;
        };
        for owner in self.owners.values_mut() {
            if owner == old {
                new.clone_into(owner);
            }
        }
        if let Some(target) = self.target.remove(old) {
            self.target.insert(new.to_owned(), target);
        }
        self.members.insert(new.to_owned(), member);
    }
}

#[cfg(test)]
#[path = "classic_test.rs"]
mod tests;
