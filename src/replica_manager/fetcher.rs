//! Follower fetching (Kafka's `ReplicaFetcherManager` and `ReplicaFetcherThread`): one task
//! per leader broker fetches every partition this broker follows from it, with the Fetch API
//! as a replica (v12: replica id, current leader epoch, last fetched epoch).
//!
//! A response's batches are appended byte for byte at the leader's offsets
//! ([`UnifiedLog::append_as_follower`](crate::log::UnifiedLog::append_as_follower)); for
//! topics that fsync before acknowledging they are fsync'd before the next fetch asks for the
//! offset after them, so the offset a follower fetches at is always durable on it, which is
//! what the leader's high watermark counts. A diverging epoch in the response truncates the
//! log to where the leader's history under that epoch ends (KIP-320); a fetch offset below the
//! leader's local log start starts the log over there. With nothing new, the leader parks the
//! fetch (long poll) until it has data.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cluster::configs::dynamic_rate;
use crate::kafka_client::Client;
use crate::metadata_cache::{MetadataCache, live_node};
use crate::partition::PartitionRef;

/// How long the leader may park a follower's fetch (`replica.fetch.wait.max.ms`).
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Bytes one partition may return per fetch (`replica.fetch.max.bytes`): above Kafka's 1 MiB,
/// as a follower here fsyncs what each fetch brought before the next, and fewer, larger
/// fetches share that cost.
const PARTITION_MAX_BYTES: i32 = 8 << 20;
/// Bytes one fetch response may hold (`replica.fetch.response.max.bytes`).
const RESPONSE_MAX_BYTES: i32 = 32 << 20;
/// Pause after a failed fetch or a partition error (`replica.fetch.backoff.ms`).
const BACKOFF: Duration = Duration::from_secs(1);
/// Longest a fetch request may take before the connection is dropped and made again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Error codes a follower's fetch can get.
const OFFSET_OUT_OF_RANGE: i16 = 1;
const OFFSET_MOVED_TO_TIERED_STORAGE: i16 = 109;
/// ListOffsets' timestamp for the first offset on the leader's local disk (KIP-405).
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

/// A partition this broker follows, and the leader epoch it follows it in.
#[derive(Debug, Clone)]
struct Followed {
    partition: PartitionRef,
    leader_epoch: i32,
    /// A partition error pauses it until this instant (or a new leader epoch).
    paused_until: Option<tokio::time::Instant>,
}

