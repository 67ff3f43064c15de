//! Consumer lag: how far each group's committed offsets trail the partitions' ends.

use crate::broker::StrataBroker;

/// One partition's lag for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset (the next record the group will read).
    pub committed: i64,
    /// The partition's high watermark (what a consumer can read up to).
    pub log_end: i64,
    /// `log_end - committed`, never negative.
    pub lag: i64,
}

/// The lag of every committed partition of every group (of `group` only, if given), sorted by
/// group, topic and partition: ready for a CLI table or a metrics endpoint.
pub fn lags(broker: &StrataBroker, group: Option<&str>) -> Vec<PartitionLag> {
    let mut out = Vec::new();
    for (group_id, offsets) in broker.groups_state().committed() {
        if group.is_some_and(|g| g != group_id) {
            continue;
        }
        for ((topic, partition), committed) in offsets {
            let Some(p) = broker.replicas().get(&topic, partition) else {
                continue;
            };
            let log_end = p.high_watermark() as i64;
            out.push(PartitionLag {
                group: group_id.clone(),
                topic,
                partition,
                committed,
                log_end,
                lag: (log_end - committed).max(0),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strata_api::Broker;
    use strata_api::broker::NewTopic;
    use strata_api::group::{Committer, GroupCoordinator, OffsetToCommit};

    use super::{PartitionLag, lags};
    use crate::config::BrokerConfig;
    use crate::log::batch::tests::sample_batch;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lag_is_the_distance_from_commit_to_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig::from_entries(BTreeMap::from([
            ("log.dirs".to_owned(), dir.path().display().to_string()),
            ("listeners".to_owned(), "127.0.0.1:0".to_owned()),
        ]))
        .unwrap();
        let (broker, controller) = crate::cluster::single_node(config).await;
        broker
            .coordinator()
            .find_coordinator("g".into())
            .await
            .unwrap();
        broker
            .create_topic(
                NewTopic {
                    name: "t".into(),
                    partitions: Some(2),
                    replication_factor: None,
                    assignments: BTreeMap::new(),
                    configs: BTreeMap::new(),
                },
                false,
            )
            .await
            .unwrap();
        for (partition, records) in [(0, 10), (1, 4)] {
            let appended = broker
                .append(
                    "t",
                    partition,
                    sample_batch(records, 1, None).into(),
                    -1,
                    None,
                )
                .unwrap();
            broker
                .wait_acked("t", partition, appended.next_offset, -1)
                .await
                .unwrap();
        }
        let commit = |partition, offset| OffsetToCommit {
            topic: "t".into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        };
        let standalone = Committer {
            transaction: None,
            member_id: String::new(),
            group_instance_id: None,
            generation: -1,
        };
        let results = broker
            .coordinator()
            .commit_offsets("g", standalone, vec![commit(0, 7), commit(1, 4)])
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        let row = |partition, committed, log_end, lag| PartitionLag {
            group: "g".into(),
            topic: "t".into(),
            partition,
            committed,
            log_end,
            lag,
        };
        assert_eq!(lags(&broker, None), vec![row(0, 7, 10, 3), row(1, 4, 4, 0)]);
        assert!(lags(&broker, Some("other")).is_empty());
        controller.shutdown().await;
    }
}
