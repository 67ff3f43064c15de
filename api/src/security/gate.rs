//! The SASL gate of a connection: on a SASL listener, nothing but ApiVersions and the SASL
//! exchange is served until the client has authenticated, and once its session expires
//! (`connections.max.reauth.ms`, KIP-368) nothing but a new exchange.
//!
//! SaslHandshake v1 carries the tokens in SaslAuthenticate requests; after SaslHandshake v0
//! they travel as bare length-prefixed frames. A failed authentication is answered after
//! `connection.failed.authentication.delay.ms` and the connection closed, with one message
//! that never says whether the user exists.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use tokio::time::Instant;

use super::sasl::{Exchange, Mechanism, SaslConfig};
use super::scram::Step;
use super::{KafkaPrincipal, Session};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::handlers::encode_response;
use crate::metrics::{ErrorCodes, KAFKA};
use crate::request::{self, Decoded, HandleError};
use crate::response::ResponseFrame;

/// A session that authenticated.
#[derive(Debug, Clone, Copy)]
struct Authenticated {
    mechanism: Mechanism,
    expires: Option<Instant>,
}

impl Authenticated {
    fn expired(&self) -> bool {
        self.expires.is_some_and(|at| Instant::now() >= at)
    }
}

enum State {
    /// Not a SASL listener.
    Open,
    /// Waiting for SaslHandshake; `previous` is the session being re-authenticated.
    Handshake { previous: Option<Authenticated> },
    /// Mid-exchange.
    Token {
        mechanism: Mechanism,
        exchange: Exchange,
        /// SaslHandshake v0: tokens are bare frames.
        raw: bool,
        previous: Option<Authenticated>,
    },
    /// Authenticated.
    Done(Authenticated),
}

/// What to do with a frame.
pub enum Verdict {
    /// A Kafka request for the handlers.
    Serve,
    /// Answered here.
    Reply(Reply),
    /// Answered here, then the connection closes.
    ReplyAndClose(Reply),
    /// Close the connection, for this reason.
    Close(String),
}

/// A connection's SASL state.
pub struct Gate {
    config: Option<Arc<SaslConfig>>,
    state: State,
}

/// What every failed authentication tells the client, whatever the cause (Kafka's words).
fn failure_message(mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    )
}

impl Gate {
    /// The gate of a connection on a listener with these SASL settings (`None`: no SASL).
    pub fn new(config: Option<Arc<SaslConfig>>) -> Self {
        let state = match config {
            Some(_) => State::Handshake { previous: None },
            None => State::Open,
        };
        Self { config, state }
    }

    /// Whether the client has not authenticated yet (so frames are bounded by
    /// `sasl.server.max.receive.size`).
    pub fn unauthenticated(&self) -> bool {
        match &self.state {
            State::Open | State::Done(_) => false,
            State::Handshake { previous } | State::Token { previous, .. } => previous.is_none(),
        }
    }

    /// Decides what to do with a frame; `session` takes the principal a client authenticates as.
    pub fn admit<B: Broker>(
        &mut self,
        frame: &Bytes,
        session: &mut Session,
        broker: &Arc<B>,
    ) -> Result<Verdict, HandleError> {
        let Some(config) = self.config.clone() else {
            return Ok(Verdict::Serve);
        };
        if let State::Token { raw: true, .. } = self.state {
            return Ok(self.raw_token(frame, session, broker, &config));
        }
        let key = frame
            .get(..2)
            .and_then(|k| ApiKey::try_from(i16::from_be_bytes([k[0], k[1]])).ok());
        match key {
            Some(ApiKey::ApiVersions) => Ok(Verdict::Serve),
            Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => {
                self.sasl_request(frame.clone(), session, broker, &config)
            }
            _ => Ok(match &self.state {
                State::Open => Verdict::Serve,
                State::Done(auth) if auth.expired() => Verdict::Close(
                    "the session expired (connections.max.reauth.ms) without re-authentication"
                        .into(),
                ),
                State::Done(_) => Verdict::Serve,
                // A re-authentication under way: the old session serves until it expires.
                State::Handshake {
                    previous: Some(auth),
                }
                | State::Token {
                    previous: Some(auth),
                    ..
                } => {
                    if auth.expired() {
                        Verdict::Close("the session expired during re-authentication".into())
                    } else {
                        Verdict::Serve
                    }
                }
                State::Handshake { previous: None } | State::Token { previous: None, .. } => {
                    Verdict::Close(format!(
                        "a {} request before SASL authentication",
                        key.map_or("unknown".to_owned(), |k| format!("{k:?}"))
                    ))
                }
            }),
        }
    }

