//! Proves that the Java Kafka client, 3.9 and 4.1, works against Strata: its admin client
//! (create, describe, incremental config changes), its producer on defaults (idempotent,
//! acks=all) with zstd, and a consumer by assignment with offsetsForTimes. The client program is
//! `tests/java/StrataClientCheck.java`; Maven fetches the jars once into the target directory.

mod common;

use std::process::Command;

use common::BrokerProcess;
use common::certs::{Ca, Request};

use common::java::{classpath as client_classpath, run};

fn check_client(version: &str) {
    let classpath = client_classpath(version);
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataClientCheck")
        .arg(&broker.addr)
        .arg("java-check"));
    assert!(
        output.contains("OK 3000 records"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
}

/// The whole check over SSL with a client certificate, from PEM files as Kafka reads them
/// (`ssl.keystore.type=PEM`, KIP-651), verifying the broker's name (127.0.0.1).
#[test]
fn java_client_over_ssl() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let issue = |name: &str, server: bool| {
        ca.issue(&Request {
            name,
            subject: &[("O", "Acme"), ("CN", name)],
            server,
            days: 30,
            serial: if server { 1 } else { 2 },
        })
    };
    let (server, client) = (issue("server", true), issue("java", false));
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
            &format!("ssl.keystore.location={}", server.keystore.display()),
            &format!("ssl.truststore.location={}", ca.pem.display()),
            "ssl.client.auth=required",
        ],
    );
    let properties = dir.path().join("client.properties");
    std::fs::write(
        &properties,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={}\n",
            ca.pem.display(),
            client.keystore.display()
        ),
    )
    .unwrap();
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataClientCheck")
        .arg(&broker.listeners["SSL"])
        .arg("java-ssl-check")
        .arg(&properties));
    assert!(
        output.contains("OK 3000 records"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
}

#[test]
fn java_client_4_1() {
    check_client("4.1.0");
}

#[test]
fn java_client_3_9() {
    check_client("3.9.1");
}

/// The whole check over SASL_SSL with SCRAM-SHA-512, the user made with `strata user`.
#[test]
fn java_client_over_sasl_ssl_with_scram() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(&Request {
        name: "server",
        subject: &[("CN", "localhost")],
        server: true,
        days: 30,
        serial: 1,
    });
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            &format!("ssl.keystore.location={}", server.keystore.display()),
        ],
    );
    let mut create = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "user",
            "create",
            "java",
            "--mechanism",
            "SCRAM-SHA-512",
            "--bootstrap",
        ])
        .arg(&broker.addr)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"java-secret\n")
        .unwrap();
    assert!(create.wait().unwrap().success());
    let properties = dir.path().join("client.properties");
    std::fs::write(
        &properties,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"java\" password=\"java-secret\";\n\
             ssl.truststore.type=PEM\nssl.truststore.location={}\n",
            ca.pem.display()
        ),
    )
    .unwrap();
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataClientCheck")
        .arg(&broker.listeners["SASL_SSL"])
        .arg("java-scram-check")
        .arg(&properties));
    assert!(
        output.contains("OK 3000 records"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
}

/// The Java AdminClient manages ACLs (CreateAcls, DescribeAcls with a MATCH filter,
/// DeleteAcls) and a SCRAM consumer is refused, allowed, then refused again by them.
#[test]
fn java_admin_client_manages_acls() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:ANONYMOUS",
        ],
    );
    let strata = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .arg("--bootstrap")
            .arg(&broker.addr)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        assert!(child.wait().unwrap().success(), "strata {args:?}");
    };
    strata(
        &["user", "create", "auditor", "--mechanism", "SCRAM-SHA-512"],
        b"auditor-secret\n",
    );
    strata(&["topic", "create", "audit", "--partitions", "1"], b"");
    strata(&["produce", "audit"], b"entry\n");
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataAclCheck")
        .arg(&broker.addr)
        .arg(&broker.listeners["SASL_PLAINTEXT"])
        .arg("auditor")
        .arg("auditor-secret"));
    assert!(
        output.contains("OK ACLs"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
}

/// The whole check over SSL without a client certificate, and over SASL_SSL with PLAIN and
/// with SCRAM-SHA-256: the Java client's other security settings, on one broker.
#[test]
fn java_client_over_ssl_without_client_auth_and_sasl_plain_and_scram_sha_256() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(&Request {
        name: "server",
        subject: &[("CN", "localhost")],
        server: true,
        days: 30,
        serial: 1,
    });
    let users = dir.path().join("plain-users");
    std::fs::write(&users, "plain-java:plain-secret\n").unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
            &format!("sasl.plain.users.file={}", users.display()),
            &format!("ssl.keystore.location={}", server.keystore.display()),
        ],
    );
    let made = common::strata_tool(
        &broker.addr,
        &[
            "user",
            "create",
            "scram-java",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
        "scram-secret",
    );
    assert!(made.status.success(), "{made:?}");
    let trust = format!(
        "ssl.truststore.type=PEM\nssl.truststore.location={}\n",
        ca.pem.display()
    );
    let jaas = |module: &str, user: &str, password: &str| {
        format!(
            "sasl.jaas.config=org.apache.kafka.common.security.{module} required username=\"{user}\" password=\"{password}\";\n"
        )
    };
    let runs = [
        (
            "SSL",
            "java-ssl-server-auth",
            "security.protocol=SSL\n".to_owned(),
        ),
        (
            "SASL_SSL",
            "java-plain-check",
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n".to_owned()
                + &jaas("plain.PlainLoginModule", "plain-java", "plain-secret"),
        ),
        (
            "SASL_SSL",
            "java-scram256-check",
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\n".to_owned()
                + &jaas("scram.ScramLoginModule", "scram-java", "scram-secret"),
        ),
    ];
    for (listener, name, settings) in runs {
        let properties = dir.path().join(format!("{name}.properties"));
        std::fs::write(&properties, settings + &trust).unwrap();
        let output = run(Command::new("java")
            .arg("-cp")
            .arg(&classpath)
            .arg("StrataClientCheck")
            .arg(&broker.listeners[listener])
            .arg(name)
            .arg(&properties));
        assert!(
            output.contains("OK 3000 records"),
            "{name}: {output}\nbroker log:\n{}",
            broker.log()
        );
    }
}

