//! Record batches as the log handles them: the format itself is `strata_record`'s (shared with
//! the tiering layer); here are produce validation and timestamp lookups, with [`LogError`]s.
//!
//! The log stores batches exactly as producers sent them, except for the base offset, the
//! partition leader epoch and (for `LogAppendTime` topics) the timestamp fields, which
//! [`assign_offset`] and [`set_log_append_time`] rewrite.

pub use strata_record::{
    ATTRIBUTES_OFFSET, BatchHeader, CRC_OFFSET, HEADER_SIZE, LOG_OVERHEAD, MAGIC_OFFSET,
    NO_PRODUCER_ID, TIMESTAMP_TYPE_BIT, assign_offset, set_log_append_time, split_header,
    wrapping_sequence,
};

use crate::log::error::LogError;

/// Checks the CRC-32C of a complete batch.
pub fn verify_crc(batch: &[u8]) -> Result<(), LogError> {
    Ok(strata_record::verify_crc(batch)?)
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
