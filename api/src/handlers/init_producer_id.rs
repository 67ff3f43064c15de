//! InitProducerId (key 22): producer ids for idempotent producers and epoch bumps (KIP-360);
//! a transactional producer's id and epoch come from its transaction coordinator.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{Ctx, HandleError, later};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};
use crate::txn::TransactionCoordinator;

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    request: InitProducerIdRequest,
) -> Result<Reply, HandleError> {
    // A transactional producer needs WRITE on its id; an idempotent one IDEMPOTENT_WRITE on
    // the cluster, or (KIP-679) WRITE on some topic.
    let allowed = match &request.transactional_id {
        Some(id) => ctx.check(Operation::Write, ResourceType::TransactionalId, id),
        None if ctx.visible(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ) || ctx.broker.may_write_some_topic(ctx.session) =>
        {
            Ok(())
        }
        None => ctx.check(
            Operation::IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ),
    };
    let broker = Arc::clone(ctx.broker);
    let version = ctx.version;
    Ok(later(ctx, async move {
        let result = if let Err(e) = allowed {
            Err(e)
        } else if let Some(id) = &request.transactional_id {
            // KIP-360 (v3+): the producer's own id and epoch, when it has them.
            let expected = (request.producer_id.0 >= 0)
                .then_some((request.producer_id.0, request.producer_epoch));
            broker
                .txns()
                .init_producer_id(id.0.to_string(), request.transaction_timeout_ms, expected)
                .await
        } else if request.producer_id.0 >= 0 {
            broker
                .init_producer_id(Some((request.producer_id.0, request.producer_epoch)))
                .await
        } else {
            broker.init_producer_id(None).await
        };
        match result {
            Ok((id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(e) => InitProducerIdResponse::default()
                .with_error_code(super::txn::fenced_code(&e, version, 4))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        }
    }))
}
