//! strata-record: the Kafka record batch v2 format (magic 2), read one way by the broker's log
//! and by the tiering layer: header parsing, CRC-32C checks, iteration over whole batches, and
//! the few in-place rewrites the leader does.
//!
//! The log stores batches exactly as producers sent them, except for the base offset, the
//! partition leader epoch and (for `LogAppendTime` topics) the timestamp fields. Neither base
//! offset nor leader epoch is covered by the CRC (it starts at `attributes`), so assigning them
//! never touches record data; a log-append-time rewrite recomputes the CRC over the header.
//!
//! Layout of the 61-byte header (big endian):
//!
//! | bytes  | field                  |
//! |--------|------------------------|
//! | 0..8   | base offset            |
//! | 8..12  | batch length (bytes after this field) |
//! | 12..16 | partition leader epoch |
//! | 16     | magic (2)              |
//! | 17..21 | CRC-32C of bytes 21..  |
//! | 21..23 | attributes             |
//! | 23..27 | last offset delta      |
//! | 27..35 | base timestamp         |
//! | 35..43 | max timestamp          |
//! | 43..51 | producer id            |
//! | 51..53 | producer epoch         |
//! | 53..57 | base sequence          |
//! | 57..61 | records count          |

pub mod control;

/// Why bytes are not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Malformed or damaged: a bad size, count or CRC.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// A magic other than 2 (Kafka 4.0 removed the older formats).
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
}

/// Size of a record batch v2 header.
pub const HEADER_SIZE: usize = 61;
/// Offset of the batch length field; everything before it plus the field itself is "log overhead".
pub const LOG_OVERHEAD: usize = 12;
pub const MAGIC_OFFSET: usize = 16;
pub const CRC_OFFSET: usize = 17;
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const MAX_TIMESTAMP_OFFSET: usize = 35;

/// Attribute bit: timestamps are the broker's append time.
pub const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
const COMPRESSION_MASK: i16 = 0x07;

/// A producer id of -1 marks a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;

/// The decoded header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Bytes following the length field; the whole batch is `LOG_OVERHEAD + batch_length`.
    pub batch_length: u32,
    /// Leader epoch stamped by the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Batch attributes (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// `last offset - base offset`.
    pub last_offset_delta: u32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp of the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: u32,
}

impl BatchHeader {
    /// Parses a header without checking the CRC; `bytes` must hold at least [`HEADER_SIZE`].
    pub fn parse(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() < HEADER_SIZE {
            return Err(RecordError::Corrupt(format!(
                "record batch header needs {HEADER_SIZE} bytes, got {}",
                bytes.len()
            )));
        }
        let magic = bytes[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(RecordError::UnsupportedMagic(magic));
        }
        let base_offset = be_i64(bytes, 0);
        let batch_length = be_i32(bytes, 8);
        let last_offset_delta = be_i32(bytes, 23);
        let records_count = be_i32(bytes, 57);
        if base_offset < 0 {
            return Err(RecordError::Corrupt(format!(
                "negative base offset {base_offset}"
            )));
        }
        if batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(RecordError::Corrupt(format!(
                "batch length {batch_length} is smaller than a batch header"
            )));
        }
        if records_count <= 0 || last_offset_delta != records_count - 1 {
            return Err(RecordError::Corrupt(format!(
                "records count {records_count} does not match last offset delta {last_offset_delta}"
            )));
        }
        Ok(Self {
            base_offset: base_offset as u64,
            batch_length: batch_length as u32,
            partition_leader_epoch: be_i32(bytes, 12),
            attributes: be_i16(bytes, ATTRIBUTES_OFFSET),
            last_offset_delta: last_offset_delta as u32,
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            records_count: records_count as u32,
        })
    }

    /// Total size of the batch on disk.
    pub fn size(&self) -> u64 {
        LOG_OVERHEAD as u64 + self.batch_length as u64
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }

    /// Offset following the batch.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    /// Sequence of the last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        wrapping_sequence(self.base_sequence, self.last_offset_delta as i32)
    }

    /// Whether the batch came from an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether this is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }
}

/// `sequence + delta` with Kafka's wrap-around from `i32::MAX` to 0.
pub fn wrapping_sequence(sequence: i32, delta: i32) -> i32 {
    if sequence > i32::MAX - delta {
        delta - (i32::MAX - sequence) - 1
    } else {
        sequence + delta
    }
}

