//! The cluster, topic, group and record routes of the admin HTTP API:
//!
//! - `GET /v1/cluster`: brokers, controllers, the active controller, partition health.
//! - `GET /v1/topics`, `POST /v1/topics` (a [`NewTopic`]): list; create.
//! - `GET /v1/topics/{name}`, `DELETE /v1/topics/{name}`: partitions, replicas, ISR,
//!   offsets, sizes and configs; delete.
//! - `GET /v1/topics/{name}/configs`, `PATCH /v1/topics/{name}/configs` (a
//!   [`ConfigChanges`]): configs; set or remove some.
//! - `POST /v1/topics/{name}/partitions` (a [`PartitionCount`]): grow.
//! - `GET /v1/topics/{name}/records?partition=&offset=&timestamp=&limit=`: browse records.
//! - `GET /v1/groups`, `GET /v1/groups/{group}`, `DELETE /v1/groups/{group}`: list; members,
//!   offsets and lag; delete.
//! - `POST /v1/groups/{group}/reset-offsets` (an [`OffsetReset`]): move its offsets.
//!
//! Answers are cluster-wide, whichever node is asked: the node asks the cluster over the
//! Kafka protocol as any admin client would.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::*;
use crate::rest::{AdminError, Answer, ApiJson, ErrorBody, answer};

/// What was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    /// Its name.
    pub deleted: String,
}

/// What the cluster routes ask of the node.
pub trait ClusterApi: Send + Sync + 'static {
    /// The cluster at a glance.
    fn cluster(&self) -> impl Future<Output = Result<ClusterView, AdminError>> + Send;
    /// Every topic.
    fn list_topics(&self) -> impl Future<Output = Result<Vec<TopicSummary>, AdminError>> + Send;
    /// Creates a topic.
    fn create_topic(
        &self,
        topic: NewTopic,
    ) -> impl Future<Output = Result<TopicDetail, AdminError>> + Send;
    /// A topic's partitions and configs.
    fn describe_topic(
        &self,
        name: String,
    ) -> impl Future<Output = Result<TopicDetail, AdminError>> + Send;
    /// Deletes a topic.
    fn delete_topic(&self, name: String) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// A topic's configs.
    fn topic_configs(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Vec<TopicConfig>, AdminError>> + Send;
    /// Changes a topic's configs; its configs after.
    fn alter_topic_configs(
        &self,
        name: String,
        changes: ConfigChanges,
    ) -> impl Future<Output = Result<Vec<TopicConfig>, AdminError>> + Send;
    /// Grows a topic.
    fn add_partitions(
        &self,
        name: String,
        count: i32,
    ) -> impl Future<Output = Result<TopicDetail, AdminError>> + Send;
    /// Reads records of a topic.
    fn read_records(
        &self,
        name: String,
        query: RecordQuery,
    ) -> impl Future<Output = Result<RecordPage, AdminError>> + Send;
    /// Every consumer group.
    fn list_groups(&self) -> impl Future<Output = Result<Vec<GroupSummary>, AdminError>> + Send;
    /// A group's members, offsets and lag.
    fn describe_group(
        &self,
        group: String,
    ) -> impl Future<Output = Result<GroupDetail, AdminError>> + Send;
    /// Moves a group's offsets.
    fn reset_offsets(
        &self,
        group: String,
        reset: OffsetReset,
    ) -> impl Future<Output = Result<Vec<GroupOffset>, AdminError>> + Send;
    /// Deletes a group.
    fn delete_group(&self, group: String) -> impl Future<Output = Result<(), AdminError>> + Send;
}

/// The cluster: brokers, controllers, partition health.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, description = "Done", body = ClusterView), (status = 503, description = "A part of the cluster does not answer", body = ErrorBody)))]
pub async fn cluster<S: ClusterApi>(State(s): State<Arc<S>>) -> Answer<ClusterView> {
    answer(s.cluster().await)
}

/// Every topic.
#[utoipa::path(get, path = "/v1/topics", tag = "topics",
    responses((status = 200, description = "Done", body = [TopicSummary]), (status = 503, description = "A part of the cluster does not answer", body = ErrorBody)))]
pub async fn list_topics<S: ClusterApi>(State(s): State<Arc<S>>) -> Answer<Vec<TopicSummary>> {
    answer(s.list_topics().await)
}

/// Creates a topic.
#[utoipa::path(post, path = "/v1/topics", tag = "topics", request_body = NewTopic,
    responses((status = 201, description = "Created", body = TopicDetail), (status = 400, description = "The request is wrong: the error names the problem", body = ErrorBody),
        (status = 409, description = "Not possible in the current state", body = ErrorBody)))]
pub async fn create_topic<S: ClusterApi>(
    State(s): State<Arc<S>>,
    ApiJson(topic): ApiJson<NewTopic>,
) -> Result<(StatusCode, Json<TopicDetail>), AdminError> {
    Ok((StatusCode::CREATED, Json(s.create_topic(topic).await?)))
}

