//! Tiered storage against a real S3-protocol server (s3s-fs on 127.0.0.1) with librdkafka:
//! small segments are uploaded, local retention deletes them, and consumers read the whole
//! history back from the bucket — from offset 0 and from a timestamp, after a restart, after a
//! kill -9 during uploads, and after the store answered 503 and refused connections for a
//! while. Total retention removes remote objects; a bad bucket stops the broker at startup.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::metrics::scrape;
use common::{BrokerProcess, client, consume_all, create_topic, s3_env};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use strata_tiering::testing::{self, TestS3};

const TOPIC: &str = "history";
/// Records are produced with timestamps BASE_TS + offset.
const BASE_TS: i64 = 1_700_000_000_000;

fn start_broker(dir: &Path, server: &TestS3, extra: &[&str]) -> BrokerProcess {
    let mut settings = vec![
        "remote.log.storage.url=s3://tiered/strata",
        "remote.log.manager.task.interval.ms=200",
        "log.retention.check.interval.ms=200",
        "remote.log.chunk.bytes=16384",
        "cluster.id=TieredClusterAAAAAAAAAA",
    ];
    settings.extend_from_slice(extra);
    BrokerProcess::start_env(dir, &settings, &s3_env(server))
}

fn value(n: usize) -> String {
    format!(
        "{{\"seq\":{n},\"user\":\"user-{}\",\"event\":\"page_view\",\"path\":\"/items/{}\",\"pad\":\"{}\"}}",
        n % 97,
        n % 1013,
        "x".repeat(900)
    )
}

async fn produce(addr: &str, from: usize, to: usize) {
    let producer: FutureProducer = client(addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        // Small batches, so that 16 KiB segments roll often.
        .set("batch.size", "4096")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for n in from..to {
        let payload = value(n);
        let record = FutureRecord::<(), _>::to(TOPIC)
            .payload(&payload)
            .partition(0)
            .timestamp(BASE_TS + n as i64);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// Every record from offset 0, checked: dense offsets, the right values, in order.
fn assert_full_history(addr: &str, count: usize) {
    let records = consume_all(addr, TOPIC, 1, count, Duration::from_secs(60));
    assert_eq!(records.len(), count, "records read back");
    for (n, record) in records.iter().enumerate() {
        assert_eq!(record.offset, n as i64);
        assert_eq!(
            record.value.as_deref(),
            Some(value(n).as_bytes()),
            "offset {n}"
        );
    }
}

fn local_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(format!("{TOPIC}-0")))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

fn remote_objects(root: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        usize::from(path.to_string_lossy().ends_with(".zst"))
                    }
                })
                .sum()
        })
    }
    walk(root)
}

fn wait_until(
    broker: &BrokerProcess,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() >= deadline {
            let log = broker.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "timed out waiting for {what}; broker log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `strata tiering status` against the broker's admin API.
fn tiering_status(broker: &BrokerProcess) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tiering", "--admin", &broker.admin_addr, "status"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn offset_for_time(addr: &str, timestamp: i64) -> i64 {
    let consumer: BaseConsumer = client(addr).create().unwrap();
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(TOPIC, 0, Offset::Offset(timestamp))
        .unwrap();
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .unwrap();
    match found.find_partition(TOPIC, 0).unwrap().offset() {
        Offset::Offset(o) => o,
        other => panic!("no offset for {timestamp}: {other:?}"),
    }
}

/// Reading from offset 0 while the store fails gives the client an error, not records and not
/// silence.
fn assert_remote_read_fails(addr: &str) {
    let consumer: BaseConsumer = client(addr)
        .set("group.id", "remote-failure")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => panic!("a record at {} from a failing store", message.offset()),
            Some(Err(e)) => {
                assert_eq!(
                    e,
                    KafkaError::MessageConsumption(RDKafkaErrorCode::Unknown),
                    "UNKNOWN_SERVER_ERROR"
                );
                return;
            }
            None => {}
        }
    }
    panic!("no error from a remote read of a failing store");
}

