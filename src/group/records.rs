//! The records of `__consumer_offsets`, in Kafka's own schemas, so that Kafka's tools can read
//! the topic: an offset commit is keyed by (group, topic, partition) (key version 1, value
//! version 3), a group's membership by its id (key version 2, value version 3). A record
//! without a value (a tombstone) deletes its key, so compaction keeps just the latest of each.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKey {
    /// A committed offset.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A group's membership.
    Group {
        /// Group id.
        group: String,
    },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Self::Offset { group, .. } | Self::Group { group } => group,
        }
    }
}

/// Value of an offset commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
    /// When it was committed, ms since the epoch.
    pub commit_timestamp: i64,
}

/// One member in a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Rebalance timeout, ms.
    pub rebalance_timeout: i32,
    /// Session timeout, ms.
    pub session_timeout: i32,
    /// Its metadata for the chosen protocol.
    pub subscription: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// Value of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type (`consumer`), empty for a group with offsets only.
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol.
    pub protocol: Option<String>,
    /// Leader's member id.
    pub leader: Option<String>,
    /// When the state last changed, ms since the epoch.
    pub state_timestamp: i64,
    /// Members of the generation.
    pub members: Vec<MemberValue>,
}

/// A decoding failure: the bytes do not hold a record of a known schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct Malformed(pub String);

impl RecordKey {
    /// Encodes the key.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            Self::Offset {
                group,
                topic,
                partition,
            } => {
                buf.put_i16(1);
                put_string(&mut buf, group);
                put_string(&mut buf, topic);
                buf.put_i32(*partition);
            }
            Self::Group { group } => {
                buf.put_i16(2);
                put_string(&mut buf, group);
            }
        }
        buf.freeze()
    }

    /// Decodes a key; `None` for key versions this broker does not use (transactions' and the
    /// new group protocol's records share the topic in Kafka).
    pub fn decode(mut bytes: &[u8]) -> Result<Option<Self>, Malformed> {
        let version = get_i16(&mut bytes)?;
        let key = match version {
            0 | 1 => Self::Offset {
                group: get_string(&mut bytes)?,
                topic: get_string(&mut bytes)?,
                partition: get_i32(&mut bytes)?,
            },
            2 => Self::Group {
                group: get_string(&mut bytes)?,
            },
            _ => return Ok(None),
        };
        Ok(Some(key))
    }
}

impl OffsetValue {
    /// Encodes the value (version 3).
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_string(&mut buf, &self.metadata);
        buf.put_i64(self.commit_timestamp);
        buf.freeze()
    }

    /// Decodes versions 0 to 3.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, Malformed> {
        let version = get_i16(&mut bytes)?;
        if !(0..=3).contains(&version) {
            return Err(Malformed(format!("offset value version {version}")));
        }
        let offset = get_i64(&mut bytes)?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut bytes)?
        } else {
            -1
        };
        let metadata = get_string(&mut bytes)?;
        let commit_timestamp = get_i64(&mut bytes)?;
        if version == 1 {
            get_i64(&mut bytes)?; // expire timestamp, unused since Kafka 2.1
        }
        Ok(Self {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        })
    }
}