/// The admin APIs of KIP-595, KIP-966, KIP-1142, KIP-664 and KIP-107 through the Java
/// AdminClient, on three combined nodes (the voters) and a broker-only node (an observer of the
/// quorum), asked through the broker-only node.
#[test]
fn java_admin_client_describes_quorum_paged_topics_config_resources_producers_and_deletes_records()
{
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let (nodes, voters) = common::cluster::three_nodes(dir.path(), &[]);
    let broker_only = BrokerProcess::start(
        &dir.path().join("node4"),
        &[
            "process.roles=broker",
            "node.id=4",
            &format!("controller.quorum.voters={voters}"),
            "broker.heartbeat.interval.ms=300",
        ],
    );
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataAdminCheck")
        .arg(&broker_only.addr)
        .arg("1,2,3")
        .arg("4"));
    assert!(
        output.contains("OK admin"),
        "{output}\nbroker log:\n{}",
        broker_only.log()
    );
    // The deleted records stay deleted when the leader is killed: its followers took the
    // new log start from it, and the one that leads next answers it.
    let mut nodes = nodes;
    let earliest = |addr: &str| -> Option<(i64, i64)> {
        let consumer: rdkafka::consumer::BaseConsumer =
            common::client(addr).create().expect("consumer");
        rdkafka::consumer::Consumer::fetch_watermarks(
            &consumer,
            "trimmed",
            0,
            std::time::Duration::from_secs(5),
        )
        .ok()
    };
    assert_eq!(earliest(&broker_only.addr), Some((6, 10)));
    let leader = leader_of(&broker_only.addr, "trimmed");
    nodes[leader as usize - 1].kill();
    common::cluster::wait_until("a new leader", std::time::Duration::from_secs(30), || {
        (leader_of(&broker_only.addr, "trimmed") != leader)
            .then(|| earliest(&broker_only.addr))
            .flatten()
    });
    assert_eq!(
        earliest(&broker_only.addr),
        Some((6, 10)),
        "kept by the new leader"
    );
}

/// The leader of partition 0 of `topic`, as Metadata says.
fn leader_of(bootstrap: &str, topic: &str) -> i32 {
    let consumer: rdkafka::consumer::BaseConsumer =
        common::client(bootstrap).create().expect("consumer");
    let metadata = rdkafka::consumer::Consumer::fetch_metadata(
        &consumer,
        Some(topic),
        std::time::Duration::from_secs(5),
    )
    .expect("metadata");
    metadata.topics()[0].partitions()[0].leader()
}

/// The codec bits of every batch stored in partition 0 of `topic`, from a raw Fetch.
async fn stored_codecs(addr: &str, topic: &str) -> Vec<i16> {
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
                    FetchPartition::default().with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response = conn.call(12, &request).await.expect("Fetch answered");
    let mut records = response.responses[0].partitions[0]
        .records
        .clone()
        .expect("records");
    let mut codecs = Vec::new();
    while records.len() >= 61 {
        let header = strata_record::BatchHeader::parse(&records).expect("a batch");
        codecs.push(header.compression());
        let _ = records.split_to(header.size() as usize);
    }
    codecs
}

