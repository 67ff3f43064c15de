//! ACLs with Kafka's StandardAuthorizer semantics, API by API: for each API a client uses, a
//! principal with the right ACL gets its answer and one without gets the error a Kafka client
//! expects (TOPIC_, GROUP_, CLUSTER_AUTHORIZATION_FAILED), over the wire and with librdkafka
//! and kcat; ACLs made with `strata acl`, kept across a restart.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use common::BrokerProcess;
use common::wire::{Conn, encode_batch, scram_login};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn strata(bootstrap: &str, args: &[&str], stdin: &str) -> Output {
    common::strata_tool(bootstrap, args, stdin)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start(dir: &std::path::Path) -> BrokerProcess {
    BrokerProcess::start(
        &dir.join("data"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            // The PLAINTEXT listener is this test's administrator (and the brokers').
            "super.users=User:ANONYMOUS",
        ],
    )
}

async fn produce(conn: &mut Conn, topic: &str) -> i16 {
    let records = encode_batch(&[Bytes::from_static(b"v")], (-1, -1), -1, 0);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(s(topic)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    conn.call(9, &request).await.unwrap().responses[0].partition_responses[0].error_code
}

async fn fetch(conn: &mut Conn, topic: &str, replica_id: i32) -> i16 {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    conn.call(11, &request).await.unwrap().responses[0].partitions[0].error_code
}

async fn list_offsets(conn: &mut Conn, topic: &str) -> i16 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    conn.call(7, &request).await.unwrap().topics[0].partitions[0].error_code
}

async fn metadata(conn: &mut Conn, topics: Option<&[&str]>) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(s(n)))))
                .collect()
        }))
        .with_allow_auto_topic_creation(true)
        .with_include_topic_authorized_operations(true);
    conn.call(12, &request).await.unwrap()
}

async fn heartbeat(conn: &mut Conn, group: &str) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s("nobody"))
        .with_generation_id(1);
    conn.call(4, &request).await.unwrap().error_code
}

async fn commit(conn: &mut Conn, group: &str, topic: &str) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    conn.call(8, &request).await.unwrap().topics[0].partitions[0].error_code
}

async fn find_coordinator(conn: &mut Conn, group: &str) -> i16 {
    let request = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(group)]);
    conn.call(4, &request).await.unwrap().coordinators[0].error_code
}

async fn create_topic(conn: &mut Conn, topic: &str) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(s(topic)))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(5000);
    conn.call(7, &request).await.unwrap().topics[0].error_code
}

async fn describe_configs(conn: &mut Conn, resource_type: i8, name: &str) -> i16 {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name)),
    ]);
    conn.call(4, &request).await.unwrap().results[0].error_code
}

