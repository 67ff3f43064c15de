//! The cluster-link part of the admin HTTP API (`/v1/links`): creating, listing, pausing and
//! deleting links, a link's mirror lag, and stopping its mirrors (failover, promote).
//!
//! - `GET /v1/links`, `POST /v1/links` (a [`NewLink`]): the links; create one.
//! - `GET /v1/links/{name}`, `DELETE /v1/links/{name}`: one link's status; delete it.
//! - `POST /v1/links/{name}/pause`, `/resume`: stop or restart fetching.
//! - `POST /v1/links/{name}/source` (a [`LinkSource`]): the source's new bootstrap servers.
//! - `POST /v1/links/{name}/failover`, `/promote` (a [`StopMirrors`]): make its mirror topics
//!   writable, at once (source lost) or once caught up (source reachable).
//! - `POST /v1/links/{name}/restore` (a [`StopMirrors`]): failback: this cluster's topics
//!   become mirrors of the link's source again, what they have beyond it kept aside.
//!
//! Errors are a status (400 bad input, 404 unknown link, 409 not possible now, 503 the
//! controller or source unavailable) with `{"error": "…"}` naming the problem.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// A link to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewLink {
    /// Its name.
    pub name: String,
    /// Bootstrap servers of the source cluster.
    pub source: String,
    /// Source topics to mirror (a regular expression over whole names; all when absent).
    #[serde(default)]
    pub topics: Option<String>,
    /// Source topics never to mirror.
    #[serde(default)]
    pub exclude_topics: Option<String>,
    /// Consumer groups whose offsets are copied.
    #[serde(default)]
    pub groups: Option<String>,
    /// `earliest` (default) or `latest`.
    #[serde(default)]
    pub start: Option<String>,
    /// Prepended to mirror topic names.
    #[serde(default)]
    pub prefix: Option<String>,
    /// How often group offsets are copied, ms (default 5000).
    #[serde(default)]
    pub offset_sync_ms: Option<u64>,
    /// Kafka client properties to reach the source with: `security.protocol`,
    /// `ssl.truststore.certificates` (inline PEM) or `ssl.truststore.location`, `sasl.mechanism`,
    /// `sasl.jaas.config`, … (none: plaintext). Kept in the metadata log; secrets never shown.
    #[serde(default)]
    pub source_config: Option<std::collections::BTreeMap<String, String>>,
}

/// A link as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkSummary {
    /// Its name.
    pub name: String,
    /// Bootstrap servers of the source cluster.
    pub source: String,
    /// `active` or `paused`.
    pub state: String,
    /// Topic filter.
    pub topics: Option<String>,
    /// Topics excluded.
    pub exclude_topics: Option<String>,
    /// Group filter.
    pub groups: Option<String>,
    /// `earliest` or `latest`.
    pub start: String,
    /// Name prefix of its mirrors.
    pub prefix: String,
    /// How often group offsets are copied, ms.
    pub offset_sync_ms: u64,
    /// The client properties the source is reached with, secrets as `(hidden)`.
    #[serde(default)]
    pub source_config: std::collections::BTreeMap<String, String>,
    /// Its mirror topics that still follow the source.
    pub mirroring_topics: usize,
}

/// One mirror partition's lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MirrorPartition {
    /// Partition index.
    pub partition: i32,
    /// The mirror's high watermark, if its leader answered.
    pub mirror_end: Option<i64>,
    /// The source's high watermark, if the source answered.
    pub source_end: Option<i64>,
    /// Records behind the source.
    pub lag_records: Option<i64>,
    /// Seconds between the newest source record and the newest mirrored one (0 when caught up).
    pub lag_seconds: Option<f64>,
}

/// One mirror topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MirrorStatus {
    /// Its name here.
    pub topic: String,
    /// Its name on the source.
    pub source_topic: String,
    /// `mirroring`, `stopped (failover)` or `stopped (promote)`.
    pub state: String,
    /// Per partition.
    pub partitions: Vec<MirrorPartition>,
}

