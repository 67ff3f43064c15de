use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use super::*;
use crate::log::LogConfig;
use crate::log::batch::tests::sample_batch;

fn config() -> LogConfig {
    let map = BTreeMap::from([("segment.bytes".to_owned(), "700".to_owned())]);
    LogConfig::from_map(&map).unwrap()
}

/// All of `log`'s batches from `offset`, as a fetch from it would return them.
fn read_all(log: &UnifiedLog, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = offset as i64;
    while let Some(slice) = log.read(at, 1 << 20, u64::MAX, true).unwrap() {
        let mut bytes = vec![0; slice.len as usize];
        slice
            .file
            .read_exact_at(&mut bytes, slice.position)
            .unwrap();
        let last = strata_record::batches(&bytes).last().unwrap().1;
        at = last.next_offset() as i64;
        out.extend_from_slice(&bytes);
    }
    out
}

/// A leader log with epochs 1 (offsets 0..6) and 4 (6..10).
fn leader(dir: &std::path::Path) -> UnifiedLog {
    let mut log = UnifiedLog::open(dir, config(), 0, true).unwrap();
    log.set_leader_epoch(1, true).unwrap();
    for n in 0..3 {
        log.append(&sample_batch(2, n, None), n).unwrap();
    }
    log.set_leader_epoch(4, true).unwrap();
    for n in 3..5 {
        log.append(&sample_batch(2, n, None), n).unwrap();
    }
    log
}

#[test]
fn a_follower_copies_the_leaders_batches_byte_for_byte() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader(a.path());
    let mut follower = UnifiedLog::open(b.path(), config(), 0, true).unwrap();
    let bytes = read_all(&leader, 0);
    // In two fetches, the first ending in a partial batch.
    let cut = bytes.len() / 2 + 7;
    let first = follower.append_as_follower(&bytes[..cut], 0).unwrap();
    let resume = follower.log_end_offset();
    let rest = read_all(&leader, resume);
    let second = follower.append_as_follower(&rest, 0).unwrap();
    assert_eq!(first.batches + second.batches, 5);
    assert_eq!(follower.log_end_offset(), 10);
    assert_eq!(read_all(&follower, 0), bytes, "byte-identical logs");
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    assert_eq!(follower.end_offset_for_epoch(1), Some((1, 6)));
    assert_eq!(follower.end_offset_for_epoch(3), Some((1, 6)));
    assert_eq!(follower.end_offset_for_epoch(4), Some((4, 10)));
    // Replayed bytes are refused, not appended twice.
    let e = follower.append_as_follower(&bytes, 0).unwrap_err();
    assert!(matches!(e, LogError::CorruptRecord(_)), "{e}");
}

#[test]
fn a_damaged_batch_is_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader(a.path());
    let mut follower = UnifiedLog::open(b.path(), config(), 0, true).unwrap();
    let mut bytes = read_all(&leader, 0);
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    let e = follower.append_as_follower(&bytes, 0).unwrap_err();
    assert!(matches!(e, LogError::CorruptRecord(_)), "{e}");
    assert_eq!(follower.log_end_offset(), 8, "the batches before it stay");
}

#[test]
fn truncation_cuts_the_log_and_its_epochs_and_survives_a_reopen() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader(a.path());
    let mut follower = UnifiedLog::open(b.path(), config(), 0, true).unwrap();
    follower
        .append_as_follower(&read_all(&leader, 0), 0)
        .unwrap();
    // Offset 7 is inside the batch 6..8: the whole batch goes.
    follower.truncate_to(7).unwrap();
    assert_eq!(follower.log_end_offset(), 6);
    assert_eq!(follower.latest_epoch(), Some(1));
    assert_eq!(
        follower.end_offset_for_epoch(4),
        None,
        "an epoch it no longer has"
    );
    follower.close().unwrap();
    drop(follower);
    let mut reopened = UnifiedLog::open(b.path(), config(), 0, true).unwrap();
    assert_eq!(reopened.log_end_offset(), 6);
    assert_eq!(reopened.latest_epoch(), Some(1));
    reopened
        .append_as_follower(&read_all(&leader, 6), 0)
        .unwrap();
    assert_eq!(read_all(&reopened, 0), read_all(&leader, 0));
}

