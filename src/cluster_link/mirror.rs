//! Mirror fetching: for one link, the mirror partitions this broker leads fetch from their
//! source partitions' leaders (the Fetch API as a consumer, read_uncommitted: every batch up
//! to the source's high watermark) and append the source's batches byte for byte at their
//! source offsets, through the follower's append path
//! ([`UnifiedLog::append_as_follower`](crate::log::UnifiedLog::append_as_follower)): offsets,
//! timestamps, producer ids and sequences, headers and offset gaps stay as they were. The
//! mirror's own followers then replicate it like any partition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strata_controller::LinkStart;
use strata_controller::link::ClientProperties;
use tokio::task::JoinSet;

use super::source::{self, EARLIEST, LATEST, SourceMetadata};
use crate::broker::StrataBroker;
use crate::kafka_client::Client;
use crate::partition::PartitionRef;

/// How long a source broker may park a fetch.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes per partition per fetch.
const PARTITION_MAX_BYTES: i32 = 8 << 20;
/// Bytes per fetch response.
const RESPONSE_MAX_BYTES: i32 = 32 << 20;
/// Pause after an error, or while there is nothing to mirror.
const BACKOFF: Duration = Duration::from_secs(1);
/// The source's metadata is read again at least this often (new leaders, new partitions).
const METADATA_MAX_AGE: Duration = Duration::from_secs(30);

/// Error codes a fetch from the source can answer that send the link to the source's
/// metadata again: the partition moved or its leader changed.
const STALE_METADATA: [i16; 6] = [3, 5, 6, 74, 75, 100];
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// A mirror partition this broker leads, and its source.
#[derive(Clone)]
struct Mirrored {
    partition: PartitionRef,
    source_topic: String,
    link: String,
}

/// What one fetch round did to a partition.
enum Outcome {
    Appended {
        bytes: u64,
    },
    /// The source's history under the mirror's last epoch ends at `end` (epoch `epoch`).
    Diverged {
        epoch: i32,
        end: i64,
    },
    Idle,
    OutOfRange,
    StaleMetadata,
    Failed(String),
}

