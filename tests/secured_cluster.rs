//! A three-node cluster whose brokers reach each other only over SASL_SSL: replication with
//! `acks=all` runs over the authenticated inter-broker listener, and a client that is not a
//! broker cannot pose as a replica (CVE-2018-1288).

mod common;

use base64::Engine as _;

use std::process::Command;
use std::time::Duration;

use common::certs::{self, Ca, Request};
use common::cluster::wait_until;
use common::wire::Conn;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, SaslAuthenticateRequest, SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

#[tokio::test(flavor = "multi_thread")]
async fn brokers_replicate_over_sasl_ssl_and_clients_cannot_pose_as_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(&Request {
        name: "broker",
        subject: &[("CN", "localhost")],
        server: true,
        days: 30,
        serial: 1,
    });
    let users = dir.path().join("plain-users");
    std::fs::write(&users, "broker:broker-secret\nalice:alice-secret\n").unwrap();
    let extra: Vec<String> = vec![
        // Controllers and brokers speak to the controllers over mutual TLS.
        // The admin API is https too, and asks for a password: brokers ask each other's (for
        // the cluster view's traffic) as the inter-broker user.
        "listener.security.protocol.map=INTERNAL:SASL_SSL,CONTROLLER:SSL,ADMIN:SSL".into(),
        "admin.api.authentication=basic".into(),
        "inter.broker.listener.name=INTERNAL".into(),
        "sasl.enabled.mechanisms=PLAIN".into(),
        "sasl.mechanism.inter.broker.protocol=PLAIN".into(),
        "listener.name.internal.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"broker-secret\";".into(),
        format!("sasl.plain.users.file={}", users.display()),
        format!("ssl.keystore.location={}", server.keystore.display()),
        format!("ssl.truststore.location={}", ca.pem.display()),
        "authorizer.class.name=standard".into(),
        "super.users=User:broker".into(),
        "default.replication.factor=3".into(),
        "min.insync.replicas=3".into(),
        "offsets.topic.replication.factor=3".into(),
        "ssl.certificate.reload.interval.ms=200".into(),
    ];
    // The cluster helper's listeners, with INTERNAL in place of PLAINTEXT.
    let (controllers, voters) = common::cluster::voters(3);
    let root = dir.path().join("cluster");
    std::fs::create_dir_all(&root).unwrap();
    let settings = (0..3)
        .map(|n| {
            let mut s = common::cluster::node_settings(n as u64 + 1, &controllers[n], &voters);
            s.retain(|s| !s.starts_with("listeners="));
            s.push(format!(
                "listeners=INTERNAL://127.0.0.1:0,CONTROLLER://{}",
                controllers[n]
            ));
            s.extend(extra.iter().cloned());
            s
        })
        .collect();
    let dirs = (1..=3).map(|n| root.join(format!("node{n}"))).collect();
    let nodes = common::cluster::start_nodes(dirs, settings);
    let bootstrap = nodes[0].listeners["INTERNAL"].clone();
    let admin_config = dir.path().join("broker.properties");
    std::fs::write(
        &admin_config,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"broker-secret\";\n\
             ssl.truststore.location={}\n",
            ca.pem.display()
        ),
    )
    .unwrap();
    let created = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "topic",
            "create",
            "payments",
            "--partitions",
            "1",
            "--bootstrap",
            &bootstrap,
        ])
        .arg("--command-config")
        .arg(&admin_config)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    // acks=all with min.insync.replicas=3: every acknowledgement means both followers fetched
    // the records, which they can only do over the authenticated listener.
    let mut config = common::client(&bootstrap);
    config
        .set("security.protocol", "sasl_ssl")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", "broker")
        .set("sasl.password", "broker-secret")
        .set("ssl.ca.location", ca.pem.display().to_string())
        .set("acks", "all");
    let producer: ThreadedProducer<DefaultProducerContext> = config.create().unwrap();
    for n in 0..200 {
        let value = n.to_string();
        producer
            .send(BaseRecord::<(), str>::to("payments").payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let replicated = wait_until(
        "the replicas hold the same log",
        Duration::from_secs(30),
        || {
            let logs: Vec<Vec<u8>> = nodes
                .iter()
                .map(|n| common::cluster::log_bytes(n, "payments"))
                .collect();
            (!logs[0].is_empty() && logs.iter().all(|l| *l == logs[0])).then_some(logs[0].len())
        },
    );
    assert!(replicated > 0);

    // alice is authenticated but not a broker: a Fetch naming a replica id is refused, and the
    // partition's high watermark does not move.
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.listeners["INTERNAL"].clone())
        .collect();
    let end_before = end_offset(&addrs, &ca.pem).await;
    let mut alice = login(&bootstrap, &ca.pem, "alice", "alice-secret").await;
    let forged = FetchRequest::default()
        .with_replica_id(BrokerId(2))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("payments")))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(1_000_000)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let answer = alice.call(11, &forged).await.unwrap();
    let partition = &answer.responses[0].partitions[0];
    assert_eq!(partition.error_code, 29, "TOPIC_AUTHORIZATION_FAILED");
    assert!(
        partition.records.as_ref().is_none_or(|r| r.is_empty()),
        "no records"
    );
    assert_eq!(
        end_offset(&addrs, &ca.pem).await,
        end_before,
        "the high watermark did not move"
    );
    assert_eq!(end_before, 200);
    // The controller listener reads nothing from a plaintext peer, nor from one whose
    // certificate another CA signed.
    for controller in &controllers {
        let mut plain = tokio::net::TcpStream::connect(controller).await.unwrap();
        let status = br#""Status""#;
        let mut frame = (status.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(status);
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = plain.write_all(&frame).await;
        let mut answer = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(15), plain.read(&mut answer)).await;
        // Closed, or a TLS alert record (content type 21): never an answer.
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))) || answer[0] == 21,
            "a plaintext peer got {read:?} {answer:?} from the controller listener"
        );
    }
    let stranger_ca = Ca::new(dir.path(), "stranger-ca");
    let stranger = stranger_ca.issue(&Request {
        name: "stranger",
        subject: &[("CN", "stranger")],
        server: true,
        days: 30,
        serial: 9,
    });
    let refused = match certs::connect(&controllers[0], &ca.pem, Some(&stranger)).await {
        Err(_) => true,
        Ok(mut tls) => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tls.write_all(&[0, 0, 0, 8]).await;
            let _ = tls.write_all(br#""Status""#).await;
            let mut answer = [0u8; 4];
            matches!(
                tokio::time::timeout(Duration::from_secs(15), tls.read(&mut answer)).await,
                Ok(Ok(0)) | Ok(Err(_))
            )
        }
    };
    assert!(refused, "a certificate of another CA is refused");

    // Every node's admin API answers for the cluster, each broker's traffic read from the
    // others' over https with the inter-broker user's password. alice only reads.
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("broker:broker-secret")
    );
    for node in &nodes {
        let cluster = admin_get(&node.admin_addr, &ca.pem, "/v1/cluster", &auth).await;
        let brokers = cluster["brokers"].as_array().unwrap();
        assert_eq!(brokers.len(), 3, "{cluster}");
        assert!(
            brokers.iter().all(|b| b["bytes_in"].is_u64()),
            "every broker's traffic: {cluster}"
        );
    }
    let alice = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:alice-secret")
    );
    let me = admin_get(&nodes[1].admin_addr, &ca.pem, "/v1/whoami", &alice).await;
    assert_eq!(me["role"], "viewer", "{me}");

    // A renewed certificate, written over the nodes' keystore, is served on the controller
    // listener without a restart, and the cluster goes on committing with it.
    let renewed = ca.issue(&Request {
        name: "broker",
        subject: &[("CN", "localhost")],
        server: true,
        days: 60,
        serial: 2,
    });
    let wanted = certs::der(&renewed.certificate);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let served = certs::connect(&controllers[0], &ca.pem, Some(&renewed))
            .await
            .ok()
            .and_then(|tls| Some(tls.get_ref().1.peer_certificates()?[0].to_vec()));
        if served.as_ref() == Some(&wanted) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed controller certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 200..250 {
        let value = n.to_string();
        producer
            .send(BaseRecord::<(), str>::to("payments").payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let created = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "topic",
            "create",
            "after-renewal",
            "--bootstrap",
            &bootstrap,
        ])
        .arg("--command-config")
        .arg(&admin_config)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "the controllers commit after the renewal: {}",
        String::from_utf8_lossy(&created.stderr)
    );

    let log = nodes.iter().map(|n| n.log()).collect::<String>();
    assert!(log.contains("controller connection refused"), "{log}");
    assert!(
        log.contains("denied ClusterAction on Cluster 'kafka-cluster'"),
        "{log}"
    );
}

