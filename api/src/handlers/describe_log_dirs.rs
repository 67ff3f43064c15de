//! DescribeLogDirs (key 35): the broker's log directory, its volume, and the size and offset
//! lag of each partition replica in it (`kafka-log-dirs.sh`, admin tools).

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DescribeLogDirsRequest,
) -> Result<Reply, HandleError> {
    if let Err(e) = ctx.check(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        // The top-level error exists from v3; before, Kafka answers with no directories.
        return ctx.respond(
            &DescribeLogDirsResponse::default().with_error_code(if ctx.version >= 3 {
                e.code()
            } else {
                0
            }),
        );
    }
    // Null topics: every partition here; otherwise only those named.
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let dir = ctx.broker.log_dir();
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for replica in dir.replicas {
        if let Some(wanted) = &wanted
            && !wanted
                .iter()
                .any(|(t, ps)| *t == replica.topic && ps.contains(&replica.partition))
        {
            continue;
        }
        let partition = DescribeLogDirsPartition::default()
            .with_partition_index(replica.partition)
            .with_partition_size(replica.size as i64)
            .with_offset_lag(replica.offset_lag as i64);
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == replica.topic)
        {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(replica.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(dir.path))
        .with_topics(topics)
        .with_total_bytes(dir.total_bytes.map_or(-1, |b| b as i64))
        .with_usable_bytes(dir.usable_bytes.map_or(-1, |b| b as i64));
    ctx.respond(&DescribeLogDirsResponse::default().with_results(vec![result]))
}