/// Mirrors the link's partitions this broker leads until the link is deleted or paused.
pub(super) async fn mirror_loop(broker: Arc<StrataBroker>, link: String) {
    let mut metadata: Option<(SourceMetadata, Instant)> = None;
    let mut clients: HashMap<String, Client> = HashMap::new();
    // Where a partition fetches when not at its log end: above a gap the source's retention
    // left (its log start moved past what was mirrored).
    let mut skip_to: HashMap<(String, i32), u64> = HashMap::new();
    let mut placed: HashSet<(String, i32)> = HashSet::new();
    // The source as the link's settings last said; connections are dropped when they change.
    let mut reached: Option<(String, ClientProperties, Arc<source::Source>)> = None;
    loop {
        let Some(config) = ({
            let image = broker.image();
            image
                .links
                .get(&link)
                .filter(|l| !l.paused)
                .map(|l| l.config.clone())
        }) else {
            return;
        };
        if reached.as_ref().is_none_or(|(bootstrap, security, _)| {
            *bootstrap != config.source || *security != config.source_security
        }) {
            match source::Source::of(&config) {
                Ok(found) => {
                    clients.clear();
                    metadata = None;
                    let key = (config.source.clone(), config.source_security.clone());
                    reached = Some((key.0, key.1, Arc::new(found)));
                }
                Err(e) => {
                    broker.links().failed(&link, format!("{e:#}"));
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let source = Arc::clone(&reached.as_ref().expect("set above").2);
        let led = led_mirrors(&broker, &link);
        if led.is_empty() {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        if metadata
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() > METADATA_MAX_AGE)
        {
            match source.metadata().await {
                Ok(found) => metadata = Some((found, Instant::now())),
                Err(e) => {
                    broker
                        .links()
                        .failed(&link, format!("source metadata: {e:#}"));
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let (source_metadata, _) = metadata.as_ref().expect("read above");
        // Group by source leader.
        let mut by_leader: HashMap<String, Vec<Mirrored>> = HashMap::new();
        let mut missing = false;
        for m in led {
            match source_metadata.leader_of(&m.source_topic, m.partition.index) {
                Some(addr) => by_leader.entry(addr.to_owned()).or_default().push(m),
                None => missing = true,
            }
        }
        if missing {
            // A leaderless source partition, or one the metadata does not know yet.
            metadata = None;
        }
        if by_leader.is_empty() {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        let mut round = JoinSet::new();
        for (addr, partitions) in by_leader {
            let client = clients.remove(&addr);
            let start = config.start;
            let mut skips = HashMap::new();
            for m in &partitions {
                let key = (m.partition.topic.clone(), m.partition.index);
                if let Some(to) = skip_to.get(&key) {
                    skips.insert(key.clone(), *to);
                }
            }
            let unplaced: Vec<bool> = partitions
                .iter()
                .map(|m| !placed.contains(&(m.partition.topic.clone(), m.partition.index)))
                .collect();
            let broker = Arc::clone(&broker);
            let source = Arc::clone(&source);
            round.spawn(async move {
                let result = fetch_round(
                    &broker,
                    (&source, &addr, client),
                    &partitions,
                    &unplaced,
                    start,
                    &skips,
                )
                .await;
                (addr, partitions, result)
            });
        }
        let mut appended: Vec<PartitionRef> = Vec::new();
        let mut failed = None;
        while let Some(joined) = round.join_next().await {
            let Ok((addr, partitions, result)) = joined else {
                continue;
            };
            match result {
                Ok((client, outcomes, newly_placed, skips)) => {
                    clients.insert(addr, client);
                    for key in newly_placed {
                        placed.insert(key);
                    }
                    for (key, to) in skips {
                        skip_to.insert(key, to);
                    }
                    for (m, outcome) in partitions.iter().zip(outcomes) {
                        let key = (m.partition.topic.clone(), m.partition.index);
                        match outcome {
                            Outcome::Appended { bytes } => {
                                skip_to.remove(&key);
                                broker.links().mirrored(&link, bytes);
                                appended.push(Arc::clone(&m.partition));
                            }
                            Outcome::Idle | Outcome::Diverged { .. } => {}
                            Outcome::OutOfRange => {
                                failed = Some(format!(
                                    "{}-{}: offset out of range at the source",
                                    m.source_topic, m.partition.index
                                ));
                            }
                            Outcome::StaleMetadata => metadata = None,
                            Outcome::Failed(why) => {
                                failed = Some(format!(
                                    "{}-{}: {why}",
                                    m.source_topic, m.partition.index
                                ));
                            }
                        }
                    }
                }
                Err(e) => {
                    failed = Some(format!("fetching from {addr}: {e:#}"));
                    metadata = None;
                }
            }
        }
        reserve_producer_ids(&broker, &appended).await;
        // Durable before the next fetch, as a follower's: what a mirror acknowledges to its
        // own followers' high watermark is on its disk.
        let mut syncs = JoinSet::new();
        for p in appended {
            let end = {
                let log = p.log();
                log.config()
                    .fsync_before_ack()
                    .then(|| log.log_end_offset())
            };
            if let Some(end) = end {
                syncs.spawn(async move {
                    if let Err(e) = p.wait_durable(end).await {
                        tracing::error!(topic = %p.topic, partition = p.index, "mirror fsync failed: {e}");
                    }
                });
            }
        }
        while syncs.join_next().await.is_some() {}
        match failed {
            Some(why) => {
                broker.links().failed(&link, why);
                tokio::time::sleep(BACKOFF).await;
            }
            None => broker.links().succeeded(&link),
        }
    }
}

/// The source's producer ids are this cluster's too once a mirror takes writes: ids up to
/// the largest one mirrored are reserved, so that this cluster never hands one of them to a
/// producer of its own (which would meet the mirrored producer's sequences).
async fn reserve_producer_ids(broker: &StrataBroker, appended: &[PartitionRef]) {
    let largest = appended
        .iter()
        .filter_map(|p| p.log().max_producer_id())
        .max();
    let Some(largest) = largest else { return };
    if largest < broker.image().next_producer_id {
        return;
    }
    let request =
        strata_controller::raft::admin::AdminRequest::ReserveProducerIds { above: largest };
    if let Err(e) = broker.admin().request(request).await {
        tracing::warn!(largest, "reserving mirrored producer ids failed: {e}");
    }
}

/// The link's mirroring partitions this broker leads.
fn led_mirrors(broker: &StrataBroker, link: &str) -> Vec<Mirrored> {
    let sources: HashMap<String, String> = {
        let image = broker.image();
        image
            .topics
            .values()
            .filter(|t| t.is_mirroring())
            .filter_map(|t| {
                let m = t.mirror.as_ref()?;
                (m.link == link).then(|| (t.name.clone(), m.source_topic.clone()))
            })
            .collect()
    };
    broker
        .replicas()
        .all()
        .into_iter()
        .filter(|p| p.is_leader() && p.is_mirror())
        .filter_map(|p| {
            let source_topic = sources.get(&p.topic)?.clone();
            Some(Mirrored {
                partition: p,
                source_topic,
                link: link.to_owned(),
            })
        })
        .collect()
}

type RoundResult = (
    Client,
    Vec<Outcome>,
    Vec<(String, i32)>,
    Vec<((String, i32), u64)>,
);

/// One fetch from the source leader at `addr` for `partitions`: places partitions whose log
/// is still empty (at the source's start or end, per the link), fetches, appends.
async fn fetch_round(
    broker: &StrataBroker,
    (source, addr, client): (&source::Source, &str, Option<Client>),
    partitions: &[Mirrored],
    unplaced: &[bool],
    start: LinkStart,
    skips: &HashMap<(String, i32), u64>,
) -> anyhow::Result<RoundResult> {
    let mut client = match client {
        Some(client) => client,
        None => source.connect(addr).await?,
    };
    let mut placed = Vec::new();
    for (m, unplaced) in partitions.iter().zip(unplaced) {
        let p = &m.partition;
        if !unplaced {
            continue;
        }
        let empty = {
            let log = p.log();
            log.log_end_offset() == 0 && log.log_start_offset() == 0
        };
        if empty {
            let timestamp = match start {
                LinkStart::Earliest => EARLIEST,
                LinkStart::Latest => LATEST,
            };
            let (offset, _) =
                source::list_offset(&mut client, &m.source_topic, p.index, timestamp).await?;
            if offset > 0 {
                p.start_over_at(offset as u64)?;
                tracing::info!(topic = %p.topic, partition = p.index, offset, "mirror partition starts at the source's offset");
            }
        }
        placed.push((p.topic.clone(), p.index));
    }
    let request = fetch_request(partitions, skips);
    let response: FetchResponse = client.call(12, &request).await?;
    if response.error_code != 0 {
        anyhow::bail!("Fetch answered error code {}", response.error_code);
    }
    let mut outcomes = Vec::with_capacity(partitions.len());
    let mut new_skips = Vec::new();
    for m in partitions {
        let data = response
            .responses
            .iter()
            .filter(|t| t.topic.0.as_str() == m.source_topic)
            .flat_map(|t| t.partitions.iter())
            .find(|d| d.partition_index == m.partition.index);
        let Some(data) = data else {
            outcomes.push(Outcome::StaleMetadata);
            continue;
        };
        let mut outcome = handle(m, data);
        if data.error_code == 0 && data.high_watermark >= 0 {
            let end = m.partition.log().log_end_offset();
            broker.links().observe_lag(
                &m.link,
                (&m.partition.topic, m.partition.index),
                data.high_watermark as u64,
                end,
            );
        }
        if let Outcome::Diverged { epoch, end } = outcome {
            // The source's history went another way (a failback, an unclean election there):
            // what the mirror holds past the divergence is kept aside, then cut off.
            outcome = match cut_off(broker, &m.partition, epoch, end).await {
                Ok(()) => Outcome::Idle,
                Err(e) => Outcome::Failed(format!("{e:#}")),
            };
        }
        if matches!(outcome, Outcome::OutOfRange) {
            // Below the source's log start (its retention went past what was mirrored):
            // continue at its start, leaving a gap, as a consumer would.
            let (earliest, _) =
                source::list_offset(&mut client, &m.source_topic, m.partition.index, EARLIEST)
                    .await?;
            let end = m.partition.log().log_end_offset();
            if earliest >= 0 && (earliest as u64) > end {
                tracing::warn!(topic = %m.partition.topic, partition = m.partition.index, from = end, to = earliest, "the source's retention passed the mirror's end: skipping to its log start");
                new_skips.push((
                    (m.partition.topic.clone(), m.partition.index),
                    earliest as u64,
                ));
                outcomes.push(Outcome::Idle);
                continue;
            }
        }
        outcomes.push(outcome);
    }
    Ok((client, outcomes, placed, new_skips))
}

/// Truncates `p` where its history and the source's part, after copying what it cuts off
/// into the side topic.
async fn cut_off(
    broker: &StrataBroker,
    p: &PartitionRef,
    epoch: i32,
    end: i64,
) -> anyhow::Result<()> {
    let to = p.divergence_point(epoch, end);
    let saved = super::truncated::save(broker, p, to).await?;
    p.truncate_to(to)?;
    p.log().forget_epochs_from(to)?;
    broker.links().cut_off(&p.topic, saved);
    tracing::warn!(topic = %p.topic, partition = p.index, epoch, source_end = end, truncated_to = to, saved, "the mirror's log diverged from the source's: truncated");
    Ok(())
}

fn fetch_request(partitions: &[Mirrored], skips: &HashMap<(String, i32), u64>) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for m in partitions {
        let p = &m.partition;
        let (end, last_epoch) = {
            let log = p.log();
            (log.log_end_offset(), log.latest_epoch().unwrap_or(-1))
        };
        let offset = skips
            .get(&(p.topic.clone(), p.index))
            .map_or(end, |to| end.max(*to));
        let entry = FetchPartition::default()
            .with_partition(p.index)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(offset as i64)
            .with_last_fetched_epoch(last_epoch)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(PARTITION_MAX_BYTES);
        match topics
            .iter_mut()
            .find(|t| t.topic.0.as_str() == m.source_topic)
        {
            Some(topic) => topic.partitions.push(entry),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(m.source_topic.clone())))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_isolation_level(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

fn handle(m: &Mirrored, data: &kafka_protocol::messages::fetch_response::PartitionData) -> Outcome {
    let p = &m.partition;
    match data.error_code {
        0 => {}
        OFFSET_OUT_OF_RANGE => return Outcome::OutOfRange,
        code if STALE_METADATA.contains(&code) => return Outcome::StaleMetadata,
        code => return Outcome::Failed(format!("the source answered error code {code}")),
    }
    if data.diverging_epoch.end_offset >= 0 || data.diverging_epoch.epoch >= 0 {
        return Outcome::Diverged {
            epoch: data.diverging_epoch.epoch,
            end: data.diverging_epoch.end_offset,
        };
    }
    let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) else {
        return Outcome::Idle;
    };
    // A fetch answers from the batch holding the offset: batches wholly below the log end (a
    // fetch above a gap) are not appended again.
    let end = p.log().log_end_offset();
    let from = strata_record::batches(records)
        .find(|(_, h)| h.base_offset >= end)
        .map(|(position, _)| position);
    let Some(from) = from else {
        return Outcome::Idle;
    };
    match p.append_mirrored(&records[from..]) {
        Ok(appended) => Outcome::Appended {
            bytes: appended.bytes,
        },
        Err(e) => Outcome::Failed(format!("appending the source's batches failed: {e}")),
    }
}