/// The partitions fetched from one leader, and the task fetching them.
#[derive(Debug)]
struct LeaderFetcher {
    partitions: Arc<Mutex<HashMap<(String, i32), Followed>>>,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Every follower fetcher of this broker, by leader.
#[derive(Debug)]
pub struct ReplicaFetcherManager {
    me: i32,
    metadata: Arc<MetadataCache>,
    fetchers: Mutex<HashMap<i32, LeaderFetcher>>,
}

impl ReplicaFetcherManager {
    /// A manager for broker `me`, finding leaders in `metadata`.
    pub fn new(me: i32, metadata: Arc<MetadataCache>) -> Self {
        Self {
            me,
            metadata,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    fn fetchers(&self) -> std::sync::MutexGuard<'_, HashMap<i32, LeaderFetcher>> {
        self.fetchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `partition` from `leader` in `leader_epoch`, moving it off any other leader's
    /// fetcher. Needs a tokio runtime (the fetcher is a task).
    pub fn follow(&self, partition: &PartitionRef, leader: i32, leader_epoch: i32) {
        let key = (partition.topic.clone(), partition.index);
        let mut fetchers = self.fetchers();
        for (id, fetcher) in fetchers.iter() {
            if *id != leader {
                lock(&fetcher.partitions).remove(&key);
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(topic = %partition.topic, partition = partition.index, "no runtime to fetch in");
            return;
        };
        let fetcher = fetchers.entry(leader).or_insert_with(|| {
            let partitions = Arc::new(Mutex::new(HashMap::new()));
            let changed = Arc::new(Notify::new());
            let task = runtime.spawn(fetch_loop(
                self.me,
                leader,
                Arc::clone(&self.metadata),
                Arc::clone(&partitions),
                Arc::clone(&changed),
            ));
            LeaderFetcher {
                partitions,
                changed,
                task,
            }
        });
        lock(&fetcher.partitions).insert(
            key,
            Followed {
                partition: Arc::clone(partition),
                leader_epoch,
                paused_until: None,
            },
        );
        fetcher.changed.notify_one();
    }

    /// Stops following a partition (it is led here now, or no longer hosted).
    pub fn unfollow(&self, topic: &str, index: i32) {
        let key = (topic.to_owned(), index);
        for fetcher in self.fetchers().values() {
            lock(&fetcher.partitions).remove(&key);
        }
    }

    /// Stops every fetcher.
    pub fn shutdown(&self) {
        for (_, fetcher) in self.fetchers().drain() {
            fetcher.task.abort();
        }
    }
}

impl Drop for ReplicaFetcherManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fetches from `leader` for as long as the task lives; sleeps while it follows nothing.
async fn fetch_loop(
    me: i32,
    leader: i32,
    metadata: Arc<MetadataCache>,
    partitions: Arc<Mutex<HashMap<(String, i32), Followed>>>,
    changed: Arc<Notify>,
) {
    let mut client: Option<Client> = None;
    let mut throttle = Throttle::default();
    loop {
        if lock(&partitions).is_empty() {
            client = None;
            changed.notified().await;
            continue;
        }
        let conn = match client.as_mut() {
            Some(conn) => conn,
            None => {
                let node = live_node(&metadata.image(), leader);
                let Some(node) = node else {
                    // The leader is fenced or gone: the image will move the partitions.
                    wait_or_change(&changed, BACKOFF).await;
                    continue;
                };
                let addr = format!("{}:{}", node.host, node.port);
                match Client::connect_as(&addr, "strata-replica-fetcher", REQUEST_TIMEOUT).await {
                    Ok(conn) => client.insert(conn),
                    Err(e) => {
                        tracing::warn!(leader, "cannot reach the leader to fetch from: {e:#}");
                        wait_or_change(&changed, BACKOFF).await;
                        continue;
                    }
                }
            }
        };
        let now = tokio::time::Instant::now();
        let mut batch: Vec<Followed> = lock(&partitions)
            .values()
            .filter(|f| f.paused_until.is_none_or(|t| t <= now))
            .cloned()
            .collect();
        let (throttled, rate) = throttled(&metadata, me, leader, &batch);
        if let Some(rate) = rate {
            throttle.refill(rate);
            if !throttle.open() {
                batch.retain(|f| !throttled.contains(&key_of(f)));
            }
        }
        if batch.is_empty() {
            let pause = rate.map_or(BACKOFF, |r| throttle.wait(r).min(BACKOFF));
            wait_or_change(&changed, pause).await;
            continue;
        }
        let request = fetch_request(me, &batch, |f| match rate {
            Some(rate) if throttled.contains(&key_of(f)) => {
                PARTITION_MAX_BYTES.min(rate.clamp(1, i32::MAX as u64) as i32)
            }
            _ => PARTITION_MAX_BYTES,
        });
        let response = match conn.call::<FetchRequest>(12, &request).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(leader, "fetching from the leader failed: {e:#}");
                client = None;
                wait_or_change(&changed, BACKOFF).await;
                continue;
            }
        };
        if response.error_code != 0 {
            tracing::warn!(
                leader,
                code = response.error_code,
                "the leader refused a fetch"
            );
            wait_or_change(&changed, BACKOFF).await;
            continue;
        }
        let mut needs_start = Vec::new();
        for (followed, data) in matched(&batch, &response) {
            if rate.is_some() && throttled.contains(&key_of(followed)) {
                throttle.charge(data.records.as_ref().map_or(0, |r| r.len()) as u64);
            }
            // A response that took long may come from a leader this broker no longer follows
            // for the partition (a new epoch or leader): it is dropped.
            let key = (followed.partition.topic.clone(), followed.partition.index);
            let current = lock(&partitions)
                .get(&key)
                .is_some_and(|f| f.leader_epoch == followed.leader_epoch);
            if !current {
                continue;
            }
            match handle_partition(&followed.partition, data) {
                Outcome::Fetched => {}
                Outcome::OutOfRange => needs_start.push(followed.clone()),
                Outcome::Pause(reason) => {
                    tracing::debug!(topic = %followed.partition.topic, partition = followed.partition.index, "fetch paused: {reason}");
                    let key = (followed.partition.topic.clone(), followed.partition.index);
                    if let Some(f) = lock(&partitions).get_mut(&key) {
                        f.paused_until = Some(tokio::time::Instant::now() + BACKOFF);
                    }
                }
            }
        }
        for followed in needs_start {
            if let Err(e) = start_at_leader(conn, me, &followed).await {
                tracing::warn!(topic = %followed.partition.topic, partition = followed.partition.index, "cannot find the leader's log start: {e:#}");
                client = None;
                break;
            }
        }
        // Make what was appended durable before the next fetch reports it: every partition's
        // fsync at once, as a fetch may bring data for hundreds of them.
        let mut syncs = tokio::task::JoinSet::new();
        for followed in &batch {
            let p = Arc::clone(&followed.partition);
            let end = {
                let log = p.log();
                log.config()
                    .fsync_before_ack()
                    .then(|| log.log_end_offset())
            };
            if let Some(end) = end.filter(|end| *p.durable().borrow() < *end) {
                syncs.spawn(async move {
                    if let Err(e) = p.wait_durable(end).await {
                        tracing::error!(topic = %p.topic, partition = p.index, "follower fsync failed: {e}");
                    }
                });
            }
        }
        while syncs.join_next().await.is_some() {}
    }
}

fn key_of(f: &Followed) -> (String, i32) {
    (f.partition.topic.clone(), f.partition.index)
}

/// The partitions of `batch` a replication throttle holds back, and the rate (bytes/s) they
/// share, if one is set: replicas a reassignment is adding here, and those the topic lists in
/// `follower.replication.throttled.replicas` (for this broker) or
/// `leader.replication.throttled.replicas` (for the leader). The rate is the lower of this
/// broker's `follower.replication.throttled.rate` and the leader's
/// `leader.replication.throttled.rate`; both are enforced here, by the fetching follower.
fn throttled(
    metadata: &MetadataCache,
    me: i32,
    leader: i32,
    batch: &[Followed],
) -> (HashSet<(String, i32)>, Option<u64>) {
    let image = metadata.image();
    let rate = match (
        dynamic_rate(&image, me, "follower.replication.throttled.rate"),
        dynamic_rate(&image, leader, "leader.replication.throttled.rate"),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if rate.is_none() {
        return (HashSet::new(), None);
    }
    let set = batch
        .iter()
        .filter(|f| {
            let p = &f.partition;
            let adding = image
                .topic(&p.topic)
                .and_then(|t| t.partitions.get(&p.index))
                .is_some_and(|r| r.adding_replicas.contains(&me));
            let log = p.log();
            let config = log.config();
            adding
                || config.follower_throttled_replicas.contains(p.index, me)
                || config.leader_throttled_replicas.contains(p.index, leader)
        })
        .map(key_of)
        .collect();
    (set, rate)
}

/// A token bucket for throttled replication bytes, with a burst of one second.
#[derive(Debug)]
struct Throttle {
    /// Bytes that may still be fetched; negative after a fetch that overdrew it.
    allowance: f64,
    last: tokio::time::Instant,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            allowance: 0.0,
            last: tokio::time::Instant::now(),
        }
    }
}

impl Throttle {
    fn refill(&mut self, rate: u64) {
        let now = tokio::time::Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * rate as f64;
        self.allowance = (self.allowance + earned).min(rate as f64);
        self.last = now;
    }

