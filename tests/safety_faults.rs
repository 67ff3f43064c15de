//! Proves that the data a broker acknowledged stays safe when an operator or the machine gets
//! something wrong: a second process started on the same data directory is refused before it
//! touches anything; a storage fault in the metadata log ends the process (a supervisor's
//! restart finds everything) instead of leaving it half alive; damaged remote data — a cache
//! file or an object with a flipped byte — is never served.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BrokerProcess, client, consume_all, create_topic};
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn produce(addr: &str, topic: &str, count: usize) {
    let producer: FutureProducer = client(addr).set("acks", "all").create().unwrap();
    let mut pending = Vec::new();
    for i in 0..count {
        let payload = format!("record-{i}");
        pending.push(
            producer
                .send_result(FutureRecord::<(), _>::to(topic).payload(&payload))
                .expect("queued"),
        );
    }
    for delivery in pending {
        delivery.await.unwrap().expect("acknowledged");
    }
}

/// Runs `strata` with `args` until it exits (it must, within `within`); returns its exit
/// success and stderr.
fn run_to_exit(args: &[&str], within: Duration) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.success(), stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strata {args:?} still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_on_a_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    create_topic(&broker.addr, "locked", 1, &[]).await;
    produce(&broker.addr, "locked", 1000).await;

    let data_arg = data.display().to_string();
    let (ok, stderr) = run_to_exit(
        &["dev", "--data-dir", &data_arg, "--listen", "127.0.0.1:0"],
        Duration::from_secs(10),
    );
    assert!(!ok, "the second process must fail; stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one line, not a log or a backtrace:\n{stderr}"
    );
    assert!(
        lines[0].contains(&data_arg),
        "names the directory: {stderr}"
    );
    assert!(
        lines[0].contains(&format!("PID {}", broker.pid())),
        "names the holder: {stderr}"
    );
    // The same for a controller on a directory in use.
    let meta = dir.path().join("meta");
    let meta_arg = meta.display().to_string();
    let mut controller = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["controller", "--node-id", "1", "--listen", "127.0.0.1:0"])
        .args(["--data-dir", &meta_arg, "--voters", "1@127.0.0.1:1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = meta.join(".lock");
    for _ in 0..100 {
        if std::fs::read_to_string(&lock).is_ok_and(|t| !t.trim().is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, stderr) = run_to_exit(
        &["controller", "--node-id", "1", "--listen", "127.0.0.1:0"]
            .into_iter()
            .chain(["--data-dir", &meta_arg, "--voters", "1@127.0.0.1:1"])
            .collect::<Vec<_>>(),
        Duration::from_secs(10),
    );
    let _ = controller.kill();
    let _ = controller.wait();
    assert!(!ok, "the second controller must fail; stderr:\n{stderr}");
    assert!(
        stderr.contains(&meta_arg) && stderr.contains(&format!("PID {}", controller.id())),
        "{stderr}"
    );

    // The first broker's data is intact, through a restart.
    produce(&broker.addr, "locked", 1000).await;
    assert!(broker.stop(), "clean shutdown");
    broker.restart("127.0.0.1:0");
    let records = consume_all(&broker.addr, "locked", 1, 2000, Duration::from_secs(20));
    assert_eq!(records.len(), 2000);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as i64)
    );
}

