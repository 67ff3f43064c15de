//! SASL with real clients: librdkafka with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over
//! SASL_SSL and SASL_PLAINTEXT, kcat over SASL_SSL, users made with `strata user`, failed
//! logins that look alike whatever the cause, re-authentication (KIP-368), and credentials
//! that survive a restart.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use common::certs::{Ca, Issued, Request};
use common::wire::{Conn, scram_exchange};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, MetadataRequest,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use strata_api::security::scram::{ScramClient, ScramMechanism};

/// The failure delay the brokers here use: long enough to measure.
const DELAY_MS: u64 = 300;

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
    server: Issued,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(&Request {
        name: "server",
        subject: &[("CN", "localhost")],
        server: true,
        days: 30,
        serial: 1,
    });
    std::fs::write(dir.path().join("plain-users"), "alice:alice-secret\n").unwrap();
    Setup { dir, ca, server }
}

fn start(setup: &Setup, extra: &[&str]) -> BrokerProcess {
    let keystore = format!("ssl.keystore.location={}", setup.server.keystore.display());
    let users = format!(
        "sasl.plain.users.file={}",
        setup.dir.path().join("plain-users").display()
    );
    let delay = format!("connection.failed.authentication.delay.ms={DELAY_MS}");
    let mut settings = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        &keystore,
        &users,
        &delay,
    ];
    settings.extend_from_slice(extra);
    BrokerProcess::start(&setup.dir.path().join("data"), &settings)
}

fn strata(bootstrap: &str, args: &[&str], stdin: &str) -> Output {
    common::strata_tool(bootstrap, args, stdin)
}

