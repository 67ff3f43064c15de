//! Proves that an idempotent librdkafka producer whose connections are cut right after the
//! broker appended a batch — so the client retries batches the log already has — ends up with
//! every record exactly once, in order, and that sequence and epoch errors are reported.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{BrokerProcess, client, consume_all, create_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Cut a connection after this many produce responses, this many times in all.
const CUT_EVERY: usize = 7;
const MAX_CUTS: usize = 6;

/// A TCP proxy in front of the broker that drops some Produce responses by closing the
/// connection instead of forwarding them: the batch is in the log, the client never heard.
async fn run_proxy(listener: TcpListener, broker: String, cuts: Arc<AtomicUsize>) {
    let produced = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(upstream) = TcpStream::connect(&broker).await else {
            return;
        };
        let (cuts, produced) = (Arc::clone(&cuts), Arc::clone(&produced));
        tokio::spawn(async move {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut broker_read, mut broker_write) = upstream.into_split();
            let (tx, mut rx) = mpsc::unbounded_channel::<(i32, i16)>();
            let requests = tokio::spawn(async move {
                while let Some(frame) = read_frame(&mut client_read).await {
                    let key = i16::from_be_bytes([frame[0], frame[1]]);
                    let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    let _ = tx.send((correlation, key));
                    if write_frame(&mut broker_write, &frame).await.is_err() {
                        return;
                    }
                }
            });
            let mut keys = HashMap::new();
            while let Some(frame) = read_frame(&mut broker_read).await {
                while let Ok((correlation, key)) = rx.try_recv() {
                    keys.insert(correlation, key);
                }
                let correlation = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                if keys.get(&correlation) == Some(&0) {
                    let n = produced.fetch_add(1, Ordering::SeqCst) + 1;
                    if n % CUT_EVERY == 0 && cuts.fetch_add(1, Ordering::SeqCst) < MAX_CUTS {
                        break;
                    }
                }
                if write_frame(&mut client_write, &frame).await.is_err() {
                    break;
                }
            }
            requests.abort();
        });
    }
}

async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let size = stream.read_i32().await.ok()?;
    let mut frame = vec![0; size as usize];
    stream.read_exact(&mut frame).await.ok()?;
    Some(frame)
}

async fn write_frame(
    stream: &mut (impl AsyncWriteExt + Unpin),
    frame: &[u8],
) -> std::io::Result<()> {
    stream.write_i32(frame.len() as i32).await?;
    stream.write_all(frame).await
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_batches_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap().to_string();
    // The broker tells clients to connect to the proxy, so every request goes through it.
    let broker = BrokerProcess::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        Some(&proxy_addr),
        &[],
    );
    let cuts = Arc::new(AtomicUsize::new(0));
    let proxy = tokio::spawn(run_proxy(listener, broker.addr.clone(), Arc::clone(&cuts)));
    create_topic(&proxy_addr, "exactly-once", 2, &[]).await;

    let producer: FutureProducer = client(&proxy_addr)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("batch.num.messages", "20")
        .set("retry.backoff.ms", "20")
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "100")
        .create()
        .expect("producer");
    const RECORDS: usize = 3_000;
    let mut pending = Vec::new();
    for i in 0..RECORDS {
        let value = format!("record-{i}");
        let key = format!("k{}", i % 2);
        pending.push(
            producer
                .send_result(FutureRecord::to("exactly-once").key(&key).payload(&value))
                .expect("queued"),
        );
    }
    for delivery in pending {
        delivery
            .await
            .expect("report")
            .expect("acknowledged despite cut connections");
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    assert!(
        cuts.load(Ordering::SeqCst) >= 3,
        "the proxy cut too few connections: {}",
        cuts.load(Ordering::SeqCst)
    );

    // The log end offsets count every record appended, duplicates included.
    let consumer: BaseConsumer = client(&broker.addr).create().unwrap();
    let appended: i64 = (0..2)
        .map(|p| {
            consumer
                .fetch_watermarks("exactly-once", p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum();
    assert_eq!(
        appended, RECORDS as i64,
        "retried batches were appended twice"
    );
    let consumed = consume_all(
        &broker.addr,
        "exactly-once",
        2,
        RECORDS,
        Duration::from_secs(30),
    );
    assert_eq!(consumed.len(), RECORDS, "records lost after retries");
    let mut seen = std::collections::HashSet::new();
    let mut last_per_key: HashMap<Vec<u8>, usize> = HashMap::new();
    for record in &consumed {
        let value = String::from_utf8(record.value.clone().unwrap()).unwrap();
        assert!(seen.insert(value.clone()), "{value} written twice");
        let n: usize = value.trim_start_matches("record-").parse().unwrap();
        if let Some(previous) = last_per_key.insert(record.key.clone().unwrap(), n) {
            assert!(previous < n, "order broken: {previous} before {n}");
        }
    }
    proxy.abort();
}
