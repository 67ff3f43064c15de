//! Proves that every API Strata advertises answers at every version it advertises: each request
//! is encoded by kafka-protocol at that version, sent to the real broker, and its response
//! decodes at that version with the expected outcome. This catches responses carrying fields a
//! version does not have, which would make the encoder fail and the connection close.

mod common;

use bytes::Bytes;
use common::BrokerProcess;
use common::wire::{Conn, encode_batch};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strata_api::versions::SUPPORTED_APIS;

const TOPIC: &str = "sweep";

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn batch() -> Bytes {
    encode_batch(&[Bytes::from_static(b"sweep")], (-1, -1), -1, 1_000)
}

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let api = SUPPORTED_APIS
        .iter()
        .find(|a| a.key == key)
        .expect("served");
    api.min..=api.max
}

#[tokio::test(flavor = "multi_thread")]
async fn every_advertised_version_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let mut conn = Conn::open(&broker.addr).await;

    for v in versions(ApiKey::ApiVersions) {
        let response = conn
            .call(v, &ApiVersionsRequest::default())
            .await
            .unwrap_or_else(|| panic!("ApiVersions v{v}"));
        assert_eq!(response.error_code, 0, "ApiVersions v{v}");
        assert_eq!(response.api_keys.len(), SUPPORTED_APIS.len());
        if v >= 3 {
            // KIP-584 features: the consumer group protocol's level, and transactions with
            // epoch bumps (KIP-890 part 2).
            for (feature, level) in [("group.version", 1), ("transaction.version", 2)] {
                let finalized = response
                    .finalized_features
                    .iter()
                    .find(|f| f.name.as_str() == feature)
                    .unwrap_or_else(|| panic!("ApiVersions v{v} finalizes {feature}"));
                assert_eq!(finalized.max_version_level, level, "{feature}");
            }
            assert!(response.finalized_features_epoch >= 0);
        }
    }
    for v in versions(ApiKey::CreateTopics) {
        let topic = format!("created-{v}");
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(&topic))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("CreateTopics v{v}"));
        assert_eq!(
            response.topics[0].error_code, 0,
            "CreateTopics v{v}: {:?}",
            response.topics[0].error_message
        );
    }
    let request = CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(name(TOPIC))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let created = conn.call(7, &request).await.unwrap();
    let topic_id = created.topics[0].topic_id;

    let mut produced = 0i64;
    for v in versions(ApiKey::Produce) {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(TOPIC))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch())),
                    ]),
            ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("Produce v{v}"));
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.base_offset),
            (0, produced),
            "Produce v{v}"
        );
        produced += 1;
    }
    for v in versions(ApiKey::Metadata) {
        let topics =
            (v >= 1).then(|| vec![MetadataRequestTopic::default().with_name(Some(name(TOPIC)))]);
        let request = MetadataRequest::default().with_topics(topics);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("Metadata v{v}"));
        let topic = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))
            .expect("listed");
        assert_eq!(
            (topic.error_code, topic.partitions.len()),
            (0, 1),
            "Metadata v{v}"
        );
        if v >= 10 {
            assert_eq!(topic.topic_id, topic_id);
        }
        if v >= 12 {
            // By id, with an empty name as the Java consumer sends it (not a null one).
            let by_id = MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default()
                    .with_topic_id(topic_id)
                    .with_name(Some(name(""))),
            ]));
            let response = conn.call(v, &by_id).await.unwrap();
            assert_eq!(
                response.topics[0].name.as_ref().map(|n| n.0.as_str()),
                Some(TOPIC),
                "Metadata v{v} by topic id"
            );
        }
    }
    for v in versions(ApiKey::Fetch) {
        let topic = if v >= 13 {
            FetchTopic::default().with_topic_id(topic_id)
        } else {
            FetchTopic::default().with_topic(name(TOPIC))
        };
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![topic.with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(1)
                        .with_partition_max_bytes(1 << 20),
                ])]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("Fetch v{v}"));
        let partition = &response.responses[0].partitions[0];
        assert_eq!(
            (partition.error_code, partition.high_watermark),
            (0, produced),
            "Fetch v{v}"
        );
        let records = partition.records.as_ref().expect("records");
        assert!(!records.is_empty(), "Fetch v{v} returned no records");
        let mut records = records.clone();
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut records).unwrap();
        assert_eq!(set.records[0].offset, 1, "Fetch v{v}");
        assert_eq!(set.records[0].value.as_deref(), Some(&b"sweep"[..]));
    }
    for v in versions(ApiKey::ListOffsets) {
        for (timestamp, expected) in [(-2, 0), (-1, produced), (0, 0)] {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name(TOPIC))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(timestamp),
                        ]),
                ]);
            let response = conn
                .call(v, &request)
                .await
                .unwrap_or_else(|| panic!("ListOffsets v{v}"));
            let partition = &response.topics[0].partitions[0];
            assert_eq!(
                (partition.error_code, partition.offset),
                (0, expected),
                "ListOffsets v{v} at {timestamp}"
            );
        }
    }
    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name(TOPIC))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_leader_epoch(0),
                    ]),
            ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("OffsetForLeaderEpoch v{v}"));
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (partition.error_code, partition.end_offset),
            (0, produced),
            "OffsetForLeaderEpoch v{v}"
        );
    }
    for v in versions(ApiKey::InitProducerId) {
        let response = conn
            .call(
                v,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000),
            )
            .await
            .unwrap_or_else(|| panic!("InitProducerId v{v}"));
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        assert!(response.producer_id.0 >= 0);
    }
    for v in versions(ApiKey::DescribeConfigs) {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(TOPIC))
                .with_configuration_keys(None),
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1"))
                .with_configuration_keys(None),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("DescribeConfigs v{v}"));
        for result in &response.results {
            assert_eq!(
                result.error_code, 0,
                "DescribeConfigs v{v}: {:?}",
                result.error_message
            );
            assert!(
                result
                    .configs
                    .iter()
                    .any(|c| c.name.as_str().contains("retention.ms"))
            );
        }
    }
    for v in versions(ApiKey::AlterConfigs) {
        let request = AlterConfigsRequest::default().with_resources(vec![
            kafka_protocol::messages::alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(TOPIC))
                .with_configs(vec![
                    kafka_protocol::messages::alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s(&format!("{}", 100_000 + v as i64)))),
                ]),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("AlterConfigs v{v}"));
        assert_eq!(response.responses[0].error_code, 0, "AlterConfigs v{v}");
    }
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(TOPIC))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("segment.bytes"))
                        .with_config_operation(0)
                        .with_value(Some(s("65536"))),
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(1),
                    AlterableConfig::default()
                        .with_name(s("segment.ms"))
                        .with_config_operation(2)
                        .with_value(Some(s("1"))),
                ]),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("IncrementalAlterConfigs v{v}"));
        assert_eq!(
            response.responses[0].error_code, 40,
            "APPEND to a non-list config is INVALID_CONFIG (v{v})"
        );
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(TOPIC))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("segment.bytes"))
                        .with_config_operation(0)
                        .with_value(Some(s("65536"))),
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(1),
                ]),
        ]);
        let response = conn.call(v, &request).await.unwrap();
        assert_eq!(
            response.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{v}"
        );
    }
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(TOPIC))
            .with_configuration_keys(Some(vec![s("segment.bytes"), s("retention.ms")])),
    ]);
    let described = conn.call(4, &request).await.unwrap();
    let value = |key: &str| {
        described.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == key)
            .and_then(|c| c.value.clone())
            .unwrap()
    };
    assert_eq!(value("segment.bytes").as_str(), "65536", "SET applied");
    assert_eq!(
        value("retention.ms").as_str(),
        "604800000",
        "DELETE restored the default"
    );

    for (n, v) in versions(ApiKey::CreatePartitions).enumerate() {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![
            kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name(TOPIC))
                .with_count(2 + n as i32),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("CreatePartitions v{v}"));
        assert_eq!(
            response.results[0].error_code, 0,
            "CreatePartitions v{v}: {:?}",
            response.results[0].error_message
        );
    }
    for v in versions(ApiKey::DescribeCluster) {
        let response = conn
            .call(v, &DescribeClusterRequest::default())
            .await
            .unwrap_or_else(|| panic!("DescribeCluster v{v}"));
        assert_eq!(
            (response.error_code, response.brokers.len()),
            (0, 1),
            "DescribeCluster v{v}"
        );
    }
    for v in versions(ApiKey::DeleteRecords) {
        let offset = i64::from(v) + 1;
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(name(TOPIC))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_offset(offset),
                    ]),
            ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("DeleteRecords v{v}"));
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (partition.error_code, partition.low_watermark),
            (0, offset),
            "DeleteRecords v{v}"
        );
    }
    for v in versions(ApiKey::WriteTxnMarkers) {
        // A commit marker of a producer with no open transaction here: written, harmlessly.
        let request = WriteTxnMarkersRequest::default().with_markers(vec![
            write_txn_markers_request::WritableTxnMarker::default()
                .with_producer_id(ProducerId(77))
                .with_producer_epoch(0)
                .with_transaction_result(true)
                .with_topics(vec![
                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                        .with_name(name(TOPIC))
                        .with_partition_indexes(vec![0]),
                ]),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("WriteTxnMarkers v{v}"));
        assert_eq!(
            response.markers[0].topics[0].partitions[0].error_code, 0,
            "WriteTxnMarkers v{v}"
        );
    }
    for v in versions(ApiKey::DescribeQuorum) {
        let request = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(name("__cluster_metadata"))
                .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("DescribeQuorum v{v}"));
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (
                response.error_code,
                partition.error_code,
                partition.leader_id.0
            ),
            (0, 0, 1),
            "DescribeQuorum v{v}: {partition:?}"
        );
        assert_eq!(partition.current_voters.len(), 1, "DescribeQuorum v{v}");
        assert!(partition.high_watermark > 0, "DescribeQuorum v{v}");
        assert_eq!(
            response.nodes.len(),
            usize::from(v >= 2),
            "DescribeQuorum v{v}"
        );
    }
    for v in versions(ApiKey::DescribeProducers) {
        let request = DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(name(TOPIC))
                .with_partition_indexes(vec![0, 99]),
        ]);
        let response = conn
            .call(v, &request)
            .await
            .unwrap_or_else(|| panic!("DescribeProducers v{v}"));
        let codes: Vec<i16> = response.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        // Partition 99 does not exist.
        assert_eq!(codes, vec![0, 3], "DescribeProducers v{v}");
    }
    for v in versions(ApiKey::ListConfigResources) {
        let response = conn
            .call(v, &ListConfigResourcesRequest::default())
            .await
            .unwrap_or_else(|| panic!("ListConfigResources v{v}"));
        assert_eq!(response.error_code, 0, "ListConfigResources v{v}");
        let listed: Vec<(i8, String)> = response
            .config_resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string()))
            .collect();
        if v == 0 {
            assert!(listed.is_empty(), "no client-metrics resources: {listed:?}");
        } else {
            assert!(listed.contains(&(2, TOPIC.to_owned())), "{listed:?}");
            assert!(listed.contains(&(4, "1".to_owned())), "{listed:?}");
        }
    }
    let unsupported = conn
        .call(
            1,
            &ListConfigResourcesRequest::default().with_resource_types(vec![8]),
        )
        .await
        .unwrap();
    assert_eq!(unsupported.error_code, 35, "broker loggers are not listed");
    for v in versions(ApiKey::DescribeTopicPartitions) {
        // The topic's five partitions, two per page, then a page of every topic one partition
        // at a time.
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let request = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    describe_topic_partitions_request::TopicRequest::default()
                        .with_name(name(TOPIC)),
                ])
                .with_response_partition_limit(2)
                .with_cursor(cursor.clone());
            let response = conn
                .call(v, &request)
                .await
                .unwrap_or_else(|| panic!("DescribeTopicPartitions v{v}"));
            assert_eq!(response.topics.len(), 1, "{response:?}");
            assert_eq!(response.topics[0].error_code, 0, "{response:?}");
            pages.push(
                response.topics[0]
                    .partitions
                    .iter()
                    .map(|p| p.partition_index)
                    .collect::<Vec<_>>(),
            );
            let Some(next) = response.next_cursor else {
                break;
            };
            cursor = Some(
                describe_topic_partitions_request::Cursor::default()
                    .with_topic_name(next.topic_name)
                    .with_partition_index(next.partition_index),
            );
            assert!(pages.len() < 5, "paging does not end: {pages:?}");
        }
        assert_eq!(
            pages,
            vec![vec![0, 1], vec![2, 3], vec![4]],
            "DescribeTopicPartitions v{v}"
        );
        let first = conn
            .call(
                v,
                &DescribeTopicPartitionsRequest::default().with_response_partition_limit(1),
            )
            .await
            .unwrap();
        let listed: Vec<String> = first
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        assert_eq!(listed, vec!["created-2".to_owned()], "names come in order");
        let next = first.next_cursor.expect("more topics follow");
        assert_eq!(
            (next.topic_name.0.as_str(), next.partition_index),
            ("created-3", 0)
        );
        let unknown = conn
            .call(
                v,
                &DescribeTopicPartitionsRequest::default().with_topics(vec![
                    describe_topic_partitions_request::TopicRequest::default()
                        .with_name(name("no-such-topic")),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(unknown.topics[0].error_code, 3, "{unknown:?}");
    }
    for v in versions(ApiKey::DeleteTopics) {
        let topic = format!("created-{}", v + 1);
        let request = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name(&topic))),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
        };
        let response = conn
            .call(v, &request.with_timeout_ms(5_000))
            .await
            .unwrap_or_else(|| panic!("DeleteTopics v{v}"));
        assert_eq!(response.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
}
