//! Request dispatch: header decoding, version checks, one handler module per Kafka API.
//!
//! A malformed request closes the connection, as in Kafka: after an undecodable frame the
//! stream cannot be trusted. Everything decodable gets a response with per-item error codes.

mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod fetch;
mod fetch_encode;
mod incremental_alter_configs;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::broker::Broker;
use crate::connection::Reply;
use crate::response::ResponseFrame;
use crate::server::ServerConfig;
use crate::versions;

/// Why a connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Fewer bytes than a request header.
    #[error("request of {0} bytes is shorter than a request header")]
    Short(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A known API or version Strata does not serve.
    #[error("{key:?} v{version} is not supported")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The bytes do not decode as the announced request.
    #[error("malformed {key:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
    /// A response could not be encoded (a bug, not the client's fault).
    #[error("cannot encode {key:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// The encoder's complaint.
        reason: String,
    },
}

/// The request being handled, for the handlers.
pub(crate) struct Ctx<'a, B> {
    pub broker: &'a Arc<B>,
    pub config: &'a ServerConfig,
    pub key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

impl<B> Ctx<'_, B> {
    /// Encodes `response` with its header for this request's version.
    pub fn encode<R: Encodable + HeaderVersion>(
        &self,
        response: &R,
    ) -> Result<BytesMut, HandleError> {
        encode_response(self.key, self.version, self.correlation_id, response)
    }

    /// A ready reply.
    pub fn respond<R: Encodable + HeaderVersion>(
        &self,
        response: &R,
    ) -> Result<Reply, HandleError> {
        Ok(Reply::Ready(ResponseFrame::bytes(
            self.encode(response)?.freeze(),
        )))
    }
}

pub(crate) fn encode_response<R: Encodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Result<BytesMut, HandleError> {
    let fail = |e: anyhow::Error| HandleError::Encode {
        key,
        version,
        reason: e.to_string(),
    };
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, R::header_version(version))
        .map_err(fail)?;
    response.encode(&mut buf, version).map_err(fail)?;
    Ok(buf)
}

fn decode<T: Decodable>(key: ApiKey, version: i16, body: &mut Bytes) -> Result<T, HandleError> {
    T::decode(body, version).map_err(|e| HandleError::Malformed {
        key,
        version,
        reason: e.to_string(),
    })
}

/// Runs the first phase of one request frame.
pub(crate) fn handle<B: Broker>(
    broker: &Arc<B>,
    config: &ServerConfig,
    frame: Bytes,
) -> Result<Reply, HandleError> {
    // api key (2), api version (2), correlation id (4): read before trusting anything else.
    if frame.len() < 8 {
        return Err(HandleError::Short(frame.len()));
    }
    let mut fixed = &frame[..8];
    let raw_key = fixed.get_i16();
    let version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let key = ApiKey::try_from(raw_key).map_err(|_| HandleError::UnknownApiKey(raw_key))?;
    if !versions::is_served(key, version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: an unknown ApiVersions version gets a v0 answer listing what is served.
            return api_versions::unsupported(correlation_id);
        }
        return Err(HandleError::UnsupportedVersion { key, version });
    }
    let mut body = frame;
    let header =
        RequestHeader::decode(&mut body, key.request_header_version(version)).map_err(|e| {
            HandleError::Malformed {
                key,
                version,
                reason: format!("bad request header: {e}"),
            }
        })?;
    let ctx = Ctx {
        broker,
        config,
        key,
        version,
        correlation_id: header.correlation_id,
    };
    let body = &mut body;
    match key {
        ApiKey::Produce => produce::handle(&ctx, decode(key, version, body)?),
        ApiKey::Fetch => fetch::handle(&ctx, decode(key, version, body)?),
        ApiKey::ListOffsets => list_offsets::handle(&ctx, decode(key, version, body)?),
        ApiKey::Metadata => metadata::handle(&ctx, decode(key, version, body)?),
        ApiKey::OffsetForLeaderEpoch => {
            offset_for_leader_epoch::handle(&ctx, decode(key, version, body)?)
        }
        ApiKey::ApiVersions => api_versions::handle(&ctx, decode(key, version, body)?),
        ApiKey::CreateTopics => create_topics::handle(&ctx, decode(key, version, body)?),
        ApiKey::DeleteTopics => delete_topics::handle(&ctx, decode(key, version, body)?),
        ApiKey::InitProducerId => init_producer_id::handle(&ctx, decode(key, version, body)?),
        ApiKey::DescribeConfigs => describe_configs::handle(&ctx, decode(key, version, body)?),
        ApiKey::AlterConfigs => alter_configs::handle(&ctx, decode(key, version, body)?),
        ApiKey::CreatePartitions => create_partitions::handle(&ctx, decode(key, version, body)?),
        ApiKey::IncrementalAlterConfigs => {
            incremental_alter_configs::handle(&ctx, decode(key, version, body)?)
        }
        ApiKey::DescribeCluster => describe_cluster::handle(&ctx, decode(key, version, body)?),
        _ => Err(HandleError::UnsupportedVersion { key, version }),
    }
}

/// A protocol string from a Rust string.
pub(crate) fn str_bytes(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// Error code and message of a result, for responses with both.
pub(crate) fn error_parts<T>(
    result: &Result<T, crate::broker::BrokerError>,
) -> (i16, Option<StrBytes>) {
    match result {
        Ok(_) => (0, None),
        Err(e) => (e.code(), e.message().map(str_bytes)),
    }
}
