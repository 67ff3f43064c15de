//! Request decoding: a frame in, a typed request out, with no I/O and no broker.
//!
//! A malformed request closes the connection, as in Kafka: after an undecodable frame the
//! stream cannot be trusted. Decoding is pure so that the fuzz target can drive it alone.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::versions;

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Fewer bytes than a request header.
    #[error("request of {0} bytes is shorter than a request header")]
    Short(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A known API or version Strata does not serve.
    #[error("{key:?} v{version} is not supported")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The bytes do not decode as the announced request.
    #[error("malformed {key:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
    /// The connection is closed on purpose, for this reason.
    #[error("{0}")]
    Closed(String),
    /// A response could not be encoded (a bug, not the client's fault).
    #[error("cannot encode {key:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// The encoder's complaint.
        reason: String,
    },
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    /// Its header.
    pub header: RequestHeader,
    /// The API.
    pub key: ApiKey,
    /// The API version.
    pub version: i16,
    /// The typed body.
    pub body: RequestKind,
}

/// What a frame decodes to.
#[derive(Debug)]
pub enum Decoded {
    /// ApiVersions at a version this broker does not serve: answered per KIP-511.
    UnsupportedApiVersions {
        /// To echo in the answer.
        correlation_id: i32,
    },
    /// A request of a served API and version (boxed: bodies are large, the other variant tiny).
    Request(Box<Request>),
}