    fn sasl_request<B: Broker>(
        &mut self,
        frame: Bytes,
        session: &mut Session,
        broker: &Arc<B>,
        config: &SaslConfig,
    ) -> Result<Verdict, HandleError> {
        let request = match request::decode(frame)? {
            Decoded::UnsupportedApiVersions { .. } => {
                return Ok(Verdict::Close("an unsupported SASL request version".into()));
            }
            Decoded::Request(request) => request,
        };
        let (key, version, correlation_id) =
            (request.key, request.version, request.header.correlation_id);
        let answer = Answer {
            key,
            version,
            correlation_id,
        };
        match request.body {
            RequestKind::SaslHandshake(handshake) => {
                let names: Vec<StrBytes> = config
                    .mechanism_names()
                    .into_iter()
                    .map(StrBytes::from_static_str)
                    .collect();
                let previous = match &self.state {
                    State::Handshake { previous } => *previous,
                    State::Done(auth) => Some(*auth),
                    State::Token { .. } | State::Open => {
                        let response = SaslHandshakeResponse::default()
                            .with_error_code(34)
                            .with_mechanisms(names);
                        let reply = Reply::Ready(answer.frame(&response)?);
                        return Ok(Verdict::ReplyAndClose(reply));
                    }
                };
                let wanted = handshake.mechanism.to_string();
                let mechanism = config.mechanism(&wanted).filter(|m| {
                    // Re-authentication keeps the mechanism (KIP-368).
                    previous.is_none_or(|p| p.mechanism == *m)
                });
                let Some(mechanism) = mechanism else {
                    tracing::info!(peer = %session.peer, listener = %session.listener.name, mechanism = %wanted, "closing connection: SASL mechanism not enabled");
                    let response = SaslHandshakeResponse::default()
                        .with_error_code(33)
                        .with_mechanisms(names);
                    let reply = Reply::Ready(answer.frame(&response)?);
                    return Ok(Verdict::ReplyAndClose(reply));
                };
                self.state = State::Token {
                    mechanism,
                    exchange: Exchange::new(mechanism),
                    raw: version == 0,
                    previous,
                };
                let response = SaslHandshakeResponse::default().with_mechanisms(names);
                Ok(Verdict::Reply(Reply::Ready(answer.frame(&response)?)))
            }
            RequestKind::SaslAuthenticate(authenticate) => {
                let State::Token { raw: false, .. } = self.state else {
                    let response = SaslAuthenticateResponse::default()
                        .with_error_code(34)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "SaslAuthenticate is not expected in this state of the SASL exchange",
                        )));
                    let reply = Reply::Ready(answer.frame(&response)?);
                    return Ok(Verdict::ReplyAndClose(reply));
                };
                let (step, mechanism) =
                    self.step(&authenticate.auth_bytes, session, broker, config);
                let response = SaslAuthenticateResponse::default();
                match step {
                    Outcome::Continue(bytes) => {
                        let response = response.with_auth_bytes(Bytes::from(bytes));
                        Ok(Verdict::Reply(Reply::Ready(answer.frame(&response)?)))
                    }
                    Outcome::Done(bytes, lifetime) => {
                        let response = response
                            .with_auth_bytes(Bytes::from(bytes))
                            .with_session_lifetime_ms(lifetime.map_or(0, |l| l.as_millis() as i64));
                        Ok(Verdict::Reply(Reply::Ready(answer.frame(&response)?)))
                    }
                    Outcome::Failed => {
                        let response = response.with_error_code(58).with_error_message(Some(
                            StrBytes::from_string(failure_message(mechanism)),
                        ));
                        Ok(Verdict::ReplyAndClose(delayed(
                            answer.frame(&response)?,
                            config.failure_delay,
                        )))
                    }
                }
            }
            _ => Ok(Verdict::Close(
                "a request other than SASL's where one was expected".into(),
            )),
        }
    }

    /// A bare token after SaslHandshake v0.
    fn raw_token<B: Broker>(
        &mut self,
        frame: &Bytes,
        session: &mut Session,
        broker: &Arc<B>,
        config: &SaslConfig,
    ) -> Verdict {
        match self.step(frame, session, broker, config).0 {
            Outcome::Continue(bytes) | Outcome::Done(bytes, _) => {
                Verdict::Reply(Reply::Ready(ResponseFrame::bytes(Bytes::from(bytes))))
            }
            // A v0 client learns of the failure by the connection closing.
            Outcome::Failed => {
                let delay = config.failure_delay;
                Verdict::ReplyAndClose(Reply::Later(Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    Err(HandleError::Closed("SASL authentication failed".into()))
                })))
            }
        }
    }

    fn step<B: Broker>(
        &mut self,
        token: &[u8],
        session: &mut Session,
        broker: &Arc<B>,
        config: &SaslConfig,
    ) -> (Outcome, Mechanism) {
        let State::Token {
            mechanism,
            exchange,
            previous,
            ..
        } = &mut self.state
        else {
            unreachable!("only called mid-exchange");
        };
        let (mechanism, previous) = (*mechanism, *previous);
        let listener = session.listener.name.clone();
        let lookup = |user: &str| match mechanism {
            Mechanism::Scram(m) => broker.scram_credential(user, m),
            Mechanism::Plain => None,
        };
        let step = exchange.step(token, config, &lookup);
        let outcome = match step {
            Step::Continue(bytes) => return (Outcome::Continue(bytes), mechanism),
            Step::Done(principal, bytes) => {
                if previous.is_some() && principal != session.principal {
                    fail(
                        session,
                        mechanism,
                        &format!("re-authenticated as {principal}, not {}", session.principal),
                    )
                } else {
                    let lifetime = config.reauth;
                    tracing::debug!(peer = %session.peer, %listener, %principal, mechanism = mechanism.name(), "authenticated");
                    session.principal = principal;
                    self.state = State::Done(Authenticated {
                        mechanism,
                        expires: lifetime.map(|l| Instant::now() + l),
                    });
                    KAFKA.sasl_authentication(&listener, mechanism.name(), "ok");
                    return (Outcome::Done(bytes, lifetime), mechanism);
                }
            }
            Step::Failed(reason) => fail(session, mechanism, &reason),
        };
        self.state = State::Handshake { previous: None };
        session.principal = KafkaPrincipal::anonymous();
        (outcome, mechanism)
    }
}

