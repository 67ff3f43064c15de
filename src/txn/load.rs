//! Rebuilding the transactional ids of a `__transaction_state` partition when this broker
//! comes to lead it: the latest record of each id wins, a tombstone removes it.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::records::{decode_key, decode_value};
use super::state::TxnMetadata;
use crate::log::LogError;
use crate::log::batch::{BatchHeader, HEADER_SIZE};
use crate::partition::PartitionRef;

/// How much of a partition one read brings in.
const READ_BYTES: u64 = 1 << 20;

/// The transactional ids of one partition, replayed in log order.
pub fn load_partition(partition: &PartitionRef) -> Result<HashMap<String, TxnMetadata>, LogError> {
    let mut ids = HashMap::new();
    let log = partition.log();
    let end = log.log_end_offset();
    let mut offset = log.local_log_start_offset();
    while offset < end {
        let Some(slice) = log.read(offset as i64, READ_BYTES, end, true)? else {
            break;
        };
        let mut buf = vec![0u8; slice.len as usize];
        slice
            .file
            .read_exact_at(&mut buf, slice.position)
            .map_err(|e| LogError::io(log.dir(), e))?;
        let mut at = 0;
        while buf.len() - at >= HEADER_SIZE {
            let header = BatchHeader::parse(&buf[at..])?;
            let size = header.size() as usize;
            if at + size > buf.len() {
                break;
            }
            let mut batch = Bytes::copy_from_slice(&buf[at..at + size]);
            match RecordBatchDecoder::decode(&mut batch) {
                Ok(set) if !header.is_control() => {
                    for record in set.records {
                        let Some(key) = record.key else { continue };
                        let id = match decode_key(key) {
                            Ok(id) => id,
                            Err(e) => {
                                tracing::warn!(partition = partition.index, "skipping {e}");
                                continue;
                            }
                        };
                        match record.value.map(decode_value) {
                            None => {
                                ids.remove(&id);
                            }
                            Some(Ok(meta)) => {
                                ids.insert(id, meta);
                            }
                            Some(Err(e)) => {
                                tracing::warn!(partition = partition.index, "skipping {e}")
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    partition = partition.index,
                    offset = header.base_offset,
                    "skipping an undecodable __transaction_state batch: {e}"
                ),
            }
            offset = header.next_offset();
            at += size;
        }
        if at == 0 {
            break;
        }
    }
    Ok(ids)
}
