//! Proves that malformed or hostile requests get the right Kafka error code or a closed
//! connection — never a crash, a hang or unbounded memory — and that a connection opened before
//! them keeps working throughout.

mod common;

use bytes::{Bytes, BytesMut};
use common::BrokerProcess;
use common::wire::{Conn, encode_batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

async fn api_versions_work(addr: &str) {
    let mut conn = Conn::open(addr).await;
    let response: ApiVersionsResponse = conn
        .call(3, &ApiVersionsRequest::default())
        .await
        .expect("ApiVersions answered");
    assert_eq!(response.error_code, 0);
}

fn batch(records: usize, value_len: usize) -> Vec<u8> {
    let values = vec![Bytes::from(vec![b'v'; value_len]); records];
    encode_batch(&values, (-1, -1), -1, 1_000).to_vec()
}

fn produce(topic: &str, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ])
}

async fn produce_error(addr: &str, request: &ProduceRequest) -> i16 {
    let mut conn = Conn::open(addr).await;
    let response: ProduceResponse = conn.call(9, request).await.expect("Produce answered");
    response.responses[0].partition_responses[0].error_code
}

async fn create_topic_error(addr: &str, topic: CreatableTopic) -> (i16, Option<String>) {
    let mut conn = Conn::open(addr).await;
    let response: CreateTopicsResponse = conn
        .call(5, &CreateTopicsRequest::default().with_topics(vec![topic]))
        .await
        .expect("answered");
    let result = &response.topics[0];
    (
        result.error_code,
        result.error_message.as_ref().map(|m| m.to_string()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_errors_or_closed_connections() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "socket.request.max.bytes=1048576",
            "message.max.bytes=10000",
        ],
    );
    let addr = broker.addr.clone();
    let mut bystander = Conn::open(&addr).await;
    let _: ApiVersionsResponse = bystander
        .call(3, &ApiVersionsRequest::default())
        .await
        .unwrap();

    // Garbage bytes: an unknown API key inside a plausible frame.
    let mut conn = Conn::open(&addr).await;
    conn.send_raw(&[0, 0, 0, 12, 0x7f, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        .await;
    assert!(
        conn.is_closed().await,
        "unknown API key closes the connection"
    );

    // A length prefix over socket.request.max.bytes, and a negative one.
    for prefix in [[0x7f, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0xfe]] {
        let mut conn = Conn::open(&addr).await;
        conn.send_raw(&prefix).await;
        assert!(
            conn.is_closed().await,
            "bad size prefix closes the connection"
        );
    }

    // A truncated frame: the peer gives up mid-frame; nothing else is affected.
    let mut conn = Conn::open(&addr).await;
    conn.send_raw(&[0, 0, 1, 0, 0, 18, 0, 3]).await;
    drop(conn);

    // A frame shorter than a request header.
    let mut conn = Conn::open(&addr).await;
    conn.send_raw(&[0, 0, 0, 3, 0, 18, 0]).await;
    assert!(conn.is_closed().await);

    // The published fuzz finding: a Metadata v0 topic count of 54 million in 8 bytes.
    let mut conn = Conn::open(&addr).await;
    conn.send_raw(&[
        0, 0, 0, 15, 0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
    ])
    .await;
    assert!(
        conn.is_closed().await,
        "impossible array count closes the connection"
    );

    // An unsupported version of a served API closes; of ApiVersions gets a v0 answer (KIP-511).
    let mut conn = Conn::open(&addr).await;
    conn.send(13, &MetadataRequest::default()).await;
    assert!(conn.is_closed().await, "Metadata v13 is not served");
    // Produce v2 (removed in Kafka 4.0): the codec only writes v3+, so patch the version field.
    let mut conn = Conn::open(&addr).await;
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(3)
        .with_correlation_id(7)
        .encode(&mut body, 1)
        .unwrap();
    produce("t", batch(1, 10)).encode(&mut body, 3).unwrap();
    body[2..4].copy_from_slice(&2i16.to_be_bytes());
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    conn.send_raw(&frame).await;
    assert!(
        conn.is_closed().await,
        "Produce v2 was removed in Kafka 4.0"
    );
    let mut conn = Conn::open(&addr).await;
    let mut frame = Vec::new();
    let mut header = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(7)
        .encode(&mut header, 2)
        .unwrap();
    header.extend_from_slice(&[0, 0, 0]);
    frame.extend_from_slice(&(header.len() as i32).to_be_bytes());
    frame.extend_from_slice(&header);
    conn.send_raw(&frame).await;
    let mut answer = conn.receive().await.expect("KIP-511 answer");
    ResponseHeader::decode(&mut answer, 0).unwrap();
    let versions = ApiVersionsResponse::decode(&mut answer, 0).unwrap();
    assert_eq!(versions.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(
        versions
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 4)
    );

    // Record batches: bad CRC, old magic, oversize, two batches in one partition.
    let mut conn = Conn::open(&addr).await;
    let metadata: MetadataResponse = conn
        .call(
            9,
            &MetadataRequest::default()
                .with_allow_auto_topic_creation(true)
                .with_topics(Some(vec![
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("victim")))),
                ])),
        )
        .await
        .unwrap();
    assert_eq!(metadata.topics[0].error_code, 0, "auto-created");
    assert_eq!(
        produce_error(&addr, &produce("victim", batch(3, 10))).await,
        0,
        "a valid batch is accepted"
    );
    let mut corrupt = batch(3, 10);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    assert_eq!(
        produce_error(&addr, &produce("victim", corrupt)).await,
        2,
        "CORRUPT_MESSAGE"
    );
    let mut old_magic = batch(1, 10);
    old_magic[16] = 1;
    assert_eq!(
        produce_error(&addr, &produce("victim", old_magic)).await,
        43,
        "UNSUPPORTED_FOR_MESSAGE_FORMAT"
    );
    assert_eq!(
        produce_error(&addr, &produce("victim", batch(4, 5_000))).await,
        10,
        "MESSAGE_TOO_LARGE"
    );
    let mut two = batch(1, 10);
    two.extend(batch(1, 10));
    assert_eq!(
        produce_error(&addr, &produce("victim", two)).await,
        87,
        "INVALID_RECORD"
    );
    assert_eq!(
        produce_error(&addr, &produce("victim", vec![1, 2, 3])).await,
        2,
        "a stub of a batch is corrupt"
    );
    assert_eq!(
        produce_error(&addr, &produce("no-such-topic", batch(1, 10))).await,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce_error(&addr, &produce("victim", batch(1, 10)).with_acks(7)).await,
        42,
        "INVALID_REQUEST for acks=7"
    );

    // Topic administration: invalid names, partition counts, replication factors.
    let topic = |name: &str| {
        CreatableTopic::default().with_name(TopicName(StrBytes::from_string(name.to_owned())))
    };
    let (code, message) = create_topic_error(
        &addr,
        topic("bad/name")
            .with_num_partitions(1)
            .with_replication_factor(1),
    )
    .await;
    assert_eq!(code, 17, "INVALID_TOPIC_EXCEPTION: {message:?}");
    assert!(message.unwrap().contains("bad/name"));
    let (code, _) = create_topic_error(
        &addr,
        topic("..")
            .with_num_partitions(1)
            .with_replication_factor(1),
    )
    .await;
    assert_eq!(code, 17);
    let (code, _) = create_topic_error(
        &addr,
        topic(&"x".repeat(250))
            .with_num_partitions(1)
            .with_replication_factor(1),
    )
    .await;
    assert_eq!(code, 17);
    let (code, message) = create_topic_error(
        &addr,
        topic("negative")
            .with_num_partitions(-5)
            .with_replication_factor(1),
    )
    .await;
    assert_eq!(code, 37, "INVALID_PARTITIONS: {message:?}");
    let (code, _) = create_topic_error(
        &addr,
        topic("huge")
            .with_num_partitions(i32::MAX)
            .with_replication_factor(1),
    )
    .await;
    assert_eq!(
        code, 37,
        "a partition count the broker cannot host is refused"
    );
    let (code, _) = create_topic_error(
        &addr,
        topic("replicated")
            .with_num_partitions(1)
            .with_replication_factor(3),
    )
    .await;
    assert_eq!(code, 38, "INVALID_REPLICATION_FACTOR");
    let config = kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.ms"))
        .with_value(Some(StrBytes::from_static_str("soon")));
    let (code, message) = create_topic_error(
        &addr,
        topic("configured")
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![config]),
    )
    .await;
    assert_eq!(code, 40, "INVALID_CONFIG");
    assert!(message.unwrap().contains("retention.ms"));

    // Through all of it, an earlier connection and new ones keep working.
    let again: ApiVersionsResponse = bystander
        .call(3, &ApiVersionsRequest::default())
        .await
        .expect("bystander still served");
    assert_eq!(again.error_code, 0);
    api_versions_work(&addr).await;
    assert!(!broker.log().contains("panicked"), "{}", broker.log());
}
