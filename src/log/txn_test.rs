use std::collections::BTreeMap;

use super::*;
use crate::log::LogConfig;
use crate::log::batch::tests::sample_batch;
use crate::log::batch::{ATTRIBUTES_OFFSET, CRC_OFFSET};

fn config() -> LogConfig {
    let map: BTreeMap<String, String> = [("segment.bytes", "600")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_map(&map).unwrap()
}

/// A transactional batch of `count` records of producer `pid`.
fn txn_batch(count: u32, pid: i64, seq: i32) -> Vec<u8> {
    let mut batch = sample_batch(count, 1_000, Some((pid, 0, seq)));
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]);
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
        .copy_from_slice(&(attributes | (1 << 4)).to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn marker(commit: bool) -> Marker {
    Marker {
        commit,
        coordinator_epoch: 3,
    }
}

/// Producer 1 commits offsets 0..5 (marker 5); producer 2 writes 6..9, producer 1 opens
/// another at 9, an idempotent batch lands at 11..13, producer 2 aborts (marker 13), producer
/// 1 commits (marker 14).
fn write(log: &mut UnifiedLog) {
    log.append(&txn_batch(5, 1, 0), 1).unwrap();
    log.append_marker(1, 0, marker(true), 1).unwrap();
    log.append(&txn_batch(3, 2, 0), 1).unwrap();
    log.append(&txn_batch(2, 1, 5), 1).unwrap();
    log.append(&sample_batch(2, 1, Some((9, 0, 0))), 1).unwrap();
    log.append_marker(2, 0, marker(false), 1).unwrap();
    log.append_marker(1, 0, marker(true), 1).unwrap();
}

#[test]
fn markers_end_transactions_move_the_stable_offset_and_index_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = UnifiedLog::open(dir.path(), config(), 0, true).unwrap();
    log.append(&txn_batch(5, 1, 0), 1).unwrap();
    assert_eq!(log.last_stable_offset(5), 0, "open from 0");
    // A non-transactional batch inside the open transaction is refused.
    let stray = sample_batch(1, 1, Some((1, 0, 5)));
    assert!(matches!(
        log.append(&stray, 1),
        Err(LogError::InvalidTxnState(_))
    ));
    log.append_marker(1, 0, marker(true), 1).unwrap();
    assert_eq!(
        log.last_stable_offset(5),
        0,
        "the marker is not replicated yet"
    );
    assert_eq!(log.last_stable_offset(6), 6);
    log.append(&txn_batch(3, 2, 0), 1).unwrap();
    log.append(&txn_batch(2, 1, 5), 1).unwrap();
    log.append(&sample_batch(2, 1, Some((9, 0, 0))), 1).unwrap();
    assert_eq!(
        log.last_stable_offset(13),
        6,
        "producer 2's transaction from 6"
    );
    log.append_marker(2, 0, marker(false), 1).unwrap();
    assert_eq!(
        log.last_stable_offset(13),
        6,
        "its abort is not replicated yet"
    );
    assert_eq!(log.last_stable_offset(14), 9, "producer 1's from 9");
    log.append_marker(1, 0, marker(true), 1).unwrap();
    assert_eq!(log.last_stable_offset(15), 15);
    let abort = AbortedTxn {
        producer_id: 2,
        first_offset: 6,
        last_offset: 13,
        last_stable_offset: 9,
    };
    assert_eq!(log.aborted_txns(0, 15), [abort]);
    assert_eq!(log.aborted_txns(14, 15), [], "ended before the fetch");
    assert_eq!(log.aborted_txns(0, 6), [], "begun after the read");
    // Markers of an older coordinator, or for an older producer epoch, are refused.
    assert!(matches!(
        log.append_marker(
            1,
            0,
            Marker {
                commit: true,
                coordinator_epoch: 2
            },
            1
        ),
        Err(LogError::CoordinatorFenced { .. })
    ));
    assert!(matches!(
        log.append_marker(1, -1, marker(true), 1),
        Err(LogError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn a_reopened_log_and_a_replica_rebuild_the_same_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = UnifiedLog::open(dir.path(), config(), 0, true).unwrap();
    write(&mut log);
    log.append(&txn_batch(1, 2, 3), 1).unwrap();
    let expected = log.aborted_txns(0, u64::MAX);
    assert_eq!(expected.len(), 1);
    assert!(log.segment_count() > 1, "the markers span segments");
    let end = log.log_end_offset();
    let bytes: Vec<u8> = log
        .local
        .segments()
        .iter()
        .flat_map(|s| {
            let mut b = vec![0; s.size() as usize];
            std::os::unix::fs::FileExt::read_exact_at(&*s.file(), &mut b, 0).unwrap();
            b
        })
        .collect();
    drop(log);
    // Indexes lost, and a crash: the log rebuilds them and the open transaction.
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "txnindex") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    let mut reopened = UnifiedLog::open(dir.path(), config(), 0, false).unwrap();
    assert_eq!(reopened.aborted_txns(0, u64::MAX), expected);
    assert_eq!(
        reopened.last_stable_offset(end),
        end - 1,
        "producer 2's new one"
    );
    // A follower appending the same bytes gets the same state.
    let replica_dir = tempfile::tempdir().unwrap();
    let mut replica = UnifiedLog::open(replica_dir.path(), config(), 0, true).unwrap();
    replica.append_as_follower(&bytes, 1).unwrap();
    assert_eq!(replica.aborted_txns(0, u64::MAX), expected);
    assert_eq!(replica.last_stable_offset(end), end - 1);
    // Truncating below the abort marker forgets it and reopens producer 2's transaction.
    replica.truncate_to(13).unwrap();
    assert_eq!(replica.aborted_txns(0, u64::MAX), []);
    assert_eq!(replica.last_stable_offset(13), 6);
}

#[test]
fn a_verification_raced_by_a_marker_cannot_open_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = UnifiedLog::open(dir.path(), config(), 0, true).unwrap();
    let guard = log.start_verification(1, 0).expect("no transaction open");
    log.append_verified(&txn_batch(2, 1, 0), 1, guard).unwrap();
    assert_eq!(
        log.start_verification(1, 0),
        None,
        "open: nothing to verify"
    );
    // Verified for the next transaction, but an abort lands before the batch does.
    log.append_marker(1, 0, marker(false), 1).unwrap();
    let stale = log.start_verification(1, 0).expect("closed");
    log.append_marker(1, 0, marker(false), 1).unwrap();
    assert!(matches!(
        log.append_verified(&txn_batch(1, 1, 2), 1, stale),
        Err(LogError::InvalidTxnState(_))
    ));
    assert_eq!(
        log.last_stable_offset(log.log_end_offset()),
        log.log_end_offset()
    );
    // A fresh verification lets it in.
    let fresh = log.start_verification(1, 0).unwrap();
    log.append_verified(&txn_batch(1, 1, 2), 1, fresh).unwrap();
}

#[test]
fn a_batch_checked_into_an_open_transaction_is_refused_if_it_ended_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = UnifiedLog::open(dir.path(), config(), 0, true).unwrap();
    let guard = log.start_verification(1, 0).unwrap();
    log.append_verified(&txn_batch(1, 1, 0), 1, guard).unwrap();
    assert_eq!(
        log.start_verification(1, 0),
        None,
        "open: appended under the open guard"
    );
    log.append_marker(1, 0, marker(true), 1).unwrap();
    assert!(matches!(
        log.append_verified(&txn_batch(1, 1, 1), 1, strata_api::broker::OPEN_TXN_GUARD),
        Err(LogError::InvalidTxnState(_))
    ));
}