/// Decodes one request frame (without its length prefix).
pub fn decode(frame: Bytes) -> Result<Decoded, HandleError> {
    // api key (2), api version (2), correlation id (4): read before trusting anything else.
    if frame.len() < 8 {
        return Err(HandleError::Short(frame.len()));
    }
    let mut fixed = &frame[..8];
    let raw_key = fixed.get_i16();
    let version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let key = ApiKey::try_from(raw_key).map_err(|_| HandleError::UnknownApiKey(raw_key))?;
    if !versions::is_served(key, version) {
        if key == ApiKey::ApiVersions {
            return Ok(Decoded::UnsupportedApiVersions { correlation_id });
        }
        return Err(HandleError::UnsupportedVersion { key, version });
    }
    let malformed = |reason: String| HandleError::Malformed {
        key,
        version,
        reason,
    };
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, key.request_header_version(version))
        .map_err(|e| malformed(format!("bad request header: {e}")))?;
    let body =
        RequestKind::decode(key, &mut body, version).map_err(|e| malformed(e.to_string()))?;
    Ok(Decoded::Request(Box::new(Request {
        header,
        key,
        version,
        body,
    })))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bytes::BytesMut;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, Request as KafkaRequest, StrBytes};

    use super::*;

    fn corpus_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decoder")
    }

    fn frame<R: KafkaRequest>(version: i16, request: &R) -> Vec<u8> {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("seed")))
            .encode(&mut buf, R::header_version(version))
            .unwrap();
        request.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    /// Seeds for the fuzzer: one well-formed request per served API, plus known-bad frames.
    fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let topic = || TopicName(StrBytes::from_static_str("seed"));
        let records = bytes::Bytes::from_static(include_bytes!(
            "../../fuzz/corpus/record_batch/valid-3-records"
        ));
        vec![
            ("api-versions-v3", frame(3, &ApiVersionsRequest::default())),
            (
                "metadata-v0-all",
                frame(0, &MetadataRequest::default().with_topics(Some(vec![]))),
            ),
            (
                "metadata-v12",
                frame(
                    12,
                    &MetadataRequest::default().with_topics(Some(vec![
                        metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
                    ])),
                ),
            ),
            (
                "produce-v9",
                frame(
                    9,
                    &ProduceRequest::default()
                        .with_acks(-1)
                        .with_topic_data(vec![
                            produce_request::TopicProduceData::default()
                                .with_name(topic())
                                .with_partition_data(vec![
                                    produce_request::PartitionProduceData::default()
                                        .with_records(Some(records)),
                                ]),
                        ]),
                ),
            ),
            (
                "fetch-v12",
                frame(
                    12,
                    &FetchRequest::default().with_topics(vec![
                        fetch_request::FetchTopic::default()
                            .with_topic(topic())
                            .with_partitions(vec![fetch_request::FetchPartition::default()]),
                    ]),
                ),
            ),
            (
                "fetch-v16",
                frame(
                    16,
                    &FetchRequest::default().with_topics(vec![
                        fetch_request::FetchTopic::default()
                            .with_topic_id(uuid::Uuid::from_u128(1))
                            .with_partitions(vec![fetch_request::FetchPartition::default()]),
                    ]),
                ),
            ),
            (
                "list-offsets-v7",
                frame(
                    7,
                    &ListOffsetsRequest::default().with_topics(vec![
                        list_offsets_request::ListOffsetsTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_timestamp(-1),
                            ]),
                    ]),
                ),
            ),
            (
                "create-topics-v7",
                frame(
                    7,
                    &CreateTopicsRequest::default().with_topics(vec![
                        create_topics_request::CreatableTopic::default()
                            .with_name(topic())
                            .with_num_partitions(3)
                            .with_replication_factor(1),
                    ]),
                ),
            ),
            (
                "delete-topics-v6",
                frame(
                    6,
                    &DeleteTopicsRequest::default().with_topics(vec![
                        delete_topics_request::DeleteTopicState::default().with_name(Some(topic())),
                    ]),
                ),
            ),
            (
                "init-producer-id-v4",
                frame(
                    4,
                    &InitProducerIdRequest::default().with_transactional_id(None),
                ),
            ),
            (
                "describe-configs-v4",
                frame(
                    4,
                    &DescribeConfigsRequest::default().with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("seed")),
                    ]),
                ),
            ),
            (
                "incremental-alter-configs-v1",
                frame(
                    1,
                    &IncrementalAlterConfigsRequest::default().with_resources(vec![
                        incremental_alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("seed"))
                            .with_configs(vec![
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(StrBytes::from_static_str("retention.ms"))
                                    .with_value(Some(StrBytes::from_static_str("1"))),
                            ]),
                    ]),
                ),
            ),
            (
                "create-partitions-v3",
                frame(
                    3,
                    &CreatePartitionsRequest::default().with_topics(vec![
                        create_partitions_request::CreatePartitionsTopic::default()
                            .with_name(topic())
                            .with_count(4),
                    ]),
                ),
            ),
            (
                "describe-cluster-v1",
                frame(1, &DescribeClusterRequest::default()),
            ),
            (
                "offset-for-leader-epoch-v4",
                frame(
                    4,
                    &OffsetForLeaderEpochRequest::default().with_topics(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                            .with_topic(topic())
                            .with_partitions(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(
                                ),
                            ]),
                    ]),
                ),
            ),
            (
                "metadata-v0-huge-topic-count",
                vec![
                    0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
                ],
            ),
        ]
    }

    /// Replays the fuzz corpus (seeds and whatever fuzzing added) through the decoder on every
    /// test run. `STRATA_WRITE_CORPUS=1` rewrites the seeds first.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = corpus_dir();
        if std::env::var_os("STRATA_WRITE_CORPUS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in seeds() {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/request_decoder is checked in") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let _ = decode(Bytes::from(bytes));
            replayed += 1;
        }
        assert!(replayed >= seeds().len(), "corpus has {replayed} inputs");
        for (name, bytes) in seeds().into_iter().filter(|(n, _)| !n.contains("huge")) {
            assert!(
                matches!(decode(Bytes::from(bytes)), Ok(Decoded::Request(_))),
                "seed {name} decodes"
            );
        }
    }

    #[test]
    fn impossible_array_count_is_refused_without_reserving_it() {
        // Metadata v0, correlation 1, null client id, then a topic count of 54 million.
        let frame = Bytes::from_static(&[
            0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
        ]);
        assert!(matches!(decode(frame), Err(HandleError::Malformed { .. })));
    }

    #[test]
    fn short_and_unknown_frames_are_refused() {
        assert!(matches!(
            decode(Bytes::from_static(&[0, 3, 0])),
            Err(HandleError::Short(3))
        ));
        let unknown = Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            decode(unknown),
            Err(HandleError::UnknownApiKey(0x7f7f))
        ));
        let future_api_versions = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 5]);
        assert!(matches!(
            decode(future_api_versions),
            Ok(Decoded::UnsupportedApiVersions { correlation_id: 5 })
        ));
    }
}
