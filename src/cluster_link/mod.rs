//! Cluster links (DESIGN.md decision 7): mirror topics that follow the topics of another
//! Kafka-compatible cluster byte for byte, at the source's offsets.
//!
//! A link lives in the metadata log ([`strata_controller::ClusterLink`]). On every broker
//! [`run`] keeps, per active link, one mirror task fetching for the mirror partitions the
//! broker leads ([`mirror`]); the live broker with the lowest id also discovers the source's
//! topics and creates their mirrors ([`discovery`]). Stopped mirrors (failover, promote) whose
//! log holds a source epoch at or above their leader epoch ask the controller for a higher one
//! before they take writes.

mod discovery;
mod mirror;
mod offsets;
pub mod source;
pub mod status;
mod truncated;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_controller::raft::admin::AdminRequest;
use tokio::task::JoinHandle;

use crate::broker::StrataBroker;

/// How often links are checked for new mirror topics and tasks.
const TICK: Duration = Duration::from_secs(1);
/// How often the source's topics are listed for new mirrors.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// Longest one pass of a link's offset sync may take.
const OFFSET_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// What this broker's mirror tasks did per link, for status.
#[derive(Debug, Clone, Default)]
pub struct LinkActivity {
    /// Bytes appended from the source since the broker started.
    pub bytes: u64,
    /// The last error, while the link is failing.
    pub last_error: Option<String>,
    /// When mirroring last succeeded.
    pub last_success: Option<Instant>,
}

/// Records cut off by this broker's mirrors and kept in side topics, per mirror topic.
pub type CutOff = HashMap<String, u64>;

/// How far one mirror partition trails its source, from the mirror's fetches.
#[derive(Debug, Clone, Default)]
pub struct MirrorLag {
    /// The link.
    pub link: String,
    /// Source high watermark minus the mirror's log end, at the last fetch.
    pub records: u64,
    /// When the source first held records the mirror still lacks (observations of the source
    /// high watermark above the mirror's end, oldest first; bounded).
    behind_since: std::collections::VecDeque<(Instant, u64)>,
}

/// Observations kept per mirror partition while it trails: more only lose precision.
const LAG_OBSERVATIONS: usize = 256;

impl MirrorLag {
    /// Seconds since the source held the oldest record the mirror lacks (to within one fetch
    /// round); 0 when caught up.
    pub fn seconds(&self) -> f64 {
        self.behind_since
            .front()
            .map_or(0.0, |(since, _)| since.elapsed().as_secs_f64())
    }

    fn observe(&mut self, source_end: u64, mirror_end: u64) {
        self.records = source_end.saturating_sub(mirror_end);
        while self
            .behind_since
            .front()
            .is_some_and(|(_, end)| *end <= mirror_end)
        {
            self.behind_since.pop_front();
        }
        let newer = self
            .behind_since
            .back()
            .is_none_or(|(_, end)| *end < source_end);
        if source_end > mirror_end && newer && self.behind_since.len() < LAG_OBSERVATIONS {
            self.behind_since.push_back((Instant::now(), source_end));
        }
    }
}

/// This broker's running links.
#[derive(Debug, Default)]
pub struct LinkManager {
    activity: Mutex<HashMap<String, LinkActivity>>,
    /// Per mirror partition (topic, partition) this broker leads.
    lags: Mutex<HashMap<(String, i32), MirrorLag>>,
    cut_off: Mutex<CutOff>,
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl LinkManager {
    fn activity(&self) -> std::sync::MutexGuard<'_, HashMap<String, LinkActivity>> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mirrored(&self, link: &str, bytes: u64) {
        self.activity().entry(link.to_owned()).or_default().bytes += bytes;
    }

    pub(crate) fn failed(&self, link: &str, why: String) {
        let mut activity = self.activity();
        let entry = activity.entry(link.to_owned()).or_default();
        if entry.last_error.as_deref() != Some(why.as_str()) {
            tracing::warn!(link, "cluster link: {why}");
        }
        entry.last_error = Some(why);
    }

    pub(crate) fn succeeded(&self, link: &str) {
        let mut activity = self.activity();
        let entry = activity.entry(link.to_owned()).or_default();
        if entry.last_error.take().is_some() {
            tracing::info!(link, "cluster link mirroring again");
        }
        entry.last_success = Some(Instant::now());
    }

    pub(crate) fn cut_off(&self, topic: &str, records: u64) {
        *self
            .cut_off
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(topic.to_owned())
            .or_default() += records;
    }