fn create_user(broker: &BrokerProcess, name: &str, password: &str) {
    let out = strata(
        &broker.addr,
        &["user", "create", name],
        &format!("{password}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sasl(
    addr: &str,
    setup: &Setup,
    protocol: &str,
    mechanism: &str,
    user: &str,
    password: &str,
) -> ClientConfig {
    let mut config = common::client(addr);
    config
        .set("security.protocol", protocol)
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    if protocol == "sasl_ssl" {
        config.set("ssl.ca.location", setup.ca.pem.display().to_string());
    }
    config
}

/// Produces `n` records to `topic` and reads them back with `config`.
fn round_trip(config: &ClientConfig, topic: &str, n: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = config.create().unwrap();
    for i in 0..n {
        let value = format!("{topic}-{i}");
        producer
            .send(BaseRecord::<(), str>::to(topic).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", topic)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while read < n && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            assert_eq!(
                message.payload(),
                Some(format!("{topic}-{read}").as_bytes())
            );
            read += 1;
        }
    }
    assert_eq!(read, n, "{topic}: every record read back");
}

/// Whether a client with `config` gets Metadata within a few seconds.
fn reaches(config: &ClientConfig) -> bool {
    let consumer: BaseConsumer = config.clone().create().expect("client");
    consumer
        .fetch_metadata(None, Duration::from_secs(4))
        .is_ok()
}

#[test]
fn clients_authenticate_with_plain_and_scram() {
    let setup = setup();
    let broker = start(&setup, &[]);
    create_user(&broker, "bob", "bob-secret");
    let listed = strata(&broker.addr, &["user", "list"], "");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("bob")
            && listed.contains("SCRAM-SHA-256")
            && listed.contains("SCRAM-SHA-512"),
        "{listed}"
    );
    let tls = &broker.listeners["SASL_SSL"];
    let plain = &broker.listeners["SASL_PLAINTEXT"];
    round_trip(
        &sasl(tls, &setup, "sasl_ssl", "PLAIN", "alice", "alice-secret"),
        "plain-ssl",
        50,
    );
    round_trip(
        &sasl(
            tls,
            &setup,
            "sasl_ssl",
            "SCRAM-SHA-256",
            "bob",
            "bob-secret",
        ),
        "scram256-ssl",
        50,
    );
    round_trip(
        &sasl(
            tls,
            &setup,
            "sasl_ssl",
            "SCRAM-SHA-512",
            "bob",
            "bob-secret",
        ),
        "scram512-ssl",
        50,
    );
    round_trip(
        &sasl(
            plain,
            &setup,
            "sasl_plaintext",
            "SCRAM-SHA-512",
            "bob",
            "bob-secret",
        ),
        "scram512",
        50,
    );
    assert!(!reaches(&sasl(
        tls,
        &setup,
        "sasl_ssl",
        "SCRAM-SHA-512",
        "bob",
        "wrong"
    )));
    assert!(!reaches(&sasl(
        tls, &setup, "sasl_ssl", "PLAIN", "alice", "wrong"
    )));
    // A client without SASL on a SASL port gets nothing but ApiVersions.
    assert!(!reaches(&common::client(plain)));

    // kcat (Debian's librdkafka 2.0.2) over SASL_SSL with SCRAM-SHA-256.
    let kcat = Command::new("kcat")
        .args(["-b", tls, "-L", "-m", "10"])
        .args([
            "-X",
            "security.protocol=SASL_SSL",
            "-X",
            "sasl.mechanisms=SCRAM-SHA-256",
        ])
        .args(["-X", "sasl.username=bob", "-X", "sasl.password=bob-secret"])
        .arg("-X")
        .arg(format!("ssl.ca.location={}", setup.ca.pem.display()))
        .output()
        .expect("kcat is installed (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&kcat.stdout);
    assert!(
        kcat.status.success() && text.contains("scram256-ssl"),
        "{text}{}",
        String::from_utf8_lossy(&kcat.stderr)
    );

    let scrape = common::metrics::scrape(&broker.admin_addr, false);
    let count = |mechanism: &str, result: &str| {
        scrape.sum(
            "strata_sasl_authentications_total",
            &[("mechanism", mechanism), ("result", result)],
        )
    };
    assert!(count("PLAIN", "ok") >= 1.0 && count("SCRAM-SHA-512", "ok") >= 1.0);
    assert!(count("PLAIN", "failed") >= 1.0 && count("SCRAM-SHA-512", "failed") >= 1.0);
}

/// Runs a SCRAM-SHA-256 exchange on a raw connection: what the broker sent first (its
/// server-first message, salt included), and the final SaslAuthenticate error and message.
async fn scram_attempt(
    addr: &str,
    user: &str,
    password: &str,
) -> (String, i16, Option<String>, Duration) {
    let mut conn = Conn::open(addr).await;
    let handshake = conn
        .call(
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256")),
        )
        .await
        .unwrap();
    assert_eq!(handshake.error_code, 0);
    let client = ScramClient::new(ScramMechanism::Sha256, user, password);
    let first = conn
        .call(
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(client.first().into()),
        )
        .await
        .unwrap();
    assert_eq!(first.error_code, 0, "the exchange goes on for any user");
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    let (last, _) = client.last(server_first.as_bytes()).unwrap();
    let started = Instant::now();
    let answer = conn
        .call(
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(last.into()),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        conn.is_closed().await,
        "a failed login closes the connection"
    );
    // The salt and iterations, without the nonce (which differs each time).
    let shown = server_first.split_once(",s=").unwrap().1.to_owned();
    (
        shown,
        answer.error_code,
        answer.error_message.map(|m| m.to_string()),
        took,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_user_look_alike() {
    let setup = setup();
    let broker = start(&setup, &[]);
    create_user(&broker, "bob", "bob-secret");
    let addr = broker.listeners["SASL_PLAINTEXT"].clone();
    let (_, wrong_code, wrong_message, wrong_took) = scram_attempt(&addr, "bob", "nope").await;
    let (salt, unknown_code, unknown_message, unknown_took) =
        scram_attempt(&addr, "mallory", "nope").await;
    let (salt_again, ..) = scram_attempt(&addr, "mallory", "other").await;
    assert_eq!((wrong_code, unknown_code), (58, 58));
    assert_eq!(wrong_message, unknown_message);
    assert_eq!(
        wrong_message.as_deref(),
        Some(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        )
    );
    assert_eq!(
        salt, salt_again,
        "an unknown user's salt is the same each time"
    );
    assert!(salt.ends_with(",i=4096"), "{salt}");
    for took in [wrong_took, unknown_took] {
        assert!(
            took >= Duration::from_millis(DELAY_MS),
            "answered after {took:?}"
        );
    }
    // The right password works on the same listener, through the same path.
    let (mut conn, done, expected) =
        scram_exchange(&addr, ScramMechanism::Sha256, "bob", "bob-secret").await;
    assert_eq!(done.error_code, 0);
    assert_eq!(
        done.auth_bytes.to_vec(),
        expected,
        "the server proves it knows the password"
    );
    let metadata = conn.call(12, &MetadataRequest::default()).await;
    assert!(metadata.is_some(), "authenticated requests are served");

    // Requests other than ApiVersions before authentication close the connection.
    let mut early = Conn::open(&addr).await;
    assert!(early.call(12, &MetadataRequest::default()).await.is_none());
    // A mechanism the listener does not enable: UNSUPPORTED_SASL_MECHANISM and the list.
    let mut other = Conn::open(&addr).await;
    let refused = other
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
        )
        .await
        .unwrap();
    assert_eq!(refused.error_code, 33);
    assert_eq!(refused.mechanisms.len(), 3);
    // SASL on a listener without it: ILLEGAL_SASL_STATE.
    let mut plaintext = Conn::open(&broker.addr).await;
    let illegal = plaintext
        .call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await
        .unwrap();
    assert_eq!(illegal.error_code, 34);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_and_clients_reauthenticate() {
    let setup = setup();
    let broker = start(&setup, &["connections.max.reauth.ms=2000"]);
    create_user(&broker, "bob", "bob-secret");
    let addr = broker.listeners["SASL_PLAINTEXT"].clone();

    // The session lifetime is announced, and an expired session serves nothing more.
    let (mut conn, done, _) =
        scram_exchange(&addr, ScramMechanism::Sha512, "bob", "bob-secret").await;
    assert_eq!(done.error_code, 0);
    assert_eq!(done.session_lifetime_ms, 2000);
    assert!(conn.call(12, &MetadataRequest::default()).await.is_some());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(
        conn.call(12, &MetadataRequest::default()).await.is_none(),
        "an expired session is closed"
    );

    // librdkafka re-authenticates on its connections and keeps consuming past several lifetimes.
    let log_before = broker.log().len();
    let config = sasl(
        &addr,
        &setup,
        "sasl_plaintext",
        "SCRAM-SHA-512",
        "bob",
        "bob-secret",
    );
    let producer: ThreadedProducer<DefaultProducerContext> = config.create().unwrap();
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "reauth")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    producer
        .send(BaseRecord::<(), str>::to("reauth").payload("0"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("reauth", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let scrape = || {
        common::metrics::scrape(&broker.admin_addr, false).sum(
            "strata_sasl_authentications_total",
            &[("mechanism", "SCRAM-SHA-512"), ("result", "ok")],
        )
    };
    let before = scrape();
    let (mut sent, mut read) = (1, 0);
    let end = Instant::now() + Duration::from_secs(7);
    while Instant::now() < end {
        producer
            .send(BaseRecord::<(), str>::to("reauth").payload(&sent.to_string()))
            .map_err(|(e, _)| e)
            .unwrap();
        sent += 1;
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            assert_eq!(
                message.unwrap().offset(),
                read,
                "no record lost or repeated"
            );
            read += 1;
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while read < sent && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            assert_eq!(message.unwrap().offset(), read);
            read += 1;
        }
    }
    assert_eq!(
        read, sent,
        "every record produced across re-authentications was read"
    );
    // Two clients over 7 s with 2 s sessions: each connection authenticated again and again.
    let again = scrape() - before;
    assert!(again >= 4.0, "{again} re-authentications");
    let log = broker.log();
    assert!(
        !log[log_before..].contains("session expired"),
        "no client was cut off:\n{}",
        &log[log_before..]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_validated_and_survive_a_restart() {
    let setup = setup();
    let mut broker = start(&setup, &[]);
    let mut conn = Conn::open(&broker.addr).await;
    let upsert = |name: &str, mechanism: i8, iterations: i32| {
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(name.to_owned()))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(vec![1; 16].into())
            .with_salted_password(vec![2; 32].into())
    };
    let alter = AlterUserScramCredentialsRequest::default()
        .with_upsertions(vec![
            upsert("few", 1, 4095),
            upsert("many", 2, 16385),
            upsert("odd", 9, 4096),
            upsert("twice", 1, 4096),
            upsert("twice", 2, 4096),
            upsert("", 1, 4096),
        ])
        .with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(StrBytes::from_static_str("nobody"))
                .with_mechanism(1),
        ]);
    let answer = conn.call(0, &alter).await.unwrap();
    let code = |user: &str| {
        answer
            .results
            .iter()
            .find(|r| r.user.as_str() == user)
            .unwrap_or_else(|| panic!("no result for '{user}'"))
            .error_code
    };
    assert_eq!(code("few"), 93);
    assert_eq!(code("many"), 93);
    assert_eq!(code("odd"), 33);
    assert_eq!(code("twice"), 92);
    assert_eq!(code(""), 93);
    assert_eq!(code("nobody"), 91);
    let describe = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
        UserName::default().with_name(StrBytes::from_static_str("nobody")),
    ]));
    let described = conn.call(0, &describe).await.unwrap();
    assert_eq!(described.results[0].error_code, 91);

    create_user(&broker, "carol", "carol-secret");
    let tls = |broker: &BrokerProcess| broker.listeners["SASL_SSL"].clone();
    assert!(reaches(&sasl(
        &tls(&broker),
        &setup,
        "sasl_ssl",
        "SCRAM-SHA-512",
        "carol",
        "carol-secret"
    )));
    broker.stop();
    broker.restart("127.0.0.1:0");
    assert!(
        reaches(&sasl(
            &tls(&broker),
            &setup,
            "sasl_ssl",
            "SCRAM-SHA-512",
            "carol",
            "carol-secret"
        )),
        "credentials survive a restart"
    );
    let out = strata(&broker.addr, &["user", "delete", "carol"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!reaches(&sasl(
        &tls(&broker),
        &setup,
        "sasl_ssl",
        "SCRAM-SHA-512",
        "carol",
        "carol-secret"
    )));
}

#[test]
fn the_tools_log_in_with_a_command_config() {
    let setup = setup();
    let broker = start(&setup, &[]);
    create_user(&broker, "bob", "bob-secret");
    let tls = broker.listeners["SASL_SSL"].clone();
    let properties = |password: &str| {
        let path = setup
            .dir
            .path()
            .join(format!("client-{password}.properties"));
        std::fs::write(
            &path,
            format!(
                "# as kafka-topics.sh --command-config reads it\n\
                 security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
                 sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"bob\" password=\"{password}\";\n\
                 ssl.truststore.type=PEM\nssl.truststore.location={}\n",
                setup.ca.pem.display()
            ),
        )
        .unwrap();
        path
    };
    let good = properties("bob-secret");
    let run = |config: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .args(["--bootstrap", &tls, "--command-config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let created = run(&good, &["topic", "create", "secured", "--partitions", "2"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = run(&good, &["topic", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("secured"));
    let users = run(&good, &["user", "list"]);
    assert!(String::from_utf8_lossy(&users.stdout).contains("bob"));
    let refused = run(&properties("wrong"), &["topic", "list"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("SASL authentication as 'bob' failed") && err.contains("invalid credentials"),
        "{err}"
    );
}

/// A new cluster whose only Kafka listener is SASL_SSL with SCRAM: its users come from
/// `bootstrap.scram.users.file`, written with the cluster's first metadata, so the broker can
/// log in to itself (its admin API's cluster view) and clients from the start. The file is
/// read once: the node restarts without it.
#[test]
fn a_new_cluster_starts_with_the_scram_users_of_its_bootstrap_file() {
    let setup = setup();
    let users = setup.dir.path().join("bootstrap-users");
    std::fs::write(
        &users,
        "# first users\nbroker:broker-secret\nalice:alice-secret\n",
    )
    .unwrap();
    let keystore = format!("ssl.keystore.location={}", setup.server.keystore.display());
    let file = format!("bootstrap.scram.users.file={}", users.display());
    let settings = [
        "listeners=SASL_SSL://127.0.0.1:0",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"broker-secret\";",
        &format!("ssl.truststore.location={}", setup.ca.pem.display()),
        &keystore,
        &file,
    ];
    let mut broker = BrokerProcess::start(&setup.dir.path().join("data"), &settings);
    let alice = |addr: &str, password: &str| {
        sasl(addr, &setup, "sasl_ssl", "SCRAM-SHA-256", "alice", password)
    };
    let addr = broker.listeners["SASL_SSL"].clone();
    round_trip(&alice(&addr, "alice-secret"), "bootstrapped", 10);
    let view = |admin: &str| common::http_get(admin, "/v1/topics");
    let (status, topics) = view(&broker.admin_addr);
    assert_eq!(status, 200, "the broker logs in to itself: {topics}");
    assert!(topics.contains("bootstrapped"), "{topics}");

    // Once the cluster has formed, the file of passwords can go.
    std::fs::remove_file(&users).unwrap();
    broker.stop();
    broker.restart("127.0.0.1:0");
    let addr = broker.listeners["SASL_SSL"].clone();
    assert!(reaches(&alice(&addr, "alice-secret")), "the users stay");
    assert!(!reaches(&alice(&addr, "wrong")));
    assert_eq!(view(&broker.admin_addr).0, 200);
}
