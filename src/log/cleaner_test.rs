//! Compaction of a real log on disk, driven through `Partition::clean`.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::log::{LogConfig, LogError, UnifiedLog};
use crate::partition::Partition;

const BUDGET: usize = 1 << 20;

fn config(entries: &[(&str, &str)]) -> LogConfig {
    let map: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_map(&map).unwrap()
}

fn compacted() -> LogConfig {
    // No fsync before acknowledging: the high watermark (up to which the cleaner may work,
    // as it stops at the last stable offset) is the log end without a flush.
    config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "2000"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("flush.messages", "1000000"),
    ])
}

/// One batch of keyed records (`None` value: a tombstone), timestamped `ts`.
fn batch(records: &[(&str, Option<&str>)], ts: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: ts,
            key: Some(Bytes::from(key.to_string())),
            value: value.map(|v| Bytes::from(v.to_string())),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

/// Every record of the log: offset → (key, value).
fn records(log: &UnifiedLog) -> BTreeMap<i64, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    let end = log.log_end_offset();
    let mut offset = log.local_log_start_offset();
    while offset < end {
        let Some(slice) = log.read(offset as i64, 1 << 20, end, true).unwrap() else {
            break;
        };
        let mut raw = vec![0u8; slice.len as usize];
        slice.file.read_exact_at(&mut raw, slice.position).unwrap();
        let mut bytes = Bytes::from(raw);
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.insert(r.offset, (text(r.key).unwrap(), text(r.value)));
                offset = r.offset as u64 + 1;
            }
        }
    }
    out
}

/// The latest value of every key, from a record map.
fn latest(records: &BTreeMap<i64, (String, Option<String>)>) -> BTreeMap<String, Option<String>> {
    records.values().cloned().collect()
}

fn overwrite(partition: &Partition, rounds: usize, keys: usize, ts: i64) {
    for round in 0..rounds {
        let values: Vec<String> = (0..keys).map(|k| format!("k{k}-r{round}")).collect();
        let keyed: Vec<(String, Option<&str>)> = (0..keys)
            .map(|k| (format!("k{k}"), Some(values[k].as_str())))
            .collect();
        let refs: Vec<(&str, Option<&str>)> = keyed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        partition
            .append(&batch(&refs, ts, Compression::None), ts)
            .unwrap();
    }
}

#[test]
fn overwrites_shrink_to_the_latest_record_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = UnifiedLog::open(dir.path(), compacted(), 0, true).unwrap();
    let partition = Partition::new("t".into(), 0, uuid::Uuid::nil(), log);
    overwrite(&partition, 40, 10, 1_000);
    let before = records(&partition.log());
    assert_eq!(before.len(), 400);
    let stats = partition.clean(BUDGET, 2_000).unwrap().expect("a pass ran");
    assert!(stats.records_removed > 300, "{stats:?}");
    let after = records(&partition.log());
    assert_eq!(
        latest(&after),
        latest(&before),
        "every key keeps its latest value"
    );
    for (offset, record) in &after {
        assert_eq!(before.get(offset), Some(record), "offsets never change");
    }
    // Closed segments hold one record per key; only the active segment may repeat keys.
    let active_base = partition.log().active_base_offset();
    let closed: Vec<_> = after
        .range(..active_base as i64)
        .map(|(_, r)| &r.0)
        .collect();
    let distinct: std::collections::BTreeSet<_> = closed.iter().collect();
    assert_eq!(
        closed.len(),
        distinct.len(),
        "a key twice in closed segments"
    );
    assert!(partition.log().size() < 10_000);
    // A second pass finds nothing new to do.
    assert!(partition.clean(BUDGET, 2_000).unwrap().is_none());

    // Reopened, the compacted log reads the same (gaps between segments are legal).
    let end = partition.log().log_end_offset();
    partition.log().close().unwrap();
    drop(partition);
    let log = UnifiedLog::open(dir.path(), compacted(), end, false).unwrap();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(records(&log), after);
}

