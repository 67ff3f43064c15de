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