async fn init_producer_id(conn: &mut Conn) -> i16 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    conn.call(4, &request).await.unwrap().error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_answers_by_the_acls() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path());
    let admin = broker.addr.clone();
    for user in ["alice", "bob"] {
        ok(strata(
            &admin,
            &["user", "create", user, "--mechanism", "SCRAM-SHA-512"],
            &format!("{user}-secret\n"),
        ));
    }
    for topic in ["orders", "secret", "logs-app"] {
        ok(strata(
            &admin,
            &["topic", "create", topic, "--partitions", "1"],
            "",
        ));
    }
    let mut root = Conn::open(&admin).await;
    assert_eq!(produce(&mut root, "orders").await, 0);
    // The offsets topic is made on first use: wait until the coordinators answer.
    for (group, topic) in [("g1", "secret"), ("g2", "orders")] {
        let mut tries = 0;
        while find_coordinator(&mut root, group).await != 0
            || commit(&mut root, group, topic).await != 0
        {
            tries += 1;
            assert!(tries < 100, "the coordinator of {group} never answered");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    // alice: reads orders as group g1, writes logs-* topics.
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
        ],
        "",
    ));
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--group",
            "g1",
        ],
        "",
    ));
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "logs-",
            "--resource-pattern-type",
            "prefixed",
        ],
        "",
    ));
    let listed = ok(strata(
        &admin,
        &["acl", "list", "--principal", "User:alice"],
        "",
    ));
    assert_eq!(
        listed.lines().count(),
        4,
        "a header and three ACLs:\n{listed}"
    );
    assert!(
        listed.contains("PREFIXED") && listed.contains("logs-"),
        "{listed}"
    );

    let addr = broker.listeners["SASL_PLAINTEXT"].clone();
    let mut alice = scram_login(&addr, "alice", "alice-secret").await;
    let mut bob = scram_login(&addr, "bob", "bob-secret").await;

    // Produce: WRITE on the topic.
    assert_eq!(produce(&mut alice, "orders").await, TOPIC_DENIED);
    assert_eq!(produce(&mut alice, "logs-app").await, 0);
    assert_eq!(produce(&mut bob, "logs-app").await, TOPIC_DENIED);
    // Fetch: READ on the topic; a replica fetch needs CLUSTER_ACTION (CVE-2018-1288).
    assert_eq!(fetch(&mut alice, "orders", -1).await, 0);
    assert_eq!(fetch(&mut bob, "orders", -1).await, TOPIC_DENIED);
    assert_eq!(fetch(&mut alice, "orders", 1).await, TOPIC_DENIED);
    // ListOffsets: DESCRIBE, which READ implies.
    assert_eq!(list_offsets(&mut alice, "orders").await, 0);
    assert_eq!(list_offsets(&mut bob, "orders").await, TOPIC_DENIED);

    // Metadata: only describable topics are listed; a named topic the principal may not
    // describe is refused whether it exists or not, and is not created.
    let all = metadata(&mut alice, None).await;
    let mut names: Vec<String> = all
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["logs-app", "orders"]);
    let orders = all
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "orders"))
        .unwrap();
    // KIP-430: READ (bit 3) and the DESCRIBE it implies (bit 8), nothing else.
    assert_eq!(orders.topic_authorized_operations, (1 << 3) | (1 << 8));
    assert!(metadata(&mut bob, None).await.topics.is_empty());
    let named = metadata(&mut alice, Some(&["secret", "missing"])).await;
    let codes: Vec<i16> = named.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        [TOPIC_DENIED, TOPIC_DENIED],
        "an unauthorized and a missing topic look alike"
    );
    let root_view = metadata(&mut root, Some(&["missing"])).await;
    assert_eq!(
        root_view.topics[0].error_code, 0,
        "auto-created for the superuser only now"
    );
    // CreateTopics: CREATE on the cluster or the topic.
    assert_eq!(create_topic(&mut alice, "new-topic").await, TOPIC_DENIED);
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Create",
            "--topic",
            "new-topic",
        ],
        "",
    ));
    assert_eq!(create_topic(&mut alice, "new-topic").await, 0);
    // DeleteTopics: DELETE.
    let delete = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(TopicName(s("orders")))),
        ])
        .with_timeout_ms(5000);
    assert_eq!(
        alice.call(6, &delete).await.unwrap().responses[0].error_code,
        TOPIC_DENIED
    );
    // DescribeConfigs: DESCRIBE_CONFIGS on the topic, or on the cluster for a broker.
    assert_eq!(
        describe_configs(&mut alice, 2, "orders").await,
        TOPIC_DENIED
    );
    assert_eq!(describe_configs(&mut alice, 4, "").await, CLUSTER_DENIED);
    assert_eq!(describe_configs(&mut root, 2, "orders").await, 0);

    // Groups: READ to join, heartbeat, commit; DESCRIBE to find and describe.
    assert_eq!(find_coordinator(&mut alice, "g1").await, 0);
    assert_eq!(find_coordinator(&mut alice, "g2").await, GROUP_DENIED);
    assert_eq!(
        heartbeat(&mut alice, "g1").await,
        25,
        "UNKNOWN_MEMBER_ID: authorized, then checked"
    );
    assert_eq!(heartbeat(&mut alice, "g2").await, GROUP_DENIED);
    assert_eq!(commit(&mut alice, "g1", "orders").await, 0);
    assert_eq!(commit(&mut alice, "g1", "secret").await, TOPIC_DENIED);
    assert_eq!(commit(&mut alice, "g2", "orders").await, GROUP_DENIED);
    // OffsetFetch of every topic leaves out those the principal may not describe.
    let fetched = alice
        .call(
            8,
            &OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("g1")))
                    .with_topics(None),
            ]),
        )
        .await
        .unwrap();
    let topics: Vec<String> = fetched.groups[0]
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(topics, ["orders"]);
    // ListGroups: only describable groups without DESCRIBE on the cluster.
    let groups = alice.call(4, &ListGroupsRequest::default()).await.unwrap();
    let ids: Vec<String> = groups
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    assert_eq!(ids, ["g1"]);
    let described = alice
        .call(
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("g1")), GroupId(s("g2"))])
                .with_include_authorized_operations(true),
        )
        .await
        .unwrap();
    assert_eq!(described.groups[0].error_code, 0);
    assert_eq!(
        described.groups[0].authorized_operations,
        (1 << 3) | (1 << 8)
    );
    assert_eq!(described.groups[1].error_code, GROUP_DENIED);
    let deleted = alice
        .call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g1"))]),
        )
        .await
        .unwrap();
    assert_eq!(deleted.results[0].error_code, GROUP_DENIED);

    // Idempotent producers (KIP-679): WRITE on some topic is enough.
    assert_eq!(init_producer_id(&mut alice).await, 0);
    assert_eq!(init_producer_id(&mut bob).await, CLUSTER_DENIED);
    // Cluster APIs.
    let cluster = alice
        .call(1, &DescribeClusterRequest::default())
        .await
        .unwrap();
    assert_eq!(cluster.error_code, CLUSTER_DENIED);
    let quorum = alice
        .call(
            2,
            &DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(TopicName(s("__cluster_metadata")))
                    .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(quorum.error_code, CLUSTER_DENIED);
    let resources = alice
        .call(1, &ListConfigResourcesRequest::default())
        .await
        .unwrap();
    assert_eq!(resources.error_code, CLUSTER_DENIED);
    // Topic APIs of KIP-664 and KIP-966: READ for producers, DESCRIBE for partitions.
    let producers = alice
        .call(
            0,
            &DescribeProducersRequest::default().with_topics(
                ["orders", "secret"]
                    .map(|t| {
                        describe_producers_request::TopicRequest::default()
                            .with_name(TopicName(s(t)))
                            .with_partition_indexes(vec![0])
                    })
                    .to_vec(),
            ),
        )
        .await
        .unwrap();
    let codes: Vec<i16> = producers
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, [0, TOPIC_DENIED]);
    // Transactions need WRITE (DESCRIBE to describe) on the transactional id.
    const TXN_DENIED: i16 = 53;
    let txn_id = || TransactionalId(s("alice-tx"));
    let init = alice
        .call(
            1,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id()))
                .with_transaction_timeout_ms(60_000),
        )
        .await
        .unwrap();
    assert_eq!(init.error_code, TXN_DENIED);
    let added = alice
        .call(
            1,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn_id())
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s("logs-app")))
                        .with_partitions(vec![0]),
                ]),
        )
        .await
        .unwrap();
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        TXN_DENIED
    );
    let ended = alice
        .call(1, &EndTxnRequest::default().with_transactional_id(txn_id()))
        .await
        .unwrap();
    assert_eq!(ended.error_code, TXN_DENIED);
    let described = alice
        .call(
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id()]),
        )
        .await
        .unwrap();
    assert_eq!(described.transaction_states[0].error_code, TXN_DENIED);
    let markers = alice
        .call(
            1,
            &WriteTxnMarkersRequest::default().with_markers(vec![
                write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(1))
                    .with_topics(vec![
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(TopicName(s("orders")))
                            .with_partition_indexes(vec![0]),
                    ]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        markers.markers[0].topics[0].partitions[0].error_code, CLUSTER_DENIED,
        "only brokers write transaction markers"
    );
    let verified = alice
        .call(
            5,
            &AddPartitionsToTxnRequest::default().with_transactions(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn_id())
                    .with_verify_only(true),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        verified.error_code, CLUSTER_DENIED,
        "only brokers ask a coordinator to verify partitions (KIP-890)"
    );
    let deleted = alice
        .call(
            2,
            &DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(TopicName(s("orders")))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default().with_offset(0),
                    ]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        deleted.topics[0].partitions[0].error_code, TOPIC_DENIED,
        "DeleteRecords needs DELETE on the topic"
    );
    let named = alice
        .call(
            0,
            &DescribeTopicPartitionsRequest::default().with_topics(
                ["orders", "secret"]
                    .map(|t| {
                        describe_topic_partitions_request::TopicRequest::default()
                            .with_name(TopicName(s(t)))
                    })
                    .to_vec(),
            ),
        )
        .await
        .unwrap();
    let codes: Vec<(String, i16)> = named
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        [("orders".into(), 0), ("secret".into(), TOPIC_DENIED)]
    );
    let all = alice
        .call(0, &DescribeTopicPartitionsRequest::default())
        .await
        .unwrap();
    let names: Vec<String> = all
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(names, ["logs-app", "orders"], "only describable topics");
    let reassignments = alice
        .call(0, &ListPartitionReassignmentsRequest::default())
        .await
        .unwrap();
    assert_eq!(reassignments.error_code, CLUSTER_DENIED);
    let elect = alice
        .call(
            2,
            &ElectLeadersRequest::default()
                .with_election_type(0)
                .with_timeout_ms(1000),
        )
        .await
        .unwrap();
    assert_eq!(elect.error_code, CLUSTER_DENIED);
    let acls = alice
        .call(
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await
        .unwrap();
    assert_eq!(acls.error_code, CLUSTER_DENIED);
    let users = alice
        .call(0, &DescribeUserScramCredentialsRequest::default())
        .await
        .unwrap();
    assert_eq!(users.error_code, CLUSTER_DENIED);
    assert!(
        alice
            .call(3, &ApiVersionsRequest::default())
            .await
            .unwrap()
            .error_code
            == 0
    );

    // DENY wins over ALLOW, and a DENY of READ leaves the DESCRIBE that READ implied.
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--deny-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
        ],
        "",
    ));
    assert_eq!(fetch(&mut alice, "orders", -1).await, TOPIC_DENIED);
    assert_eq!(list_offsets(&mut alice, "orders").await, 0);

    let scrape = common::metrics::scrape(&broker.admin_addr, false);
    assert!(scrape.sum("strata_authorization_denied_total", &[("api", "Fetch")]) >= 3.0);
    assert!(broker.log().contains("denied Read on Topic 'orders'"));

    // ACLs live in the metadata log: after a restart the same answers.
    broker.stop();
    broker.restart("127.0.0.1:0");
    let addr = broker.listeners["SASL_PLAINTEXT"].clone();
    let mut alice = scram_login(&addr, "alice", "alice-secret").await;
    assert_eq!(fetch(&mut alice, "orders", -1).await, TOPIC_DENIED);
    assert_eq!(produce(&mut alice, "logs-app").await, 0);
    let removed = ok(strata(
        &broker.addr,
        &[
            "acl",
            "delete",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
        ],
        "",
    ));
    assert!(removed.starts_with("1 ACLs deleted"), "{removed}");
    assert_eq!(fetch(&mut alice, "orders", -1).await, 0);
}

