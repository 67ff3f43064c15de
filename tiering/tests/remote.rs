//! The remote log against a real S3-protocol server (s3s-fs on 127.0.0.1): uploads, reads of
//! every offset, timestamps, retention, orphans, topic deletion, and a store that answers 503
//! or refuses connections for a while.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_tiering::chunk::batches;
use strata_tiering::remote::{ProducerSnapshot, SnapshotBatch};
use strata_tiering::store::{self, StoreOptions};
use strata_tiering::testing;
use strata_tiering::{ChunkCache, PartitionKey, RemoteLog};
use uuid::Uuid;

/// A batch of `count` offsets at `base`, timestamp `ts`, and a compressible payload.
fn batch(base: u64, count: u32, ts: i64, payload: usize) -> Vec<u8> {
    strata_record::testing::batch(
        base,
        count,
        0,
        ts,
        payload,
        b"{\"user\":1234,\"event\":\"click\"}",
    )
}

/// Segment `n`: 100 batches of 10 offsets each, timestamps 10 per batch apart.
fn segment(n: u64) -> Vec<u8> {
    (0..100)
        .flat_map(|b| {
            let base = n * 1000 + b * 10;
            batch(base, 10, base as i64, 1000)
        })
        .collect()
}

fn options(server: &testing::TestS3) -> StoreOptions {
    StoreOptions {
        max_retries: 1,
        request_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(1),
        s3: Some(server.settings()),
    }
}

