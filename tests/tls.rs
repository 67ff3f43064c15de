//! TLS listeners with real clients: librdkafka over SSL with and without client certificates,
//! refused certificates (expired, another CA, none where one is required), clients speaking
//! the wrong protocol for the port, and certificates replaced on disk while connections stay.

mod common;

use std::time::{Duration, Instant};

use common::BrokerProcess;
use common::certs::{self, Ca, Issued, Request};
use common::wire::Conn;
use kafka_protocol::messages::ApiVersionsRequest;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// The certificates of one test.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    server: Issued,
    /// `CN=writer,O=Acme`, signed by the CA.
    writer: Issued,
    /// Signed by the CA, expired.
    expired: Issued,
    /// Signed by a CA the broker does not trust.
    stranger: Issued,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other-ca");
    let client = |ca: &Ca, name: &str, days: i64, serial: u64| {
        ca.issue(&Request {
            name,
            subject: &[("O", "Acme"), ("CN", name)],
            server: false,
            days,
            serial,
        })
    };
    Pki {
        server: ca.issue(&Request {
            name: "server",
            subject: &[("O", "Strata tests"), ("CN", "localhost")],
            server: true,
            days: 30,
            serial: 1,
        }),
        writer: client(&ca, "writer", 30, 10),
        expired: client(&ca, "expired", -1, 11),
        stranger: client(&other, "stranger", 30, 12),
        ca,
        dir,
    }
}

/// A broker with a PLAINTEXT listener, an SSL one that requires client certificates and an SSL
/// one (`OPTIONAL`) that only asks for them.
fn start(pki: &Pki) -> BrokerProcess {
    let keystore = format!("ssl.keystore.location={}", pki.server.keystore.display());
    let truststore = format!("ssl.truststore.location={}", pki.ca.pem.display());
    BrokerProcess::start(
        &pki.dir.path().join("data"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,OPTIONAL://127.0.0.1:0",
            "listener.security.protocol.map=OPTIONAL:SSL",
            &keystore,
            &truststore,
            "ssl.client.auth=required",
            "listener.name.optional.ssl.client.auth=requested",
            "ssl.certificate.reload.interval.ms=200",
            "log.segment.bytes=1048576",
        ],
    )
}

fn ssl(addr: &str, pki: &Pki, client: Option<&Issued>) -> ClientConfig {
    let mut config = common::client(addr);
    certs::rdkafka_ssl(&mut config, &pki.ca.pem, client);
    config
}

/// Whether a client with `config` gets Metadata within a few seconds.
fn reaches(config: &ClientConfig) -> bool {
    let consumer: BaseConsumer = config.clone().create().expect("client");
    consumer
        .fetch_metadata(None, Duration::from_secs(4))
        .is_ok()
}

