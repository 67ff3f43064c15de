//! DeleteRecords (key 21, KIP-107): moves partitions' log start offsets up, deleting the
//! records below, as `Admin.deleteRecords` and `kafka-delete-records.sh` do. Each partition
//! answers once every in-sync replica deleted them (its low watermark), or times out.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{Ctx, HandleError, later};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{Operation, ResourceType};

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: DeleteRecordsRequest,
) -> Result<Reply, HandleError> {
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let topics: Vec<_> = request
        .topics
        .into_iter()
        .map(|topic| {
            let access = ctx.check(
                Operation::Delete,
                ResourceType::Topic,
                topic.name.0.as_str(),
            );
            (topic, access)
        })
        .collect();
    let broker = Arc::clone(ctx.broker);
    Ok(later(ctx, async move {
        let mut results = Vec::new();
        for (topic, access) in topics {
            let name = topic.name.0.to_string();
            let answers = join_all(topic.partitions.iter().map(|p| {
                let (broker, name, access) = (&broker, &name, access.clone());
                async move {
                    let result: Result<i64, BrokerError> = match access {
                        Ok(()) => {
                            broker
                                .delete_records(name, p.partition_index, p.offset, timeout)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    let (low_watermark, error_code) = match result {
                        Ok(low) => (low, 0),
                        Err(e) => (-1, e.code()),
                    };
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(low_watermark)
                        .with_error_code(error_code)
                }
            }))
            .await;
            results.push(
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(answers),
            );
        }
        DeleteRecordsResponse::default().with_topics(results)
    }))
}
