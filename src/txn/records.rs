//! The records of `__transaction_state`, in Kafka's own schemas (`TransactionLogKey` v0 and
//! `TransactionLogValue` v0), so that Kafka's tools can read the topic: one record per
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

/// The value of a transactional id's record (version 0).
pub fn encode_value(meta: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
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
    buf.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        put_string(&mut buf, topic);
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(p);
        }
    }
    buf.put_i64(meta.last_update_ms);
    buf.put_i64(meta.start_ms);
    buf.freeze()
}

/// A record's value (version 0; version 1 has the same fields, flexible).
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
    if version != 0 {
        return Err(RecordError(format!(
            "value version {version} is not read yet"
        )));
    }
    need(&value, 8 + 2 + 4 + 1 + 4, "value")?;
    let producer_id = value.get_i64();
    let producer_epoch = value.get_i16();
    let timeout_ms = value.get_i32();
    let state = TxnState::from_code(value.get_i8())
        .ok_or_else(|| RecordError("unknown transaction state".into()))?;
    let topics = value.get_i32();
    let mut partitions = std::collections::BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut value, "topic")?;
        need(&value, 4, "partition count")?;
        let count = value.get_i32();
        need(&value, 4 * count.max(0) as usize, "partitions")?;
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), value.get_i32()));
        }
    }
    need(&value, 16, "timestamps")?;
    let last_update_ms = value.get_i64();
    let start_ms = value.get_i64();
    Ok(TxnMetadata {
        producer_id,
        last_producer_id: -1,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_kafkas_layout() {
        let meta = TxnMetadata {
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
        };
        let bytes = encode_value(&meta);
        // version, pid, epoch, timeout, state (Ongoing = 1), two topics.
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &42i64.to_be_bytes());
        assert_eq!(bytes[16], 1);
        assert_eq!(&bytes[17..21], &2i32.to_be_bytes());
        assert_eq!(decode_value(bytes).unwrap(), meta);
        assert_eq!(decode_key(encode_key("tx-1")).unwrap(), "tx-1");
        assert!(decode_value(Bytes::from_static(&[0, 0, 1])).is_err());
    }
}
