//! Apache Kafka as a cluster link's source: a single KRaft node run from Kafka's own jars
//! (Maven fetches them once into the target directory). A Strata cluster mirrors its topic
//! byte for byte at the same offsets and copies its consumer group's offsets, so a migration
//! from Kafka keeps every offset: after `strata mirror failover` the group resumes on Strata
//! where it stopped on Kafka.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::BrokerProcess;
use common::cluster::{free_addr, wait_until};
use common::link::{fetched_batches, strata};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const KAFKA_VERSION: &str = "4.1.0";
const TOPIC: &str = "orders";
const PARTITIONS: i32 = 2;
const GROUP: &str = "billing";

/// Kafka's jars, fetched once per target directory.
fn kafka_classpath() -> String {
    let lib = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kafka-{KAFKA_VERSION}"));
    if !lib.join(format!("kafka_2.13-{KAFKA_VERSION}.jar")).exists() {
        let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/pom.xml");
        let status = Command::new("mvn")
            .args(["-q", "-B", "-f"])
            .arg(pom)
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", lib.display()))
            .arg(format!("-Dkafka.version={KAFKA_VERSION}"))
            .status()
            .expect("mvn (installed by scripts/test.sh)");
        assert!(status.success(), "fetching Kafka's jars failed");
    }
    format!("{}/*", lib.display())
}

/// A single-node KRaft Kafka, killed when dropped.
struct KafkaNode {
    child: Child,
    addr: String,
}

impl KafkaNode {
    fn start(dir: &Path) -> Self {
        let classpath = kafka_classpath();
        let (addr, controller) = (free_addr(), free_addr());
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("server.properties");
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id=1\n\
                 controller.quorum.bootstrap.servers={controller}\n\
                 listeners=PLAINTEXT://{addr},CONTROLLER://{controller}\n\
                 advertised.listeners=PLAINTEXT://{addr}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\n\
                 offsets.topic.replication.factor=1\noffsets.topic.num.partitions=3\n\
                 transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let formatted = Command::new("java")
            .args([
                "-cp",
                &classpath,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
            ])
            .args(["-t", "KafkaSourceClusterAAAA", "-c"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(formatted.status.success(), "{formatted:?}");
        let child = Command::new("java")
            .args(["-Xmx512m", "-cp", &classpath, "kafka.Kafka"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Self { child, addr };
        wait_until("Kafka to answer", Duration::from_secs(60), || {
            let consumer: BaseConsumer = common::client(&node.addr).create().ok()?;
            consumer
                .fetch_metadata(None, Duration::from_secs(1))
                .ok()
                .filter(|m| !m.brokers().is_empty())
                .map(|_| ())
        });
        node
    }
}

impl Drop for KafkaNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn watermarks(addr: &str) -> Option<Vec<i64>> {
    let consumer: BaseConsumer = common::client(addr).create().unwrap();
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(TOPIC, p, Duration::from_secs(5))
                .ok()
                .map(|w| w.1)
        })
        .collect()
}

/// Joins the group, reads `count` records, commits; the positions committed.
fn read_and_commit(addr: &str, count: usize) -> Vec<i64> {
    let consumer: BaseConsumer = common::client(addr)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read < count {
        assert!(
            std::time::Instant::now() < deadline,
            "read {read} of {count}"
        );
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            read += 1;
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    let positions = consumer.position().unwrap();
    (0..PARTITIONS)
        .map(|p| {
            positions
                .find_partition(TOPIC, p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(0)
                .max(0)
        })
        .collect()
}

/// The group's committed offset per partition, -1 where it committed none.
fn committed_offsets(addr: &str) -> Vec<i64> {
    common::link::committed_offsets(addr, GROUP, TOPIC, PARTITIONS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_cluster_migrates_to_strata_with_every_offset() {
    let root = tempfile::tempdir().unwrap();
    let kafka = KafkaNode::start(&root.path().join("kafka"));
    let strata_node = BrokerProcess::start(&root.path().join("strata"), &[]);
    let admin: AdminClient<DefaultClientContext> = common::client(&kafka.addr).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))
                .set("retention.ms", "604800000")],
            &AdminOptions::new(),
        )
        .await
        .unwrap()[0]
        .as_ref()
        .expect("created on Kafka");
    let producer: FutureProducer = common::client(&kafka.addr)
        .set("enable.idempotence", "true")
        .set("compression.type", "zstd")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for n in 0..2000u32 {
        let text = n.to_string();
        deliveries.push(
            producer
                .send_result(
                    FutureRecord::to(TOPIC)
                        .key(&text)
                        .payload(&text)
                        .partition((n % PARTITIONS as u32) as i32),
                )
                .expect("queued"),
        );
    }
    for delivery in deliveries {
        delivery.await.unwrap().expect("acknowledged by Kafka");
    }
    tokio::task::spawn_blocking({
        let addr = kafka.addr.clone();
        move || read_and_commit(&addr, 700)
    })
    .await
    .unwrap();
    let committed = committed_offsets(&kafka.addr);
    assert_eq!(committed.iter().map(|o| o.max(&0)).sum::<i64>(), 700);

    let created = strata(&[
        "link",
        "create",
        "from-kafka",
        "--source",
        &kafka.addr,
        "--groups",
        GROUP,
        "--offset-sync-ms",
        "500",
        "--admin",
        &strata_node.admin_addr,
    ]);
    assert!(created.status.success(), "{created:?}");
    let ends = watermarks(&kafka.addr).unwrap();
    assert_eq!(ends.iter().sum::<i64>(), 2000);
    wait_until(
        "the mirror caught up with Kafka",
        Duration::from_secs(60),
        || (watermarks(&strata_node.addr)? == ends).then_some(()),
    );
    for partition in 0..PARTITIONS {
        let mirrored = fetched_batches(&strata_node.addr, TOPIC, partition).await;
        let original = fetched_batches(&kafka.addr, TOPIC, partition).await;
        assert!(!original.is_empty());
        assert!(
            mirrored == original,
            "partition {partition}: Kafka's batches and the mirror's differ"
        );
    }
    wait_until(
        "the group's offsets copied",
        Duration::from_secs(30),
        || (committed_offsets(&strata_node.addr) == committed).then_some(()),
    );
    // Cut over: Strata takes the writes and the group goes on where it stopped on Kafka.
    drop(kafka);
    let failover = strata(&[
        "mirror",
        "failover",
        "--all",
        "--link",
        "from-kafka",
        "--admin",
        &strata_node.admin_addr,
    ]);
    assert!(failover.status.success(), "{failover:?}");
    let resumed = tokio::task::spawn_blocking({
        let addr = strata_node.addr.clone();
        move || read_and_commit(&addr, 1300)
    })
    .await
    .unwrap();
    assert_eq!(
        resumed, ends,
        "the rest of the records, from the copied offsets"
    );
}
