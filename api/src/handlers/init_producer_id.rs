//! InitProducerId (key 22): producer ids for idempotent producers, and epoch bumps (KIP-360).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{Ctx, HandleError, later};
use crate::broker::{Broker, BrokerError};
use crate::connection::Reply;
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

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
    Ok(later(ctx, async move {
        let result = if let Err(e) = allowed {
            Err(e)
        } else if request.transactional_id.is_some() {
            Err(BrokerError::Unsupported(
                "transactional producers are not supported yet".into(),
            ))
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
                .with_error_code(e.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        }
    }))
}