/// Proves that a topic's `compression.type` is the codec its batches are stored in, whatever
/// librdkafka (zstd or lz4) and the Java client (uncompressed) send, that both clients read
/// every record back, and that a batch refused for one record names it (KIP-467) to the Java
/// producer.
#[test]
fn topics_store_their_codec_and_the_java_producer_learns_which_record_was_refused() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let codecs = [
        ("uncompressed", 0),
        ("gzip", 1),
        ("snappy", 2),
        ("lz4", 3),
        ("zstd", 4),
    ];
    runtime.block_on(async {
        for (codec, _) in codecs {
            let topic = format!("codec-{codec}");
            common::create_topic(&broker.addr, &topic, 1, &[("compression.type", codec)]).await;
            // Batches in another codec than the topic's, so that each is recompressed.
            let sent_as = if codec == "zstd" { "lz4" } else { "zstd" };
            let producer: FutureProducer = common::client(&broker.addr)
                .set("compression.codec", sent_as)
                .set("enable.idempotence", "true")
                .set("linger.ms", "5")
                .create()
                .unwrap();
            // Enqueued at once, so that librdkafka batches them.
            let deliveries: Vec<_> = (0..50)
                .map(|i| {
                    let (key, value) = (format!("k{i}"), format!("{topic}-{i}"));
                    producer
                        .send_result(
                            FutureRecord::to(&topic)
                                .partition(0)
                                .key(&key)
                                .payload(&value),
                        )
                        .map_err(|(e, _)| e)
                        .expect("enqueued")
                })
                .collect();
            for delivery in deliveries {
                delivery.await.expect("delivered").expect("acknowledged");
            }
        }
        common::create_topic(&broker.addr, "keyed", 1, &[("cleanup.policy", "compact")]).await;
    });
    let mut args = vec![broker.addr.clone(), "keyed".to_owned()];
    args.extend(codecs.iter().map(|(c, _)| format!("codec-{c}")));
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataCompressionCheck")
        .args(&args));
    assert!(
        output.contains("OK compression"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
    for (codec, bits) in codecs {
        let topic = format!("codec-{codec}");
        let stored = runtime.block_on(stored_codecs(&broker.addr, &topic));
        assert!(!stored.is_empty());
        assert!(
            stored.iter().all(|c| *c == bits),
            "{topic} stores {stored:?}"
        );
        let read = common::consume_all(
            &broker.addr,
            &topic,
            1,
            100,
            std::time::Duration::from_secs(20),
        );
        let values: Vec<String> = read
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned())
            .collect();
        let expected: Vec<String> = (0..100).map(|i| format!("{topic}-{i}")).collect();
        assert_eq!(values, expected, "librdkafka reads {topic}");
    }
}

/// The Java AdminClient's transaction tools (KIP-664): describeTransactions, listTransactions,
/// describeProducers and abortTransaction of a hanging transaction.
#[test]
fn java_admin_client_finds_and_aborts_a_hanging_transaction() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["transaction.state.log.num.partitions=1"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(common::create_topic(&broker.addr, "hanging", 1, &[]));
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataTxnAdminCheck")
        .arg(&broker.addr)
        .arg("hanging"));
    assert!(
        output.contains("OK transaction admin"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
}

/// The Java consumer with `group.protocol=consumer` (KIP-848) under each server assignor:
/// members join and leave, the broker splits the partitions evenly, offsets continue.
#[test]
fn java_consumers_share_partitions_with_the_consumer_group_protocol() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.consumer.heartbeat.interval.ms=500"],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for assignor in ["uniform", "range"] {
        let topic = format!("shared-{assignor}");
        runtime.block_on(common::create_topic(&broker.addr, &topic, 6, &[]));
        let output = run(Command::new("java")
            .arg("-cp")
            .arg(&classpath)
            .arg("StrataConsumerProtocolCheck")
            .arg(&broker.addr)
            .arg(&topic)
            .arg(assignor));
        assert!(
            output.contains(&format!("OK consumer protocol {assignor}")),
            "{output}\nbroker log:\n{}",
            broker.log()
        );
    }
}

/// KIP-848's online migration: a classic group in use is upgraded when a consumer-protocol
/// member joins and downgraded when it leaves, with the Java client on both protocols.
#[test]
fn classic_and_consumer_protocol_members_share_one_group() {
    let classpath = client_classpath("4.1.0");
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &[
            "group.consumer.heartbeat.interval.ms=500",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let topic = "mixed";
    runtime.block_on(common::create_topic(&broker.addr, topic, 6, &[]));
    let output = run(Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg("StrataMixedGroupCheck")
        .arg(&broker.addr)
        .arg(topic));
    assert!(
        output.contains("OK mixed group"),
        "{output}\nbroker log:\n{}",
        broker.log()
    );
}
