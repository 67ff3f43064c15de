//! The records of `__transaction_state`, in Kafka's own schemas (`TransactionLogKey` v0 and
//! `TransactionLogValue` v1, reading v0 too), so that Kafka's tools can read the topic: one record per
//! transactional id holding its producer, epoch, timeout, state and partitions. A record
//! without a value (a tombstone) removes an expired id.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};

/// Why a record does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("__transaction_state record: {0}")]
pub struct RecordError(String);

fn short(what: &str) -> RecordError {
    RecordError(format!("truncated {what}"))
}

fn put_string(buf: &mut BytesMut, value: &str) {
    buf.put_i16(value.len() as i16);
    buf.put_slice(value.as_bytes());
}

fn get_string(buf: &mut Bytes, what: &str) -> Result<String, RecordError> {
    if buf.remaining() < 2 {
        return Err(short(what));
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return Err(short(what));
    }
    String::from_utf8(buf.split_to(len as usize).to_vec())
        .map_err(|_| RecordError(format!("{what} is not UTF-8")))
}

/// The key of a transactional id's record.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(0);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// The transactional id of a key.
pub fn decode_key(mut key: Bytes) -> Result<String, RecordError> {
    if key.remaining() < 2 {
        return Err(short("key"));
    }
    match key.get_i16() {
        0 | 1 => get_string(&mut key, "transactional id"),
        v => Err(RecordError(format!("key version {v}"))),
    }
}

fn put_uvarint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn get_uvarint(buf: &mut Bytes, what: &str) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return Err(short(what));
        }
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError(format!("{what}: varint too long")))
}

/// A length of version 1 (compact: length + 1, 0 for null, which counts as empty).
fn get_compact_len(buf: &mut Bytes, what: &str) -> Result<usize, RecordError> {
    let len = get_uvarint(buf, what)?.saturating_sub(1) as usize;
    if len > buf.remaining() {
        return Err(short(what));
    }
    Ok(len)
}

/// Skips a tagged-field section, keeping the fields `wanted` names (tag → bytes).
fn get_tagged(
    buf: &mut Bytes,
    mut wanted: impl FnMut(u64, Bytes) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    let count = get_uvarint(buf, "tagged fields")?;
    for _ in 0..count {
        let tag = get_uvarint(buf, "tag")?;
        let size = get_uvarint(buf, "tagged field size")? as usize;
        if size > buf.remaining() {
            return Err(short("tagged field"));
        }
        wanted(tag, buf.split_to(size))?;
    }
    Ok(())
}

/// The value of a transactional id's record: version 1 (flexible, Kafka 4's), whose tagged
/// fields keep the previous and next producer ids and the client's transaction version.
pub fn encode_value(meta: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    buf.put_i64(meta.producer_id);
    buf.put_i16(meta.producer_epoch);
    buf.put_i32(meta.timeout_ms);
    buf.put_i8(meta.state.code());
    // Partitions grouped by topic.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &meta.partitions {
        match topics.last_mut() {
            Some((t, list)) if *t == topic.as_str() => list.push(*partition),
            _ => topics.push((topic, vec![*partition])),
        }
    }
    put_uvarint(&mut buf, topics.len() as u64 + 1);
    for (topic, partitions) in topics {
        put_uvarint(&mut buf, topic.len() as u64 + 1);
        buf.put_slice(topic.as_bytes());
        put_uvarint(&mut buf, partitions.len() as u64 + 1);
        for p in partitions {
            buf.put_i32(p);
        }
        put_uvarint(&mut buf, 0);
    }
    buf.put_i64(meta.last_update_ms);
    buf.put_i64(meta.start_ms);
    // Tagged fields, in tag order, each only when not its default.
    let mut tagged: Vec<(u64, Vec<u8>)> = Vec::new();
    if meta.last_producer_id >= 0 {
        tagged.push((0, meta.last_producer_id.to_be_bytes().to_vec()));
    }
    if meta.next_producer_id >= 0 {
        tagged.push((1, meta.next_producer_id.to_be_bytes().to_vec()));
    }
    if meta.client_tv2 {
        tagged.push((2, 2i16.to_be_bytes().to_vec()));
    }
    put_uvarint(&mut buf, tagged.len() as u64);
    for (tag, data) in tagged {
        put_uvarint(&mut buf, tag);
        put_uvarint(&mut buf, data.len() as u64);
        buf.put_slice(&data);
    }
    buf.freeze()
}