#[test]
fn clients_see_authorization_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let admin = broker.addr.clone();
    ok(strata(
        &admin,
        &["user", "create", "reader", "--mechanism", "SCRAM-SHA-512"],
        "reader-secret\n",
    ));
    ok(strata(
        &admin,
        &["topic", "create", "events", "--partitions", "1"],
        "",
    ));
    ok(strata(&admin, &["produce", "events"], "one\ntwo\nthree\n"));
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:reader",
            "--operation",
            "Read",
            "--topic",
            "events",
        ],
        "",
    ));
    ok(strata(
        &admin,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:reader",
            "--operation",
            "Read",
            "--group",
            "readers",
        ],
        "",
    ));
    let addr = broker.listeners["SASL_PLAINTEXT"].clone();
    let sasl = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-512",
        "-X",
        "sasl.username=reader",
        "-X",
        "sasl.password=reader-secret",
    ];
    // kcat reads with READ…
    let read = Command::new("kcat")
        .args(["-b", &addr, "-C", "-t", "events", "-e", "-q"])
        .args(sasl)
        .output()
        .expect("kcat is installed (scripts/test.sh installs it)");
    assert_eq!(String::from_utf8_lossy(&read.stdout), "one\ntwo\nthree\n");
    // …and cannot write.
    let mut write = Command::new("kcat")
        .args(["-b", &addr, "-P", "-t", "events"])
        .args(sasl)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write.stdin.take().unwrap().write_all(b"four\n").unwrap();
    let written = write.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&written.stderr);
    assert!(err.contains("Topic authorization failed"), "{err}");
}
