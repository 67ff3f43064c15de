use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use super::*;
use crate::log::batch::tests::sample_batch;
use crate::log::local_log::dir_syncs_on_this_thread;

fn config(entries: &[(&str, &str)]) -> LogConfig {
    let map: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_map(&map).unwrap()
}

fn append(log: &mut UnifiedLog, count: u32, ts: i64) -> AppendInfo {
    log.append(&sample_batch(count, ts, None), ts).unwrap()
}

#[test]
fn appends_roll_and_survive_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("segment.bytes", "1000")]);
    let mut log = UnifiedLog::open(dir.path(), cfg.clone(), 0, true).unwrap();
    for n in 0..100 {
        let info = append(&mut log, 2, n);
        assert_eq!(info.base_offset, 2 * n as u64);
    }
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    let end = log.log_end_offset();
    log.close().unwrap();
    drop(log);
    let log = UnifiedLog::open(dir.path(), cfg, 0, true).unwrap();
    assert_eq!(log.log_end_offset(), end);
    for offset in [0, 1, 57, 199] {
        let slice = log.read(offset, 1, u64::MAX, true).unwrap().unwrap();
        let mut head = [0u8; 61];
        slice.file.read_exact_at(&mut head, slice.position).unwrap();
        let header = BatchHeader::parse(&head).unwrap();
        assert!(header.base_offset <= offset as u64 && offset as u64 <= header.last_offset());
    }
    assert!(log.read(200, 10, u64::MAX, true).unwrap().is_none());
    assert!(matches!(
        log.read(201, 10, u64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn unclean_reopen_recovers_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("segment.bytes", "2000")]);
    let mut log = UnifiedLog::open(dir.path(), cfg.clone(), 0, true).unwrap();
    for n in 0..50 {
        append(&mut log, 1, n);
    }
    let end = log.log_end_offset();
    let active = log.local.segments().active().path().to_owned();
    drop(log);
    // Half a batch at the end of the active segment, as a crash mid-write leaves it.
    let torn = sample_batch(3, 0, None);
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap();
    file.write_all_at(&torn[..30], file.metadata().unwrap().len())
        .unwrap();
    let mut log = UnifiedLog::open(dir.path(), cfg, 0, false).unwrap();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(
        log.recovery_point(),
        end,
        "recovered data is flushed and counts as durable"
    );
    assert_eq!(append(&mut log, 1, 0).base_offset, end);
}

#[test]
fn idempotent_retry_after_restart_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default();
    let mut log = UnifiedLog::open(dir.path(), cfg.clone(), 0, true).unwrap();
    log.append(&sample_batch(3, 1, Some((42, 0, 0))), 1)
        .unwrap();
    log.append(&sample_batch(3, 1, Some((42, 0, 3))), 1)
        .unwrap();
    drop(log);
    let mut log = UnifiedLog::open(dir.path(), cfg, 0, false).unwrap();
    let retry = log
        .append(&sample_batch(3, 1, Some((42, 0, 3))), 1)
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 3);
    assert_eq!(log.log_end_offset(), 6);
    let gap = log.append(&sample_batch(1, 1, Some((42, 0, 9))), 1);
    assert!(matches!(
        gap,
        Err(LogError::OutOfOrderSequence { expected: 6, .. })
    ));
}

