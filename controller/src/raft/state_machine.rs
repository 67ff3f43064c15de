//! The raft state machine: committed metadata records applied to the [`MetadataImage`].
//!
//! A snapshot is the image with the raft position it covers, written atomically to
//! `snapshot.json`. After a restart the image comes from the snapshot and openraft re-applies
//! the log entries after it, so the image itself needs no other persistence.

use std::collections::VecDeque;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::log_store::{read_json, write_atomic};
use super::{ApplyResult, NodeId, TypeConfig};
use crate::image::MetadataImage;
use crate::record::MetadataRecord;

/// The snapshot file in the controller's directory.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// A snapshot as stored and sent to other voters.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    image: MetadataImage,
}

/// The applied state.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    image: MetadataImage,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    /// The latest snapshot's bytes and meta.
    snapshot: Option<(SnapshotMeta<NodeId, openraft::BasicNode>, Vec<u8>)>,
    snapshots_built: u64,
    /// The latest applied entries (index, records), for brokers following the metadata log.
    recent: VecDeque<(u64, Vec<MetadataRecord>)>,
    /// Records in `recent`.
    recent_records: usize,
}

/// Records kept for brokers fetching the metadata log (in whole entries, at least the last
/// one); a broker further behind gets the image. Bounded by records, not entries: one entry
/// can carry a topic with thousands of partitions.
const RECENT_RECORDS: usize = 100_000;

/// What a broker following the metadata log receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataUpdate {
    /// The entries after the broker's offset: (index, records), in order.
    Records(Vec<(u64, Vec<MetadataRecord>)>),
    /// The whole image: the broker was too far behind.
    Image(Box<MetadataImage>),
}

/// The metadata state machine of one controller (shared with readers of the image).
#[derive(Debug, Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    /// The image offset, for brokers long-polling the metadata log.
    applied: Arc<watch::Sender<u64>>,
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        openraft::AnyError::error(e),
    )
    .into()
}

impl StateMachine {
    /// Opens the state machine in `dir`, starting from its snapshot if there is one.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| super::log_store::at(dir, e))?;
        let stored: Option<StoredSnapshot> = read_json(dir, SNAPSHOT_FILE)?;
        let (image, last_applied, membership, snapshot) = match stored {
            Some(stored) => {
                let bytes = serde_json::to_vec(&stored)?;
                (
                    stored.image,
                    stored.meta.last_log_id,
                    stored.meta.last_membership.clone(),
                    Some((stored.meta, bytes)),
                )
            }
            None => (
                MetadataImage::default(),
                None,
                StoredMembership::default(),
                None,
            ),
        };
        let applied = Arc::new(watch::Sender::new(image.offset));
        Ok(Self {
            applied,
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_owned(),
                image,
                last_applied,
                membership,
                snapshot,
                snapshots_built: 0,
                recent: VecDeque::new(),
                recent_records: 0,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `read` on the current image.
    pub fn with_image<T>(&self, read: impl FnOnce(&MetadataImage) -> T) -> T {
        read(&self.lock().image)
    }

    /// Like [`Self::updates_after`], but waits up to `wait` for something new first.
    pub async fn updates_after_wait(&self, after: u64, wait: Duration) -> MetadataUpdate {
        let mut applied = self.applied.subscribe();
        let _ = tokio::time::timeout(wait, applied.wait_for(|offset| *offset > after)).await;
        self.updates_after(after)
    }

    /// What a broker whose image is at `after` needs to catch up.
    pub fn updates_after(&self, after: u64) -> MetadataUpdate {
        let inner = self.lock();
        if after >= inner.image.offset {
            return MetadataUpdate::Records(Vec::new());
        }
        match inner.recent.front() {
            Some((first, _)) if *first <= after + 1 => MetadataUpdate::Records(
                inner
                    .recent
                    .iter()
                    .filter(|(index, _)| *index > after)
                    .cloned()
                    .collect(),
            ),
            _ => MetadataUpdate::Image(Box::new(inner.image.clone())),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.snapshots_built += 1;
        let snapshot_id = format!(
            "{}-{}",
            inner.last_applied.map_or(0, |l| l.index),
            inner.snapshots_built
        );
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image: inner.image.clone(),
        };
        write_atomic(&inner.dir, SNAPSHOT_FILE, &stored)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let bytes = serde_json::to_vec(&stored).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        inner.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, openraft::BasicNode>,
        ),
        StorageError<NodeId>,
    > {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.lock();
        let mut results = Vec::new();
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            let mut result = ApplyResult {
                index: entry.log_id.index,
                errors: Vec::new(),
            };
            let index = entry.log_id.index;
            let mut applied = Vec::new();
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    for record in batch.records {
                        match inner.image.apply(index, &record) {
                            Ok(_) => applied.push(record),
                            Err(e) => result.errors.push(e.to_string()),
                        }
                    }
                }
                EntryPayload::Membership(membership) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), membership);
                }
            }
            inner.image.offset = index;
            // Every entry, even an empty one, so that the kept range has no holes.
            inner.recent_records += applied.len();
            inner.recent.push_back((index, applied));
            while inner.recent_records > RECENT_RECORDS && inner.recent.len() > 1 {
                if let Some((_, dropped)) = inner.recent.pop_front() {
                    inner.recent_records -= dropped.len();
                }
            }
            results.push(result);
        }
        let offset = inner.image.offset;
        drop(inner);
        self.applied.send_replace(offset);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let mut stored: StoredSnapshot =
            serde_json::from_slice(&bytes).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        stored.meta = meta.clone();
        let mut inner = self.lock();
        write_atomic(&inner.dir, SNAPSHOT_FILE, &stored)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        inner.image = stored.image;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some((meta.clone(), bytes));
        inner.recent.clear();
        inner.recent_records = 0;
        let offset = inner.image.offset;
        drop(inner);
        self.applied.send_replace(offset);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.lock();
        Ok(inner.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}