/// A raw Fetch from offset 0 asking for 2 GiB gets at most the broker's `fetch.max.bytes`
/// of remote records (they are held in memory until sent), as whole batches from offset 0.
async fn assert_fetch_is_capped(addr: &str, cap: usize) {
    use common::wire::Conn;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(TOPIC.to_owned().into()))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(i32::MAX),
                ]),
        ]);
    let mut conn = Conn::open(addr).await;
    let response = conn.call(12, &request).await.unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let records = partition.records.clone().unwrap_or_default();
    assert!(
        records.len() > cap / 2 && records.len() <= cap,
        "{} bytes of records for a cap of {cap}",
        records.len()
    );
    let first = i64::from_be_bytes(records[..8].try_into().unwrap());
    assert_eq!(first, 0, "from the batch holding offset 0");
}

/// The topic in 16 KiB segments, nothing kept locally once uploaded, kept forever.
async fn create_history_topic(addr: &str) {
    create_topic(
        addr,
        TOPIC,
        1,
        &[
            ("segment.bytes", "16384"),
            ("local.retention.bytes", "0"),
            ("retention.ms", "-1"),
        ],
    )
    .await;
}

async fn delete_topic(addr: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let admin: AdminClient<_> = client(addr).create().unwrap();
    let results = admin
        .delete_topics(&[TOPIC], &AdminOptions::new())
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn earliest(addr: &str) -> i64 {
    let consumer: BaseConsumer = client(addr).create().unwrap();
    consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(5))
        .unwrap()
        .0
}