/// Connections that hold file descriptors of the broker until dropped.
fn hog_connections(addr: &str, count: usize) -> Vec<std::net::TcpStream> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    // Connections wait in the accept queue once the broker cannot accept more; a connect that
    // fails (the queue full) ends the hoarding. A SYN is sometimes lost and resent after 1 s.
    (0..count)
        .map_while(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metadata_log_storage_fault_ends_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Few descriptors, no connection limit, short broker sessions: idle connections exhaust
    // the descriptors, the broker's heartbeats fail, and the controller's fencing of it must
    // write to the metadata log, which cannot open its files.
    let mut broker = BrokerProcess::start_with_files_limit(
        &data,
        &[
            "max.connections=100000",
            "broker.heartbeat.interval.ms=200",
            "broker.session.timeout.ms=1000",
        ],
        256,
    );
    create_topic(&broker.addr, "before", 1, &[]).await;
    let hogs = hog_connections(&broker.addr, 400);
    assert!(hogs.len() > 256, "only {} connections", hogs.len());
    let status = broker.wait_exit(Duration::from_secs(30));
    drop(hogs);
    let log = broker.log();
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running, half-alive, 30 s into a metadata log fault; log tail:\n{}",
            &log[log.len().saturating_sub(4000)..]
        )
    });
    assert!(!status.success(), "a fault is a failure exit");

    let fatal: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("metadata log") && l.contains("Too many open files"))
        .collect();
    assert!(
        !fatal.is_empty(),
        "one line names the metadata log and the cause; log tail:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    // A supervisor's restart (with descriptors back) finds everything and takes writes.
    broker.files_limit = None;
    broker.restart("127.0.0.1:0");
    create_topic(&broker.addr, "after", 1, &[]).await;
    produce(&broker.addr, "before", 10).await;
    produce(&broker.addr, "after", 10).await;
}

/// Files under `dir` whose name passes `pick`, recursively.
fn files_named(dir: &std::path::Path, pick: &dyn Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_named(&path, pick));
        } else if pick(&entry.file_name().to_string_lossy()) {
            out.push(path);
        }
    }
    out
}

/// Flips one byte of `path` at `at`.
fn flip_byte(path: &std::path::Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x55], at).unwrap();
}

/// The error code of a Fetch of `topic` partition 0 from `offset`.
async fn fetch_error(addr: &str, topic: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut conn = common::wire::Conn::open(addr).await;
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response = conn.call(12, &request).await.expect("Fetch answered");
    response.responses[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_remote_data_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Small segments and chunks, nothing kept locally once uploaded, 1 MiB of chunks in memory.
    let broker = BrokerProcess::start(
        &data,
        &[
            "remote.log.manager.task.interval.ms=200",
            "log.retention.check.interval.ms=200",
            "remote.log.chunk.bytes=16384",
            "remote.log.chunk.memory.bytes=1048576",
        ],
    );
    create_topic(
        &broker.addr,
        "guarded",
        1,
        &[("segment.bytes", "65536"), ("local.retention.bytes", "0")],
    )
    .await;
    let producer: FutureProducer = client(&broker.addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "8192")
        .create()
        .unwrap();
    let value = |i: usize| format!("{i:08}-{}", "v".repeat(1000));
    let count = 3000;
    let mut pending = Vec::new();
    for i in 0..count {
        let payload = value(i);
        pending.push(
            producer
                .send_result(FutureRecord::<(), _>::to("guarded").payload(&payload))
                .expect("queued"),
        );
    }
    for delivery in pending {
        delivery.await.unwrap().expect("acknowledged");
    }
    let objects = data.join("objects");
    common::cluster::wait_until(
        "uploads and local retention",
        Duration::from_secs(60),
        || {
            let local = files_named(&data.join("guarded-0"), &|n| n.ends_with(".log")).len();
            (local <= 1).then_some(())
        },
    );
    let check_all = |broker: &BrokerProcess| {
        let records = consume_all(&broker.addr, "guarded", 1, count, Duration::from_secs(30));
        assert_eq!(records.len(), count);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.offset, i as i64);
            assert!(
                record.value.as_deref() == Some(value(i).as_bytes()),
                "record {i} read back differs from what was produced"
            );
        }
    };
    // A full read fills the disk cache; memory keeps only the last MiB of chunks.
    check_all(&broker);
    let cache = data.join("remote-cache");
    let first_chunk = || -> Option<std::path::PathBuf> {
        files_named(&cache, &|n| {
            n.contains("%00000000000000000000-") && n.ends_with(".zst%0")
        })
        .into_iter()
        .next()
    };
    let cached = common::cluster::wait_until(
        "the first chunk on disk",
        Duration::from_secs(10),
        first_chunk,
    );

    // A damaged cache file is detected, dropped and the chunk fetched again: the data is right.
    flip_byte(&cached, 5000);
    check_all(&broker);
    let log = broker.log();
    assert!(
        log.contains("is damaged") && log.contains("fetching the chunk again"),
        "the damaged cache file is reported"
    );

    // A damaged object: the read fails with KAFKA_STORAGE_ERROR and the log names the object.
    let object = files_named(&objects, &|n| {
        n.starts_with("00000000000000000000-") && n.ends_with(".zst")
    })
    .pop()
    .expect("the first segment's object");
    flip_byte(&object, 40);
    // Out of memory (read the rest again) and off disk: the next read goes to the object.
    check_tail(&broker.addr, count);
    if let Some(cached) = first_chunk() {
        std::fs::remove_file(cached).unwrap();
    }
    assert_eq!(
        fetch_error(&broker.addr, "guarded", 0).await,
        56,
        "KAFKA_STORAGE_ERROR"
    );
    let name = object.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        broker
            .log()
            .lines()
            .any(|l| l.contains(&name) && l.contains("damaged")),
        "the log names the damaged object {name}"
    );
}

