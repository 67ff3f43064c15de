//! Request dispatch: header decoding, version checks, one handler module per Kafka API.
//!
//! Decoding lives in `request.rs`; here each decoded request goes to its API's handler, which
//! answers with per-item error codes.

mod acls;
mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_quorum;
mod describe_topic_partitions;
mod elect_leaders;
mod fetch;
mod fetch_encode;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_config_resources;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sasl;
mod scram_credentials;
mod sync_group;
mod txn;
mod txn_offset_commit;
mod txn_verify;
mod write_txn_markers;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

use crate::broker::Broker;
use crate::connection::Reply;
use crate::metrics::{ErrorCodes, KAFKA};
pub(crate) use crate::request::HandleError;
use crate::request::{self, Decoded};
use crate::response::ResponseFrame;
use crate::security::Session;
use crate::security::acl::{Operation, ResourceType};
use crate::server::ServerConfig;

/// The request being handled, for the handlers.
pub(crate) struct Ctx<'a, B> {
    pub broker: &'a Arc<B>,
    pub config: &'a ServerConfig,
    pub key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    /// The client's `client.id` from the request header.
    pub client_id: String,
    /// The client's address, as Kafka reports it (`/127.0.0.1`).
    pub client_host: String,
    /// The connection's listener and principal.
    pub session: &'a Session,
}

impl<B: Broker> Ctx<'_, B> {
    /// Whether the connection's principal may do `operation` on the resource; a denial is
    /// logged (as Kafka's authorizer logger does) and counted.
    pub fn allowed(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let allowed = self
            .broker
            .authorize(self.session, operation, resource_type, name);
        if !allowed {
            KAFKA.authorization_denied(self.key);
            tracing::info!(
                target: "strata::authorizer",
                principal = %self.session.principal,
                host = %self.session.peer.ip(),
                api = ?self.key,
                "denied {} on {} '{name}'",
                operation.name(),
                resource_type.name()
            );
        }
        allowed
    }

    /// [`Self::allowed`] for lists the principal sees only part of: not logged.
    pub fn visible(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.broker
            .authorize(self.session, operation, resource_type, name)
    }

    /// `Ok` if allowed, else the authorization error of the resource type.
    pub fn check(
        &self,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<(), crate::broker::BrokerError> {
        use crate::broker::BrokerError;
        if self.allowed(operation, resource_type, name) {
            return Ok(());
        }
        Err(match resource_type {
            ResourceType::Topic => BrokerError::TopicAuthorizationFailed,
            ResourceType::Group => BrokerError::GroupAuthorizationFailed,
            ResourceType::Cluster => BrokerError::ClusterAuthorizationFailed,
            ResourceType::TransactionalId => BrokerError::TransactionalIdAuthorizationFailed,
        })
    }

    /// The KIP-430 bit field of `operations` the principal may do on the resource.
    pub fn authorized_operations(
        &self,
        operations: &[Operation],
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        authorized_operations(
            self.broker.as_ref(),
            self.session,
            operations,
            resource_type,
            name,
        )
    }
}

/// The KIP-430 bit field of `operations` `session` may do on the resource.
pub(crate) fn authorized_operations<B: Broker>(
    broker: &B,
    session: &Session,
    operations: &[Operation],
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    operations
        .iter()
        .filter(|o| broker.authorize(session, **o, resource_type, name))
        .fold(0, |bits, o| bits | (1 << o.code()))
}

