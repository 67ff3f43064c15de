//! SaslHandshake (key 17) and SaslAuthenticate (key 36) on a listener without SASL: Kafka
//! answers ILLEGAL_SASL_STATE. On SASL listeners the connection's gate answers them
//! (`security/gate.rs`).

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use super::{Ctx, HandleError, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;

const ILLEGAL_SASL_STATE: i16 = 34;

pub(super) fn handshake<B: Broker>(
    ctx: &Ctx<'_, B>,
    _request: SaslHandshakeRequest,
) -> Result<Reply, HandleError> {
    ctx.respond(&SaslHandshakeResponse::default().with_error_code(ILLEGAL_SASL_STATE))
}

pub(super) fn authenticate<B: Broker>(
    ctx: &Ctx<'_, B>,
    _request: SaslAuthenticateRequest,
) -> Result<Reply, HandleError> {
    let message = format!(
        "listener {} uses {}, not SASL",
        ctx.session.listener.name, ctx.session.listener.protocol
    );
    ctx.respond(
        &SaslAuthenticateResponse::default()
            .with_error_code(ILLEGAL_SASL_STATE)
            .with_error_message(Some(str_bytes(message))),
    )
}