/// A record's value (version 0, or 1 with its tagged fields).
pub fn decode_value(mut value: Bytes) -> Result<TxnMetadata, RecordError> {
    let need = |buf: &Bytes, n: usize, what: &str| {
        if buf.remaining() < n {
            Err(short(what))
        } else {
            Ok(())
        }
    };
    need(&value, 2, "value version")?;
    let version = value.get_i16();
    if !(0..=1).contains(&version) {
        return Err(RecordError(format!(
            "value version {version} is not read yet"
        )));
    }
    let flexible = version >= 1;
    need(&value, 8 + 2 + 4 + 1, "value")?;
    let producer_id = value.get_i64();
    let producer_epoch = value.get_i16();
    let timeout_ms = value.get_i32();
    let state = TxnState::from_code(value.get_i8())
        .ok_or_else(|| RecordError("unknown transaction state".into()))?;
    let topics = if flexible {
        get_compact_len(&mut value, "topics")?
    } else {
        need(&value, 4, "topics")?;
        value.get_i32().max(0) as usize
    };
    let mut partitions = std::collections::BTreeSet::new();
    for _ in 0..topics {
        let topic = if flexible {
            let len = get_compact_len(&mut value, "topic")?;
            String::from_utf8(value.split_to(len).to_vec())
                .map_err(|_| RecordError("topic is not UTF-8".into()))?
        } else {
            get_string(&mut value, "topic")?
        };
        let count = if flexible {
            get_compact_len(&mut value, "partition count")?
        } else {
            need(&value, 4, "partition count")?;
            value.get_i32().max(0) as usize
        };
        need(&value, 4 * count, "partitions")?;
        for _ in 0..count {
            partitions.insert((topic.clone(), value.get_i32()));
        }
        if flexible {
            get_tagged(&mut value, |_, _| Ok(()))?;
        }
    }
    need(&value, 16, "timestamps")?;
    let last_update_ms = value.get_i64();
    let start_ms = value.get_i64();
    let mut meta = TxnMetadata {
        producer_id,
        last_producer_id: -1,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
        next_producer_id: -1,
        client_tv2: false,
    };
    if flexible {
        get_tagged(&mut value, |tag, mut data| {
            match (tag, data.len()) {
                (0, 8) => meta.last_producer_id = data.get_i64(),
                (1, 8) => meta.next_producer_id = data.get_i64(),
                (2, 2) => meta.client_tv2 = data.get_i16() >= 2,
                (0..=2, _) => return Err(RecordError(format!("tagged field {tag} size"))),
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TxnMetadata {
        TxnMetadata {
            producer_id: 42,
            last_producer_id: -1,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_owned(), 0),
                ("a".to_owned(), 2),
                ("b".to_owned(), 1),
            ]
            .into_iter()
            .collect(),
            start_ms: 1_000,
            last_update_ms: 2_000,
            next_producer_id: -1,
            client_tv2: false,
        }
    }

    #[test]
    fn values_round_trip_in_kafkas_layout() {
        let meta = meta();
        let bytes = encode_value(&meta);
        // version 1, pid, epoch, timeout, state (Ongoing = 1), two topics (compact: 3).
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(&bytes[2..10], &42i64.to_be_bytes());
        assert_eq!(bytes[16], 1);
        assert_eq!(bytes[17], 3);
        // No tagged field is written at its default.
        assert_eq!(bytes[bytes.len() - 1], 0);
        assert_eq!(decode_value(bytes).unwrap(), meta);
        assert_eq!(decode_key(encode_key("tx-1")).unwrap(), "tx-1");
        assert!(decode_value(Bytes::from_static(&[0, 0, 1])).is_err());
        assert!(decode_value(Bytes::from_static(&[0, 2])).is_err());
    }

    #[test]
    fn version_2_fields_are_kept_in_tagged_fields() {
        let meta = TxnMetadata {
            last_producer_id: 41,
            next_producer_id: 43,
            client_tv2: true,
            ..meta()
        };
        let bytes = encode_value(&meta);
        // Three tagged fields at the end, ClientTransactionVersion (tag 2) = 2 last.
        assert_eq!(&bytes[bytes.len() - 4..], &[2, 2, 0, 2]);
        let decoded = decode_value(bytes).unwrap();
        assert_eq!(decoded, meta);
    }

    #[test]
    fn version_0_values_are_read() {
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        buf.put_i64(42);
        buf.put_i16(3);
        buf.put_i32(60_000);
        buf.put_i8(1);
        buf.put_i32(2);
        put_string(&mut buf, "a");
        buf.put_i32(2);
        buf.put_i32(0);
        buf.put_i32(2);
        put_string(&mut buf, "b");
        buf.put_i32(1);
        buf.put_i32(1);
        buf.put_i64(2_000);
        buf.put_i64(1_000);
        assert_eq!(decode_value(buf.freeze()).unwrap(), meta());
    }
}
