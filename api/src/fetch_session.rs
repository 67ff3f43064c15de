//! Incremental fetch sessions (KIP-227): a consumer of many partitions sends them once, then
//! only the partitions whose fetch position changed, and is answered only the partitions with
//! something new.
//!
//! The broker-wide cache holds at most `max.incremental.fetch.session.cache.slots` sessions.
//! A new session takes a free slot, or the slot of the session used least recently if that
//! one has been idle for `min.incremental.fetch.session.eviction.ms`; otherwise it is not
//! created (session id 0), and the client goes on with full fetches, as Kafka's clients do.
//! A session costs the partitions its client sent, each of which came in a request bounded by
//! `socket.request.max.bytes`.
//!
//! Epochs: 0 opens a session (a full request), -1 closes one (a full request without a
//! session), and each incremental request carries the epoch after the last one answered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use uuid::Uuid;

use crate::metrics::KAFKA;

/// A session epoch that opens a session.
const INITIAL_EPOCH: i32 = 0;
/// A session epoch that asks for no session.
const FINAL_EPOCH: i32 = -1;

/// One partition of a fetch, as the request gave it.
#[derive(Debug, Clone)]
pub struct FetchPartitionState {
    /// The topic's name as sent (empty from v13, which names topics by id).
    pub topic: TopicName,
    /// The topic's id (nil before v13).
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    /// Where to read from.
    pub fetch_offset: i64,
    /// Most bytes of this partition.
    pub partition_max_bytes: u64,
    /// The leader epoch the client knows (KIP-320).
    pub current_leader_epoch: i32,
    /// Epoch of the last batch the client holds.
    pub last_fetched_epoch: i32,
    /// A follower's log start offset.
    pub log_start_offset: i64,
}

impl FetchPartitionState {
    fn key(&self) -> (&str, Uuid, i32) {
        (self.topic.0.as_str(), self.topic_id, self.index)
    }
}

/// What a partition's last answer in a session told the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct Session {
    epoch: i32,
    /// Whether its partitions are named by topic id (Fetch v13+).
    by_id: bool,
    partitions: Vec<(FetchPartitionState, Option<Sent>)>,
    last_used: Instant,
}

