//! Consumer groups with real clients: librdkafka consumers (and a kcat process, so that one
//! member can die without a LeaveGroup) share a topic, rebalance when members leave or die,
//! and resume from offsets committed before a broker crash.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{BrokerProcess, client, create_topic};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "events";
const PARTITIONS: i32 = 6;
const GROUP: &str = "workers";
/// The broker's minimum, so that a dead member is noticed quickly.
const SESSION_TIMEOUT_MS: &str = "6000";

/// Records consumed by every member: (partition, offset).
type Seen = Arc<Mutex<BTreeSet<(i32, i64)>>>;

/// What a member's rebalance callbacks saw.
#[derive(Default)]
struct Events {
    /// Rebalance callbacks (assign or revoke).
    rebalances: AtomicUsize,
    /// Partitions revoked, summed over all revocations.
    revoked: AtomicUsize,
}

struct Observed(Arc<Events>);

impl ClientContext for Observed {}

impl ConsumerContext for Observed {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.0.rebalances.fetch_add(1, Ordering::SeqCst);
        if let Rebalance::Revoke(partitions) = rebalance {
            self.0
                .revoked
                .fetch_add(partitions.count(), Ordering::SeqCst);
        }
    }
}

/// A librdkafka group member polling on its own thread, committing after processing.
struct Member {
    events: Arc<Events>,
    stop: Arc<AtomicBool>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn start(name: &'static str, addr: &str, seen: &Seen, strategy: &str) -> Self {
        Self::start_with(
            name,
            addr,
            seen,
            &[("partition.assignment.strategy", strategy)],
        )
    }

