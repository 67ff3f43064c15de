//! A broker-side follower keeps its image equal to the controllers' by fetching the metadata
//! log over the controller listener, from any controller.

use std::collections::BTreeMap;
use std::time::Duration;

use strata_controller::MetadataRecord;
use strata_controller::raft::follower::{FollowerUpdate, MetadataFollower};
use strata_controller::raft::{Controller, QuorumConfig};
use tokio::net::TcpListener;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_tracks_the_committed_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let quorum = QuorumConfig {
        election_timeout: Duration::from_millis(200),
        heartbeat: Duration::from_millis(50),
        ..QuorumConfig::default()
    };
    let controller = Controller::start(1, tmp.path(), listener, quorum)
        .await
        .unwrap();
    controller
        .bootstrap(&BTreeMap::from([(1, addr.clone())]))
        .await
        .unwrap();
    let topic = |n: usize| MetadataRecord::CreateTopic {
        name: format!("t{n}"),
        topic_id: Uuid::new_v4(),
        configs: BTreeMap::new(),
    };
    let controllers = vec![addr];
    let mut follower = MetadataFollower::new();
    // The first active controller sets the cluster id: start after that record.
    while controller.state.with_image(|i| i.cluster_id.is_none()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    follower.poll(&controllers, Duration::ZERO).await.unwrap();
    assert!(follower.image().cluster_id.is_some());
    let mut written = 0;
    for round in 0..3 {
        for _ in 0..10 {
            loop {
                if controller.write(vec![topic(written)]).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            written += 1;
        }
        let update = follower.poll(&controllers, Duration::ZERO).await.unwrap();
        let FollowerUpdate::Changes(changes) = update else {
            panic!("a follower this close gets records, not the image");
        };
        assert_eq!(changes.len(), 10, "round {round}: only what is new");
        assert_eq!(follower.image(), &controller.state.with_image(Clone::clone));
    }
    controller.shutdown().await;
}