    /// Records this broker's mirrors cut off and kept in side topics, per mirror topic.
    pub fn cut_off_counts(&self) -> CutOff {
        self.cut_off
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A fetch from the source found its high watermark at `source_end` with the mirror's
    /// log ending at `mirror_end`.
    pub(crate) fn observe_lag(
        &self,
        link: &str,
        (topic, partition): (&str, i32),
        source_end: u64,
        mirror_end: u64,
    ) {
        let mut lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        let lag = lags.entry((topic.to_owned(), partition)).or_default();
        if lag.link != link {
            lag.link = link.to_owned();
        }
        lag.observe(source_end, mirror_end);
    }

    /// The lag of each mirror partition this broker has fetched for, keyed by (topic,
    /// partition). Partitions it no longer leads are dropped.
    pub fn lags(&self, led: impl Fn(&str, i32) -> bool) -> Vec<((String, i32), MirrorLag)> {
        let mut lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        lags.retain(|(topic, partition), _| led(topic, *partition));
        lags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// This broker's activity for `link`.
    pub fn activity_of(&self, link: &str) -> LinkActivity {
        self.activity().get(link).cloned().unwrap_or_default()
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for LinkManager {
    fn drop(&mut self) {
        for (_, task) in self.tasks().drain() {
            task.abort();
        }
    }
}

/// Runs the links until the task is stopped.
pub async fn run(broker: Arc<StrataBroker>) {
    let mut discovered_at: Option<Instant> = None;
    let mut discovered_for: Vec<String> = Vec::new();
    let mut synced_at: HashMap<String, Instant> = HashMap::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let active: Vec<String> = {
            let image = broker.image();
            image
                .links
                .values()
                .filter(|l| !l.paused)
                .map(|l| l.name.clone())
                .collect()
        };
        {
            let mut tasks = broker.links().tasks();
            tasks.retain(|name, task| {
                let keep = active.contains(name) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for name in &active {
                if !tasks.contains_key(name) {
                    let task = tokio::spawn(mirror::mirror_loop(Arc::clone(&broker), name.clone()));
                    tasks.insert(name.clone(), task);
                }
            }
        }
        // A new or resumed link is discovered at once, the others every interval.
        if discovered_for != active
            || discovered_at.is_none_or(|at| at.elapsed() >= DISCOVERY_INTERVAL)
        {
            discovered_at = Some(Instant::now());
            discovered_for = active.clone();
            if is_coordinator(&broker) {
                discovery::discover(&broker).await;
            }
        }
        if is_coordinator(&broker) {
            sync_offsets(&broker, &mut synced_at).await;
        }
        raise_epochs(&broker).await;
    }
}

/// Copies the group offsets of every active link whose interval passed.
async fn sync_offsets(broker: &StrataBroker, synced_at: &mut HashMap<String, Instant>) {
    let links: Vec<strata_controller::ClusterLink> = broker
        .image()
        .links
        .values()
        .filter(|l| !l.paused && l.config.groups.is_some())
        .cloned()
        .collect();
    synced_at.retain(|name, _| links.iter().any(|l| &l.name == name));
    for link in links {
        let interval = Duration::from_millis(link.config.offset_sync_ms);
        if synced_at
            .get(&link.name)
            .is_some_and(|at| at.elapsed() < interval)
        {
            continue;
        }
        synced_at.insert(link.name.clone(), Instant::now());
        match tokio::time::timeout(OFFSET_SYNC_TIMEOUT, offsets::sync(broker, &link)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => broker
                .links()
                .failed(&link.name, format!("syncing group offsets: {e:#}")),
            Err(_) => broker
                .links()
                .failed(&link.name, "syncing group offsets timed out".into()),
        }
    }
}

/// Replicas of a topic a link creates (a mirror, a side topic): the cluster's
/// `default.replication.factor`, at most the live brokers.
fn replication_factor(broker: &StrataBroker) -> usize {
    let live = broker
        .image()
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .count();
    (broker.config().default_replication_factor.max(1) as usize).min(live.max(1))
}

/// The live broker with the lowest id discovers for every link (a new one takes over within a
/// discovery interval when it goes).
fn is_coordinator(broker: &StrataBroker) -> bool {
    let image = broker.image();
    let me = broker.config().node_id;
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| b.id)
        .min()
        == Some(me)
}

/// Stopped mirrors this broker leads whose log holds an epoch at or above their leader epoch
/// (the source's) ask for a higher one; they refuse writes until it is applied.
async fn raise_epochs(broker: &StrataBroker) {
    let me = broker.config().node_id;
    for p in broker.replicas().all() {
        if !p.is_leader() || p.is_mirror() {
            continue;
        }
        let Some(above) = p.epoch_behind_log() else {
            continue;
        };
        let request = AdminRequest::RaiseLeaderEpoch {
            broker_id: me,
            topic_id: p.topic_id,
            partition: p.index,
            leader_epoch: p.leader_epoch(),
            above,
        };
        match broker.admin().request(request).await {
            Ok(_) => {
                tracing::info!(topic = %p.topic, partition = p.index, above, "leader epoch raised above the mirrored source's")
            }
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.index, "raising the leader epoch failed: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_seconds_date_from_the_oldest_record_still_missing() {
        let mut lag = MirrorLag::default();
        lag.observe(100, 100);
        assert_eq!((lag.records, lag.seconds()), (0, 0.0), "caught up");
        lag.observe(150, 100);
        let first = lag.behind_since.front().map(|(at, _)| *at);
        lag.observe(200, 120);
        assert_eq!(lag.records, 80);
        assert_eq!(
            lag.behind_since.front().map(|(at, _)| *at),
            first,
            "records from 120 on were on the source since the first observation"
        );
        lag.observe(210, 160);
        assert_eq!(
            lag.behind_since.len(),
            2,
            "past 150: the second observation is the oldest"
        );
        assert!(lag.behind_since.front().is_some_and(|(_, end)| *end == 200));
        lag.observe(210, 210);
        assert_eq!((lag.records, lag.seconds()), (0, 0.0));
        assert!(lag.behind_since.is_empty());
    }
}