/// A link's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkStatus {
    /// The link.
    pub link: LinkSummary,
    /// Bytes this node mirrored since it started.
    pub bytes_mirrored: u64,
    /// This node's last mirroring error, while it lasts.
    pub last_error: Option<String>,
    /// Records behind the source, over all mirroring partitions (those that answered).
    pub lag_records: i64,
    /// The largest partition lag in seconds.
    pub lag_seconds: f64,
    /// Its mirror topics.
    pub mirrors: Vec<MirrorStatus>,
}

/// Which mirror topics to stop (`None`: all of the link's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StopMirrors {
    /// Topic names.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
}

/// What stopping mirrors did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stopped {
    /// The topics now writable.
    pub topics: Vec<String>,
}

pub use crate::rest::{AdminError, ErrorBody};
use crate::rest::{Answer, ApiJson, answer};

/// What the link endpoints ask of the broker.
pub trait LinkAdmin: Send + Sync + 'static {
    /// Every link.
    fn links(&self) -> impl Future<Output = Vec<LinkSummary>> + Send;
    /// One link's status with its mirrors' lag.
    fn link_status(
        &self,
        name: String,
    ) -> impl Future<Output = Result<LinkStatus, AdminError>> + Send;
    /// Creates a link.
    fn create_link(
        &self,
        link: NewLink,
    ) -> impl Future<Output = Result<LinkSummary, AdminError>> + Send;
    /// Deletes a link.
    fn delete_link(&self, name: String) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// Points a link at new bootstrap servers of its source.
    fn set_link_source(
        &self,
        name: String,
        source: String,
        security: Option<std::collections::BTreeMap<String, String>>,
    ) -> impl Future<Output = Result<LinkSummary, AdminError>> + Send;
    /// Pauses or resumes a link.
    fn pause_link(
        &self,
        name: String,
        paused: bool,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// Turns this cluster's topics into mirrors of the link's source (failback), cutting off
    /// into side topics what their histories have that the source's lacks.
    fn restore_mirrors(
        &self,
        link: String,
        which: StopMirrors,
    ) -> impl Future<Output = Result<Stopped, AdminError>> + Send;
    /// Stops mirror topics: at once (`promote == false`), or once caught up with the source.
    fn stop_mirrors(
        &self,
        link: String,
        which: StopMirrors,
        promote: bool,
    ) -> impl Future<Output = Result<Stopped, AdminError>> + Send;
}

/// Every cluster link.
#[utoipa::path(get, path = "/v1/links", tag = "links", responses((status = 200, description = "Done", body = [LinkSummary])))]
pub async fn list<S: LinkAdmin>(State(state): State<Arc<S>>) -> Json<Vec<LinkSummary>> {
    Json(state.links().await)
}

/// Creates a cluster link.
#[utoipa::path(post, path = "/v1/links", tag = "links", request_body = NewLink,
    responses((status = 200, description = "Done", body = LinkSummary), (status = 400, description = "The request is wrong: the error names the problem", body = ErrorBody), (status = 409, description = "Not possible in the current state", body = ErrorBody), (status = 503, description = "A part of the cluster does not answer", body = ErrorBody)))]
pub async fn create<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    ApiJson(link): ApiJson<NewLink>,
) -> Answer<LinkSummary> {
    answer(state.create_link(link).await)
}