#[test]
fn tombstones_go_after_delete_retention_and_compressed_batches_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "500"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "10000"),
        ("flush.messages", "1000000"),
    ]);
    let log = UnifiedLog::open(dir.path(), cfg, 0, true).unwrap();
    let partition = Partition::new("t".into(), 0, uuid::Uuid::nil(), log);
    for round in 0..5 {
        let a = format!("a{round}");
        let b = format!("b{round}");
        let batch = batch(&[("a", Some(&a)), ("b", Some(&b))], 1_000, Compression::Lz4);
        partition.append(&batch, 1_000).unwrap();
    }
    partition
        .append(&batch(&[("a", None)], 1_000, Compression::None), 1_000)
        .unwrap();
    // Push everything above into closed segments.
    for n in 0..20 {
        let v = format!("c{n}");
        partition
            .append(&batch(&[("c", Some(&v))], 1_000, Compression::Gzip), 1_000)
            .unwrap();
    }
    // Within delete.retention.ms the tombstone stays, and hides nothing it should not.
    partition.clean(BUDGET, 5_000).unwrap().expect("a pass ran");
    let kept = latest(&records(&partition.log()));
    assert_eq!(
        kept.get("a"),
        Some(&None),
        "the tombstone is still readable"
    );
    assert_eq!(kept.get("b"), Some(&Some("b4".to_owned())));
    // Past it, the tombstone goes too.
    partition.log().set_first_dirty(0).unwrap();
    partition
        .clean(BUDGET, 20_000)
        .unwrap()
        .expect("a pass ran");
    let kept = latest(&records(&partition.log()));
    assert!(!kept.contains_key("a"), "{kept:?}");
    assert_eq!(kept.get("b"), Some(&Some("b4".to_owned())));
    assert_eq!(kept.get("c"), Some(&Some("c19".to_owned())));
}

#[test]
fn a_crash_mid_clean_leaves_the_old_or_the_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = UnifiedLog::open(dir.path(), compacted(), 0, true).unwrap();
    let partition = Partition::new("t".into(), 0, uuid::Uuid::nil(), log);
    overwrite(&partition, 40, 10, 1_000);
    let before = records(&partition.log());
    let end = partition.log().log_end_offset();

    // Crash before the swap: only a `.cleaned` file exists. It is thrown away.
    let plan = partition.log().cleaning_plan(2_000, u64::MAX).unwrap();
    let mut stats = Default::default();
    let (map, _) = super::build_offset_map(&plan, BUDGET, 2_000, &mut stats).unwrap();
    let cleaned = super::clean_segment(&plan, &plan.segments[0], &map, 2_000, &mut stats)
        .unwrap()
        .expect("something to remove");
    assert!(cleaned.path.exists());
    partition.log().close().unwrap();
    drop(partition);
    let log = UnifiedLog::open(dir.path(), compacted(), end, false).unwrap();
    assert!(!cleaned.path.exists(), "the unfinished file is gone");
    assert_eq!(records(&log), before, "nothing changed");

    // Crash after the rename to `.swap`: the swap completes on open.
    let partition = Partition::new("t".into(), 0, uuid::Uuid::nil(), log);
    let plan = partition.log().cleaning_plan(2_000, u64::MAX).unwrap();
    let (map, _) = super::build_offset_map(&plan, BUDGET, 2_000, &mut stats).unwrap();
    let cleaned = super::clean_segment(&plan, &plan.segments[0], &map, 2_000, &mut stats)
        .unwrap()
        .unwrap();
    let swap = cleaned.path.with_extension(super::SWAP_SUFFIX);
    std::fs::rename(&cleaned.path, &swap).unwrap();
    partition.log().close().unwrap();
    drop(partition);
    let log = UnifiedLog::open(dir.path(), compacted(), end, false).unwrap();
    assert!(!swap.exists());
    let after = records(&log);
    assert!(
        after.len() < before.len(),
        "the cleaned segment is in place"
    );
    assert_eq!(latest(&after), latest(&before), "and nothing was lost");
}

#[test]
fn records_without_keys_are_refused_by_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = UnifiedLog::open(dir.path(), compacted(), 0, true).unwrap();
    let keyless = crate::log::batch::tests::sample_batch(2, 1, None);
    let err = log.append(&keyless, 1).unwrap_err();
    assert!(err.to_string().contains("without key"), "{err}");
    match err {
        LogError::InvalidRecords { records, .. } => {
            let indexes: Vec<i32> = records.iter().map(|(i, _)| *i).collect();
            assert_eq!(indexes, [0, 1], "each keyless record is named");
        }
        other => panic!("{other}"),
    }
}

