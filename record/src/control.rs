//! Transaction markers: the control batches a transaction coordinator has written to each
//! partition of a transaction to end it (Kafka's `EndTransactionMarker`).
//!
//! A marker batch has the transactional and control attributes, the producer id and epoch of
//! the transaction, base sequence -1 and one uncompressed record. Its key is version 0 and the
//! control type (0 abort, 1 commit), two int16s; its value is version 0 and the coordinator's
//! epoch, an int16 and an int32.

use crate::{BatchHeader, HEADER_SIZE};

/// A transaction marker's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Whether it commits (else it aborts) the producer's open transaction.
    pub commit: bool,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// Reads a zigzag varint; returns it and the bytes after.
fn varint(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let mut value: u64 = 0;
    for (n, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * n);
        if byte & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return Some((decoded, &bytes[n + 1..]));
        }
    }
    None
}

/// The marker in a whole control batch; `None` for another batch, or one whose record is not
/// a transaction marker Kafka defines.
pub fn marker(batch: &[u8]) -> Option<Marker> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() || header.compression() != 0 {
        return None;
    }
    let record = batch.get(HEADER_SIZE..header.size() as usize)?;
    let (_length, rest) = varint(record)?;
    let rest = rest.get(1..)?; // attributes
    let (_timestamp_delta, rest) = varint(rest)?;
    let (_offset_delta, rest) = varint(rest)?;
    let (key_length, rest) = varint(rest)?;
    if key_length != 4 {
        return None;
    }
    let key = rest.get(..4)?;
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (value_length, rest) = varint(&rest[4..])?;
    let coordinator_epoch = match value_length {
        len if len >= 6 => {
            let value = rest.get(..6)?;
            i32::from_be_bytes([value[2], value[3], value[4], value[5]])
        }
        _ => -1,
    };
    Some(Marker {
        commit,
        coordinator_epoch,
    })
}

/// The record of a marker batch (key and value), for an encoder.
pub fn marker_key_value(marker: Marker) -> ([u8; 4], [u8; 6]) {
    let kind: i16 = if marker.commit { 1 } else { 0 };
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&marker.coordinator_epoch.to_be_bytes());
    (key, value)
}