fn value(n: usize) -> Vec<u8> {
    // Varied bytes, so a misplaced or repeated chunk cannot go unnoticed.
    let mut state = n as u64 ^ 0x9e37_79b9_7f4a_7c15;
    (0..10 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_cross_tls_byte_for_byte() {
    let pki = pki();
    let broker = start(&pki);
    let addr = &broker.listeners["SSL"];
    let producer: FutureProducer = ssl(addr, &pki, Some(&pki.writer))
        .set("linger.ms", "5")
        .create()
        .unwrap();
    // 32 MiB in 10 KiB records across 1 MiB segments: fetches read from many files.
    const RECORDS: usize = 3200;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for n in 0..RECORDS {
        let (payload, key) = (value(n), n.to_string());
        let record = FutureRecord::to("tls-bytes").key(&key).payload(&payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for (n, delivery) in deliveries.into_iter().enumerate() {
        delivery
            .await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("record {n} not acknowledged: {e}"));
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let consumer: BaseConsumer = ssl(addr, &pki, Some(&pki.writer))
        .set("group.id", "tls")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("tls-bytes", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut read = 0;
    while read < RECORDS && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consumed");
            let n: usize = std::str::from_utf8(message.key().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(message.offset(), read as i64, "offsets in order");
            assert_eq!(n, read, "records in the order produced");
            assert!(
                message.payload() == Some(&value(n)[..]),
                "record {n} intact"
            );
            read += 1;
        }
    }
    assert_eq!(read, RECORDS, "every record read back over TLS");
    // Metadata on the SSL listener gave its own port: the clients above only ever dialled it.
    let segments = std::fs::read_dir(broker.data_dir.join("tls-bytes-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count();
    assert!(segments > 10, "the data spans {segments} segments");
}

#[test]
fn client_certificates_are_checked() {
    let pki = pki();
    let broker = start(&pki);
    let required = &broker.listeners["SSL"];
    let optional = &broker.listeners["OPTIONAL"];
    assert!(reaches(&ssl(required, &pki, Some(&pki.writer))));
    assert!(!reaches(&ssl(required, &pki, None)), "no certificate");
    assert!(
        !reaches(&ssl(required, &pki, Some(&pki.expired))),
        "expired"
    );
    assert!(
        !reaches(&ssl(required, &pki, Some(&pki.stranger))),
        "another CA"
    );
    assert!(
        reaches(&ssl(optional, &pki, None)),
        "asked for, not required"
    );
    assert!(reaches(&ssl(optional, &pki, Some(&pki.writer))));
    // A client that does not trust the broker's CA refuses it.
    let stranger_ca = Ca::new(pki.dir.path(), "client-side-ca");
    let mut distrustful = common::client(optional);
    certs::rdkafka_ssl(&mut distrustful, &stranger_ca.pem, None);
    assert!(!reaches(&distrustful), "a broker signed by an unknown CA");
    // Nothing else was affected.
    assert!(reaches(&common::client(&broker.addr)));

    let log = broker.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
    let scrape = common::metrics::scrape(&broker.admin_addr, false);
    let handshakes = |listener: &str, result: &str| {
        scrape.sum(
            "strata_tls_handshakes_total",
            &[("listener", listener), ("result", result)],
        )
    };
    assert!(handshakes("SSL", "failed") >= 3.0);
    assert!(handshakes("SSL", "ok") >= 1.0);
    assert!(handshakes("OPTIONAL", "ok") >= 2.0);
    let expiry = scrape.sum(
        "strata_tls_certificate_expiry_timestamp_seconds",
        &[("listener", "SSL")],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now + 29.0 * 86400.0 && expiry < now + 31.0 * 86400.0);
}

#[test]
fn the_wrong_protocol_for_the_port_is_named_in_the_log() {
    let pki = pki();
    let broker = start(&pki);
    assert!(!reaches(&common::client(&broker.listeners["SSL"])));
    assert!(!reaches(&ssl(&broker.addr, &pki, Some(&pki.writer))));
    let log = broker.log();
    assert!(
        log.contains("not TLS (a PLAINTEXT client on a TLS listener?)"),
        "{log}"
    );
    assert!(
        log.contains("TLS ClientHello on a PLAINTEXT listener"),
        "{log}"
    );
    assert!(reaches(&common::client(&broker.addr)));
    assert!(reaches(&ssl(
        &broker.listeners["SSL"],
        &pki,
        Some(&pki.writer)
    )));
}

/// Sends ApiVersions on `conn` and checks the broker answers.
async fn answers(conn: &mut Conn) -> bool {
    conn.call(3, &ApiVersionsRequest::default())
        .await
        .is_some_and(|r| r.error_code == 0 && !r.api_keys.is_empty())
}

async fn served_certificate(addr: &str, pki: &Pki) -> Vec<u8> {
    let stream = certs::connect(addr, &pki.ca.pem, Some(&pki.writer))
        .await
        .expect("TLS connection");
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_reload_without_a_restart() {
    let pki = pki();
    let broker = start(&pki);
    let addr = broker.listeners["SSL"].clone();
    let stream = certs::connect(&addr, &pki.ca.pem, Some(&pki.writer))
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        certs::der(&pki.server.certificate)
    );
    let mut old = Conn::over(stream);
    assert!(answers(&mut old).await);

    // A renewed certificate, written over the old files.
    let renewed = pki.ca.issue(&Request {
        name: "server",
        subject: &[("O", "Strata tests"), ("CN", "localhost")],
        server: true,
        days: 60,
        serial: 2,
    });
    let wanted = certs::der(&renewed.certificate);
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(&addr, &pki).await != wanted {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answers(&mut old).await, "an open connection keeps working");

    // A broken file is refused; the renewed certificate stays in use.
    std::fs::write(&renewed.keystore, "not PEM").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = common::metrics::scrape(&broker.admin_addr, false);
        if scrape.sum("strata_tls_reload_failures_total", &[("listener", "SSL")]) >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the broken file was not noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served_certificate(&addr, &pki).await, wanted);
    assert!(answers(&mut old).await);
    assert!(broker.log().contains("TLS certificates not reloaded"));
}