#[test]
fn a_follower_starts_over_at_the_leaders_log_start() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = leader(a.path());
    let mut follower = UnifiedLog::open(b.path(), config(), 0, true).unwrap();
    follower
        .append_as_follower(&read_all(&leader, 0)[..200], 0)
        .unwrap();
    follower.truncate_fully_and_start_at(6).unwrap();
    assert_eq!(
        (follower.local_log_start_offset(), follower.log_end_offset()),
        (6, 6)
    );
    assert_eq!(follower.latest_epoch(), None);
    follower
        .append_as_follower(&read_all(&leader, 6), 0)
        .unwrap();
    assert_eq!(follower.log_end_offset(), 10);
    follower.close().unwrap();
    drop(follower);
    let reopened = UnifiedLog::open(b.path(), config(), 0, true).unwrap();
    assert_eq!(
        (reopened.local_log_start_offset(), reopened.log_end_offset()),
        (6, 10)
    );
    assert_eq!(read_all(&reopened, 6), read_all(&leader, 6));
}

#[test]
fn epochs_missing_from_the_checkpoint_are_found_in_the_batches() {
    let a = tempfile::tempdir().unwrap();
    let log = leader(a.path());
    let entries = log.epoch_entries().to_vec();
    drop(log);
    std::fs::remove_file(
        a.path()
            .join(crate::log::leader_epoch::LEADER_EPOCH_CHECKPOINT),
    )
    .unwrap();
    let reopened = UnifiedLog::open(a.path(), config(), 0, false).unwrap();
    assert_eq!(reopened.epoch_entries(), entries);
}

#[test]
fn a_replica_started_over_learns_older_producers_from_the_snapshot() {
    use crate::log::batch::{BatchHeader, assign_offset};
    use crate::log::producer_state::SequenceCheck;
    let map = BTreeMap::from([
        ("segment.bytes".to_owned(), "700".to_owned()),
        ("remote.storage.enable".to_owned(), "true".to_owned()),
    ]);
    let config = LogConfig::from_map(&map).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = UnifiedLog::open(a.path(), config.clone(), 0, true).unwrap();
    // Producer 7 writes offsets 0..6 and is idle after; a plain producer writes on.
    for n in 0..3 {
        leader
            .append(&sample_batch(2, n, Some((7, 0, 2 * n as i32))), n)
            .unwrap();
    }
    for n in 3..8 {
        leader.append(&sample_batch(2, n, None), n).unwrap();
    }
    let mut replica = UnifiedLog::open(b.path(), config, 0, true).unwrap();
    assert!(replica.producer_history_complete());
    replica.truncate_fully_and_start_at(10).unwrap();
    replica
        .append_as_follower(&read_all(&leader, 10), 0)
        .unwrap();
    assert!(!replica.producer_history_complete());
    assert!(
        replica.producer_state_below(12).is_none(),
        "no partial snapshot"
    );
    let retry = |offset| {
        let mut batch = sample_batch(2, 2, Some((7, 0, 4)));
        assign_offset(&mut batch, offset, 0);
        BatchHeader::parse(&batch).unwrap()
    };
    assert_eq!(
        replica.producer_state.check(&retry(99)).unwrap(),
        SequenceCheck::Append,
        "an unknown producer: the retry would be written twice"
    );
    // The remote segment ending at 12 kept the leader's state below 12.
    replica
        .merge_producer_history(leader.producer_state_below(12).unwrap())
        .unwrap();
    assert!(replica.producer_history_complete());
    let known = |log: &UnifiedLog| match log.producer_state.check(&retry(99)).unwrap() {
        SequenceCheck::Duplicate(original) => original.first_offset,
        other => panic!("expected a duplicate, got {other:?}"),
    };
    assert_eq!(known(&replica), 4);
    // A truncation rebuilds from the merged base, not from the local batches only.
    replica.truncate_to(14).unwrap();
    assert_eq!(known(&replica), 4);
    assert!(replica.producer_state_below(14).is_some());
}
