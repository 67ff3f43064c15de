//! Rebuilding the coordinator's groups from a `__consumer_offsets` partition when this broker
//! comes to lead it.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::coordinator::Groups;
use super::records::RecordKey;
use crate::log::LogError;
use crate::log::batch::{BatchHeader, HEADER_SIZE};
use crate::partition::PartitionRef;

/// How much of a partition one read brings in.
const READ_BYTES: u64 = 1 << 20;

/// Replays one `__consumer_offsets` partition into the coordinator, in log order, so that the
/// latest record of each key wins. Returns the number of groups after it.
///
/// Offsets committed in a transaction (TxnOffsetCommit) are held until its marker: a commit
/// replays them, an abort drops them, and those of transactions still open are pending again.
pub fn load_partition(groups: &Groups, partition: &PartitionRef) -> Result<usize, LogError> {
    let mut records = 0u64;
    let mut in_txn: HashMap<i64, Vec<(RecordKey, Option<Bytes>)>> = HashMap::new();
    {
        let index = partition.index;
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
                if header.is_control() {
                    let commit = strata_record::control::marker(&buf[at..at + size])
                        .is_some_and(|m| m.commit);
                    for (key, value) in in_txn.remove(&header.producer_id).into_iter().flatten() {
                        if commit && let Err(e) = groups.replay(key, value.as_deref()) {
                            tracing::warn!(partition = index, "skipping {e}");
                        }
                    }
                    offset = header.next_offset();
                    at += size;
                    continue;
                }
                let mut batch = Bytes::copy_from_slice(&buf[at..at + size]);
                match RecordBatchDecoder::decode(&mut batch) {
                    Ok(set) => {
                        for record in set.records {
                            let Some(key) = record.key else { continue };
                            match RecordKey::decode(&key) {
                                Ok(Some(key)) if header.is_transactional() => {
                                    in_txn
                                        .entry(header.producer_id)
                                        .or_default()
                                        .push((key, record.value));
                                }
                                Ok(Some(key)) => {
                                    if let Err(e) = groups.replay(key, record.value.as_deref()) {
                                        tracing::warn!(
                                            partition = index,
                                            offset = record.offset,
                                            "skipping {e}"
                                        );
                                    }
                                    records += 1;
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(
                                        partition = index,
                                        offset = record.offset,
                                        "skipping {e}"
                                    )
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(
                        partition = index,
                        offset = header.base_offset,
                        "skipping an undecodable __consumer_offsets batch: {e}"
                    ),
                }
                offset = header.next_offset();
                at += size;
            }
            if at == 0 {
                break;
            }
        }
    }
    // Transactions still open: their offsets wait for the marker, as when committed.
    for (producer_id, list) in in_txn {
        for (key, value) in list {
            if let (
                RecordKey::Offset {
                    group,
                    topic,
                    partition,
                },
                Some(value),
            ) = (key, value)
                && let Ok(value) = super::records::OffsetValue::decode(&value)
            {
                groups.add_pending(&group, producer_id, vec![((topic, partition), value)]);
            }
        }
    }
    let loaded = groups.finish_replay();
    if records > 0 {
        tracing::info!(
            partition = partition.index,
            groups = loaded,
            records,
            "loaded consumer groups"
        );
    }
    Ok(loaded)
}