#[test]
fn history_is_served_from_the_bucket_across_restarts_crashes_and_outages() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s3_root = tmp.path().join("s3");
    let server = runtime.block_on(testing::start(&s3_root, "tiered"));
    let dir = tmp.path().join("broker");
    let mut broker = start_broker(&dir, &server, &["fetch.max.bytes=262144"]);
    runtime.block_on(create_history_topic(&broker.addr));
    runtime.block_on(produce(&broker.addr, 0, 1500));
    wait_until(
        &broker,
        "uploads and local retention",
        Duration::from_secs(60),
        || local_segments(&dir) <= 2 && remote_objects(&s3_root) >= 50,
    );
    assert_full_history(&broker.addr, 1500);
    // The tier's metrics, as Prometheus scrapes them.
    let m = scrape(&broker.admin_addr, false);
    assert!(m.sum("strata_tiering_uploaded_bytes_total", &[]) > 100_000.0);
    // Every stored chunk was read back once (the cache misses), compressed.
    let stored = m.sum("strata_tiering_stored_bytes", &[("topic", TOPIC)]);
    assert!(m.sum("strata_tiering_downloaded_bytes_total", &[]) >= stored);
    assert!(
        m.sum(
            "strata_object_store_request_duration_seconds_count",
            &[("op", "put")]
        ) >= 50.0
    );
    assert!(
        m.sum(
            "strata_log_size_bytes",
            &[("topic", TOPIC), ("tier", "remote")]
        ) > 100_000.0
    );
    assert!(stored > 0.0);
    assert!(m.sum("strata_tiering_cache_reads_total", &[("result", "miss")]) >= 1.0);
    assert!(m.has("strata_tiering_upload_lag_bytes"));
    assert_eq!(m.sum("strata_object_store_request_errors_total", &[]), 0.0);
    runtime.block_on(assert_fetch_is_capped(&broker.addr, 262_144));
    assert_eq!(earliest(&broker.addr), 0, "the log starts in the bucket");
    assert_eq!(offset_for_time(&broker.addr, BASE_TS + 777), 777);

    // A clean restart: the manifest tells the broker what is remote.
    assert!(broker.stop());
    broker.restart("127.0.0.1:0");
    assert_eq!(
        earliest(&broker.addr),
        0,
        "the remote tier is seen from the first request"
    );
    // The cache is empty after a restart: with the store failing, a remote read is an error
    // (UNKNOWN_SERVER_ERROR, as Kafka answers a RemoteStorageException), then it recovers.
    server.unavailable.store(true, Ordering::SeqCst);
    assert_remote_read_fails(&broker.addr);
    let m = scrape(&broker.admin_addr, false);
    assert!(m.sum("strata_object_store_request_errors_total", &[("op", "get")]) >= 1.0);
    server.unavailable.store(false, Ordering::SeqCst);
    assert_full_history(&broker.addr, 1500);

    // kill -9 while segments are being uploaded: nothing lost, nothing duplicated.
    runtime.block_on(produce(&broker.addr, 1500, 2500));
    std::thread::sleep(Duration::from_millis(300));
    broker.kill();
    broker.restart("127.0.0.1:0");
    assert_eq!(
        earliest(&broker.addr),
        0,
        "the remote tier is seen from the first request"
    );
    wait_until(
        &broker,
        "uploads after the crash",
        Duration::from_secs(60),
        || local_segments(&dir) <= 2,
    );
    assert_full_history(&broker.addr, 2500);

    // The store answers 503, then refuses connections: uploads wait, local segments stay.
    server.unavailable.store(true, Ordering::SeqCst);
    runtime.block_on(produce(&broker.addr, 2500, 3000));
    std::thread::sleep(Duration::from_secs(2));
    let kept = local_segments(&dir);
    assert!(
        kept > 10,
        "segments stay local while the store fails ({kept})"
    );
    let status = tiering_status(&broker);
    assert!(
        status.contains("SlowDown") || status.contains("503"),
        "the failure shows in the status:\n{status}"
    );
    server.unavailable.store(false, Ordering::SeqCst);
    server.refusing.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        local_segments(&dir) >= kept,
        "nothing deleted while unreachable"
    );
    server.refusing.store(false, Ordering::SeqCst);
    wait_until(
        &broker,
        "the upload backlog to drain",
        Duration::from_secs(90),
        || local_segments(&dir) <= 2,
    );
    assert_full_history(&broker.addr, 3000);
    assert_eq!(offset_for_time(&broker.addr, BASE_TS + 2600), 2600);
    let status = tiering_status(&broker);
    let row = status
        .lines()
        .find(|l| l.starts_with(TOPIC))
        .unwrap_or_else(|| panic!("{status}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2], "0", "remote start: {status}");
    assert_eq!(
        cells.last(),
        Some(&"-"),
        "no error once caught up: {status}"
    );
    assert!(
        cells[6].parse::<u64>().unwrap() > 2_000_000,
        "remote bytes: {status}"
    );
    let log = broker.log();
    assert!(log.contains("failed, will retry"), "failures are logged");

    // Region lost, bucket kept: a new node with an empty disk (so a new metadata quorum) and
    // the same cluster id restores the topic from the bucket and serves its history.
    assert!(broker.stop());
    let restored = start_broker(
        &tmp.path().join("restored"),
        &server,
        &["remote.log.restore.enable=true"],
    );
    let consumer: BaseConsumer = client(&restored.addr).create().unwrap();
    let (low, high) = consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(low, 0);
    assert!(
        high >= 3000,
        "the restored log starts above every acknowledged offset: {high}"
    );
    // What the bucket holds is served: all but the segments not yet uploaded.
    let status = tiering_status(&restored);
    let row = status
        .lines()
        .find(|l| l.starts_with(TOPIC))
        .unwrap_or_else(|| panic!("{status}"));
    let remote_end: usize = row.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(remote_end > 2900, "{status}");
    assert_full_history(&restored.addr, remote_end);
    assert_eq!(offset_for_time(&restored.addr, BASE_TS + 1234), 1234);
}

#[test]
fn total_retention_and_topic_deletion_remove_objects_and_bad_stores_stop_the_broker() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s3_root = tmp.path().join("s3");
    let server = runtime.block_on(testing::start(&s3_root, "tiered"));
    let dir = tmp.path().join("broker");
    let broker = start_broker(&dir, &server, &[]);
    runtime.block_on(create_topic(
        &broker.addr,
        TOPIC,
        1,
        &[
            ("segment.bytes", "16384"),
            ("local.retention.bytes", "0"),
            ("retention.bytes", "-1"),
            ("retention.ms", "-1"),
        ],
    ));
    runtime.block_on(produce(&broker.addr, 0, 600));
    wait_until(&broker, "uploads", Duration::from_secs(60), || {
        local_segments(&dir) <= 2 && remote_objects(&s3_root) >= 20
    });
    let before = remote_objects(&s3_root);
    // Keep about 100 KiB over both tiers: the oldest remote segments go, the log start moves.
    runtime.block_on(async {
        use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
        let admin: AdminClient<_> = client(&broker.addr).create().unwrap();
        let alter = AlterConfig::new(ResourceSpecifier::Topic(TOPIC))
            .set("retention.bytes", "102400")
            .set("segment.bytes", "16384")
            .set("local.retention.bytes", "0")
            .set("retention.ms", "-1");
        let results = admin
            .alter_configs(&[alter], &AdminOptions::new())
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    });
    wait_until(&broker, "remote retention", Duration::from_secs(30), || {
        remote_objects(&s3_root) <= 10 && earliest(&broker.addr) > 400
    });
    assert!(remote_objects(&s3_root) < before);
    let start = earliest(&broker.addr);
    let rest = consume_all(
        &broker.addr,
        TOPIC,
        1,
        600 - start as usize,
        Duration::from_secs(30),
    );
    assert_eq!(rest.first().map(|r| r.offset), Some(start));
    assert_eq!(rest.len(), 600 - start as usize);

    // DeleteRecords (librdkafka's) inside the remote tier: the log starts there at once, and
    // the remote segments wholly below it go at the next pass.
    let cut = start + 60;
    let objects = remote_objects(&s3_root);
    runtime.block_on(async {
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::{Offset, TopicPartitionList};
        let admin: AdminClient<_> = client(&broker.addr).create().unwrap();
        let mut cuts = TopicPartitionList::new();
        cuts.add_partition_offset(TOPIC, 0, Offset::Offset(cut))
            .unwrap();
        let deleted = admin
            .delete_records(&cuts, &AdminOptions::new())
            .await
            .expect("DeleteRecords answered");
        let element = deleted
            .find_partition(TOPIC, 0)
            .expect("the partition answered");
        assert_eq!(element.error(), Ok(()));
        assert_eq!(element.offset(), Offset::Offset(cut), "the low watermark");
    });
    assert_eq!(earliest(&broker.addr), cut);
    wait_until(
        &broker,
        "the deleted remote segments to go",
        Duration::from_secs(30),
        || remote_objects(&s3_root) < objects,
    );
    let rest = consume_all(
        &broker.addr,
        TOPIC,
        1,
        600 - cut as usize,
        Duration::from_secs(30),
    );
    assert_eq!(
        rest.first().map(|r| r.offset),
        Some(cut),
        "read from the bucket"
    );
    assert_eq!(rest.len(), 600 - cut as usize);

    // Deleting the topic deletes its objects.
    runtime.block_on(delete_topic(&broker.addr));
    wait_until(
        &broker,
        "the topic's objects to go",
        Duration::from_secs(30),
        || remote_objects(&s3_root) == 0,
    );
    drop(broker);

    // Deleted while an upload is in flight (throttled to ~2 segments a second): the upload
    // finishes first, so it cannot write objects after the deletion.
    let slow = start_broker(
        &tmp.path().join("slow"),
        &server,
        &["remote.log.manager.copy.max.bytes.per.second=32768"],
    );
    runtime.block_on(create_history_topic(&slow.addr));
    runtime.block_on(produce(&slow.addr, 0, 200));
    wait_until(&slow, "the first upload", Duration::from_secs(30), || {
        remote_objects(&s3_root) >= 1
    });
    runtime.block_on(delete_topic(&slow.addr));
    wait_until(
        &slow,
        "the topic's objects to go",
        Duration::from_secs(30),
        || remote_objects(&s3_root) == 0,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(remote_objects(&s3_root), 0, "no upload after the deletion");
    drop(slow);

    // Wrong credentials: a clear startup error, not a hang.
    let mut wrong = s3_env(&server);
    wrong[1].1 = "not-the-secret".into();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("dev")
        .arg("--data-dir")
        .arg(tmp.path().join("wrong-secret"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--set", "remote.log.storage.url=s3://tiered/x"])
        .envs(wrong)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("not usable"), "{stderr}");

    // A bucket that does not exist: a clear startup error, not a hang.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("dev")
        .arg("--data-dir")
        .arg(tmp.path().join("other"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--set", "remote.log.storage.url=s3://no-such-bucket/x"])
        .envs(s3_env(&server))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no-such-bucket") && stderr.contains("not usable"),
        "{stderr}"
    );
}

/// A raw Fetch of partition 0 of the topic from `offset` waiting at most `max_wait_ms`: how
/// long the answer took, its error code and its record bytes.
async fn timed_fetch(addr: &str, offset: i64, max_wait_ms: i32) -> (Duration, i16, usize) {
    use common::wire::Conn;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    let request = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(TOPIC.to_owned().into()))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut conn = Conn::open(addr).await;
    let started = Instant::now();
    let response = conn.call(12, &request).await.unwrap();
    let partition = &response.responses[0].partitions[0];
    (
        started.elapsed(),
        partition.error_code,
        partition.records.as_ref().map_or(0, |r| r.len()),
    )
}

#[test]
fn a_stalled_store_is_reported_and_remote_fetches_answer_in_time() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s3_root = tmp.path().join("s3");
    let server = runtime.block_on(testing::start(&s3_root, "tiered"));
    let dir = tmp.path().join("broker");
    let broker = start_broker(&dir, &server, &["remote.log.storage.timeout.ms=2000"]);
    runtime.block_on(create_history_topic(&broker.addr));
    runtime.block_on(produce(&broker.addr, 0, 300));
    wait_until(&broker, "uploads", Duration::from_secs(60), || {
        local_segments(&dir) <= 2 && remote_objects(&s3_root) >= 10
    });
    // The store accepts requests and answers none.
    server.stalled.store(true, Ordering::SeqCst);
    // A fetch of remote offsets answers within remote.fetch.max.wait.ms (500 ms), empty.
    let (took, error, bytes) = runtime.block_on(timed_fetch(&broker.addr, 0, 500));
    assert!(
        took < Duration::from_secs(2),
        "a remote fetch took {took:?}"
    );
    assert_eq!(
        (error, bytes),
        (0, 0),
        "an expired remote read answers empty"
    );
    // Once the stalled read has failed (the 2 s operation bound), retries hear the error.
    let started = Instant::now();
    let error = loop {
        let (took, error, _) = runtime.block_on(timed_fetch(&broker.addr, 0, 500));
        assert!(
            took < Duration::from_secs(2),
            "a remote fetch took {took:?}"
        );
        if error != 0 || started.elapsed() > Duration::from_secs(15) {
            break error;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        error, -1,
        "UNKNOWN_SERVER_ERROR once the store failed the read"
    );
    // Uploads stall too: the status names the failure within seconds, not minutes.
    runtime.block_on(produce(&broker.addr, 300, 400));
    let status = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(200));
            tiering_status(&broker)
        })
        .find(|s| s.contains("did not complete within"))
        .unwrap_or_else(|| panic!("the stall never showed:\n{}", tiering_status(&broker)));
    assert!(status.contains("2s"), "{status}");
    // The store answers again: everything is served and uploaded.
    server.stalled.store(false, Ordering::SeqCst);
    assert_full_history(&broker.addr, 400);
}