    fn start_with(name: &'static str, addr: &str, seen: &Seen, settings: &[(&str, &str)]) -> Self {
        let mut config = client(addr);
        config
            .set("group.id", GROUP)
            .set("client.id", name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", SESSION_TIMEOUT_MS)
            .set("heartbeat.interval.ms", "500");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let events = Arc::new(Events::default());
        let consumer: BaseConsumer<Observed> = config
            .create_with_context(Observed(events.clone()))
            .expect("consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let thread = {
            let (stop, assignment, seen) = (stop.clone(), assignment.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut processed = false;
                    if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                        let message = message.expect("consume");
                        seen.lock()
                            .unwrap()
                            .insert((message.partition(), message.offset()));
                        processed = true;
                    }
                    if processed {
                        // Commit only what was processed (the consumer's position).
                        let _ = consumer.commit_consumer_state(CommitMode::Sync);
                    }
                    let owned: BTreeSet<i32> = consumer
                        .assignment()
                        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    *assignment.lock().unwrap() = owned;
                }
                // Dropping the consumer closes it: LeaveGroup.
                drop(consumer);
            })
        };
        Self {
            events,
            stop,
            assignment,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
    }

    /// Closes the consumer (LeaveGroup) and waits for its thread.
    fn leave(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A kcat balanced consumer in its own process, printing `partition offset` per record.
struct KcatMember {
    child: Child,
    reader: Option<JoinHandle<()>>,
}

impl KcatMember {
    fn start(addr: &str, seen: &Seen) -> Self {
        let mut child = Command::new("kcat")
            .args(["-b", addr, "-G", GROUP, TOPIC, "-q", "-u", "-f", "%p %o\\n"])
            .args(["-X", "auto.offset.reset=earliest"])
            .args(["-X", &format!("session.timeout.ms={SESSION_TIMEOUT_MS}")])
            .args(["-X", "heartbeat.interval.ms=500"])
            .args(["-X", "client.id=kcat"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kcat is installed (scripts/test.sh installs it)");
        let stdout = child.stdout.take().unwrap();
        let seen = seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                if let (Some(p), Some(o)) = (parts.next(), parts.next())
                    && let (Ok(p), Ok(o)) = (p.parse(), o.parse())
                {
                    seen.lock().unwrap().insert((p, o));
                }
            }
        });
        Self {
            child,
            reader: Some(reader),
        }
    }

    /// kill -9: no LeaveGroup, the coordinator must notice the silence.
    fn kill(mut self) {
        self.child.kill().expect("kill kcat");
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for KcatMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `count` records round-robin over the partitions; returns (partition, offset) of each.
async fn produce(addr: &str, count: usize) -> BTreeSet<(i32, i64)> {
    let producer: FutureProducer = client(addr).set("acks", "all").create().unwrap();
    let mut pending = Vec::new();
    for i in 0..count {
        let value = format!("record-{i}");
        let record = FutureRecord::<(), _>::to(TOPIC)
            .partition(i as i32 % PARTITIONS)
            .payload(&value);
        pending.push(producer.send_result(record).expect("queued"));
    }
    let mut produced = BTreeSet::new();
    for delivery in pending {
        let delivered = delivery.await.expect("delivery").expect("acknowledged");
        produced.insert((delivered.partition, delivered.offset));
    }
    produced
}

/// Waits until `done` holds, or fails with `what`.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

fn all_seen(seen: &Seen, produced: &BTreeSet<(i32, i64)>) -> bool {
    let seen = seen.lock().unwrap();
    produced.iter().all(|r| seen.contains(r))
}

/// Committed offsets of the group, per partition, read with a fresh client.
fn committed(addr: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = client(addr).set("group.id", GROUP).create().unwrap();
    let mut wanted = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        wanted.add_partition(TOPIC, p);
    }
    consumer
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn members_share_partitions_and_take_over_on_leave_and_death() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=500"],
    );
    create_topic(&broker.addr, TOPIC, PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();

    let a = Member::start("a", &broker.addr, &seen, "range");
    let b = Member::start("b", &broker.addr, &seen, "range");
    let kcat = KcatMember::start(&broker.addr, &seen);
    let took = wait_for(
        "three members with two partitions each",
        Duration::from_secs(30),
        || a.assignment().len() == 2 && b.assignment().len() == 2,
    );
    eprintln!("first rebalance of 3 members settled in {took:?}");
    let (a_first, b_first) = (a.assignment(), b.assignment());
    assert!(
        a_first.is_disjoint(&b_first),
        "{a_first:?} and {b_first:?} overlap"
    );

    let mut produced = produce(&broker.addr, 600).await;
    wait_for("the first 600 records", Duration::from_secs(30), || {
        all_seen(&seen, &produced)
    });

    // b leaves cleanly: a and kcat take its partitions.
    let left = Instant::now();
    b.leave();
    wait_for(
        "a to take three partitions",
        Duration::from_secs(30),
        || a.assignment().len() == 3,
    );
    eprintln!(
        "rebalance after a LeaveGroup: {:?} until the survivors owned all partitions",
        left.elapsed()
    );
    produced.extend(produce(&broker.addr, 600).await);
    wait_for("600 more records", Duration::from_secs(30), || {
        all_seen(&seen, &produced)
    });

    // kcat dies without a word: its partitions move once its session times out.
    let killed = Instant::now();
    kcat.kill();
    let moved = wait_for(
        "a to own every partition after kcat's session expired",
        Duration::from_secs(30),
        || a.assignment().len() == PARTITIONS as usize,
    );
    assert!(
        moved >= Duration::from_secs(3),
        "partitions moved after {moved:?}, before any session timeout could expire"
    );
    eprintln!(
        "rebalance after kill -9: {:?} (session.timeout.ms={SESSION_TIMEOUT_MS})",
        killed.elapsed()
    );
    produced.extend(produce(&broker.addr, 600).await);
    wait_for("every produced record", Duration::from_secs(30), || {
        all_seen(&seen, &produced)
    });

    // Committed after processing: nothing skipped, and the group is at the end of the log.
    wait_for("commits to reach the end", Duration::from_secs(20), || {
        committed(&broker.addr).values().sum::<i64>() == produced.len() as i64
    });
    a.leave();
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_a_broker_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=0"],
    );
    create_topic(&broker.addr, TOPIC, PARTITIONS, &[]).await;
    let produced = produce(&broker.addr, 300).await;
    let seen: Seen = Arc::default();
    let member = Member::start("a", &broker.addr, &seen, "range");
    wait_for("all 300 records", Duration::from_secs(30), || {
        all_seen(&seen, &produced)
    });
    member.leave();
    let before = committed(&broker.addr);
    assert_eq!(before.values().sum::<i64>(), 300, "{before:?}");

    // kill -9: acknowledged commits were fsync'd, so they are all there after the restart.
    broker.kill();
    broker.restart("127.0.0.1:0");
    assert_eq!(committed(&broker.addr), before);

    // A new member resumes after the commits: it sees only new records.
    let more = produce(&broker.addr, 60).await;
    let resumed: Seen = Arc::default();
    let member = Member::start("b", &broker.addr, &resumed, "range");
    wait_for("the 60 new records", Duration::from_secs(30), || {
        all_seen(&resumed, &more)
    });
    std::thread::sleep(Duration::from_millis(500));
    member.leave();
    let resumed = resumed.lock().unwrap();
    assert!(
        resumed.is_disjoint(&produced),
        "records consumed again after the restart: {:?}",
        resumed.intersection(&produced).take(5).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_restarting_within_its_session_causes_no_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=500"],
    );
    create_topic(&broker.addr, TOPIC, PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();
    let statics = |instance| {
        vec![
            ("group.instance.id", instance),
            ("session.timeout.ms", "10000"),
        ]
    };
    let a = Member::start_with("a", &broker.addr, &seen, &statics("a-1"));
    let b = Member::start_with("b", &broker.addr, &seen, &statics("b-1"));
    wait_for(
        "both static members assigned",
        Duration::from_secs(30),
        || a.assignment().len() == 3 && b.assignment().len() == 3,
    );
    let a_partitions = a.assignment();
    let b_rebalances = b.events.rebalances.load(Ordering::SeqCst);

    // A static member does not leave on close; its successor takes its place.
    a.leave();
    let a = Member::start_with("a", &broker.addr, &seen, &statics("a-1"));
    wait_for(
        "the restarted member's assignment",
        Duration::from_secs(30),
        || a.assignment().len() == 3,
    );
    assert_eq!(
        a.assignment(),
        a_partitions,
        "it got its old partitions back"
    );
    // Long enough for a rebalance to have reached b through its heartbeats.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        b.events.rebalances.load(Ordering::SeqCst),
        b_rebalances,
        "b saw a rebalance"
    );
    assert_eq!(b.assignment().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn cooperative_sticky_rebalances_move_only_what_must_move() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=500"],
    );
    create_topic(&broker.addr, TOPIC, PARTITIONS, &[]).await;
    let seen: Seen = Arc::default();
    let a = Member::start("a", &broker.addr, &seen, "cooperative-sticky");
    let b = Member::start("b", &broker.addr, &seen, "cooperative-sticky");
    wait_for(
        "a and b with three partitions each",
        Duration::from_secs(30),
        || a.assignment().len() == 3 && b.assignment().len() == 3,
    );
    let (a_before, b_before) = (a.assignment(), b.assignment());
    let revoked_before =
        a.events.revoked.load(Ordering::SeqCst) + b.events.revoked.load(Ordering::SeqCst);

    let c = Member::start("c", &broker.addr, &seen, "cooperative-sticky");
    wait_for("two partitions each", Duration::from_secs(30), || {
        a.assignment().len() == 2 && b.assignment().len() == 2 && c.assignment().len() == 2
    });
    assert!(a.assignment().is_subset(&a_before), "a kept its partitions");
    assert!(b.assignment().is_subset(&b_before), "b kept its partitions");
    // Incremental: exactly the two partitions that moved to c were revoked, not all six.
    let revoked = a.events.revoked.load(Ordering::SeqCst) + b.events.revoked.load(Ordering::SeqCst);
    assert_eq!(revoked - revoked_before, 2);

    let produced = produce(&broker.addr, 300).await;
    wait_for("every record", Duration::from_secs(30), || {
        all_seen(&seen, &produced)
    });
}
