//! Record batch v2 (magic 2) headers: validation and the few in-place rewrites the leader does.
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

use crate::log::error::LogError;

/// Size of a record batch v2 header.
pub const HEADER_SIZE: usize = 61;
/// Offset of the batch length field; everything before it plus the field itself is "log overhead".
pub const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;

/// Attribute bit: timestamps are the broker's append time.
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
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
    pub fn parse(bytes: &[u8]) -> Result<Self, LogError> {
        if bytes.len() < HEADER_SIZE {
            return Err(LogError::CorruptRecord(format!(
                "record batch header needs {HEADER_SIZE} bytes, got {}",
                bytes.len()
            )));
        }
        let magic = bytes[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(LogError::UnsupportedMagic(magic));
        }
        let base_offset = be_i64(bytes, 0);
        let batch_length = be_i32(bytes, 8);
        let last_offset_delta = be_i32(bytes, 23);
        let records_count = be_i32(bytes, 57);
        if base_offset < 0 {
            return Err(LogError::CorruptRecord(format!(
                "negative base offset {base_offset}"
            )));
        }
        if batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(LogError::CorruptRecord(format!(
                "batch length {batch_length} is smaller than a batch header"
            )));
        }
        if records_count <= 0 || last_offset_delta != records_count - 1 {
            return Err(LogError::CorruptRecord(format!(
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
pub fn verify_crc(batch: &[u8]) -> Result<(), LogError> {
    let stored = u32::from_be_bytes([
        batch[CRC_OFFSET],
        batch[CRC_OFFSET + 1],
        batch[CRC_OFFSET + 2],
        batch[CRC_OFFSET + 3],
    ]);
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if stored != computed {
        return Err(LogError::CorruptRecord(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

/// Parses and fully validates one batch that must fill `bytes` exactly (a produce payload).
pub fn validate_single_batch(bytes: &[u8]) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(bytes)?;
    let size = header.size();
    if size != bytes.len() as u64 {
        return Err(LogError::InvalidRecord(format!(
            "a produce request must carry exactly one record batch per partition: \
             batch of {size} bytes in {} bytes of records",
            bytes.len()
        )));
    }
    verify_crc(bytes)?;
    if header.is_control() {
        return Err(LogError::InvalidRecord(
            "clients may not write control batches".into(),
        ));
    }
    Ok(header)
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

/// The first record of `batch` at or after `timestamp` and `from_offset`: its offset and
/// timestamp. A log-append-time batch gives every record its max timestamp; a compressed batch
/// that will not inflate (bounded, see the vendored kafka-protocol) is answered by its base
/// offset, which is early, never late.
pub fn record_at_timestamp(
    mut batch: bytes::Bytes,
    timestamp: i64,
    from_offset: u64,
) -> Result<Option<(u64, i64)>, LogError> {
    let header = BatchHeader::parse(&batch)?;
    if header.last_offset() < from_offset || header.max_timestamp < timestamp {
        return Ok(None);
    }
    let batch_answer = (header.base_offset.max(from_offset), header.max_timestamp);
    if header.attributes & TIMESTAMP_TYPE_BIT != 0 {
        return Ok(Some(batch_answer));
    }
    let set = match kafka_protocol::records::RecordBatchDecoder::decode(&mut batch) {
        Ok(set) => set,
        Err(_) if header.compression() != 0 => return Ok(Some(batch_answer)),
        Err(e) => {
            return Err(LogError::CorruptRecord(format!(
                "stored batch does not decode: {e}"
            )));
        }
    };
    Ok(set
        .records
        .iter()
        .find(|r| r.timestamp >= timestamp && r.offset as u64 >= from_offset)
        .map(|r| (r.offset as u64, r.timestamp)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal valid batch of `count` empty records (tests only).
    pub(crate) fn sample_batch(
        count: u32,
        timestamp: i64,
        producer: Option<(i64, i16, i32)>,
    ) -> Vec<u8> {
        let mut records = Vec::new();
        for delta in 0..count {
            // length, attributes, timestamp delta, offset delta, key -1, value -1, headers 0
            let body = [0u8, 0, zigzag(delta as i64), 1, 1, 0];
            records.push(zigzag(body.len() as i64));
            records.extend_from_slice(&body);
        }
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let mut batch = Vec::with_capacity(HEADER_SIZE + records.len());
        batch.extend_from_slice(&0i64.to_be_bytes());
        batch.extend_from_slice(
            &((HEADER_SIZE - LOG_OVERHEAD + records.len()) as i32).to_be_bytes(),
        );
        batch.extend_from_slice(&(-1i32).to_be_bytes());
        batch.push(2);
        batch.extend_from_slice(&[0; 4]);
        batch.extend_from_slice(&0i16.to_be_bytes());
        batch.extend_from_slice(&(count as i32 - 1).to_be_bytes());
        batch.extend_from_slice(&timestamp.to_be_bytes());
        batch.extend_from_slice(&timestamp.to_be_bytes());
        batch.extend_from_slice(&pid.to_be_bytes());
        batch.extend_from_slice(&epoch.to_be_bytes());
        batch.extend_from_slice(&seq.to_be_bytes());
        batch.extend_from_slice(&(count as i32).to_be_bytes());
        batch.extend_from_slice(&records);
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    fn zigzag(value: i64) -> u8 {
        (((value << 1) ^ (value >> 63)) & 0x7f) as u8
    }

    #[test]
    fn valid_batch_round_trips() {
        let mut batch = sample_batch(3, 1_000, Some((7, 0, 5)));
        let header = validate_single_batch(&batch).unwrap();
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_sequence(), 7);
        assign_offset(&mut batch, 42, 3);
        let header = validate_single_batch(&batch).unwrap();
        assert_eq!((header.base_offset, header.partition_leader_epoch), (42, 3));
        assert_eq!(header.next_offset(), 45);
    }

    #[test]
    fn crc_mismatch_is_rejected() {
        let mut batch = sample_batch(1, 0, None);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(
            validate_single_batch(&batch),
            Err(LogError::CorruptRecord(_))
        ));
    }

    #[test]
    fn old_magic_is_unsupported() {
        let mut batch = sample_batch(1, 0, None);
        batch[MAGIC_OFFSET] = 1;
        assert!(matches!(
            validate_single_batch(&batch),
            Err(LogError::UnsupportedMagic(1))
        ));
    }

    #[test]
    fn two_batches_in_one_payload_are_rejected() {
        let mut payload = sample_batch(1, 0, None);
        payload.extend(sample_batch(1, 0, None));
        assert!(matches!(
            validate_single_batch(&payload),
            Err(LogError::InvalidRecord(_))
        ));
    }

    #[test]
    fn log_append_time_keeps_crc_valid() {
        let batch = sample_batch(2, 5, None);
        let (mut header, records) = split_header(&batch);
        set_log_append_time(&mut header, records, 99);
        let rewritten = [&header[..], records].concat();
        let header = validate_single_batch(&rewritten).unwrap();
        assert_eq!(header.max_timestamp, 99);
        assert_ne!(header.attributes & TIMESTAMP_TYPE_BIT, 0);
    }

    /// Replays the record batch fuzz corpus through validation and a CRC-checking scan, as the
    /// fuzz target does. `STRATA_WRITE_CORPUS=1` rewrites the seeds first.
    #[test]
    fn fuzz_corpus_replays() {
        use std::os::unix::fs::FileExt;
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/record_batch");
        if std::env::var_os("STRATA_WRITE_CORPUS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            let valid = sample_batch(3, 1_000, None);
            let mut two = sample_batch(1, 5, Some((7, 0, 0)));
            two.extend(sample_batch(2, 6, Some((7, 0, 1))));
            let mut bad_crc = valid.clone();
            bad_crc[40] ^= 1;
            for (name, bytes) in [
                ("valid-3-records", valid.clone()),
                ("idempotent-two-batches", two),
                ("torn", valid[..valid.len() - 5].to_vec()),
                ("bad-crc", bad_crc),
                ("header-only", valid[..HEADER_SIZE].to_vec()),
            ] {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let file = tempfile::tempfile().unwrap();
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/record_batch is checked in") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let _ = validate_single_batch(&bytes);
            file.set_len(0).unwrap();
            file.write_all_at(&bytes, 0).unwrap();
            let path = std::path::Path::new("corpus");
            let mut scan =
                crate::log::scanner::BatchScanner::new(&file, path, 0, bytes.len() as u64, true);
            while let Ok(Some(found)) = scan.next_batch() {
                assert!(found.position + found.header.size() <= bytes.len() as u64);
            }
            replayed += 1;
        }
        assert!(replayed >= 5, "corpus has {replayed} inputs");
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(wrapping_sequence(i32::MAX, 1), 0);
        assert_eq!(wrapping_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(wrapping_sequence(10, 2), 12);
    }
}