impl GroupValue {
    /// Encodes the value (version 3).
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        put_string(&mut buf, &self.protocol_type);
        buf.put_i32(self.generation);
        put_nullable_string(&mut buf, self.protocol.as_deref());
        put_nullable_string(&mut buf, self.leader.as_deref());
        buf.put_i64(self.state_timestamp);
        buf.put_i32(self.members.len() as i32);
        for member in &self.members {
            put_string(&mut buf, &member.member_id);
            put_nullable_string(&mut buf, member.group_instance_id.as_deref());
            put_string(&mut buf, &member.client_id);
            put_string(&mut buf, &member.client_host);
            buf.put_i32(member.rebalance_timeout);
            buf.put_i32(member.session_timeout);
            put_bytes(&mut buf, &member.subscription);
            put_bytes(&mut buf, &member.assignment);
        }
        buf.freeze()
    }

    /// Decodes versions 0 to 3.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, Malformed> {
        let version = get_i16(&mut bytes)?;
        if !(0..=3).contains(&version) {
            return Err(Malformed(format!("group value version {version}")));
        }
        let protocol_type = get_string(&mut bytes)?;
        let generation = get_i32(&mut bytes)?;
        let protocol = get_nullable_string(&mut bytes)?;
        let leader = get_nullable_string(&mut bytes)?;
        let state_timestamp = if version >= 2 {
            get_i64(&mut bytes)?
        } else {
            -1
        };
        let count = get_i32(&mut bytes)?;
        // Each member takes at least 24 bytes: a count beyond that is corrupt, not a reason
        // to reserve memory.
        if count < 0 || count as usize > bytes.len() / 24 + 1 {
            return Err(Malformed(format!(
                "{count} members in {} bytes",
                bytes.len()
            )));
        }
        let mut members = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let member_id = get_string(&mut bytes)?;
            let group_instance_id = if version >= 3 {
                get_nullable_string(&mut bytes)?
            } else {
                None
            };
            let client_id = get_string(&mut bytes)?;
            let client_host = get_string(&mut bytes)?;
            let rebalance_timeout = if version >= 1 {
                get_i32(&mut bytes)?
            } else {
                -1
            };
            let session_timeout = get_i32(&mut bytes)?;
            let rebalance_timeout = if version >= 1 {
                rebalance_timeout
            } else {
                session_timeout
            };
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription: get_bytes(&mut bytes)?,
                assignment: get_bytes(&mut bytes)?,
            });
        }
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            state_timestamp,
            members,
        })
    }
}

fn put_string(buf: &mut BytesMut, value: &str) {
    buf.put_i16(value.len().min(i16::MAX as usize) as i16);
    buf.put_slice(&value.as_bytes()[..value.len().min(i16::MAX as usize)]);
}

fn put_nullable_string(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => put_string(buf, value),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

fn need(bytes: &[u8], n: usize) -> Result<(), Malformed> {
    if bytes.remaining() < n {
        return Err(Malformed(format!(
            "needs {n} more bytes, {} left",
            bytes.remaining()
        )));
    }
    Ok(())
}

fn get_i16(bytes: &mut &[u8]) -> Result<i16, Malformed> {
    need(bytes, 2)?;
    Ok(bytes.get_i16())
}

fn get_i32(bytes: &mut &[u8]) -> Result<i32, Malformed> {
    need(bytes, 4)?;
    Ok(bytes.get_i32())
}

fn get_i64(bytes: &mut &[u8]) -> Result<i64, Malformed> {
    need(bytes, 8)?;
    Ok(bytes.get_i64())
}

fn get_nullable_string(bytes: &mut &[u8]) -> Result<Option<String>, Malformed> {
    let len = get_i16(bytes)?;
    if len < 0 {
        return Ok(None);
    }
    need(bytes, len as usize)?;
    let value = String::from_utf8(bytes[..len as usize].to_vec())
        .map_err(|_| Malformed("a string is not UTF-8".into()))?;
    bytes.advance(len as usize);
    Ok(Some(value))
}

fn get_string(bytes: &mut &[u8]) -> Result<String, Malformed> {
    get_nullable_string(bytes)?.ok_or_else(|| Malformed("a required string is null".into()))
}

fn get_bytes(bytes: &mut &[u8]) -> Result<Bytes, Malformed> {
    let len = get_i32(bytes)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    need(bytes, len as usize)?;
    let value = Bytes::copy_from_slice(&bytes[..len as usize]);
    bytes.advance(len as usize);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), Some(key));
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), Some(key));
        let offset = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
        };
        assert_eq!(OffsetValue::decode(&offset.encode()).unwrap(), offset);
        let group = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp: 9,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300_000,
                session_timeout: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"assign"),
            }],
        };
        assert_eq!(GroupValue::decode(&group.encode()).unwrap(), group);
    }

    #[test]
    fn truncated_or_lying_records_are_errors() {
        let key = RecordKey::Offset {
            group: "group".into(),
            topic: "topic".into(),
            partition: 1,
        }
        .encode();
        for len in 0..key.len() {
            assert!(
                RecordKey::decode(&key[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut lying = BytesMut::new();
        lying.put_i16(3);
        put_string(&mut lying, "consumer");
        lying.put_i32(1);
        lying.put_i16(-1);
        lying.put_i16(-1);
        lying.put_i64(0);
        lying.put_i32(i32::MAX);
        assert!(GroupValue::decode(&lying).is_err());
        assert_eq!(RecordKey::decode(&[0, 9, 0, 0]).unwrap(), None);
    }
}