fn fail(session: &Session, mechanism: Mechanism, reason: &str) -> Outcome {
    tracing::info!(peer = %session.peer, listener = %session.listener.name, mechanism = mechanism.name(), "SASL authentication failed: {reason}");
    KAFKA.sasl_authentication(&session.listener.name, mechanism.name(), "failed");
    Outcome::Failed
}

/// Where a SASL response goes: its request's API, version and correlation id.
struct Answer {
    key: ApiKey,
    version: i16,
    correlation_id: i32,
}

impl Answer {
    /// The encoded response frame, its error codes counted as the handlers' are.
    fn frame<R: Encodable + HeaderVersion + ErrorCodes>(
        &self,
        response: &R,
    ) -> Result<ResponseFrame, HandleError> {
        KAFKA.count_errors(self.key, response);
        let bytes = encode_response(self.key, self.version, self.correlation_id, response)?;
        Ok(ResponseFrame::bytes(bytes.freeze()))
    }
}

/// A response sent only after `delay`, so that guessing passwords is slow.
fn delayed(frame: ResponseFrame, delay: Duration) -> Reply {
    Reply::Later(Box::pin(async move {
        tokio::time::sleep(delay).await;
        Ok(frame)
    }))
}

enum Outcome {
    Continue(Vec<u8>),
    Done(Vec<u8>, Option<Duration>),
    Failed,
}
