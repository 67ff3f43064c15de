//! A raw Kafka protocol connection for tests that craft requests byte by byte.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    FindCoordinatorRequest, InitProducerIdRequest, RequestHeader, ResponseHeader, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a response may take before the test calls it a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream: TCP, or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection speaking raw Kafka frames.
pub struct Conn(Box<dyn Stream>);

impl Conn {
    pub async fn open(addr: &str) -> Self {
        Conn(Box::new(TcpStream::connect(addr).await.expect("connect")))
    }

    /// A connection over `stream` (a TLS one, say).
    pub fn over(stream: impl Stream + 'static) -> Self {
        Conn(Box::new(stream))
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.0.write_all(bytes).await;
        let _ = self.0.flush().await;
    }

    pub async fn send<R: Request>(&mut self, version: i16, request: &R) {
        self.send_as(7, version, request).await;
    }

    /// Sends a request with the given correlation id, without waiting for its answer.
    pub async fn send_as<R: Request>(&mut self, correlation_id: i32, version: i16, request: &R) {
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("bad-input-test")))
            .encode(&mut body, R::header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        self.send_raw(&frame).await;
    }

    /// The correlation id of the next response, which is read and discarded.
    pub async fn next_correlation_id(&mut self) -> Option<i32> {
        let frame = self.receive().await?;
        Some(i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]))
    }

    /// The next response frame, or `None` if the broker closed the connection.
    pub async fn receive(&mut self) -> Option<Bytes> {
        let size = tokio::time::timeout(IO_TIMEOUT, self.0.read_i32())
            .await
            .expect("no hang")
            .ok()?;
        let mut frame = vec![0; size as usize];
        tokio::time::timeout(IO_TIMEOUT, self.0.read_exact(&mut frame))
            .await
            .expect("no hang")
            .ok()?;
        Some(Bytes::from(frame))
    }

    pub async fn call<R: Request>(&mut self, version: i16, request: &R) -> Option<R::Response> {
        self.send(version, request).await;
        let mut frame = self.receive().await?;
        let header =
            ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 7);
        Some(R::Response::decode(&mut frame, version).unwrap())
    }

    pub async fn is_closed(&mut self) -> bool {
        self.receive().await.is_none()
    }
}

/// Encodes one uncompressed record batch (magic 2) of `values` from `producer` (id, epoch),
/// the first record at `sequence` (-1 and `(-1, -1)` for a plain producer), stamped `timestamp`.
pub fn encode_batch(
    values: &[Bytes],
    producer: (i64, i16),
    sequence: i32,
    timestamp: i64,
) -> Bytes {
    encode_records(values, producer, sequence, timestamp, false)
}

/// [`encode_batch`] for a transaction of `producer`.
pub fn encode_txn_batch(values: &[&str], producer: (i64, i16), sequence: i32) -> Bytes {
    let values: Vec<Bytes> = values.iter().map(|v| Bytes::from(v.to_string())).collect();
    encode_records(&values, producer, sequence, 1_000, true)
}

fn encode_records(
    values: &[Bytes],
    producer: (i64, i16),
    sequence: i32,
    timestamp: i64,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional,
            control: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: sequence + i as i32,
            timestamp,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("batch encodes");
    buf.freeze()
}

/// Batch `n` (one record, value `6000 + n`, sequence `n`) of idempotent producer 4242, epoch 0,
/// that a test drives by hand.
pub fn idle_batch(n: i32) -> Bytes {
    let value = Bytes::from((6000 + n).to_string());
    encode_batch(&[value], (4242, 0), n, 1_000)
}

/// Produces `records` to partition 0 of `topic` with acks=all at whichever of `addrs` leads
/// it; the error code and base offset.
pub async fn produce_to_leader(addrs: &[String], topic: &str, records: Bytes) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        for addr in addrs {
            let mut conn = Conn::open(addr).await;
            let Some(response) = conn.call(9, &request).await else {
                continue;
            };
            let p = &response.responses[0].partition_responses[0];
            // Not the leader, or no leader yet: ask the next.
            if ![5, 6].contains(&p.error_code) {
                return (p.error_code, p.base_offset);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no broker led {topic}-0"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A SCRAM exchange as `user` on a new connection to `addr`: the connection, the broker's last
/// SaslAuthenticate answer, and the server-final message a correct broker sends.
pub async fn scram_exchange(
    addr: &str,
    mechanism: strata_api::security::scram::ScramMechanism,
    user: &str,
    password: &str,
) -> (
    Conn,
    kafka_protocol::messages::SaslAuthenticateResponse,
    Vec<u8>,
) {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    use strata_api::security::scram::ScramClient;
    let mut conn = Conn::open(addr).await;
    let handshake = conn
        .call(
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str(mechanism.name())),
        )
        .await
        .expect("SaslHandshake answered");
    assert_eq!(handshake.error_code, 0, "{} is enabled", mechanism.name());
    let client = ScramClient::new(mechanism, user, password);
    let first = conn
        .call(
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(client.first().into()),
        )
        .await
        .expect("server-first");
    let (last, expected) = client.last(&first.auth_bytes).expect("server-first parses");
    let done = conn
        .call(
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(last.into()),
        )
        .await
        .expect("server-final");
    (conn, done, expected)
}

/// A connection to a SASL listener, logged in as `user` with SCRAM-SHA-512.
pub async fn scram_login(addr: &str, user: &str, password: &str) -> Conn {
    use strata_api::security::scram::ScramMechanism;
    let (conn, done, _) = scram_exchange(addr, ScramMechanism::Sha512, user, password).await;
    assert_eq!(
        done.error_code, 0,
        "{user} logs in: {:?}",
        done.error_message
    );
    conn
}

/// InitProducerId for `id` at v1, retried while the coordinator is being set up (which the
/// FindCoordinator before it starts, as clients' does).
pub async fn init_transactional(conn: &mut Conn, id: &str) -> (i64, i16) {
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![StrBytes::from_string(id.to_owned())]);
    conn.call(4, &find).await.expect("FindCoordinator answered");
    for _ in 0..100 {
        let response = conn
            .call(
                1,
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                        id.to_owned(),
                    ))))
                    .with_transaction_timeout_ms(60_000),
            )
            .await
            .unwrap();
        match response.error_code {
            0 => return (response.producer_id.0, response.producer_epoch),
            // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
            14..=16 => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            code => panic!("InitProducerId {id}: {code}"),
        }
    }
    panic!("no coordinator for {id}");
}