/// A TLS connection logged in with SASL PLAIN.
/// `GET path` on the admin API at `admin` over https, as `authorization`: the JSON answer.
async fn admin_get(
    admin: &str,
    ca: &std::path::Path,
    path: &str,
    authorization: &str,
) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = certs::connect(admin, ca, None).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\nAuthorization: {authorization}\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).unwrap()
}

async fn login(addr: &str, ca: &std::path::Path, user: &str, password: &str) -> Conn {
    let tls = certs::connect(addr, ca, None).await.unwrap();
    let mut conn = Conn::over(tls);
    let handshake = conn
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await
        .unwrap();
    assert_eq!(handshake.error_code, 0);
    let token = format!("\0{user}\0{password}").into_bytes();
    let done = conn
        .call(
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(token.into()),
        )
        .await
        .unwrap();
    assert_eq!(done.error_code, 0, "{user} logs in");
    conn
}

/// The high watermark of payments-0, from its leader.
async fn end_offset(addrs: &[String], ca: &std::path::Path) -> i64 {
    use kafka_protocol::messages::ListOffsetsRequest;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("payments")))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    for addr in addrs {
        let mut conn = login(addr, ca, "broker", "broker-secret").await;
        let answer = conn.call(7, &request).await.unwrap();
        let p = &answer.topics[0].partitions[0];
        if p.error_code == 0 {
            return p.offset;
        }
    }
    panic!("no broker leads payments-0");
}