async fn remote_log(
    server: &testing::TestS3,
    cache_dir: &std::path::Path,
    key: &PartitionKey,
) -> RemoteLog {
    let store = store::open("s3://tiered/prefix", &options(server)).unwrap();
    let cache = Arc::new(ChunkCache::new(cache_dir.to_owned(), 1 << 20, 16 << 20).unwrap());
    RemoteLog::open(store, cache, key.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_round_trip_through_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let server = testing::start(&tmp.path().join("s3"), "tiered").await;
    let store = store::open("s3://tiered/prefix", &options(&server)).unwrap();
    store::probe(store.as_ref()).await.expect("the store works");
    let key = PartitionKey {
        cluster_id: "c1".into(),
        topic: "events".into(),
        topic_id: Uuid::new_v4(),
        partition: 3,
    };
    let log = remote_log(&server, &tmp.path().join("cache"), &key).await;
    let producers = vec![ProducerSnapshot {
        id: 7,
        epoch: 2,
        batches: vec![SnapshotBatch {
            first_sequence: 40,
            last_sequence: 49,
            first_offset: 1990,
            max_timestamp: 1990,
        }],
    }];
    for n in 0..3 {
        // Segment 1 keeps the producer state; 0 and 2 as uploaded before it was kept.
        let kept = (n == 1).then(|| producers.clone());
        let uploaded = log
            .upload(segment(n), 32 << 10, 3, (kept, Vec::new()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (uploaded.base_offset, uploaded.next_offset),
            (n * 1000, n * 1000 + 1000)
        );
        assert!(
            uploaded.stored_bytes * 5 < uploaded.raw_bytes,
            "{uploaded:?}"
        );
    }
    // The same segment again (a retry after a crash) changes nothing.
    assert!(
        log.upload(segment(2), 32 << 10, 3, (None, Vec::new()))
            .await
            .unwrap()
            .is_none()
    );

    // A fresh reader (another broker, an empty disk) sees the same log: every offset reads
    // back in order, in whole batches.
    let reader = remote_log(&server, &tmp.path().join("cache2"), &key).await;
    assert_eq!(
        (reader.start_offset(), reader.end_offset()),
        (Some(0), Some(3000))
    );
    // A log starting at an offset learns the producer state of the segment below it.
    assert_eq!(reader.producers_before(0).await.unwrap(), None);
    assert_eq!(
        reader.producers_before(1500).await.unwrap(),
        Some((2000, producers.clone()))
    );
    assert_eq!(
        reader.producers_before(2000).await.unwrap(),
        Some((2000, producers))
    );
    assert_eq!(reader.producers_before(1000).await.unwrap(), None);
    assert_eq!(reader.producers_before(9000).await.unwrap(), None);
    let mut offset = 0;
    while offset < 3000 {
        let read = reader.read(offset, 50_000, true).await.unwrap().unwrap();
        let bytes = read.records.concat();
        let spans: Vec<_> = batches(&bytes).map(|(_, b)| b).collect();
        assert!(!spans.is_empty());
        assert!(spans[0].base_offset <= offset && offset < spans[0].next_offset());
        for pair in spans.windows(2) {
            assert_eq!(pair[0].next_offset(), pair[1].base_offset);
        }
        offset = spans.last().unwrap().next_offset();
    }
    assert!(reader.read(3000, 1000, true).await.unwrap().is_none());
    // Batch 1230..1240 has timestamp 1230, so the first at or after 1234 is batch 1240.
    let found = reader.batch_for_timestamp(1234).await.unwrap().unwrap();
    assert_eq!(batches(&found).next().unwrap().1.base_offset, 1240);
    assert!(
        reader
            .batch_for_timestamp(1_000_000)
            .await
            .unwrap()
            .is_none()
    );

    // Total retention: the oldest segment goes from the manifest and the bucket.
    let deleted = log
        .delete_oldest(|s, _| s.base_offset < 1000)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let reopened = remote_log(&server, &tmp.path().join("cache3"), &key).await;
    assert_eq!(reopened.start_offset(), Some(1000));
    assert!(reopened.read(500, 1000, true).await.unwrap().is_none());

    // Objects no manifest names (an upload cut short) are swept once old enough.
    let stray =
        object_store::path::Path::from(format!("{}/00000000000000009000-x.zst", key.root()));
    object_store::ObjectStoreExt::put(store.as_ref(), &stray, vec![1u8; 10].into())
        .await
        .unwrap();
    assert_eq!(
        log.sweep_orphans(60_000).await.unwrap(),
        0,
        "too young to sweep"
    );
    assert_eq!(log.sweep_orphans(-1_000).await.unwrap(), 1);

    let removed =
        strata_tiering::remote::delete_topic(store.as_ref(), "c1", "events", key.topic_id)
            .await
            .unwrap();
    assert_eq!(removed, 5, "manifest and two segments of two objects each");
    let empty = remote_log(&server, &tmp.path().join("cache4"), &key).await;
    assert_eq!(empty.end_offset(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_fails_uploads_without_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let server = testing::start(&tmp.path().join("s3"), "tiered").await;
    let key = PartitionKey {
        cluster_id: "c1".into(),
        topic: "t".into(),
        topic_id: Uuid::new_v4(),
        partition: 0,
    };
    let log = remote_log(&server, &tmp.path().join("cache"), &key).await;
    log.upload(segment(0), 32 << 10, 3, (None, Vec::new()))
        .await
        .unwrap();
    server.unavailable.store(true, Ordering::SeqCst);
    assert!(
        log.upload(segment(1), 32 << 10, 3, (None, Vec::new()))
            .await
            .is_err(),
        "503 fails the upload"
    );
    server.unavailable.store(false, Ordering::SeqCst);
    server.refusing.store(true, Ordering::SeqCst);
    assert!(
        log.upload(segment(1), 32 << 10, 3, (None, Vec::new()))
            .await
            .is_err(),
        "no connection"
    );
    server.refusing.store(false, Ordering::SeqCst);
    assert_eq!(
        log.end_offset(),
        Some(1000),
        "failed uploads are not in the manifest"
    );
    log.upload(segment(1), 32 << 10, 3, (None, Vec::new()))
        .await
        .unwrap()
        .unwrap();
    let reader = remote_log(&server, &tmp.path().join("cache2"), &key).await;
    assert_eq!(reader.end_offset(), Some(2000));
    // The failed attempts left no object the manifest names, and nothing readable is broken.
    let read = reader.read(1500, 1 << 20, true).await.unwrap().unwrap();
    let bytes = read.records.concat();
    assert_eq!(batches(&bytes).next().unwrap().1.base_offset, 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_buckets_and_credentials_are_named_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let server = testing::start(&tmp.path().join("s3"), "tiered").await;
    let mut wrong = options(&server);
    wrong.s3.as_mut().unwrap().secret_access_key = "wrong".into();
    let store = store::open("s3://tiered", &wrong).unwrap();
    let err = store::probe(store.as_ref()).await.unwrap_err().to_string();
    assert!(err.contains("not usable"), "{err}");
    let store = store::open("s3://no-such-bucket", &options(&server)).unwrap();
    let err = store::probe(store.as_ref()).await.unwrap_err().to_string();
    assert!(err.contains("not usable"), "{err}");
    assert!(store::open("ftp://x", &StoreOptions::default()).is_err());
    assert!(store::open("s3://", &StoreOptions::default()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_uploads_of_a_tail_are_replaced_by_the_whole_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let server = testing::start(&tmp.path().join("s3"), "tiered").await;
    let key = PartitionKey {
        cluster_id: "c1".into(),
        topic: "tail".into(),
        topic_id: Uuid::new_v4(),
        partition: 0,
    };
    let log = remote_log(&server, &tmp.path().join("cache"), &key).await;
    let whole = segment(0);
    // Batches are 10 offsets of about 1 KiB each: the first 50 and the next 30 batches.
    let cut = |from: u64, to: u64| -> Vec<u8> {
        batches(&whole)
            .filter(|(_, b)| b.base_offset >= from && b.next_offset() <= to)
            .flat_map(|(p, b)| whole[p..p + b.size() as usize].to_vec())
            .collect()
    };
    let first = log
        .upload_partial(cut(0, 500), 32 << 10, 3, (None, Vec::new()))
        .await
        .unwrap()
        .unwrap();
    assert!(first.partial);
    let second = log
        .upload_partial(cut(500, 800), 32 << 10, 3, (None, Vec::new()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.base_offset, second.next_offset), (500, 800));
    assert_eq!(log.partial_start(), Some(0));
    assert_eq!(log.end_offset(), Some(800));
    // The closed segment replaces both; their objects go.
    let full = log
        .upload(whole, 32 << 10, 3, (None, Vec::new()))
        .await
        .unwrap()
        .unwrap();
    assert!(!full.partial);
    assert_eq!(log.segments().len(), 1);
    assert_eq!(
        (log.start_offset(), log.end_offset()),
        (Some(0), Some(1000))
    );
    assert_eq!(log.partial_start(), None);
    assert_eq!(
        log.sweep_orphans(-1_000).await.unwrap(),
        0,
        "no object left behind"
    );
    let reader = remote_log(&server, &tmp.path().join("cache2"), &key).await;
    let read = reader.read(640, 50_000, true).await.unwrap().unwrap();
    let bytes = read.records.concat();
    assert_eq!(batches(&bytes).next().unwrap().1.base_offset, 640);
}