#[test]
fn retention_by_size_and_time_keeps_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("segment.bytes", "500"), ("retention.bytes", "1000")]);
    let mut log = UnifiedLog::open(dir.path(), cfg, 0, true).unwrap();
    for n in 0..60 {
        append(&mut log, 1, n);
    }
    let deleted = log.apply_retention(100).unwrap();
    assert!(deleted > 0);
    assert!(log.size() <= 1000 + 500, "size {}", log.size());
    assert!(log.log_start_offset() > 0);
    assert!(matches!(
        log.read(0, 10, u64::MAX, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(
        log.read(log.local_log_start_offset() as i64, 10, u64::MAX, true)
            .unwrap()
            .is_some()
    );

    let mut cfg = log.config().clone();
    cfg.retention_ms = 1_000;
    cfg.retention_bytes = -1;
    log.set_config(cfg);
    log.apply_retention(1_000_000).unwrap();
    assert_eq!(log.size(), 0);
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    assert_eq!(append(&mut log, 1, 1_000_000).base_offset, 60);
}

#[test]
fn flush_bookkeeping_tracks_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = UnifiedLog::open(dir.path(), LogConfig::default(), 0, true).unwrap();
    assert!(log.flush_target().is_none());
    append(&mut log, 4, 0);
    assert!(log.flush_due(SystemTime::now()));
    let target = log.flush_target().unwrap();
    assert_eq!(target.offset, 4);
    target.sync().unwrap();
    log.mark_flushed(&target, SystemTime::now());
    assert_eq!(log.recovery_point(), 4);
    assert!(!log.flush_due(SystemTime::now()));
}

#[test]
fn oversized_batch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        UnifiedLog::open(dir.path(), config(&[("max.message.bytes", "100")]), 0, true).unwrap();
    let err = log.append(&sample_batch(20, 0, None), 0).unwrap_err();
    assert!(
        matches!(err, LogError::RecordTooLarge { max: 100, .. }),
        "{err}"
    );
}

#[test]
fn segment_ms_rolls_an_old_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        UnifiedLog::open(dir.path(), config(&[("segment.ms", "60000")]), 0, true).unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    log.append(&sample_batch(1, now, None), now).unwrap();
    log.append(&sample_batch(1, now, None), now + 1_000)
        .unwrap();
    assert_eq!(log.segment_count(), 1, "young segment keeps taking appends");
    log.append(&sample_batch(1, now, None), now + 61_000)
        .unwrap();
    assert_eq!(
        log.segment_count(),
        2,
        "a segment older than segment.ms rolls on the next append"
    );
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn a_roll_leaves_the_directory_fsync_to_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut log =
        UnifiedLog::open(dir.path(), config(&[("segment.bytes", "200")]), 0, true).unwrap();
    append(&mut log, 2, 0);
    let target = log.flush_target().unwrap();
    target.sync().unwrap();
    log.mark_flushed(&target, SystemTime::now());
    // Appends that roll the segment never fsync the directory themselves: that is the flush's
    // job, outside the partition lock.
    let syncs = dir_syncs_on_this_thread();
    for n in 0..5 {
        append(&mut log, 2, n);
    }
    assert!(log.segment_count() > 2, "the appends rolled");
    assert_eq!(
        dir_syncs_on_this_thread(),
        syncs,
        "an append fsynced the directory"
    );
    let target = log.flush_target().unwrap();
    assert!(
        target.dir_changes.is_some(),
        "the flush covers the new segments' entries"
    );
    target.sync().unwrap();
    assert_eq!(dir_syncs_on_this_thread(), syncs + 1);
    log.mark_flushed(&target, SystemTime::now());
    assert_eq!(log.recovery_point(), log.log_end_offset());
    // Until the next roll, flushes leave the directory alone.
    let segments = log.segment_count();
    append(&mut log, 1, 9);
    let target = log.flush_target().unwrap();
    assert_eq!(target.dir_changes.is_some(), log.segment_count() > segments);
}

#[test]
fn a_segment_straddling_the_remote_end_is_still_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("segment.bytes", "300")]);
    let mut log = UnifiedLog::open(dir.path(), cfg, 0, true).unwrap();
    for n in 0..12 {
        append(&mut log, 2, n);
    }
    let closed: Vec<(u64, u64)> = log
        .upload_candidates(u64::MAX)
        .iter()
        .map(|s| (s.base_offset, s.next_offset))
        .collect();
    assert!(closed.len() >= 2, "{closed:?}");
    let (base, next) = closed[0];
    // Another leader uploaded up to the middle of this replica's first segment.
    log.set_remote_tier(Some(0), base + 1, 100);
    let candidates = log.upload_candidates(u64::MAX);
    assert_eq!(
        (candidates[0].base_offset, candidates[0].next_offset),
        (base, next),
        "the straddling segment stays a candidate"
    );
    log.set_remote_tier(Some(0), next, 100);
    assert_eq!(log.upload_candidates(u64::MAX)[0].base_offset, closed[1].0);
}