/// What a fetch request is, once its session fields are read.
#[derive(Debug)]
pub enum SessionFetch {
    /// A full fetch: answer every partition of the request. `id` is the session it opened
    /// (0 for none).
    Full {
        /// The session to report in the response.
        id: i32,
    },
    /// An incremental fetch of session `id`: read these partitions (the session's), and
    /// answer those with news.
    Incremental {
        /// The session.
        id: i32,
        /// Its partitions, in its order, with what each was last answered.
        partitions: Vec<(FetchPartitionState, Option<Sent>)>,
    },
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessions {
    sessions: Mutex<HashMap<i32, Session>>,
    slots: usize,
    eviction: Duration,
}

impl Default for FetchSessions {
    fn default() -> Self {
        Self::new(1000, Duration::from_millis(120_000))
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

impl FetchSessions {
    /// A cache of `slots` sessions, of which one idle for `eviction` may be replaced.
    pub fn new(slots: usize, eviction: Duration) -> Self {
        Self {
            sessions: Mutex::default(),
            slots,
            eviction,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens, continues or closes the session a request names, or refuses it (an unknown
    /// session, a wrong epoch, or topic ids where the session had names or the reverse).
    pub fn begin(
        &self,
        (session_id, epoch): (i32, i32),
        by_id: bool,
        requested: Vec<FetchPartitionState>,
        forgotten: Vec<(TopicName, Uuid, i32)>,
    ) -> Result<(SessionFetch, Vec<FetchPartitionState>), ResponseError> {
        // A fetch without a session (followers, most clients) touches no shared state.
        if (session_id, epoch) == (0, FINAL_EPOCH) {
            return Ok((SessionFetch::Full { id: 0 }, requested));
        }
        let now = Instant::now();
        let mut sessions = self.lock();
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if session_id != 0 {
                sessions.remove(&session_id);
            }
            let id = if epoch == INITIAL_EPOCH {
                self.open(&mut sessions, by_id, &requested, now)
            } else {
                0
            };
            self.publish(&sessions);
            return Ok((SessionFetch::Full { id }, requested));
        }
        let Some(session) = sessions.get_mut(&session_id) else {
            return Err(ResponseError::FetchSessionIdNotFound);
        };
        if session.epoch != epoch {
            return Err(ResponseError::InvalidFetchSessionEpoch);
        }
        if session.by_id != by_id {
            return Err(ResponseError::FetchSessionTopicIdError);
        }
        for p in requested {
            match session
                .partitions
                .iter_mut()
                .find(|(cached, _)| cached.key() == p.key())
            {
                Some((cached, _)) => *cached = p,
                None => session.partitions.push((p, None)),
            }
        }
        session.partitions.retain(|(p, _)| {
            !forgotten
                .iter()
                .any(|(topic, id, index)| p.key() == (topic.0.as_str(), *id, *index))
        });
        session.epoch = next_epoch(epoch);
        session.last_used = now;
        let partitions = session.partitions.clone();
        self.publish(&sessions);
        Ok((
            SessionFetch::Incremental {
                id: session_id,
                partitions,
            },
            Vec::new(),
        ))
    }

    /// A new session with `partitions`, in a free slot or one taken from a session idle for
    /// the eviction time; 0 if there is none.
    fn open(
        &self,
        sessions: &mut HashMap<i32, Session>,
        by_id: bool,
        partitions: &[FetchPartitionState],
        now: Instant,
    ) -> i32 {
        if self.slots == 0 {
            return 0;
        }
        if sessions.len() >= self.slots {
            let stale = sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) >= self.eviction)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match stale {
                Some(id) => {
                    sessions.remove(&id);
                    KAFKA.fetch_session_evicted();
                }
                None => return 0,
            }
        }
        let id = loop {
            let id = (Uuid::new_v4().as_u128() as i32) & i32::MAX;
            if id != 0 && !sessions.contains_key(&id) {
                break id;
            }
        };
        sessions.insert(
            id,
            Session {
                epoch: next_epoch(INITIAL_EPOCH),
                by_id,
                partitions: partitions.iter().cloned().map(|p| (p, None)).collect(),
                last_used: now,
            },
        );
        id
    }

    /// Records what a session's answer told the client of each partition it included, and
    /// moves the partitions that returned records to the end of the session, so that the
    /// next fetch gives the others the first share of its bytes (Kafka does the same).
    pub fn answered(&self, session_id: i32, sent: &[((&str, Uuid, i32), Sent, bool)]) {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(&session_id) else {
            return;
        };
        let mut moved = Vec::new();
        for (key, answer, had_records) in sent {
            let Some(at) = session.partitions.iter().position(|(p, _)| p.key() == *key) else {
                continue;
            };
            session.partitions[at].1 = Some(*answer);
            if *had_records {
                moved.push(session.partitions.remove(at));
            }
        }
        session.partitions.extend(moved);
    }

    fn publish(&self, sessions: &HashMap<i32, Session>) {
        let partitions = sessions.values().map(|s| s.partitions.len()).sum::<usize>();
        KAFKA.fetch_sessions(sessions.len(), partitions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn partition(topic: &str, index: i32, fetch_offset: i64) -> FetchPartitionState {
        FetchPartitionState {
            topic: TopicName(StrBytes::from_string(topic.to_owned())),
            topic_id: Uuid::nil(),
            index,
            fetch_offset,
            partition_max_bytes: 1 << 20,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            log_start_offset: -1,
        }
    }

    fn offsets(fetch: &SessionFetch) -> Vec<(i32, i64)> {
        match fetch {
            SessionFetch::Incremental { partitions, .. } => partitions
                .iter()
                .map(|(p, _)| (p.index, p.fetch_offset))
                .collect(),
            SessionFetch::Full { .. } => Vec::new(),
        }
    }

    #[test]
    fn a_session_follows_its_epochs_and_keeps_its_partitions() {
        let sessions = FetchSessions::default();
        let all = vec![partition("t", 0, 0), partition("t", 1, 0)];
        let (fetch, full) = sessions
            .begin((0, INITIAL_EPOCH), false, all, Vec::new())
            .unwrap();
        let SessionFetch::Full { id } = fetch else {
            panic!("{fetch:?}")
        };
        assert!(id > 0);
        assert_eq!(full.len(), 2);
        // Epoch 1: partition 1 moved on; partition 0 stays where it was.
        let (fetch, _) = sessions
            .begin((id, 1), false, vec![partition("t", 1, 5)], Vec::new())
            .unwrap();
        assert_eq!(offsets(&fetch), [(0, 0), (1, 5)]);
        // The same epoch again is stale; a wrong session is unknown; names for ids refused.
        let stale = sessions.begin((id, 1), false, Vec::new(), Vec::new());
        assert!(matches!(
            stale,
            Err(ResponseError::InvalidFetchSessionEpoch)
        ));
        let unknown = sessions.begin((id ^ 1, 2), false, Vec::new(), Vec::new());
        assert!(matches!(
            unknown,
            Err(ResponseError::FetchSessionIdNotFound)
        ));
        let by_id = sessions.begin((id, 2), true, Vec::new(), Vec::new());
        assert!(matches!(
            by_id,
            Err(ResponseError::FetchSessionTopicIdError)
        ));
        // Epoch 2 forgets partition 0 and adds another topic's.
        let forget = vec![(TopicName(StrBytes::from_static_str("t")), Uuid::nil(), 0)];
        let (fetch, _) = sessions
            .begin((id, 2), false, vec![partition("u", 0, 7)], forget)
            .unwrap();
        assert_eq!(offsets(&fetch), [(1, 5), (0, 7)]);
        // A partition that returned records goes last.
        sessions.answered(
            id,
            &[(
                ("t", Uuid::nil(), 1),
                Sent {
                    high_watermark: 9,
                    last_stable_offset: 9,
                    log_start_offset: 0,
                },
                true,
            )],
        );
        let (fetch, _) = sessions
            .begin((id, 3), false, Vec::new(), Vec::new())
            .unwrap();
        assert_eq!(offsets(&fetch), [(0, 7), (1, 5)]);
        // Epoch -1 closes it.
        sessions
            .begin((id, FINAL_EPOCH), false, Vec::new(), Vec::new())
            .unwrap();
        let closed = sessions.begin((id, 4), false, Vec::new(), Vec::new());
        assert!(matches!(closed, Err(ResponseError::FetchSessionIdNotFound)));
    }

    #[test]
    fn a_full_cache_replaces_only_an_idle_session() {
        let sessions = FetchSessions::new(1, Duration::from_millis(50));
        let open = |sessions: &FetchSessions| match sessions
            .begin(
                (0, INITIAL_EPOCH),
                false,
                vec![partition("t", 0, 0)],
                Vec::new(),
            )
            .unwrap()
            .0
        {
            SessionFetch::Full { id } => id,
            other => panic!("{other:?}"),
        };
        let first = open(&sessions);
        assert!(first > 0);
        assert_eq!(open(&sessions), 0, "no slot while the first is in use");
        std::thread::sleep(Duration::from_millis(60));
        let second = open(&sessions);
        assert!(second > 0 && second != first, "the idle one was replaced");
        let gone = sessions.begin((first, 1), false, Vec::new(), Vec::new());
        assert!(matches!(gone, Err(ResponseError::FetchSessionIdNotFound)));
    }
}