/// Reads the last 1500 records, pushing older chunks out of the memory tier.
fn check_tail(addr: &str, count: usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = client(addr).set("group.id", "tail").create().unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("guarded", 0, Offset::Offset((count - 1500) as i64))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while read < 1500 && std::time::Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            read += 1;
        }
    }
    assert_eq!(read, 1500);
}

/// The manifest of partition 0 of `topic` in the bucket at `bucket`, as JSON.
fn manifest(bucket: &std::path::Path, topic: &str) -> Option<serde_json::Value> {
    let path = files_named(bucket, &|n| n == "manifest.json")
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&format!("/topics/{topic}/")))?;
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_partition_never_reuses_acknowledged_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let settings = |restore: bool| {
        vec![
            format!("remote.log.storage.url={}", bucket.display()),
            "cluster.id=RestoreClusterAAAAAAAAA".to_owned(),
            "remote.log.manager.task.interval.ms=200".to_owned(),
            format!("remote.log.restore.enable={restore}"),
        ]
    };
    let first: Vec<String> = settings(false);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut lost = BrokerProcess::start(&dir.path().join("lost"), &first);
    create_topic(&lost.addr, "kept", 1, &[("segment.bytes", "2048")]).await;
    // In rounds, so that batches are smaller than segments and segments roll.
    let producer: FutureProducer = client(&lost.addr).set("acks", "all").create().unwrap();
    for round in 0..20 {
        let mut pending = Vec::new();
        for i in round * 50..round * 50 + 50 {
            let payload = format!("record-{i}");
            pending.push(
                producer
                    .send_result(FutureRecord::<(), _>::to("kept").payload(&payload))
                    .expect("queued"),
            );
        }
        for delivery in pending {
            delivery.await.unwrap().expect("acknowledged");
        }
    }
    // The bucket learns the high watermark at the next pass; the closed segments are
    // uploaded, the active one is not.
    common::cluster::wait_until(
        "the high watermark in the manifest",
        Duration::from_secs(30),
        || {
            let m = manifest(&bucket, "kept")?;
            let uploaded = !m["segments"].as_array()?.is_empty();
            (m["high_watermark"].as_u64()? == 1000 && uploaded).then_some(())
        },
    );
    let remote_end = manifest(&bucket, "kept").unwrap()["segments"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["next_offset"]
        .as_u64()
        .unwrap();
    assert!(remote_end < 1000, "the active segment is not remote");
    // The region is lost with its disk; a new node restores the topic from the bucket.
    lost.kill();
    let second: Vec<String> = settings(true);
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let restored = BrokerProcess::start(&dir.path().join("restored"), &second);
    // New records get offsets above every acknowledged one.
    let producer: FutureProducer = client(&restored.addr).set("acks", "all").create().unwrap();
    let offset = producer
        .send(
            FutureRecord::<(), _>::to("kept").payload("after the restore"),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged")
        .offset;
    assert!(
        offset >= 1000,
        "offset {offset} was acknowledged before the disk was lost"
    );
    // The history the bucket holds is served, then the new record, across the gap.
    let records = consume_all(
        &restored.addr,
        "kept",
        1,
        remote_end as usize + 1,
        Duration::from_secs(30),
    );
    assert_eq!(records.len(), remote_end as usize + 1);
    for (i, record) in records[..remote_end as usize].iter().enumerate() {
        assert_eq!(record.offset, i as i64);
        assert_eq!(
            record.value.as_deref(),
            Some(format!("record-{i}").as_bytes())
        );
    }
    assert_eq!(records.last().unwrap().offset, offset);
}

/// With `remote.log.max.lag.ms`, the bucket alone is a copy of the acknowledged records at
/// most that far behind, though the active segment never rolls: a region lost with its disk
/// and restored from the bucket loses at most that window and reuses no offset.
#[tokio::test(flavor = "multi_thread")]
async fn the_bucket_alone_is_at_most_remote_log_max_lag_behind() {
    const LAG_MS: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let settings = |restore: bool| {
        vec![
            format!("remote.log.storage.url={}", bucket.display()),
            "cluster.id=LagClusterAAAAAAAAAAAAA".to_owned(),
            format!("remote.log.max.lag.ms={LAG_MS}"),
            format!("remote.log.restore.enable={restore}"),
        ]
    };
    let first = settings(false);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut lost = BrokerProcess::start(&dir.path().join("lost"), &first);
    // One segment (1 GiB) that never rolls: without the lag bound nothing is uploaded.
    create_topic(&lost.addr, "tail", 1, &[("remote.storage.enable", "true")]).await;
    let producer: FutureProducer = client(&lost.addr).set("acks", "all").create().unwrap();
    let mut acked: Vec<(i64, std::time::Instant)> = Vec::new();
    let started = std::time::Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let mut pending = Vec::new();
        for _ in 0..20 {
            let payload = format!("record-{n}");
            n += 1;
            pending.push(
                producer
                    .send_result(FutureRecord::<(), _>::to("tail").payload(&payload))
                    .expect("queued"),
            );
        }
        for delivery in pending {
            let delivered = delivery.await.unwrap().expect("acknowledged");
            acked.push((delivered.offset, std::time::Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lost.kill();
    let killed_at = std::time::Instant::now();
    let second = settings(true);
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let restored = BrokerProcess::start(&dir.path().join("restored"), &second);
    let remote_end = manifest(&bucket, "tail").unwrap()["segments"]
        .as_array()
        .unwrap()
        .last()
        .map_or(0, |s| s["next_offset"].as_u64().unwrap()) as i64;
    assert!(
        remote_end > 0,
        "the active segment's tail reached the bucket"
    );
    let records = consume_all(
        &restored.addr,
        "tail",
        1,
        remote_end as usize,
        Duration::from_secs(30),
    );
    assert_eq!(records.len() as i64, remote_end);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.offset, i as i64);
        assert_eq!(
            record.value.as_deref(),
            Some(format!("record-{i}").as_bytes())
        );
    }
    // What the restore lacks was all acknowledged within the lag before the loss.
    let window = acked
        .iter()
        .filter(|(offset, _)| *offset >= remote_end)
        .map(|(_, at)| killed_at.saturating_duration_since(*at))
        .max()
        .unwrap_or_default();
    println!(
        "bucket RPO with remote.log.max.lag.ms={LAG_MS}: {} of {} acknowledged records lost, the oldest acknowledged {} ms before the loss",
        acked.iter().filter(|(o, _)| *o >= remote_end).count(),
        acked.len(),
        window.as_millis()
    );
    assert!(
        window <= Duration::from_millis(LAG_MS),
        "lost records acknowledged {window:?} before the loss"
    );
    let offset = client(&restored.addr)
        .set("acks", "all")
        .create::<FutureProducer>()
        .unwrap()
        .send(
            FutureRecord::<(), _>::to("tail").payload("after the restore"),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged")
        .offset;
    let last_acked = acked.iter().map(|(o, _)| *o).max().unwrap();
    assert!(
        offset > last_acked,
        "offset {offset} was acknowledged before the loss"
    );
}