#[test]
fn producers_whose_segments_local_retention_deleted_survive_a_crash() {
    use crate::log::producer_state::SequenceCheck;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[
        ("segment.bytes", "700"),
        ("remote.storage.enable", "true"),
        ("local.retention.bytes", "0"),
    ]);
    let mut log = UnifiedLog::open(dir.path(), cfg.clone(), 0, true).unwrap();
    // Producer 7 writes offsets 0..6, then only plain batches follow.
    for n in 0..3 {
        log.append(&sample_batch(2, n, Some((7, 0, 2 * n as i32))), n)
            .unwrap();
    }
    for n in 3..20 {
        append(&mut log, 2, n);
    }
    let uploaded = log.active_base_offset();
    log.set_remote_tier(Some(0), uploaded, 1000);
    assert!(log.apply_retention(100).unwrap() > 0);
    assert_eq!(log.local_log_start_offset(), uploaded);
    let retry = sample_batch(2, 2, Some((7, 0, 4)));
    let is_duplicate = |log: &UnifiedLog| {
        let header = BatchHeader::parse(&retry).unwrap();
        matches!(
            log.producer_state.check(&header).unwrap(),
            SequenceCheck::Duplicate(b) if b.first_offset == 4
        )
    };
    assert!(is_duplicate(&log));
    // kill -9: nothing closed. The snapshot at the local log start brings producer 7 back.
    drop(log);
    let log = UnifiedLog::open(dir.path(), cfg.clone(), 0, false).unwrap();
    assert!(log.producer_history_complete());
    assert!(is_duplicate(&log), "producer 7 forgotten after the crash");
    // A snapshot of another log start is not taken for this one's.
    drop(log);
    let path = dir.path().join(PRODUCER_SNAPSHOT);
    let other = ProducerStateManager::default().to_json(uploaded - 2);
    std::fs::write(&path, other).unwrap();
    let log = UnifiedLog::open(dir.path(), cfg, 0, false).unwrap();
    assert!(!log.producer_history_complete());
    assert!(!is_duplicate(&log));
}

#[test]
fn deleted_records_move_the_log_start_durably_and_take_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("segment.bytes", "1000")]);
    let mut log = UnifiedLog::open(dir.path(), cfg.clone(), 0, true).unwrap();
    for n in 0..100 {
        append(&mut log, 2, n);
    }
    let segments = log.segment_count();
    // Inside the fourth segment or so: the segments wholly below go, the one holding the new
    // start stays.
    assert!(log.advance_log_start(37).unwrap());
    assert_eq!(log.log_start_offset(), 37);
    assert!(log.local_log_start_offset() <= 37);
    assert!(
        log.local_log_start_offset() > 0,
        "whole segments below are gone"
    );
    assert!(log.segment_count() < segments);
    assert!(
        !log.advance_log_start(20).unwrap(),
        "the start never moves back"
    );
    assert!(
        log.upload_candidates(u64::MAX)
            .iter()
            .all(|s| s.next_offset > 37),
        "deleted records are not uploaded"
    );
    drop(log);
    // A crash keeps it.
    let mut log = UnifiedLog::open(dir.path(), cfg, 0, false).unwrap();
    assert_eq!(log.log_start_offset(), 37);
    // Everything: the active segment stays (empty of readable records), closed ones go.
    let end = log.log_end_offset();
    log.roll().unwrap();
    assert!(log.advance_log_start(end).unwrap());
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.local_log_start_offset(), end);
    assert_eq!(log.segment_count(), 1);
}