    fn open(&self) -> bool {
        self.allowance > 0.0
    }

    fn charge(&mut self, bytes: u64) {
        self.allowance -= bytes as f64;
    }

    /// How long until the allowance is positive again at `rate`.
    fn wait(&self, rate: u64) -> Duration {
        if self.open() || rate == 0 {
            return Duration::from_millis(10);
        }
        Duration::from_secs_f64(-self.allowance / rate as f64).max(Duration::from_millis(10))
    }
}

/// Sleeps `pause`, or less if the followed partitions change.
async fn wait_or_change(changed: &Notify, pause: Duration) {
    let _ = tokio::time::timeout(pause, changed.notified()).await;
}

/// A Fetch v12 for `batch`, each partition from its log end, up to `max_bytes` of it.
fn fetch_request(
    me: i32,
    batch: &[Followed],
    max_bytes: impl Fn(&Followed) -> i32,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for followed in batch {
        let p = &followed.partition;
        let (log_end, last_epoch, log_start) = {
            let log = p.log();
            (
                log.log_end_offset(),
                log.latest_epoch().unwrap_or(-1),
                log.log_start_offset(),
            )
        };
        let entry = FetchPartition::default()
            .with_partition(p.index)
            .with_current_leader_epoch(followed.leader_epoch)
            .with_fetch_offset(log_end as i64)
            .with_last_fetched_epoch(last_epoch)
            .with_log_start_offset(log_start as i64)
            .with_partition_max_bytes(max_bytes(followed));
        match topics.iter_mut().find(|t| t.topic.0.as_str() == p.topic) {
            Some(topic) => topic.partitions.push(entry),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(p.topic.clone())))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(FETCH_WAIT.as_millis() as i32)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Each followed partition with its part of the response.
fn matched<'a>(
    batch: &'a [Followed],
    response: &'a FetchResponse,
) -> Vec<(
    &'a Followed,
    &'a kafka_protocol::messages::fetch_response::PartitionData,
)> {
    // By name and index: a fetch of hundreds of partitions matched each answer by a linear
    // search, a tenth of a follower's CPU in string compares.
    let by_key: HashMap<(&str, i32), &'a Followed> = batch
        .iter()
        .map(|f| ((f.partition.topic.as_str(), f.partition.index), f))
        .collect();
    response
        .responses
        .iter()
        .flat_map(|topic| {
            let by_key = &by_key;
            topic.partitions.iter().filter_map(move |data| {
                by_key
                    .get(&(topic.topic.0.as_str(), data.partition_index))
                    .map(|f| (*f, data))
            })
        })
        .collect()
}

/// What became of one partition's part of a fetch.
enum Outcome {
    Fetched,
    /// The fetch offset is outside the leader's local log: start over at its log start.
    OutOfRange,
    /// An error to wait out (a leader change the image has not shown yet, a storage error).
    Pause(String),
}

fn handle_partition(
    partition: &PartitionRef,
    data: &kafka_protocol::messages::fetch_response::PartitionData,
) -> Outcome {
    match data.error_code {
        0 => {}
        OFFSET_OUT_OF_RANGE | OFFSET_MOVED_TO_TIERED_STORAGE => return Outcome::OutOfRange,
        code => return Outcome::Pause(format!("error code {code}")),
    }
    if data.diverging_epoch.end_offset >= 0 || data.diverging_epoch.epoch >= 0 {
        let (epoch, end) = (data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
        let result = partition.truncate_after_divergence(epoch, end);
        return match result {
            Ok(to) => {
                tracing::info!(topic = %partition.topic, partition = partition.index, epoch, leader_end = end, truncated_to = to, "log diverged from the leader's: truncated");
                Outcome::Fetched
            }
            Err(e) => Outcome::Pause(format!("truncation failed: {e}")),
        };
    }
    if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty())
        && let Err(e) = partition.append_from_leader(records)
    {
        return Outcome::Pause(format!("appending the leader's batches failed: {e}"));
    }
    partition.learn_high_watermark(data.high_watermark.max(0) as u64);
    if data.log_start_offset > 0
        && let Err(e) = partition.learn_log_start(data.log_start_offset as u64)
    {
        return Outcome::Pause(format!("moving the log start to the leader's failed: {e}"));
    }
    Outcome::Fetched
}

/// Asks the leader where its local log starts and starts this replica's log there, if the
/// leader's starts later; otherwise truncates to the leader's high watermark (a follower
/// ahead of a leader that lost what it had not committed).
async fn start_at_leader(conn: &mut Client, me: i32, followed: &Followed) -> anyhow::Result<()> {
    let p = &followed.partition;
    let ask = |timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(me))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(p.topic.clone())))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(p.index)
                            .with_current_leader_epoch(followed.leader_epoch)
                            .with_timestamp(timestamp),
                    ]),
            ])
    };
    let offset_of = |response: kafka_protocol::messages::ListOffsetsResponse| {
        let data = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("ListOffsets answered no partition"))?;
        if data.error_code != 0 {
            anyhow::bail!("ListOffsets error code {}", data.error_code);
        }
        Ok::<i64, anyhow::Error>(data.offset)
    };
    let start = offset_of(conn.call(8, &ask(EARLIEST_LOCAL_TIMESTAMP)).await?)?;
    let end = p.log().log_end_offset() as i64;
    if start > end {
        p.start_over_at(start as u64)?;
        return Ok(());
    }
    let high_watermark = offset_of(conn.call(8, &ask(-1)).await?)?;
    if high_watermark < end {
        p.truncate_to(high_watermark.max(0) as u64)?;
    }
    Ok(())
}
