//! ApiVersions (key 18): the APIs and versions served, exactly as implemented.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{Ctx, HandleError, encode_response, str_bytes};
use crate::broker::Broker;
use crate::connection::Reply;
use crate::response::ResponseFrame;
use crate::versions::SUPPORTED_APIS;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.advertised_min)
                .with_max_version(api.max)
        })
        .collect()
}

/// The feature levels this broker supports and runs at (KIP-584), as `kafka-features
/// describe` shows them: `group.version` 1 enables the consumer group protocol (KIP-848),
/// `transaction.version` 2 tells clients to run transactions with epoch bumps (KIP-890 part 2:
/// Produce v12, TxnOffsetCommit v5 and EndTxn v5, no AddPartitionsToTxn or AddOffsetsToTxn).
const FEATURES: &[(&str, i16, i16)] = &[("group.version", 0, 1), ("transaction.version", 0, 2)];

pub(super) fn handle<B: Broker>(
    ctx: &Ctx<'_, B>,
    _request: ApiVersionsRequest,
) -> Result<Reply, HandleError> {
    // Features are tagged fields of v3+; older versions simply do not encode them.
    let response = ApiVersionsResponse::default()
        .with_api_keys(api_keys())
        .with_supported_features(
            FEATURES
                .iter()
                .map(|(name, min, max)| {
                    SupportedFeatureKey::default()
                        .with_name(str_bytes(*name))
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
        // Levels are fixed by the build, so they never change: one epoch.
        .with_finalized_features_epoch(0)
        .with_finalized_features(
            FEATURES
                .iter()
                .map(|(name, _, max)| {
                    FinalizedFeatureKey::default()
                        .with_name(str_bytes(*name))
                        .with_min_version_level(*max)
                        .with_max_version_level(*max)
                })
                .collect(),
        );
    ctx.respond(&response)
}

/// The KIP-511 answer to an ApiVersions version this broker does not know: a v0 response with
/// UNSUPPORTED_VERSION and the served ranges, so the client can retry with a version it shares.
pub(super) fn unsupported(correlation_id: i32) -> Result<Reply, HandleError> {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    crate::metrics::KAFKA.count_errors(ApiKey::ApiVersions, &response);
    let bytes: Bytes = encode_response(ApiKey::ApiVersions, 0, correlation_id, &response)?.freeze();
    Ok(Reply::Ready(ResponseFrame::bytes(bytes)))
}