/// The cleaner's throughput on this machine (not a test: it asserts nothing about speed).
/// `cargo test --release -p strata --lib cleaner_throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn cleaner_throughput() {
    const KEYS: usize = 10_000;
    const ROUNDS: usize = 25;
    const PER_BATCH: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", &(64 << 20).to_string()),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]);
    let log = UnifiedLog::open(dir.path(), cfg, 0, true).unwrap();
    let partition = Partition::new("t".into(), 0, uuid::Uuid::nil(), log);
    let value = "v".repeat(1000);
    for _ in 0..ROUNDS {
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(PER_BATCH) {
            let keys: Vec<String> = chunk.iter().map(|k| format!("key-{k:06}")).collect();
            let records: Vec<(&str, Option<&str>)> = keys
                .iter()
                .map(|k| (k.as_str(), Some(value.as_str())))
                .collect();
            partition
                .append(&batch(&records, 1_000, Compression::None), 1_000)
                .unwrap();
        }
    }
    let size = partition.log().size();
    let started = std::time::Instant::now();
    let stats = partition
        .clean(128 << 20, 2_000)
        .unwrap()
        .expect("a pass ran");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "cleaned {} MB of {} records ({} segments) to {} MB in {secs:.2} s: {:.0} MB/s read, \
         {:.0} MB/s of log compacted",
        stats.bytes_before / 1_000_000,
        KEYS * ROUNDS,
        stats.segments,
        stats.bytes_after / 1_000_000,
        stats.bytes_read as f64 / 1e6 / secs,
        stats.bytes_before as f64 / 1e6 / secs,
    );
    assert!(partition.log().size() < size);
}

/// One transactional batch of producer `pid` writing `key` = `value`.
fn txn_batch(pid: i64, seq: i32, key: &str, value: &str) -> Vec<u8> {
    let record = Record {
        transactional: true,
        control: false,
        partition_leader_epoch: 0,
        producer_id: pid,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: seq,
        timestamp: 1_000,
        key: Some(Bytes::from(key.to_string())),
        value: Some(Bytes::from(value.to_string())),
        headers: Default::default(),
        delete_horizon: false,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.to_vec()
}

#[test]
fn aborted_records_go_and_open_transactions_are_not_cleaned() {
    use strata_record::control::Marker;
    let dir = tempfile::tempdir().unwrap();
    let log = UnifiedLog::open(dir.path(), compacted(), 0, true).unwrap();
    let partition = Partition::new("t".into(), 0, uuid::Uuid::nil(), log);
    let abort = Marker {
        commit: false,
        coordinator_epoch: 0,
    };
    partition
        .append(
            &batch(&[("k", Some("committed"))], 1_000, Compression::None),
            1_000,
        )
        .unwrap();
    // An aborted overwrite of k must not remove the committed value.
    partition
        .append(&txn_batch(5, 0, "k", "aborted"), 1_000)
        .unwrap();
    partition.append_marker(5, 0, abort, 1_000).unwrap();
    overwrite(&partition, 20, 5, 1_000);
    // A transaction still open: from here on nothing is cleaned.
    let open_at = partition
        .append(&txn_batch(6, 0, "k0", "open"), 1_000)
        .unwrap()
        .0
        .base_offset;
    overwrite(&partition, 20, 5, 1_000);
    let before = records(&partition.log());
    partition.clean(BUDGET, 2_000).unwrap().expect("a pass ran");
    let after = records(&partition.log());
    let value_of = |records: &BTreeMap<i64, (String, Option<String>)>, key: &str| {
        records
            .values()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        value_of(&after, "k"),
        ["committed"],
        "the aborted record is gone"
    );
    // Records from the open transaction on are as they were.
    let tail = |records: &BTreeMap<i64, (String, Option<String>)>| {
        records
            .range(open_at as i64..)
            .map(|(o, r)| (*o, r.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(tail(&after), tail(&before));
    assert!(after.len() < before.len(), "the stable part was compacted");
}