/// A link's status and its mirrors' lag.
#[utoipa::path(get, path = "/v1/links/{name}", tag = "links", params(("name" = String, Path, description = "The link")),
    responses((status = 200, description = "Done", body = LinkStatus), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn status<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<LinkStatus> {
    answer(state.link_status(name).await)
}

/// Deletes a link (its mirrors stay, stopped).
#[utoipa::path(delete, path = "/v1/links/{name}", tag = "links", params(("name" = String, Path, description = "The link")),
    responses((status = 200, description = "Done", body = Stopped), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn delete<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Stopped> {
    answer(
        state
            .delete_link(name)
            .await
            .map(|()| Stopped { topics: Vec::new() }),
    )
}

/// A link's new source (`POST /v1/links/{name}/source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkSource {
    /// Bootstrap servers of the source cluster.
    pub source: String,
    /// New client properties to reach it with (as when creating the link); absent: unchanged.
    #[serde(default)]
    pub source_config: Option<std::collections::BTreeMap<String, String>>,
}

/// Points a link at new bootstrap servers of its source.
#[utoipa::path(post, path = "/v1/links/{name}/source", tag = "links", params(("name" = String, Path, description = "The link")), request_body = LinkSource,
    responses((status = 200, description = "Done", body = LinkSummary), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn set_source<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<LinkSource>,
) -> Answer<LinkSummary> {
    answer(
        state
            .set_link_source(name, body.source, body.source_config)
            .await,
    )
}

/// Stops a link's fetching.
#[utoipa::path(post, path = "/v1/links/{name}/pause", tag = "links", params(("name" = String, Path, description = "The link")),
    responses((status = 200, description = "Done", body = Stopped), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn pause<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Stopped> {
    answer(
        state
            .pause_link(name, true)
            .await
            .map(|()| Stopped { topics: Vec::new() }),
    )
}

/// Restarts a paused link.
#[utoipa::path(post, path = "/v1/links/{name}/resume", tag = "links", params(("name" = String, Path, description = "The link")),
    responses((status = 200, description = "Done", body = Stopped), (status = 404, description = "What it names does not exist", body = ErrorBody)))]
pub async fn resume<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
) -> Answer<Stopped> {
    answer(
        state
            .pause_link(name, false)
            .await
            .map(|()| Stopped { topics: Vec::new() }),
    )
}

/// Makes the link's mirror topics writable at once (the source is lost).
#[utoipa::path(post, path = "/v1/links/{name}/failover", tag = "links", params(("name" = String, Path, description = "The link")), request_body = StopMirrors,
    responses((status = 200, description = "Done", body = Stopped), (status = 404, description = "What it names does not exist", body = ErrorBody), (status = 409, description = "Not possible in the current state", body = ErrorBody)))]
pub async fn failover<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    ApiJson(which): ApiJson<StopMirrors>,
) -> Answer<Stopped> {
    answer(state.stop_mirrors(name, which, false).await)
}

/// Makes the link's mirror topics writable once caught up (planned switch).
#[utoipa::path(post, path = "/v1/links/{name}/promote", tag = "links", params(("name" = String, Path, description = "The link")), request_body = StopMirrors,
    responses((status = 200, description = "Done", body = Stopped), (status = 404, description = "What it names does not exist", body = ErrorBody), (status = 409, description = "Not possible in the current state", body = ErrorBody), (status = 503, description = "A part of the cluster does not answer", body = ErrorBody)))]
pub async fn promote<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    ApiJson(which): ApiJson<StopMirrors>,
) -> Answer<Stopped> {
    answer(state.stop_mirrors(name, which, true).await)
}

/// Failback: this cluster's topics follow the link's source again.
#[utoipa::path(post, path = "/v1/links/{name}/restore", tag = "links", params(("name" = String, Path, description = "The link")), request_body = StopMirrors,
    responses((status = 200, description = "Done", body = Stopped), (status = 404, description = "What it names does not exist", body = ErrorBody), (status = 409, description = "Not possible in the current state", body = ErrorBody)))]
pub async fn restore<S: LinkAdmin>(
    State(state): State<Arc<S>>,
    Path(name): Path<String>,
    ApiJson(which): ApiJson<StopMirrors>,
) -> Answer<Stopped> {
    answer(state.restore_mirrors(name, which).await)
}

/// The link routes.
pub fn routes<S: LinkAdmin>() -> Router<Arc<S>> {
    Router::new()
        .route("/v1/links", get(list::<S>).post(create::<S>))
        .route("/v1/links/{name}", get(status::<S>).delete(delete::<S>))
        .route("/v1/links/{name}/pause", post(pause::<S>))
        .route("/v1/links/{name}/source", post(set_source::<S>))
        .route("/v1/links/{name}/resume", post(resume::<S>))
        .route("/v1/links/{name}/failover", post(failover::<S>))
        .route("/v1/links/{name}/promote", post(promote::<S>))
        .route("/v1/links/{name}/restore", post(restore::<S>))
}
