//! openraft's own storage test suite against the on-disk log and state machine, plus crash
//! recovery of a torn log.

use std::io::Write;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, StorageError};

use super::{LogStore, NodeId, RecordBatch, StateMachine, TypeConfig};
use crate::record::MetadataRecord;

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(&dir.path().join("log")).expect("log store");
        let sm = StateMachine::open(&dir.path().join("sm")).expect("state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(OnDisk).unwrap();
}

fn entry(index: u64, records: Vec<MetadataRecord>) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(RecordBatch { records }),
    }
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_purges_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogStore::open(dir.path()).unwrap();
    let fence = |id| MetadataRecord::FenceBroker { broker_id: id };
    for index in 1..=5 {
        log.blocking_append_for_test(vec![entry(index, vec![fence(index as i32)])]);
    }
    drop(log);
    // A crash mid-write: half a frame at the end.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("raft.log"))
        .unwrap();
    file.write_all(&[0, 0, 1, 0, 9, 9, 9]).unwrap();
    drop(file);
    let mut log = LogStore::open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.map(|l| l.index), Some(5));
    let entries = log.try_get_log_entries(1..=5).await.unwrap();
    assert_eq!(entries.len(), 5);

    log.purge(LogId::new(CommittedLeaderId::new(1, 1), 3))
        .await
        .unwrap();
    log.blocking_append_for_test(vec![entry(6, vec![fence(6)])]);
    drop(log);
    let mut log = LogStore::open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(3));
    assert_eq!(state.last_log_id.map(|l| l.index), Some(6));
    let indexes: Vec<u64> = log
        .try_get_log_entries(0..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, vec![4, 5, 6]);

    // The state machine applies what the log holds.
    let mut sm = StateMachine::open(&dir.path().join("sm")).unwrap();
    let results = sm
        .apply(log.try_get_log_entries(4..).await.unwrap())
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert!(
        results.iter().all(|r| r.errors.len() == 1),
        "no brokers exist"
    );
    assert_eq!(sm.with_image(|i| i.offset), 6);
}

#[tokio::test]
async fn brokers_catch_up_by_records_or_by_image() {
    use crate::raft::MetadataUpdate;
    use crate::raft::follower::{FollowerUpdate, MetadataFollower};

    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachine::open(dir.path()).unwrap();
    let register = |id: i32| MetadataRecord::RegisterBroker {
        broker_id: id,
        incarnation: uuid::Uuid::new_v4(),
        rack: None,
        listeners: Vec::new(),
    };
    sm.apply((1..=5).map(|i| entry(i, vec![register(i as i32)])))
        .await
        .unwrap();
    // A broker at offset 2 gets entries 3..=5; one at 5 gets nothing.
    match sm.updates_after(2) {
        MetadataUpdate::Records(entries) => {
            assert_eq!(
                entries.iter().map(|e| e.0).collect::<Vec<_>>(),
                vec![3, 4, 5]
            );
        }
        other => panic!("expected records, got {other:?}"),
    }
    assert_eq!(sm.updates_after(5), MetadataUpdate::Records(Vec::new()));
    let mut follower = MetadataFollower::new();
    match follower.apply(sm.updates_after(0)) {
        FollowerUpdate::Changes(changes) => assert_eq!(changes.len(), 5),
        other => panic!("{other:?}"),
    }
    assert_eq!(follower.image(), &sm.with_image(Clone::clone));

    // After a snapshot is installed the recent entries are gone: a broker behind gets the image.
    let snapshot = openraft::RaftSnapshotBuilder::build_snapshot(&mut sm)
        .await
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut fresh = StateMachine::open(other.path()).unwrap();
    fresh
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    let mut behind = MetadataFollower::new();
    assert_eq!(
        behind.apply(fresh.updates_after(1)),
        FollowerUpdate::Replaced
    );
    assert_eq!(behind.image().brokers.len(), 5);
}