/// The topic operations KIP-430 reports.
pub(crate) const TOPIC_OPERATIONS: &[Operation] = &[
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

/// The cluster operations KIP-430 reports.
pub(crate) const CLUSTER_OPERATIONS: &[Operation] = &[
    Operation::Create,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::Alter,
    Operation::Describe,
];

impl<B> Ctx<'_, B> {
    /// Encodes `response` with its header for this request's version.
    pub fn encode<R: Encodable + HeaderVersion>(
        &self,
        response: &R,
    ) -> Result<BytesMut, HandleError> {
        encode_response(self.key, self.version, self.correlation_id, response)
    }

    /// A ready reply.
    pub fn respond<R: Encodable + HeaderVersion + ErrorCodes>(
        &self,
        response: &R,
    ) -> Result<Reply, HandleError> {
        KAFKA.count_errors(self.key, response);
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

/// Runs the first phase of one request frame.
pub(crate) fn handle<B: Broker>(
    broker: &Arc<B>,
    config: &ServerConfig,
    session: &Session,
    frame: Bytes,
) -> Result<Reply, HandleError> {
    let request = match request::decode(frame)? {
        Decoded::UnsupportedApiVersions { correlation_id } => {
            return api_versions::unsupported(correlation_id);
        }
        Decoded::Request(request) => request,
    };
    let ctx = Ctx {
        broker,
        config,
        key: request.key,
        version: request.version,
        correlation_id: request.header.correlation_id,
        client_id: request
            .header
            .client_id
            .as_ref()
            .map_or(String::new(), |c| c.to_string()),
        client_host: format!("/{}", session.peer.ip()),
        session,
    };
    match request.body {
        RequestKind::Produce(r) => produce::handle(&ctx, r),
        RequestKind::Fetch(r) => fetch::handle(&ctx, r),
        RequestKind::ListOffsets(r) => list_offsets::handle(&ctx, r),
        RequestKind::Metadata(r) => metadata::handle(&ctx, r),
        RequestKind::OffsetForLeaderEpoch(r) => offset_for_leader_epoch::handle(&ctx, r),
        RequestKind::ApiVersions(r) => api_versions::handle(&ctx, r),
        RequestKind::CreateTopics(r) => create_topics::handle(&ctx, r),
        RequestKind::DeleteTopics(r) => delete_topics::handle(&ctx, r),
        RequestKind::InitProducerId(r) => init_producer_id::handle(&ctx, r),
        RequestKind::DescribeConfigs(r) => describe_configs::handle(&ctx, r),
        RequestKind::AlterConfigs(r) => alter_configs::handle(&ctx, r),
        RequestKind::CreatePartitions(r) => create_partitions::handle(&ctx, r),
        RequestKind::IncrementalAlterConfigs(r) => incremental_alter_configs::handle(&ctx, r),
        RequestKind::DescribeCluster(r) => describe_cluster::handle(&ctx, r),
        RequestKind::DescribeLogDirs(r) => describe_log_dirs::handle(&ctx, r),
        RequestKind::FindCoordinator(r) => find_coordinator::handle(&ctx, r),
        RequestKind::JoinGroup(r) => join_group::handle(&ctx, r),
        RequestKind::SyncGroup(r) => sync_group::handle(&ctx, r),
        RequestKind::Heartbeat(r) => heartbeat::handle(&ctx, r),
        RequestKind::ConsumerGroupHeartbeat(r) => consumer_group_heartbeat::handle(&ctx, r),
        RequestKind::ConsumerGroupDescribe(r) => consumer_group_describe::handle(&ctx, r),
        RequestKind::LeaveGroup(r) => leave_group::handle(&ctx, r),
        RequestKind::OffsetCommit(r) => offset_commit::handle(&ctx, r),
        RequestKind::OffsetFetch(r) => offset_fetch::handle(&ctx, r),
        RequestKind::ListGroups(r) => list_groups::handle(&ctx, r),
        RequestKind::DescribeGroups(r) => describe_groups::handle(&ctx, r),
        RequestKind::DeleteGroups(r) => delete_groups::handle(&ctx, r),
        RequestKind::OffsetDelete(r) => offset_delete::handle(&ctx, r),
        RequestKind::ElectLeaders(r) => elect_leaders::handle(&ctx, r),
        RequestKind::AlterPartitionReassignments(r) => {
            alter_partition_reassignments::handle(&ctx, r)
        }
        RequestKind::ListPartitionReassignments(r) => list_partition_reassignments::handle(&ctx, r),
        RequestKind::CreateAcls(r) => acls::create(&ctx, r),
        RequestKind::DescribeAcls(r) => acls::describe(&ctx, r),
        RequestKind::DeleteAcls(r) => acls::delete(&ctx, r),
        RequestKind::SaslHandshake(r) => sasl::handshake(&ctx, r),
        RequestKind::SaslAuthenticate(r) => sasl::authenticate(&ctx, r),
        RequestKind::DescribeUserScramCredentials(r) => scram_credentials::describe(&ctx, r),
        RequestKind::AlterUserScramCredentials(r) => scram_credentials::alter(&ctx, r),
        RequestKind::DeleteRecords(r) => delete_records::handle(&ctx, r),
        RequestKind::WriteTxnMarkers(r) => write_txn_markers::handle(&ctx, r),
        RequestKind::AddPartitionsToTxn(r) if ctx.version >= 4 => txn_verify::handle(&ctx, r),
        RequestKind::AddPartitionsToTxn(r) => txn::add_partitions(&ctx, r),
        RequestKind::AddOffsetsToTxn(r) => txn::add_offsets(&ctx, r),
        RequestKind::EndTxn(r) => txn::end_txn(&ctx, r),
        RequestKind::TxnOffsetCommit(r) => txn_offset_commit::handle(&ctx, r),
        RequestKind::DescribeTransactions(r) => txn::describe(&ctx, r),
        RequestKind::ListTransactions(r) => txn::list(&ctx, r),
        RequestKind::DescribeQuorum(r) => describe_quorum::handle(&ctx, r),
        RequestKind::DescribeProducers(r) => describe_producers::handle(&ctx, r),
        RequestKind::ListConfigResources(r) => list_config_resources::handle(&ctx, r),
        RequestKind::DescribeTopicPartitions(r) => describe_topic_partitions::handle(&ctx, r),
        _ => Err(HandleError::UnsupportedVersion {
            key: request.key,
            version: request.version,
        }),
    }
}

/// KIP-320: a request that names a leader epoch older than the partition's is fenced, a newer
/// one is unknown to this broker; -1 skips the check. Returns the partition's epoch.
pub(crate) fn check_leader_epoch<B: Broker>(
    broker: &B,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
) -> Result<i32, crate::broker::BrokerError> {
    let epoch = broker.leader_epoch(topic, partition)?;
    crate::broker::check_epoch(current_leader_epoch, epoch)?;
    Ok(epoch)
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

/// A reply computed by a future: the future's response, encoded for this request.
pub(crate) fn later<B, R, F>(ctx: &Ctx<'_, B>, future: F) -> Reply
where
    R: kafka_protocol::protocol::Encodable + HeaderVersion + ErrorCodes,
    F: std::future::Future<Output = R> + Send + 'static,
{
    let (key, version, correlation_id) = (ctx.key, ctx.version, ctx.correlation_id);
    Reply::Later(Box::pin(async move {
        let response = future.await;
        KAFKA.count_errors(key, &response);
        let bytes = encode_response(key, version, correlation_id, &response)?;
        Ok(ResponseFrame::bytes(bytes.freeze()))
    }))
}

/// An optional protocol string from a Rust one.
pub(crate) fn opt_str(value: Option<String>) -> Option<StrBytes> {
    value.map(str_bytes)
}