/// Checks the CRC-32C of a complete batch.
pub fn verify_crc(batch: &[u8]) -> Result<(), RecordError> {
    let stored = u32::from_be_bytes([
        batch[CRC_OFFSET],
        batch[CRC_OFFSET + 1],
        batch[CRC_OFFSET + 2],
        batch[CRC_OFFSET + 3],
    ]);
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if stored != computed {
        return Err(RecordError::Corrupt(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

/// Assigns the leader's base offset and leader epoch (not covered by the CRC).
pub fn assign_offset(batch: &mut [u8], base_offset: u64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks the batch whose header is `header` (its first [`HEADER_SIZE`] bytes) and whose
/// records are `records` as `LogAppendTime` with `now_ms` as its max timestamp, then re-seals
/// the CRC. Header and records are apart so that the leader never copies the records.
///
/// Like Kafka, record-level timestamps are left as sent; readers take the batch max timestamp
/// for every record of a log-append-time batch.
pub fn set_log_append_time(header: &mut [u8; HEADER_SIZE], records: &[u8], now_ms: i64) {
    let attributes = be_i16(header, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_OFFSET..]), records);
    header[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a batch into a copy of its header, which the leader rewrites, and its records.
pub fn split_header(batch: &[u8]) -> ([u8; HEADER_SIZE], &[u8]) {
    let (header, records) = batch.split_at(HEADER_SIZE);
    let mut copy = [0u8; HEADER_SIZE];
    copy.copy_from_slice(header);
    (copy, records)
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(raw)
}

fn be_i32(bytes: &[u8], at: usize) -> i32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    i32::from_be_bytes(raw)
}

fn be_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// Iterates over the whole batches at the start of `bytes`, with their positions, without
/// checking CRCs; stops at the first incomplete or malformed one.
pub fn batches(bytes: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(bytes.get(at..)?).ok()?;
        let size = usize::try_from(header.size()).ok()?;
        if bytes.len() - at < size {
            return None;
        }
        let position = at;
        at += size;
        Some((position, header))
    })
}

/// Checks that `bytes` is exactly a sequence of whole batches with intact CRCs covering
/// `first_offset..end_offset` without gaps: what a stored chunk of a log that is never
/// compacted must be. The CRC does not cover a batch's base offset; the chain of offsets does.
pub fn verify_batches(bytes: &[u8], first_offset: u64, end_offset: u64) -> Result<(), RecordError> {
    let mut at = 0;
    let mut next = first_offset;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..])?;
        let size = usize::try_from(header.size())
            .map_err(|_| RecordError::Corrupt(format!("batch of {} bytes", header.size())))?;
        if bytes.len() - at < size {
            return Err(RecordError::Corrupt(format!(
                "batch at byte {at} of {size} bytes runs past the end ({} bytes)",
                bytes.len()
            )));
        }
        verify_crc(&bytes[at..at + size]).map_err(|e| {
            RecordError::Corrupt(format!("batch at offset {}: {e}", header.base_offset))
        })?;
        if header.base_offset != next || header.next_offset() > end_offset {
            return Err(RecordError::Corrupt(format!(
                "batch of offsets {}..{} where {next}..{end_offset} continues",
                header.base_offset,
                header.next_offset()
            )));
        }
        next = header.next_offset();
        at += size;
    }
    if next != end_offset {
        return Err(RecordError::Corrupt(format!(
            "batches end at offset {next}, not {end_offset}"
        )));
    }
    Ok(())
}

/// Batches for tests: real headers and CRCs around made-up record bytes (the tiering layer and
/// the log's scans read headers only, and check CRCs).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::{ATTRIBUTES_OFFSET, CRC_OFFSET, HEADER_SIZE, LOG_OVERHEAD};

    /// A batch of `count` offsets at `base`, leader epoch `epoch`, max timestamp `ts`, with
    /// `payload` bytes after the header taken cyclically from `fill`.
    pub fn batch(
        base: u64,
        count: u32,
        epoch: i32,
        ts: i64,
        payload: usize,
        fill: &[u8],
    ) -> Vec<u8> {
        let size = HEADER_SIZE + payload;
        let mut b = vec![0u8; size];
        b[0..8].copy_from_slice(&(base as i64).to_be_bytes());
        b[8..12].copy_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
        b[12..16].copy_from_slice(&epoch.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&((count - 1) as i32).to_be_bytes());
        b[27..35].copy_from_slice(&ts.to_be_bytes());
        b[35..43].copy_from_slice(&ts.to_be_bytes());
        b[57..61].copy_from_slice(&(count as i32).to_be_bytes());
        for (n, byte) in b[HEADER_SIZE..].iter_mut().enumerate() {
            *byte = fill[n % fill.len()];
        }
        let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_batches_are_iterated_and_verified() {
        let mut bytes = testing::batch(0, 2, 0, 5, 10, b"ab");
        bytes.extend(testing::batch(2, 3, 0, 6, 20, b"cd"));
        let found: Vec<(usize, u64)> = batches(&bytes).map(|(at, h)| (at, h.base_offset)).collect();
        assert_eq!(found, vec![(0, 0), (71, 2)]);
        verify_batches(&bytes, 0, 5).unwrap();
        assert!(verify_batches(&bytes, 0, 4).is_err(), "past the end offset");
        assert!(
            verify_batches(&bytes, 1, 5).is_err(),
            "before the first offset"
        );
        assert_eq!(
            batches(&bytes[..bytes.len() - 1]).count(),
            1,
            "a torn tail stops"
        );
        bytes[100] ^= 4;
        assert!(
            verify_batches(&bytes, 0, 5)
                .unwrap_err()
                .to_string()
                .contains("CRC")
        );
    }
}