/// A topic's partitions (replicas, ISR, offsets, sizes) and configs.
#[utoipa::path(get, path = "/v1/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "The topic")),
    responses((status = 200, description = "Done", body = TopicDetail), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn describe_topic<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<TopicDetail> {
    answer(s.describe_topic(name).await)
}

/// Deletes a topic.
#[utoipa::path(delete, path = "/v1/topics/{name}", tag = "topics",
    params(("name" = String, Path, description = "The topic")),
    responses((status = 200, description = "Done", body = Deleted), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn delete_topic<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Deleted> {
    s.delete_topic(name.clone()).await?;
    Ok(Json(Deleted { deleted: name }))
}

/// A topic's configs, with where each value comes from.
#[utoipa::path(get, path = "/v1/topics/{name}/configs", tag = "topics",
    params(("name" = String, Path, description = "The topic")),
    responses((status = 200, description = "Done", body = [TopicConfig]), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn topic_configs<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Vec<TopicConfig>> {
    answer(s.topic_configs(name).await)
}

/// Sets or removes a topic's configs; its configs after.
#[utoipa::path(patch, path = "/v1/topics/{name}/configs", tag = "topics",
    params(("name" = String, Path, description = "The topic")), request_body = ConfigChanges,
    responses((status = 200, description = "Done", body = [TopicConfig]), (status = 400, description = "The request is wrong: the error names the problem", body = ErrorBody),
        (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn alter_topic_configs<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(name): Path<String>,
    ApiJson(changes): ApiJson<ConfigChanges>,
) -> Answer<Vec<TopicConfig>> {
    answer(s.alter_topic_configs(name, changes).await)
}

/// Grows a topic to `count` partitions.
#[utoipa::path(post, path = "/v1/topics/{name}/partitions", tag = "topics",
    params(("name" = String, Path, description = "The topic")), request_body = PartitionCount,
    responses((status = 200, description = "Done", body = TopicDetail), (status = 400, description = "The request is wrong: the error names the problem", body = ErrorBody),
        (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn add_partitions<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(name): Path<String>,
    ApiJson(count): ApiJson<PartitionCount>,
) -> Answer<TopicDetail> {
    answer(s.add_partitions(name, count.count).await)
}

/// Records of one partition, from an offset or a time.
#[utoipa::path(get, path = "/v1/topics/{name}/records", tag = "topics",
    params(("name" = String, Path, description = "The topic"), RecordQuery),
    responses((status = 200, description = "Done", body = RecordPage), (status = 400, description = "The request is wrong: the error names the problem", body = ErrorBody),
        (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn read_records<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(name): Path<String>,
    query: Result<Query<RecordQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<RecordPage> {
    let Query(query) = query.map_err(|e| AdminError::bad_request(e.body_text()))?;
    answer(s.read_records(name, query).await)
}

/// Every consumer group.
#[utoipa::path(get, path = "/v1/groups", tag = "groups",
    responses((status = 200, description = "Done", body = [GroupSummary]), (status = 503, description = "A part of the cluster does not answer", body = ErrorBody)))]
pub async fn list_groups<S: ClusterApi>(State(s): State<Arc<S>>) -> Answer<Vec<GroupSummary>> {
    answer(s.list_groups().await)
}

/// A group's members, committed offsets and lag per partition.
#[utoipa::path(get, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "The group id")),
    responses((status = 200, description = "Done", body = GroupDetail), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn describe_group<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(group): Path<String>,
) -> Answer<GroupDetail> {
    answer(s.describe_group(group).await)
}

/// Deletes a group and its offsets (it must have no members).
#[utoipa::path(delete, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "The group id")),
    responses((status = 200, description = "Done", body = Deleted), (status = 404, description = "What it names does not exist", body = ErrorBody),
        (status = 409, description = "Not possible in the current state", body = ErrorBody)))]
pub async fn delete_group<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(group): Path<String>,
) -> Answer<Deleted> {
    s.delete_group(group.clone()).await?;
    Ok(Json(Deleted { deleted: group }))
}

/// Moves a group's committed offsets (it must have no members); the new offsets.
#[utoipa::path(post, path = "/v1/groups/{group}/reset-offsets", tag = "groups",
    params(("group" = String, Path, description = "The group id")), request_body = OffsetReset,
    responses((status = 200, description = "Done", body = [GroupOffset]), (status = 400, description = "The request is wrong: the error names the problem", body = ErrorBody),
        (status = 409, description = "Not possible in the current state", body = ErrorBody)))]
pub async fn reset_offsets<S: ClusterApi>(
    State(s): State<Arc<S>>,
    Path(group): Path<String>,
    ApiJson(reset): ApiJson<OffsetReset>,
) -> Answer<Vec<GroupOffset>> {
    answer(s.reset_offsets(group, reset).await)
}

/// The cluster, topic and group routes.
pub fn routes<S: ClusterApi>() -> Router<Arc<S>> {
    Router::new()
        .route("/v1/cluster", get(cluster::<S>))
        .route("/v1/topics", get(list_topics::<S>).post(create_topic::<S>))
        .route(
            "/v1/topics/{name}",
            get(describe_topic::<S>).delete(delete_topic::<S>),
        )
        .route(
            "/v1/topics/{name}/configs",
            get(topic_configs::<S>).patch(alter_topic_configs::<S>),
        )
        .route("/v1/topics/{name}/partitions", post(add_partitions::<S>))
        .route("/v1/topics/{name}/records", get(read_records::<S>))
        .route("/v1/groups", get(list_groups::<S>))
        .route(
            "/v1/groups/{group}",
            get(describe_group::<S>).delete(delete_group::<S>),
        )
        .route("/v1/groups/{group}/reset-offsets", post(reset_offsets::<S>))
}
